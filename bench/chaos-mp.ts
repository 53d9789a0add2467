import { runChaos } from "../test/chaos/run.js";
import type { ChaosSummary } from "../test/chaos/summary.js";
import type { Orm } from "../test/chaos/protocol.js";

export interface ChaosProcsOptions {
  /** Checked read-backs per ORM; each run goes on until it has them. */
  reads: number;
  /** Least load time per ORM, in seconds. */
  seconds: number;
  users: number;
  appServers: number;
  seed: number;
  /** A git revision to check instead of the working tree. */
  rev: string | undefined;
  out: (line: string) => void;
}

/**
 * The `chaos-mp` profile: test/chaos's multi-process checker (app-server processes sharing Redis,
 * fault proxies, replica and Redis faults at random), run long, once per ORM. Each run brings
 * its own cluster.
 */
export async function runChaosProcs(options: ChaosProcsOptions): Promise<ChaosSummary[]> {
  const records: ChaosSummary[] = [];
  for (const orm of ["prisma", "drizzle"] as Orm[]) {
    options.out(`\n== chaos-mp (${orm}): ${options.appServers} app-server processes, ${options.users} users, until ${options.reads} checked reads and ${options.seconds} s`);
    const summary = await runChaos({
      orm,
      users: options.users,
      appServers: options.appServers,
      durationMs: options.seconds * 1000,
      minReads: options.reads,
      // Generous: a slow machine still gets its reads; a stuck run still ends.
      maxDurationMs: Math.max(options.seconds * 1000, options.reads * 20) * 3,
      seed: options.seed,
      rev: options.rev,
      log: (line) => (/faults so far|load stopped|injector/.test(line) ? options.out(line) : undefined),
    });
    records.push(summary);
    options.out(line(summary));
    if (summary.stale > 0) options.out(`  stale reads by cause: ${JSON.stringify(summary.staleCauses)}`);
    for (const s of summary.staleSamples.slice(0, 5)) options.out(`  STALE ${s.story}\n    faults: ${s.faults.join(", ")}`);
  }
  return records;
}

export function line(s: ChaosSummary): string {
  const kinds = Object.entries(s.byFault).map(([k, f]) => `${k} ${f.reads}/${f.stale}/${f.failedOps}/${f.replicaShare.toFixed(2)}`).join(", ");
  return `${s.orm}: checked reads ${s.reads}, stale ${s.stale}, failed ops ${s.failedOps}, unshared writes ${s.unsharedWrites} (stale reads of them elsewhere ${s.staleUnshared}), replica share ${s.replicaShare.toFixed(3)}, ${Math.round(s.durationMs / 1000)} s; per fault (reads/stale/failed/share): ${kinds}`;
}
