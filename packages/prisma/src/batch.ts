import type { Ryw } from "@ryw/core";
import type { Operation } from "./operation.js";
import { batchOperation, runOperation } from "./operation.js";
import { BATCHED_OPERATIONS as UNIQUE, READ_OPERATIONS } from "./operations.js";
import type { UniqueReads } from "./unique-reads.js";

/** What Prisma passes as `__internalParams.transaction` to each item of a batch `$transaction([...])`. */
export interface BatchTransaction {
  kind: "batch";
  /** Shared by the items of one batch: Prisma starts none of them before every item has arrived here. */
  lock?: unknown;
}

interface Batch {
  readonly op: Operation;
  items: number;
  /** Only findUnique items: Prisma may merge them into one statement, run without a transaction. */
  onlyUnique: boolean;
  /** Ends the batch's hold on findUnique statements (see UniqueReads.holdPrimary). */
  readonly release: () => void;
  recorded: Promise<void> | undefined;
}

export function isBatchTransaction(transaction: unknown): transaction is BatchTransaction {
  return typeof transaction === "object" && transaction !== null && (transaction as { kind?: unknown }).kind === "batch";
}

/**
 * The items of batch `$transaction([...])`s. Two things about how Prisma runs them decide this:
 * - A batch of one item runs without BEGIN/COMMIT, so no commit hook sees its write.
 * - Every batch is started from a `process.nextTick` callback of Prisma's dataloader, in the
 *   async context of whichever call reached the dataloader first in that tick: the batch's own
 *   first item, or another request's findUnique or batch.
 * So the items of a batch share one operation, and the batch is recorded for the scope its
 * `$transaction` was called in once its items settle: when a statement that may write ran outside
 * a transaction in the batch's context, or when nothing of the batch ran in its context at all
 * (it ran in another call's, and what that one recorded is for another scope) and it may write.
 * A batch of reads records nothing. While a batch may run without a transaction (one item, or
 * findUnique items only, which Prisma may merge into one statement), findUnique statements stay
 * on the primary: a batch started from a findUnique's context would otherwise follow that read to
 * its replica.
 */
export class Batches {
  readonly #ryw: Ryw;
  readonly #unique: UniqueReads;
  readonly #byLock = new WeakMap<object, Batch>();

  constructor(ryw: Ryw, unique: UniqueReads) {
    this.#ryw = ryw;
    this.#unique = unique;
  }

  async run(transaction: BatchTransaction, operation: string, query: () => PromiseLike<unknown>): Promise<unknown> {
    const batch = this.#join(transaction, operation);
    try {
      return await runOperation(batch.op, query);
    } finally {
      batch.release();
      // The items settle together, after the batch's commit if it had one.
      await (batch.recorded ??= this.#record(batch.op));
    }
  }

  #join(transaction: BatchTransaction, operation: string): Batch {
    const key = typeof transaction.lock === "object" && transaction.lock !== null ? transaction.lock : undefined;
    let batch = key && this.#byLock.get(key);
    if (!batch) {
      batch = { op: batchOperation(), items: 0, onlyUnique: true, release: this.#unique.holdPrimary(), recorded: undefined };
      if (key) this.#byLock.set(key, batch);
    }
    // Every item joins before any statement runs (Prisma's lock), so these are final by then.
    batch.items++;
    if (!UNIQUE.has(operation)) batch.onlyUnique = false;
    if (batch.items > 1 && !batch.onlyUnique) batch.release();
    if (!READ_OPERATIONS.has(operation)) batch.op.writes = true;
    return batch;
  }

  async #record(op: Operation): Promise<void> {
    if (op.unrecorded > 0 || (op.writes && !op.ran)) await this.#ryw.afterWrite();
  }
}
