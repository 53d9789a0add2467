import type { Lsn } from "./lsn.js";
import type { GuardedStore } from "./store/guard.js";
import type { Pins } from "./pins.js";
import { sleep } from "./timers.js";

export interface RecorderOptions {
  store: GuardedStore;
  pins: Pins;
  /** Reads the primary's current position; any position read after a commit is at or past it. */
  capture: () => Promise<Lsn>;
  recordTimeoutMs: number;
  onRecorded: (scope: string, value: Lsn) => void;
  onError: (error: unknown, scope: string, source: "record" | "capture") => void;
  /** The record missed its deadline: the write is acknowledged, but other processes cannot know it yet. */
  onUnshared: (scope: string, value: Lsn | undefined, error: unknown) => void;
}

const FIRST_BACKOFF_MS = 5;
const MAX_BACKOFF_MS = 100;

/**
 * The write side of the protocol: a committed write is acknowledged only once its position is in
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

  /** Records `value` (or, when `undefined`, a position captured now) for `scope`. Never rejects. */
  async record(scope: string, value: Lsn | undefined, ttlMs: number): Promise<void> {
    const o = this.#o;
    const deadline = Date.now() + o.recordTimeoutMs;
    let backoff = FIRST_BACKOFF_MS;
    let lastError: unknown;
    let reported = false;
    for (;;) {
      const step = value === undefined ? "capture" : "record";
      try {
        value ??= await o.capture();
        await o.store.advance(scope, value, ttlMs, Math.max(1, deadline - Date.now()));
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
    o.pins.add(scope, value, ttlMs);
    o.onUnshared(scope, value, lastError);
  }
}
