/**
 * `pnpm bench [--quick] [--profiles a,b] [--routers substring,...] [--seconds N] [--users N] [--chaos-procs]`
 *
 * `--soak [--soak-seconds N]` (default 600) runs the @ryw routers of every ORM at once under the
 * chaos profile's faults, with `--users` split between them, sampling RSS, heap, Redis keys and
 * each router's bookkeeping every 10 s (bench/soak.ts). `--scale [--scale-iterations N]` measures
 * the core read and write ratios with 1, 2 and 4 replicas and with 1k and 100k scopes in Redis
 * (bench/scale.ts). Both write their own JSON file to bench/results/, and docs/soak.md (a soak
 * of 10 minutes or more) or docs/scale.md.
 *
 * `--profiles chaos-mp` runs only the multi-process chaos checker of test/chaos (app-server
 * processes sharing Redis, fault proxies, random replica and Redis faults), long: per ORM until
 * `--chaos-reads N` (default 50000) read-backs were checked and at least `--chaos-seconds N`
 * (default 60) passed; `--chaos-users`, `--chaos-servers`, `--chaos-seed`, `--chaos-rev <git rev>`
 * tune it. `--chaos-redis single|cluster|both` (default single) picks the Redis of those runs: one
 * Redis behind fault proxies (restarts, latency, stalls, drops), or a real Redis Cluster of 3
 * masters and 3 replicas whose masters fail over at random (CLUSTER FAILOVER, kill -9, kill -9 after
 * the replica fell behind, so that acknowledged positions are lost), or each in turn.
 * `--chaos-procs` adds the same runs after a normal bench. Either way the summaries go
 * to the JSON file under `chaosProcs`, and a stale read or failed operation exits non-zero.
 * docs/chaos.md is regenerated, or docs/chaos-redis-cluster.md for `--chaos-redis cluster`.
 *
 * Starts a private cluster (primary, two replicas, Redis), then runs the same workload through
 * every router under every lag profile, and measures A/B micro ratios. Writes a JSON file to
 * bench/results/ and regenerates docs/benchmarks.md with its chart. `--quick` is a short run that
 * exits non-zero if any @ryw router served a stale read; timings are reported, never asserted.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join, relative } from "node:path";
import postgres from "postgres";
import { applyMigrations, findPgBin, startCluster, stopCluster, waitForReplicas } from "../test/harness/index.js";
import { readCounters, resetCounters } from "./counters.js";
import { measurePair } from "./micro.js";
import type { Ratio } from "./micro.js";
import { corePairs, drizzlePairs, prismaPairs } from "./micro-pairs.js";
import { profiles } from "./profiles.js";
import { pairRatios, writeReport } from "./report.js";
import type { RunRecord } from "./report.js";
import { routers } from "./routers/index.js";
import { percentile, round } from "./stats.js";
import { runWorkload } from "./workload.js";
import { chaosReport, runChaosProcs } from "./chaos-mp.js";
import { runSoak, soakReport } from "./soak.js";
import { runScale, scaleReport } from "./scale.js";
import type { ChaosSummary } from "../test/chaos/summary.js";

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const value = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = flag("quick");
const seconds = Number(value("seconds") ?? (quick ? 2 : 8));
const userCount = Number(value("users") ?? (quick ? 60 : 300));
// Think time scales with the user count so that the offered load (~500 ops/s) stays below what
// this 2-core machine serves with Prisma, three PostgreSQL servers and Redis on it: an
// overloaded run measures queueing, not routing.
const thinkMs = Number(value("think") ?? Math.round(userCount / 0.5));
const wantedProfiles = value("profiles")?.split(",");
const wantedRouters = value("routers")?.split(",");
const microIterations = Number(value("micro") ?? 3000);
const chaosOnly = wantedProfiles?.length === 1 && wantedProfiles[0] === "chaos-mp";
const chaosProcs = chaosOnly || flag("chaos-procs") || !!wantedProfiles?.includes("chaos-mp");
const chaosOptions = {
  reads: Number(value("chaos-reads") ?? 50_000),
  seconds: Number(value("chaos-seconds") ?? 60),
  users: Number(value("chaos-users") ?? 40),
  appServers: Number(value("chaos-servers") ?? 2),
  seed: Number(value("chaos-seed") ?? 42),
  rev: value("chaos-rev"),
  redis: chaosRedis(value("chaos-redis") ?? "single"),
};

const started = Date.now();
const out = (line: string) => process.stdout.write(`${line}\n`);
const chaosFailed = (runs: ChaosSummary[]) => runs.some((r) => r.stale > 0 || r.failedOps > 0 || r.unexplainedLostWrites > 0 || r.runErrors.length > 0);
if (chaosOnly) process.exit(await chaosAlone());
if (flag("soak")) process.exit(await soakAlone(Number(value("soak-seconds") ?? 600)));
if (flag("scale")) process.exit(await scaleAlone(Number(value("scale-iterations") ?? 1000)));
const cluster = await startCluster({ replicas: 2, redis: true });
let exitCode = 0;
try {
  await applyMigrations(cluster);
  const sql = postgres(cluster.primary.url, { onnotice: () => {} });
  const users = (await sql`insert into "User" (email) select 'bench-' || g || '@example.com' from generate_series(1, ${userCount}) g returning id`).map((r) => r.id as number);
  await sql.end();
  out(`cluster up, ${users.length} users; ${seconds} s per router and profile${quick ? " (quick)" : ""}`);

  const runs: RunRecord[] = [];
  const selectedProfiles = profiles.filter((p) => !wantedProfiles || wantedProfiles.includes(p.name));
  // The quick run checks the invariant only: routers that promise read-your-writes, every profile.
  const selectedRouters = routers.filter((r) => (wantedRouters ? wantedRouters.some((w) => r.name.includes(w)) : !quick || r.promisesRyw));
  for (const profile of selectedProfiles) {
    out(`\n== ${profile.name}: ${profile.description}`);
    for (const spec of selectedRouters) {
      await profile.before(cluster);
      const router = await spec.create(cluster);
      await resetCounters(cluster);
      const abort = new AbortController();
      const chaosLog: string[] = [];
      const chaos = profile.during?.(cluster, abort.signal, (e) => chaosLog.push(e));
      const cpu = process.cpuUsage();
      const result = await runWorkload(router, { users, durationMs: seconds * 1000, writeShare: 0.1, foreignReadShare: 0.1, thinkMs, seed: 42 }, `${profile.name}-${spec.name}`);
      const cpuUs = process.cpuUsage(cpu);
      abort.abort();
      await chaos;
      await profile.after(cluster);
      const counts = await readCounters(cluster);
      const served = router.served?.();
      await router.close();
      await waitForReplicas(cluster, 30_000);

      const replicaStatements = Object.entries(counts.nodes).filter(([n]) => n !== "primary").reduce((a, [, c]) => a + c.workload, 0);
      const replicaReads = served ? served.replica : replicaStatements;
      const ops = result.reads + result.writes;
      const allStatements = Object.values(counts.nodes).reduce((a, c) => a + c.workload + c.other, 0);
      const record: RunRecord = {
        profile: profile.name,
        router: spec.name,
        orm: spec.orm,
        promisesRyw: spec.promisesRyw,
        reads: result.reads,
        checkedReads: result.checkedReads,
        staleReads: result.staleReads,
        writes: result.writes,
        errors: result.errors,
        firstErrors: result.firstErrors,
        replicaShare: result.reads ? round(replicaReads / result.reads, 4) : 0,
        wastedReplicaStatements: served ? Math.max(0, replicaStatements - served.replica) : 0,
        primaryQps: round((counts.nodes.primary?.workload ?? 0) / (result.elapsedMs / 1000), 1),
        readP50Ms: round(percentile(result.readLatencyMs, 50), 3),
        readP99Ms: round(percentile(result.readLatencyMs, 99), 3),
        writeP50Ms: round(percentile(result.writeLatencyMs, 50), 3),
        writeP99Ms: round(percentile(result.writeLatencyMs, 99), 3),
        extraDbStatementsPerOp: ops ? round((allStatements - ops) / ops, 3) : 0,
        redisCallsPerOp: ops ? round(Object.values(counts.redis).reduce((a, b) => a + b, 0) / ops, 3) : 0,
        probesPerSecondPerReplica: round(Object.entries(counts.nodes).filter(([n]) => n !== "primary").reduce((a, [, c]) => a + c.probes, 0) / cluster.replicas.length / (result.elapsedMs / 1000), 1),
        opsPerSecond: round(ops / (result.elapsedMs / 1000), 0),
        cpuUsPerOp: ops ? round((cpuUs.user + cpuUs.system) / ops, 1) : 0,
        chaos: chaosLog,
      };
      runs.push(record);
      out(`${spec.name.padEnd(26)} reads ${String(record.reads).padStart(6)}  stale ${String(record.staleReads).padStart(5)}  replica share ${record.replicaShare.toFixed(3)}  read p50 ${record.readP50Ms} ms  write p50 ${record.writeP50Ms} ms  cpu ${record.cpuUsPerOp} us/op${record.errors ? `  errors ${record.errors}: ${record.firstErrors[0]}` : ""}`);
      if (spec.promisesRyw && record.staleReads > 0) exitCode = 1;
    }
  }

  // Tracker load must not follow the request rate: the same @ryw router at two offered loads.
  const trackerLoad: Array<{ thinkMs: number; opsPerSecond: number; probesPerSecondPerReplica: number }> = [];
  const core = routers.find((r) => r.name === "ryw (core)");
  if (core && !wantedProfiles && !quick) {
    for (const rateThink of [thinkMs * 4, thinkMs]) {
      const router = await core.create(cluster);
      await resetCounters(cluster);
      const result = await runWorkload(router, { users, durationMs: seconds * 1000, writeShare: 0.1, foreignReadShare: 0.1, thinkMs: rateThink, seed: 7 }, `tracker-${rateThink}`);
      const counts = await readCounters(cluster);
      await router.close();
      const s = result.elapsedMs / 1000;
      const probes = Object.entries(counts.nodes).filter(([n]) => n !== "primary").reduce((a, [, c]) => a + c.probes, 0);
      trackerLoad.push({ thinkMs: rateThink, opsPerSecond: round((result.reads + result.writes) / s, 0), probesPerSecondPerReplica: round(probes / cluster.replicas.length / s, 1) });
    }
    out(`\ntracker load: ${trackerLoad.map((t) => `${t.opsPerSecond} ops/s -> ${t.probesPerSecondPerReplica} probes/s per replica`).join("; ")}`);
  }

  const micro: Ratio[] = [];
  if (!flag("no-micro") && !quick) {
    out("\n== micro ratios (A/B interleaved, one process)");
    for (const make of [corePairs, prismaPairs, drizzlePairs]) {
      const set = await make(cluster, users[0]!);
      try {
        for (const pair of set.pairs) {
          const ratio = await measurePair(pair, microIterations, Math.min(300, microIterations));
          micro.push(ratio);
          out(`${pair.name}: median ${ratio.medianRatio}x (p99 ${ratio.p99Ratio}x), ${ratio.aMedianUs} -> ${ratio.bMedianUs} us`);
        }
      } finally {
        await set.close();
      }
    }
  }

  const chaosRuns = chaosProcs ? await runChaosProcs({ ...chaosOptions, out }) : [];
  if (chaosFailed(chaosRuns)) exitCode = 1;

  const record = {
    startedAt: new Date(started).toISOString(),
    durationS: round((Date.now() - started) / 1000, 1),
    quick,
    machine: machine(cluster.pgBin),
    config: { seconds, users: users.length, writeShare: 0.1, foreignReadShare: 0.1, thinkMs, microIterations, ...(chaosProcs ? { chaosProcs: chaosOptions } : {}) },
    runs,
    trackerLoad,
    micro,
    ...(chaosProcs ? { chaosProcs: chaosRuns } : {}),
  };
  const pairs = pairRatios(record);
  if (pairs.length) {
    out("\n== @ryw over naive routing, same ORM and load");
    for (const r of pairs) out(`${r.orm.padEnd(20)} ${r.profile.padEnd(9)} read p50 ${r.readP50}x (floor ${r.floorReadP50 ?? "-"}x)  write p50 ${r.writeP50}x (floor ${r.floorWriteP50 ?? "-"}x)  cpu/op ${r.cpuPerOp ?? "-"}x  replica share ${r.replicaShare.toFixed(3)}  stale ${r.stale}`);
  }
  const dir = join(import.meta.dirname, "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${quick ? "quick" : "full"}-${record.startedAt.replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify({ ...record, ratios: pairs }, null, 2)}\n`);
  out(`\nresults: ${file}`);
  if (!quick) writeReport(record, join(import.meta.dirname, "..", "docs"));
  const stale = runs.filter((r) => r.promisesRyw && r.staleReads > 0);
  if (stale.length) out(`\nSTALE READS by routers that promise read-your-writes: ${stale.map((r) => `${r.router} / ${r.profile}: ${r.staleReads}`).join(", ")}`);
  else out(`\nno stale reads by any @ryw router (${runs.filter((r) => r.promisesRyw).reduce((a, r) => a + r.checkedReads, 0)} checked reads)`);
} catch (error) {
  console.error(error);
  exitCode = 1;
} finally {
  await stopCluster(cluster);
}
process.exit(exitCode);

function chaosRedis(mode: string): "single" | "cluster" | "both" {
  if (mode === "single" || mode === "cluster" || mode === "both") return mode;
  throw new Error(`--chaos-redis must be single, cluster or both, got ${JSON.stringify(mode)}`);
}

function machine(pg: string) {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: round(totalmem() / 2 ** 30, 1), node: process.version, pg };
}

/** `--profiles chaos-mp`: the chaos checker alone, with its own clusters; no docs regenerated. */
async function chaosAlone(): Promise<number> {
  try {
    const chaosRuns = await runChaosProcs({ ...chaosOptions, out });
    const record = { startedAt: new Date(started).toISOString(), durationS: round((Date.now() - started) / 1000, 1), machine: machine(findPgBin()), config: { chaosProcs: chaosOptions }, chaosProcs: chaosRuns };
    const dir = join(import.meta.dirname, "results");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `chaos-mp-${record.startedAt.replace(/[:.]/g, "-")}.json`);
    writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
    out(`\nresults: ${file}`);
    // A run for another revision says nothing about this one's docs.
    const doc = chaosOptions.redis === "cluster" ? "chaos-redis-cluster.md" : "chaos.md";
    if (chaosOptions.rev === undefined || chaosOptions.rev === "HEAD") writeFileSync(join(import.meta.dirname, "../docs", doc), chaosReport(record, relative(join(import.meta.dirname, ".."), file)));
    const checked = chaosRuns.reduce((a, r) => a + r.reads, 0);
    out(chaosFailed(chaosRuns) ? `\nCHAOS-MP FAILED: ${chaosRuns.map((r) => `${r.orm} stale ${r.stale}, failed ${r.failedOps}`).join("; ")}` : `\nchaos-mp: no stale read and no failed operation (outside PostgreSQL failover outages) in ${checked} checked reads`);
    return chaosFailed(chaosRuns) ? 1 : 0;
  } catch (error) {
    console.error(error);
    return 1;
  }
}

