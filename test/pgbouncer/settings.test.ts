import { execFileSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { PrismaPg } from "@prisma/adapter-pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FaultProxy, PgBouncer } from "../harness/index.js";
import { pgbouncerAdmin, startPgBouncer, startProxy, waitFor, withSql } from "../harness/index.js";
import { PrismaClient } from "../../packages/prisma/test/generated/prisma/client.js";
import { cluster } from "./bouncer.js";

/**
 * What the drivers need in front of PgBouncer's transaction pooling, found on the installed
 * PgBouncer: a protocol-level named prepared statement lives on one server connection, and the
 * next statement of the same client may run on another one; and PgBouncer accepts a client's
 * login before it has a server connection, so a server that is down fails the first query.
 */
let bouncer: PgBouncer;
/** Between PgBouncer's `flaky` entry and the primary, to take that server away. */
let proxy: FaultProxy;
/** PgBouncer 1.21+ with `max_prepared_statements` > 0 (the default from 1.22) tracks them itself. */
let tracksPrepared: boolean;
beforeAll(async () => {
  proxy = await startProxy({ port: cluster.primary.port });
  bouncer = await startPgBouncer(cluster, {
    databases: { flaky: `host=127.0.0.1 port=${proxy.port} dbname=postgres user=postgres` },
    // Once a login to a server failed, every client of that entry gets the error at once for a
    // minute; a client already waiting for a server gives up after 2 s.
    settings: { server_login_retry: 60, query_wait_timeout: 2 },
  });
  const config = await pgbouncerAdmin(bouncer.adminUrl, "show config");
  tracksPrepared = Number(config.find((row) => row.key === "max_prepared_statements")?.value ?? 0) > 0;
});
afterAll(async () => {
  await bouncer?.stop();
  await proxy?.close().catch(() => {});
});

const MISSING = /ERROR:\s+prepared statement "[^"]+" does not exist/;

/** The primary's log from now on: ERROR lines of statements that failed there. */
function primaryErrors() {
  const file = join(cluster.primary.dataDir, "server.log");
  const offset = statSync(file).size;
  return () => readFileSync(file).subarray(offset).toString("utf8").split("\n").filter((line) => MISSING.test(line));
}

/** 8 workers, 40 parameterized statements each, every 10th in a transaction, over 4 connections. */
async function load(sql: postgres.Sql): Promise<number> {
  let done = 0;
  await Promise.all(Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; i < 40; i++) {
      if (i % 10 === 0) await sql.begin(async (tx) => [await tx`select ${i}::int as i`, await tx`select ${w}::text as w`]);
      else expect(await sql`select ${i}::int as i, ${w}::text as w`).toEqual([{ i, w: String(w) }]);
      done++;
    }
  }));
  return done;
}

describe(`the installed PgBouncer`, () => {
  it("is the version the README names, and has max_prepared_statements only from 1.21 on", async () => {
    const [, major, minor] = /^PgBouncer (\d+)\.(\d+)/.exec(bouncer.version)!.map(Number) as [number, number, number];
    const config = await pgbouncerAdmin(bouncer.adminUrl, "show config");
    const hasMaxPrepared = config.some((row) => row.key === "max_prepared_statements");
    expect(hasMaxPrepared).toBe(major > 1 || minor >= 21);
  });
});

