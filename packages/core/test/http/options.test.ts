import { describe, expect, it } from "vitest";
import type { Ryw } from "../../src/index.js";
import { currentContext, isRywError } from "../../src/index.js";
import type { RywHttpOptions, TokenTransportOptions } from "../../src/http/index.js";
import { HttpRyw, MAX_TOKEN_CHARS, readToken } from "../../src/http/index.js";
import { rywExpress } from "../../src/http/express.js";
import { rywHono } from "../../src/http/hono.js";
import { rywNext, rywRequestHeaders } from "../../src/http/next.js";

/** Stands in for a router where only signing matters: these tests are about options and parsing. */
const signer = (token = "v1.AAAAAAAAAAEAAAAA.BBBBBBBBBBBBBBBBBBBBBA", strategy: Ryw["strategy"] = "token"): TokenTransportOptions["ryw"] => ({ commitToken: () => (currentContext()?.known.lastWriteAt ? token : undefined), strategy });
const noKeys: TokenTransportOptions["ryw"] = {
  commitToken: () => {
    throw new Error("no tokenKeys");
  },
  strategy: "lsn",
};

function rejects(make: () => unknown, code: string, message: RegExp) {
  try {
    make();
  } catch (error) {
    expect(isRywError(error, code as never), String(error)).toBe(true);
    expect((error as Error).message).toMatch(message);
    return;
  }
  expect.unreachable("no error thrown");
}

describe("middleware options", () => {
  it("names the option in every error", () => {
    const bad: Array<[unknown, RegExp]> = [
      ["not options", /`rywExpress\(options\)` must be an object/],
      [{ scope: "user" }, /`scope` must be a function/],
      [{ token: "yes" }, /`token` must be an object/],
      [{ token: {} }, /`token.ryw` must be a ryw instance/],
      [{ token: { ryw: noKeys } }, /`token.ryw` must be created with `tokenKeys`/],
      [{ token: { ryw: signer(), via: "query" } }, /`token.via` must be one of "cookie", "header", got "query"/],
      [{ token: { ryw: signer(), name: "ryw token" } }, /`token.name` must be a header or cookie name/],
      [{ token: { ryw: signer(), name: "x".repeat(65) } }, /`token.name`/],
      [{ token: { ryw: signer(), name: 7 } }, /`token.name` .* got 7/],
      [{ token: { ryw: signer(), via: "header", cookie: {} } }, /`token.cookie` must be unset with via: "header"/],
      [{ token: { ryw: signer(), cookie: { sameSite: "lenient" } } }, /`token.cookie.sameSite` must be one of "lax", "strict", "none"/],
      [{ token: { ryw: signer(), cookie: { sameSite: "none" } } }, /`token.cookie.secure` must be true with sameSite: "none"/],
      [{ token: { ryw: signer(), cookie: { secure: "yes" } } }, /`token.cookie.secure` must be true, false or "auto"/],
      [{ token: { ryw: signer(), cookie: { httpOnly: "true" } } }, /`token.cookie.httpOnly` must be a boolean/],
      [{ token: { ryw: signer(), cookie: { trustProxy: 1 } } }, /`token.cookie.trustProxy` must be a boolean/],
      [{ token: { ryw: signer(), cookie: { path: "/; Domain=evil.example" } } }, /`token.cookie.path` must be a non-empty string .* without ';'/],
      [{ token: { ryw: signer(), cookie: { domain: "a\nb" } } }, /`token.cookie.domain`/],
      [{ token: { ryw: signer(), cookie: { maxAge: -1 } } }, /`token.cookie.maxAge` must be a non-negative integer \(seconds\), got -1/],
      [{ token: { ryw: signer(), cookie: { maxAge: 1.5 } } }, /`token.cookie.maxAge`/],
    ];
    for (const [options, message] of bad) rejects(() => rywExpress(options as RywHttpOptions<never>), "INVALID_OPTION", message);
    rejects(() => rywHono({ token: { ryw: noKeys } }), "INVALID_OPTION", /tokenKeys/);
    rejects(() => rywNext()(undefined as never), "INVALID_OPTION", /`withRyw\(handler\)` must be a route handler function/);
    rejects(() => rywRequestHeaders(new Request("http://x/"), { name: "a b" }), "INVALID_OPTION", /`name` must be a header or cookie name/);
  });

  it("accepts the documented forms", () => {
    expect(() => rywExpress()).not.toThrow();
    expect(() => rywExpress({ token: { ryw: signer(), via: "header", name: "X-Commit-Token" } })).not.toThrow();
    expect(() => rywExpress({ token: { ryw: signer(), cookie: { sameSite: "none", secure: true, domain: "example.com", path: "/app", maxAge: 0 } } })).not.toThrow();
  });
});

