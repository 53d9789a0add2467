import { RedisStore, runWithScope, ryw } from "@ryw/prisma";
import { PrismaClient } from "../../packages/prisma/test/generated/prisma/client.js";
import type { ChaosApp } from "./app.js";
import type { AppServerConfig } from "./protocol.js";

/** An app server on @ryw/prisma, built as its README says. */
export async function prismaApp(config: AppServerConfig): Promise<ChaosApp> {
  const store = new RedisStore(config.redisNodes ? { nodes: config.redisNodes, prefix: config.prefix } : { url: config.redisUrl, prefix: config.prefix });
  const rw = ryw({
    primary: config.primaryUrl,
    replicas: config.replicas.map((r) => ({ name: r.name, adapter: r.url })),
    store,
    // Below the checker's 10 s operation timeout: postgres.js 3.4.9 can leave a query on a cut
    // connection unsettled forever, and ryw then answers from the primary (default 30 s).
    replicaTimeoutMs: 2000,
    ...config.ryw,
  });
  const base = new PrismaClient({ adapter: rw.adapter });
  const db = base.$extends(rw);
  await rw.ryw.ready();
  return {
    write: async (user, title) => (await runWithScope(String(user), () => db.post.create({ data: { authorId: user, title }, select: { id: true } }))).id,
    read: async (user, postId, title) => (await runWithScope(String(user), () => db.post.findUnique({ where: { id: postId }, select: { title: true } })))?.title === title,
    subscribe: (listener) => rw.ryw.subscribe(listener),
    stats: () => rw.ryw.stats(),
    close: async () => {
      await base.$disconnect();
      await rw.ryw.close();
      await store.close();
    },
  };
}
