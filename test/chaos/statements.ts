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

/**
 * Every server under its role as the app servers see it: "primary", and "r<i>" for the one behind
 * proxy r<i>. Before any failover the roles are the node names; after one, a node's counts go
 * to the role it had when it ran them.
 */
const roles = (cluster: ClusterInfo): Array<[string, PgNode]> => [["primary", cluster.primary], ...cluster.replicas.map((node, i) => [`r${i}`, node] as [string, PgNode])];

async function onEach<T>(list: Array<[string, PgNode]>, fn: (sql: postgres.Sql) => Promise<T>, fallback: T): Promise<Record<string, T>> {
  const entries = await Promise.all(
    list.map(async ([name, node]) => {
      const sql = postgres(node.url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
      try {
        return [name, await fn(sql)] as const;
      } catch {
        return [name, fallback] as const;
      } finally {
        await sql.end({ timeout: 1 });
      }
    }),
  );
  return Object.fromEntries(entries);
}

/** Zeroes the counters on every server, directly (not through the fault proxies). */
export async function resetStatements(cluster: ClusterInfo): Promise<void> {
  await onEach(roles(cluster), (sql) => sql`select pg_stat_statements_reset()`, undefined);
}

/**
 * What each server says it ran on the Post table since the reset: the servers, not the code under
 * test, say where statements ran. A server that cannot answer counts -1.
 */
export async function readStatements(cluster: ClusterInfo, only?: string): Promise<Record<string, ServerStatements>> {
  return onEach(roles(cluster).filter(([name]) => only === undefined || name === only), async (sql) => (await sql.unsafe(POST_STATEMENTS))[0] as unknown as ServerStatements, { select: -1, insert: -1, other: -1 });
}

/**
 * Counters of servers that are about to lose theirs: a replica killed with -9 forgets them (they
 * are only saved on a clean shutdown), so the fault injector banks them just before the kill.
 * Statements in the few ms between the two are not counted.
 */
export class StatementBank {
  readonly #banked: Record<string, ServerStatements> = {};

  async bank(cluster: ClusterInfo, name: string): Promise<void> {
    this.#add(name, (await readStatements(cluster, name))[name]);
  }

  /**
   * Before a failover, which moves servers to other roles and re-clones one: every server's
   * counts, banked under its role now, and zeroed. Statements between the read and the reset
   * of a server (a few ms) are not counted.
   */
  async bankAll(cluster: ClusterInfo): Promise<void> {
    const now = await readStatements(cluster);
    await resetStatements(cluster);
    for (const [name, counts] of Object.entries(now)) this.#add(name, counts);
  }

  #add(name: string, now: ServerStatements | undefined): void {
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
