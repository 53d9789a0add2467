import { formatLsn } from "../lsn.js";
import type { Check } from "./types.js";
import type { ReplicaMeasure } from "./probe.js";
import { applyDelayMs } from "./settings.js";
import { bytes, errorText, ms } from "./format-values.js";
import { round } from "./connect.js";

/** Past this, reads right after a write spend a noticeable time on the primary. */
const SLOW_MS = 1000;

/** Current lag of one replica, in bytes behind the primary and in time to catch up with it. */
export function lagCheck(m: ReplicaMeasure, timeoutMs: number): Check {
  const name = m.facts.node.name;
  const data = { behindBytes: Number(m.behindBytes), lagMs: m.lagMs === undefined ? null : round(m.lagMs), paused: m.state.paused };
  const parts: string[] = [];
  if (m.state.paused) parts.push("replay paused");
  let status: Check["status"] = m.state.paused ? "warn" : "pass";
  if (m.behindBytes === 0n) parts.push("caught up (0 bytes behind)");
  else if (m.lagMs !== undefined) {
    parts.push(`${bytes(m.behindBytes)} behind · caught up in ${ms(m.lagMs)}`);
    if (m.lagMs >= SLOW_MS) status = "warn";
  } else {
    parts.push(`${bytes(m.behindBytes)} behind · still behind after ${ms(timeoutMs)}`);
    status = "warn";
  }
  const note = status === "warn" ? "until it catches up, reads right after a write go to the primary, and other reads see older data" : undefined;
  return { id: "lag", target: name, status, summary: parts.join(" · "), ...(note ? { note } : {}), data };
}

/** The live read-your-writes probe: how long until a fresh commit is visible on this replica. */
export function probeCheck(m: ReplicaMeasure, target: bigint, timeoutMs: number): Check {
  const name = m.facts.node.name;
  const base = { id: "probe", target: name };
  if (m.error !== undefined) {
    return { ...base, status: "fail", summary: `lost the replica during the probe: ${errorText(m.error)}`, fix: `Check that ${name} is up and reachable.`, data: { visibleMs: null, error: errorText(m.error) } };
  }
  const data = { visibleMs: m.probeMs === undefined ? null : round(m.probeMs), target: formatLsn(target), replayed: m.replay === undefined ? null : formatLsn(m.replay) };
  if (m.probeMs !== undefined) {
    if (m.probeMs >= SLOW_MS) {
      return { ...base, status: "warn", summary: `a new commit was visible after ${ms(m.probeMs)}`, note: "reads right after a write go to the primary (or wait) for about that long", data };
    }
    return { ...base, status: "pass", summary: `a new commit was visible after ${ms(m.probeMs)}`, data };
  }
  const behind = m.replay === undefined ? "" : ` (${bytes(target > m.replay ? target - m.replay : 0n)} behind)`;
  return { ...base, status: "fail", summary: `a new commit was not visible within ${ms(timeoutMs)}${behind}`, fix: probeFix(m, timeoutMs), data };
}

function probeFix(m: ReplicaMeasure, timeoutMs: number): string {
  const name = m.facts.node.name;
  const delay = applyDelayMs(m.facts);
  if (m.state.paused) return `Replay is paused on ${name}: run select pg_wal_replay_resume() there.`;
  if (delay >= timeoutMs) return `recovery_min_apply_delay on ${name} (${ms(delay)}) is longer than --timeout: lower it, or raise --timeout above it to measure.`;
  if (m.state.receiver !== "streaming" && m.state.receiver !== null) return `${name} is not receiving WAL: check its primary_conninfo, the network, and its log.`;
  return `${name} replays slower than ${ms(timeoutMs)}: check its load (long queries, I/O, CPU), or raise --timeout.`;
}
