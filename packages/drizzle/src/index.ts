export { rywSession } from "./session.js";
export type { RywSession, RywSessionApi } from "./session.js";
export type { RywSessionOptions, ReplicaInit, Connection } from "./options.js";
export { readOnly, READ_ONLY_MARK } from "./read-only.js";
export { $primary } from "./scope.js";
export { classify } from "./classify.js";
export type { StatementKind, Verdict } from "./classify.js";
export { READ_FUNCTIONS, WRITE_FUNCTIONS } from "./functions.js";
// What a Drizzle app needs from core, so that one import does.
export { runWithScope, RedisStore, MemoryStore, isRywError, RywError, getScope } from "@ryw/core";
export type { Strategy, Fallback, RywStats, RywEvent, RouteDecision, PositionStore, ScopeInit, Settled } from "@ryw/core";
