/** Runs `fn` (which triggers a Prisma call) inside some async context. */
export type Wrap = <T>(fn: () => PromiseLike<T>) => Promise<T>;

const RAW_CALLS = new Set(["$queryRaw", "$queryRawUnsafe", "$queryRawTyped", "$executeRaw", "$executeRawUnsafe"]);
const PROMISE_METHODS = new Set(["then", "catch", "finally"]);

/**
 * A view of `client` whose calls run inside `wrap` (a scope, `onPrimary`, raw reads allowed).
 * Prisma starts a call when its promise is awaited, not when the method is called, so the
 * returned promises are wrapped lazily: awaiting one runs it inside the context, while handing it
 * to a batch `$transaction([...])` still works (everything in there runs on the primary anyway).
 */
export function bindClient<C extends object>(client: C, wrap: Wrap): C {
  return new Proxy(client, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof property !== "string") return value;
      if (RAW_CALLS.has(property) && typeof value === "function") {
        return (...args: unknown[]) => lazy(value.apply(target, args), wrap);
      }
      // `$transaction` starts as soon as it is called, so it is called inside the context.
      if (property === "$transaction" && typeof value === "function") {
        return (...args: unknown[]) => wrap(() => value.apply(target, args));
      }
      if (isDelegate(property, value)) return bindDelegate(value, wrap);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function isDelegate(property: string, value: unknown): value is Record<string, unknown> {
  return !property.startsWith("$") && !property.startsWith("_") && typeof value === "object" && value !== null && typeof (value as { findMany?: unknown }).findMany === "function";
}

function bindDelegate(delegate: Record<string, unknown>, wrap: Wrap): Record<string, unknown> {
  return new Proxy(delegate, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => lazy(value.apply(target, args), wrap);
    },
  });
}

function lazy(result: unknown, wrap: Wrap): unknown {
  if (typeof result !== "object" || result === null || typeof (result as PromiseLike<unknown>).then !== "function") return result;
  const promise = result as PromiseLike<unknown>;
  let started: Promise<unknown> | undefined;
  const start = () => (started ??= wrap(() => promise));
  return new Proxy(promise, {
    get(target, property) {
      if (typeof property === "string" && PROMISE_METHODS.has(property)) {
        return (...args: unknown[]) => (start() as unknown as Record<string, (...a: unknown[]) => unknown>)[property]!(...args);
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
