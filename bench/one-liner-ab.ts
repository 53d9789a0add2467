// A/B of `prisma.$extends(ryw())` (engine swapped under the client) against the two-place form
// (`new PrismaClient({ adapter: rw.adapter }).$extends(rw)`): read and write latency, interleaved
// pairs in one process, median of per-pair ratios. Run: node --import tsx bench/one-liner-ab.ts [pairs]
import postgres from "postgres";
import { PrismaPg } from "@prisma/adapter-pg";
import { MemoryStore, ryw, runWithScope } from "@ryw/prisma";
import { PrismaClient } from "../packages/prisma/test/generated/prisma/client.js";
import { applyMigrations, startCluster, stopCluster, waitForReplicas } from "../test/harness/index.js";

const pairs = Number(process.argv[2] ?? 2000);
const cluster = await startCluster({ replicas: 2, redis: false });
try {
  await applyMigrations(cluster);
  const sql = postgres(cluster.primary.url, { onnotice: () => {} });
  const [user] = await sql`insert into "User" (email) values (${`ab-${Date.now()}@example.com`}) returning id`;
  await sql.end();
  const author = user!.id as number;
  await waitForReplicas(cluster);
  const settings = () => ({ replicas: cluster.replicas.map((r) => r.url), store: new MemoryStore() });

  const rwA = ryw(settings());
  const one = new PrismaClient({ adapter: new PrismaPg({ connectionString: cluster.primary.url }) }).$extends(rwA);
  const rwB = ryw({ ...settings(), primary: cluster.primary.url });
  const two = new PrismaClient({ adapter: rwB.adapter }).$extends(rwB);
  await Promise.all([rwA.ryw.ready(), rwB.ryw.ready()]);

  type Db = typeof one;
  const read = (db: Db) => db.user.findUnique({ where: { id: author } });
  const write = (db: Db, i: number) => runWithScope(`ab-${i}`, async () => await db.post.create({ data: { authorId: author, title: "ab" } }));
  const time = async (fn: () => Promise<unknown>) => {
    const t = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - t) / 1e3;
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

  for (let i = 0; i < 200; i++) await Promise.all([read(one), read(two), write(one, i), write(two, i)].map((p) => p.catch(() => {})));
  for (const [name, op] of [["read (findUnique)", (db: Db) => read(db)], ["write (create, recorded)", (db: Db, i = 0) => write(db, i)]] as const) {
    const a: number[] = [];
    const b: number[] = [];
    const ratio: number[] = [];
    for (let i = 0; i < pairs; i++) {
      // Alternate which form goes first, so that neither always gets the warm connection.
      const [x, y] = i % 2 === 0 ? [await time(() => op(one, i)), await time(() => op(two, i))] : ([await time(() => op(two, i)), await time(() => op(one, i))].reverse() as [number, number]);
      a.push(x);
      b.push(y);
      ratio.push(x / y);
    }
    console.log(`${name}: one-liner p50 ${median(a).toFixed(0)} us, two-place p50 ${median(b).toFixed(0)} us, median ratio one-liner/two-place ${median(ratio).toFixed(3)} (${pairs} pairs)`);
  }
  await one.$disconnect();
  await two.$disconnect();
  await rwA.ryw.close();
  await rwB.ryw.close();
} finally {
  await stopCluster(cluster);
}
