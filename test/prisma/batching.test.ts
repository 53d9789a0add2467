import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onPrimary, runWithScope } from "@ryw/prisma";
import { pauseReplay, resumeReplay, waitForReplicas } from "../harness/index.js";
import { closeServers, cluster, makeClient, seedUser, servers, unique, where, FORMS as CLIENT_FORMS } from "./helpers.js";

afterAll(closeServers);

// Every test runs against both forms: `prisma.$extends(ryw())` and `new PrismaClient({ adapter: rw.adapter }).$extends(rw)`.
describe.each(CLIENT_FORMS)("%s", (form) => {
  // Prisma merges findUnique calls of the same shape made in the same tick into one query, run in
  // the async context of the first caller. These calls come from different callers with different
  // needs; each must still be answered by a server that is allowed to answer it.
  let c: Awaited<ReturnType<typeof makeClient>>;
  let old: number;
  let fresh: number;

  beforeAll(async () => {
    c = await makeClient({ speculate: false }, form);
    old = await seedUser("batch-old");
    await waitForReplicas(cluster);
    await c.rw.ryw.tracker.refresh();
    await pauseReplay(cluster, 0);
    await pauseReplay(cluster, 1);
    // Only on the primary from here on.
    fresh = await seedUser("batch-fresh");
  });
  afterAll(async () => {
    await resumeReplay(cluster, 0);
    await resumeReplay(cluster, 1);
    await c.close();
  });

  describe("findUnique batching", () => {
    it("merges calls from different callers into one statement (the reason for all this), and keeps doing so for reads of one replica", async () => {
      const one = await makeClient({ speculate: false, choose: (candidates) => candidates[0]! }, form);
      try {
        // The scoped caller's last write is one that both replicas have replayed. (A scope with no
        // position at all would not go to a replica whose lag this fresh client cannot bound.)
        const caller = unique("caller");
        const replayed = one.rw.ryw.tracker.replicas.map((r) => r.position!).reduce((a, b) => (a < b ? a : b));
        await runWithScope(caller, () => one.rw.ryw.recordWrite(replayed));
        const { value, ran } = await where(() => Promise.all([
          one.db.user.findUnique({ where: { id: old } }),
          runWithScope(caller, async () => await one.db.user.findUnique({ where: { id: old } })),
          one.db.user.findUnique({ where: { id: fresh } }),
        ]));
        expect(value.map((u) => u?.id)).toEqual([old, old, undefined]); // a replica answered: it has not replayed `fresh`
        expect(ran).toEqual({ primary: 0, r0: 1, r1: 0 });
      } finally {
        await one.close();
      }
    });

    it("a call that needs the primary is never answered by a replica batched with it", async () => {
      // Which call reaches the dataloader first depends on how many awaits each path takes, so
      // the calls that need the primary start after 0..20 extra microtasks: some of them join a
      // tick that a replica-routed call opened.
      const needsPrimary: Array<() => Promise<{ id: number } | null>> = [
        () => c.db.$primary().user.findUnique({ where: { id: fresh } }),
        () => onPrimary(async () => await c.db.user.findUnique({ where: { id: fresh } })),
        () => onPrimary(async () => await c.db.user.findUniqueOrThrow({ where: { id: fresh } })),
        () => runWithScope(unique("writer"), async () => {
          // This scope "wrote" at the primary's current position, which no paused replica has.
          await c.rw.ryw.recordWrite(primaryPosition);
          return c.db.user.findUnique({ where: { id: fresh } });
        }),
      ];
      const primaryPosition = (await servers.primary`select pg_current_wal_insert_lsn()::text as lsn`)[0]!.lsn as string;
      for (let delay = 0; delay <= 20; delay++) {
        for (const call of needsPrimary) {
          const late = async () => {
            for (let i = 0; i < delay; i++) await Promise.resolve();
            return call();
          };
          const [first, second, last] = await Promise.all([c.db.user.findUnique({ where: { id: old } }), late(), c.db.user.findUnique({ where: { id: old } })]);
          expect(first?.id).toBe(old);
          expect(second?.id, `delay ${delay}`).toBe(fresh);
          expect(last?.id).toBe(old);
        }
      }
    });

    it("calls routed to different replicas are not merged", async () => {
      await resumeReplay(cluster, 1);
      try {
        await waitForReplicas({ ...cluster, replicas: [cluster.replicas[1]!] });
        await c.rw.ryw.tracker.refresh();
        // r1 has `fresh`, r0 does not: a scope that needs `fresh` may only be served by r1 or the
        // primary, even when an unscoped call in the same tick went to r0.
        for (let i = 0; i < 20; i++) {
          const scope = unique("r1-only");
          const lsn = (await servers.primary`select pg_current_wal_insert_lsn()::text as lsn`)[0]!.lsn as string;
          const calls = await Promise.all([
            c.db.user.findUnique({ where: { id: old } }),
            c.db.user.findUnique({ where: { id: old } }),
            runWithScope(scope, async () => {
              await c.rw.ryw.recordWrite(lsn);
              return c.db.user.findUnique({ where: { id: fresh } });
            }),
          ]);
          expect(calls[2]?.id).toBe(fresh);
        }
      } finally {
        await pauseReplay(cluster, 1);
      }
    });
  });
});
