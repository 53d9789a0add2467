import { afterAll, describe, expect, inject, it } from "vitest";
import { capturePosition, ReplicaTracker } from "../src/index.js";
import { killReplica, pauseReplay, promoteReplica, resumeReplay, setApplyDelay, startCluster, startReplica, stopCluster, waitFor } from "../../../test/harness/index.js";
import { connect } from "./clients.js";

const cluster = inject("cluster");
const db = connect(cluster);
afterAll(() => db.end());

function tracker(overrides: Partial<ConstructorParameters<typeof ReplicaTracker>[0]> = {}) {
  return new ReplicaTracker({ ...db.options, intervalMs: 20, maxBackoffMs: 200, ...overrides });
}

describe("ReplicaTracker on a real cluster", () => {
  it("sees a paused replica fall behind and catch up after resume", async () => {
    const t = tracker();
    await t.ready();
    await pauseReplay(cluster, 0);
    try {
      await db.primary`insert into "User" (email) values (${`tracker-${Date.now()}@x`})`;
      const lsn = await capturePosition(db.options.primary);
      await waitFor(() => t.candidates(lsn).some((r) => r.name === "r1"), 5000, "r1 to pass the write");
      const [r0] = t.replicas;
      expect(r0!.status).toBe("up");
      expect(r0!.position! < lsn).toBe(true);
      expect(t.candidates(lsn).map((r) => r.name)).toEqual(["r1"]);
      await waitFor(() => (t.replicas[0]!.lagBytes ?? 0) > 0 && (t.replicas[0]!.lagMs ?? 0) > 0, 5000, "r0 lag to show");
      await resumeReplay(cluster, 0);
      await waitFor(() => t.candidates(lsn).length === 2, 5000, "r0 to catch up");
      expect(t.replicas[0]!.lagBytes).toBeGreaterThanOrEqual(0);
    } finally {
      await resumeReplay(cluster, 0);
      t.close();
    }
  });

  it("marks a killed replica down and readmits it after restart", async () => {
    const t = tracker();
    await t.ready();
    expect(t.replicas.map((r) => r.status)).toEqual(["up", "up"]);
    await killReplica(cluster, 1);
    try {
      await waitFor(() => t.replicas[1]!.status === "down", 5000, "r1 down");
      expect(t.replicas[1]!.position).toBeUndefined();
      expect(t.candidates(undefined).map((r) => r.name)).toEqual(["r0"]);
    } finally {
      await startReplica(cluster, 1);
    }
    await waitFor(() => t.replicas[1]!.status === "up", 10_000, "r1 back up");
    expect(t.candidates(undefined)).toHaveLength(2);
    t.close();
  });

  it("treats a replica it has not sampled yet as behind", () => {
    const t = tracker();
    expect(t.replicas.map((r) => r.status)).toEqual(["unknown", "unknown"]);
    expect(t.candidates(undefined)).toEqual([]);
    expect(t.anyHealthy).toBe(false);
    t.close();
  });

  it("keeps the sampled position a safe lower bound for queries started after it", async () => {
    // A slow replica under a steady stream of writes: whatever the tracker says it replayed,
    // a query started afterwards must see every write at or below that position.
    await setApplyDelay(cluster, 0, 50);
    const t = tracker({ intervalMs: 5 });
    await t.ready();
    const written: Array<{ id: number; lsn: bigint }> = [];
    let checks = 0;
    let misses = 0;
    try {
      const writer = (async () => {
        for (let i = 0; i < 150; i++) {
          const [row] = await db.primary`insert into "User" (email) values (${`bound-${Date.now()}-${i}@x`}) returning id`;
          written.push({ id: row!.id as number, lsn: await capturePosition(db.options.primary) });
        }
      })();
      const reader = (async () => {
        while (written.length < 150) {
          const position = t.replicas[0]!.position;
          if (position === undefined) {
            await new Promise((r) => setTimeout(r, 2));
            continue;
          }
          const covered = written.filter((w) => w.lsn <= position);
          const [row] = await db.replicas[0]!`select coalesce(max(id), 0) as max from "User"`;
          const maxId = Number(row!.max);
          checks++;
          if (covered.some((w) => w.id > maxId)) misses++;
        }
      })();
      await Promise.all([writer, reader]);
    } finally {
      await setApplyDelay(cluster, 0, 0);
      t.close();
    }
    expect(checks).toBeGreaterThan(20);
    expect(misses).toBe(0);
  });

  it("excludes a promoted replica", async () => {
    // Promotion is one-way, so it gets a cluster of its own.
    const own = await startCluster({ replicas: 1, redis: false });
    const c = connect(own);
    try {
      const t = new ReplicaTracker({ ...c.options, intervalMs: 20 });
      await t.ready();
      expect(t.replicas[0]!.status).toBe("up");
      await promoteReplica(own, 0);
      await waitFor(() => t.replicas[0]!.status === "promoted", 10_000, "promotion to be seen");
      expect(t.candidates(undefined)).toEqual([]);
      t.close();
    } finally {
      await c.end();
      await stopCluster(own);
    }
  });

  it("names bad options", () => {
    expect(() => new ReplicaTracker({ replicas: [{ query: 5 as never }] })).toThrow(/`replicas\[0\]\.query` must be a function/);
    expect(() => new ReplicaTracker({ replicas: [], intervalMs: -1 })).toThrow(/`intervalMs` must be a positive integer, got -1/);
  });
});
