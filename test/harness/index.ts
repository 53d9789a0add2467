export * from "./cluster.js";
export { findPgBin } from "./pg-bin.js";
export { startProxy } from "./proxy.js";
export type { FaultProxy, ProxyOptions, ProxyStats } from "./proxy.js";
export * from "./redis-cluster.js";
export * from "./pgbouncer.js";
export * from "./failover.js";
