import { AsyncLocalStorage } from "node:async_hooks";

// `$replica()` lets raw queries through the router; everything else about a call stays as is.
const rawReads = new AsyncLocalStorage<boolean>();

export function withRawReads<T>(fn: () => T): T {
  return rawReads.run(true, fn);
}

export function rawReadsAllowed(): boolean {
  return rawReads.getStore() === true;
}
