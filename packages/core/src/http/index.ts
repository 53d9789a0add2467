import { AsyncResource } from "node:async_hooks";
// Types only from the router: its runtime pulls in node:crypto (token codec), which Next.js's Edge
// runtime lacks, while node:async_hooks (context.ts) is there. This module must stay loadable on Edge.
import type { Ryw, Strategy } from "../router.js";
import type { RequestKnowledge } from "../context.js";
import { currentContext, runWithScope } from "../context.js";
import { invalidOption, RywError } from "../errors.js";
import { oneOf } from "../validate.js";

/**
 * The framework-neutral half of the web middleware: options, reading the commit token from a
 * request, running the request in its scope, and the headers to add to the response. The files
 * next to this one only translate a framework's request and response to these calls.
 */

/** The default name of the token cookie or header. */
export const DEFAULT_TOKEN_NAME = "ryw-token";

/**
 * The scope of requests that carry a token but have no scope of their own, under
 * `strategy: "token"`: the token alone holds the position there, so one shared name is enough.
 * (Its only other use in the router is this process's short primary-only spell after a write
 * whose position could not be captured.)
 */
export const TOKEN_ONLY_SCOPE = "ryw:token";

/**
 * Longest token value that is looked at. A v1 token is 42 characters; anything far longer is
 * refused here, with its own message, instead of being carried through the request.
 */
export const MAX_TOKEN_CHARS = 1024;

/** What stands for a refused token value downstream: never a valid token, so reads go to the primary. */
export const REJECTED = "rejected";

/** A header as frameworks hand it over: Node gives `string | string[]`, the fetch API `string | null`. */
export type HeaderValue = string | readonly string[] | null | undefined;

export interface RywHttpOptions<Req> {
  /**
   * Whose writes this request must see: the signed-in user, a session id, a tenant. Called once
   * per request, before the handler; may be async. `undefined` means no guarantee is needed,
   * except with `token` under `strategy: "token"`, where the token alone is enough.
   * @default none: no scope (the token alone, if carried)
   * @example scope: (req) => req.user?.id
   */
  scope?: (request: Req) => string | undefined | PromiseLike<string | undefined>;
  /**
   * Carry the commit token between requests: read it from each request, and after a request
   * that wrote (or, with a `monotonic` instance, whose reads were served a newer position than
   * its token held), send a fresh one. Needs an instance created with `tokenKeys`.
   * @default off
   */
  token?: TokenTransportOptions;
}

export interface TokenTransportOptions {
  /**
   * What signs the token: `createRyw(...)`, `db.$ryw` (@ryw/prisma) or `session.ryw`
   * (@ryw/drizzle), created with `tokenKeys`.
   */
  ryw: Pick<Ryw, "commitToken" | "strategy">;
  /**
   * `cookie`: the browser carries it, nothing to do on the client. `header`: the response has a
   * `ryw-token` header after writes and the client sends it back on its next requests (for API
   * clients; cross-origin browsers also need it in `Access-Control-Expose-Headers`).
   * @default "cookie"
   */
  via?: "cookie" | "header";
  /** Name of the cookie or header. @default "ryw-token" */
  name?: string;
  /** Attributes of the cookie (`via: "cookie"`). */
  cookie?: TokenCookieOptions;
}

export interface TokenCookieOptions {
  /** Keeps the token away from page scripts; nothing on the client needs to read it. @default true */
  httpOnly?: boolean;
  /** @default "lax" */
  sameSite?: "lax" | "strict" | "none";
  /** @default "/" */
  path?: string;
  /** @default none: the cookie goes back only to the host that set it */
  domain?: string;
  /**
   * `"auto"`: Secure when the request came over HTTPS, as the framework tells it (Express
   * `req.secure` and Fastify `request.protocol` follow their own `trust proxy` settings, Hono and
   * Next.js the request URL), or, with `trustProxy`, an `X-Forwarded-Proto: https`.
   * @default "auto"
   */
  secure?: boolean | "auto";
  /** Also count `X-Forwarded-Proto: https` as HTTPS for `secure: "auto"`. Only behind a proxy that sets it. @default false */
  trustProxy?: boolean;
  /**
   * Lifetime in seconds. Without it the cookie lasts the browser session; a token older than the
   * router's `ttlMs` no longer asks for its position anyway.
   * @default none (a session cookie)
   */
  maxAge?: number;
}

