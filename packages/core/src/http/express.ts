import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
// Types only: loading this module never loads express.
import type { Request } from "express";
import type { Exchange, RywHttpOptions } from "./index.js";
import { HttpRyw } from "./index.js";

export type { RywHttpOptions, TokenCookieOptions, TokenTransportOptions } from "./index.js";

/** The middleware shape Express and Connect share. */
export type RywConnectMiddleware<Req extends IncomingMessage> = (req: Req, res: ServerResponse, next: (error?: unknown) => void) => void;

/**
 * Express and Connect middleware: runs the rest of the request in its scope and, with
 * `token`, reads the commit token from the request and sets a fresh one on the response of a
 * request that wrote. Mount it after the middleware that identifies the user (session,
 * passport...). The token is added when the response headers go out, so the write must have
 * completed by then: `await` it before `res.json()`, as usual.
 *
 * Secure cookies (`secure: "auto"`) follow `req.secure`, which follows Express's `trust proxy`
 * setting; plain Connect has no `req.secure`, so there it is the TLS socket (or `trustProxy`).
 * @example app.use(rywExpress({ scope: (req) => req.user?.id, token: { ryw } }))
 */
export function rywExpress<Req extends IncomingMessage = Request>(options?: RywHttpOptions<Req>): RywConnectMiddleware<Req> {
  const http = new HttpRyw(options, "rywExpress");
  const header = http.tokenHeader;
  const token = http.carriesToken;
  return (req, res, next) => {
    let entered: unknown;
    try {
      entered = http.enter(req, { cookie: req.headers.cookie, header: header === undefined ? undefined : req.headers[header] }, (exchange) => {
        if (token) addOnHeaders(res, exchange, req);
        next();
      });
    } catch (error) {
      return next(error);
    }
    if (entered instanceof Promise) entered.catch(next);
  };
}

function isHttps(req: IncomingMessage): boolean {
  const secure = (req as { secure?: unknown }).secure;
  if (typeof secure === "boolean") return secure;
  return (req.socket as { encrypted?: boolean }).encrypted === true;
}

/**
 * Adds the exchange's headers right before the response headers are written: every way of
 * sending (res.json, res.end, pipe, flushHeaders) goes through `writeHead`, explicitly or through
 * Node's implicit header. As the `on-headers` package does, headers passed to `writeHead` itself
 * are applied first, so that neither side overwrites the other's Set-Cookie.
 */
function addOnHeaders(res: ServerResponse, exchange: Exchange, req: IncomingMessage): void {
  const writeHead = res.writeHead as (this: ServerResponse, statusCode: number, reason?: string) => ServerResponse;
  res.writeHead = function patched(this: ServerResponse, statusCode: number, ...rest: unknown[]) {
    res.writeHead = writeHead as ServerResponse["writeHead"];
    const reason = typeof rest[0] === "string" ? (rest.shift() as string) : undefined;
    const given: unknown = rest[0];
    if (Array.isArray(given)) {
      // [name, value, name, value...] or [[name, value]...]
      const flat: unknown[] = given.every((item) => Array.isArray(item)) ? given.flat() : given;
      for (let i = 0; i + 1 < flat.length; i += 2) this.appendHeader(String(flat[i]), flat[i + 1] as string | readonly string[]);
    } else if (given !== undefined && given !== null) {
      for (const [name, value] of Object.entries(given as OutgoingHttpHeaders)) if (value !== undefined) this.setHeader(name, value);
    }
    for (const [name, value] of exchange.responseHeaders({ https: isHttps(req), forwardedProto: req.headers["x-forwarded-proto"] })) {
      this.appendHeader(name, value);
    }
    return writeHead.call(this, statusCode, reason);
  } as ServerResponse["writeHead"];
}
