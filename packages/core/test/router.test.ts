import { Redis } from "ioredis";
import { afterAll, describe, expect, inject, it } from "vitest";
import type { Ryw, RywEvent, RywOptions, Target } from "../src/index.js";
import { createRyw, createTokenCodec, isRywError, MemoryStore, RedisStore, runWithScope } from "../src/index.js";
import { killReplica, pauseReplay, resumeReplay, setApplyDelay, startRedis, startReplica, stopRedis, waitFor, waitForReplicas } from "../../../test/harness/index.js";
import { connect } from "./clients.js";

const cluster = inject("cluster");
const db = connect(cluster);
const opened: Ryw[] = [];
afterAll(async () => {
  await Promise.all(opened.map((r) => r.close()));
  await db.end();
});

let n = 0;
const scope = () => `user-${process.pid}-${++n}`;
/** A client of the test's own, quiet about the reconnects these tests cause on purpose. */
const redisClient = () => new Redis(cluster.redis!.url, { maxRetriesPerRequest: 1 }).on("error", () => {});

async function make(options: Partial<RywOptions> = {}): Promise<Ryw> {
  const ryw = createRyw({ ...db.options, tracker: { intervalMs: 20, maxBackoffMs: 200 }, ...options });
  opened.push(ryw);
  await ryw.ready();
  return ryw;
}

/** Writes a row in the current scope and records its position, as an ORM adapter would. */
async function write(ryw: Ryw, email = `w-${Date.now()}-${++n}@x`): Promise<number> {
  const [row] = await db.primary`insert into "User" (email) values (${email}) returning id`;
  await ryw.afterWrite();
  return row!.id as number;
}

/** Reads through the router; the server reports who it is and whether the row is there. */
async function read(ryw: Ryw, id: number) {
  return ryw.read(async (target: Target) => {
    const [row] = await db.sqlFor(target)`select inet_server_port() as port, exists(select 1 from "User" where id = ${id}) as seen`;
    return { server: db.serverName(row!.port as number), seen: row!.seen as boolean };
  });
}

