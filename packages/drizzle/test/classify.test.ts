import { describe, expect, test } from "vitest";
import { eq, sql } from "drizzle-orm";
import { relations } from "drizzle-orm";
import { boolean, integer, PgDialect, pgTable, serial, text, timestamp } from "drizzle-orm/pg-core";
import { drizzle } from "drizzle-orm/postgres-js";
import { classify } from "../src/classify.js";
import { Classifier } from "../src/classifier.js";
import { readOnly, READ_ONLY_MARK } from "../src/read-only.js";

// Shaped like the integration tests' tables; only the generated SQL matters here.
const users = pgTable("User", {
  id: serial("id").primaryKey(),
  email: text("email").notNull().unique(),
  name: text("name"),
  createdAt: timestamp("createdAt", { precision: 3 }).notNull().defaultNow(),
});
const posts = pgTable("Post", {
  id: serial("id").primaryKey(),
  authorId: integer("authorId").notNull().references(() => users.id),
  title: text("title").notNull(),
  published: boolean("published").notNull().default(false),
  createdAt: timestamp("createdAt", { precision: 3 }).notNull().defaultNow(),
});
const schema = {
  users,
  posts,
  usersRelations: relations(users, ({ many }) => ({ posts: many(posts) })),
  postsRelations: relations(posts, ({ one }) => ({ author: one(users, { fields: [posts.authorId], references: [users.id] }) })),
};

type Kind = "read" | "write" | "unknown";

// Hand-written statements: the traps first, then what raw SQL users write.
const written: Array<[Kind, string]> = [
  ["read", `select "id" from "User" where "User"."id" = $1`],
  ["read", `SELECT * FROM "User" WHERE email = 'a@b' LIMIT 1`],
  ["read", `select count(*) as count from "Post";`],
  ["read", `with a as (select 1) select * from a`],
  ["read", `with recursive t(n) as (values (1) union all select n + 1 from t where n < 5) select sum(n) from t`],
  ["read", `with "a"("x", "y") as materialized (select 1, 2), b as (select 3) select * from a, b`],
  ["read", `select n from generate_series(1, 3) as g(n)`],
  ["read", `(select 1) union (select 2)`],
  ["read", `values (1), (2)`],
  ["read", `table "User"`],
  ["read", `show search_path`],
  ["read", `select coalesce(json_agg(x), '[]'::json) from (select 1 as x) s`],
  ["read", `select '1'::varchar(10), 2::numeric(10, 2), now() - interval '1 day'`],
  ["read", `select * from "User" where id = any($1) and name ilike $2 order by "createdAt" desc nulls last`],
  ["read", `select exists (select 1 from "Post" where "authorId" = $1)`],
  ["read", `select count(*) filter (where published) over (partition by "authorId") from "Post"`],
  ["read", `select substring(title from 1 for 3) from "Post"`],
  // Keywords inside strings, quoted identifiers and comments are data, not statements.
  ["read", `select 'insert' as a, 'update ''delete''' as b`],
  ["read", `select $$ delete from x $$ as body, $tag$ update $tag$ as t`],
  ["read", `select E'it\\'s an update' as s`],
  ["read", `select "update", "delete" from "insert" where "for" = 1 -- update me\n`],
  ["read", `/* delete */ select 1 /* nested /* update */ still comment */`],
  ["read", `${READ_ONLY_MARK}select 1`],
  ["read", `select pg_last_wal_replay_lsn(), pg_is_in_recovery()`],
  ["read", `explain select * from "User"`],
  // Data-modifying statements, wherever they hide.
  ["write", `insert into "User" ("email") values ($1)`],
  ["write", `update "User" set "name" = $1 where "id" = $2`],
  ["write", `delete from "User" where "id" = $1`],
  ["write", `merge into t using s on t.id = s.id when matched then update set a = 1`],
  ["write", `with x as (insert into "User"("email") values ($1) returning id) select * from x`],
  ["write", `with "ins" as (update t set a = 1 returning id) select "id" from "ins"`],
  ["write", `with d as (delete from t returning *) select count(*) from d`],
  ["write", `WITH u AS (SELECT 1) INSERT INTO t SELECT * FROM u`],
  ["write", `explain analyze delete from t`],
  ["write", `explain (analyze, buffers) update t set a = 1`],
  // Locks need the primary, and they write WAL.
  ["write", `select * from "User" for update`],
  ["write", `select * from "User" where id = 1 for update of "User" nowait`],
  ["write", `select * from "User" for share skip locked`],
  ["write", `select * from "User" for no key update`],
  ["write", `select * from "User" for key share`],
  // Statements that change state, and several statements in one text.
  ["write", `select nextval('"User_id_seq"')`],
  ["write", `select set_config('app.user', $1, false)`],
  ["write", `select pg_advisory_xact_lock(42)`],
  ["write", `select pg_notify('ch', 'x')`],
  ["write", `SELECT txid_current()`],
  ["write", `select * into newtab from "User"`],
  ["write", `select 1; delete from t`],
  ["write", `select 1; select 2`],
  ["write", `create table x (id int)`],
  ["write", `alter table x add column y int`],
  ["write", `truncate x`],
  ["write", `drop table x`],
  ["write", `set statement_timeout = 0`],
  ["write", `call my_proc()`],
  ["write", `do $$ begin perform 1; end $$`],
  ["write", `lock table "User" in exclusive mode`],
  ["write", `refresh materialized view mv`],
  ["write", `copy "User" to stdout`],
  ["write", `vacuum "User"`],
  ["write", `begin`],
  ["write", `listen ch`],
  // Functions that might write: nobody can tell from the text.
  ["unknown", `select bump()`],
  ["unknown", `select * from my_schema.my_func($1)`],
  ["unknown", `select "my fn"(1)`],
  ["unknown", `select a, bump(x) as y from t`],
  ["unknown", `select a, bump(1) as materialized from t`],
  ["unknown", `select * from "User" where id = my_lookup($1)`],
  ["unknown", ``],
  ["unknown", `  -- just a comment`],
];

