import type { Lsn } from "./lsn.js";

/**
 * Primary positions with the time the read that returned them was sent, for an upper bound on a
 * replica's replay lag.
 *
 * Why the send time: a read of `pg_current_wal_insert_lsn()` sent at `t` returns a position at
 * least as high as that of every commit acknowledged before `t`. So a replica that has replayed
 * that position holds every write acknowledged before `t`, and the writes it may still miss all
 * committed after `t`: its lag is at most `now - t`. The time the answer arrived would understate
 * it. Positions learnt without a send time (for example captured after a write) are not kept here.
 *
 * Memory is bounded: equal positions share one entry (the newest time wins, which is the tighter
 * bound), and beyond `limit` entries the oldest go. A replica behind every kept entry then has an
 * unknown lag, which callers treat as "too far behind".
 */
export class PrimaryHistory {
  readonly #limit: number;
  readonly #lsns: Lsn[] = [];
  readonly #sentAt: number[] = [];

  constructor(limit = 4096) {
    this.#limit = limit;
  }

  get size(): number {
    return this.#lsns.length;
  }

  /** `lsn` was the primary's position when a read sent at `sentAt` ran. */
  add(lsn: Lsn, sentAt: number): void {
    const last = this.#lsns.length - 1;
    if (last >= 0) {
      // Out-of-order answers (a slow read overtaken by a newer one) must not shrink the bound.
      if (lsn < this.#lsns[last]! || sentAt < this.#sentAt[last]!) return;
      if (lsn === this.#lsns[last]) {
        this.#sentAt[last] = sentAt;
        return;
      }
    }
    this.#lsns.push(lsn);
    this.#sentAt.push(sentAt);
    if (this.#lsns.length > this.#limit) {
      this.#lsns.shift();
      this.#sentAt.shift();
    }
  }

  /**
   * An upper bound, in ms, on how long ago the oldest write that a replica at `position` may not
   * have replayed was committed; `undefined` when the history does not reach back that far.
   */
  lagMs(position: Lsn, now = Date.now()): number | undefined {
    // The newest entry at or below `position`: binary search, entries ascend in both fields.
    let lo = 0;
    let hi = this.#lsns.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.#lsns[mid]! <= position) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? undefined : Math.max(0, now - this.#sentAt[found]!);
  }
}
