import type { Lsn } from "./lsn.js";
import { formatLsn } from "./lsn.js";
import type { ReplicaStatus, ReplicaTracker } from "./tracker.js";

/**
 * Why a read went where it went.
 * - `no-scope`: no scope in context, so no write to wait for: any healthy replica.
 * - `no-token`: the scope has no remembered position: any healthy replica.
 * - `caught-up`: a replica had replayed the scope's position (with `monotonic`, also the
 *   client's: the highest position it was served, a scope or not).
 * - `waited`: a replica caught up within `maxWaitMs` (fallback `wait`).
 * - `lagging`: no replica had replayed the scope's position (or, with `monotonic`, the client's): primary.
 * - `store-unavailable`: the store failed, timed out, or just reconnected: primary.
 * - `no-healthy-replica`: every replica is down, promoted or not yet sampled: primary.
 * - `record-failed`: recording one of this scope's writes failed; it stays on the primary.
 * - `invalid-token`: the commit token did not verify: primary.
 * - `token-ahead`: the token claims a position the primary is not known to have reached: primary.
 * - `in-window` / `window-passed`: time-window strategy, inside or past the window.
 * - `strategy-primary`: the `primary` strategy.
 * - `forced-primary`: `onPrimary()` / `$primary()`, or inside a transaction.
 * - `replica-failed`: the replica failed with a connection error; retried on the primary.
 * - `write-in-flight`: a write of this scope was acknowledged but its position is not in the
 *   store yet, and the primary's current position could not be read: primary.
 * - `timeline-ahead`: a write of this scope was made on a newer PostgreSQL timeline than the
 *   tracker knows (a failover), and the primary could not confirm it: primary.
 */
export type RouteReason =
  | "no-scope"
  | "no-token"
  | "caught-up"
  | "waited"
  | "lagging"
  | "store-unavailable"
  | "no-healthy-replica"
  | "record-failed"
  | "invalid-token"
  | "token-ahead"
  | "in-window"
  | "window-passed"
  | "strategy-primary"
  | "forced-primary"
  | "replica-failed"
  | "write-in-flight"
  | "timeline-ahead";

export type Target = { readonly kind: "primary" } | { readonly kind: "replica"; readonly index: number; readonly name: string };

export const PRIMARY: Target = Object.freeze({ kind: "primary" });

export interface RouteDecision {
  readonly target: Target;
  readonly reason: RouteReason;
  readonly scope: string | undefined;
  /** The position the read had to see, when one was known. */
  readonly required: Lsn | undefined;
}

export type RywEvent =
  | { type: "route"; decision: RouteDecision }
  /** `position` is the recorded value: an LSN, or the write time in ms under `time-window`. */
  | { type: "record"; scope: string; position: Lsn }
  /**
   * A committed write was acknowledged before its record reached the store (it did not land
   * within `recordTimeoutMs`). Until a later `record` event for this scope, this process reads
   * the scope from the primary, but OTHER processes may serve it stale reads. `position` is
   * `undefined` when it could not even be captured.
   */
  | { type: "unshared"; scope: string; position: Lsn | undefined; error: unknown }
  /**
   * `source: "served"` (only with `monotonic`): a read returned, but no position read after it
   * could be had (neither from its replica nor from the primary); see `RywStats.unboundedReads`.
   */
  | { type: "error"; source: "store" | "tracker" | "record" | "token" | "replica" | "capture" | "served"; error: unknown; scope?: string | undefined; replica?: string };

export type RywListener = (event: RywEvent) => void;

