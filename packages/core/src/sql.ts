/**
 * How core talks to a database: run one statement, get rows. Every ORM and driver can provide it
 * in a line, e.g. postgres.js `(text) => sql.unsafe(text)`, node-postgres
 * `async (text) => (await pool.query(text)).rows`, Prisma `(text) => prisma.$queryRawUnsafe(text)`.
 */
export type SqlRunner = (text: string) => Promise<ReadonlyArray<Record<string, unknown>>>;

/** The part of a postgres.js client that core uses. */
export interface PostgresJsLike {
  unsafe(text: string): PromiseLike<ReadonlyArray<Record<string, unknown>>>;
}

/** A {@link SqlRunner} over a postgres.js client. */
export function postgresJsRunner(sql: PostgresJsLike): SqlRunner {
  return async (text) => await sql.unsafe(text);
}