describe("router on a real cluster (lsn strategy)", () => {
  it("never sends a scope that just wrote to a paused replica", async () => {
    const ryw = await make();
    await pauseReplay(cluster, 0);
    const servers = new Set<string>();
    try {
      for (let i = 0; i < 100; i++) {
        await runWithScope(scope(), async () => {
          const id = await write(ryw);
          const r = await read(ryw, id);
          expect(r.seen).toBe(true);
          expect(r.server).not.toBe("r0");
          servers.add(r.server);
        });
      }
    } finally {
      await resumeReplay(cluster, 0);
    }
    // The other replica does catch up quickly, so some reads must have stayed on replicas.
    expect(servers.has("r1")).toBe(true);
  });

  it("goes to a replica once both have caught up, and spreads reads over both", async () => {
    const ryw = await make();
    const s = scope();
    const id = await runWithScope(s, () => write(ryw));
    await waitForReplicas(cluster);
    await waitFor(() => ryw.tracker.candidates(ryw.tracker.primaryPosition).length === 2, 5000, "tracker to see both caught up");
    const servers = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const r = await runWithScope(s, () => read(ryw, id));
      expect(r.seen).toBe(true);
      servers.add(r.server);
    }
    expect([...servers].sort()).toEqual(["r0", "r1"]);
    expect(ryw.stats().routes["caught-up"]?.replica).toBe(20);
  });

  it("sends unscoped reads to replicas and counts them", async () => {
    const ryw = await make();
    const decision = await ryw.route();
    expect(decision).toMatchObject({ reason: "no-scope", target: { kind: "replica" } });
    expect(ryw.stats().reads.replica).toBe(1);
  });

  it("waits (fallback: wait) and returns as soon as a replica catches up", async () => {
    await setApplyDelay(cluster, 0, 300);
    await setApplyDelay(cluster, 1, 300);
    try {
      const ryw = await make({ fallback: "wait", maxWaitMs: 5000 });
      await runWithScope(scope(), async () => {
        const id = await write(ryw);
        const started = Date.now();
        const events: RywEvent[] = [];
        const off = ryw.subscribe((e) => events.push(e));
        const r = await read(ryw, id);
        off();
        expect(r.seen).toBe(true);
        expect(r.server).toMatch(/^r[01]$/);
        expect(events.find((e) => e.type === "route")).toMatchObject({ decision: { reason: "waited" } });
        // It returned on catch-up, not at the deadline.
        expect(Date.now() - started).toBeLessThan(5000);
      });
    } finally {
      await setApplyDelay(cluster, 0, 0);
      await setApplyDelay(cluster, 1, 0);
    }
  });

  it("falls back to the primary after maxWaitMs when nobody catches up", async () => {
    await pauseReplay(cluster, 0);
    await pauseReplay(cluster, 1);
    try {
      const ryw = await make({ fallback: "wait", maxWaitMs: 30 });
      const decision = await runWithScope(scope(), async () => {
        await write(ryw);
        return ryw.route();
      });
      expect(decision).toMatchObject({ reason: "lagging", target: { kind: "primary" } });
      const strict = await make({ fallback: "error" });
      await runWithScope(scope(), async () => {
        await write(strict);
        await expect(strict.route()).rejects.toSatisfy((e) => isRywError(e, "REPLICA_LAGGING"));
      });
    } finally {
      await resumeReplay(cluster, 0);
      await resumeReplay(cluster, 1);
    }
  });

  it("routes to the primary until the tracker has sampled a replica", async () => {
    const ryw = createRyw({ ...db.options });
    opened.push(ryw);
    const decision = await runWithScope(scope(), () => ryw.route());
    expect(decision).toMatchObject({ reason: "no-healthy-replica", target: { kind: "primary" } });
  });

  it("retries a read on the primary when its replica dies, and marks the replica down", async () => {
    // A slow poller, so that the tracker still believes in r1 when the read is sent.
    const ryw = await make({ tracker: { intervalMs: 60_000 }, choose: (c) => c.find((r) => r.name === "r1") ?? c[0]! });
    await killReplica(cluster, 1);
    try {
      const r = await runWithScope(scope(), () => read(ryw, -1));
      expect(r.server).toBe("primary");
      expect(ryw.stats().routes["replica-failed"]?.primary).toBe(1);
      expect(ryw.tracker.replicas[1]!.status).toBe("down");
    } finally {
      await startReplica(cluster, 1);
    }
  });
});

describe("store failures", () => {
  it("with Redis stopped, reads go to the primary and writes still succeed", async () => {
    const redis = redisClient();
    const ryw = await make({ store: new RedisStore({ client: redis }), storeTimeoutMs: 200, storeRetryMs: 200 });
    const s = scope();
    const events: RywEvent[] = [];
    ryw.subscribe((e) => events.push(e));
    await stopRedis(cluster);
    try {
      await runWithScope(s, async () => {
        const id = await write(ryw); // must not throw
        const r = await read(ryw, id);
        expect(r).toEqual({ server: "primary", seen: true });
      });
      const other = await runWithScope(scope(), () => ryw.route());
      expect(other).toMatchObject({ target: { kind: "primary" } });
      expect(["store-unavailable", "record-failed"]).toContain(other.reason);
      const stats = ryw.stats();
      expect(stats.recordFailures).toBeGreaterThan(0);
      expect(stats.pinnedScopes).toBe(1);
      expect(events.some((e) => e.type === "error" && e.source === "record")).toBe(true);
      // The failed scope stays on the primary in this process even for a fresh request.
      expect(await runWithScope(s, () => ryw.route())).toMatchObject({ reason: "record-failed" });
    } finally {
      await startRedis(cluster);
    }
    // Once Redis is back, the background retry records the position and unpins the scope.
    await waitFor(() => ryw.stats().pinnedScopes === 0, 10_000, "the record to be retried");
    await redis.quit();
  });

  it("after a Redis restart loses positions, no scope is sent to a replica that is behind", async () => {
    const clientA = redisClient();
    const clientB = redisClient();
    const writer = await make({ store: new RedisStore({ client: clientA }) });
    const reader = await make({ store: new RedisStore({ client: clientB }), choose: (c) => c.find((r) => r.name === "r0") ?? c[0]! });
    const s = scope();
    await pauseReplay(cluster, 0);
    await pauseReplay(cluster, 1);
    try {
      const id = await runWithScope(s, () => write(writer));
      await stopRedis(cluster);
      await startRedis(cluster);
      await waitFor(async () => (await clientB.ping()) === "PONG", 10_000, "reader's Redis client to reconnect");
      const r = await runWithScope(s, () => read(reader, id));
      expect(r).toEqual({ server: "primary", seen: true });
    } finally {
      await resumeReplay(cluster, 0);
      await resumeReplay(cluster, 1);
      await clientA.quit();
      await clientB.quit();
    }
  });
});

