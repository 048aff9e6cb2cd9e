//! The `pg_read` tool, the read-only face of the other four (contract §8 "Read-only surface"):
//! every read-only operation under one tool annotated `readOnlyHint: true`, so clients that
//! approve read-only tools without asking (Claude Code plan mode, Codex) never interrupt a
//! `SELECT`. Each action is translated into the owning tool's arguments and served by that
//! tool's own code: there is one implementation of each operation, not two. The routes are a
//! match on [`ReadAction`]; the input schema is derived from [`ReadArgs`].
//!
//! Also the server-wide read-only mode (`COLDQUERY_READ_ONLY`): [`read_only_refusal`] decides,
//! before dispatch, which calls of the other tools would change something (a match on the
//! call's [`ToolAction`]).

use schemars::JsonSchema;
use serde_json::{Map, Value};

use crate::error::ToolError;
use crate::mcp::common::{parse, truncate_for_message};
use crate::mcp::names::{
    ActionArg, AdminAction, QueryAction, ReadAction, SchemaAction, ToolAction, ToolName, TxAction,
    WireName,
};
use crate::safety::classify::{self, ExplainTarget, StatementClass};

/// Arguments of `pg_read`, declared for its input schema: [`route`] checks them against what
/// each action accepts and forwards them to the owning tool, whose own struct parses them.
#[derive(Debug, Default, JsonSchema)]
#[expect(
    dead_code,
    reason = "only its schema is used; the owning tool's struct parses the call"
)]
pub struct ReadArgs {
    /// One of [`ReadAction`].
    pub action: ActionArg<ReadAction>,
    /// query, explain: one statement.
    pub sql: Option<String>,
    /// query, explain: values bound to `$1…$n`.
    pub params: Option<Vec<Value>>,
    /// query, fetch: row cap.
    pub max_rows: Option<u64>,
    /// query, explain: a lower cost ceiling.
    pub max_cost: Option<f64>,
    /// fetch, close_cursor: a `next_cursor`.
    pub cursor: Option<String>,
    /// Read inside a pg_tx session.
    pub session_id: Option<String>,
    /// list: what to list. Text here: its values are listed once, in pg_schema's schema (the
    /// list is paid for per conversation); pg_schema reports an unknown one.
    pub target: Option<String>,
    /// list: only this schema; describe: the schema of `name`.
    pub schema: Option<String>,
    /// describe: the table, view or function.
    pub name: Option<String>,
    /// list, settings: a LIKE pattern on the name.
    pub pattern: Option<String>,
    /// list, stats, settings: page size.
    pub limit: Option<u64>,
    /// list, settings: rows to skip.
    pub offset: Option<u64>,
    /// list: include the system schemas.
    pub include_system: Option<bool>,
    /// stats: the table.
    pub table: Option<String>,
    /// settings: one setting's name.
    pub setting_name: Option<String>,
    /// settings: list filter on the category.
    pub category: Option<String>,
}

/// For each action: the tool action that serves it, and the arguments it accepts (besides
/// `action`). Anything else is refused, so `analyze: true` or `setting_value` cannot slip a
/// change through the read-only tool.
fn route_of(action: ReadAction) -> (ToolAction, &'static [&'static str]) {
    match action {
        ReadAction::Query => (
            ToolAction::Query(QueryAction::Read),
            &["sql", "params", "session_id", "max_rows", "max_cost"],
        ),
        ReadAction::Explain => (
            ToolAction::Query(QueryAction::Explain),
            &["sql", "params", "session_id", "max_cost"],
        ),
        ReadAction::Fetch => (
            ToolAction::Query(QueryAction::Fetch),
            &["cursor", "max_rows"],
        ),
        ReadAction::CloseCursor => (ToolAction::Query(QueryAction::CloseCursor), &["cursor"]),
        ReadAction::List => (
            ToolAction::Schema(SchemaAction::List),
            &[
                "target",
                "schema",
                "pattern",
                "limit",
                "offset",
                "include_system",
                "session_id",
            ],
        ),
        ReadAction::Describe => (
            ToolAction::Schema(SchemaAction::Describe),
            &["name", "schema", "session_id"],
        ),
        ReadAction::Stats => (
            ToolAction::Admin(AdminAction::Stats),
            &["table", "limit", "session_id"],
        ),
        ReadAction::Settings => (
            ToolAction::Admin(AdminAction::Settings),
            &[
                "setting_name",
                "category",
                "pattern",
                "limit",
                "offset",
                "session_id",
            ],
        ),
        ReadAction::TxList => (ToolAction::Tx(TxAction::List), &[]),
    }
}

