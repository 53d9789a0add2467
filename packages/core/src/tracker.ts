import type { Lsn } from "./lsn.js";
import { parseLsn } from "./lsn.js";
import { invalidOption } from "./errors.js";
import type { SqlRunner } from "./sql.js";
import { lsnFromRow, PRIMARY_POLL_SQL, timelineFromRow, timelineOf } from "./position.js";
import { positiveInt } from "./validate.js";
import { withTimeout } from "./timers.js";
import { PrimaryHistory } from "./lag.js";

/** `unknown`: not sampled yet. `promoted`: no longer in recovery, so its position froze. */
export type ReplicaStatus = "unknown" | "up" | "down" | "promoted";

export interface ReplicaConfig {
  /** Shown in stats and events. @default "replica-<index>" */
  name?: string;
  /** Runs the probe statement on this replica. */
  query: SqlRunner;
  /**
   * Optional: calls `lost` whenever a connection to this replica closes unexpectedly, and returns
   * an unsubscribe function. A replica that crash-restarts can come back behind the position
   * sampled before; every connection to it closes when it goes down, so with this hook its
   * sample is dropped at once instead of at the next poll. The ORM packages wire it for the
   * clients they create. See {@link ReplicaTracker.connectionLost}.
   */
  watch?: (lost: () => void) => () => void;
}

export interface TrackerOptions {
  replicas: ReadonlyArray<ReplicaConfig>;
  /** Runs statements on the primary; used for lag figures and the primary's latest position. */
  primary?: SqlRunner;
  /** Background poll interval per replica. @default 100 */
  intervalMs?: number;
  /** Consecutive probe errors before a replica is marked down. @default 2 */
  downAfter?: number;
  /** A probe slower than this counts as an error. @default 1000 */
  probeTimeoutMs?: number;
  /** Longest pause between re-probes of a down replica. @default 2000 */
  maxBackoffMs?: number;
  /**
   * Least time between two on-demand refreshes of one replica. With the poll, probes per replica
   * stay under 1000/intervalMs + 1000/minRefreshMs a second, whatever the request rate. @default 20
   */
  minRefreshMs?: number;
  /** Called with each probe error. */
  onError?: (replica: string, error: unknown) => void;
}

/** A read-only view of one replica, as the router and stats see it. */
export interface ReplicaView {
  readonly index: number;
  readonly name: string;
  readonly status: ReplicaStatus;
  /** Replayed position from the latest sample; a safe lower bound for any query started after it. */
  readonly position: Lsn | undefined;
  /** Bytes of WAL the primary has inserted beyond this replica's replayed position. */
  readonly lagBytes: number | undefined;
  /**
   * An upper bound on the replay lag: every write the primary acknowledged more than `lagMs` ago
   * has been replayed here. It includes the time since the primary's last poll, so a replica
   * that keeps up shows up to about one poll interval. `undefined` when not known.
   */
  readonly lagMs: number | undefined;
  readonly sampledAt: number | undefined;
  /**
   * The timeline this replica is on, from its last sample: `received_tli` of its WAL receiver
   * (visible to superusers and members of `pg_read_all_stats`), else the timeline of its last
   * restartpoint (`pg_control_checkpoint()`), which is never newer than the one it replays.
   */
  readonly timeline: number | undefined;
  readonly consecutiveErrors: number;
  /**
   * Changes whenever the sample stops describing the server now answering: a restart (new
   * postmaster start time), a lost connection, a failed probe. A read that started on one epoch
   * and finished on another may have run on a restarted server, so the router does not keep it.
   */
  readonly epoch: number;
}

interface Replica {
  index: number;
  name: string;
  query: SqlRunner;
  status: ReplicaStatus;
  position: Lsn | undefined;
  sampledAt: number | undefined;
  errors: number;
  nextProbeAt: number;
  lastRefreshAt: number;
  inFlight: Promise<void> | undefined;
  /** A probe to send once `inFlight` settles, shared by `sampleSince` callers that need a newer one. */
  queued: Promise<void> | undefined;
  /** `performance.now()` when `inFlight` was sent. */
  inFlightSentAt: number;
  /** `performance.now()` when the probe behind `position` was sent; `undefined` with no position. */
  sampleSentAt: number | undefined;
  seq: number;
  acceptedSeq: number;
  /** `pg_postmaster_start_time()` of the sampled server: it changes when the server restarts. */
  startedAt: string | undefined;
  timeline: number | undefined;
  epoch: number;
  unwatch: (() => void) | undefined;
}

