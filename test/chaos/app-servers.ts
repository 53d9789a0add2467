import type { ChildProcess } from "node:child_process";
import type { AppServerConfig, Ready, Reply, Request } from "./protocol.js";
import { forkTs, killChild } from "./spawn.js";

type Body<R> = R extends unknown ? Omit<R, "id"> : never;

/** The coordinator's handle on one app-server process. */
export interface AppServer {
  readonly name: string;
  /** Which @ryw/core the process loaded (sources or dist). */
  readonly core: string;
  /** Why the process ended, if it did (a crash during the run). */
  readonly exited: string | undefined;
  request(body: Body<Request>): Promise<Reply>;
  kill(): Promise<void>;
}

/**
 * Starts an app server and waits until its ryw client is ready. A request that gets no answer
 * within `timeoutMs` (or whose process died) is answered with `ok: false` here: for the checker
 * that is a failed operation, never a hang.
 */
export async function startAppServer(config: AppServerConfig, timeoutMs: number, tsconfig: string): Promise<AppServer> {
  const child = forkTs("app-server.ts", { RYW_CHAOS_APP: JSON.stringify(config) }, tsconfig);
  const pending = new Map<number, (reply: Reply) => void>();
  let seq = 0;
  let exit: string | undefined;
  const core = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`[ryw chaos] app server ${config.name} not ready within 60 s`));
      void killChild(child);
    }, 60_000);
    child.once("message", () => clearTimeout(timer));
    const onMessage = (message: Ready | Reply) => {
      if ("ready" in message) resolve(message.core);
      else pending.get(message.id)?.(message);
    };
    child.on("message", onMessage);
    child.once("exit", (code, signal) => {
      exit = `app server ${config.name} exited (${signal ?? code})`;
      reject(new Error(`[ryw chaos] ${exit} before it was ready`));
      for (const answer of [...pending.values()]) answer({ id: -1, ok: false, error: exit, events: [] });
    });
  });
  return {
    name: config.name,
    core,
    get exited() {
      return exit;
    },
    request(body) {
      if (exit) return Promise.resolve({ id: -1, ok: false, error: exit, events: [] });
      const id = ++seq;
      return new Promise<Reply>((resolve) => {
        const timer = setTimeout(() => answer({ id, ok: false, error: `no answer from ${config.name} within ${timeoutMs} ms`, events: [] }), timeoutMs);
        const answer = (reply: Reply) => {
          clearTimeout(timer);
          pending.delete(id);
          resolve(reply);
        };
        pending.set(id, answer);
        (child as ChildProcess).send({ ...body, id } as Request, (error) => error && answer({ id, ok: false, error: String(error), events: [] }));
      });
    },
    kill: () => killChild(child),
  };
}
