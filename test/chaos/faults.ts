import type { ClusterInfo } from "../harness/cluster.js";
import { detachReplica, failover, reclone } from "../harness/failover.js";
import { killReplica, pauseReplay, resumeReplay, setApplyDelay, startRedis, startReplica, stopRedis } from "../harness/cluster.js";
import type { RedisClusterInfo } from "../harness/redis-cluster.js";
import { clusterMasters, downNodes, failoverMaster, holdReplica, killMaster, restartRedisNode } from "../harness/redis-cluster.js";
import type { Proxies } from "./proxies.js";

/**
 * The faults of the chaos run. Replica faults and Redis faults run in two lanes at once, so they
 * overlap at random: a user's write can meet a slow Redis while the replica that serves the
 * read-back is behind, which is where read-your-writes bugs live. Every app server reaches Redis
 * through a proxy of its own, and a Redis network fault hits either all of them or one: in
 * production one app server's path to Redis can be congested while the others' are fine.
 */
export const REPLICA_FAULTS = ["replay-pause", "replica-delay", "replica-kill", "replica-stall", "replica-drop"] as const;
/**
 * A PostgreSQL failover, as Patroni or a managed service runs one: the primary goes (a clean
 * stop, whose walsenders ship every WAL record first, or kill -9, which may lose acknowledged
 * commits), a random replica is promoted (a new timeline), "the primary address" (the proxy every
 * app server writes through) moves to it, and the other replica follows the new timeline. Then
 * the old primary is cloned again as a replica of the new one, and the promoted replica's address
 * moves to it, with every connection on it cut (as an endpoint move does), so that the run goes
 * on with a primary and two replicas. It runs in the replica lane, holding the replicas.
 */
export const PRIMARY_FAULTS = ["pg-failover"] as const;
export const REDIS_FAULTS = ["redis-restart", "redis-latency", "redis-stall", "redis-drop"] as const;
/**
 * With a Redis Cluster instead of one Redis (`redis: "cluster"`), its faults replace the single
 * Redis's: a random master fails over by CLUSTER FAILOVER (nothing lost), or is killed with -9
 * (what its replica had not received yet is lost), or is killed after its replica stopped
 * following it for a while, so that the positions and intents it acknowledged meanwhile are
 * certainly lost. The killed node comes back as a replica after a hold.
 */
export const REDIS_CLUSTER_FAULTS = ["redis-failover", "redis-master-kill", "redis-master-loss"] as const;
export const FAULT_KINDS = [...REPLICA_FAULTS, ...PRIMARY_FAULTS, ...REDIS_FAULTS, ...REDIS_CLUSTER_FAULTS] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export type RedisMode = "single" | "cluster";

/** The fault kinds a run injects by default: every kind that applies to its Redis. */
export function defaultKinds(redis: RedisMode): FaultKind[] {
  return [...REPLICA_FAULTS, ...PRIMARY_FAULTS, ...(redis === "cluster" ? REDIS_CLUSTER_FAULTS : REDIS_FAULTS)];
}

/** One injected fault: from the moment it took effect to the moment it was undone. */
export interface Fault {
  kind: FaultKind;
  target: string;
  detail: string;
  startedAt: number;
  endedAt: number;
  /**
   * pg-failover: from the old primary's stop until the primary address led to a writable
   * primary again, when no write can succeed.
   */
  outage?: { from: number; to: number };
  /** pg-failover: the old primary was killed, so commits it acknowledged may be lost with it. */
  lossy?: boolean;
}

export interface FaultContext {
  /**
   * The topology as the app servers see it: `primary` is the server behind the primary proxy,
   * `replicas[i]` the one behind proxy `r<i>`. A failover replaces it (the original ClusterInfo,
   * which stopCluster needs, still lists every node).
   */
  cluster: ClusterInfo;
  /** The Redis Cluster of a `redis: "cluster"` run. */
  redisCluster?: RedisClusterInfo;
  proxies: Proxies;
  /** Names of the proxies between each app server and Redis. */
  redisPaths: string[];
  rand: () => number;
  signal: AbortSignal;
  /** Called with every fault once it has been undone. */
  done: (fault: Fault) => void;
  /**
   * Exclusive use of the PostgreSQL replicas: every replica fault holds it, and so does a Redis
   * fault that pauses them. Resolves with the function that gives it back.
   */
  lockReplicas: () => Promise<() => void>;
  /** Called right before replica `index` is killed (its statement counters die with it). */
  beforeKill: (index: number) => Promise<void>;
  /** Called right before a failover: every server's statement counters, banked under its role, and zeroed. */
  beforeFailover: () => Promise<void>;
  log: (line: string) => void;
}

const between = (rand: () => number, lo: number, hi: number) => Math.round(lo + rand() * (hi - lo));

/** A lock for FaultContext.lockReplicas: each taker waits for the one before to give it back. */
export function lock(): () => Promise<() => void> {
  let tail = Promise.resolve();
  return async () => {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const before = tail;
    tail = tail.then(() => mine);
    await before;
    return release;
  };
}

