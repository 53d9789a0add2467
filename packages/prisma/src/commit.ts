import type { Ryw } from "@ryw/core";
import { getScope, PRIMARY_POLL_SQL, timelineFromRow } from "@ryw/core";
import { rowsOf, statement } from "./driver.js";
import { currentOperation } from "./operation.js";
import type { CommitHooks } from "./transaction.js";

// With its timeline, so that other app servers learn of a failover from the store (core's Rule 3).
const POSITION = statement(PRIMARY_POLL_SQL);

/**
 * Records each committed transaction once, after its outermost commit: interactive and batch
 * `$transaction`s, and the implicit transactions Prisma opens for nested writes. A failed capture
 * never fails the committed transaction: core then captures on its own connection, and if that
 * fails too, keeps the scope on the primary. Also records single statements that ran outside
 * any ryw operation (see adapter.ts).
 */
export function commitHooks(ryw: Ryw): CommitHooks {
  return {
    prepare() {
      // Like core's afterWrite: without a scope nobody reads this position back.
      if (getScope() === undefined) return undefined;
      // A read, or a batch of reads: nothing in it wrote. (A transaction of another call that
      // Prisma started from this read's context is recorded by that call itself, see batch.ts.)
      const op = currentOperation();
      if (op && !op.writes) return undefined;
      // The position read after this commit covers what the operation ran before it, not after.
      const covered = op?.unrecorded ?? 0;
      // The operation's intent, begun before its first statement, settles with this commit.
      const write = op?.write;
      if (op) op.write = undefined;
      return async (position) => {
        if (write) await write.done(position?.lsn, position?.timeline);
        else if (position === undefined) await ryw.afterWrite();
        else await ryw.recordWrite(position.lsn, { timeline: position.timeline });
        if (op) op.unrecorded -= covered;
      };
    },
    async capture(query) {
      try {
        const row = rowsOf(await query(POSITION))[0];
        return typeof row?.lsn === "string" ? { lsn: row.lsn, timeline: timelineFromRow(row) } : undefined;
      } catch {
        return undefined;
      }
    },
    wrote: () => ryw.afterWrite(),
  };
}
