import type { Lsn } from "../lsn.js";
import { RywError } from "../errors.js";

/**
 * Where each scope's latest committed position lives. Two required methods, so a store for
 * another backend is a page of code. Values are LSNs for the `lsn` strategy and write times
 * (ms since epoch) for `time-window`; a store only needs "max" semantics on bigints.
 */
export interface PositionStore {
  /** The scope's position, or `undefined` when none is stored (never written, or expired). */
  get(scope: string): Promise<Lsn | undefined>;
  /**
   * Raises the scope's position to `max(current, value)` and refreshes its TTL. Never lowers it.
   * With `intent`, also resolves that write intent, in the same atomic step. With `timeline`
   * (the PostgreSQL timeline `value` was read on), also raises the scope's timeline to
   * `max(current, timeline)`, which `lookup` returns: a reader whose tracker has not seen that
   * timeline yet knows that the primary failed over since its last poll (router.ts, Rule 3).
   * A store may ignore it; its readers then rely on their own primary polls.
   */
  advance(scope: string, value: Lsn, ttlMs: number, intent?: string, timeline?: number): Promise<void>;
  /**
   * Optional, together with `lookup` and `withdraw`: write intents. An intent says "a write of
   * this scope may have committed, and its position is not here yet", until `advance` resolves it
   * or `ttlMs` passes, measured by the store's own clock. They let a write be acknowledged as
   * soon as both the write and its intent returned, with the position recorded afterwards
   * (record.ts has the argument). Without them every write waits for its position's record.
   */
  intend?(scope: string, intent: string, ttlMs: number): Promise<void>;
  /** The scope's position, and whether an intent of it is unresolved. */
  lookup?(scope: string): Promise<ScopeState>;
  /** Drops an intent whose write did not commit. */
  withdraw?(scope: string, intent: string): Promise<void>;
  /**
   * Optional: calls `listener` whenever stored positions may have been lost (a Redis restart or
   * reconnect), so the router can stop trusting an empty answer until the replicas catch up.
   * Returns an unsubscribe function.
   */
  onReset?(listener: () => void): () => void;
  /** Optional: releases connections the store opened itself. */
  close?(): Promise<void>;
}

export interface ScopeState {
  position: Lsn | undefined;
  /** An intent of this scope is unresolved: a write may have committed past `position`. */
  pending: boolean;
  /**
   * An intent of this scope expired unresolved: a write that committed long ago (see record.ts)
   * may be past `position`. Absent means false.
   */
  expired?: boolean;
  /** The newest timeline of the positions recorded with one (see `advance`). */
  timeline?: number;
}

export function validateScope(scope: unknown): string {
  if (typeof scope !== "string" || scope.length === 0) {
    throw new RywError("INVALID_SCOPE", `A scope must be a non-empty string, got ${typeof scope === "string" ? "an empty string" : typeof scope}.`);
  }
  return scope;
}
