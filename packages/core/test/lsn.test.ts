import { describe, expect, it } from "vitest";
import { compareLsn, formatLsn, isRywError, maxLsn, parseLsn, toLsn } from "../src/index.js";
import { randomLsn, seeded } from "./random.js";

describe("LSN", () => {
  it("parses PostgreSQL's HI/LO text", () => {
    expect(parseLsn("0/16B3748")).toBe(0x16b3748n);
    expect(parseLsn("1/0")).toBe(1n << 32n);
    expect(parseLsn("FFFFFFFF/FFFFFFFF")).toBe((1n << 64n) - 1n);
    expect(parseLsn("a/b")).toBe((0xan << 32n) | 0xbn);
  });

  it("round-trips random values, including above 2^53", () => {
    const rand = seeded(1);
    for (let i = 0; i < 5000; i++) {
      const lsn = randomLsn(rand);
      expect(parseLsn(formatLsn(lsn))).toBe(lsn);
    }
    const big = (1n << 53n) + 1n; // not representable as a double
    expect(parseLsn(formatLsn(big))).toBe(big);
    expect(formatLsn(big)).toBe("200000/1");
  });

  it("orders like numbers, not like strings", () => {
    // As strings "0/9" > "0/10"; as positions it is the other way round.
    expect(compareLsn(parseLsn("0/9"), parseLsn("0/10"))).toBe(-1);
    expect(compareLsn(parseLsn("10/0"), parseLsn("9/FFFFFFFF"))).toBe(1);
    expect(compareLsn(parseLsn("0/A"), parseLsn("0/a"))).toBe(0);
  });

  it("max never lowers", () => {
    const rand = seeded(2);
    let acc: bigint | undefined;
    for (let i = 0; i < 2000; i++) {
      const next = randomLsn(rand);
      const before = acc;
      acc = maxLsn(acc, next);
      expect(acc! >= next).toBe(true);
      if (before !== undefined) expect(acc! >= before).toBe(true);
    }
    expect(maxLsn(undefined, undefined)).toBeUndefined();
    expect(maxLsn(5n, undefined)).toBe(5n);
  });

  it.each(["", "0", "0/", "/0", "0/0/0", "G/0", "123456789/0", "0/123456789", " 0/1", "0/1 ", "-1/0", "0x1/0", "1.5/0"])(
    "rejects %j with INVALID_LSN naming the value",
    (text) => {
      try {
        parseLsn(text);
        expect.unreachable();
      } catch (error) {
        expect(isRywError(error, "INVALID_LSN")).toBe(true);
        expect((error as Error).message).toMatch(/^\[ryw\] Not a PostgreSQL LSN/);
      }
    },
  );

  it("rejects non-bigint and out-of-range positions", () => {
    expect(() => toLsn(-1n)).toThrow(/between 0 and 2\^64-1/);
    expect(() => toLsn(1n << 64n)).toThrow(/between 0 and 2\^64-1/);
    expect(() => toLsn(42 as unknown as bigint)).toThrow(/got number/);
    expect(() => parseLsn(undefined as unknown as string)).toThrow(/Not a PostgreSQL LSN/);
  });
});
