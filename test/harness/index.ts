export * from "./cluster.js";
export { findPgBin } from "./pg-bin.js";
