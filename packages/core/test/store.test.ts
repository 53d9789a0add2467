import { Cluster, Redis } from "ioredis";
import { afterAll, describe, expect, inject, it } from "vitest";
import type { PositionStore } from "../src/index.js";
import { MemoryStore, RedisStore, isRywError } from "../src/index.js";
import { redisKey } from "../src/store/redis.js";
import { clusterMasters, clusterNodes, keySlot, nodeUrl, startRedisCluster, startupNodes, stopRedisCluster } from "../../../test/harness/index.js";
import { randomLsn, seeded } from "./random.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let run = 0;
const uniq = (s: string) => `${s}-${process.pid}-${++run}`;

/** One suite for every store, as each must behave the same to the router. */
function storeSuite(name: string, make: (prefix: string) => PositionStore) {
  describe(`${name} (shared store suite)`, () => {
    const store = make("ryw-test:");

    it("returns undefined for an unknown scope", async () => {
      expect(await store.get(uniq("nobody"))).toBeUndefined();
    });

    it("raises, never lowers, and keeps 64-bit precision", async () => {
      const scope = uniq("user");
      const high = (1n << 63n) + 12345n;
      await store.advance(scope, 10n, 60_000);
      expect(await store.get(scope)).toBe(10n);
      await store.advance(scope, high, 60_000);
      await store.advance(scope, high - 1n, 60_000); // differs only below 2^53 precision
      await store.advance(scope, 11n, 60_000);
      expect(await store.get(scope)).toBe(high);
    });

    it("ends at the max after 200 concurrent advances in random order", async () => {
      const scope = uniq("race");
      const rand = seeded(7);
      const values = Array.from({ length: 200 }, () => randomLsn(rand));
      const max = values.reduce((a, b) => (a > b ? a : b));
      await Promise.all(values.map((v) => store.advance(scope, v, 60_000)));
      expect(await store.get(scope)).toBe(max);
    });

    it("expires after the TTL, and each advance refreshes the TTL", async () => {
      const scope = uniq("ttl");
      await store.advance(scope, 5n, 150);
      await sleep(100);
      await store.advance(scope, 1n, 150); // lower value: kept 5, but the TTL starts again
      await sleep(100);
      expect(await store.get(scope)).toBe(5n);
      await sleep(200);
      expect(await store.get(scope)).toBeUndefined();
    });

    it("keeps hostile scope strings apart", async () => {
      const tag = uniq("");
      const scopes = ["a\nb", "a b", "a*", "a?", "{a}", "a\u0000b", "ünïcødé-🙂", "x".repeat(10_000), "x".repeat(9_999), "#abc", "ryw-test:abc"].map((s) => s + tag);
      await Promise.all(scopes.map((s, i) => store.advance(s, BigInt(i + 1), 60_000)));
      for (const [i, s] of scopes.entries()) expect(await store.get(s)).toBe(BigInt(i + 1));
    });

    it("rejects empty scopes with INVALID_SCOPE", async () => {
      await expect(store.get("")).rejects.toSatisfy((e) => isRywError(e, "INVALID_SCOPE"));
      await expect(store.advance(undefined as unknown as string, 1n, 1000)).rejects.toSatisfy((e) => isRywError(e, "INVALID_SCOPE"));
    });

    describe("write intents", () => {
      const lookup = (scope: string) => store.lookup!(scope);

      it("pending from intend until advance resolves it, which also raises the position", async () => {
        const scope = uniq("intent");
        await store.advance(scope, 7n, 60_000);
        expect(await lookup(scope)).toMatchObject({ position: 7n, pending: false });
        await store.intend!(scope, "w1", 60_000);
        await store.intend!(scope, "w2", 60_000);
        expect(await lookup(scope)).toMatchObject({ position: 7n, pending: true });
        await store.advance(scope, 9n, 60_000, "w1");
        // w2 still stands: resolving one intent never hides another.
        expect(await lookup(scope)).toMatchObject({ position: 9n, pending: true });
        await store.advance(scope, 8n, 60_000, "w2");
        expect(await lookup(scope)).toEqual({ position: 9n, pending: false, expired: false });
        expect(await store.get(scope)).toBe(9n);
      });

      it("an intent alone makes a scope pending with no position; withdraw drops it", async () => {
        const scope = uniq("intent-only");
        await store.intend!(scope, "w1", 60_000);
        expect(await lookup(scope)).toMatchObject({ position: undefined, pending: true });
        expect(await store.get(scope)).toBeUndefined();
        await store.withdraw!(scope, "w1");
        expect(await lookup(scope)).toMatchObject({ position: undefined, pending: false });
      });

      it("an intent that expires unresolved stops being pending and marks the scope expired, also after later writes", async () => {
        const scope = uniq("intent-expiry");
        await store.advance(scope, 3n, 60_000);
        await store.intend!(scope, "lost", 100);
        expect(await lookup(scope)).toMatchObject({ pending: true });
        await sleep(200);
        expect(await lookup(scope)).toMatchObject({ position: 3n, pending: false, expired: true });
        // A later write's intent and record keep the mark: the lost write is still unaccounted for.
        await store.intend!(scope, "next", 60_000);
        await store.advance(scope, 5n, 60_000, "next");
        expect(await lookup(scope)).toMatchObject({ position: 5n, pending: false, expired: true });
      });

      it("the key lives at least as long as its intents", async () => {
        const scope = uniq("intent-ttl");
        await store.advance(scope, 4n, 100);
        await store.intend!(scope, "w", 400);
        await sleep(200);
        expect(await lookup(scope)).toMatchObject({ position: 4n, pending: true });
      });
    });

    it("keeps the newest timeline recorded, apart from the position, and never takes it for an intent", async () => {
      const scope = uniq("timeline");
      await store.advance(scope, 10n, 60_000);
      expect(await store.lookup!(scope)).toEqual({ position: 10n, pending: false, expired: false });
      await store.advance(scope, 12n, 60_000, undefined, 2);
      // A record of an older timeline, or of none, lowers neither the timeline nor the position.
      await store.advance(scope, 11n, 60_000, undefined, 1);
      await store.advance(scope, 9n, 60_000);
      expect(await store.lookup!(scope)).toEqual({ position: 12n, pending: false, expired: false, timeline: 2 });
      // A newer timeline with a lower position (WAL past the switch point was lost): both kept
      // as maxima, so the scope asks for the higher position on the newer timeline.
      await store.intend!(scope, "w", 60_000);
      await store.advance(scope, 11n, 60_000, "w", 3);
      expect(await store.lookup!(scope)).toEqual({ position: 12n, pending: false, expired: false, timeline: 3 });
      // A later intent's sweep of expired intents leaves the timeline alone.
      await store.intend!(scope, "next", 60_000);
      expect(await store.lookup!(scope)).toEqual({ position: 12n, pending: true, expired: false, timeline: 3 });
    });

    it("isolates prefixes", async () => {
      const other = make("ryw-other:");
      const scope = uniq("shared-name");
      await store.advance(scope, 9n, 60_000);
      expect(await other.get(scope)).toBeUndefined();
      await other.advance(scope, 3n, 60_000);
      expect(await store.get(scope)).toBe(9n);
      await other.close?.();
    });
  });
}

