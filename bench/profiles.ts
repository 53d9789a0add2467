import type { ClusterInfo } from "../test/harness/index.js";
import { killReplica, pauseReplay, resumeReplay, setApplyDelay, startRedis, startReplica, stopRedis } from "../test/harness/index.js";

/**
 * A lag profile: how the replicas behave while a router runs. `during` runs alongside the load
 * and must stop by itself when `signal` aborts; `after` leaves the cluster healthy again.
 */
export interface Profile {
  name: string;
  description: string;
  before(cluster: ClusterInfo): Promise<void>;
  during?(cluster: ClusterInfo, signal: AbortSignal, log: (event: string) => void): Promise<void>;
  after(cluster: ClusterInfo): Promise<void>;
}

const delays = (ms: number[]) => async (cluster: ClusterInfo) => {
  for (const [i, delay] of ms.entries()) await setApplyDelay(cluster, i, delay);
};

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });

export const profiles: Profile[] = [
  { name: "fast", description: "replicas ~1 ms behind", before: delays([0, 0]), after: delays([0, 0]) },
  { name: "one slow", description: "r0 replays with a 200 ms delay", before: delays([200, 0]), after: delays([0, 0]) },
  { name: "all slow", description: "both replicas replay with a 500 ms delay", before: delays([500, 500]), after: delays([0, 0]) },
  {
    name: "chaos",
    description: "replay pauses and resumes at random, r1 is killed with -9 and restarted, Redis restarts once",
    before: delays([0, 0]),
    async during(cluster, signal, log) {
      let step = 0;
      while (!signal.aborted) {
        step++;
        const replica = step % 2;
        await pauseReplay(cluster, replica);
        log(`pause r${replica}`);
        await sleep(150 + ((step * 97) % 400), signal);
        await resumeReplay(cluster, replica);
        log(`resume r${replica}`);
        if (step === 2) {
          await killReplica(cluster, 1);
          log("kill -9 r1");
          await sleep(400, signal);
          await startReplica(cluster, 1);
          log("restart r1");
        }
        if (step === 3) {
          await stopRedis(cluster);
          log("stop redis");
          await sleep(200, signal);
          await startRedis(cluster);
          log("start redis");
        }
        await sleep(100, signal);
      }
    },
    async after(cluster) {
      for (const i of cluster.replicas.keys()) await resumeReplay(cluster, i).catch(() => startReplica(cluster, i));
      await delays([0, 0])(cluster);
    },
  },
];
