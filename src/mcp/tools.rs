//! Tool definitions: names, descriptions a model can act on, flat JSON input schemas (no
//! top-level `oneOf`: some clients reject it), output schemas and truthful annotations.

use std::sync::Arc;

use rmcp::model::{Tool, ToolAnnotations};
use serde_json::{Value, json};

use super::query;

/// Tools this build serves.
pub const NAMES: &[&str] = &["pg_query", "pg_schema", "pg_admin", "pg_tx", "pg_monitor"];

/// Whether `action` is one of `tool`'s actions (keeps metric labels to a known set).
pub fn is_known_action(tool: &str, action: &str) -> bool {
    match tool {
        "pg_query" => query::ACTIONS.contains(&action),
        "pg_schema" => super::schema::ACTIONS.contains(&action),
        "pg_admin" => super::admin::ACTIONS.contains(&action),
        "pg_tx" => super::tx::ACTIONS.contains(&action),
        "pg_monitor" => super::monitor::ACTIONS.contains(&action),
        _ => false,
    }
}

const PG_SCHEMA_DESCRIPTION: &str = "Inspect the database structure and change it with DDL.

Actions:
- list: objects of one target: schema, table (default), view, materialized_view, function, sequence, index, trigger, constraint, extension, type. Filters: schema (exact name), pattern (SQL LIKE on the object name, e.g. \"order%\"; case-sensitive), limit (default 100, max 1000) and offset for paging (the result has total, has_more, next_offset). System schemas (pg_catalog, information_schema, pg_toast, coldquery) and objects that belong to extensions are left out unless include_system: true. Tables include row_estimate and total size.
- describe: one table, view or materialized view by name (\"orders\", \"app.orders\", or with separate schema; double-quote mixed-case names: \"app.\\\"Order\\\"\"; unqualified names follow the search_path). Returns columns (name, type, nullable, default, comment), primary_key, foreign_keys (outgoing) and referenced_by (incoming), unique/check/exclusion constraints, indexes (definition, partial predicate, size, scans), triggers, partition_key/partitions or partition_of, row_estimate, sizes, comment, and a view's definition. If no relation has that name, a function's signature and definition (all overloads).
- create / alter / drop: sql is ONE DDL statement whose kind matches the action (CREATE … for create; ALTER, COMMENT ON, GRANT/REVOKE, REFRESH MATERIALIZED VIEW for alter; DROP and TRUNCATE for drop). Anything else is refused with the tool to use. Default-deny: needs autocommit: true (runs and commits) or a session_id from pg_tx begin (runs in that transaction). dry_run: true runs it in a transaction that is rolled back, to check it without changing anything. CREATE/DROP INDEX CONCURRENTLY runs outside a transaction (autocommit: true only).

list and describe are read-only and accept session_id to see a session's uncommitted changes. Every DDL call is audited.

Examples: {\"action\":\"describe\",\"name\":\"app.orders\"}; {\"action\":\"list\",\"target\":\"index\",\"schema\":\"app\"}; {\"action\":\"create\",\"sql\":\"CREATE INDEX CONCURRENTLY orders_customer_idx ON app.orders (customer_id)\",\"autocommit\":true}";

const PG_ADMIN_DESCRIPTION: &str = "Maintenance, table statistics and server settings.

Actions:
- vacuum / analyze / reindex: on table (\"orders\", \"app.orders\", \"app.\\\"Order\\\"\"; validated and quoted, never pasted into SQL) or, without table, the whole database. Options: full (vacuum only: VACUUM FULL rewrites the table under an exclusive lock), verbose, concurrently (reindex only: REINDEX … CONCURRENTLY, no blocking of writes). Default-deny: needs autocommit: true; they run outside any transaction and cannot be rolled back. VACUUM, REINDEX DATABASE and REINDEX CONCURRENTLY refuse a session_id (PostgreSQL cannot run them inside a transaction); analyze and plain reindex of one table may run in a session (session_id). The result includes the table's statistics afterwards.
- stats: with table: live/dead tuples, dead_ratio (bloat estimate), sequential vs index scans, inserts/updates/deletes, last (auto)vacuum and (auto)analyze, sizes, and usage of each index. Without table: the top tables by activity (limit, default 20).
- settings: setting_name alone: its value, unit, source, description, context. Neither setting_name nor setting_value: a list (filters: category, case-insensitive substring; pattern, LIKE on the name; limit default 200). setting_name + setting_value + session_id: set it for that pg_tx session's transaction (set_config; ends at commit/rollback). Refused: default_transaction_read_only, transaction_read_only, role, session_authorization, session_replication_role, statement_timeout/lock_timeout/idle_in_transaction_session_timeout above the server's limits (or 0), and settings that cannot change per session (context postmaster, sighup, superuser-backend, backend, internal).

Examples: {\"action\":\"analyze\",\"table\":\"app.orders\",\"autocommit\":true}; {\"action\":\"stats\",\"table\":\"app.orders\"}; {\"action\":\"settings\",\"setting_name\":\"work_mem\",\"setting_value\":\"64MB\",\"session_id\":\"tx_…\"}";

const PG_MONITOR_DESCRIPTION: &str = "Observe the database server. Every action is read-only.

Actions:
- health: version, uptime, database size, connections used vs max_connections, cache hit ratio, commits/rollbacks/deadlocks, the longest open transaction, replication role and lag, and a status (ok or warning with reasons).
- activity: backends that are not idle (include_idle: true for all, background processes too), this call's own excluded: pid, user, application, state, wait event, query/transaction/state durations in seconds, lock wait (wait_s), blocked_by pids, query text (first 1000 characters). limit (default 100).
- connections: client connections by database, user, application and state, with totals by state and max_connections.
- locks: blocked/blocking pairs (pg_blocking_pids): both pids, users, queries, how long the blocked one has waited, the lock mode it wants and the modes the blocker holds, the blocker's state and transaction age.
- size: database size and the largest tables (limit, default 20) with table, index and TOAST sizes.
- slow_queries: the slowest statements from pg_stat_statements (order_by mean_time (default), total_time or calls; limit default 20). When the extension is not installed it says how to enable it.

Example: {\"action\":\"locks\"}";

const PG_TX_DESCRIPTION: &str = "Transactions that span tool calls, each on its own dedicated connection.

Actions:
- begin: open a transaction; returns session_id. Options: isolation_level (read_committed default, repeatable_read, serializable), read_only.
- commit / rollback: end it (the session closes). commit of a transaction that had failed reports that it was rolled back.
- savepoint / release / rollback_to: with savepoint_name (letters, digits, _). rollback_to a savepoint taken before a failing statement makes the transaction usable again.
- list: your open sessions (id, age, idle time, expires in, state idle|in_transaction|failed, isolation, statements).

Pass session_id to pg_query (read, write, explain, transaction) to work inside the transaction; writes there need no autocommit. A handle belongs to the client that opened it. An idle session is rolled back and closed after the server's TTL (30 minutes by default): always finish with commit or rollback.

Example: {\"action\":\"begin\"} → {\"session_id\":\"tx_…\"}; then pg_query {\"action\":\"write\",\"sql\":\"UPDATE accounts SET balance = balance - $1 WHERE id = $2\",\"params\":[10,1],\"session_id\":\"tx_…\"}; then {\"action\":\"commit\",\"session_id\":\"tx_…\"}";

const PG_QUERY_DESCRIPTION: &str = "Run SQL against PostgreSQL. One statement per call; values go in `params` ($1, $2, …), never pasted into `sql`.

Actions:
- read: one read-only statement (SELECT, WITH … SELECT, VALUES, TABLE, SHOW, EXPLAIN without ANALYZE). Runs in a READ ONLY transaction that is rolled back. Anything else is refused with the action to use instead.
- write: one INSERT/UPDATE/DELETE/MERGE (RETURNING allowed), CALL or DO. Default-deny: needs autocommit: true (runs and commits on its own) or a session_id. dry_run: true runs it, reports rows_affected, and rolls back.
- explain: EXPLAIN (FORMAT JSON) of one statement, plus a summary. analyze: true executes it (a write is rolled back).
- transaction: operations: [{sql, params}] run atomically; committed only if all succeed; the error names the failing operation's 0-based index. Needs autocommit: true unless every statement is a read.

Results: {columns:[{name,type}], rows:[[…]], row_count, truncated, command, rows_affected, duration_ms}. Rows are capped by max_rows (server default 1000) and by size; when truncated is true, narrow the query.
Errors start with a category (policy_denied, invalid_input, database_error, timeout, …) and say what to do next.

Example: {\"action\":\"read\",\"sql\":\"SELECT id, name FROM users WHERE id = $1\",\"params\":[42]}";

fn object(v: Value) -> Arc<serde_json::Map<String, Value>> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => unreachable!("schemas are written as JSON objects"),
    }
}

fn pg_query_input_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": query::ACTIONS, "description": "read | write | explain | transaction"},
            "sql": {"type": "string", "description": "One SQL statement (read, write, explain)."},
            "params": {"type": "array", "items": {}, "description": "JSON values bound to $1…$n, in order."},
            "session_id": {"type": "string", "description": "Handle from pg_tx begin: run inside that transaction."},
            "autocommit": {"type": "boolean", "description": "write/transaction: run in its own transaction and commit."},
            "dry_run": {"type": "boolean", "description": "write/transaction: run, report, and roll back. Changes nothing."},
            "analyze": {"type": "boolean", "description": "explain: EXPLAIN ANALYZE (executes; writes are rolled back)."},
            "operations": {
                "type": "array",
                "description": "transaction: statements to run atomically.",
                "items": {
                    "type": "object",
                    "properties": {
                        "sql": {"type": "string"},
                        "params": {"type": "array", "items": {}}
                    },
                    "required": ["sql"]
                }
            },
            "max_rows": {"type": "integer", "minimum": 1, "description": "Row cap for this call (clamped to the server's cap)."}
        },
        "required": ["action"]
    })
}

/// Output schema: deliberately permissive (no `required`), since one tool returns row results,
/// plans, transaction results and `{error}` objects; the fields are documented here.
fn pg_query_output_schema() -> Value {
    let rowset = json!({
        "type": "object",
        "properties": {
            "columns": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "type": {"type": "string"}}}},
            "rows": {"type": "array", "items": {"type": "array"}},
            "row_count": {"type": "integer"},
            "truncated": {"type": "boolean"},
            "truncated_by": {"type": "string"},
            "command": {"type": "string"},
            "rows_affected": {"type": ["integer", "null"]},
            "duration_ms": {"type": "number"},
            "hint": {"type": "string"}
        }
    });
    json!({
        "type": "object",
        "properties": {
            "columns": rowset["properties"]["columns"],
            "rows": rowset["properties"]["rows"],
            "row_count": {"type": "integer"},
            "truncated": {"type": "boolean"},
            "truncated_by": {"type": "string", "description": "max_rows or max_result_bytes"},
            "command": {"type": "string"},
            "rows_affected": {"type": ["integer", "null"]},
            "duration_ms": {"type": "number"},
            "hint": {"type": "string"},
            "dry_run": {"type": "boolean"},
            "committed": {"type": "boolean"},
            "plan": {"description": "explain: the EXPLAIN (FORMAT JSON) output"},
            "summary": {"type": "object", "description": "explain: total_cost, plan_rows, actual_total_ms, actual_rows, top_nodes"},
            "analyzed": {"type": "boolean"},
            "rolled_back": {"type": "boolean"},
            "results": {"type": "array", "items": rowset, "description": "transaction: one row result per operation"},
            "session": {"type": "object"},
            "hints": {"type": "array"},
            "error": {
                "type": "object",
                "properties": {
                    "category": {"type": "string"},
                    "message": {"type": "string"},
                    "sqlstate": {"type": "string"},
                    "detail": {"type": "string"},
                    "hint": {"type": "string"},
                    "position": {"type": "integer"},
                    "operation_index": {"type": "integer"}
                }
            }
        }
    })
}

