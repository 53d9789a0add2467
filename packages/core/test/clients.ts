import { Redis } from "ioredis";
import postgres from "postgres";
import type { ClusterInfo } from "../../../test/harness/index.js";
import { pauseReplay, resumeReplay } from "../../../test/harness/index.js";
import type { Ryw, RywEvent, RywOptions, Target } from "../src/index.js";
import { createRyw, postgresJsRunner, RedisStore } from "../src/index.js";

/** postgres.js clients for every node of the test cluster, and the runners core needs. */
export function connect(cluster: ClusterInfo) {
  // fetch_types off: see withSql in the harness (an unhandled rejection of postgres.js 3.4.9 when
  // a connect is refused by a killed replica). These tests read no array types.
  const open = (url: string) => postgres(url, { max: 4, onnotice: () => {}, connect_timeout: 5, idle_timeout: 5, fetch_types: false });
  const primary = open(cluster.primary.url);
  const replicas = cluster.replicas.map((r) => open(r.url));
  const nameOfPort = new Map([[cluster.primary.port, "primary"], ...cluster.replicas.map((r) => [r.port, r.name] as const)]);
  return {
    primary,
    replicas,
    sqlFor: (target: Target) => (target.kind === "primary" ? primary : replicas[target.index]!),
    /** What `createRyw` needs to reach the cluster. */
    options: {
      primary: postgresJsRunner(primary),
      replicas: cluster.replicas.map((r, i) => ({ name: r.name, query: postgresJsRunner(replicas[i]!) })),
    } satisfies Pick<RywOptions, "primary" | "replicas">,
    /** Which node answered, as the server itself reports it. */
    serverName: (port: number) => nameOfPort.get(port) ?? `unknown:${port}`,
    end: () => Promise.all([primary, ...replicas].map((s) => s.end({ timeout: 1 }))),
  };
}

/**
 * Routers that stand for app servers sharing one store: each has its own tracker and, unless given
 * a `store`, its own RedisStore on the cluster's Redis. `name` marks this file's scopes and rows.
 */
export function appServers(cluster: ClusterInfo, name: string) {
  const db = connect(cluster);
  const opened: Array<{ close(): Promise<unknown> }> = [];
  let n = 0;
  const track = <T extends { close(): Promise<unknown> }>(o: T): T => (opened.push(o), o);
  const redis = (url = cluster.redis!.url): Redis => {
    const client = new Redis(url, { maxRetriesPerRequest: 1 }).on("error", () => {});
    track({ close: async () => client.disconnect() });
    return client;
  };
  const insert = async (): Promise<number> => {
    const [row] = await db.primary`insert into "User" (email) values (${`${name}-${Date.now()}-${++n}@x`}) returning id`;
    return row!.id as number;
  };
  return {
    db,
    /** Closed by `close()`, last opened first. */
    track,
    redis,
    scope: () => `${name}-${process.pid}-${++n}`,
    /** `client`: the Redis its store uses (default: a client of its own). */
    async server({ client, ...options }: Partial<RywOptions> & { client?: Redis } = {}): Promise<Ryw & { events: RywEvent[] }> {
      const store = options.store ?? new RedisStore({ client: client ?? redis() });
      const ryw = track(createRyw({ ...db.options, store, tracker: { intervalMs: 20 }, ...options }));
      const events: RywEvent[] = [];
      ryw.subscribe((e) => events.push(e));
      await ryw.ready();
      return Object.assign(ryw, { events });
    },
    insert,
    /** An insert acknowledged the way an ORM package does it: the statement, then the position recorded. */
    async write(ryw: Ryw): Promise<number> {
      const id = await insert();
      await ryw.afterWrite();
      return id;
    },
    /** Where the read ran, and whether it saw row `id`. */
    read: (ryw: Ryw, id: number) =>
      ryw.read(async (target: Target) => {
        const [row] = await db.sqlFor(target)`select exists(select 1 from "User" where id = ${id}) as seen`;
        return { target: target.kind, seen: row!.seen as boolean };
      }),
    /** Both replicas stop replaying: a read that misses the store's position is visibly stale. */
    async withReplicasPaused(fn: () => Promise<void>): Promise<void> {
      await pauseReplay(cluster, 0);
      await pauseReplay(cluster, 1);
      try {
        await fn();
      } finally {
        await resumeReplay(cluster, 0);
        await resumeReplay(cluster, 1);
      }
    },
    /** `bound` wraps each close, e.g. to give up on one that hangs. */
    async close(bound: (closing: Promise<unknown>) => Promise<unknown> = (closing) => closing): Promise<void> {
      for (const o of opened.reverse()) await bound(o.close());
      await bound(db.end());
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
