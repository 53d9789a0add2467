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
  /**
   * Read-backs that missed a write PostgreSQL itself lost: acknowledged by a primary that was
   * killed before its replicas had it, and not on the final primary. No router can serve those.
   */
  staleLost: number;
  /** Writes acknowledged before their record reached Redis (past recordTimeoutMs). */
  unsharedWrites: number;
  /** Read-backs on another app server that missed such a write: outside the guarantee, reported. */
  staleUnshared: number;
  /** Operations that failed outside a PostgreSQL failover's outage: must be 0. */
  failedOps: number;
  /**
   * Operations that failed while the primary address led to no writable primary (from the old
   * primary's stop until LINGER_MS after the promoted one took over): writes cannot succeed then,
   * nor reads that need the primary.
   */
  outageOps: number;
  replicaShare: number;
}

/** One PostgreSQL failover of the run, seen by the users. */
export interface FailoverFigures {
  detail: string;
  /** From the old primary's stop until the primary address led to the promoted one. */
  outageMs: number;
  /** From then until a read-back was served by a replica again (undefined: none was). */
  replicasBackMs: number | undefined;
  outageOps: number;
  /** Acknowledged writes sent before its outage ended that are not on the final primary. */
  lostWrites: number;
}

export interface ChaosSummary extends Figures {
  orm: Orm;
  /** One Redis or a Redis Cluster. */
  redis: RedisMode;
  writes: number;
  /** Acknowledged writes that are not on the final primary (a killed primary had not shipped them). */
  lostWrites: number;
  /** Lost writes that no failover with a killed primary explains: must be 0. */
  unexplainedLostWrites: number;
  failovers: FailoverFigures[];
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
// Failures are excused from the primary's stop until LINGER_MS after the address moved.
const outageOf = (f: Fault) => ({ from: f.outage?.from ?? f.startedAt, to: (f.outage?.to ?? f.endedAt) + LINGER_MS });

/** What the figures need besides the checks: which posts PostgreSQL lost, and the outages. */
interface Judge {
  lost: ReadonlySet<string>;
  inOutage: (from: number, to: number) => boolean;
}

// The guarantee, as the README states it: across app servers for every write whose record
// reached the store within recordTimeoutMs, and on the writer's own app server for every write.
const excused = (c: Check) => c.unshared && c.readServer !== c.writeServer;

function figures(checks: Check[], failed: FailedOp[], judge: Judge): Figures {
  const replica = checks.filter((c) => c.onReplica).length;
  const lost = (c: Check) => judge.lost.has(c.title);
  const outage = failed.filter((f) => judge.inOutage(f.at, f.doneAt)).length;
  return {
    reads: checks.length,
    stale: checks.filter((c) => c.stale && !excused(c) && !lost(c)).length,
    staleLost: checks.filter((c) => c.stale && lost(c)).length,
    unsharedWrites: checks.filter((c) => c.unshared).length,
    staleUnshared: checks.filter((c) => c.stale && excused(c) && !lost(c)).length,
    failedOps: failed.length - outage,
    outageOps: outage,
    replicaShare: checks.length ? round(replica / checks.length) : 0,
  };
}

/** One line per stale read: what each app server did and said, in order, in ms since the start. */
function story(s: StaleRead, t0: number, lost: ReadonlySet<string>): string {
  const events = (list: StaleRead["writeEvents"]) => list.map((e) => `+${e.at - t0} ${e.detail}`).join("; ");
  return `user ${s.user}: +${s.writeAt - t0} write post ${s.postId} on ${s.writeServer} [${events(s.writeEvents)}] acked; +${s.readAt - t0} ${s.reread ? "read again" : "read"} on ${s.readServer} [${events(s.readEvents)}] -> row missing${lost.has(s.title) ? " (not on the final primary either: lost in a failover)" : ""}`;
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
  /** Titles of acknowledged posts that the final primary does not have. */
  lost: ReadonlySet<string>;
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
  const failovers = faults.filter((f) => f.kind === "pg-failover");
  const outages = failovers.map(outageOf);
  const judge: Judge = { lost: input.lost, inOutage: (from, to) => outages.some((o) => o.from <= to && o.to >= from) };
  const byFault: Partial<Record<FaultKind | "calm", Figures>> = {};
  for (const kind of input.kinds) {
    const mine = faults.filter((f) => f.kind === kind);
    const hit = (from: number, to: number) => mine.some((f) => meets(f, from, to));
    byFault[kind] = figures(results.checks.filter((c) => hit(c.writeAt, c.readDoneAt)), results.failed.filter((f) => hit(f.at, f.doneAt)), judge);
  }
  byFault.calm = figures(results.checks.filter((c) => near(c.writeAt, c.readDoneAt).length === 0), results.failed.filter((f) => near(f.at, f.doneAt).length === 0), judge);
  const lostAcks = results.acked.filter((a) => input.lost.has(a.title));
  const counted = (c: Check) => !input.lost.has(c.title) && !excused(c);
  // A write can be lost only by a primary killed before it shipped it: one sent before the
  // outage of a lossy failover ended (it may have been acknowledged just before the kill).
  const writableAt = (f: Fault) => f.outage?.to ?? f.endedAt;
  const explained = (at: number) => failovers.some((f) => f.lossy && at <= writableAt(f));
  const failoverFigures = failovers.map((f, i): FailoverFigures => {
    const writable = writableAt(f);
    const back = results.checks.filter((c) => c.onReplica && c.readAt >= writable).reduce((min, c) => Math.min(min, c.readAt), Infinity);
    const previous = i === 0 ? -Infinity : writableAt(failovers[i - 1]!);
    const outage = outages[i]!;
    return {
      detail: f.detail,
      outageMs: writable - outage.from,
      replicasBackMs: back === Infinity ? undefined : back - writable,
      outageOps: results.failed.filter((op) => op.doneAt >= outage.from && op.at <= outage.to).length,
      lostWrites: lostAcks.filter((a) => a.at > previous && a.at <= writable).length,
    };
  });
  const counts: Partial<Record<FaultKind, number>> = Object.fromEntries(input.kinds.map((k) => [k, faults.filter((f) => f.kind === k).length]));
  return {
    orm: input.orm,
    redis: input.redis,
    ...figures(results.checks, results.failed, judge),
    writes: results.writes,
    lostWrites: lostAcks.length,
    unexplainedLostWrites: lostAcks.filter((a) => !explained(a.at)).length,
    failovers: failoverFigures,
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
    // The ones ryw is answerable for first: reads of writes that PostgreSQL lost, or that were
    // unshared and read elsewhere, only after them.
    staleSamples: [...results.stale.filter((c) => counted(c)), ...results.stale.filter((c) => !counted(c))].slice(0, 20).map((s) => ({ story: story(s, startedAt, input.lost), ...s, faults: near(s.writeAt, s.readDoneAt).map(label) })),
    failureSamples: results.failed.filter((f) => !judge.inOutage(f.at, f.doneAt)).slice(0, 20).map((f) => ({ story: `+${f.at - startedAt} ${f.op} on ${f.server} [${f.events.map((e) => `+${e.at - startedAt} ${e.detail}`).join("; ")}] -> ${f.error.slice(0, 300)}`, ...f, faults: near(f.at, f.doneAt).map(label) })),
    faultLog: faults.map(label),
    runErrors: input.runErrors,
    core: input.core,
  };
}
