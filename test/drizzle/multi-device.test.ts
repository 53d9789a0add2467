import { afterAll, beforeAll, expect, test } from "vitest";
import { RedisStore, runWithScope } from "@ryw/drizzle";
import { pauseReplay, resumeReplay, waitForReplicas } from "../harness/index.ts";
import { eq } from "./orm.ts";
import { users } from "./schema.ts";
import { Servers } from "./servers.ts";
import { cluster, openDb, unique } from "./setup.ts";

// Two app servers: each its own rywSession, tracker and Redis connection; one Redis between them.
const stores = [new RedisStore({ url: cluster.redis!.url, prefix: "ryw-drizzle:" }), new RedisStore({ url: cluster.redis!.url, prefix: "ryw-drizzle:" })];
const [phone, laptop] = stores.map((store) => openDb({ store })) as [ReturnType<typeof openDb>, ReturnType<typeof openDb>];
const servers = new Servers(cluster);

beforeAll(async () => {
  await Promise.all([phone.$client.ready(), laptop.$client.ready()]);
});

afterAll(async () => {
  await phone.$client.end();
  await laptop.$client.end();
  await Promise.all(stores.map((s) => s.close()));
  await servers.close();
});

test("a write through one session is visible through the other in the same scope", async () => {
  const user = unique("device-user");
  await pauseReplay(cluster, 0);
  await pauseReplay(cluster, 1);
  try {
    for (let i = 0; i < 20; i++) {
      const email = `${unique("device")}@multi`;
      await runWithScope(user, () => phone.insert(users).values({ email }));
      await servers.reset();
      // A new request on the other server: nothing in memory, only what Redis holds.
      const seen = await runWithScope(user, () => laptop.select({ email: users.email }).from(users).where(eq(users.email, email)));
      // Both replicas are paused before the insert, so only the primary can have answered this.
      expect(seen).toEqual([{ email }]);
      // The read may also have started on a replica while Redis was asked (core's `speculate`);
      // that answer was dropped, since the replica was behind the position Redis returned.
      expect((await servers.calls('select "email" from "User"%')).primary).toBe(1);

      // Another user's read on the same server is not held back by this user's write. It selects
      // other columns, so that a dropped speculative read of the first one, which may still be
      // finishing on a replica, is not counted as this one.
      await servers.reset();
      const elsewhere = await runWithScope(unique("other-user"), () => laptop.select({ id: users.id, email: users.email }).from(users).where(eq(users.email, email)));
      expect(elsewhere).toEqual([]);
      expect(await servers.calls('select "id", "email" from "User"%')).toMatchObject({ primary: 0, replicas: 1 });
    }
  } finally {
    await resumeReplay(cluster, 0);
    await resumeReplay(cluster, 1);
  }
  await waitForReplicas(cluster);
});
