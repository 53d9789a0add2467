import type { AppServer } from "./app-servers.js";
import type { Route, ScopeEvent } from "./protocol.js";

/** One write and its read-back by the same user, with the wall-clock times of both. */
export interface Check {
  user: number;
  postId: number;
  title: string;
  writeServer: string;
  readServer: string;
  writeAt: number;
  readAt: number;
  readDoneAt: number;
  onReplica: boolean;
  stale: boolean;
  /** A later read of the user's latest write (a reload), instead of the read-back right after it. */
  reread: boolean;
  /**
   * The write's record missed recordTimeoutMs (an `unshared` event on its app server): ryw
   * promises read-your-writes for it only on that app server until the record lands.
   */
  unshared: boolean;
}

export interface StaleRead extends Check {
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
  /** Every acknowledged write: the post and when the write was sent. */
  acked: Array<{ postId: number; title: string; at: number }>;
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
  /**
   * Share of users that, after each write and its read-back, stop writing for 1 to 4 s and only
   * reload: read that write again every 50 to 200 ms, on random app servers. Unlike the read-back
   * right after a write, such a read can come after a fault that struck since the write (a Redis
   * failover that lost its position), with no newer write of the user to cover it.
   */
  reloaders: number;
  /** Asked before every round, with the read-backs checked so far: true ends the user's loop. */
  stop: (checked: number) => boolean;
}

/**
 * Every user loops: write a Post on a random app server, and once that write is acknowledged,
 * read it back by id, usually on another app server; some users then only reload it for a few
 * seconds. A read that misses the row is stale: the user did not see their own write (unless
 * PostgreSQL lost the write itself in a failover: summary.ts). A rejected or unanswered request
 * is a failed operation.
 */
export async function runUsers(options: UserOptions): Promise<UserResults> {
  const { servers, rand } = options;
  const results: UserResults = { checks: [], stale: [], failed: [], writes: 0, acked: [], routes: {} };
  const pick = () => Math.floor(rand() * servers.length);
  let seq = 0;
  // After a failure, do not spin against a server that keeps failing.
  const pause = () => new Promise((r) => setTimeout(r, 50));

  const reloaders = new Set(options.users.slice(0, Math.round(options.reloaders * options.users.length)));
  const loop = async (user: number) => {
    let latest: { postId: number; title: string; writeServer: string; writeAt: number; unshared: boolean; writeEvents: ScopeEvent[] } | undefined;
    let readingUntil = 0;
    while (!options.stop(results.checks.length)) {
      if (latest && Date.now() < readingUntil) {
        const reader = servers[pick()]!;
        const readAt = Date.now();
        const read = await reader.request({ op: "read", user, postId: latest.postId, title: latest.title });
        const readDoneAt = Date.now();
        if (!read.ok || read.op !== "read") {
          results.failed.push({ user, op: "read", server: reader.name, at: readAt, doneAt: readDoneAt, error: read.ok ? "unexpected reply" : read.error, events: read.ok ? [] : read.events });
          await pause();
          continue;
        }
        record(user, read.route, { user, postId: latest.postId, title: latest.title, writeServer: latest.writeServer, readServer: reader.name, writeAt: latest.writeAt, readAt, readDoneAt, onReplica: false, stale: !read.found, reread: true, unshared: latest.unshared }, latest.writeEvents, read.events);
        await new Promise((r) => setTimeout(r, 50 + rand() * 150));
        continue;
      }
      const w = pick();
      const writer = servers[w]!;
      const writeAt = Date.now();
      const title = `chaos-${user}-${++seq}`;
      const wrote = await writer.request({ op: "write", user, title });
      if (!wrote.ok || wrote.op !== "write") {
        results.failed.push({ user, op: "write", server: writer.name, at: writeAt, doneAt: Date.now(), error: wrote.ok ? "unexpected reply" : wrote.error, events: wrote.ok ? [] : wrote.events });
        await pause();
        continue;
      }
      results.writes++;
      results.acked.push({ postId: wrote.postId, title, at: writeAt });
      const cross = servers.length > 1 && rand() < options.crossShare;
      const reader = servers[cross ? (w + 1 + Math.floor(rand() * (servers.length - 1))) % servers.length : w]!;
      const readAt = Date.now();
      const read = await reader.request({ op: "read", user, postId: wrote.postId, title });
      const readDoneAt = Date.now();
      if (!read.ok || read.op !== "read") {
        results.failed.push({ user, op: "read", server: reader.name, at: readAt, doneAt: readDoneAt, error: read.ok ? "unexpected reply" : read.error, events: read.ok ? [] : read.events });
        await pause();
        continue;
      }
      const unshared = wrote.events.some((e) => e.type === "unshared");
      latest = { postId: wrote.postId, title, writeServer: writer.name, writeAt, unshared, writeEvents: wrote.events };
      if (reloaders.has(user)) readingUntil = Date.now() + 1000 + rand() * 3000;
      record(user, read.route, { user, postId: wrote.postId, title, writeServer: writer.name, readServer: reader.name, writeAt, readAt, readDoneAt, onReplica: false, stale: !read.found, reread: false, unshared }, wrote.events, read.events);
      if (options.thinkMs > 0) await new Promise((r) => setTimeout(r, -Math.log(1 - rand()) * options.thinkMs));
    }
  };
  const record = (user: number, route: Route | undefined, check: Check, writeEvents: ScopeEvent[], readEvents: ScopeEvent[]) => {
    const key = route ? `${route.target}:${route.reason}` : "unrouted";
    results.routes[key] = (results.routes[key] ?? 0) + 1;
    check.onReplica = route !== undefined && route.target !== "primary";
    results.checks.push(check);
    if (check.stale) results.stale.push({ ...check, route, writeEvents, readEvents });
  };
  await Promise.all(options.users.map(loop));
  return results;
}
