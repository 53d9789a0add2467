/**
 * How core talks to a database: run one statement, get rows. Every ORM and driver can provide it
 * in a line, e.g. postgres.js `(text) => sql.unsafe(text)`, node-postgres
 * `async (text) => (await pool.query(text)).rows`, Prisma `(text) => prisma.$queryRawUnsafe(text)`.
 */
export type SqlRunner = (text: string) => Promise<ReadonlyArray<Record<string, unknown>>>;

/** The part of a postgres.js client that core uses. */
export interface PostgresJsLike {
  unsafe(text: string): PromiseLike<ReadonlyArray<Record<string, unknown>>>;
}

/** A {@link SqlRunner} over a postgres.js client. */
export function postgresJsRunner(sql: PostgresJsLike): SqlRunner {
  return async (text) => await sql.unsafe(text);
}

const WATCHERS = Symbol.for("@ryw/core:onclose");

type OnClose = (connectionId: number) => void;
interface WatchableOptions {
  onclose?: OnClose;
  [WATCHERS]?: Set<() => void>;
}

/**
 * A `watch` hook (see `ReplicaConfig.watch`) for a postgres.js client: reports every connection
 * the client closes, through its `onclose` option, chaining any `onclose` you set. postgres.js
 * reads that option from `sql.options` at each close, so this works on a client created before.
 * `undefined` when the client does not look like postgres.js.
 */
export function postgresJsWatch(sql: PostgresJsLike): ((lost: () => void) => () => void) | undefined {
  const options = (sql as { options?: unknown }).options as WatchableOptions | undefined;
  if (typeof options !== "object" || options === null) return undefined;
  return (lost) => {
    let watchers = options[WATCHERS];
    if (!watchers) {
      const listeners = new Set<() => void>();
      const previous = options.onclose;
      options[WATCHERS] = watchers = listeners;
      options.onclose = (id) => {
        previous?.(id);
        for (const listener of listeners) listener();
      };
    }
    const set = watchers;
    set.add(lost);
    return () => void set.delete(lost);
  };
}
