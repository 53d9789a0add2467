import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { waitFor } from "./cluster.js";
import { isAlive, kill, readPid } from "./process.js";

/**
 * A real Redis Cluster on loopback: `masters` masters with `replicasPerMaster` replicas each, every
 * node a `redis-server --cluster-enabled yes` on free ports (client and bus port both chosen, so
 * nothing collides with port + 10000), joined with `redis-cli --cluster create`. No persistence:
 * a node that is killed and started again comes back empty and rejoins as a replica. Plain data,
 * like ClusterInfo, so a test can hand it to other processes.
 */
export interface RedisClusterInfo {
  dir: string;
  nodes: RedisClusterNode[];
  nodeTimeoutMs: number;
}

export interface RedisClusterNode {
  port: number;
  busPort: number;
  dir: string;
  pidFile: string;
  logFile: string;
}

export interface RedisClusterOptions {
  /** @default 3 */
  masters?: number;
  /** @default 1 */
  replicasPerMaster?: number;
  /**
   * cluster-node-timeout: how long a master may be unreachable before its replica takes over.
   * Short, so that a kill -9 fails over in a couple of seconds; long enough that a busy 2-core
   * machine does not fail masters over by itself.
   * @default 1000
   */
  nodeTimeoutMs?: number;
}

/** One line of CLUSTER NODES, as a live node sees the cluster. */
export interface ClusterNodeView {
  id: string;
  port: number;
  role: "master" | "replica";
  /** The master's id, for a replica. */
  masterId: string | undefined;
  /** Flags such as `myself`, `fail`, `fail?`, `handshake`, `noaddr`. */
  flags: string[];
  /** Slot ranges owned, inclusive, for a master. */
  slots: Array<[number, number]>;
}

/** What a failover did: the master that lost its slots and the node that took them. */
export interface RedisFailover {
  from: RedisClusterNode;
  to: RedisClusterNode;
}

const DIR_PREFIX = "ryw-redis-cluster-";
const HOST = "127.0.0.1";
const live = new Set<RedisClusterInfo>();
// Replicas stopped by holdReplica: let go on teardown, before every node is killed.
const stopped = new Set<() => void>();

export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterInfo> {
  sweepAbandoned();
  const masters = options.masters ?? 3;
  const perMaster = options.replicasPerMaster ?? 1;
  if (masters < 3) throw new Error("[ryw harness] Redis Cluster needs at least 3 masters");
  const count = masters * (1 + perMaster);
  const dir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
  writeFileSync(join(dir, "owner.pid"), String(process.pid));
  const ports = await freePorts(2 * count);
  const info: RedisClusterInfo = {
    dir,
    nodeTimeoutMs: options.nodeTimeoutMs ?? 1000,
    nodes: Array.from({ length: count }, (_, i) => {
      const nodeDir = join(dir, `n${i}`);
      return { port: ports[i]!, busPort: ports[count + i]!, dir: nodeDir, pidFile: join(nodeDir, "redis.pid"), logFile: join(nodeDir, "redis.log") };
    }),
  };
  live.add(info);
  try {
    for (const node of info.nodes) {
      mkdirSync(node.dir);
      await launch(info, node);
    }
    await run("redis-cli", ["--cluster", "create", ...info.nodes.map((n) => `${HOST}:${n.port}`), "--cluster-replicas", String(perMaster), "--cluster-yes"]);
    await waitForRedisCluster(info, 30_000);
    return info;
  } catch (error) {
    stopRedisClusterSync(info);
    throw error;
  }
}

/** Kills every node and removes the directory. Safe to call twice. */
export async function stopRedisCluster(info: RedisClusterInfo): Promise<void> {
  stopRedisClusterSync(info);
}

