// Builds the package in the current directory twice with tsc: ESM (the package is "type": "module")
// and CJS, each with its own declarations. tsc alone keeps the toolchain small and the output readable.
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const run = (...args) => execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json", ...args], { stdio: "inherit" });

rmSync("dist", { recursive: true, force: true });
run();
run("--module", "CommonJS", "--moduleResolution", "Node10", "--outDir", "dist/cjs", "--verbatimModuleSyntax", "false");
// Files under dist/cjs are CommonJS although the package says "type": "module".
writeFileSync("dist/cjs/package.json", '{ "type": "commonjs" }\n');
