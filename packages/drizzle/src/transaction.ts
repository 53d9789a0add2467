import type { Sql, TransactionSql } from "postgres";
import type { Classifier } from "./classifier.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Tx = TransactionSql<any>;
interface TxState {
  wrote: boolean;
}

// drizzle's `transaction(fn, { isolationLevel })` sends this first; it changes nothing durable.
const SET_TRANSACTION = /^\s*set\s+transaction\b/i;

/**
 * Runs a whole transaction, nested savepoints included, on the primary, and tells whether it may
 * have written. `onCommit` runs once, after the outermost COMMIT returned, and only then: not
 * after a rollback (the promise rejects) and not after a transaction that only read.
 */
export async function runTransaction(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  primary: Sql<any>,
  classifier: Classifier,
  args: unknown[],
  onCommit: () => Promise<void>,
): Promise<unknown> {
  const fn = args[args.length - 1] as (tx: Tx) => unknown;
  const state: TxState = { wrote: false };
  const body = (tx: Tx) => fn(trackWrites(tx, state, classifier));
  const result = args.length > 1 ? await primary.begin(args[0] as string, body) : await primary.begin(body);
  if (state.wrote) await onCommit();
  return result;
}

function trackWrites(tx: Tx, state: TxState, classifier: Classifier): Tx {
  return new Proxy(tx, {
    // A tagged-template call: its text is not at hand, so count it as a write.
    apply(target, self, args) {
      state.wrote = true;
      return Reflect.apply(target, self, args);
    },
    get(target, property) {
      if (property === "unsafe") {
        return (text: string, params?: unknown[], options?: unknown) => {
          if (classifier.classify(text).kind !== "read" && !SET_TRANSACTION.test(text)) state.wrote = true;
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
