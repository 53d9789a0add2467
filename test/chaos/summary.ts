import type { ProxyStats } from "../harness/proxy.js";
import type { Fault, FaultKind, RedisMode } from "./faults.js";
import type { Orm } from "./protocol.js";
import type { ServerStatements } from "./statements.js";
import type { Check, FailedOp, StaleRead, UserResults } from "./users.js";

/**
 * A fault's effects outlast it: a store that failed is skipped for storeRetryMs (250 ms), pinned
 * writes are retried every 250 ms, clients reconnect with backoff, replay catches up. A check
 * counts towards a fault when its write-to-read span meets the fault or this long after it.
 */
export const LINGER_MS = 1000;

export interface AppServerReport {
  name: string;
  stats: unknown;
  unhandled: string[];
}

export interface Figures {
  reads: number;
  /** Read-backs that missed their write where ryw promises they never do: must be 0. */
  stale: number;
  /** Writes acknowledged before their record reached Redis (past recordTimeoutMs). */
  unsharedWrites: number;
  /** Read-backs on another app server that missed such a write: outside the guarantee, reported. */
  staleUnshared: number;
  failedOps: number;
  replicaShare: number;
}

export interface ChaosSummary extends Figures {
  orm: Orm;
  /** One Redis or a Redis Cluster. */
  redis: RedisMode;
  writes: number;
  /** How many faults of each kind ran, for the kinds of the run. */
  faults: Partial<Record<FaultKind, number>>;
  /** Checks whose write-to-read span (failed operations: their own span) met a fault of the kind, or `calm`: none at all. */
  byFault: Partial<Record<FaultKind | "calm", Figures>>;
  /** Checks that read a user's latest write again later, rather than right after it. */
  rereads: number;
  /** Checks that read on another app server than the one that wrote. */
  crossServerReads: number;
  /** Where the read-backs went and why, from ryw's route events: "r0:caught-up", "primary:lagging"... */
  routes: Record<string, number>;
  /** pg_stat_statements on each database server for the Post table. */
  perServer: Record<string, ServerStatements>;
  /** Connections each fault proxy accepted, refused and cut. */
  proxies: Record<string, ProxyStats>;
  /** Per app server: its own ryw stats at the end, and any unhandled rejection it saw. */
  appServers: AppServerReport[];
  /** Unhandled rejections in all app servers: each would have crashed a real app. */
  unhandledRejections: number;
  /** Wall-clock start of the load (ms since the epoch): event and fault times count from here. */
  startedAt: number;
  durationMs: number;
  /**
   * Every stale read, grouped by what the write's app server said about recording it and where
   * the read went: e.g. "record error STORE_TIMEOUT -> r0:caught-up". A stale read after a
   * "recorded" write would point at something else than a lost record.
   */
  staleCauses: Record<string, number>;
  /** The first stale reads, with ryw's events on both app servers and the faults around them. */
  staleSamples: Array<StaleRead & { story: string; faults: string[] }>;
  failureSamples: Array<FailedOp & { story: string; faults: string[] }>;
  /** Every fault with its times relative to the start of the load, in ms. */
  faultLog: string[];
  /** Problems of the run itself (a fault control that failed, an app server that exited): its figures are not trustworthy. */
  runErrors: string[];
  /** Which @ryw/core the app servers ran. */
  core: string;
}

const meets = (fault: Fault, from: number, to: number) => fault.startedAt <= to && fault.endedAt + LINGER_MS >= from;

function figures(checks: Check[], failed: FailedOp[]): Figures {
  const replica = checks.filter((c) => c.onReplica).length;
  // The guarantee, as the README states it: across app servers for every write whose record
  // reached the store within recordTimeoutMs, and on the writer's own app server for every write.
  const excused = (c: Check) => c.unshared && c.readServer !== c.writeServer;
  return {
    reads: checks.length,
    stale: checks.filter((c) => c.stale && !excused(c)).length,
    unsharedWrites: checks.filter((c) => c.unshared).length,
    staleUnshared: checks.filter((c) => c.stale && excused(c)).length,
    failedOps: failed.length,
    replicaShare: checks.length ? round(replica / checks.length) : 0,
  };
}

