import { createServer } from "node:net";
import { Redis } from "ioredis";
import postgres from "postgres";
import { metrics } from "@opentelemetry/api";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import type { Lsn, Ryw, RywEvent, RywOptions } from "../src/index.js";
import { createRyw, formatLsn, isRywError, onPrimary, postgresJsRunner, RedisStore, runWithScope } from "../src/index.js";
import { instrument } from "../src/otel.js";
import { pauseReplay, resumeReplay, waitFor, waitForReplicas } from "../../../test/harness/index.js";
import { connect, sleep } from "./clients.js";
import type { TestTelemetry } from "./otel-sdk.js";
import { points, startTelemetry, total, trace } from "./otel-sdk.js";

const cluster = inject("cluster");
const db = connect(cluster);
let otel: TestTelemetry;
const opened: Array<{ close(): Promise<unknown> }> = [];
beforeAll(() => {
  otel = startTelemetry();
});
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});
afterAll(async () => {
  await otel.shutdown();
  await db.end();
});

let n = 0;
const unique = (label: string) => `otel-${label}-${process.pid}-${++n}`;

/** A router on the test cluster with the cluster's Redis; its record events are kept. */
async function open(options: Partial<RywOptions> = {}): Promise<Ryw & { recorded: Lsn[] }> {
  const redis = new Redis(cluster.redis!.url, { maxRetriesPerRequest: 1 }).on("error", () => {});
  opened.push({ close: async () => redis.disconnect() });
  const ryw = createRyw({ ...db.options, store: new RedisStore({ client: redis, prefix: `${unique("store")}:` }), tracker: { intervalMs: 20 }, ...options });
  opened.push(ryw);
  const recorded: Lsn[] = [];
  ryw.subscribe((e) => {
    if (e.type === "record") recorded.push(e.position);
  });
  await ryw.ready();
  return Object.assign(ryw, { recorded });
}

/** instrument(), undone after the test. */
function instrumented(...args: Parameters<typeof instrument>): void {
  const uninstall = instrument(...args);
  opened.push({ close: async () => uninstall() });
}

/** Writes a row on the primary in `scope` and records its position, as an ORM package does. */
async function write(ryw: Ryw, scope: string): Promise<void> {
  await runWithScope(scope, async () => {
    await db.primary`insert into "User" (email, name) values (${`${unique("w")}@example.com`}, ${scope})`;
    await ryw.afterWrite();
  });
}

/** A read through the router; the server that ran it says who it is. */
function whoAnswers(ryw: Ryw): Promise<string> {
  return ryw.read(async (target) => {
    const [row] = await db.sqlFor(target)`select inet_server_port() as port`;
    return db.serverName(row!.port as number);
  });
}

/** The spans that were active in route listeners, one per routed read. */
function activeSpansAtRoutes(ryw: Ryw): string[] {
  const seen: string[] = [];
  ryw.subscribe((e) => {
    if (e.type === "route") seen.push(trace.getActiveSpan()?.spanContext().spanId ?? "none");
  });
  return seen;
}

async function paused<T>(replicas: number[], fn: () => Promise<T>): Promise<T> {
  try {
    for (const r of replicas) await pauseReplay(cluster, r);
    return await fn();
  } finally {
    for (const r of replicas) await resumeReplay(cluster, r);
    await waitForReplicas(cluster);
  }
}

