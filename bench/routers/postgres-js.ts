import postgres from "postgres";
import { Redis } from "ioredis";
import { createRyw, postgresJsRunner, RedisStore, runWithScope } from "@ryw/core";
import type { RywOptions, Target } from "@ryw/core";
import type { ClusterInfo } from "../../test/harness/index.js";
import { floorOf } from "./floor.js";
import type { BenchRouter, RouterSpec } from "./types.js";
import { READ_SQL, WRITE_SQL } from "./types.js";

function clients(cluster: ClusterInfo) {
  // fetch_types off: postgres.js 3.4.9 leaves the array-type query of a new connection unhandled
  // when that connection is cut (a replica killed by the chaos profile), and the process exits.
  // These statements read no arrays.
  const open = (url: string) => postgres(url, { max: 8, onnotice: () => {}, idle_timeout: 5, connect_timeout: 5, fetch_types: false });
  const primary = open(cluster.primary.url);
  const replicas = cluster.replicas.map((r) => open(r.url));
  return { primary, replicas, end: async () => void (await Promise.all([primary, ...replicas].map((s) => s.end({ timeout: 1 })))) };
}

type Rows = Array<{ title: string }>;

/** Always the primary: fresh by construction, no offload. */
const primaryOnly: RouterSpec = {
  name: "always primary",
  orm: "postgres.js",
  promisesRyw: true,
  async create(cluster) {
    const db = clients(cluster);
    let reads = 0;
    return {
      write: async (user, title) => void (await db.primary.unsafe(WRITE_SQL, [user, title])),
      read: async (_as, author) => (reads++, ((await db.primary.unsafe(READ_SQL, [author])) as unknown as Rows).map((r) => r.title)),
      served: () => ({ replica: 0, primary: reads }),
      close: db.end,
    };
  },
};

/** Round robin over replicas with no lag awareness: what most replica setups do. */
const naive: RouterSpec = {
  name: "naive replicas",
  orm: "postgres.js",
  promisesRyw: false,
  async create(cluster) {
    const db = clients(cluster);
    let next = 0;
    return {
      write: async (user, title) => void (await db.primary.unsafe(WRITE_SQL, [user, title])),
      read: async (_as, author) => ((await db.replicas[next++ % db.replicas.length]!.unsafe(READ_SQL, [author])) as unknown as Rows).map((r) => r.title),
      close: db.end,
    };
  },
};

/**
 * The reference algorithm as first published: per read, one Redis GET, then each replica's
 * replay position queried in turn, the first caught-up replica wins, else the primary. The live
 * check gives the best possible replica share, at two or more round trips per read.
 */
const reference: RouterSpec = {
  name: "reference (live check)",
  orm: "postgres.js",
  // Its positions live only in Redis: a Redis restart makes it trust lagging replicas.
  promisesRyw: false,
  async create(cluster) {
    const db = clients(cluster);
    const redis = new Redis(cluster.redis!.url).on("error", () => {});
    const key = (user: number) => `bench-ref:${user}`;
    let replicaReads = 0;
    let primaryReads = 0;
    return {
      async write(user, title) {
        await db.primary.unsafe(WRITE_SQL, [user, title]);
        const [row] = await db.primary`select pg_current_wal_insert_lsn()::text as lsn`;
        await redis.set(key(user), row!.lsn as string, "PX", 300_000);
      },
      async read(asUser, author) {
        const lsn = await redis.get(key(asUser));
        let target = db.primary;
        if (lsn === null) target = db.replicas[0]!;
        else {
          for (const replica of db.replicas) {
            const [row] = await replica`select pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn as ok`;
            if (row?.ok === true) {
              target = replica;
              break;
            }
          }
        }
        const rows = (await target.unsafe(READ_SQL, [author])) as unknown as Rows;
        if (target === db.primary) primaryReads++;
        else replicaReads++;
        return rows.map((r) => r.title);
      },
      served: () => ({ replica: replicaReads, primary: primaryReads }),
      close: async () => {
        await redis.quit();
        await db.end();
      },
    };
  },
};

/**
 * @ryw/core directly on postgres.js, with any core options. Writes run under `beginWrite`, or,
 * with `sequential`, are recorded afterwards with `afterWrite` (capture, then record).
 */
function rywCore(name: string, promisesRyw: boolean, options: Partial<RywOptions>, sequential = false): RouterSpec {
  return {
    name,
    orm: "postgres.js",
    promisesRyw,
    async create(cluster) {
      const db = clients(cluster);
      const redis = new Redis(cluster.redis!.url).on("error", () => {});
      const ryw = createRyw({
        primary: postgresJsRunner(db.primary),
        replicas: db.replicas.map((sql, i) => ({ name: `r${i}`, query: postgresJsRunner(sql) })),
        store: new RedisStore({ client: redis, prefix: `bench-${name}:` }),
        ...options,
      });
      await ryw.ready();
      const sqlFor = (t: Target) => (t.kind === "primary" ? db.primary : db.replicas[t.index]!);
      return {
        write: (user, title) =>
          runWithScope(String(user), async () => {
            if (sequential) {
              await db.primary.unsafe(WRITE_SQL, [user, title]);
              return ryw.afterWrite();
            }
            const write = ryw.beginWrite();
            await db.primary.unsafe(WRITE_SQL, [user, title]).catch((error: unknown) => {
              write.abandon();
              throw error;
            });
            await write.done();
          }),
        read: (asUser, author) =>
          runWithScope(String(asUser), () => ryw.read(async (t) => ((await sqlFor(t).unsafe(READ_SQL, [author])) as unknown as Rows).map((r) => r.title))),
        served: () => ryw.stats().reads,
        ryw,
        close: async () => {
          await ryw.close();
          await redis.quit();
          await db.end();
        },
      };
    },
  };
}

export const postgresJsRouters: RouterSpec[] = [
  primaryOnly,
  naive,
  floorOf(naive),
  rywCore("time window 60 s", false, { strategy: "time-window", windowMs: 60_000 }),
  rywCore("time window 100 ms", false, { strategy: "time-window", windowMs: 100 }),
  reference,
  rywCore("ryw (core)", true, {}),
  rywCore("ryw (core, sequential record)", true, {}, true),
  rywCore("ryw (core, wait 50 ms)", true, { fallback: "wait", maxWaitMs: 50 }),
  rywCore("ryw (core, no on-demand refresh)", true, { refreshOnDemand: false }),
];

export type { BenchRouter };
