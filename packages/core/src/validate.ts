import { invalidOption } from "./errors.js";

/** Reads an integer option, naming it in the error. `min` is inclusive. */
export function positiveInt(option: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw invalidOption(option, min === 0 ? "a non-negative integer (milliseconds or a count)" : "a positive integer", value);
  }
  return value;
}

export function oneOf<T extends string>(option: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !allowed.includes(value as T)) {
    throw invalidOption(option, `one of ${allowed.map((a) => `"${a}"`).join(", ")}`, value);
  }
  return value as T;
}
