import { createHash } from "node:crypto";
import type { Lsn } from "../lsn.js";
import { invalidOption, RywError } from "../errors.js";
import { Lineages, replicationId } from "./lineage.js";
import { clusterNodes, connect, connectCluster } from "./redis-connect.js";
import type { PositionStore, ScopeState } from "./types.js";
import { validateScope } from "./types.js";

/** The part of an ioredis client (or Cluster) that the store uses. */
export interface RedisLike {
  evalsha(sha: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  on(event: "ready" | "close", listener: () => void): unknown;
  off(event: "ready" | "close", listener: () => void): unknown;
  quit(): Promise<unknown>;
  /**
   * An ioredis Cluster's nodes. With it, the store asks each node for its replication ID when it
   * starts (see lineage.ts), and its first answers wait for that.
   */
  nodes?(role?: "all" | "master" | "slave"): Array<{ info(section: string): Promise<string> }>;
  /** An ioredis Cluster's status: the store waits for "ready" before it asks the nodes. */
  status?: string;
}

/** A node of a Redis Cluster, as `{ host, port }` or a `redis://` / `rediss://` URL. */
export type RedisNodeAddress = { host: string; port: number } | string;

export interface RedisStoreOptions {
  /**
   * Your ioredis client, Cluster (`new Cluster(nodes)`) or Sentinel-managed client
   * (`new Redis({ sentinels, name })`). The store never closes a client it did not create.
   */
  client?: RedisLike;
  /** A Redis URL; the store creates (and later closes) its own ioredis client. Needs the `ioredis` package. */
  url?: string;
  /**
   * Some nodes of a Redis Cluster (any of them; the client discovers the rest): the store creates
   * (and later closes) its own ioredis Cluster. URLs may carry a password (the same for every
   * node) and `rediss://` for TLS; for anything else, pass your own Cluster as `client`.
   * Not together with `url` or `client`.
   * @example nodes: [{ host: "10.0.0.1", port: 6379 }, "redis://10.0.0.2:6379"]
   */
  nodes?: RedisNodeAddress[];
  /**
   * Prefix of every key, so several apps can share one Redis.
   * @default "ryw:"
   */
  prefix?: string;
}

// One hash per scope: field `p` holds the position as 16 hex digits, and each unresolved write
// intent is a field `i:<id>` holding its expiry in ms by Redis's own clock (TIME), so app servers'
// clocks never decide whether an intent still counts. Positions are compared as two 32-bit halves:
// Lua numbers are doubles, which would silently round positions above 2^53. Every call touches one
// key, which keeps Redis Cluster happy. A key of the earlier string form (just the position) is
// read as such, and turned into a hash by the first call that writes. Every reply ends with the
// replication ID of the server that ran the script (lineage.ts: how a lost position is noticed),
// or "" where INFO is refused. Field `t` holds the newest PostgreSQL timeline recorded (types.ts).
const LINEAGE = `
local function lineage()
  local info = redis.pcall('INFO', 'replication')
  if type(info) ~= 'string' then return '' end
  return string.match(info, 'master_replid:(%x+)') or ''
end
`;
const LIB = `${LINEAGE}
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function as_hash(k)
  if redis.call('TYPE', k).ok == 'string' then
    local v, ttl = redis.call('GET', k), redis.call('PTTL', k)
    redis.call('DEL', k)
    redis.call('HSET', k, 'p', v)
    if ttl > 0 then redis.call('PEXPIRE', k, ttl) end
  end
end
local function keep_for(k, ms)
  if redis.call('PTTL', k) < ms then redis.call('PEXPIRE', k, ms) end
end
`;
const LOOKUP = `${LIB}
local k = KEYS[1]
local kind = redis.call('TYPE', k).ok
if kind == 'none' then return {false, 0, 0, 0, lineage()} end
if kind == 'string' then return {redis.call('GET', k), 0, 0, 0, lineage()} end
local now, p, pending, expired, tli = now_ms(), false, 0, 0, 0
local all = redis.call('HGETALL', k)
for i = 1, #all, 2 do
  local f = all[i]
  if f == 'p' then p = all[i + 1]
  elseif f == 't' then tli = tonumber(all[i + 1])
  elseif f == 'x' then expired = 1
  elseif tonumber(all[i + 1]) > now then pending = 1
  else expired = 1 end
end
return {p, pending, expired, tli, lineage()}`;
// The TTL is refreshed even when the stored value wins, because a write just happened in this scope.
const ADVANCE = `${LIB}
local k, new = KEYS[1], ARGV[1]
as_hash(k)
local cur = redis.call('HGET', k, 'p')
local raise = true
if cur and string.len(cur) == 16 then
  local ch, nh = tonumber(string.sub(cur, 1, 8), 16), tonumber(string.sub(new, 1, 8), 16)
  raise = not (ch > nh or (ch == nh and tonumber(string.sub(cur, 9, 16), 16) >= tonumber(string.sub(new, 9, 16), 16)))
end
if raise then redis.call('HSET', k, 'p', new) end
if ARGV[3] ~= '' then redis.call('HDEL', k, 'i:' .. ARGV[3]) end
if ARGV[4] ~= '' and tonumber(ARGV[4]) > tonumber(redis.call('HGET', k, 't') or '0') then redis.call('HSET', k, 't', ARGV[4]) end
keep_for(k, tonumber(ARGV[2]))
return {raise and 1 or 0, lineage()}`;
// Expired intents are folded into the field `x` here ("an intent expired unresolved", kept as
// long as the key), so a scope's hash stays as small as its writes in flight.
const INTEND = `${LIB}
local k, ttl = KEYS[1], tonumber(ARGV[2])
as_hash(k)
local now = now_ms()
local all = redis.call('HGETALL', k)
for i = 1, #all, 2 do
  local f = all[i]
  if f ~= 'p' and f ~= 'x' and f ~= 't' and tonumber(all[i + 1]) <= now then
    redis.call('HDEL', k, f)
    redis.call('HSET', k, 'x', '1')
  end
end
redis.call('HSET', k, 'i:' .. ARGV[1], now + ttl)
keep_for(k, ttl)
return {1, lineage()}`;
const WITHDRAW = `${LINEAGE}
if redis.call('TYPE', KEYS[1]).ok == 'hash' then redis.call('HDEL', KEYS[1], 'i:' .. ARGV[1]) end
return {1, lineage()}`;
const sha = (script: string) => ({ script, sha: createHash("sha1").update(script).digest("hex") });
const SCRIPTS = { lookup: sha(LOOKUP), advance: sha(ADVANCE), intend: sha(INTEND), withdraw: sha(WITHDRAW) };
const HEX16 = /^[0-9a-f]{16}$/;

// Scopes that are already safe key material stay readable in redis-cli; anything else (spaces,
// newlines, glob characters, hash-tag braces, unicode, very long ids) is hashed. The "#" that
// starts a hashed key is outside the safe set, so the two forms never collide.
const SAFE_SCOPE = /^[A-Za-z0-9_.:@-]{1,200}$/;

export function redisKey(prefix: string, scope: string): string {
  validateScope(scope);
  if (SAFE_SCOPE.test(scope)) return prefix + scope;
  return `${prefix}#${createHash("sha256").update(scope, "utf8").digest("base64url")}`;
}

/**
 * Positions in Redis, shared by every process and app server. Raise-only, with a TTL per scope.
 * Works on one Redis, a Sentinel-managed one and a Redis Cluster: every call is one script on one
 * key. A possible loss of positions (restart, reconnect, failover) is reported through `onReset`.
 */
export class RedisStore implements PositionStore {
  readonly #prefix: string;
  readonly #ownsClient: boolean;
  readonly #client: RedisLike | Promise<RedisLike>;
  /** `#client` once it exists. */
  #ready: RedisLike | undefined;
  readonly #resetListeners = new Set<() => void>();
  readonly #lineages = new Lineages(() => this.#reset());
  #sawClose = false;
  #unhook: (() => void) | undefined;

