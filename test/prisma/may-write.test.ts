import { describe, expect, it } from "vitest";
import { mayWrite } from "../../packages/prisma/src/may-write.js";

// Statements outside any ryw operation are recorded when their text may write. Erring toward
// "may write" costs a position capture; erring the other way serves a stale read.
describe("mayWrite", () => {
  it.each([
    `SELECT "public"."Post"."id", "public"."Post"."title" FROM "public"."Post" WHERE "public"."Post"."authorId" = $1 LIMIT $2 OFFSET $3`,
    `SELECT COUNT(*) AS "_count$_all" FROM (SELECT "public"."Post"."id" FROM "public"."Post" WHERE 1=1 OFFSET $1) AS "sub"`,
    `select 1;`,
    `(select id from "Post") union all (select id from "User")`,
    `with recent as (select id from "Post" order by id desc limit 5) select * from recent`,
    `select id from "Post" where title = 'insert into "Post" values (1); delete'`,
    `select "update", "delete" from "Post"`,
    `select id -- for update\nfrom "Post"`,
    `select /* delete /* nested */ insert */ id from "Post"`,
    `select $tag$ update "Post" set x = 1 $tag$ as text, $$delete$$ as other`,
    `select E'it\\'s an update' as s`,
    `select updated_at, insert_count from "Post"`,
  ])("reads: %s", (sql) => {
    expect(mayWrite(sql)).toBe(false);
  });

  it.each([
    `INSERT INTO "public"."Post" ("authorId","title") VALUES ($1,$2) RETURNING "public"."Post"."id"`,
    `UPDATE "public"."Post" SET "title" = $1 WHERE "public"."Post"."id" = $2`,
    `DELETE FROM "public"."Post" WHERE "public"."Post"."id" = $1`,
    `merge into "Post" p using (select 1 as id) s on p.id = s.id when matched then delete`,
    `with p as (insert into "Post" ("authorId", title) values ($1, $2) returning id) select count(*) from p`,
    `WITH gone AS (DELETE FROM "Post" WHERE id = $1 RETURNING id) SELECT id FROM gone`,
    `select id from "Post" where id = $1 for update`,
    `select id from "Post" for no key update skip locked`,
    `select id from "Post" for share`,
    `select id from "Post" for key share nowait`,
    `select * into backup from "Post"`,
    `select 1; delete from "Post"`,
    `values (1)`,
    `explain analyze delete from "Post"`,
    `truncate "Post"`,
    `call refresh_everything()`,
    `set search_path to public`,
    `select 'unterminated`,
    `select $x$ never closed`,
    `select /* never closed`,
    ``,
  ])("may write: %s", (sql) => {
    expect(mayWrite(sql)).toBe(true);
  });
});
