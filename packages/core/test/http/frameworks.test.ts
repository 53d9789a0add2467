import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RouteDecision, Ryw, RywOptions } from "../../src/index.js";
import { capturePosition, createRyw, createTokenCodec, RedisStore } from "../../src/index.js";
import { pauseReplay, resumeReplay, waitFor, waitForReplicas, withSql } from "../../../../test/harness/index.js";
import { connect } from "../clients.js";
import type { AppSpec, Framework } from "./apps.js";
import { Client, frameworks } from "./apps.js";

/**
 * The same suite for each framework, against real servers on loopback driven by fetch, on the
 * shared cluster: two app instances per case (A writes, B reads), replay paused on both replicas
 * so that a read that misses the write is visible as such, and the database server itself saying
 * where each read ran (`inet_server_port()`).
 */
const cluster = inject("cluster");
const TOKEN_KEYS = ["http-middleware-test-key-0123456789"];
const OTHER_APP_KEYS = ["some-other-apps-secret-key-98765"];

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  // Whatever failed: replay runs again, and every server, router and connection is closed.
  await Promise.allSettled([resumeReplay(cluster, 0), resumeReplay(cluster, 1)]);
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

let seq = 0;
async function newAuthor(): Promise<number> {
  const [row] = await withSql(cluster.primary.url, (sql) => sql`insert into "User" (email) values (${`http-${process.pid}-${++seq}@example.com`}) returning id`);
  return row!.id as number;
}

/** Pauses replay on both replicas for `fn`: any read that reaches a replica then misses new writes. */
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

/** An app instance with a ryw of its own, like one app server; it records its route decisions. */
async function instance(framework: Framework, options: Partial<RywOptions>, spec: Omit<AppSpec, "ryw" | "db"> = {}) {
  const db = connect(cluster);
  cleanups.push(() => db.end());
  const ryw = createRyw({ ...db.options, tracker: { intervalMs: 20 }, ...options });
  cleanups.push(() => ryw.close());
  const routes: RouteDecision[] = [];
  ryw.subscribe((event) => {
    if (event.type === "route") routes.push(event.decision);
  });
  await ryw.ready();
  const full: AppSpec = { ...spec, ryw, db, token: spec.token && { ...spec.token, ryw } };
  const app = await framework.start(full);
  cleanups.push(() => app.close());
  return { ...app, ryw, db, routes, lastRoute: () => routes.at(-1) };
}

const byUserHeader = (header: (name: string) => string | undefined) => {
  const user = header("x-user");
  // A bug in the app's scope function, for the error test.
  return user === "not-a-string" ? (42 as unknown as string) : user;
};

