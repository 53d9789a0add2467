import { getScope } from "@ryw/core";
import type { SqlDriverAdapter, SqlDriverAdapterFactory, SqlQuery } from "./driver.js";
import type { LazyAdapter } from "./lazy-adapter.js";
import type { CommitHooks } from "./transaction.js";
import { watchCommit } from "./transaction.js";
import { currentOperation } from "./operation.js";
import { mayWrite } from "./may-write.js";
import type { UniqueReads } from "./unique-reads.js";

const ROUTING = Symbol.for("@ryw/prisma.RoutingAdapterFactory");

/**
 * The driver adapter factory to give `new PrismaClient({ adapter })`. It wraps the primary's
 * adapter: statements of a read that the router sent to a replica run on that replica's adapter,
 * everything else (writes, transactions, anything outside the extension) on the primary.
 * Routing below Prisma, rather than re-issuing the call on another client, keeps every result,
 * query and model extension applying to rerouted reads, whatever order they were applied in.
 */
export class RoutingAdapterFactory implements SqlDriverAdapterFactory {
  /** Tells a ryw routing adapter apart, also one made by another copy of this package. */
  static is(value: unknown): value is RoutingAdapterFactory {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[ROUTING] === true;
  }
  readonly [ROUTING] = true;
  readonly provider: SqlDriverAdapterFactory["provider"];
  readonly adapterName: string;
  /** How many times Prisma connected through this factory; 0 means no client uses it yet. */
  connections = 0;
  readonly #primary: SqlDriverAdapterFactory;
  readonly #replicas: ReadonlyArray<LazyAdapter>;
  readonly #commit: CommitHooks;
  readonly #unique: UniqueReads;

  constructor(primary: SqlDriverAdapterFactory, replicas: ReadonlyArray<LazyAdapter>, commit: CommitHooks, unique: UniqueReads) {
    this.provider = primary.provider;
    this.adapterName = primary.adapterName;
    this.#primary = primary;
    this.#replicas = replicas;
    this.#commit = commit;
    this.#unique = unique;
  }

  async connect(): Promise<SqlDriverAdapter> {
    const adapter = await this.#primary.connect();
    this.connections++;
    return routeAdapter(adapter, this.#replicas, this.#commit, this.#unique);
  }
}

/**
 * Statements outside a transaction come here; a transaction's go to its own connection, and its
 * commit to `commit`. A statement on the primary that may have written is recorded for the scope,
 * whatever Prisma decided about transactions: by its operation when it has one (the extension
 * records after the call), or here, before its result returns, when it has none (a client
 * without the extension, or a batch Prisma started from another call's context; batch.ts).
 */
function routeAdapter(primary: SqlDriverAdapter, replicas: ReadonlyArray<LazyAdapter>, commit: CommitHooks, unique: UniqueReads): SqlDriverAdapter {
  async function run<M extends "queryRaw" | "executeRaw">(method: M, query: SqlQuery): Promise<Awaited<ReturnType<SqlDriverAdapter[M]>>> {
    const op = currentOperation();
    if (op) op.ran = true;
    const target = op?.target;
    if (op && target?.kind === "replica" && (!op.unique || unique.replicaMayAnswer(target.index))) {
      try {
        const replica = await replicas[target.index]!.get();
        return (await replica[method](query)) as Awaited<ReturnType<SqlDriverAdapter[M]>>;
      } catch (error) {
        op.replicaError = error;
        throw error;
      }
    }
    try {
      return (await primary[method](query)) as Awaited<ReturnType<SqlDriverAdapter[M]>>;
    } finally {
      // Also after an error: the statement may have committed before its answer was lost.
      if (op) {
        if (op.writes) op.unrecorded++;
      } else if (getScope() !== undefined && mayWrite(query.sql)) {
        await commit.wrote();
      }
    }
  }
  return new Proxy(primary, {
    get(target, property) {
      if (property === "queryRaw") return (query: SqlQuery) => run("queryRaw", query);
      if (property === "executeRaw") return (query: SqlQuery) => run("executeRaw", query);
      if (property === "startTransaction") {
        return async (...args: Parameters<SqlDriverAdapter["startTransaction"]>) => {
          const op = currentOperation();
          if (op) op.ran = true;
          return watchCommit(await target.startTransaction(...args), commit);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