/** Applies one fault, holds it, undoes it. An abort shortens the hold; the undo always runs. */
async function inject(kind: FaultKind, ctx: FaultContext): Promise<void> {
  if (![...REPLICA_FAULTS, ...PRIMARY_FAULTS].includes(kind as never)) return injectOne(kind, ctx);
  const release = await ctx.lockReplicas();
  try {
    await injectOne(kind, ctx);
  } finally {
    release();
  }
}

async function injectOne(kind: FaultKind, ctx: FaultContext): Promise<void> {
  const { cluster, proxies, rand } = ctx;
  const replica = Math.floor(rand() * cluster.replicas.length);
  const r = `r${replica}`;
  const hold = (lo: number, hi: number) => sleep(between(rand, lo, hi), ctx.signal);
  const run = async (target: string, detail: string, apply: () => Promise<unknown>, undo: () => Promise<unknown>, holdFor: () => Promise<void>) => {
    // The fault may bite while it is being applied (a kill waits for the server to go away).
    const startedAt = Date.now();
    await apply();
    ctx.log(`${kind} ${target} ${detail}: on`);
    try {
      await holdFor();
    } finally {
      await undo();
    }
    const fault = { kind, target, detail, startedAt, endedAt: Date.now() };
    ctx.log(`${kind} ${target}: off after ${fault.endedAt - startedAt} ms`);
    ctx.done(fault);
  };
  const instant = async () => {};
  const one = ctx.redisPaths[Math.floor(rand() * ctx.redisPaths.length)]!;
  // One app server's path more often than all of them: a fault on every path sends every server
  // to the primary alike, while a fault on one path is what tests the guarantee across servers.
  const paths = rand() < 0.3 ? ctx.redisPaths : [one];
  const via = paths.length === 1 ? one : "redis";
  const onPaths = (method: "setLatency" | "stall" | "unstall" | "dropAll", ...args: unknown[]) => () => Promise.all(paths.map((p) => proxies.call(p, method, ...args)));
  switch (kind) {
    case "replay-pause":
      return run(r, "pg_wal_replay_pause()", () => pauseReplay(cluster, replica), () => resumeReplay(cluster, replica), () => hold(500, 2500));
    case "replica-delay": {
      const ms = between(rand, 200, 800);
      return run(r, `recovery_min_apply_delay ${ms} ms`, () => setApplyDelay(cluster, replica, ms), () => setApplyDelay(cluster, replica, 0), () => hold(1000, 3000));
    }
    case "replica-kill":
      return run(r, "kill -9, then restart", async () => (await ctx.beforeKill(replica), await killReplica(cluster, replica)), () => startReplica(cluster, replica), () => hold(300, 1000));
    case "replica-stall":
      return run(r, "proxy stalls", () => proxies.call(r, "stall"), () => proxies.call(r, "unstall"), () => hold(300, 1500));
    case "replica-drop":
      return run(r, "proxy closes every connection", () => proxies.call(r, "dropAll"), instant, instant);
    case "redis-restart":
      return run("redis", "shutdown nosave, then start", () => stopRedis(cluster), () => startRedis(cluster), () => hold(200, 800));
    case "redis-latency": {
      const ms = between(rand, 150, 400);
      return run(via, `+${ms} ms each way`, onPaths("setLatency", ms), onPaths("setLatency", 0), () => hold(500, 2000));
    }
    case "redis-stall":
      return run(via, "proxy stalls", onPaths("stall"), onPaths("unstall"), () => hold(500, 2000));
    case "redis-drop":
      return run(via, "proxy closes every connection", onPaths("dropAll"), instant, instant);
    case "redis-failover":
    case "redis-master-kill":
    case "redis-master-loss":
      return clusterFault(kind, ctx, run, hold);
    case "pg-failover":
      return pgFailover(ctx, replica);
  }
}

