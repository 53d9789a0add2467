import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RouteDecision } from "../../src/index.js";
import { createRyw, RedisStore } from "../../src/index.js";
import { pauseReplay, resumeReplay, withSql } from "../../../../test/harness/index.js";
import { connect } from "../clients.js";
import type { RunningApp } from "./apps.js";
import { Client, expressFramework } from "./apps.js";

/**
 * A real Next.js server (`next dev`, Turbopack) on the tiny app in ./next-app, driven over HTTP.
 * Its route handlers use `rywNext` from the sources, and its own routers and connections: it is
 * one more app server of the cluster, sharing Redis with an Express instance of this process.
 */
const cluster = inject("cluster");
const appDir = join(import.meta.dirname, "next-app");
const nextBin = createRequire(join(appDir, "package.json")).resolve("next/dist/bin/next");
const TOKEN_KEY = "next-route-handler-test-key-0123456789";
const prefix = `http-next-${process.pid}:`;

let next: { url: string; child: ChildProcess; log: string[]; distDir: string; readyMs: number } | undefined;
const cleanups: Array<() => Promise<unknown>> = [];

function killTree(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // `next dev` forks its server: the whole process group goes.
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, s);
    } catch {
      // already gone
    }
  };
  signal("SIGTERM");
  const force = setTimeout(() => signal("SIGKILL"), 5000);
  return exited.finally(() => clearTimeout(force));
}

async function startNext(): Promise<NonNullable<typeof next>> {
  // Next.js wants its build output inside the workspace: under node_modules, which git ignores.
  const cache = join(import.meta.dirname, "../../node_modules/.cache");
  mkdirSync(cache, { recursive: true });
  const distDir = mkdtempSync(join(cache, "ryw-next-"));
  const started = Date.now();
  const child = spawn(process.execPath, [nextBin, "dev", appDir, "--port", "0", "--hostname", "127.0.0.1"], {
    cwd: appDir,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      NODE_ENV: "development",
      NEXT_TELEMETRY_DISABLED: "1",
      RYW_NEXT_DIST_DIR: relative(appDir, distDir),
      DATABASE_URL: cluster.primary.url,
      DATABASE_REPLICA_URLS: cluster.replicas.map((r) => r.url).join(","),
      REDIS_URL: cluster.redis!.url,
      RYW_REDIS_PREFIX: prefix,
      RYW_TOKEN_KEY: TOKEN_KEY,
      RYW_SERVER_NAMES: JSON.stringify(Object.fromEntries([[cluster.primary.port, "primary"], ...cluster.replicas.map((r) => [r.port, r.name])])),
    },
  });
  const onExit = () => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  };
  process.once("exit", onExit);
  const log: string[] = [];
  const server = { child, log, distDir, url: "", readyMs: 0 };
  cleanups.push(async () => {
    await killTree(child);
    process.off("exit", onExit);
    rmSync(distDir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`next dev did not get ready in 60 s:\n${log.join("")}`)), 60_000);
    const onData = (chunk: Buffer) => {
      log.push(chunk.toString());
      const text = log.join("");
      const url = /Local:\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(text)?.[1];
      if (url && /Ready in/.test(text)) {
        clearTimeout(timer);
        server.url = url;
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`next dev exited with ${code}:\n${log.join("")}`));
    });
  });
  server.readyMs = Date.now() - started;
  return server;
}

let seq = 0;
async function newAuthor(): Promise<number> {
  const [row] = await withSql(cluster.primary.url, (sql) => sql`insert into "User" (email) values (${`next-${process.pid}-${++seq}@example.com`}) returning id`);
  return row!.id as number;
}

async function withReplicasPaused<T>(fn: () => Promise<T>): Promise<T> {
  await pauseReplay(cluster, 0);
  await pauseReplay(cluster, 1);
  try {
    return await fn();
  } finally {
    await resumeReplay(cluster, 0);
    await resumeReplay(cluster, 1);
  }
}

type NextRead = { server: string; newest: number; route: RouteDecision | null };

/** A read through a Next.js route: its answer, or the server's log when it did not answer 200. */
async function nextRead(client: Client, path: string): Promise<NextRead> {
  const res = await client.request(`${next!.url}${path}`);
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${JSON.stringify(res.body)}\n${next!.log.join("")}`);
  return res.body as NextRead;
}
const nextApp = (path: string): RunningApp => ({ url: `${next!.url}${path}`, close: async () => {} });

let express: RunningApp;

beforeAll(async () => {
  next = await startNext();
  // The first request compiles the route; a read with no scope touches nothing.
  const warm = Date.now();
  for (const path of ["/api/lsn/posts?author=0", "/api/token/posts?author=0"]) {
    const res = await fetch(`${next.url}${path}`).catch((error: unknown) => {
      throw new Error(`${path}: ${String(error)}\n${next!.log.join("")}`);
    });
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}\n${next.log.join("")}`);
  }
  console.log(`[next] next dev ready in ${next.readyMs} ms; both routes compiled and answering ${Date.now() - warm} ms later`);

  // The other app server: Express in this process, recording positions in the same Redis.
  const db = connect(cluster);
  cleanups.push(() => db.end());
  const redis = new Redis(cluster.redis!.url);
  cleanups.push(() => redis.quit());
  const ryw = createRyw({ ...db.options, store: new RedisStore({ client: redis, prefix }), tracker: { intervalMs: 20 } });
  cleanups.push(() => ryw.close());
  await ryw.ready();
  express = await expressFramework.start({ ryw, db, scope: (header) => header("x-user") });
  cleanups.push(() => express.close());
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([resumeReplay(cluster, 0), resumeReplay(cluster, 1)]);
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

