import type { Check } from "./types.js";
import type { Inspection } from "./inspect.js";
import { MissingPackageError } from "./missing-package.js";
import { errorText, ms } from "./format-values.js";

/** Reachability and latency of one PostgreSQL server. */
export function connectCheck(inspection: Inspection, timeoutMs: number): Check {
  if (inspection.ok) {
    const f = inspection.facts;
    return {
      id: "connect",
      target: f.node.name,
      status: "pass",
      summary: `PostgreSQL ${f.version.split(" ")[0]} · connect ${ms(f.connectMs)} · round trip ${ms(f.roundTripMs)}`,
      data: { version: f.version, connectMs: round(f.connectMs), roundTripMs: round(f.roundTripMs) },
    };
  }
  const { node, error } = inspection;
  return {
    id: "connect",
    target: node.name,
    status: "fail",
    summary: error instanceof MissingPackageError ? error.summary : `cannot connect: ${errorText(error)}`,
    fix: connectFix(error, node.source, timeoutMs),
    data: { error: errorText(error), code: codeOf(error) ?? null },
  };
}

export function connectFix(error: unknown, source: string, timeoutMs: number): string {
  if (error instanceof MissingPackageError) return error.fix;
  const code = codeOf(error);
  const text = errorText(error);
  if (code === "ECONNREFUSED") return `Nothing listens at that address: start the server, or correct the host and port in ${source}.`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `The host name does not resolve: correct the host in ${source}.`;
  if (code === "CONNECT_TIMEOUT" || code === "ETIMEDOUT" || /timed out/.test(text)) {
    return `No answer within ${timeoutMs} ms: check the host, port, firewall or security group in ${source} (or raise --timeout).`;
  }
  if (code === "28P01" || code === "28000") return `Check the user and password in ${source}, and the server's pg_hba.conf.`;
  if (code === "3D000") return `Correct the database name in ${source}.`;
  if (code === "57P03") return "The server is starting up or not accepting connections: wait for it, and check hot_standby = on on replicas.";
  if (/NOAUTH|WRONGPASS/.test(text)) return `Put the right user and password in ${source} (redis://user:password@host:port).`;
  return `Check ${source} and that this machine can reach the server.`;
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

export function round(value: number): number {
  return Math.round(value * 100) / 100;
}
