import { afterAll, beforeAll, beforeEach, describe, expect, onTestFinished, test } from "vitest";
import { $primary, readOnly, runWithScope } from "@ryw/drizzle";
import { pauseReplay, recordsLanded, resumeReplay, waitForReplicas } from "../harness/index.ts";
import { and, drizzle, eq, sql } from "./orm.ts";
import { posts, users } from "./schema.ts";
import { Servers } from "./servers.ts";
import { cluster, openDb, unique } from "./setup.ts";

// Each drizzle feature runs through rywSession, and the servers' own statement counts say where
// it ran. A long tracker interval keeps the tracker's own primary-position reads out of the
// counts of position captures.
const db = openDb({ tracker: { intervalMs: 60_000 } });
const servers = new Servers(cluster);
const CAPTURE = "select pg_current_wal_insert_lsn()%";
let author: { id: number; email: string };

beforeAll(async () => {
  const email = unique("author") + "@features";
  [author] = (await db.insert(users).values({ email, name: "Author" }).returning({ id: users.id, email: users.email })) as [{ id: number; email: string }];
  await db.insert(posts).values([
    { authorId: author.id, title: "first", published: true },
    { authorId: author.id, title: "second" },
  ]);
  await waitForReplicas(cluster);
  await db.$client.ready();
});

afterAll(async () => {
  await db.$client.end();
  await servers.close();
});

const scoped = <T>(fn: () => Promise<T>) => runWithScope(unique("scope"), fn);

/**
 * Position captures on the primary since the last reset. A write acknowledged on its intent is
 * captured after it resolves, so count once every record in flight has landed.
 */
async function captures(): Promise<number> {
  await recordsLanded(db.$client);
  return (await servers.calls(CAPTURE)).primary;
}
// A capture left from the test before would otherwise land after this test's reset.
beforeEach(() => recordsLanded(db.$client));

describe("writes run on the primary, and their position is captured once", () => {
  test("insert returning", async () => {
    const email = unique("ins") + "@features";
    const { result, calls } = await servers.count('insert into "User"%', () => scoped(() => db.insert(users).values({ email }).returning()));
    expect(result[0]!.email).toBe(email);
    expect(calls).toMatchObject({ primary: 1, replicas: 0 });
    expect(await captures()).toBe(1);
  });

  test("upsert with onConflictDoUpdate", async () => {
    const email = unique("upsert") + "@features";
    await db.insert(users).values({ email, name: "before" });
    const { result, calls } = await servers.count('insert into "User"%on conflict%', () =>
      scoped(() => db.insert(users).values({ email, name: "after" }).onConflictDoUpdate({ target: users.email, set: { name: "after" } }).returning()),
    );
    expect(result).toMatchObject([{ email, name: "after" }]);
    expect(calls).toMatchObject({ primary: 1, replicas: 0 });
  });

  test("update and delete returning", async () => {
    const email = unique("upd") + "@features";
    const [row] = await db.insert(users).values({ email }).returning();
    const updated = await servers.count('update "User"%', () => scoped(() => db.update(users).set({ name: "renamed" }).where(eq(users.id, row!.id)).returning()));
    expect(updated.result).toMatchObject([{ id: row!.id, name: "renamed" }]);
    expect(updated.calls).toMatchObject({ primary: 1, replicas: 0 });
    const deleted = await servers.count('delete from "User"%', () => scoped(() => db.delete(users).where(eq(users.id, row!.id)).returning({ id: users.id })));
    expect(deleted.result).toEqual([{ id: row!.id }]);
    expect(deleted.calls).toMatchObject({ primary: 1, replicas: 0 });
  });

  test("a CTE with an insert goes to the primary (drizzle#4185)", async () => {
    const email = unique("cte") + "@features";
    const inserted = db.$with("inserted").as(db.insert(users).values({ email }).returning({ id: users.id, email: users.email }));
    const { result, calls } = await servers.count('with "inserted" as (insert%', () => scoped(() => db.with(inserted).select().from(inserted)));
    expect(result).toMatchObject([{ email }]);
    expect(calls).toMatchObject({ primary: 1, replicas: 0 });
    expect(await captures()).toBe(1);
  });
});

