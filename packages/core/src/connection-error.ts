const CONNECTION_CODES = new Set([
  "ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENOTFOUND",
  "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT",
  // Prisma: can't reach server, server closed the connection, timed out.
  "P1001", "P1002", "P1017",
]);

// What Prisma driver adapters (e.g. @prisma/adapter-pg) call a lost server, in `cause.kind`.
const GONE_KINDS = new Set(["DatabaseNotReachable", "ConnectionClosed", "SocketTimeout", "TlsConnectionError"]);

/**
 * True for errors that say "this server is gone" rather than "this query is wrong": worth one
 * retry on the primary. Also true for SQLSTATE class 08 (connection), 57P01..57P03 (shutdown,
 * not accepting connections) and 40001 with a recovery conflict, which only replicas raise.
 * Walks `cause` chains and Prisma's `meta.driverAdapterError`, since ORMs wrap driver errors;
 * knows the `kind` and `originalCode` that Prisma driver adapters put there.
 */
export function isConnectionError(error: unknown): boolean {
  // Errors to look at: the error, its causes, and the driver adapter error that Prisma keeps in
  // `meta.driverAdapterError` when it re-raises a failure for every call merged into one statement.
  const queue: unknown[] = [error];
  for (let seen = 0; queue.length > 0 && seen < 12; seen++) {
    const e = queue.shift();
    if (!e || typeof e !== "object") continue;
    queue.push((e as { cause?: unknown }).cause, (e as { meta?: { driverAdapterError?: unknown } }).meta?.driverAdapterError);
    const { code, errno, originalCode, kind, message } = e as { code?: unknown; errno?: unknown; originalCode?: unknown; kind?: unknown; message?: unknown };
    if (typeof kind === "string" && GONE_KINDS.has(kind)) return true;
    // Driver adapters keep the server's SQLSTATE as `originalCode`.
    for (const c of [code, errno, originalCode]) {
      if (typeof c !== "string") continue;
      if (CONNECTION_CODES.has(c) || c.startsWith("08") || c === "57P01" || c === "57P02" || c === "57P03") return true;
    }
    if (typeof message === "string" && /conflict with recovery|ECONNREFUSED|ECONNRESET|Connection terminated|server closed the connection/i.test(message)) return true;
  }
  return false;
}
