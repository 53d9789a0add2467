// Types only: loading this module never loads hono.
import type { Context, Env, MiddlewareHandler } from "hono";
import type { RywHttpOptions } from "./index.js";
import { HttpRyw } from "./index.js";

export type { RywHttpOptions, TokenCookieOptions, TokenTransportOptions } from "./index.js";

/**
 * Hono middleware: runs the rest of the request in its scope and, with `token`, reads the commit
 * token and sets a fresh one on the response of a request that wrote (after `next()`, when the
 * response exists but has not been sent). A streamed response (`c.stream()`) has sent its headers
 * before the writes in its callback finish, and carries no token for them.
 *
 * Runs where the router runs: Node.js, with `@hono/node-server` (AsyncLocalStorage, TCP sockets
 * for PostgreSQL and Redis). Secure cookies (`secure: "auto"`) follow the request URL's protocol
 * (`@hono/node-server`: a TLS socket), or `X-Forwarded-Proto` with `trustProxy`. Pass your app's
 * `Env` for typed `c.get()` in `scope`.
 * @example app.use(rywHono<AppEnv>({ scope: (c) => c.get("userId"), token: { ryw } }))
 */
export function rywHono<E extends Env = Env>(options?: RywHttpOptions<Context<E>>): MiddlewareHandler<E> {
  const http = new HttpRyw(options, "rywHono");
  const header = http.tokenHeader;
  const token = http.carriesToken;
  return async (c, next) => {
    const incoming = { cookie: c.req.header("cookie"), header: header === undefined ? undefined : c.req.header(header) };
    await http.enter(c, incoming, async (exchange) => {
      await next();
      if (!token) return;
      const security = { https: new URL(c.req.url).protocol === "https:", forwardedProto: c.req.header("x-forwarded-proto") };
      // c.header() after next() copies a response with immutable headers (a fetch() result) first.
      for (const [name, value] of exchange.responseHeaders(security)) c.header(name, value, { append: true });
    });
  };
}