/** Synchronous, so that it also works from `process.on("exit")`. */
export function stopRedisClusterSync(info: RedisClusterInfo): void {
  for (const release of [...stopped]) release();
  const pids = info.nodes.map((n) => readPid(n.pidFile));
  for (const pid of pids) kill(pid);
  // SIGKILL is delivered, not done: wait (a few ms, 5 s at most) until every node has exited.
  const deadline = Date.now() + 5000;
  while (pids.some(isAlive) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  rmSync(info.dir, { recursive: true, force: true });
  live.delete(info);
}

/** `{ host, port }` of every node, as ioredis's Cluster (and RedisStore's `nodes`) takes them. */
export function startupNodes(info: RedisClusterInfo): Array<{ host: string; port: number }> {
  return info.nodes.map((n) => ({ host: HOST, port: n.port }));
}

/** The node's `redis://` URL. */
export function nodeUrl(node: RedisClusterNode): string {
  return `redis://${HOST}:${node.port}`;
}

/** CLUSTER NODES as the first live node (or `via`) sees it. */
export async function clusterNodes(info: RedisClusterInfo, via?: RedisClusterNode): Promise<ClusterNodeView[]> {
  const from = via ?? answering(info);
  return parseNodes(String(await command(from, "cluster", "nodes")));
}

/** The hash slot of `key` (hash tags included), as the cluster computes it. */
export async function keySlot(info: RedisClusterInfo, key: string): Promise<number> {
  return Number(await command(answering(info), "cluster", "keyslot", key));
}

/** The master that owns `key`'s slot now. */
export async function ownerOf(info: RedisClusterInfo, key: string): Promise<RedisClusterNode> {
  const slot = await keySlot(info, key);
  const master = (await clusterNodes(info)).find((n) => n.role === "master" && !n.flags.includes("fail") && n.slots.some(([a, b]) => a <= slot && slot <= b));
  if (!master) throw new Error(`[ryw harness] no master owns slot ${slot}`);
  return byPort(info, master.port);
}

/** The masters that own slots, with their nodes. */
export async function clusterMasters(info: RedisClusterInfo): Promise<RedisClusterNode[]> {
  return (await clusterNodes(info)).filter((n) => n.role === "master" && n.slots.length > 0 && !n.flags.includes("fail")).map((n) => byPort(info, n.port));
}

/**
 * `CLUSTER FAILOVER` on a replica of the master that owns `key` (or of `master`): the replica
 * waits until it has the master's whole stream, then takes over; `force` skips that handshake.
 * Resolves once every node agrees on the new owner and the old master follows it again.
 */
export async function failoverMaster(info: RedisClusterInfo, keyOrMaster: string | RedisClusterNode, options: { force?: boolean } = {}): Promise<RedisFailover> {
  const from = typeof keyOrMaster === "string" ? await ownerOf(info, keyOrMaster) : keyOrMaster;
  const to = await replicaOf(info, from);
  const reply = await command(to, "cluster", "failover", ...(options.force ? ["force"] : []));
  if (reply !== "OK") throw new Error(`[ryw harness] CLUSTER FAILOVER on ${to.port} answered ${String(reply)}`);
  await waitFor(async () => (await role(to)) === "master", 30_000, `replica ${to.port} to take over from ${from.port}`);
  await waitForRedisCluster(info, 30_000);
  return { from, to };
}

/**
 * A replica that stopped following its master: its process is stopped (SIGSTOP) and the master
 * cut its replication link, so whatever the master acknowledges from now on exists on the master
 * alone. A failover then loses it, as Redis's asynchronous replication may in production.
 */
export interface HeldReplica {
  master: RedisClusterNode;
  replica: RedisClusterNode;
  /** Lets the replica run again (SIGCONT). Safe to call twice. */
  release(): void;
}

export async function holdReplica(info: RedisClusterInfo, keyOrMaster: string | RedisClusterNode): Promise<HeldReplica> {
  const master = typeof keyOrMaster === "string" ? await ownerOf(info, keyOrMaster) : keyOrMaster;
  const replica = await replicaOf(info, master);
  const pid = readPid(replica.pidFile)!;
  process.kill(pid, "SIGSTOP");
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    if (isAlive(pid)) process.kill(pid, "SIGCONT");
  };
  stopped.add(release);
  try {
    await command(master, "client", "kill", "type", "replica");
    // Until the master has noticed, it could still be writing to the link it is closing.
    await waitFor(async () => /connected_slaves:0/.test(String(await command(master, "info", "replication"))), 10_000, `master ${master.port} to drop its replica`);
  } catch (error) {
    release();
    throw error;
  }
  return { master, replica, release: () => (stopped.delete(release), release()) };
}

/**
 * kill -9 of the master that owns `key` (or of `master`). Resolves once a replica was promoted
 * by the cluster (after cluster-node-timeout) and every live node agrees. The killed node stays
 * down until restartRedisNode. With `held`, that replica is released right after the kill: it
 * takes over without what the master acknowledged meanwhile. `onKilled` runs once the master is
 * gone, before any replica took over.
 */
export async function killMaster(info: RedisClusterInfo, keyOrMaster: string | RedisClusterNode, options: { held?: HeldReplica; onKilled?: () => void } = {}): Promise<RedisFailover> {
  try {
    return await killAndWait(info, keyOrMaster, options);
  } finally {
    // Whatever went wrong, a held replica never stays stopped.
    options.held?.release();
  }
}

