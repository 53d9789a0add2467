import type { Lsn } from "./lsn.js";
import { parseLsn } from "./lsn.js";
import { RywError } from "./errors.js";
import type { SqlRunner } from "./sql.js";

/**
 * The primary's position to remember after a write. Of insert/write/flush, only the insert
 * position is always at or past the commit record, also with `synchronous_commit = off`.
 * Run it only after the commit has returned: inside the transaction the commit record does not
 * exist yet, and the position would be too low.
 */
export const CURRENT_POSITION_SQL = "select pg_current_wal_insert_lsn()::text as lsn";

/**
 * The timeline of a primary's current position: the first 8 hex digits of its WAL file name.
 * `timeline_id` of `pg_control_checkpoint()` would lag: after a promotion it changes only with
 * the first checkpoint on the new timeline, which PostgreSQL requests but does not wait for.
 */
const TIMELINE_SQL = "('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::int";

/** The tracker's primary poll: {@link CURRENT_POSITION_SQL} and the timeline it is on. */
export const PRIMARY_POLL_SQL = `select pg_current_wal_insert_lsn()::text as lsn, ${TIMELINE_SQL} as timeline`;

/** Extracts the `timeline` column of a {@link PRIMARY_POLL_SQL} row; `undefined` if absent. */
export function timelineFromRow(row: Record<string, unknown> | undefined): number | undefined {
  return timelineOf(row?.timeline);
}

/** A timeline id as a driver returns an `int` column: a number, or a string of digits. */
export function timelineOf(value: unknown): number | undefined {
  const t = typeof value === "string" && /^\d{1,10}$/.test(value) ? Number(value) : value;
  return typeof t === "number" && Number.isInteger(t) && t > 0 ? t : undefined;
}

/** Reads the primary's current WAL position. Call it after a commit returns. */
export async function capturePosition(primary: SqlRunner): Promise<Lsn> {
  const rows = await primary(CURRENT_POSITION_SQL);
  return lsnFromRow(rows[0]);
}

/** Extracts the `lsn` column of a {@link CURRENT_POSITION_SQL} row. */
export function lsnFromRow(row: Record<string, unknown> | undefined): Lsn {
  const text = row?.lsn;
  if (typeof text !== "string") throw new RywError("INVALID_LSN", "The primary returned no WAL position: is this a PostgreSQL primary (not a replica)?");
  return parseLsn(text);
}
