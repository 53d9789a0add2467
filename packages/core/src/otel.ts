import type { Attributes, AttributeValue, Counter, MeterProvider, ObservableCallback, ObservableGauge } from "@opentelemetry/api";
import { metrics, trace, ValueType } from "@opentelemetry/api";
import { invalidOption, RywError } from "./errors.js";
import type { RouteDecision, RywEvent, RywListener, RywStats } from "./events.js";
import { isFallback } from "./events.js";
import { formatLsn } from "./lsn.js";

/**
 * What {@link instrument} needs of a router: the one of `createRyw()`, `db.$ryw` of @ryw/prisma,
 * `session.ryw` (`db.$client.ryw`) of @ryw/drizzle, or anything else with these two methods.
 */
export interface Instrumentable {
  subscribe(listener: RywListener): () => void;
  stats(): RywStats;
}

export interface InstrumentOptions {
  /**
   * Where the metrics go.
   * @default metrics.getMeterProvider(), the global provider that your SDK registers (a no-op until one is)
   */
  meterProvider?: MeterProvider;
  /** Put `ryw.route.*` attributes on the active span of every routed read. @default true */
  spans?: boolean;
  /** Record the `ryw.*` metrics. @default true */
  metrics?: boolean;
  /**
   * Added to every metric data point, to tell apart several routers of one process, e.g.
   * `{ "ryw.router": "orders" }`. Not put on spans.
   * @default {}
   */
  attributes?: Attributes;
}

/** The instrumentation scope of every meter: the library that is instrumented. */
const SCOPE = "@ryw/core";

// Every ryw metric is about PostgreSQL: the DB conventions' system attribute lets these metrics be
// filtered and joined with the `db.client.*` metrics of the app's PostgreSQL instrumentation.
const DB_SYSTEM: Attributes = { "db.system.name": "postgresql" };

// One router instrumented twice would count every read twice.
const instrumented = new WeakSet<object>();

/**
 * Reports a ryw router to OpenTelemetry, until the returned function is called.
 *
 * Spans: every routed read sets, on the span that is active where the read was called (your
 * request's span, or one you started around the query), `ryw.route.target` (`"primary"` or the
 * replica's name), `ryw.route.reason` (the `RouteReason`), `ryw.route.fallback` (it wanted a
 * replica and ended on the primary) and `ryw.route.required_position` (the position the read had to
 * see, as PostgreSQL prints an LSN, `""` when none was required or known). No span is created:
 * ryw's route events fire synchronously in the read's own async context, so the caller's span is
 * the active one. A span covering several reads holds the last one's values, all four keys being
 * written each time. The DB span conventions (`db.system.name`, `server.address`...) are left to
 * the span of the query itself: on a request's span they would mislabel it as a database call.
 *
 * Metrics (meter `@ryw/core`; every point also has `db.system.name: "postgresql"` and `attributes`):
 * - `ryw.routes` (counter, `{route}`): routed reads, by `ryw.route.reason` and `ryw.route.target`.
 * - `ryw.route.fallbacks` (counter, `{route}`): reads that wanted a replica and went to the
 *   primary, by `ryw.route.reason`; `stats().fallbacks`.
 * - `ryw.record.failures` (counter, `{failure}`): writes whose position capture or record failed
 *   at least once (most land on a retry), by `ryw.error.source` (`capture` or `record`) and
 *   `error.type` (the error's `code`, else its name); `stats().recordFailures`.
 * - `ryw.write.unshared` (counter, `{write}`): writes acknowledged before their record reached the
 *   store, by `error.type`; `stats().unsharedWrites`.
 * - `ryw.replica.lag` (gauge, `s`): an upper bound on each replica's replay lag, by
 *   `ryw.replica.name`, read from `stats()` at each collection; a replica whose lag is not known
 *   is not reported.
 * Counters count from this call on (`stats()` counts from the router's creation).
 *
 * Needs `@opentelemetry/api` (>=1.3 <2), and an SDK for anything to be recorded: without one, the
 * API's no-op providers make this nearly free. Spans need a context manager that follows async
 * calls (the Node SDK's default, `AsyncLocalStorageContextManager`). After the returned function
 * is called, nothing more is recorded and the lag gauge stops reporting; the counters keep the
 * totals they reached, as OpenTelemetry counters do.
 * @example
 * import { instrument } from "@ryw/core/otel";
 * const uninstall = instrument(db.$ryw); // after your OpenTelemetry SDK has started
 */
