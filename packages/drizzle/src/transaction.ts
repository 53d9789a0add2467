import type { Sql, TransactionSql } from "postgres";
import type { PendingWrite } from "@ryw/core";
import type { Classifier } from "./classifier.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Tx = TransactionSql<any>;
interface TxState {
  /** Begun at the first statement that may write; settled after the outermost COMMIT or rollback. */
  write: PendingWrite | undefined;
  begin: () => PendingWrite;
}

// drizzle's `transaction(fn, { isolationLevel })` sends this first; it changes nothing durable.
const SET_TRANSACTION = /^\s*set\s+transaction\b/i;

/**
 * Runs a whole transaction, nested savepoints included, on the primary. Its write is begun
 * (`beginWrite`, so the store's part overlaps the transaction) at the first statement that may
 * write, and settled once: done after the outermost COMMIT returned, abandoned after a rollback
 * (the promise rejects). A transaction that only read records nothing.
 */
export async function runTransaction(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  primary: Sql<any>,
  classifier: Classifier,
  args: unknown[],
  beginWrite: () => PendingWrite,
): Promise<unknown> {
  const fn = args[args.length - 1] as (tx: Tx) => unknown;
  const state: TxState = { write: undefined, begin: beginWrite };
  const body = (tx: Tx) => fn(trackWrites(tx, state, classifier));
  let result: unknown;
  try {
    result = args.length > 1 ? await primary.begin(args[0] as string, body) : await primary.begin(body);
  } catch (error) {
    state.write?.abandon();
    throw error;
  }
  await state.write?.done();
  return result;
}

function wrote(state: TxState): void {
  state.write ??= state.begin();
}

function trackWrites(tx: Tx, state: TxState, classifier: Classifier): Tx {
  return new Proxy(tx, {
    // A tagged-template call: its text is not at hand, so count it as a write.
    apply(target, self, args) {
      wrote(state);
      return Reflect.apply(target, self, args);
    },
    get(target, property) {
      if (property === "unsafe") {
        return (text: string, params?: unknown[], options?: unknown) => {
          if (classifier.classify(text).kind !== "read" && !SET_TRANSACTION.test(text)) wrote(state);
          return target.unsafe(text, params as never, options as never);
        };
      }
      if (property === "savepoint") {
        return (...args: unknown[]) => {
          const fn = args[args.length - 1] as (tx: Tx) => unknown;
          const body = (inner: Tx) => fn(trackWrites(inner, state, classifier));
          return args.length > 1 ? target.savepoint(args[0] as string, body) : target.savepoint(body);
        };
      }
      return Reflect.get(target, property, target);
    },
  });
}
