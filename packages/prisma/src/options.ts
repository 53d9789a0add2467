import { PrismaPg } from "@prisma/adapter-pg";
import type { PositionStore, RywOptions } from "@ryw/core";
import { invalidOption, MemoryStore, RedisStore } from "@ryw/core";
import type { SqlDriverAdapterFactory } from "./driver.js";

/** A node given as a connection string or as a driver adapter factory such as `new PrismaPg(...)`. */
export type NodeInput = string | SqlDriverAdapterFactory;

export interface ReplicaInput {
  /** Shown in stats and events. @default "replica-<index>" */
  name?: string;
  adapter: NodeInput;
  /**
   * Where ryw's own probes of this replica go, when `adapter` reaches it through a pooler in
   * transaction mode (PgBouncer): a direct connection to the replica. A pooler keeps its clients'
   * connections open when the server behind it dies, so only a direct one tells ryw at once that
   * the replica may be restarting (and may come back behind its last sample).
   * @default adapter
   */
  probe?: NodeInput;
}

export interface RywPrismaOptions extends Omit<RywOptions, "primary" | "replicas" | "store"> {
  /**
   * The primary, for the two-place form (`new PrismaClient({ adapter: rw.adapter })`). Use the
   * same database the PrismaClient would use without ryw. Not allowed with
   * `prisma.$extends(ryw())`: there the primary is the client's own adapter.
   * @default process.env.DATABASE_URL (two-place form only)
   */
  primary?: NodeInput;
  /**
   * The read replicas: connection strings, driver adapter factories, or `{ name, adapter }`.
   * An empty list sends every read to the primary.
   * @default process.env.DATABASE_REPLICA_URLS, split on commas
   */
  replicas?: ReadonlyArray<NodeInput | ReplicaInput>;
  /**
   * Where scope positions live. Use a `RedisStore` to follow users across app servers.
   * @default new RedisStore({ url: process.env.REDIS_URL }) when REDIS_URL is set, else new MemoryStore() (with a warning)
   */
  store?: PositionStore;
  /** Where the defaults come from. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface ResolvedNodes {
  /** Undefined when neither `primary` nor DATABASE_URL is set: only the one-liner can work then. */
  primary: SqlDriverAdapterFactory | undefined;
  replicas: Array<{ name: string; factory: SqlDriverAdapterFactory; probe?: SqlDriverAdapterFactory }>;
  store: PositionStore;
  /** Set when ryw created the store, so that `close()` closes it. */
  ownsStore: boolean;
}

export function resolveNodes(options: RywPrismaOptions): ResolvedNodes {
  if (typeof options !== "object" || options === null) throw invalidOption("options", "an object", options);
  const env = options.env ?? process.env;
  const primaryInput = options.primary ?? env.DATABASE_URL;
  const primary = primaryInput === undefined || (primaryInput === "" && options.primary === undefined) ? undefined : toFactory("primary", primaryInput);

  const replicaInputs = options.replicas ?? splitUrls(env.DATABASE_REPLICA_URLS);
  if (!Array.isArray(replicaInputs)) throw invalidOption("replicas", "an array of connection strings or driver adapters", replicaInputs);
  const replicas = replicaInputs.map((input: NodeInput | ReplicaInput, index) => {
    const option = `replicas[${index}]`;
    if (isReplicaInput(input)) {
      if (input.name !== undefined && (typeof input.name !== "string" || input.name === "")) throw invalidOption(`${option}.name`, "a non-empty string", input.name);
      const node = { name: input.name ?? `replica-${index}`, factory: toFactory(`${option}.adapter`, input.adapter) };
      return input.probe === undefined ? node : { ...node, probe: toFactory(`${option}.probe`, input.probe) };
    }
    return { name: `replica-${index}`, factory: toFactory(option, input) };
  });

  if (options.store !== undefined) return { primary, replicas, store: options.store, ownsStore: false };
  const redisUrl = env.REDIS_URL;
  if (redisUrl) return { primary, replicas, store: new RedisStore({ url: redisUrl }), ownsStore: true };
  console.warn("[ryw] REDIS_URL is not set: positions are kept in this process's memory, so a user's writes made through another app server are not guaranteed to be visible here. Set REDIS_URL or pass `store`.");
  return { primary, replicas, store: new MemoryStore(), ownsStore: true };
}

/** The error for the two-place form without a primary. */
export function missingPrimary(): Error {
  return invalidOption("primary", "a connection string or a driver adapter (or set DATABASE_URL) to use `rw.adapter`; or apply ryw to a client that has its own adapter: `prisma.$extends(ryw())`", undefined);
}

function splitUrls(value: string | undefined): string[] {
  return (value ?? "").split(",").map((url) => url.trim()).filter((url) => url !== "");
}

function isReplicaInput(input: unknown): input is ReplicaInput {
  return typeof input === "object" && input !== null && "adapter" in input && !("connect" in input);
}

function toFactory(option: string, input: unknown): SqlDriverAdapterFactory {
  if (typeof input === "string") {
    if (!/^postgres(ql)?:\/\//.test(input)) throw invalidOption(option, "a postgres:// or postgresql:// connection string", input);
    return new PrismaPg({ connectionString: input });
  }
  if (typeof input === "object" && input !== null && typeof (input as { $connect?: unknown }).$connect === "function") {
    // Re-running a read on another client would skip the extensions applied to this one.
    throw invalidOption(option, "a connection string or a driver adapter, not a PrismaClient (pass the adapter you would give that client, e.g. new PrismaPg(...))", input);
  }
  if (typeof input !== "object" || input === null || typeof (input as { connect?: unknown }).connect !== "function") {
    throw invalidOption(option, "a connection string or a driver adapter factory such as new PrismaPg(...)", input);
  }
  const factory = input as SqlDriverAdapterFactory;
  if (factory.provider !== "postgres") throw invalidOption(option, "a PostgreSQL driver adapter", factory.provider);
  return factory;
}
