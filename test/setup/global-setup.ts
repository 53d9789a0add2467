import type { TestProject } from "vitest/node";
import type { ClusterInfo } from "../harness/cluster.js";
import { applyMigrations, startCluster, stopCluster } from "../harness/cluster.js";

declare module "vitest" {
  export interface ProvidedContext {
    cluster: ClusterInfo;
  }
}

/** One primary, two streaming replicas and a private Redis for the whole run; always torn down. */
export default async function setup(project: TestProject) {
  const started = Date.now();
  const cluster = await startCluster({ replicas: 2, redis: true });
  try {
    await applyMigrations(cluster);
  } catch (error) {
    await stopCluster(cluster);
    throw error;
  }
  console.log(`[ryw harness] primary + ${cluster.replicas.length} replicas + redis ready in ${Date.now() - started} ms`);
  project.provide("cluster", cluster);
  return () => stopCluster(cluster);
}
