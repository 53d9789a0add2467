// Edge runtime (the default of middleware.js): it can only move the token, here from the cookie
// into a request header for whatever runs behind it.
import { NextResponse } from "next/server";
import { rywRequestHeaders } from "../../../src/http/next.ts";

export function middleware(request) {
  const headers = rywRequestHeaders(request);
  headers.set("x-middleware-runtime", typeof EdgeRuntime === "string" ? "edge" : "nodejs");
  return NextResponse.next({ request: { headers } });
}

export const config = { matcher: "/api/echo-token" };