/** What a request carried, in whatever shape the framework gives it. */
export interface IncomingToken {
  /** The `Cookie` header. */
  cookie?: HeaderValue;
  /** The token header (`via: "header"`); read only if that is the transport. */
  header?: HeaderValue;
}

/** What decides the `Secure` attribute: the framework's own notion of HTTPS, and the forwarded protocol. */
export interface ResponseSecurity {
  https: boolean;
  forwardedProto?: HeaderValue;
}

/** One request in its scope: the headers its response needs, asked for just before they are sent. */
export interface Exchange {
  /**
   * The headers to add: a `Set-Cookie` or the token header after a write (or a monotonic read
   * that was served a newer position), a clearing `Set-Cookie` after a rejected token cookie, or
   * none. Callable from any async context (a `writeHead` patch, a framework hook); the answer is
   * computed once.
   */
  responseHeaders(security: ResponseSecurity): ReadonlyArray<readonly [name: string, value: string]>;
}

interface ResolvedToken {
  ryw: Pick<Ryw, "commitToken" | "strategy">;
  strategy: Strategy;
  via: "cookie" | "header";
  name: string;
  /** Everything after `name=value`, with `Secure` decided per request. */
  attributes: string;
  secure: boolean | "auto";
  trustProxy: boolean;
}

// RFC 9110 token characters: what a header name and a cookie name may be made of.
const TOKEN_CHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 6265 path-value and domain: any character except controls and ";".
const ATTRIBUTE_VALUE = /^[^\x00-\x1f\x7f;]*$/;

/**
 * Options checked once, when the middleware is created; then one {@link Exchange} per request.
 * `api` names the caller (`rywExpress`...) in error messages.
 */
export class HttpRyw<Req> {
  readonly #api: string;
  readonly #scope: ((request: Req) => string | undefined | PromiseLike<string | undefined>) | undefined;
  readonly #token: ResolvedToken | undefined;

  constructor(options: RywHttpOptions<Req> | undefined, api: string) {
    this.#api = api;
    if (options === undefined) options = {};
    if (typeof options !== "object" || options === null) throw invalidOption(`${api}(options)`, "an object", options);
    if (options.scope !== undefined && typeof options.scope !== "function") throw invalidOption("scope", "a function (request) => string | undefined", options.scope);
    this.#scope = options.scope;
    this.#token = options.token === undefined ? undefined : resolveToken(options.token);
  }

  /** Whether responses may get headers: without `token`, adapters need no response hook at all. */
  get carriesToken(): boolean {
    return this.#token !== undefined;
  }

  /** The request header that carries the token, lower-case, or `undefined` unless `via: "header"`. */
  get tokenHeader(): string | undefined {
    return this.#token?.via === "header" ? this.#token.name.toLowerCase() : undefined;
  }

  /**
   * Runs `fn` in the request's scope, with the token it carried. Synchronous when `scope` is (so
   * that a `next()` callback runs at once); a Promise when `scope` returned one. Throws (or
   * rejects) an `INVALID_SCOPE` RywError when `scope` returns anything but a non-empty string
   * or `undefined`: that is a bug in the app, not in the request.
   */
  enter<T>(request: Req, incoming: IncomingToken, fn: (exchange: Exchange) => T): T | Promise<Awaited<T>> {
    const scope = this.#scope?.(request);
    if (isThenable(scope)) return Promise.resolve(scope).then((resolved) => this.#run(resolved, incoming, fn) as Awaited<T>);
    return this.#run(scope, incoming, fn);
  }

  #run<T>(scope: unknown, incoming: IncomingToken, fn: (exchange: Exchange) => T): T {
    if (scope !== undefined && (typeof scope !== "string" || scope.length === 0)) {
      throw new RywError("INVALID_SCOPE", `Option \`scope\` of ${this.#api} must return a non-empty string or undefined, got ${scope === "" ? "an empty string" : describeValue(scope)}.`);
    }
    const token = this.#token;
    // runWithScope awaits a returned promise inside the scope: for these callbacks that is the
    // same promise's value, so T stays T.
    if (!token) return runWithScope({ scope }, () => fn(NO_HEADERS)) as T;
    const read = readToken(incoming, token);
    const effective = scope ?? (token.strategy === "token" ? TOKEN_ONLY_SCOPE : undefined);
    // A rejected value still counts as "a token was sent", so that the read goes to the primary
    // (`invalid-token`), exactly as for a token that fails its signature.
    const carried = read.rejected ? REJECTED : read.value;
    return runWithScope({ scope: effective, token: carried }, () => {
      const ctx = currentContext()!;
      // Seeds the router's once-per-request verification cache with the reason, so the router
      // never decodes the value and routes this request's reads to the primary.
      if (read.rejected) ctx.known.decoded = { error: read.rejected };
      // Bound here, so that the token is signed in this request's context even when the framework
      // asks for headers from another one (a writeHead call, an onSend hook).
      const commitToken = AsyncResource.bind(() => token.ryw.commitToken());
      let answer: ReadonlyArray<readonly [string, string]> | undefined;
      return fn({
        responseHeaders: (security) => (answer ??= responseHeaders(token, ctx.known, commitToken, read.cookie, security)),
      });
    }) as T;
  }
}

