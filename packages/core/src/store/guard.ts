import type { Lsn } from "../lsn.js";
import { RywError } from "../errors.js";
import { withTimeout } from "../timers.js";
import type { PositionStore } from "./types.js";

/**
 * Bounds every store call by a timeout, and after a failure skips lookups for `retryMs` (reads
 * then go straight to the primary) instead of making every read wait out a timeout. The skip
 * protects read latency only: a record always tries the store, because a skipped record is a
 * write that other app servers cannot know about.
 */
export class GuardedStore {
  readonly store: PositionStore;
  readonly #timeoutMs: number;
  readonly #retryMs: number;
  #openUntil = 0;

  constructor(store: PositionStore, timeoutMs: number, retryMs: number) {
    this.store = store;
    this.#timeoutMs = timeoutMs;
    this.#retryMs = retryMs;
  }

  /** False while the store is being skipped after a failure. */
  get available(): boolean {
    return Date.now() >= this.#openUntil;
  }

  get(scope: string): Promise<Lsn | undefined> {
    return this.#call(() => this.store.get(scope), "get");
  }

  /** Never skipped. `timeoutMs` bounds this call alone. @default the store timeout */
  advance(scope: string, value: Lsn, ttlMs: number, timeoutMs = this.#timeoutMs): Promise<void> {
    return this.#call(() => this.store.advance(scope, value, ttlMs), "advance", timeoutMs);
  }

  #call<T>(fn: () => Promise<T>, what: "get" | "advance", timeoutMs = this.#timeoutMs): Promise<T> {
    if (what === "get" && !this.available) return Promise.reject(new RywError("STORE_UNAVAILABLE", `Store skipped for ${this.#retryMs} ms after a failure.`));
    let call: Promise<T>;
    try {
      call = fn();
    } catch (error) {
      call = Promise.reject(error);
    }
    return withTimeout(call, timeoutMs, `store ${what}`, (m) => new RywError("STORE_TIMEOUT", m)).catch((error: unknown) => {
      this.#openUntil = Date.now() + this.#retryMs;
      throw error;
    });
  }
}
