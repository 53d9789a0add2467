import { desc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { withReplicas } from "drizzle-orm/pg-core";
import postgres from "postgres";
import { rywSession } from "@ryw/drizzle";
import { formatLsn } from "@ryw/core";
import type { PositionStore, RouteDecision, RywStats } from "@ryw/core";
import { posts, schema, users } from "../../test/drizzle/schema.ts";
import type { ClusterInfo } from "../../test/harness/index.js";

export type Mode = "naive" | "ryw";

/** What the page says about the node that answered a feed read. */
export interface Served {
  node: string;
  why: string;
}

export interface FeedPost {
  id: number;
  title: string;
}

/**
 * The web app's queries, on one way of routing them. The scope (the session id) is set by the
 * request handler with `runWithScope`, as a middleware would; the router itself never sees it.
 */
export interface WebRouter {
  mode: Mode;
  createUser(email: string): Promise<number>;
  addPost(userId: number, title: string): Promise<number>;
  /** One SELECT, whatever the router: a page load is exactly one feed read. */
  feed(userId: number, scope: string): Promise<{ posts: FeedPost[]; served: Served }>;
  stats?(): RywStats;
  close(): Promise<void>;
}

const FEED_SIZE = 20;
const quiet = { onnotice: () => {} };

type Db = PostgresJsDatabase<typeof schema>;

const insertUser = async (db: Pick<Db, "insert">, email: string) => (await db.insert(users).values({ email }).returning({ id: users.id }))[0]!.id;
const insertPost = async (db: Pick<Db, "insert">, authorId: number, title: string) =>
  (await db.insert(posts).values({ authorId, title }).returning({ id: posts.id }))[0]!.id;
const feedQuery = (db: Pick<Db, "select">, authorId: number) =>
  db.select({ id: posts.id, title: posts.title }).from(posts).where(eq(posts.authorId, authorId)).orderBy(desc(posts.id)).limit(FEED_SIZE);

/**
 * drizzle's own `withReplicas` with a round-robin pick: what an app without read-your-writes
 * does. Writes go to the primary, every read to the next replica, however far behind it is.
 */
export function naiveRouter(cluster: ClusterInfo): WebRouter {
  const clients = [cluster.primary, ...cluster.replicas].map((node) => postgres(node.url, quiet));
  const [primary, first, ...more] = clients.map((client) => drizzle(client, { schema }));
  if (!primary || !first) throw new Error("[ghost-web] naive routing needs a cluster with at least one replica");
  let next = 0;
  let picked = 0;
  const db = withReplicas(primary, [first, ...more], (all) => {
    picked = next++ % all.length;
    return all[picked]!;
  });
  return {
    mode: "naive",
    createUser: (email) => insertUser(db, email),
    addPost: (userId, title) => insertPost(db, userId, title),
    async feed(userId) {
      // `select()` picks the replica synchronously, so `picked` is this read's replica.
      const query = feedQuery(db, userId);
      const node = cluster.replicas[picked]!.name;
      return { posts: await query, served: { node, why: `round-robin: the next replica in turn, however far behind it is` } };
    },
    close: async () => void (await Promise.all(clients.map((c) => c.end({ timeout: 1 })))),
  };
}

/** `drizzle(rywSession(...))` with the default `lsn` strategy, as in @ryw/drizzle's README. */
export async function rywRouter(cluster: ClusterInfo, store: PositionStore): Promise<WebRouter> {
  const session = rywSession({
    primary: cluster.primary.url,
    replicas: cluster.replicas.map((r) => ({ connection: r.url, name: r.name })),
    connectionOptions: quiet,
    store,
  });
  const db = drizzle(session, { schema });
  // The last route decision per scope, for the page's "read from" line. A browser sends one
  // request at a time, so the decision of a session's read is the last one made for it.
  const decisions = new Map<string, RouteDecision>();
  const unsubscribe = session.ryw.subscribe((event) => {
    if (event.type === "route" && event.decision.scope !== undefined) decisions.set(event.decision.scope, event.decision);
  });
  await session.ready();
  return {
    mode: "ryw",
    createUser: (email) => insertUser(db, email),
    addPost: (userId, title) => insertPost(db, userId, title),
    async feed(userId, scope) {
      decisions.delete(scope);
      const rows = await feedQuery(db, userId);
      const decision = decisions.get(scope);
      decisions.delete(scope);
      return { posts: rows, served: decision ? explain(decision) : { node: "?", why: "no route decision seen" } };
    },
    stats: () => session.stats(),
    async close() {
      unsubscribe();
      await session.end({ timeout: 1 });
    },
  };
}

function explain(decision: RouteDecision): Served {
  const node = decision.target.kind === "primary" ? "primary" : decision.target.name;
  const needs = decision.required === undefined ? "" : formatLsn(decision.required);
  switch (decision.reason) {
    case "caught-up":
      return { node, why: `caught-up: ${node} has replayed ${needs}, the position of this session's last write` };
    case "lagging":
      return { node, why: `lagging: no replica has replayed ${needs} yet, so the primary` };
    case "no-token":
      return { node, why: "no-token: no write remembered for this session, so any replica" };
    default:
      return { node, why: decision.reason };
  }
}