describe("instrument(): span attributes", () => {
  it("puts a replica read's route on the caller's active span, across awaits and timers", async () => {
    const ryw = await open();
    instrumented(ryw, { meterProvider: otel.meterProvider });
    const atRoutes = activeSpansAtRoutes(ryw);
    const scope = unique("caught-up");
    await write(ryw, scope);
    await waitForReplicas(cluster);
    const { value: server, spanId } = await otel.inSpan("request", () =>
      runWithScope(scope, async () => {
        await sleep(1);
        return whoAnswers(ryw);
      }),
    );
    expect(server).toMatch(/^r[01]$/);
    expect(ryw.recorded).toHaveLength(1);
    expect(otel.rywAttributes(spanId)).toEqual({
      "ryw.route.target": server,
      "ryw.route.reason": "caught-up",
      "ryw.route.fallback": false,
      "ryw.route.required_position": formatLsn(ryw.recorded[0]!),
    });
    // Not a span of ryw's own: the listener saw the caller's span as the active one.
    expect(atRoutes).toEqual([spanId]);
    // The DB span conventions belong to the query's own span, not to a request's.
    expect(otel.span(spanId).attributes["db.system.name"]).toBeUndefined();
  });

  it("a read right after a write, with replay paused, shows the primary, `lagging` and the position it needed", async () => {
    const ryw = await open();
    instrumented(ryw, { meterProvider: otel.meterProvider });
    const scope = unique("lagging");
    const { value: server, spanId } = await paused([0, 1], async () => {
      await write(ryw, scope);
      return otel.inSpan("request", () => runWithScope(scope, () => whoAnswers(ryw)));
    });
    expect(server).toBe("primary");
    expect(ryw.recorded).toHaveLength(1);
    expect(otel.rywAttributes(spanId)).toEqual({
      "ryw.route.target": "primary",
      "ryw.route.reason": "lagging",
      "ryw.route.fallback": true,
      "ryw.route.required_position": formatLsn(ryw.recorded[0]!),
    });
  });

  it("concurrent requests each get their own read's route, on their own span", async () => {
    const ryw = await open();
    instrumented(ryw, { meterProvider: otel.meterProvider });
    const atRoutes = activeSpansAtRoutes(ryw);
    const writer = unique("writer");
    const reader = unique("reader");
    const [wrote, fresh] = await paused([0, 1], async () => {
      await write(ryw, writer);
      // Started together, the two reads interleave on the event loop.
      return Promise.all([
        otel.inSpan("writer", () => runWithScope(writer, () => whoAnswers(ryw))),
        otel.inSpan("reader", () => runWithScope(reader, () => whoAnswers(ryw))),
      ]);
    });
    expect(wrote.value).toBe("primary");
    expect(otel.rywAttributes(wrote.spanId)).toMatchObject({ "ryw.route.target": "primary", "ryw.route.reason": "lagging" });
    // A scope that never wrote may use a replica that lags less than half of ttlMs.
    expect(fresh.value).toMatch(/^r[01]$/);
    expect(otel.rywAttributes(fresh.spanId)).toEqual({ "ryw.route.target": fresh.value, "ryw.route.reason": "no-token", "ryw.route.fallback": false, "ryw.route.required_position": "" });
    expect(atRoutes.sort()).toEqual([wrote.spanId, fresh.spanId].sort());
  });

  it("a span covering several reads keeps the last one's route, every key rewritten", async () => {
    const ryw = await open();
    instrumented(ryw, { meterProvider: otel.meterProvider });
    const scope = unique("several");
    const { value, spanId } = await paused([0, 1], async () => {
      await write(ryw, scope);
      return otel.inSpan("request", async () => [await runWithScope(scope, () => whoAnswers(ryw)), await onPrimary(() => whoAnswers(ryw))]);
    });
    expect(value).toEqual(["primary", "primary"]);
    expect(otel.rywAttributes(spanId)).toEqual({ "ryw.route.target": "primary", "ryw.route.reason": "forced-primary", "ryw.route.fallback": false, "ryw.route.required_position": "" });
  });

  it("`spans: false` leaves spans alone", async () => {
    const ryw = await open();
    instrumented(ryw, { meterProvider: otel.meterProvider, spans: false });
    const { spanId } = await otel.inSpan("request", () => whoAnswers(ryw));
    expect(otel.rywAttributes(spanId)).toEqual({});
    expect(ryw.stats().reads.primary + ryw.stats().reads.replica).toBe(1);
  });
});

