import postgres from "postgres";
import { Redis } from "ioredis";
import { drizzle } from "drizzle-orm/postgres-js";
import { createRyw, postgresJsRunner, RedisStore, runWithScope } from "@ryw/core";
import { ryw } from "@ryw/prisma";
import { rywSession } from "@ryw/drizzle";
import { PrismaClient } from "../packages/prisma/test/generated/prisma/client.js";
import { posts, schema } from "../test/drizzle/schema.ts";
import { plainPrismaClient, prismaFeedArgs } from "./routers/prisma.js";
import { drizzleFeed, openPostgres } from "./routers/drizzle.js";
import type { ClusterInfo } from "../test/harness/index.js";
import { waitForReplicas } from "../test/harness/index.js";
import type { Pair } from "./micro.js";
import { READ_SQL, WRITE_SQL } from "./routers/types.js";

/**
 * Micro pairs for @ryw/core on postgres.js: a routed read against the same read sent straight to
 * a replica, and a recorded write against a plain write. ORM packages add their own pairs.
 */
export async function corePairs(cluster: ClusterInfo, author: number): Promise<{ pairs: Pair[]; close: () => Promise<void> }> {
  const open = (url: string) => postgres(url, { max: 4, onnotice: () => {} });
  const primary = open(cluster.primary.url);
  const replicas = cluster.replicas.map((r) => open(r.url));
  const redis = new Redis(cluster.redis!.url);
  const ryw = createRyw({
    primary: postgresJsRunner(primary),
    replicas: replicas.map((sql, i) => ({ name: `r${i}`, query: postgresJsRunner(sql) })),
    store: new RedisStore({ client: redis, prefix: "bench-micro:" }),
  });
  await ryw.ready();
  // The reading scope wrote once, long enough ago for every replica to have it: the common case.
  await runWithScope("micro-reader", async () => {
    await primary.unsafe(WRITE_SQL, [author, "micro-seed"]);
    await ryw.afterWrite();
  });
  await waitForReplicas(cluster);
  await new Promise((r) => setTimeout(r, 300));
  let n = 0;
  // The plain read, round robin over the replicas: side A of both read pairs.
  const replicaRead = () => replicas[n++ % replicas.length]!.unsafe(READ_SQL, [author]);
  const pairs: Pair[] = [
    {
      name: "postgres.js read: ryw.read vs the same query on a replica",
      a: replicaRead,
      b: () => runWithScope("micro-reader", () => ryw.read((t) => (t.kind === "primary" ? primary : replicas[t.index]!).unsafe(READ_SQL, [author]))),
    },
    {
      // The floor under the pair above (bench/routers/floor.ts): what one overlapped Redis round
      // trip costs by itself, with nothing of @ryw in it.
      name: "postgres.js read: the query with one Redis GET overlapped (floor) vs the query",
      a: replicaRead,
      b: () => Promise.all([redis.get("bench-micro-floor:micro-reader"), replicaRead()]),
    },
    {
      name: "postgres.js write: insert under beginWrite vs insert",
      a: () => primary.unsafe(WRITE_SQL, [author, "micro-a"]),
      b: () =>
        runWithScope("micro-writer", async () => {
          const write = ryw.beginWrite();
          await primary.unsafe(WRITE_SQL, [author, "micro-b"]);
          await write.done();
        }),
    },
    {
      name: "postgres.js write: insert + afterWrite (sequential record) vs insert",
      a: () => primary.unsafe(WRITE_SQL, [author, "micro-a"]),
      b: () =>
        runWithScope("micro-writer", async () => {
          await primary.unsafe(WRITE_SQL, [author, "micro-b"]);
          await ryw.afterWrite();
        }),
    },
  ];
  return {
    pairs,
    close: async () => {
      await ryw.close();
      await redis.quit();
      await Promise.all([primary, ...replicas].map((s) => s.end({ timeout: 1 })));
    },
  };
}

/** Prisma: ryw's client against a plain PrismaClient on one replica (reads) and on the primary (writes). */
export async function prismaPairs(cluster: ClusterInfo, author: number): Promise<{ pairs: Pair[]; close: () => Promise<void> }> {
  const redis = new Redis(cluster.redis!.url);
  const rw = ryw({
    primary: cluster.primary.url,
    replicas: cluster.replicas.map((r) => ({ name: r.name, adapter: r.url })),
    store: new RedisStore({ client: redis, prefix: "bench-micro-prisma:" }),
  });
  const base = new PrismaClient({ adapter: rw.adapter });
  const db = base.$extends(rw);
  const plainPrimary = plainPrismaClient(cluster.primary.url);
  const plainReplicas = cluster.replicas.map((r) => plainPrismaClient(r.url));
  await rw.ryw.ready();
  await runWithScope("micro-reader", () => db.post.create({ data: { authorId: author, title: "micro-seed" } }));
  await waitForReplicas(cluster);
  await new Promise((r) => setTimeout(r, 300));
  let n = 0;
  return {
    pairs: [
      {
        name: "Prisma read: findMany through ryw vs plain Prisma on a replica",
        a: () => plainReplicas[n++ % plainReplicas.length]!.post.findMany(prismaFeedArgs(author)),
        b: () => runWithScope("micro-reader", () => db.post.findMany(prismaFeedArgs(author))),
      },
      {
        name: "Prisma write: create through ryw vs plain Prisma",
        a: () => plainPrimary.post.create({ data: { authorId: author, title: "micro-a" } }),
        b: () => runWithScope("micro-writer", () => db.post.create({ data: { authorId: author, title: "micro-b" } })),
      },
    ],
    close: async () => {
      await Promise.all([base, plainPrimary, ...plainReplicas].map((c) => c.$disconnect()));
      await rw.ryw.close();
      await redis.quit();
    },
  };
}

/** Drizzle: rywSession against plain drizzle on one replica (reads) and on the primary (writes). */
export async function drizzlePairs(cluster: ClusterInfo, author: number): Promise<{ pairs: Pair[]; close: () => Promise<void> }> {
  const redis = new Redis(cluster.redis!.url);
  const db = drizzle(
    rywSession({
      primary: cluster.primary.url,
      replicas: cluster.replicas.map((r) => ({ connection: r.url, name: r.name })),
      connectionOptions: { max: 4, onnotice: () => {} },
      store: new RedisStore({ client: redis, prefix: "bench-micro-drizzle:" }),
    }),
    { schema },
  );
  const plain = [cluster.primary, ...cluster.replicas].map((node) => openPostgres(node.url));
  const [plainPrimary, ...plainReplicas] = plain.map((c) => drizzle(c, { schema }));
  await db.$client.ready();
  await runWithScope("micro-reader", () => db.insert(posts).values({ authorId: author, title: "micro-seed" }));
  await waitForReplicas(cluster);
  await new Promise((r) => setTimeout(r, 300));
  let n = 0;
  return {
    pairs: [
      {
        name: "Drizzle read: select through rywSession vs plain drizzle on a replica",
        a: () => drizzleFeed(plainReplicas[n++ % plainReplicas.length]!, author),
        b: () => runWithScope("micro-reader", () => drizzleFeed(db as never, author)),
      },
      {
        name: "Drizzle write: insert through rywSession vs plain drizzle",
        a: () => plainPrimary!.insert(posts).values({ authorId: author, title: "micro-a" }),
        b: () => runWithScope("micro-writer", () => db.insert(posts).values({ authorId: author, title: "micro-b" })),
      },
    ],
    close: async () => {
      await db.$client.end();
      await Promise.all(plain.map((c) => c.end({ timeout: 1 })));
      await redis.quit();
    },
  };
}