async function pgFailover(ctx: FaultContext, promote: number): Promise<void> {
  const { proxies } = ctx;
  const view = ctx.cluster;
  const r = `r${promote}`;
  // A clean switchover; a crash (on loopback its replicas have nearly everything); or a crash
  // after the replica to be promoted stopped receiving WAL for a while, so that what the old
  // primary acknowledged meanwhile is certainly lost, and positions stored in Redis for those
  // writes lie past the new timeline's fork point.
  const dice = ctx.rand();
  const how = dice < 0.34 ? "fast" : dice < 0.67 ? "kill" : "detach-kill";
  const stop = how === "fast" ? "fast" : "kill";
  const cutMs = Math.round(200 + ctx.rand() * 600);
  const went = how === "fast" ? "stopped (fast)" : how === "kill" ? "killed (-9)" : `killed (-9) ${cutMs} ms after ${r} stopped receiving WAL`;
  await ctx.beforeFailover();
  const startedAt = Date.now();
  if (how === "detach-kill") {
    await detachReplica(view.replicas[promote]!);
    await sleep(cutMs);
  }
  const failingOverAt = Date.now();
  const result = await failover(view, {
    promote,
    stopOldPrimary: stop,
    // As soon as the promoted server takes writes, as a Patroni endpoint or a DNS name moves.
    proxy: { retarget: (port: number) => proxies.call("primary", "retarget", port) },
  });
  ctx.log(`pg-failover: old primary ${went}, ${r} promoted to timeline ${result.timeline} at ${result.switchLsn}, primary address moved`);
  // The new topology at once: the old primary's node is the one that comes back behind r<promote>.
  ctx.cluster = { ...view, primary: result.newPrimary, replicas: view.replicas.map((node, i) => (i === promote ? result.oldPrimary : node)) };
  await reclone(view, result.oldPrimary, result.newPrimary);
  // The address the apps know as r<promote> now leads to the old primary, a fresh replica on the
  // new timeline. Connections still open on it lead to the new primary, and are cut.
  await proxies.call(r, "retarget", result.oldPrimary.port);
  await proxies.call(r, "dropAll");
  const others = result.followers.map((f) => `${f.name} ${f.how}${f.why ? ` (${f.why})` : ""}`).join(", ");
  const writableAt = failingOverAt + result.ms.stop + result.ms.promote + result.ms.retarget;
  const fault: Fault = { kind: "pg-failover", target: "primary", outage: { from: failingOverAt, to: writableAt }, lossy: stop === "kill", detail: `old primary ${went}; ${result.newPrimary.name} (behind ${r}) promoted, timeline ${result.timeline} from ${result.switchLsn}, writable after ${result.ms.stop + result.ms.promote} ms; ${others}; old primary re-cloned behind ${r}`, startedAt, endedAt: Date.now() };
  ctx.log(`pg-failover: off after ${fault.endedAt - startedAt} ms: ${fault.detail}`);
  ctx.done(fault);
}

async function clusterFault(
  kind: "redis-failover" | "redis-master-kill" | "redis-master-loss",
  ctx: FaultContext,
  run: (target: string, detail: string, apply: () => Promise<unknown>, undo: () => Promise<unknown>, holdFor: () => Promise<void>) => Promise<void>,
  hold: (lo: number, hi: number) => Promise<void>,
): Promise<void> {
  const info = ctx.redisCluster;
  if (!info) throw new Error(`[ryw chaos] ${kind} needs a run with redis: "cluster"`);
  const masters = await clusterMasters(info);
  const master = masters[Math.floor(ctx.rand() * masters.length)]!;
  const target = `redis:${master.port}`;
  // Every killed node runs again, and the cluster is whole, before the next fault; also when the
  // kill itself failed half-way.
  const restart = async () => {
    for (const node of downNodes(info)) await restartRedisNode(info, node);
  };
  const orRestart = (apply: () => Promise<unknown>) => () => apply().catch(async (error: unknown) => {
    await restart();
    throw error;
  });
  switch (kind) {
    case "redis-failover":
      return run(target, "CLUSTER FAILOVER on its replica", () => failoverMaster(info, master), async () => {}, async () => {});
    case "redis-master-kill":
      return run(target, "kill -9, a replica takes over; restart", orRestart(() => killMaster(info, master)), restart, () => hold(300, 1500));
    case "redis-master-loss": {
      // The replica stops following while the load goes on, then the master dies: what it
      // acknowledged in between is gone from the cluster. Both PostgreSQL replicas stop replaying
      // right after the replica stopped, until a while after the failover: they have every write
      // whose position survives in Redis and none of those whose position is lost, so a read
      // trusting what the new master says would be served stale (some users keep reloading their
      // latest write, with no newer write to cover it: see users.ts).
      const ms = Math.round(200 + ctx.rand() * 600);
      let releaseReplicas: (() => void) | undefined;
      const resume = async () => {
        try {
          for (const i of ctx.cluster.replicas.keys()) await resumeReplay(ctx.cluster, i);
        } finally {
          releaseReplicas?.();
        }
      };
      const apply = async () => {
        releaseReplicas = await ctx.lockReplicas();
        const held = await holdReplica(info, master);
        try {
          await Promise.all([...ctx.cluster.replicas.keys()].map((i) => pauseReplay(ctx.cluster, i)));
          await sleep(ms);
          await killMaster(info, master, { held });
        } finally {
          held.release();
        }
      };
      const undo = async () => {
        try {
          await resume();
        } finally {
          await restart();
        }
      };
      return run(target, `replicas paused; its replica stopped ${ms} ms, then kill -9 (what the master took meanwhile is lost); restart`, () => apply().catch(async (error: unknown) => (await undo(), Promise.reject(error))), undo, () => hold(300, 1500));
    }
  }
}

/**
 * Runs one lane until `signal` aborts: first every kind once in random order, then random kinds,
 * with a short calm gap between faults.
 */
export async function runLane(kinds: ReadonlyArray<FaultKind>, ctx: FaultContext): Promise<void> {
  if (kinds.length === 0) return;
  const firstRound = shuffle([...kinds], ctx.rand);
  while (!ctx.signal.aborted) {
    const kind = firstRound.shift() ?? kinds[Math.floor(ctx.rand() * kinds.length)]!;
    await inject(kind, ctx);
    // Calm time between faults: recoveries finish, and reads can reach replicas again.
    await sleep(between(ctx.rand, 500, 2500), ctx.signal);
  }
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