describe("the other strategies", () => {
  it("primary: every read on the primary", async () => {
    const ryw = await make({ strategy: "primary" });
    for (let i = 0; i < 5; i++) expect((await runWithScope(scope(), () => read(ryw, -1))).server).toBe("primary");
    expect(ryw.stats().routes["strategy-primary"]?.primary).toBe(5);
  });

  it("time-window: primary inside the window, replicas after it", async () => {
    const ryw = await make({ strategy: "time-window", windowMs: 300 });
    const s = scope();
    await runWithScope(s, () => write(ryw));
    expect(await runWithScope(s, () => ryw.route())).toMatchObject({ reason: "in-window", target: { kind: "primary" } });
    await new Promise((r) => setTimeout(r, 400));
    expect(await runWithScope(s, () => ryw.route())).toMatchObject({ reason: "no-token", target: { kind: "replica" } });
  });

  it("token: the client carries the position; forged and impossible tokens go to the primary", async () => {
    const tokenKeys = ["commit-token-secret-0123456789"];
    const ryw = await make({ strategy: "token", tokenKeys });
    await pauseReplay(cluster, 0);
    try {
      const s = scope();
      const { id, token } = await runWithScope(s, async () => ({ id: await write(ryw), token: ryw.commitToken() }));
      expect(token).toMatch(/^v1\./);
      // A new request of the same user, maybe on another server: only the token links them.
      for (let i = 0; i < 20; i++) {
        const r = await runWithScope({ scope: s, token }, () => read(ryw, id));
        expect(r.seen).toBe(true);
        expect(r.server).not.toBe("r0");
      }
      const tampered = token!.slice(0, 5) + (token![5] === "A" ? "B" : "A") + token!.slice(6);
      expect(await runWithScope({ scope: s, token: tampered }, () => ryw.route())).toMatchObject({ reason: "invalid-token", target: { kind: "primary" } });
      const ahead = createTokenCodec({ keys: tokenKeys }).encode(ryw.tracker.primaryPosition! + (1n << 40n));
      expect(await runWithScope({ scope: s, token: ahead }, () => ryw.route())).toMatchObject({ reason: "token-ahead", target: { kind: "primary" } });
    } finally {
      await resumeReplay(cluster, 0);
    }
  });
});