describe("reading the token from a request", () => {
  const cookie = { via: "cookie" as const, name: "ryw-token" };
  it("finds the cookie among others, with spaces and quotes", () => {
    expect(readToken({ cookie: "a=1;ryw-token=v1.x.y; b=2" }, cookie)).toMatchObject({ value: "v1.x.y", rejected: undefined, cookie: true });
    expect(readToken({ cookie: ' a=1 ;  ryw-token = "v1.x.y" ' }, cookie).value).toBe("v1.x.y");
    expect(readToken({ cookie: "ryw-tokens=v1.x.y; xryw-token=1" }, cookie)).toMatchObject({ value: undefined, cookie: false });
    expect(readToken({ cookie: ["a=1", "ryw-token=v1.x.y"] }, cookie).value).toBe("v1.x.y");
    expect(readToken({ cookie: undefined }, cookie).value).toBeUndefined();
    expect(readToken({ cookie: null }, cookie).value).toBeUndefined();
    expect(readToken({ cookie: "ryw-token=" }, cookie)).toMatchObject({ value: undefined, rejected: undefined, cookie: true });
  });

  it("refuses conflicting and oversize values with an INVALID_TOKEN error that names the cookie or header", () => {
    const twice = readToken({ cookie: "ryw-token=v1.a.b; ryw-token=v1.c.d" }, cookie);
    expect(twice.value).toBeUndefined();
    expect(twice.rejected?.code).toBe("INVALID_TOKEN");
    expect(twice.rejected?.message).toMatch(/Cookie `ryw-token` was sent 2 times with different values; it is ignored and the reads of this request go to the primary/);
    expect(readToken({ cookie: "ryw-token=v1.a.b; ryw-token=v1.a.b" }, cookie)).toMatchObject({ value: "v1.a.b", rejected: undefined });
    const big = readToken({ cookie: `ryw-token=${"A".repeat(MAX_TOKEN_CHARS + 1)}` }, cookie);
    expect(big.rejected?.message).toMatch(/Cookie `ryw-token` is 1025 characters long/);
    const header = { via: "header" as const, name: "ryw-token" };
    expect(readToken({ header: ["v1.a.b", "v1.c.d"] }, header).rejected?.message).toMatch(/Header `ryw-token` was sent 2 times/);
    expect(readToken({ header: " v1.a.b " }, header).value).toBe("v1.a.b");
    expect(readToken({ header: [42 as unknown as string] }, header).value).toBeUndefined();
  });

  it("runs a refused token as a failed verification: the router sees invalid-token, never the value", async () => {
    const http = new HttpRyw<unknown>({ token: { ryw: signer() } }, "test");
    const seen = await http.enter({}, { cookie: "ryw-token=v1.a.b; ryw-token=v1.c.d" }, async () => currentContext());
    expect(seen?.token).toBe("rejected");
    expect(seen?.scope).toBe("ryw:token");
    expect(seen?.known.decoded).toMatchObject({ error: { code: "INVALID_TOKEN" } });
  });

  it("gives requests without a scope the shared token scope only under the token strategy", () => {
    const lsn = new HttpRyw<unknown>({ token: { ryw: signer(undefined, "lsn") } }, "test");
    expect(lsn.enter({}, {}, () => currentContext()?.scope)).toBeUndefined();
    const token = new HttpRyw<unknown>({ scope: () => "alice", token: { ryw: signer() } }, "test");
    expect(token.enter({}, {}, () => currentContext()?.scope)).toBe("alice");
  });

  it("awaits an async scope function, and rejects what it resolves to if it is not a string", async () => {
    const http = new HttpRyw<string>({ scope: async (user) => (user === "bad" ? (null as unknown as string) : user) }, "rywTest");
    expect(await http.enter("bob", {}, () => currentContext()?.scope)).toBe("bob");
    await expect(http.enter("bad", {}, () => 1)).rejects.toThrow(/Option `scope` of rywTest must return a non-empty string or undefined, got null/);
    expect(() => new HttpRyw<string>({ scope: () => "" }, "rywTest").enter("x", {}, () => 1)).toThrow(/got an empty string/);
  });
});

