import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { serve } from "@hono/node-server";
import type { Ryw, Target } from "../../src/index.js";
import type { TokenTransportOptions } from "../../src/http/index.js";
import { rywExpress } from "../../src/http/express.js";
import { rywFastify } from "../../src/http/fastify.js";
import { rywHono } from "../../src/http/hono.js";
import type { connect } from "../clients.js";

export type Db = ReturnType<typeof connect>;

/** One app server: a ryw instance, the framework's middleware, and two routes that use them. */
export interface AppSpec {
  ryw: Ryw;
  db: Db;
  /** The scope from the request's headers, as an app would take it from its session. */
  scope?: (header: (name: string) => string | undefined) => string | undefined;
  token?: TokenTransportOptions;
  /** The framework's own "trust the proxy" setting (Hono has none: the middleware's `trustProxy`). */
  trustProxy?: boolean;
}

export interface RunningApp {
  url: string;
  close(): Promise<void>;
}

export interface Framework {
  name: string;
  start(spec: AppSpec): Promise<RunningApp>;
}

/** What the read route answers: who ran the query (the server says so) and the newest post it saw. */
export interface ReadResult {
  server: string;
  newest: number;
}

/** The write a handler makes: a post on the primary, then its position recorded, as the ORM packages do. */
export async function writePost(spec: AppSpec, authorId: number, title: string): Promise<number> {
  const [row] = await spec.db.primary`insert into "Post" ("authorId", title) values (${authorId}, ${title}) returning id`;
  await spec.ryw.afterWrite();
  return row!.id as number;
}

/** The read a handler makes, through the router. `inet_server_port()` is the server naming itself. */
export function readNewest(spec: AppSpec, authorId: number): Promise<ReadResult> {
  return spec.ryw.read(async (target: Target) => {
    const [row] = await spec.db.sqlFor(target)`select inet_server_port() as port, coalesce(max(id), 0)::int as newest from "Post" where "authorId" = ${authorId}`;
    return { server: spec.db.serverName(row!.port as number), newest: row!.newest as number };
  });
}

function errorBody(error: unknown) {
  const e = error as { code?: unknown; message?: unknown };
  return { code: e.code, message: String(e.message) };
}

function scopeOf(spec: AppSpec, header: (name: string) => string | undefined) {
  return spec.scope?.(header);
}

/** Closes a node:http server and the keep-alive connections fetch left open, so nothing lingers. */
async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

const urlOf = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

export const expressFramework: Framework = {
  name: "express",
  async start(spec) {
    const app = express();
    if (spec.trustProxy) app.set("trust proxy", true);
    // Before the body parser on purpose: the scope must survive it reading the body.
    app.use(rywExpress({ scope: spec.scope && ((req) => scopeOf(spec, (n) => req.get(n))), token: spec.token }));
    app.use(express.json());
    app.post("/posts", async (req, res) => {
      res.status(201).json({ id: await writePost(spec, req.body.authorId, req.body.title) });
    });
    app.get("/posts", async (req, res) => {
      res.json(await readNewest(spec, Number(req.query.author)));
    });
    app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).json(errorBody(error));
    });
    const server = app.listen(0, "127.0.0.1");
    await once(server, "listening");
    return { url: urlOf(server), close: () => closeServer(server) };
  },
};

export const fastifyFramework: Framework = {
  name: "fastify",
  async start(spec) {
    const app = Fastify({ trustProxy: spec.trustProxy ?? false });
    await app.register(rywFastify, { scope: spec.scope && ((request) => scopeOf(spec, (n) => headerText(request.headers[n]))), token: spec.token });
    app.setErrorHandler((error, _request, reply) => reply.code(500).send(errorBody(error)));
    app.post<{ Body: { authorId: number; title: string } }>("/posts", async (request, reply) => {
      const id = await writePost(spec, request.body.authorId, request.body.title);
      return reply.code(201).send({ id });
    });
    app.get<{ Querystring: { author: string } }>("/posts", async (request) => readNewest(spec, Number(request.query.author)));
    await app.listen({ port: 0, host: "127.0.0.1" });
    return { url: urlOf(app.server), close: () => app.close() };
  },
};

export const honoFramework: Framework = {
  name: "hono",
  async start(spec) {
    const app = new Hono();
    const token = spec.token && spec.trustProxy ? { ...spec.token, cookie: { ...spec.token.cookie, trustProxy: true } } : spec.token;
    app.use(rywHono({ scope: spec.scope && ((c) => scopeOf(spec, (n) => c.req.header(n))), token }));
    app.post("/posts", async (c) => {
      const body = await c.req.json<{ authorId: number; title: string }>();
      return c.json({ id: await writePost(spec, body.authorId, body.title) }, 201);
    });
    app.get("/posts", async (c) => c.json(await readNewest(spec, Number(c.req.query("author")))));
    app.onError((error, c) => c.json(errorBody(error), 500));
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }) as Server;
    await once(server, "listening");
    return { url: urlOf(server), close: () => closeServer(server) };
  },
};

export const frameworks = [expressFramework, fastifyFramework, honoFramework];

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

/**
 * A browser in miniature: keeps the cookies servers set (name=value only; this test's servers
 * all live on 127.0.0.1) and sends them back, to whichever server it talks to next.
 */
export class Client {
  readonly cookies = new Map<string, string>();
  /** Every Set-Cookie line received, newest last. */
  readonly setCookies: string[] = [];
  constructor(readonly headers: Record<string, string> = {}) {}

  async request(url: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: unknown; headers: Headers }> {
    const headers: Record<string, string> = { ...this.headers, ...init.headers };
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    if (init.body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(url, { method: init.method ?? "GET", headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
    for (const line of res.headers.getSetCookie()) {
      this.setCookies.push(line);
      const [pair, ...attributes] = line.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq).trim();
      const cleared = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (cleared) this.cookies.delete(name);
      else this.cookies.set(name, pair!.slice(eq + 1).trim());
    }
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  }

  write(app: RunningApp, authorId: number, title: string, headers?: Record<string, string>) {
    return this.request(`${app.url}/posts`, { method: "POST", body: { authorId, title }, headers });
  }

  async read(app: RunningApp, authorId: number, headers?: Record<string, string>): Promise<ReadResult> {
    const res = await this.request(`${app.url}/posts?author=${authorId}`, { headers });
    if (res.status !== 200) throw new Error(`read answered ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body as ReadResult;
  }
}
