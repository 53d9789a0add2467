/**
 * A token of SQL text, as far as routing needs to see it: words (lowercased), quoted identifiers,
 * opaque literals, `$n` parameters and single punctuation characters. Comments are dropped.
 */
export type Token =
  | { readonly type: "word"; readonly value: string }
  | { readonly type: "ident"; readonly value: string }
  | { readonly type: "literal" }
  | { readonly type: "param" }
  | { readonly type: "punct"; readonly value: string };

const WORD_START = /[A-Za-z_\u0080-\uffff]/;
const WORD_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
const DOLLAR_TAG = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/;

/**
 * Splits SQL into tokens. Strings, dollar-quoted bodies and quoted identifiers become single
 * tokens, so a keyword inside them (`'delete me'`, `"update"`) never looks like a statement.
 * Unterminated quotes swallow the rest of the text: the statement then fails on the server anyway.
 */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f") {
      i++;
    } else if (c === "-" && next === "-") {
      while (i < n && sql[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      i = skipBlockComment(sql, i);
    } else if ((c === "E" || c === "e") && next === "'") {
      i = skipString(sql, i + 1, true);
      tokens.push({ type: "literal" });
    } else if (c === "'") {
      i = skipString(sql, i, false);
      tokens.push({ type: "literal" });
    } else if (c === '"') {
      let value = "";
      let j = i + 1;
      for (; j < n; j++) {
        if (sql[j] !== '"') value += sql[j];
        else if (sql[j + 1] === '"') value += sql[++j];
        else break;
      }
      i = j + 1;
      tokens.push({ type: "ident", value });
    } else if (c === "$" && DOLLAR_TAG.test(sql.slice(i, i + 64))) {
      const tag = DOLLAR_TAG.exec(sql.slice(i, i + 64))![0];
      const end = sql.indexOf(tag, i + tag.length);
      i = end < 0 ? n : end + tag.length;
      tokens.push({ type: "literal" });
    } else if (c === "$" && next !== undefined && next >= "0" && next <= "9") {
      i++;
      while (i < n && sql[i]! >= "0" && sql[i]! <= "9") i++;
      tokens.push({ type: "param" });
    } else if (WORD_START.test(c)) {
      let j = i + 1;
      while (j < n && WORD_PART.test(sql[j]!)) j++;
      tokens.push({ type: "word", value: sql.slice(i, j).toLowerCase() });
      i = j;
    } else if (c >= "0" && c <= "9") {
      while (i < n && /[0-9A-Za-z_.]/.test(sql[i]!)) i++;
      tokens.push({ type: "literal" });
    } else {
      tokens.push({ type: "punct", value: c });
      i++;
    }
  }
  return tokens;
}

// PostgreSQL block comments nest.
function skipBlockComment(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql[i] === "/" && sql[i + 1] === "*") {
      depth++;
      i += 2;
    } else if (sql[i] === "*" && sql[i + 1] === "/") {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else i++;
  }
  return i;
}

/** Skips a '...' literal starting at `start` (the quote); `escapes` for E'...' strings. */
function skipString(sql: string, start: number, escapes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (escapes && c === "\\") i += 2;
    else if (c === "'" && sql[i + 1] === "'") i += 2;
    else if (c === "'") return i + 1;
    else i++;
  }
  return i;
}
