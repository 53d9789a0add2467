import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { MemoryStore, runWithScope } from "@ryw/core";
import type { PositionStore } from "@ryw/core";
import type { ClusterInfo } from "../../test/harness/index.js";
import { renderPage } from "./page.js";
import { naiveRouter, rywRouter } from "./routers.js";
import type { Mode, WebRouter } from "./routers.js";

export interface GhostWebOptions {
  cluster: ClusterInfo;
  /** Where @ryw remembers each session's last write position; closed with the app. @default new MemoryStore() */
  store?: PositionStore;
  /** @default 0 (a free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** Shown next to a node's name on the page, e.g. `{ r0: "replays 500 ms behind" }`. */
  notes?: Record<string, string>;
}

export interface GhostWeb {
  /** `http://host:port`, without a path. */
  url: string;
  routers: Record<Mode, WebRouter>;
  close(): Promise<void>;
}

const COOKIE = "ghost_sid";
const SESSION_ID = /^[0-9a-f-]{36}$/;
const MAX_BODY = 16 * 1024;

/**
 * The ghost-post web app on node:http. `GET /?router=naive|ryw` shows the session's posts;
 * `POST /posts?router=...` saves one and answers 303 to `GET /?router=...&posted=<id>`, so the
 * browser shows the feed again at once, the moment a lagging replica gets it wrong. Both routers
 * run side by side on the same cluster; the query parameter picks one per request (default @ryw).
 */
export async function startGhostWeb(options: GhostWebOptions): Promise<GhostWeb> {
  const store: PositionStore = options.store ?? new MemoryStore();
  const routers: Record<Mode, WebRouter> = { naive: naiveRouter(options.cluster), ryw: await rywRouter(options.cluster, store) };
  // The session's user row, created once per session id (a browser without our cookie gets one).
  const users = new Map<string, Promise<number>>();
  const userOf = (sid: string, router: WebRouter) => {
    let user = users.get(sid);
    if (!user) {
      user = router.createUser(`${sid}@ghost-web.example`);
      user.catch(() => users.delete(sid));
      users.set(sid, user);
    }
    return user;
  };

  async function handle(req: IncomingMessage, res: ServerResponse, sid: string): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const mode: Mode = url.searchParams.get("router") === "naive" ? "naive" : "ryw";
    const router = routers[mode];
    if (req.method === "POST" && url.pathname === "/posts") {
      const title = new URLSearchParams(await readBody(req)).get("title")?.trim().slice(0, 200);
      if (!title) return redirect(res, `/?router=${mode}`);
      const id = await router.addPost(await userOf(sid, router), title);
      return redirect(res, `/?router=${mode}&posted=${id}`);
    }
    if (req.method === "GET" && url.pathname === "/") {
      const { posts, served } = await router.feed(await userOf(sid, router), sid);
      const posted = Number.parseInt(url.searchParams.get("posted") ?? "", 10);
      const html = renderPage({ mode, posts, served, notes: options.notes ?? {}, posted: Number.isNaN(posted) ? undefined : posted, reads: router.stats?.().reads });
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      return void res.end(html);
    }
    // The browser's favicon request and anything else: no database work.
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
  }

  const server = createServer((req, res) => {
    const cookie = parseCookies(req.headers.cookie)[COOKIE];
    const sid = cookie && SESSION_ID.test(cookie) ? cookie : randomUUID();
    if (sid !== cookie) res.setHeader("set-cookie", `${COOKIE}=${sid}; Path=/; HttpOnly; SameSite=Lax`);
    // What a middleware does: the whole request runs in the session's scope, so every write in it
    // is remembered for the session and every read waits for the session's writes.
    runWithScope(sid, () => handle(req, res, sid)).catch((error: unknown) => {
      console.error(error);
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end("internal error\n");
    });
  });
  const closeRouters = () => Promise.all(Object.values(routers).map((r) => r.close()));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
    });
  } catch (error) {
    // The port is taken, say: the caller keeps the store and may try another port.
    await closeRouters();
    throw error;
  }
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address}:${port}`,
    routers,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeRouters();
      await store.close?.();
    },
  };
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { location }).end();
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
      if (body.length > MAX_BODY) req.destroy(new Error("request body too large"));
    });
    req.on("end", () => resolve(body));
    req.on("error", reject);
  });
}

function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = {};
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    try {
      cookies[part.slice(0, eq).trim()] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      // a malformed cookie of another site on this host: not ours
    }
  }
  return cookies;
}
