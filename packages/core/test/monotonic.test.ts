import { Redis } from "ioredis";
import { afterAll, describe, expect, inject, it } from "vitest";
import type { Lsn, Ryw, RywEvent, RywOptions, SqlRunner, Target } from "../src/index.js";
import { createRyw, createTokenCodec, formatLsn, parseLsn, RedisStore, runWithScope } from "../src/index.js";
import { pauseReplay, resumeReplay, setApplyDelay, waitFor, waitForReplicas } from "../../../test/harness/index.js";
import { connect, sleep } from "./clients.js";

// Monotonic reads on the real cluster. Two routers stand for two app servers sharing one Redis;
// a client that never writes goes from one to the other, carrying only its commit token, while
// another user keeps writing and the replicas lag by turns (replay paused, or delayed).

const cluster = inject("cluster");
const db = connect(cluster);
const TOKEN_KEYS = ["monotonic-reads-test-key-0123456789"];
const codec = createTokenCodec({ keys: TOKEN_KEYS });
const opened: Array<{ close(): Promise<unknown> }> = [];
afterAll(async () => {
  // Whatever failed: replay runs again, undelayed.
  await Promise.allSettled([resumeReplay(cluster, 0), resumeReplay(cluster, 1)]);
  await Promise.allSettled([setApplyDelay(cluster, 0, 0), setApplyDelay(cluster, 1, 0)]);
  for (const o of opened.reverse()) await o.close();
  await db.end();
});

let n = 0;

function redis(): Redis {
  const client = new Redis(cluster.redis!.url, { maxRetriesPerRequest: 1 }).on("error", () => {});
  opened.push({ close: async () => client.disconnect() });
  return client;
}

async function server(options: Partial<RywOptions> = {}): Promise<Ryw & { events: RywEvent[] }> {
  const ryw = createRyw({ ...db.options, store: new RedisStore({ client: redis(), prefix: `mono-${process.pid}:` }), tokenKeys: TOKEN_KEYS, monotonic: true, tracker: { intervalMs: 20 }, ...options });
  opened.push(ryw);
  const events: RywEvent[] = [];
  ryw.subscribe((e) => events.push(e));
  await ryw.ready();
  return Object.assign(ryw, { events });
}

async function newAuthor(): Promise<number> {
  const [row] = await db.primary`insert into "User" (email) values (${`mono-${process.pid}-${Date.now()}-${++n}@x`}) returning id`;
  return row!.id as number;
}

async function post(author: number): Promise<number> {
  const [row] = await db.primary`insert into "Post" ("authorId", title) values (${author}, ${`p${++n}`}) returning id`;
  return row!.id as number;
}

async function primaryPosition(): Promise<Lsn> {
  const [row] = await db.primary`select pg_current_wal_insert_lsn()::text as lsn`;
  return parseLsn(row!.lsn as string);
}

/**
 * One request of a client that never writes: it brings the token of its previous response, reads
 * the newest post of `author` through `ryw`, and leaves with the token its response would carry.
 */
function request(ryw: Ryw, author: number, token: string | undefined) {
  return runWithScope({ token }, async () => {
    const seen = await ryw.read(async (target: Target) => {
      const [row] = await db.sqlFor(target)`select inet_server_port() as port, coalesce(max(id), 0)::int as newest from "Post" where "authorId" = ${author}`;
      return { server: db.serverName(row!.port as number), newest: row!.newest as number };
    });
    return { ...seen, token: ryw.commitToken() ?? token };
  });
}

const tokenLsn = (token: string | undefined) => (token === undefined ? undefined : codec.decode(token).lsn);

/** Replica runners for the trackers: `armed` changes what the probes of replica `index` get. */
function probeHook(index: number) {
  const hook = { armed: undefined as undefined | "restarted" | "fail", probes: 0 };
  const base = db.options.replicas[index]!.query;
  const query: SqlRunner = async (text) => {
    hook.probes++;
    if (hook.armed === "fail") throw new Error("probe refused by the test");
    const rows = await base(text);
    // The server now reports another start time: to the tracker, a replica that restarted.
    return hook.armed === "restarted" ? rows.map((row) => ({ ...row, started: "2000-01-01 00:00:00+00" })) : rows;
  };
  const replicas = db.options.replicas.map((r, i) => (i === index ? { ...r, query } : r));
  return { hook, replicas };
}

