import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { afterAll, expect, inject, it } from "vitest";

/**
 * The README's "Web frameworks" snippets, type-checked and run as written against the built
 * package. They are fenced as ```ts filename="..." so that test/readme.test.ts, which runs every
 * ```ts block from the repository root, leaves them alone: the frameworks are dev dependencies of
 * @ryw/core, resolvable only from here. Each gets a prelude with the free names the README uses
 * (`ryw`, `createPost`, a signed-in `user` as passport or @fastify/jwt would declare it) and an
 * epilogue that sends one write through the app and prints the cookies that came back.
 */
const cluster = inject("cluster");
const root = join(import.meta.dirname, "../../../..");
const readme = readFileSync(join(root, "README.md"), "utf8");
const start = readme.indexOf("\n## Web frameworks");
const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
const blocks = [...section.matchAll(/```ts filename="([^"]+)"\n([\s\S]*?)```/g)].map((m) => ({ file: m[1]!, code: m[2]! }));
const dir = join(import.meta.dirname, ".readme-blocks");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const prelude = `// Generated from README.md by packages/core/test/http/readme.test.ts.
import { createRyw as __createRyw, postgresJsRunner as __runner } from "@ryw/core";
import __postgres from "postgres";
const __sql = __postgres(process.env.DATABASE_URL!, { max: 1 });
const ryw = __createRyw({ primary: __runner(__sql), replicas: [], strategy: "token", tokenKeys: [process.env.RYW_TOKEN_KEY!] });
/** A write, then its position recorded: what the ORM packages do after a commit. */
async function createPost(_data: unknown): Promise<void> {
  await __sql\`insert into "User" (email) values (\${\`readme-http-\${process.pid}-\${Math.random()}@example.com\`})\`;
  await ryw.afterWrite();
}
async function __report(res: Response) {
  console.log(JSON.stringify({ status: res.status, cookies: res.headers.getSetCookie() }));
  await ryw.close();
  await __sql.end();
}
`;

const extras: Record<string, { before: string; after: string }> = {
  "express.ts": {
    before: 'declare global { namespace Express { interface Request { user?: { id: string } } } }\nimport { once as __once } from "node:events";\n',
    after: `app.post("/posts", async (_req, res) => { await createPost({}); res.status(201).json({ ok: true }); });
const __server = app.listen(0, "127.0.0.1");
await __once(__server, "listening");
const __address = __server.address() as import("node:net").AddressInfo;
await __report(await fetch(\`http://127.0.0.1:\${__address.port}/posts\`, { method: "POST" }));
__server.closeAllConnections();
__server.close();
`,
  },
  "fastify.ts": {
    before: 'declare module "fastify" { interface FastifyRequest { user?: { id: string } } }\n',
    after: `app.post("/posts", async (_request, reply) => { await createPost({}); return reply.code(201).send({ ok: true }); });
await app.listen({ port: 0, host: "127.0.0.1" });
const __address = app.server.address() as import("node:net").AddressInfo;
await __report(await fetch(\`http://127.0.0.1:\${__address.port}/posts\`, { method: "POST" }));
await app.close();
`,
  },
  "hono.ts": {
    before: 'import { serve as __serve } from "@hono/node-server";\nimport { once as __once } from "node:events";\n',
    after: `app.post("/posts", async (c) => { await createPost({}); return c.json({ ok: true }, 201); });
const __server = __serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }) as import("node:http").Server;
await __once(__server, "listening");
const __address = __server.address() as import("node:net").AddressInfo;
await __report(await fetch(\`http://127.0.0.1:\${__address.port}/posts\`, { method: "POST" }));
__server.closeAllConnections();
__server.close();
`,
  },
  "app/api/posts/route.ts": {
    // Next.js calls the handler with a NextRequest; so does this, without a Next server (next.test.ts has one).
    before: 'import { NextRequest as __NextRequest } from "next/server.js";\n',
    after: `await __report(await POST(new __NextRequest("http://localhost/api/posts", { method: "POST", body: "{}" }), { params: Promise.resolve({}) }));
`,
  },
};

it("has a snippet for each framework", () => {
  expect(blocks.map((b) => b.file)).toEqual(Object.keys(extras));
});

it("type-checks the snippets, then runs each against a real server and gets the token cookie", () => {
  mkdirSync(dir, { recursive: true });
  const files = blocks.map(({ file, code }, i) => {
    const name = `block-${i + 1}-${file.replaceAll("/", "-")}`;
    const extra = extras[file]!;
    writeFileSync(join(dir, name), `${prelude}${extra.before}\n${code}\n${extra.after}`);
    return name;
  });
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ extends: "../../../../../tsconfig.json", compilerOptions: { noEmit: true }, include: ["*.ts"] }));
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  try {
    execFileSync(process.execPath, [tsc, "-p", join(dir, "tsconfig.json")], { cwd: dir, encoding: "utf8", stdio: "pipe" });
  } catch (error) {
    throw new Error(`README snippets do not type-check:\n${(error as { stdout?: string }).stdout}`);
  }
  const env = { ...process.env, DATABASE_URL: cluster.primary.url, RYW_TOKEN_KEY: "readme-snippet-token-key-0123456789" };
  for (const file of files) {
    const out = execFileSync(process.execPath, ["--import", "tsx", join(dir, file)], { cwd: dir, env, encoding: "utf8", stdio: "pipe", timeout: 30_000 });
    const report = JSON.parse(out.trim().split("\n").at(-1)!) as { status: number; cookies: string[] };
    expect(report, file).toEqual({ status: 201, cookies: [expect.stringMatching(/^ryw-token=v1\.[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Lax$/)] });
  }
}, 120_000);
