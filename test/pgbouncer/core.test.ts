import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Lsn, Ryw } from "@ryw/core";
import { createRyw, postgresJsRunner, postgresJsWatch, RedisStore, runWithScope } from "@ryw/core";
import type { PgBouncer } from "../harness/index.js";
import { killReplica, pauseReplay, pgbouncerAdmin, resumeReplay, startReplica, waitFor, waitForReplicas, withSql } from "../harness/index.js";
import { Servers } from "../drizzle/servers.js";
import { unique } from "../drizzle/setup.js";
import { capturesAfter, cluster, commitEnd, insertingXid, lsnToBigint, primaryLog, primaryPosition, startBouncer } from "./bouncer.js";

/**
 * Core with postgres.js clients that reach every node through PgBouncer (transaction pooling,
 * two server connections per node): captures, probes and routing, asked of the servers.
 */
let bouncer: PgBouncer;
const clients: postgres.Sql[] = [];
const servers = new Servers(cluster);
let author: number;

/**
 * postgres.js behind PgBouncer's transaction pooling: no protocol-level prepared statements, and
 * no array-type query on connect (its failure while a server is down is unhandled: settings.test.ts).
 */
function client(url: string, max = 2): postgres.Sql {
  const sql = postgres(url, { max, prepare: false, fetch_types: false, onnotice: () => {} });
  clients.push(sql);
  return sql;
}

function router(intervalMs = 20) {
  const primary = client(bouncer.primaryUrl, 4);
  const replicas = bouncer.replicaUrls.map((url) => client(url));
  const ryw = createRyw({
    primary: postgresJsRunner(primary),
    replicas: replicas.map((sql, i) => ({ name: cluster.replicas[i]!.name, query: postgresJsRunner(sql), watch: postgresJsWatch(sql) })),
    store: new RedisStore({ url: cluster.redis!.url }),
    tracker: { intervalMs },
  });
  const on = (target: Parameters<Parameters<Ryw["read"]>[0]>[0]) => (target.kind === "primary" ? primary : replicas[target.index]!);
  return { ryw, primary, replicas, on };
}

beforeAll(async () => {
  bouncer = await startBouncer();
  [{ id: author }] = (await withSql(cluster.primary.url, (sql) => sql`insert into "User" (email) values (${unique("bouncer-core") + "@x"}) returning id`)) as unknown as [{ id: number }];
  await waitForReplicas(cluster);
});

afterAll(async () => {
  await Promise.all(clients.map((sql) => sql.end({ timeout: 1 })));
  await servers.close();
  await bouncer?.stop();
});

const READ = 'select title from "Post" where title = $1';

