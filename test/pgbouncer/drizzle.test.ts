import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { Lsn } from "@ryw/core";
import { isRywError, RedisStore, rywSession, runWithScope } from "@ryw/drizzle";
import type { RywSessionOptions } from "@ryw/drizzle";
import type { PgBouncer } from "../harness/index.js";
import { killReplica, pauseReplay, pgbouncerAdmin, recordsLanded, resumeReplay, startReplica, waitFor, waitForReplicas, withSql } from "../harness/index.js";
import { drizzle, eq, sql } from "../drizzle/orm.js";
import { posts, schema, users } from "../drizzle/schema.js";
import { Servers } from "../drizzle/servers.js";
import { unique } from "../drizzle/setup.js";
import { capturesAfter, cluster, commitEnd, insertingXid, primaryLog, primaryPosition, startBouncer } from "./bouncer.js";

/** rywSession from connection strings that all point at PgBouncer (transaction pooling). */
let bouncer: PgBouncer;
const servers = new Servers(cluster);
let author: number;

function openDb(options: Partial<RywSessionOptions> = {}) {
  const db = drizzle(rywSession({
    primary: bouncer.primaryUrl,
    replicas: bouncer.replicaUrls.map((url, i) => ({ connection: url, name: cluster.replicas[i]!.name })),
    // What postgres.js needs behind transaction pooling (settings.test.ts says why).
    connectionOptions: { max: 4, prepare: false, fetch_types: false, onnotice: () => {} },
    store: new RedisStore({ url: cluster.redis!.url }),
    tracker: { intervalMs: 20 },
    ...options,
  }), { schema });
  // Ended with its test: no other session's polls in the next test's counts and logs.
  onTestFinished(() => db.$client.end());
  return db;
}

beforeAll(async () => {
  bouncer = await startBouncer();
  [{ id: author }] = (await withSql(cluster.primary.url, (s) => s`insert into "User" (email) values (${unique("bouncer-drizzle") + "@x"}) returning id`)) as unknown as [{ id: number }];
  await waitForReplicas(cluster);
});

afterAll(async () => {
  await servers.close();
  await bouncer?.stop();
});

const BY_ID = 'select "id", "title" from "Post" where "Post"."id" = $1';

describe("drizzle (postgres.js: prepare and fetch_types off) through PgBouncer", () => {
  it("a read right after a write in the same scope never misses it, with replay paused on both replicas", async () => {
    const db = openDb();
    await db.$client.ready();
    await pauseReplay(cluster, 0);
    await pauseReplay(cluster, 1);
    const scope = unique("ghost");
    const ids: number[] = [];
    try {
      await servers.reset();
      for (let i = 0; i < 100; i++) {
        const seen = await runWithScope(scope, async () => {
          const [post] = i % 4 === 3
            ? await db.transaction((tx) => tx.insert(posts).values({ authorId: author, title: `ghost ${i}` }).returning({ id: posts.id }))
            : await db.insert(posts).values({ authorId: author, title: `ghost ${i}` }).returning({ id: posts.id });
          ids.push(post!.id);
          return db.select({ id: posts.id, title: posts.title }).from(posts).where(eq(posts.id, post!.id));
        });
        expect(seen).toEqual([{ id: ids[i], title: `ghost ${i}` }]);
      }
      expect(await servers.calls(BY_ID)).toMatchObject({ primary: 100, replicas: 0 });
      for (const r of cluster.replicas) {
        const [row] = await withSql(r.url, (s) => s`select count(*)::int as n from "Post" where id = any(${ids})`);
        expect(row!.n).toBe(0);
      }
    } finally {
      await resumeReplay(cluster, 0);
      await resumeReplay(cluster, 1);
    }
  });

  it("reads go to the replicas once they have replayed the scope's write: select, relational query, $count, prepared query", async () => {
    const db = openDb();
    await db.$client.ready();
    const scope = unique("caught-up");
    const title = unique("caught-up");
    const [post] = await runWithScope(scope, () => db.insert(posts).values({ authorId: author, title }).returning({ id: posts.id }));
    await waitForReplicas(cluster);
    // drizzle asks postgres.js to prepare a named query; with prepare: false it runs unnamed.
    const prepared = db.select({ title: posts.title }).from(posts).where(eq(posts.id, sql.placeholder("id"))).prepare("ryw_bouncer_post");
    const { calls } = await servers.count('%"Post"%', () => runWithScope(scope, async () => {
      for (let i = 0; i < 5; i++) {
        expect(await db.select({ title: posts.title }).from(posts).where(eq(posts.id, post!.id))).toEqual([{ title }]);
        expect(await db.query.posts.findFirst({ columns: { title: true }, where: eq(posts.id, post!.id) })).toEqual({ title });
        expect(await db.$count(posts, eq(posts.id, post!.id))).toBe(1);
        expect(await prepared.execute({ id: post!.id })).toEqual([{ title }]);
      }
    }));
    expect(calls).toMatchObject({ primary: 0, replicas: 20 });
    expect(calls.r0).toBeGreaterThan(0);
    expect(calls.r1).toBeGreaterThan(0);
  });

  it("captures after autocommit writes and after COMMITs cover the commit, from whichever server connection they ran on", async () => {
    // Polling the primary only at start, so that the position read logged after a write is its capture.
    const db = openDb({ tracker: { intervalMs: 60_000 } });
    await db.$client.ready();
    const ryw = db.$client.ryw;
    const recorded = new Map<string, Lsn>();
    ryw.subscribe((event) => event.type === "record" && recorded.set(event.scope, event.position));
    const from = await primaryPosition();
    const log = primaryLog();
    const writes: Array<{ scope: string; title: string }> = [];
    for (let i = 0; i < 20; i++) {
      const write = { scope: unique("capture"), title: unique("capture") };
      writes.push(write);
      await runWithScope(write.scope, async () => {
        if (i % 2 === 0) await db.insert(posts).values({ authorId: author, title: write.title });
        else await db.transaction(async (tx) => void (await tx.insert(posts).values({ authorId: author, title: write.title })));
      });
      // The write is acknowledged on its intent; its capture follows. One at a time, so that the
      // log shows each write's capture right after it.
      await recordsLanded(ryw);
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

  it("a replica killed behind PgBouncer: only a direct `probe` connection tells ryw at once", async () => {
    // No polls: whatever drops a sample here is a closed connection.
    const tracker = { intervalMs: 60_000 };
    const pooled = openDb({ tracker });
    const direct = openDb({ tracker, replicas: bouncer.replicaUrls.map((url, i) => ({ connection: url, name: cluster.replicas[i]!.name, probe: cluster.replicas[i]!.url })) });
    await Promise.all([pooled.$client.ready(), direct.$client.ready()]);
    const r0 = (db: typeof pooled) => db.$client.ryw.tracker.replicas[0]!;
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

  it.each([
    ["replicas[0].probe", { connection: "postgres://nobody@127.0.0.1:1/none", probe: 7 }],
    ["replicas[0].probe", { connection: "postgres://nobody@127.0.0.1:1/none", probe: "" }],
    ["replicas[0]", { connection: 7 }],
  ])("`%s` is checked before any client is made", (option, replica) => {
    let error: unknown;
    try {
      rywSession({ primary: "postgres://nobody@127.0.0.1:1/none", replicas: [replica as never] });
    } catch (e) {
      error = e;
    }
    expect(isRywError(error, "INVALID_OPTION")).toBe(true);
    expect((error as Error).message).toContain(`\`${option}\``);
  });
});
