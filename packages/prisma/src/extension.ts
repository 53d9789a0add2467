import type { Ryw } from "@ryw/core";
import { READ_OPERATIONS, RAW_QUERY_OPERATIONS, BATCHED_OPERATIONS } from "./operations.js";
import { readOperation, runOperation, writeOperation } from "./operation.js";
import { rawReadsAllowed } from "./raw-reads.js";
import type { Batches } from "./batch.js";
import { isBatchTransaction } from "./batch.js";
import type { UniqueReads } from "./unique-reads.js";

export interface OperationParams {
  operation: string;
  args: unknown;
  query: (args: unknown) => PromiseLike<unknown>;
  __internalParams?: { transaction?: unknown };
}

/**
 * The `$allOperations` hook: decides what kind of call this is and tells the adapter, through
 * the operation's async context, where its statements go.
 * - Inside an interactive transaction: untouched. The adapter runs it on the transaction's
 *   primary connection and records the commit.
 * - An item of a batch `$transaction([...])`: on the primary, recorded once per batch (batch.ts).
 * - Reads: through the router, which picks a target; the adapter sends the statements there.
 * - Everything else, raw queries included unless `$replica()` opted in: on the primary, and the
 *   call resolves only after its position is recorded for the scope.
 */
export function operationHook(ryw: Ryw, unique: UniqueReads, batches: Batches, isReplicaGone: (error: unknown) => boolean) {
  return async function ryw$allOperations({ operation, args, query, __internalParams }: OperationParams): Promise<unknown> {
    // Prisma marks every call inside `$transaction` (batch and interactive, nested included).
    const transaction = __internalParams?.transaction;
    if (isBatchTransaction(transaction)) return batches.run(transaction, operation, () => query(args));
    if (transaction) return query(args);
    if (READ_OPERATIONS.has(operation) || (RAW_QUERY_OPERATIONS.has(operation) && rawReadsAllowed())) {
      const batched = BATCHED_OPERATIONS.has(operation);
      return ryw.read(async (target) => {
        const op = readOperation(target, batched);
        try {
          const run = () => runOperation(op, () => query(args));
          return await (batched ? unique.track(target, run) : run());
        } catch (error) {
          // Hand core the driver's error so that it can tell "replica gone" (retry on the
          // primary) from "bad query" (rethrow); Prisma's wrapped error loses the difference.
          throw op.replicaError !== undefined && isReplicaGone(op.replicaError) ? op.replicaError : error;
        }
      });
    }
    // The store's part of recording starts with the call and overlaps its statements (core's
    // beginWrite; a no-op without a scope).
    const op = writeOperation(ryw.beginWrite());
    try {
      return await runOperation(op, () => query(args));
    } finally {
      // Statements that ran outside a transaction and that no recorded commit covers: the intent
      // covers them, or, once a commit took it, a record of its own.
      const write = op.write;
      op.write = undefined;
      if (op.unrecorded > 0) await (write ? write.done() : ryw.afterWrite());
      else write?.abandon();
    }
  };
}
