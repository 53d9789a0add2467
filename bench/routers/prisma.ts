import { PrismaPg } from "@prisma/adapter-pg";
import { readReplicas } from "@prisma/extension-read-replicas";
import { Redis } from "ioredis";
import { RedisStore, runWithScope, ryw } from "@ryw/prisma";
import type { RywPrismaOptions } from "@ryw/prisma";
import { PrismaClient } from "../../packages/prisma/test/generated/prisma/client.js";
import type { ClusterInfo } from "../../test/harness/index.js";
import { floorOf } from "./floor.js";
import type { RouterSpec } from "./types.js";

const client = (url: string) => new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 8 }) });
const feed = (authorId: number) => ({ where: { authorId }, orderBy: { id: "desc" as const }, take: 10, select: { title: true } });

/** The official extension: random replica per read, no lag awareness. */
const naive: RouterSpec = {
  name: "naive replicas (prisma)",
  orm: "prisma",
  promisesRyw: false,
  async create(cluster) {
    const base = client(cluster.primary.url);
    const replicas = cluster.replicas.map((r) => client(r.url));
    const db = base.$extends(readReplicas({ replicas }));
    return {
      write: async (user, title) => void (await db.post.create({ data: { authorId: user, title } })),
      read: async (_as, author) => (await db.post.findMany(feed(author))).map((p) => p.title),
      close: async () => {
        await Promise.all([base, ...replicas].map((c) => c.$disconnect()));
      },
    };
  },
};

/** @ryw/prisma with the given options and a Redis store. */
export function rywPrisma(name: string, options: Partial<RywPrismaOptions> = {}): RouterSpec {
  return {
    name,
    orm: "prisma",
    promisesRyw: true,
    async create(cluster: ClusterInfo) {
      const redis = new Redis(cluster.redis!.url).on("error", () => {});
      const rw = ryw({
        primary: cluster.primary.url,
        replicas: cluster.replicas.map((r) => ({ name: r.name, adapter: r.url })),
        store: new RedisStore({ client: redis, prefix: `bench-${name}:` }),
        ...options,
      });
      const base = new PrismaClient({ adapter: rw.adapter });
      const db = base.$extends(rw);
      await rw.ryw.ready();
      return {
        write: async (user, title) => void (await runWithScope(String(user), () => db.post.create({ data: { authorId: user, title } }))),
        read: async (asUser, author) => (await runWithScope(String(asUser), () => db.post.findMany(feed(author)))).map((p) => p.title),
        served: () => rw.ryw.stats().reads,
        ryw: rw.ryw,
        close: async () => {
          await base.$disconnect();
          await rw.ryw.close();
          await redis.quit();
        },
      };
    },
  };
}

export const prismaRouters: RouterSpec[] = [naive, floorOf(naive), rywPrisma("ryw (prisma)")];
export { client as plainPrismaClient, feed as prismaFeedArgs };
