/** An optional peer that the doctor needs is not installed; `fix` says how to get it. */
export class MissingPackageError extends Error {
  override readonly name = "MissingPackageError";
  readonly fix: string;
  /** The report line, without the error prefix and cause. */
  readonly summary: string;

  constructor(pkg: string, purpose: string, cause: unknown) {
    super(`[ryw] ryw doctor needs the \`${pkg}\` package ${purpose}, and it is not installed.`, { cause });
    this.summary = `not checked: needs the \`${pkg}\` package ${purpose}, which is not installed`;
    this.fix = `npm install ${pkg} (or run it without installing: npx -p @ryw/core -p ${pkg} ryw doctor)`;
  }
}
