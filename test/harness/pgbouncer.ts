import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import type { ClusterInfo } from "./cluster.js";
import postgres from "postgres";
import { waitFor } from "./cluster.js";
import { postgresTmpdir } from "./pg-bin.js";
import { isAlive, kill, readPid } from "./process.js";

/**
 * A real PgBouncer (Debian's `pgbouncer`) on a free port in front of a harness cluster: one
 * database entry per node, named after it (`primary`, `r0`, `r1`...), each logging in to that node
 * as `postgres` (or `serverUser`) over TCP. Transaction pooling with a small pool and round-robin hand-out by
 * default, so that consecutive statements of one client connection really run on different
 * server connections (backends). Clients log in as `postgres` without a password (`auth_type =
 * trust`, like the cluster's pg_hba).
 */
export interface PgBouncer {
  readonly port: number;
  /** The daemon's pid. */
  readonly pid: number;
  /** Holds the config, auth file, log and pid file; removed by `stop()`. */
  readonly dir: string;
  /** `pgbouncer --version`'s first line, e.g. "PgBouncer 1.18.0". */
  readonly version: string;
  /** The config file as written, for messages and the README. */
  readonly config: string;
  /** The connection string of one database entry: `primary` or a replica's name. */
  url(database: string): string;
  /** `url("primary")`. */
  readonly primaryUrl: string;
  /** `url(name)` of each replica, in the cluster's order. */
  readonly replicaUrls: string[];
  /** The admin console (`pgbouncer` database): simple-protocol commands such as `SHOW SERVERS`. */
  readonly adminUrl: string;
  /** Stops PgBouncer and removes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  /** @default "transaction" */
  poolMode?: "session" | "transaction" | "statement";
  /** `default_pool_size`: server connections per database entry. @default 2 */
  poolSize?: number;
  /**
   * `server_round_robin`: hand out the idle server connection that waited longest instead of the
   * newest (LIFO), so that one client's statements move between server connections even without
   * other traffic. @default true
   */
  roundRobin?: boolean;
  /**
   * The role PgBouncer logs in to the servers as (clients still log in as `postgres`), e.g. one
   * with settings of its own (`ALTER ROLE ... SET log_statement = 'all'`). It must exist.
   * @default "postgres"
   */
  serverUser?: string;
  /**
   * More `[databases]` entries, name to PgBouncer connection string (`host=... port=...`), e.g.
   * one whose server is not there. They are not warmed up.
   */
  databases?: Record<string, string>;
  /** More `[pgbouncer]` settings, written as `key = value` after the harness's own. */
  settings?: Record<string, string | number>;
}

const DIR_PREFIX = "ryw-pgbouncer-";
const isRoot = process.getuid?.() === 0;
const live = new Set<{ dir: string; pidFile: string }>();

