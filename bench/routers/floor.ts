import { Redis } from "ioredis";
import type { RouterSpec } from "./types.js";

/**
 * The floor under any router that keeps read-your-writes across app servers: the naive router
 * of the same ORM plus the one Redis round trip per operation that no such router can avoid,
 * overlapped with the statement. A read must learn its scope's state after it begins (another
 * server may have written just before), and a write must leave its mark before it is
 * acknowledged. Here that is a plain GET or SET of the user's key, the cheapest command there is,
 * on its own ioredis client, as @ryw's store has. @ryw's own cost is what it adds over this
 * router; what this router adds over the naive one is the machine's price of a Redis round trip.
 */
export function floorOf(naive: RouterSpec): RouterSpec {
  return {
    name: floorName(naive.name),
    orm: naive.orm,
    // It checks nothing: it serves the same reads as the naive router.
    promisesRyw: false,
    async create(cluster) {
      const inner = await naive.create(cluster);
      const redis = new Redis(cluster.redis!.url).on("error", () => {});
      const key = (user: number) => `bench-floor:${user}`;
      return {
        write: async (user, title) => void (await Promise.all([redis.set(key(user), "1", "PX", 60_000), inner.write(user, title)])),
        read: async (asUser, author) => (await Promise.all([redis.get(key(asUser)), inner.read(asUser, author)]))[1],
        close: async () => {
          await inner.close();
          await redis.quit();
        },
      };
    },
  };
}

/** The name of the floor router over the naive router named `naive`. */
export function floorName(naive: string): string {
  return `${naive} + Redis call`;
}
