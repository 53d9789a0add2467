import postgres from "postgres";
import { Redis } from "ioredis";
import { afterAll, describe, expect, inject, it } from "vitest";
import type { Ryw, RywOptions, Target } from "../src/index.js";
import { capturePosition, createRyw, postgresJsRunner, postgresJsWatch, RedisStore, runWithScope } from "../src/index.js";
import { killReplica, pauseReplay, resumeReplay, setApplyDelay, startProxy, startReplica, waitFor, waitForReplicas } from "../../../test/harness/index.js";
import { connect } from "./clients.js";

const cluster = inject("cluster");
const db = connect(cluster);
const opened: Ryw[] = [];
const clients: postgres.Sql[] = [];
/** Every test here restarts r1; the files after this one expect it up and caught up. */
async function r1Back(): Promise<void> {
  await startReplica(cluster, 1).catch(() => {}); // already running
  await waitForReplicas(cluster, 20_000);
}

afterAll(async () => {
  await Promise.all(opened.map((r) => r.close()));
  await Promise.all(clients.map((c) => c.end({ timeout: 1 })));
  await db.end();
});

let n = 0;
const scope = () => `restart-${process.pid}-${++n}`;

/** Replica clients of the test's own, without an idle timeout: they stay connected between polls. */
function replicaClients() {
  const own = cluster.replicas.map((r) => postgres(r.url, { max: 2, onnotice: () => {}, connect_timeout: 5, fetch_types: false }));
  clients.push(...own);
  return own;
}

async function make(options: Partial<RywOptions>): Promise<Ryw> {
  const ryw = createRyw({ ...db.options, ...options });
  opened.push(ryw);
  await ryw.ready();
  return ryw;
}

/** A read that reports which server answered, as the server itself says. */
const whoAnswers = (sqlFor: (t: Target) => postgres.Sql) => async (target: Target) => {
  const [row] = await sqlFor(target)`select inet_server_port() as port`;
  return db.serverName(row!.port as number);
};

describe("a replica that restarts between two polls", () => {
  it("with a connection watch: kill -9 and an immediate restart drop its sample before the next poll", async () => {
    const own = replicaClients();
    const ryw = await make({
      replicas: cluster.replicas.map((r, i) => ({ name: r.name, query: postgresJsRunner(own[i]!), watch: postgresJsWatch(own[i]!) })),
      // No poll and no on-demand sample during the test: only the first round's samples exist.
      tracker: { intervalMs: 600_000 },
      refreshOnDemand: false,
      speculate: false,
      choose: (c) => c.find((r) => r.name === "r1") ?? c[0]!,
    });
    const sqlFor = (t: Target) => (t.kind === "primary" ? db.primary : own[t.index]!);
    await waitForReplicas(cluster);
    const s = scope();
    const before = ryw.tracker.replicas[1]!;
    expect(before.status).toBe("up");
    // The scope needs exactly what r1 was sampled at: r1 qualifies on that sample.
    await runWithScope(s, () => ryw.recordWrite(before.position!));
    expect(await runWithScope(s, () => ryw.read(whoAnswers(sqlFor)))).toBe("r1");

    // The harness restarts r1 synchronously, so this process may handle the old connections'
    // close only after the restart: then the read below is routed on the old sample, r1 answers
    // on a new connection, and that answer is dropped for the primary's. Or the close was seen
    // first and r1 is no candidate. Either way r1 never serves it.
    try {
      await killReplica(cluster, 1);
      await startReplica(cluster, 1);
      const served = await runWithScope(s, () => ryw.read(whoAnswers(sqlFor)));
      expect(served).not.toBe("r1");
      expect(ryw.tracker.replicas[1]!.epoch).not.toBe(before.epoch);
    } finally {
      await r1Back();
    }
  });

  it("without a watch: a read in flight across the restart is not kept once a probe sees the new start time", async () => {
    const own = replicaClients();
    const ryw = await make({
      replicas: cluster.replicas.map((r, i) => ({ name: r.name, query: postgresJsRunner(own[i]!) })),
      tracker: { intervalMs: 600_000 },
      refreshOnDemand: false,
      speculate: false,
      choose: (c) => c.find((r) => r.name === "r1") ?? c[0]!,
    });
    await waitForReplicas(cluster);
    const epoch = ryw.tracker.replicas[1]!.epoch;
    const ran: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const read = runWithScope(scope(), () => ryw.read(async (target) => {
      if (target.kind === "replica") await gate; // the read was routed before the restart
      const server = await whoAnswers((t) => (t.kind === "primary" ? db.primary : own[t.index]!))(target);
      ran.push(server);
      return server;
    }));
    try {
      await killReplica(cluster, 1);
      await startReplica(cluster, 1);
      await ryw.tracker.refresh(); // a probe of the restarted server: a new postmaster start time
      expect(ryw.tracker.replicas[1]!.epoch).not.toBe(epoch);
    } finally {
      release();
      await r1Back();
    }
    // The replica answered (on a new connection, after the restart), and that answer was dropped.
    expect(await read).toBe("primary");
    expect(ran).toEqual(["r1", "primary"]);
    expect(ryw.stats().routes["replica-failed"]?.primary).toBe(1);
  });
});

