import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { Lsn } from "@ryw/core";
import { isRywError, MemoryStore, RedisStore, ryw, runWithScope } from "@ryw/prisma";
import type { RywPrismaOptions } from "@ryw/prisma";
import type { PgBouncer } from "../harness/index.js";
import { killReplica, pauseReplay, pgbouncerAdmin, recordsLanded, resumeReplay, startReplica, waitFor, waitForReplicas, withSql } from "../harness/index.js";
import { closeServers, FORMS, makeClient, seedUser, unique, where } from "../prisma/helpers.js";
import type { Form } from "../prisma/helpers.js";
import { capturesAfter, cluster, commitEnd, insertingXid, primaryLog, primaryPosition, startBouncer } from "./bouncer.js";

/**
 * @ryw/prisma with every node reached through PgBouncer (transaction pooling): PrismaPg on the
 * PgBouncer URLs as they are, nothing set. The servers' own counts say where statements ran.
 */
let bouncer: PgBouncer;
let author: number;

beforeAll(async () => {
  bouncer = await startBouncer();
  author = await seedUser("bouncer-prisma");
  await waitForReplicas(cluster);
});

afterAll(async () => {
  await closeServers();
  await bouncer?.stop();
});

async function client(form: Form, options: Partial<RywPrismaOptions> = {}) {
  const store = new RedisStore({ url: cluster.redis!.url });
  const c = await makeClient({
    primary: bouncer.primaryUrl,
    replicas: cluster.replicas.map((r, i) => ({ name: r.name, adapter: bouncer.replicaUrls[i]! })),
    store,
    ...options,
  }, form);
  onTestFinished(async () => {
    await c.close();
    await store.close?.();
  });
  return c;
}

describe.each(FORMS)("%s through PgBouncer", (form) => {
  it("a read right after a write in the same scope never misses it (create, interactive and batch transactions), with replay paused on both replicas", async () => {
    const { db } = await client(form);
    await pauseReplay(cluster, 0);
    await pauseReplay(cluster, 1);
    const scope = unique("ghost");
    const titles: string[] = [];
    try {
      const { ran } = await where(async () => {
        for (let i = 0; i < 60; i++) {
          const title = unique("ghost");
          titles.push(title);
          const seen = await runWithScope(scope, async () => {
            const data = { authorId: author, title };
            if (i % 3 === 0) await db.post.create({ data });
            else if (i % 3 === 1) await db.$transaction(async (tx) => tx.post.create({ data }));
            else await db.$transaction([db.post.create({ data }), db.post.count({ where: { authorId: author } })]);
            return db.post.findMany({ where: { title }, select: { title: true } });
          });
          expect(seen).toEqual([{ title }]);
        }
      });
      expect(ran).toMatchObject({ r0: 0, r1: 0 });
      expect(ran.primary).toBeGreaterThanOrEqual(120);
      for (const r of cluster.replicas) {
        const [row] = await withSql(r.url, (sql) => sql`select count(*)::int as n from "Post" where title = any(${titles})`);
        expect(row!.n).toBe(0);
      }
    } finally {
      await resumeReplay(cluster, 0);
      await resumeReplay(cluster, 1);
    }
  });

  it("reads go to the replicas once they have replayed the scope's write", async () => {
    const { db } = await client(form);
    const scope = unique("caught-up");
    const title = unique("caught-up");
    await runWithScope(scope, () => db.post.create({ data: { authorId: author, title } }));
    await waitForReplicas(cluster);
    const { ran } = await where(() => runWithScope(scope, async () => {
      for (let i = 0; i < 10; i++) {
        expect(await db.post.findFirst({ where: { title }, select: { title: true } })).toEqual({ title });
        expect(await db.post.count({ where: { title } })).toBe(1);
      }
    }));
    expect(ran).toMatchObject({ primary: 0 });
    expect(ran.r0 + ran.r1).toBe(20);
    expect(ran.r0).toBeGreaterThan(0);
    expect(ran.r1).toBeGreaterThan(0);
  });

  it("the position read right after COMMIT on the transaction's connection lands on another server connection, and still covers the commit", async () => {
    // Polling the primary only at start, so that the position read logged after a write is its capture.
    const c = await client(form, { tracker: { intervalMs: 60_000 } });
    const recorded = new Map<string, Lsn>();
    c.rw.ryw.subscribe((event) => event.type === "record" && recorded.set(event.scope, event.position));
    const from = await primaryPosition();
    const log = primaryLog();
    const writes: Array<{ scope: string; title: string }> = [];
    for (let i = 0; i < 20; i++) {
      const write = { scope: unique("capture"), title: unique("capture") };
      writes.push(write);
      const data = { authorId: author, title: write.title };
      await runWithScope(write.scope, async () => {
        if (i % 2 === 0) await c.db.post.create({ data });
        else await c.db.$transaction(async (tx) => tx.post.create({ data }));
      });
      // A write is acknowledged on its intent and its capture may follow: one at a time, so that
      // the log shows each write's capture right after it.
      await recordsLanded(c.rw.ryw);
    }
    for (const { scope, title } of writes) {
      const end = await commitEnd(await insertingXid(title), from);
      expect(recorded.get(scope)! >= end, `${scope}: position ${recorded.get(scope)} covers its commit ending at ${end}`).toBe(true);
    }
    const pairs = capturesAfter(log.statements());
    expect(pairs).toHaveLength(20);
    expect(pairs.every((p) => p.capturePid !== undefined)).toBe(true);
    expect(pairs.filter((p) => p.capturePid !== p.endPid).length).toBeGreaterThan(0);
  });
});

describe("a replica killed behind PgBouncer", () => {
  it("only a direct `probe` connection tells ryw at once", async () => {
    // No polls: whatever drops a sample here is a closed connection.
    const tracker = { intervalMs: 60_000 };
    const pooled = await client("two-place", { tracker });
    const direct = await client("two-place", { tracker, replicas: cluster.replicas.map((r, i) => ({ name: r.name, adapter: bouncer.replicaUrls[i]!, probe: r.url })) });
    const r0 = (c: typeof pooled) => c.rw.ryw.tracker.replicas[0]!;
    const epoch = r0(direct).epoch;
    expect(r0(pooled).position).not.toBeUndefined();
    try {
      await killReplica(cluster, 0);
      await waitFor(async () => (await pgbouncerAdmin(bouncer.adminUrl, "show servers")).every((s) => s.database !== "r0"), 10_000, "PgBouncer to drop r0's server connections");
      await waitFor(() => r0(direct).position === undefined, 10_000, "the direct probe connection's close to drop r0's sample");
      // A new epoch: a read that was routed on the old sample and returns now is not kept.
      expect(r0(direct).epoch).toBeGreaterThan(epoch);
      // Through PgBouncer alone, nothing told the tracker: r0 would still be chosen until a probe failed.
      expect(r0(pooled).position).not.toBeUndefined();
    } finally {
      await startReplica(cluster, 0);
    }
    await waitForReplicas(cluster);
  });

  it("`replicas[0].probe` is checked like `adapter`", () => {
    let error: unknown;
    try {
      ryw({ primary: cluster.primary.url, replicas: [{ adapter: cluster.replicas[0]!.url, probe: 42 as never }], store: new MemoryStore() });
    } catch (e) {
      error = e;
    }
    expect(isRywError(error, "INVALID_OPTION")).toBe(true);
    expect((error as Error).message).toContain("`replicas[0].probe`");
  });
});
