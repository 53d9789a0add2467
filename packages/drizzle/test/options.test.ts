import { describe, expect, test } from "vitest";
import { isRywError } from "@ryw/core";
import { rywSession } from "../src/session.js";
import type { RywSessionOptions } from "../src/options.js";

// Nothing here reaches a server: options are checked before any connection is made.
const url = "postgres://nobody@127.0.0.1:1/none";

describe("rywSession validates its options eagerly, naming the option", () => {
  test.each<[string, unknown]>([
    ["options", undefined],
    ["replicas", { primary: url }],
    ["replicas", { primary: url, replicas: url }],
    ["primary", { replicas: [] }],
    ["primary", { primary: 42, replicas: [] }],
    ["primary", { primary: "", replicas: [] }],
    ["primary", { primary: { unsafe() {} }, replicas: [] }],
    ["replicas[1]", { primary: url, replicas: [url, { connection: 7 }] }],
    ["readFunctions", { primary: url, replicas: [], readFunctions: "score" }],
    ["readFunctions", { primary: url, replicas: [], readFunctions: [""] }],
    ["classifierCacheSize", { primary: url, replicas: [], classifierCacheSize: 0 }],
    ["strategy", { primary: url, replicas: [], strategy: "fastest" }],
    ["maxWaitMs", { primary: url, replicas: [], maxWaitMs: -1 }],
  ])("`%s`", (option, options) => {
    let error: unknown;
    try {
      rywSession(options as RywSessionOptions);
    } catch (e) {
      error = e;
    }
    expect(isRywError(error, "INVALID_OPTION")).toBe(true);
    expect((error as Error).message).toMatch(/^\[ryw\] /);
    expect((error as Error).message).toContain(`\`${option}\``);
  });
});
