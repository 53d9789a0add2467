import { afterAll, beforeAll, expect, test } from "vitest";
import { runWithScope } from "@ryw/drizzle";
import { pauseReplay, resumeReplay, waitForReplicas, withSql } from "../harness/index.ts";
import { eq } from "./orm.ts";
import { posts, users } from "./schema.ts";
import { Servers } from "./servers.ts";
import { cluster, openDb, unique } from "./setup.ts";

const db = openDb();
const servers = new Servers(cluster);
let author: number;

beforeAll(async () => {
  [{ id: author }] = (await db.insert(users).values({ email: unique("ghost") + "@ghost" }).returning({ id: users.id })) as [{ id: number }];
  await waitForReplicas(cluster);
  await db.$client.ready();
});

afterAll(async () => {
  await db.$client.end();
  await servers.close();
});

test("the ghost post: with replay paused on one replica, a post read right after its insert is always there", async () => {
  const scope = unique("writer");
  const ids: number[] = [];
  await pauseReplay(cluster, 0);
  try {
    await servers.reset();
    for (let i = 0; i < 500; i++) {
      const seen = await runWithScope(scope, async () => {
        const [post] = await db.insert(posts).values({ authorId: author, title: `ghost ${i}` }).returning({ id: posts.id });
        ids.push(post!.id);
        return db.select({ id: posts.id, title: posts.title }).from(posts).where(eq(posts.id, post!.id));
      });
      expect(seen).toEqual([{ id: ids[i], title: `ghost ${i}` }]);
    }
    const writerReads = await servers.calls('select "id", "title" from "Post" where "Post"."id" = $1');
    expect(writerReads.primary + writerReads.replicas).toBe(500);
    // Not one of them went to the paused replica.
    expect(writerReads.r0).toBe(0);

    // The paused replica really lacks the posts: a read there would have lost them.
    const onPaused = await withSql(cluster.replicas[0]!.url, (sql) => sql`select count(*)::int as n from "Post" where id = any(${ids})`);
    expect(onPaused[0]!.n).toBe(0);

    // A scope that wrote nothing still reads from a replica. Its read starts (speculatively) on
    // the replica that keeps up, and nothing holds it back there: the paused one gets none.
    await servers.reset();
    for (let i = 0; i < 20; i++) {
      await runWithScope(unique("reader"), () => db.select({ email: users.email }).from(users).where(eq(users.id, author)));
    }
    const readerReads = await servers.calls('select "email" from "User"%');
    expect(readerReads).toMatchObject({ primary: 0, replicas: 20, r0: 0, r1: 20 });
  } finally {
    await resumeReplay(cluster, 0);
  }
  await waitForReplicas(cluster);
});
