import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryStore, runWithScope } from "@ryw/prisma";
import { pauseReplay, resumeReplay, waitForReplicas } from "../harness/index.js";
import { closeServers, cluster, makeClient, seedUser, unique, where, FORMS as CLIENT_FORMS } from "./helpers.js";

afterAll(closeServers);

// Every test runs against both forms: `prisma.$extends(ryw())` and `new PrismaClient({ adapter: rw.adapter }).$extends(rw)`.
describe.each(CLIENT_FORMS)("%s", (form) => {
  let author: number;

  beforeAll(async () => {
    author = await seedUser("strategies");
    await waitForReplicas(cluster);
    // Replicas frozen for the whole file: a stale read is visible as a missing row.
    await pauseReplay(cluster, 0);
    await pauseReplay(cluster, 1);
  });
  afterAll(async () => {
    await resumeReplay(cluster, 0);
    await resumeReplay(cluster, 1);
    await waitForReplicas(cluster);
  });

  describe("strategies", () => {
    it("primary: every read goes to the primary, with or without a scope", async () => {
      const c = await makeClient({ strategy: "primary" }, form);
      try {
        const { ran } = await where(async () => {
          await c.db.post.findMany({ where: { authorId: author } });
          await runWithScope(unique("s"), async () => await c.db.post.count());
          await c.db.user.findUnique({ where: { id: author } });
        });
        expect(ran).toEqual({ primary: 3, r0: 0, r1: 0 });
      } finally {
        await c.close();
      }
    });

    it("time-window: the scope reads the primary for windowMs after a write, then replicas again", async () => {
      const windowMs = 1000;
      const c = await makeClient({ strategy: "time-window", windowMs, speculate: false }, form);
      try {
        const scope = unique("window");
        const title = unique("window");
        await runWithScope(scope, async () => await c.db.post.create({ data: { authorId: author, title } }));
        // A new request of the scope, inside the window: primary.
        const inside = await where(() => runWithScope(scope, async () => await c.db.post.findMany({ where: { title } })));
        expect(inside.value).toHaveLength(1);
        expect(inside.ran).toEqual({ primary: 1, r0: 0, r1: 0 });
        await new Promise((resolve) => setTimeout(resolve, windowMs + 50));
        // Past the window a replica answers, even one that has not replayed the write: that is
        // the strategy's documented weakness, and why `lsn` is the default.
        const after = await where(() => runWithScope(scope, async () => await c.db.post.findMany({ where: { title } })));
        expect(after.ran.primary).toBe(0);
        expect(after.value).toHaveLength(0);
      } finally {
        await c.close();
      }
    });

    it("token: the position travels with the client as a signed token, with no shared store", async () => {
      const tokenKeys = ["test-secret-0123456789abcdef"];
      // Two app servers, each with only its own memory: the token is all they share.
      const a = await makeClient({ strategy: "token", tokenKeys, store: new MemoryStore(), speculate: false }, form);
      const b = await makeClient({ strategy: "token", tokenKeys, store: new MemoryStore(), speculate: false }, form);
      try {
        const scope = unique("token");
        const title = unique("token");
        const token = await runWithScope(scope, async () => {
          await a.db.post.create({ data: { authorId: author, title } });
          return a.rw.ryw.commitToken();
        });
        expect(typeof token).toBe("string");
        const withToken = await where(() => runWithScope({ scope, token }, async () => await b.db.post.findMany({ where: { title } })));
        expect(withToken.value).toHaveLength(1);
        expect(withToken.ran).toEqual({ primary: 1, r0: 0, r1: 0 });
        // Without the token, server b has no way to know: a replica answers, without the row.
        const without = await where(() => runWithScope(scope, async () => await b.db.post.findMany({ where: { title } })));
        expect(without.value).toHaveLength(0);
        expect(without.ran.primary).toBe(0);
        // A forged token is not trusted: primary.
        const forged = await where(() => runWithScope({ scope, token: `${token!.slice(0, -2)}xx` }, async () => await b.db.post.findMany({ where: { title } })));
        expect(forged.value).toHaveLength(1);
        expect(forged.ran).toEqual({ primary: 1, r0: 0, r1: 0 });
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
});