describe("instrument(): metrics", () => {
  it("counts every routed read by reason and target, and the fallbacks, as the servers saw them", async () => {
    const ryw = await open();
    const test = unique("counts");
    instrumented(ryw, { meterProvider: otel.meterProvider, attributes: { "test.case": test } });
    const served: Array<{ reason: string; server: string }> = [];
    for (let i = 0; i < 3; i++) served.push({ reason: "no-scope", server: await whoAnswers(ryw) });
    for (let i = 0; i < 2; i++) served.push({ reason: "forced-primary", server: await onPrimary(() => whoAnswers(ryw)) });
    const scope = unique("lagging");
    await paused([0, 1], async () => {
      await write(ryw, scope);
      for (let i = 0; i < 2; i++) served.push({ reason: "lagging", server: await runWithScope(scope, () => whoAnswers(ryw)) });
    });
    const collected = await otel.collect();

    const expected = new Map<string, number>();
    for (const { reason, server } of served) expected.set(`${reason} ${server}`, (expected.get(`${reason} ${server}`) ?? 0) + 1);
    const counted = new Map<string, number>();
    for (const [attrs, value] of points(collected, "ryw.routes")) {
      if (attrs["test.case"] !== test) continue;
      expect(attrs["db.system.name"]).toBe("postgresql");
      counted.set(`${attrs["ryw.route.reason"]} ${attrs["ryw.route.target"]}`, value);
    }
    expect(counted).toEqual(expected);
    expect(served.filter((s) => s.reason === "lagging").every((s) => s.server === "primary")).toBe(true);
    // The same reads as stats() counted, reason by reason.
    const stats = ryw.stats();
    expect(Object.keys(stats.routes).sort()).toEqual(["forced-primary", "lagging", "no-scope"]);
    for (const [reason, byKind] of Object.entries(stats.routes)) {
      expect(total(collected, "ryw.routes", { "test.case": test, "ryw.route.reason": reason })).toBe(byKind.primary + byKind.replica);
      expect(total(collected, "ryw.routes", { "test.case": test, "ryw.route.reason": reason, "ryw.route.target": "primary" })).toBe(byKind.primary);
    }
    expect(total(collected, "ryw.routes", { "test.case": test })).toBe(stats.reads.primary + stats.reads.replica);
    expect(total(collected, "ryw.route.fallbacks", { "test.case": test })).toBe(stats.fallbacks);
    expect(total(collected, "ryw.route.fallbacks", { "test.case": test, "ryw.route.reason": "lagging" })).toBe(2);
    expect(collected.get("ryw.routes")?.descriptor.unit).toBe("{route}");
  });

  it("counts record failures and unshared writes, as stats() does", async () => {
    const dead = await freePort();
    // A real client of a port where nothing listens: every command fails at once.
    const redis = new Redis({ host: "127.0.0.1", port: dead, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null }).on("error", () => {});
    opened.push({ close: async () => redis.disconnect() });
    // storeRetryMs: no background retry of the pinned record while the test compares counts.
    const ryw = await open({ store: new RedisStore({ client: redis }), recordTimeoutMs: 50, storeRetryMs: 600_000 });
    const test = unique("failures");
    instrumented(ryw, { meterProvider: otel.meterProvider, attributes: { "test.case": test } });
    const events: RywEvent[] = [];
    ryw.subscribe((e) => events.push(e));
    const scope = unique("unshared");
    await write(ryw, scope);
    const { value: server, spanId } = await otel.inSpan("next request", () => runWithScope(scope, () => whoAnswers(ryw)));
    const collected = await otel.collect();
    const stats = ryw.stats();

    expect(stats.recordFailures).toBeGreaterThan(0);
    expect(stats.unsharedWrites).toBe(1);
    expect(total(collected, "ryw.record.failures", { "test.case": test })).toBe(stats.recordFailures);
    const failures = events.filter((e): e is Extract<RywEvent, { type: "error" }> => e.type === "error" && (e.source === "record" || e.source === "capture"));
    for (const source of ["record", "capture"] as const) {
      expect(total(collected, "ryw.record.failures", { "test.case": test, "ryw.error.source": source })).toBe(failures.filter((e) => e.source === source).length);
    }
    for (const [attrs] of points(collected, "ryw.record.failures").filter(([a]) => a["test.case"] === test)) expect(attrs["error.type"]).toMatch(/^\S+$/);
    expect(total(collected, "ryw.write.unshared", { "test.case": test })).toBe(1);
    // The scope now reads from the primary in this process, and its span says why.
    expect(server).toBe("primary");
    expect(otel.rywAttributes(spanId)).toMatchObject({ "ryw.route.target": "primary", "ryw.route.reason": "record-failed", "ryw.route.fallback": true });
  });

  it("counts failed position captures under their own source", async () => {
    // The router's primary is a real client of a port where nothing listens, so every position
    // capture after a write fails; the write itself goes to the real primary.
    const dead = postgres(`postgres://postgres@127.0.0.1:${await freePort()}/postgres`, { max: 1, connect_timeout: 1, fetch_types: false, onnotice: () => {} });
    opened.push({ close: () => dead.end({ timeout: 1 }) });
    const ryw = await open({ primary: postgresJsRunner(dead), recordTimeoutMs: 50, storeRetryMs: 600_000 });
    const test = unique("capture");
    instrumented(ryw, { meterProvider: otel.meterProvider, attributes: { "test.case": test } });
    const events: RywEvent[] = [];
    ryw.subscribe((e) => events.push(e));
    await write(ryw, unique("capture"));
    const collected = await otel.collect();
    const stats = ryw.stats();
    const captures = events.filter((e) => e.type === "error" && e.source === "capture").length;
    expect(captures).toBeGreaterThan(0);
    expect(total(collected, "ryw.record.failures", { "test.case": test, "ryw.error.source": "capture" })).toBe(captures);
    expect(total(collected, "ryw.record.failures", { "test.case": test })).toBe(stats.recordFailures);
    expect(total(collected, "ryw.write.unshared", { "test.case": test })).toBe(stats.unsharedWrites);
    expect(stats.unsharedWrites).toBe(1);
    // The error's code, else its name: a capture that times out is a plain Error today.
    for (const [attrs] of points(collected, "ryw.record.failures").filter(([a]) => a["test.case"] === test)) expect(attrs["error.type"]).toMatch(/^\S+$/);
  });

  it("reports each replica's lag from stats(), in seconds", async () => {
    const ryw = await open();
    const test = unique("lag");
    instrumented(ryw, { meterProvider: otel.meterProvider, attributes: { "test.case": test } });
    const lagOf = (name: string) => ryw.stats().replicas.find((r) => r.name === name)!.lagMs;
    await paused([0], async () => {
      // r0 stops at a position the router has seen the primary at; the primary then moves on.
      await db.primary`insert into "User" (email) values (${`${unique("lag")}@example.com`})`;
      await waitFor(() => (lagOf("r0") ?? 0) >= 200, 10_000, "r0's lag to show");
      const before = lagOf("r0")!;
      const collected = await otel.collect();
      const after = lagOf("r0")!;
      const lag = new Map(points(collected, "ryw.replica.lag").filter(([a]) => a["test.case"] === test).map(([a, v]) => [a["ryw.replica.name"], v]));
      expect([...lag.keys()].sort()).toEqual(["r0", "r1"]);
      // r0's lag only grows while it is paused: the value collected lies between two stats() reads.
      expect(lag.get("r0")!).toBeGreaterThanOrEqual(before / 1000);
      expect(lag.get("r0")!).toBeLessThanOrEqual(after / 1000);
      expect(lag.get("r1")!).toBeLessThan(lag.get("r0")!);
      expect(lag.get("r1")!).toBeGreaterThanOrEqual(0);
      expect(collected.get("ryw.replica.lag")?.descriptor.unit).toBe("s");
    });
  });

  it("uses the global MeterProvider by default", async () => {
    const ryw = await open();
    const test = unique("global");
    metrics.setGlobalMeterProvider(otel.meterProvider);
    try {
      instrumented(ryw, { attributes: { "test.case": test } });
      const server = await whoAnswers(ryw);
      const collected = await otel.collect();
      expect(total(collected, "ryw.routes", { "test.case": test, "ryw.route.target": server, "ryw.route.reason": "no-scope" })).toBe(1);
    } finally {
      metrics.disable();
    }
  });
});

