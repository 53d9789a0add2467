import type { Lsn } from "../lsn.js";
import { parseLsn } from "../lsn.js";
import type { PgFacts } from "./inspect.js";

/** How a replica is replaying, read in one statement. Only valid on a server in recovery. */
export interface ReplayState {
  replay: Lsn | undefined;
  paused: boolean;
  /** pg_stat_wal_receiver.status; `null` when hidden from this user, `undefined` when no receiver runs. */
  receiver: string | null | undefined;
}

export async function readReplayState(facts: PgFacts): Promise<ReplayState> {
  // pg_get_wal_replay_pause_state() (14+) also reports a pause that was asked for but has not
  // taken effect yet: replay stops at the next record either way.
  const paused = facts.versionNum >= 140000 ? "pg_get_wal_replay_pause_state() <> 'not paused'" : "pg_is_wal_replay_paused()";
  const [row] = await facts.session.query(
    `select pg_last_wal_replay_lsn()::text as replay, ${paused} as paused,
       (select count(*) from pg_stat_wal_receiver)::int as receivers, (select status from pg_stat_wal_receiver limit 1) as receiver`,
  );
  return {
    replay: typeof row?.replay === "string" ? parseLsn(row.replay) : undefined,
    paused: row?.paused === true,
    receiver: row?.receivers === 0 ? undefined : typeof row?.receiver === "string" ? row.receiver : null,
  };
}

export async function readReplayLsn(facts: PgFacts): Promise<Lsn | undefined> {
  const [row] = await facts.session.query("select pg_last_wal_replay_lsn()::text as replay");
  return typeof row?.replay === "string" ? parseLsn(row.replay) : undefined;
}
