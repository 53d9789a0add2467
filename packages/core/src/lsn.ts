import { RywError } from "./errors.js";

/**
 * A PostgreSQL WAL position (pg_lsn). A 64-bit number, so it lives in a bigint:
 * string comparison breaks across digit counts and doubles lose the low bits above 2^53.
 */
export type Lsn = bigint;

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;
const MAX_LSN = (1n << 64n) - 1n;

/** Parses PostgreSQL's `HI/LO` text form, e.g. `"0/16B3748"`. Throws `INVALID_LSN` on anything else. */
export function parseLsn(text: string): Lsn {
  const match = typeof text === "string" ? LSN_TEXT.exec(text) : null;
  if (!match) {
    throw new RywError("INVALID_LSN", `Not a PostgreSQL LSN: ${JSON.stringify(String(text).slice(0, 40))}. Expected two hex halves like "0/16B3748".`);
  }
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** Formats an LSN the way PostgreSQL prints it (upper-case hex, no padding). */
export function formatLsn(lsn: Lsn): string {
  assertLsn(lsn);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The larger of two positions; `undefined` stands for "nothing known" and loses to any position. */
export function maxLsn(a: Lsn | undefined, b: Lsn | undefined): Lsn | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a >= b ? a : b;
}

export function compareLsn(a: Lsn, b: Lsn): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function assertLsn(lsn: unknown): asserts lsn is Lsn {
  if (typeof lsn !== "bigint" || lsn < 0n || lsn > MAX_LSN) {
    throw new RywError("INVALID_LSN", `An LSN must be a bigint between 0 and 2^64-1, got ${typeof lsn === "bigint" ? `${lsn}n` : typeof lsn}.`);
  }
}

/** Accepts either form a caller may hold: PostgreSQL text or a bigint. */
export function toLsn(value: Lsn | string): Lsn {
  if (typeof value === "string") return parseLsn(value);
  assertLsn(value);
  return value;
}
