/** Stable codes of {@link RywError}. Match on `code`, never on the message. */
export type RywErrorCode =
  | "INVALID_OPTION"
  | "INVALID_LSN"
  | "INVALID_SCOPE"
  | "INVALID_TOKEN"
  | "STORE_UNAVAILABLE"
  | "STORE_TIMEOUT"
  | "REPLICA_LAGGING"
  | "REPLICA_RESTARTED"
  | "REPLICA_TIMEOUT"
  | "UNSUPPORTED_CLIENT"
  | "CLOSED";

/**
 * The one error class of @ryw. Detect it with {@link isRywError} rather than `instanceof`:
 * an app can end up with several copies of this package.
 */
export class RywError extends Error {
  override readonly name = "RywError";
  readonly code: RywErrorCode;

  constructor(code: RywErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[ryw] ${message}`, options);
    this.code = code;
  }
}

export function isRywError(error: unknown, code?: RywErrorCode): error is RywError {
  if (typeof error !== "object" || error === null) return false;
  const e = error as { name?: unknown; code?: unknown };
  return e.name === "RywError" && typeof e.code === "string" && (code === undefined || e.code === code);
}

/** Shorthand for the option errors thrown at construction, so every message names its option. */
export function invalidOption(option: string, expected: string, got: unknown): RywError {
  return new RywError("INVALID_OPTION", `Option \`${option}\` must be ${expected}, got ${describe(got)}.`);
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
  if (typeof value === "bigint") return `${value}n`;
  if (value === null || typeof value !== "object") return String(value);
  return Array.isArray(value) ? "an array" : "an object";
}
