import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { ryw, runWithScope, MemoryStore } from "@ryw/prisma";
import { pauseReplay, resumeReplay, waitForReplicas } from "../harness/index.js";
import { Prisma, PrismaClient } from "../../packages/prisma/test/generated/prisma/client.js";
import { PrismaPg } from "@prisma/adapter-pg";
import type { Form } from "./helpers.js";
import { closeServers, cluster, FORMS, seedUser, unique, where } from "./helpers.js";

let author: number;
beforeAll(async () => {
  author = await seedUser("composition");
  await waitForReplicas(cluster);
});
afterAll(closeServers);

const calls: string[] = [];
const shout = Prisma.defineExtension({ result: { post: { shout: { needs: { title: true }, compute: (post) => post.title.toUpperCase() } } } });
const audit = Prisma.defineExtension({
  query: { post: { async findMany({ args, query }) { calls.push("findMany"); return query(args); } } },
  model: { post: { async titles(authorId: number) { return (await Prisma.getExtensionContext(this).findMany({ where: { authorId } })).map((p: { title: string }) => p.title); } } },
});

function build(form: Form, order: "ryw first" | "ryw last") {
  const rw = ryw({
    ...(form === "two-place" ? { primary: cluster.primary.url } : {}),
    replicas: cluster.replicas.map((r) => ({ name: r.name, adapter: r.url })),
    store: new MemoryStore(),
    speculate: false,
    tracker: { intervalMs: 20 },
  });
  const base = new PrismaClient({ adapter: form === "two-place" ? rw.adapter : new PrismaPg({ connectionString: cluster.primary.url }) });
  const db = order === "ryw first" ? base.$extends(rw).$extends(shout).$extends(audit) : base.$extends(shout).$extends(audit).$extends(rw);
  return { rw, base, db };
}

const CASES = FORMS.flatMap((form) => (["ryw first", "ryw last"] as const).map((order) => [form, order] as const));

describe.each(CASES)("other extensions, %s, %s", (form, order) => {
  it("apply to rerouted reads and to reads kept on the primary", async () => {
    const { rw, base, db } = build(form, order);
    try {
      await rw.ryw.ready();
      const title = unique("compose");
      await base.post.create({ data: { authorId: author, title } });
      await waitForReplicas(cluster);
      await rw.ryw.tracker.refresh();
      calls.length = 0;
      const read = await where(async () => ({
        posts: await db.post.findMany({ where: { title } }),
        selected: await db.post.findFirst({ where: { title }, select: { shout: true } }),
        titles: await db.post.titles(author),
      }));
      expect(read.ran.primary).toBe(0);
      expect(read.ran.r0 + read.ran.r1).toBe(3);
      expect(read.value.posts[0]!.shout).toBe(title.toUpperCase());
      expect(Object.keys(read.value.selected!)).toEqual(["shout"]);
      expect(read.value.selected!.shout).toBe(title.toUpperCase());
      expect(read.value.titles).toContain(title);
      expect(calls).toEqual(["findMany", "findMany"]);
      expectTypeOf(read.value.posts[0]!.shout).toEqualTypeOf<string>();

      await pauseReplay(cluster, 0);
      await pauseReplay(cluster, 1);
      try {
        const written = unique("compose");
        const mine = await where(() => runWithScope(unique("writer"), async () => {
          await db.post.create({ data: { authorId: author, title: written } });
          return db.post.findMany({ where: { title: written } });
        }));
        expect(mine.value[0]!.shout).toBe(written.toUpperCase());
        expect(mine.ran).toEqual({ primary: 2, r0: 0, r1: 0 });
      } finally {
        await resumeReplay(cluster, 0);
        await resumeReplay(cluster, 1);
      }
    } finally {
      await base.$disconnect();
      await rw.ryw.close();
    }
  });
});
