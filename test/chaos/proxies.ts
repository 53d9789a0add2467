import type { ProxyStats } from "../harness/proxy.js";
import { forkTs, killChild } from "./spawn.js";

export type ProxyMethod = "setLatency" | "stall" | "unstall" | "dropAll" | "refuse" | "retarget" | "stats";
export interface ProxyCall {
  id: number;
  proxy: string;
  method: ProxyMethod;
  args: unknown[];
}
export interface ProxyHostReady {
  ready: true;
  ports: Record<string, number>;
}

/** The coordinator's remote control of the fault proxies in test/chaos/proxy-host.ts. */
export interface Proxies {
  /** Proxy port by name, e.g. `{ redis: 41234, r0: 41235 }`. */
  readonly ports: Record<string, number>;
  call(proxy: string, method: ProxyMethod, ...args: unknown[]): Promise<unknown>;
  stats(proxy: string): Promise<ProxyStats>;
  close(): Promise<void>;
}

/** Starts one proxy per target (name -> port of the real server), in a separate process. */
export async function startProxies(targets: Record<string, number>): Promise<Proxies> {
  const child = forkTs("proxy-host.ts", { RYW_CHAOS_PROXIES: JSON.stringify(targets) });
  const pending = new Map<number, (m: { ok: boolean; error?: string; stats?: ProxyStats }) => void>();
  let seq = 0;
  const ports = await new Promise<Record<string, number>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("[ryw chaos] proxy host not ready within 60 s")), 60_000);
    child.on("message", (m: ProxyHostReady | { id: number; ok: boolean }) => ("ready" in m ? (clearTimeout(timer), resolve(m.ports)) : pending.get(m.id)?.(m)));
    child.once("exit", (code) => reject(new Error(`[ryw chaos] proxy host exited (${code})`)));
  }).catch(async (error: unknown) => {
    await killChild(child);
    throw error;
  });
  // A proxy host that dies mid-run fails every call instead of leaving a fault lane waiting.
  child.once("exit", (code, signal) => {
    for (const answer of [...pending.values()]) answer({ ok: false, error: `proxy host exited (${signal ?? code})` });
  });
  const call = (proxy: string, method: ProxyMethod, ...args: unknown[]) =>
    new Promise<{ stats?: ProxyStats }>((resolve, reject) => {
      const id = ++seq;
      pending.set(id, (m) => {
        pending.delete(id);
        if (m.ok) resolve(m);
        else reject(new Error(`[ryw chaos] proxy ${proxy}.${method}: ${m.error}`));
      });
      child.send({ id, proxy, method, args } satisfies ProxyCall, (error) => error && pending.get(id)?.({ ok: false, error: String(error) }));
    });
  return {
    ports,
    call,
    stats: async (proxy) => (await call(proxy, "stats")).stats!,
    close: () => killChild(child),
  };
}
