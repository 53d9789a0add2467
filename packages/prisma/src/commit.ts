import type { Ryw } from "@ryw/core";
import { CURRENT_POSITION_SQL, getScope } from "@ryw/core";
import { rowsOf, statement } from "./driver.js";
import { currentOperation } from "./operation.js";
import type { CommitHooks } from "./transaction.js";

const POSITION = statement(CURRENT_POSITION_SQL);

/**
 * Records each committed transaction once, after its outermost commit: interactive and batch
 * `$transaction`s, and the implicit transactions Prisma opens for nested writes. A failed capture
 * never fails the committed transaction: core then captures on its own connection, and if that
 * fails too, keeps the scope on the primary.
 */
export function commitHooks(ryw: Ryw): CommitHooks {
  return {
    async capture(query) {
      // Like core's afterWrite: without a scope nobody reads this position back.
      if (getScope() === undefined) return undefined;
      try {
        const lsn = rowsOf(await query(POSITION))[0]?.lsn;
        return typeof lsn === "string" ? lsn : undefined;
      } catch {
        return undefined;
      }
    },
    async committed(position) {
      if (position === undefined) await ryw.afterWrite();
      else await ryw.recordWrite(position);
      const op = currentOperation();
      if (op) op.dirty = false;
    },
  };
}