describe("instrument(): off", () => {
  it("after uninstall, nothing more is recorded and the lag gauge stops reading stats()", async () => {
    const router = await open();
    let statsCalls = 0;
    // Any object with subscribe() and stats() can be instrumented.
    const counted = { subscribe: router.subscribe.bind(router), stats: () => (statsCalls++, router.stats()) };
    const test = unique("uninstall");
    const uninstall = instrument(counted, { meterProvider: otel.meterProvider, attributes: { "test.case": test } });
    await otel.inSpan("before", () => whoAnswers(router));
    const first = await otel.collect();
    expect(total(first, "ryw.routes", { "test.case": test })).toBe(1);
    expect(statsCalls).toBe(1);
    uninstall();
    uninstall();
    const { spanId } = await otel.inSpan("after", () => whoAnswers(router));
    const second = await otel.collect();
    expect(otel.rywAttributes(spanId)).toEqual({});
    expect(total(second, "ryw.routes", { "test.case": test })).toBe(1);
    expect(statsCalls).toBe(1);
    expect(router.stats().reads.primary + router.stats().reads.replica).toBe(2);
    // And it can be instrumented again.
    instrumented(counted, { meterProvider: otel.meterProvider });
  });

  it("without instrument(), reads leave no attributes and no metrics", async () => {
    const ryw = await open();
    const before = await otel.collect();
    const { spanId } = await otel.inSpan("request", () => whoAnswers(ryw));
    const after = await otel.collect();
    expect(otel.rywAttributes(spanId)).toEqual({});
    for (const name of ["ryw.routes", "ryw.route.fallbacks", "ryw.record.failures", "ryw.write.unshared"]) expect(total(after, name)).toBe(total(before, name));
    expect(ryw.stats().reads.primary + ryw.stats().reads.replica).toBe(1);
  });
});

