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

it("@ryw/core works the same from CJS and ESM", () => {
  const probe = (prefix: string) => `${prefix} console.log(m.formatLsn(m.parseLsn("FFFFFFFF/1") + 1n), m.isRywError(new m.RywError("CLOSED", "x"), "CLOSED"))`;
  const cwd = join(root, "core");
  const run = (type: string, code: string) => execFileSync(process.execPath, ["--input-type", type, "-e", code], { cwd, encoding: "utf8" }).trim();
  expect(run("commonjs", probe(`const m = require("@ryw/core");`))).toBe("FFFFFFFF/2 true");
  expect(run("module", probe(`const m = await import("@ryw/core");`))).toBe("FFFFFFFF/2 true");
});
