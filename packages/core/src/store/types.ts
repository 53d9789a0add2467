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
  /** Raises the scope's position to `max(current, value)` and refreshes its TTL. Never lowers it. */
  advance(scope: string, value: Lsn, ttlMs: number): Promise<void>;
  /**
   * Optional: calls `listener` whenever stored positions may have been lost (a Redis restart or
   * reconnect), so the router can stop trusting an empty answer until the replicas catch up.
   * Returns an unsubscribe function.
   */
  onReset?(listener: () => void): () => void;
  /** Optional: releases connections the store opened itself. */
  close?(): Promise<void>;
}

export function validateScope(scope: unknown): string {
  if (typeof scope !== "string" || scope.length === 0) {
    throw new RywError("INVALID_SCOPE", `A scope must be a non-empty string, got ${typeof scope === "string" ? "an empty string" : typeof scope}.`);
  }
  return scope;
}
