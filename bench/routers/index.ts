import type { RouterSpec } from "./types.js";
import { postgresJsRouters } from "./postgres-js.js";
import { prismaRouters } from "./prisma.js";
import { drizzleRouters } from "./drizzle.js";

/** Every router the bench compares. Add one by appending a RouterSpec here. */
export const routers: RouterSpec[] = [...postgresJsRouters, ...prismaRouters, ...drizzleRouters];
