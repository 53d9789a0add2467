import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { RedisClusterInfo } from "./harness/index.js";
import { clusterNodes, keySlot, ownerOf, startRedisCluster, stopRedisCluster } from "./harness/index.js";

const harness = join(import.meta.dirname, "harness/index.ts");

/** Is a process running (not gone, and not an unreaped zombie)? */
function running(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

const pids = (info: RedisClusterInfo) => info.nodes.map((n) => Number(readFileSync(n.pidFile, "utf8").trim()));

/** Runs `body` in a child process that started a Redis Cluster; resolves with what it printed. */
function child(body: string, onCluster?: (info: RedisClusterInfo, kill: () => void) => void): Promise<{ info: RedisClusterInfo; code: number | null; signal: string | null }> {
  const dir = mkdtempSync(join(tmpdir(), "ryw-rc-child-"));
  const file = join(dir, "child.mts");
  writeFileSync(file, `import { startRedisCluster } from ${JSON.stringify(harness)};\nconst info = await startRedisCluster();\nconsole.log(JSON.stringify(info));\n${body}\n`);
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--import", "tsx", file], { cwd: join(import.meta.dirname, ".."), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let info: RedisClusterInfo | undefined;
    proc.stdout.on("data", (chunk: Buffer) => {
      out += chunk;
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (!info && line && out.includes("\n")) {
        info = JSON.parse(line) as RedisClusterInfo;
        onCluster?.(info, () => proc.kill("SIGKILL"));
      }
    });
    proc.once("error", reject);
    proc.once("exit", (code, signal) => {
      rmSync(dir, { recursive: true, force: true });
      info ? resolve({ info, code, signal }) : reject(new Error(`child printed no cluster (${code ?? signal})`));
    });
  });
}

describe("Redis Cluster harness", { timeout: 120_000 }, () => {
  it("starts 3 masters with a replica each, all agreeing, and removes every process and file", async () => {
    const info = await startRedisCluster();
    try {
      const view = await clusterNodes(info);
      const masters = view.filter((n) => n.role === "master");
      expect(masters).toHaveLength(3);
      expect(masters.reduce((a, m) => a + m.slots.reduce((b, [lo, hi]) => b + hi - lo + 1, 0), 0)).toBe(16384);
      for (const m of masters) expect(view.filter((n) => n.masterId === m.id)).toHaveLength(1);
      const owner = await ownerOf(info, "user:42");
      const slot = await keySlot(info, "user:42");
      expect(masters.find((m) => m.port === owner.port)!.slots.some(([a, b]) => a <= slot && slot <= b)).toBe(true);
      expect(pids(info).every(running)).toBe(true);
    } finally {
      const before = pids(info);
      await stopRedisCluster(info);
      expect(before.filter(running)).toEqual([]);
      expect(existsSync(info.dir)).toBe(false);
    }
  });

  it("goes away with a process that fails, and a killed process's cluster is swept by the next start", async () => {
    // An uncaught error: the exit handler stops the cluster.
    let seen: number[] = [];
    const failed = await child('throw new Error("a test failed");', (info) => (seen = pids(info)));
    expect(failed.code).not.toBe(0);
    expect(seen.filter(running)).toEqual([]);
    expect(existsSync(failed.info.dir)).toBe(false);
    // kill -9 leaves no handler to run: the next start removes what it left.
    const killed = await child("await new Promise(() => {});", (info, kill) => {
      seen = pids(info);
      kill();
    });
    expect(killed.signal).toBe("SIGKILL");
    expect(existsSync(killed.info.dir)).toBe(true);
    const next = await startRedisCluster();
    await stopRedisCluster(next);
    expect(seen.filter(running)).toEqual([]);
    expect(existsSync(killed.info.dir)).toBe(false);
  });
});
