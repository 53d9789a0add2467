import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrismaPg } from "@prisma/adapter-pg";
import { isRywError, MemoryStore, ryw, runWithScope } from "@ryw/prisma";
import { pauseReplay, resumeReplay, waitForReplicas } from "../harness/index.js";
import { Prisma, PrismaClient } from "../../packages/prisma/test/generated/prisma/client.js";
import type { Form } from "./helpers.js";
import { closeServers, cluster, FORMS, seedUser, unique, where } from "./helpers.js";

let author: number;
beforeAll(async () => {
  author = await seedUser("one-liner");
  await waitForReplicas(cluster);
});
afterAll(closeServers);

const settings = () => ({
  replicas: cluster.replicas.map((r) => ({ name: r.name, adapter: r.url })),
  store: new MemoryStore(),
  speculate: false,
  tracker: { intervalMs: 20 },
});
const pg = () => new PrismaPg({ connectionString: cluster.primary.url });

const calls: string[] = [];
const shout = Prisma.defineExtension({ result: { post: { shout: { needs: { title: true }, compute: (post) => post.title.toUpperCase() } } } });
const before = Prisma.defineExtension({ query: { post: { async findMany({ args, query }) { calls.push("before"); return query(args); } } } });
const after = Prisma.defineExtension({ query: { post: { async findMany({ args, query }) { calls.push("after"); return query(args); } } } });
const titles = Prisma.defineExtension({
  model: { post: { async titles(authorId: number) { return (await Prisma.getExtensionContext(this).findMany({ where: { authorId } })).map((p: { title: string }) => p.title); } } },
});

/** A client with other extensions on both sides of ryw, in either form, and a global omit. */
function build(form: Form) {
  const events: string[] = [];
  const rw = form === "one-liner" ? ryw(settings()) : ryw({ ...settings(), primary: cluster.primary.url });
  const base = new PrismaClient({ adapter: form === "one-liner" ? pg() : rw.adapter, omit: { user: { createdAt: true } }, log: [{ level: "query", emit: "event" }] });
  base.$on("query", (e) => events.push(e.query));
  const db = base.$extends(shout).$extends(before).$extends(rw).$extends(after).$extends(titles);
  return { rw, base, db, events, async close() { await base.$disconnect(); await rw.ryw.close(); } };
}

async function replicated(rw: ReturnType<typeof ryw>) {
  await waitForReplicas(cluster);
  await rw.ryw.tracker.refresh();
}

describe.each(FORMS)("fidelity, %s", (form) => {
  let c: ReturnType<typeof build>;
  beforeAll(async () => {
    c = build(form);
    await c.rw.ryw.ready();
  });
  afterAll(() => c.close());

  it("routes reads to replicas with every extension applied, before and after ryw", async () => {
    const title = unique("fid");
    await c.base.post.create({ data: { authorId: author, title } });
    await replicated(c.rw);
    calls.length = 0;
    c.events.length = 0;
    const read = await where(async () => ({
      selected: await c.db.post.findFirst({ where: { title }, select: { shout: true } }),
      included: await c.db.user.findUnique({ where: { id: author }, include: { posts: { where: { title } } } }),
      many: await c.db.post.findMany({ where: { title } }),
      titles: await c.db.post.titles(author),
      fluent: await c.db.user.findUnique({ where: { id: author } }).posts({ where: { title } }),
    }));
    expect(read.ran.primary).toBe(0);
    expect(read.ran.r0 + read.ran.r1).toBeGreaterThanOrEqual(5);
    expect(Object.keys(read.value.selected!)).toEqual(["shout"]);
    expect(read.value.selected!.shout).toBe(title.toUpperCase());
    expect(read.value.included!.posts[0]!.shout).toBe(title.toUpperCase());
    expect("createdAt" in read.value.included!).toBe(false); // global omit
    expect(read.value.many[0]!.shout).toBe(title.toUpperCase());
    expect(read.value.titles).toContain(title);
    expect(read.value.fluent!.map((p) => p.title)).toEqual([title]);
    // findMany and titles' findMany: both query extensions ran, the one applied first outermost.
    expect(calls).toEqual(["before", "after", "before", "after"]);
    // $on('query') on the base client sees the rerouted statements.
    expect(c.events.some((q) => q.includes('"Post"'))).toBe(true);
  });

  it("reads your writes with both replicas paused: writes, batch, interactive and nested transactions", async () => {
    await pauseReplay(cluster, 0);
    await pauseReplay(cluster, 1);
    try {
      const title = unique("ryw");
      const got = await where(() => runWithScope(unique("writer"), async () => {
        await c.db.post.create({ data: { authorId: author, title } });
        await c.db.$transaction([c.db.post.create({ data: { authorId: author, title } }), c.db.post.count({ where: { title } })]);
        await c.db.$transaction(async (tx) => {
          await tx.post.create({ data: { authorId: author, title } });
          await tx.$transaction(async (inner) => inner.post.create({ data: { authorId: author, title } }));
        });
        await c.db.user.update({ where: { id: author }, data: { posts: { create: { title } } } });
        return c.db.post.findMany({ where: { title } });
      }));
      expect(got.value).toHaveLength(5);
      expect(got.value[0]!.shout).toBe(title.toUpperCase());
      expect(got.ran.r0 + got.ran.r1).toBe(0);
    } finally {
      await resumeReplay(cluster, 0);
      await resumeReplay(cluster, 1);
    }
  });
});

