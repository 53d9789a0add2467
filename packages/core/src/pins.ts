import type { Lsn } from "./lsn.js";

interface Pin {
  /** What to record; `undefined` when the position itself could not be captured yet. */
  value: Lsn | undefined;
  ttlMs: number;
  until: number;
}

export interface PinsOptions {
  retryMs: number;
  retry: (scope: string, value: Lsn) => Promise<void>;
  capture: () => Promise<Lsn>;
  onError: (error: unknown, scope: string) => void;
}

const MAX_PINS = 100_000;

/**
 * Scopes whose committed write was acknowledged before its record reached the store. They read
 * from the primary in this process until the record is retried successfully or their TTL passes. Beyond MAX_PINS scopes every
 * scoped read is pinned instead, so memory stays bounded without ever trading away correctness.
 */
export class Pins {
  readonly #pins = new Map<string, Pin>();
  readonly #options: PinsOptions;
  #allUntil = 0;
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(options: PinsOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#pins.size;
  }

  has(scope: string): boolean {
    const now = Date.now();
    if (now < this.#allUntil) return true;
    const pin = this.#pins.get(scope);
    if (!pin) return false;
    if (now < pin.until) return true;
    this.#pins.delete(scope);
    return false;
  }

  add(scope: string, value: Lsn | undefined, ttlMs: number): void {
    const now = Date.now();
    const current = this.#pins.get(scope);
    if (!current && this.#pins.size >= MAX_PINS) {
      this.#allUntil = Math.max(this.#allUntil, now + ttlMs);
      return;
    }
    const keep = current?.value !== undefined && value !== undefined && current.value > value ? current.value : value;
    this.#pins.set(scope, { value: current && current.value === undefined ? undefined : keep, ttlMs, until: now + ttlMs });
    this.#schedule();
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pins.clear();
  }

  #schedule(): void {
    if (this.#timer || this.#running) return;
    this.#timer = setTimeout(() => void this.#retryAll(), this.#options.retryMs);
    this.#timer.unref();
  }

  async #retryAll(): Promise<void> {
    this.#timer = undefined;
    this.#running = true;
    try {
      for (const [scope, pin] of [...this.#pins]) {
        if (Date.now() >= pin.until) {
          this.#pins.delete(scope);
          continue;
        }
        try {
          // A position captured now is past the lost one's commit, so it is a safe stand-in.
          pin.value ??= await this.#options.capture();
          await this.#options.retry(scope, pin.value);
          if (this.#pins.get(scope) === pin) this.#pins.delete(scope);
        } catch (error) {
          this.#options.onError(error, scope);
          break; // The store is still down; try again on the next round.
        }
      }
    } finally {
      this.#running = false;
      if (this.#pins.size > 0) this.#schedule();
    }
  }
}
