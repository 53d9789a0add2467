import type { Check } from "./types.js";
import type { PgFacts } from "./inspect.js";
import type { ReplayState } from "./replay.js";

/** The primary must accept writes, or every captured position would be meaningless. */
export function roleCheck(primary: PgFacts): Check {
  if (primary.inRecovery) {
    return {
      id: "role",
      target: "primary",
      status: "fail",
      summary: "in recovery: this server is a replica, not the primary",
      fix: `Point ${primary.node.source} at the primary (the server where pg_is_in_recovery() is false).`,
      data: { inRecovery: true },
    };
  }
  return { id: "role", target: "primary", status: "pass", summary: "accepts writes (not in recovery)", data: { inRecovery: false, systemIdentifier: primary.systemId ?? null } };
}

/** A replica is useful to ryw only if it replays this primary's WAL: same system, in recovery, streaming. */
export function replicationCheck(replica: PgFacts, primary: PgFacts | undefined, state: ReplayState | undefined): Check {
  const base = { id: "replication", target: replica.node.name };
  const data = {
    inRecovery: replica.inRecovery,
    systemIdentifier: replica.systemId ?? null,
    primarySystemIdentifier: primary?.systemId ?? null,
    receiver: state?.receiver ?? null,
  };
  if (!replica.inRecovery) {
    return {
      ...base,
      status: "fail",
      summary: "not in recovery: this server accepts writes (a promoted replica or a separate server)",
      fix: `Remove it from ${replica.node.source}, or rebuild it as a streaming replica of the primary.`,
      data,
    };
  }
  if (primary && replica.systemId && primary.systemId && replica.systemId !== primary.systemId) {
    return {
      ...base,
      status: "fail",
      summary: `replica of another cluster: system identifier ${replica.systemId}, the primary's is ${primary.systemId}`,
      fix: `Make ${replica.node.source} and ${primary.node.source} point at the same cluster.`,
      data,
    };
  }
  const parts = ["in recovery"];
  let status: Check["status"] = "pass";
  let fix: string | undefined;
  let note: string | undefined;
  if (!primary) {
    parts.push("not compared with the primary (unreachable)");
    status = "skip";
  } else if (!replica.systemId || !primary.systemId) {
    parts.push("system identifier not readable by this user (pg_control_system())");
    status = "warn";
    note = "cannot prove this replica belongs to the primary's cluster";
  } else {
    parts.push(`same system as the primary (${primary.systemId})`);
  }
  if (state?.receiver === undefined && state) {
    parts.push("no WAL receiver running");
    status = status === "pass" ? "warn" : status;
    note = "it does not stream from any server now, so it falls further behind and ryw sends more reads to the primary";
    fix = "Check primary_conninfo on the replica, the primary's pg_hba.conf replication entry, and the replica's log.";
  } else if (typeof state?.receiver === "string" && state.receiver !== "streaming") {
    parts.push(`WAL receiver ${state.receiver}`);
    status = status === "pass" ? "warn" : status;
    note = "it is not streaming right now, so it falls behind and ryw sends more reads to the primary";
    fix = "Check primary_conninfo on the replica, the network, and the replica's log.";
  } else if (state?.receiver === "streaming") {
    parts.push("streaming");
  } else if (state) {
    parts.push("WAL receiver status hidden (needs pg_read_all_stats)");
  }
  return { ...base, status, summary: parts.join(" · "), ...(note ? { note } : {}), ...(fix ? { fix } : {}), data };
}