export function instrument(ryw: Instrumentable, options: InstrumentOptions = {}): () => void {
  checkRouter(ryw);
  if (typeof options !== "object" || options === null) throw invalidOption("options", "an object", options);
  const spans = bool("spans", options.spans);
  const record = bool("metrics", options.metrics);
  const extra = attributes(options.attributes);
  const provider = options.meterProvider ?? metrics.getMeterProvider();
  if (typeof provider?.getMeter !== "function") throw invalidOption("meterProvider", "an OpenTelemetry MeterProvider (with getMeter())", provider);
  if (instrumented.has(ryw)) throw new RywError("INVALID_OPTION", "This router is already instrumented: call the function that instrument() returned before instrumenting it again.");

  const counters = record ? new Counters(provider, { ...DB_SYSTEM, ...extra }) : undefined;
  const listener = (event: RywEvent) => {
    if (event.type === "route") {
      if (spans) annotateActiveSpan(event.decision);
      counters?.route(event.decision);
    } else if (event.type === "error") {
      if (event.source === "record" || event.source === "capture") counters?.recordFailure(event.source, event.error);
    } else if (event.type === "unshared") counters?.unshared(event.error);
  };
  const unsubscribe = ryw.subscribe(listener);
  const lag = record ? observeLag(provider, ryw, { ...DB_SYSTEM, ...extra }) : undefined;
  instrumented.add(ryw);
  let installed = true;
  return () => {
    if (!installed) return;
    installed = false;
    unsubscribe();
    lag?.();
    instrumented.delete(ryw);
  };
}

function annotateActiveSpan(decision: RouteDecision): void {
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return;
  span.setAttributes({
    "ryw.route.target": targetName(decision),
    "ryw.route.reason": decision.reason,
    "ryw.route.fallback": isFallback(decision.reason),
    "ryw.route.required_position": decision.required === undefined ? "" : formatLsn(decision.required),
  });
}

function targetName(decision: RouteDecision): string {
  return decision.target.kind === "primary" ? "primary" : decision.target.name;
}

/** The synchronous instruments, fed by the router's events. */
class Counters {
  readonly #routes: Counter;
  readonly #fallbacks: Counter;
  readonly #recordFailures: Counter;
  readonly #unshared: Counter;
  readonly #base: Attributes;
  // Routes are the hot path: attributes objects per (reason, target), not per read.
  readonly #routeAttributes = new Map<string, { route: Attributes; fallback: Attributes | undefined }>();

  constructor(provider: MeterProvider, base: Attributes) {
    const meter = provider.getMeter(SCOPE);
    const int = ValueType.INT;
    this.#routes = meter.createCounter("ryw.routes", { unit: "{route}", valueType: int, description: "Reads routed by ryw, by reason and target." });
    this.#fallbacks = meter.createCounter("ryw.route.fallbacks", { unit: "{route}", valueType: int, description: "Reads that wanted a replica and were served by the primary, by reason." });
    this.#recordFailures = meter.createCounter("ryw.record.failures", { unit: "{failure}", valueType: int, description: "Writes whose position capture or record failed at least once." });
    this.#unshared = meter.createCounter("ryw.write.unshared", { unit: "{write}", valueType: int, description: "Writes acknowledged before their record reached the store: other app servers may serve their scope stale reads until it lands." });
    this.#base = base;
  }

