import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { PrismaPg } from "@prisma/adapter-pg";
import { isRywError, ryw, runWithScope } from "@ryw/prisma";
import { waitForReplicas } from "../harness/index.js";
import { PrismaClient } from "../../packages/prisma/test/generated/prisma/client.js";
import { closeServers, cluster, seedUser, where } from "./helpers.js";

let author: number;
beforeAll(async () => {
  author = await seedUser("options");
  await waitForReplicas(cluster);
});
afterAll(closeServers);
afterEach(() => vi.restoreAllMocks());

describe("configuration", () => {
  it("ryw() with no arguments reads DATABASE_URL, DATABASE_REPLICA_URLS and REDIS_URL", async () => {
    const env = { DATABASE_URL: cluster.primary.url, DATABASE_REPLICA_URLS: cluster.replicas.map((r) => r.url).join(" , "), REDIS_URL: cluster.redis!.url };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    const warn = vi.spyOn(console, "warn");
    let rw: ReturnType<typeof ryw> | undefined;
    try {
      rw = ryw();
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    const base = new PrismaClient({ adapter: rw.adapter });
    const db = base.$extends(rw);
    try {
      await rw.ryw.ready();
      expect(rw.ryw.stats().replicas.map((r) => r.status)).toEqual(["up", "up"]);
      const read = await where(() => db.post.findMany({ where: { authorId: author } }));
      expect(read.ran.primary).toBe(0);
      // The store is Redis: a second instance sees the first one's write positions.
      const scope = `env-${Date.now()}`;
      await runWithScope(scope, async () => await db.post.create({ data: { authorId: author, title: scope } }));
      const other = ryw({ primary: cluster.primary.url, replicas: [], env: { REDIS_URL: cluster.redis!.url } });
      try {
        expect(await other.ryw.route({ scope }).then((d) => d.required)).toBeDefined();
      } finally {
        await other.ryw.close();
      }
      expect(warn).not.toHaveBeenCalled();
    } finally {
      await base.$disconnect();
      await rw.ryw.close();
    }
  });

  it("without REDIS_URL, warns that cross-process guarantees are off", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const rw = ryw({ env: { DATABASE_URL: cluster.primary.url } });
    await rw.ryw.close();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/^\[ryw\] REDIS_URL is not set/);
  });

  it.each([
    [{ primary: "mysql://x" }, "primary"],
    [{ primary: cluster.primary.url, replicas: "postgres://r" }, "replicas"],
    [{ primary: cluster.primary.url, replicas: [42] }, "replicas[0]"],
    [{ primary: cluster.primary.url, replicas: [{ name: "", adapter: cluster.primary.url }] }, "replicas[0].name"],
    [{ primary: cluster.primary.url, replicas: [new PrismaClient({ adapter: new PrismaPg({ connectionString: cluster.primary.url }) })] }, "replicas[0]"],
    [{ primary: cluster.primary.url, strategy: "fastest" }, "strategy"],
    [{ primary: cluster.primary.url, fallback: "maybe" }, "fallback"],
    [{ primary: cluster.primary.url, maxWaitMs: -1 }, "maxWaitMs"],
    [{ primary: cluster.primary.url, ttlMs: 0 }, "ttlMs"],
    [{ primary: cluster.primary.url, strategy: "token" }, "tokenKeys"],
  ])("invalid options fail at construction, naming the option (%#)", (options, option) => {
    let error: unknown;
    try {
      ryw({ store: undefined, env: {}, ...(options as object) } as Parameters<typeof ryw>[0]);
    } catch (e) {
      error = e;
    }
    expect(isRywError(error, "INVALID_OPTION")).toBe(true);
    expect((error as Error).message).toContain(`\`${option}\``);
  });

  it("without `primary` or DATABASE_URL, `rw.adapter` (the two-place form) fails naming `primary`", async () => {
    const rw = ryw({ replicas: [], env: {}, store: undefined } as Parameters<typeof ryw>[0]);
    try {
      let error: unknown;
      try {
        void rw.adapter;
      } catch (e) {
        error = e;
      }
      expect(isRywError(error, "INVALID_OPTION")).toBe(true);
      expect((error as Error).message).toContain("`primary`");
    } finally {
      await rw.ryw.close();
    }
  });

  it("a client built with its own adapter is routed by the one-liner, without any warning", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const rw = ryw({ replicas: cluster.replicas.map((r) => r.url), env: { REDIS_URL: cluster.redis!.url } });
    const base = new PrismaClient({ adapter: new PrismaPg({ connectionString: cluster.primary.url }) });
    const db = base.$extends(rw);
    try {
      await rw.ryw.ready();
      await waitForReplicas(cluster);
      await rw.ryw.tracker.refresh();
      const read = await where(() => db.user.count());
      expect(read.ran.primary).toBe(0);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      await base.$disconnect();
      await rw.ryw.close();
    }
  });
});
