import { Redis } from "ioredis";
import postgres from "postgres";
import type { ClusterInfo } from "../test/harness/index.js";
import { applyMigrations, startCluster, stopCluster } from "../test/harness/index.js";
import { measurePair } from "./micro.js";
import { corePairs } from "./micro-pairs.js";
import { round } from "./stats.js";

export interface ScalePoint {
  replicas: number;
  /** Scope keys in Redis while measuring. */
  keys: number;
  readRatio: number;
  writeRatio: number;
  readUs: number;
  writeUs: number;
}

/**
 * `--scale`: how the cost of a routed read and of a write (core on postgres.js, A/B against the
 * same statement without @ryw, as in the micro ratios) moves with the number of replicas (1, 2,
 * 4: each its own cluster) and of scopes in Redis (1k and 100k keys, on the 2-replica cluster).
 */
export async function runScale(iterations: number, out: (line: string) => void): Promise<ScalePoint[]> {
  const points: ScalePoint[] = [];
  for (const replicas of [1, 2, 4]) {
    const cluster = await startCluster({ replicas, redis: true });
    try {
      await applyMigrations(cluster);
      const author = await seedAuthor(cluster);
      for (const keys of replicas === 2 ? [1_000, 100_000] : [1_000]) {
        await fillScopes(cluster, keys);
        const point = await measure(cluster, author, replicas, keys, iterations);
        points.push(point);
        out(`scale: ${replicas} replica(s), ${keys} scope keys: read ${point.readRatio}x (${point.readUs} µs), write ${point.writeRatio}x (${point.writeUs} µs)`);
      }
    } finally {
      await stopCluster(cluster);
    }
  }
  return points;
}

async function seedAuthor(cluster: ClusterInfo): Promise<number> {
  const sql = postgres(cluster.primary.url, { onnotice: () => {} });
  try {
    const [row] = await sql`insert into "User" (email) values (${`scale-${Date.now()}@example.com`}) returning id`;
    return row!.id as number;
  } finally {
    await sql.end();
  }
}

/** `keys` scope keys in the hash form the store writes, each with a position. */
async function fillScopes(cluster: ClusterInfo, keys: number): Promise<void> {
  const redis = new Redis(cluster.redis!.url);
  try {
    await redis.flushall();
    for (let start = 0; start < keys; start += 5_000) {
      const batch = redis.pipeline();
      for (let i = start; i < Math.min(keys, start + 5_000); i++) batch.hset(`bench-micro:scope-${i}`, "p", "0000000001000000").pexpire(`bench-micro:scope-${i}`, 600_000);
      await batch.exec();
    }
  } finally {
    redis.disconnect();
  }
}

async function measure(cluster: ClusterInfo, author: number, replicas: number, keys: number, iterations: number): Promise<ScalePoint> {
  const set = await corePairs(cluster, author);
  try {
    const read = await measurePair(set.pairs.find((p) => p.name.startsWith("postgres.js read"))!, iterations, Math.min(200, iterations));
    const write = await measurePair(set.pairs.find((p) => p.name.startsWith("postgres.js write: insert under beginWrite"))!, iterations, Math.min(200, iterations));
    return { replicas, keys, readRatio: read.medianRatio, writeRatio: write.medianRatio, readUs: round(read.bMedianUs, 0), writeUs: round(write.bMedianUs, 0) };
  } finally {
    await set.close();
  }
}
