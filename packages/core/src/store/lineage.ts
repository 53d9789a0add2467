/**
 * Which Redis data a store's answers come from, so that a loss of positions is noticed in the
 * answer that could reveal it, before that answer is used.
 *
 * Every script of RedisStore returns, with its result, the `master_replid` of the server that ran
 * it (INFO replication, read inside the script, so it names the data the script actually saw).
 * Redis draws a new random replication ID whenever a server starts without its data (a restart
 * without persistence) and whenever a replica is promoted (Redis Cluster failover, by CLUSTER
 * FAILOVER or after a master died, Sentinel, REPLICAOF NO ONE); it keeps it while a master runs,
 * and its replicas share it. So an ID names one unbroken history of one master's data.
 *
 * Why a position or write intent lost in a failover never makes a read stale. Redis replicates
 * asynchronously: what a master acknowledged may be missing on the replica that takes over. Say
 * master history L acknowledged a position (the write's caller may have seen it acknowledged), and
 * a later answer lacks it. That answer came from a history L' other than L (within one history
 * nothing acknowledged goes missing), and L' began after the acknowledgement: a promotion or an
 * empty restart, after which L itself accepts no more writes (a killed master; a manual
 * failover's old master, which waits for its replica to catch up and then answers MOVED; a master
 * cut off in a minority partition, which stops serving after cluster-node-timeout, before the
 * majority can promote a replica; Sentinel has no such fence, see the README). This store knows
 * every history that existed when it started (it asks every node of a Cluster, see `begin`; on a
 * single server the first answer tells), and learns others only by reporting them, so L' is
 * unknown to it, and it reports a reset (`onReset`) the first time any answer from L' arrives,
 * whatever key it was for, synchronously, before that answer is returned. A later loss needs yet
 * another new history, reported in turn. Then:
 * - the lookup that brought L' and every lookup in flight are not trusted: the router compares its
 *   reset count before and after each lookup (`#lookup`), and sends those reads to the primary;
 * - every later read requires the floor, a primary position captured after the reset, so after
 *   the lost write's commit, for `ttlMs` (reads go to the primary until it is captured);
 * - past `ttlMs` the lost key would have expired anyway, and the router's rule for a scope with no
 *   known position (a replica known to lag less than `ttlMs/2`) covers its write, as for any key
 *   that expired.
 * This holds whatever the client learnt or did not learn of the failover: an ioredis Cluster
 * follows a MOVED redirection to the new master and returns its answer with no event before it,
 * and after a kill -9 it emits the same `-node`/`+node`/`refresh` events many times over while it
 * waits, with no sign of when the owner changed. The answer itself says where it came from.
 *
 * Not covered: a loss that happened before the store started (as with a Redis restart before a
 * process connected), and servers that refuse INFO inside scripts (an ACL without `+info`), whose
 * answers carry no ID; for those only the reconnect signal (close, then ready) is left.
 */
export class Lineages {
  readonly #known = new Set<string>();
  readonly #onNew: () => void;
  // Until `begin` settles, IDs seen are learnt, not reported: they are the ones that exist now.
  #learning = true;
  #begun: Promise<void> | undefined;

  constructor(onNew: () => void) {
    this.#onNew = onNew;
  }

  /**
   * Learns the histories that exist now: `discover` asks every node it can reach. Without one
   * (a single server), the first ID seen is learnt. Whatever `discover` could not reach is
   * unknown afterwards, so its first answer counts as new: a spurious reset, never a missed one.
   */
  begin(discover: (() => Promise<string[]>) | undefined, timeoutMs: number): void {
    if (!discover) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref?.();
    });
    const found = discover().then((ids) => {
      for (const id of ids) if (id) this.#known.add(id);
    }, () => {});
    this.#begun = Promise.race([found, deadline]).then(() => {
      clearTimeout(timer);
      this.#learning = false;
    });
  }

  /**
   * Resolves once the histories that existed at the start are known (or given up on);
   * `undefined` when there is nothing (left) to wait for, so that answers skip a promise.
   */
  get begun(): Promise<void> | undefined {
    return this.#learning ? this.#begun : undefined;
  }

  /** Called with the ID of every answer, before the answer is used. */
  saw(id: string): void {
    if (!id || this.#known.has(id)) return;
    // Bounded: forgetting costs at most one spurious reset per history seen again.
    if (this.#known.size >= 1024) this.#known.clear();
    this.#known.add(id);
    if (this.#learning && this.#begun === undefined) {
      this.#learning = false;
      return;
    }
    if (this.#learning) return;
    this.#onNew();
  }
}

/** `master_replid` from INFO replication text, "" when absent. */
export function replicationId(info: string): string {
  return /master_replid:([0-9a-f]+)/.exec(info)?.[1] ?? "";
}
