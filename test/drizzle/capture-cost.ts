// What capturing the position costs per autocommit write, side by side and interleaved.
// Run: npx tsx test/drizzle/capture-cost.ts [pairs]   (starts and removes its own cluster)
import postgres from "postgres";
import { applyMigrations, startCluster, stopCluster } from "../harness/index.ts";
import { MemoryStore, RedisStore, runWithScope, rywSession } from "@ryw/drizzle";
import { drizzle } from "./orm.ts";
import { schema, users } from "./schema.ts";

const pairs = Number(process.argv[2] ?? 2000);
const cluster = await startCluster({ replicas: 1, redis: true });
try {
  await applyMigrations(cluster);
  const opts = { max: 4, onnotice: () => {} };
  const plainClient = postgres(cluster.primary.url, opts);
  const plain = drizzle(plainClient, { schema });
  const redis = new RedisStore({ url: cluster.redis!.url, prefix: "bench:" });
  const withMemory = drizzle(rywSession({ primary: cluster.primary.url, replicas: [cluster.replicas[0]!.url], store: new MemoryStore(), connectionOptions: opts }), { schema });
  const withRedis = drizzle(rywSession({ primary: cluster.primary.url, replicas: [cluster.replicas[0]!.url], store: redis, connectionOptions: opts }), { schema });
  const raw = postgres(cluster.primary.url, opts);
  const text = 'insert into "User" ("email") values ($1)';
  const lsn = "select pg_current_wal_insert_lsn()::text as lsn";
  await withMemory.$client.ready();
  await withRedis.$client.ready();

  let n = 0;
  const email = () => `bench-${process.pid}-${n++}@bench`;
  const variants: Record<string, () => Promise<unknown>> = {
    "drizzle insert, plain postgres.js client": () => plain.insert(users).values({ email: email() }),
    "drizzle insert via rywSession, no scope (routing only, no capture)": () => withMemory.insert(users).values({ email: email() }),
    "drizzle insert via rywSession, MemoryStore (write + capture)": () => runWithScope("bench-user", () => withMemory.insert(users).values({ email: email() })),
    "drizzle insert via rywSession, RedisStore (write + capture + EVAL)": () => runWithScope("bench-user", () => withRedis.insert(users).values({ email: email() })),
    "driver: insert": () => raw.unsafe(text, [email()]),
    "driver: insert, then capture (sequential, pool)": async () => {
      await raw.unsafe(text, [email()]);
      await raw.unsafe(lsn);
    },
    "driver: insert + capture pipelined on a reserved connection": async () => {
      const conn = await raw.reserve();
      try {
        await Promise.all([conn.unsafe(text, [email()]), conn.unsafe(lsn)]);
      } finally {
        conn.release();
      }
    },
  };
  const names = Object.keys(variants);
  const times: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, []]));
  for (let i = 0; i < 200; i++) for (const k of names) await variants[k]!();
  for (let i = 0; i < pairs; i++) {
    // Rotate the order each round, so no variant always runs right after another.
    for (let j = 0; j < names.length; j++) {
      const k = names[(i + j) % names.length]!;
      const t = process.hrtime.bigint();
      await variants[k]!();
      times[k]!.push(Number(process.hrtime.bigint() - t) / 1000);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;
  const base = { drizzle: median(times[names[0]!]!), driver: median(times[names[4]!]!) };
  console.log(`${pairs} rounds, each variant once per round, rotating order; median and p90 in microseconds`);
  for (const k of names) {
    const m = median(times[k]!);
    const ref = k.startsWith("driver") ? base.driver : base.drizzle;
    console.log(`${k.padEnd(70)} median ${m.toFixed(0).padStart(5)}  p90 ${p90(times[k]!).toFixed(0).padStart(5)}  ${(m / ref).toFixed(2)}x  (+${(m - ref).toFixed(0)} us)`);
  }
  await Promise.all([plainClient.end(), raw.end(), withMemory.$client.end(), withRedis.$client.end()]);
  await redis.close();
} finally {
  await stopCluster(cluster);
}
