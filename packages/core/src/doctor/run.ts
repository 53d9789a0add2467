import type { Check, CheckStatus, DoctorReport } from "./types.js";
import type { DoctorOptions } from "./options.js";
import { redact, resolveDoctorOptions } from "./options.js";
import type { PgFacts } from "./inspect.js";
import { inspect } from "./inspect.js";
import type { ReplayState } from "./replay.js";
import { readReplayState } from "./replay.js";
import { connectCheck } from "./connect.js";
import { replicationCheck, roleCheck } from "./topology.js";
import { applyDelayMs, primarySettingChecks, replicaSettingChecks } from "./settings.js";
import type { ProbeResult } from "./probe.js";
import { probe } from "./probe.js";
import { lagCheck, probeCheck } from "./lag.js";
import { redisChecks } from "./store.js";
import type { ObservedLag } from "./ttl.js";
import { ttlCheck } from "./ttl.js";
import { errorText } from "./format-values.js";

// Rows read top-down like a diagnosis: can we reach it, is it the right server, how is it set up,
// how far behind is it, does read-your-writes work, can positions be trusted.
const SECTION: Record<string, number> = {
  connect: 0, role: 1, replication: 1, wal_level: 2, synchronous_commit: 2, hot_standby_feedback: 2, recovery_min_apply_delay: 2,
  lag: 3, probe: 4, eviction: 5, store: 5, ttl: 6,
};

/**
 * Checks a real cluster for read-your-writes with ryw: connectivity, replication, settings, lag,
 * a live probe and the position store. Never throws for a server problem; those become failed checks.
 * Takes the same environment variables as ryw(): DATABASE_URL, DATABASE_REPLICA_URLS, REDIS_URL.
 */
export async function doctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const started = performance.now();
  const config = resolveDoctorOptions(options);
  const { timeoutMs } = config;
  const [primaryInspection, replicaInspections, storeRows] = await Promise.all([
    inspect(config.primary, timeoutMs),
    Promise.all(config.replicas.map((r) => inspect(r, timeoutMs))),
    redisChecks(config.redis, timeoutMs),
  ]);
  const opened = [primaryInspection, ...replicaInspections].flatMap((i) => (i.ok ? [i.facts] : []));
  const checks: Check[] = [];
  try {
    checks.push(connectCheck(primaryInspection, timeoutMs), ...replicaInspections.map((i) => connectCheck(i, timeoutMs)), ...storeRows);
    const primary = primaryInspection.ok ? primaryInspection.facts : undefined;
    if (primary) checks.push(roleCheck(primary), ...primarySettingChecks(primary));
    if (config.replicas.length === 0) {
      checks.push({ id: "replication", target: "replicas", status: "warn", summary: "no replicas configured: every read goes to the primary", fix: "List your replicas in DATABASE_REPLICA_URLS (comma-separated).", data: { replicas: 0 } });
    }

    const following: Array<{ facts: PgFacts; state: ReplayState }> = [];
    for (const inspection of replicaInspections) {
      if (!inspection.ok) continue;
      const facts = inspection.facts;
      let state: ReplayState | undefined;
      if (facts.inRecovery) {
        try {
          state = await readReplayState(facts);
        } catch (error) {
          checks.push({ id: "replication", target: facts.node.name, status: "fail", summary: `cannot read its replay state: ${errorText(error)}`, fix: "Check that this user may call pg_last_wal_replay_lsn() on the replica.", data: { error: errorText(error) } });
          continue;
        }
      }
      const row = replicationCheck(facts, primary, state);
      checks.push(row, ...replicaSettingChecks(facts));
      if (state && row.status !== "fail") following.push({ facts, state });
    }

    const result = await runProbe(primary, following, timeoutMs, checks);
    const lags: ObservedLag[] = result
      ? result.replicas.map((m) => ({
        name: m.facts.node.name,
        worstMs: m.probeMs === undefined ? undefined : Math.max(m.probeMs, m.lagMs ?? 0, applyDelayMs(m.facts)),
      }))
      : following.map((f) => ({ name: f.facts.node.name, worstMs: applyDelayMs(f.facts) }));
    checks.push(ttlCheck(config.ttlMs, lags, timeoutMs, result !== undefined || config.replicas.length === 0));
  } finally {
    await Promise.all(opened.map((f) => f.session.close()));
  }

  const ordered = checks.map((c, i) => ({ c, i })).sort((a, b) => (SECTION[a.c.id] ?? 9) - (SECTION[b.c.id] ?? 9) || a.i - b.i).map(({ c }) => c);
  const counts: Record<CheckStatus, number> = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const c of ordered) counts[c.status]++;
  return {
    ok: counts.fail === 0,
    counts,
    nodes: { primary: redact(config.primary.url), replicas: config.replicas.map((r) => ({ name: r.name, url: redact(r.url) })), redis: config.redis ? redact(config.redis.url) : null },
    timeoutMs,
    ttlMs: config.ttlMs,
    checks: ordered,
    durationMs: Math.round(performance.now() - started),
  };
}

async function runProbe(primary: PgFacts | undefined, following: Array<{ facts: PgFacts; state: ReplayState }>, timeoutMs: number, checks: Check[]): Promise<ProbeResult | undefined> {
  if (following.length === 0) return undefined;
  const skip = (why: string) => {
    for (const { facts } of following) {
      for (const id of ["lag", "probe"]) checks.push({ id, target: facts.node.name, status: "skip", summary: why });
    }
  };
  if (!primary) return skip("needs the primary, which is unreachable"), undefined;
  if (primary.inRecovery) return skip("needs a primary that accepts writes"), undefined;
  try {
    const result = await probe(primary, following, timeoutMs);
    for (const m of result.replicas) checks.push(lagCheck(m, timeoutMs), probeCheck(m, result.target, timeoutMs));
    return result;
  } catch (error) {
    checks.push({
      id: "probe",
      target: "primary",
      status: "fail",
      summary: `could not write the probe: ${errorText(error)}`,
      fix: "Let the doctor's user run pg_logical_emit_message() or txid_current() on the primary.",
      data: { error: errorText(error) },
    });
    skip("needs the probe on the primary, which failed");
    return undefined;
  }
}