  constructor(options: RedisStoreOptions) {
    if (typeof options !== "object" || options === null) throw invalidOption("RedisStore options", "an object with `client`, `url` or `nodes`", options);
    const { client, url, nodes, prefix = "ryw:" } = options;
    if (typeof prefix !== "string" || prefix.length === 0) throw invalidOption("prefix", "a non-empty string", prefix);
    if (client !== undefined && (url !== undefined || nodes !== undefined)) throw invalidOption("client", "given alone, not together with `url` or `nodes`", "both");
    if (url !== undefined && nodes !== undefined) throw invalidOption("nodes", "given alone, not together with `url`", "both");
    const cluster = nodes === undefined ? undefined : clusterNodes(nodes);
    if (client === undefined && cluster === undefined && (typeof url !== "string" || !/^rediss?:\/\//.test(url))) {
      throw invalidOption("url", "a redis:// or rediss:// URL (or pass `client` or `nodes`)", url);
    }
    this.#prefix = prefix;
    this.#ownsClient = client === undefined;
    this.#client = client ? (this.#ready = this.#hook(client)) : (cluster ? connectCluster(cluster) : connect(url!)).then((c) => (this.#ready = this.#hook(c)));
    // A failed import or bad URL surfaces on the first call; do not crash the process meanwhile.
    if (this.#client instanceof Promise) this.#client.catch(() => {});
  }

  async get(scope: string): Promise<Lsn | undefined> {
    return (await this.lookup(scope)).position;
  }

  // Not async: an async wrapper and its `await` are two more promises on every read, and with a
  // request context active each promise pays Node's promise hooks. Errors still come as rejections.
  lookup(scope: string): Promise<ScopeState> {
    return this.#run(SCRIPTS.lookup, scope).then(parseLookup);
  }

  async advance(scope: string, value: Lsn, ttlMs: number, intent?: string, timeline?: number): Promise<void> {
    await this.#run(SCRIPTS.advance, scope, value.toString(16).padStart(16, "0"), ttl(ttlMs), intentId(intent ?? ""), timelineArg(timeline));
  }

  async intend(scope: string, intent: string, ttlMs: number): Promise<void> {
    await this.#run(SCRIPTS.intend, scope, intentId(intent), ttl(ttlMs));
  }

  async withdraw(scope: string, intent: string): Promise<void> {
    await this.#run(SCRIPTS.withdraw, scope, intentId(intent));
  }

  /** Runs a script on the scope's key; its reply without the trailing replication ID, once checked. */
  async #run(script: { script: string; sha: string }, scope: string, ...args: Array<string | number>): Promise<unknown[]> {
    // Awaited only while it is being created: `await` of a plain value is a promise too (see lookup).
    const client = this.#ready ?? (await this.#client);
    const key = redisKey(this.#prefix, scope);
    const begun = this.#lineages.begun;
    let reply: unknown;
    if (begun === undefined) {
      // Once the histories are known (or with no discovery at all) there is nothing to wait for
      // beside the call itself: no Promise.all, no `.catch` layer.
      try {
        reply = await client.evalsha(script.sha, 1, key, ...args);
      } catch (error) {
        if (!isNoScript(error)) throw error;
        reply = await client.eval(script.script, 1, key, ...args);
      }
    } else {
      const call = client.evalsha(script.sha, 1, key, ...args).catch((error: unknown) => {
        if (!isNoScript(error)) throw error;
        return client.eval(script.script, 1, key, ...args);
      });
      [reply] = await Promise.all([call, begun]);
    }
    if (!Array.isArray(reply) || reply.length < 2) throw new RywError("STORE_UNAVAILABLE", `Redis answered with ${JSON.stringify(reply)?.slice(0, 40)}.`);
    // Before the answer is returned: a reset reported here reaches the router before it uses it.
    this.#lineages.saw(String(reply.at(-1)));
    return reply.slice(0, -1);
  }

  onReset(listener: () => void): () => void {
    this.#resetListeners.add(listener);
    return () => this.#resetListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#unhook?.();
    if (this.#ownsClient) await (await this.#client).quit().catch(() => {});
  }

  #reset(): void {
    for (const listener of this.#resetListeners) listener();
  }

  // A reconnect may mean Redis restarted without persistence and lost every position, so each
  // ready-after-close is reported as a reset. A mere network blip costs a short primary period.
  // A Cluster emits these only when it lost every node; failovers are caught by lineage.ts.
  #hook(client: RedisLike): RedisLike {
    const onClose = () => {
      this.#sawClose = true;
    };
    const onReady = () => {
      if (!this.#sawClose) return;
      this.#sawClose = false;
      this.#reset();
    };
    client.on("close", onClose);
    client.on("ready", onReady);
    this.#unhook = () => {
      client.off("close", onClose);
      client.off("ready", onReady);
    };
    if (typeof client.nodes === "function") this.#lineages.begin(() => clusterIds(client), DISCOVERY_TIMEOUT_MS);
    return client;
  }
}

// How long the first answers of a Cluster store may wait for every node's replication ID.
const DISCOVERY_TIMEOUT_MS = 5000;

/** Every reachable node's replication ID, once the Cluster is ready (it knows its nodes then). */
async function clusterIds(client: RedisLike): Promise<string[]> {
  if (client.status !== "ready") {
    await new Promise<void>((resolve) => {
      const ready = () => {
        client.off("ready", ready);
        resolve();
      };
      client.on("ready", ready);
    });
  }
  return Promise.all(client.nodes!("all").map((node) => node.info("replication").then(replicationId, () => "")));
}

// A script unknown to the node that owns the key (a new master after a failover, a restarted
// Redis) is sent in full to the same key, so to that same node.
function isNoScript(error: unknown): boolean {
  return String((error as Error)?.message).includes("NOSCRIPT");
}

function parseLookup(reply: unknown[]): ScopeState {
  const [text, pending, expired, timeline] = reply;
  if ((text !== null && typeof text !== "string") || (pending !== 0 && pending !== 1) || (expired !== 0 && expired !== 1) || !Number.isInteger(timeline) || (timeline as number) < 0) {
    throw new RywError("STORE_UNAVAILABLE", `Redis answered a lookup with ${JSON.stringify(reply)?.slice(0, 40)}.`);
  }
  if (text !== null && !HEX16.test(text)) throw new RywError("STORE_UNAVAILABLE", `Redis key for scope holds an unexpected value ${JSON.stringify(text.slice(0, 20))}.`);
  const state: ScopeState = { position: text === null ? undefined : BigInt(`0x${text}`), pending: pending === 1, expired: expired === 1 };
  if ((timeline as number) > 0) state.timeline = timeline as number;
  return state;
}

function ttl(ms: number): number {
  return Math.max(1, Math.ceil(ms));
}

function timelineArg(timeline: number | undefined): string {
  if (timeline === undefined) return "";
  if (!Number.isInteger(timeline) || timeline < 1 || timeline > 0xffffffff) throw new RywError("INVALID_OPTION", `A timeline must be an integer from 1 to 2^32-1, got ${String(timeline)}.`);
  return String(timeline);
}

// Intent ids come from the router; checked anyway, since they become part of a hash field name.
function intentId(id: string): string {
  if (typeof id !== "string" || !/^[A-Za-z0-9._-]{0,64}$/.test(id)) throw new RywError("INVALID_OPTION", `A write intent id must be up to 64 characters of [A-Za-z0-9._-], got ${JSON.stringify(id)}.`);
  return id;
}
