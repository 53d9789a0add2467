import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");
const live = new Set<ChildProcess>();

/**
 * Forks a TypeScript file of this directory under tsx. The children load @ryw/* from sources,
 * like the test runner does: `tsconfig`'s `paths` map them (tsx applies the mapping; by default
 * test/tsconfig.json, the working tree), so the checker never runs a stale `dist` and needs no
 * build step.
 */
export function forkTs(file: string, env: Record<string, string>, tsconfig = join(ROOT, "test/tsconfig.json")): ChildProcess {
  const child = fork(join(import.meta.dirname, file), [], {
    cwd: ROOT,
    execArgv: ["--import", "tsx"],
    env: { ...process.env, TSX_TSCONFIG_PATH: tsconfig, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    serialization: "advanced",
  });
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

/** SIGKILL, then waits for the exit. Safe to call on a child that already exited. */
export function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGKILL");
  return exited;
}

// Children also exit by themselves when the IPC channel closes; this covers a normal exit too.
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});