describe("core (postgres.js runner) through PgBouncer", () => {
  it("probes: each replica's sample is that replica's own replay position", async () => {
    const { ryw } = router();
    await pauseReplay(cluster, 0);
    await pauseReplay(cluster, 1);
    try {
      const replayed = await Promise.all(cluster.replicas.map((r) => withSql(r.url, (sql) => sql`select pg_last_wal_replay_lsn()::text as lsn`.then((rows) => lsnToBigint(rows[0]!.lsn as string)))));
      // Replay is paused, so each value stands still until the probes report exactly it.
      await waitFor(() => ryw.tracker.replicas.every((r, i) => r.status === "up" && r.position === replayed[i]), 10_000, "the probes to report the paused positions");
    } finally {
      await resumeReplay(cluster, 0);
      await resumeReplay(cluster, 1);
      await ryw.close();
    }
  });

  it("captures after autocommit writes and after COMMITs cover the commit, from whichever server connection they ran on", async () => {
    // Polling the primary only at start, so that the position read logged after a write is its capture.
    const { ryw, primary } = router(60_000);
    await ryw.ready();
    const recorded = new Map<string, Lsn>();
    ryw.subscribe((event) => event.type === "record" && recorded.set(event.scope, event.position));
    const from = await primaryPosition();
    const log = primaryLog();
    const writes: Array<{ scope: string; title: string }> = [];
    try {
      for (let i = 0; i < 20; i++) {
        const write = { scope: unique("capture"), title: unique("capture") };
        writes.push(write);
        await runWithScope(write.scope, async () => {
          if (i % 2 === 0) await primary.unsafe(`insert into "Post" ("authorId", title) values ($1, $2)`, [author, write.title]);
          else await primary.begin((tx) => tx`insert into "Post" ("authorId", title) values (${author}, ${write.title})`);
          await ryw.afterWrite();
        });
      }
      for (const { scope, title } of writes) {
        const end = await commitEnd(await insertingXid(title), from);
        expect(recorded.get(scope)! >= end, `${scope}: position ${recorded.get(scope)} covers its commit ending at ${end}`).toBe(true);
      }
      const pairs = capturesAfter(log.statements());
      expect(pairs).toHaveLength(20);
      expect(pairs.every((p) => p.capturePid !== undefined)).toBe(true);
      // The premise of the argument in the README: captures do run on other server connections.
      expect(pairs.filter((p) => p.capturePid !== p.endPid).length).toBeGreaterThan(0);
    } finally {
      await ryw.close();
    }
  });

  it("a read right after a write in the same scope never misses it, with replay paused on both replicas", async () => {
    const { ryw, primary, on } = router();
    await ryw.ready();
    await pauseReplay(cluster, 0);
    await pauseReplay(cluster, 1);
    const scope = unique("ghost");
    const titles: string[] = [];
    try {
      await servers.reset();
      for (let i = 0; i < 100; i++) {
        const title = unique("ghost");
        titles.push(title);
        const rows = await runWithScope(scope, async () => {
          await primary`insert into "Post" ("authorId", title) values (${author}, ${title})`;
          await ryw.afterWrite();
          return ryw.read((target) => on(target)`select title from "Post" where title = ${title}`);
        });
        expect(rows).toEqual([{ title }]);
      }
      expect(await servers.calls(READ)).toMatchObject({ primary: 100, replicas: 0 });
      // The replicas really lack the rows: a read there would have missed them.
      for (const r of cluster.replicas) {
        const [row] = await withSql(r.url, (sql) => sql`select count(*)::int as n from "Post" where title = any(${titles})`);
        expect(row!.n).toBe(0);
      }
    } finally {
      await resumeReplay(cluster, 0);
      await resumeReplay(cluster, 1);
      await ryw.close();
    }
  });

  it("reads go to the replicas once they have replayed the scope's write", async () => {
    const { ryw, primary, on } = router();
    await ryw.ready();
    const scope = unique("caught-up");
    const title = unique("caught-up");
    try {
      await runWithScope(scope, async () => {
        await primary`insert into "Post" ("authorId", title) values (${author}, ${title})`;
        await ryw.afterWrite();
      });
      await waitForReplicas(cluster);
      await servers.reset();
      for (let i = 0; i < 20; i++) {
        expect(await runWithScope(scope, () => ryw.read((target) => on(target)`select title from "Post" where title = ${title}`))).toEqual([{ title }]);
      }
      const calls = await servers.calls(READ);
      expect(calls).toMatchObject({ primary: 0, replicas: 20 });
      expect(calls.r0).toBeGreaterThan(0);
      expect(calls.r1).toBeGreaterThan(0);
    } finally {
      await ryw.close();
    }
  });

  it("a replica killed behind PgBouncer: its idle clients see nothing (no watch), the probes drop it, and it comes back", async () => {
    const { ryw, primary, on } = router();
    await ryw.ready();
    const idle = client(bouncer.replicaUrls[0]!, 1);
    let closes = 0;
    idle.options.onclose = () => void closes++;
    await idle`select 1`;
    const epoch = ryw.tracker.replicas[0]!.epoch;
    try {
      await killReplica(cluster, 0);
      // PgBouncer has dropped its server connections to r0...
      await waitFor(async () => (await pgbouncerAdmin(bouncer.adminUrl, "show servers")).every((s) => s.database !== "r0"), 10_000, "PgBouncer to drop r0's server connections");
      // ...but keeps its clients' connections: a postgresJsWatch hook has nothing to report.
      expect(closes).toBe(0);
      // A probe that finds the server gone drops the sample.
      await waitFor(() => ryw.tracker.replicas[0]!.position === undefined, 10_000, "the probes to drop r0's sample");
    } finally {
      await startReplica(cluster, 0);
    }
    await waitFor(() => ryw.tracker.replicas[0]!.status === "up" && ryw.tracker.replicas[0]!.position !== undefined, 20_000, "r0 to be sampled again");
    expect(ryw.tracker.replicas[0]!.epoch).toBeGreaterThan(epoch);
    const scope = unique("after-restart");
    for (let i = 0; i < 20; i++) {
      const title = unique("after-restart");
      const rows = await runWithScope(scope, async () => {
        await primary`insert into "Post" ("authorId", title) values (${author}, ${title})`;
        await ryw.afterWrite();
        return ryw.read((target) => on(target)`select title from "Post" where title = ${title}`);
      });
      expect(rows).toEqual([{ title }]);
    }
    await ryw.close();
    await waitForReplicas(cluster);
  });
});