/** One line per stale read: what each app server did and said, in order, in ms since the start. */
function story(s: StaleRead, t0: number): string {
  const events = (list: StaleRead["writeEvents"]) => list.map((e) => `+${e.at - t0} ${e.detail}`).join("; ");
  return `user ${s.user}: +${s.writeAt - t0} write post ${s.postId} on ${s.writeServer} [${events(s.writeEvents)}] acked; +${s.readAt - t0} ${s.reread ? "read again" : "read"} on ${s.readServer} [${events(s.readEvents)}] -> row missing`;
}

/** What the writer said about the record, and where the read went. */
function cause(s: StaleRead): string {
  const record = s.writeEvents.filter((e) => e.type !== "route" && /record|unshared/.test(e.detail)).at(-1);
  const said = !record ? "no record event" : record.type === "record" ? "recorded" : `${record.type} ${record.detail.match(/[A-Z][A-Z_]{4,}/)?.[0] ?? record.detail.slice(0, 40)}`;
  return `${said} -> ${s.route ? `${s.route.target}:${s.route.reason}` : "unrouted"}`;
}

function count(keys: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}

const round = (x: number) => Math.round(x * 10_000) / 10_000;

export function summarize(input: {
  orm: Orm;
  redis: RedisMode;
  /** The fault kinds of the run: one entry each in `faults` and `byFault`. */
  kinds: ReadonlyArray<FaultKind>;
  results: UserResults;
  faults: Fault[];
  startedAt: number;
  durationMs: number;
  perServer: Record<string, ServerStatements>;
  appServers: AppServerReport[];
  proxies: Record<string, ProxyStats>;
  runErrors: string[];
  core: string;
}): ChaosSummary {
  const { results, faults, startedAt } = input;
  const near = (from: number, to: number) => faults.filter((f) => meets(f, from, to));
  const label = (f: Fault) => `${f.kind} ${f.target} ${f.detail} [${f.startedAt - startedAt}..${f.endedAt - startedAt} ms]`;
  const byFault: Partial<Record<FaultKind | "calm", Figures>> = {};
  for (const kind of input.kinds) {
    const mine = faults.filter((f) => f.kind === kind);
    const hit = (from: number, to: number) => mine.some((f) => meets(f, from, to));
    byFault[kind] = figures(results.checks.filter((c) => hit(c.writeAt, c.readDoneAt)), results.failed.filter((f) => hit(f.at, f.doneAt)));
  }
  byFault.calm = figures(results.checks.filter((c) => near(c.writeAt, c.readDoneAt).length === 0), results.failed.filter((f) => near(f.at, f.doneAt).length === 0));
  const counts: Partial<Record<FaultKind, number>> = Object.fromEntries(input.kinds.map((k) => [k, faults.filter((f) => f.kind === k).length]));
  return {
    orm: input.orm,
    redis: input.redis,
    ...figures(results.checks, results.failed),
    writes: results.writes,
    faults: counts,
    byFault,
    rereads: results.checks.filter((c) => c.reread).length,
    crossServerReads: results.checks.filter((c) => c.writeServer !== c.readServer).length,
    routes: results.routes,
    perServer: input.perServer,
    appServers: input.appServers,
    proxies: input.proxies,
    unhandledRejections: input.appServers.reduce((a, s) => a + s.unhandled.length, 0),
    startedAt,
    durationMs: input.durationMs,
    staleCauses: count(results.stale.map(cause)),
    staleSamples: results.stale.slice(0, 20).map((s) => ({ story: story(s, startedAt), ...s, faults: near(s.writeAt, s.readDoneAt).map(label) })),
    failureSamples: results.failed.slice(0, 20).map((f) => ({ story: `+${f.at - startedAt} ${f.op} on ${f.server} [${f.events.map((e) => `+${e.at - startedAt} ${e.detail}`).join("; ")}] -> ${f.error.slice(0, 300)}`, ...f, faults: near(f.at, f.doneAt).map(label) })),
    faultLog: faults.map(label),
    runErrors: input.runErrors,
    core: input.core,
  };
}
