import { Prisma } from "@prisma/client/extension";
import type { Ryw, ScopeInit } from "@ryw/core";
import { createRyw, isConnectionError, onPrimary, runWithScope, RywError } from "@ryw/core";
import { RoutingAdapterFactory } from "./adapter.js";
import { Batches } from "./batch.js";
import { bindClient } from "./bound.js";
import { commitHooks } from "./commit.js";
import { operationHook } from "./extension.js";
import { LazyAdapter } from "./lazy-adapter.js";
import { withRawReads } from "./raw-reads.js";
import { UniqueReads } from "./unique-reads.js";
import type { RywPrismaOptions } from "./options.js";
import { missingPrimary, resolveNodes } from "./options.js";
import type { SqlDriverAdapterFactory } from "./driver.js";
import { clientAdapter, clientEngine } from "./engine-swap.js";

/** `db.$ryw`: core's router for this client, plus `close()` for everything ryw opened. */
export interface RywHandle extends Ryw {
  /** Stops replica polling and closes the connections and the store that ryw opened. */
  close(): Promise<void>;
}

/**
 * Read-your-writes for a PrismaClient: apply it to the client you already have. Reads go to the
 * replicas, writes and commits are recorded, and every other extension keeps applying.
 *
 * @example
 * const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL }) });
 * export const db = prisma.$extends(ryw()); // DATABASE_REPLICA_URLS, REDIS_URL
 *
 * The one-liner puts ryw's routing adapter, built around the client's own adapter, under the
 * client (engine-swap.ts, which relies on Prisma internals). The two-place form needs none:
 * @example
 * const rw = ryw(); // DATABASE_URL, DATABASE_REPLICA_URLS, REDIS_URL
 * export const db = new PrismaClient({ adapter: rw.adapter }).$extends(rw);
 */
export function ryw(options: RywPrismaOptions = {}) {
  const { primary: configured, replicas: replicaNodes, store, ownsStore } = resolveNodes(options);
  const { primary: _p, replicas: _r, store: _s, env: _e, ...routerOptions } = options;
  // The one-liner's primary is the client's own adapter, known once ryw is applied.
  let bound: SqlDriverAdapterFactory | undefined;
  const own = new LazyAdapter("primary", () => {
    const factory = bound ?? configured;
    if (factory === undefined) throw missingPrimary();
    return factory;
  });
  const replicas = replicaNodes.map((node) => new LazyAdapter(node.name, node.factory));
  // Probes use the replica's own adapter unless `probe` gives them a direct one.
  const probes = replicaNodes.map((node, i) => (node.probe ? new LazyAdapter(node.name, node.probe) : replicas[i]!));
  const isGone = options.isConnectionError ?? isConnectionError;
  const router = createRyw({
    ...routerOptions,
    primary: own.runner(),
    replicas: probes.map((probe) => ({ name: probe.name, query: probe.runner(), watch: (lost: () => void) => probe.watch(lost) })),
    store,
    isConnectionError: isGone,
  });
  const unique = new UniqueReads((index) => router.tracker.replicas[index]?.position);
  const commit = commitHooks(router);
  const routing = (factory: SqlDriverAdapterFactory) => new RoutingAdapterFactory(factory, replicas, commit, unique);
  /** `rw.adapter`, made on first access: the two-place form. */
  let twoPlace: RoutingAdapterFactory | undefined;
  /** The adapter the one-liner put under the client. */
  let oneLiner: RoutingAdapterFactory | undefined;

  function adapter(): RoutingAdapterFactory {
    if (oneLiner) throw new RywError("INVALID_OPTION", "This ryw() is already applied with `prisma.$extends(ryw())` to a client with its own adapter, so `rw.adapter` cannot serve another client: call ryw() once per client.");
    if (configured === undefined) throw missingPrimary();
    return (twoPlace ??= routing(configured));
  }

  /** Decides the form when ryw is applied to `client`, and for the one-liner puts the routing adapter under it. */
  function attach(client: object): void {
    if ((client as { $ryw?: unknown }).$ryw !== undefined) {
      throw new RywError("INVALID_OPTION", "ryw is already applied to this client (it has `$ryw`): apply it once, and use that client.");
    }
    const current = clientAdapter(client);
    // The two-place form, or the same ryw applied again to another extension chain of its client.
    if (current !== undefined && (current === twoPlace || current === oneLiner)) return;
    // The two-place form on a runtime whose internals cannot be read: it needs none of them.
    if (current === undefined && twoPlace !== undefined) return;
    if (RoutingAdapterFactory.is(current)) {
      throw new RywError("INVALID_OPTION", "This PrismaClient already routes through another ryw() instance (its adapter is another ryw's `rw.adapter`, or another ryw() was applied to it): apply one ryw() per client.");
    }
    if (twoPlace !== undefined || oneLiner !== undefined) {
      throw new RywError("INVALID_OPTION", "This ryw() instance already routes another PrismaClient: call ryw() once per client.");
    }
    if (options.primary !== undefined) {
      throw new RywError("INVALID_OPTION", "Option `primary` cannot be used with `prisma.$extends(ryw())`: the primary is the adapter the PrismaClient was created with. Remove `primary`, or create the client with ryw's adapter (`new PrismaClient({ adapter: rw.adapter }).$extends(rw)`).");
    }
    const engine = clientEngine(client);
    const swapped = routing(engine.adapter);
    engine.replace(swapped);
    oneLiner = swapped;
    bound = engine.adapter;
    // Position captures and lag figures then use the client's database, not DATABASE_URL.
    void own.close();
  }

  const handle: RywHandle = {
    read: (run, readOptions) => router.read(run, readOptions),
    route: (readOptions) => router.route(readOptions),
    recordWrite: (position, readOptions) => router.recordWrite(position, readOptions),
    afterWrite: (readOptions) => router.afterWrite(readOptions),
    beginWrite: (readOptions) => router.beginWrite(readOptions),
    commitToken: () => router.commitToken(),
    ready: () => router.ready(),
    stats: () => router.stats(),
    subscribe: (listener) => router.subscribe(listener),
    strategy: router.strategy,
    tracker: router.tracker,
    async close() {
      await router.close();
      await Promise.all([own.close(), ...[...new Set([...replicas, ...probes])].map((r) => r.close()), ownsStore ? store.close?.() : undefined]);
    },
  };
  const hook = operationHook(router, unique, new Batches(router, unique), isGone);

  const extension = Prisma.defineExtension((client) => {
    attach(client);
    return client.$extends({
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
          return hook(params as Parameters<typeof hook>[0]);
        },
      },
    });
  });
  Object.defineProperty(extension, "adapter", { get: adapter, enumerable: true });
  return Object.assign(extension, { ryw: handle }) as typeof extension & {
    /** The two-place form's adapter: `new PrismaClient({ adapter: rw.adapter }).$extends(rw)`. Needs `primary` or DATABASE_URL. */
    readonly adapter: RoutingAdapterFactory;
    ryw: RywHandle;
  };
}
