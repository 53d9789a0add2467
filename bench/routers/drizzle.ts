import postgres from "postgres";
import { Redis } from "ioredis";
import { desc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import { withReplicas } from "drizzle-orm/pg-core";
import { RedisStore, runWithScope, rywSession } from "@ryw/drizzle";
import type { RywSessionOptions } from "@ryw/drizzle";
import { posts, schema } from "../../test/drizzle/schema.ts";
import type { ClusterInfo } from "../../test/harness/index.js";
import { floorOf } from "./floor.js";
import type { RouterSpec } from "./types.js";

type Db = ReturnType<typeof drizzle<typeof schema>>;
// fetch_types off, as for the postgres.js routers: see there. The bench tables have no arrays.
const open = (url: string) => postgres(url, { max: 8, onnotice: () => {}, fetch_types: false });
const feed = (db: Db, author: number) => db.select({ title: posts.title }).from(posts).where(eq(posts.authorId, author)).orderBy(desc(posts.id)).limit(10);

/** drizzle's own `withReplicas`: reads to a random replica, no lag awareness. */
const naive: RouterSpec = {
  name: "naive replicas (drizzle)",
  orm: "drizzle",
  promisesRyw: false,
  async create(cluster) {
    const clients = [cluster.primary, ...cluster.replicas].map((n) => open(n.url));
    const [primary, ...replicas] = clients.map((c) => drizzle(c, { schema }));
    const db = withReplicas(primary!, replicas as [Db, ...Db[]]);
    return {
      write: async (user, title) => void (await db.insert(posts).values({ authorId: user, title })),
      read: async (_as, author) => (await feed(db as unknown as Db, author)).map((p) => p.title),
      close: async () => void (await Promise.all(clients.map((c) => c.end({ timeout: 1 })))),
    };
  },
};

/** @ryw/drizzle with the given options and a Redis store. */
export function rywDrizzle(name: string, options: Partial<RywSessionOptions> = {}): RouterSpec {
  return {
    name,
    orm: "drizzle",
    promisesRyw: true,
    async create(cluster: ClusterInfo) {
      const redis = new Redis(cluster.redis!.url).on("error", () => {});
      const db = drizzle(
        rywSession({
          primary: cluster.primary.url,
          replicas: cluster.replicas.map((r) => ({ connection: r.url, name: r.name })),
          connectionOptions: { max: 8, onnotice: () => {} },
          store: new RedisStore({ client: redis, prefix: `bench-${name}:` }),
          ...options,
        }),
        { schema },
      );
      await db.$client.ready();
      return {
        write: (user, title) => runWithScope(String(user), async () => void (await db.insert(posts).values({ authorId: user, title }))),
        read: async (asUser, author) => (await runWithScope(String(asUser), () => feed(db as unknown as Db, author))).map((p) => p.title),
        served: () => db.$client.stats().reads,
        ryw: db.$client.ryw,
        close: async () => {
          await db.$client.end();
          await redis.quit();
        },
      };
    },
  };
}

export const drizzleRouters: RouterSpec[] = [naive, floorOf(naive), rywDrizzle("ryw (drizzle)")];
export { feed as drizzleFeed, open as openPostgres };
