import type { Lsn, Target } from "@ryw/core";

/** A findUnique read in flight, with the least a server must have replayed to answer it. */
interface Pending {
  /** `"primary"` when only the primary may answer it. */
  readonly needs: Lsn | "primary";
}

/**
 * Prisma's dataloader collects the findUnique calls made in one tick, merges those of the same
 * shape, and runs every one of them from a single callback: in the async context of the FIRST
 * caller. So the statement the adapter sees in a findUnique's context may be answering other
 * findUnique calls too, which may need the primary, or a replica further ahead.
 *
 * Every findUnique routed by the extension is registered here while in flight, with what it
 * needs: the primary, or the replayed position of the replica the router picked (at least the
 * position the read requires, since the router only picks a replica that has replayed it).
 * A statement in a findUnique's context goes to its replica only if that replica has replayed
 * what every findUnique in flight needs; otherwise it goes to the primary, which can answer all.
 * When reads do not overlap, nothing changes.
 *
 * The same callback runs every other batch collected in that tick, batch `$transaction`s
 * included; those hold the primary while they may run without a transaction (`holdPrimary`).
 */
export class UniqueReads {
  readonly #inFlight = new Set<Pending>();
  readonly #position: (index: number) => Lsn | undefined;

  constructor(position: (index: number) => Lsn | undefined) {
    this.#position = position;
  }

  /** Registers a read routed to `target` until `run` settles. */
  async track<T>(target: Target, run: () => Promise<T>): Promise<T> {
    const pending: Pending = { needs: target.kind === "replica" ? (this.#position(target.index) ?? "primary") : "primary" };
    this.#inFlight.add(pending);
    try {
      return await run();
    } finally {
      this.#inFlight.delete(pending);
    }
  }

  /**
   * Keeps every findUnique statement on the primary until the returned function is called (it may
   * be called more than once): for a call that must run on the primary but whose statement
   * Prisma may start from a findUnique's async context (a batch of one, see batch.ts).
   */
  holdPrimary(): () => void {
    const pending: Pending = { needs: "primary" };
    this.#inFlight.add(pending);
    return () => void this.#inFlight.delete(pending);
  }

  /** True when replica `index` may answer every findUnique in flight. */
  replicaMayAnswer(index: number): boolean {
    const position = this.#position(index);
    if (position === undefined) return false;
    for (const pending of this.#inFlight) {
      if (pending.needs === "primary" || pending.needs > position) return false;
    }
    return true;
  }
}
