// The drizzle-orm API the tests use, in one place.
export { drizzle } from "drizzle-orm/postgres-js";
export type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
export { relations, sql, eq, and, desc, count, inArray } from "drizzle-orm";
export { boolean, integer, pgTable, serial, text, timestamp } from "drizzle-orm/pg-core";
