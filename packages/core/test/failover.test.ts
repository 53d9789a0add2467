import postgres from "postgres";
import { describe, expect, it } from "vitest";
import type { Ryw, Target } from "../src/index.js";
import { createRyw, createTokenCodec, formatLsn, postgresJsRunner, postgresJsWatch, RedisStore, runWithScope } from "../src/index.js";
import type { ClusterInfo, FailoverResult, FaultProxy } from "../../../test/harness/index.js";
import { applyMigrations, detachReplica, failover, startCluster, startProxy, stopCluster, waitFor, waitForReplicas, withSql } from "../../../test/harness/index.js";
import { sleep } from "./clients.js";

/**
 * PostgreSQL failover with two app servers (two routers sharing one Redis). Every test fails
 * over a private cluster (promotion is one-way) and stops it in `finally`. The app reaches "the
 * primary" through a fault proxy that the failover retargets, as a DNS name or a Patroni
 * endpoint moves; the replicas are reached directly.
 */
interface App {
  proxy: FaultProxy;
  a: Ryw;
  b: Ryw;
  primary: postgres.Sql;
  replicas: postgres.Sql[];
  /** Which node answered, by the port the server reports. */
  name(port: number): string;
  close(): Promise<void>;
}

const POOL = 4;
const open = (url: string) => postgres(url, { max: POOL, onnotice: () => {}, connect_timeout: 5, fetch_types: false });

/**
 * Waits until the app's primary connections reach the new primary. Every pooled connection is
 * used at once: one that was open on the killed primary fails its next statement with the
 * server's "unexpected postmaster exit" (57P01), and must do so here, not in the test's reads.
 */
async function primaryMoved(x: App): Promise<void> {
  const all = () => Promise.all(Array.from({ length: POOL }, () => x.primary`select pg_is_in_recovery() as r`));
  await waitFor(async () => (await all()).every(([row]) => row?.r === false), 10_000, "the proxy to reach the new primary");
}

/** `bIntervalMs`: app server b's primary poll interval (a's is 50 ms). */
async function app(own: ClusterInfo, bIntervalMs = 50): Promise<App> {
  const proxy = await startProxy({ port: own.primary.port });
  const primary = open(proxy.url("postgres"));
  const replicas = own.replicas.map((r) => open(r.url));
  const stores: RedisStore[] = [];
  const router = (intervalMs = 50) => {
    const store = new RedisStore({ url: own.redis!.url });
    stores.push(store);
    return createRyw({
      primary: postgresJsRunner(primary),
      replicas: own.replicas.map((r, i) => ({ name: r.name, query: postgresJsRunner(replicas[i]!), watch: postgresJsWatch(replicas[i]!) })),
      store,
      tracker: { intervalMs },
    });
  };
  const a = router();
  const b = router(bIntervalMs);
  await Promise.all([a.ready(), b.ready()]);
  const ports = new Map([[own.primary.port, "old-primary"], ...own.replicas.map((r) => [r.port, r.name] as const)]);
  return {
    proxy, a, b, primary, replicas,
    name: (port) => ports.get(port) ?? `unknown:${port}`,
    async close() {
      await Promise.all([a.close(), b.close()]);
      await Promise.all(stores.map((s) => s.close?.()));
      await Promise.all([primary, ...replicas].map((s) => s.end({ timeout: 1 })));
      await proxy.close();
    },
  };
}

/** A private cluster (migrated, replicas caught up) and the app on it, both stopped when `fn` ends. */
async function withApp(fn: (x: App, own: ClusterInfo) => Promise<void>, bIntervalMs?: number): Promise<void> {
  const own = await startCluster({ replicas: 2, redis: true });
  let x: App | undefined;
  try {
    await applyMigrations(own);
    await waitForReplicas(own);
    x = await app(own, bIntervalMs);
    await fn(x, own);
  } finally {
    await x?.close();
    await stopCluster(own);
  }
}

let n = 0;
const email = () => `failover-${process.pid}-${++n}@x`;

