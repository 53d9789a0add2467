import type { Lsn } from "./lsn.js";
import type { GuardedStore } from "./store/guard.js";
import type { Pins } from "./pins.js";
import { sleep, withTimeout } from "./timers.js";

export interface RecorderOptions {
  store: GuardedStore;
  pins: Pins;
  /** Reads the primary's current position; any position read after a commit is at or past it. */
  capture: () => Promise<Lsn>;
  /** The timeline a recorded position was read on, when known: stored with it (router.ts, Rule 3). */
  timelineOf: (value: Lsn) => number | undefined;
  recordTimeoutMs: number;
  onRecorded: (scope: string, value: Lsn) => void;
  onError: (error: unknown, scope: string, source: "record" | "capture") => void;
  /** The record missed its deadline: the write is acknowledged, but other processes cannot know it yet. */
  onUnshared: (scope: string, value: Lsn | undefined, error: unknown) => void;
  /** An acknowledged write's intent could not be resolved: its scope costs primary reads until it expires. */
  onUnresolved: (scope: string, value: Lsn | undefined, error: unknown) => void;
}

const FIRST_BACKOFF_MS = 5;
const MAX_BACKOFF_MS = 100;

/**
 * Write intents: how a write is acknowledged after ONE overlapped store round trip (the router's
 * `beginWrite`), instead of waiting for its position capture and record in sequence.
 *
 * Protocol. Before the write's SQL is sent, the writer sends `intend(scope, id)`: the store marks
 * "a write of this scope may commit, position unknown", expiring `ttlMs` later by the store's own
 * clock. The write is acknowledged once the SQL committed AND the intent was applied. Then, off
 * the critical path, the position is captured after the commit and `advance(scope, position,
 * id)` raises the scope's position and removes the intent in one atomic step. A reader starts at
 * time T, then looks the scope up, getting its position and whether an intent is pending:
 * - pending: the reader takes a primary position from a read SENT after T
 *   (`tracker.primarySince(T)`) and requires it. Every write acknowledged before T committed
 *   before T, so that position is at or past each of their commits. Meanwhile it may look the
 *   scope up again (a record usually lands a round trip or two after its acknowledgement); a
 *   lookup sent later is also one that started after T, so the cases here apply to it as well,
 *   and one that finds nothing pending gives the (lower, easier to reach) stored position.
 * - not pending, none expired: every write acknowledged before T had its intent applied before T;
 *   at lookup time that intent is neither there nor expired, so `advance` removed it, and in the
 *   same step raised the position to one captured after that write's commit. The stored position
 *   covers it, exactly as for a write recorded before its acknowledgement (below).
 * - an intent expired unresolved (the writer died, or its record kept failing): its write was
 *   acknowledged at most `ttlMs/4` after its intent was sent (a slower write falls back to the
 *   sequential record below, its intent left to be resolved by that record), so it committed at
 *   least `3/4 ttlMs` before any lookup that sees the intent expired. The reader then also asks
 *   for a replica whose lag is known to be under `ttlMs/2`, the same bound as for a scope whose
 *   key expired (see the router's `#eligible`), which has replayed that commit. The store keeps
 *   the "expired unresolved" mark as long as the scope's key lives.
 * A record also carries the timeline its position was read on (when known), and the store keeps
 * the scope's newest one: a reader whose tracker has not seen that timeline (a failover since its
 * last primary poll) first polls the primary (the router's Rule 3). In the pending case the
 * fresh primary read does the same. So a reader never judges a write of the new timeline by
 * replicas of the old one, which may have replayed WAL the new primary never had.
 * A store reset (positions and intents lost) is covered by the router's floor, as before. A
 * failed or slow `intend` falls back to the sequential record below, so a write is never
 * acknowledged on an intent that the store did not confirm. An intent whose write did not commit
 * is withdrawn, or expires; either way it can only send reads to the primary, never make one stale.
 *
 * The sequential record: a committed write is acknowledged only once its position is in
 * the shared store, within `recordTimeoutMs`.
 *
 * Why this gives read-your-writes across app servers: another process learns of the write only
 * through the store. The write's caller sees it acknowledged only after the store answered the
 * raise (`advance`), and a store that answered has applied it, so every lookup that starts after
 * the acknowledgement (the user's next read, on any server) returns this position or a higher one,
 * unless the store lost it, which the store's reset signal covers (see the router's floor).
 * A lookup that times out sends the read to the primary. So a read never finds an older position
 * for a write acknowledged before it began, as long as the record landed within the deadline.
 *
 * Past the deadline the write still resolves (bookkeeping never fails a committed write): the
 * scope is pinned to the primary in this process, the record goes on in the background, and
 * `onUnshared` reports that until it lands, other processes may serve that scope stale reads.
 * Each attempt waits for the store's answer up to the deadline rather than the store timeout: a
 * slow answer still lands, and a retry after a timeout would only queue behind it.
 */
export class Recorder {
  readonly #o: RecorderOptions;

  constructor(options: RecorderOptions) {
    this.#o = options;
  }

  /**
   * Records `value` (or, when `undefined`, a position captured now) for `scope`, resolving
   * `intent` with it when given. Never rejects. Past the deadline, a `resolving` record (its
   * write already acknowledged under an intent) reports `onUnresolved` instead of pinning.
   */
  async record(scope: string, value: Lsn | undefined, ttlMs: number, intent?: { id: string; resolving: boolean }): Promise<void> {
    const o = this.#o;
    const deadline = Date.now() + o.recordTimeoutMs;
    let backoff = FIRST_BACKOFF_MS;
    let lastError: unknown;
    let reported = false;
    for (;;) {
      const step = value === undefined ? "capture" : "record";
      try {
        value ??= await withTimeout(o.capture(), Math.max(1, deadline - Date.now()), "position capture");
        await o.store.advance(scope, value, ttlMs, Math.max(1, deadline - Date.now()), intent?.id, o.timelineOf(value));
        o.onRecorded(scope, value);
        return;
      } catch (error) {
        lastError = error;
        // One report per write, not per attempt: an outage would otherwise flood listeners.
        if (!reported) o.onError(error, scope, step);
        reported = true;
      }
      if (deadline - Date.now() <= backoff) break;
      await sleep(backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
    if (intent?.resolving) return o.onUnresolved(scope, value, lastError);
    o.pins.add(scope, value, ttlMs);
    o.onUnshared(scope, value, lastError);
  }
}
