/**
 * Runs the fault proxies in a process of their own. The coordinator's fault controls block its
 * event loop at times (the harness starts servers with spawnSync); proxies living there would
 * stall every connection meanwhile, a fault nobody asked for.
 */
import { startProxy } from "../harness/proxy.js";
import type { FaultProxy } from "../harness/proxy.js";
import type { ProxyCall, ProxyHostReady } from "./proxies.js";

process.on("disconnect", () => process.exit(0));

const targets = JSON.parse(process.env.RYW_CHAOS_PROXIES ?? "{}") as Record<string, number>;
const proxies = new Map<string, FaultProxy>();
for (const [name, port] of Object.entries(targets)) proxies.set(name, await startProxy({ port }));

process.on("message", (call: ProxyCall) => {
  const proxy = proxies.get(call.proxy);
  try {
    if (!proxy) throw new Error(`no proxy ${call.proxy}`);
    if (call.method === "stats") return void process.send?.({ id: call.id, ok: true, stats: { ...proxy.stats } });
    (proxy[call.method] as (...args: unknown[]) => void)(...call.args);
    process.send?.({ id: call.id, ok: true });
  } catch (error) {
    process.send?.({ id: call.id, ok: false, error: String(error) });
  }
});

const ready: ProxyHostReady = { ready: true, ports: Object.fromEntries([...proxies].map(([name, p]) => [name, p.port])) };
process.send?.(ready);
