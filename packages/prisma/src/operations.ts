/** Prisma operations that only read: they go through the router. */
export const READ_OPERATIONS: ReadonlySet<string> = new Set([
  "findUnique", "findUniqueOrThrow", "findFirst", "findFirstOrThrow", "findMany", "count", "aggregate", "groupBy",
]);

/** Raw queries: they may write, so they are writes unless the caller opts in with `$replica()`. */
export const RAW_QUERY_OPERATIONS: ReadonlySet<string> = new Set(["$queryRaw", "$queryRawUnsafe", "$queryRawTyped"]);

/** The operations Prisma batches when several are called in the same tick (see unique-reads.ts). */
export const BATCHED_OPERATIONS: ReadonlySet<string> = new Set(["findUnique", "findUniqueOrThrow"]);
