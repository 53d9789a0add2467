import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RedisClusterInfo } from "./harness/index.js";
import { startRedisCluster, startupNodes, stopRedisCluster } from "./harness/index.js";

/**
 * The README's `ts redis-cluster` blocks (test/readme.test.ts runs the plain `ts` ones against a
 * single Redis) run as written against a real Redis Cluster, with its nodes in
 * REDIS_CLUSTER_NODES and the test cluster's PostgreSQL URLs.
 */
const root = join(import.meta.dirname, "..");
const blocks = [...readFileSync(join(root, "README.md"), "utf8").matchAll(/```ts redis-cluster\n([\s\S]*?)```/g)].map((m) => m[1]!);
const dir = join(root, "test", ".readme-blocks");
const cluster = inject("cluster");
let redis: RedisClusterInfo;

beforeAll(async () => {
  redis = await startRedisCluster();
}, 120_000);
afterAll(async () => {
  rmSync(join(dir, "cluster-blocks"), { recursive: true, force: true });
  if (redis) await stopRedisCluster(redis);
});

describe("README Redis Cluster blocks", () => {
  it("has one to check", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(1);
  });

  it.each(blocks.map((code, i) => [i + 1, code] as const))("block %i runs against a real Redis Cluster", (i, code) => {
    mkdirSync(join(dir, "cluster-blocks"), { recursive: true });
    const file = join(dir, "cluster-blocks", `block-${i}.ts`);
    // The snippets leave connections open, as an app would: end the process once they ran.
    writeFileSync(file, `// Generated from README.md by test/readme-cluster.test.ts.\n${code}\nprocess.exit(0);\n`);
    const env = {
      ...process.env,
      DATABASE_URL: cluster.primary.url,
      DATABASE_REPLICA_URLS: cluster.replicas.map((r) => r.url).join(","),
      REDIS_CLUSTER_NODES: startupNodes(redis).map((n) => `redis://${n.host}:${n.port}`).join(","),
    };
    execFileSync(process.execPath, ["--import", "tsx", file], { cwd: root, env, stdio: "pipe", timeout: 30_000 });
  });
});
