import { withTimeout } from "../timers.js";
import { MissingPackageError } from "./missing-package.js";

/** One connection to Redis, failing fast instead of reconnecting: the doctor reports, it does not wait. */
export interface RedisSession {
  /** Time to open the connection, without loading the client library. */
  connectMs: number;
  ping(): Promise<string>;
  /** The `field:value` lines of `INFO <section>`. */
  info(section: string): Promise<Record<string, string>>;
  close(): void;
}

// The subset of ioredis the doctor uses (ioredis is an optional peer of core).
interface IoRedis {
  connect(): Promise<void>;
  ping(): Promise<string>;
  info(section: string): Promise<string>;
  on(event: "error", listener: (error: unknown) => void): unknown;
  disconnect(): void;
}
type IoRedisClass = new (url: string, options: Record<string, unknown>) => IoRedis;

export async function connectRedis(url: string, timeoutMs: number): Promise<RedisSession> {
  const Redis = await loadIoRedis();
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    // The ready check runs INFO, which ACLs may forbid; the doctor reports that itself.
    enableReadyCheck: false,
  });
  // Failures reach the caller through connect() and commands; without a listener ioredis would
  // also print them as unhandled error events.
  // They also carry the cause ("connect ECONNREFUSED ...") that connect() only reports as
  // "Connection is closed".
  let cause: unknown;
  client.on("error", (error) => {
    cause ??= error;
  });
  const started = performance.now();
  try {
    await withTimeout(client.connect(), timeoutMs + 500, "connect");
  } catch (error) {
    client.disconnect();
    throw cause ?? error;
  }
  return {
    connectMs: performance.now() - started,
    ping: () => client.ping(),
    info: async (section) => parseInfo(await client.info(section)),
    close: () => client.disconnect(),
  };
}

async function loadIoRedis(): Promise<IoRedisClass> {
  try {
    const mod = (await import("ioredis")) as unknown as { Redis: IoRedisClass };
    return mod.Redis;
  } catch (cause) {
    throw new MissingPackageError("ioredis", "to talk to Redis", cause);
  }
}

function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return fields;
}
