import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the sources, so one copy of core (and its request context) is shared by
    // every package. test/packaging.test.ts checks the built ESM and CJS output separately.
    alias: { "@ryw/core": src("core"), "@ryw/prisma": src("prisma"), "@ryw/drizzle": src("drizzle") },
  },
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["test/setup/global-setup.ts"],
    // One cluster serves the whole run, and some tests pause, kill or restart its servers:
    // files run one after another so that they never see each other's faults.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default"],
  },
});
