import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runWithScope } from "@ryw/prisma";
import { pauseReplay, resumeReplay, waitForReplicas } from "../harness/index.js";
import type { Prisma } from "../../packages/prisma/test/generated/prisma/client.js";
import { captures, closeServers, cluster, makeClient, seedUser, servers, unique, where, FORMS as CLIENT_FORMS } from "./helpers.js";

afterAll(closeServers);

// Every test runs against both forms: `prisma.$extends(ryw())` and `new PrismaClient({ adapter: rw.adapter }).$extends(rw)`.
describe.each(CLIENT_FORMS)("%s", (form) => {
  // Every way a statement can reach the primary outside a recorded commit, each checked the same
  // way: replay is paused on both replicas, the write runs in a scope, and a NEW request of that
  // scope (so that only the store knows the position) must see it. A replica would still show the
  // state from before the write.
  let c: Awaited<ReturnType<typeof makeClient>>;
  let author: number;

  beforeAll(async () => {
    // No background polling: every position capture the primary counts comes from a write. No
    // speculative replica queries: every counted read was used.
    c = await makeClient({ speculate: false, tracker: { intervalMs: 60_000 } }, form);
    author = await seedUser("paths");
    await seedPosts();
    await waitForReplicas(cluster);
    await c.rw.ryw.tracker.refresh();
    await pauseReplay(cluster, 0);
    await pauseReplay(cluster, 1);
  });
  afterAll(async () => {
    await resumeReplay(cluster, 0);
    await resumeReplay(cluster, 1);
    await c.close();
  });

  type Db = typeof c.db;
  interface Post {
    /** Every title this case reads and writes starts with it. */
    title: string;
    /** A post titled `title` that the replicas have, for the cases that change or remove one. */
    id: number;
  }
  interface WritePath {
    name: string;
    /** Changes or removes a post the replicas have (rather than adding one). */
    seeded?: boolean;
    write: (db: Db, post: Post) => Prisma.PrismaPromise<unknown>;
    /** The titles starting with `post.title` after the write. */
    after: (post: Post) => string[];
  }

  const WRITES: WritePath[] = [
    { name: "create", write: (db, p) => db.post.create({ data: { authorId: author, title: p.title } }), after: (p) => [p.title] },
    { name: "createMany", write: (db, p) => db.post.createMany({ data: [{ authorId: author, title: p.title }, { authorId: author, title: p.title }] }), after: (p) => [p.title, p.title] },
    { name: "createManyAndReturn", write: (db, p) => db.post.createManyAndReturn({ data: [{ authorId: author, title: p.title }] }), after: (p) => [p.title] },
    { name: "create with a nested write", write: (db, p) => db.post.create({ data: { title: p.title, author: { create: { email: `${p.title}@example.com` } } } }), after: (p) => [p.title] },
    { name: "create through the fluent API", write: (db, p) => db.post.create({ data: { authorId: author, title: p.title } }).author(), after: (p) => [p.title] },
    { name: "update", seeded: true, write: (db, p) => db.post.update({ where: { id: p.id }, data: { title: `${p.title}-new` } }), after: (p) => [`${p.title}-new`] },
    { name: "updateMany", seeded: true, write: (db, p) => db.post.updateMany({ where: { id: p.id }, data: { title: `${p.title}-new` } }), after: (p) => [`${p.title}-new`] },
    { name: "upsert that updates", seeded: true, write: (db, p) => db.post.upsert({ where: { id: p.id }, create: { authorId: author, title: "never" }, update: { title: `${p.title}-new` } }), after: (p) => [`${p.title}-new`] },
    { name: "upsert that creates", write: (db, p) => db.post.upsert({ where: { id: -1 }, create: { authorId: author, title: p.title }, update: {} }), after: (p) => [p.title] },
    { name: "delete", seeded: true, write: (db, p) => db.post.delete({ where: { id: p.id } }), after: () => [] },
    { name: "deleteMany", seeded: true, write: (db, p) => db.post.deleteMany({ where: { id: p.id } }), after: () => [] },
    { name: "$executeRaw", write: (db, p) => db.$executeRaw`insert into "Post" ("authorId", title) values (${author}, ${p.title})`, after: (p) => [p.title] },
    { name: "$executeRawUnsafe", seeded: true, write: (db, p) => db.$executeRawUnsafe(`update "Post" set title = $1 where id = $2`, `${p.title}-new`, p.id), after: (p) => [`${p.title}-new`] },
    { name: "$queryRaw that inserts", write: (db, p) => db.$queryRaw`insert into "Post" ("authorId", title) values (${author}, ${p.title}) returning id`, after: (p) => [p.title] },
    { name: "$queryRawUnsafe that deletes", seeded: true, write: (db, p) => db.$queryRawUnsafe(`delete from "Post" where id = $1 returning id`, p.id), after: () => [] },
    { name: "$queryRaw with a data-modifying CTE", write: (db, p) => db.$queryRaw`with p as (insert into "Post" ("authorId", title) values (${author}, ${p.title}) returning id) select count(*)::int as n from p`, after: (p) => [p.title] },
  ];

  const FORMS = {
    "a call": (_db: Db, write: Prisma.PrismaPromise<unknown>) => write,
    // Prisma runs it without BEGIN/COMMIT, so no commit hook sees it.
    "a batch of one": (db: Db, write: Prisma.PrismaPromise<unknown>) => db.$transaction([write]),
  } as const;

  // The post each seeded case changes, per form: created (and replicated) before replay pauses.
  const seeded = new Map<string, Post>();
  async function seedPosts(): Promise<void> {
    for (const form of Object.keys(FORMS)) {
      for (const path of WRITES.filter((w) => w.seeded)) {
        const title = unique(path.name.replace(/\W+/g, "-"));
        const [row] = await servers.primary`insert into "Post" ("authorId", title) values (${author}, ${title}) returning id`;
        seeded.set(`${form}/${path.name}`, { title, id: row!.id as number });
      }
    }
  }

  /** Titles starting with `prefix`, read in a new request of `scope`: the servers say who answered. */
  function readBack(scope: string, prefix: string) {
    return where(async () => (await runWithScope(scope, () => c.db.post.findMany({ where: { title: { startsWith: prefix } }, orderBy: { id: "asc" } }))).map((p) => p.title));
  }

  describe.each(Object.keys(FORMS) as Array<keyof typeof FORMS>)("a write as %s", (form) => {
    it.each(WRITES)("$name: recorded once; the next request of the scope sees it", async (path) => {
      const post = seeded.get(`${form}/${path.name}`) ?? { title: unique(path.name.replace(/\W+/g, "-")), id: -1 };
      const scope = unique("path");
      const write = await captures(() => runWithScope(scope, () => FORMS[form](c.db, path.write(c.db, post))), c.rw.ryw);
      expect(write.captures).toBe(1);
      const read = await readBack(scope, post.title);
      expect(read.value).toEqual(path.after(post));
      // Neither paused replica has the write; reading from one would show the old state.
      expect(read.ran).toEqual({ primary: 1, r0: 0, r1: 0 });
    });
  });

  describe("reads in a batch", () => {
    it.each<[string, () => Promise<unknown>]>([
      ["a batch of one read", () => c.db.$transaction([c.db.post.findMany({ where: { authorId: author }, take: 1 })])],
      ["a batch of reads", () => c.db.$transaction([c.db.post.count({ where: { authorId: author } }), c.db.post.findMany({ where: { authorId: author }, take: 1 })])],
      ["a batch of findUnique reads", () => c.db.$transaction([c.db.user.findUnique({ where: { id: author } }), c.db.user.findUnique({ where: { id: -1 } })])],
    ])("%s: on the primary, records nothing, and the scope keeps reading replicas", async (_, batch) => {
      const scope = unique("read-batch");
      const reads = await captures(() => where(() => runWithScope(scope, batch)));
      expect(reads.captures).toBe(0);
      expect(reads.value.ran.r0 + reads.value.ran.r1).toBe(0);
      expect(reads.value.ran.primary).toBeGreaterThan(0);
      const next = await where(() => runWithScope(scope, () => c.db.post.count({ where: { authorId: author } })));
      expect(next.ran.primary).toBe(0);
      expect(next.ran.r0 + next.ran.r1).toBe(1);
    });
  });

  describe("a client without the extension (same adapter)", () => {
    it("its writes in a scope are recorded, its reads and its unscoped writes capture nothing", async () => {
      const scope = unique("base");
      const title = unique("base");
      const write = await captures(() => runWithScope(scope, () => c.base.post.create({ data: { authorId: author, title } })));
      expect(write.captures).toBe(1);
      const read = await readBack(scope, title);
      expect(read.value).toEqual([title]);
      expect(read.ran).toEqual({ primary: 1, r0: 0, r1: 0 });

      const reads = await captures(() => runWithScope(unique("base-reads"), async () => {
        await c.base.post.findMany({ where: { title } });
        await c.base.post.count({ where: { authorId: author } });
        await c.base.$queryRaw`select id from "Post" where title = ${title}`;
      }));
      expect(reads.captures).toBe(0);
      const unscoped = await captures(() => c.base.post.create({ data: { authorId: author, title: unique("base-unscoped") } }));
      expect(unscoped.captures).toBe(0);
    });
  });

  describe("a batch that Prisma starts from another call's async context", () => {
    // Prisma's dataloader starts every batch collected in one tick from the async context of the
    // call that reached it first. Which one that is depends on how many awaits each path takes, so
    // the batch under test starts after 0..20 extra microtasks: some of them join a tick that the
    // other call opened, and run in its context (a findUnique routed to a replica, another scope's
    // batch, an interactive transaction).
    const others: Record<string, (late: () => Promise<unknown>) => Promise<unknown>> = {
      "an unscoped findUnique": (late) => Promise.all([c.db.user.findUnique({ where: { id: author } }), late()]),
      "another scope's batch of one": (late) => Promise.all([
        runWithScope(unique("other"), () => c.db.$transaction([c.db.post.create({ data: { authorId: author, title: unique("other") } })])),
        late(),
      ]),
      "an interactive transaction of another scope": (late) => runWithScope(unique("itx"), () => c.db.$transaction(async (tx) => Promise.all([tx.user.findUnique({ where: { id: author } }), late()]))),
    };
    interface Late {
      /** Runs before, in the scope: what the batch must see. */
      before?: (title: string) => Promise<void>;
      batch: (title: string) => Promise<unknown>;
      check: (scope: string, title: string, result: unknown, captured: number) => Promise<void>;
    }
    const sees = (copies: number) => async (scope: string, title: string, _result: unknown, captured: number) => {
      expect(captured).toBeGreaterThan(0);
      const read = await readBack(scope, title);
      expect(read.value).toEqual(Array.from({ length: copies }, () => title));
      expect(read.ran).toEqual({ primary: 1, r0: 0, r1: 0 });
    };
    const lates: Record<string, Late> = {
      "a batch of one write": {
        batch: (title) => c.db.$transaction([c.db.post.create({ data: { authorId: author, title } })]),
        check: sees(1),
      },
      "a batch of two writes": {
        batch: (title) => c.db.$transaction([c.db.post.create({ data: { authorId: author, title } }), c.db.post.create({ data: { authorId: author, title } })]),
        check: sees(2),
      },
      // Prisma merges them into one statement and runs it without a transaction.
      "a batch of findUnique reads of the scope's own write": {
        before: async (title) => void (await c.db.user.create({ data: { email: `${title}@example.com` } })),
        batch: (title) => c.db.$transaction([c.db.user.findUnique({ where: { email: `${title}@example.com` } }), c.db.user.findUnique({ where: { email: "nobody@example.com" } })]),
        check: async (_scope, title, result) => {
          expect((result as Array<{ email: string } | null>).map((u) => u?.email)).toEqual([`${title}@example.com`, undefined]);
        },
      },
    };

    for (const [otherName, other] of Object.entries(others)) {
      for (const [lateName, { before, batch, check }] of Object.entries(lates)) {
        it(`${lateName}, next to ${otherName}: on the primary, and recorded for its own scope`, async () => {
          for (let delay = 0; delay <= 20; delay++) {
            const scope = unique("late");
            const title = unique("late");
            await runWithScope(scope, async () => await before?.(title));
            let result: unknown;
            const late = () => runWithScope(scope, async () => {
              for (let i = 0; i < delay; i++) await Promise.resolve();
              result = await batch(title);
            });
            const { captures: captured } = await captures(() => other(late));
            await check(scope, title, result, captured).catch((error: unknown) => {
              throw new Error(`delay ${delay}: ${String(error)}`, { cause: error });
            });
          }
        });
      }
    }
  });
});
