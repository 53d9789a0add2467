import { seeded } from "../packages/core/test/random.js";
import type { BenchRouter } from "./routers/types.js";

export interface WorkloadOptions {
  /** Virtual users, each a scope with its own posts. */
  users: number[];
  /** How long the load runs. */
  durationMs: number;
  /** Probability that an operation is a write. @default 0.1 */
  writeShare: number;
  /** Probability that a read looks at another user's posts. @default 0.1 */
  foreignReadShare: number;
  /** Mean think time between a user's operations (exponential). */
  thinkMs: number;
  /** Seed of the random choices, so that every router sees the same sequence. */
  seed: number;
}

export interface WorkloadResult {
  reads: number;
  /** Reads of one's own posts after an acknowledged write: the ones that can be stale. */
  checkedReads: number;
  staleReads: number;
  writes: number;
  errors: number;
  firstErrors: string[];
  readLatencyMs: number[];
  writeLatencyMs: number[];
  elapsedMs: number;
}

/**
 * Virtual users loop over "write a post" and "read my feed" (sometimes another's) with random
 * think times. A read of one's own feed that misses one's last acknowledged post is stale.
 */
export async function runWorkload(router: BenchRouter, options: WorkloadOptions, runTag: string): Promise<WorkloadResult> {
  const rand = seeded(options.seed);
  const result: WorkloadResult = { reads: 0, checkedReads: 0, staleReads: 0, writes: 0, errors: 0, firstErrors: [], readLatencyMs: [], writeLatencyMs: [], elapsedMs: 0 };
  const lastAcked = new Map<number, string>();
  const started = performance.now();
  const deadline = started + options.durationMs;
  const think = () => new Promise((r) => setTimeout(r, -Math.log(1 - rand()) * options.thinkMs));
  let counter = 0;

  const user = async (id: number) => {
    await new Promise((r) => setTimeout(r, rand() * options.thinkMs));
    while (performance.now() < deadline) {
      try {
        if (rand() < options.writeShare) {
          const title = `${runTag}-${id}-${++counter}`;
          const t0 = performance.now();
          await router.write(id, title);
          result.writeLatencyMs.push(performance.now() - t0);
          result.writes++;
          lastAcked.set(id, title);
        } else {
          const foreign = rand() < options.foreignReadShare;
          const author = foreign ? options.users[Math.floor(rand() * options.users.length)]! : id;
          const expected = author === id ? lastAcked.get(id) : undefined;
          const t0 = performance.now();
          const titles = await router.read(id, author);
          result.readLatencyMs.push(performance.now() - t0);
          result.reads++;
          if (expected !== undefined) {
            result.checkedReads++;
            if (!titles.includes(expected)) result.staleReads++;
          }
        }
      } catch (error) {
        result.errors++;
        if (result.firstErrors.length < 3) result.firstErrors.push(String((error as Error)?.message ?? error).slice(0, 200));
      }
      await think();
    }
  };
  await Promise.all(options.users.map(user));
  result.elapsedMs = performance.now() - started;
  return result;
}
