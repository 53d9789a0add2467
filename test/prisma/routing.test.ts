import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runWithScope } from "@ryw/prisma";
import { pauseReplay, resumeReplay, waitForReplicas } from "../harness/index.js";
import { closeServers, cluster, makeClient, seedUser, servers, unique, where, FORMS as CLIENT_FORMS } from "./helpers.js";

afterAll(closeServers);

// Every test runs against both forms: `prisma.$extends(ryw())` and `new PrismaClient({ adapter: rw.adapter }).$extends(rw)`.
describe.each(CLIENT_FORMS)("%s", (form) => {
  // Where each call ran, as the servers' pg_stat_statements counters tell it.
  let c: Awaited<ReturnType<typeof makeClient>>;
  let author: number;

  beforeAll(async () => {
    // No speculative replica queries: every statement a server counts is one whose answer was used.
    c = await makeClient({ speculate: false }, form);
    author = await seedUser("routing");
    await servers.primary`insert into "Post" ("authorId", title) values (${author}, 'seed-1'), (${author}, 'seed-2')`;
    await waitForReplicas(cluster);
  });
  afterAll(async () => {
    await c.close();
  });


  describe("reads without a scope go to a replica", () => {
    const reads: Record<string, () => Promise<unknown>> = {
      findUnique: () => c.db.user.findUnique({ where: { id: author } }),
      findUniqueOrThrow: () => c.db.user.findUniqueOrThrow({ where: { id: author } }),
      findFirst: () => c.db.post.findFirst({ where: { authorId: author } }),
      findFirstOrThrow: () => c.db.post.findFirstOrThrow({ where: { authorId: author } }),
      findMany: () => c.db.post.findMany({ where: { authorId: author } }),
      count: () => c.db.post.count({ where: { authorId: author } }),
      aggregate: () => c.db.post.aggregate({ where: { authorId: author }, _max: { id: true } }),
      groupBy: () => c.db.post.groupBy({ by: ["authorId"], where: { authorId: author }, _count: true }),
      "findMany with include": () => c.db.user.findMany({ where: { id: author }, include: { posts: true } }),
    };
    for (const [name, read] of Object.entries(reads)) {
      it(name, async () => {
        const { value, ran } = await where(read);
        expect(value).toBeTruthy();
        expect(ran.primary).toBe(0);
        expect(ran.r0 + ran.r1).toBeGreaterThan(0);
      });
    }
  });

  describe("writes go to the primary and are recorded before they resolve", () => {
    // Both replicas paused: a read in the writing scope can only see the write on the primary,
    // so a read that lands there proves the write's position was recorded for the scope.
    beforeAll(async () => {
      await pauseReplay(cluster, 0);
      await pauseReplay(cluster, 1);
    });
    afterAll(async () => {
      await resumeReplay(cluster, 0);
      await resumeReplay(cluster, 1);
      await waitForReplicas(cluster);
    });

    const writes: Record<string, (title: string) => Promise<unknown>> = {
      create: (title) => c.db.post.create({ data: { authorId: author, title } }),
      "create with nested writes": (title) => c.db.user.create({ data: { email: `${title}@example.com`, posts: { create: [{ title }, { title }] } } }),
      createMany: (title) => c.db.post.createMany({ data: [{ authorId: author, title }, { authorId: author, title }] }),
      createManyAndReturn: (title) => c.db.post.createManyAndReturn({ data: [{ authorId: author, title }] }),
      update: async (title) => {
        const post = await c.base.post.create({ data: { authorId: author, title: "before" } });
        return c.db.post.update({ where: { id: post.id }, data: { title } });
      },
      updateMany: async (title) => {
        await c.base.post.create({ data: { authorId: author, title: `${title}-old` } });
        return c.db.post.updateMany({ where: { title: `${title}-old` }, data: { title } });
      },
      updateManyAndReturn: async (title) => {
        await c.base.post.create({ data: { authorId: author, title: `${title}-old` } });
        return c.db.post.updateManyAndReturn({ where: { title: `${title}-old` }, data: { title } });
      },
      "upsert (insert)": (title) => c.db.user.upsert({ where: { email: `${title}@example.com` }, create: { email: `${title}@example.com`, name: title }, update: {} }),
      "upsert (update)": async (title) => {
        await c.base.user.create({ data: { email: `${title}@example.com` } });
        return c.db.user.upsert({ where: { email: `${title}@example.com` }, create: { email: `${title}@example.com` }, update: { name: title } });
      },
      $executeRaw: (title) => c.db.$executeRaw`insert into "Post" ("authorId", title) values (${author}, ${title})`,
      $executeRawUnsafe: (title) => c.db.$executeRawUnsafe(`insert into "Post" ("authorId", title) values ($1, $2)`, author, title),
      "$queryRaw (may write, so a write by default)": (title) => c.db.$queryRaw`insert into "Post" ("authorId", title) values (${author}, ${title}) returning id`,
      $queryRawUnsafe: (title) => c.db.$queryRawUnsafe(`insert into "Post" ("authorId", title) values ($1, $2) returning id`, author, title),
    };

    for (const [name, write] of Object.entries(writes)) {
      it(name, async () => {
        const title = unique(name.replace(/\W+/g, "-"));
        const scope = unique("writer");
        const { ran } = await where(() => runWithScope(scope, async () => await write(title)));
        expect(ran.primary).toBeGreaterThan(0);
        expect(ran.r0 + ran.r1).toBe(0);
        const read = await where(() => runWithScope(scope, async () => await c.db.post.count({ where: { title } }) + await c.db.user.count({ where: { OR: [{ email: `${title}@example.com` }, { name: title }] } })));
        expect(read.value).toBeGreaterThan(0);
        expect(read.ran).toEqual({ primary: 2, r0: 0, r1: 0 });
      });
    }

    it("delete and deleteMany", async () => {
      await resumeReplay(cluster, 0);
      await resumeReplay(cluster, 1);
      const posts = await c.base.post.createManyAndReturn({ data: [{ authorId: author, title: unique("del") }, { authorId: author, title: unique("del") }] });
      await waitForReplicas(cluster);
      await pauseReplay(cluster, 0);
      await pauseReplay(cluster, 1);
      const scope = unique("deleter");
      const { ran } = await where(() => runWithScope(scope, async () => {
        await c.db.post.delete({ where: { id: posts[0]!.id } });
        await c.db.post.deleteMany({ where: { id: posts[1]!.id } });
      }));
      expect(ran.primary).toBe(2);
      expect(ran.r0 + ran.r1).toBe(0);
      // Deleted on the primary, still there on the paused replicas: the scope must not see them.
      const read = await where(() => runWithScope(scope, async () => await c.db.post.count({ where: { id: { in: posts.map((p) => p.id) } } })));
      expect(read.value).toBe(0);
      expect(read.ran.primary).toBe(1);
      const other = await where(() => runWithScope(unique("bystander"), async () => await c.db.post.count({ where: { id: { in: posts.map((p) => p.id) } } })));
      expect(other.value).toBe(2);
      expect(other.ran.primary).toBe(0);
    });
  });

  describe("raw queries and escape hatches", () => {
    it("$queryRaw goes to the primary by default", async () => {
      const { value, ran } = await where(() => c.db.$queryRaw<Array<{ n: number }>>`select count(*)::int as n from "Post"`);
      expect(value[0]!.n).toBeGreaterThan(0);
      expect(ran).toEqual({ primary: 1, r0: 0, r1: 0 });
    });

    it("$replica() sends read-only raw queries through the router", async () => {
      const a = await where(() => c.db.$replica().$queryRaw<Array<{ n: number }>>`select count(*)::int as n from "Post"`);
      expect(a.ran.primary).toBe(0);
      expect(a.ran.r0 + a.ran.r1).toBe(1);
      const b = await where(() => c.db.$replica().$queryRawUnsafe(`select count(*)::int as n from "Post" where "authorId" = $1`, author));
      expect(b.ran.primary).toBe(0);
      expect(b.ran.r0 + b.ran.r1).toBe(1);
      const d = await where(() => c.db.$replica().post.findMany({ where: { authorId: author } }));
      expect(d.ran.primary).toBe(0);
    });

    it("$primary() sends reads to the primary", async () => {
      const { ran } = await where(async () => {
        await c.db.$primary().post.findMany({ where: { authorId: author } });
        await c.db.$primary().user.findUnique({ where: { id: author } });
      });
      expect(ran).toEqual({ primary: 2, r0: 0, r1: 0 });
    });

    it("$primary() and $replica() inside a transaction stay in the transaction", async () => {
      const title = unique("in-tx");
      const { value, ran } = await where(() => c.db.$transaction(async (tx) => {
        await tx.post.create({ data: { authorId: author, title } });
        // Uncommitted: only the transaction's own connection can see it.
        return [await tx.$replica().post.count({ where: { title } }), await tx.$primary().post.count({ where: { title } }), await tx.$replica().$queryRaw<Array<{ n: number }>>`select count(*)::int as n from "Post" where title = ${title}`];
      }));
      expect(value[0]).toBe(1);
      expect(value[1]).toBe(1);
      expect((value[2] as Array<{ n: number }>)[0]!.n).toBe(1);
      expect(ran.r0 + ran.r1).toBe(0);
    });
  });
});