const PROBE_SQL = "select pg_is_in_recovery() as recovery, pg_last_wal_replay_lsn()::text as replay, pg_postmaster_start_time()::text as started, coalesce((select received_tli from pg_stat_wal_receiver), (pg_control_checkpoint()).timeline_id) as timeline";

/** The primary's timeline, and the first position this tracker read on it (see {@link ReplicaTracker.timeline}). */
export interface PrimaryTimeline {
  readonly id: number;
  readonly firstPosition: Lsn;
}

/**
 * Knows, per process, how far each replica has replayed, without a query per read: a background
 * poller samples every replica, and reads that need a newer sample share one on-demand probe.
 */
export class ReplicaTracker {
  readonly #replicas: Replica[];
  readonly #primary: SqlRunner | undefined;
  readonly #intervalMs: number;
  readonly #downAfter: number;
  readonly #probeTimeoutMs: number;
  readonly #maxBackoffMs: number;
  readonly #minRefreshMs: number;
  readonly #onError: ((replica: string, error: unknown) => void) | undefined;
  readonly #history = new PrimaryHistory();
  #primaryPosition: Lsn | undefined;
  /** The newest primary position read started, and the newest answered, by send time. */
  #primaryInFlight: { sentAt: number; promise: Promise<Lsn | undefined> } | undefined;
  #primaryDone: { sentAt: number; lsn: Lsn } | undefined;
  #timeline: PrimaryTimeline | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #firstRound: Promise<void>;

