import type { SqlDriverAdapterFactory } from "@prisma/client/runtime/client";

// Prisma exports only the factory type from its client runtime; the rest follow from it, so the
// package needs no direct dependency on @prisma/driver-adapter-utils.
export type { SqlDriverAdapterFactory };
export type SqlDriverAdapter = Awaited<ReturnType<SqlDriverAdapterFactory["connect"]>>;
export type Transaction = Awaited<ReturnType<SqlDriverAdapter["startTransaction"]>>;
export type SqlQuery = Parameters<SqlDriverAdapter["queryRaw"]>[0];
export type SqlResultSet = Awaited<ReturnType<SqlDriverAdapter["queryRaw"]>>;

/** A statement without parameters, in the shape driver adapters take. */
export function statement(sql: string): SqlQuery {
  return { sql, args: [], argTypes: [] };
}

/** Result rows as objects keyed by column name, the shape core's `SqlRunner` returns. */
export function rowsOf(result: SqlResultSet): Array<Record<string, unknown>> {
  return result.rows.map((row) => Object.fromEntries(result.columnNames.map((name, i) => [name, row[i]])));
}
