import type { Check } from "./types.js";
import { round } from "./connect.js";
import { ms } from "./format-values.js";

/** Per replica, the worst lag seen by the doctor: probe, catch-up or deliberate apply delay. */
export interface ObservedLag {
  name: string;
  /** Undefined when the replica did not catch up within the timeout. */
  worstMs: number | undefined;
}

/**
 * Positions must outlive the lag. ryw never serves a stale read because of it: a scope whose
 * position expired reads only from replicas whose lag is known to be under half the TTL, and from
 * the primary when there is none. But then those reads leave the replicas, so a lag near or past
 * the TTL costs replica share.
 */
export function ttlCheck(ttlMs: number, lags: ObservedLag[], timeoutMs: number, measured: boolean): Check {
  const base = { id: "ttl", target: "store" };
  const known = lags.filter((l): l is { name: string; worstMs: number } => l.worstMs !== undefined);
  const unknown = lags.filter((l) => l.worstMs === undefined).map((l) => l.name);
  const worst = known.reduce<{ name: string; worstMs: number } | undefined>((a, b) => (a && a.worstMs >= b.worstMs ? a : b), undefined);
  const data = { ttlMs, worstLagMs: worst ? round(worst.worstMs) : null, worstReplica: worst?.name ?? null, beyondTimeout: unknown };
  const fix = (lag: number) => `Pass ttlMs above ${Math.ceil(lag * 2)} to ryw() (e.g. ${Math.ceil((lag * 4) / 1000) * 1000}), or bring the replica's lag down.`;
  if (worst && worst.worstMs >= ttlMs) {
    return { ...base, status: "fail", summary: `positions live ${ms(ttlMs)}, but ${worst.name} lags ${ms(worst.worstMs)}`, note: "positions expire before the replica has their writes: ryw keeps those scopes off it, so their reads go to the primary", fix: fix(worst.worstMs), data };
  }
  if (unknown.length > 0) {
    return { ...base, status: "warn", summary: `positions live ${ms(ttlMs)}; ${unknown.join(", ")} lags more than ${ms(timeoutMs)}, not compared`, note: "while a replica lags more than half the TTL, scopes whose position expired read from the primary", data };
  }
  if (worst && worst.worstMs * 2 > ttlMs) {
    return { ...base, status: "warn", summary: `positions live ${ms(ttlMs)}, ${worst.name} lags ${ms(worst.worstMs)}`, note: "scopes whose position expired read from a replica only while its lag is under half the TTL: this one is past that", fix: fix(worst.worstMs), data };
  }
  if (!measured) return { ...base, status: "skip", summary: `positions live ${ms(ttlMs)} · lag not measured (the probe did not run)`, data };
  const tail = worst ? `worst lag ${ms(worst.worstMs)} (${worst.name})` : "no replica lag measured";
  return { ...base, status: "pass", summary: `positions live ${ms(ttlMs)} · ${tail}`, data };
}
