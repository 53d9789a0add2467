import type { Check } from "./types.js";
import type { PgFacts } from "./inspect.js";
import { ms } from "./format-values.js";

/** The primary's settings that decide whether and how soon replicas can serve a read after a write. */
export function primarySettingChecks(primary: PgFacts): Check[] {
  return [walLevel(primary), synchronousCommit(primary)];
}

export function replicaSettingChecks(replica: PgFacts): Check[] {
  return [hotStandbyFeedback(replica), applyDelay(replica)];
}

/** recovery_min_apply_delay in ms; 0 when unset or unknown. */
export function applyDelayMs(facts: PgFacts): number {
  return Number(setting(facts, "recovery_min_apply_delay") ?? 0) || 0;
}

function walLevel(f: PgFacts): Check {
  const value = setting(f, "wal_level") ?? "unknown";
  const base = { id: "wal_level", target: f.node.name, data: { wal_level: value } };
  if (value === "minimal") {
    return { ...base, status: "fail", summary: "wal_level = minimal", note: "streaming replicas need wal_level replica or logical", fix: "Set wal_level = replica on the primary and restart it." };
  }
  return { ...base, status: "pass", summary: `wal_level = ${value}` };
}

function synchronousCommit(f: PgFacts): Check {
  const value = setting(f, "synchronous_commit") ?? "unknown";
  const standbys = setting(f, "synchronous_standby_names") ?? "";
  const base = { id: "synchronous_commit", target: f.node.name, data: { synchronous_commit: value, synchronous_standby_names: standbys } };
  if (value === "off") {
    const writerDelay = Number(setting(f, "wal_writer_delay") ?? 200);
    return {
      ...base,
      status: "warn",
      summary: "synchronous_commit = off",
      note: `replicas get a commit up to wal_writer_delay (${ms(writerDelay)}) later: more reads after a write go to the primary, never a stale one (ryw captures pg_current_wal_insert_lsn())`,
    };
  }
  if (value === "remote_apply" && standbys !== "") {
    return { ...base, status: "pass", summary: "synchronous_commit = remote_apply", note: `commits return once ${standbys} applied them: reads after a write rarely need the primary there` };
  }
  return { ...base, status: "pass", summary: `synchronous_commit = ${value}` };
}

function hotStandbyFeedback(f: PgFacts): Check {
  const value = setting(f, "hot_standby_feedback") ?? "unknown";
  const base = { id: "hot_standby_feedback", target: f.node.name, data: { hot_standby_feedback: value, max_standby_streaming_delay: setting(f, "max_standby_streaming_delay") ?? null } };
  if (value === "off") {
    const wait = Number(setting(f, "max_standby_streaming_delay") ?? 30000);
    return {
      ...base,
      status: "warn",
      summary: "hot_standby_feedback = off",
      note: `replay can stall up to max_standby_streaming_delay (${wait < 0 ? "forever" : ms(wait)}) behind a conflicting replica query, and reads after a write go to the primary meanwhile; or the query is cancelled`,
      fix: "Set hot_standby_feedback = on on the replica and reload it (it costs some bloat on the primary during long replica queries).",
    };
  }
  return { ...base, status: "pass", summary: `hot_standby_feedback = ${value}` };
}

function applyDelay(f: PgFacts): Check {
  const delay = applyDelayMs(f);
  const base = { id: "recovery_min_apply_delay", target: f.node.name, data: { recovery_min_apply_delay_ms: delay } };
  if (delay > 0) {
    return {
      ...base,
      status: "warn",
      summary: `recovery_min_apply_delay = ${ms(delay)}`,
      note: `a deliberate delay: every read right after a write goes to the primary for at least ${ms(delay)}, and reads without a recent write see data ${ms(delay)} old`,
      fix: `Set recovery_min_apply_delay = 0 on replicas that serve reads, or leave delayed replicas out of ${f.node.source}.`,
    };
  }
  return { ...base, status: "pass", summary: "recovery_min_apply_delay = 0" };
}

function setting(f: PgFacts, name: string): string | undefined {
  return f.settings.get(name)?.setting;
}
