/** How drizzle wants rows: objects (`await client.unsafe(...)`) or arrays (`.values()`). */
export type ResultMode = "objects" | "values";

/**
 * What `unsafe()` returns: the part of a postgres.js PendingQuery that drizzle uses (awaiting it,
 * or `.values()` first). It starts on the first `then`, because the routing decision is async and
 * `.values()` must be known before the query is sent.
 */
export class RoutedQuery<T = unknown> implements PromiseLike<T> {
  readonly #run: (mode: ResultMode) => Promise<T>;
  #mode: ResultMode = "objects";
  #promise: Promise<T> | undefined;

  constructor(run: (mode: ResultMode) => Promise<T>) {
    this.#run = run;
  }

  values(): this {
    this.#mode = "values";
    return this;
  }

  then<A = T, B = never>(onfulfilled?: ((value: T) => A | PromiseLike<A>) | null, onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.#start().then(onfulfilled, onrejected);
  }

  catch<B = never>(onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.#start().catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.#start().finally(onfinally);
  }

  get [Symbol.toStringTag](): string {
    return "RoutedQuery";
  }

  #start(): Promise<T> {
    return (this.#promise ??= this.#run(this.#mode));
  }
}
