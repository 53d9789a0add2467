import { describe, expect, it } from "vitest";
import { currentContext, getScope, onPrimary, runWithScope } from "../src/index.js";

/** Like a Prisma or Drizzle query: does nothing until someone calls `then`. */
function lazyQuery() {
  return {
    then<R>(resolve: (value: string | undefined) => R) {
      return Promise.resolve(getScope()).then(resolve);
    },
  };
}

describe("request context", () => {
  it("runs lazy queries inside the scope they were created in", async () => {
    expect(await runWithScope("alice", () => lazyQuery())).toBe("alice");
    expect(await runWithScope({ scope: "bob" }, () => onPrimary(() => lazyQuery()))).toBe("bob");
    expect(await onPrimary(() => ({ then: (r: (v: boolean | undefined) => void) => r(currentContext()?.primary) }))).toBe(true);
  });

  it("returns plain values as they are, for middleware-style callbacks", () => {
    expect(runWithScope("carol", () => 42)).toBe(42);
    expect(getScope()).toBeUndefined();
  });

  it("shares what a request learned with nested onPrimary blocks", async () => {
    await runWithScope("dave", async () => {
      await onPrimary(async () => {
        currentContext()!.known.position = 7n;
      });
      expect(currentContext()!.known.position).toBe(7n);
    });
  });

  it("rejects empty scopes", () => {
    expect(() => runWithScope("", () => 1)).toThrow(/\[ryw\] A scope must be a non-empty string/);
  });
});
