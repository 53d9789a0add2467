import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Lsn } from "@ryw/core";
import { formatLsn, runWithScope } from "@ryw/core";
import type { Instrumentable } from "@ryw/core/otel";
import { instrument } from "@ryw/core/otel";
import { pauseReplay, resumeReplay, waitFor, waitForReplicas } from "./harness/index.js";
import { makeClient, closeServers, seedUser } from "./prisma/helpers.js";
import { openDb, unique } from "./drizzle/setup.js";
import { eq } from "./drizzle/orm.js";
import { posts } from "./drizzle/schema.js";
import { Servers } from "./drizzle/servers.js";
import type { TestTelemetry } from "../packages/core/test/otel-sdk.js";
import { startTelemetry, total, trace } from "../packages/core/test/otel-sdk.js";

// The claim behind @ryw/core/otel, through each ORM: a read's route event fires in the async
// context of the call that made it, so the caller's span is the active one. Speculative replica
// reads are off here so that the servers' statement counts name exactly one server per read.

const cluster = inject("cluster");
let otel: TestTelemetry;
let author: number;
const servers = new Servers(cluster);
beforeAll(async () => {
  otel = startTelemetry();
  author = await seedUser("otel");
  await waitForReplicas(cluster);
});
afterAll(async () => {
  await otel.shutdown();
  await servers.close();
  await closeServers();
});

/** What each ORM test needs: the router handle users pass to instrument(), a write and a read of posts. */
interface Orm {
  router: Instrumentable;
  create(title: string): Promise<void>;
  findByTitle(title: string): Promise<number>;
  close(): Promise<void>;
}

const orms: Record<string, () => Promise<Orm>> = {
  "prisma (db.$ryw)": async () => {
    const c = await makeClient({ speculate: false });
    return {
      router: c.db.$ryw,
      create: async (title) => void (await c.db.post.create({ data: { authorId: author, title } })),
      findByTitle: async (title) => (await c.db.post.findMany({ where: { title } })).length,
      close: () => c.close(),
    };
  },
  "drizzle (session.ryw)": async () => {
    const db = openDb({ speculate: false, tracker: { intervalMs: 20 } });
    await db.$client.ready();
    return {
      router: db.$client.ryw,
      create: async (title) => void (await db.insert(posts).values({ authorId: author, title })),
      findByTitle: async (title) => (await db.select().from(posts).where(eq(posts.title, title))).length,
      close: () => db.$client.end(),
    };
  },
};

/** Which server ran the read of posts, as the servers count it. */
async function servedBy<T>(fn: () => Promise<T>): Promise<{ value: T; server: string }> {
  const { result, calls } = await servers.count('%"Post"%', fn);
  const ran = Object.entries(calls).filter(([name, n]) => name !== "replicas" && n > 0);
  expect(ran, JSON.stringify(calls)).toHaveLength(1);
  expect(ran[0]![1]).toBe(1);
  return { value: result, server: ran[0]![0] };
}

