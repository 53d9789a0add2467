import { spawnSync } from "node:child_process";
import type { ClusterInfo } from "../test/harness/index.js";
import { withSql } from "../test/harness/index.js";

/**
 * Load seen by the servers themselves, so that round trips are counted from outside the library:
 * statements per node from pg_stat_statements, commands from Redis INFO commandstats.
 */
export interface ServerCounts {
  /** Calls per node, split into the workload's own statements and everything else. */
  nodes: Record<string, { workload: number; probes: number; other: number }>;
  redis: Record<string, number>;
}

const PROBE = /pg_last_wal_replay_lsn|pg_is_in_recovery/;
const WORKLOAD = /"Post"/;

export async function resetCounters(cluster: ClusterInfo): Promise<void> {
  for (const node of [cluster.primary, ...cluster.replicas]) {
    await withSql(node.url, (sql) => sql`select pg_stat_statements_reset()`).catch(() => {});
  }
  if (cluster.redis) spawnSync("redis-cli", ["-p", String(cluster.redis.port), "config", "resetstat"]);
}

export async function readCounters(cluster: ClusterInfo): Promise<ServerCounts> {
  const nodes: ServerCounts["nodes"] = {};
  for (const node of [cluster.primary, ...cluster.replicas]) {
    const counts = { workload: 0, probes: 0, other: 0 };
    try {
      const rows = await withSql(node.url, (sql) => sql`select query, calls::int as calls from pg_stat_statements`);
      for (const row of rows) {
        const query = row.query as string;
        if (/pg_stat_statements/.test(query)) continue;
        const kind = PROBE.test(query) ? "probes" : WORKLOAD.test(query) ? "workload" : "other";
        counts[kind] += row.calls as number;
      }
    } catch {
      // A node that is down at the end of a chaos run reports nothing.
    }
    nodes[node.name] = counts;
  }
  const redis: Record<string, number> = {};
  if (cluster.redis) {
    const info = spawnSync("redis-cli", ["-p", String(cluster.redis.port), "info", "commandstats"], { encoding: "utf8" }).stdout;
    for (const match of info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) {
      if (!["info", "config", "ping", "select", "client", "hello", "command"].includes(match[1]!)) redis[match[1]!] = Number(match[2]);
    }
  }
  return { nodes, redis };
}
