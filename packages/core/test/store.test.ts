import { Redis } from "ioredis";
import { afterAll, describe, expect, inject, it } from "vitest";
import type { PositionStore } from "../src/index.js";
import { MemoryStore, RedisStore, isRywError } from "../src/index.js";
import { redisKey } from "../src/store/redis.js";
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

  it("names bad options", () => {
    expect(() => new RedisStore({ url: "http://x" })).toThrow(/`url` must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => new RedisStore({ url: redisUrl, prefix: "" })).toThrow(/`prefix` must be a non-empty string/);
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
