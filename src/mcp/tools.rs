//! Tool definitions: names, descriptions a model can act on, flat JSON input schemas (no
//! top-level `oneOf`: some clients reject it), output schemas and truthful annotations.

use std::sync::Arc;

use rmcp::model::{Tool, ToolAnnotations};
use serde_json::{Value, json};

use super::query;

/// Tools this build serves.
pub const NAMES: &[&str] = &["pg_query", "pg_tx"];

/// Whether `action` is one of `tool`'s actions (keeps metric labels to a known set).
pub fn is_known_action(tool: &str, action: &str) -> bool {
    match tool {
        "pg_query" => query::ACTIONS.contains(&action),
        "pg_tx" => super::tx::ACTIONS.contains(&action),
        _ => false,
    }
}

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
    vec![pg_query, pg_tx]
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
    }
}