  route(decision: RouteDecision): void {
    const target = targetName(decision);
    const key = `${decision.reason}\0${target}`;
    let attrs = this.#routeAttributes.get(key);
    if (!attrs) {
      const reason = { ...this.#base, "ryw.route.reason": decision.reason };
      attrs = { route: { ...reason, "ryw.route.target": target }, fallback: isFallback(decision.reason) ? reason : undefined };
      this.#routeAttributes.set(key, attrs);
    }
    this.#routes.add(1, attrs.route);
    if (attrs.fallback) this.#fallbacks.add(1, attrs.fallback);
  }

  recordFailure(source: "record" | "capture", error: unknown): void {
    this.#recordFailures.add(1, { ...this.#base, "ryw.error.source": source, "error.type": errorType(error) });
  }

  unshared(error: unknown): void {
    this.#unshared.add(1, { ...this.#base, "error.type": errorType(error) });
  }
}

/** Registers the lag gauge's callback; returns its removal. */
function observeLag(provider: MeterProvider, ryw: Instrumentable, base: Attributes): () => void {
  const gauge: ObservableGauge = provider.getMeter(SCOPE).createObservableGauge("ryw.replica.lag", {
    unit: "s",
    valueType: ValueType.DOUBLE,
    description: "Upper bound on each replica's replay lag: every write acknowledged longer ago than this has been replayed there.",
  });
  const callback: ObservableCallback = (result) => {
    let replicas: RywStats["replicas"];
    try {
      replicas = ryw.stats().replicas;
    } catch {
      // A router closed under its instrumentation has no lag to report; a throw here would only
      // surface as an SDK collection error.
      return;
    }
    for (const r of replicas) if (r.lagMs !== undefined) result.observe(r.lagMs / 1000, { ...base, "ryw.replica.name": r.name });
  };
  gauge.addCallback(callback);
  return () => gauge.removeCallback(callback);
}

/** `error.type` of the conventions: a stable class of error, never its message. */
function errorType(error: unknown): string {
  if (typeof error === "object" && error !== null) {
    const { code, name } = error as { code?: unknown; name?: unknown };
    if (typeof code === "string" && code !== "") return code;
    if (typeof name === "string" && name !== "") return name;
  }
  return "_OTHER";
}

function checkRouter(ryw: unknown): asserts ryw is Instrumentable {
  const candidate = ryw as Partial<Record<"subscribe" | "stats" | "$ryw" | "ryw", unknown>> | null | undefined;
  if (typeof candidate === "object" && candidate !== null && typeof candidate.subscribe === "function" && typeof candidate.stats === "function") return;
  // The two likely slips: the ORM's client instead of its router.
  const hint = typeof candidate !== "object" || candidate === null ? "" : candidate.$ryw !== undefined ? " (this looks like a Prisma client: pass `db.$ryw`)" : candidate.ryw !== undefined ? " (this looks like a rywSession: pass `session.ryw`, or `db.$client.ryw` from drizzle)" : "";
  throw invalidOption("ryw", `a ryw router with subscribe() and stats(): createRyw(...), \`db.$ryw\` (@ryw/prisma) or \`session.ryw\` (@ryw/drizzle)${hint}`, ryw);
}

function bool(option: string, value: unknown): boolean {
  if (value === undefined) return true;
  if (typeof value !== "boolean") throw invalidOption(option, "a boolean", value);
  return value;
}

function attributes(value: unknown): Attributes {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalidOption("attributes", "an object of OpenTelemetry attributes", value);
  for (const [key, v] of Object.entries(value)) {
    if (!isAttributeValue(v)) throw invalidOption(`attributes["${key}"]`, "a string, number, boolean or an array of one of them", v);
  }
  return { ...(value as Attributes) };
}

function isAttributeValue(value: unknown): value is AttributeValue {
  const scalar = (v: unknown) => typeof v === "string" || typeof v === "number" || typeof v === "boolean";
  return scalar(value) || (Array.isArray(value) && value.every((v) => v == null || scalar(v)));
}
