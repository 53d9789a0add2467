import { describe, expect, it } from "vitest";
import { PrimaryHistory } from "../src/lag.js";

describe("PrimaryHistory: an upper bound on replay lag", () => {
  it("bounds the lag by the send time of the newest position the replica has reached", () => {
    const h = new PrimaryHistory();
    h.add(100n, 1000);
    h.add(200n, 1100);
    h.add(300n, 1200);
    // At 150 the replica has everything up to 100, sent at 1000: what it misses came after 1000.
    expect(h.lagMs(150n, 1500)).toBe(500);
    expect(h.lagMs(200n, 1500)).toBe(400);
    expect(h.lagMs(300n, 1500)).toBe(300);
    expect(h.lagMs(10_000n, 1500)).toBe(300);
  });

  it("does not know the lag of a replica behind every kept entry", () => {
    const h = new PrimaryHistory();
    h.add(100n, 1000);
    expect(h.lagMs(99n, 5000)).toBeUndefined();
    expect(new PrimaryHistory().lagMs(1n, 0)).toBeUndefined();
  });

  it("keeps the newest send time for a position that did not move", () => {
    const h = new PrimaryHistory();
    h.add(100n, 1000);
    h.add(100n, 1100);
    h.add(100n, 1200);
    expect(h.size).toBe(1);
    expect(h.lagMs(100n, 1250)).toBe(50);
  });

  it("ignores answers that arrive out of order", () => {
    const h = new PrimaryHistory();
    h.add(200n, 1100);
    h.add(150n, 1000); // sent earlier, answered later
    h.add(300n, 1050); // a higher position with an older send time would claim too much
    expect(h.size).toBe(1);
    expect(h.lagMs(250n, 2000)).toBe(900);
  });

  it("drops the oldest entries beyond its limit, which makes old lags unknown rather than small", () => {
    const h = new PrimaryHistory(3);
    for (let i = 1; i <= 5; i++) h.add(BigInt(i * 100), i * 1000);
    expect(h.size).toBe(3);
    expect(h.lagMs(250n, 6000)).toBeUndefined();
    expect(h.lagMs(300n, 6000)).toBe(3000);
  });

  it("is never below the true lag (property, seeded)", () => {
    // A model primary commits at random times; the history sees polls sent at random times.
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let run = 0; run < 50; run++) {
      const commits: Array<{ at: number; lsn: bigint }> = [];
      const h = new PrimaryHistory();
      let lsn = 0n;
      let t = 0;
      for (let i = 0; i < 200; i++) {
        t += Math.floor(rand() * 20);
        if (rand() < 0.6) commits.push({ at: t, lsn: (lsn += BigInt(1 + Math.floor(rand() * 50))) });
        // A poll sent at t sees every commit acknowledged before t (and maybe some after).
        else h.add(lsn + (rand() < 0.3 ? 1n : 0n), t);
      }
      const now = t + 1;
      for (const c of commits) {
        const replayed = c.lsn - 1n; // the replica misses exactly this commit
        const bound = h.lagMs(replayed, now);
        if (bound !== undefined) expect(bound).toBeGreaterThanOrEqual(now - c.at);
      }
    }
  });
});
