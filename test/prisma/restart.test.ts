import { afterAll, describe, expect, it } from "vitest";
import type { RouteDecision } from "@ryw/prisma";
import { runWithScope } from "@ryw/prisma";
import { killReplica, startReplica, waitForReplicas } from "../harness/index.js";
import { closeServers, cluster, makeClient, seedUser, FORMS as CLIENT_FORMS } from "./helpers.js";

afterAll(closeServers);

// Every test runs against both forms: `prisma.$extends(ryw())` and `new PrismaClient({ adapter: rw.adapter }).$extends(rw)`.
describe.each(CLIENT_FORMS)("%s", (form) => {

  describe("a replica that crash-restarts between two polls", () => {
    it("is not read on the sample taken before: ryw's replica pool reports the closed connections", async () => {
      const author = await seedUser("restart");
      await waitForReplicas(cluster);
      const decisions: RouteDecision[] = [];
      // No poll and no on-demand sample during the test: only the first round's samples exist.
      const c = await makeClient({
        tracker: { intervalMs: 600_000 },
        refreshOnDemand: false,
        choose: (candidates) => candidates.find((r) => r.name === "r1") ?? candidates[0]!,
        onEvent: (e) => e.type === "route" && decisions.push(e.decision),
      }, form);
      try {
        const s = `restart-${process.pid}`;
        const sampled = c.rw.ryw.tracker.replicas[1]!;
        await runWithScope(s, () => c.rw.ryw.recordWrite(sampled.position!));
        await runWithScope(s, async () => await c.db.user.findMany({ where: { id: author } }));
        expect(decisions.at(-1)?.target).toMatchObject({ name: "r1" });

        await killReplica(cluster, 1);
        await startReplica(cluster, 1);
        const rows = await runWithScope(s, async () => await c.db.user.findMany({ where: { id: author } }));
        expect(rows).toHaveLength(1);
        // Either r1 was no candidate any more, or it answered after its restart and that answer
        // was dropped for the primary's: never a read served on the old sample.
        expect(decisions.at(-1)?.target).not.toMatchObject({ name: "r1" });
        expect(c.rw.ryw.tracker.replicas[1]!.epoch).not.toBe(sampled.epoch);
      } finally {
        await startReplica(cluster, 1).catch(() => {}); // already running
        await waitForReplicas(cluster, 20_000);
        await c.close();
      }
    });
  });
});
