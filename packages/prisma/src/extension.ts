import type { Ryw } from "@ryw/core";
import { READ_OPERATIONS, RAW_QUERY_OPERATIONS, BATCHED_OPERATIONS } from "./operations.js";
import { readOperation, runOperation, writeOperation } from "./operation.js";
import { rawReadsAllowed } from "./raw-reads.js";
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
 * - Inside a transaction: untouched. The adapter runs it on the transaction's primary connection.
 * - Reads: through the router, which picks a target; the adapter sends the statements there.
 * - Everything else, raw queries included unless `$replica()` opted in: on the primary, and the
 *   call resolves only after its position is recorded for the scope.
 */
export function operationHook(ryw: Ryw, unique: UniqueReads, isReplicaGone: (error: unknown) => boolean) {
  return async function ryw$allOperations({ operation, args, query, __internalParams }: OperationParams): Promise<unknown> {
    // Prisma marks every call inside `$transaction` (batch and interactive, nested included).
    if (__internalParams?.transaction) return query(args);
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
    const op = writeOperation();
    try {
      return await runOperation(op, () => query(args));
    } finally {
      // `dirty` means a statement ran outside a transaction whose commit was already recorded.
      // Core skips the capture when there is no scope to record it for.
      if (op.dirty) await ryw.afterWrite();
    }
  };
}
