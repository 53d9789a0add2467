import { afterAll, describe, expect, inject, it } from "vitest";
import { runWithScope } from "../src/index.js";
import type { FaultProxy } from "../../../test/harness/index.js";
import { startProxy, startRedis, stopRedis, waitFor } from "../../../test/harness/index.js";
import { appServers } from "./clients.js";

// Two routers stand for two app servers: their own tracker and Redis client, one shared Redis.
// The fault proxy slows or stalls the Redis of one of them only, as a congested link would.

const cluster = inject("cluster");
const { redis, server, scope, write, read, withReplicasPaused, track, close } = appServers(cluster, "record");
afterAll(() => close());

async function proxy(): Promise<FaultProxy> {
  return track(await startProxy({ port: cluster.redis!.port }));
}

describe("records across app servers", () => {
  it("a Redis slower than storeTimeoutMs: lookups give up, records wait, and the other server sees the write", async () => {
    const slow = await proxy();
    const a = await server({ client: redis(slow.url("redis")), storeTimeoutMs: 100, storeRetryMs: 250 });
    const b = await server();
    await withReplicasPaused(async () => {
      slow.setLatency(250);
      for (let i = 0; i < 5; i++) {
        const s = scope();
        // A lookup times out first, so A skips lookups for storeRetryMs: the write lands in that window.
        expect(await runWithScope(s, () => a.route())).toMatchObject({ reason: "store-unavailable" });
        const id = await runWithScope(s, () => write(a));
        expect(a.events.some((e) => e.type === "record" && e.scope === s)).toBe(true);
        expect(await runWithScope(s, () => read(b, id))).toEqual({ target: "primary", seen: true });
      }
      slow.setLatency(0);
    });
    expect(a.stats().unsharedWrites).toBe(0);
  });

  it("past recordTimeoutMs the write resolves, says its record is unshared, and shares it once Redis answers", async () => {
    const stalled = await proxy();
    const a = await server({ client: redis(stalled.url("redis")), recordTimeoutMs: 300 });
    const b = await server();
    await withReplicasPaused(async () => {
      const s = scope();
      stalled.stall();
      let id: number;
      try {
        id = await runWithScope(s, () => write(a)); // resolves although Redis never answered
        expect(a.events.filter((e) => e.type === "unshared").map((e) => e.type === "unshared" && e.scope)).toEqual([s]);
        expect(a.stats()).toMatchObject({ unsharedWrites: 1, pinnedScopes: 1 });
        // This process keeps the scope on the primary meanwhile.
        expect(await runWithScope(s, () => read(a, id))).toEqual({ target: "primary", seen: true });
      } finally {
        stalled.unstall();
      }
      await waitFor(() => a.stats().pinnedScopes === 0, 10_000, "the record to land after the stall");
      expect(a.events.some((e) => e.type === "record" && e.scope === s)).toBe(true);
      expect(await runWithScope(s, () => read(b, id))).toEqual({ target: "primary", seen: true });
    });
  });

  it("a Redis restart of about a second: writes meanwhile wait for it, then every server sees them", async () => {
    const a = await server();
    const b = await server();
    await withReplicasPaused(async () => {
      const s = scope();
      await stopRedis(cluster);
      const restart = (async () => {
        await new Promise((r) => setTimeout(r, 1000));
        await startRedis(cluster);
      })();
      let id: number;
      try {
        id = await runWithScope(s, () => write(a));
      } finally {
        await restart;
      }
      expect(a.stats().unsharedWrites).toBe(0);
      expect(a.events.some((e) => e.type === "record" && e.scope === s)).toBe(true);
      await waitFor(async () => (await runWithScope(scope(), () => b.route())).reason !== "store-unavailable", 10_000, "B to trust its store again");
      expect(await runWithScope(s, () => read(b, id))).toEqual({ target: "primary", seen: true });
    });
  });

  it("a lookup in flight across a Redis restart is not trusted, even if the new Redis answers it", async () => {
    const link = await proxy();
    const a = await server();
    // Lookups may take long here: the answer, not a timeout, must decide.
    const b = await server({ client: redis(link.url("redis")), storeTimeoutMs: 20_000, speculate: false });
    await withReplicasPaused(async () => {
      const s = scope();
      const id = await runWithScope(s, () => write(a));
      link.stall();
      const pending = runWithScope(s, () => read(b, id)); // its GET waits in the stalled link
      await new Promise((r) => setTimeout(r, 50));
      await stopRedis(cluster); // every position is gone
      await startRedis(cluster);
      link.unstall(); // B reconnects and sends its GET again, to an empty Redis
      expect(await pending).toEqual({ target: "primary", seen: true });
    });
  });
});
