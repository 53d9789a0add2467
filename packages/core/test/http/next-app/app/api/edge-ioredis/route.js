// What the README says about ioredis on the Edge runtime: the module does not load.
import { Redis } from "ioredis";

export const runtime = "edge";

export async function GET() {
  const redis = new Redis(process.env.REDIS_URL, { lazyConnect: true });
  return Response.json({ pong: await redis.ping() });
}
