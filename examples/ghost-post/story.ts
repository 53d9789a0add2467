import { formatLsn } from "@ryw/core";
import type { RouteDecision, RywEvent } from "@ryw/core";
import type { DemoRouter } from "./routers.js";
import type { serverCounters } from "./servers.js";
import { grown } from "./servers.js";

/** A user of the story: a row in "User" and a scope. */
export interface DemoUser {
  id: number;
  name: string;
}

/** How long after the first look the user reloads the feed. */
export const RELOAD_MS = 150;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One round of the story: the user posts, the app shows the feed at once (the redirect after
 * the POST), and the user reloads it RELOAD_MS later. A feed without the new post is a ghost.
 */
async function round(router: DemoRouter, user: DemoUser, n: number, look: (label: string, title: string) => Promise<void>): Promise<string> {
  const title = `${user.name}'s post #${n}`;
  await router.write(user.id, title);
  await look("feed at once", title);
  await sleep(RELOAD_MS);
  await look(`reload +${RELOAD_MS} ms`, title);
  return title;
}

/**
 * Plays one round alone and prints where each request went and why. The reason comes from the
 * router's own events; a router without events is located by asking the servers which of them
 * ran the read.
 */
export async function traceRound(router: DemoRouter, user: DemoUser, counters: ReturnType<typeof serverCounters>, out: (line: string) => void): Promise<void> {
  const scope = String(user.id);
  const events: RywEvent[] = [];
  const unsubscribe = router.subscribe?.((event) => {
    if ((event.type === "route" ? event.decision.scope : event.scope) === scope) events.push(event);
  });
  const row = (what: string, where: string, why: string) => out(`    ${what.padEnd(40)} ${where.padEnd(8)} ${why}`);
  try {
    let first = true;
    await round(router, user, 0, async (label, title) => {
      // The first look comes right after the write: report the write first.
      if (first) {
        const recorded = events.find((e) => e.type === "record");
        const remembered = router.strategy === "time-window" ? "the time of the write" : recorded?.type === "record" ? `WAL position ${formatLsn(recorded.position)}` : undefined;
        row(`${user.name} posts "${title}"`, "primary", remembered ? `acknowledged once @ryw remembers ${remembered} for ${user.name}` : "acknowledged");
        first = false;
      }
      events.length = 0;
      const before = router.subscribe ? undefined : await counters.read();
      const titles = await router.feed(user.id);
      const seen = titles.includes(title) ? "post shown" : "GHOST: post missing";
      const route = events.find((e): e is Extract<RywEvent, { type: "route" }> => e.type === "route");
      if (route) row(`  ${label}: ${seen}`, targetName(route.decision), explain(route.decision, router));
      else row(`  ${label}: ${seen}`, grown(before!, await counters.read()).join("+") || "?", "any replica: the router does not know the lag (located via pg_stat_statements)");
    });
  } finally {
    unsubscribe?.();
  }
}

export interface RoundsResult {
  reads: number;
  ghosts: number;
  readMs: number[];
  writeMs: number[];
}

/** `rounds` rounds shared by every user, each user playing its rounds one after another. */
export async function playRounds(router: DemoRouter, users: DemoUser[], rounds: number): Promise<RoundsResult> {
  const result: RoundsResult = { reads: 0, ghosts: 0, readMs: [], writeMs: [] };
  let next = 1;
  const timed = async <T>(samples: number[], fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const value = await fn();
    samples.push(performance.now() - t0);
    return value;
  };
  const timedRouter: DemoRouter = { ...router, write: (id, title) => timed(result.writeMs, () => router.write(id, title)) };
  await Promise.all(
    users.map(async (user) => {
      while (next <= rounds) {
        await round(timedRouter, user, next++, async (_label, title) => {
          const titles = await timed(result.readMs, () => router.feed(user.id));
          result.reads++;
          if (!titles.includes(title)) result.ghosts++;
        });
      }
    }),
  );
  return result;
}

function targetName(decision: RouteDecision): string {
  return decision.target.kind === "primary" ? "primary" : decision.target.name;
}

function explain(decision: RouteDecision, router: DemoRouter): string {
  const needs = decision.required === undefined ? "" : formatLsn(decision.required);
  switch (decision.reason) {
    case "caught-up":
      return `caught-up: ${targetName(decision)} has replayed ${needs}`;
    case "lagging":
      return `lagging: no replica has replayed ${needs} yet`;
    case "in-window":
      return "in-window: the write is less than 100 ms old";
    case "window-passed":
      return "window-passed: 100 ms are over, so any replica (its lag is not checked)";
    case "no-token":
      // Under "time-window" a write is remembered for the window only.
      return router.strategy === "time-window" ? "no-token: the 100 ms window is over, so any replica, whatever its lag" : "no-token: no write remembered for this user";
    default:
      return decision.reason;
  }
}