describe("response headers", () => {
  const run = (options: TokenTransportOptions, wrote: boolean, security: { https: boolean; forwardedProto?: string }, incoming = {}) => {
    const http = new HttpRyw<unknown>({ scope: () => "s", token: options }, "test");
    // A synchronous scope function: enter() answers synchronously.
    return http.enter({}, incoming, (exchange) => {
      if (wrote) currentContext()!.known.lastWriteAt = Date.now();
      return exchange.responseHeaders(security);
    }) as ReadonlyArray<readonly [string, string]>;
  };

  it("builds the Set-Cookie string from the options, Secure per request", () => {
    const token = "v1.AAAAAAAAAAEAAAAA.BBBBBBBBBBBBBBBBBBBBBA";
    expect(run({ ryw: signer() }, true, { https: false })).toEqual([["Set-Cookie", `ryw-token=${token}; Path=/; HttpOnly; SameSite=Lax`]]);
    expect(run({ ryw: signer() }, true, { https: true })).toEqual([["Set-Cookie", `ryw-token=${token}; Path=/; HttpOnly; SameSite=Lax; Secure`]]);
    expect(run({ ryw: signer() }, true, { https: false, forwardedProto: "https" })[0]![1]).not.toMatch(/Secure/);
    expect(run({ ryw: signer(), cookie: { trustProxy: true } }, true, { https: false, forwardedProto: "https, http" })[0]![1]).toMatch(/; Secure$/);
    expect(run({ ryw: signer(), cookie: { trustProxy: true } }, true, { https: false, forwardedProto: "http, https" })[0]![1]).not.toMatch(/Secure/);
    expect(run({ ryw: signer(), name: "t", cookie: { httpOnly: false, sameSite: "strict", path: "/app", domain: "example.com", maxAge: 300, secure: false } }, true, { https: true })).toEqual([
      ["Set-Cookie", `t=${token}; Path=/app; Domain=example.com; Max-Age=300; SameSite=Strict`],
    ]);
    expect(run({ ryw: signer(), cookie: { sameSite: "none", secure: true } }, true, { https: false })[0]![1]).toMatch(/; SameSite=None; Secure$/);
    expect(run({ ryw: signer(), via: "header", name: "X-Ryw" }, true, { https: false })).toEqual([["X-Ryw", token]]);
  });

  it("adds nothing when the request did not write, and clears a cookie the router refused", () => {
    expect(run({ ryw: signer() }, false, { https: false }, { cookie: "ryw-token=v1.a.b" })).toEqual([]);
    expect(run({ ryw: signer() }, false, { https: false }, { cookie: "ryw-token=v1.a.b; ryw-token=v1.c.d" })).toEqual([
      ["Set-Cookie", "ryw-token=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"],
    ]);
    expect(run({ ryw: signer(), via: "header" }, false, { https: false }, { header: ["v1.a.b", "v1.c.d"] })).toEqual([]);
  });
});
