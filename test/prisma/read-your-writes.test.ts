import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore, runWithScope } from "@ryw/prisma";
import { pauseReplay, resumeReplay, setApplyDelay, waitForReplicas } from "../harness/index.js";
import { closeServers, cluster, makeClient, seedUser, unique, where, FORMS as CLIENT_FORMS } from "./helpers.js";

afterAll(closeServers);

// Every test runs against both forms: `prisma.$extends(ryw())` and `new PrismaClient({ adapter: rw.adapter }).$extends(rw)`.
describe.each(CLIENT_FORMS)("%s", (form) => {
  let author: number;

  beforeAll(async () => {
    author = await seedUser("ghost");
    await waitForReplicas(cluster);
  });

  describe("read your writes", () => {
    it("the ghost post: create then findMany in the same scope returns the row, 500 times; another scope still reads a replica", async () => {
      // Default options (speculative replica reads included): the answer must be right regardless.
      const c = await makeClient({}, form);
      await pauseReplay(cluster, 0);
      await setApplyDelay(cluster, 1, 200);
      try {
        const scope = unique("ghost");
        let missing = 0;
        for (let i = 0; i < 500; i++) {
          const title = unique("ghost");
          const posts = await runWithScope(scope, async () => {
            await c.db.post.create({ data: { authorId: author, title } });
            return c.db.post.findMany({ where: { authorId: author, title } });
          });
          if (posts.length !== 1) missing++;
        }
        expect(missing).toBe(0);
        const other = await where(() => runWithScope(unique("bystander"), async () => await c.db.post.findMany({ where: { authorId: author }, take: 1 })));
        expect(other.ran.primary).toBe(0);
        expect(other.ran.r0 + other.ran.r1).toBe(1);
      } finally {
        await resumeReplay(cluster, 0);
        await setApplyDelay(cluster, 1, 0);
        await c.close();
      }
    });

    it("multi-device: two app servers (separate clients and trackers) sharing one Redis", async () => {
      const store = () => new RedisStore({ url: cluster.redis!.url });
      const a = await makeClient({ store: store() }, form);
      const b = await makeClient({ store: store() }, form);
      await pauseReplay(cluster, 0);
      await setApplyDelay(cluster, 1, 200);
      try {
        const scope = unique("device");
        let missing = 0;
        for (let i = 0; i < 100; i++) {
          const title = unique("device");
          await runWithScope(scope, async () => await a.db.post.create({ data: { authorId: author, title } }));
          // A separate request on the other server: nothing but the shared store knows the write.
          const seen = await runWithScope(scope, async () => await b.db.post.count({ where: { title } }));
          if (seen !== 1) missing++;
        }
        expect(missing).toBe(0);
        expect(b.rw.ryw.stats().writesRecorded).toBe(0);
        const other = await where(() => runWithScope(unique("bystander"), async () => await b.db.post.count({ where: { authorId: author } })));
        expect(other.ran.primary).toBe(0);
      } finally {
        await resumeReplay(cluster, 0);
        await setApplyDelay(cluster, 1, 0);
        await a.close();
        await b.close();
      }
    });

    it("$scope(id) gives code outside a request the same guarantee", async () => {
      const c = await makeClient({ speculate: false }, form);
      await pauseReplay(cluster, 0);
      await pauseReplay(cluster, 1);
      try {
        const user = c.db.$scope(unique("job"));
        const title = unique("job");
        await user.post.create({ data: { authorId: author, title } });
        const read = await where(() => user.post.findMany({ where: { title } }));
        expect(read.value).toHaveLength(1);
        expect(read.ran).toEqual({ primary: 1, r0: 0, r1: 0 });
        const unscoped = await where(() => c.db.post.findMany({ where: { title } }));
        expect(unscoped.value).toHaveLength(0);
        expect(unscoped.ran.primary).toBe(0);
      } finally {
        await resumeReplay(cluster, 0);
        await resumeReplay(cluster, 1);
        await c.close();
      }
    });
  });
});