describe("monotonic reads: the checker", () => {
  it("a client that never writes never sees time go backwards across two app servers, with replicas lagging by turns; without the option it does", async () => {
    const author = await newAuthor();
    let writing = true;
    // Another user: one insert at a time, so a higher id is always a later commit.
    const writer = (async () => {
      while (writing) {
        await post(author);
        await sleep(2);
      }
    })();

    const PER_PHASE = 100;
    // Each lag state is entered, then left halfway through its requests, so that requests also
    // run while a replica catches up.
    const phases: Array<{ name: string; enter: () => Promise<void>; leave: () => Promise<void> }> = [
      { name: "r0 paused", enter: () => pauseReplay(cluster, 0), leave: () => resumeReplay(cluster, 0) },
      { name: "r1 paused", enter: () => pauseReplay(cluster, 1), leave: () => resumeReplay(cluster, 1) },
      { name: "r0 200 ms behind", enter: () => setApplyDelay(cluster, 0, 200), leave: () => setApplyDelay(cluster, 0, 0) },
      { name: "r1 200 ms behind", enter: () => setApplyDelay(cluster, 1, 200), leave: () => setApplyDelay(cluster, 1, 0) },
      // Lags shorter than a poll interval: the replica behind is often past the sample another
      // one was picked on, yet short of what that one returned (a bound taken at the pick fails here).
      { name: "r0 10 ms behind", enter: () => setApplyDelay(cluster, 0, 10), leave: () => setApplyDelay(cluster, 0, 0) },
      { name: "r1 10 ms behind", enter: () => setApplyDelay(cluster, 1, 10), leave: () => setApplyDelay(cluster, 1, 0) },
      {
        name: "r0 paused, r1 100 ms behind",
        enter: async () => {
          await pauseReplay(cluster, 0);
          await setApplyDelay(cluster, 1, 100);
        },
        leave: async () => {
          await resumeReplay(cluster, 0);
          await setApplyDelay(cluster, 1, 0);
        },
      },
    ];

    async function check(monotonic: boolean) {
      // The default poll interval: samples up to 100 ms old, as in production.
      const a = await server({ monotonic, tracker: { intervalMs: 100 } });
      const b = await server({ monotonic, tracker: { intervalMs: 100 } });
      let token: string | undefined;
      let newest = 0;
      let backwards = 0;
      let requests = 0;
      const servers: Record<string, number> = {};
      for (const phase of phases) {
        await phase.enter();
        let leaving: Promise<void> | undefined;
        try {
          for (let i = 0; i < PER_PHASE; i++) {
            if (i === PER_PHASE / 2) leaving = phase.leave();
            const r = await request(requests % 2 === 0 ? a : b, author, token);
            requests++;
            token = r.token;
            servers[r.server] = (servers[r.server] ?? 0) + 1;
            if (r.newest < newest) backwards++;
            newest = Math.max(newest, r.newest);
          }
        } finally {
          await (leaving ?? phase.leave());
        }
      }
      const unbounded = a.stats().unboundedReads + b.stats().unboundedReads;
      // Why reads went where they went, both servers together (for the closing note).
      const reasons: Record<string, string> = {};
      const [ra, rb] = [a.stats().routes, b.stats().routes];
      for (const reason of new Set([...Object.keys(ra), ...Object.keys(rb)]) as Set<keyof typeof ra>) {
        const sum = (kind: "replica" | "primary") => (ra[reason]?.[kind] ?? 0) + (rb[reason]?.[kind] ?? 0);
        reasons[reason] = `${sum("replica")} replica, ${sum("primary")} primary`;
      }
      return { monotonic, requests, backwards, servers, unbounded, reasons };
    }

    let results: Array<Awaited<ReturnType<typeof check>>>;
    try {
      results = [await check(true), await check(false)];
    } finally {
      writing = false;
      await writer;
    }
    for (const r of results) {
      console.log(`[monotonic checker] monotonic: ${r.monotonic}: ${r.backwards} of ${r.requests} requests went back in time; served by ${JSON.stringify(r.servers)}; reasons ${JSON.stringify(r.reasons)}; unbounded reads ${r.unbounded}`);
    }
    const [on, off] = results;
    expect(on!.requests).toBe(PER_PHASE * phases.length);
    expect(on!.backwards).toBe(0);
    // Not by sending everything to the primary: replicas served reads.
    expect((on!.servers.r0 ?? 0) + (on!.servers.r1 ?? 0)).toBeGreaterThan(0);
    // The same sequence without the option: the checker does see time go backwards.
    expect(off!.requests).toBe(on!.requests);
    expect(off!.backwards).toBeGreaterThan(0);
  });
});

