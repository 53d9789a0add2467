// How long a write waits for its record through a Redis restart, per outage length: the figure
// behind the default of `recordTimeoutMs`. `node --import tsx bench/record-outage.ts`
import postgres from "postgres";
import { createRyw, postgresJsRunner, RedisStore, runWithScope } from "@ryw/core";
import { startCluster, startRedis, stopCluster, stopRedis } from "../test/harness/index.js";

const cluster = await startCluster({ replicas: 0, redis: true });
const primary = postgres(cluster.primary.url, { max: 2, onnotice: () => {} });
try {
  for (const outageMs of [250, 500, 1000, 1500, 2000]) {
    const waits: number[] = [];
    for (let round = 0; round < 5; round++) {
      // The store's own client, as `new RedisStore({ url })` makes it.
      const store = new RedisStore({ url: cluster.redis!.url });
      const ryw = createRyw({ primary: postgresJsRunner(primary), replicas: [], store, recordTimeoutMs: 30_000 });
      await store.get("warm-up");
      await stopRedis(cluster);
      const back = new Promise<void>((resolve) => setTimeout(() => void startRedis(cluster).then(resolve), outageMs));
      const started = Date.now();
      await runWithScope(`outage-${round}`, () => ryw.recordWrite(1n));
      waits.push(Date.now() - started);
      await back;
      await ryw.close();
      await store.close();
    }
    waits.sort((x, y) => x - y);
    console.log(`outage ${outageMs} ms: record waited ${waits.join(", ")} ms (max ${waits.at(-1)})`);
  }
} finally {
  await primary.end({ timeout: 1 });
  await stopCluster(cluster);
}