describe("reads go to a replica", () => {
  test("select with a join", async () => {
    const { result, calls } = await servers.count('%inner join "User"%', () =>
      scoped(() => db.select({ title: posts.title, email: users.email }).from(posts).innerJoin(users, eq(posts.authorId, users.id)).where(eq(users.id, author.id)).orderBy(posts.id)),
    );
    expect(result).toEqual([{ title: "first", email: author.email }, { title: "second", email: author.email }]);
    expect(calls).toMatchObject({ primary: 0, replicas: 1 });
  });

  test("relational query with `with`", async () => {
    const { result, calls } = await servers.count("%left join lateral%", () =>
      scoped(() => db.query.users.findFirst({ where: eq(users.id, author.id), with: { posts: { columns: { title: true, published: true }, orderBy: posts.id } } })),
    );
    expect(result).toMatchObject({ email: author.email, posts: [{ title: "first", published: true }, { title: "second", published: false }] });
    expect(calls).toMatchObject({ primary: 0, replicas: 1 });
  });

  test("$count", async () => {
    const { result, calls } = await servers.count('select count(*) as count from "Post"%', () => scoped(() => db.$count(posts, eq(posts.authorId, author.id))));
    expect(result).toBe(2);
    expect(calls).toMatchObject({ primary: 0, replicas: 1 });
  });

  test("a select calling a function not known to be read-only goes to the primary, unless listed in readFunctions", async () => {
    const query = (d: typeof db) => scoped(() => d.select({ pid: sql<number>`pg_backend_pid()` }).from(users).where(eq(users.id, author.id)));
    const unsure = await servers.count("select pg_backend_pid()%", () => query(db));
    expect(unsure.result).toHaveLength(1);
    expect(unsure.calls).toMatchObject({ primary: 1, replicas: 0 });

    const trusting = openDb({ readFunctions: ["pg_backend_pid"] });
    try {
      await trusting.$client.ready();
      const listed = await servers.count("select pg_backend_pid()%", () => query(trusting));
      expect(listed.calls).toMatchObject({ primary: 0, replicas: 1 });
    } finally {
      await trusting.$client.end();
    }
  });

  test("type parsers and serializers that drizzle installs reach the replicas", async () => {
    // Outside UTC, postgres.js's own timestamp parser reads "2024-03-04 05:06:07" as local time,
    // so a replica without drizzle's parsers returns a shifted Date.
    const tz = process.env.TZ;
    process.env.TZ = "Asia/Kolkata";
    onTestFinished(() => {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    });
    expect(new Date(2024, 0, 1).getTimezoneOffset()).toBe(-330);
    const createdAt = new Date("2024-03-04T05:06:07.089Z");
    const email = unique("ts") + "@features";
    await db.insert(users).values({ email, createdAt });
    await waitForReplicas(cluster);
    // The Date travels as a parameter (serializer) and comes back as a timestamp column (parser).
    const query = () => db.select({ createdAt: users.createdAt }).from(users).where(and(eq(users.email, email), eq(users.createdAt, createdAt)));
    const fromReplica = await servers.count('select "createdAt" from "User"%', () => scoped(query));
    expect(fromReplica.calls).toMatchObject({ primary: 0, replicas: 1 });
    const fromPrimary = await servers.count('select "createdAt" from "User"%', () => $primary(query));
    expect(fromPrimary.calls).toMatchObject({ primary: 1, replicas: 0 });
    expect(fromReplica.result[0]!.createdAt.toISOString()).toBe(createdAt.toISOString());
    expect(fromPrimary.result[0]!.createdAt.toISOString()).toBe(createdAt.toISOString());
  });
});

test("a prepared statement is routed per execution, by the scope of each", async () => {
  const byAuthor = db.select({ title: posts.title }).from(posts).where(eq(posts.authorId, sql.placeholder("author"))).orderBy(posts.id).prepare("ryw_posts_by_author");
  const reader = unique("reader");
  const writer = unique("writer");
  const before = await servers.count('select "title" from "Post"%', () => runWithScope(reader, () => byAuthor.execute({ author: author.id })));
  expect(before.calls).toMatchObject({ primary: 0, replicas: 1 });

  await pauseReplay(cluster, 0);
  await pauseReplay(cluster, 1);
  try {
    const title = unique("prepared");
    await servers.reset();
    // The writer's scope must see its post although no replica has it; the reader's scope,
    // which wrote nothing, keeps reading from a replica.
    const seen = await runWithScope(writer, async () => {
      await db.insert(posts).values({ authorId: author.id, title });
      return byAuthor.execute({ author: author.id });
    });
    expect(seen.map((p) => p.title)).toContain(title);
    expect(await servers.calls('select "title" from "Post"%')).toMatchObject({ primary: 1, replicas: 0 });

    await servers.reset();
    const other = await runWithScope(reader, () => byAuthor.execute({ author: author.id }));
    expect(other.map((p) => p.title)).not.toContain(title);
    expect(await servers.calls('select "title" from "Post"%')).toMatchObject({ primary: 0, replicas: 1 });
  } finally {
    await resumeReplay(cluster, 0);
    await resumeReplay(cluster, 1);
  }
  await waitForReplicas(cluster);
});

