import { withTimeout } from "../timers.js";
import { MissingPackageError } from "./missing-package.js";

export type Row = Record<string, unknown>;

/** One connection to one server; every statement is bounded by the doctor's timeout. */
export interface PgSession {
  query(text: string, params?: unknown[]): Promise<Row[]>;
  close(): Promise<void>;
}

// The subset of postgres.js the doctor uses. postgres.js is an optional peer: apps on Prisma or
// node-postgres should not have to install it to use ryw, only to run the doctor.
interface PostgresJs {
  unsafe(text: string, params?: unknown[]): PromiseLike<Row[]>;
  end(options: { timeout: number }): Promise<void>;
}
type PostgresFactory = (url: string, options: Record<string, unknown>) => PostgresJs;

// Prisma reads these from the URL itself; postgres.js would send them to the server as settings,
// which it rejects ("unrecognized configuration parameter").
const CLIENT_ONLY_PARAMS = ["schema", "connection_limit", "pool_timeout", "pgbouncer", "socket_timeout", "statement_cache_size", "sslaccept", "sslidentity", "sslpassword", "connect_timeout"];

export async function connectPg(url: string, timeoutMs: number): Promise<PgSession> {
  const factory = await loadPostgres();
  const sql = factory(clientUrl(url), {
    max: 1,
    connect_timeout: timeoutMs / 1000,
    // One round trip per check, so that latencies are the server's, not type discovery's.
    fetch_types: false,
    prepare: false,
    onnotice: () => {},
    connection: { application_name: "ryw-doctor" },
  });
  return {
    query: (text, params) => withTimeout(Promise.resolve(sql.unsafe(text, params)), timeoutMs, "the server's answer", noAnswer),
    close: () => sql.end({ timeout: 0 }).catch(() => {}),
  };
}

// Same code as a socket timeout, so that the fix says "check the network", not "check the query".
function noAnswer(message: string): Error {
  return Object.assign(new Error(message), { code: "ETIMEDOUT" });
}

async function loadPostgres(): Promise<PostgresFactory> {
  try {
    const mod = (await import("postgres")) as unknown as { default: PostgresFactory };
    return mod.default;
  } catch (cause) {
    throw new MissingPackageError("postgres", "(postgres.js) to talk to PostgreSQL", cause);
  }
}

function clientUrl(url: string): string {
  const query = url.indexOf("?");
  if (query < 0) return url;
  const params = new URLSearchParams(url.slice(query + 1));
  for (const name of CLIENT_ONLY_PARAMS) params.delete(name);
  const rest = params.toString();
  return rest === "" ? url.slice(0, query) : `${url.slice(0, query)}?${rest}`;
}
