import type { Check } from "./types.js";
import type { DoctorNode } from "./options.js";
import type { RedisSession } from "./redis.js";
import { connectRedis } from "./redis.js";
import { connectFix, round } from "./connect.js";
import { bytes, errorText, ms } from "./format-values.js";
import { medianRoundTrip } from "./latency.js";
import { MissingPackageError } from "./missing-package.js";

/** Reachability of the Redis that holds positions, and whether it may evict them. */
export async function redisChecks(node: DoctorNode | undefined, timeoutMs: number): Promise<Check[]> {
  if (!node) {
    return [{
      id: "store",
      target: "store",
      status: "warn",
      summary: "REDIS_URL is not set: ryw() keeps positions in each process's memory",
      note: "a write made through one app server is not guaranteed to be visible to reads served by another",
      fix: "Set REDIS_URL when the app runs more than one process.",
      data: { store: "memory" },
    }];
  }
  let session: RedisSession | undefined;
  try {
    session = await connectRedis(node.url, timeoutMs);
    const connectMs = session.connectMs;
    const pingMs = await medianRoundTrip(() => session!.ping());
    const server = await session.info("server").catch(() => ({}) as Record<string, string>);
    const version = server.redis_version ?? server.valkey_version ?? null;
    const connected: Check = { id: "connect", target: "redis", status: "pass", summary: `Redis${version ? ` ${version}` : ""} · connect ${ms(connectMs)} · round trip ${ms(pingMs)}`, data: { version, connectMs: round(connectMs), roundTripMs: round(pingMs) } };
    const lineage = await lineageCheck(session);
    try {
      return [connected, evictionCheck(await session.info("memory"), await session.info("stats")), lineage];
    } catch (error) {
      // Hosted Redis and ACLs may forbid INFO; the eviction risk is then the user's to check.
      return [connected, {
        id: "eviction",
        target: "redis",
        status: "warn",
        summary: `cannot read INFO memory: ${errorText(error)}`,
        note: "an evicting maxmemory-policy could drop positions and cause stale reads",
        fix: "Check that the Redis holding positions runs with maxmemory-policy noeviction.",
        data: { error: errorText(error) },
      }, lineage];
    }
  } catch (error) {
    if (error instanceof MissingPackageError) {
      return [{ id: "connect", target: "redis", status: "fail", summary: error.summary, fix: error.fix, data: { error: errorText(error) } }];
    }
    return [{
      id: "connect",
      target: "redis",
      status: "fail",
      summary: `cannot connect: ${errorText(error)}`,
      note: "while Redis does not answer, ryw serves reads after a write from the primary",
      fix: connectFix(error, node.source, timeoutMs),
      data: { error: errorText(error) },
    }];
  } finally {
    session?.close();
  }
}

/**
 * RedisStore notices a failover or a restart that lost positions by the replication ID that each
 * of its scripts reads with `INFO replication` (store/lineage.ts). A user that may not run INFO
 * gets no ID: only reconnects are then noticed, and a Redis Cluster failover that lost positions
 * could let a read trust a lookup that misses a write.
 */
async function lineageCheck(session: RedisSession): Promise<Check> {
  const base = { id: "failover-detection", target: "redis" };
  try {
    const replication = await session.info("replication");
    const id = replication.master_replid;
    if (!id) throw new Error("no master_replid in INFO replication");
    return { ...base, status: "pass", summary: `INFO replication readable · replication ID ${id.slice(0, 8)}…`, note: "a failover or restart that lost positions is noticed by the replication ID", data: { infoReplication: true, role: replication.role ?? null } };
  } catch (error) {
    return {
      ...base,
      status: "warn",
      summary: `cannot read INFO replication: ${errorText(error)}`,
      note: "without the replication ID, RedisStore notices lost positions only when it reconnects: a Redis Cluster or Sentinel failover that lost acknowledged positions could serve stale reads",
      fix: "Allow the Redis user ryw connects as to run INFO (ACL SETUSER <user> +info).",
      data: { infoReplication: false, error: errorText(error) },
    };
  }
}

// Positions always carry a TTL, so volatile-* policies pick them as readily as allkeys-* do
// (volatile-ttl even first, as they expire sooner than most keys).
function evictionCheck(memory: Record<string, string>, stats: Record<string, string>): Check {
  const policy = memory.maxmemory_policy ?? "unknown";
  const limit = Number(memory.maxmemory ?? 0);
  const evicted = Number(stats.evicted_keys ?? 0);
  const base = { id: "eviction", target: "redis", data: { maxmemoryPolicy: policy, maxmemory: limit, evictedKeys: evicted } };
  const summary = `maxmemory-policy ${policy} · maxmemory ${limit === 0 ? "unlimited" : bytes(limit)}${evicted > 0 ? ` · ${evicted} keys evicted so far` : ""}`;
  const evicts = /^(allkeys|volatile)-/.test(policy);
  if (!evicts) return { ...base, status: "pass", summary, note: policy === "noeviction" ? "positions are never evicted" : undefined };
  const note = `an evicted position sends the next read of that scope to a replica that may not have the write yet: a stale read${policy.startsWith("volatile-") ? " (positions carry a TTL, so volatile-* policies evict them too)" : ""}`;
  const fix = "Use maxmemory-policy noeviction for the Redis that holds positions (CONFIG SET maxmemory-policy noeviction), or give positions their own Redis.";
  if (limit === 0) return { ...base, status: "warn", summary: `${summary} (nothing is evicted until a limit is set)`, note, fix };
  return { ...base, status: "fail", summary, note, fix };
}
