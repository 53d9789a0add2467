import { createHmac, timingSafeEqual } from "node:crypto";
import type { Lsn } from "./lsn.js";
import { assertLsn } from "./lsn.js";
import { invalidOption, RywError } from "./errors.js";

/**
 * Commit tokens carry a scope's position on the client (a header or cookie) instead of in a store.
 * Format: `v1.<payload>.<mac>`, base64url; payload = 8-byte LSN + 4-byte issue time (seconds),
 * mac = HMAC-SHA256 over version and payload, truncated to 128 bits. When the position's
 * timeline is known (the router's own captures read it in the same statement), the payload ends
 * with it (4 more bytes); tokens of 12-byte payloads, from before timelines, still decode. The
 * mac covers the payload's length, so neither form can pass for the other.
 */
export interface TokenCodec {
  /** `timeline`: the PostgreSQL timeline the position was written on, if known. */
  encode(lsn: Lsn, timeline?: number): string;
  /**
   * Verifies and decodes a token. Throws `INVALID_TOKEN` for anything not signed by one of the
   * keys. `timeline` is `undefined` for a token without one: callers must then assume none.
   */
  decode(token: string): { lsn: Lsn; issuedAt: number; timeline?: number };
}

export interface TokenCodecOptions {
  /**
   * Secrets, at least 16 characters each. The first signs new tokens; all verify, so a key is
   * rotated by putting the new one first and dropping the old one after the token lifetime.
   */
  keys: ReadonlyArray<string>;
}

const VERSION = "v1";
const PAYLOAD_BYTES = 12;
const PAYLOAD_TIMELINE_BYTES = 16;
const MAC_BYTES = 16;
const MAX_TOKEN_LENGTH = 128;

export function createTokenCodec(options: TokenCodecOptions): TokenCodec {
  const keys = options?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw invalidOption("tokenKeys", "a non-empty array of secrets", keys);
  keys.forEach((key, i) => {
    if (typeof key !== "string") throw invalidOption(`tokenKeys[${i}]`, "a string of at least 16 characters", key);
    if (key.length < 16) throw new RywError("INVALID_OPTION", `Option \`tokenKeys[${i}]\` must be a string of at least 16 characters, got a ${key.length}-character string.`);
  });
  const mac = (key: string, payload: Buffer) => createHmac("sha256", key).update(`${VERSION}.`).update(payload).digest().subarray(0, MAC_BYTES);

  return {
    encode(lsn, timeline) {
      assertLsn(lsn);
      if (timeline !== undefined && !(Number.isInteger(timeline) && timeline > 0 && timeline <= 0xffff_ffff)) throw invalidOption("timeline", "a positive 32-bit integer", timeline);
      const payload = Buffer.alloc(timeline === undefined ? PAYLOAD_BYTES : PAYLOAD_TIMELINE_BYTES);
      payload.writeBigUInt64BE(lsn, 0);
      payload.writeUInt32BE(Math.floor(Date.now() / 1000), 8);
      if (timeline !== undefined) payload.writeUInt32BE(timeline, 12);
      return `${VERSION}.${payload.toString("base64url")}.${mac(keys[0]!, payload).toString("base64url")}`;
    },
    decode(token) {
      if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) throw invalid("is not a string of a sensible length");
      const [version, payloadText, macText, ...rest] = token.split(".");
      if (version !== VERSION || payloadText === undefined || macText === undefined || rest.length > 0) throw invalid(`is not a ${VERSION} token`);
      const payload = canonical(payloadText, PAYLOAD_BYTES) ?? canonical(payloadText, PAYLOAD_TIMELINE_BYTES);
      const given = canonical(macText, MAC_BYTES);
      if (!payload || !given) throw invalid("is malformed");
      if (!keys.some((key) => timingSafeEqual(mac(key, payload), given))) throw invalid("has a bad signature (tampered, or signed with a key not in `tokenKeys`)");
      const decoded = { lsn: payload.readBigUInt64BE(0), issuedAt: payload.readUInt32BE(8) * 1000 };
      if (payload.length === PAYLOAD_BYTES) return decoded;
      const timeline = payload.readUInt32BE(12);
      if (timeline === 0) throw invalid("is malformed");
      return { ...decoded, timeline };
    },
  };
}

// base64url has several spellings of the same bytes (the unused low bits of the last character);
// only the canonical one is accepted, so that every changed character is a rejected token.
function canonical(text: string, bytes: number): Buffer | undefined {
  const buf = Buffer.from(text, "base64url");
  return buf.length === bytes && buf.toString("base64url") === text ? buf : undefined;
}

function invalid(why: string): RywError {
  return new RywError("INVALID_TOKEN", `Commit token ${why}; the read goes to the primary.`);
}
