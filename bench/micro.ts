import { median, percentile, round } from "./stats.js";

export interface Pair {
  name: string;
  /** The plain operation. */
  a: () => Promise<unknown>;
  /** The same operation through @ryw. */
  b: () => Promise<unknown>;
}

export interface Ratio {
  name: string;
  iterations: number;
  aMedianUs: number;
  bMedianUs: number;
  /** Median of per-pair ratios b/a. */
  medianRatio: number;
  /** p99 of b over p99 of a. */
  p99Ratio: number;
}

/**
 * A/B side by side in one process: each iteration runs both, in alternating order, so that
 * noise on this shared machine hits both sides alike.
 */
export async function measurePair(pair: Pair, iterations: number, warmup: number): Promise<Ratio> {
  for (let i = 0; i < warmup; i++) {
    await pair.a();
    await pair.b();
  }
  const a: number[] = [];
  const b: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const order = i % 2 === 0 ? ([pair.a, pair.b] as const) : ([pair.b, pair.a] as const);
    const times: number[] = [];
    for (const fn of order) {
      const t0 = performance.now();
      await fn();
      times.push(performance.now() - t0);
    }
    const [ta, tb] = i % 2 === 0 ? [times[0]!, times[1]!] : [times[1]!, times[0]!];
    a.push(ta);
    b.push(tb);
    ratios.push(tb / ta);
  }
  return {
    name: pair.name,
    iterations,
    aMedianUs: round(median(a) * 1000, 0),
    bMedianUs: round(median(b) * 1000, 0),
    medianRatio: round(median(ratios), 3),
    p99Ratio: round(percentile(b, 99) / percentile(a, 99), 3),
  };
}
