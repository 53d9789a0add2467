import type { Lsn } from "../lsn.js";
import { invalidOption } from "../errors.js";
import type { PositionStore } from "./types.js";
import { validateScope } from "./types.js";

export interface MemoryStoreOptions {
  /**
   * Most scopes kept at once. When full, the least recently advanced scope is evicted and its
   * position is folded into a store-wide floor, so eviction costs replica share, never correctness.
   * @default 10000
   */
  maxEntries?: number;
}

interface Entry {
  value: Lsn;
  expiresAt: number;
}

/**
 * A store for one process: tests, demos, single-server apps. Positions do not follow a user to
 * another app server; use `RedisStore` for that.
 */
export class MemoryStore implements PositionStore {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  #floor: Entry | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw invalidOption("maxEntries", "a positive integer", maxEntries);
    this.#maxEntries = maxEntries;
  }

  async get(scope: string): Promise<Lsn | undefined> {
    validateScope(scope);
    const now = Date.now();
    const entry = this.#entries.get(scope);
    let value: Lsn | undefined;
    if (entry && entry.expiresAt > now) value = entry.value;
    else if (entry) this.#entries.delete(scope);
    if (this.#floor && this.#floor.expiresAt > now && (value === undefined || this.#floor.value > value)) value = this.#floor.value;
    return value;
  }

  async advance(scope: string, value: Lsn, ttlMs: number): Promise<void> {
    validateScope(scope);
    const now = Date.now();
    const current = this.#entries.get(scope);
    const keep = current && current.expiresAt > now && current.value > value ? current.value : value;
    // Delete first so that insertion order stays "least recently advanced first" for eviction.
    this.#entries.delete(scope);
    this.#entries.set(scope, { value: keep, expiresAt: now + ttlMs });
    if (this.#entries.size > this.#maxEntries) this.#evictOldest(now);
  }

  /** Number of scopes held, for tests and stats. */
  get size(): number {
    return this.#entries.size;
  }

  #evictOldest(now: number): void {
    const [scope, entry] = this.#entries.entries().next().value as [string, Entry];
    this.#entries.delete(scope);
    if (entry.expiresAt <= now) return;
    const floor = this.#floor && this.#floor.expiresAt > now ? this.#floor : undefined;
    this.#floor = {
      value: floor && floor.value > entry.value ? floor.value : entry.value,
      expiresAt: Math.max(floor?.expiresAt ?? 0, entry.expiresAt),
    };
  }
}
