import type { Verdict } from "./classify.js";
import { classify } from "./classify.js";
import { READ_FUNCTIONS } from "./functions.js";

/**
 * Classification with a bounded cache by SQL text: drizzle sends the same few texts over and over
 * (parameters travel separately), so nearly every statement is classified once per process.
 */
export class Classifier {
  readonly #cache = new Map<string, Verdict>();
  readonly #limit: number;
  readonly #readFunctions: ReadonlySet<string>;

  constructor(readFunctions: ReadonlyArray<string> = [], limit = 2000) {
    this.#readFunctions = readFunctions.length === 0 ? READ_FUNCTIONS : new Set([...READ_FUNCTIONS, ...readFunctions.map((f) => f.toLowerCase())]);
    this.#limit = limit;
  }

  classify(sql: string): Verdict {
    const hit = this.#cache.get(sql);
    if (hit) return hit;
    const verdict = classify(sql, this.#readFunctions);
    // Drop the oldest entry: a Map iterates in insertion order.
    if (this.#cache.size >= this.#limit) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(sql, verdict);
    return verdict;
  }
}
