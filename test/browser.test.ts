import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { RedisStore } from "@ryw/core";
import { serverCounters } from "../examples/ghost-post/servers.js";
import type { Mode } from "../examples/ghost-web/routers.js";
import { startGhostWeb } from "../examples/ghost-web/server.js";
import type { GhostWeb } from "../examples/ghost-web/server.js";
import { pauseReplay, resumeReplay, waitFor, waitForReplicas, withSql } from "./harness/index.js";

/**
 * The ghost-post web app (examples/ghost-web) driven by a real headless Chromium: type a post,
 * submit the form, follow the 303 back to the feed, and look for the post in the page.
 *
 * The shared cluster has no lagging replica, so replay on r0 is paused for the whole file, before
 * any session of this file exists: r0 then holds none of their users or posts, and any feed read
 * it serves lacks the new post. The naive router takes replicas strictly in turn and every page
 * load is exactly one feed read, so of NAIVE_ROUNDS reloads exactly half land on r0: those are
 * ghosts by construction, with no timing involved, and the naive test cannot pass by accident.
 * The same paused replica makes every wrong @ryw decision a ghost, over RYW_ROUNDS reloads.
 */
const cluster = inject("cluster");
const NAIVE_ROUNDS = 6;
const RYW_ROUNDS = 40;
const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const DOCS = join(import.meta.dirname, "..", "docs");

let userDataDir: string | undefined;
let context: BrowserContext | undefined;
let app: GhostWeb | undefined;
let counters: ReturnType<typeof serverCounters> | undefined;
let paused = false;
const started = Date.now();
const results: Partial<Record<Mode, { rounds: number; ghosts: number }>> = {};

/** A fresh session (no cookie) on the feed page of `mode`. */
async function openFeed(mode: Mode): Promise<Page> {
  await context!.clearCookies();
  const page = await context!.newPage();
  const response = await page.goto(`${app!.url}/?router=${mode}`);
  expect(response?.status()).toBe(200);
  return page;
}

/** One round: post `title` through the form, follow the redirect, and look for it on the page. */
async function postAndReload(page: Page, title: string): Promise<{ shown: boolean; node: string }> {
  const before = new URL(page.url()).searchParams.get("posted");
  const posted = page.waitForResponse((r) => r.request().method() === "POST");
  await page.fill('input[name="title"]', title);
  await page.click('button[type="submit"]');
  // The redirect's target names the new post, so this waits for the page the 303 led to.
  await page.waitForURL((url) => url.searchParams.has("posted") && url.searchParams.get("posted") !== before);
  expect((await posted).status()).toBe(303);
  const titles = await page.locator("#posts .title").allTextContents();
  return { shown: titles.includes(title), node: (await page.getAttribute("#served", "data-node")) ?? "?" };
}

