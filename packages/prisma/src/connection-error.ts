import { isConnectionError } from "@ryw/core";

// What @prisma/adapter-pg turns socket errors into (DriverAdapterError's `cause.kind`).
const GONE_KINDS = new Set(["DatabaseNotReachable", "ConnectionClosed", "SocketTimeout", "TlsConnectionError"]);

/**
 * Core's test, plus the shapes driver adapters wrap errors in: a `cause` with a `kind` that
 * means "server gone", or the server's SQLSTATE kept as `originalCode` (e.g. 57P01 when a
 * replica shuts down under a query).
 */
export function isReplicaGone(error: unknown): boolean {
  if (isConnectionError(error)) return true;
  const cause = (error as { cause?: unknown } | null)?.cause;
  if (typeof cause !== "object" || cause === null) return false;
  const { kind, originalCode } = cause as { kind?: unknown; originalCode?: unknown };
  if (typeof kind === "string" && GONE_KINDS.has(kind)) return true;
  return typeof originalCode === "string" && (originalCode.startsWith("08") || /^57P0[123]$/.test(originalCode));
}
