import type { Check } from "./types.js";
import { round } from "./connect.js";
import { ms } from "./format-values.js";

/** Per replica, the worst lag seen by the doctor: probe, catch-up or deliberate apply delay. */
export interface ObservedLag {
  name: string;
  /** Undefined when the replica did not catch up within the timeout. */
  worstMs: number | undefined;
}

/** Positions must outlive the lag: once one expires, reads go to replicas that may still miss the write. */
export function ttlCheck(ttlMs: number, lags: ObservedLag[], timeoutMs: number, measured: boolean): Check {
  const base = { id: "ttl", target: "store" };
  const known = lags.filter((l): l is { name: string; worstMs: number } => l.worstMs !== undefined);
  const unknown = lags.filter((l) => l.worstMs === undefined).map((l) => l.name);
  const worst = known.reduce<{ name: string; worstMs: number } | undefined>((a, b) => (a && a.worstMs >= b.worstMs ? a : b), undefined);
  const data = { ttlMs, worstLagMs: worst ? round(worst.worstMs) : null, worstReplica: worst?.name ?? null, beyondTimeout: unknown };
  const fix = (lag: number) => `Pass ttlMs above ${Math.ceil(lag)} to ryw() (e.g. ${Math.ceil((lag * 2) / 1000) * 1000}), or bring the replica's lag down.`;
  if (worst && worst.worstMs >= ttlMs) {
    return { ...base, status: "fail", summary: `positions live ${ms(ttlMs)}, but ${worst.name} lags ${ms(worst.worstMs)}`, note: "a position expires before the replica has the write, and the next read may be stale", fix: fix(worst.worstMs), data };
  }
  if (unknown.length > 0) {
    return { ...base, status: "warn", summary: `positions live ${ms(ttlMs)}; ${unknown.join(", ")} lags more than ${ms(timeoutMs)}, not compared`, note: "if that lag outgrows the TTL, reads after a write may be stale", data };
  }
  if (worst && worst.worstMs * 2 > ttlMs) {
    return { ...base, status: "warn", summary: `positions live ${ms(ttlMs)}, ${worst.name} lags ${ms(worst.worstMs)}`, note: "little headroom: a lag spike past the TTL makes reads after a write stale", fix: fix(worst.worstMs), data };
  }
  if (!measured) return { ...base, status: "skip", summary: `positions live ${ms(ttlMs)} · lag not measured (the probe did not run)`, data };
  const tail = worst ? `worst lag ${ms(worst.worstMs)} (${worst.name})` : "no replica lag measured";
  return { ...base, status: "pass", summary: `positions live ${ms(ttlMs)} · ${tail}`, data };
}
