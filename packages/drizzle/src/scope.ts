import { onPrimary } from "@ryw/core";
import type { Settled } from "@ryw/core";

/**
 * Runs `fn` with every read sent to the primary, like drizzle's `db.$primary`. Writes inside still
 * count for the request's scope. Core's `onPrimary` under the name Drizzle users look for.
 * @example const fresh = await $primary(() => db.select().from(users).where(eq(users.id, id)))
 */
export function $primary<T>(fn: () => T): Settled<T> {
  return onPrimary(fn);
}
