import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

/**
 * Finds PostgreSQL server binaries: `PG_BIN`, then `pg_config --bindir`, then the newest
 * /usr/lib/postgresql/<version>/bin. The cluster needs initdb, pg_ctl and pg_basebackup.
 */
export function findPgBin(): string {
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
  const found = candidates.find((dir) => ["initdb", "pg_ctl", "pg_basebackup", "postgres"].every((b) => existsSync(join(dir, b))));
  if (!found) {
    throw new Error(
      "[ryw harness] PostgreSQL server binaries not found (need initdb, pg_ctl, pg_basebackup, postgres). " +
        "Install them (Debian/Ubuntu: apt-get install -y postgresql) or set PG_BIN to their directory. " +
        `Looked in: ${candidates.join(", ") || "PG_BIN, pg_config, /usr/lib/postgresql/*/bin"}.`,
    );
  }
  return found;
}
