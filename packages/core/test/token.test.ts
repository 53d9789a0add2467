import { describe, expect, it } from "vitest";
import { createTokenCodec, isRywError } from "../src/index.js";
import { randomLsn, seeded } from "./random.js";

const KEY_A = "a-secret-key-of-32-characters-aa";
const KEY_B = "another-secret-key-of-32-chars-b";

describe("commit tokens", () => {
  it("round-trips positions", () => {
    const codec = createTokenCodec({ keys: [KEY_A] });
    const rand = seeded(3);
    for (let i = 0; i < 500; i++) {
      const lsn = randomLsn(rand);
      expect(codec.decode(codec.encode(lsn)).lsn).toBe(lsn);
    }
  });

  it("rejects every single-character change", () => {
    const codec = createTokenCodec({ keys: [KEY_A] });
    const token = codec.encode(0x1234_5678_9abcn);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    let tried = 0;
    for (let i = 0; i < token.length; i++) {
      for (const c of alphabet) {
        if (c === token[i]) continue;
        const forged = token.slice(0, i) + c + token.slice(i + 1);
        expect(() => codec.decode(forged), forged).toThrow(/\[ryw\] Commit token/);
        tried++;
      }
    }
    expect(tried).toBeGreaterThan(token.length * 60);
  });

  it("rejects truncation, extension and other keys with INVALID_TOKEN", () => {
    const codec = createTokenCodec({ keys: [KEY_A] });
    const token = codec.encode(42n);
    for (const bad of [token.slice(0, -1), `${token}A`, `${token}.x`, "", "v2" + token.slice(2), "x".repeat(1000)]) {
      try {
        codec.decode(bad);
        expect.unreachable();
      } catch (error) {
        expect(isRywError(error, "INVALID_TOKEN")).toBe(true);
      }
    }
    const other = createTokenCodec({ keys: [KEY_B] });
    expect(() => other.decode(token)).toThrow(/bad signature/);
  });

  it("rotates keys: new key signs, old key still verifies", () => {
    const old = createTokenCodec({ keys: [KEY_A] });
    const rotated = createTokenCodec({ keys: [KEY_B, KEY_A] });
    expect(rotated.decode(old.encode(7n)).lsn).toBe(7n);
    expect(() => old.decode(rotated.encode(7n))).toThrow(/bad signature/);
  });

  it("names the option when keys are bad", () => {
    expect(() => createTokenCodec({ keys: [] })).toThrow(/`tokenKeys`/);
    expect(() => createTokenCodec({ keys: ["short"] })).toThrow(/`tokenKeys\[0\]` must be a string of at least 16 characters, got a 5-character string/);
  });
});