storeSuite("MemoryStore", () => new MemoryStore());

const redisUrl = inject("cluster").redis!.url;
const clients: Redis[] = [];
storeSuite("RedisStore", (prefix) => {
  // A client per store, like separate app servers.
  const client = new Redis(redisUrl);
  clients.push(client);
  return new RedisStore({ client, prefix });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit()));
});

// A real Redis Cluster (3 masters, 3 replicas) for this file; torn down however the file ends.
const redisCluster = await startRedisCluster();
afterAll(() => stopRedisCluster(redisCluster));
const clusters: Cluster[] = [];
const cluster = () => {
  const c = new Cluster(startupNodes(redisCluster));
  clusters.push(c);
  return c;
};
afterAll(async () => {
  await Promise.all(clusters.map((c) => c.quit().catch(() => {})));
});
// Alternately your own ioredis Cluster and the store's own (`nodes`), like separate app servers.
let made = 0;
const clusterStores: RedisStore[] = [];
storeSuite("RedisStore on Redis Cluster", (prefix) => {
  const store = made++ % 2 === 0 ? new RedisStore({ client: cluster(), prefix }) : new RedisStore({ nodes: startupNodes(redisCluster), prefix });
  clusterStores.push(store);
  return store;
});
afterAll(async () => {
  await Promise.all(clusterStores.map((s) => s.close()));
});

