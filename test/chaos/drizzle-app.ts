import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import { RedisStore, runWithScope, rywSession } from "@ryw/drizzle";
import { posts, schema } from "../drizzle/schema.ts";
import type { ChaosApp } from "./app.js";
import type { AppServerConfig } from "./protocol.js";

/** An app server on @ryw/drizzle: `drizzle(rywSession(...), { schema })`. */
export async function drizzleApp(config: AppServerConfig): Promise<ChaosApp> {
  const store = new RedisStore(config.redisNodes ? { nodes: config.redisNodes, prefix: config.prefix } : { url: config.redisUrl, prefix: config.prefix });
  const db = drizzle(
    rywSession({
      primary: config.primaryUrl,
      replicas: config.replicas.map((r) => ({ connection: r.url, name: r.name })),
      // fetch_types off: postgres.js 3.4.9 fetches array types on each new connection in a promise
      // nobody handles, so a connection cut right after connecting becomes an unhandled rejection
      // (it crashes an app). The Post table has no array columns; the checker is about ryw.
      connectionOptions: { onnotice: () => {}, fetch_types: false },
      store,
      // Below the checker's 10 s operation timeout: postgres.js 3.4.9 can leave a query on a cut
      // connection unsettled forever, and ryw then answers from the primary (default 30 s).
      replicaTimeoutMs: 2000,
      ...config.ryw,
    }),
    { schema },
  );
  await db.$client.ready();
  return {
    write: async (user, title) => {
      const [row] = await runWithScope(String(user), () => db.insert(posts).values({ authorId: user, title }).returning({ id: posts.id }));
      return row!.id;
    },
    read: async (user, postId, title) => (await runWithScope(String(user), () => db.select({ title: posts.title }).from(posts).where(eq(posts.id, postId))))[0]?.title === title,
    subscribe: (listener) => db.$client.ryw.subscribe(listener),
    stats: () => db.$client.stats(),
    close: async () => {
      await db.$client.end();
      await store.close();
    },
  };
}
