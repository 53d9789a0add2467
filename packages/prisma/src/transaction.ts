import type { SqlQuery, SqlResultSet, Transaction } from "./driver.js";

export interface CommitHooks {
  /**
   * Called once the outermost commit is about to finish: returns what records it, or `undefined`
   * when it needs no record (no scope, or only reads ran in it).
   */
  prepare(): ((position: Captured | undefined) => Promise<void>) | undefined;
  /**
   * Reads the position right after `COMMIT`, on the transaction's own connection. Returns
   * `undefined` when it could not; never throws.
   */
  capture(query: (query: SqlQuery) => Promise<SqlResultSet>): Promise<Captured | undefined>;
  /**
   * A statement that may have written ran on the primary outside a transaction and outside any
   * ryw operation: records the position after it for the current scope. Never throws.
   */
  wrote(): Promise<void>;
}

/** A position read after a commit, with the timeline the primary reported in the same statement. */
export interface Captured {
  lsn: string;
  timeline: number | undefined;
}

const COMMIT = /^\s*commit\b/i;

/**
 * Watches a transaction for its commit. Prisma sends `COMMIT` as a statement and then calls
 * `commit()`, which for node-postgres only releases the connection: in between, the connection
 * is still ours, so the position is read on it without a second pool checkout, and the store is
 * updated after the release. An adapter that commits inside `commit()` instead gets its position
 * read after the release. Savepoints (nested transactions) pass through untouched: only the
 * outermost commit ends the transaction. A rollback records nothing.
 */
export function watchCommit(tx: Transaction, hooks: CommitHooks): Transaction {
  let committed = false;
  return new Proxy(tx, {
    get(target, property) {
      if (property === "executeRaw") {
        return async (query: SqlQuery) => {
          const count = await target.executeRaw(query);
          if (COMMIT.test(query.sql)) committed = true;
          return count;
        };
      }
      if (property === "commit") {
        return async () => {
          const record = hooks.prepare();
          const position = record && committed ? await hooks.capture((query) => target.queryRaw(query)) : undefined;
          await target.commit();
          await record?.(position);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