describe("RedisStore specifics", () => {
  it("advances atomically across many connections", async () => {
    const stores = Array.from({ length: 5 }, () => new RedisStore({ url: redisUrl, prefix: "ryw-multi:" }));
    const scope = uniq("multi");
    const rand = seeded(11);
    const values = Array.from({ length: 300 }, () => randomLsn(rand));
    await Promise.all(values.map((v, i) => stores[i % stores.length]!.advance(scope, v, 60_000)));
    const max = values.reduce((a, b) => (a > b ? a : b));
    for (const s of stores) expect(await s.get(scope)).toBe(max);
    await Promise.all(stores.map((s) => s.close()));
  });

  it("stores safe scopes readably and hashes the rest into bounded keys", async () => {
    expect(redisKey("p:", "user:42")).toBe("p:user:42");
    for (const hostile of ["a\nb", "*", "{tag}", "x".repeat(10_000), "é"]) {
      const key = redisKey("p:", hostile);
      expect(key).toMatch(/^p:#[A-Za-z0-9_-]{43}$/);
    }
    const client = new Redis(redisUrl);
    const store = new RedisStore({ client, prefix: "ryw-keys:" });
    await store.advance("line\nbreak", 1n, 60_000);
    const keys = await client.keys("ryw-keys:*");
    expect(keys.every((k) => !k.includes("\n") && k.length < 64)).toBe(true);
    await client.quit();
  });

  it("every call touches exactly one key, so it runs on Redis Cluster", async () => {
    const client = new Redis(redisUrl);
    const monitor = await new Redis(redisUrl).monitor();
    const seen: string[][] = [];
    monitor.on("monitor", (_time: string, args: string[]) => seen.push(args));
    const store = new RedisStore({ client, prefix: "ryw-onekey:" });
    const scope = uniq("onekey");
    await store.intend(scope, "w", 60_000);
    await store.lookup(scope);
    await store.advance(scope, 2n, 60_000, "w");
    await store.withdraw(scope, "w");
    await store.get(scope);
    await sleep(50);
    const calls = seen.filter((args) => /^(evalsha|eval)$/i.test(args[0]!));
    expect(calls.length).toBeGreaterThanOrEqual(5);
    for (const args of calls) expect(args[2], args.join(" ")).toBe("1");
    monitor.disconnect();
    await client.quit();
  });

  it("reads a key of the earlier string form, and turns it into the hash form on the next write", async () => {
    const client = new Redis(redisUrl);
    const store = new RedisStore({ client, prefix: "ryw-old:" });
    const scope = uniq("old");
    await client.set(redisKey("ryw-old:", scope), "000000000000000a", "PX", 60_000);
    expect(await store.lookup(scope)).toEqual({ position: 10n, pending: false, expired: false });
    await store.intend(scope, "w", 60_000);
    expect(await client.type(redisKey("ryw-old:", scope))).toBe("hash");
    expect(await store.lookup(scope)).toMatchObject({ position: 10n, pending: true });
    expect(await client.pttl(redisKey("ryw-old:", scope))).toBeGreaterThan(50_000);
    await client.quit();
  });

  it("refuses an intent id that could not be a hash field of ours", async () => {
    const client = new Redis(redisUrl);
    const store = new RedisStore({ client, prefix: "ryw-ids:" });
    await expect(store.intend("s", "a b", 1000)).rejects.toThrow(/intent id/);
    await client.quit();
  });

  it("works for a Redis user that may not run INFO (its answers then carry no replication ID)", async () => {
    const admin = new Redis(redisUrl);
    const user = `ryw-noinfo-${process.pid}`;
    await admin.call("ACL", "SETUSER", user, "on", ">pw", "~*", "+@all", "-info");
    const client = new Redis(redisUrl, { username: user, password: "pw" });
    try {
      await expect(client.info("replication")).rejects.toThrow(/NOPERM/);
      const store = new RedisStore({ client, prefix: "ryw-noinfo:" });
      const scope = uniq("noinfo");
      await store.intend(scope, "w", 60_000);
      await store.advance(scope, 5n, 60_000, "w");
      await store.withdraw(scope, "w");
      expect(await store.lookup(scope)).toEqual({ position: 5n, pending: false, expired: false });
    } finally {
      await client.quit();
      await admin.call("ACL", "DELUSER", user);
      await admin.quit();
    }
  });

  it("names bad options", () => {
    expect(() => new RedisStore({ url: "http://x" })).toThrow(/`url` must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => new RedisStore({ url: redisUrl, prefix: "" })).toThrow(/`prefix` must be a non-empty string/);
  });
});

describe("RedisStore on Redis Cluster", () => {
  it("every call runs on the one master that owns its key, with exactly one key", async () => {
    const masters = await clusterMasters(redisCluster);
    const monitors = await Promise.all(masters.map(async (m) => ({ port: m.port, client: await new Redis(nodeUrl(m)).monitor() })));
    const seen: Array<{ port: number; args: string[] }> = [];
    for (const m of monitors) m.client.on("monitor", (_time: string, args: string[]) => seen.push({ port: m.port, args }));
    const store = new RedisStore({ nodes: startupNodes(redisCluster), prefix: "ryw-slots:" });
    // Enough scopes to land on every master; each goes through every operation.
    const scopes = Array.from({ length: 24 }, (_, i) => uniq(`slot-${i}`));
    for (const scope of scopes) {
      await store.intend(scope, "w", 60_000);
      await store.lookup(scope);
      await store.advance(scope, 2n, 60_000, "w");
      await store.withdraw(scope, "w");
      expect(await store.get(scope)).toBe(2n);
    }
    await sleep(100);
    const calls = seen.filter((s) => /^(evalsha|eval)$/i.test(s.args[0]!) && String(s.args[3]).startsWith("ryw-slots:"));
    expect(calls.length).toBeGreaterThanOrEqual(5 * scopes.length);
    expect(new Set(calls.map((c) => c.port)).size, "calls reached every master").toBe(masters.length);
    // The cluster, not the client, says which master owns each slot.
    const view = await clusterNodes(redisCluster);
    const owner = (slot: number) => view.find((n) => n.role === "master" && n.slots.some(([a, b]) => a <= slot && slot <= b))?.port;
    for (const { port, args } of calls) {
      expect(args[2], args.join(" ")).toBe("1");
      const slot = await keySlot(redisCluster, args[3]!);
      expect(port, `${args[3]} (slot ${slot}) ran on its owner`).toBe(owner(slot));
    }
    for (const m of monitors) m.client.disconnect();
    await store.close();
  });

  it("a script on two keys of different slots is refused (CROSSSLOT): what one key per call avoids", async () => {
    const c = cluster();
    const [a, b] = ["ryw-x:a", "ryw-x:b"];
    expect(await keySlot(redisCluster, a)).not.toBe(await keySlot(redisCluster, b));
    await expect(c.eval("return redis.call('GET', KEYS[1]) or redis.call('GET', KEYS[2])", 2, a, b)).rejects.toThrow(/CROSSSLOT/);
  });

  it("a store made with `nodes` owns its Cluster and closes it", async () => {
    const store = new RedisStore({ nodes: startupNodes(redisCluster).map((n) => `redis://${n.host}:${n.port}`), prefix: "ryw-own:" });
    const scope = uniq("own");
    await store.advance(scope, 3n, 60_000);
    expect(await store.get(scope)).toBe(3n);
    await store.close();
    await expect(store.get(scope)).rejects.toThrow();
  });

  it("names bad options", () => {
    const nodes = startupNodes(redisCluster);
    expect(() => new RedisStore({ nodes, url: "redis://x" })).toThrow(/`nodes` must be given alone, not together with `url`/);
    expect(() => new RedisStore({ nodes, client: cluster() })).toThrow(/`client` must be given alone, not together with `url` or `nodes`/);
    expect(() => new RedisStore({ nodes: [] })).toThrow(/`nodes` must be a non-empty array/);
    expect(() => new RedisStore({ nodes: [nodes[0]!, { host: "127.0.0.1", port: 70_000 }] })).toThrow(/`nodes\[1\]` must be \{ host: string, port: 1..65535 \}/);
    expect(() => new RedisStore({ nodes: ["http://127.0.0.1:7000"] })).toThrow(/`nodes\[0\]` must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => new RedisStore({ nodes: ["redis://a:1@h:7000", "redis://b:2@h:7001"] })).toThrow(/`nodes\[1\]` must be a URL with the same scheme and credentials/);
    expect(() => new RedisStore({ nodes: "redis://h:7000" as never })).toThrow(/`nodes` must be a non-empty array/);
  });
});

describe("MemoryStore specifics", () => {
  it("stays bounded and never forgets a position it evicted", async () => {
    const store = new MemoryStore({ maxEntries: 10 });
    for (let i = 1; i <= 100; i++) await store.advance(`s${i}`, BigInt(i), 60_000);
    expect(store.size).toBe(10);
    // s1 was evicted: it may now read higher (the floor), never lower or empty.
    expect((await store.get("s1"))! >= 1n).toBe(true);
    expect(await store.get("s100")).toBe(100n);
  });

  it("names bad options", () => {
    expect(() => new MemoryStore({ maxEntries: 0 })).toThrow(/`maxEntries` must be a positive integer, got 0/);
  });
});
