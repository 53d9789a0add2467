import { AsyncLocalStorage } from "node:async_hooks";
import type { Lsn } from "./lsn.js";
import { RywError } from "./errors.js";
import { validateScope } from "./store/types.js";

/** What a request has learned so far, shared by nested contexts of that request. */
export interface RequestKnowledge {
  /** Highest position written (or learned from a token) in this request; saves a store lookup. */
  position: Lsn | undefined;
  /** When this request last wrote, for the `time-window` strategy. */
  lastWriteAt: number | undefined;
  /**
   * Writes of this request acknowledged on their intent whose position is not recorded yet: its
   * reads need a fresh primary position, so starting them early on a replica would be wasted.
   */
  unresolved?: number;
  /**
   * With `monotonic`: an upper bound on the newest state any read of this request returned (a
   * position taken after each read, see the router's `#noteServed`). Only ever raised. Every
   * later read of the request, and through the commit token of its response the client's next
   * request, requires at least this position.
   */
  served?: Lsn;
  /** The decoded commit token, cached so that it is verified once per request. */
  decoded?: { lsn: Lsn; issuedAt: number } | { error: unknown };
}

export interface RywContext {
  /** Whose writes this request must see: a user, a session, a tenant. */
  readonly scope: string | undefined;
  /** A commit token the client sent back, if any. */
  readonly token: string | undefined;
  /** Set inside `onPrimary()`: every read goes to the primary. */
  readonly primary: boolean;
  readonly known: RequestKnowledge;
}

// One storage per process, whichever copy of this file made it: an app can load core twice (its
// ESM and CJS builds, or a bundled copy beside node_modules), and a scope entered through one copy
// (a middleware) must be seen by the router of the other.
const STORAGE = Symbol.for("@ryw/core/context");
const storage = ((globalThis as { [STORAGE]?: AsyncLocalStorage<RywContext> })[STORAGE] ??= new AsyncLocalStorage<RywContext>());

export interface ScopeInit {
  /** Whose writes must stay visible; `undefined` means "no guarantee needed". */
  scope?: string | undefined;
  /** The commit token the client sent (header or cookie), for the `token` strategy. */
  token?: string | undefined;
}

/** What a callback's result becomes: lazy thenables (Prisma and Drizzle queries) are awaited inside. */
export type Settled<T> = T extends PromiseLike<unknown> ? Promise<Awaited<T>> : T;

/**
 * Runs `fn` with a scope: reads inside it see every write made in that scope, in this process or
 * any other that shares the store. A string is shorthand for `{ scope }`. A thenable that `fn`
 * returns is awaited inside the scope: Prisma and Drizzle queries only start when awaited, and
 * would otherwise run without it.
 * @example app.use((req, res, next) => runWithScope({ scope: req.user?.id }, next))
 * @example const posts = await runWithScope(userId, () => db.post.findMany())
 */
export function runWithScope<T>(init: ScopeInit | string | undefined, fn: () => T): Settled<T> {
  const { scope, token } = typeof init === "string" ? { scope: init, token: undefined } : (init ?? {});
  if (scope !== undefined) validateScope(scope);
  if (token !== undefined && typeof token !== "string") throw new RywError("INVALID_TOKEN", "runWithScope: `token` must be a string.");
  return storage.run({ scope, token: token || undefined, primary: false, known: { position: undefined, lastWriteAt: undefined } }, () => settleInside(fn));
}

/** Runs `fn` with every read sent to the primary. Writes inside still count for the request. */
export function onPrimary<T>(fn: () => T): Settled<T> {
  const current = storage.getStore();
  const known = current?.known ?? { position: undefined, lastWriteAt: undefined };
  return storage.run({ scope: current?.scope, token: current?.token, primary: true, known }, () => settleInside(fn));
}

function settleInside<T>(fn: () => T): Settled<T> {
  const result = fn();
  if (!isThenable(result)) return result as Settled<T>;
  // `then` is called here, inside the context, so a lazy query starts with it. One promise, not
  // an async wrapper: every promise pays Node's async hooks while a context is active.
  return new Promise((resolve, reject) => {
    result.then(resolve, reject);
  }) as Settled<T>;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null && typeof (value as { then?: unknown }).then === "function";
}

/** The current request's context, if any. */
export function currentContext(): RywContext | undefined {
  return storage.getStore();
}

/** The current scope, if any. */
export function getScope(): string | undefined {
  return storage.getStore()?.scope;
}