describe("options", () => {
  it("names the bad option", () => {
    const base = { ...db.options, store: new MemoryStore() };
    expect(() => createRyw({ ...base, strategy: "fastest" as never })).toThrow(/`strategy` must be one of "lsn", "primary", "time-window", "token", got "fastest"/);
    expect(() => createRyw({ ...base, fallback: "replica" as never })).toThrow(/`fallback` must be one of/);
    expect(() => createRyw({ ...base, ttlMs: 0 })).toThrow(/`ttlMs` must be a positive integer, got 0/);
    expect(() => createRyw({ ...base, strategy: "token" })).toThrow(/`tokenKeys` must be set when strategy is "token"/);
    expect(() => createRyw({ ...base, primary: "postgres://x" as never })).toThrow(/`primary` must be a function/);
    expect(() => createRyw({ ...base, store: {} as never })).toThrow(/`store` must be a PositionStore/);
  });

  it("recordWrite stores the timeline it is given, and names one that is not a timeline", async () => {
    const store = new MemoryStore();
    const ryw = await make({ store });
    const s = scope();
    await runWithScope(s, () => ryw.recordWrite("0/100", { timeline: 1 }));
    expect(await store.lookup(s)).toMatchObject({ position: 0x100n, timeline: 1 });
    for (const timeline of [0, -1, 1.5, "two" as never]) {
      await expect(runWithScope(s, () => ryw.recordWrite("0/200", { timeline }))).rejects.toThrow(/`timeline` must be a positive integer \(a PostgreSQL timeline id\), got/);
    }
    expect(await store.lookup(s)).toMatchObject({ position: 0x100n, timeline: 1 });
  });
});

describe("speculation", () => {
  it("starts speculative reads on a replica that keeps up, not on one that lags", async () => {
    await setApplyDelay(cluster, 0, 500);
    const ryw = await make();
    const s = scope();
    let writing = true;
    // Steady writes keep r0 half a second behind, as the tracker's lag age shows.
    const writer = (async () => {
      while (writing) {
        await db.primary`insert into "User" (email) values (${`spec-${Date.now()}-${++n}@x`})`;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      await runWithScope(s, () => write(ryw));
      await waitFor(() => (ryw.tracker.replicas[0]!.lagMs ?? 0) > 300 && ryw.tracker.replicas[1]!.lagMs! < 100, 5000, "r0 to lag and r1 to keep up");
      await new Promise((r) => setTimeout(r, 800)); // now both have replayed the scope's write
      const counts = async () => Promise.all(db.replicas.map(async (sql) => {
        const [row] = await sql`select coalesce(sum(calls), 0)::int as n from pg_stat_statements where query like '%speculation-probe%'`;
        return row!.n as number;
      }));
      await Promise.all(db.replicas.map((sql) => sql`select pg_stat_statements_reset()`));
      for (let i = 0; i < 20; i++) {
        await runWithScope(s, () => ryw.read((t) => db.sqlFor(t).unsafe("select 1 as one /* speculation-probe */")));
      }
      const [r0, r1] = await counts();
      expect(r0).toBe(0);
      expect(r1).toBe(20);
    } finally {
      writing = false;
      await writer;
      await setApplyDelay(cluster, 0, 0);
    }
  });
});

describe("a custom choose", () => {
  it("is called once per replica read, only with replicas that have replayed the read's position", async () => {
    await pauseReplay(cluster, 0);
    const offered: string[][] = [];
    const clients = [redisClient(), redisClient()] as const;
    const writer = await make({ store: new RedisStore({ client: clients[0] }) });
    const reader = await make({
      store: new RedisStore({ client: clients[1] }),
      choose: (candidates) => {
        offered.push(candidates.map((r) => r.name));
        return candidates[0]!;
      },
    });
    try {
      const s = scope();
      const id = await runWithScope(s, () => write(writer));
      const lsn = writer.tracker.primaryPosition!;
      await waitFor(() => reader.tracker.candidates(lsn).some((r) => r.name === "r1"), 5000, "r1 to pass the write");
      for (let i = 0; i < 10; i++) {
        // A new request: the position comes from the store, as on another app server.
        expect(await runWithScope(s, () => read(reader, id))).toEqual({ server: "r1", seen: true });
      }
      expect(offered).toEqual(Array.from({ length: 10 }, () => ["r1"]));
    } finally {
      await resumeReplay(cluster, 0);
      await Promise.all(clients.map((c) => c.quit()));
    }
    expect(() => createRyw({ ...db.options, choose: (c) => c[0]!, speculate: true })).toThrow(/`speculate` must be false or unset with a custom `choose` function/);
  });
});
