import { AsyncLocalStorage } from "node:async_hooks";
import type { Target } from "@ryw/core";

/**
 * What one Prisma operation tells the driver adapter, and what the adapter reports back. Prisma
 * runs the adapter inside the operation's async context, so this is how the extension (which
 * knows the operation) and the adapter (which sees the SQL and the commits) talk.
 */
export interface Operation {
  readonly kind: "read" | "write";
  /** A findUnique: Prisma may run its statement for other findUnique calls too (see unique-reads.ts). */
  readonly unique: boolean;
  /** Where a read's statements outside a transaction go. Writes always use the primary. */
  readonly target: Target | undefined;
  /** Set by the adapter: a write ran a statement on the primary outside a transaction since the last recorded commit. */
  dirty: boolean;
  /** Set by the adapter: the error the chosen replica raised, before Prisma wrapped it. */
  replicaError: unknown;
}

const storage = new AsyncLocalStorage<Operation>();

export function readOperation(target: Target, unique: boolean): Operation {
  return { kind: "read", unique, target, dirty: false, replicaError: undefined };
}

export function writeOperation(): Operation {
  return { kind: "write", unique: false, target: undefined, dirty: false, replicaError: undefined };
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
