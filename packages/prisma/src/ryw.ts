import { Prisma } from "@prisma/client/extension";
import type { Ryw, ScopeInit } from "@ryw/core";
import { createRyw, isConnectionError, onPrimary, runWithScope } from "@ryw/core";
import { RoutingAdapterFactory } from "./adapter.js";
import { Batches } from "./batch.js";
import { bindClient } from "./bound.js";
import { commitHooks } from "./commit.js";
import { operationHook } from "./extension.js";
import { LazyAdapter } from "./lazy-adapter.js";
import { withRawReads } from "./raw-reads.js";
import { UniqueReads } from "./unique-reads.js";
import type { RywPrismaOptions } from "./options.js";
import { resolveNodes } from "./options.js";

/** `db.$ryw`: core's router for this client, plus `close()` for everything ryw opened. */
export interface RywHandle extends Ryw {
  /** Stops replica polling and closes the connections and the store that ryw opened. */
  close(): Promise<void>;
}

/**
 * Read-your-writes for a PrismaClient. Give its `adapter` to the client and the extension to
 * `$extends`: the adapter sees every statement and every commit, the extension knows which call
 * it belongs to.
 *
 * @example
 * const rw = ryw(); // DATABASE_URL, DATABASE_REPLICA_URLS, REDIS_URL
 * export const db = new PrismaClient({ adapter: rw.adapter }).$extends(rw);
 */
export function ryw(options: RywPrismaOptions = {}) {
  const { primary, replicas: replicaNodes, store, ownsStore } = resolveNodes(options);
  const { primary: _p, replicas: _r, store: _s, env: _e, ...routerOptions } = options;
  const own = new LazyAdapter("primary", primary);
  const replicas = replicaNodes.map((node) => new LazyAdapter(node.name, node.factory));
  const isGone = options.isConnectionError ?? isConnectionError;
  const router = createRyw({
    ...routerOptions,
    primary: own.runner(),
    replicas: replicas.map((replica) => ({ name: replica.name, query: replica.runner(), watch: (lost: () => void) => replica.watch(lost) })),
    store,
    isConnectionError: isGone,
  });
  const unique = new UniqueReads((index) => router.tracker.replicas[index]?.position);
  const adapter = new RoutingAdapterFactory(primary, replicas, commitHooks(router), unique);
  const handle: RywHandle = {
    read: (run, readOptions) => router.read(run, readOptions),
    route: (readOptions) => router.route(readOptions),
    recordWrite: (position, readOptions) => router.recordWrite(position, readOptions),
    afterWrite: (readOptions) => router.afterWrite(readOptions),
    commitToken: () => router.commitToken(),
    ready: () => router.ready(),
    stats: () => router.stats(),
    subscribe: (listener) => router.subscribe(listener),
    strategy: router.strategy,
    tracker: router.tracker,
    async close() {
      await router.close();
      await Promise.all([own.close(), ...replicas.map((r) => r.close()), ownsStore ? store.close?.() : undefined]);
    },
  };
  const hook = operationHook(router, unique, new Batches(router, unique), isGone);
  let warned = false;

  const extension = Prisma.defineExtension({
    name: "@ryw/prisma",
    client: {
      /** Every read of the returned client goes to the primary. Inside a transaction, it stays in the transaction. */
      $primary<T>(this: T): T {
        return bindClient(Prisma.getExtensionContext(this) as T & object, (fn) => onPrimary(async () => await fn()));
      },
      /** Reads of the returned client go through the router, and so do its `$queryRaw*` calls: use it only for raw queries that do not write. */
      $replica<T>(this: T): T {
        return bindClient(Prisma.getExtensionContext(this) as T & object, (fn) => withRawReads(async () => await fn()));
      },
      /** Calls of the returned client run in `scope` (a user or session id), for code outside `runWithScope`. */
      $scope<T>(this: T, scope: string | ScopeInit): T {
        return bindClient(Prisma.getExtensionContext(this) as T & object, (fn) => runWithScope(scope, async () => await fn()));
      },
      $ryw: handle,
    },
    query: {
      $allOperations(params) {
        const result = hook(params as Parameters<typeof hook>[0]);
        // Prisma connects on its first query, so the check waits for that query to finish.
        if (!warned) {
          void result.finally(() => {
            if (warned || adapter.connections > 0) return;
            warned = true;
            console.warn("[ryw] This PrismaClient does not use ryw's adapter, so every query runs on the primary: create it with `new PrismaClient({ adapter: rw.adapter })`.");
          }).catch(() => {});
        }
        return result;
      },
    },
  });
  return Object.assign(extension, { adapter, ryw: handle });
}
