import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");
const PACKAGES = ["core", "prisma", "drizzle"] as const;

/** Which @ryw sources the app servers load: a tsconfig whose `paths` tsx applies, and a cleanup. */
export interface Sources {
  tsconfig: string;
  /** What was loaded, for the report: "working tree" or the revision. */
  label: string;
  remove(): void;
}

/**
 * The working tree by default (test/tsconfig.json maps @ryw/* to packages/*\/src). With a git
 * revision, that revision's packages/*\/src are exported to a temp directory (git archive: the
 * repository is only read) and mapped instead, so the checker can run the same faults against
 * the code before and after a change. The copies find their dependencies through symlinks to
 * this checkout's node_modules. An absolute path instead of a revision maps that directory's
 * packages/*\/src the same way.
 */
export function sources(rev?: string): Sources {
  if (!rev) return { tsconfig: join(ROOT, "test/tsconfig.json"), label: "working tree", remove: () => {} };
  const dir = mkdtempSync(join(tmpdir(), "ryw-chaos-src-"));
  try {
    // An absolute path instead of a revision: another copy of the sources (e.g. with a check
    // disabled on purpose, to see the checker catch what it guards against).
    if (isAbsolute(rev)) {
      for (const p of PACKAGES) cpSync(join(rev, "packages", p, "src"), join(dir, "packages", p, "src"), { recursive: true });
    } else {
      const tar = execFileSync("git", ["-C", ROOT, "archive", "--format=tar", rev, ...PACKAGES.map((p) => `packages/${p}/src`)]);
      execFileSync("tar", ["-x", "-C", dir], { input: tar });
    }
    symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
    for (const p of PACKAGES) symlinkSync(join(ROOT, "packages", p, "node_modules"), join(dir, "packages", p, "node_modules"));
    const paths = Object.fromEntries(PACKAGES.map((p) => [`@ryw/${p}`, [join(dir, "packages", p, "src/index.ts")]]));
    const tsconfig = join(dir, "tsconfig.json");
    writeFileSync(tsconfig, JSON.stringify({ compilerOptions: { paths } }, null, 2));
    const sha = isAbsolute(rev) ? "a copy" : execFileSync("git", ["-C", ROOT, "rev-parse", "--short", rev], { encoding: "utf8" }).trim();
    return { tsconfig, label: `${rev} (${sha})`, remove: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