describe.each(frameworks)("$name middleware on real servers", (framework) => {
  const prefix = `http-${process.pid}-${framework.name}:`;
  let lsnA: Awaited<ReturnType<typeof instance>>;
  let lsnB: Awaited<ReturnType<typeof instance>>;
  let tokenA: Awaited<ReturnType<typeof instance>>;
  let tokenB: Awaited<ReturnType<typeof instance>>;
  let headerA: Awaited<ReturnType<typeof instance>>;
  let headerB: Awaited<ReturnType<typeof instance>>;
  let trusting: Awaited<ReturnType<typeof instance>>;
  let monoA: Awaited<ReturnType<typeof instance>>;
  let monoB: Awaited<ReturnType<typeof instance>>;

  beforeAll(async () => {
    // Two app servers sharing one Redis: positions recorded by A are found by B.
    const store = () => {
      const redis = new Redis(cluster.redis!.url);
      cleanups.push(() => redis.quit());
      return new RedisStore({ client: redis, prefix });
    };
    lsnA = await instance(framework, { store: store() }, { scope: byUserHeader });
    lsnB = await instance(framework, { store: store() }, { scope: byUserHeader });
    // No store at all: only the cookie links a client's requests. No scope function either.
    const token = { ryw: undefined as unknown as Ryw };
    tokenA = await instance(framework, { strategy: "token", tokenKeys: TOKEN_KEYS }, { token });
    tokenB = await instance(framework, { strategy: "token", tokenKeys: TOKEN_KEYS }, { token });
    headerA = await instance(framework, { strategy: "token", tokenKeys: TOKEN_KEYS }, { token: { ...token, via: "header" } });
    headerB = await instance(framework, { strategy: "token", tokenKeys: TOKEN_KEYS }, { token: { ...token, via: "header" } });
    trusting = await instance(framework, { strategy: "token", tokenKeys: TOKEN_KEYS }, { token, trustProxy: true });
    // Monotonic reads, no scope function: a reader that never writes is known only by its cookie.
    monoA = await instance(framework, { store: store(), tokenKeys: TOKEN_KEYS, monotonic: true }, { token });
    monoB = await instance(framework, { store: store(), tokenKeys: TOKEN_KEYS, monotonic: true }, { token });
  });

  it("scope: a write through A is seen by a read through B while both replicas are paused; the same read without the scope is stale", async () => {
    const author = await newAuthor();
    const user = new Client({ "x-user": `user-${author}` });
    const anonymous = new Client();
    await withReplicasPaused(async () => {
      const written = await user.write(lsnA, author, "scoped");
      expect(written.status).toBe(201);
      const id = (written.body as { id: number }).id;

      const seen = await user.read(lsnB, author);
      expect(seen).toEqual({ server: "primary", newest: id });
      expect(lsnB.lastRoute()).toMatchObject({ reason: "lagging", scope: `user-${author}`, target: { kind: "primary" } });

      // The control: without a scope the router is free to use a paused replica, and does.
      const stale = await anonymous.read(lsnB, author);
      expect(stale.server).toMatch(/^r[01]$/);
      expect(stale.newest).toBeLessThan(id);
      expect(lsnB.lastRoute()).toMatchObject({ reason: "no-scope" });
    });
    // Replicas that replayed the write serve the scope again: the guarantee is not "always the primary".
    await waitForReplicas(cluster);
    await lsnB.ryw.tracker.refresh();
    const later = await user.read(lsnB, author);
    expect(later.server).toMatch(/^r[01]$/);
    expect(later.newest).toBeGreaterThan(0);
    expect(lsnB.lastRoute()).toMatchObject({ reason: "caught-up" });
  });

  it("token: a client with only the cookie (no scope, no store) reads its write through another instance; without the cookie it is stale", async () => {
    const author = await newAuthor();
    const browser = new Client();
    await withReplicasPaused(async () => {
      const written = await browser.write(tokenA, author, "cookie only");
      expect(written.status).toBe(201);
      const id = (written.body as { id: number }).id;
      expect(browser.cookies.get("ryw-token")).toMatch(/^v1\.[\w-]+\.[\w-]+$/);

      const seen = await browser.read(tokenB, author);
      expect(seen).toEqual({ server: "primary", newest: id });
      expect(tokenB.lastRoute()).toMatchObject({ reason: "lagging", target: { kind: "primary" } });

      const stale = await new Client().read(tokenB, author);
      expect(stale.server).toMatch(/^r[01]$/);
      expect(stale.newest).toBeLessThan(id);
      expect(tokenB.lastRoute()).toMatchObject({ reason: "no-token" });
    });
  });

  it("sets the cookie only on responses of requests that wrote, with HttpOnly, SameSite=Lax, Path=/ and no Secure over plain HTTP", async () => {
    const author = await newAuthor();
    const browser = new Client();
    await browser.read(tokenA, author);
    expect(browser.setCookies).toEqual([]);
    await browser.write(tokenA, author, "attributes");
    expect(browser.setCookies).toHaveLength(1);
    expect(browser.setCookies[0]).toMatch(/^ryw-token=v1\.[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Lax$/);
    // A read that carried the token verifies it, but hands out nothing new.
    await browser.read(tokenB, author);
    expect(browser.setCookies).toHaveLength(1);
  });

  it("marks the cookie Secure when the framework sees HTTPS, and never trusts X-Forwarded-Proto unless told to", async () => {
    const author = await newAuthor();
    const viaProxy = { "x-forwarded-proto": "https" };
    const trusted = new Client();
    await trusted.write(trusting, author, "secure", viaProxy);
    expect(trusted.setCookies[0]).toMatch(/; Secure$/);
    const untrusted = new Client();
    await untrusted.write(tokenA, author, "not secure", viaProxy);
    expect(untrusted.setCookies[0]).not.toMatch(/Secure/);
  });

  it("ignores tampered, foreign and ahead-of-the-primary tokens: those reads go to the primary, and a refused cookie is cleared", async () => {
    const author = await newAuthor();
    const browser = new Client();
    await browser.write(tokenA, author, "to tamper with");
    const good = browser.cookies.get("ryw-token")!;
    const macAt = good.lastIndexOf(".") + 1;
    const tampered = good.slice(0, macAt) + (good[macAt] === "A" ? "B" : "A") + good.slice(macAt + 1);
    const primaryNow = await capturePosition(tokenB.db.options.primary);
    const cases = {
      tampered,
      foreign: createTokenCodec({ keys: OTHER_APP_KEYS }).encode(primaryNow),
      // Signed with the right key, yet beyond anything the primary wrote: never trusted as a target.
      ahead: createTokenCodec({ keys: TOKEN_KEYS }).encode(primaryNow + (1n << 40n)),
    };
    for (const [what, token] of Object.entries(cases)) {
      const client = new Client();
      client.cookies.set("ryw-token", token);
      const read = await client.read(tokenB, author);
      expect(read.server, what).toBe("primary");
      expect(tokenB.lastRoute(), what).toMatchObject({ reason: what === "ahead" ? "token-ahead" : "invalid-token" });
      if (what === "ahead") continue;
      expect(client.setCookies, what).toEqual([expect.stringMatching(/^ryw-token=; Path=\/; HttpOnly; SameSite=Lax; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT$/)]);
      expect(client.cookies.has("ryw-token"), what).toBe(false);
    }
    // The genuine token still verifies (once a replica has replayed it, so the reason is stable).
    await waitForReplicas(cluster);
    await tokenB.ryw.tracker.refresh();
    const genuine = await browser.read(tokenB, author);
    expect(tokenB.lastRoute()).toMatchObject({ reason: "caught-up" });
    expect(genuine.server).toMatch(/^r[01]$/);
  });

  it("refuses oversize and conflicting token cookies without failing the request: the read goes to the primary", async () => {
    const author = await newAuthor();
    const oversize = await new Client().read(tokenB, author, { cookie: `ryw-token=${"v1.".padEnd(3000, "A")}` });
    expect(oversize.server).toBe("primary");
    expect(tokenB.lastRoute()).toMatchObject({ reason: "invalid-token" });

    const writer = new Client();
    await writer.write(tokenA, author, "first");
    const first = writer.cookies.get("ryw-token")!;
    await writer.write(tokenA, author, "second");
    const second = writer.cookies.get("ryw-token")!;
    expect(second).not.toBe(first);
    const twice = await new Client().read(tokenB, author, { cookie: `ryw-token=${first}; other=1; ryw-token=${second}` });
    expect(twice.server).toBe("primary");
    expect(tokenB.lastRoute()).toMatchObject({ reason: "invalid-token" });
    // The same value twice is one token, not a conflict.
    await waitForReplicas(cluster);
    await tokenB.ryw.tracker.refresh();
    await new Client().read(tokenB, author, { cookie: `ryw-token=${second}; ryw-token=${second}` });
    expect(tokenB.lastRoute()).toMatchObject({ reason: "caught-up" });
  });

  it("header transport: the token comes back in a ryw-token response header after a write, and the client sends it back", async () => {
    const author = await newAuthor();
    const api = new Client();
    await withReplicasPaused(async () => {
      const written = await api.write(headerA, author, "header");
      const token = written.headers.get("ryw-token");
      expect(token).toMatch(/^v1\./);
      expect(written.headers.getSetCookie()).toEqual([]);
      const id = (written.body as { id: number }).id;
      expect(await api.read(headerB, author, { "ryw-token": token! })).toEqual({ server: "primary", newest: id });
      const read = await api.request(`${headerB.url}/posts?author=${author}`);
      expect(read.headers.get("ryw-token")).toBeNull();
      expect((read.body as { newest: number }).newest).toBeLessThan(id);
    });
  });

  it("monotonic: a client that never writes gets the cookie on read responses, and the other instance never serves it an older state; without the cookie it is stale", async () => {
    const author = await newAuthor();
    const reader = new Client();
    await pauseReplay(cluster, 0);
    try {
      // Someone else's post, replayed by r1 only.
      const [row] = await withSql(cluster.primary.url, (sql) => sql`insert into "Post" ("authorId", title) values (${author}, 'by another user') returning id`);
      const id = row!.id as number;
      await withSql(cluster.replicas[1]!.url, (sql) => waitFor(async () => {
        const [seen] = await sql`select exists(select 1 from "Post" where id = ${id}) as seen`;
        return seen!.seen === true;
      }, 10_000, "r1 to replay the post"));
      // Reads through A until one shows the post (r1 or the primary; r0 misses it).
      let newest = 0;
      for (let i = 0; i < 10 && newest < id; i++) newest = (await reader.read(monoA, author)).newest;
      expect(newest).toBe(id);
      // Read-only responses carried the token, with the usual attributes.
      expect(reader.setCookies.length).toBeGreaterThanOrEqual(1);
      for (const line of reader.setCookies) expect(line).toMatch(/^ryw-token=v1\.[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Lax$/);
      // From now on, on either instance, the post never vanishes, and paused r0 never answers.
      for (let i = 0; i < 10; i++) {
        const seen = await reader.read(i % 2 === 0 ? monoB : monoA, author);
        expect(seen.newest).toBe(id);
        expect(seen.server).not.toBe("r0");
      }
      expect(monoB.routes.some((d) => d.reason === "invalid-token" || d.reason === "token-ahead")).toBe(false);
      // The control: the same reads without the cookie reach paused r0, which misses the post.
      const fresh = await Promise.all([0, 1, 2, 3].map(() => new Client().read(monoB, author)));
      expect(fresh.some((r) => r.server === "r0" && r.newest < id)).toBe(true);
    } finally {
      await resumeReplay(cluster, 0);
    }
  });

  it("turns a scope function that returns a non-string into an INVALID_SCOPE error that names the option", async () => {
    const res = await new Client({ "x-user": "not-a-string" }).request(`${lsnA.url}/posts?author=1`);
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ code: "INVALID_SCOPE", message: expect.stringContaining("Option `scope` of ryw") });
    expect((res.body as { message: string }).message).toMatch(/must return a non-empty string or undefined, got number 42/);
  });
});