/** A write acknowledged the way an ORM package does it: the statement, then the position recorded. */
async function write(x: App, ryw: Ryw, scope: string, address = email()): Promise<string> {
  await runWithScope(scope, async () => {
    await x.primary`insert into "User" (email) values (${address})`;
    await ryw.afterWrite();
  });
  return address;
}

/** A read-back of `address` in `scope`: where it ran (as the server says) and whether the row was there. */
async function readBack(x: App, ryw: Ryw, scope: string, address: string): Promise<{ server: string; found: boolean }> {
  return runWithScope(scope, () => ryw.read(async (t: Target) => {
    const sql = t.kind === "primary" ? x.primary : x.replicas[t.index]!;
    const [row] = await sql`select inet_server_port() as port, exists(select 1 from "User" where email = ${address}) as found`;
    return { server: x.name(row!.port as number), found: row!.found as boolean };
  }));
}

/** Whether the row is on the server that is the primary now: a row missing there was lost, not served stale. */
async function onPrimary(x: App, address: string): Promise<boolean> {
  const [row] = await x.primary`select exists(select 1 from "User" where email = ${address}) as found`;
  return row!.found as boolean;
}

/** Writes through one app server and reads back through the other, for `ms`; counts where reads ran. */
async function traffic(x: App, ms: number, startedAt = performance.now()) {
  const out = { writes: 0, reads: 0, onReplica: 0, stale: 0, failed: 0, lost: 0, firstReplicaMs: undefined as number | undefined };
  const until = performance.now() + ms;
  for (let i = 0; performance.now() < until; i++) {
    const [w, r] = i % 2 === 0 ? [x.a, x.b] : [x.b, x.a];
    const scope = `traffic-${i % 8}`;
    const address = await write(x, w, scope);
    out.writes++;
    try {
      const got = await readBack(x, r, scope, address);
      out.reads++;
      if (got.server !== promotedName(x)) {
        out.onReplica++;
        out.firstReplicaMs ??= performance.now() - startedAt;
      }
      if (!got.found) {
        if (await onPrimary(x, address)) out.stale++;
        else out.lost++;
      }
    } catch {
      out.failed++;
    }
  }
  return out;
}

/** After a failover the promoted node answers as the primary; reads on it are primary reads. */
const promoted = new WeakMap<App, string>();
const promotedName = (x: App) => promoted.get(x) ?? "old-primary";

function report(what: string, r: FailoverResult, extra: Record<string, unknown> = {}) {
  console.log(`[failover] ${what}: ${JSON.stringify({ ms: r.ms, timeline: r.timeline, switchLsn: r.switchLsn, followers: r.followers, ...extra })}`);
}

