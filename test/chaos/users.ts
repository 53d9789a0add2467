import type { AppServer } from "./app-servers.js";
import type { Route, ScopeEvent } from "./protocol.js";

/** One write and its read-back by the same user, with the wall-clock times of both. */
export interface Check {
  user: number;
  writeServer: string;
  readServer: string;
  writeAt: number;
  readAt: number;
  readDoneAt: number;
  onReplica: boolean;
  stale: boolean;
  /**
   * The write's record missed recordTimeoutMs (an `unshared` event on its app server): ryw
   * promises read-your-writes for it only on that app server until the record lands.
   */
  unshared: boolean;
}

export interface StaleRead extends Check {
  postId: number;
  route: Route | undefined;
  writeEvents: ScopeEvent[];
  readEvents: ScopeEvent[];
}

export interface FailedOp {
  user: number;
  op: "write" | "read";
  server: string;
  at: number;
  doneAt: number;
  error: string;
  events: ScopeEvent[];
}

export interface UserResults {
  checks: Check[];
  stale: StaleRead[];
  failed: FailedOp[];
  writes: number;
  routes: Record<string, number>;
}

export interface UserOptions {
  users: number[];
  servers: AppServer[];
  rand: () => number;
  /** Share of read-backs sent to a different app server than the write. */
  crossShare: number;
  /** Mean pause between a user's rounds, in ms (exponential); 0 for none. */
  thinkMs: number;
  /** Asked before every round, with the read-backs checked so far: true ends the user's loop. */
  stop: (checked: number) => boolean;
}

/**
 * Every user loops: write a Post on a random app server, and once that write is acknowledged,
 * read it back by id, usually on another app server. A read-back that misses the row is stale:
 * the user did not see their own write. A rejected or unanswered request is a failed operation.
 */
export async function runUsers(options: UserOptions): Promise<UserResults> {
  const { servers, rand } = options;
  const results: UserResults = { checks: [], stale: [], failed: [], writes: 0, routes: {} };
  const pick = () => Math.floor(rand() * servers.length);
  let seq = 0;
  // After a failure, do not spin against a server that keeps failing.
  const pause = () => new Promise((r) => setTimeout(r, 50));

  const loop = async (user: number) => {
    while (!options.stop(results.checks.length)) {
      const w = pick();
      const writer = servers[w]!;
      const writeAt = Date.now();
      const wrote = await writer.request({ op: "write", user, title: `chaos-${user}-${++seq}` });
      if (!wrote.ok || wrote.op !== "write") {
        results.failed.push({ user, op: "write", server: writer.name, at: writeAt, doneAt: Date.now(), error: wrote.ok ? "unexpected reply" : wrote.error, events: wrote.ok ? [] : wrote.events });
        await pause();
        continue;
      }
      results.writes++;
      const cross = servers.length > 1 && rand() < options.crossShare;
      const reader = servers[cross ? (w + 1 + Math.floor(rand() * (servers.length - 1))) % servers.length : w]!;
      const readAt = Date.now();
      const read = await reader.request({ op: "read", user, postId: wrote.postId });
      const readDoneAt = Date.now();
      if (!read.ok || read.op !== "read") {
        results.failed.push({ user, op: "read", server: reader.name, at: readAt, doneAt: readDoneAt, error: read.ok ? "unexpected reply" : read.error, events: read.ok ? [] : read.events });
        await pause();
        continue;
      }
      const route = read.route;
      const key = route ? `${route.target}:${route.reason}` : "unrouted";
      results.routes[key] = (results.routes[key] ?? 0) + 1;
      const check: Check = { user, writeServer: writer.name, readServer: reader.name, writeAt, readAt, readDoneAt, onReplica: route !== undefined && route.target !== "primary", stale: !read.found, unshared: wrote.events.some((e) => e.type === "unshared") };
      results.checks.push(check);
      if (check.stale) results.stale.push({ ...check, postId: wrote.postId, route, writeEvents: wrote.events, readEvents: read.events });
      if (options.thinkMs > 0) await new Promise((r) => setTimeout(r, -Math.log(1 - rand()) * options.thinkMs));
    }
  };
  await Promise.all(options.users.map(loop));
  return results;
}
