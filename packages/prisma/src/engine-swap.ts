import { RywError } from "@ryw/core";
import type { SqlDriverAdapterFactory } from "./driver.js";

/**
 * The one place that touches Prisma internals, for `prisma.$extends(ryw())`: it puts ryw's
 * routing adapter under a PrismaClient that was built with the user's own adapter. Prisma has no
 * public way to change a client's adapter; the two-place form (`new PrismaClient({ adapter:
 * rw.adapter }).$extends(rw)`) needs none of this.
 *
 * Internals used (getPrismaClient.ts, ClientEngine.ts, RequestHandler.ts, $extends.ts of the
 * client runtime; read in @prisma/client 7.10.0, and the same code shapes were found in 7.0.0 and
 * 7.5.0). test/prisma-versions.test.ts runs the one-liner on 7.5.x and on the newest 7.x of the
 * registry (7.10.0 on 2026-12-02), each installed in a fresh consumer project:
 * - `client._originalClient`: the PrismaClient instance itself. Extended clients are
 *   `Object.create(_originalClient)`, so what is set on it is seen by every extended client.
 * - `_engineConfig`: the config the engine was built from. `.adapter` is the factory given to the
 *   constructor; `.accelerateUrl` is set for Accelerate. Same object that `$on(...)` log listeners
 *   and the tracing helper hang off, so a new engine built from it keeps them.
 * - `_engine`: a `ClientEngine`. Its constructor copies `config.adapter` into a private field (and
 *   `connect()` moves it into the executor), so changing the adapter means a new engine. Every
 *   call reads `client._engine` when it runs (`RequestHandler` via `_requestHandler.client`,
 *   `$transaction`, `$connect`, `$disconnect`), so replacing it moves every later call.
 * - `_requestHandler.client`: checked to be that same instance.
 * - `_clientVersion`: the runtime's version, checked against the range above.
 */

const UNSUPPORTED = "UNSUPPORTED_CLIENT" as const;
const FALLBACK = "Create the client with ryw's adapter instead: `const rw = ryw({ primary }); new PrismaClient({ adapter: rw.adapter }).$extends(rw)`.";

/** The Prisma runtimes whose internals were read (see above). */
const SUPPORTED = { major: 7, minMinor: 5 };

interface Engine {
  request: unknown;
  requestBatch: unknown;
  transaction: unknown;
  stop(): Promise<void>;
}
interface EngineConfig {
  adapter?: SqlDriverAdapterFactory;
  accelerateUrl?: string;
}
interface RawClient {
  _engine: Engine;
  _engineConfig: EngineConfig;
  _requestHandler: { client?: unknown };
  _clientVersion?: unknown;
}

export interface ClientEngineSlot {
  /** The adapter factory the client was built with. */
  readonly adapter: SqlDriverAdapterFactory;
  /** Builds a new engine around `adapter` and makes it the client's engine; stops the old one. */
  replace(adapter: SqlDriverAdapterFactory): void;
}

function unsupported(why: string): RywError {
  return new RywError(UNSUPPORTED, `\`prisma.$extends(ryw())\` cannot route this PrismaClient: ${why}. ${FALLBACK}`);
}

/** Checks that `client` has everything the swap needs, and throws a RywError naming what is not. */
export function clientEngine(client: unknown): ClientEngineSlot {
  const raw = (client as { _originalClient?: unknown } | null)?._originalClient as Partial<RawClient> | undefined;
  if (typeof raw !== "object" || raw === null) throw unsupported("it is not a PrismaClient of a supported version (no `_originalClient`)");
  const version = typeof raw._clientVersion === "string" ? /^(\d+)\.(\d+)\./.exec(raw._clientVersion) : null;
  if (!version || Number(version[1]) !== SUPPORTED.major || Number(version[2]) < SUPPORTED.minMinor) {
    throw unsupported(`@prisma/client ${String(raw._clientVersion)} is outside the supported range >=7.5 <8`);
  }
  const config = raw._engineConfig;
  const engine = raw._engine;
  if (typeof config !== "object" || config === null) throw unsupported("Prisma's internal `_engineConfig` is missing");
  if (config.accelerateUrl !== undefined) throw unsupported("it uses Prisma Accelerate (`accelerateUrl`), whose queries never reach a driver adapter");
  if (!isEngine(engine)) throw unsupported("Prisma's internal `_engine` is missing or changed");
  if (raw._requestHandler?.client !== raw) throw unsupported("Prisma's internal `_requestHandler` changed");
  const adapter = config.adapter;
  if (typeof adapter !== "object" || adapter === null || typeof adapter.connect !== "function") throw unsupported("it has no driver adapter");
  if (adapter.provider !== "postgres") throw unsupported(`its driver adapter \`${adapter.adapterName}\` is for ${adapter.provider}, not PostgreSQL`);
  const Engine = engine.constructor as new (config: EngineConfig) => Engine;
  const client_ = raw as RawClient;
  return {
    adapter,
    replace(routing) {
      const old = client_._engine;
      const next = new Engine({ ...config, adapter: routing });
      if (!isEngine(next)) throw unsupported("Prisma's engine constructor changed");
      // Also in place: `_accelerateEngineConfig` inherits from this object, and anything that
      // reads the adapter's name (Prisma checks it for D1) should see the one in use.
      config.adapter = routing;
      client_._engine = next;
      // Frees the old engine's connections. An interactive transaction still open on it fails
      // at its next statement or commit (P2028); its writes roll back.
      void old.stop().catch(() => {});
    },
  };
}

function isEngine(value: unknown): value is Engine {
  if (typeof value !== "object" || value === null) return false;
  const e = value as Partial<Engine> & { constructor?: unknown };
  return typeof e.request === "function" && typeof e.requestBatch === "function" && typeof e.transaction === "function" && typeof e.stop === "function" && typeof e.constructor === "function";
}

/** The adapter factory `client` was built with, or undefined when the internals are not there. Reads only. */
export function clientAdapter(client: unknown): unknown {
  try {
    return ((client as { _originalClient?: { _engineConfig?: { adapter?: unknown } } })._originalClient?._engineConfig?.adapter);
  } catch {
    return undefined;
  }
}