const NO_HEADERS: Exchange = { responseHeaders: () => [] };

function responseHeaders(
  token: ResolvedToken,
  known: RequestKnowledge,
  commitToken: () => string | undefined,
  cookieSent: boolean,
  security: ResponseSecurity,
): ReadonlyArray<readonly [string, string]> {
  // Only a request that wrote has a new position to hand out. A token the request merely read
  // is already on the client, and re-signing it on every read would only renew its age. With
  // `monotonic` (the only case where `served` is set), a read can raise the position too: the
  // client must carry what it was shown, or its next request could go back in time.
  const came = known.decoded !== undefined && !("error" in known.decoded) ? known.decoded.lsn : undefined;
  const rose = known.served !== undefined && (came === undefined || known.served > came);
  const fresh = known.lastWriteAt !== undefined || rose ? commitToken() : undefined;
  if (token.via === "header") return fresh === undefined ? [] : [[token.name, fresh]];
  const secure = token.secure === "auto" ? security.https || (token.trustProxy && forwardedHttps(security.forwardedProto)) : token.secure;
  if (fresh !== undefined) return [["Set-Cookie", serializeCookie(token, fresh, secure)]];
  // A cookie the router refused (a rotated-out key, tampering, garbage) would send every read of
  // this client to the primary until it expires: clear it.
  if (cookieSent && known.decoded !== undefined && "error" in known.decoded) return [["Set-Cookie", serializeCookie(token, "", secure, true)]];
  return [];
}

/** The `Set-Cookie` value for `value`, or one that deletes the cookie. */
export function serializeCookie(token: Pick<ResolvedToken, "name" | "attributes">, value: string, secure: boolean, clear = false): string {
  const expiry = clear ? "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT" : "";
  return `${token.name}=${value}${token.attributes}${expiry}${secure ? "; Secure" : ""}`;
}

interface ReadResult {
  value: string | undefined;
  rejected: RywError | undefined;
  /** Whether the value came from a cookie (then a refused one can be cleared). */
  cookie: boolean;
}

/** The token a request carried: none, one value, or a reason to refuse what was sent. */
export function readToken(incoming: IncomingToken, token: Pick<ResolvedToken, "via" | "name">): ReadResult {
  const where = token.via === "cookie" ? `Cookie \`${token.name}\`` : `Header \`${token.name}\``;
  const values = token.via === "cookie" ? cookieValues(incoming.cookie, token.name) : headerValues(incoming.header);
  const cookie = token.via === "cookie" && values.length > 0;
  const distinct = [...new Set(values.filter((v) => v !== ""))];
  if (distinct.length === 0) return { value: undefined, rejected: undefined, cookie };
  // Two different tokens (cookies set with another Path or Domain, or planted by a sibling
  // subdomain): neither can be trusted to be the newer one.
  if (distinct.length > 1) return { value: undefined, rejected: refused(`${where} was sent ${distinct.length} times with different values`), cookie };
  const value = distinct[0]!;
  if (value.length > MAX_TOKEN_CHARS) return { value: undefined, rejected: refused(`${where} is ${value.length} characters long, far longer than a commit token (at most ${MAX_TOKEN_CHARS} are read)`), cookie };
  return { value, rejected: undefined, cookie };
}

function refused(why: string): RywError {
  return new RywError("INVALID_TOKEN", `${why}; it is ignored and the reads of this request go to the primary.`);
}

/** Values of every cookie named `name` in a Cookie header (RFC 6265 `name=value; name2=value2`). */
function cookieValues(header: HeaderValue, name: string): string[] {
  const text = typeof header === "string" ? header : Array.isArray(header) ? header.filter((h) => typeof h === "string").join("; ") : "";
  const out: string[] = [];
  for (const pair of text.split(";")) {
    const eq = pair.indexOf("=");
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    out.push(value);
  }
  return out;
}