const db = drizzle.mock({ schema });
const sqlOf = (q: { toSQL(): { sql: string } }) => q.toSQL().sql;
const ins = db.$with("ins").as(db.insert(users).values({ email: "cte@x" }).returning({ id: users.id }));
const recent = db.$with("recent").as(db.select().from(posts).where(eq(posts.published, true)));

// What drizzle itself generates for each query API.
const generated: Array<[Kind, string, string]> = [
  ["read", "select", sqlOf(db.select().from(users).where(eq(users.id, 1)))],
  ["read", "select with a join", sqlOf(db.select().from(posts).innerJoin(users, eq(posts.authorId, users.id)).limit(10))],
  ["read", "select distinct on", sqlOf(db.selectDistinctOn([posts.authorId]).from(posts).orderBy(posts.authorId))],
  ["read", "relational findMany with", sqlOf(db.query.users.findMany({ with: { posts: { columns: { title: true, createdAt: true } } }, limit: 5 }))],
  ["read", "relational findFirst nested", sqlOf(db.query.posts.findFirst({ with: { author: { with: { posts: true } } } }))],
  ["read", "embedded $count", sqlOf(db.select({ id: users.id, n: db.$count(posts, eq(posts.authorId, users.id)) }).from(users))],
  ["read", "read-only CTE", sqlOf(db.with(recent).select().from(recent))],
  ["read", "union", sqlOf(db.select({ id: users.id }).from(users).union(db.select({ id: posts.id }).from(posts)))],
  ["read", "sql with a known function", sqlOf(db.select({ e: sql<string>`lower(${users.email})` }).from(users))],
  ["write", "for update", sqlOf(db.select().from(users).for("update"))],
  ["write", "for share", sqlOf(db.select().from(users).for("share", { skipLocked: true }))],
  ["write", "for no key update", sqlOf(db.select().from(users).for("no key update"))],
  ["write", "for key share", sqlOf(db.select().from(users).for("key share"))],
  ["write", "insert returning", sqlOf(db.insert(users).values({ email: "a@x" }).returning())],
  ["write", "onConflictDoUpdate", sqlOf(db.insert(users).values({ email: "a@x" }).onConflictDoUpdate({ target: users.email, set: { name: "n" } }))],
  ["write", "onConflictDoNothing", sqlOf(db.insert(users).values({ email: "a@x" }).onConflictDoNothing())],
  ["write", "update returning", sqlOf(db.update(users).set({ name: "n" }).where(eq(users.id, 1)).returning())],
  ["write", "delete returning", sqlOf(db.delete(users).where(eq(users.id, 1)).returning())],
  ["write", "CTE with an insert (drizzle#4185)", sqlOf(db.with(ins).select().from(ins))],
  ["write", "sql calling nextval", sqlOf(db.select({ n: sql<number>`nextval('"User_id_seq"')` }).from(users))],
  ["unknown", "sql calling a user function", sqlOf(db.select({ n: sql<number>`score(${users.id})` }).from(users))],
  ["read", "readOnly() mark", new PgDialect().sqlToQuery(readOnly(sql`select 1`)).sql],
];

describe("classify", () => {
  test.each(written)("%s: %s", (kind, statement) => {
    expect(classify(statement).kind).toBe(kind);
  });
  test.each(generated)("%s: drizzle %s", (kind, _name, statement) => {
    expect(classify(statement).kind).toBe(kind);
  });
});

describe("Classifier", () => {
  test("readFunctions turns calls of listed functions into reads, case-insensitively", () => {
    expect(new Classifier().classify("select score(1)").kind).toBe("unknown");
    expect(new Classifier(["Score"]).classify("select score(1)").kind).toBe("read");
    expect(new Classifier(["score"]).classify("select nextval('s'), score(1)").kind).toBe("write");
  });

  test("the cache is bounded and gives the same verdicts", () => {
    const classifier = new Classifier([], 3);
    for (let i = 0; i < 10; i++) expect(classifier.classify(`select ${i}`).kind).toBe("read");
    expect(classifier.classify("delete from t").kind).toBe("write");
    expect(classifier.classify("select 1").kind).toBe("read");
  });
});
