import postgres from "postgres";
import type { ClusterInfo } from "../harness/index.ts";

export type Calls = Record<string, number> & { primary: number; replicas: number };

/**
 * Asks the servers themselves which statements they ran (pg_stat_statements is preloaded on every
 * node), so that no routing claim rests on the code under test.
 */
export class Servers {
  readonly #nodes: Array<{ name: string; sql: postgres.Sql }>;

  constructor(cluster: ClusterInfo) {
    this.#nodes = [cluster.primary, ...cluster.replicas].map((n) => ({ name: n.name, sql: postgres(n.url, { max: 1, onnotice: () => {} }) }));
  }

  /** Forgets the statement counts of every server, or of the named ones (to skip a stopped server). */
  async reset(names?: ReadonlyArray<string>): Promise<void> {
    await Promise.all(this.#pick(names).map((n) => n.sql`select pg_stat_statements_reset()`));
  }

  /** Executions of statements whose text matches the LIKE pattern, per server, since the last reset. */
  async calls(like: string, names?: ReadonlyArray<string>): Promise<Calls> {
    const counts = await Promise.all(
      this.#pick(names).map(async (n) => {
        const [row] = await n.sql`select coalesce(sum(calls), 0)::int as n from pg_stat_statements where query like ${like} and query not like '%pg_stat_statements%'`;
        return [n.name, row!.n as number] as const;
      }),
    );
    const calls = Object.fromEntries(counts) as Calls;
    calls.replicas = counts.filter(([name]) => name !== "primary").reduce((sum, [, n]) => sum + n, 0);
    return calls;
  }

  /** Runs `fn` with counts reset before, and returns the counts for `like` after. */
  async count<T>(like: string, fn: () => Promise<T>): Promise<{ result: T; calls: Calls }> {
    await this.reset();
    const result = await fn();
    return { result, calls: await this.calls(like) };
  }

  #pick(names: ReadonlyArray<string> | undefined) {
    return names === undefined ? this.#nodes : this.#nodes.filter((n) => names.includes(n.name));
  }

  async close(): Promise<void> {
    await Promise.all(this.#nodes.map((n) => n.sql.end({ timeout: 1 })));
  }
}
