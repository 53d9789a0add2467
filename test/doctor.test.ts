import { execFile, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { pauseReplay, resumeReplay, setApplyDelay, startRedis, stopRedis, waitForReplicas, withSql } from "./harness/index.js";

// `ryw doctor` is checked as users run it: the built bin in a child process, configured by env vars.
const cluster = inject("cluster");
const root = join(import.meta.dirname, "..");
const CLI = join(root, "packages/core/dist/esm/cli.js");
const PNPM_BIN = join(root, "node_modules/.bin/ryw");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface JsonCheck {
  id: string;
  target: string;
  status: "pass" | "warn" | "fail" | "skip";
  summary: string;
  note?: string;
  fix?: string;
  data?: Record<string, unknown>;
}

interface JsonReport {
  ok: boolean;
  counts: Record<JsonCheck["status"], number>;
  nodes: { primary: string; replicas: Array<{ name: string; url: string }>; redis: string | null };
  timeoutMs: number;
  ttlMs: number;
  checks: JsonCheck[];
  durationMs: number;
}

const clusterEnv = () => ({
  DATABASE_URL: cluster.primary.url,
  DATABASE_REPLICA_URLS: cluster.replicas.map((r) => r.url).join(","),
  REDIS_URL: cluster.redis!.url,
});

function run(args: string[], env: Record<string, string>, command: [string, ...string[]] = [process.execPath, CLI]): Promise<Run> {
  const [file, ...pre] = command;
  return new Promise((resolve) => {
    // A fresh environment: nothing from the test runner may leak into what the doctor sees.
    execFile(file, [...pre, ...args], { env: { PATH: process.env.PATH!, NO_COLOR: "1", ...env }, encoding: "utf8", timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr });
    });
  });
}

async function runJson(args: string[], env: Record<string, string>): Promise<{ result: Run; report: JsonReport }> {
  const result = await run(["doctor", "--json", ...args], env);
  return { result, report: JSON.parse(result.stdout) as JsonReport };
}

const find = (report: JsonReport, id: string, target: string): JsonCheck => {
  const check = report.checks.find((c) => c.id === id && c.target === target);
  expect(check, `${id} ${target} in ${report.checks.map((c) => `${c.id}/${c.target}`).join(", ")}`).toBeDefined();
  return check!;
};

/** Every failure comes with a one-line fix. */
const expectFixes = (report: JsonReport) => {
  for (const c of report.checks.filter((c) => c.status === "fail")) {
    expect(c.fix, `${c.id} ${c.target}`).toMatch(/\S/);
    expect(c.fix).not.toContain("\n");
  }
};

