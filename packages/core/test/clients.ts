import postgres from "postgres";
import type { ClusterInfo } from "../../../test/harness/index.js";
import type { RywOptions, Target } from "../src/index.js";
import { postgresJsRunner } from "../src/index.js";

/** postgres.js clients for every node of the test cluster, and the runners core needs. */
export function connect(cluster: ClusterInfo) {
  // fetch_types off: see withSql in the harness (an unhandled rejection of postgres.js 3.4.9 when
  // a connect is refused by a killed replica). These tests read no array types.
  const open = (url: string) => postgres(url, { max: 4, onnotice: () => {}, connect_timeout: 5, idle_timeout: 5, fetch_types: false });
  const primary = open(cluster.primary.url);
  const replicas = cluster.replicas.map((r) => open(r.url));
  const nameOfPort = new Map([[cluster.primary.port, "primary"], ...cluster.replicas.map((r) => [r.port, r.name] as const)]);
  return {
    primary,
    replicas,
    sqlFor: (target: Target) => (target.kind === "primary" ? primary : replicas[target.index]!),
    /** What `createRyw` needs to reach the cluster. */
    options: {
      primary: postgresJsRunner(primary),
      replicas: cluster.replicas.map((r, i) => ({ name: r.name, query: postgresJsRunner(replicas[i]!) })),
    } satisfies Pick<RywOptions, "primary" | "replicas">,
    /** Which node answered, as the server itself reports it. */
    serverName: (port: number) => nameOfPort.get(port) ?? `unknown:${port}`,
    end: () => Promise.all([primary, ...replicas].map((s) => s.end({ timeout: 1 }))),
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