describe("postgres.js", () => {
  it("default (prepare: true): a statement prepared on one server connection is missing on the next one (unless PgBouncer tracks them)", async () => {
    const errors = primaryErrors();
    const sql = postgres(bouncer.primaryUrl, { max: 1, onnotice: () => {} });
    try {
      // One client connection, one after another: each answer is still right, because postgres.js
      // re-sends a statement that failed for that reason; under concurrency it is not that lucky.
      for (let i = 0; i < 10; i++) expect(await sql`select ${i}::int as i`).toEqual([{ i }]);
    } finally {
      await sql.end({ timeout: 1 });
    }
    if (tracksPrepared) expect(errors()).toEqual([]);
    else expect(errors().length).toBeGreaterThan(0);
  });

  it("prepare: false: concurrent statements and transactions all settle, none fails on the server", async () => {
    const errors = primaryErrors();
    const sql = postgres(bouncer.primaryUrl, { max: 4, prepare: false, onnotice: () => {} });
    try {
      expect(await load(sql)).toBe(320);
    } finally {
      await sql.end({ timeout: 1 });
    }
    expect(errors()).toEqual([]);
  });

  // postgres.js 3.4.9 runs its array-type query (fetch_types) on every new connection without
  // handling its failure (porsager/postgres#1192). Straight to a server that is down, the connect
  // fails first; through PgBouncer the login succeeds and that query fails, unhandled: Node exits.
  describe("a server that went down behind PgBouncer", () => {
    beforeAll(async () => {
      // PgBouncer has served this entry (so it answers logins itself), then the server goes away.
      await withSql(bouncer.url("flaky"), (sql) => sql`select 1`);
      await proxy.close();
      await waitFor(async () => (await pgbouncerAdmin(bouncer.adminUrl, "show servers")).every((s) => s.database !== "flaky"), 10_000, "PgBouncer to lose its flaky server connections");
      // The first client after that waits for PgBouncer's failed login and gives up.
      // (fetch_types off here: see the tests.)
      const first = postgres(bouncer.url("flaky"), { max: 1, prepare: false, fetch_types: false, onnotice: () => {} });
      try {
        await expect(first`select 1`).rejects.toThrow();
      } finally {
        await first.end({ timeout: 1 });
      }
    });

    it.each([[true, 1], [false, 0]] as const)("fetch_types: %s: the query fails; rejections nobody handled: %i", (fetchTypes, unhandled) => {
      const out = execFileSync(process.execPath, ["--import", "tsx", join(import.meta.dirname, "fixtures", "fetch-types.ts"), bouncer.url("flaky"), String(fetchTypes)], { encoding: "utf8", timeout: 30_000 });
      const result = JSON.parse(out.trim()) as { caught: string; unhandled: number };
      expect(result.caught).not.toBe("");
      expect(result.unhandled).toBe(unhandled);
    });
  });
});

describe("Prisma (@prisma/adapter-pg, node-postgres)", () => {
  it("default: unnamed statements, nothing to set; `?pgbouncer=true` from older Prisma URLs changes nothing", async () => {
    const errors = primaryErrors();
    for (const url of [bouncer.primaryUrl, `${bouncer.primaryUrl}?pgbouncer=true`]) {
      const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
      try {
        const counts = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 4 === 0 ? prisma.$transaction([prisma.user.count(), prisma.post.count()]).then(([u]) => u) : prisma.user.count({ where: { id: { gt: i } } }))));
        expect(counts.every((n) => Number.isInteger(n))).toBe(true);
      } finally {
        await prisma.$disconnect();
      }
    }
    expect(errors()).toEqual([]);
  });

  it("statementNameGenerator (named statements) fails with 26000 (unless PgBouncer tracks them)", async () => {
    const adapter = new PrismaPg({ connectionString: bouncer.primaryUrl }, { statementNameGenerator: (query) => `ryw_${Buffer.from(query.sql).toString("hex").slice(0, 40)}` });
    const prisma = new PrismaClient({ adapter });
    let failure: unknown;
    try {
      for (let i = 0; i < 10 && failure === undefined; i++) {
        await prisma.user.count({ where: { id: { gt: i } } }).catch((error: unknown) => (failure = error));
      }
    } finally {
      await prisma.$disconnect();
    }
    if (tracksPrepared) return expect(failure).toBeUndefined();
    expect((failure as { meta?: { driverAdapterError?: { cause?: { originalCode?: string } } } })?.meta?.driverAdapterError?.cause?.originalCode).toBe("26000");
  });
});
