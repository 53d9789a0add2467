import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryStore, runWithScope } from "@ryw/prisma";
import { pauseReplay, resumeReplay, waitForReplicas } from "../harness/index.js";
import { captures, closeServers, cluster, makeClient, seedUser, unique, where, FORMS as CLIENT_FORMS } from "./helpers.js";

afterAll(closeServers);

// Every test runs against both forms: `prisma.$extends(ryw())` and `new PrismaClient({ adapter: rw.adapter }).$extends(rw)`.
describe.each(CLIENT_FORMS)("%s", (form) => {
  let c: Awaited<ReturnType<typeof makeClient>>;
  let author: number;

  beforeAll(async () => {
    // No background polling during a test, so that every position capture the primary counts
    // comes from a commit; no speculative replica queries, so that every counted read was used.
    c = await makeClient({ speculate: false, tracker: { intervalMs: 60_000 } }, form);
    author = await seedUser("tx");
    await waitForReplicas(cluster);
    await c.rw.ryw.tracker.refresh();
  });
  afterAll(async () => {
    await c.close();
  });

  describe("transactions", () => {
    it("interactive and batch: the position captured after the commit is stored with the timeline the primary reported with it", async () => {
      // What lets another app server notice a PostgreSQL failover before its tracker polls (core's Rule 3).
      const store = new MemoryStore();
      const own = await makeClient({ store, speculate: false }, form);
      try {
        const [itx, batch] = [unique("itx-tl"), unique("batch-tl")];
        await runWithScope(itx, () => own.db.$transaction(async (tx) => tx.post.create({ data: { authorId: author, title: itx } })));
        await runWithScope(batch, () => own.db.$transaction([own.db.post.create({ data: { authorId: author, title: batch } }), own.db.post.count()]));
        for (const scope of [itx, batch]) expect(await store.lookup(scope)).toMatchObject({ pending: false, timeline: own.rw.ryw.tracker.timeline!.id });
        expect(own.rw.ryw.tracker.timeline!.id).toBeGreaterThanOrEqual(1);
      } finally {
        await own.close();
      }
    });

    it("interactive: runs wholly on the primary, captures the position once, and the next read sees it", async () => {
      await pauseReplay(cluster, 0);
      try {
        const scope = unique("itx");
        const title = unique("itx");
        await runWithScope(scope, async () => {
          const tx = await captures(() => where(() => c.db.$transaction(async (tx) => {
            await tx.post.create({ data: { authorId: author, title } });
            await tx.post.update({ where: { id: (await tx.post.findFirstOrThrow({ where: { title } })).id }, data: { body: "x" } });
            await tx.post.create({ data: { authorId: author, title } });
            return tx.post.count({ where: { title } });
          })));
          expect(tx.value.value).toBe(2);
          expect(tx.value.ran.r0 + tx.value.ran.r1).toBe(0);
          expect(tx.captures).toBe(1);
          await c.rw.ryw.tracker.refresh();
          const read = await where(() => c.db.post.findMany({ where: { title } }));
          expect(read.value).toHaveLength(2);
          // r0 has not replayed the commit: the read went to r1 once it caught up, or to the primary.
          expect(read.ran.r0).toBe(0);
          expect(read.ran.primary + read.ran.r1).toBe(1);
        });
      } finally {
        await resumeReplay(cluster, 0);
      }
    });

    it("batch: every statement on the primary, one capture", async () => {
      await pauseReplay(cluster, 0);
      await pauseReplay(cluster, 1);
      try {
        const title = unique("batch");
        await runWithScope(unique("batch"), async () => {
          const tx = await captures(() => where(() => c.db.$transaction([
            c.db.post.create({ data: { authorId: author, title } }),
            c.db.post.createMany({ data: [{ authorId: author, title }] }),
            c.db.post.findMany({ where: { title } }),
            c.db.post.count({ where: { title } }),
          ])));
          expect(tx.value.value[3]).toBe(2);
          expect(tx.value.ran.r0 + tx.value.ran.r1).toBe(0);
          expect(tx.captures).toBe(1);
          const read = await where(() => c.db.post.count({ where: { title } }));
          expect(read.value).toBe(2);
          expect(read.ran).toEqual({ primary: 1, r0: 0, r1: 0 });
        });
      } finally {
        await resumeReplay(cluster, 0);
        await resumeReplay(cluster, 1);
      }
    });

    it("nested transactions (savepoints): one capture after the outermost commit; rolled-back inner work stays invisible", async () => {
      await pauseReplay(cluster, 0);
      await pauseReplay(cluster, 1);
      try {
        const title = unique("nested");
        await runWithScope(unique("nested"), async () => {
          const tx = await captures(() => c.db.$transaction(async (tx) => {
            await tx.post.create({ data: { authorId: author, title: `${title}-outer` } });
            await tx.$transaction(async (inner) => {
              await inner.post.create({ data: { authorId: author, title: `${title}-inner` } });
            });
            await expect(tx.$transaction(async (inner) => {
              await inner.post.create({ data: { authorId: author, title: `${title}-undone` } });
              throw new Error("undo inner");
            })).rejects.toThrow("undo inner");
          }));
          expect(tx.captures).toBe(1);
          const read = await where(() => c.db.post.findMany({ where: { title: { startsWith: title } }, orderBy: { id: "asc" } }));
          expect(read.value.map((p) => p.title)).toEqual([`${title}-outer`, `${title}-inner`]);
          expect(read.ran).toEqual({ primary: 1, r0: 0, r1: 0 });
        });
      } finally {
        await resumeReplay(cluster, 0);
        await resumeReplay(cluster, 1);
      }
    });

    it("a rolled-back transaction captures nothing and its scope keeps reading replicas", async () => {
      await waitForReplicas(cluster);
      await c.rw.ryw.tracker.refresh();
      const title = unique("rollback");
      await runWithScope(unique("rollback"), async () => {
        const tx = await captures(async () => {
          await expect(c.db.$transaction(async (tx) => {
            await tx.post.create({ data: { authorId: author, title } });
            throw new Error("roll back");
          })).rejects.toThrow("roll back");
        });
        expect(tx.captures).toBe(0);
        const read = await where(() => c.db.post.count({ where: { title } }));
        expect(read.value).toBe(0);
        expect(read.ran.primary).toBe(0);
      });
    });

    it("a nested write (Prisma's implicit transaction) is recorded once", async () => {
      await pauseReplay(cluster, 0);
      await pauseReplay(cluster, 1);
      try {
        const email = `${unique("nested-write")}@example.com`;
        await runWithScope(unique("nested-write"), async () => {
          const write = await captures(() => c.db.user.create({ data: { email, posts: { create: [{ title: "a" }, { title: "b" }] } } }), c.rw.ryw);
          expect(write.captures).toBe(1);
          const read = await where(() => c.db.user.findUnique({ where: { email }, include: { posts: true } }));
          expect(read.value?.posts).toHaveLength(2);
          expect(read.ran.r0 + read.ran.r1).toBe(0);
        });
      } finally {
        await resumeReplay(cluster, 0);
        await resumeReplay(cluster, 1);
      }
    });
  });
});
