import type { SqlRunner } from "@ryw/core";
import type { SqlDriverAdapter, SqlDriverAdapterFactory } from "./driver.js";
import { rowsOf, statement } from "./driver.js";

/**
 * A driver adapter that ryw owns: connected on first use (node-postgres opens no connection
 * before the first query either) and disposed by `close()`. Replica reads and replica probes share
 * one (unless the replica's `probe` option gives the probes their own); the primary gets one for
 * position captures and lag figures, apart from Prisma's own.
 */
export class LazyAdapter {
  readonly name: string;
  /** A function when the factory is known later (the one-liner's primary is the client's own). */
  readonly #factory: SqlDriverAdapterFactory | (() => SqlDriverAdapterFactory);
  readonly #lost = new Set<() => void>();
  #adapter: Promise<SqlDriverAdapter> | undefined;

  constructor(name: string, factory: SqlDriverAdapterFactory | (() => SqlDriverAdapterFactory)) {
    this.name = name;
    this.#factory = factory;
  }

  get(): Promise<SqlDriverAdapter> {
    const factory = this.#factory;
    return (this.#adapter ??= Promise.resolve().then(() => (typeof factory === "function" ? factory() : factory).connect()).then(
      (adapter) => this.#watchPool(adapter),
      (error: unknown) => {
        this.#adapter = undefined;
        throw error;
      },
    ));
  }

  /**
   * Core's `ReplicaConfig.watch`: `lost` runs whenever the server closes an idle connection of this
   * node's pool, as it does to every connection when it goes down. A replica that crash-restarts
   * can come back behind its last sample; this drops the sample before the next poll.
   */
  watch(lost: () => void): () => void {
    this.#lost.add(lost);
    return () => void this.#lost.delete(lost);
  }

  #watchPool(adapter: SqlDriverAdapter): SqlDriverAdapter {
    // @prisma/adapter-pg exposes its pg.Pool, whose "error" event reports exactly that (busy
    // connections fail their query instead, which the router already handles). Other adapters
    // lack it: their replicas are then re-checked at the next poll only.
    const pool = (adapter as { underlyingDriver?: () => unknown }).underlyingDriver?.() as { on?: (event: "error", listener: () => void) => unknown } | undefined;
    if (typeof pool?.on === "function") {
      pool.on("error", () => {
        for (const lost of this.#lost) lost();
      });
    }
    return adapter;
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