describe("the ghost post in headless Chromium (examples/ghost-web)", () => {
  beforeAll(async () => {
    await waitForReplicas(cluster);
    await pauseReplay(cluster, 0);
    paused = true;
    const store = new RedisStore({ url: cluster.redis!.url, prefix: `ryw-browser:${process.pid}:` });
    await store.get("connect");
    app = await startGhostWeb({ cluster, store, notes: { r0: "replay paused", r1: "keeps up" } }).catch(async (error: unknown) => {
      await store.close();
      throw error;
    });
    counters = serverCounters(cluster);
    userDataDir = mkdtempSync(join(tmpdir(), "ryw-chromium-"));
    context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 760, height: 640 }, timeout: 20_000 });
    context.setDefaultTimeout(5_000);
  }, 40_000);

  afterAll(async () => {
    // Each step on its own, so that one failing still lets the others clean up.
    await context?.close().catch(() => {});
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    await app?.close().catch(() => {});
    await counters?.close().catch(() => {});
    if (paused) {
      await resumeReplay(cluster, 0);
      await waitForReplicas(cluster);
    }
    const line = (mode: Mode) => (results[mode] ? `${results[mode].ghosts} ghost posts in ${results[mode].rounds} reloads` : "not run");
    console.log(`[browser] naive routing: ${line("naive")}; @ryw: ${line("ryw")} (this file: ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }, 30_000);

  it(`naive routing: the new post is missing after the reload (${NAIVE_ROUNDS} rounds, r0 paused)`, async () => {
    const page = await openFeed("naive");
    await counters!.reset();
    let ghosts = 0;
    let fromR0 = 0;
    let ghostsFromR0 = 0;
    const ids: number[] = [];
    for (let i = 1; i <= NAIVE_ROUNDS; i++) {
      const { shown, node } = await postAndReload(page, `Hello from the browser, round ${i}`);
      ids.push(Number(new URL(page.url()).searchParams.get("posted")));
      // r1 replays within milliseconds, and on a busy machine a reload can still beat it: that is
      // a ghost too. Every reload served by the paused r0 must be one.
      if (node === "r0") fromR0++;
      if (!shown) {
        ghosts++;
        if (node === "r0") ghostsFromR0++;
      }
    }
    expect(ghostsFromR0).toBe(fromR0);
    results.naive = { rounds: NAIVE_ROUNDS, ghosts };
    const served = await counters!.read();
    // Asked of the servers: every reload was one read on a replica, in turn.
    expect(served).toEqual({ primary: 0, r0: NAIVE_ROUNDS / 2, r1: NAIVE_ROUNDS / 2 });
    // The paused replica has none of the posts, so each of its reads lost the new one.
    const [onR0] = await withSql(cluster.replicas[0]!.url, (sql) => sql`select count(*)::int as n from "Post" where id = any(${ids})`);
    expect(onR0!.n).toBe(0);
    expect(ghosts).toBeGreaterThanOrEqual(served.r0!);
    expect(ghosts).toBeGreaterThan(0);

    // For the screenshot only, outside the counts: r0 catches up with the posts so far and stops
    // again, so that the page it serves next lists them all but the new one. Replicas are taken
    // in turn, so after a page read from r1 the next read goes to r0.
    await resumeReplay(cluster, 0);
    await waitForReplicas(cluster);
    await pauseReplay(cluster, 0);
    for (let i = 0; i < 2 && (await page.getAttribute("#served", "data-node")) !== "r1"; i++) await page.reload();
    const last = await postAndReload(page, "One more post");
    expect(last).toEqual({ shown: false, node: "r0" });
    await page.screenshot({ path: screenshot("ghost-web-naive.png") });
    await page.close();
  }, 30_000);

  it(`@ryw: the new post is always there (${RYW_ROUNDS} rounds), and replicas still serve reads`, async () => {
    const page = await openFeed("ryw");
    await counters!.reset();
    const before = app!.routers.ryw.stats!().reads;
    let ghosts = 0;
    const pagesByNode: Record<string, number> = {};
    for (let i = 1; i <= RYW_ROUNDS; i++) {
      const { shown, node } = await postAndReload(page, `Hello from the browser, round ${i}`);
      if (!shown) ghosts++;
      pagesByNode[node] = (pagesByNode[node] ?? 0) + 1;
    }
    await page.screenshot({ path: screenshot("ghost-web.png") });
    results.ryw = { rounds: RYW_ROUNDS, ghosts };
    const served = await counters!.read();
    const after = app!.routers.ryw.stats!().reads;
    const decided = { replica: after.replica - before.replica, primary: after.primary - before.primary };
    console.log(`[browser] @ryw reloads: feed SELECTs per server ${JSON.stringify(served)}; router: ${decided.replica} on replicas, ${decided.primary} on the primary; pages say ${JSON.stringify(pagesByNode)}`);

    expect(ghosts).toBe(0);
    // Asked of the servers: each reload's feed read ran once where @ryw sent it; a read it started
    // early on a replica (option `speculate`) and dropped only adds a SELECT on that replica. So
    // the primary ran one per reload it answered, and fewer than RYW_ROUNDS there means that
    // replicas answered the rest. The paused r0 cannot have: its answers lack the new post.
    expect(served.primary!).toBeLessThan(RYW_ROUNDS);
    expect(served.r1!).toBeGreaterThanOrEqual(RYW_ROUNDS - served.primary!);
    // The router's own account agrees: one decision per reload, some of them replicas.
    expect(decided.replica + decided.primary).toBe(RYW_ROUNDS);
    expect(decided.replica).toBeGreaterThan(0);
    await page.close();
  }, 30_000);
});

describe("the demo command (pnpm demo:web)", () => {
  it("prints the URL, serves the app, and on Ctrl-C removes every server it started", async () => {
    // As `pnpm demo:web` runs it, in its own process group like a terminal's foreground job.
    const child = spawn(process.execPath, ["--import", "tsx", "examples/ghost-web/main.ts", "--port", "0"], { cwd: join(import.meta.dirname, ".."), detached: true, env: { ...process.env, REDIS_URL: "" } });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    try {
      await waitFor(() => /Ctrl-C stops/.test(stdout), 30_000, "the demo to print its URL").catch((error: Error) => {
        throw new Error(`${error.message}; it printed:\n${stdout}`);
      });
      const url = /open\s+(http:\/\/\S+)\/\?router=naive/.exec(stdout)?.[1];
      expect(url, stdout).toBeDefined();
      const page = await fetch(`${url}/?router=naive`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("The ghost post");
      const post = await fetch(`${url}/posts?router=ryw`, { method: "POST", body: new URLSearchParams({ title: "hi" }), headers: { cookie: page.headers.get("set-cookie")!.split(";")[0]! }, redirect: "manual" });
      expect(post.status).toBe(303);
      expect(post.headers.get("location")).toMatch(/^\/\?router=ryw&posted=\d+$/);

      process.kill(-child.pid!, "SIGINT");
      expect(await exited).toBe(130);
      const dir = /in (\S*ryw-cluster-\S+)/.exec(stdout)?.[1];
      expect(dir, stdout).toBeDefined();
      expect(existsSync(dir!)).toBe(false);
      // Postmasters carry their data directory on the command line; zombies run nothing.
      const ps = spawnSync("ps", ["-eo", "stat,args"], { encoding: "utf8" }).stdout;
      expect(ps.split("\n").filter((line) => line.includes(dir!) && !line.startsWith("Z"))).toEqual([]);
      const redisPort = /redis-server on :(\d+)/.exec(stdout)?.[1];
      if (redisPort) expect(spawnSync("redis-cli", ["-p", redisPort, "ping"], { encoding: "utf8" }).stdout.trim()).not.toBe("PONG");
    } finally {
      // After a failed check: a Ctrl-C to the group, so that the harness removes the cluster; a
      // kill if that hangs (the next cluster start then sweeps what it left).
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(-child.pid!, "SIGINT");
        const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), 15_000);
        await exited;
        clearTimeout(timer);
      }
    }
  }, 45_000);
});

/**
 * Where a screenshot goes: the README's copies in docs/ are refreshed only on request
 * (RYW_SCREENSHOTS=1), so that a test run leaves the work tree as it found it.
 */
function screenshot(name: string): string {
  const dir = process.env.RYW_SCREENSHOTS === "1" ? DOCS : join(userDataDir!, "screenshots");
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
