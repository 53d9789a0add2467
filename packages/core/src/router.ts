import type { Lsn } from "./lsn.js";
import { maxLsn, toLsn } from "./lsn.js";
import { invalidOption, isRywError, RywError } from "./errors.js";
import type { SqlRunner } from "./sql.js";
import { capturePosition, lsnFromRow, PRIMARY_POLL_SQL, timelineFromRow, timelineOf } from "./position.js";
import type { PositionStore, ScopeState } from "./store/types.js";
import { MemoryStore } from "./store/memory.js";
import { GuardedStore } from "./store/guard.js";
import type { ReplicaConfig, ReplicaView, TrackerOptions } from "./tracker.js";
import { ReplicaTracker } from "./tracker.js";
import type { ChooserName, ReplicaChooser } from "./choose.js";
import { chooser } from "./choose.js";
import type { RywContext } from "./context.js";
import { currentContext } from "./context.js";
import type { TokenCodec } from "./token.js";
import { createTokenCodec } from "./token.js";
import type { RouteDecision, RouteReason, RywListener, RywStats, Target } from "./events.js";
import { PRIMARY, Telemetry } from "./events.js";
import { isConnectionError } from "./connection-error.js";
import { oneOf, positiveInt } from "./validate.js";
import { sleep, withTimeout } from "./timers.js";
import { Pins } from "./pins.js";
import { Recorder } from "./record.js";
import { randomBytes } from "node:crypto";

/**
 * - `lsn` (default): a read goes to a replica only once it has replayed the scope's last write.
 * - `primary`: every read goes to the primary. The baseline: always fresh, no offload.
 * - `time-window`: after a write, the scope reads from the primary for `windowMs`. Simple, but a
 *   replica that lags longer than the window serves stale reads.
 * - `token`: like `lsn`, but the position travels with the client as a signed commit token
 *   (`commitToken()` after a write, `runWithScope({ token })` on the next request); no store.
 */
export type Strategy = "lsn" | "primary" | "time-window" | "token";

/** What a read does when no replica has caught up: use the `primary`, `wait` up to `maxWaitMs`, or throw (`error`). */
export type Fallback = "primary" | "wait" | "error";

export interface RywOptions {
  /** Runs statements on the primary: position capture after writes and lag figures. */
  primary: SqlRunner;
  /** The read replicas. An empty list sends every read to the primary. */
  replicas: ReadonlyArray<ReplicaConfig>;
  /** Where scope positions live. Use `RedisStore` to follow users across app servers. @default new MemoryStore() */
  store?: PositionStore;
  /** @default "lsn" */
  strategy?: Strategy;
  /** @default "primary" */
  fallback?: Fallback;
  /** Longest wait for a replica to catch up, with `fallback: "wait"`. @default 50 */
  maxWaitMs?: number;
  /** How long a scope's position is remembered. Keep it above your worst replica lag. @default 300000 */
  ttlMs?: number;
  /** Primary-only window after a write, for `strategy: "time-window"`. @default 2000 */
  windowMs?: number;
  /** Secrets for commit tokens; required by `strategy: "token"` and by `monotonic`, optional otherwise. First one signs. */
  tokenKeys?: ReadonlyArray<string>;
  /**
   * Monotonic reads: a client that carries the commit token from each response into its next
   * request never sees time go backwards, on any app server, even if it never writes: a row it
   * was shown does not vanish on its next request. Each read made in a request context records
   * an upper bound on the state it returned (`RequestKnowledge.served`); `commitToken()` signs it
   * (the web middleware sends a token on every response whose bound rose, reads included); every
   * later read of a request that carries it, with or without a scope, requires at least that
   * position. Needs `tokenKeys`; works with the `lsn` and `token` strategies (`primary` is
   * monotonic already, `time-window` has no positions to carry). Why it holds: `#noteServed`.
   *
   * Cost: every read in a request context resolves one round trip later: after it returned, a
   * probe of the replica that served it (or a primary position read) is sent and awaited, one
   * probe shared by the reads that ended while the previous one was out (at worst two probe
   * timeouts, then a primary read). Measured on loopback, postgres.js, one idle process: p50
   * 400 -> 739 us per read; 16 concurrent readers: 0.42 extra probes per read (beyond the
   * tracker's polling budget), 5,160 -> 3,999 reads/s (README, "Monotonic reads"). A client
   * served by the replica furthest ahead is kept off the others, or on the primary, until
   * this server's samples show them past it: requests that alternate between app servers faster
   * than `tracker.intervalMs` while others write mostly go to the primary. Responses carry a
   * new token whenever the database moved, which on a busy one is most of them.
   * @default false
   */
  monotonic?: boolean;
  /**
   * How to pick among caught-up replicas. A function is called exactly once per read routed to a
   * replica, with replicas that have replayed the read's position (never an empty list).
   * @default "round-robin"
   */
  choose?: ChooserName | ReplicaChooser;
  /**
   * Start the read on a replica that keeps up (lag within two poll intervals of the least-lagging
   * one) while the store lookup is in flight, and keep the result only if that replica had already
   * replayed the position the lookup returns. Hides the store round trip; costs a dropped replica query for
   * reads that end up elsewhere. Off with a custom `choose` function, which is only ever offered
   * replicas that have replayed what the read needs, once per read.
   * @default true (false with a custom `choose`)
   */
  speculate?: boolean;
  /** When no cached replica position suffices, take one fresh (shared, rate-limited) sample before falling back. @default true */
  refreshOnDemand?: boolean;
  /** Store calls slower than this count as failures (the read goes to the primary). @default 100 */
  storeTimeoutMs?: number;
  /**
   * After a store failure, skip store lookups for this long (reads go to the primary), and retry
   * records that missed `recordTimeoutMs` this often. Short, because every skipped read costs
   * replica share. Records themselves are never skipped. @default 250
   */
  storeRetryMs?: number;
  /**
   * How long a committed write waits for its position to reach the store, retrying with short
   * backoff, before it resolves anyway. Across app servers, read-your-writes holds for every write
   * whose record reached the store within this time. Past it, the write still resolves, the scope
   * reads from the primary in this process, the record keeps retrying in the background, and an
   * `unshared` event (and `stats().unsharedWrites`) says that other processes may serve that scope
   * stale reads until it lands. The default covers a Redis restart of about a second.
   * While the store is down, every write in a scope waits this long.
   * @default 3000
   */
  recordTimeoutMs?: number;
  /** Replica polling: `intervalMs` (default 100), `downAfter`, `probeTimeoutMs`, `maxBackoffMs`, `minRefreshMs`. */
  tracker?: Omit<TrackerOptions, "replicas" | "primary" | "onError">;
  /**
   * A read on a replica that has not answered after this long is abandoned and run on the
   * primary instead (the replica is not marked down: a slow query is not a lost server). It bounds
   * a request whose replica connection was cut in a way the driver never reports: postgres.js
   * 3.4.9 can leave such a query unsettled. Give it room above your slowest replica query.
   * @default 30000
   */
  replicaTimeoutMs?: number;
  /** Which replica errors mean "server gone" (retry on the primary, mark the replica down). */
  isConnectionError?: (error: unknown) => boolean;
  /** Receives every route decision, recorded write and background error. */
  onEvent?: RywListener;
}

