import { afterAll, describe, expect, inject, it } from "vitest";
import type { SqlRunner } from "../src/index.js";
import { runWithScope } from "../src/index.js";
import { redisKey } from "../src/store/redis.js";
import { waitFor, waitForReplicas } from "../../../test/harness/index.js";
import { appServers, sleep } from "./clients.js";

// Writes under beginWrite are acknowledged once the write and its intent returned; the position
// follows. Two routers stand for two app servers sharing one Redis. The writer's position
// captures can be held back, so that the servers are asked while the position is still on its
// way: with both replicas' replay paused, a read that ignored the intent would miss the row.

const cluster = inject("cluster");
const { db, redis, server, scope, insert, read, withReplicasPaused, close } = appServers(cluster, "intent");
afterAll(() => close());

/** Position captures wait while the gate is closed; everything else runs. */
function gatedPrimary() {
  let open: (() => void) | undefined;
  let gate: Promise<void> | undefined;
  let held = 0;
  const runner: SqlRunner = async (text) => {
    if (gate && /pg_current_wal_insert_lsn/.test(text)) {
      held++;
      await gate;
    }
    return db.options.primary(text);
  };
  return {
    runner,
    get held() {
      return held;
    },
    close() {
      gate = new Promise((resolve) => (open = resolve));
    },
    open() {
      open?.();
      gate = undefined;
    },
  };
}

describe("write intents across app servers", () => {
  it("a write acknowledged before its position was recorded is seen by the other server, from the primary", async () => {
    const gated = gatedPrimary();
    const a = await server({ primary: gated.runner });
    const b = await server();
    await withReplicasPaused(async () => {
      const s = scope();
      gated.close();
      let id: number;
      try {
        id = await runWithScope(s, async () => {
          const write = a.beginWrite();
          const row = await insert();
          await write.done(); // resolves with the capture still held: acknowledged on the intent
          return row;
        });
        expect(gated.held).toBeGreaterThanOrEqual(1);
        expect(a.events.some((e) => e.type === "record" && e.scope === s)).toBe(false);
        // The other server sees the pending intent and requires a fresh primary position, which
        // no paused replica has: the primary answers, and the row is there.
        expect(await runWithScope(s, () => read(b, id))).toEqual({ target: "primary", seen: true });
        expect(await runWithScope(s, () => b.route())).toMatchObject({ target: { kind: "primary" }, reason: "lagging" });
        // So does the writing server itself, in a new request.
        expect(await runWithScope(s, () => read(a, id))).toEqual({ target: "primary", seen: true });
      } finally {
        gated.open();
      }
      await waitFor(() => a.events.some((e) => e.type === "record" && e.scope === s), 10_000, "the position to be recorded");
      // Recorded now, and still no replica has it.
      expect(await runWithScope(s, () => read(b, id))).toEqual({ target: "primary", seen: true });
    });
    await waitForReplicas(cluster);
    await b.tracker.refresh();
    const s = scope();
    const id = await runWithScope(s, async () => {
      const write = a.beginWrite();
      const row = await insert();
      await write.done();
      return row;
    });
    await waitFor(() => a.events.some((e) => e.type === "record" && e.scope === s), 10_000, "the position to be recorded");
    await waitForReplicas(cluster);
    await b.tracker.refresh();
    expect(await runWithScope(s, () => read(b, id))).toEqual({ target: "replica", seen: true });
    expect(a.stats()).toMatchObject({ unsharedWrites: 0, unresolvedIntents: 0 });
  });

  it("a record that never lands leaves the intent standing: reads stay correct, and stats say so", async () => {
    const gated = gatedPrimary();
    const a = await server({ primary: gated.runner, recordTimeoutMs: 200 });
    const b = await server();
    await withReplicasPaused(async () => {
      const s = scope();
      gated.close();
      try {
        const id = await runWithScope(s, async () => {
          const write = a.beginWrite();
          const row = await insert();
          await write.done();
          return row;
        });
        await waitFor(() => a.stats().unresolvedIntents === 1, 10_000, "the record to give up");
        expect(await runWithScope(s, () => read(b, id))).toEqual({ target: "primary", seen: true });
      } finally {
        gated.open();
      }
    });
  });

  it("a write that did not commit withdraws its intent", async () => {
    const a = await server();
    const s = scope();
    const key = redisKey("ryw:", s);
    const client = redis();
    await runWithScope(s, async () => {
      const write = a.beginWrite();
      await sleep(50);
      expect(Object.keys(await client.hgetall(key)).some((f) => f.startsWith("i:"))).toBe(true);
      write.abandon();
    });
    await waitFor(async () => !Object.keys(await client.hgetall(key)).some((f) => f.startsWith("i:")), 5_000, "the intent to be withdrawn");
  });

  it("an intent that expired unresolved keeps its scope off replicas lagging more than ttlMs/2, even ones past its stored position", async () => {
    const ttlMs = 1000;
    const b = await server({ ttlMs });
    const s = scope();
    const client = redis();
    const key = redisKey("ryw:", s);
    // The scope's stored position is one every replica has; an intent of it expired unresolved.
    const [{ lsn }] = (await db.primary`select pg_current_wal_insert_lsn()::text as lsn`) as unknown as [{ lsn: string }];
    await waitForReplicas(cluster);
    const [hi, lo] = lsn.split("/");
    await client.hset(key, "p", (BigInt(`0x${hi}`) * 2n ** 32n + BigInt(`0x${lo}`)).toString(16).padStart(16, "0"), "i:lost", "1");
    await client.pexpire(key, 60_000);
    await b.tracker.refresh();
    await withReplicasPaused(async () => {
      const id = await insert();
      // Replay paused for longer than ttlMs/2: the replicas' lag bound passes it.
      await waitFor(() => b.tracker.replicas.every((r) => r.lagMs === undefined || r.lagMs > ttlMs / 2), 10_000, "the replicas' lag to pass ttlMs/2");
      expect(await runWithScope(s, () => read(b, id))).toEqual({ target: "primary", seen: true });
    });
    // Without the mark the same read may go to a replica past the stored position.
    await client.hdel(key, "i:lost");
    await waitForReplicas(cluster);
    await b.tracker.refresh();
    expect((await runWithScope(s, () => read(b, 0))).target).toBe("replica");
  });
});
