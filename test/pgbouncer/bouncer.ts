import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { inject } from "vitest";
import type { PgBouncer, PgBouncerOptions } from "../harness/index.js";
import { startPgBouncer, withSql } from "../harness/index.js";

export const cluster = inject("cluster");

/**
 * The role that the logging PgBouncer logs in to the primary as: every statement of its server
 * connections goes to the primary's log with its backend pid (log_line_prefix '%m [%p] '), and
 * nobody else's does. It is how the tests see which server connection ran what.
 */
export const LOG_ROLE = "ryw_pgbouncer_log";

/**
 * A PgBouncer in front of the test cluster whose server connections log in as {@link LOG_ROLE};
 * pg_walinspect is ready on the primary.
 */
export async function startBouncer(options: PgBouncerOptions = {}): Promise<PgBouncer> {
  await withSql(cluster.primary.url, async (sql) => {
    // Replicated like any catalog change; the cluster lives only for this test run.
    await sql.unsafe("create extension if not exists pg_walinspect");
    await sql.unsafe(`do $$ begin
      if not exists (select from pg_roles where rolname = '${LOG_ROLE}') then create role ${LOG_ROLE} superuser login; end if;
    end $$`);
    await sql.unsafe(`alter role ${LOG_ROLE} set log_statement = 'all'`);
  });
  return startPgBouncer(cluster, { serverUser: LOG_ROLE, ...options });
}

/** The primary's insert position now, read directly (not through PgBouncer). */
export async function primaryPosition(): Promise<bigint> {
  const [row] = await withSql(cluster.primary.url, (sql) => sql`select pg_current_wal_insert_lsn()::text as lsn`);
  return lsnToBigint(row!.lsn as string);
}

export function lsnToBigint(text: string): bigint {
  const [hi, lo] = text.split("/");
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

/**
 * Where the COMMIT record of transaction `xid` ends in the primary's WAL, read from the WAL itself
 * (pg_walinspect), looking from `from` on. A replica that has replayed up to this position sees
 * the transaction; a recorded position at or past it covers the write.
 */
export async function commitEnd(xid: string, from: bigint): Promise<bigint> {
  const rows = await withSql(cluster.primary.url, (sql) => sql`
    select end_lsn::text as end from pg_get_wal_records_info(${formatLsn(from)}::pg_lsn, pg_current_wal_flush_lsn())
    where resource_manager = 'Transaction' and record_type = 'COMMIT' and xid = ${xid}::xid`);
  if (rows.length !== 1) throw new Error(`[test] expected one COMMIT record of xid ${xid} after ${formatLsn(from)}, found ${rows.length}`);
  return lsnToBigint(rows[0]!.end as string);
}

/** The xid that inserted the Post with this title, from its row on the primary. */
export async function insertingXid(title: string): Promise<string> {
  const [row] = await withSql(cluster.primary.url, (sql) => sql`select xmin::text as xid from "Post" where title = ${title}`);
  if (!row) throw new Error(`[test] no Post titled ${title} on the primary`);
  return row.xid as string;
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export interface Logged {
  pid: number;
  text: string;
}

/**
 * The statements that the primary logs from now on (`statements()` reads them): only server
 * connections of the logging role log them, each line with its backend pid.
 */
export function primaryLog() {
  const file = join(cluster.primary.dataDir, "server.log");
  const offset = statSync(file).size;
  return {
    statements(): Logged[] {
      const text = readFileSync(file).subarray(offset).toString("utf8");
      const out: Logged[] = [];
      for (const line of text.split("\n")) {
        const m = /\[(\d+)\] LOG:\s+(?:statement|execute <unnamed>|execute [^:]+): (.*)$/.exec(line);
        if (m) out.push({ pid: Number(m[1]), text: m[2]! });
      }
      return out;
    },
  };
}

const CAPTURE = /pg_current_wal_insert_lsn\(\)/;
const BEGIN = /^\s*(begin|start transaction)\b/i;
const END = /^\s*(commit|rollback)\b/i;
const WRITE = /^\s*(\/\*.*?\*\/\s*)?(insert|update|delete)\b/i;

/**
 * For each write that ended in `statements` (a COMMIT, or a write statement outside a
 * transaction of its backend), the first position read logged after it: which backend ran the
 * end of the write, and which one the read. (The tracker polls the primary with the same
 * statement: give the router a long `tracker.intervalMs` so that each write's own capture comes
 * next.)
 */
export function capturesAfter(statements: Logged[]): Array<{ endPid: number; capturePid: number | undefined }> {
  const inTransaction = new Set<number>();
  const out: Array<{ endPid: number; capturePid: number | undefined }> = [];
  statements.forEach((s, i) => {
    if (BEGIN.test(s.text)) return void inTransaction.add(s.pid);
    const commit = END.test(s.text) && inTransaction.delete(s.pid) && /^\s*commit/i.test(s.text);
    if (!commit && !(WRITE.test(s.text) && !inTransaction.has(s.pid))) return;
    const capture = statements.slice(i + 1).find((n) => CAPTURE.test(n.text));
    out.push({ endPid: s.pid, capturePid: capture?.pid });
  });
  return out;
}
