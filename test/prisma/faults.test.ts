import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore, runWithScope } from "@ryw/prisma";
import { killReplica, startRedis, startReplica, stopRedis, waitFor, waitForReplicas } from "../harness/index.js";
import { closeServers, cluster, makeClient, seedUser, unique, where, FORMS as CLIENT_FORMS } from "./helpers.js";

afterAll(closeServers);

// Every test runs against both forms: `prisma.$extends(ryw())` and `new PrismaClient({ adapter: rw.adapter }).$extends(rw)`.
describe.each(CLIENT_FORMS)("%s", (form) => {
  let author: number;

  beforeAll(async () => {
    author = await seedUser("faults");
    await waitForReplicas(cluster);
  });

  describe("faults", () => {
    it("Redis stopped: scoped reads go to the primary and writes succeed", async () => {
      const c = await makeClient({ store: new RedisStore({ url: cluster.redis!.url }), speculate: false, storeRetryMs: 50 }, form);
      try {
        await stopRedis(cluster);
        const scope = unique("no-redis");
        const title = unique("no-redis");
        const write = await where(() => runWithScope(scope, async () => await c.db.post.create({ data: { authorId: author, title } })));
        expect(write.value.title).toBe(title);
        // A new request of the same scope: it knows nothing but what the (missing) store would say.
        const read = await where(() => runWithScope(scope, async () => await c.db.post.findMany({ where: { title } })));
        expect(read.value).toHaveLength(1);
        expect(read.ran).toEqual({ primary: 1, r0: 0, r1: 0 });
        const other = await where(() => runWithScope(unique("other"), async () => await c.db.post.count({ where: { authorId: author } })));
        expect(other.ran).toEqual({ primary: 1, r0: 0, r1: 0 });
        expect(c.rw.ryw.stats().routes["store-unavailable"]?.primary).toBeGreaterThan(0);
      } finally {
        await startRedis(cluster);
        await c.close();
      }
    });

    it("a replica killed mid-run: no read fails; it is excluded, then readmitted after restart", async () => {
      const c = await makeClient({ tracker: { intervalMs: 20, maxBackoffMs: 100 } }, form);
      let failed = 0;
      let reads = 0;
      let stop = false;
      const load = async () => {
        while (!stop) {
          try {
            await c.db.post.findMany({ where: { authorId: author }, take: 5 });
            await c.db.user.findUnique({ where: { id: author } });
            reads += 2;
          } catch {
            failed++;
          }
        }
      };
      const workers = [load(), load(), load()];
      try {
        await waitFor(() => reads > 50, 10_000, "reads to flow");
        await killReplica(cluster, 1);
        await waitFor(() => c.rw.ryw.stats().replicas[1]!.status === "down", 10_000, "r1 to be marked down");
        const excluded = await where(async () => {
          const before = reads;
          await waitFor(() => reads > before + 50, 10_000, "reads to go on");
        });
        expect(excluded.ran.r1).toBe(0);
        expect(excluded.ran.r0).toBeGreaterThan(0);
        await startReplica(cluster, 1);
        await waitFor(() => c.rw.ryw.stats().replicas[1]!.status === "up", 15_000, "r1 to be readmitted");
        const readmitted = await where(async () => {
          const before = reads;
          await waitFor(() => reads > before + 50, 10_000, "reads to go on");
        });
        expect(readmitted.ran.r1).toBeGreaterThan(0);
      } finally {
        stop = true;
        await Promise.all(workers);
        await startReplica(cluster, 1).catch(() => {});
        await waitForReplicas(cluster, 20_000);
        await c.close();
      }
      expect(failed).toBe(0);
    });
  });
});
