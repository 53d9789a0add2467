import type { Lsn } from "../lsn.js";
import { RywError } from "../errors.js";
import { withTimeout } from "../timers.js";
import type { PositionStore, ScopeState } from "./types.js";

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

  /** True when the store keeps write intents (`intend`, `lookup`, `withdraw`). */
  get intents(): boolean {
    const s = this.store;
    return typeof s.intend === "function" && typeof s.lookup === "function" && typeof s.withdraw === "function";
  }

  get(scope: string): Promise<Lsn | undefined> {
    return this.#call(() => this.store.get(scope), "get");
  }

  /** Skipped like `get`. A store without intents never has one pending. */
  lookup(scope: string): Promise<ScopeState> {
    if (!this.intents) return this.get(scope).then((position) => ({ position, pending: false }));
    return this.#call(() => this.store.lookup!(scope), "get");
  }

  /** Never skipped. `timeoutMs` bounds this call alone. @default the store timeout */
  advance(scope: string, value: Lsn, ttlMs: number, timeoutMs = this.#timeoutMs, intent?: string, timeline?: number): Promise<void> {
    return this.#call(() => this.store.advance(scope, value, ttlMs, intent, timeline), "advance", timeoutMs);
  }

  /** Never skipped: a write waits for it (or for its record, when it fails). */
  intend(scope: string, intent: string, ttlMs: number): Promise<void> {
    return this.#call(() => this.store.intend!(scope, intent, ttlMs), "intend");
  }

  withdraw(scope: string, intent: string): Promise<void> {
    return this.#call(() => this.store.withdraw!(scope, intent), "withdraw");
  }

  #call<T>(fn: () => Promise<T>, what: "get" | "advance" | "intend" | "withdraw", timeoutMs = this.#timeoutMs): Promise<T> {
    if (what === "get" && !this.available) return Promise.reject(new RywError("STORE_UNAVAILABLE", `Store skipped for ${this.#retryMs} ms after a failure.`));
    let call: Promise<T>;
    try {
      call = fn();
    } catch (error) {
      call = Promise.reject(error);
    }
    // The skip window opens inside withTimeout rather than in a `.catch` on top: one promise less
    // on every read. Once per call: a late rejection after the timeout does not extend it.
    return withTimeout(call, timeoutMs, `store ${what}`, (m) => new RywError("STORE_TIMEOUT", m), () => {
      this.#openUntil = Date.now() + this.#retryMs;
    });
  }
}
