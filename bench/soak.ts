import { spawnSync } from "node:child_process";
import type { ClusterInfo } from "../test/harness/index.js";
import { profiles } from "./profiles.js";
import { routers } from "./routers/index.js";
import type { BenchRouter } from "./routers/types.js";
import { round } from "./stats.js";
import { runWorkload } from "./workload.js";

/** The @ryw routers a soak runs side by side, each with its share of the users. */
const SOAKED = ["ryw (core)", "ryw (prisma)", "ryw (drizzle)"];

export interface SoakSample {
  atS: number;
  rssMiB: number;
  heapUsedMiB: number;
  redisKeys: number;
  /** Per router: its own bookkeeping, as far as it reports it. */
  routers: Record<string, { pinnedScopes: number; recordsInFlight: number; unresolvedIntents: number; historyEntries: number | undefined }>;
}

export interface SoakReport {
  seconds: number;
  users: number;
  samples: SoakSample[];
  /** Last sample over the first one taken after warm-up (RSS, heap), and keys at the end. */
  growth: { rssMiB: number; heapUsedMiB: number; redisKeys: number };
  runs: Array<{ router: string; reads: number; writes: number; checkedReads: number; staleReads: number; errors: number }>;
}

/**
 * `--soak`: the @ryw routers of every ORM at once, for `seconds`, with the chaos profile's faults
 * (replay pauses, a replica killed and restarted, a Redis restart) repeating, sampling memory,
 * Redis keys and each router's bookkeeping every `sampleS` seconds. Growth that does not level
 * off shows here, not in a test.
 */
export async function runSoak(cluster: ClusterInfo, users: number[], seconds: number, out: (line: string) => void, sampleS = 10): Promise<SoakReport> {
  const chaos = profiles.find((p) => p.name === "chaos")!;
  const specs = routers.filter((r) => SOAKED.includes(r.name));
  const created: Array<{ name: string; router: BenchRouter }> = [];
  for (const spec of specs) created.push({ name: spec.name, router: await spec.create(cluster) });
  const samples: SoakSample[] = [];
  const started = performance.now();
  const abort = new AbortController();
  const sample = () => {
    const memory = process.memoryUsage();
    const keys = cluster.redis ? Number(spawnSync("redis-cli", ["-p", String(cluster.redis.port), "dbsize"], { encoding: "utf8" }).stdout.trim()) : 0;
    const perRouter: SoakSample["routers"] = {};
    for (const { name, router } of created) {
      const s = router.ryw?.stats();
      if (s) perRouter[name] = { pinnedScopes: s.pinnedScopes, recordsInFlight: s.recordsInFlight, unresolvedIntents: s.unresolvedIntents, historyEntries: router.ryw?.tracker.historySize };
    }
    const point = { atS: round((performance.now() - started) / 1000, 1), rssMiB: round(memory.rss / 2 ** 20, 1), heapUsedMiB: round(memory.heapUsed / 2 ** 20, 1), redisKeys: keys, routers: perRouter };
    samples.push(point);
    out(`soak ${String(point.atS).padStart(6)} s  rss ${point.rssMiB} MiB  heap ${point.heapUsedMiB} MiB  redis keys ${keys}  ${Object.entries(perRouter).map(([n, r]) => `${n}: pins ${r.pinnedScopes}, in flight ${r.recordsInFlight}, history ${r.historyEntries ?? "-"}`).join("; ")}`);
  };
  const timer = setInterval(sample, sampleS * 1000);
  sample();
  const faults = (async () => {
    while (!abort.signal.aborted) {
      await chaos.during!(cluster, abort.signal, () => {});
    }
  })();
  const share = Math.max(1, Math.floor(users.length / created.length));
  // The main bench's offered load (~500 ops/s for 300 users), shared by the routers.
  const thinkMs = Math.round(users.length / 0.5);
  try {
    const results = await Promise.all(
      created.map(({ name, router }, i) =>
        runWorkload(router, { users: users.slice(i * share, (i + 1) * share), durationMs: seconds * 1000, writeShare: 0.1, foreignReadShare: 0.1, thinkMs, seed: 11 + i }, `soak-${name}`).then((r) => ({ name, r })),
      ),
    );
    sample();
    const warm = samples.find((s) => s.atS >= Math.min(30, seconds / 4)) ?? samples[0]!;
    const last = samples[samples.length - 1]!;
    return {
      seconds,
      users: share * created.length,
      samples,
      growth: { rssMiB: round(last.rssMiB - warm.rssMiB, 1), heapUsedMiB: round(last.heapUsedMiB - warm.heapUsedMiB, 1), redisKeys: last.redisKeys },
      runs: results.map(({ name, r }) => ({ router: name, reads: r.reads, writes: r.writes, checkedReads: r.checkedReads, staleReads: r.staleReads, errors: r.errors })),
    };
  } finally {
    clearInterval(timer);
    abort.abort();
    await faults;
    await chaos.after(cluster);
    for (const { router } of created) await router.close();
  }
}

// The heap saws with garbage collection: its range after warm-up says more than two samples.
function heapRange(record: SoakReport): string {
  const after = record.samples.filter((s) => s.atS >= Math.min(30, record.seconds / 4)).map((s) => s.heapUsedMiB);
  return after.length < 2 ? "" : ` Heap after warm-up: between ${Math.min(...after)} and ${Math.max(...after)} MiB.`;
}

/** docs/soak.md from one `--soak` run: memory, Redis keys and each router's bookkeeping over time. */
export function soakReport(record: SoakReport & { startedAt: string; machine: unknown }, resultsFile: string): string {
  const names = Object.keys(record.samples[0]?.routers ?? {});
  // About a dozen rows, whatever the length of the run.
  const every = Math.max(1, Math.round(record.samples.length / 12));
  const rows = record.samples.filter((_, i) => i % every === 0 || i === record.samples.length - 1);
  const cell = (s: SoakSample, n: string) => {
    const r = s.routers[n];
    return r ? `${r.pinnedScopes} / ${r.recordsInFlight} / ${r.unresolvedIntents} / ${r.historyEntries ?? "-"}` : "-";
  };
  return [
    "# Soak",
    "",
    `Generated by \`node --import tsx bench/run.ts --soak --soak-seconds ${record.seconds}\` on ${record.startedAt} (results: \`${resultsFile}\`). Machine: ${JSON.stringify(record.machine)}.`,
    "",
    `The three @ryw routers (${SOAKED.join(", ")}) share one process and ${record.users} users, under the chaos profile's faults`,
    "repeating the whole time (replay pauses, a replica killed and restarted, a Redis restart). Per router: pinned scopes /",
    "records in flight / unresolved intents / tracker history entries. Growth is the last sample minus the first after warm-up.",
    "",
    `Growth: RSS ${record.growth.rssMiB} MiB, heap ${record.growth.heapUsedMiB} MiB; Redis keys at the end: ${record.growth.redisKeys}.${heapRange(record)}`,
    "",
    `| at | RSS MiB | heap MiB | Redis keys | ${names.join(" | ")} |`,
    `| ---: | ---: | ---: | ---: | ${names.map(() => "---").join(" | ")} |`,
    ...rows.map((s) => `| ${s.atS} s | ${s.rssMiB} | ${s.heapUsedMiB} | ${s.redisKeys} | ${names.map((n) => cell(s, n)).join(" | ")} |`),
    "",
    "| router | reads | checked reads | stale | writes | errors |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...record.runs.map((r) => `| ${r.router} | ${r.reads} | ${r.checkedReads} | ${r.staleReads} | ${r.writes} | ${r.errors} |`),
    "",
  ].join("\n");
}
