import { Redis } from "ioredis";
import postgres from "postgres";
import { afterEach, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { startProxy, waitFor, withSql } from "./harness/index.js";
import type { FaultProxy } from "./harness/index.js";

const cluster = inject("cluster");
const open: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close().catch(() => {});
});

async function proxyTo(port: number): Promise<FaultProxy> {
  const proxy = await startProxy({ port });
  open.push(() => proxy.close());
  return proxy;
}

function redisThrough(proxy: FaultProxy): Redis {
  const redis = new Redis(proxy.url("redis"), { maxRetriesPerRequest: null, retryStrategy: () => 20 });
  redis.on("error", () => {});
  open.push(async () => redis.disconnect());
  return redis;
}

/** A promise's state without waiting for it. */
function track<T>(promise: Promise<T>) {
  const state = { settled: false, value: undefined as T | undefined };
  const done = promise.then((value) => {
    state.settled = true;
    state.value = value;
    return value;
  });
  return { state, done };
}

/** Lets a stalled request sit for a while; the tests assert order, never how long this took. */
const idle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("fault proxy in front of Redis", () => {
  it("forwards commands and counts connections", async () => {
    const proxy = await proxyTo(cluster.redis!.port);
    const redis = redisThrough(proxy);
    const key = `proxy-test:${process.pid}:plain`;
    await redis.set(key, "v1");
    expect(await redis.get(key)).toBe("v1");
    expect(proxy.stats.accepted).toBe(1);
    expect(proxy.stats.open).toBe(1);
  });

  it("holds a GET while stalled and answers it after unstall", async () => {
    const proxy = await proxyTo(cluster.redis!.port);
    const redis = redisThrough(proxy);
    const key = `proxy-test:${process.pid}:stall`;
    await redis.set(key, "before");
    proxy.stall();
    const get = track(redis.get(key));
    await idle(300);
    expect(get.state.settled).toBe(false);
    proxy.unstall();
    expect(await get.done).toBe("before");
  });

  it("keeps the order of commands under latency, also when the latency is lowered mid-way", async () => {
    const proxy = await proxyTo(cluster.redis!.port);
    const redis = redisThrough(proxy);
    const key = `proxy-test:${process.pid}:order`;
    await redis.del(key);
    proxy.setLatency(100);
    const first = redis.rpush(key, "a");
    proxy.setLatency(0);
    const second = redis.rpush(key, "b");
    await Promise.all([first, second]);
    expect(await redis.lrange(key, 0, -1)).toEqual(["a", "b"]);
  });

  it.each(["close", "reset"] as const)("dropAll(%s) makes ioredis see a close, and it reconnects through the same proxy", async (mode) => {
    const proxy = await proxyTo(cluster.redis!.port);
    const redis = redisThrough(proxy);
    await redis.ping();
    const closed = new Promise((r) => redis.once("close", r));
    const readyAgain = closed.then(() => new Promise((r) => redis.once("ready", r)));
    proxy.dropAll(mode);
    await closed;
    await readyAgain;
    expect(await redis.ping()).toBe("PONG");
    expect(proxy.stats.accepted).toBe(2);
    expect(proxy.stats.dropped).toBe(1);
  });

  it("refuses new connections while refuse(true), and accepts again after refuse(false)", async () => {
    const proxy = await proxyTo(cluster.redis!.port);
    proxy.refuse(true);
    const redis = new Redis(proxy.url("redis"), { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    redis.on("error", () => {});
    open.push(async () => redis.disconnect());
    await expect(redis.connect().then(() => redis.ping())).rejects.toThrow();
    expect(proxy.stats.refused).toBeGreaterThan(0);
    proxy.refuse(false);
    const again = redisThrough(proxy);
    expect(await again.ping()).toBe("PONG");
  });
});

describe("fault proxy in front of the primary", () => {
  it("runs postgres.js queries, and a query sent during a stall completes after unstall", async () => {
    const proxy = await proxyTo(cluster.primary.port);
    const sql = postgres(proxy.url("postgres"), { max: 1, onnotice: () => {} });
    open.push(() => sql.end({ timeout: 1 }));
    expect(await sql`select 1 as one`).toEqual([{ one: 1 }]);
    proxy.stall();
    const query = track(sql`select 2 as two`.then((rows) => rows[0]));
    await idle(300);
    expect(query.state.settled).toBe(false);
    proxy.unstall();
    expect(await query.done).toEqual({ two: 2 });
  });

  it("dropAll fails the open connection's query and the next query reconnects", async () => {
    const proxy = await proxyTo(cluster.primary.port);
    const sql = postgres(proxy.url("postgres"), { max: 1, onnotice: () => {} });
    open.push(() => sql.end({ timeout: 1 }));
    await sql`select 1`;
    // The backend sleeps on after the cut (it cannot tell the client left): keep it short.
    const text = `select pg_sleep(2) as "proxy-${process.pid}"`;
    const sleeping = sql.unsafe(text).then(() => "finished", (error: Error & { code?: string }) => error.code ?? error.message);
    // Only cut once the query is on the wire (the server runs it).
    await waitForActive(cluster.primary.url, text);
    proxy.dropAll();
    expect(await sleeping).toBe("CONNECTION_CLOSED");
    expect(await sql`select 3 as three`).toEqual([{ three: 3 }]);
    expect(proxy.stats.accepted).toBe(2);
  });
});

function waitForActive(url: string, query: string): Promise<void> {
  return withSql(url, (direct) =>
    waitFor(async () => {
      const [row] = await direct`select count(*)::int as n from pg_stat_activity where query = ${query} and state = 'active'`;
      return row!.n > 0;
    }, 10_000, "the query to run on the primary"),
  );
}
