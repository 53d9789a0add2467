import { createHash } from "node:crypto";
import type { Lsn } from "../lsn.js";
import { invalidOption, RywError } from "../errors.js";
import type { PositionStore } from "./types.js";
import { validateScope } from "./types.js";

/** The part of an ioredis client (or Cluster) that the store uses. */
export interface RedisLike {
  get(key: string): Promise<string | null>;
  evalsha(sha: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  on(event: "ready" | "close", listener: () => void): unknown;
  off(event: "ready" | "close", listener: () => void): unknown;
  quit(): Promise<unknown>;
}

export interface RedisStoreOptions {
  /** Your ioredis client or Cluster. The store never closes a client it did not create. */
  client?: RedisLike;
  /** A Redis URL; the store creates (and later closes) its own ioredis client. Needs the `ioredis` package. */
  url?: string;
  /**
   * Prefix of every key, so several apps can share one Redis.
   * @default "ryw:"
   */
  prefix?: string;
}

// Positions are stored as 16 hex digits and compared as two 32-bit halves: Lua numbers are
// doubles, which would silently round positions above 2^53. The TTL is refreshed even when the
// stored value wins, because a write just happened in this scope. One key per call keeps
// Redis Cluster happy.
const ADVANCE = `
local cur = redis.call('GET', KEYS[1])
local new = ARGV[1]
if cur and string.len(cur) == 16 then
  local ch, nh = tonumber(string.sub(cur, 1, 8), 16), tonumber(string.sub(new, 1, 8), 16)
  if ch > nh or (ch == nh and tonumber(string.sub(cur, 9, 16), 16) >= tonumber(string.sub(new, 9, 16), 16)) then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 0
  end
end
redis.call('SET', KEYS[1], new, 'PX', ARGV[2])
return 1`;
const ADVANCE_SHA = createHash("sha1").update(ADVANCE).digest("hex");

// Scopes that are already safe key material stay readable in redis-cli; anything else (spaces,
// newlines, glob characters, hash-tag braces, unicode, very long ids) is hashed. The "#" that
// starts a hashed key is outside the safe set, so the two forms never collide.
const SAFE_SCOPE = /^[A-Za-z0-9_.:@-]{1,200}$/;

export function redisKey(prefix: string, scope: string): string {
  validateScope(scope);
  if (SAFE_SCOPE.test(scope)) return prefix + scope;
  return `${prefix}#${createHash("sha256").update(scope, "utf8").digest("base64url")}`;
}

/** Positions in Redis, shared by every process and app server. Raise-only, with a TTL per scope. */
export class RedisStore implements PositionStore {
  readonly #prefix: string;
  readonly #ownsClient: boolean;
  readonly #client: RedisLike | Promise<RedisLike>;
  readonly #resetListeners = new Set<() => void>();
  #sawClose = false;
  #unhook: (() => void) | undefined;

  constructor(options: RedisStoreOptions) {
    if (typeof options !== "object" || options === null) throw invalidOption("RedisStore options", "an object with `client` or `url`", options);
    const { client, url, prefix = "ryw:" } = options;
    if (typeof prefix !== "string" || prefix.length === 0) throw invalidOption("prefix", "a non-empty string", prefix);
    if (client !== undefined && url !== undefined) throw invalidOption("client", "given alone, not together with `url`", "both");
    if (client === undefined && (typeof url !== "string" || !/^rediss?:\/\//.test(url))) {
      throw invalidOption("url", 'a redis:// or rediss:// URL (or pass `client`)', url);
    }
    this.#prefix = prefix;
    this.#ownsClient = client === undefined;
    this.#client = client ? this.#hook(client) : connect(url!).then((c) => this.#hook(c));
    // A failed import or bad URL surfaces on the first call; do not crash the process meanwhile.
    if (this.#client instanceof Promise) this.#client.catch(() => {});
  }

  async get(scope: string): Promise<Lsn | undefined> {
    const client = await this.#client;
    const text = await client.get(redisKey(this.#prefix, scope));
    if (text === null) return undefined;
    if (!/^[0-9a-f]{16}$/.test(text)) throw new RywError("STORE_UNAVAILABLE", `Redis key for scope holds an unexpected value ${JSON.stringify(text.slice(0, 20))}.`);
    return BigInt(`0x${text}`);
  }

  async advance(scope: string, value: Lsn, ttlMs: number): Promise<void> {
    const client = await this.#client;
    const args = [redisKey(this.#prefix, scope), value.toString(16).padStart(16, "0"), Math.max(1, Math.ceil(ttlMs))] as const;
    try {
      await client.evalsha(ADVANCE_SHA, 1, ...args);
    } catch (error) {
      if (!String((error as Error)?.message).includes("NOSCRIPT")) throw error;
      await client.eval(ADVANCE, 1, ...args);
    }
  }

  onReset(listener: () => void): () => void {
    this.#resetListeners.add(listener);
    return () => this.#resetListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#unhook?.();
    if (this.#ownsClient) await (await this.#client).quit().catch(() => {});
  }

  // A reconnect may mean Redis restarted without persistence and lost every position, so each
  // ready-after-close is reported as a reset. A mere network blip costs a short primary period.
  #hook(client: RedisLike): RedisLike {
    const onClose = () => {
      this.#sawClose = true;
    };
    const onReady = () => {
      if (!this.#sawClose) return;
      this.#sawClose = false;
      for (const listener of this.#resetListeners) listener();
    };
    client.on("close", onClose);
    client.on("ready", onReady);
    this.#unhook = () => {
      client.off("close", onClose);
      client.off("ready", onReady);
    };
    return client;
  }
}

async function connect(url: string): Promise<RedisLike> {
  const mod = await import("ioredis").catch((cause: unknown) => {
    throw new RywError("STORE_UNAVAILABLE", "RedisStore with `url` needs the `ioredis` package: npm install ioredis (or pass your own `client`).", { cause });
  });
  // Fail fast while disconnected: the router treats a store error as "go to the primary", which
  // beats queueing reads behind a reconnect.
  const client = new mod.Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: true, connectTimeout: 2000 });
  // Connection errors reach the router through failed calls; without a listener ioredis would
  // also print each reconnect attempt as an unhandled error event.
  client.on("error", () => {});
  return client as unknown as RedisLike;
}