describe("transactions run wholly on the primary", () => {
  test("select for update inside a transaction, and a plain select next to it", async () => {
    const title = unique("locked");
    const { result, calls } = await servers.count('%from "Post"%', () =>
      scoped(() =>
        db.transaction(async (tx) => {
          const [locked] = await tx.select().from(posts).where(eq(posts.authorId, author.id)).orderBy(posts.id).limit(1).for("update");
          await tx.update(posts).set({ title }).where(eq(posts.id, locked!.id));
          // drizzle's withReplicas sends this one to a replica; inside a transaction it must not.
          return tx.select({ title: posts.title }).from(posts).where(eq(posts.id, locked!.id));
        }),
      ),
    );
    expect(result).toEqual([{ title }]);
    expect(calls).toMatchObject({ primary: 2, replicas: 0 });
    expect((await servers.calls("%for update%")).primary).toBe(1);
    expect(await captures()).toBe(1);
    await db.update(posts).set({ title: "first" }).where(and(eq(posts.authorId, author.id), eq(posts.title, title)));
  });

  test("a nested transaction: savepoints stay on the primary, the position is captured once after the outer commit", async () => {
    const [kept, rolledBack, inner] = [unique("kept"), unique("rolled-back"), unique("inner")].map((e) => e + "@features");
    await servers.reset();
    await scoped(() =>
      db.transaction(async (tx) => {
        await tx.insert(users).values({ email: kept! });
        await tx.transaction(async (tx2) => {
          await tx2.insert(users).values({ email: inner! });
          expect(await tx2.select({ id: users.id }).from(users).where(eq(users.email, inner!))).toHaveLength(1);
        });
        await tx
          .transaction(async (tx2) => {
            await tx2.insert(users).values({ email: rolledBack! });
            tx2.rollback();
          })
          .catch(() => {});
        // Before COMMIT, nothing of this transaction may be captured.
        expect(await captures()).toBe(0);
      }),
    );
    expect(await servers.calls('insert into "User"%')).toMatchObject({ primary: 3, replicas: 0 });
    expect(await servers.calls('select "id" from "User"%')).toMatchObject({ primary: 1, replicas: 0 });
    expect(await captures()).toBe(1);
    const emails = (await $primary(() => db.select({ email: users.email }).from(users).where(sql`${users.email} in (${kept}, ${inner}, ${rolledBack})`))).map((r) => r.email);
    expect(emails.sort()).toEqual([kept, inner].sort());
  });

  test("no capture after a rollback or a transaction that only read", async () => {
    await servers.reset();
    await scoped(async () => {
      await db.transaction(async (tx) => {
        await tx.insert(users).values({ email: unique("gone") + "@features" });
        tx.rollback();
      }).catch(() => {});
      await db.transaction(async (tx) => tx.select().from(posts).where(eq(posts.authorId, author.id)), { isolationLevel: "repeatable read", accessMode: "read only" });
    });
    expect(await servers.calls('select "id", "authorId"%')).toMatchObject({ primary: 1, replicas: 0 });
    expect(await captures()).toBe(0);
  });
});

describe("db.execute", () => {
  test("runs on the primary, also for a plain select", async () => {
    const { result, calls } = await servers.count("select current_setting(%", () => scoped(() => db.execute(sql`select current_setting('application_name') as app, ${author.id}::int as id`)));
    expect(result[0]).toMatchObject({ id: author.id });
    expect(calls).toMatchObject({ primary: 1, replicas: 0 });
  });

  test("a write through execute is captured", async () => {
    const { calls } = await servers.count('update "User" set "name"%', () => scoped(() => db.execute(sql`update "User" set "name" = ${"exec"} where "id" = ${author.id}`)));
    expect(calls).toMatchObject({ primary: 1, replicas: 0 });
    expect(await captures()).toBe(1);
  });

  test("readOnly() lets it go to a replica, even when it calls a function", async () => {
    const { result, calls } = await servers.count("%pg_is_in_recovery()%", () =>
      scoped(() => db.execute(readOnly(sql`select pg_is_in_recovery() as standby, md5(${"x"}) as h, upper(${"y"}) as u`))),
    );
    expect(result[0]).toMatchObject({ standby: true });
    expect(calls).toMatchObject({ primary: 0, replicas: 1 });
  });

  test("readOnly() does not send a visible write to a replica", async () => {
    const { calls } = await servers.count("%select nextval(%", () => scoped(() => db.execute(readOnly(sql`select nextval('"Post_id_seq"') as n`))));
    expect(calls).toMatchObject({ primary: 1, replicas: 0 });
  });
});

describe("$replicas and $primary, drizzle's escape hatches", () => {
  test("each replica client runs on its own server, skipping routing; the array is read-only", async () => {
    const { $replicas, $primary: primaryClient } = db.$client;
    expect($replicas).toHaveLength(cluster.replicas.length);
    expect(Object.isFrozen($replicas)).toBe(true);
    for (const [i, replica] of $replicas.entries()) {
      // Replay paused and the scope just wrote: a routed read would go to the primary.
      await pauseReplay(cluster, i);
      try {
        const mark = unique(`replica-${i}`);
        const { result, calls } = await servers.count(`%${mark}%`, () =>
          scoped(async () => {
            await db.insert(users).values({ email: `${mark}@features` });
            return drizzle(replica).execute(sql.raw(`select /* ${mark} */ pg_is_in_recovery() as standby`));
          }),
        );
        expect(result[0]).toMatchObject({ standby: true });
        expect(calls).toMatchObject({ primary: 0, [cluster.replicas[i]!.name]: 1, replicas: 1 });
      } finally {
        await resumeReplay(cluster, i);
      }
    }
    const onPrimary = await primaryClient`select pg_is_in_recovery() as standby`;
    expect(onPrimary[0]).toMatchObject({ standby: false });
  });
});