function headerValues(header: HeaderValue): string[] {
  if (typeof header === "string") return [header.trim()];
  if (Array.isArray(header)) return header.filter((h): h is string => typeof h === "string").map((h) => h.trim());
  return [];
}

/** The first hop's protocol in `X-Forwarded-Proto` (`https, http` when proxies chain). */
function forwardedHttps(value: HeaderValue): boolean {
  const first = typeof value === "string" ? value : Array.isArray(value) ? value[0] : undefined;
  return typeof first === "string" && first.split(",")[0]!.trim().toLowerCase() === "https";
}

function resolveToken(options: TokenTransportOptions): ResolvedToken {
  if (typeof options !== "object" || options === null) throw invalidOption("token", "an object { ryw, via?, name?, cookie? }", options);
  const ryw = options.ryw;
  if (typeof ryw !== "object" || ryw === null || typeof ryw.commitToken !== "function") {
    throw invalidOption("token.ryw", "a ryw instance (createRyw(...), db.$ryw, session.ryw)", ryw);
  }
  // Outside any request this returns undefined, or throws when the instance cannot sign: better
  // now than on the first write.
  try {
    ryw.commitToken();
  } catch (error) {
    throw new RywError("INVALID_OPTION", "Option `token.ryw` must be created with `tokenKeys` to sign commit tokens.", { cause: error });
  }
  const via = oneOf("token.via", options.via, ["cookie", "header"], "cookie");
  const name = tokenName("token.name", options.name);
  const cookie = options.cookie ?? {};
  if (typeof cookie !== "object" || cookie === null) throw invalidOption("token.cookie", "an object", cookie);
  if (via === "header" && options.cookie !== undefined) throw invalidOption("token.cookie", 'unset with via: "header" (there is no cookie)', cookie);
  const httpOnly = bool("token.cookie.httpOnly", cookie.httpOnly, true);
  const sameSite = oneOf("token.cookie.sameSite", cookie.sameSite, ["lax", "strict", "none"], "lax");
  const path = attribute("token.cookie.path", cookie.path, "/");
  const domain = cookie.domain === undefined ? undefined : attribute("token.cookie.domain", cookie.domain, "");
  const secure = cookie.secure ?? "auto";
  if (secure !== true && secure !== false && secure !== "auto") throw invalidOption("token.cookie.secure", 'true, false or "auto"', secure);
  // Browsers drop a SameSite=None cookie that is not Secure: it would silently never come back.
  if (sameSite === "none" && secure !== true) throw invalidOption("token.cookie.secure", 'true with sameSite: "none" (browsers refuse SameSite=None cookies without Secure)', secure);
  const trustProxy = bool("token.cookie.trustProxy", cookie.trustProxy, false);
  const maxAge = cookie.maxAge;
  if (maxAge !== undefined && (typeof maxAge !== "number" || !Number.isInteger(maxAge) || maxAge < 0)) throw invalidOption("token.cookie.maxAge", "a non-negative integer (seconds)", maxAge);
  const attributes = [
    `; Path=${path}`,
    domain ? `; Domain=${domain}` : "",
    maxAge !== undefined ? `; Max-Age=${maxAge}` : "",
    httpOnly ? "; HttpOnly" : "",
    `; SameSite=${sameSite === "lax" ? "Lax" : sameSite === "strict" ? "Strict" : "None"}`,
  ].join("");
  return { ryw, strategy: ryw.strategy, via, name, attributes, secure, trustProxy };
}

/** Checks a cookie or header name option; `DEFAULT_TOKEN_NAME` when unset. */
export function tokenName(option: string, value: unknown): string {
  if (value === undefined) return DEFAULT_TOKEN_NAME;
  if (typeof value !== "string" || value.length > 64 || !TOKEN_CHARS.test(value)) {
    throw invalidOption(option, "a header or cookie name of at most 64 letters, digits and !#$%&'*+-.^_`|~", value);
  }
  return value;
}

function attribute(option: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || value.length === 0 || value.length > 1024 || !ATTRIBUTE_VALUE.test(value)) {
    throw invalidOption(option, "a non-empty string of at most 1024 characters without ';' or control characters", value);
  }
  return value;
}

function bool(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw invalidOption(option, "a boolean", value);
  return value;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null && typeof (value as { then?: unknown }).then === "function";
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return Array.isArray(value) ? "an array" : "an object";
  return `${typeof value} ${String(value)}`;
}
