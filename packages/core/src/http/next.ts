// Types only: loading this module never loads next.
// next has no "exports" map, so Node's ESM resolution needs the file name.
import type { NextRequest } from "next/server.js";
import type { RywHttpOptions, TokenTransportOptions } from "./index.js";
import { HttpRyw, readToken, REJECTED, tokenName } from "./index.js";
import { invalidOption } from "../errors.js";

export type { RywHttpOptions, TokenCookieOptions, TokenTransportOptions } from "./index.js";

/** A route handler: `(request, { params })` in the App Router. */
export type RouteHandler<Req extends Request, Ctx> = (request: Req, context: Ctx) => Response | Promise<Response>;

/**
 * Next.js App Router route handlers, on the Node.js runtime (the default): returns a wrapper that
 * runs a handler in the request's scope and, with `token`, reads the commit token and sets a fresh
 * one on the response of a request that wrote.
 *
 * Not on the Edge runtime (`export const runtime = "edge"`): the router's token codec needs
 * `node:crypto`, which it lacks; postgres.js cannot connect there (no `net`) and ioredis does not
 * load. Proxy (`proxy.ts`, formerly `middleware.ts`) cannot set the scope of the handlers either:
 * it returns before they run. It can only move the token: see {@link rywRequestHeaders}.
 *
 * Secure cookies (`secure: "auto"`) follow the request URL, where Next.js itself trusts
 * `X-Forwarded-Proto`.
 * @example
 * const withRyw = rywNext({ scope: (req) => req.cookies.get("session")?.value, token: { ryw: db.$ryw } });
 * export const POST = withRyw(async (req) => { await db.post.create(...); return Response.json({ ok: true }); });
 */
export function rywNext<Req extends Request = NextRequest>(options?: RywHttpOptions<Req>) {
  const http = new HttpRyw(options, "rywNext");
  const header = http.tokenHeader;
  const token = http.carriesToken;
  return function withRyw<Ctx = unknown>(handler: RouteHandler<Req, Ctx>): (request: Req, context: Ctx) => Promise<Response> {
    if (typeof handler !== "function") throw invalidOption("withRyw(handler)", "a route handler function", handler);
    return async (request, context) => {
      const incoming = { cookie: request.headers.get("cookie"), header: header === undefined ? undefined : request.headers.get(header) };
      return http.enter(request, incoming, async (exchange) => {
        let response = await handler(request, context);
        if (!token) return response;
        const add = exchange.responseHeaders({ https: new URL(request.url).protocol === "https:", forwardedProto: request.headers.get("x-forwarded-proto") });
        if (add.length === 0) return response;
        try {
          for (const [name, value] of add) response.headers.append(name, value);
        } catch {
          // Response.redirect() and fetch() results have immutable headers: copy, then add.
          response = new Response(response.body, response);
          for (const [name, value] of add) response.headers.append(name, value);
        }
        return response;
      });
    };
  };
}

/**
 * For `proxy.ts` / `middleware.ts`, on either runtime (this module's one Node import,
 * `node:async_hooks`, is provided by Next.js's Edge runtime; the router is never loaded): a copy
 * of the request headers in which the commit token from the cookie is also in the `name` header,
 * for code that reads headers only (`headers()` in a Server Component, a backend behind a
 * rewrite). A client-sent header of that name is dropped when there is no cookie, so the two
 * never disagree. It cannot set a scope: nothing of proxy's context reaches the route.
 * @example
 * export function proxy(request: NextRequest) {
 *   return NextResponse.next({ request: { headers: rywRequestHeaders(request) } });
 * }
 */
export function rywRequestHeaders(request: Request, options?: Pick<TokenTransportOptions, "name">): Headers {
  const name = tokenName("name", options?.name);
  const headers = new Headers(request.headers);
  const read = readToken({ cookie: request.headers.get("cookie") }, { via: "cookie", name });
  // A refused cookie (sent twice, oversize) stays refused downstream: reads go to the primary.
  const value = read.rejected ? REJECTED : read.value;
  if (value !== undefined) headers.set(name, value);
  else headers.delete(name);
  return headers;
}