/** `--soak`: see bench/soak.ts. Exits non-zero on a stale read. */
async function soakAlone(soakSeconds: number): Promise<number> {
  const soakCluster = await startCluster({ replicas: 2, redis: true });
  try {
    await applyMigrations(soakCluster);
    const sql = postgres(soakCluster.primary.url, { onnotice: () => {} });
    const ids = (await sql`insert into "User" (email) select 'soak-' || g || '@example.com' from generate_series(1, ${userCount}) g returning id`).map((r) => r.id as number);
    await sql.end();
    out(`soak: ${ids.length} users for ${soakSeconds} s, chaos faults repeating`);
    const report = await runSoak(soakCluster, ids, soakSeconds, out);
    const file = join(import.meta.dirname, "results", `soak-${new Date(started).toISOString().replace(/[:.]/g, "-")}.json`);
    mkdirSync(join(import.meta.dirname, "results"), { recursive: true });
    const record = { startedAt: new Date(started).toISOString(), machine: machine(soakCluster.pgBin), ...report };
    writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
    // A short smoke run says little about growth: only a soak of 10 minutes or more rewrites the doc.
    if (soakSeconds >= 600) writeFileSync(join(import.meta.dirname, "../docs/soak.md"), soakReport(record, relative(join(import.meta.dirname, ".."), file)));
    out(`soak growth after warm-up: rss ${report.growth.rssMiB} MiB, heap ${report.growth.heapUsedMiB} MiB; redis keys at the end ${report.growth.redisKeys}`);
    for (const r of report.runs) out(`  ${r.router}: ${r.reads} reads (${r.checkedReads} checked, ${r.staleReads} stale), ${r.writes} writes, ${r.errors} errors`);
    out(`results: ${file}`);
    return report.runs.some((r) => r.staleReads > 0) ? 1 : 0;
  } finally {
    await stopCluster(soakCluster);
  }
}

/** `--scale`: see bench/scale.ts. */
async function scaleAlone(iterations: number): Promise<number> {
  const points = await runScale(iterations, out);
  const file = join(import.meta.dirname, "results", `scale-${new Date(started).toISOString().replace(/[:.]/g, "-")}.json`);
  mkdirSync(join(import.meta.dirname, "results"), { recursive: true });
  const record = { startedAt: new Date(started).toISOString(), iterations, machine: machine(findPgBin()), points };
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  writeFileSync(join(import.meta.dirname, "../docs/scale.md"), scaleReport(record, relative(join(import.meta.dirname, ".."), file)));
  out(`results: ${file}`);
  return 0;
}
