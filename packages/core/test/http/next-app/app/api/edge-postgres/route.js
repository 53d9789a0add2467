// What the README says about postgres.js on the Edge runtime: it loads, but cannot connect.
import postgres from "postgres";

export const runtime = "edge";

export async function GET() {
  try {
    const sql = postgres(process.env.DATABASE_URL);
    const [row] = await sql`select 1 as one`;
    return Response.json({ one: row.one });
  } catch (error) {
    return Response.json({ error: String(error) });
  }
}
