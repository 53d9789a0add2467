/**
 * Whether a statement may have changed data, judged from its text alone. Only for statements that
 * reach the primary outside a transaction and outside any ryw operation (a client without the
 * extension, or a batch Prisma started from another call's async context): nothing else says
 * what they are. Calls through the extension never depend on it; their operation decides.
 *
 * Only a plain query reads: a single SELECT (or WITH ... SELECT) without a data-modifying CTE,
 * a locking clause (FOR UPDATE/SHARE) or INTO. Anything else may write, and so does text that
 * does not parse here. A function with side effects called from a SELECT is not recognised.
 */
export function mayWrite(sql: string): boolean {
  const code = withoutLiterals(sql);
  if (code === undefined) return true;
  const text = code.toLowerCase().replace(/;\s*$/, "");
  if (text.includes(";")) return true;
  const first = /^[\s(]*([a-z]+)/.exec(text)?.[1];
  if (first !== "select" && first !== "with") return true;
  return /\b(insert|update|delete|merge|into)\b/.test(text) || /\bfor\s+(key\s+)?share\b/.test(text);
}

/**
 * The statement with string literals, quoted identifiers and comments blanked out, so that
 * keywords are only found in code; `undefined` when one of them never ends.
 */
function withoutLiterals(sql: string): string | undefined {
  let out = "";
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    let end: number;
    if (c === "'" || c === '"') end = quoted(sql, i, c, c === "'" && /[eE]/.test(sql[i - 1] ?? "") && !/\w/.test(sql[i - 2] ?? ""));
    else if (c === "-" && next === "-") end = sql.includes("\n", i) ? sql.indexOf("\n", i) : sql.length;
    else if (c === "/" && next === "*") end = blockComment(sql, i);
    else if (c === "$" && !/\w/.test(sql[i - 1] ?? "")) end = dollarQuoted(sql, i);
    else {
      out += c;
      i++;
      continue;
    }
    if (end < 0) return undefined;
    out += " ";
    i = end;
  }
  return out;
}

/** Index after the literal that starts at `start`; a doubled quote (or, in E'', a backslash) escapes. */
function quoted(sql: string, start: number, quote: string, backslashes: boolean): number {
  for (let i = start + 1; i < sql.length; i++) {
    if (backslashes && sql[i] === "\\") i++;
    else if (sql[i] === quote) {
      if (sql[i + 1] !== quote) return i + 1;
      i++;
    }
  }
  return -1;
}

/** PostgreSQL block comments nest. */
function blockComment(sql: string, start: number): number {
  let depth = 0;
  for (let i = start; i < sql.length - 1; i++) {
    if (sql[i] === "/" && sql[i + 1] === "*") {
      depth++;
      i++;
    } else if (sql[i] === "*" && sql[i + 1] === "/") {
      i++;
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}

/** `$tag$...$tag$`; a `$` that starts no tag (a parameter such as `$1`) is kept as code. */
function dollarQuoted(sql: string, start: number): number {
  const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(start))?.[0];
  if (tag === undefined) return start + 1;
  const close = sql.indexOf(tag, start + tag.length);
  return close < 0 ? -1 : close + tag.length;
}
