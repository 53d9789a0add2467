import type { Lsn } from "../lsn.js";
import { invalidOption } from "../errors.js";
import type { PositionStore, ScopeState } from "./types.js";
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
  value: Lsn | undefined;
  expiresAt: number;
  /** Unresolved write intents: id -> expiry. */
  intents?: Map<string, number>;
  /** An intent expired unresolved while this entry lived. */
  expired?: boolean;
  /** The newest timeline recorded. */
  timeline?: number;
}

/**
 * A store for one process: tests, demos, single-server apps. Positions do not follow a user to
 * another app server; use `RedisStore` for that.
 */
export class MemoryStore implements PositionStore {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  #floor: { value: Lsn | undefined; expiresAt: number; pendingUntil: number; expired: boolean; timeline: number } | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw invalidOption("maxEntries", "a positive integer", maxEntries);
    this.#maxEntries = maxEntries;
  }

  async get(scope: string): Promise<Lsn | undefined> {
    return this.#state(scope).position;
  }

  async lookup(scope: string): Promise<ScopeState> {
    return this.#state(scope);
  }

  async advance(scope: string, value: Lsn, ttlMs: number, intent?: string, timeline?: number): Promise<void> {
    validateScope(scope);
    const now = Date.now();
    const current = this.#live(scope, now);
    const keep = current?.value !== undefined && current.value > value ? current.value : value;
    const intents = current?.intents;
    if (intent !== undefined) intents?.delete(intent);
    const newest = Math.max(current?.timeline ?? 0, timeline ?? 0);
    this.#put(scope, { value: keep, expiresAt: Math.max(now + ttlMs, latest(intents)), ...(intents?.size ? { intents } : {}), ...(current?.expired ? { expired: true } : {}), ...(newest > 0 ? { timeline: newest } : {}) }, now);
  }

  async intend(scope: string, intent: string, ttlMs: number): Promise<void> {
    validateScope(scope);
    const now = Date.now();
    const current = this.#live(scope, now);
    const intents = current?.intents ?? new Map<string, number>();
    intents.set(intent, now + ttlMs);
    this.#put(scope, { value: current?.value, expiresAt: Math.max(current?.expiresAt ?? 0, now + ttlMs), intents, ...(current?.expired ? { expired: true } : {}), ...(current?.timeline ? { timeline: current.timeline } : {}) }, now);
  }

  async withdraw(scope: string, intent: string): Promise<void> {
    validateScope(scope);
    this.#entries.get(scope)?.intents?.delete(intent);
  }

  /** Number of scopes held, for tests and stats. */
  get size(): number {
    return this.#entries.size;
  }

  #state(scope: string): ScopeState {
    validateScope(scope);
    const now = Date.now();
    const entry = this.#live(scope, now);
    let position = entry?.value;
    const pending = entry?.intents !== undefined && entry.intents.size > 0;
    let expired = entry?.expired === true;
    const floor = this.#floor && this.#floor.expiresAt > now ? this.#floor : undefined;
    if (floor?.value !== undefined && (position === undefined || floor.value > position)) position = floor.value;
    // The floor's timeline is that of the newest evicted entry, like its position.
    const timeline = Math.max(entry?.timeline ?? 0, floor?.timeline ?? 0);
    const withTimeline = (state: ScopeState): ScopeState => (timeline > 0 ? { ...state, timeline } : state);
    if (floor && floor.pendingUntil > now) return withTimeline({ position, pending: true, expired });
    if (floor && (floor.expired || floor.pendingUntil > 0)) expired = true;
    return withTimeline({ position, pending, expired });
  }

  #live(scope: string, now: number): Entry | undefined {
    const entry = this.#entries.get(scope);
    if (entry && entry.expiresAt <= now) {
      this.#entries.delete(scope);
      return undefined;
    }
    if (entry?.intents) {
      for (const [id, expiresAt] of entry.intents) {
        if (expiresAt > now) continue;
        entry.intents.delete(id);
        entry.expired = true;
      }
    }
    return entry;
  }

  #put(scope: string, entry: Entry, now: number): void {
    // Delete first so that insertion order stays "least recently advanced first" for eviction.
    this.#entries.delete(scope);
    this.#entries.set(scope, entry);
    if (this.#entries.size > this.#maxEntries) this.#evictOldest(now);
  }

  #evictOldest(now: number): void {
    const [scope, entry] = this.#entries.entries().next().value as [string, Entry];
    this.#entries.delete(scope);
    if (entry.expiresAt <= now) return;
    // The floor keeps what the evicted scope promised: its position, and its unresolved intents
    // (every scope then counts as pending until they would have expired).
    const floor = this.#floor && this.#floor.expiresAt > now ? this.#floor : undefined;
    const value = floor?.value !== undefined && (entry.value === undefined || floor.value > entry.value) ? floor.value : entry.value;
    this.#floor = {
      value,
      expiresAt: Math.max(floor?.expiresAt ?? 0, entry.expiresAt),
      pendingUntil: Math.max(floor?.pendingUntil ?? 0, latest(entry.intents)),
      expired: (floor?.expired ?? false) || entry.expired === true,
      timeline: Math.max(floor?.timeline ?? 0, entry.timeline ?? 0),
    };
  }
}

function latest(intents: Map<string, number> | undefined): number {
  let at = 0;
  if (intents) for (const expiresAt of intents.values()) if (expiresAt > at) at = expiresAt;
  return at;
}
