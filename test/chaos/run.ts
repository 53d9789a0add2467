import postgres from "postgres";
import { seeded } from "../../packages/core/test/random.js";
import { applyMigrations, startCluster, stopCluster, waitForReplicas } from "../harness/cluster.js";
import type { RedisClusterInfo } from "../harness/redis-cluster.js";
import { startRedisCluster, startupNodes, stopRedisCluster } from "../harness/redis-cluster.js";
import type { AppServer } from "./app-servers.js";
import { startAppServer } from "./app-servers.js";
import type { Fault, FaultContext, FaultKind, RedisMode } from "./faults.js";
import { defaultKinds, lock, PRIMARY_FAULTS, REDIS_CLUSTER_FAULTS, REDIS_FAULTS, REPLICA_FAULTS, runLane } from "./faults.js";
import type { Proxies } from "./proxies.js";
import { startProxies } from "./proxies.js";
import type { Orm } from "./protocol.js";
import { sources } from "./sources.js";
import { readStatements, resetStatements, StatementBank } from "./statements.js";
import type { ChaosSummary } from "./summary.js";
import { summarize } from "./summary.js";
import { runUsers } from "./users.js";

export interface ChaosOptions {
  orm: Orm;
  /** App-server processes, each with its own ryw client and tracker. @default 2 */
  appServers?: number;
  /** Users looping write-then-read-back at the same time. @default 40 */
  users?: number;
  /** The load runs at least this long... @default 20000 */
  durationMs?: number;
  /** ...and until this many read-backs were checked... @default 0 */
  minReads?: number;
  /** ...and until every fault kind ran once, but never longer than this. @default 10 * durationMs */
  maxDurationMs?: number;
  /** Share of read-backs sent to another app server than the write's. @default 0.75 */
  crossShare?: number;
  /** Mean pause between a user's rounds, in ms. @default 2 */
  thinkMs?: number;
  /** Share of users that reload their latest write for a few seconds after each write (users.ts). @default 0.25 */
  reloaders?: number;
  /** @default 1 */
  seed?: number;
  /** Router options for every app server; ryw's defaults (strategy "lsn") otherwise. @default {} */
  ryw?: Record<string, unknown>;
  /** A request without an answer in this time is a failed operation. @default 30000 */
  opTimeoutMs?: number;
  /**
   * One Redis behind fault proxies, or a Redis Cluster (3 masters, 3 replicas) that the app servers
   * reach directly (a cluster client follows the addresses the nodes announce, which a proxy
   * would not rewrite), with failovers and master kills as its faults.
   * @default "single"
   */
  redis?: RedisMode;
  /** Which fault kinds to inject. @default every kind that applies to `redis` */
  kinds?: ReadonlyArray<FaultKind>;
  /** A git revision whose packages/*\/src the app servers run instead of the working tree's. */
  rev?: string;
  /** Progress lines: the fault log with timestamps, and a line every few seconds. */
  log?: (line: string) => void;
}

