import { describe, expect, it } from "vitest";
import { isConnectionError } from "../src/index.js";

describe("isConnectionError", () => {
  it.each([
    ["a socket error", Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })],
    ["postgres.js losing its connection", Object.assign(new Error("x"), { code: "CONNECTION_CLOSED" })],
    ["SQLSTATE admin_shutdown", Object.assign(new Error("terminating connection"), { code: "57P01" })],
    ["a Prisma error wrapping an adapter's lost server", new Error("Invalid `prisma.post.findMany()`", { cause: { kind: "ConnectionClosed" } })],
    ["an adapter error keeping the server's SQLSTATE", new Error("Database error", { cause: { kind: "postgres", originalCode: "57P01" } })],
    // What the other callers of a merged findUnique get when the shared statement's replica dies.
    ["Prisma's P2039 carrying the adapter error in meta", Object.assign(new Error("Invalid `prisma.user.findUnique()`"), { code: "P2039", meta: { driverAdapterError: new Error("x", { cause: { kind: "postgres", originalCode: "57P01" } }) } })],
  ])("is true for %s", (_, error) => {
    expect(isConnectionError(error)).toBe(true);
  });

  it.each([
    ["a syntax error", Object.assign(new Error("syntax error"), { code: "42601" })],
    ["a unique violation kept by an adapter", new Error("Database error", { cause: { kind: "postgres", originalCode: "23505" } })],
    ["a plain value", "ECONNRESET-ish string"],
    ["Prisma's error for a bad query", Object.assign(new Error("Invalid"), { code: "P2039", meta: { driverAdapterError: new Error("x", { cause: { kind: "postgres", originalCode: "42703" } }) } })],
    ["an error whose cause points back at it", (() => { const e: { cause?: unknown } = new Error("loop"); e.cause = e; return e; })()],
  ])("is false for %s", (_, error) => {
    expect(isConnectionError(error)).toBe(false);
  });
});
