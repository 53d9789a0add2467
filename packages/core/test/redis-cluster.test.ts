import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RywOptions } from "../src/index.js";
import { RedisStore, runWithScope } from "../src/index.js";
import { redisKey } from "../src/store/redis.js";
import type { HeldReplica, RedisClusterInfo, RedisClusterNode } from "../../../test/harness/index.js";
import { downNodes, failoverMaster, holdReplica, killMaster, nodeUrl, restartRedisNode, startRedisCluster, startupNodes, stopRedisCluster, waitForRedisCluster } from "../../../test/harness/index.js";
import { appServers } from "./clients.js";

// Two routers stand for two app servers sharing a real Redis Cluster (3 masters, 3 replicas):
// A writes, B reads back, and a master fails over in between. Both PostgreSQL replicas stop
// replaying first, so a read that trusts a position the failover lost is visibly stale.

const cluster = inject("cluster");
const app = appServers(cluster, "rc");
const { scope, write, read, withReplicasPaused, track } = app;
let redis: RedisClusterInfo;
beforeAll(async () => {
  redis = await startRedisCluster();
}, 120_000);
afterAll(async () => {
  // Bounded: a close that hangs must not keep the servers alive.
  const bounded = (p: Promise<unknown>) => Promise.race([p.catch(() => {}), new Promise((r) => setTimeout(r, 5000).unref())]);
  try {
    await app.close(bounded);
  } finally {
    if (redis) await stopRedisCluster(redis);
  }
}, 120_000);

const PREFIX = "ryw-rc:";

function clusterClient(options: ConstructorParameters<typeof Cluster>[1] = {}): Cluster {
  const client = new Cluster(startupNodes(redis), options);
  client.on("error", () => {});
  track({ close: async () => client.disconnect() });
  return client;
}

/** A store that counts its resets and notes when each came, next to when its answers came. */
function store(options: { own?: boolean; client?: Cluster } = {}) {
  const s = track(options.own ? new RedisStore({ nodes: startupNodes(redis), prefix: PREFIX }) : new RedisStore({ client: options.client ?? clusterClient(), prefix: PREFIX }));
  const log: string[] = [];
  s.onReset(() => log.push("reset"));
  return Object.assign(s, { log, resets: () => log.filter((e) => e === "reset").length });
}

async function server(s: RedisStore, options: Partial<RywOptions> = {}) {
  const ryw = await app.server({ ...options, store: s });
  // The store has learnt the cluster once it answered once.
  await s.lookup(`warm-${scope()}`);
  return ryw;
}

/** What one node holds for a key, asked directly (no cluster client, no redirection). */
async function existsOn(node: RedisClusterNode, key: string): Promise<number> {
  const client = new Redis(nodeUrl(node), { lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await client.connect();
    return await client.exists(key);
  } finally {
    client.disconnect();
  }
}

/** Every node runs again and the cluster is whole, whatever a test left behind. */
async function heal(): Promise<void> {
  for (const node of downNodes(redis)) await restartRedisNode(redis, node);
  await waitForRedisCluster(redis);
}

// A kill -9 takes cluster-node-timeout and an election to fail over, more on a busy machine.
describe("RedisStore on a Redis Cluster that fails over", { timeout: 120_000 }, () => {
  it("CLUSTER FAILOVER: a write acknowledged just before is never read stale after it", async () => {
    const a = await server(store({ own: true }));
    const bStore = store();
    const b = await server(bStore);
    await withReplicasPaused(async () => {
      const s = scope();
      const id = await runWithScope(s, () => write(a));
      expect(await runWithScope(s, () => read(b, id))).toEqual({ target: "primary", seen: true });
      const resetsBefore = bStore.resets();
      const { from, to } = await failoverMaster(redis, redisKey(PREFIX, s));
      expect(to.port).not.toBe(from.port);
      // A manual failover loses nothing (the replica catches up first), and B is told anyway.
      expect(await runWithScope(s, () => read(b, id))).toEqual({ target: "primary", seen: true });
      expect((await bStore.lookup(s)).position).toBeDefined();
      expect(bStore.resets()).toBeGreaterThan(resetsBefore);
      expect(await runWithScope(s, () => read(a, id))).toEqual({ target: "primary", seen: true });
    });
  });

  it("kill -9 of a master whose replica was behind: the position is lost, and the write is still never read stale", async () => {
    const a = await server(store());
    const bStore = store({ own: true });
    const b = await server(bStore);
    // A third app server that only looks: it never touched the key before the failover.
    const cStore = store();
    await cStore.lookup(`c-${scope()}`);
    let held: HeldReplica | undefined;
    try {
      await withReplicasPaused(async () => {
        const s = scope();
        const key = redisKey(PREFIX, s);
        held = await holdReplica(redis, key);
        const id = await runWithScope(s, () => write(a)); // acknowledged by the master alone
        expect(await existsOn(held.master, key)).toBe(1);
        const { to } = await killMaster(redis, held.master, { held });
        // Redis lost it: the new master never had the key.
        expect(await existsOn(to, key)).toBe(0);
        expect(await runWithScope(s, () => read(b, id))).toEqual({ target: "primary", seen: true });
        expect(bStore.resets()).toBeGreaterThan(0);
        expect(await runWithScope(s, () => read(a, id))).toEqual({ target: "primary", seen: true });
        // The store's first answer from the new master lacks the position, and the reset is
        // reported before that answer is returned: nobody can use it unwarned.
        const answer = await cStore.lookup(s);
        cStore.log.push("answer");
        expect(answer.position).toBeUndefined();
        expect(cStore.log).toEqual(["reset", "answer"]);
      });
    } finally {
      held?.release();
      await heal();
    }
  });

  it("a lookup in flight across a kill -9, answered by the new master, is not trusted", async () => {
    const a = await server(store());
    // This client waits out the failover instead of giving up after 16 redirections, and the
    // router waits for the answer: the answer, not a timeout, must decide.
    const bStore = store({ client: clusterClient({ maxRedirections: 500, retryDelayOnFailover: 50 }) });
    const b = await server(bStore, { storeTimeoutMs: 30_000, speculate: false });
    let held: HeldReplica | undefined;
    try {
      await withReplicasPaused(async () => {
        const s = scope();
        const key = redisKey(PREFIX, s);
        held = await holdReplica(redis, key);
        const id = await runWithScope(s, () => write(a));
        let pending: Promise<{ target: string; seen: boolean }> | undefined;
        const mark = b.events.length;
        await killMaster(redis, held.master, { held, onKilled: () => (pending = runWithScope(s, () => read(b, id))) });
        expect(await pending).toEqual({ target: "primary", seen: true });
        const mine = b.events.slice(mark);
        // It was answered (no store error) and still not trusted.
        expect(mine.filter((e) => e.type === "error" && e.source === "store")).toEqual([]);
        expect(mine.find((e) => e.type === "route" && e.decision.scope === s)).toMatchObject({ decision: { reason: "store-unavailable" } });
        expect(bStore.resets()).toBeGreaterThan(0);
      });
    } finally {
      held?.release();
      await heal();
    }
  });
});
