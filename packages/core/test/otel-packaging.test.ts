import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// The built package, in fresh node processes (as test/packaging.test.ts does): what an app sees.
// @opentelemetry/api is an optional peer, so only `@ryw/core/otel` may load it.
const pkgDir = join(import.meta.dirname, "..");
const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { exports: Record<string, unknown> };
const OTEL = /^@opentelemetry\//;
const blockCjs = `const M = require("node:module"); const resolve = M._resolveFilename; M._resolveFilename = function (request, ...rest) { if (${OTEL}.test(request)) throw new Error("loaded " + request); return resolve.call(this, request, ...rest); };`;
const blockEsm = `import { register } from "node:module"; register("data:text/javascript," + encodeURIComponent(${JSON.stringify(`export async function resolve(specifier, context, next) { if (${OTEL}.test(specifier)) throw new Error("loaded " + specifier); return next(specifier, context); }`)}));`;
const run = (type: "commonjs" | "module", code: string) => execFileSync(process.execPath, ["--input-type", type, "-e", code], { cwd: pkgDir, encoding: "utf8", stdio: "pipe" }).trim();

const entries = Object.keys(pkg.exports).filter((key) => key !== "./otel" && !key.endsWith(".json")).map((key) => `@ryw/core${key.slice(1)}`);

describe("@ryw/core without OpenTelemetry", () => {
  it.each(entries)("%s loads without @opentelemetry/api", (specifier) => {
    expect(run("commonjs", `${blockCjs} require(${JSON.stringify(specifier)}); console.log("ok")`)).toBe("ok");
    expect(run("module", `${blockEsm} await import(${JSON.stringify(specifier)}); console.log("ok")`)).toBe("ok");
  });

  it("the blockers do block (so the test above could fail)", () => {
    expect(() => run("commonjs", `${blockCjs} require("@ryw/core/otel");`)).toThrow(/loaded @opentelemetry\/api/);
    expect(() => run("module", `${blockEsm} await import("@ryw/core/otel");`)).toThrow(/loaded @opentelemetry\/api/);
  });
});

it("@ryw/core/otel works the same from CJS and ESM", () => {
  // A router-shaped object, no SDK: instrument() subscribes, and its errors are core's RywErrors.
  const probe = (load: string) => `${load}
    let listeners = 0;
    const router = { subscribe: () => (listeners++, () => listeners--), stats: () => ({ replicas: [] }) };
    const uninstall = otel.instrument(router);
    const during = listeners;
    uninstall();
    let code;
    try { otel.instrument({}); } catch (e) { code = core.isRywError(e, "INVALID_OPTION") && e.code; }
    console.log(Object.keys(otel).filter((k) => k !== "default").join(","), during, listeners, code);`;
  const expected = "instrument 1 0 INVALID_OPTION";
  expect(run("commonjs", probe(`const otel = require("@ryw/core/otel"); const core = require("@ryw/core");`))).toBe(expected);
  expect(run("module", probe(`const otel = await import("@ryw/core/otel"); const core = await import("@ryw/core");`))).toBe(expected);
});