export interface RywStats {
  /** Reads by reason and target. */
  routes: Partial<Record<RouteReason, { primary: number; replica: number }>>;
  reads: { primary: number; replica: number };
  /** Reads that wanted a replica and ended on the primary (lagging, store, health, token...). */
  fallbacks: number;
  writesRecorded: number;
  storeErrors: number;
  trackerErrors: number;
  /** Writes whose record (or position capture) failed at least once; most land on a retry. */
  recordFailures: number;
  /**
   * Writes acknowledged before their record reached the store (`unshared` events): for those,
   * read-your-writes held in this process but was not guaranteed on other app servers until
   * their record landed.
   */
  unsharedWrites: number;
  /**
   * Acknowledged writes whose position never reached the store (a write intent stands in for it
   * until it expires): their scope's reads need a fresh primary position meanwhile. Never stale.
   */
  unresolvedIntents: number;
  /** Writes acknowledged on their intent whose position is being captured and recorded right now. */
  recordsInFlight: number;
  /**
   * With `monotonic`: reads whose served position could not be bounded, because neither their
   * replica nor the primary answered a position read sent after them (`served` error events).
   * The commit token then carries the highest primary position this process knew, which may be
   * below what such a read returned: the client's next request may, on a replica, miss rows that
   * this read showed, namely those committed after that position and before the read ran. Its
   * later reads are monotonic again from there on. Always 0 without `monotonic`.
   */
  unboundedReads: number;
  /** Scopes kept on the primary in this process because their record has not landed yet. */
  pinnedScopes: number;
  primaryPosition: string | undefined;
  replicas: Array<{ name: string; status: ReplicaStatus; position: string | undefined; lagBytes: number | undefined; lagMs: number | undefined }>;
}

const FALLBACK_REASONS = new Set<RouteReason>(["lagging", "store-unavailable", "no-healthy-replica", "record-failed", "invalid-token", "token-ahead", "replica-failed", "write-in-flight", "timeline-ahead"]);

/** Whether a read with this reason wanted a replica and ended on the primary (`stats().fallbacks`). */
export function isFallback(reason: RouteReason): boolean {
  return FALLBACK_REASONS.has(reason);
}

/** Counters behind `stats()`, plus listener fan-out. Listener errors never reach a query. */
export class Telemetry {
  readonly #listeners = new Set<RywListener>();
  readonly routes: RywStats["routes"] = {};
  readonly reads = { primary: 0, replica: 0 };
  fallbacks = 0;
  writesRecorded = 0;
  storeErrors = 0;
  trackerErrors = 0;
  recordFailures = 0;
  unsharedWrites = 0;
  unresolvedIntents = 0;
  recordsInFlight = 0;
  unboundedReads = 0;

  subscribe(listener: RywListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  route(decision: RouteDecision): void {
    const kind = decision.target.kind;
    (this.routes[decision.reason] ??= { primary: 0, replica: 0 })[kind]++;
    this.reads[kind]++;
    if (FALLBACK_REASONS.has(decision.reason)) this.fallbacks++;
    // No event object per read when nobody listens (a route event touches no counter in emit).
    if (this.#listeners.size > 0) this.emit({ type: "route", decision });
  }

  emit(event: RywEvent): void {
    if (event.type === "error") {
      if (event.source === "store") this.storeErrors++;
      else if (event.source === "tracker") this.trackerErrors++;
      else if (event.source === "record" || event.source === "capture") this.recordFailures++;
      else if (event.source === "served") this.unboundedReads++;
    } else if (event.type === "record") this.writesRecorded++;
    else if (event.type === "unshared") this.unsharedWrites++;
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A broken listener must not turn a served read into a failure.
      }
    }
  }

  snapshot(tracker: ReplicaTracker, pinnedScopes: number): RywStats {
    const hex = (lsn: Lsn | undefined) => (lsn === undefined ? undefined : formatLsn(lsn));
    return {
      routes: structuredClone(this.routes),
      reads: { ...this.reads },
      fallbacks: this.fallbacks,
      writesRecorded: this.writesRecorded,
      storeErrors: this.storeErrors,
      trackerErrors: this.trackerErrors,
      recordFailures: this.recordFailures,
      unsharedWrites: this.unsharedWrites,
      unresolvedIntents: this.unresolvedIntents,
      recordsInFlight: this.recordsInFlight,
      unboundedReads: this.unboundedReads,
      pinnedScopes,
      primaryPosition: hex(tracker.primaryPosition),
      replicas: tracker.replicas.map((r) => ({ name: r.name, status: r.status, position: hex(r.position), lagBytes: r.lagBytes, lagMs: r.lagMs })),
    };
  }
}