fn pg_schema_input_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": super::schema::ACTIONS, "description": "list | describe | create | alter | drop"},
            "target": {"type": "string", "enum": super::schema::TARGETS, "description": "list: what to list (default table)."},
            "schema": {"type": "string", "description": "list: only this schema; describe: the schema of name."},
            "name": {"type": "string", "description": "describe: table, view or function; schema.name allowed; double-quote mixed case: app.\"Order\"."},
            "pattern": {"type": "string", "description": "list: SQL LIKE pattern on the name, e.g. order%."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "list: page size (default 100)."},
            "offset": {"type": "integer", "minimum": 0, "description": "list: rows to skip (see next_offset)."},
            "include_system": {"type": "boolean", "description": "list: include system schemas and extension objects."},
            "sql": {"type": "string", "description": "create/alter/drop: one DDL statement of that kind."},
            "session_id": {"type": "string", "description": "Handle from pg_tx begin: run inside that transaction."},
            "autocommit": {"type": "boolean", "description": "create/alter/drop: run in its own transaction and commit."},
            "dry_run": {"type": "boolean", "description": "create/alter/drop: run and roll back. Changes nothing."}
        },
        "required": ["action"]
    })
}

fn pg_schema_output_schema() -> Value {
    // Built in two halves: one json! literal this long exceeds the macro recursion limit.
    let mut out = json!({
        "type": "object",
        "properties": {
            "target": {"type": "string"},
            "items": {"type": "array", "items": {"type": "object"}, "description": "list: one object per item"},
            "count": {"type": "integer"},
            "total": {"type": ["integer", "null"]},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "has_more": {"type": "boolean"},
            "next_offset": {"type": "integer"},
            "kind": {"type": "string", "description": "describe: table, partitioned_table, view, materialized_view, function, …"},
            "schema": {"type": ["string", "null"]},
            "name": {"type": ["string", "null"]},
            "columns": {"type": "array", "items": {"type": "object"}},
            "primary_key": {"type": ["object", "null"]},
            "foreign_keys": {"type": "array", "items": {"type": "object"}},
            "referenced_by": {"type": "array", "items": {"type": "object"}},
            "unique_constraints": {"type": "array", "items": {"type": "object"}},
            "check_constraints": {"type": "array", "items": {"type": "object"}},
            "exclusion_constraints": {"type": "array", "items": {"type": "object"}},
            "indexes": {"type": "array", "items": {"type": "object"}},
            "triggers": {"type": "array", "items": {"type": "object"}},
            "partitions": {"type": "array", "items": {"type": "object"}},
            "partition_of": {"type": ["object", "null"]},
            "partition_key": {"type": ["string", "null"]},
            "row_estimate": {"type": ["integer", "null"]},
            "size": {"type": "object"},
            "view_definition": {"type": ["string", "null"]},
        }
    });
    let more = json!({
            "functions": {"type": "array", "items": {"type": "object"}},
            "comment": {"type": ["string", "null"]},
            "command": {"type": "string", "description": "create/alter/drop: the command run"},
            "ok": {"type": "boolean"},
            "committed": {"type": "boolean"},
            "dry_run": {"type": "boolean"},
            "rolled_back": {"type": "boolean"},
            "truncated": {"type": "boolean"},
            "duration_ms": {"type": "number"},
            "hint": {"type": "string"},
            "session": {"type": "object"},
            "hints": {"type": "array"},
            "error": {"type": "object"}
    });
    if let (Some(props), Value::Object(more)) = (out["properties"].as_object_mut(), more) {
        props.extend(more);
    }
    out
}

