import type { Sql } from "postgres";
import type { Ryw, Target } from "@ryw/core";
import type { Classifier } from "./classifier.js";
import type { ResultMode } from "./routed-query.js";
import { isMarkedReadOnly } from "./read-only.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Client = Sql<any>;
type Params = Parameters<Client["unsafe"]>[1];
type QueryOptions = Parameters<Client["unsafe"]>[2];

// The exact text drizzle's `$count` sends (it awaits rows as objects, like `db.execute`).
const DRIZZLE_COUNT = /^select count\(\*\) as count from [\s\S]*;$/;

/** Where one autocommit statement runs, and what happens after it. */
export class StatementRouter {
  readonly #ryw: Ryw;
  readonly #primary: Client;
  readonly #replicas: ReadonlyArray<Client>;
  readonly #classifier: Classifier;

  constructor(ryw: Ryw, primary: Client, replicas: ReadonlyArray<Client>, classifier: Classifier) {
    this.#ryw = ryw;
    this.#primary = primary;
    this.#replicas = replicas;
    this.#classifier = classifier;
  }

  async run(text: string, params: Params, options: QueryOptions, mode: ResultMode): Promise<unknown> {
    const { kind } = this.#classifier.classify(text);
    const marked = isMarkedReadOnly(text);
    if (kind === "read" || (kind === "unknown" && marked)) {
      // Builders (select, relational queries) ask for arrays; `db.execute` and `$count` ask for
      // objects. Of those, only `$count` and marked statements are trusted on a replica.
      if (mode === "values" || marked || DRIZZLE_COUNT.test(text)) {
        return this.#ryw.read((target) => execute(this.#client(target), text, params, options, mode));
      }
      return execute(this.#primary, text, params, options, mode);
    }
    // The store's part overlaps the statement (core's beginWrite); without a scope it is free.
    const write = this.#ryw.beginWrite();
    let result: unknown;
    try {
      result = await execute(this.#primary, text, params, options, mode);
    } catch (error) {
      write.abandon();
      throw error;
    }
    // The statement returned, so it committed (autocommit): a position read now covers it.
    await write.done();
    return result;
  }

  #client(target: Target): Client {
    return target.kind === "replica" ? this.#replicas[target.index]! : this.#primary;
  }
}

async function execute(client: Client, text: string, params: Params, options: QueryOptions, mode: ResultMode): Promise<unknown> {
  const query = client.unsafe(text, params, options);
  return mode === "values" ? await query.values() : await query;
}
