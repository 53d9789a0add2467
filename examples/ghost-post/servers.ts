import postgres from "postgres";
import type { ClusterInfo } from "../../test/harness/index.js";

/** Feed reads executed by each server, by name ("primary", "r0", "r1"). */
export type FeedCounts = Record<string, number>;

/**
 * Asks the servers, not the routers, where the feed reads ran: every node counts its own
 * statements in pg_stat_statements, and a feed read is a SELECT on "Post".
 */
export function serverCounters(cluster: ClusterInfo) {
  const nodes = [cluster.primary, ...cluster.replicas].map((node) => ({ name: node.name, sql: postgres(node.url, { max: 1, onnotice: () => {} }) }));
  return {
    async reset(): Promise<void> {
      await Promise.all(nodes.map(({ sql }) => sql`select pg_stat_statements_reset()`));
    },
    async read(): Promise<FeedCounts> {
      const counts = await Promise.all(
        nodes.map(async ({ name, sql }) => {
          const [row] = await sql`select coalesce(sum(calls), 0)::int as calls from pg_stat_statements where lower(ltrim(query)) like 'select%' and query like '%"Post"%'`;
          return [name, row!.calls as number] as const;
        }),
      );
      return Object.fromEntries(counts);
    },
    close: () => Promise.all(nodes.map(({ sql }) => sql.end({ timeout: 1 }))),
  };
}

/** Which nodes' counts grew between two readings. */
export function grown(before: FeedCounts, after: FeedCounts): string[] {
  return Object.keys(after).filter((name) => after[name]! > (before[name] ?? 0));
}