fn pg_admin_input_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": super::admin::ACTIONS, "description": "vacuum | analyze | reindex | stats | settings"},
            "table": {"type": "string", "description": "vacuum/analyze/reindex/stats: the table (schema.table allowed); omit for the whole database."},
            "full": {"type": "boolean", "description": "vacuum: VACUUM FULL (exclusive lock, rewrites the table)."},
            "verbose": {"type": "boolean", "description": "vacuum/analyze/reindex: VERBOSE."},
            "concurrently": {"type": "boolean", "description": "reindex: REINDEX … CONCURRENTLY (not in a session)."},
            "autocommit": {"type": "boolean", "description": "vacuum/analyze/reindex: required to run without a session."},
            "session_id": {"type": "string", "description": "analyze/reindex/stats/settings: a pg_tx handle (vacuum refuses it)."},
            "setting_name": {"type": "string", "description": "settings: the setting, e.g. work_mem."},
            "setting_value": {"type": ["string", "number", "boolean"], "description": "settings: set setting_name to this for the session (needs session_id)."},
            "category": {"type": "string", "description": "settings list: category substring, e.g. memory."},
            "pattern": {"type": "string", "description": "settings list: LIKE pattern on the name, e.g. %timeout%."},
            "limit": {"type": "integer", "minimum": 1, "description": "stats (default 20) / settings (default 200): rows."},
            "offset": {"type": "integer", "minimum": 0, "description": "settings list: rows to skip."}
        },
        "required": ["action"]
    })
}

