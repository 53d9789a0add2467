import { describe, expect, it } from "vitest";
import { defaultKinds } from "./chaos/faults.js";
import type { FaultKind, RedisMode } from "./chaos/faults.js";
import type { Orm } from "./chaos/protocol.js";
import { runChaos } from "./chaos/run.js";

/**
 * The multi-process read-your-writes check, short version (the long one: `pnpm bench --profiles
 * chaos-mp`). Each ORM gets its own private cluster, two app-server processes sharing one Redis,
 * and every fault kind at least once while 40 users write and read back; then the same on a
 * Redis Cluster (3 masters, 3 replicas) whose masters fail over at random, by CLUSTER FAILOVER and
 * by kill -9, also after their replica fell behind (so that acknowledged positions are lost).
 * Every run also fails PostgreSQL over at least once (a replica promoted, the primary address
 * moved, the old primary cloned back as a replica: faults.ts), with its primary stopped cleanly
 * or killed with -9.
 * The run takes what it takes on this noisy machine; nothing here asserts a duration.
 * RYW_CHAOS_MS sets the load time per run, RYW_CHAOS_SEED the seed, RYW_CHAOS_REV a git revision
 * to check instead of the working tree, RYW_CHAOS_KINDS a comma-separated subset of fault kinds,
 * RYW_CHAOS_REDIS=single|cluster only one Redis mode, RYW_CHAOS_VERBOSE=1 prints the fault log
 * as it happens.
 */
const durationMs = Number(process.env.RYW_CHAOS_MS ?? 18_000);
const seed = Number(process.env.RYW_CHAOS_SEED ?? 1);
// The load goes on until this many read-backs were checked (and every fault kind ran), so a slow
// machine takes longer rather than checking less; it gives up at maxDurationMs.
const MIN_READS = 2500;
const maxDurationMs = Math.max(60_000, 3 * durationMs);

const modes = (process.env.RYW_CHAOS_REDIS ? [process.env.RYW_CHAOS_REDIS] : ["single", "cluster"]) as RedisMode[];
const runs = modes.flatMap((redis) => (["prisma", "drizzle"] as Orm[]).map((orm) => ({ orm, redis, label: redis === "cluster" ? `${orm}, Redis Cluster` : orm })));

describe.each(runs)("chaos across app-server processes, $label", ({ orm, redis }) => {
  const wanted = process.env.RYW_CHAOS_KINDS?.split(",") as FaultKind[] | undefined;
  const kinds = wanted ? defaultKinds(redis).filter((k) => wanted.includes(k)) : defaultKinds(redis);
  it.skipIf(kinds.length === 0)("every user sees their own writes under every fault, and no operation fails but in a PostgreSQL failover's outage", { timeout: maxDurationMs + 120_000 }, async () => {
    // Legitimate operations take a few seconds at most here (the longest stall is 2 s; a Redis
    // master killed with -9 is replaced within a few seconds).
    const summary = await runChaos({ orm, redis, durationMs, minReads: MIN_READS, maxDurationMs, seed, kinds, opTimeoutMs: 10_000, rev: process.env.RYW_CHAOS_REV || undefined, log: process.env.RYW_CHAOS_VERBOSE ? console.log : undefined });
    const { staleSamples, failureSamples, faultLog, appServers, ...figures } = summary;
    console.log(JSON.stringify(figures));
    expect(summary.runErrors).toEqual([]);
    expect(kinds.filter((kind) => summary.faults[kind] === 0), "fault kinds that never ran").toEqual([]);
    expect(summary.reads).toBeGreaterThanOrEqual(MIN_READS);
    expect(summary.stale, `stale reads:\n${staleSamples.map((s) => `${s.story}\n  faults: ${s.faults.join(", ")}`).join("\n")}`).toBe(0);
    // Only a primary killed before it shipped them loses acknowledged writes.
    expect(summary.unexplainedLostWrites, "acknowledged writes lost without a failover that killed the primary").toBe(0);
    // A write fails while no primary takes writes, and so does a read that needs the primary;
    // from 1 s after the primary address moved, nothing may fail.
    expect(summary.failedOps, `failed operations:\n${failureSamples.map((f) => `${f.story}\n  faults: ${f.faults.join(", ")}`).join("\n")}`).toBe(0);
    expect(appServers.flatMap((s) => s.unhandled), "unhandled rejections in app servers").toEqual([]);
    // Reads reached replicas at all, and the servers agree: replicas ran SELECTs on Post.
    expect(summary.replicaShare).toBeGreaterThan(0);
    expect(Object.entries(summary.perServer).filter(([n]) => n !== "primary").reduce((a, [, c]) => a + c.select, 0)).toBeGreaterThan(0);
  });
});
