import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { RedisStore, runWithScope } from "@ryw/drizzle";
import { killReplica, pauseReplay, resumeReplay, startRedis, startReplica, stopRedis, waitFor, waitForReplicas } from "../harness/index.ts";
import { eq } from "./orm.ts";
import { users } from "./schema.ts";
import { Servers } from "./servers.ts";
import { cluster, openDb, unique } from "./setup.ts";

const servers = new Servers(cluster);
const cleanup: Array<() => Promise<void>> = [];

afterEach(async () => {
  // Undo whatever a test broke, newest first, even when it failed half-way.
  for (const undo of cleanup.splice(0).reverse()) await undo();
});

afterAll(async () => {
  await servers.close();
});

describe("Redis stopped", () => {
  const store = new RedisStore({ url: cluster.redis!.url, prefix: "ryw-drizzle-faults:" });
  // With Redis down every write waits recordTimeoutMs for its record before it resolves: short
  // here, so that twenty writes fit the test's time. What the wait buys is tested in core.
  const db = openDb({ store, recordTimeoutMs: 100 });

  beforeAll(() => db.$client.ready());
  afterAll(async () => {
    await db.$client.end();
    await store.close();
  });

  test("writes stay visible and no read fails; replicas serve scoped reads again once Redis is back", async () => {
    const user = unique("redis-user");
    await pauseReplay(cluster, 0);
    await pauseReplay(cluster, 1);
    cleanup.push(async () => {
      await resumeReplay(cluster, 0);
      await resumeReplay(cluster, 1);
      await waitForReplicas(cluster);
    });
    let redisDown = true;
    await stopRedis(cluster);
    cleanup.push(async () => {
      if (redisDown) await startRedis(cluster);
    });

    for (let i = 0; i < 20; i++) {
      const email = `${unique("no-redis")}@faults`;
      await runWithScope(user, () => db.insert(users).values({ email }));
      // A later request of the same user, with Redis gone: the row is only on the primary.
      const seen = await runWithScope(user, () => db.select({ email: users.email }).from(users).where(eq(users.email, email)));
      expect(seen).toEqual([{ email }]);
    }
    // Each of those writes was acknowledged before its record was shared, and says so.
    expect(db.$client.stats().unsharedWrites).toBe(20);

    await startRedis(cluster);
    redisDown = false;
    await resumeReplay(cluster, 0);
    await resumeReplay(cluster, 1);
    await waitForReplicas(cluster);
    // Back to normal: a fresh scope's reads reach a replica again (after the store's retry pause).
    await waitFor(async () => {
      await servers.reset();
      await runWithScope(unique("after-redis"), () => db.select({ id: users.id }).from(users).where(eq(users.email, "nobody@faults")));
      return (await servers.calls('select "id" from "User" where "User"."email" = $1')).replicas === 1;
    }, 10_000, "scoped reads to return to a replica");
  });
});

describe("a replica killed mid-run", () => {
  const db = openDb({ tracker: { intervalMs: 50 } });
  let author: { id: number; email: string };

  beforeAll(async () => {
    [author] = (await db.insert(users).values({ email: unique("kill") + "@faults" }).returning({ id: users.id, email: users.email })) as [{ id: number; email: string }];
    await waitForReplicas(cluster);
    await db.$client.ready();
  });
  afterAll(() => db.$client.end({ timeout: 1 }));

  const read = () => runWithScope(unique("reader"), () => db.select({ email: users.email }).from(users).where(eq(users.id, author.id)));
  const batch = async (n: number) => {
    for (let i = 0; i < n; i++) expect(await read()).toEqual([{ email: author.email }]);
  };

  test("no read fails; the replica is left out while down and taken back after a restart", async () => {
    const like = 'select "email" from "User" where "User"."id" = $1';
    let killed = false;
    cleanup.push(async () => {
      if (killed) await startReplica(cluster, 1);
      await waitForReplicas(cluster);
    });

    // Four readers keep going while the replica dies under them.
    let stop = false;
    let served = 0;
    const readers = Array.from({ length: 4 }, async () => {
      while (!stop) {
        expect(await read()).toEqual([{ email: author.email }]);
        served++;
      }
    });
    await new Promise((r) => setTimeout(r, 200));
    await killReplica(cluster, 1);
    killed = true;
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(readers);
    expect(served).toBeGreaterThan(0);

    // Left out: every read lands on the surviving replica. A read that still tried the dead one
    // would have failed over to the primary.
    await servers.reset(["primary", "r0"]);
    await batch(30);
    expect(await servers.calls(like, ["primary", "r0"])).toMatchObject({ primary: 0, r0: 30 });

    await startReplica(cluster, 1);
    killed = false;
    await waitForReplicas(cluster);
    await waitFor(async () => {
      await servers.reset();
      await batch(10);
      return (await servers.calls(like)).r1! > 0;
    }, 15_000, "the restarted replica to serve reads again");
  });
});
