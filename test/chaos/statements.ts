import postgres from "postgres";
import type { ClusterInfo, PgNode } from "../harness/cluster.js";

/** Statements on the Post table that one server ran, by kind, from its pg_stat_statements. */
export interface ServerStatements {
  select: number;
  insert: number;
  other: number;
}

const POST_STATEMENTS = `select
    coalesce(sum(calls) filter (where query ~* '^\\s*select'), 0)::int as select,
    coalesce(sum(calls) filter (where query ~* '^\\s*insert'), 0)::int as insert,
    coalesce(sum(calls) filter (where query !~* '^\\s*(select|insert)'), 0)::int as other
  from pg_stat_statements where query ~ '"Post"' and query !~* 'pg_stat_statements'`;

const nodes = (cluster: ClusterInfo) => [cluster.primary, ...cluster.replicas];

async function onEach<T>(list: PgNode[], fn: (sql: postgres.Sql) => Promise<T>, fallback: T): Promise<Record<string, T>> {
  const entries = await Promise.all(
    list.map(async (node) => {
      const sql = postgres(node.url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
      try {
        return [node.name, await fn(sql)] as const;
      } catch {
        return [node.name, fallback] as const;
      } finally {
        await sql.end({ timeout: 1 });
      }
    }),
  );
  return Object.fromEntries(entries);
}

/** Zeroes the counters on every server, directly (not through the fault proxies). */
export async function resetStatements(cluster: ClusterInfo): Promise<void> {
  await onEach(nodes(cluster), (sql) => sql`select pg_stat_statements_reset()`, undefined);
}

/**
 * What each server says it ran on the Post table since the reset: the servers, not the code under
 * test, say where statements ran. A server that cannot answer counts -1.
 */
export async function readStatements(cluster: ClusterInfo, only?: string): Promise<Record<string, ServerStatements>> {
  return onEach(nodes(cluster).filter((n) => only === undefined || n.name === only), async (sql) => (await sql.unsafe(POST_STATEMENTS))[0] as unknown as ServerStatements, { select: -1, insert: -1, other: -1 });
}

/**
 * Counters of servers that are about to lose theirs: a replica killed with -9 forgets them (they
 * are only saved on a clean shutdown), so the fault injector banks them just before the kill.
 * Statements in the few ms between the two are not counted.
 */
export class StatementBank {
  readonly #banked: Record<string, ServerStatements> = {};

  async bank(cluster: ClusterInfo, name: string): Promise<void> {
    const now = (await readStatements(cluster, name))[name];
    if (!now || now.select < 0) return;
    const b = (this.#banked[name] ??= { select: 0, insert: 0, other: 0 });
    b.select += now.select;
    b.insert += now.insert;
    b.other += now.other;
  }

  /** `final` plus everything banked. */
  total(final: Record<string, ServerStatements>): Record<string, ServerStatements> {
    return Object.fromEntries(
      Object.entries(final).map(([name, f]) => {
        const b = this.#banked[name] ?? { select: 0, insert: 0, other: 0 };
        return [name, { select: Math.max(0, f.select) + b.select, insert: Math.max(0, f.insert) + b.insert, other: Math.max(0, f.other) + b.other }];
      }),
    );
  }
}