describe("Next.js route handlers (next dev) with rywNext", () => {
  it("scope: a write through an Express instance is seen by the Next.js route handler sharing its Redis; without the scope it is stale", async () => {
    const author = await newAuthor();
    const user = new Client({ "x-user": `user-${author}` });
    await withReplicasPaused(async () => {
      const written = await user.write(express, author, "from express");
      const id = (written.body as { id: number }).id;
      const seen = await nextRead(user, `/api/lsn/posts?author=${author}`);
      expect(seen).toMatchObject({ server: "primary", newest: id, route: { reason: "lagging", scope: `user-${author}` } });
      const stale = await nextRead(new Client(), `/api/lsn/posts?author=${author}`);
      expect(stale.server).toMatch(/^r[01]$/);
      expect(stale.newest).toBeLessThan(id);
      expect(stale.route).toMatchObject({ reason: "no-scope" });
    });
    // And the other way round: written through Next.js, read through Express.
    await withReplicasPaused(async () => {
      const written = await user.write(nextApp("/api/lsn"), author, "from next");
      expect(written.status).toBe(201);
      const id = (written.body as { id: number }).id;
      expect(await user.read(express, author)).toEqual({ server: "primary", newest: id });
    });
  });

  it("token: a client with only the cookie reads its own write; the cookie has HttpOnly, SameSite=Lax, Path=/; without it the read is stale", async () => {
    const author = await newAuthor();
    const browser = new Client();
    const token = nextApp("/api/token");
    await withReplicasPaused(async () => {
      const written = await browser.write(token, author, "cookie only");
      expect(written.status).toBe(201);
      const id = (written.body as { id: number }).id;
      expect(browser.setCookies).toEqual([expect.stringMatching(/^ryw-token=v1\.[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Lax$/)]);
      const seen = await nextRead(browser, `/api/token/posts?author=${author}`);
      expect(seen).toMatchObject({ server: "primary", newest: id, route: { reason: "lagging" } });
      expect(browser.setCookies).toHaveLength(1);
      const stale = await nextRead(new Client(), `/api/token/posts?author=${author}`);
      expect(stale.server).toMatch(/^r[01]$/);
      expect(stale.newest).toBeLessThan(id);

      // Response.redirect() has immutable headers; the cookie still gets on it.
      const res = await fetch(`${token.url}/posts?author=${author}&redirect=1`, { method: "POST", body: JSON.stringify({ authorId: author, title: "redirected" }), redirect: "manual", headers: { "x-forwarded-proto": "https" } });
      expect(res.status).toBe(303);
      // Next.js itself trusts X-Forwarded-Proto for the request URL, so the cookie is Secure.
      expect(res.headers.getSetCookie()).toEqual([expect.stringMatching(/^ryw-token=v1\.[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Lax; Secure$/)]);
    });
  });

  it("ignores a tampered cookie: the read goes to the primary and the cookie is cleared", async () => {
    const author = await newAuthor();
    const browser = new Client();
    await browser.write(nextApp("/api/token"), author, "to tamper with");
    const good = browser.cookies.get("ryw-token")!;
    browser.cookies.set("ryw-token", `${good.slice(0, -2)}${good.endsWith("AA") ? "AB" : "AA"}`);
    const read = await nextRead(browser, `/api/token/posts?author=${author}`);
    expect(read).toMatchObject({ server: "primary", route: { reason: "invalid-token" } });
    expect(browser.setCookies.at(-1)).toMatch(/^ryw-token=; .*Max-Age=0/);
  });

  it("Edge middleware: moves the token from the cookie to a request header, and runs on the Edge runtime", async () => {
    const withCookie = await fetch(`${next!.url}/api/echo-token`, { headers: { cookie: "a=1; ryw-token=v1.abc.def", "ryw-token": "client-sent" } });
    expect(await withCookie.json()).toEqual({ header: "v1.abc.def", runtime: "edge" });
    // Without the cookie a client-sent header does not get through: the two never disagree.
    const headerOnly = await fetch(`${next!.url}/api/echo-token`, { headers: { "ryw-token": "client-sent" } });
    expect(await headerOnly.json()).toEqual({ header: null, runtime: "edge" });
    const twice = await fetch(`${next!.url}/api/echo-token`, { headers: { cookie: "ryw-token=v1.a.b; ryw-token=v1.c.d" } });
    expect(await twice.json()).toEqual({ header: "rejected", runtime: "edge" });
  });

  it("the router does not load on the Edge runtime (node:crypto), postgres.js cannot connect there and ioredis does not load", async () => {
    const core = await fetch(`${next!.url}/api/edge-core`);
    expect(core.status).toBe(500);
    expect(next!.log.join("")).toMatch(/Failed to load external module node:crypto/);
    const pg = await fetch(`${next!.url}/api/edge-postgres`);
    expect(await pg.json()).toEqual({ error: expect.stringMatching(/edge runtime does not support Node\.js 'net' module/) });
    expect((await fetch(`${next!.url}/api/edge-ioredis`)).status).toBe(500);
  });
});
