import { AsyncLocalStorage } from "node:async_hooks";
import type { PendingWrite, Target } from "@ryw/core";

/**
 * What one Prisma operation tells the driver adapter, and what the adapter reports back. Prisma
 * runs the adapter inside the operation's async context, so this is how the extension (which
 * knows the operation) and the adapter (which sees the SQL and the commits) talk.
 */
export interface Operation {
  /** `batch`: the items of one batch `$transaction([...])`, which share one operation (see batch.ts). */
  readonly kind: "read" | "write" | "batch";
  /** A findUnique: Prisma may run its statement for other findUnique calls too (see unique-reads.ts). */
  readonly unique: boolean;
  /** Where a read's statements outside a transaction go. Writes and batches always use the primary. */
  readonly target: Target | undefined;
  /** Its statements may write: false for reads, and for a batch of reads only. */
  writes: boolean;
  /**
   * Set by the adapter: statements of this operation that may have written ran on the primary
   * outside a transaction, and no recorded position covers them yet. A count, so that a commit
   * recorded meanwhile clears only the statements that had finished before its capture.
   */
  unrecorded: number;
  /** Set by the adapter: a statement or a transaction ran in this operation's async context. */
  ran: boolean;
  /** Set by the adapter: the error the chosen replica raised, before Prisma wrapped it. */
  replicaError: unknown;
  /**
   * A write operation's intent (core's `beginWrite`), begun before its first statement: settled
   * by the first commit recorded for it, or by the extension after the call.
   */
  write?: PendingWrite | undefined;
}

const storage = new AsyncLocalStorage<Operation>();

export function readOperation(target: Target, unique: boolean): Operation {
  return { kind: "read", unique, target, writes: false, unrecorded: 0, ran: false, replicaError: undefined };
}

export function writeOperation(write?: PendingWrite): Operation {
  return { kind: "write", unique: false, target: undefined, writes: true, unrecorded: 0, ran: false, replicaError: undefined, write };
}

/** `writes` turns true as soon as an item that may write joins the batch. */
export function batchOperation(): Operation {
  return { kind: "batch", unique: false, target: undefined, writes: false, unrecorded: 0, ran: false, replicaError: undefined };
}

export function currentOperation(): Operation | undefined {
  return storage.getStore();
}

/**
 * Runs a Prisma `query(args)` inside `op`. The PrismaPromise is lazy: it must be awaited inside
 * the context, or the adapter would run in the caller's context instead.
 */
export function runOperation<T>(op: Operation, query: () => PromiseLike<T>): Promise<T> {
  return storage.run(op, async () => await query());
}
