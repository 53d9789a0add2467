// Types only: loading this module never loads fastify.
import type { FastifyPluginCallback, FastifyRequest } from "fastify";
import type { Exchange, RywHttpOptions } from "./index.js";
import { HttpRyw } from "./index.js";
import { oneOf } from "../validate.js";

export type { RywHttpOptions, TokenCookieOptions, TokenTransportOptions } from "./index.js";

export interface RywFastifyOptions extends RywHttpOptions<FastifyRequest> {
  /**
   * The hook that enters the scope. `preHandler` runs after every `onRequest`, `preParsing` and
   * `preValidation` hook, so a session or JWT decoded there is there for `scope`, whatever the
   * registration order; reads made in those earlier hooks run without the scope. `onRequest`
   * covers them too, but then register this plugin after the one that identifies the user.
   * @default "preHandler"
   */
  hook?: "onRequest" | "preHandler";
}

/**
 * Fastify plugin: runs each request's handler in its scope and, with `token`, reads the commit
 * token and sets a fresh one (in `onSend`, before the headers go out) on the response of a request
 * that wrote. It applies to the whole instance it is registered on, as a plugin wrapped in
 * `fastify-plugin` would (without depending on it). Replies sent with `reply.hijack()` or
 * written to `reply.raw` skip `onSend` and get no token.
 *
 * Secure cookies (`secure: "auto"`) follow `request.protocol`, which follows Fastify's `trustProxy`.
 * @example await app.register(rywFastify, { scope: (request) => request.user?.id, token: { ryw } })
 */
export const rywFastify: FastifyPluginCallback<RywFastifyOptions> = Object.assign(
  function rywFastify(fastify: Parameters<FastifyPluginCallback<RywFastifyOptions>>[0], options: RywFastifyOptions, done: (error?: Error) => void) {
    const { hook: hookOption, ...rest } = options ?? {};
    let http: HttpRyw<FastifyRequest>;
    let hook: "onRequest" | "preHandler";
    try {
      http = new HttpRyw<FastifyRequest>(rest, "rywFastify");
      hook = oneOf("hook", hookOption, ["onRequest", "preHandler"], "preHandler");
    } catch (error) {
      // A callback plugin reports through `done`: a throw here would escape Fastify's loader.
      return done(error as Error);
    }
    const header = http.tokenHeader;
    const exchanges = new WeakMap<FastifyRequest, Exchange>();

    const enter = (request: FastifyRequest, _reply: unknown, next: (error?: Error) => void) => {
      let entered: unknown;
      try {
        entered = http.enter(request, { cookie: request.headers.cookie, header: header === undefined ? undefined : request.headers[header] }, (exchange) => {
          if (http.carriesToken) exchanges.set(request, exchange);
          next();
        });
      } catch (error) {
        return next(error as Error);
      }
      if (entered instanceof Promise) entered.catch((error: Error) => next(error));
    };
    if (hook === "onRequest") fastify.addHook("onRequest", enter);
    else fastify.addHook("preHandler", enter);

    if (http.carriesToken) {
      // onSend runs before Fastify writes the headers, for every reply sent through `reply.send`.
      fastify.addHook("onSend", (request, reply, payload, next) => {
        const exchange = exchanges.get(request);
        if (exchange) {
          for (const [name, value] of exchange.responseHeaders({ https: request.protocol === "https", forwardedProto: request.headers["x-forwarded-proto"] })) {
            // Fastify appends to an existing Set-Cookie rather than replacing it.
            reply.header(name, value);
          }
        }
        next(null, payload);
      });
    }
    done();
  },
  {
    // What fastify-plugin sets: the hooks apply to the instance it is registered on, not to a
    // private child context that no route lives in.
    [Symbol.for("skip-override")]: true,
    [Symbol.for("fastify.display-name")]: "@ryw/core/fastify",
    [Symbol.for("plugin-meta")]: { name: "@ryw/core/fastify", fastify: ">=4" },
  },
);
