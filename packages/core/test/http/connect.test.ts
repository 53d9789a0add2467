import { once } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, expect, inject, it } from "vitest";
import { createRyw, getScope } from "../../src/index.js";
import { rywExpress } from "../../src/http/express.js";
import { connect } from "../clients.js";

/**
 * rywExpress without Express: a bare node:http server chaining Connect-style middleware, and
 * handlers that write their headers in every way Node allows.
 */
const cluster = inject("cluster");
const db = connect(cluster);
const ryw = createRyw({ ...db.options, strategy: "token", tokenKeys: ["connect-test-token-key-0123456789"] });
const middleware = rywExpress<IncomingMessage>({ scope: (req) => req.headers["x-user"] as string | undefined, token: { ryw } });

const server = createServer((req, res) => {
  middleware(req, res, (error) => {
    if (error) {
      res.statusCode = 500;
      return res.end(String(error));
    }
    void handle(req, res);
  });
});

async function handle(req: IncomingMessage, res: ServerResponse) {
  // As after a commit: the request now knows a position, so its response carries a token.
  await ryw.recordWrite("0/1");
  const body = JSON.stringify({ scope: getScope() ?? null });
  switch (req.url) {
    case "/object":
      // Headers given to writeHead itself, a Set-Cookie among them: both cookies go out.
      res.writeHead(200, "Fine", { "content-type": "application/json", "set-cookie": "app=1" });
      return res.end(body);
    case "/array":
      res.writeHead(200, ["content-type", "application/json", "set-cookie", "app=2"]);
      return res.end(body);
    case "/implicit":
      res.setHeader("set-cookie", ["app=3", "other=4"]);
      return res.end(body);
  }
}

afterAll(async () => {
  server.closeAllConnections();
  server.close();
  await ryw.close();
  await db.end();
});

it("works as Connect middleware and keeps Set-Cookie headers the handler passes to writeHead", async () => {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const token = /^ryw-token=v1\.[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Lax$/;

  const object = await fetch(`${url}/object`, { headers: { "x-user": "carol" } });
  expect(object.statusText).toBe("Fine");
  expect(await object.json()).toEqual({ scope: "carol" });
  expect(object.headers.getSetCookie()).toEqual(["app=1", expect.stringMatching(token)]);

  const array = await fetch(`${url}/array`);
  expect(array.headers.get("content-type")).toBe("application/json");
  // No scope function result: the token strategy's shared scope.
  expect(await array.json()).toEqual({ scope: "ryw:token" });
  expect(array.headers.getSetCookie()).toEqual(["app=2", expect.stringMatching(token)]);

  const implicit = await fetch(`${url}/implicit`);
  expect(implicit.headers.getSetCookie()).toEqual(["app=3", "other=4", expect.stringMatching(token)]);
});
