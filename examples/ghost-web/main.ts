/**
 * The ghost post in a browser: a small web app where a user posts and the page reloads at once.
 *
 * `pnpm demo:web [--port N] [--lag MS] [--pg system|embedded|auto]`, or
 * `node --import tsx examples/ghost-web/main.ts ...` (one process, so that Ctrl-C reaches the
 * code that removes the cluster).
 *
 * Starts a primary and two streaming replicas on free ports (r0 replays `--lag` ms behind,
 * 500 by default) and a position store (Redis from REDIS_URL, else a private redis-server when
 * one is on the PATH, else this process's memory), then serves the app on http://127.0.0.1:3000
 * (`--port`; a free port when 3000 is taken). `?router=naive` routes reads round-robin to the
 * replicas; `?router=ryw` routes them with @ryw, scoped by a session cookie. Ctrl-C stops the
 * server and removes the cluster.
 */
import { spawnSync } from "node:child_process";
import { MemoryStore, RedisStore } from "@ryw/core";
import type { PositionStore } from "@ryw/core";
import type { PgSource } from "../../test/harness/pg-bin.js";
import { applyMigrations, startCluster, stopCluster, waitForReplicas } from "../../test/harness/index.js";
import { startGhostWeb } from "./server.js";
import type { GhostWeb } from "./server.js";

const args = parseArgs(process.argv.slice(2));
const out = (line = "") => process.stdout.write(`${line}\n`);
const started = Date.now();
const redisUrl = process.env.REDIS_URL || undefined;
const hasRedisServer = !redisUrl && spawnSync("sh", ["-c", "command -v redis-server"]).status === 0;

out("The ghost post in a browser: post, and the page reloads at once.\n");
const cluster = await startCluster({ replicas: 2, redis: hasRedisServer, applyDelayMs: { 0: args.lag }, pg: args.pg }).catch((error: unknown) => {
  console.error((error as Error)?.message ?? error);
  return process.exit(1);
});
let app: GhostWeb | undefined;
try {
  await applyMigrations(cluster);
  await waitForReplicas(cluster);
  const [r0, r1] = cluster.replicas;
  const url = redisUrl ?? cluster.redis?.url;
  const store: PositionStore = url ? new RedisStore({ url, prefix: `ryw-web:${process.pid}-${started}:` }) : new MemoryStore();
  // Connect before the first request: a lookup that opens the connection can exceed
  // storeTimeoutMs, and the router would then skip the store for a while.
  await store.get("connect");
  const notes = { [r0!.name]: `replays ${args.lag} ms behind`, [r1!.name]: "keeps up" };
  app = await startGhostWeb({ cluster, store, port: args.port, notes }).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== "EADDRINUSE" || args.port === 0) throw error;
    out(`port ${args.port} is taken; using a free one`);
    return startGhostWeb({ cluster, store, port: 0, notes });
  });
  out(`cluster: primary :${cluster.primary.port}, replicas ${r0!.name} :${r0!.port} (replays ${args.lag} ms behind) and ${r1!.name} :${r1!.port}`);
  out(`         up in ${((Date.now() - started) / 1000).toFixed(1)} s, in ${cluster.dir}`);
  out(`store:   ${redisUrl ? "Redis from REDIS_URL" : cluster.redis ? `a private redis-server on :${cluster.redis.port}` : "in-memory (MemoryStore): redis-server is not on the PATH"}`);
  out("");
  out(`open     ${app.url}/?router=naive   naive routing: every read to the next replica in turn`);
  out(`         ${app.url}/?router=ryw     @ryw: a replica that has replayed your last write, else the primary`);
  out("");
  out("Post a few times under each. Ctrl-C stops the server and removes the cluster.");
  // Runs until Ctrl-C: the harness's signal handler then removes the cluster and exits.
  await new Promise(() => {});
} catch (error) {
  console.error(error);
  await app?.close();
  await stopCluster(cluster);
  process.exit(1);
}

function parseArgs(argv: string[]): { port: number; lag: number; pg: PgSource | undefined } {
  const value = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const fail = (message: string): never => {
    console.error(`${message}\nusage: ghost-web [--port N] [--lag MS] [--pg system|embedded|auto]`);
    process.exit(2);
  };
  const port = Number(value("port") ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a port number, got ${value("port")}`);
  const lag = Number(value("lag") ?? 500);
  if (!Number.isInteger(lag) || lag < 1) fail(`--lag must be a positive number of milliseconds, got ${value("lag")}`);
  const pg = value("pg");
  if (pg !== undefined && !["system", "embedded", "auto"].includes(pg)) fail(`--pg must be system, embedded or auto, got ${pg}`);
  return { port, lag, pg: pg as PgSource | undefined };
}
