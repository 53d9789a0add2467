import { PrismaPg } from "@prisma/adapter-pg";
import { readReplicas } from "@prisma/extension-read-replicas";
import { desc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import { ryw } from "@ryw/prisma";
import type { RywPrismaOptions } from "@ryw/prisma";
import { rywSession } from "@ryw/drizzle";
import { MemoryStore, RedisStore, runWithScope } from "@ryw/core";
import type { PositionStore, RywEvent, RywStats, Strategy } from "@ryw/core";
import { PrismaClient } from "../../packages/prisma/test/generated/prisma/client.js";
import { posts, schema } from "../../test/drizzle/schema.ts";
import type { ClusterInfo } from "../../test/harness/index.js";

/** One way of sending the app's queries to the cluster. Every read runs as its own request. */
export interface DemoRouter {
  name: string;
  /** What it is, in a few words. */
  how: string;
  /** The user (a scope) writes a post; resolves once the write is acknowledged. */
  write(userId: number, title: string): Promise<void>;
  /** The user loads their own feed: titles of their newest posts. */
  feed(userId: number): Promise<string[]>;
  /** Route decisions and recorded writes, for routers that report them. */
  subscribe?(listener: (event: RywEvent) => void): () => void;
  stats?(): RywStats;
  /** The @ryw strategy, for routers built on @ryw. */
  strategy?: Strategy;
  close(): Promise<void>;
}

/** Where @ryw keeps each user's last write position: a Redis URL, or this process's memory. */
export function storeFactory(redisUrl: string | undefined, runId: string): Stores {
  return async (router) => {
    if (!redisUrl) return new MemoryStore();
    const store = new RedisStore({ url: redisUrl, prefix: `ryw-demo:${runId}:${router.toLowerCase().replace(/\W+/g, "-").replace(/^-|-$/g, "")}:` });
    // Connect before the story starts: a first call that opens the connection can exceed
    // storeTimeoutMs, and the router would then skip the store for a while.
    await store.get("connect");
    return store;
  };
}

type Stores = (router: string) => Promise<PositionStore>;

const prismaClient = (url: string) => new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
const prismaFeed = (authorId: number) => ({ where: { authorId }, orderBy: { id: "desc" as const }, take: 10, select: { title: true } });

/** @prisma/extension-read-replicas: every read on a random replica, whatever its lag. */
export async function naivePrisma(cluster: ClusterInfo): Promise<DemoRouter> {
  const base = prismaClient(cluster.primary.url);
  const replicas = cluster.replicas.map((r) => prismaClient(r.url));
  const db = base.$extends(readReplicas({ replicas }));
  return {
    name: "naive replicas (Prisma)",
    how: "@prisma/extension-read-replicas: a random replica for every read",
    write: async (userId, title) => void (await db.post.create({ data: { authorId: userId, title } })),
    feed: async (userId) => (await db.post.findMany(prismaFeed(userId))).map((p) => p.title),
    close: async () => void (await Promise.all([base, ...replicas].map((c) => c.$disconnect()))),
  };
}

/** @ryw/prisma: `prisma.$extends(ryw())` on the app's own client, as in its README. */
export async function rywPrisma(cluster: ClusterInfo, stores: Stores, name: string, how: string, options: Partial<RywPrismaOptions> = {}): Promise<DemoRouter> {
  const store = await stores(name);
  const base = prismaClient(cluster.primary.url);
  const db = base.$extends(ryw({ replicas: cluster.replicas.map((r) => ({ name: r.name, adapter: r.url })), store, ...options }));
  await db.$ryw.ready();
  return {
    name,
    how,
    write: (userId, title) => runWithScope(String(userId), async () => void (await db.post.create({ data: { authorId: userId, title } }))),
    feed: (userId) => runWithScope(String(userId), async () => (await db.post.findMany(prismaFeed(userId))).map((p) => p.title)),
    subscribe: (listener) => db.$ryw.subscribe(listener),
    stats: () => db.$ryw.stats(),
    strategy: db.$ryw.strategy,
    close: async () => {
      await base.$disconnect();
      await db.$ryw.close();
      await store.close?.();
    },
  };
}

/** @ryw/drizzle: `drizzle(rywSession(...), { schema })`, as in its README. */
export async function rywDrizzle(cluster: ClusterInfo, stores: Stores): Promise<DemoRouter> {
  const name = "@ryw (Drizzle)";
  const store = await stores(name);
  const db = drizzle(
    rywSession({
      primary: cluster.primary.url,
      replicas: cluster.replicas.map((r) => ({ connection: r.url, name: r.name })),
      connectionOptions: { onnotice: () => {} },
      store,
    }),
    { schema },
  );
  await db.$client.ready();
  return {
    name,
    how: "drizzle(rywSession(...)): the same rule on drizzle-orm + postgres.js",
    write: (userId, title) => runWithScope(String(userId), async () => void (await db.insert(posts).values({ authorId: userId, title }))),
    feed: (userId) =>
      runWithScope(String(userId), async () => {
        const rows = await db.select({ title: posts.title }).from(posts).where(eq(posts.authorId, userId)).orderBy(desc(posts.id)).limit(10);
        return rows.map((p) => p.title);
      }),
    subscribe: (listener) => db.$client.ryw.subscribe(listener),
    stats: () => db.$client.stats(),
    strategy: db.$client.ryw.strategy,
    close: async () => {
      await db.$client.end();
      await store.close?.();
    },
  };
}

/** The four routers of the story, in the order they are played. */
export const routers: Array<(cluster: ClusterInfo, stores: Stores) => Promise<DemoRouter>> = [
  (cluster) => naivePrisma(cluster),
  (cluster, stores) =>
    rywPrisma(cluster, stores, "time window 100 ms (Prisma)", "@ryw/prisma with strategy \"time-window\": the primary for 100 ms after a write, then any replica", {
      strategy: "time-window",
      windowMs: 100,
    }),
  (cluster, stores) => rywPrisma(cluster, stores, "@ryw (Prisma)", "@ryw/prisma: a replica that has replayed the user's last write, else the primary"),
  rywDrizzle,
];
