import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
import { withSql } from "./harness/index.js";

/**
 * Every TypeScript block of the README runs as written against the test cluster: each becomes a
 * module with a small prelude (an `app` whose middleware runs once, and the few free variables
 * the snippets use), with the cluster's URLs in DATABASE_URL, DATABASE_REPLICA_URLS and REDIS_URL.
 */
const root = join(import.meta.dirname, "..");
const readme = readFileSync(join(root, "README.md"), "utf8");
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
const dir = join(root, "test", ".readme-blocks");
const cluster = inject("cluster");

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("README code blocks", () => {
  it("has TypeScript blocks to check", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(3);
  });

  it.each(blocks.map((code, i) => [i + 1, code] as const))("block %i runs against a real cluster", async (i, code) => {
    const [user] = await withSql(cluster.primary.url, (sql) => sql`insert into "User" (email) values (${`readme-${process.pid}-${i}@example.com`}) returning id`);
    const prelude = [
      "// Generated from README.md by test/readme.test.ts.",
      'const app = { use(mw: any) { mw({ user: { id: "readme-user" } }, {}, () => {}); } };',
      `const userId = ${user!.id as number};`,
      "const authorId = userId;",
      'const title = "posted from the README";',
    ].join("\n");
    const body = code
      .replace('from "./generated/prisma/client"', `from ${JSON.stringify(join(root, "packages/prisma/test/generated/prisma/client.js"))}`)
      .replace('from "./schema"', `from ${JSON.stringify(join(root, "test/drizzle/schema.ts"))}`);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `block-${i}.ts`);
    // The snippets leave their connections open, as an app would: end the process once they ran.
    writeFileSync(file, `${prelude}\n${body}\nprocess.exit(0);\n`);
    const env = {
      ...process.env,
      DATABASE_URL: cluster.primary.url,
      DATABASE_REPLICA_URLS: cluster.replicas.map((r) => r.url).join(","),
      REDIS_URL: cluster.redis!.url,
    };
    execFileSync(process.execPath, ["--import", "tsx", file], { cwd: root, env, stdio: "pipe", timeout: 30_000 });
  });
});
