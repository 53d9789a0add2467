import { invalidOption } from "../errors.js";
import { positiveInt } from "../validate.js";

export interface DoctorOptions {
  /** The primary's connection string. @default process.env.DATABASE_URL */
  primary?: string;
  /** The replicas' connection strings. @default process.env.DATABASE_REPLICA_URLS, split on commas */
  replicas?: string[];
  /** The Redis that holds positions; `""` checks without Redis. @default process.env.REDIS_URL */
  redis?: string;
  /** Bound on each connection attempt and on the replication probe. @default 5000 */
  timeoutMs?: number;
  /** The `ttlMs` given to ryw(), compared with the observed lag. @default 300000 */
  ttlMs?: number;
  /** Where the defaults come from. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface DoctorNode {
  name: string;
  url: string;
  /** Where the URL came from, so that a fix names the thing to change. */
  source: string;
}

export interface DoctorConfig {
  primary: DoctorNode;
  replicas: DoctorNode[];
  redis: DoctorNode | undefined;
  timeoutMs: number;
  ttlMs: number;
}

const PG_URL = /^postgres(ql)?:\/\//;
const REDIS_URL = /^rediss?:\/\//;

/** The same inputs as ryw(): DATABASE_URL, DATABASE_REPLICA_URLS, REDIS_URL, each overridable. */
export function resolveDoctorOptions(options: DoctorOptions = {}): DoctorConfig {
  const env = options.env ?? process.env;
  const primarySource = options.primary !== undefined ? "--primary" : "DATABASE_URL";
  const primary = options.primary ?? env.DATABASE_URL;
  if (typeof primary !== "string" || !PG_URL.test(primary)) {
    throw invalidOption("primary", "a postgres:// or postgresql:// connection string (set DATABASE_URL or pass --primary)", primary);
  }
  const replicaSource = options.replicas !== undefined ? "--replicas" : "DATABASE_REPLICA_URLS";
  const replicaUrls = options.replicas ?? splitUrls(env.DATABASE_REPLICA_URLS);
  const replicas = replicaUrls.map((url, index) => {
    if (typeof url !== "string" || !PG_URL.test(url)) throw invalidOption(`replicas[${index}]`, "a postgres:// or postgresql:// connection string", url);
    return { name: `replica-${index}`, url, source: replicaSource };
  });
  const redisSource = options.redis !== undefined ? "--redis" : "REDIS_URL";
  const redisUrl = options.redis ?? env.REDIS_URL ?? "";
  if (redisUrl !== "" && !REDIS_URL.test(redisUrl)) throw invalidOption("redis", "a redis:// or rediss:// URL (from REDIS_URL or --redis)", redisUrl);
  return {
    primary: { name: "primary", url: primary, source: primarySource },
    replicas,
    redis: redisUrl === "" ? undefined : { name: "redis", url: redisUrl, source: redisSource },
    timeoutMs: positiveInt("timeoutMs", options.timeoutMs, 5000),
    ttlMs: positiveInt("ttlMs", options.ttlMs, 300_000),
  };
}

export function splitUrls(value: string | undefined): string[] {
  return (value ?? "").split(",").map((url) => url.trim()).filter((url) => url !== "");
}

/** The URL with its password masked, for printing. */
export function redact(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*):[^@]*@/i, "$1:***@");
}
