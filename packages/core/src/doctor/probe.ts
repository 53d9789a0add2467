import type { Lsn } from "../lsn.js";
import { capturePosition } from "../position.js";
import type { PgFacts } from "./inspect.js";
import type { ReplayState } from "./replay.js";
import { readReplayLsn } from "./replay.js";

/** What the probe saw on one replica. Times are in ms. */
export interface ReplicaMeasure {
  facts: PgFacts;
  state: ReplayState;
  /** The primary's position when the probe started, minus this replica's replayed position. */
  behindBytes: bigint;
  /** How long until it replayed the primary's position at the start: the current lag as time. */
  lagMs: number | undefined;
  /** How long until it replayed the probe's commit: what a read right after a write waits for. */
  probeMs: number | undefined;
  replay: Lsn | undefined;
  error: unknown;
}

export interface ProbeResult {
  /** The primary's insert position right after the probe's commit. */
  target: Lsn;
  /** How the WAL was written: `pg_logical_emit_message` or `txid_current` (without its privilege). */
  method: string;
  replicas: ReplicaMeasure[];
}

/**
 * Writes a commit on the primary without touching any table, then follows every replica until it
 * has replayed it, for at most `timeoutMs`.
 */
export async function probe(primary: PgFacts, replicas: Array<{ facts: PgFacts; state: ReplayState }>, timeoutMs: number): Promise<ProbeResult> {
  const run = (text: string) => primary.session.query(text);
  const start = await capturePosition(run);
  const startedAt = performance.now();
  const method = await writeProbe(primary);
  const target = await capturePosition(run);
  const wroteAt = performance.now();
  const deadline = wroteAt + timeoutMs;
  const measures = await Promise.all(replicas.map(async ({ facts, state }): Promise<ReplicaMeasure> => {
    const replayed = state.replay ?? 0n;
    const m: ReplicaMeasure = { facts, state, behindBytes: start > replayed ? start - replayed : 0n, lagMs: replayed >= start ? 0 : undefined, probeMs: undefined, replay: state.replay, error: undefined };
    try {
      for (;;) {
        m.replay = await readReplayLsn(facts);
        const now = performance.now();
        if (m.lagMs === undefined && m.replay !== undefined && m.replay >= start) m.lagMs = now - startedAt;
        if (m.replay !== undefined && m.replay >= target) {
          m.probeMs = now - wroteAt;
          return m;
        }
        if (now >= deadline) return m;
        await pause(2);
      }
    } catch (error) {
      m.error = error;
      return m;
    }
  }));
  return { target, method, replicas: measures };
}

// The probe must end in a commit record: recovery_min_apply_delay holds back commits only, so a
// non-transactional message would reach a delayed replica long before users' writes do.
async function writeProbe(primary: PgFacts): Promise<string> {
  try {
    await primary.session.query("select pg_logical_emit_message(true, 'ryw-doctor', 'probe')");
    return "pg_logical_emit_message";
  } catch (error) {
    if ((error as { code?: unknown })?.code !== "42501") throw error;
    // Without that privilege: a transaction that takes an xid writes a commit record too.
    await primary.session.query("select txid_current()");
    return "txid_current";
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