fn pg_admin_output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "action": {"type": "string"},
            "target": {"type": "string", "description": "the table, or \"database\""},
            "statement": {"type": "string", "description": "the maintenance statement run"},
            "ok": {"type": "boolean"},
            "table_stats": {"description": "statistics after the run"},
            "verbose_output": {"type": "string"},
            "table": {"type": "string"},
            "stats": {"type": ["object", "null"]},
            "partitions": {"type": "array", "items": {"type": "object"}},
            "index_usage": {"type": "array", "items": {"type": "object"}},
            "tables": {"type": "array", "items": {"type": "object"}},
            "setting_name": {"type": "string"},
            "value": {},
            "unit": {"type": ["string", "null"]},
            "source": {"type": "string"},
            "description": {"type": "string"},
            "context": {"type": "string"},
            "items": {"type": "array", "items": {"type": "object"}},
            "count": {"type": "integer"},
            "total": {"type": ["integer", "null"]},
            "has_more": {"type": "boolean"},
            "duration_ms": {"type": "number"},
            "hint": {"type": "string"},
            "session": {"type": "object"},
            "hints": {"type": "array"},
            "error": {"type": "object"}
        }
    })
}

fn pg_monitor_input_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": super::monitor::ACTIONS, "description": "health | activity | connections | locks | size | slow_queries"},
            "include_idle": {"type": "boolean", "description": "activity: include idle backends."},
            "limit": {"type": "integer", "minimum": 1, "description": "activity/locks (default 100), size/slow_queries (default 20): rows."},
            "order_by": {"type": "string", "enum": super::monitor::ORDERS, "description": "slow_queries: mean_time (default), total_time or calls."}
        },
        "required": ["action"]
    })
}

