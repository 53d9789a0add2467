import { invalidOption, RywError } from "../errors.js";
import type { RedisLike } from "./redis.js";

// How RedisStore makes its own client from `url` or `nodes`. ioredis is an optional peer: it is
// loaded only here, and only when the store is asked to connect by itself.

async function ioredis(option: string) {
  return import("ioredis").catch((cause: unknown) => {
    throw new RywError("STORE_UNAVAILABLE", `RedisStore with \`${option}\` needs the \`ioredis\` package: npm install ioredis (or pass your own \`client\`).`, { cause });
  });
}

export async function connect(url: string): Promise<RedisLike> {
  const mod = await ioredis("url");
  // Fail fast while disconnected: the router treats a store error as "go to the primary", which
  // beats queueing reads behind a reconnect.
  const client = new mod.Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: true, connectTimeout: 2000 });
  // Connection errors reach the router through failed calls; without a listener ioredis would
  // also print each reconnect attempt as an unhandled error event.
  client.on("error", () => {});
  return client as unknown as RedisLike;
}

export interface ClusterSpec {
  nodes: Array<{ host: string; port: number }>;
  username?: string;
  password?: string;
  tls: boolean;
}

/** Checks `nodes` eagerly, so that a typo fails at construction with the option's name. */
export function clusterNodes(nodes: unknown): ClusterSpec {
  if (!Array.isArray(nodes) || nodes.length === 0) throw invalidOption("nodes", "a non-empty array of { host, port } or redis:// URLs", nodes);
  const spec: ClusterSpec = { nodes: [], tls: false };
  let auth: string | undefined;
  for (const [i, node] of nodes.entries()) {
    const what = `nodes[${i}]`;
    if (typeof node === "string") {
      let url: URL;
      try {
        url = new URL(node);
      } catch {
        throw invalidOption(what, "a redis:// or rediss:// URL", node);
      }
      const port = url.port === "" ? 6379 : Number(url.port);
      if (!/^rediss?:$/.test(url.protocol) || url.hostname === "" || (url.pathname !== "" && url.pathname !== "/")) throw invalidOption(what, "a redis:// or rediss:// URL with a host, an optional port and no database", node);
      const tls = url.protocol === "rediss:";
      const creds = `${tls}:${url.username}:${url.password}`;
      if (auth !== undefined && auth !== creds) throw invalidOption(what, "a URL with the same scheme and credentials as the other nodes", node);
      auth = creds;
      spec.tls = tls;
      if (url.username) spec.username = decodeURIComponent(url.username);
      if (url.password) spec.password = decodeURIComponent(url.password);
      spec.nodes.push({ host: url.hostname.replace(/^\[|\]$/g, ""), port });
      continue;
    }
    const { host, port } = (typeof node === "object" && node !== null ? node : {}) as { host?: unknown; port?: unknown };
    if (typeof host !== "string" || host === "" || !Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) {
      throw invalidOption(what, "{ host: string, port: 1..65535 } or a redis:// URL", node);
    }
    spec.nodes.push({ host, port: port as number });
  }
  return spec;
}

export async function connectCluster(spec: ClusterSpec): Promise<RedisLike> {
  const mod = await ioredis("nodes");
  const client = new mod.Cluster(spec.nodes, {
    enableOfflineQueue: true,
    // Node connections fail fast, as with `url`; a command to a master that died is retried on
    // its successor for up to maxRedirections x retryDelayOnFailover (16 x 100 ms by default).
    redisOptions: { maxRetriesPerRequest: 1, connectTimeout: 2000, username: spec.username, password: spec.password, ...(spec.tls ? { tls: {} } : {}) },
  });
  client.on("error", () => {});
  client.on("node error", () => {});
  return client as unknown as RedisLike;
}