/// Translate a `pg_read` call into the owning tool's name and arguments.
pub(crate) fn route(args: Value) -> Result<(ToolName, Value), ToolError> {
    let Value::Object(mut args) = args else {
        return Err(ToolError::InvalidInput(
            "pg_read arguments must be an object with an action".into(),
        ));
    };
    let raw = args.get("action").and_then(Value::as_str).unwrap_or("");
    let action = ReadAction::parse(raw).ok_or_else(|| ReadAction::unknown(raw))?;
    let (target, allowed) = route_of(action);
    if let Some(extra) = args
        .keys()
        .find(|k| k.as_str() != "action" && !allowed.contains(&k.as_str()))
    {
        let hint = match extra.as_str() {
            "analyze" => "; EXPLAIN ANALYZE executes the statement: use pg_query explain",
            "setting_value" => "; setting a value is a change: use pg_admin settings",
            "autocommit" | "dry_run" | "operations" => "; changes go through pg_query",
            _ => "",
        };
        return Err(ToolError::InvalidInput(format!(
            "pg_read {} does not take {}; it takes: {}{hint}",
            action.name(),
            truncate_for_message(extra),
            if allowed.is_empty() {
                "no other arguments".to_owned()
            } else {
                allowed.join(", ")
            }
        )));
    }
    args.insert("action".into(), Value::String(target.name().into()));
    Ok((target.tool(), Value::Object(args)))
}

