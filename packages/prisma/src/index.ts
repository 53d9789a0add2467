export { ryw } from "./ryw.js";
export type { RywHandle } from "./ryw.js";
export type { RywPrismaOptions, NodeInput, ReplicaInput } from "./options.js";
export { RoutingAdapterFactory } from "./adapter.js";
export { runWithScope, onPrimary, currentContext, RedisStore, MemoryStore, isRywError, RywError } from "@ryw/core";
export type { Strategy, Fallback, RywStats, RouteReason, RouteDecision, RywEvent } from "@ryw/core";