async function killAndWait(info: RedisClusterInfo, keyOrMaster: string | RedisClusterNode, options: { held?: HeldReplica; onKilled?: () => void }): Promise<RedisFailover> {
  const from = typeof keyOrMaster === "string" ? await ownerOf(info, keyOrMaster) : keyOrMaster;
  if (options.held && options.held.master.port !== from.port) throw new Error(`[ryw harness] the held replica follows ${options.held.master.port}, not ${from.port}`);
  const before = (await clusterNodes(info, from)).find((n) => n.flags.includes("myself"))!;
  if (before.role !== "master" || before.slots.length === 0) throw new Error(`[ryw harness] node ${from.port} owns no slots`);
  if (!options.held) await replicaOf(info, from);
  const pid = readPid(from.pidFile);
  kill(pid);
  await waitFor(() => !isAlive(pid), 10_000, `redis ${from.port} to exit`);
  options.held?.release();
  options.onKilled?.();
  const [first] = before.slots[0]!;
  let to: RedisClusterNode | undefined;
  await waitFor(async () => {
    const owner = (await clusterNodes(info)).find((n) => n.role === "master" && n.port !== from.port && n.slots.some(([a, b]) => a <= first && first <= b));
    to = owner && byPort(info, owner.port);
    return to !== undefined && (await role(to)) === "master" && (await unsettled(info)) === undefined;
  }, 30_000, `a replica to take over from killed master ${from.port}`);
  await waitForRedisCluster(info, 10_000);
  return { from, to: to! };
}

/** Starts a node that was killed; it rejoins (from its nodes.conf) as a replica and syncs. */
export async function restartRedisNode(info: RedisClusterInfo, node: RedisClusterNode): Promise<void> {
  if (isAlive(readPid(node.pidFile))) return;
  await launch(info, node);
  await waitForRedisCluster(info, 30_000);
}

/** The nodes that are not running (killed and not restarted). */
export function downNodes(info: RedisClusterInfo): RedisClusterNode[] {
  return info.nodes.filter((n) => !isAlive(readPid(n.pidFile)));
}

/**
 * Waits until the cluster is whole: every live node says cluster_state:ok with all 16384 slots,
 * they agree on each slot's owner, and every live replica's link to its master is up.
 */
export async function waitForRedisCluster(info: RedisClusterInfo, timeoutMs = 30_000): Promise<void> {
  let why: string | undefined = "not asked yet";
  await waitFor(async () => (why = await unsettled(info).catch((error: Error) => `${error.message}`)) === undefined, timeoutMs, "the Redis Cluster to settle").catch((error: Error) => {
    throw new Error(`${error.message}: ${why}`, { cause: error.cause });
  });
}

/** Why the cluster is not whole yet, or undefined when it is. */
async function unsettled(info: RedisClusterInfo): Promise<string | undefined> {
  const up = info.nodes.filter((n) => isAlive(readPid(n.pidFile)));
  if (up.length === 0) return "no node runs";
  const upPorts = new Set(up.map((n) => n.port));
  let owners: string | undefined;
  for (const node of up) {
    const cinfo = String(await command(node, "cluster", "info").catch((error: Error) => Promise.reject(new Error(`${node.port} (pid ${readPid(node.pidFile)}, ${procState(readPid(node.pidFile))}): ${error.message}`))));
    if (!/cluster_state:ok/.test(cinfo) || !/cluster_slots_ok:16384/.test(cinfo)) return `${node.port}: ${/cluster_state:\w+/.exec(cinfo)?.[0]}, ${/cluster_slots_ok:\d+/.exec(cinfo)?.[0]}`;
    const view = parseNodes(String(await command(node, "cluster", "nodes")));
    if (view.some((n) => n.flags.includes("handshake") || n.flags.includes("noaddr"))) return `${node.port}: a node in handshake`;
    // Every live node is known and not suspected; the owners are live, and seen alike by all.
    const suspected = view.filter((n) => upPorts.has(n.port) && (n.flags.includes("fail") || n.flags.includes("fail?"))).map((n) => n.port);
    if (suspected.length > 0) return `${node.port} suspects ${suspected.join(", ")}`;
    if (view.filter((n) => upPorts.has(n.port)).length !== up.length) return `${node.port} does not know every live node`;
    const masters = view.filter((n) => n.role === "master" && n.slots.length > 0);
    const dead = masters.find((n) => !upPorts.has(n.port));
    if (dead) return `${node.port} sees slots on ${dead.port}, which is down`;
    const map = masters.map((n) => `${n.port}:${JSON.stringify(n.slots)}`).sort().join(" ");
    if (owners !== undefined && owners !== map) return `nodes disagree on slot owners`;
    owners = map;
    const repl = String(await command(node, "info", "replication"));
    if (/role:slave/.test(repl) && (!/master_link_status:up/.test(repl) || /master_sync_in_progress:1/.test(repl))) return `replica ${node.port} is not in sync`;
  }
  return undefined;
}

