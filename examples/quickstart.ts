/**
 * A short tour of @ryw/core on a real local cluster (a primary, two streaming replicas, Redis),
 * started on free ports and removed at the end. Run it with `pnpm demo`.
 */
import postgres from "postgres";
import { Redis } from "ioredis";
import { createRyw, MemoryStore, postgresJsRunner, postgresJsWatch, RedisStore, runWithScope } from "@ryw/core";
import { applyMigrations, pauseReplay, resumeReplay, startCluster, stopCluster } from "../test/harness/index.js";

const started = Date.now();
const cluster = await startCluster({ replicas: 2, redis: true });
console.log(`cluster up in ${Date.now() - started} ms: primary :${cluster.primary.port}, replicas :${cluster.replicas.map((r) => r.port).join(", :")}`);
const primary = postgres(cluster.primary.url, { onnotice: () => {} });
const replicas = cluster.replicas.map((r) => postgres(r.url));
const redis = cluster.redis ? new Redis(cluster.redis.url) : undefined;
const serverOf = new Map([[cluster.primary.port, "primary"], ...cluster.replicas.map((r) => [r.port, r.name] as const)]);

try {
  await applyMigrations(cluster);
  const ryw = createRyw({
    primary: postgresJsRunner(primary),
    replicas: replicas.map((sql, i) => ({ name: cluster.replicas[i]!.name, query: postgresJsRunner(sql), watch: postgresJsWatch(sql) })),
    store: redis ? new RedisStore({ client: redis }) : new MemoryStore(),
  });
  await ryw.ready();
  ryw.subscribe((e) => e.type === "route" && console.log(`  read -> ${e.decision.target.kind === "primary" ? "primary" : e.decision.target.name} (${e.decision.reason})`));

  const feed = (user: string) =>
    ryw.read(async (target) => {
      const sql = target.kind === "primary" ? primary : replicas[target.index]!;
      const [row] = await sql`select inet_server_port() as port, count(*)::int as posts from "Post" p join "User" u on u.id = p."authorId" where u.email = ${user}`;
      return `${row!.posts} post(s), served by ${serverOf.get(row!.port as number)}`;
    });

  console.log("\nReplica r0 stops replaying WAL (as if it lagged far behind).");
  await pauseReplay(cluster, 0);
  for (const user of ["ada@example.com", "grace@example.com", "alan@example.com"]) {
    await runWithScope(user, async () => {
      const write = ryw.beginWrite();
      const [u] = await primary`insert into "User" (email) values (${user}) returning id`;
      await primary`insert into "Post" ("authorId", title) values (${u!.id}, 'hello')`;
      await write.done();
      console.log(`${user} posted; reloading the feed:`);
      console.log(`  ${await feed(user)}`);
    });
  }
  console.log("\nA user who wrote nothing reads from any replica:");
  await runWithScope("visitor", async () => console.log(`  ${await feed("nobody@example.com")}`));
  await resumeReplay(cluster, 0);
  const stats = ryw.stats();
  console.log(`\nreads: ${stats.reads.replica} on replicas, ${stats.reads.primary} on the primary; every feed above showed its own post.`);
  await ryw.close();
} finally {
  await Promise.all([primary, ...replicas].map((s) => s.end({ timeout: 1 })));
  await redis?.quit();
  await stopCluster(cluster);
}