export interface ReadOptions {
  /** Overrides the scope from `runWithScope` for this call. */
  scope?: string | undefined;
}

export interface RecordOptions extends ReadOptions {
  /**
   * The timeline the primary reported in the same statement as `position`
   * (`PRIMARY_POLL_SQL`, `timelineFromRow`): stored with it, so that other app servers learn of
   * a failover before they poll the new primary. Unknown when absent.
   */
  timeline?: number | undefined;
}

export interface Ryw {
  /**
   * Runs a read where it is safe: `run` gets the chosen target and executes the query there.
   * A replica that fails with a connection error is marked down and the read retried on the primary.
   * With `speculate` on, `run` can also be started on a replica and its result dropped, so it must
   * only read: no side effects, no counters.
   */
  read<T>(run: (target: Target) => Promise<T>, options?: ReadOptions): Promise<T>;
  /** The routing decision alone, without running anything. */
  route(options?: ReadOptions): Promise<RouteDecision>;
  /**
   * Remembers a committed write's position for the scope. Call it only after the commit returned.
   * Resolves once the position is in the store, or after `recordTimeoutMs` at the latest; never
   * rejects because of the store. A record that missed the deadline keeps the scope on the primary
   * in this process, retries in the background, and is reported as an `unshared` event.
   */
  recordWrite(position: Lsn | string, options?: RecordOptions): Promise<void>;
  /** Captures the primary's position (after a commit) and records it, like `recordWrite`. Never rejects. */
  afterWrite(options?: ReadOptions): Promise<void>;
  /**
   * Call right before a statement or transaction that may write is sent to the primary, and
   * settle the handle after it. With a store that keeps write intents (`RedisStore`,
   * `MemoryStore`) and the `lsn` strategy, the store round trip overlaps the write, and the
   * position is recorded after the write is acknowledged (see record.ts for why that is safe).
   * Otherwise `done()` is `afterWrite()` (or `recordWrite(position)`).
   */
  beginWrite(options?: ReadOptions): PendingWrite;
  /**
   * A signed token of this request's latest position, for a header or cookie. Needs `tokenKeys`.
   * With `monotonic`, that is the highest of its writes, of the token it came with, and of the
   * served bounds of its reads.
   */
  commitToken(): string | undefined;
  /** Resolves once every replica has been sampled once. */
  ready(): Promise<void>;
  stats(): RywStats;
  subscribe(listener: RywListener): () => void;
  readonly strategy: Strategy;
  readonly tracker: ReplicaTracker;
  /** Stops polling and background retries. Connections you passed in stay open. */
  close(): Promise<void>;
}

/** A write in flight, from `beginWrite()`. Settle it exactly once. */
export interface PendingWrite {
  /**
   * The write committed, or may have: resolves when it may be acknowledged. Pass the position
   * when it was captured on the write's own connection after the commit, and its timeline when
   * it was read with it (`PRIMARY_POLL_SQL`, `timelineFromRow`). Never rejects.
   */
  done(position?: Lsn | string, timeline?: number): Promise<void>;
  /** Nothing was committed (a rollback, or an error before the commit). */
  abandon(): void;
}

const WAIT_POLL_MS = 5;
/** A write acknowledged later than this share of `ttlMs` after its intent waits for its record instead (record.ts). */
const INTENT_SHARE_OF_TTL = 1 / 4;
/** Lookups of a scope with a write intent pending before its read takes a fresh primary position. */
const RELOOKUPS = 3;
const RELOOKUP_PAUSE_MS = 1;
/** Positions whose timeline is remembered for commit tokens (#timelines). */
const TIMELINES_KEPT = 4096;

/**
 * The router behind every ORM package. Under the default `lsn` strategy with a shared store
 * (`RedisStore`), a read in a scope never misses a write of that scope that was acknowledged
 * before the read began, on any app server, as long as the write's record reached the store
 * within `recordTimeoutMs` (see there for what happens past it). When anything is unknown (store
 * down or slow, a replica not sampled, restarted or unreachable, a lag not known), the read goes
 * to the primary.
 * @example
 * const ryw = createRyw({ primary: postgresJsRunner(sql), replicas: [{ query: postgresJsRunner(r0), watch: postgresJsWatch(r0) }], store: new RedisStore({ url }) });
 */
export function createRyw(options: RywOptions): Ryw {
  return new Router(options);
}

type Attempt<T> = Promise<{ ok: true; value: T } | { ok: false; error: unknown }>;

class Router implements Ryw {
  readonly strategy: Strategy;
  readonly tracker: ReplicaTracker;
  readonly #primary: SqlRunner;
  readonly #store: GuardedStore;
  readonly #fallback: Fallback;
  readonly #maxWaitMs: number;
  readonly #ttlMs: number;
  readonly #windowMs: number;
  readonly #codec: TokenCodec | undefined;
  readonly #choose: ReplicaChooser;
  readonly #speculate: boolean;
  readonly #refreshOnDemand: boolean;
  readonly #isConnectionError: (error: unknown) => boolean;
  readonly #replicaTimeoutMs: number;
  readonly #recordTimeoutMs: number;
  readonly #monotonic: boolean;
  readonly #telemetry = new Telemetry();
  readonly #pins: Pins;
  readonly #recorder: Recorder;
  // Bumped on every store reset: a lookup that was in flight across one may have been answered by
  // a store that lost positions, so its answer is not trusted.
  #resets = 0;
  readonly #unsubscribeReset: (() => void) | undefined;
  /** Unique per router instance, so that intent ids of app servers never collide. */
  readonly #intentPrefix = randomBytes(6).toString("base64url");
  #intentSeq = 0;
  // After the store may have lost positions, every scoped read must see at least the primary's
  // position as of then; until that position is known, scoped reads go to the primary.
  #floor: { lsn: Lsn | undefined; until: number } | undefined;
  /**
   * The timeline of positions this router read with their timeline (its own captures, verified
   * tokens), for the commit token (Rule 2 in #verifyToken). Bounded; an LSN number seen on two
   * timelines keeps the newer, which is the conservative label (a newer label is never clamped).
   */
  readonly #timelines = new Map<Lsn, number>();
  #closed = false;