describe.each(Object.keys(orms))("%s", (name) => {
  let orm: Orm;
  let recorded: Lsn[];
  let activeAtRoutes: string[];
  const test = unique("otel-orm");
  let uninstall: () => void;
  // A write may be acknowledged before its record lands (core's write intents, which Drizzle
  // uses): the reads below are about a position that is in the store.
  const recordLanded = () => waitFor(() => recorded.length === 1, 10_000, "the write's record");
  beforeAll(async () => {
    orm = await orms[name]!();
    recorded = [];
    activeAtRoutes = [];
    orm.router.subscribe((e) => {
      if (e.type === "record") recorded.push(e.position);
      if (e.type === "route") activeAtRoutes.push(trace.getActiveSpan()?.spanContext().spanId ?? "none");
    });
    uninstall = instrument(orm.router, { meterProvider: otel.meterProvider, attributes: { "test.case": test } });
  });
  afterAll(async () => {
    uninstall?.();
    await orm?.close();
  });

  it("a read in a scope whose write has been replayed: the replica that ran it, `caught-up`, the write's position", async () => {
    const scope = unique("caught-up");
    const title = unique("caught-up");
    recorded.length = 0;
    await runWithScope(scope, () => orm.create(title));
    await recordLanded();
    await waitForReplicas(cluster);
    activeAtRoutes.length = 0;
    const { value: read, spanId } = await otel.inSpan("request", () => servedBy(() => runWithScope(scope, () => orm.findByTitle(title))));
    expect(read.value).toBe(1);
    expect(read.server).toMatch(/^r[01]$/);
    expect(otel.rywAttributes(spanId)).toEqual({
      "ryw.route.target": read.server,
      "ryw.route.reason": "caught-up",
      "ryw.route.fallback": false,
      "ryw.route.required_position": formatLsn(recorded[0]!),
    });
    expect(activeAtRoutes).toEqual([spanId]);
  });

  it("with replay paused: the primary, `lagging`, the position; a concurrent request of another scope keeps its own span", async () => {
    const scope = unique("lagging");
    const title = unique("lagging");
    recorded.length = 0;
    activeAtRoutes.length = 0;
    let ranOn: Record<string, number> = {};
    const [writer, bystander] = await (async () => {
      try {
        await pauseReplay(cluster, 0);
        await pauseReplay(cluster, 1);
        await runWithScope(scope, () => orm.create(title));
        await recordLanded();
        const { result, calls } = await servers.count('%"Post"%', () =>
          Promise.all([
            otel.inSpan("writer", () => runWithScope(scope, () => orm.findByTitle(title))),
            otel.inSpan("bystander", () => runWithScope(unique("bystander"), () => orm.findByTitle(title))),
          ]),
        );
        ranOn = calls;
        return result;
      } finally {
        await resumeReplay(cluster, 0);
        await resumeReplay(cluster, 1);
        await waitForReplicas(cluster);
      }
    })();
    expect(writer.value).toBe(1);
    expect(otel.rywAttributes(writer.spanId)).toEqual({
      "ryw.route.target": "primary",
      "ryw.route.reason": "lagging",
      "ryw.route.fallback": true,
      "ryw.route.required_position": formatLsn(recorded[0]!),
    });
    // The bystander never wrote: a replica, even one that has not replayed the writer's post.
    expect(bystander.value).toBe(0);
    expect(otel.rywAttributes(bystander.spanId)).toMatchObject({ "ryw.route.reason": "no-token", "ryw.route.required_position": "" });
    const replica = otel.rywAttributes(bystander.spanId)["ryw.route.target"] as string;
    expect(replica).toMatch(/^r[01]$/);
    // The servers agree: one read on the primary, one on that replica.
    expect(ranOn).toMatchObject({ primary: 1, replicas: 1, [replica]: 1 });
    expect(activeAtRoutes.sort()).toEqual([writer.spanId, bystander.spanId].sort());
  });

  it("metrics count the same reads as stats()", async () => {
    const collected = await otel.collect();
    const stats = orm.router.stats();
    expect(stats.reads.primary + stats.reads.replica).toBeGreaterThanOrEqual(3);
    expect(total(collected, "ryw.routes", { "test.case": test })).toBe(stats.reads.primary + stats.reads.replica);
    for (const [reason, byKind] of Object.entries(stats.routes)) {
      expect(total(collected, "ryw.routes", { "test.case": test, "ryw.route.reason": reason, "ryw.route.target": "primary" }), reason).toBe(byKind.primary);
      expect(total(collected, "ryw.routes", { "test.case": test, "ryw.route.reason": reason }), reason).toBe(byKind.primary + byKind.replica);
    }
    expect(total(collected, "ryw.route.fallbacks", { "test.case": test })).toBe(stats.fallbacks);
    expect(total(collected, "ryw.route.fallbacks", { "test.case": test, "ryw.route.reason": "lagging" })).toBeGreaterThanOrEqual(1);
    const lagged = new Set(collected.get("ryw.replica.lag")?.dataPoints.filter((p) => p.attributes["test.case"] === test).map((p) => p.attributes["ryw.replica.name"]));
    expect([...lagged].sort()).toEqual(["r0", "r1"]);
  });
});
