/**
 * `pass`: fine. `warn`: works, at a cost worth knowing (never fails the run).
 * `fail`: ryw cannot work correctly here; always comes with a one-line fix.
 * `skip`: not checked, because something it needs failed first.
 */
export type CheckStatus = "pass" | "warn" | "fail" | "skip";

/** One line of the doctor's report. */
export interface Check {
  /** What is checked: `connect`, `role`, `replication`, `lag`, `probe`, a setting name, `eviction`, `ttl`, `store`. */
  id: string;
  /** `primary`, a replica's name (`replica-0`...), `redis` or `store`. */
  target: string;
  status: CheckStatus;
  /** What was found, in one line. */
  summary: string;
  /** What it means for reads and writes through ryw. */
  note?: string;
  /** What to do about it, in one line. Every `fail` has one. */
  fix?: string;
  /** The measured values, for machines: milliseconds, bytes, settings. */
  data?: Record<string, unknown>;
}

export interface DoctorReport {
  /** False when any check failed. */
  ok: boolean;
  counts: Record<CheckStatus, number>;
  /** The checked servers, passwords masked. */
  nodes: { primary: string; replicas: Array<{ name: string; url: string }>; redis: string | null };
  timeoutMs: number;
  ttlMs: number;
  checks: Check[];
  durationMs: number;
}