describe("instrument(): bad input", () => {
  const rejects = (fn: () => unknown, message: RegExp) => {
    let error: unknown;
    try {
      fn();
    } catch (e) {
      error = e;
    }
    expect(isRywError(error, "INVALID_OPTION"), String(error)).toBe(true);
    expect((error as Error).message).toMatch(message);
  };

  it("names what is wrong", async () => {
    rejects(() => instrument(undefined as never), /^\[ryw\] Option `ryw` must be a ryw router with subscribe\(\) and stats\(\).*got undefined\.$/);
    rejects(() => instrument({ stats() {} } as never), /Option `ryw` must be a ryw router/);
    rejects(() => instrument({ $ryw: {} } as never), /pass `db\.\$ryw`/);
    rejects(() => instrument({ ryw: {}, stats() {} } as never), /pass `session\.ryw`/);
    const ryw = await open();
    rejects(() => instrument(ryw, null as never), /Option `options` must be an object, got null/);
    rejects(() => instrument(ryw, { spans: "yes" as never }), /Option `spans` must be a boolean, got "yes"/);
    rejects(() => instrument(ryw, { metrics: 1 as never }), /Option `metrics` must be a boolean, got 1/);
    rejects(() => instrument(ryw, { meterProvider: {} as never }), /Option `meterProvider` must be an OpenTelemetry MeterProvider/);
    rejects(() => instrument(ryw, { attributes: [] as never }), /Option `attributes` must be an object/);
    rejects(() => instrument(ryw, { attributes: { "app.name": { nested: true } } as never }), /Option `attributes\["app\.name"\]` must be a string, number, boolean/);
    const uninstall = instrument(ryw, { meterProvider: otel.meterProvider });
    opened.push({ close: async () => uninstall() });
    rejects(() => instrument(ryw, { meterProvider: otel.meterProvider }), /already instrumented/);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