  constructor(options: RywOptions) {
    if (typeof options !== "object" || options === null) throw invalidOption("options", "an object", options);
    if (typeof options.primary !== "function") throw invalidOption("primary", "a function (text) => Promise<rows>", options.primary);
    this.strategy = oneOf("strategy", options.strategy, ["lsn", "primary", "time-window", "token"], "lsn");
    this.#fallback = oneOf("fallback", options.fallback, ["primary", "wait", "error"], "primary");
    this.#maxWaitMs = positiveInt("maxWaitMs", options.maxWaitMs, 50, 0);
    this.#ttlMs = positiveInt("ttlMs", options.ttlMs, 300_000);
    this.#windowMs = positiveInt("windowMs", options.windowMs, 2000);
    const storeTimeoutMs = positiveInt("storeTimeoutMs", options.storeTimeoutMs, 100);
    const storeRetryMs = positiveInt("storeRetryMs", options.storeRetryMs, 250);
    const recordTimeoutMs = positiveInt("recordTimeoutMs", options.recordTimeoutMs, 3000, 0);
    this.#recordTimeoutMs = recordTimeoutMs;
    this.#monotonic = bool("monotonic", options.monotonic, false);
    if (this.#monotonic) {
      // The served position travels in the commit token; without positions there is nothing to carry.
      if (options.tokenKeys === undefined) throw invalidOption("monotonic", "used with `tokenKeys` (the served position travels in the commit token)", true);
      if (this.strategy !== "lsn" && this.strategy !== "token") {
        throw invalidOption("monotonic", `used with strategy "lsn" or "token" (${this.strategy === "primary" ? '"primary" reads are monotonic already' : '"time-window" has no positions to carry'})`, true);
      }
    }
    if (options.tokenKeys !== undefined || this.strategy === "token") {
      if (options.tokenKeys === undefined) throw invalidOption("tokenKeys", 'set when strategy is "token"', undefined);
      this.#codec = createTokenCodec({ keys: options.tokenKeys });
    }
    const choose = options.choose ?? "round-robin";
    this.#choose = typeof choose === "function" ? choose : chooser(oneOf("choose", choose, ["round-robin", "least-lag", "random"], "round-robin"));
    // A speculative pick is made before the position is known: a custom chooser would see replicas
    // that may not have replayed it, and be asked twice when the guess is dropped.
    if (typeof choose === "function" && options.speculate === true) throw invalidOption("speculate", "false or unset with a custom `choose` function", true);
    this.#speculate = bool("speculate", options.speculate, typeof choose !== "function");
    this.#refreshOnDemand = bool("refreshOnDemand", options.refreshOnDemand, true);
    this.#isConnectionError = options.isConnectionError ?? isConnectionError;
    this.#replicaTimeoutMs = positiveInt("replicaTimeoutMs", options.replicaTimeoutMs, 30_000);
    const store: PositionStore = options.store ?? new MemoryStore();
    if (typeof store?.get !== "function" || typeof store.advance !== "function") throw invalidOption("store", "a PositionStore (get and advance)", store);
    this.#store = new GuardedStore(store, storeTimeoutMs, storeRetryMs);
    this.#primary = options.primary;
    if (options.onEvent) {
      if (typeof options.onEvent !== "function") throw invalidOption("onEvent", "a function", options.onEvent);
      this.#telemetry.subscribe(options.onEvent);
    }
    this.tracker = new ReplicaTracker({
      ...options.tracker,
      replicas: options.replicas,
      primary: options.primary,
      onError: (replica, error) => this.#telemetry.emit({ type: "error", source: "tracker", error, replica }),
    });
    this.#pins = new Pins({
      retryMs: storeRetryMs,
      retry: async (scope, value) => {
        // As long as a record may wait: a store slower than storeTimeoutMs would otherwise apply
        // every retry and never let this process know.
        await this.#store.advance(scope, value, this.strategy === "time-window" ? this.#windowMs : this.#ttlMs, Math.max(storeTimeoutMs, recordTimeoutMs), undefined, this.#timelineOf(value));
        this.#telemetry.emit({ type: "record", scope, position: value });
      },
      capture: () => this.#capture(),
      onError: (error, scope) => this.#telemetry.emit({ type: "error", source: "record", error, scope }),
    });
    this.#recorder = new Recorder({
      store: this.#store,
      pins: this.#pins,
      capture: () => this.#capture(),
      timelineOf: (value) => this.#timelineOf(value),
      recordTimeoutMs,
      onRecorded: (scope, position) => this.#telemetry.emit({ type: "record", scope, position }),
      onError: (error, scope, source) => this.#telemetry.emit({ type: "error", source, error, scope }),
      onUnshared: (scope, position, error) => this.#telemetry.emit({ type: "unshared", scope, position, error }),
      onUnresolved: (scope, _position, error) => {
        this.#telemetry.unresolvedIntents++;
        this.#telemetry.emit({ type: "error", source: "record", error: new RywError("STORE_UNAVAILABLE", "A write's position could not be recorded; its intent stays until it expires, and reads of its scope use fresh primary positions meanwhile.", { cause: error }), scope });
      },
    });
    this.#unsubscribeReset = store.onReset?.(() => this.#onStoreReset());
  }

  async read<T>(run: (target: Target) => Promise<T>, options?: ReadOptions): Promise<T> {
    // Outside a request context nothing could carry the bound to a next request: no round trip.
    const ctx = this.#monotonic ? currentContext() : undefined;
    const served = await this.#read(run, options);
    if (ctx) await this.#noteServed(ctx.known, served.pick, served.decision);
    return served.value;
  }

  async route(options?: ReadOptions): Promise<RouteDecision> {
    return (await this.#read(async () => undefined, options)).decision;
  }

  async recordWrite(position: Lsn | string, options?: RecordOptions): Promise<void> {
    const lsn = toLsn(position);
    this.#noteGivenTimeline(lsn, options?.timeline);
    await this.#record(lsn, options);
  }

  async afterWrite(options?: ReadOptions): Promise<void> {
    const ctx = currentContext();
    const scope = options?.scope ?? ctx?.scope;
    // Without a scope nobody can ask for this write later: skip the capture round trip. Except
    // with `monotonic` in a request: its client's next token must cover what the write showed
    // it (a RETURNING, a transaction's reads), and a position read after the commit does.
    if (this.strategy === "primary" || (scope === undefined && !(this.#monotonic && ctx))) return;
    // A time window needs only the time of the write, not its position.
    if (this.strategy === "time-window") return this.#record(undefined, options);
    let lsn: Lsn | undefined;
    try {
      lsn = await this.#capture();
    } catch (error) {
      // The write committed but its position is unknown. Any position read later is past the
      // commit: the recorder captures one while it retries (lsn), or the pin does (token).
      this.#telemetry.emit({ type: "error", source: "capture", error, scope });
      // Scope-less (monotonic): no pin to hold; the client's token then misses this write.
      if (scope === undefined) return;
      if (this.strategy === "token") return this.#pins.add(scope, undefined, this.#ttlMs);
    }
    await this.#record(lsn, options);
  }

  beginWrite(options?: ReadOptions): PendingWrite {
    const ctx = currentContext();
    const scope = options?.scope ?? ctx?.scope;
    if (scope === undefined || this.strategy !== "lsn" || !this.#store.intents) {
      return {
        done: (position, timeline) => (position === undefined ? this.afterWrite({ scope }) : this.recordWrite(position, { scope, timeline: timelineOf(timeline) })),
        abandon() {},
      };
    }
    const id = `${this.#intentPrefix}.${(++this.#intentSeq).toString(36)}`;
    const sentAt = Date.now();
    const intent = this.#store.intend(scope, id, this.#ttlMs).then(
      () => true,
      (error: unknown) => {
        this.#telemetry.emit({ type: "error", source: "record", error, scope });
        return false;
      },
    );
    let settled = false;
    return {
      done: async (position, timeline) => {
        if (settled) return;
        settled = true;
        const lsn = position === undefined ? undefined : toLsn(position);
        // done() never rejects: a timeline that is not one is unknown.
        this.#noteGivenTimeline(lsn, timelineOf(timeline));
        const applied = await intent;
        const known = ctx && ctx.scope === scope ? ctx.known : undefined;
        if (applied && Date.now() - sentAt <= this.#ttlMs * INTENT_SHARE_OF_TTL) {
          // Acknowledged now; the position follows (record.ts). Until it lands, lookups of this
          // scope see the intent and use a fresh primary position.
          if (known) known.unresolved = (known.unresolved ?? 0) + 1;
          this.#telemetry.recordsInFlight++;
          void this.#resolve(scope, lsn, id, known).finally(() => {
            if (known) known.unresolved! -= 1;
            this.#telemetry.recordsInFlight--;
          });
          return;
        }
        // The store did not confirm the intent, or the write took too long for it to count:
        // the sequential record, which also resolves the intent if it was applied.
        await this.#recordSequential(scope, lsn, applied ? id : undefined, known);
      },
      abandon: () => {
        if (settled) return;
        settled = true;
        void intent.then(async (applied) => {
          // Left in place, it would only cost this scope fresh primary positions until it expires.
          if (applied) await this.#store.withdraw(scope, id).catch(() => {});
        });
      },
    };
  }

  /** After an acknowledged write with an applied intent: captures (if needed) and records. */
  async #resolve(scope: string, lsn: Lsn | undefined, id: string, known: RywContext["known"] | undefined): Promise<void> {
    if (lsn === undefined) {
      try {
        lsn = await this.#capture();
      } catch (error) {
        // The recorder captures again while it retries.
        this.#telemetry.emit({ type: "error", source: "capture", error, scope });
      }
    }
    if (lsn !== undefined) this.#learn(lsn, known);
    await this.#recorder.record(scope, lsn, this.#ttlMs, { id, resolving: true });
  }

  async #recordSequential(scope: string, lsn: Lsn | undefined, id: string | undefined, known: RywContext["known"] | undefined): Promise<void> {
    if (lsn === undefined) {
      try {
        lsn = await this.#capture();
      } catch (error) {
        this.#telemetry.emit({ type: "error", source: "capture", error, scope });
      }
    }
    if (lsn !== undefined) this.#learn(lsn, known);
    await this.#recorder.record(scope, lsn, this.#ttlMs, id === undefined ? undefined : { id, resolving: false });
  }

  /**
   * The primary's position, read after a commit, within `recordTimeoutMs`: a capture on a
   * connection that was cut without the driver noticing must not hold a committed write forever.
   */
  #capture(): Promise<Lsn> {
    // With its timeline, in the same statement: the timeline of exactly this position.
    const read = this.#primary(PRIMARY_POLL_SQL).then((rows) => {
      const lsn = lsnFromRow(rows[0]);
      this.#noteTimeline(lsn, timelineFromRow(rows[0]));
      return lsn;
    });
    return withTimeout(read, Math.max(1, this.#recordTimeoutMs), "position capture");
  }

  /** A position and the timeline the caller read with it (recordWrite, PendingWrite.done). */
  #noteGivenTimeline(lsn: Lsn | undefined, timeline: number | undefined): void {
    if (lsn === undefined || timeline === undefined) return;
    if (timelineOf(timeline) === undefined) throw invalidOption("timeline", "a positive integer (a PostgreSQL timeline id)", timeline);
    this.#noteTimeline(lsn, timeline);
  }

  /** The timeline a position was read on, if this router read it with one. Never for write times. */
  #timelineOf(value: Lsn): number | undefined {
    return this.strategy === "time-window" ? undefined : this.#timelines.get(value);
  }

  #noteTimeline(lsn: Lsn, timeline: number | undefined): void {
    if (timeline === undefined) return;
    // The primary said so in the same statement: the tracker may not have polled it since a
    // failover, and Rule 1 (tracker.ts) must hold for this process's reads right away.
    this.tracker.notePrimaryTimeline(timeline, lsn);
    const had = this.#timelines.get(lsn);
    if (had !== undefined && had >= timeline) return;
    this.#timelines.delete(lsn);
    this.#timelines.set(lsn, timeline);
    if (this.#timelines.size > TIMELINES_KEPT) this.#timelines.delete(this.#timelines.keys().next().value!);
  }

  #learn(lsn: Lsn, known: RywContext["known"] | undefined): void {
    if (known) known.position = maxLsn(known.position, lsn);
    this.tracker.notePrimaryPosition(lsn);
  }

  async #record(lsn: Lsn | undefined, options: ReadOptions | undefined): Promise<void> {
    const ctx = currentContext();
    const scope = options?.scope ?? ctx?.scope;
    const now = Date.now();
    if (ctx && ctx.scope === scope) {
      ctx.known.position = maxLsn(ctx.known.position, lsn);
      ctx.known.lastWriteAt = now;
    }
    if (lsn !== undefined) this.tracker.notePrimaryPosition(lsn);
    if (scope === undefined || this.strategy === "primary" || this.strategy === "token") return;
    const window = this.strategy === "time-window";
    await this.#recorder.record(scope, window ? BigInt(now) : lsn, window ? this.#windowMs : this.#ttlMs);
  }

  commitToken(): string | undefined {
    if (!this.#codec) throw invalidOption("tokenKeys", "set to use commitToken()", undefined);
    const ctx = currentContext();
    let position = ctx?.known.position;
    if (this.#monotonic && ctx) {
      // A request whose reads never verified its token (onPrimary() reads only) must not hand
      // out a lower one. A position the primary is not known to have reached stays out, as in
      // #verifyToken: re-signing it would only renew its age.
      const decoded = ctx.token === undefined ? undefined : this.#decoded(ctx);
      const primary = this.tracker.primaryPosition;
      const carried = decoded && !("error" in decoded) && primary !== undefined && decoded.lsn <= primary ? decoded.lsn : undefined;
      position = maxLsn(maxLsn(position, ctx.known.served), carried);
    }
    // Labelled only with a timeline read with that very position: a token's timeline must never be
    // older than its position's, or Rule 2 would clamp a position the client really needs.
    return position === undefined ? undefined : this.#codec.encode(position, this.#timelines.get(position));
  }

  ready(): Promise<void> {
    return this.tracker.ready();
  }

  stats(): RywStats {
    return this.#telemetry.snapshot(this.tracker, this.#pins.size);
  }

  subscribe(listener: RywListener): () => void {
    return this.#telemetry.subscribe(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.tracker.close();
    this.#pins.close();
    this.#unsubscribeReset?.();
  }

  /**
   * Monotonic reads: records, after a read returned, an UPPER bound on the state it returned.
   *
   * The state a read returns is a WAL position S: it shows the transactions whose commit records
   * lie at or below S (on a replica, its replay position when the statement took its snapshot;
   * on the primary, every commit it shows was written to WAL before the statement started).
   * Why a client's next read, on any app server, never returns a state older than one it was
   * served, as long as it carries the commit token of each response into its next request:
   *
   * 1. The bound U is at or past S. On a replica: a probe SENT after the read returned
   *    (`tracker.sampleSince`) ran after the read's statement started, and replay only grows
   *    within one server incarnation, so its position is at or past S. The probe must come from
   *    the incarnation the read ran on: the pick's epoch (`#finishReplica` keeps a read only if
   *    the epoch held until it returned) must still hold, else a restarted replica may have come
   *    back lower. Otherwise, and on the primary: a primary position read sent after the read
   *    returned (`tracker.primarySince`); replicas replay only WAL the primary wrote, and the
   *    primary's own snapshot shows only commits already written, so it is at or past S on any
   *    server. The sample taken to PICK the replica would be wrong: it is a lower bound, the
   *    replica may have replayed further by the time the statement ran, and a next read on
   *    another replica between the two positions would go back in time.
   * 2. U reaches the next request: it is raised into `known.served` before `read()` resolves;
   *    `commitToken()` signs the highest of it, the request's writes and its token; the web
   *    middleware sends that on every response whose bound rose above what the request came
   *    with (an app that passes tokens itself sends `commitToken()` likewise).
   * 3. Every read of a monotonic context requires at least the carried token, `served` and the
   *    request's writes (`#clientFloor`), with or without a scope. A replica is used only if a
   *    sample taken before the statement started had replayed that much (and, as always, only
   *    if its epoch held), so its state is at or past U; the primary's is at or past every
   *    commit record it wrote before the statement started, which covers U. A forged or
   *    tampered token, or one the primary is not known to have reached, sends the read to the
   *    primary, as for any token (`invalid-token`, `token-ahead`).
   * 4. A token older than `ttlMs` is verified but its position is not asked for (as for every
   *    token). It was signed after the reads it covers, so their bounds were primary positions
   *    reached more than `ttlMs` ago: a replica whose lag bound is under `ttlMs / 2` has replayed
   *    them, and such reads use only those replicas (the same bound as for an expired key; the
   *    token's issue time is rounded down to the second, within the other half for any
   *    `ttlMs` above 2 s).
   * Not covered: when neither position can be read, U is the highest primary position this
   * process knew, maybe below S (`unboundedReads`, a `served` error event); with synchronous
   * replication the primary shows a commit only after a standby acknowledged it, and a standby
   * can show it first, so a row seen on a replica can be missing for a moment on the primary
   * (without it, the primary shows a commit as soon as its record is flushed, before any
   * replica can have received it); a client that sends concurrent requests, or an older
   * token, gets each chain of requests monotonic on its own; statements that do not go through
   * `read()` and record no position afterwards are not bounded (`afterWrite` captures one for
   * a scope-less request here, but Drizzle's unmarked `db.execute` reads call nothing, and
   * Prisma skips its commit hook for a `$transaction` without a scope).
   */
  async #noteServed(known: RywContext["known"], pick: ReplicaView | undefined, decision: RouteDecision): Promise<void> {
    const end = performance.now();
    let bound: Lsn | undefined;
    if (pick) {
      const sample = await this.tracker.sampleSince(pick.index, end);
      if (sample !== undefined && sample.epoch === pick.epoch) bound = sample.position;
    }
    bound ??= await this.tracker.primarySince(end);
    if (bound === undefined) {
      bound = this.tracker.primaryPosition;
      const where = pick ? `replica ${pick.name} (it failed, went down or restarted) or the primary` : "the primary";
      this.#telemetry.emit({
        type: "error",
        source: "served",
        // The probe's or the primary's own error went out as a `tracker` event already.
        error: new Error(`[ryw] Monotonic reads: no position read after this read could be had from ${where}; the token carries the highest known primary position instead, and the client's next request may miss rows this read returned.`),
        scope: decision.scope,
        ...(pick ? { replica: pick.name } : {}),
      });
    }
    known.served = maxLsn(known.served, bound);
  }

  async #read<T>(run: (target: Target) => Promise<T>, options: ReadOptions | undefined): Promise<{ value: T; decision: RouteDecision; pick?: ReplicaView }> {
    if (this.#closed) throw new RywError("CLOSED", "This ryw instance is closed.");
    // Before the lookup is sent: a write intent pending at lookup time is answered with a primary
    // position read sent after this instant (record.ts).
    const startedAt = performance.now();
    const primaryAtStart = this.tracker.primaryPosition;
    const ctx = currentContext();
    const scope = options?.scope ?? ctx?.scope;
    if (ctx?.primary) return this.#onPrimary(run, "forced-primary", scope, undefined);
    if (this.strategy === "primary") return this.#onPrimary(run, "strategy-primary", scope, undefined);
    // Monotonic: what this client was served before (its token) and by this request so far,
    // whatever the scope, and also without one: a client that never wrote has still seen things.
    let seen: Lsn | undefined;
    let seenExpired = false;
    if (this.#monotonic && ctx) {
      const client = await this.#clientFloor(ctx);
      if (typeof client === "string") return this.#onPrimary(run, client, scope, undefined);
      ({ seen, expired: seenExpired } = client);
    }
    if (scope === undefined) return this.#routeRequired(run, undefined, seen, "no-scope", false, seenExpired);
    if (this.#pins.has(scope)) return this.#onPrimary(run, "record-failed", scope, undefined);
    const floor = this.#activeFloor();
    if (floor === null) return this.#onPrimary(run, "store-unavailable", scope, undefined);
    if (this.strategy === "time-window") return this.#readWindow(run, scope, ctx);

    let known = maxLsn(maxLsn(floor, ctx?.scope === scope ? ctx.known.position : undefined), seen);
    if (!this.#monotonic && ctx?.token !== undefined && ctx.scope === scope) {
      const token = await this.#verifyToken(ctx);
      if (typeof token === "string") return this.#onPrimary(run, token, scope, undefined);
      known = maxLsn(known, token);
    }
    // A token that verified but expired bounds the lag like an expired key; with no token at all
    // nothing is known, and the token strategy promises nothing.
    if (this.strategy === "token") return this.#routeRequired(run, scope, known, "no-token", ctx?.token !== undefined, seenExpired);
    if (!this.#store.available) return this.#onPrimary(run, "store-unavailable", scope, known);

    const resets = this.#resets;
    const lookup = this.#store.lookup(scope);
    const candidates = this.#speculate && !(ctx?.scope === scope && ctx.known.unresolved) ? this.#eligible(known, true) : [];
    if (candidates.length > 0) {
      const timelineAtPick = this.tracker.timeline?.id;
      const pick = this.#choose(keepingUp(candidates, 2 * this.tracker.intervalMs));
      const attempt = this.#attempt(run, pick);
      const state = await this.#lookup(lookup, resets);
      if (state === null) return this.#onPrimary(run, "store-unavailable", scope, known);
      if (this.#timelineAhead(state.timeline) && (await this.#stillAhead(state.timeline!))) return this.#onPrimary(run, "timeline-ahead", scope, known);
      const required = state.pending ? await this.#freshRequired(known, state, startedAt, primaryAtStart, scope, resets) : maxLsn(known, state.position);
      if (typeof required === "string") return this.#onPrimary(run, required, scope, known);
      // The tracker moved to a newer timeline meanwhile (Rule 3, or the fresh primary read of a
      // pending intent): the pick was chosen by Rule 1 of the old one.
      if (this.tracker.timeline?.id !== timelineAtPick) return this.#routeRequired(run, scope, required, "no-token", true, state.expired === true || seenExpired);
      // The pick's position was sampled before its query started, so the query sees at least that;
      // with no position to reach, the pick was chosen among replicas recent enough (#eligible),
      // which is also what an intent that expired unresolved asks for on top of its position.
      const recentEnough = !(state.expired || seenExpired) || (pick.lagMs !== undefined && pick.lagMs < this.#ttlMs / 2);
      if ((required === undefined || pick.position! >= required) && recentEnough) return this.#finishReplica(attempt, run, pick, required === undefined ? "no-token" : "caught-up", scope, required);
      void attempt;
      return this.#routeRequired(run, scope, required, "no-token", true, state.expired === true || seenExpired);
    }
    const state = await this.#lookup(lookup, resets);
    if (state === null) return this.#onPrimary(run, "store-unavailable", scope, known);
    if (this.#timelineAhead(state.timeline) && (await this.#stillAhead(state.timeline!))) return this.#onPrimary(run, "timeline-ahead", scope, known);
    const required = state.pending ? await this.#freshRequired(known, state, startedAt, primaryAtStart, scope, resets) : maxLsn(known, state.position);
    if (typeof required === "string") return this.#onPrimary(run, required, scope, known);
    return this.#routeRequired(run, scope, required, "no-token", true, state.expired === true || seenExpired);
  }

  /**
   * Rule 3 (a failover that this process has not seen yet). A write recorded with a timeline
   * newer than the tracker's was made on a primary that this tracker has not polled since the
   * failover: its Rule 1 (tracker.ts) still admits replicas of the old timeline, and one that
   * replayed WAL past the switch point (WAL the new primary never had) can be numerically at or
   * past that write's position without having it. Stores keep the newest timeline of a scope's
   * records, and every write of the scope that was acknowledged before this read began is in it
   * (or its intent is, which takes a primary position read after the lookup: #freshRequired),
   * so the timeline read here is at least that of each of them. Such a read first makes the
   * tracker poll the primary; if the tracker is still behind, it goes to the primary. Records
   * without a timeline (a store that keeps none, a position given without one) leave only the
   * tracker's polls to notice, one `intervalMs` at most after the new primary answers.
   */
  #timelineAhead(timeline: number | undefined): boolean {
    if (timeline === undefined) return false;
    const known = this.tracker.timeline;
    return known === undefined || timeline > known.id;
  }

  async #stillAhead(timeline: number): Promise<boolean> {
    await this.tracker.refreshPrimary();
    return this.#timelineAhead(timeline);
  }

  /**
   * With a write intent pending: the position to require, or `null` when the primary's is unknown.
   * A primary position known before the read started is at or below the fresh one: without
   * on-demand refreshes, when no replica has replayed even that, none will do, and the read goes
   * to the primary without it. With them, a fresh sample usually finds a replica that has.
   */
  async #freshRequired(known: Lsn | undefined, state: ScopeState, startedAt: number, primaryAtStart: Lsn | undefined, scope: string, resets: number): Promise<Lsn | RouteReason> {
    const floor = maxLsn(maxLsn(known, state.position), primaryAtStart);
    if (floor !== undefined && this.#fallback === "primary" && !this.#refreshOnDemand && this.tracker.candidates(floor).length === 0) return "lagging";
    // A second lookup, sent with the primary read, is also one started after the read began: if
    // it finds the intent resolved, its position covers every write acknowledged before then
    // (record.ts), and it is usually lower than the primary's, so more replicas have it. The
    // position it holds is only trusted with no intent pending and no store reset meanwhile.
    const freshRead = this.tracker.primarySince(startedAt);
    // A record usually lands within a round trip or two of its write's acknowledgement: a few
    // short re-lookups keep a read-back right after a write on the replicas.
    for (let attempt = 0; attempt < RELOOKUPS; attempt++) {
      if (attempt > 0) await sleep(RELOOKUP_PAUSE_MS);
      const again = await this.#lookup(this.#store.lookup(scope), resets);
      if (again === null || again.expired || this.#timelineAhead(again.timeline)) break;
      if (!again.pending) return maxLsn(known, again.position) ?? "write-in-flight";
    }
    const fresh = await freshRead;
    return fresh === undefined ? "write-in-flight" : maxLsn(floor, fresh)!;
  }

  /**
   * The replicas a read may use. With a position to reach: those that have replayed it. A scope
   * with NO known position is not free to go anywhere: its key may have expired while a write of
   * it is still unreplayed somewhere. A key expires `ttlMs` after its last raise, and every raise
   * comes after the commit it records, so a write whose key is gone committed more than `ttlMs`
   * ago; a replica whose lag is known to be under half of that (an upper bound, see
   * ReplicaView.lagMs; the other half is margin for clocks and timers) has replayed it.
   * Unscoped reads need no guarantee and may use any sampled replica, and so may `time-window`
   * reads past their window (that strategy bounds nothing). This assumes that keys
   * vanish only by expiry or with a store reset: a Redis that evicts keys breaks it, which is why
   * `ryw doctor` fails an evicting `maxmemory-policy`.
   */
  #eligible(required: Lsn | undefined, bounded: boolean, recent = false): ReplicaView[] {
    const candidates = this.tracker.candidates(required);
    if (!recent && (required !== undefined || !bounded)) return candidates;
    const maxLagMs = this.#ttlMs / 2;
    return candidates.filter((r) => r.lagMs !== undefined && r.lagMs < maxLagMs);
  }

  async #readWindow<T>(run: (target: Target) => Promise<T>, scope: string, ctx: RywContext | undefined) {
    const now = Date.now();
    const local = ctx?.scope === scope ? ctx.known.lastWriteAt : undefined;
    if (local !== undefined && now - local < this.#windowMs) return this.#onPrimary(run, "in-window", scope, undefined);
    if (!this.#store.available) return this.#onPrimary(run, "store-unavailable", scope, undefined);
    const stored = await this.#lookup(this.#store.get(scope), this.#resets);
    if (stored === null) return this.#onPrimary(run, "store-unavailable", scope, undefined);
    if (stored !== undefined && now - Number(stored) < this.#windowMs) return this.#onPrimary(run, "in-window", scope, undefined);
    return this.#routeRequired(run, scope, undefined, stored === undefined ? "no-token" : "window-passed");
  }

  async #routeRequired<T>(run: (target: Target) => Promise<T>, scope: string | undefined, required: Lsn | undefined, unconstrained: RouteReason = "no-token", bounded = scope !== undefined && this.strategy === "lsn", recent = false) {
    const reason = required === undefined ? unconstrained : "caught-up";
    let candidates = this.#eligible(required, bounded, recent);
    if (candidates.length > 0) return this.#onReplica(run, this.#choose(candidates), reason, scope, required);
    if (!this.tracker.anyHealthy) return this.#onPrimary(run, "no-healthy-replica", scope, required);
    if (this.#refreshOnDemand || this.#fallback === "wait") {
      await this.tracker.refresh();
      candidates = this.#eligible(required, bounded, recent);
      if (candidates.length > 0) return this.#onReplica(run, this.#choose(candidates), reason, scope, required);
    }
    if (this.#fallback === "wait") {
      const deadline = Date.now() + this.#maxWaitMs;
      for (let left = this.#maxWaitMs; left > 0; left = deadline - Date.now()) {
        await sleep(Math.min(WAIT_POLL_MS, left));
        await this.tracker.refresh();
        candidates = this.#eligible(required, bounded, recent);
        if (candidates.length > 0) return this.#onReplica(run, this.#choose(candidates), "waited", scope, required);
      }
    } else if (this.#fallback === "error") {
      this.#telemetry.route({ target: PRIMARY, reason: "lagging", scope, required });
      throw new RywError("REPLICA_LAGGING", "No replica has replayed this scope's last write yet (fallback: \"error\"). Retry later, or use fallback \"primary\" or \"wait\".");
    }
    return this.#onPrimary(run, "lagging", scope, required);
  }

  #onReplica<T>(run: (target: Target) => Promise<T>, pick: ReplicaView, reason: RouteReason, scope: string | undefined, required: Lsn | undefined) {
    return this.#finishReplica(this.#attempt(run, pick), run, pick, reason, scope, required);
  }

  async #finishReplica<T>(attempt: Attempt<T>, run: (target: Target) => Promise<T>, pick: ReplicaView, reason: RouteReason, scope: string | undefined, required: Lsn | undefined) {
    const outcome = await attempt;
    const decision: RouteDecision = { target: replicaTarget(pick), reason, scope, required };
    // The sample the pick was made on went stale while the read ran (the replica restarted, lost
    // its connections, or failed a probe): the read may have run on a server that came back
    // behind that sample, on a fresh connection. Its answer is not kept, whatever it was.
    if (!this.tracker.sameEpoch(pick)) {
      this.#telemetry.emit({ type: "error", source: "replica", error: new RywError("REPLICA_RESTARTED", `Replica ${pick.name} restarted or lost its connections during a read; the read was retried on the primary.`), scope, replica: pick.name });
      return this.#onPrimary(run, "replica-failed", scope, required);
    }
    if (outcome.ok) {
      this.#telemetry.route(decision);
      return { value: outcome.value, decision, pick };
    }
    if (isRywError(outcome.error, "REPLICA_TIMEOUT")) {
      this.#telemetry.emit({ type: "error", source: "replica", error: outcome.error, scope, replica: pick.name });
      return this.#onPrimary(run, "replica-failed", scope, required);
    }
    if (!this.#isConnectionError(outcome.error)) {
      this.#telemetry.route(decision);
      throw outcome.error;
    }
    this.tracker.markDown(pick.index);
    this.#telemetry.emit({ type: "error", source: "replica", error: outcome.error, scope, replica: pick.name });
    return this.#onPrimary(run, "replica-failed", scope, required);
  }

  /** The read on `pick`, settled, or a REPLICA_TIMEOUT error. One promise and one timer: a hot path. */
  #attempt<T>(run: (target: Target) => Promise<T>, pick: ReplicaView): Attempt<T> {
    const ms = this.#replicaTimeoutMs;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ ok: false, error: new RywError("REPLICA_TIMEOUT", `read on replica ${pick.name} timed out after ${ms} ms; it was run on the primary instead.`) }), ms);
      timer.unref();
      let read: Promise<T>;
      try {
        read = run(replicaTarget(pick));
      } catch (error) {
        read = Promise.reject(error);
      }
      read.then(
        (value) => {
          clearTimeout(timer);
          resolve({ ok: true, value });
        },
        (error: unknown) => {
          clearTimeout(timer);
          resolve({ ok: false, error });
        },
      );
    });
  }

  async #onPrimary<T>(run: (target: Target) => Promise<T>, reason: RouteReason, scope: string | undefined, required: Lsn | undefined) {
    const decision: RouteDecision = { target: PRIMARY, reason, scope, required };
    this.#telemetry.route(decision);
    return { value: await run(PRIMARY), decision };
  }

  /**
   * The stored position, `undefined` when none, or `null` when the store failed or was reset
   * while the lookup ran: a store that restarted answers "none" for positions it lost, and the
   * reset signal can arrive just before that answer, after this read checked for a floor.
   */
  async #lookup<S>(lookup: Promise<S>, resets: number): Promise<S | null> {
    try {
      const stored = await lookup;
      return this.#resets === resets ? stored : null;
    } catch (error) {
      this.#telemetry.emit({ type: "error", source: "store", error });
      return null;
    }
  }

  /** The token's position, or the reason to go to the primary instead. */
  async #verifyToken(ctx: RywContext): Promise<Lsn | undefined | RouteReason> {
    if (!this.#codec) return undefined;
    const known = ctx.known;
    const decoded = this.#decoded(ctx);
    if ("error" in decoded) return "invalid-token";
    if (Date.now() - decoded.issuedAt > this.#ttlMs) return undefined;
    let lsn = decoded.lsn;
    const tokenTimeline = (decoded as { timeline?: number }).timeline;
    let timeline = this.tracker.timeline;
    if (tokenTimeline !== undefined && timeline !== undefined && tokenTimeline > timeline.id) {
      // Written after a failover this tracker has not polled yet.
      await this.tracker.refreshPrimary();
      timeline = this.tracker.timeline;
      if (timeline === undefined || tokenTimeline > timeline.id) return "token-ahead";
    }
    // Rule 2 (liveness after a failover): a position from an older timeline is clamped to the
    // first position this tracker read on the primary's timeline. The new timeline forked off at
    // its switch point, and that first position is at or past it; everything at or below the
    // switch point is common to both timelines, and whatever the old timeline had past it was
    // lost in the switch: no server of the new timeline can show it, so waiting for it only
    // pins the client to the primary. A replica on the current timeline (Rule 1, tracker.ts)
    // that has replayed the clamped position holds all of the client's writes that survived.
    // The label is safe because it is never older than the position's real timeline: tokens
    // are labelled only with a timeline read in the same statement as their position. A v1
    // token (no timeline) is not clamped: it reads from the primary until the new timeline
    // passes it or the token expires, like a position in the store (README, Failure policy).
    if (tokenTimeline !== undefined && timeline !== undefined && tokenTimeline < timeline.id && lsn > timeline.firstPosition) lsn = timeline.firstPosition;
    // A token never asks for more than the primary is known to have written: a forged-but-signed
    // or pre-failover position could otherwise never be reached, or be trusted blindly.
    let primary = this.tracker.primaryPosition;
    if (primary === undefined || lsn > primary) primary = await this.tracker.refreshPrimary();
    if (primary === undefined || lsn > primary) return "token-ahead";
    if (tokenTimeline !== undefined) this.#noteTimeline(lsn, lsn === decoded.lsn ? tokenTimeline : timeline!.id);
    known.position = maxLsn(known.position, lsn);
    return lsn;
  }

  /** The context's token, decoded once per request (the cache is shared with the middleware). */
  #decoded(ctx: RywContext): NonNullable<RywContext["known"]["decoded"]> {
    const known = ctx.known;
    if (!known.decoded) {
      try {
        known.decoded = this.#codec!.decode(ctx.token!);
      } catch (error) {
        known.decoded = { error };
        this.#telemetry.emit({ type: "error", source: "token", error, scope: ctx.scope });
      }
    }
    return known.decoded;
  }

  /**
   * Monotonic: the least position every read of this context must see (the client's token, this
   * request's served bounds and writes), whether its token verified but expired, or the reason to
   * use the primary (`invalid-token`, `token-ahead`, exactly as for a scope's token).
   */
  async #clientFloor(ctx: RywContext): Promise<{ seen: Lsn | undefined; expired: boolean } | RouteReason> {
    let expired = false;
    if (ctx.token !== undefined) {
      const token = await this.#verifyToken(ctx);
      if (typeof token === "string") return token;
      // Verified but older than ttlMs: its position is not asked for (as everywhere else), so
      // the read must use a replica whose lag is under ttlMs/2 (see #noteServed, point 4).
      expired = token === undefined;
    }
    return { seen: maxLsn(ctx.known.served, ctx.known.position), expired };
  }

  /** The floor to apply, `undefined` when none, or `null` while it is still being captured. */
  #activeFloor(): Lsn | undefined | null {
    const floor = this.#floor;
    if (!floor) return undefined;
    if (Date.now() >= floor.until) {
      this.#floor = undefined;
      return undefined;
    }
    return floor.lsn ?? null;
  }

  #onStoreReset(): void {
    this.#resets++;
    // Time-window keys hold times, not positions: the whole window is the floor there.
    const until = Date.now() + (this.strategy === "time-window" ? this.#windowMs : this.#ttlMs);
    const floor: { lsn: Lsn | undefined; until: number } = { lsn: undefined, until };
    this.#floor = floor;
    if (this.strategy === "time-window") return;
    const capture = async () => {
      while (!this.#closed && this.#floor === floor) {
        try {
          floor.lsn = await capturePosition(this.#primary);
          return;
        } catch (error) {
          this.#telemetry.emit({ type: "error", source: "capture", error });
          await sleep(100);
        }
      }
    };
    void capture();
  }
}

/**
 * The candidates worth a speculative read: a replica seconds behind would almost never satisfy a
 * scope that wrote recently, and its answer would be thrown away. Lags are upper bounds that
 * include the time since the primary's last poll, which grows with load for every replica alike,
 * so "keeping up" is relative: within `slackMs` of the least lag. All of them if no lag is known.
 */
function keepingUp(candidates: ReplicaView[], slackMs: number): ReplicaView[] {
  let best = Infinity;
  for (const r of candidates) if (r.lagMs !== undefined && r.lagMs < best) best = r.lagMs;
  if (best === Infinity) return candidates;
  return candidates.filter((r) => r.lagMs !== undefined && r.lagMs <= best + slackMs);
}

function replicaTarget(pick: ReplicaView): Target {
  return { kind: "replica", index: pick.index, name: pick.name };
}

function bool(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw invalidOption(option, "a boolean", value);
  return value;
}
