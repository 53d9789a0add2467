import type { SqlRunner } from "@ryw/core";
import type { SqlDriverAdapter, SqlDriverAdapterFactory } from "./driver.js";
import { rowsOf, statement } from "./driver.js";

/**
 * A driver adapter that ryw owns: connected on first use (node-postgres opens no connection
 * before the first query either) and disposed by `close()`. Replica reads and replica probes share
 * one; the primary gets one for position captures and lag figures, apart from Prisma's own.
 */
export class LazyAdapter {
  readonly name: string;
  readonly #factory: SqlDriverAdapterFactory;
  #adapter: Promise<SqlDriverAdapter> | undefined;

  constructor(name: string, factory: SqlDriverAdapterFactory) {
    this.name = name;
    this.#factory = factory;
  }

  get(): Promise<SqlDriverAdapter> {
    return (this.#adapter ??= this.#factory.connect().catch((error: unknown) => {
      this.#adapter = undefined;
      throw error;
    }));
  }

  /** Core's view of this node: run one statement, get rows. */
  runner(): SqlRunner {
    return async (text) => rowsOf(await (await this.get()).queryRaw(statement(text)));
  }

  async close(): Promise<void> {
    const adapter = this.#adapter;
    this.#adapter = undefined;
    await (await adapter?.catch(() => undefined))?.dispose();
  }
}