fn pg_monitor_output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "status": {"type": "string"},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "version": {"type": "string"},
            "uptime_s": {"type": "integer"},
            "database_size_bytes": {"type": "integer"},
            "connections": {"type": "object"},
            "cache_hit_ratio": {"type": ["number", "null"]},
            "longest_transaction": {"type": ["object", "null"]},
            "replication": {"type": "object"},
            "backends": {"type": "array", "items": {"type": "object"}},
            "total": {"type": ["integer", "null"]},
            "groups": {"type": "array", "items": {"type": "object"}},
            "by_state": {"type": "object"},
            "pairs": {"type": "array", "items": {"type": "object"}},
            "blocked_count": {"type": "integer"},
            "largest_tables": {"type": "array", "items": {"type": "object"}},
            "queries": {"type": "array", "items": {"type": "object"}},
            "truncated": {"type": "boolean"},
            "duration_ms": {"type": "number"},
            "hint": {"type": "string"},
            "hints": {"type": "array"},
            "error": {"type": "object"}
        }
    })
}

fn pg_tx_input_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": super::tx::ACTIONS, "description": "begin | commit | rollback | savepoint | release | rollback_to | list"},
            "session_id": {"type": "string", "description": "The handle from begin (all actions but begin and list)."},
            "isolation_level": {"type": "string", "enum": ["read_committed", "repeatable_read", "serializable"], "description": "begin: isolation level."},
            "read_only": {"type": "boolean", "description": "begin: a READ ONLY transaction."},
            "savepoint_name": {"type": "string", "description": "savepoint/release/rollback_to: letters, digits and _."}
        },
        "required": ["action"]
    })
}

fn pg_tx_output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "session_id": {"type": "string"},
            "session": {"type": "object", "properties": {"id": {"type": "string"}, "expires_in_s": {"type": "integer"}, "state": {"type": "string"}}},
            "isolation": {"type": "string"},
            "read_only": {"type": "boolean"},
            "committed": {"type": "boolean"},
            "rolled_back": {"type": "boolean"},
            "savepoint_name": {"type": "string"},
            "sessions": {"type": "array", "items": {"type": "object"}},
            "hint": {"type": "string"},
            "message": {"type": "string"},
            "error": {"type": "object"}
        }
    })
}

