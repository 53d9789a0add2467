import { inject } from "vitest";
import postgres from "postgres";
import type { RywPrismaOptions } from "@ryw/prisma";
import { ryw, MemoryStore } from "@ryw/prisma";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../../packages/prisma/test/generated/prisma/client.js";
import { recordsLanded } from "../harness/index.js";

export const cluster = inject("cluster");

/** One connection per node, for asking the servers themselves what they ran. */
export const servers = {
  // fetch_types off: see withSql in the harness (postgres.js 3.4.9, killed replicas).
  primary: postgres(cluster.primary.url, { max: 1, onnotice: () => {}, fetch_types: false }),
  replicas: cluster.replicas.map((r) => postgres(r.url, { max: 1, onnotice: () => {}, fetch_types: false })),
};

export async function closeServers(): Promise<void> {
  await Promise.all([servers.primary, ...servers.replicas].map((sql) => sql.end({ timeout: 1 })));
}

/**
 * The two ways to apply ryw: `prisma.$extends(ryw())` on a client built with its own adapter
 * (the one-liner), or `new PrismaClient({ adapter: rw.adapter }).$extends(rw)` (two-place).
 */
export type Form = "one-liner" | "two-place";
export const FORMS: readonly Form[] = ["one-liner", "two-place"];

/**
 * A ryw-extended client on the test cluster; replicas are named after the harness nodes. With the
 * one-liner, `primary` (default: the cluster's) is the adapter given to `new PrismaClient`.
 */
export async function makeClient(options: Partial<RywPrismaOptions> = {}, form: Form = "two-place") {
  const { primary = cluster.primary.url, ...rest } = options;
  const settings = {
    replicas: cluster.replicas.map((r) => ({ name: r.name, adapter: r.url })),
    store: new MemoryStore(),
    tracker: { intervalMs: 20 },
    ...rest,
  };
  const rw = form === "one-liner" ? ryw(settings) : ryw({ ...settings, primary });
  const base = form === "one-liner"
    ? new PrismaClient({ adapter: typeof primary === "string" ? new PrismaPg({ connectionString: primary }) : primary })
    : new PrismaClient({ adapter: rw.adapter });
  const db = base.$extends(rw);
  await rw.ryw.ready();
  return {
    rw,
    base,
    db,
    form,
    async close() {
      await base.$disconnect();
      await rw.ryw.close();
    },
  };
}

export type Where = { primary: number; r0: number; r1: number };

const STATEMENTS = `select coalesce(sum(calls), 0)::int as n from pg_stat_statements
  where query ~ '"public"\\."(Post|User)"|"(Post|User)"' and query !~* 'pg_stat_statements'`;

/**
 * Runs `fn` and returns how many statements on the test tables each server executed meanwhile,
 * from pg_stat_statements on each server: the servers say where the queries ran.
 * A server that is down (killed by a fault test) cannot have answered anything: it counts 0.
 */
export async function where<T>(fn: () => Promise<T>): Promise<{ value: T; ran: Where }> {
  const nodes = [servers.primary, ...servers.replicas];
  const up = await Promise.all(nodes.map((sql) => answering(sql, (s) => s`select pg_stat_statements_reset()`)));
  const value = await fn();
  const [p, r0, r1] = await Promise.all(nodes.map(async (sql, i) => {
    if (up[i] === undefined) return 0;
    const rows = await answering(sql, (s) => s.unsafe(STATEMENTS));
    // Reset but gone now: what it ran is unknown, and 0 would be a guess.
    if (rows === undefined) throw new Error(`[test] ${["primary", "r0", "r1"][i]} went down during where(): its statements cannot be counted`);
    return rows[0]!.n as number;
  }));
  return { value, ran: { primary: p!, r0: r0!, r1: r1! } };
}

// The server closed this client's connection (it was killed or restarted since the last query);
// postgres.js opens a new one for the next query. That can fail too: postgres.js 3.4 keeps the
// FATAL "terminating connection due to unexpected postmaster exit" (57P01) that a killed server's
// backend sent during a query, and fails the first query of its NEXT connection with it, on the
// restarted server. Counting such a server as down made where() report 0 for a replica that was
// serving reads.
const DROPPED = new Set(["CONNECTION_CLOSED", "ECONNRESET", "EPIPE", "57P01", "57P02"]);
// Nobody there to answer: the server is down, or still starting.
const DOWN = new Set(["ECONNREFUSED", "57P03"]);

/** Runs `query` on a server; `undefined` when the server is down. Other failures throw. */
async function answering<T>(sql: postgres.Sql, query: (sql: postgres.Sql) => Promise<T>): Promise<T | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await query(sql);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code === "string" && DOWN.has(code)) return undefined;
      if (typeof code !== "string" || !DROPPED.has(code) || attempt === 3) throw error;
    }
  }
}

let seq = 0;
/** A value no other test (or run) uses. */
export function unique(label: string): string {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${++seq}`;
}

/** A user created straight on the primary, replicated before the test starts. */
export async function seedUser(label = "seed"): Promise<number> {
  const email = `${unique(label)}@example.com`;
  const [row] = await servers.primary`insert into "User" (email) values (${email}) returning id`;
  return row!.id as number;
}

/**
 * Position captures (`pg_current_wal_insert_lsn()`) the primary ran during `fn`, and, given
 * `rw`, while the records that `fn`'s writes left in flight (acknowledged on their intent) finish.
 */
export async function captures<T>(fn: () => Promise<T>, rw?: { stats(): { recordsInFlight: number } }): Promise<{ value: T; captures: number }> {
  await servers.primary`select pg_stat_statements_reset()`;
  const value = await fn();
  if (rw) await recordsLanded(rw);
  const [row] = await servers.primary`select coalesce(sum(calls), 0)::int as n from pg_stat_statements where query ~* 'pg_current_wal_insert_lsn' and query !~* 'pg_stat_statements'`;
  return { value, captures: row!.n as number };
}
