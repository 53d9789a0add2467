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

describe("commit tokens with a timeline", () => {
  it("round-trip the timeline; tokens without one still decode, without one", () => {
    const codec = createTokenCodec({ keys: [KEY_A] });
    const rand = seeded(7);
    for (let i = 0; i < 200; i++) {
      const lsn = randomLsn(rand);
      const timeline = 1 + Math.floor(rand() * 0xffff_fffe);
      expect(codec.decode(codec.encode(lsn, timeline))).toMatchObject({ lsn, timeline });
      expect(codec.decode(codec.encode(lsn)).timeline).toBeUndefined();
    }
    expect(() => codec.encode(1n, 0)).toThrow(/`timeline`/);
    expect(() => codec.encode(1n, 1.5)).toThrow(/`timeline`/);
  });

  it("reject every single-character change, and a timeline cut off or added", () => {
    const codec = createTokenCodec({ keys: [KEY_A] });
    const token = codec.encode(0x1234_5678_9abcn, 3);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    for (let i = 0; i < token.length; i++) {
      for (const c of alphabet) {
        if (c === token[i]) continue;
        expect(() => codec.decode(token.slice(0, i) + c + token.slice(i + 1))).toThrow(/\[ryw\] Commit token/);
      }
    }
    // The same position and time without the timeline, with the other token's mac: refused.
    const [v, payload, mac] = token.split(".");
    const short = Buffer.from(payload!, "base64url").subarray(0, 12).toString("base64url");
    expect(() => codec.decode(`${v}.${short}.${mac}`)).toThrow(/bad signature/);
    const plain = codec.encode(0x1234_5678_9abcn).split(".");
    const long = Buffer.concat([Buffer.from(plain[1]!, "base64url"), Buffer.from([0, 0, 0, 3])]).toString("base64url");
    expect(() => codec.decode(`${plain[0]}.${long}.${plain[2]}`)).toThrow(/bad signature/);
  });
});