describe("the one-liner", () => {
  it("works after the client already ran queries, and calls on the base client afterwards run on the primary and are recorded", async () => {
    const prisma = new PrismaClient({ adapter: pg() });
    const title = unique("late");
    await prisma.post.create({ data: { authorId: author, title } });
    const rw = ryw(settings());
    const db = prisma.$extends(rw);
    try {
      await rw.ryw.ready();
      await replicated(rw);
      const read = await where(() => db.post.findMany({ where: { title } }));
      expect(read.value).toHaveLength(1);
      expect(read.ran.primary).toBe(0);
      // The base client now runs through ryw's adapter too: on the primary, its writes recorded.
      await pauseReplay(cluster, 0);
      await pauseReplay(cluster, 1);
      try {
        const mine = await where(() => runWithScope(unique("base"), async () => {
          await prisma.post.create({ data: { authorId: author, title } });
          return { base: await prisma.post.count({ where: { title } }), db: await db.post.count({ where: { title } }) };
        }));
        expect(mine.value).toEqual({ base: 2, db: 2 });
        expect(mine.ran.r0 + mine.ran.r1).toBe(0);
      } finally {
        await resumeReplay(cluster, 0);
        await resumeReplay(cluster, 1);
      }
    } finally {
      await prisma.$disconnect();
      await rw.ryw.close();
    }
  });

  it("$disconnect, then the next call reconnects through ryw; $ryw.close() stops ryw's own connections", async () => {
    const prisma = new PrismaClient({ adapter: pg() });
    const rw = ryw(settings());
    const db = prisma.$extends(rw);
    await rw.ryw.ready();
    await db.post.count();
    await db.$disconnect();
    await replicated(rw);
    const again = await where(() => db.post.count({ where: { authorId: author } }));
    expect(again.ran.primary).toBe(0);
    await db.$disconnect();
    await db.$ryw.close();
  });

  it("an interactive transaction open on the base when ryw is applied fails (P2028) and commits nothing", async () => {
    const prisma = new PrismaClient({ adapter: pg() });
    const title = unique("open-tx");
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const opened = new Promise<void>((resolve) => (started = resolve));
    const tx = prisma.$transaction(async (t) => {
      await t.post.create({ data: { authorId: author, title } });
      started();
      await held;
      await t.post.create({ data: { authorId: author, title } });
    });
    const outcome = tx.then(() => undefined, (error: unknown) => error);
    await opened;
    const rw = ryw(settings());
    const db = prisma.$extends(rw);
    release();
    try {
      const error = await outcome;
      expect((error as { code?: unknown }).code).toBe("P2028");
      expect(await db.$primary().post.count({ where: { title } })).toBe(0);
    } finally {
      await prisma.$disconnect();
      await rw.ryw.close();
    }
  });

  it("the same ryw on two extension chains of one client is one routing; a second ryw, or ryw twice in a chain, throws", async () => {
    const prisma = new PrismaClient({ adapter: pg() });
    const rw = ryw(settings());
    const a = prisma.$extends(rw);
    const b = prisma.$extends(shout).$extends(rw);
    const other = ryw(settings());
    try {
      await rw.ryw.ready();
      await replicated(rw);
      const read = await where(async () => [await a.post.count(), await b.post.count()]);
      expect(read.ran.primary).toBe(0);
      expect(() => a.$extends(rw)).toThrow(/already applied/);
      expect(() => prisma.$extends(other)).toThrow(/another ryw\(\) instance/);
      const another = new PrismaClient({ adapter: pg() });
      expect(() => another.$extends(rw)).toThrow(/already routes another PrismaClient/);
    } finally {
      await prisma.$disconnect();
      await rw.ryw.close();
      await other.ryw.close();
    }
  });

  it("refuses `primary`, naming the option", async () => {
    const rw = ryw({ ...settings(), primary: cluster.primary.url });
    try {
      let error: unknown;
      try {
        new PrismaClient({ adapter: pg() }).$extends(rw);
      } catch (e) {
        error = e;
      }
      expect(isRywError(error, "INVALID_OPTION")).toBe(true);
      expect((error as Error).message).toContain("`primary`");
    } finally {
      await rw.ryw.close();
    }
  });

  it("never degrades silently: Accelerate, a non-PostgreSQL adapter, missing internals throw and name the two-place form", async () => {
    const cases: Array<[string, () => object]> = [
      ["accelerateUrl", () => new PrismaClient({ accelerateUrl: "prisma://accelerate.prisma-data.net/?api_key=none" })],
      ["not PostgreSQL", () => {
        const prisma = new PrismaClient({ adapter: pg() });
        const raw = (prisma as unknown as { _originalClient: { _engineConfig: { adapter: object } } })._originalClient;
        raw._engineConfig.adapter = { ...raw._engineConfig.adapter, provider: "mysql", adapterName: "x", connect: () => Promise.reject(new Error("no")) };
        return prisma;
      }],
      ["_originalClient", () => new Proxy(new PrismaClient({ adapter: pg() }), { get: (t, p, r) => (p === "_originalClient" ? undefined : Reflect.get(t, p, r)) })],
      ["_engine", () => {
        const prisma = new PrismaClient({ adapter: pg() });
        (prisma as unknown as { _originalClient: { _engine: object } })._originalClient._engine = {};
        return prisma;
      }],
    ];
    for (const [why, make] of cases) {
      const rw = ryw(settings());
      const client = make() as PrismaClient;
      let error: unknown;
      try {
        client.$extends(rw);
      } catch (e) {
        error = e;
      }
      await rw.ryw.close();
      expect(isRywError(error, "UNSUPPORTED_CLIENT"), why).toBe(true);
      expect((error as Error).message, why).toContain(why);
      expect((error as Error).message, why).toContain("adapter: rw.adapter");
    }
  });
});