describe("PostgreSQL failover, two app servers sharing Redis", () => {
  it("a clean failover: the promoted node is excluded, acknowledged writes stay visible, reads return to the replica", () =>
    withApp(async (x, own) => {
      // Acknowledged before the failover, through either app server.
      const before: Array<{ scope: string; address: string }> = [];
      for (let i = 0; i < 20; i++) {
        const scope = `before-${i}`;
        before.push({ scope, address: await write(x, i % 2 ? x.a : x.b, scope) });
      }
      const result = await failover(own, { promote: 0, stopOldPrimary: "fast", proxy: x.proxy });
      const switchedAt = performance.now();
      promoted.set(x, "r0");
      report("fast stop", result);
      expect(result.followers).toEqual([{ name: "r1", how: "followed" }]);
      // Excluded as a replica as soon as a probe sees it out of recovery: never a candidate after.
      for (const ryw of [x.a, x.b]) {
        await waitFor(() => ryw.tracker.replicas[0]!.status === "promoted", 10_000, "the promotion to be seen");
        expect(ryw.tracker.candidates(undefined).map((r) => r.name)).not.toContain("r0");
      }
      // Settled: the app's primary connections reach the new primary.
      await primaryMoved(x);
      let staleBefore = 0;
      for (const { scope, address } of before) {
        for (const ryw of [x.a, x.b]) if (!(await readBack(x, ryw, scope, address)).found) staleBefore++;
      }
      expect(staleBefore).toBe(0);
      const t = await traffic(x, 3000, switchedAt);
      console.log(`[failover] fast stop, after the switch: ${JSON.stringify(t)}`);
      expect(t.stale).toBe(0);
      expect(t.failed).toBe(0);
      expect(t.lost).toBe(0);
      expect(t.onReplica).toBeGreaterThan(0);
    }));

  it("WAL lost in the switch: a scope whose stored position the new timeline never had reads from the primary until the new timeline passes it, never stale", () =>
    withApp(async (x, own) => {
      // Both replicas stop receiving: what the primary writes now is on no replica, as when a
      // primary dies with WAL it never shipped (asynchronous replication).
      await Promise.all(own.replicas.map((r) => detachReplica(r)));
      const scope = "lost-scope";
      const lostAddress = await write(x, x.a, scope);
      // Some WAL beyond it, so the gap is more than one record.
      await x.primary`insert into "User" (email) select 'lost-pad-' || g || ${email()} from generate_series(1, 2000) g`;
      await runWithScope(scope, () => x.a.afterWrite());
      const [lostAt] = await x.primary`select pg_current_wal_insert_lsn()::text as lsn`;
      const result = await failover(own, { promote: 0, stopOldPrimary: "kill", proxy: x.proxy });
      const switchedAt = performance.now();
      promoted.set(x, "r0");
      report("kill -9 with unshipped WAL", result, { lostAt: lostAt!.lsn });
      await primaryMoved(x);
      const gap = await withSql(result.newPrimary.url, async (sql) => (await sql`select (${lostAt!.lsn}::pg_lsn - pg_current_wal_insert_lsn())::bigint as gap`)[0]!.gap as string);

      // The lost write is gone everywhere: not stale, lost.
      expect(await onPrimary(x, lostAddress)).toBe(false);
      // The scope keeps writing on the new primary; its reads must show every new write.
      const seen = { reads: 0, onPrimary: 0, stale: 0, lost: 0 };
      let replicaAfterMs: number | undefined;
      // Traffic in other scopes moves the new timeline's position, as a live app's would.
      const background = (async () => {
        const until = performance.now() + 20_000;
        while (performance.now() < until && replicaAfterMs === undefined) {
          await x.primary`insert into "User" (email) select 'bg-' || g || ${email()} from generate_series(1, 50) g`;
          await sleep(5);
        }
      })();
      while (replicaAfterMs === undefined && performance.now() - switchedAt < 20_000) {
        const address = await write(x, x.b, scope);
        for (const ryw of [x.a, x.b]) {
          const got = await readBack(x, ryw, scope, address);
          seen.reads++;
          if (got.server === "r0") seen.onPrimary++;
          else replicaAfterMs ??= performance.now() - switchedAt;
          if (!got.found) {
            if (await onPrimary(x, address)) seen.stale++;
            else seen.lost++;
          }
        }
      }
      await background;
      console.log(`[failover] lost WAL: gap at the switch ${gap} bytes; scope on the primary for ${replicaAfterMs === undefined ? "> 20000" : Math.round(replicaAfterMs)} ms; ${JSON.stringify(seen)}`);
      expect(seen.stale).toBe(0);
      expect(seen.lost).toBe(0);
      expect(replicaAfterMs).toBeDefined();
    }));

  it("a replica left on the old timeline with WAL past the switch point is never a candidate (Rule 1)", () =>
    withApp(async (x, own) => {
      // r0 stops receiving; r1 keeps streaming and replays WAL that r0 will never have.
      await detachReplica(own.replicas[0]!);
      await x.primary`insert into "User" (email) select 'gone-' || g || ${email()} from generate_series(1, 5000) g`;
      await waitForReplicas({ ...own, replicas: [own.replicas[1]!] });
      const result = await failover(own, { promote: 0, stopOldPrimary: "kill", proxy: x.proxy, others: "leave" });
      promoted.set(x, "r0");
      report("r1 left on the old timeline", result);
      await primaryMoved(x);
      // The trackers learn the new timeline (from their primary poll, or at once when they see r0 promoted).
      for (const ryw of [x.a, x.b]) await waitFor(() => ryw.tracker.timeline?.id === result.timeline, 10_000, "the new timeline to be seen");
      const [r1] = await withSql(own.replicas[1]!.url, (sql) => sql`select pg_is_in_recovery() as standby, pg_last_wal_replay_lsn()::text as replay`);
      expect(r1!.standby).toBe(true);
      // New writes land below r1's replay position, on a timeline r1 never saw: numerically it
      // "has replayed" them.
      const counts = { reads: 0, onR1: 0, stale: 0, aheadOfWrite: 0 };
      for (let i = 0; i < 40; i++) {
        const scope = `rule1-${i}`;
        const address = await write(x, i % 2 ? x.a : x.b, scope);
        const [pos] = await x.primary`select pg_current_wal_insert_lsn() <= ${r1!.replay}::pg_lsn as below`;
        if (pos!.below) counts.aheadOfWrite++;
        for (const ryw of [x.a, x.b]) {
          const got = await readBack(x, ryw, scope, address);
          counts.reads++;
          if (got.server === "r1") counts.onR1++;
          if (!got.found) counts.stale++;
        }
      }
      console.log(`[failover] Rule 1: ${JSON.stringify({ r1Replay: r1!.replay, r1Timeline: x.a.tracker.replicas[1]!.timeline, ...counts })}`);
      expect(counts.aheadOfWrite).toBeGreaterThan(0);
      expect(x.a.tracker.replicas[1]!.timeline).toBeLessThan(result.timeline);
      expect(x.a.tracker.candidates(undefined)).toEqual([]);
      expect(counts.onR1).toBe(0);
      expect(counts.stale).toBe(0);
    }));

  it("a write on the new timeline, read back on an app server that has not polled since the failover, is never served by a replica of the old timeline (Rule 3)", () =>
    withApp(async (x, own) => {
      // r0 stops receiving; r1 keeps streaming and replays WAL that r0, promoted, will never have.
      await detachReplica(own.replicas[0]!);
      await x.primary`insert into "User" (email) select 'gone-' || g || ${email()} from generate_series(1, 5000) g`;
      await waitForReplicas({ ...own, replicas: [own.replicas[1]!] });
      // App server b samples r1 there, then polls no more: the failover falls between its polls.
      await x.b.tracker.refresh();
      expect(x.b.tracker.timeline?.id).toBe(1);
      const result = await failover(own, { promote: 0, stopOldPrimary: "kill", proxy: x.proxy, others: "leave" });
      promoted.set(x, "r0");
      report("Rule 3", result);
      await primaryMoved(x);
      const [r1] = await withSql(own.replicas[1]!.url, (sql) => sql`select pg_last_wal_replay_lsn()::text as replay`);
      const counts = { reads: 0, onR1: 0, stale: 0, belowR1: 0 };
      for (let i = 0; i < 10; i++) {
        const scope = `rule3-${i}`;
        // Written through a, whose capture reads the new timeline with the position.
        const address = await write(x, x.a, scope);
        const [pos] = await x.primary`select pg_current_wal_insert_lsn() <= ${r1!.replay}::pg_lsn as below`;
        if (pos!.below) counts.belowR1++;
        const got = await readBack(x, x.b, scope, address);
        counts.reads++;
        if (got.server === "r1") counts.onR1++;
        if (!got.found) counts.stale++;
      }
      console.log(`[failover] Rule 3: ${JSON.stringify({ r1Replay: r1!.replay, bTimeline: x.b.tracker.timeline?.id, ...counts })}`);
      // The writes sit numerically below what r1 replayed, on a timeline r1 never saw.
      expect(counts.belowR1).toBe(10);
      expect(counts.onR1).toBe(0);
      expect(counts.stale).toBe(0);
      // b learned the new timeline from the store's record, not from a poll of its own.
      expect(x.b.tracker.timeline?.id).toBe(result.timeline);
    }, 600_000));

  it("a commit token from the old timeline is clamped to the new one (Rule 2); a token without a timeline stays on the primary", () =>
    withApp(async (x, own) => {
      let t: Ryw | undefined;
      try {
        const tokenKeys = ["failover-token-secret-0123456789"];
        const server = () => createRyw({
          strategy: "token",
          tokenKeys,
          primary: postgresJsRunner(x.primary),
          replicas: own.replicas.map((r, i) => ({ name: r.name, query: postgresJsRunner(x.replicas[i]!), watch: postgresJsWatch(x.replicas[i]!) })),
          tracker: { intervalMs: 50 },
        });
        t = server();
        await t.ready();
        await Promise.all(own.replicas.map((r) => detachReplica(r)));
        // A write the new timeline will not have, and its token as the app hands it out.
        const lost = await runWithScope("token-user", async () => {
          await x.primary`insert into "User" (email) values (${email()})`;
          await t!.afterWrite();
          return t!.commitToken()!;
        });
        const decoded = createTokenCodec({ keys: tokenKeys }).decode(lost);
        expect(decoded.timeline).toBe(1);
        // The same position in a token from before timelines.
        const legacy = createTokenCodec({ keys: tokenKeys }).encode(decoded.lsn);
        await x.primary`insert into "User" (email) select 'tok-pad-' || g || ${email()} from generate_series(1, 2000) g`;
        const result = await failover(own, { promote: 0, stopOldPrimary: "kill", proxy: x.proxy });
        report("token", result, { lost: decoded.lsn.toString(16) });
        await t.close();
        // Another app server, started after the failover: it knows only the new timeline.
        t = server();
        await t.ready();
        await waitFor(() => t!.tracker.timeline?.id === result.timeline && t!.tracker.replicas[1]!.timeline === result.timeline, 10_000, "the new timeline on the primary and r1");
        const gapLeft = async () => (await x.primary`select ${formatLsn(decoded.lsn)}::pg_lsn > pg_current_wal_insert_lsn() as ahead`)[0]!.ahead as boolean;
        expect(await gapLeft()).toBe(true);
        const route = (token: string) => runWithScope({ scope: "token-user", token }, () => t!.route());
        await waitFor(async () => (await route(lost)).target.kind === "replica", 10_000, "the clamped token to be served by r1");
        const legacyRoutes = [];
        for (let i = 0; i < 20; i++) legacyRoutes.push((await route(legacy)).reason);
        // Conservative: nothing says which timeline that position is on.
        expect(await gapLeft()).toBe(true);
        expect(new Set(legacyRoutes)).toEqual(new Set(["token-ahead"]));
        // The client goes on writing on the new timeline: its next token holds that write, on any replica.
        let stale = 0;
        let onReplica = 0;
        let token = lost;
        for (let i = 0; i < 30; i++) {
          const address = email();
          token = await runWithScope({ scope: "token-user", token }, async () => {
            await x.primary`insert into "User" (email) values (${address})`;
            await t!.afterWrite();
            return t!.commitToken()!;
          });
          const got = await runWithScope({ scope: "token-user", token }, () => t!.read(async (target: Target) => {
            const sql = target.kind === "primary" ? x.primary : x.replicas[target.index]!;
            const [row] = await sql`select inet_server_port() as port, exists(select 1 from "User" where email = ${address}) as found`;
            return { server: x.name(row!.port as number), found: row!.found as boolean };
          }));
          if (got.server === "r1") onReplica++;
          if (!got.found) stale++;
        }
        console.log(`[failover] Rule 2: ${JSON.stringify({ legacy: legacyRoutes[0], stale, onReplica })}`);
        expect(stale).toBe(0);
      } finally {
        await t?.close();
      }
    }));
});
