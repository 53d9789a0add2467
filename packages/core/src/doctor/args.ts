import { parseArgs } from "node:util";
import type { DoctorOptions } from "./options.js";
import { splitUrls } from "./options.js";

export const USAGE = `Usage: ryw doctor [options]

Checks that a PostgreSQL primary, its read replicas and Redis are ready for read-your-writes
with @ryw. Reads the same environment variables as ryw(): DATABASE_URL, DATABASE_REPLICA_URLS
(comma-separated) and REDIS_URL.

Options:
  --primary <url>    the primary (default: $DATABASE_URL)
  --replicas <urls>  comma-separated replicas (default: $DATABASE_REPLICA_URLS)
  --redis <url>      the Redis that holds positions; "" for none (default: $REDIS_URL)
  --ttl <ms>         the ttlMs you give ryw() (default: 300000)
  --timeout <ms>     bound on each connection and on the probe (default: 5000)
  --json             print the report as JSON
  -h, --help         show this help

Exit code: 0 when no check failed (warnings allowed), 1 when one did, 2 on bad usage.
`;

export type ParsedArgs = { command: "help" } | { command: "doctor"; json: boolean; options: DoctorOptions };

/** Throws a plain Error with a readable message on unknown commands and flags. */
export function parseDoctorArgs(argv: string[]): ParsedArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      primary: { type: "string" },
      replicas: { type: "string" },
      redis: { type: "string" },
      ttl: { type: "string" },
      timeout: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return { command: "help" };
  if (positionals.length !== 1 || positionals[0] !== "doctor") {
    throw new Error(positionals.length === 0 ? "missing command: ryw doctor" : `unknown command: ${positionals.join(" ")}`);
  }
  const options: DoctorOptions = {};
  if (values.primary !== undefined) options.primary = values.primary;
  if (values.replicas !== undefined) options.replicas = splitUrls(values.replicas);
  if (values.redis !== undefined) options.redis = values.redis;
  if (values.ttl !== undefined) options.ttlMs = milliseconds("--ttl", values.ttl);
  if (values.timeout !== undefined) options.timeoutMs = milliseconds("--timeout", values.timeout);
  return { command: "doctor", json: values.json, options };
}

function milliseconds(flag: string, text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1) throw new Error(`${flag} must be a positive number of milliseconds, got ${JSON.stringify(text)}`);
  return value;
}
