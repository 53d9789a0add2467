import Fastify from "fastify";
import { afterAll, expect, it } from "vitest";
import { getScope, isRywError } from "../../src/index.js";
import { rywFastify } from "../../src/http/fastify.js";

/** Where in Fastify's lifecycle the scope is entered, on a real server over loopback. */
const apps: Array<{ close(): Promise<unknown> }> = [];
afterAll(() => Promise.all(apps.map((app) => app.close())));

async function start(hook?: "onRequest" | "preHandler") {
  const app = Fastify();
  apps.push(app);
  await app.register(rywFastify, { scope: (request) => (request as { user?: string }).user, ...(hook && { hook }) });
  // Auth registered after ryw, as plugins often are: it must still be seen by `scope` by default.
  app.addHook("onRequest", async (request) => {
    (request as { user?: string }).user = String(request.headers["x-user"]);
  });
  const seenIn: Record<string, string | null> = {};
  app.addHook("preValidation", async () => {
    seenIn.preValidation = getScope() ?? null;
  });
  app.post("/", async (request) => ({ ...seenIn, handler: getScope() ?? null, body: request.body }));
  await app.listen({ port: 0, host: "127.0.0.1" });
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}/`;
}

const post = async (url: string) => (await fetch(url, { method: "POST", headers: { "x-user": "dora", "content-type": "application/json" }, body: JSON.stringify({ big: "x".repeat(100_000) }) })).json();

it("enters the scope in preHandler by default, after every auth hook, and keeps it across body parsing", async () => {
  const body = (await post(await start())) as Record<string, unknown>;
  expect(body).toMatchObject({ preValidation: null, handler: "dora" });
  expect((body.body as { big: string }).big).toHaveLength(100_000);
});

it("with hook: onRequest, earlier hooks run in the scope too, but only auth registered before ryw is seen", async () => {
  // The auth hook above is registered after the plugin, so `scope` ran before it: no user yet.
  expect(await post(await start("onRequest"))).toMatchObject({ preValidation: null, handler: null });
  const app = Fastify();
  apps.push(app);
  app.addHook("onRequest", async (request) => {
    (request as { user?: string }).user = "erin";
  });
  await app.register(rywFastify, { scope: (request) => (request as { user?: string }).user, hook: "onRequest" });
  app.addHook("preValidation", async (request) => {
    (request as { seen?: string | null }).seen = getScope() ?? null;
  });
  app.post("/", async (request) => ({ preValidation: (request as { seen?: string | null }).seen, handler: getScope() ?? null }));
  await app.listen({ port: 0, host: "127.0.0.1" });
  expect(await post(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/`)).toEqual({ preValidation: "erin", handler: "erin" });
});

it("refuses an unknown hook when the plugin is registered", async () => {
  const app = Fastify();
  apps.push(app);
  const error = await app.register(rywFastify, { hook: "onSend" as never }).then(() => undefined, (e: unknown) => e);
  expect(isRywError(error, "INVALID_OPTION")).toBe(true);
  expect((error as Error).message).toMatch(/Option `hook` must be one of "onRequest", "preHandler", got "onSend"/);
});
