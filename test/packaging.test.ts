import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "packages");
const packages = readdirSync(root).filter((name) => existsSync(join(root, name, "package.json")));

/** Every file named by an `exports` map, walking nested conditions. */
function exportedFiles(exports: unknown): string[] {
  if (typeof exports === "string") return [exports];
  if (exports && typeof exports === "object") return Object.values(exports).flatMap(exportedFiles);
  return [];
}

describe.each(packages)("built package %s", (dir) => {
  const pkgDir = join(root, dir);
  const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { name: string; exports: Record<string, unknown> };

  it("has every file its exports map names", () => {
    const files = exportedFiles(pkg.exports);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) expect(existsSync(join(pkgDir, file)), `${pkg.name}: ${file}`).toBe(true);
  });

  // A fresh node process, without the test runner's resolution: what a user's app would see.
  const load = (code: string, type: "commonjs" | "module") =>
    execFileSync(process.execPath, ["--input-type", type, "-e", code], { cwd: pkgDir, encoding: "utf8" }).trim();

  it("loads with require() (CJS) and import (ESM), with the same public names", () => {
    const names = (mod: string) => `console.log(JSON.stringify(Object.keys(${mod}).filter((k) => k !== "default").sort()))`;
    const cjs = JSON.parse(load(`const m = require(${JSON.stringify(pkg.name)}); ${names("m")}`, "commonjs")) as string[];
    const esm = JSON.parse(load(`const m = await import(${JSON.stringify(pkg.name)}); ${names("m")}`, "module")) as string[];
    expect(cjs.length).toBeGreaterThan(0);
    expect(esm).toEqual(cjs);
  });
});

// Subpath entries (`@ryw/core/express`...): each loads both ways, with the same names, while every
// web framework is made impossible to load, since they are optional peers that only the app brings.
const FRAMEWORKS = /^(express|fastify|hono|next|@hono\/node-server)(\/|$)/;
const blockFrameworksCjs = `const M = require("node:module"); const resolve = M._resolveFilename; M._resolveFilename = function (request, ...rest) { if (${FRAMEWORKS}.test(request)) throw new Error("loaded a framework: " + request); return resolve.call(this, request, ...rest); };`;
const blockFrameworksEsm = `import { register } from "node:module"; register("data:text/javascript," + encodeURIComponent(${JSON.stringify(`export async function resolve(specifier, context, next) { if (${FRAMEWORKS}.test(specifier)) throw new Error("loaded a framework: " + specifier); return next(specifier, context); }`)}));`;

describe.each(packages.flatMap((dir) => {
  const pkg = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8")) as { name: string; exports: Record<string, unknown> };
  return Object.keys(pkg.exports).filter((key) => key !== "." && !key.endsWith(".json")).map((key) => ({ dir, specifier: `${pkg.name}${key.slice(1)}` }));
}))("subpath $specifier", ({ dir, specifier }) => {
  const run = (type: string, code: string) => execFileSync(process.execPath, ["--input-type", type, "-e", code], { cwd: join(root, dir), encoding: "utf8" }).trim();
  const names = "console.log(JSON.stringify(Object.keys(m).filter((k) => k !== \"default\").sort()))";

  it("loads with require() and import, with the same names, without loading any framework", () => {
    const cjs = JSON.parse(run("commonjs", `${blockFrameworksCjs} const m = require(${JSON.stringify(specifier)}); ${names}`)) as string[];
    const esm = JSON.parse(run("module", `${blockFrameworksEsm} const m = await import(${JSON.stringify(specifier)}); ${names}`)) as string[];
    expect(cjs.length).toBeGreaterThan(0);
    expect(esm).toEqual(cjs);
  });
});

it("the framework blockers above do block (the subpath test could fail)", () => {
  const cwd = join(root, "core");
  const fails = (type: string, code: string) => expect(() => execFileSync(process.execPath, ["--input-type", type, "-e", code], { cwd, encoding: "utf8", stdio: "pipe" })).toThrow(/loaded a framework: express/);
  fails("commonjs", `${blockFrameworksCjs} require("express");`);
  fails("module", `${blockFrameworksEsm} await import("express");`);
});

it("@ryw/core shares one request context between its CJS and ESM builds", () => {
  // A middleware loaded one way and a router loaded the other must agree on the scope.
  const code = `import { createRequire } from "node:module"; const cjs = createRequire(process.cwd() + "/")("@ryw/core/express"); const core = createRequire(process.cwd() + "/")("@ryw/core"); const esm = await import("@ryw/core");
    const mw = cjs.rywExpress({ scope: () => "from-cjs" });
    mw({ headers: {} }, {}, () => console.log(esm.getScope(), core.runWithScope("both", () => esm.getScope())));`;
  const out = execFileSync(process.execPath, ["--input-type", "module", "-e", code], { cwd: join(root, "core"), encoding: "utf8" }).trim();
  expect(out).toBe("from-cjs both");
});

it("@ryw/core works the same from CJS and ESM", () => {
  const probe = (prefix: string) => `${prefix} console.log(m.formatLsn(m.parseLsn("FFFFFFFF/1") + 1n), m.isRywError(new m.RywError("CLOSED", "x"), "CLOSED"))`;
  const cwd = join(root, "core");
  const run = (type: string, code: string) => execFileSync(process.execPath, ["--input-type", type, "-e", code], { cwd, encoding: "utf8" }).trim();
  expect(run("commonjs", probe(`const m = require("@ryw/core");`))).toBe("FFFFFFFF/2 true");
  expect(run("module", probe(`const m = await import("@ryw/core");`))).toBe("FFFFFFFF/2 true");
});
