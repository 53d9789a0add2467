import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { rywSession } from "@ryw/drizzle";
import type { RywSessionOptions } from "@ryw/drizzle";
import { drizzle } from "./orm.ts";
import { schema } from "./schema.ts";

export const cluster = inject("cluster");

/** A value no other test (or earlier run against the same cluster) uses. */
export function unique(label: string): string {
  return `${label}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

/** A drizzle db over a fresh rywSession on the test cluster. Close it with `db.$client.end()`. */
export function openDb(options: Partial<RywSessionOptions> = {}) {
  const session = rywSession({
    primary: cluster.primary.url,
    replicas: cluster.replicas.map((r) => ({ connection: r.url, name: r.name })),
    connectionOptions: { max: 4, onnotice: () => {} },
    ...options,
  });
  return drizzle(session, { schema });
}

export type Db = ReturnType<typeof openDb>;
