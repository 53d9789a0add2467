import { NextResponse } from "next/server";
import { rywNext } from "../../../../../../../src/http/next.ts";
import { app } from "../../../../lib/ryw.js";

// No scope: under the token strategy the cookie alone carries the position.
const withRyw = rywNext({ token: { ryw: app.token } });

export const POST = withRyw(async (request) => {
  const { authorId, title } = await request.json();
  const id = await app.writePost(app.token, authorId, title);
  // Response.redirect() has immutable headers: the wrapper must still get its cookie on.
  if (request.nextUrl.searchParams.has("redirect")) return Response.redirect(new URL(`/api/token/posts?author=${authorId}`, request.url), 303);
  return NextResponse.json({ id }, { status: 201 });
});

export const GET = withRyw(async (request) => {
  const author = Number(request.nextUrl.searchParams.get("author"));
  return NextResponse.json({ ...(await app.readNewest(app.token, author)), route: app.lastRoute("token") });
});
