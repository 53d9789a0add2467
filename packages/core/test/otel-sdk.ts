// The OpenTelemetry SDK as the otel tests use it: in-memory exporters, and the async-hooks context
// manager that a Node app gets from the SDK, so that the active span follows awaits. Also used by
// test/otel.test.ts, which cannot resolve these packages from its own directory.
import type { Attributes, Span } from "@opentelemetry/api";
import { context, metrics, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import type { DataPoint, MetricData } from "@opentelemetry/sdk-metrics";
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

export { trace };

export interface TestTelemetry {
  readonly meterProvider: MeterProvider;
  /** Runs `fn` in a new active span, ended when `fn` settles; returns what `fn` returned and the span's id. */
  inSpan<T>(name: string, fn: (span: Span) => Promise<T>): Promise<{ value: T; spanId: string }>;
  /** Ended spans, by id. */
  span(spanId: string): ReadableSpan;
  /** The `ryw.*` attributes of an ended span. */
  rywAttributes(spanId: string): Attributes;
  /** Collects every metric now (cumulative) and returns them by name. */
  collect(): Promise<Map<string, MetricData>>;
  /** Ends everything and removes the global context manager. */
  shutdown(): Promise<void>;
}

/**
 * A tracer and a meter provider with in-memory exporters. The tracer is not registered globally:
 * ryw must find the span through the active context alone. The context manager is global (the
 * OpenTelemetry API has one), so `shutdown()` must run before the next test file.
 */
export function startTelemetry(): TestTelemetry {
  const manager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(manager)) throw new Error("[test] a global OpenTelemetry context manager is already registered");
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const tracer = tracerProvider.getTracer("ryw-otel-test");
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // Exports only on forceFlush(): the hour-long interval never elapses in a test.
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });

  const span = (spanId: string) => {
    const found = spans.getFinishedSpans().find((s) => s.spanContext().spanId === spanId);
    if (!found) throw new Error(`[test] no ended span ${spanId}`);
    return found;
  };
  return {
    meterProvider,
    async inSpan(name, fn) {
      return tracer.startActiveSpan(name, async (s) => {
        try {
          return { value: await fn(s), spanId: s.spanContext().spanId };
        } finally {
          s.end();
        }
      });
    },
    span,
    rywAttributes: (spanId) => Object.fromEntries(Object.entries(span(spanId).attributes).filter(([key]) => key.startsWith("ryw."))),
    async collect() {
      exporter.reset();
      await reader.forceFlush();
      const byName = new Map<string, MetricData>();
      for (const resource of exporter.getMetrics()) for (const scope of resource.scopeMetrics) for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
      return byName;
    },
    async shutdown() {
      await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()]);
      context.disable();
      trace.disable();
      metrics.disable();
    },
  };
}

/** The data points of one metric as `[attributes, value]`, or none when it was never recorded. */
export function points(collected: Map<string, MetricData>, name: string): Array<[Attributes, number]> {
  const metric = collected.get(name);
  if (!metric) return [];
  return (metric.dataPoints as Array<DataPoint<number>>).map((p) => [p.attributes, p.value]);
}

/** Sums a metric's points whose attributes include `match`. */
export function total(collected: Map<string, MetricData>, name: string, match: Attributes = {}): number {
  return points(collected, name)
    .filter(([attrs]) => Object.entries(match).every(([key, value]) => attrs[key] === value))
    .reduce((sum, [, value]) => sum + value, 0);
}
