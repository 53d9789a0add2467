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