/** A port with nothing listening on it. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once("error", reject);
  });
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm --filter @ryw/core build first`);
});

describe("ryw doctor on a healthy cluster", () => {
  it("exits 0 through the package's bin and prints an aligned table", async () => {
    const command: [string, ...string[]] = existsSync(PNPM_BIN) ? [PNPM_BIN] : [process.execPath, CLI];
    const { code, stdout, stderr } = await run(["doctor"], clusterEnv(), command);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const header = stdout.split("\n").find((line) => line.includes("CHECK"))!;
    expect(header).toMatch(/CHECK\s+TARGET\s+RESULT/);
    const rows = stdout.split("\n").filter((line) => /^ {2}[✔!✘–] /.test(line));
    expect(rows.length).toBeGreaterThanOrEqual(16);
    // Aligned: every row's target starts in the header's TARGET column.
    const targetColumn = header.indexOf("TARGET");
    for (const row of rows) expect(row.slice(targetColumn - 2, targetColumn), row).toBe("  ");
    expect(stdout).not.toContain("✘");
    for (const target of ["primary", "replica-0", "replica-1", "redis"]) expect(stdout).toMatch(new RegExp(`✔ connect\\s+${target}\\s`));
    expect(stdout).toMatch(/0 failed/);
  });

  it("--json has every check, all passing, with the measured values", async () => {
    const { result, report } = await runJson([], clusterEnv());
    expect(result.code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.counts.fail).toBe(0);
    expect(report.nodes).toEqual({ primary: cluster.primary.url, replicas: cluster.replicas.map((r, i) => ({ name: `replica-${i}`, url: r.url })), redis: cluster.redis!.url });
    expect(report.timeoutMs).toBe(5000);
    expect(report.ttlMs).toBe(300_000);

    for (const target of ["primary", "replica-0", "replica-1"]) {
      const connect = find(report, "connect", target);
      expect(connect.status).toBe("pass");
      expect(connect.data).toMatchObject({ version: expect.any(String), connectMs: expect.any(Number), roundTripMs: expect.any(Number) });
    }
    expect(find(report, "connect", "redis").status).toBe("pass");
    expect(find(report, "role", "primary").status).toBe("pass");
    expect(find(report, "wal_level", "primary")).toMatchObject({ status: "pass", data: { wal_level: "replica" } });
    expect(find(report, "synchronous_commit", "primary")).toMatchObject({ status: "pass", data: { synchronous_commit: "on" } });
    expect(find(report, "eviction", "redis")).toMatchObject({ status: "pass", data: { maxmemoryPolicy: "noeviction" } });
    expect(find(report, "failover-detection", "redis")).toMatchObject({ status: "pass", data: { infoReplication: true, role: "master" } });
    expect(find(report, "ttl", "store").status).toBe("pass");
    const [row] = await withSql(cluster.primary.url, (sql) => sql`select system_identifier::text as id from pg_control_system()`);
    const primaryId = row!.id as string;
    for (const target of ["replica-0", "replica-1"]) {
      expect(find(report, "replication", target)).toMatchObject({ status: "pass", data: { inRecovery: true, systemIdentifier: primaryId, primarySystemIdentifier: primaryId, receiver: "streaming" } });
      expect(find(report, "hot_standby_feedback", target)).toMatchObject({ status: "pass", data: { hot_standby_feedback: "on" } });
      expect(find(report, "recovery_min_apply_delay", target)).toMatchObject({ status: "pass", data: { recovery_min_apply_delay_ms: 0 } });
      // Lag and probe are timings: a slow moment on a busy machine may turn them into warnings.
      const lag = find(report, "lag", target);
      expect(["pass", "warn"]).toContain(lag.status);
      expect(lag.data).toMatchObject({ behindBytes: expect.any(Number), lagMs: expect.any(Number), paused: false });
      const probe = find(report, "probe", target);
      expect(["pass", "warn"]).toContain(probe.status);
      expect(probe.data).toMatchObject({ visibleMs: expect.any(Number), target: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/) });
    }
    for (const c of report.checks) expect(c.status === "pass" || c.id === "lag" || c.id === "probe", `${c.id} ${c.target}: ${c.status} ${c.summary}`).toBe(true);
  });
});

describe("ryw doctor on a broken cluster", () => {
  it("a paused replica fails the probe, with the fix", async () => {
    await pauseReplay(cluster, 1);
    try {
      const { result, report } = await runJson(["--timeout", "1500"], clusterEnv());
      expect(result.code).toBe(1);
      expect(report.ok).toBe(false);
      const probe = find(report, "probe", "replica-1");
      expect(probe.status).toBe("fail");
      expect(probe.summary).toMatch(/not visible within 1.5 s/);
      expect(probe.fix).toMatch(/pg_wal_replay_resume\(\)/);
      expect(find(report, "lag", "replica-1")).toMatchObject({ status: "warn", data: { paused: true } });
      expect(find(report, "probe", "replica-0").status).not.toBe("fail");
      expectFixes(report);

      const text = await run(["doctor", "--timeout", "1500"], clusterEnv());
      expect(text.code).toBe(1);
      const lines = text.stdout.split("\n");
      const row = lines.findIndex((line) => /✘ probe\s+replica-1\s/.test(line));
      expect(row).toBeGreaterThan(0);
      expect(lines[row + 1]).toMatch(/^\s+fix: Replay is paused on replica-1/);
    } finally {
      await resumeReplay(cluster, 1);
      await waitForReplicas(cluster);
    }
  });

  it("Redis down fails the Redis check, and the rest still runs", async () => {
    await stopRedis(cluster);
    try {
      const { result, report } = await runJson([], clusterEnv());
      expect(result.code).toBe(1);
      const redis = find(report, "connect", "redis");
      expect(redis.status).toBe("fail");
      expect(redis.summary).toMatch(/ECONNREFUSED/);
      expect(redis.fix).toMatch(/REDIS_URL/);
      expect(report.checks.filter((c) => c.status === "fail").map((c) => `${c.id}/${c.target}`)).toEqual(["connect/redis"]);
      expect(find(report, "probe", "replica-0").status).not.toBe("fail");
      expectFixes(report);
    } finally {
      await startRedis(cluster);
    }
  });

  it("a Redis user that may not run INFO: warns that lost positions go unnoticed, with the ACL fix", async () => {
    const admin = new Redis(cluster.redis!.url);
    const user = `ryw-noinfo-${process.pid}`;
    try {
      await admin.call("ACL", "SETUSER", user, "on", ">doctor-pw", "~*", "&*", "+@all", "-info");
      const url = new URL(cluster.redis!.url);
      url.username = user;
      url.password = "doctor-pw";
      const { report } = await runJson([], { ...clusterEnv(), REDIS_URL: url.toString() });
      expect(find(report, "connect", "redis").status).toBe("pass");
      expect(find(report, "failover-detection", "redis")).toMatchObject({ status: "warn", data: { infoReplication: false }, fix: expect.stringMatching(/ACL SETUSER <user> \+info/) });
      expect(find(report, "eviction", "redis").status).toBe("warn");
    } finally {
      await admin.call("ACL", "DELUSER", user);
      await admin.quit();
    }
  });

  it("a bad primary URL fails connectivity with a clear message, and skips what needs the primary", async () => {
    const port = await closedPort();
    const { result, report } = await runJson([], { ...clusterEnv(), DATABASE_URL: `postgres://postgres:hunter2@127.0.0.1:${port}/postgres` });
    expect(result.code).toBe(1);
    const primary = find(report, "connect", "primary");
    expect(primary.status).toBe("fail");
    expect(primary.summary).toBe(`cannot connect: connect ECONNREFUSED 127.0.0.1:${port}`);
    expect(primary.fix).toMatch(/Nothing listens.*DATABASE_URL/);
    expect(report.nodes.primary).toBe(`postgres://postgres:***@127.0.0.1:${port}/postgres`);
    expect(result.stdout).not.toContain("hunter2");
    expect(find(report, "probe", "replica-0").status).toBe("skip");
    expect(find(report, "replication", "replica-0").status).toBe("skip");
    expect(find(report, "connect", "replica-0").status).toBe("pass");
    expectFixes(report);
  });

  it("a bad replica URL or a replica that is really the primary fails that replica only", async () => {
    const port = await closedPort();
    const { result, report } = await runJson(["--replicas", `postgres://postgres@127.0.0.1:${port}/postgres,${cluster.replicas[0]!.url},${cluster.primary.url}`], clusterEnv());
    expect(result.code).toBe(1);
    expect(find(report, "connect", "replica-0")).toMatchObject({ status: "fail", summary: expect.stringMatching(/ECONNREFUSED/) });
    expect(find(report, "connect", "replica-0").fix).toMatch(/--replicas/);
    expect(find(report, "probe", "replica-1").status).not.toBe("fail");
    expect(find(report, "replication", "replica-2")).toMatchObject({ status: "fail", summary: expect.stringMatching(/^not in recovery/) });
    expectFixes(report);
  });

  it("an evicting Redis policy fails; a deliberate apply delay warns and, above the TTL, fails the TTL check", async () => {
    const redisCli = (...args: string[]) => spawnSync("redis-cli", ["-p", String(cluster.redis!.port), ...args], { encoding: "utf8" }).stdout.trim();
    redisCli("config", "set", "maxmemory", "100mb");
    redisCli("config", "set", "maxmemory-policy", "allkeys-lru");
    await setApplyDelay(cluster, 0, 300);
    try {
      const { result, report } = await runJson(["--ttl", "250"], clusterEnv());
      expect(result.code).toBe(1);
      expect(find(report, "eviction", "redis")).toMatchObject({ status: "fail", data: { maxmemoryPolicy: "allkeys-lru" }, fix: expect.stringMatching(/noeviction/) });
      expect(find(report, "recovery_min_apply_delay", "replica-0")).toMatchObject({ status: "warn", data: { recovery_min_apply_delay_ms: 300 }, note: expect.stringMatching(/primary for at least 300 ms/) });
      expect(find(report, "ttl", "store")).toMatchObject({ status: "fail", data: { ttlMs: 250, worstReplica: "replica-0" }, fix: expect.stringMatching(/ttlMs above/) });
      expect(find(report, "probe", "replica-0").status).not.toBe("fail");
      expectFixes(report);
    } finally {
      redisCli("config", "set", "maxmemory-policy", "noeviction");
      redisCli("config", "set", "maxmemory", "0");
      await setApplyDelay(cluster, 0, 0);
    }
  });
});

describe("ryw doctor usage", () => {
  it("without DATABASE_URL, or with a bad flag, exits 2 and says what is missing", async () => {
    const missing = await run(["doctor"], {});
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^\[ryw\] .*DATABASE_URL/);
    const badFlag = await run(["doctor", "--timeout", "soon"], clusterEnv());
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/--timeout must be a positive number of milliseconds/);
    const help = await run(["--help"], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: ryw doctor/);
  });

  it("without the optional postgres.js and ioredis packages, says which to install", async () => {
    // The package as an app without those peers would have it: no node_modules next to it.
    const dir = mkdtempSync(join(tmpdir(), "ryw-doctor-bare-"));
    try {
      const pkg = join(dir, "node_modules/@ryw/core");
      cpSync(join(root, "packages/core/dist"), join(pkg, "dist"), { recursive: true });
      cpSync(join(root, "packages/core/package.json"), join(pkg, "package.json"));
      const result = await run(["doctor", "--json"], clusterEnv(), [process.execPath, join(pkg, "dist/esm/cli.js")]);
      expect(result.code).toBe(1);
      const report = JSON.parse(result.stdout) as JsonReport;
      expect(find(report, "connect", "primary")).toMatchObject({ status: "fail", summary: expect.stringMatching(/needs the `postgres` package/), fix: expect.stringMatching(/^npm install postgres/) });
      expect(find(report, "connect", "redis")).toMatchObject({ status: "fail", fix: expect.stringMatching(/^npm install ioredis/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("without REDIS_URL or replicas, warns but does not fail", async () => {
    const { result, report } = await runJson([], { DATABASE_URL: cluster.primary.url });
    expect(result.code).toBe(0);
    expect(find(report, "store", "store").status).toBe("warn");
    expect(find(report, "replication", "replicas").status).toBe("warn");
    expect(report.counts.fail).toBe(0);
  });
});
