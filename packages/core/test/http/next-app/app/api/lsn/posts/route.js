import { rywNext } from "../../../../../../../src/http/next.ts";
import { app } from "../../../../lib/ryw.js";

// Scope from the request, as an app would take it from its session.
const withRyw = rywNext({ scope: (request) => request.headers.get("x-user") ?? undefined });

export const POST = withRyw(async (request) => {
  const { authorId, title } = await request.json();
  return Response.json({ id: await app.writePost(app.lsn, authorId, title) }, { status: 201 });
});

export const GET = withRyw(async (request) => {
  const author = Number(request.nextUrl.searchParams.get("author"));
  return Response.json({ ...(await app.readNewest(app.lsn, author)), route: app.lastRoute("lsn") });
});
