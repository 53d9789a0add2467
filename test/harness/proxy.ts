import { connect, createServer } from "node:net";
import type { Server, Socket } from "node:net";

/**
 * A TCP proxy in front of one server (Redis or PostgreSQL), for faults that the servers cannot
 * make themselves: a slow or stalled network, cut connections, refused connects. Clients connect
 * to `proxy.port`; each accepted connection gets its own upstream connection.
 */
export interface FaultProxy {
  readonly port: number;
  readonly url: (scheme: "redis" | "postgres") => string;
  /** Delays every chunk, in both directions, by `ms` (0 = off). Order is kept per direction. */
  setLatency(ms: number): void;
  /**
   * Forwards nothing until `unstall()`, in either direction, while connections stay open and new
   * ones are still accepted. Bytes are buffered, not dropped, and released in order on unstall:
   * a stalled server (or a congested link) delays traffic, it does not lose it, and TCP would
   * retransmit anything lost anyway. Closes that happen during a stall are delivered after it too.
   */
  stall(): void;
  unstall(): void;
  /**
   * Cuts every open connection on both sides; new connections still work. `"close"` (default)
   * closes both sockets, as when a server or middlebox goes away; `"reset"` sends a TCP RST, so
   * clients see ECONNRESET. (postgres.js 3.4.9 can lose queries issued right after an
   * ECONNRESET, before the socket's close: they never settle. Prefer "close" unless testing that.)
   */
  dropAll(mode?: "close" | "reset"): void;
  /** While on, new connections are reset as soon as they are accepted (clients see ECONNRESET). */
  refuse(on: boolean): void;
  /**
   * Points the proxy at another server, as a DNS name or a Patroni endpoint moves after a
   * failover: connections accepted from now on go to `port` (on `host`, default unchanged).
   * Open connections stay on the old server until it or `dropAll()` closes them.
   */
  retarget(port: number, host?: string): void;
  /** Where new connections go now. */
  readonly target: { readonly port: number; readonly host: string };
  readonly stats: ProxyStats;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

export interface ProxyStats {
  accepted: number;
  refused: number;
  dropped: number;
  open: number;
}

export interface ProxyOptions {
  /** Port of the server behind the proxy. */
  port: number;
  /** @default "127.0.0.1" */
  host?: string;
}

// No backpressure: a lane buffers whatever arrives. Fine for test traffic, not for bulk data.
type Item = Buffer | "end";

/** One direction of one connection: chunks wait here until they are due and the proxy is not stalled. */
interface Lane {
  to: Socket;
  queue: Array<{ item: Item; due: number }>;
  timer: NodeJS.Timeout | undefined;
}

export async function startProxy(options: ProxyOptions): Promise<FaultProxy> {
  let upstreamTarget = { port: options.port, host: options.host ?? "127.0.0.1" };
  let latencyMs = 0;
  let stalled = false;
  let refusing = false;
  const stats: ProxyStats = { accepted: 0, refused: 0, dropped: 0, open: 0 };
  const pairs = new Set<{ client: Socket; upstream: Socket; lanes: Lane[] }>();

  const pump = (lane: Lane) => {
    if (lane.timer) clearTimeout(lane.timer);
    lane.timer = undefined;
    if (stalled) return;
    const now = Date.now();
    while (lane.queue.length > 0 && lane.queue[0]!.due <= now) {
      const { item } = lane.queue.shift()!;
      if (item === "end") {
        lane.queue.length = 0;
        lane.to.end(() => lane.to.destroy());
        return;
      }
      if (!lane.to.destroyed) lane.to.write(item);
    }
    // A chunk sent after a latency cut still waits behind older ones: order over timeliness.
    if (lane.queue.length > 0) lane.timer = setTimeout(() => pump(lane), lane.queue[0]!.due - now);
  };

  const forward = (lane: Lane, item: Item) => {
    if (item !== "end" && latencyMs === 0 && !stalled && lane.queue.length === 0) {
      if (!lane.to.destroyed) lane.to.write(item);
      return;
    }
    lane.queue.push({ item, due: Date.now() + latencyMs });
    if (lane.queue.length === 1) pump(lane);
  };

  const server: Server = createServer({ noDelay: true }, (client) => {
    if (refusing) {
      stats.refused++;
      client.resetAndDestroy();
      return;
    }
    stats.accepted++;
    stats.open++;
    const upstream = connect({ port: upstreamTarget.port, host: upstreamTarget.host, noDelay: true });
    const toUpstream: Lane = { to: upstream, queue: [], timer: undefined };
    const toClient: Lane = { to: client, queue: [], timer: undefined };
    const pair = { client, upstream, lanes: [toUpstream, toClient] };
    pairs.add(pair);
    client.on("data", (chunk) => forward(toUpstream, chunk));
    upstream.on("data", (chunk) => forward(toClient, chunk));
    // A refused or reset upstream must look like a closed connection to the client, not hang it.
    for (const s of [client, upstream]) s.on("error", () => {});
    client.once("close", () => forward(toUpstream, "end"));
    upstream.once("close", () => forward(toClient, "end"));
    let closed = 0;
    const gone = () => {
      if (++closed < 2) return;
      for (const lane of pair.lanes) clearTimeout(lane.timer);
      if (pairs.delete(pair)) stats.open--;
    };
    client.once("close", gone);
    upstream.once("close", gone);
  });
  server.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as { port: number }).port;

  const cutAll = (mode: "close" | "reset") => {
    for (const pair of [...pairs]) {
      for (const lane of pair.lanes) {
        clearTimeout(lane.timer);
        lane.queue.length = 0;
      }
      for (const s of [pair.client, pair.upstream]) {
        if (mode === "reset") s.resetAndDestroy();
        else s.destroy();
      }
    }
  };

  return {
    port,
    url: (scheme) => (scheme === "redis" ? `redis://127.0.0.1:${port}` : `postgres://postgres@127.0.0.1:${port}/postgres`),
    setLatency(ms) {
      if (!Number.isFinite(ms) || ms < 0) throw new Error(`[ryw harness] setLatency: ms must be >= 0, got ${ms}`);
      latencyMs = ms;
    },
    stall() {
      stalled = true;
    },
    unstall() {
      stalled = false;
      for (const pair of pairs) for (const lane of pair.lanes) pump(lane);
    },
    dropAll(mode = "close") {
      stats.dropped += pairs.size;
      cutAll(mode);
    },
    refuse(on) {
      refusing = on;
    },
    retarget(port, host = upstreamTarget.host) {
      if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`[ryw harness] retarget: port must be a TCP port, got ${port}`);
      upstreamTarget = { port, host };
    },
    get target() {
      return upstreamTarget;
    },
    stats,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      cutAll("close");
      await closed;
    },
  };
}
