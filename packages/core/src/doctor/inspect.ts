import type { DoctorNode } from "./options.js";
import type { PgSession } from "./pg.js";
import { connectPg } from "./pg.js";
import { medianRoundTrip } from "./latency.js";

/** What one connection to a PostgreSQL server tells about it, gathered once for every check. */
export interface PgFacts {
  node: DoctorNode;
  session: PgSession;
  /** First statement, connection included. */
  connectMs: number;
  /** Median of several `select 1` on the open connection. */
  roundTripMs: number;
  version: string;
  versionNum: number;
  inRecovery: boolean;
  /** Undefined when the server does not let this user read it. */
  systemId: string | undefined;
  /** From pg_settings: the value in its base unit (e.g. ms), and that unit. */
  settings: Map<string, { setting: string; unit: string | null }>;
}

export type Inspection = { ok: true; facts: PgFacts } | { ok: false; node: DoctorNode; error: unknown; elapsedMs: number };

const SETTINGS = ["synchronous_commit", "synchronous_standby_names", "wal_level", "wal_writer_delay", "hot_standby_feedback", "max_standby_streaming_delay", "recovery_min_apply_delay"];

export async function inspect(node: DoctorNode, timeoutMs: number): Promise<Inspection> {
  let started = performance.now();
  let session: PgSession | undefined;
  try {
    session = await connectPg(node.url, timeoutMs);
    // postgres.js connects on the first statement; loading the module is not the server's time.
    started = performance.now();
    const [about] = await session.query(
      "select current_setting('server_version') as version, current_setting('server_version_num')::int as version_num, pg_is_in_recovery() as recovery",
    );
    const connectMs = performance.now() - started;
    const roundTripMs = await medianRoundTrip(() => session!.query("select 1"));
    const rows = await session.query(`select name, setting, unit from pg_settings where name in (${SETTINGS.map((n) => `'${n}'`).join(", ")})`);
    return {
      ok: true,
      facts: {
        node,
        session,
        connectMs,
        roundTripMs,
        version: String(about?.version),
        versionNum: Number(about?.version_num),
        inRecovery: about?.recovery === true,
        systemId: await systemIdentifier(session),
        settings: new Map(rows.map((r) => [String(r.name), { setting: String(r.setting), unit: r.unit === null ? null : String(r.unit) }])),
      },
    };
  } catch (error) {
    await session?.close();
    return { ok: false, node, error, elapsedMs: performance.now() - started };
  }
}

// Equal identifiers mean one initdb: a replica built from this primary (or from one of its
// replicas). Some hosted services restrict pg_control_system(); the check then says so.
async function systemIdentifier(session: PgSession): Promise<string | undefined> {
  try {
    const [row] = await session.query("select system_identifier::text as id from pg_control_system()");
    return typeof row?.id === "string" ? row.id : undefined;
  } catch {
    return undefined;
  }
}
