import postgres from "postgres";
import type { Options, PostgresType, Sql } from "postgres";
import type { Ryw, RywStats } from "@ryw/core";
import { createRyw, invalidOption, postgresJsRunner, postgresJsWatch } from "@ryw/core";
import type { Connection, ReplicaInit, RywSessionOptions } from "./options.js";
import { Classifier } from "./classifier.js";
import { StatementRouter } from "./route.js";
import { RoutedQuery } from "./routed-query.js";
import { runTransaction } from "./transaction.js";
import { fanOutOptions } from "./type-fanout.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Client = Sql<any>;

// postgres.js's end() without a timeout can wait forever on a client whose server died (a
// replica killed under it); after this many seconds, connections are closed regardless.
const END_TIMEOUT_S = 5;

/** What a {@link rywSession} adds to the postgres.js client shape that drizzle sees. */
export interface RywSessionApi {
  /** The core router: `route()`, `recordWrite()`, `commitToken()`, `subscribe()`, `tracker`... */
  readonly ryw: Ryw;
  /** Reads by reason and target, fallbacks, recorded writes, replica lag. */
  stats(): RywStats;
  /** Resolves once every replica has been sampled, so that reads can start going to replicas. */
  ready(): Promise<void>;
  /**
   * The replica clients, in the order of `replicas` (drizzle's `db.$replicas`, as postgres.js
   * clients: a session does not know the drizzle config, so wrap one yourself with
   * `drizzle(db.$client.$replicas[0], { schema })`). Statements sent through them skip routing and
   * read-your-writes: for work that must run on one given replica, such as checks or warming.
   */
  readonly $replicas: ReadonlyArray<Client>;
  /** The primary client; statements sent through it skip position capture. */
  readonly $primary: Client;
  /**
   * Stops ryw's background polling and ends the clients it created from connection strings
   * (waiting up to 5 s for running queries). Clients you passed stay open.
   */
  close(): Promise<void>;
}

/**
 * A postgres.js client as far as drizzle is concerned. `unsafe` and `begin` route; `end(options)`
 * closes ryw and ends every underlying client, passed or created (`timeout` defaults to 5 s
 * rather than "wait forever", which a client of a dead server can do). Any other postgres.js member (tagged templates, `reserve`,
 * `listen`, `notify`...) acts on the primary, outside routing and without position capture.
 */
export type RywSession = Client & RywSessionApi;

/**
 * Wraps a primary and its read replicas into one client for `drizzle()` from
 * `drizzle-orm/postgres-js`. Reads go to a replica that has replayed the scope's last write;
 * writes, transactions and anything unsure go to the primary, and the primary's position is
 * remembered after each commit.
 * @example
 * const db = drizzle(rywSession({ primary: process.env.DATABASE_URL!, replicas: [process.env.REPLICA_URL!], store: new RedisStore({ url }) }), { schema });
 * app.use((req, _res, next) => runWithScope(req.user?.id, next));
 */
