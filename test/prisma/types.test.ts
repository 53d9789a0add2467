import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expectTypeOf, it } from "vitest";
import type { RywHandle } from "@ryw/prisma";
import { PrismaPg } from "@prisma/adapter-pg";
import { ryw } from "@ryw/prisma";
import type { Post, User } from "../../packages/prisma/test/generated/prisma/client.js";
import { PrismaClient } from "../../packages/prisma/test/generated/prisma/client.js";

// Type-level: the assertions below mean something only to the compiler, so the last test runs
// tsc over this folder (test/prisma/tsconfig.json). Nothing here touches a server.
function client() {
  const rw = ryw({ primary: "postgres://localhost/none", replicas: [] });
  return new PrismaClient({ adapter: rw.adapter }).$extends(rw);
}

function oneLiner() {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: "postgres://localhost/none" }) }).$extends(ryw({ replicas: [] }));
}

describe("types through the extension", () => {
  it("the one-liner gives the same client type as the two-place form", () => {
    expectTypeOf<ReturnType<typeof oneLiner>>().toEqualTypeOf<ReturnType<typeof client>>();
  });

  it("keeps Prisma's model types", () => {
    type Db = ReturnType<typeof client>;
    expectTypeOf<Awaited<ReturnType<Db["post"]["findMany"]>>>().toEqualTypeOf<Post[]>();
    const db = null as unknown as Db;
    const withAuthor = () => db.post.findMany({ include: { author: true }, where: { published: true } });
    expectTypeOf<Awaited<ReturnType<typeof withAuthor>>[number]["author"]>().toEqualTypeOf<User>();
    const picked = () => db.post.findMany({ select: { id: true, title: true } });
    expectTypeOf<Awaited<ReturnType<typeof picked>>>().toEqualTypeOf<Array<{ id: number; title: string }>>();
    const scoped = () => db.$scope("user-1").post.findFirst({ where: { id: 1 } });
    expectTypeOf<Awaited<ReturnType<typeof scoped>>>().toEqualTypeOf<Post | null>();
    const onPrimary = () => db.$primary().user.findUnique({ where: { id: 1 } });
    expectTypeOf<Awaited<ReturnType<typeof onPrimary>>>().toEqualTypeOf<User | null>();
    const raw = () => db.$replica().$queryRaw<Array<{ n: number }>>`select 1 as n`;
    expectTypeOf<Awaited<ReturnType<typeof raw>>>().toEqualTypeOf<Array<{ n: number }>>();
    expectTypeOf<Db["$ryw"]>().toEqualTypeOf<RywHandle>();
    // @ts-expect-error: not a field of Post
    void (() => db.post.findMany({ where: { nope: 1 } }));
  });
});

it("test/prisma type-checks (including the assertions above)", () => {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  execFileSync(process.execPath, [tsc, "-p", join(import.meta.dirname, "tsconfig.json")], { encoding: "utf8", stdio: "pipe" });
}, 120_000);