export async function startPgBouncer(cluster: ClusterInfo, options: PgBouncerOptions = {}): Promise<PgBouncer> {
  const bin = which("pgbouncer");
  if (!bin) throw new Error("[ryw harness] pgbouncer not found: apt-get install -y pgbouncer (.ci/run installs it).");
  sweepAbandoned();
  const version = execFileSync(bin, ["--version"], { encoding: "utf8" }).split("\n")[0]!.trim();
  const dir = mkdtempSync(join(postgresTmpdir(), DIR_PREFIX));
  writeFileSync(join(dir, "owner.pid"), String(process.pid));
  const pidFile = join(dir, "pgbouncer.pid");
  const logFile = join(dir, "pgbouncer.log");
  const entry = { dir, pidFile };
  live.add(entry);
  try {
    const port = await freePort();
    const nodes = [cluster.primary, ...cluster.replicas];
    const poolSize = options.poolSize ?? 2;
    const settings: Record<string, string | number> = {
      listen_addr: "127.0.0.1",
      listen_port: port,
      // TCP only: no socket files outside the directory.
      unix_socket_dir: "",
      // The user must still be listed in auth_file; no password is checked.
      auth_type: "trust",
      auth_file: join(dir, "userlist.txt"),
      admin_users: "postgres",
      pool_mode: options.poolMode ?? "transaction",
      default_pool_size: poolSize,
      // Kept full (refilled after a server restart) while clients are connected, so that there
      // is always another server connection to hand out.
      min_pool_size: poolSize,
      max_client_conn: 500,
      server_round_robin: options.roundRobin === false ? 0 : 1,
      // A replica restarted by a test is reconnected within a second, not the default 15 s.
      server_login_retry: 1,
      logfile: logFile,
      pidfile: pidFile,
      ...options.settings,
    };
    const config = [
      "[databases]",
      ...nodes.map((n) => `${n.name} = host=127.0.0.1 port=${n.port} dbname=postgres user=${options.serverUser ?? "postgres"}`),
      ...Object.entries(options.databases ?? {}).map(([name, conn]) => `${name} = ${conn}`),
      "",
      "[pgbouncer]",
      ...Object.entries(settings).map(([key, value]) => `${key} = ${value}`),
      "",
    ].join("\n");
    const ini = join(dir, "pgbouncer.ini");
    writeFileSync(ini, config);
    writeFileSync(join(dir, "userlist.txt"), '"postgres" ""\n');
    // PgBouncer refuses to run as root; the files are the postgres user's, like a cluster's.
    if (isRoot) for (const f of ["", "pgbouncer.ini", "userlist.txt", "owner.pid"]) chownSync(join(dir, f), pgId("-u"), pgId("-g"));
    const [cmd, argv] = isRoot ? ["runuser", ["-u", "postgres", "--", bin, "-d", ini]] : [bin, ["-d", ini]];
    const started = spawnSync(cmd, argv, { encoding: "utf8" });
    if (started.status !== 0) throw new Error(`[ryw harness] pgbouncer failed to start (${started.status}): ${started.stderr || started.stdout}${tail(logFile)}`);
    const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
    const adminUrl = url("pgbouncer");
    await waitFor(async () => {
      if (existsSync(pidFile) && !isAlive(readPid(pidFile))) throw new Error(`pgbouncer exited${tail(logFile)}`);
      // The admin console speaks only the simple protocol.
      await pgbouncerAdmin(adminUrl, "show version");
      return true;
    }, 10_000, "pgbouncer to accept connections");
    // Every pool full before the first test, so that there is always another server connection
    // to hand out. PgBouncer opens them on demand (min_pool_size only while clients are
    // connected): as many clients as the pool holds, each in a statement that lasts a moment.
    await waitFor(async () => {
      await Promise.all(nodes.flatMap((n) => Array.from({ length: poolSize }, () => query(url(n.name), "select pg_sleep(0.05)"))));
      const servers = await pgbouncerAdmin(adminUrl, "show servers");
      return nodes.every((n) => servers.filter((s) => s.database === n.name && s.state === "idle").length >= poolSize);
    }, 20_000, `pgbouncer to open ${poolSize} server connections per database`);
    let stopped: Promise<void> | undefined;
    return {
      port,
      pid: readPid(pidFile)!,
      dir,
      version,
      config,
      url,
      primaryUrl: url(cluster.primary.name),
      replicaUrls: cluster.replicas.map((r) => url(r.name)),
      adminUrl,
      stop: () => (stopped ??= stop(entry)),
    };
  } catch (error) {
    stopSync(entry);
    throw error;
  }
}

/**
 * Runs one admin console command (`show servers`, `show pools`...) and returns its rows. The
 * console answers only simple-protocol queries, and has no pg_type for postgres.js to fetch.
 */
export function pgbouncerAdmin(adminUrl: string, command: string): Promise<Array<Record<string, unknown>>> {
  return query(adminUrl, command);
}

async function query(url: string, text: string): Promise<Array<Record<string, unknown>>> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5, prepare: false, fetch_types: false });
  try {
    return [...(await sql.unsafe(text))];
  } finally {
    await sql.end({ timeout: 1 });
  }
}

async function stop(entry: { dir: string; pidFile: string }): Promise<void> {
  const pid = readPid(entry.pidFile);
  // SIGTERM: immediate shutdown (1.18); client connections are closed.
  kill(pid, "SIGTERM");
  try {
    await waitFor(() => !isAlive(pid), 5000, "pgbouncer to exit");
  } finally {
    stopSync(entry);
  }
}

/** Synchronous, so that it also runs from `process.on("exit")`. */
function stopSync(entry: { dir: string; pidFile: string }): void {
  const pid = readPid(entry.pidFile);
  kill(pid);
  rmSync(entry.dir, { recursive: true, force: true });
  live.delete(entry);
}

/** Removes PgBouncers left by runs that died without cleaning up (their owner process is gone). */
function sweepAbandoned(): void {
  const base = postgresTmpdir();
  for (const name of readdirSync(base)) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join(base, name);
    if (isAlive(readPid(join(dir, "owner.pid")))) continue;
    stopSync({ dir, pidFile: join(dir, "pgbouncer.pid") });
  }
}

function tail(logFile: string): string {
  try {
    return "\n" + readFileSync(logFile, "utf8").split("\n").slice(-10).join("\n");
  } catch {
    return "";
  }
}

function which(bin: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/bin"]) {
    if (dir && existsSync(join(dir, bin))) return join(dir, bin);
  }
  return undefined;
}

function pgId(flag: "-u" | "-g"): number {
  return Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
}

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

// Whatever ends the process, its PgBouncers go with it (cluster.ts turns signals into exit).
process.once("exit", () => {
  for (const entry of [...live]) stopSync(entry);
});