/**
 * The multi-process read-your-writes checker: a private cluster (primary, two replicas, Redis or
 * a Redis Cluster), fault proxies in front of Redis and of each replica, app-server processes that reach Redis and
 * the replicas only through the proxies (the primary directly), users that write on one app
 * server and read back on another, and faults injected at random the whole time.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosSummary> {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as ChaosOptions;
  const o = { appServers: 2, users: 40, durationMs: 20_000, minReads: 0, crossShare: 0.75, thinkMs: 2, reloaders: 0.25, seed: 1, ryw: {}, opTimeoutMs: 30_000, redis: "single" as RedisMode, log: () => {}, ...given };
  const maxDurationMs = o.maxDurationMs ?? 10 * o.durationMs;
  const kinds = o.kinds ?? defaultKinds(o.redis);
  const foreign = kinds.filter((k) => !defaultKinds(o.redis).includes(k));
  if (foreign.length > 0) throw new Error(`[ryw chaos] fault kinds ${foreign.join(", ")} do not apply to redis: "${o.redis}"`);
  const rand = seeded(o.seed);
  const code = sources(o.rev);
  const single = o.redis === "single";
  const cluster = await startCluster({ replicas: 2, redis: single }).catch((error: unknown) => {
    code.remove();
    throw error;
  });
  let redisCluster: RedisClusterInfo | undefined;
  let proxies: Proxies | undefined;
  const servers: AppServer[] = [];
  try {
    if (!single) redisCluster = await startRedisCluster();
    await applyMigrations(cluster);
    const users = await seedUsers(cluster.primary.url, o.users, `${o.orm}-${o.seed}`);
    await waitForReplicas(cluster);
    const redisPaths = single ? Array.from({ length: o.appServers }, (_, i) => `redis-${i}`) : [];
    // The primary too is reached through a proxy, "the primary address" that a failover moves.
    proxies = await startProxies({
      primary: cluster.primary.port,
      ...Object.fromEntries(redisPaths.map((p) => [p, cluster.redis!.port])),
      ...Object.fromEntries(cluster.replicas.map((r, i) => [`r${i}`, r.port])),
    });
    const ports = proxies.ports;
    // Each one is kept as soon as it runs, so that `finally` kills it even if another fails to start.
    await Promise.all(
      Array.from({ length: o.appServers }, (_, i) =>
        startAppServer(
          {
            name: `${o.orm}-${i}`,
            orm: o.orm,
            primaryUrl: `postgres://postgres@127.0.0.1:${ports.primary}/postgres`,
            replicas: cluster.replicas.map((r, j) => ({ name: r.name, url: `postgres://postgres@127.0.0.1:${ports[`r${j}`]}/postgres` })),
            ...(single ? { redisUrl: `redis://127.0.0.1:${ports[`redis-${i}`]}` } : { redisNodes: startupNodes(redisCluster!) }),
            prefix: `chaos-${o.orm}-${o.seed}:`,
            ryw: o.ryw,
          },
          o.opTimeoutMs,
          code.tsconfig,
        ).then((server) => (servers[i] = server)),
      ),
    );
    await resetStatements(cluster);

    const t0 = Date.now();
    const faults: Fault[] = [];
    const runErrors: string[] = [];
    const abort = new AbortController();
    const log = (line: string) => o.log(`[chaos ${o.orm} +${String(Date.now() - t0).padStart(6)} ms ${new Date().toISOString().slice(11, 23)}] ${line}`);
    const bank = new StatementBank();
    const ctx: FaultContext = {
      cluster,
      redisCluster,
      proxies,
      redisPaths,
      lockReplicas: lock(),
      rand,
      signal: abort.signal,
      done: (f: Fault) => faults.push(f),
      beforeKill: (i: number) => bank.bank(ctx.cluster, `r${i}`),
      beforeFailover: () => bank.bankAll(ctx.cluster),
      log,
    };
    const lane = (laneKinds: ReadonlyArray<FaultKind>) =>
      runLane(laneKinds.filter((k) => kinds.includes(k)), ctx).catch((error: unknown) => {
        runErrors.push(String((error as Error)?.stack ?? error));
        log(`fault injector failed: ${String(error)}`);
      });
    const lanes = Promise.all([lane([...REPLICA_FAULTS, ...PRIMARY_FAULTS]), lane(REDIS_FAULTS), lane(REDIS_CLUSTER_FAULTS)]);
    let checked = 0;
    const progress = setInterval(() => log(`${checked} read-backs checked, ${faults.length} faults so far`), 5000);
    const allRan = () => kinds.every((k) => faults.some((f) => f.kind === k));
    const stop = (soFar: number) => {
      checked = soFar;
      const elapsed = Date.now() - t0;
      return elapsed >= maxDurationMs || runErrors.length > 0 || servers.some((s) => s.exited) || (elapsed >= o.durationMs && soFar >= o.minReads && allRan());
    };
    let results;
    try {
      results = await runUsers({ users, servers, rand, crossShare: o.crossShare, thinkMs: o.thinkMs, reloaders: o.reloaders, stop });
    } finally {
      clearInterval(progress);
      abort.abort();
      await lanes;
    }
    const durationMs = Date.now() - t0;
    log(`load stopped: ${results.checks.length} read-backs, ${results.stale.length} stale, ${results.failed.length} failed`);
    for (const s of servers) if (s.exited) runErrors.push(`${s.exited} during the run`);
    const appServers = await Promise.all(
      servers.map(async (s) => {
        const reply = await s.request({ op: "stats" });
        return reply.ok && reply.op === "stats" ? { name: s.name, stats: reply.stats, unhandled: reply.unhandled } : { name: s.name, stats: undefined, unhandled: [`no stats: ${reply.ok ? reply.op : reply.error}`] };
      }),
    );
    const proxyStats = Object.fromEntries(await Promise.all(Object.keys(ports).map(async (name) => [name, await proxies!.stats(name)] as const)));
    const lost = await missingPosts(ctx.cluster.primary.url, results.acked.map((a) => a.title));
    if (lost.size > 0) log(`${lost.size} acknowledged writes are not on the final primary`);
    return summarize({ orm: o.orm, redis: o.redis, kinds, results, lost, faults, startedAt: t0, durationMs, perServer: bank.total(await readStatements(ctx.cluster)), appServers, proxies: proxyStats, runErrors, core: `${code.label}: ${servers[0]!.core}` });
  } finally {
    await Promise.all(servers.map((s) => s?.kill()));
    await proxies?.close();
    if (redisCluster) await stopRedisCluster(redisCluster);
    await stopCluster(cluster);
    code.remove();
  }
}

/**
 * The acknowledged posts (by title: unique in a run, unlike ids, which a new primary that lost
 * writes hands out again) that the primary does not have: what a failover lost.
 */
async function missingPosts(url: string, titles: string[]): Promise<Set<string>> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`select t from unnest(${titles}::text[]) as a(t) where not exists (select 1 from "Post" p where p.title = a.t)`;
    return new Set(rows.map((r) => r.t as string));
  } finally {
    await sql.end({ timeout: 1 });
  }
}

async function seedUsers(url: string, count: number, tag: string): Promise<number[]> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`insert into "User" (email) select 'chaos-' || ${tag} || '-' || g || '@example.com' from generate_series(1, ${count}::int) g returning id`;
    return rows.map((r) => r.id as number);
  } finally {
    await sql.end({ timeout: 1 });
  }
}