export function rywSession(options: RywSessionOptions): RywSession {
  if (typeof options !== "object" || options === null) throw invalidOption("options", "an object", options);
  const { primary: primaryOption, replicas: replicaOptions, connectionOptions, readFunctions, classifierCacheSize, ...core } = options;
  if (!Array.isArray(replicaOptions)) throw invalidOption("replicas", "an array of postgres.js clients or connection strings (it may be empty)", replicaOptions);
  if (readFunctions !== undefined && (!Array.isArray(readFunctions) || readFunctions.some((f) => typeof f !== "string" || f === ""))) {
    throw invalidOption("readFunctions", "an array of function names", readFunctions);
  }
  if (classifierCacheSize !== undefined && (!Number.isInteger(classifierCacheSize) || classifierCacheSize < 1)) {
    throw invalidOption("classifierCacheSize", "a positive integer", classifierCacheSize);
  }
  const initOf = (r: Connection | ReplicaInit): ReplicaInit | undefined => (typeof r === "object" && r !== null && "connection" in r ? r : undefined);
  const connections = [primaryOption, ...replicaOptions.map((r) => { const init = initOf(r); return init ? init.connection : (r as Connection); })];
  const probeOptions = replicaOptions.map((r) => initOf(r)?.probe);
  // Every connection is checked before any client is created, so a bad option leaks nothing.
  const check = (c: unknown, option: string) => {
    if (!(typeof c === "string" && c !== "") && !isPostgresJs(c)) throw invalidOption(option, "a postgres.js client or a connection string", c);
  };
  connections.forEach((c, i) => check(c, i === 0 ? "primary" : `replicas[${i - 1}]`));
  probeOptions.forEach((c, i) => c !== undefined && check(c, `replicas[${i}].probe`));
  const created: Client[] = [];
  const open = (c: Connection, options: Options<Record<string, PostgresType>>): Client => {
    if (typeof c !== "string") return c;
    const client = postgres(c, options);
    created.push(client);
    return client;
  };
  const [primary, ...replicas] = connections.map((c) => open(c, connectionOptions ?? {})) as [Client, ...Client[]];
  // One connection each is enough: a replica has at most one probe in flight.
  const probes = probeOptions.map((c, i) => (c === undefined ? replicas[i]! : open(c, { ...connectionOptions, max: 1 })));

  let ryw: Ryw;
  try {
    ryw = createRyw({
      ...core,
      primary: postgresJsRunner(primary),
      replicas: probes.map((client, i) => {
        const name = initOf(replicaOptions[i]!)?.name;
        // Closed connections tell the tracker at once that a replica may have restarted.
        const replica = { query: postgresJsRunner(client), watch: postgresJsWatch(client) };
        return name === undefined ? replica : { name, ...replica };
      }),
    });
  } catch (error) {
    void Promise.all(created.map((c) => c.end({ timeout: 0 })));
    throw error;
  }
  const classifier = new Classifier(readFunctions, classifierCacheSize);
  const router = new StatementRouter(ryw, primary, replicas, classifier);
  const clients = [primary, ...replicas];

  const own: Record<string | symbol, unknown> = {
    options: fanOutOptions(clients),
    ryw,
    $replicas: Object.freeze([...replicas]),
    $primary: primary,
    unsafe: (text: string, params?: unknown[], queryOptions?: unknown) => new RoutedQuery((mode) => router.run(text, params as never, queryOptions as never, mode)),
    begin: (...args: unknown[]) => runTransaction(primary, classifier, args, () => ryw.beginWrite()),
    stats: () => ryw.stats(),
    ready: () => ryw.ready(),
    close: async () => {
      await ryw.close();
      await Promise.all(created.map((c) => c.end({ timeout: END_TIMEOUT_S })));
    },
    end: async (endOptions?: { timeout?: number }) => {
      await ryw.close();
      await Promise.all([...new Set([...clients, ...probes])].map((c) => c.end({ timeout: END_TIMEOUT_S, ...endOptions })));
    },
  };
  // A function target, so that the session is callable like a postgres.js client (and drizzle
  // never mistakes it for a config object).
  const target = function rywSession() {} as unknown as Client;
  return new Proxy(target, {
    apply: (_target, _self, args) => (primary as unknown as (...a: unknown[]) => unknown)(...args),
    get: (_target, property) => (Object.hasOwn(own, property) ? own[property] : Reflect.get(primary, property, primary)),
    has: (_target, property) => Object.hasOwn(own, property) || property in primary,
  }) as RywSession;
}

function isPostgresJs(value: unknown): value is Client {
  if (typeof value !== "function") return false;
  const v = value as unknown as { unsafe?: unknown; begin?: unknown; options?: { parsers?: unknown } };
  return typeof v.unsafe === "function" && typeof v.begin === "function" && typeof v.options?.parsers === "object";
}
