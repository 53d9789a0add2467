/**
 * The messages between the chaos coordinator and its app-server processes (over the IPC channel
 * of child_process.fork). Every request carries an id; the app server answers each one once.
 */

export type Orm = "prisma" | "drizzle";

/** What an app server needs to build its ryw client: the URLs it must use (proxies included). */
export interface AppServerConfig {
  name: string;
  orm: Orm;
  primaryUrl: string;
  replicas: Array<{ name: string; url: string }>;
  /** One Redis (through a fault proxy)... */
  redisUrl?: string;
  /** ...or the nodes of a Redis Cluster, reached directly. */
  redisNodes?: Array<{ host: string; port: number }>;
  /** Key prefix in Redis, shared by the app servers of one run. */
  prefix: string;
  /** Extra router options, e.g. `{ tracker: { intervalMs: 50 } }`; ryw's defaults otherwise. */
  ryw: Record<string, unknown>;
}

export type Request =
  | { id: number; op: "write"; user: number; title: string }
  | { id: number; op: "read"; user: number; postId: number; title: string }
  | { id: number; op: "stats" };

/** Where ryw sent a read, and why: from the `route` event of that read. */
export interface Route {
  target: string;
  reason: string;
  required: string | undefined;
}

/** ryw's events for the scope while an operation ran, with the app server's clock. */
export interface ScopeEvent {
  at: number;
  type: string;
  detail: string;
}

export type Reply =
  | { id: number; ok: true; op: "write"; postId: number; events: ScopeEvent[] }
  | { id: number; ok: true; op: "read"; found: boolean; route: Route | undefined; events: ScopeEvent[] }
  | { id: number; ok: true; op: "stats"; stats: unknown; unhandled: string[] }
  | { id: number; ok: false; error: string; events: ScopeEvent[] };

/** The first message of an app server: ready, and which @ryw build it loaded. */
export interface Ready {
  ready: true;
  core: string;
}
