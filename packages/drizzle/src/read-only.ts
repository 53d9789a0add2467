import type { SQL, SQLWrapper } from "drizzle-orm";
import { sql } from "drizzle-orm";

/** Leads the text of a statement marked with {@link readOnly}. */
export const READ_ONLY_MARK = "/* ryw:read-only */ ";

/**
 * Marks a `db.execute()` statement as read-only, so that it may go to a replica. Without it,
 * `db.execute()` runs on the primary: raw SQL can reach functions and views whose effects no
 * classifier can see. The mark also vouches for functions the statement calls; statements that
 * visibly write (INSERT, FOR UPDATE, nextval()...) still go to the primary.
 * @example await db.execute(readOnly(sql`select * from monthly_report(${year})`))
 */
export function readOnly(query: SQLWrapper | string): SQL {
  return sql`${sql.raw(READ_ONLY_MARK)}${typeof query === "string" ? sql.raw(query) : query}`;
}

export function isMarkedReadOnly(text: string): boolean {
  return text.startsWith(READ_ONLY_MARK);
}
