import { readdirSync, readFileSync } from "node:fs";

/** The pid on a pid file's first line (PostgreSQL's postmaster.pid, redis-server's, pgbouncer's), if any. */
export function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A daemon is nobody's child here: killed, it lingers as an unreaped zombie, which still
  // "exists" for kill(0) but runs nothing.
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    // Unreadable (no /proc, or it exited just now): kill(0)'s answer stands.
    return true;
  }
}

/** Signals `pid` if it still runs; one that exits meanwhile is no error. */
export function kill(pid: number | undefined, signal: NodeJS.Signals = "SIGKILL"): void {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid!, signal);
  } catch {
    // already gone
  }
}

/** The direct children of `pid`, as /proc lists them now. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/<pid>/stat, after the parenthesised command name, is the parent pid.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}