/** A replica of `master` that is in sync, once the cluster is whole (a busy machine can leave a node suspected for a moment). */
async function replicaOf(info: RedisClusterInfo, master: RedisClusterNode): Promise<RedisClusterNode> {
  await waitForRedisCluster(info);
  const view = await clusterNodes(info, master);
  const me = view.find((n) => n.flags.includes("myself"))!;
  if (me.role !== "master") throw new Error(`[ryw harness] node ${master.port} is not a master`);
  const replica = view.find((n) => n.masterId === me.id && !n.flags.includes("fail") && !n.flags.includes("fail?"));
  if (!replica) throw new Error(`[ryw harness] master ${master.port} has no live replica`);
  return byPort(info, replica.port);
}

async function role(node: RedisClusterNode): Promise<string | undefined> {
  return /role:(\w+)/.exec(String(await command(node, "info", "replication")))?.[1];
}

/** A node that runs and is not held (a stopped process accepts connections and never answers). */
function answering(info: RedisClusterInfo): RedisClusterNode {
  const node = info.nodes.find((n) => isAlive(readPid(n.pidFile)) && !procState(readPid(n.pidFile)).startsWith("T"));
  if (!node) throw new Error("[ryw harness] no Redis Cluster node is running");
  return node;
}

function byPort(info: RedisClusterInfo, port: number): RedisClusterNode {
  const node = info.nodes.find((n) => n.port === port);
  if (!node) throw new Error(`[ryw harness] no node on port ${port} in this cluster`);
  return node;
}

function parseNodes(text: string): ClusterNodeView[] {
  return text.trim().split("\n").filter(Boolean).map((line) => {
    const [id, addr, flags, master, , , , , ...slots] = line.split(" ");
    const f = flags!.split(",");
    return {
      id: id!,
      port: Number(/:(\d+)@/.exec(addr!)?.[1]),
      role: f.includes("master") ? "master" : "replica",
      masterId: master === "-" ? undefined : master,
      flags: f,
      slots: slots.filter((s) => !s.startsWith("[")).map((s) => {
        const [a, b] = s.split("-").map(Number);
        return [a!, b ?? a!] as [number, number];
      }),
    };
  });
}

/** One command on one node over a fresh connection: no client state survives between calls. */
async function command(node: RedisClusterNode, ...args: string[]): Promise<unknown> {
  const client = new Redis({ host: HOST, port: node.port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, connectTimeout: 5000, commandTimeout: 5000 });
  client.on("error", () => {});
  try {
    await client.connect();
    return await client.call(args[0]!, ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

async function launch(info: RedisClusterInfo, node: RedisClusterNode): Promise<void> {
  // A killed node's pid file names a process that is gone (or an unreaped zombie): start afresh.
  rmSync(node.pidFile, { force: true });
  await run("redis-server", [
    "--port", String(node.port), "--cluster-port", String(node.busPort), "--bind", HOST,
    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", String(info.nodeTimeoutMs),
    // Any replica may take over, however long its master was gone: a loaded machine can delay pings.
    "--cluster-replica-validity-factor", "0",
    "--save", "", "--appendonly", "no", "--daemonize", "yes", "--pidfile", node.pidFile, "--logfile", node.logFile, "--dir", node.dir,
  ]);
  await waitFor(async () => isAlive(readPid(node.pidFile)) && (await command(node, "ping")) === "PONG", 10_000, `redis-server ${node.port} to answer PING`);
}

function run(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { encoding: "utf8", timeout: 60_000 }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
      reject(new Error(missing ? `[ryw harness] ${bin} not found: apt-get install -y redis-server` : `[ryw harness] ${bin} ${args.slice(0, 2).join(" ")} failed: ${stderr || stdout || error.message}`));
    });
  });
}

function procState(pid: number | undefined): string {
  try {
    return /^State:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "?";
  } catch {
    return "gone";
  }
}

function freePorts(count: number): Promise<number[]> {
  // Every listener stays open until all ports are known, so no port is handed out twice.
  return new Promise((resolve, reject) => {
    const servers = Array.from({ length: count }, () => createServer());
    const ports: number[] = [];
    for (const server of servers) {
      server.once("error", reject);
      server.listen(0, HOST, () => {
        ports.push((server.address() as { port: number }).port);
        if (ports.length === count) {
          let closed = 0;
          for (const s of servers) s.close(() => ++closed === count && resolve(ports));
        }
      });
    }
  });
}

/** Removes clusters left by runs that died without cleaning up (their owner process is gone). */
function sweepAbandoned(): void {
  const base = tmpdir();
  for (const name of readdirSync(base)) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join(base, name);
    if (isAlive(readPid(join(dir, "owner.pid")))) continue;
    for (const sub of readdirSync(dir, { withFileTypes: true })) {
      if (sub.isDirectory()) kill(readPid(join(dir, sub.name, "redis.pid")));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

// Whatever happens to the process that started clusters, they go with it.
process.once("exit", () => {
  for (const info of [...live]) stopRedisClusterSync(info);
});
let stopping = false;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    for (const info of [...live]) stopRedisClusterSync(info);
    process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1));
  });
}