describe("monotonic reads: the served bound", () => {
  it("is taken after the read: a replica that replayed past its pick sample while the read ran keeps the client off replicas between the two", async () => {
    const author = await newAuthor();
    await waitForReplicas(cluster);
    // r0 first, so that r1 pauses at or past r0's position (pausing nudges WAL until it stops).
    await pauseReplay(cluster, 0);
    await pauseReplay(cluster, 1);
    try {
      const id = await post(author);
      const written = await primaryPosition();
      // No background polls: r0's sample stays the one taken while it was paused.
      const a = await server({ tracker: { intervalMs: 60_000 }, choose: (c) => c.find((r) => r.name === "r0") ?? c[0]! });
      const picked = a.tracker.replicas[0]!.position!;
      expect(picked).toBeLessThan(written);
      let replayedBefore: Lsn | undefined;
      const first = await runWithScope({}, async () => {
        const seen = await a.read(async (target: Target) => {
          expect(target).toMatchObject({ kind: "replica", name: "r0" });
          // Right after the pick, r0 replays the new post, and only then the query starts.
          await resumeReplay(cluster, 0);
          await waitFor(async () => {
            const [row] = await db.replicas[0]!`select pg_last_wal_replay_lsn() >= ${formatLsn(written)}::pg_lsn as done`;
            return row!.done === true;
          }, 10_000, "r0 to replay the post");
          const [before] = await db.replicas[0]!`select pg_last_wal_replay_lsn()::text as lsn`;
          replayedBefore = parseLsn(before!.lsn as string);
          const [row] = await db.replicas[0]!`select coalesce(max(id), 0)::int as newest from "Post" where "authorId" = ${author}`;
          return row!.newest as number;
        });
        return { seen, token: a.commitToken() };
      });
      expect(first.seen).toBe(id);
      // What the read could have seen is at or past what r0 had replayed before it started, not
      // the (lower) sample the pick was made on.
      expect(tokenLsn(first.token)).toBeGreaterThanOrEqual(replayedBefore!);
      expect(replayedBefore!).toBeGreaterThan(picked);

      // The other app server sees r1 still paused, past the pick's sample but before the post:
      // a bound taken at the pick would have let it answer, without the post.
      const b = await server();
      expect(b.tracker.candidates(picked).map((r) => r.name)).toContain("r1");
      expect(b.tracker.replicas[1]!.position!).toBeLessThan(written);
      for (let i = 0; i < 10; i++) {
        const next = await request(b, author, first.token);
        expect(next.newest).toBe(id);
        expect(next.server).not.toBe("r1");
      }
    } finally {
      await resumeReplay(cluster, 0);
      await resumeReplay(cluster, 1);
    }
  });

  it("falls back to a primary position when the replica's epoch changed after the pick, or its probe fails", async () => {
    const author = await newAuthor();
    await waitForReplicas(cluster);
    await pauseReplay(cluster, 0);
    try {
      await post(author);
      const { hook, replicas } = probeHook(0);
      const a = await server({ replicas, tracker: { intervalMs: 60_000 }, choose: (c) => c.find((r) => r.name === "r0") ?? c[0]! });
      const paused = a.tracker.replicas[0]!.position!;
      const readOnR0 = (arm?: "restarted" | "fail") =>
        runWithScope({}, async () => {
          await a.read(async (target: Target) => {
            expect(target).toMatchObject({ kind: "replica", name: "r0" });
            const rows = await db.replicas[0]!`select 1`;
            // After the read returned to the router, before its bound is taken.
            hook.armed = arm;
            return rows;
          });
          return tokenLsn(a.commitToken())!;
        });

      // The control: the bound is r0's own position, paused behind the primary.
      const primaryBefore = await primaryPosition();
      expect(paused).toBeLessThan(primaryBefore);
      expect(await readOnR0()).toBe(paused);

      // r0 reports a new start time to the probe after the read: it may have come back lower,
      // so its position bounds nothing; a primary position read after the read does.
      const restarted = await readOnR0("restarted");
      expect(restarted).toBeGreaterThanOrEqual(primaryBefore);
      hook.armed = undefined;
      await a.tracker.refresh();

      // Its probe fails after the read: the same.
      const primaryThen = await primaryPosition();
      const failed = await readOnR0("fail");
      expect(failed).toBeGreaterThanOrEqual(primaryThen);
      expect(a.stats().unboundedReads).toBe(0);
    } finally {
      await resumeReplay(cluster, 0);
    }
  });

  it("when neither the replica nor the primary answers after the read: an error event, counted, and the token carries the highest known primary position", async () => {
    await waitForReplicas(cluster);
    const { hook, replicas } = probeHook(0);
    let primaryDown = false;
    const primary: SqlRunner = async (text) => {
      if (primaryDown && /pg_current_wal_insert_lsn/.test(text)) throw new Error("primary refused by the test");
      return db.options.primary(text);
    };
    const a = await server({ primary, replicas, tracker: { intervalMs: 60_000 }, choose: (c) => c.find((r) => r.name === "r0") ?? c[0]! });
    const known = a.tracker.primaryPosition!;
    const position = await runWithScope({}, async () => {
      await a.read(async () => {
        const rows = await db.replicas[0]!`select 1`;
        hook.armed = "fail";
        primaryDown = true;
        return rows;
      });
      return tokenLsn(a.commitToken());
    });
    hook.armed = undefined;
    primaryDown = false;
    expect(position).toBe(known);
    expect(a.stats().unboundedReads).toBe(1);
    expect(a.events.filter((e) => e.type === "error" && e.source === "served")).toHaveLength(1);
  });

  it("is not taken outside a request context, nor by route(): nothing could carry it", async () => {
    const { hook, replicas } = probeHook(0);
    const a = await server({ replicas, tracker: { intervalMs: 60_000 }, choose: (c) => c.find((r) => r.name === "r0") ?? c[0]! });
    const before = hook.probes;
    await a.read((target) => db.sqlFor(target)`select 1`);
    await runWithScope({}, () => a.route());
    expect(hook.probes).toBe(before);
    await runWithScope({}, () => a.read((target) => db.sqlFor(target)`select 1`));
    expect(hook.probes).toBe(before + 1);
  });
});