fn flag(args: &Map<String, Value>, name: &str) -> bool {
    args.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn denied(what: &str, instead: &str) -> ToolError {
    ToolError::PolicyDenied(format!(
        "this server runs with COLDQUERY_READ_ONLY=true, so {what} is refused; {instead}"
    ))
}

/// Under `COLDQUERY_READ_ONLY=true`: the refusal for a call that could change the database,
/// or `None` for a read. Unknown actions pass through to the tool's own `invalid_input`.
pub(crate) fn read_only_refusal(tool: ToolName, args: &Value) -> Option<ToolError> {
    let empty = Map::new();
    let a = args.as_object().unwrap_or(&empty);
    let action = ToolAction::of(tool, args)?;
    let reads =
        "use pg_read (query, explain, list, describe, stats, settings, tx_list) or pg_monitor";
    match action {
        ToolAction::Query(QueryAction::Write) => {
            Some(denied("pg_query write (dry runs included)", reads))
        }
        ToolAction::Query(QueryAction::Transaction) => {
            let ops = a.get("operations").and_then(Value::as_array);
            let all_reads = ops.is_some_and(|ops| {
                ops.iter().all(|op| {
                    op.get("sql")
                        .and_then(Value::as_str)
                        .and_then(|s| parse(s).ok())
                        .is_some_and(|p| matches!(p.class(), StatementClass::Read))
                })
            });
            (!all_reads).then(|| {
                denied(
                    "a pg_query transaction with a statement that is not a read",
                    "send only reads, or use pg_read query",
                )
            })
        }
        ToolAction::Query(QueryAction::Explain) if flag(a, "analyze") => {
            let writes = a
                .get("sql")
                .and_then(Value::as_str)
                .and_then(|s| parse(s).ok())
                .and_then(|p| classify::check_explain(&p).ok())
                .is_none_or(|t| t == ExplainTarget::Write);
            writes.then(|| {
                denied(
                    "EXPLAIN ANALYZE of a statement that writes",
                    "explain it without analyze (pg_read explain)",
                )
            })
        }
        ToolAction::Schema(
            ddl @ (SchemaAction::Create | SchemaAction::Alter | SchemaAction::Drop),
        ) => Some(denied(&format!("pg_schema {} (DDL)", ddl.name()), reads)),
        ToolAction::Admin(
            m @ (AdminAction::Vacuum | AdminAction::Analyze | AdminAction::Reindex),
        ) => Some(denied(
            &format!("pg_admin {}", m.name()),
            "pg_read stats shows the table's statistics",
        )),
        ToolAction::Admin(AdminAction::Settings) if a.contains_key("setting_value") => Some(
            denied("changing a setting", "pg_read settings shows its value"),
        ),
        ToolAction::Tx(TxAction::Begin) if !flag(a, "read_only") => Some(denied(
            "a read-write transaction",
            "pass read_only: true to pg_tx begin",
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_action_routes_to_a_read_of_its_owning_tool() {
        let cases = [
            ("query", "pg_query", "read"),
            ("explain", "pg_query", "explain"),
            ("fetch", "pg_query", "fetch"),
            ("close_cursor", "pg_query", "close_cursor"),
            ("list", "pg_schema", "list"),
            ("describe", "pg_schema", "describe"),
            ("stats", "pg_admin", "stats"),
            ("settings", "pg_admin", "settings"),
            ("tx_list", "pg_tx", "list"),
        ];
        assert_eq!(cases.len(), ReadAction::NAMES.len());
        for (action, tool, target) in cases {
            let (t, args) = route(json!({ "action": action })).unwrap();
            assert_eq!((t.name(), args["action"].as_str().unwrap()), (tool, target));
            // What the read-only tool forwards is never refused by the read-only mode.
            assert!(read_only_refusal(t, &args).is_none(), "{action}");
        }
    }

    #[test]
    fn arguments_that_would_change_something_are_refused() {
        for args in [
            json!({"action": "explain", "sql": "DELETE FROM t", "analyze": true}),
            json!({"action": "settings", "setting_name": "work_mem", "setting_value": "1MB"}),
            json!({"action": "query", "sql": "SELECT 1", "autocommit": true}),
            json!({"action": "tx_list", "session_id": "x"}),
        ] {
            let e = route(args.clone()).unwrap_err();
            assert!(matches!(e, ToolError::InvalidInput(_)), "{args}");
        }
        let e = route(json!({"action": "write"})).unwrap_err();
        assert!(e.to_text().contains("query, explain"), "{}", e.to_text());
    }

    #[test]
    fn the_schema_offers_exactly_the_arguments_some_action_accepts() {
        let schema = schemars::schema_for!(ReadArgs);
        let mut offered: Vec<&str> = schema
            .get("properties")
            .and_then(Value::as_object)
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        let mut accepted: Vec<&str> = ReadAction::ALL
            .iter()
            .flat_map(|a| route_of(*a).1.iter().copied())
            .chain(["action"])
            .collect();
        offered.sort_unstable();
        accepted.sort_unstable();
        accepted.dedup();
        assert_eq!(offered, accepted);
    }

    #[test]
    fn read_only_mode_refuses_changes_and_passes_reads() {
        let refused = [
            (
                "pg_query",
                json!({"action": "write", "sql": "DELETE FROM t", "dry_run": true}),
            ),
            (
                "pg_query",
                json!({"action": "transaction", "operations": [{"sql": "SELECT 1"}, {"sql": "DELETE FROM t"}]}),
            ),
            (
                "pg_query",
                json!({"action": "explain", "sql": "DELETE FROM t", "analyze": true}),
            ),
            (
                "pg_schema",
                json!({"action": "drop", "sql": "DROP TABLE t"}),
            ),
            ("pg_admin", json!({"action": "vacuum", "autocommit": true})),
            (
                "pg_admin",
                json!({"action": "settings", "setting_name": "work_mem", "setting_value": "8MB"}),
            ),
            ("pg_tx", json!({"action": "begin"})),
            ("pg_tx", json!({"action": "begin", "read_only": false})),
        ];
        for (tool, args) in refused {
            let t = ToolName::parse(tool).expect("a tool");
            let e = read_only_refusal(t, &args).unwrap_or_else(|| panic!("{tool} {args}"));
            assert!(
                e.to_text().contains("COLDQUERY_READ_ONLY"),
                "{}",
                e.to_text()
            );
            assert_eq!(e.category(), "policy_denied");
        }
        let passed = [
            ("pg_query", json!({"action": "read", "sql": "SELECT 1"})),
            (
                "pg_query",
                json!({"action": "transaction", "operations": [{"sql": "SELECT 1"}, {"sql": "SELECT 2"}]}),
            ),
            (
                "pg_query",
                json!({"action": "explain", "sql": "SELECT 1", "analyze": true}),
            ),
            (
                "pg_query",
                json!({"action": "explain", "sql": "DELETE FROM t"}),
            ),
            ("pg_schema", json!({"action": "describe", "name": "t"})),
            (
                "pg_admin",
                json!({"action": "settings", "setting_name": "work_mem"}),
            ),
            ("pg_tx", json!({"action": "begin", "read_only": true})),
            ("pg_tx", json!({"action": "commit", "session_id": "x"})),
            ("pg_monitor", json!({"action": "locks"})),
        ];
        for (tool, args) in passed {
            let t = ToolName::parse(tool).expect("a tool");
            assert!(read_only_refusal(t, &args).is_none(), "{tool} {args}");
        }
    }
}
