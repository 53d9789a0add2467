/**
 * One app server of the chaos checker, as a real process: its own ryw client, tracker and
 * connections, sharing only Redis with the others. Started by the coordinator with fork(); takes
 * requests over IPC and exits when the coordinator goes away.
 */
import { formatLsn } from "@ryw/core";
import type { RywEvent } from "@ryw/core";
import type { ChaosApp } from "./app.js";
import { drizzleApp } from "./drizzle-app.js";
import { prismaApp } from "./prisma-app.js";
import type { AppServerConfig, Ready, Reply, Request, Route, ScopeEvent } from "./protocol.js";

const send = (message: Reply | Ready) => process.send?.(message);
// No orphans: when the coordinator dies (even by SIGKILL) the IPC channel closes.
process.on("disconnect", () => process.exit(0));
// Node would exit on one, and wipe out the rest of the run: they are reported instead, and the
// checker fails on any. (postgres.js 3.4.9 leaks one when a connection closes while it fetches
// array types right after connecting; see drizzle-app.ts.)
const unhandled: string[] = [];
process.on("unhandledRejection", (error) => {
  unhandled.push(String((error as Error)?.stack ?? error).slice(0, 600));
});

const config = JSON.parse(process.env.RYW_CHAOS_APP ?? "") as AppServerConfig;
const app: ChaosApp = config.orm === "prisma" ? await prismaApp(config) : await drizzleApp(config);

// Each user has at most one operation in flight (the coordinator waits for each reply), so the
// events of a scope during an operation belong to that operation.
const watching = new Map<string, { events: ScopeEvent[]; route: Route | undefined }>();
// Events without a scope (store and tracker errors) go to every operation in flight.
app.subscribe((event) => {
  const scope = scopeOf(event);
  const item = { at: Date.now(), type: event.type, detail: describe(event) };
  if (scope === undefined) {
    for (const w of watching.values()) w.events.push(item);
    return;
  }
  const watch = watching.get(scope);
  if (!watch) return;
  watch.events.push(item);
  if (event.type === "route") {
    const d = event.decision;
    watch.route = { target: d.target.kind === "primary" ? "primary" : d.target.name, reason: d.reason, required: d.required === undefined ? undefined : formatLsn(d.required) };
  }
});

process.on("message", (message: Request) => void handle(message));
send({ ready: true, core: import.meta.resolve("@ryw/core") });

async function handle(request: Request): Promise<void> {
  if (request.op === "stats") return void send({ id: request.id, ok: true, op: "stats", stats: app.stats(), unhandled });
  const scope = String(request.user);
  const watch = { events: [] as ScopeEvent[], route: undefined as Route | undefined };
  watching.set(scope, watch);
  try {
    if (request.op === "write") {
      const postId = await app.write(request.user, request.title);
      send({ id: request.id, ok: true, op: "write", postId, events: watch.events });
    } else {
      const found = await app.read(request.user, request.postId, request.title);
      send({ id: request.id, ok: true, op: "read", found, route: watch.route, events: watch.events });
    }
  } catch (error) {
    send({ id: request.id, ok: false, error: explain(error), events: watch.events });
  } finally {
    if (watching.get(scope) === watch) watching.delete(scope);
  }
}

/** An error with what ORMs hide in it: code, meta, the cause chain; Prisma's code frame left out. */
function explain(error: unknown): string {
  const parts: string[] = [];
  for (let e = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const { name, code, message, meta } = e as { name?: string; code?: string; message?: string; meta?: unknown };
    const last = String(message ?? e).trim().split("\n").at(-1);
    parts.push(`${name ?? "Error"}${code ? ` ${code}` : ""}: ${last}${meta ? ` meta=${JSON.stringify(meta)}` : ""}`);
  }
  return parts.join(" <- ").slice(0, 1000);
}

function scopeOf(event: RywEvent): string | undefined {
  if (event.type === "route") return event.decision.scope;
  return "scope" in event ? event.scope : undefined;
}

// Loosely typed on purpose: core's event list grows, and the checker must run against any revision.
function describe(event: RywEvent): string {
  if (event.type === "route") {
    const d = event.decision;
    return `${d.target.kind === "primary" ? "primary" : d.target.name} (${d.reason}${d.required === undefined ? "" : `, needs ${formatLsn(d.required)}`})`;
  }
  const e = event as { type: string; source?: string; replica?: string; position?: bigint; error?: { code?: string; message?: string } };
  const position = typeof e.position === "bigint" ? ` ${formatLsn(e.position)}` : "";
  const error = e.error === undefined ? "" : `: ${e.error?.code ?? ""} ${String(e.error?.message ?? e.error).slice(0, 160)}`;
  return `${e.type}${e.source ? ` ${e.source}` : ""}${e.replica ? ` on ${e.replica}` : ""}${position}${error}`;
}
