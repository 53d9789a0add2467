import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PgBouncer } from "../harness/index.js";
import { pgbouncerAdmin, startPgBouncer, waitFor, withSql } from "../harness/index.js";
import { cluster } from "./bouncer.js";

/** A live process, not a zombie that nobody reaped. */
function running(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

async function accepts(port: number): Promise<boolean> {
  const sql = postgres(`postgres://postgres@127.0.0.1:${port}/pgbouncer`, { max: 1, connect_timeout: 2, fetch_types: false, onnotice: () => {} });
  try {
    await sql.unsafe("show version");
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 0 });
  }
}

describe("PgBouncer harness", () => {
  let bouncer: PgBouncer;
  beforeAll(async () => {
    bouncer = await startPgBouncer(cluster);
  });
  afterAll(() => bouncer.stop());

  it("has one database entry per node, in transaction pooling mode", async () => {
    expect(bouncer.version).toMatch(/^PgBouncer \d+\.\d+/);
    const urls = [bouncer.primaryUrl, ...bouncer.replicaUrls];
    const seen = await Promise.all(urls.map((url) => withSql(url, (sql) => sql`select inet_server_port() as port, pg_is_in_recovery() as standby`.then((r) => r[0]))));
    expect(seen).toEqual([cluster.primary, ...cluster.replicas].map((n, i) => ({ port: n.port, standby: i > 0 })));
    const pools = await pgbouncerAdmin(bouncer.adminUrl, "show pools");
    expect(pools.filter((p) => p.database !== "pgbouncer").map((p) => [p.database, p.pool_mode])).toEqual([["primary", "transaction"], ["r0", "transaction"], ["r1", "transaction"]]);
  });

  it("runs consecutive statements of one client connection on different server connections", async () => {
    const sql = postgres(bouncer.primaryUrl, { max: 1, prepare: false, onnotice: () => {} });
    try {
      const pids: number[] = [];
      for (let i = 0; i < 10; i++) pids.push((await sql`select pg_backend_pid() as pid`)[0]!.pid as number);
      expect(new Set(pids).size).toBeGreaterThan(1);
      // They are the primary's backends, and PgBouncer's server connections.
      const servers = await pgbouncerAdmin(bouncer.adminUrl, "show servers");
      const primaryServers = new Set(servers.filter((s) => s.database === "primary").map((s) => s.remote_pid));
      for (const pid of pids) expect(primaryServers.has(pid)).toBe(true);
      expect(primaryServers.size).toBe(2);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});

describe("PgBouncer harness teardown", () => {
  it("stop() ends the daemon and removes its directory", async () => {
    const b = await startPgBouncer(cluster);
    expect(running(b.pid)).toBe(true);
    await b.stop();
    expect(running(b.pid)).toBe(false);
    expect(existsSync(b.dir)).toBe(false);
    expect(await accepts(b.port)).toBe(false);
  });

  it.each(["throw", "wait"] as const)("a process that dies (%s) takes its PgBouncer with it", async (mode) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "fixtures", "owner.ts"), mode], {
      env: { ...process.env, RYW_CLUSTER: JSON.stringify(cluster) },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.resume();
    await waitFor(() => out.includes("\n") || child.exitCode !== null, 30_000, "the child to start its PgBouncer");
    const started = JSON.parse(out.split("\n")[0]!) as { pid: number; dir: string; port: number };
    expect(running(started.pid)).toBe(true);
    if (mode === "wait") child.kill("SIGTERM");
    else child.stdin.write("go\n");
    const code = await exited;
    expect(code).not.toBe(0);
    expect(running(started.pid)).toBe(false);
    expect(existsSync(started.dir)).toBe(false);
    expect(await accepts(started.port)).toBe(false);
  });
});