  constructor(options: TrackerOptions) {
    if (!Array.isArray(options?.replicas)) throw invalidOption("replicas", "an array of { name?, query }", options?.replicas);
    this.#intervalMs = positiveInt("intervalMs", options.intervalMs, 100);
    this.#downAfter = positiveInt("downAfter", options.downAfter, 2);
    this.#probeTimeoutMs = positiveInt("probeTimeoutMs", options.probeTimeoutMs, 1000);
    this.#maxBackoffMs = positiveInt("maxBackoffMs", options.maxBackoffMs, 2000);
    this.#minRefreshMs = positiveInt("minRefreshMs", options.minRefreshMs, 20, 0);
    this.#onError = options.onError;
    this.#primary = options.primary;
    const names = new Set<string>();
    this.#replicas = options.replicas.map((config, index) => {
      if (typeof config?.query !== "function") throw invalidOption(`replicas[${index}].query`, "a function (text) => Promise<rows>", config?.query);
      const name = config.name ?? `replica-${index}`;
      if (names.has(name)) throw invalidOption(`replicas[${index}].name`, "unique", name);
      names.add(name);
      if (config.watch !== undefined && typeof config.watch !== "function") throw invalidOption(`replicas[${index}].watch`, "a function (lost) => unsubscribe", config.watch);
      const replica: Replica = { index, name, query: config.query, status: "unknown", position: undefined, sampledAt: undefined, errors: 0, nextProbeAt: 0, lastRefreshAt: 0, inFlight: undefined, queued: undefined, inFlightSentAt: 0, sampleSentAt: undefined, seq: 0, acceptedSeq: 0, startedAt: undefined, timeline: undefined, epoch: 0, unwatch: undefined };
      return replica;
    });
    this.#replicas.forEach((r, index) => {
      r.unwatch = options.replicas[index]!.watch?.(() => this.connectionLost(index));
    });
    this.#firstRound = Promise.all([...this.#replicas.map((r) => this.#probe(r)), this.refreshPrimary()]).then(() => {});
    this.#schedule();
  }

  /** Resolves once every replica has been probed once (successfully or not). */
  ready(): Promise<void> {
    return this.#firstRound;
  }

  get replicas(): ReadonlyArray<ReplicaView> {
    return this.#replicas.map((r) => this.#view(r));
  }

  /** Entries of the primary position history behind `lagMs` (bounded: 4096). */
  get historySize(): number {
    return this.#history.size;
  }

  /** Background poll interval per replica, in ms. */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  /** The primary's latest known position: from the poller or from recorded writes. */
  get primaryPosition(): Lsn | undefined {
    return this.#primaryPosition;
  }

  /**
   * The primary's timeline as of its latest poll, with the first position read on it; `undefined`
   * before the first poll answered. A failover starts a new timeline: positions up to its switch
   * point are common to the old and the new one, and WAL the old primary wrote past that point
   * and never shipped exists on no server of the new timeline. `firstPosition` is at or past the
   * switch point (the new timeline begins there), so it covers everything the two timelines share.
   */
  get timeline(): PrimaryTimeline | undefined {
    return this.#timeline;
  }

  /**
   * Replicas that are up and have replayed at least `required` (all up replicas with a known
   * position when `required` is undefined). Unknown and down replicas are never candidates, nor
   * is a replica on another timeline than the primary's (see {@link #onPrimaryTimeline}).
   */
  candidates(required: Lsn | undefined): ReplicaView[] {
    const out: ReplicaView[] = [];
    for (const r of this.#replicas) {
      if (this.#usable(r) && (required === undefined || r.position! >= required)) out.push(this.#view(r));
    }
    return out;
  }

  /** True when at least one replica is up with a known position (on the primary's timeline). */
  get anyHealthy(): boolean {
    return this.#replicas.some((r) => this.#usable(r));
  }

  #usable(r: Replica): boolean {
    return r.status === "up" && r.position !== undefined && this.#onPrimaryTimeline(r);
  }

  /**
   * Rule 1 (safety across a failover): a replica is a candidate only on the primary's current
   * timeline. Positions are compared as numbers, and LSNs keep growing across a switch, but a
   * replica still on the OLD timeline may have replayed WAL past the switch point that the new
   * primary never had (a standby that received more than the promoted one, and so cannot follow):
   * its position can be numerically at or past a write made on the new timeline while it holds
   * none of that write. Such a replica never follows the new timeline without being re-cloned
   * (or rewound), so waiting for its position proves nothing; only its timeline tells.
   * A replica on the current timeline replayed the new primary's history: everything up to the
   * switch point (common to both) and then the new timeline's WAL, so its position means what it
   * says. A replica reporting a NEWER timeline follows a primary this tracker has not polled yet:
   * not a candidate either, until the poll sees it (positions stored meanwhile may be the old
   * timeline's). The replica's timeline is a lower bound when only its restartpoint's is visible
   * (no `pg_read_all_stats`): it may then stay out until its next restartpoint on the new timeline,
   * never wrongly in. Before the primary's timeline is known (no poll answered yet, or no primary
   * runner) the rule cannot apply; neither can it for the time between a promotion and this
   * tracker's next primary poll (one `intervalMs`), unless something tells the tracker sooner: a
   * position captured with its timeline (notePrimaryTimeline), or a scope's record in the store
   * carrying a newer timeline (the router's Rule 3). See the README, "Failure policy".
   */
  #onPrimaryTimeline(r: Replica): boolean {
    const primary = this.#timeline?.id;
    return primary === undefined || r.timeline === undefined || r.timeline === primary;
  }

  /**
   * Takes a fresh sample of every up replica, sharing any probe already in flight; a replica
   * refreshed within `minRefreshMs` is not probed again.
   */
  async refresh(): Promise<void> {
    const now = Date.now();
    const waits: Array<Promise<void>> = [];
    for (const r of this.#replicas) {
      if (r.status !== "up") continue;
      if (r.inFlight) waits.push(r.inFlight);
      else if (now - r.lastRefreshAt >= this.#minRefreshMs) {
        r.lastRefreshAt = now;
        waits.push(this.#probe(r));
      }
    }
    await Promise.all(waits);
  }

  /** Reads the primary's current position, sharing a read already in flight. */
  refreshPrimary(): Promise<Lsn | undefined> {
    if (!this.#primary || this.#closed) return Promise.resolve(this.#primaryPosition);
    const read = this.#primaryInFlight?.promise ?? this.#readPrimary();
    return read.then((lsn) => (lsn === undefined ? undefined : this.#primaryPosition));
  }

  /**
   * A primary position from a read SENT at or after `since` (a `performance.now()` time), so at
   * or past the commit of every write acknowledged before `since`. Shares a read sent since then,
   * in flight or done; never one sent earlier. `undefined` when the read failed or there is no
   * primary.
   */
  primarySince(since: number): Promise<Lsn | undefined> {
    if (!this.#primary || this.#closed) return Promise.resolve(undefined);
    const done = this.#primaryDone;
    if (done && done.sentAt >= since) return Promise.resolve(done.lsn);
    const inFlight = this.#primaryInFlight;
    if (inFlight && inFlight.sentAt >= since) return inFlight.promise;
    return this.#readPrimary();
  }

  #readPrimary(): Promise<Lsn | undefined> {
    const sentAt = performance.now();
    const sentAtMs = Date.now();
    const promise: Promise<Lsn | undefined> = withTimeout(this.#primary!(PRIMARY_POLL_SQL), this.#probeTimeoutMs, "primary position read")
      .then((rows) => {
        const lsn = lsnFromRow(rows[0]);
        this.#noteTimeline(timelineFromRow(rows[0]), lsn);
        this.#history.add(lsn, sentAtMs);
        this.notePrimaryPosition(lsn);
        if (!this.#primaryDone || sentAt > this.#primaryDone.sentAt) this.#primaryDone = { sentAt, lsn };
        return lsn;
      })
      .catch((error) => {
        this.#onError?.("primary", error);
        return undefined;
      })
      .finally(() => {
        if (this.#primaryInFlight?.promise === promise) this.#primaryInFlight = undefined;
      });
    this.#primaryInFlight = { sentAt, promise };
    return promise;
  }

  #noteTimeline(id: number | undefined, lsn: Lsn): void {
    if (id === undefined) return;
    const current = this.#timeline;
    // Timelines only grow; an answer from an older one (a read sent before the switch) is ignored.
    if (current !== undefined && id <= current.id) return;
    this.#timeline = { id, firstPosition: lsn };
    // Positions of the old timeline past the switch point were never written on this one: the
    // primary's position starts again from what the new primary reports.
    this.#primaryPosition = lsn;
  }

  /**
   * Records the timeline the primary reported with `lsn` outside a poll (a position captured
   * after a write): a newer one applies at once, as if a poll had answered it.
   */
  notePrimaryTimeline(id: number, lsn: Lsn): void {
    this.#noteTimeline(id, lsn);
  }

  /** Records a position the primary is known to have reached, e.g. one captured after a write. */
  notePrimaryPosition(lsn: Lsn): void {
    if (this.#primaryPosition !== undefined && lsn <= this.#primaryPosition) return;
    this.#primaryPosition = lsn;
  }

  /**
   * A connection to this replica closed: the server may be restarting, and may come back behind
   * its last sample. The sample is dropped (the replica is no candidate until a new probe
   * answers), reads in flight on it are not kept, and a new probe starts at once.
   * A probe answered on a connection before it closed has been accepted by then (its answer
   * arrives before the close on the same socket), so no sample of the old server survives the
   * last of its connections closing.
   */
  connectionLost(index: number): void {
    const r = this.#replicas[index];
    if (!r || this.#closed) return;
    this.#invalidate(r);
    if (r.status === "up" && !r.inFlight) void this.#probe(r);
  }

  /**
   * A sample of replica `index` from a probe SENT at or after `since` (a `performance.now()`
   * time), like {@link primarySince} for the primary: shares a probe sent since then, in flight
   * or done; never one sent earlier. The router's `monotonic` option uses it for an upper bound on
   * what a read that returned before `since` saw there: replay only grows within one server
   * incarnation, and that read's statement started before this probe's. Compare `epoch` with the
   * one the read was routed on: a different one may be a restarted server that came back lower.
   * `undefined` when the replica is not up or the probe failed.
   *
   * Not rate-limited by `minRefreshMs` (each caller needs a probe sent after its own `since`);
   * instead, while an earlier probe is in flight, callers queue for ONE probe sent when it
   * settles, so a replica gets at most about one such probe per probe round trip, and a caller
   * waits at most two probe timeouts. Measured with 16 concurrent readers: 0.42 probes per read
   * instead of 1.01 when each sent its own, and about 10% more reads a second.
   */
  async sampleSince(index: number, since: number): Promise<{ position: Lsn; epoch: number } | undefined> {
    const r = this.#replicas[index];
    if (!r || this.#closed) return undefined;
    const current = () => (r.status === "up" && r.position !== undefined && r.sampleSentAt !== undefined && r.sampleSentAt >= since ? { position: r.position, epoch: r.epoch } : undefined);
    const now = current();
    if (now || r.status !== "up") return now;
    // The newest probe started wins (#accept), so once this one settled, `position` is from it or
    // from a later one, or gone: either way from a probe sent at or after `since`.
    let wait: Promise<void>;
    if (r.inFlight && r.inFlightSentAt >= since) wait = r.inFlight;
    // One sent earlier is still out: queue behind it, sharing one probe sent when it settles
    // with every caller that queues meanwhile, so that probes per replica stay at one per round
    // trip however many reads end at once.
    else if (r.inFlight) {
      // Sent after every caller that queued: each one queued after its own `since`.
      wait = r.queued ??= r.inFlight.then(() => {
        r.queued = undefined;
        return this.#probe(r);
      });
    } else wait = this.#probe(r);
    await wait;
    return current();
  }

  /** False when the replica's sample changed epoch since `view` was taken (see {@link ReplicaView.epoch}). */
  sameEpoch(view: ReplicaView): boolean {
    return this.#replicas[view.index]?.epoch === view.epoch;
  }

  /**
   * Marks a replica down at once, e.g. after a read on it failed with a connection error.
   * Its position is forgotten: after a crash it may come back behind what was sampled.
   */
  markDown(index: number, error?: unknown): void {
    const r = this.#replicas[index];
    if (!r || r.status === "down") return;
    r.errors = Math.max(r.errors + 1, this.#downAfter);
    this.#down(r);
    if (error !== undefined) this.#onError?.(r.name, error);
  }

  close(): void {
    this.#closed = true;
    for (const r of this.#replicas) r.unwatch?.();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#closed) return;
    // unref: a tracker must never keep an app (or a test run) alive.
    this.#timer = setTimeout(() => this.#tick(), this.#intervalMs);
    this.#timer.unref();
  }

  #tick(): void {
    const now = Date.now();
    for (const r of this.#replicas) {
      if (!r.inFlight && now >= r.nextProbeAt) void this.#probe(r);
    }
    void this.refreshPrimary();
    this.#schedule();
  }

  #probe(r: Replica): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const seq = ++r.seq;
    const sentAt = performance.now();
    const probe = withTimeout(r.query(PROBE_SQL), this.#probeTimeoutMs, "replica probe")
      .then((rows) => this.#accept(r, seq, rows[0], sentAt))
      .catch((error) => this.#fail(r, seq, error))
      .finally(() => {
        if (r.inFlight === probe) r.inFlight = undefined;
      });
    r.inFlight = probe;
    r.inFlightSentAt = sentAt;
    return probe;
  }

  #accept(r: Replica, seq: number, row: Record<string, unknown> | undefined, sentAt: number): void {
    // Samples can overlap only after a timeout; the newest one started is the one to keep.
    if (seq < r.acceptedSeq) return;
    r.acceptedSeq = seq;
    if (row?.recovery === false) {
      // Promoted: its replay position froze and it now takes writes of its own timeline.
      if (r.status !== "promoted") {
        this.#invalidate(r);
        // A promotion is a failover under way: learn the new timeline without waiting for the poll.
        void this.refreshPrimary();
      }
      r.status = "promoted";
      r.errors = 0;
      r.nextProbeAt = 0;
      return;
    }
    if (row?.recovery !== true || typeof row.replay !== "string" || typeof row.started !== "string") throw new Error(`unexpected probe row ${JSON.stringify(row)}`);
    const position = parseLsn(row.replay);
    // A new postmaster start time: the server restarted since the last sample, and a crash
    // restart can come back behind it. This sample is fresh and valid; reads routed on the old
    // one and still running are not kept.
    if (r.startedAt !== undefined && r.startedAt !== row.started) r.epoch++;
    r.startedAt = row.started;
    r.timeline = timelineOf(row.timeline);
    // A replica on a newer timeline than the primary's known one: a failover this tracker has not
    // polled yet. Poll now, so that Rule 1 applies to the right timeline.
    if (r.timeline !== undefined && this.#timeline !== undefined && r.timeline > this.#timeline.id) void this.refreshPrimary();
    r.position = position;
    r.sampleSentAt = sentAt;
    r.sampledAt = Date.now();
    r.status = "up";
    r.errors = 0;
    r.nextProbeAt = 0;
  }

  #fail(r: Replica, seq: number, error: unknown): void {
    if (seq < r.acceptedSeq) return;
    r.acceptedSeq = seq;
    r.errors++;
    // An unparsable or failed sample means the position is unknown, and unknown means behind.
    this.#invalidate(r);
    if (r.errors >= this.#downAfter) this.#down(r);
    this.#onError?.(r.name, error);
  }

  /** Forgets the sample: no read is routed on it any more, and none that started on it is kept. */
  #invalidate(r: Replica): void {
    r.position = undefined;
    r.sampleSentAt = undefined;
    r.startedAt = undefined;
    r.timeline = undefined;
    r.epoch++;
  }

  #down(r: Replica): void {
    r.status = "down";
    if (r.position !== undefined) this.#invalidate(r);
    const backoff = Math.min(this.#maxBackoffMs, this.#intervalMs * 2 ** Math.max(0, r.errors - this.#downAfter));
    r.nextProbeAt = Date.now() + backoff;
  }

  #view(r: Replica): ReplicaView {
    const primary = this.#primaryPosition;
    const lagBytes = primary !== undefined && r.position !== undefined ? Number(primary > r.position ? primary - r.position : 0n) : undefined;
    return {
      index: r.index,
      name: r.name,
      status: r.status,
      position: r.position,
      lagBytes,
      lagMs: r.position === undefined ? undefined : this.#history.lagMs(r.position),
      sampledAt: r.sampledAt,
      timeline: r.timeline,
      consecutiveErrors: r.errors,
      epoch: r.epoch,
    };
  }
}
