import type { Ryw } from "@ryw/core";
import type { ClusterInfo } from "../../test/harness/index.js";

/**
 * One way of routing the workload's queries. Each router gets the same cluster and users, does
 * its writes on the primary, and answers reads from wherever its policy says.
 */
export interface BenchRouter {
  /** Writes a post for `userId` (acting as that user) and resolves once it is acknowledged. */
  write(userId: number, title: string): Promise<void>;
  /** Titles of the newest posts of `authorId`, read as user `asUser`. */
  read(asUser: number, authorId: number): Promise<string[]>;
  /** Reads served by replicas and by the primary, where the router can tell. */
  served?(): { replica: number; primary: number };
  /** The @ryw router behind it, for its stats (soak). */
  ryw?: Ryw;
  close(): Promise<void>;
}

export interface RouterSpec {
  /** Shown in tables, e.g. "ryw (drizzle)". */
  name: string;
  orm: "postgres.js" | "prisma" | "drizzle";
  /** Whether it promises read-your-writes; a stale read by such a router fails `--quick`. */
  promisesRyw: boolean;
  create(cluster: ClusterInfo): Promise<BenchRouter>;
}

/** The statements every router runs, as plain SQL for the postgres.js routers. */
export const READ_SQL = 'select title from "Post" where "authorId" = $1 order by id desc limit 10';
export const WRITE_SQL = 'insert into "Post" ("authorId", title) values ($1, $2)';