/// Every tool this build serves.
pub fn all() -> Vec<Tool> {
    let pg_query = Tool::new(
        "pg_query",
        PG_QUERY_DESCRIPTION,
        object(pg_query_input_schema()),
    )
    .with_title("PostgreSQL query")
    .with_raw_output_schema(object(pg_query_output_schema()))
    .with_annotations(
        ToolAnnotations::with_title("PostgreSQL query")
            // write can modify and delete data; read/explain cannot, but annotations are
            // per tool, so they must describe the worst action.
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            // Only the configured database is touched.
            .open_world(false),
    );
    let pg_tx = Tool::new("pg_tx", PG_TX_DESCRIPTION, object(pg_tx_input_schema()))
        .with_title("PostgreSQL transactions")
        .with_raw_output_schema(object(pg_tx_output_schema()))
        .with_annotations(
            ToolAnnotations::with_title("PostgreSQL transactions")
                // commit makes a session's writes permanent; rollback discards them.
                .read_only(false)
                .destructive(true)
                .idempotent(false)
                .open_world(false),
        );
    let pg_schema = Tool::new(
        "pg_schema",
        PG_SCHEMA_DESCRIPTION,
        object(pg_schema_input_schema()),
    )
    .with_title("PostgreSQL schema")
    .with_raw_output_schema(object(pg_schema_output_schema()))
    .with_annotations(
        ToolAnnotations::with_title("PostgreSQL schema")
            // drop (DROP, TRUNCATE) destroys data; list/describe only read.
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(false),
    );
    let pg_admin = Tool::new(
        "pg_admin",
        PG_ADMIN_DESCRIPTION,
        object(pg_admin_input_schema()),
    )
    .with_title("PostgreSQL maintenance")
    .with_raw_output_schema(object(pg_admin_output_schema()))
    .with_annotations(
        ToolAnnotations::with_title("PostgreSQL maintenance")
            // VACUUM FULL and REINDEX rewrite relations under exclusive locks and cannot be
            // rolled back; settings change a session's behaviour.
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(false),
    );
    let pg_monitor = Tool::new(
        "pg_monitor",
        PG_MONITOR_DESCRIPTION,
        object(pg_monitor_input_schema()),
    )
    .with_title("PostgreSQL monitoring")
    .with_raw_output_schema(object(pg_monitor_output_schema()))
    .with_annotations(
        ToolAnnotations::with_title("PostgreSQL monitoring")
            // Every action reads statistics views in a READ ONLY transaction.
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    );
    vec![pg_query, pg_schema, pg_admin, pg_tx, pg_monitor]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_flat_objects_with_required_action() {
        for t in all() {
            let s = Value::Object((*t.input_schema).clone());
            assert_eq!(s["type"], "object");
            assert!(s.get("oneOf").is_none() && s.get("anyOf").is_none());
            assert_eq!(s["required"], json!(["action"]));
            assert!(t.output_schema.is_some());
            assert!(NAMES.contains(&t.name.as_ref()));
        }
        assert_eq!(all().len(), NAMES.len());
    }

    #[test]
    fn every_action_is_in_the_schema_and_the_description() {
        for t in all() {
            let s = Value::Object((*t.input_schema).clone());
            let actions = s["properties"]["action"]["enum"]
                .as_array()
                .unwrap()
                .clone();
            assert!(!actions.is_empty());
            let desc = t.description.as_deref().unwrap_or_default();
            for a in actions {
                let a = a.as_str().unwrap();
                assert!(is_known_action(&t.name, a), "{} {a}", t.name);
                assert!(
                    desc.contains(a),
                    "{} description does not mention {a}",
                    t.name
                );
            }
            assert!(desc.contains("Example"), "{} has no example", t.name);
        }
    }

    #[test]
    fn annotations_say_monitor_reads_and_schema_and_admin_can_destroy() {
        let by = |n: &str| all().into_iter().find(|t| t.name == n).unwrap();
        let m = by("pg_monitor").annotations.unwrap();
        assert_eq!(m.read_only_hint, Some(true));
        assert_eq!(m.destructive_hint, Some(false));
        for n in ["pg_schema", "pg_admin", "pg_query"] {
            let a = by(n).annotations.unwrap();
            assert_eq!(a.read_only_hint, Some(false), "{n}");
            assert_eq!(a.destructive_hint, Some(true), "{n}");
        }
    }
}
