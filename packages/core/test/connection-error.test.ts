import { describe, expect, it } from "vitest";
import { isConnectionError } from "../src/index.js";

describe("isConnectionError", () => {
  it.each([
    ["a socket error", Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })],
    ["postgres.js losing its connection", Object.assign(new Error("x"), { code: "CONNECTION_CLOSED" })],
    ["SQLSTATE admin_shutdown", Object.assign(new Error("terminating connection"), { code: "57P01" })],
    ["a Prisma error wrapping an adapter's lost server", new Error("Invalid `prisma.post.findMany()`", { cause: { kind: "ConnectionClosed" } })],
    ["an adapter error keeping the server's SQLSTATE", new Error("Database error", { cause: { kind: "postgres", originalCode: "57P01" } })],
  ])("is true for %s", (_, error) => {
    expect(isConnectionError(error)).toBe(true);
  });

  it.each([
    ["a syntax error", Object.assign(new Error("syntax error"), { code: "42601" })],
    ["a unique violation kept by an adapter", new Error("Database error", { cause: { kind: "postgres", originalCode: "23505" } })],
    ["a plain value", "ECONNRESET-ish string"],
  ])("is false for %s", (_, error) => {
    expect(isConnectionError(error)).toBe(false);
  });
});
