import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));
const coreHttp = fileURLToPath(new URL("./packages/core/src/http/", import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the sources, so one copy of core (and its request context) is shared by
    // every package. test/packaging.test.ts checks the built ESM and CJS output separately.
    // The subpaths come first: a plain "@ryw/core" entry would also catch "@ryw/core/express".
    alias: [
      { find: /^@ryw\/core\/(express|fastify|hono|next)$/, replacement: `${coreHttp}$1.ts` },
      { find: /^@ryw\/core\/otel$/, replacement: fileURLToPath(new URL("./packages/core/src/otel.ts", import.meta.url)) },
      { find: "@ryw/core", replacement: src("core") },
      { find: "@ryw/prisma", replacement: src("prisma") },
      { find: "@ryw/drizzle", replacement: src("drizzle") },
    ],
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