describe("monotonic reads: tokens of clients without a scope", () => {
  it("cover what a scope-less write showed: its position is captured after the commit and carried", async () => {
    const a = await server();
    const author = await newAuthor();
    let committed: Lsn | undefined;
    const token = await runWithScope({}, async () => {
      await post(author); // e.g. an INSERT ... RETURNING: the client saw its row
      committed = await primaryPosition();
      await a.afterWrite();
      return a.commitToken();
    });
    expect(tokenLsn(token)).toBeGreaterThanOrEqual(committed!);
    // Without the option, nobody could ask for it: no capture, no token.
    const plain = await server({ monotonic: false });
    expect(await runWithScope({}, async () => {
      await post(author);
      await plain.afterWrite();
      return plain.commitToken();
    })).toBeUndefined();
  });

  it("are checked like a scope's: a tampered token or one ahead of the primary sends the read to the primary", async () => {
    const a = await server();
    const good = codec.encode(await primaryPosition());
    const tampered = good.slice(0, -2) + (good.at(-2) === "A" ? "B" : "A") + good.at(-1);
    const ahead = codec.encode((await primaryPosition()) + (1n << 40n));
    expect(await runWithScope({ token: tampered }, () => a.route())).toMatchObject({ reason: "invalid-token", target: { kind: "primary" } });
    expect(await runWithScope({ token: ahead }, () => a.route())).toMatchObject({ reason: "token-ahead", target: { kind: "primary" } });
    await waitForReplicas(cluster);
    await a.tracker.refresh();
    expect(await runWithScope({ token: good }, () => a.route())).toMatchObject({ reason: "caught-up", target: { kind: "replica" } });
    // Without the option a scope-less request ignores its token, as before.
    const plain = await server({ monotonic: false });
    expect(await runWithScope({ token: tampered }, () => plain.route())).toMatchObject({ reason: "no-scope", target: { kind: "replica" } });
  });
});

describe("monotonic reads: options", () => {
  it("names `monotonic` when it cannot be honoured", () => {
    const base = { ...db.options };
    expect(() => createRyw({ ...base, monotonic: true })).toThrow(/`monotonic` must be used with `tokenKeys` \(the served position travels in the commit token\), got true/);
    expect(() => createRyw({ ...base, monotonic: true, tokenKeys: TOKEN_KEYS, strategy: "time-window" })).toThrow(/`monotonic` must be used with strategy "lsn" or "token" \("time-window" has no positions to carry\)/);
    expect(() => createRyw({ ...base, monotonic: true, tokenKeys: TOKEN_KEYS, strategy: "primary" })).toThrow(/`monotonic` must be used with strategy "lsn" or "token" \("primary" reads are monotonic already\)/);
    expect(() => createRyw({ ...base, monotonic: "yes" as never, tokenKeys: TOKEN_KEYS })).toThrow(/`monotonic` must be a boolean, got "yes"/);
  });
});
