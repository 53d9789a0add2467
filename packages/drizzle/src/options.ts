import type { Options, PostgresType, Sql } from "postgres";
import type { RywOptions } from "@ryw/core";

/** A postgres.js client (`postgres(url)`) or a connection string. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Connection = Sql<any> | string;

export interface ReplicaInit {
  connection: Connection;
  /** Shown in stats and events. @default "replica-<index>" */
  name?: string;
  /**
   * Where ryw's own probes of this replica go, when `connection` reaches it through a pooler in
   * transaction mode (PgBouncer): a direct connection to the replica. A pooler keeps its clients'
   * connections open when the server behind it dies, so only a direct one tells ryw at once that
   * the replica may be restarting (and may come back behind its last sample). Created from a
   * string with `connectionOptions` and `max: 1`.
   * @default connection
   */
  probe?: Connection;
}

export interface RywSessionOptions extends Omit<RywOptions, "primary" | "replicas"> {
  /** The primary: a postgres.js client or a connection string. Writes, transactions and unsure statements run here. */
  primary: Connection;
  /**
   * The read replicas: postgres.js clients, connection strings, or `{ connection, name }`.
   * An empty list sends everything to the primary.
   */
  replicas: ReadonlyArray<Connection | ReplicaInit>;
  /** postgres.js options for the clients created from connection strings. @default {} */
  connectionOptions?: Options<Record<string, PostgresType>>;
  /**
   * Names of your own functions that never write, so that SELECTs calling them may still go to a
   * replica. Every other function call keeps a statement on the primary.
   * @default []
   */
  readFunctions?: ReadonlyArray<string>;
  /** How many distinct SQL texts keep their classification cached. @default 2000 */
  classifierCacheSize?: number;
}
