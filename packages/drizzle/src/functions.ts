/**
 * Functions a replica-bound statement may call. A SELECT that calls anything else is `unknown`
 * and goes to the primary: any function may write (a PL/pgSQL body can INSERT), and a replica
 * would reject the statement or, worse, the function would read session state that only exists
 * on the primary. Extend it with the `readFunctions` option for your own read-only functions.
 */
export const READ_FUNCTIONS: ReadonlySet<string> = new Set([
  // aggregates and window functions
  "count", "sum", "avg", "min", "max", "bool_and", "bool_or", "every", "array_agg", "string_agg",
  "json_agg", "jsonb_agg", "json_agg_strict", "jsonb_agg_strict", "json_object_agg", "jsonb_object_agg",
  "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
  "first_value", "last_value", "nth_value", "percentile_cont", "percentile_disc", "mode", "stddev", "variance",
  // conditionals and comparison
  "coalesce", "nullif", "greatest", "least",
  // strings
  "lower", "upper", "length", "char_length", "character_length", "octet_length", "concat", "concat_ws",
  "substring", "substr", "trim", "btrim", "ltrim", "rtrim", "position", "strpos", "replace", "split_part",
  "left", "right", "lpad", "rpad", "initcap", "format", "md5", "starts_with", "regexp_replace",
  "regexp_match", "regexp_matches", "to_char", "quote_ident", "quote_literal",
  // numbers
  "abs", "round", "floor", "ceil", "ceiling", "trunc", "mod", "power", "sqrt", "sign", "random",
  // dates
  "now", "date_trunc", "date_part", "extract", "age", "to_timestamp", "to_date", "make_date",
  "make_timestamp", "make_interval", "timezone", "clock_timestamp", "statement_timestamp", "transaction_timestamp",
  // json, arrays, sets
  "json_build_array", "json_build_object", "jsonb_build_array", "jsonb_build_object", "to_json", "to_jsonb",
  "row_to_json", "array_to_json", "json_array_length", "jsonb_array_length", "jsonb_array_elements",
  "json_array_elements", "jsonb_each", "json_each", "jsonb_extract_path", "jsonb_extract_path_text",
  "jsonb_typeof", "json_typeof", "jsonb_set", "jsonb_strip_nulls", "array_length", "cardinality",
  "array_position", "array_to_string", "string_to_array", "unnest", "generate_series", "array_remove",
  "array_append", "array_cat",
  // types written like calls in casts: varchar(255), numeric(10, 2), timestamp(3)
  "varchar", "char", "character", "numeric", "decimal", "timestamp", "timestamptz", "time", "timetz",
  "interval", "bit", "varbit",
  // grouping, full-text search, misc
  "grouping", "cube", "rollup", "to_tsvector", "to_tsquery", "plainto_tsquery", "websearch_to_tsquery",
  "ts_rank", "gen_random_uuid", "current_setting", "version", "pg_is_in_recovery", "pg_last_wal_replay_lsn",
]);

/** Functions that write WAL or change server or session state: a statement calling one is a write. */
export const WRITE_FUNCTIONS: ReadonlySet<string> = new Set([
  "nextval", "setval", "currval", "lastval", "set_config",
  "pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared",
  "pg_try_advisory_lock", "pg_try_advisory_lock_shared", "pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared",
  "pg_advisory_unlock", "pg_advisory_unlock_all", "pg_notify", "txid_current", "pg_current_xact_id",
  "pg_current_wal_lsn", "pg_current_wal_insert_lsn", "pg_current_wal_flush_lsn", "pg_switch_wal",
  "pg_create_restore_point", "pg_logical_emit_message", "lo_create", "lo_creat", "lo_import", "lo_unlink",
  "lo_put", "lo_from_bytea", "dblink_exec", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
]);

/**
 * Words that PostgreSQL allows before `(` without a function call: `in (`, `exists (`, `as (`...
 * A word missing here but followed by `(` is taken for a call, which errs toward the primary.
 */
export const KEYWORDS_BEFORE_PAREN: ReadonlySet<string> = new Set([
  "in", "exists", "any", "all", "some", "values", "as", "on", "lateral", "from", "select", "where", "and",
  "or", "not", "case", "when", "then", "else", "over", "filter", "array", "row", "cast", "join", "using",
  "with", "by", "is", "distinct", "union", "intersect", "except", "between", "like", "ilike", "similar",
  "to", "limit", "offset", "having", "group", "order", "within", "set", "returning", "recursive",
  "materialized", "sets", "partition", "rows", "range", "groups", "fetch", "only", "of", "return",
  "asc", "desc", "nulls", "overlaps", "escape", "end", "table", "inner", "outer", "cross", "full",
]);
