import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { expect, it } from "vitest";
import { startCluster, stopCluster, withSql } from "./harness/index.js";

/** Processes whose command line mentions `text` (postmasters carry their data dir in it). */
function processesMentioning(text: string): string[] {
  const out = spawnSync("ps", ["-eo", "pid,stat,args"], { encoding: "utf8" }).stdout;
  return out.split("\n").filter((line) => line.includes(text) && !/\sZ/.test(line.slice(0, 16)));
}

it("starts a streaming cluster and leaves no process or directory behind", async () => {
  const cluster = await startCluster({ replicas: 1, redis: true });
  const [row] = await withSql(cluster.replicas[0]!.url, (sql) => sql`select pg_is_in_recovery() as standby`);
  expect(row!.standby).toBe(true);
  expect(processesMentioning(cluster.dir).length).toBeGreaterThan(0);
  const redisPort = String(cluster.redis!.port);
  await stopCluster(cluster);
  expect(processesMentioning(cluster.dir)).toEqual([]);
  expect(existsSync(cluster.dir)).toBe(false);
  expect(spawnSync("redis-cli", ["-p", redisPort, "ping"], { encoding: "utf8" }).stdout.trim()).not.toBe("PONG");
});