describe("a replica that lags longer than ttlMs", () => {
  it("never serves a scope whose stored position expired a read that misses its write", async () => {
    // One replica 3 s behind, the other paused; two app servers share Redis; positions live 1 s.
    const redisA = new Redis(cluster.redis!.url).on("error", () => {});
    const redisB = new Redis(cluster.redis!.url).on("error", () => {});
    const options = { ttlMs: 1000, tracker: { intervalMs: 20 } };
    const writer = await make({ ...options, store: new RedisStore({ client: redisA }) });
    const reader = await make({ ...options, store: new RedisStore({ client: redisB }) });
    await setApplyDelay(cluster, 0, 3000);
    await pauseReplay(cluster, 1);
    try {
      const users = Array.from({ length: 12 }, () => scope());
      const ids = await Promise.all(users.map((s) => runWithScope(s, async () => {
        const [row] = await db.primary`insert into "User" (email) values (${`${s}@x`}) returning id`;
        await writer.afterWrite();
        return row!.id as number;
      })));
      await new Promise((r) => setTimeout(r, 1300)); // every stored position has expired
      const reads = await Promise.all(users.map((s, i) => runWithScope(s, () => reader.read(async (target) => {
        const [row] = await db.sqlFor(target)`select exists(select 1 from "User" where id = ${ids[i]!}) as seen`;
        return { target: target.kind, seen: row!.seen as boolean };
      }))));
      expect(reads.filter((r) => !r.seen)).toEqual([]);
      // Not a single read was let through on a replica: neither is known to be within the TTL.
      expect(reads.map((r) => r.target)).toEqual(users.map(() => "primary"));
    } finally {
      await resumeReplay(cluster, 1);
      await setApplyDelay(cluster, 0, 0);
      redisA.disconnect();
      redisB.disconnect();
    }
  });

  it("still sends such scopes to a replica whose lag is known to be short", async () => {
    const ryw = await make({ ttlMs: 1000, tracker: { intervalMs: 20 } });
    await waitForReplicas(cluster);
    const lsn = await capturePosition(db.options.primary);
    await waitFor(() => ryw.tracker.candidates(lsn).length === 2 && ryw.tracker.replicas.every((r) => (r.lagMs ?? Infinity) < 500), 5000, "both replicas to keep up");
    expect(await runWithScope(scope(), () => ryw.route())).toMatchObject({ reason: "no-token", target: { kind: "replica" } });
  });
});

describe("a replica that stops answering", () => {
  it("a read on it is abandoned after replicaTimeoutMs and served by the primary", async () => {
    const link = await startProxy({ port: cluster.replicas[0]!.port });
    const r0 = postgres(link.url("postgres"), { max: 2, onnotice: () => {}, connect_timeout: 5, fetch_types: false });
    clients.push(r0);
    try {
      const ryw = await make({
        replicas: [{ name: "r0", query: postgresJsRunner(r0) }],
        tracker: { intervalMs: 600_000 },
        refreshOnDemand: false,
        replicaTimeoutMs: 300,
      });
      const sqlFor = (t: Target) => (t.kind === "primary" ? db.primary : r0);
      expect(await ryw.read(whoAnswers(sqlFor))).toBe("r0");
      link.stall(); // the connection stays open; nothing comes back
      expect(await runWithScope(scope(), () => ryw.read(whoAnswers(sqlFor)))).toBe("primary");
      expect(ryw.stats().routes["replica-failed"]?.primary).toBe(1);
      // A slow answer is not a lost server: r0 stays a candidate.
      expect(ryw.tracker.replicas[0]!.status).toBe("up");
    } finally {
      link.unstall();
      await link.close();
    }
  });
});
