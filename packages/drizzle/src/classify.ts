import type { Token } from "./tokenize.js";
import { tokenize } from "./tokenize.js";
import { KEYWORDS_BEFORE_PAREN, READ_FUNCTIONS, WRITE_FUNCTIONS } from "./functions.js";

/**
 * - `read`: safe on a replica.
 * - `write`: changes data or state; runs on the primary, and its position is captured afterwards.
 * - `unknown`: might write (it calls a function that is not known to be read-only); treated
 *   like a write.
 */
export type StatementKind = "read" | "write" | "unknown";

export interface Verdict {
  readonly kind: StatementKind;
  /** Why, for logs and tests. */
  readonly reason: string;
}

const READ_STARTS = new Set(["select", "with", "values", "table", "show"]);
const DATA_MODIFYING = new Set(["insert", "update", "delete", "merge"]);
const LOCK_STRENGTHS = new Set(["update", "share", "no", "key"]);
const STATEMENT_STARTS = new Set(["select", "with", "values", "table", "insert", "update", "delete", "merge"]);

/**
 * Classifies one SQL text. Errs toward the primary: only statements that start like a query, contain
 * no data-modifying or locking clause, and call only known read-only functions are reads.
 */
export function classify(sql: string, readFunctions: ReadonlySet<string> = READ_FUNCTIONS): Verdict {
  return classifyTokens(tokenize(sql), readFunctions);
}

function classifyTokens(tokens: Token[], readFunctions: ReadonlySet<string>): Verdict {
  if (tokens.length === 0) return { kind: "unknown", reason: "empty statement" };
  // One trailing semicolon is harmless (drizzle's $count ends with one); anything after it is
  // another statement, and the simple query protocol would run it too.
  const semi = tokens.findIndex((t) => t.type === "punct" && t.value === ";");
  if (semi >= 0 && semi < tokens.length - 1) return { kind: "write", reason: "several statements" };
  const first = tokens.find((t) => !(t.type === "punct" && t.value === "("));
  const start = first?.type === "word" ? first.value : "";
  if (start === "explain") return classifyExplain(tokens, readFunctions);
  if (!READ_STARTS.has(start)) return { kind: "write", reason: `starts with ${start || "something other than a query"}` };

  let unknown: string | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const prev = word(tokens[i - 1]);
    const next = tokens[i + 1];
    const callsNext = next?.type === "punct" && next.value === "(";
    if (t.type !== "word" && t.type !== "ident") continue;
    if (callsNext && isColumnList(tokens, i)) continue;
    if (t.type === "ident") {
      if (callsNext) unknown ??= `calls "${t.value}"()`;
      continue;
    }
    if (t.value === "for" && LOCK_STRENGTHS.has(word(next) ?? "")) return { kind: "write", reason: "locking clause (FOR UPDATE/SHARE)" };
    if (DATA_MODIFYING.has(t.value)) {
      if (t.value === "update" && (prev === "for" || prev === "key")) return { kind: "write", reason: "locking clause (FOR UPDATE)" };
      return { kind: "write", reason: `${t.value} inside ${start}` };
    }
    if (t.value === "into" && start === "select") return { kind: "write", reason: "SELECT INTO creates a table" };
    if (isQualifier(tokens[i - 1])) {
      // schema.function(...)
      if (callsNext) unknown ??= `calls a schema-qualified function ${t.value}()`;
      continue;
    }
    if (!callsNext || KEYWORDS_BEFORE_PAREN.has(t.value)) continue;
    if (WRITE_FUNCTIONS.has(t.value)) return { kind: "write", reason: `calls ${t.value}()` };
    if (!readFunctions.has(t.value)) unknown ??= `calls ${t.value}(), which is not known to be read-only`;
  }
  if (unknown !== undefined) return { kind: "unknown", reason: unknown };
  return { kind: "read", reason: `plain ${start}` };
}

// EXPLAIN alone plans without running; EXPLAIN ANALYZE runs the statement, so it is what it explains.
function classifyExplain(tokens: Token[], readFunctions: ReadonlySet<string>): Verdict {
  const body = tokens.findIndex((t, i) => i > 0 && t.type === "word" && STATEMENT_STARTS.has(t.value));
  if (body < 0) return { kind: "unknown", reason: "EXPLAIN of an unrecognised statement" };
  const options = tokens.slice(1, body).map(word);
  if (!options.includes("analyze") && !options.includes("analyse")) return { kind: "read", reason: "EXPLAIN without ANALYZE" };
  const inner = classifyTokens(tokens.slice(body), readFunctions);
  return { kind: inner.kind, reason: `EXPLAIN ANALYZE: ${inner.reason}` };
}

/** `with t(a, b) as (...)` and `... as g(n)` name columns; they are not calls. */
function isColumnList(tokens: Token[], i: number): boolean {
  const prev = tokens[i - 1];
  if (word(prev) === "as") return true;
  const cteName = word(prev) === "with" || word(prev) === "recursive" || (prev?.type === "punct" && prev.value === ",");
  if (!cteName) return false;
  let depth = 0;
  let j = i + 1;
  for (; j < tokens.length; j++) {
    const t = tokens[j]!;
    if (t.type === "punct" && t.value === "(") depth++;
    else if (t.type === "punct" && t.value === ")" && --depth === 0) break;
  }
  // Only `as (`, `as materialized (` and `as not materialized (` follow a CTE's column list;
  // a call in a select list (`, f(x) as materialized`) never has a parenthesis there.
  if (word(tokens[++j]) !== "as") return false;
  if (word(tokens[j + 1]) === "not") j++;
  if (word(tokens[j + 1]) === "materialized") j++;
  const open = tokens[j + 1];
  return open?.type === "punct" && open.value === "(";
}

function word(t: Token | undefined): string | undefined {
  return t?.type === "word" ? t.value : undefined;
}

function isQualifier(t: Token | undefined): boolean {
  return t?.type === "punct" && t.value === ".";
}
