/**
 * What `monotonic: true` costs, measured on a local cluster of its own (not a test: nothing here
 * asserts a time). Run: `node --import tsx packages/core/test/monotonic-cost.ts [--pairs N]`.
 *
 * 1. Latency: a scope-less read of a client carrying its token, through a router without and one
 *    with `monotonic`, A/B interleaved in one process (alternating order, so that noise on this
 *    shared machine hits both alike), on an idle database.
 * 2. Probes: 16 clients reading at once; extra probe and primary position statements per read.
 * 3. Primary share: a client alternating between two routers while another user writes, with
 *    back-to-back requests and with 100 ms between them.
 */
import postgres from "postgres";
import { Redis } from "ioredis";
import type { Ryw, RywOptions, SqlRunner, Target } from "../src/index.js";
import { createRyw, postgresJsRunner, RedisStore, runWithScope } from "../src/index.js";
import { applyMigrations, startCluster, stopCluster, waitForReplicas } from "../../../test/harness/index.js";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const PAIRS = arg("--pairs", 2000);
const KEYS = ["monotonic-cost-key-0123456789abcdef"];
const READ = `select coalesce(max(id), 0)::int as newest from "Post" where "authorId" = $1`;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
};
const us = (ms: number) => Math.round(ms * 1000);

const cluster = await startCluster({ replicas: 2, redis: true });
try {
  await applyMigrations(cluster);
  const open = (url: string) => postgres(url, { max: 8, onnotice: () => {} });
  const primary = open(cluster.primary.url);
  const replicas = cluster.replicas.map((r) => open(r.url));
  const sqlFor = (t: Target) => (t.kind === "primary" ? primary : replicas[t.index]!);
  const counts = { probes: 0, primaryPositions: 0 };
  const counted = (run: SqlRunner, key: keyof typeof counts): SqlRunner => (text) => {
    counts[key]++;
    return run(text);
  };
  const redis: Redis[] = [];
  const routers: Ryw[] = [];
  const router = (options: Partial<RywOptions> = {}) => {
    const client = new Redis(cluster.redis!.url);
    redis.push(client);
    const ryw = createRyw({
      primary: counted(postgresJsRunner(primary), "primaryPositions"),
      replicas: replicas.map((sql, i) => ({ name: `r${i}`, query: counted(postgresJsRunner(sql), "probes") })),
      store: new RedisStore({ client, prefix: "mono-cost:" }),
      tokenKeys: KEYS,
      ...options,
    });
    routers.push(ryw);
    return ryw;
  };
  const [user] = await primary`insert into "User" (email) values (${`cost-${process.pid}@x`}) returning id`;
  const author = user!.id as number;
  await primary`insert into "Post" ("authorId", title) select ${author}, 'seed' from generate_series(1, 100)`;
  await waitForReplicas(cluster);

  /** One request of a client that never writes: carries its token in, takes the new one out. */
  const request = (ryw: Ryw, token: string | undefined) =>
    runWithScope({ token }, async () => {
      const rows = await ryw.read((t) => sqlFor(t).unsafe(READ, [author]));
      return { rows, token: ryw.commitToken() ?? token };
    });

  const plain = router();
  const mono = router({ monotonic: true });
  await Promise.all(routers.map((r) => r.ready()));
  await new Promise((r) => setTimeout(r, 300));

  // 1. Latency, idle database.
  let tokenA: string | undefined;
  let tokenB: string | undefined;
  const a = async () => void (tokenA = (await request(plain, tokenA)).token);
  const b = async () => void (tokenB = (await request(mono, tokenB)).token);
  for (let i = 0; i < 200; i++) {
    await a();
    await b();
  }
  const ta: number[] = [];
  const tb: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < PAIRS; i++) {
    const order = i % 2 === 0 ? [a, b] : [b, a];
    const times: number[] = [];
    for (const fn of order) {
      const t0 = performance.now();
      await fn();
      times.push(performance.now() - t0);
    }
    const [x, y] = i % 2 === 0 ? [times[0]!, times[1]!] : [times[1]!, times[0]!];
    ta.push(x);
    tb.push(y);
    ratios.push(y / x);
  }
  console.log(`1. latency, ${PAIRS} interleaved pairs, idle database (scope-less read carrying its token, postgres.js point aggregate):`);
  console.log(`   without monotonic: p50 ${us(percentile(ta, 50))} us, p99 ${us(percentile(ta, 99))} us`);
  console.log(`   with monotonic:    p50 ${us(percentile(tb, 50))} us, p99 ${us(percentile(tb, 99))} us`);
  console.log(`   median per-pair ratio ${percentile(ratios, 50).toFixed(2)}x, p50 difference ${us(percentile(tb, 50) - percentile(ta, 50))} us`);

  // 2. Extra statements per read with 16 clients at once.
  for (const [name, ryw] of [["without", plain], ["with", mono]] as const) {
    const before = { ...counts };
    const started = performance.now();
    const READS = 200;
    await Promise.all(Array.from({ length: 16 }, async () => {
      let token: string | undefined;
      for (let i = 0; i < READS; i++) token = (await request(ryw, token)).token;
    }));
    const elapsed = performance.now() - started;
    const reads = 16 * READS;
    console.log(`2. 16 concurrent clients, ${reads} reads ${name} monotonic: ${Math.round(reads / (elapsed / 1000))} reads/s, ` +
      `${((counts.probes - before.probes) / reads).toFixed(2)} replica probes and ${((counts.primaryPositions - before.primaryPositions) / reads).toFixed(3)} primary position reads per read (polling included)`);
  }

  // 3. Two routers (two app servers), another user writing every ~5 ms.
  const monoB = router({ monotonic: true });
  await monoB.ready();
  let writing = true;
  const writer = (async () => {
    while (writing) {
      await primary`insert into "Post" ("authorId", title) values (${author}, 'w')`;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  for (const thinkMs of [0, 100]) {
    const share = { primary: 0, replica: 0 };
    let token: string | undefined;
    const REQUESTS = thinkMs === 0 ? 400 : 60;
    const off = [mono, monoB].map((ryw) => ryw.subscribe((e) => {
      if (e.type === "route") share[e.decision.target.kind]++;
    }));
    for (let i = 0; i < REQUESTS; i++) {
      token = (await request(i % 2 === 0 ? mono : monoB, token)).token;
      if (thinkMs > 0) await new Promise((r) => setTimeout(r, thinkMs));
    }
    off.forEach((f) => f());
    console.log(`3. alternating servers, ${REQUESTS} requests ${thinkMs === 0 ? "back to back" : `${thinkMs} ms apart`}, another user writing: ${share.primary} on the primary, ${share.replica} on replicas`);
  }
  writing = false;
  await writer;

  for (const r of routers) await r.close();
  for (const c of redis) await c.quit();
  await Promise.all([primary, ...replicas].map((s) => s.end({ timeout: 1 })));
} finally {
  await stopCluster(cluster);
}
