//! MCP prompts (contract §7): `analyze_query_performance(sql)` and `debug_lock_contention()`,
//! step-by-step plans written against the tools' real argument names, so that a model can
//! follow them call by call (a test checks each call's tool, action and arguments against the
//! tool list).

use rmcp::ErrorData as McpError;
use rmcp::model::{GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Role};
use serde_json::Value;

/// The prompts this server offers.
pub const NAMES: &[&str] = &["analyze_query_performance", "debug_lock_contention"];

/// Every prompt, for prompts/list.
pub fn list() -> Vec<Prompt> {
    vec![
        Prompt::new(
            "analyze_query_performance",
            Some(
                "Find out why a query is slow and what would make it faster: plan, tables, \
                 indexes, statistics, then a verified recommendation.",
            ),
            Some(vec![
                PromptArgument::new("sql")
                    .with_title("SQL")
                    .with_description("The query to analyze (one statement).")
                    .with_required(true),
            ]),
        )
        .with_title("Analyze query performance"),
        Prompt::new(
            "debug_lock_contention",
            Some(
                "Find which sessions are blocked, by whom and on what, and how to resolve it \
                 safely.",
            ),
            None::<Vec<PromptArgument>>,
        )
        .with_title("Debug lock contention"),
    ]
}

/// A JSON string literal for `s`, so the SQL can be pasted into a tool call verbatim.
fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn analyze_query_performance(sql: &str) -> String {
    let q = json_string(sql);
    format!(
        "Analyze the performance of this PostgreSQL query and recommend improvements. Work step \
by step with the ColdQuery tools, and show the evidence for each conclusion.

```sql
{sql}
```

1. Plan without running it:
   pg_query {{\"action\": \"explain\", \"sql\": {q}}}
   Note the total cost, the estimated rows, and the top nodes (sequential scans on large tables, \
nested loops over many rows, sorts and hashes that spill).

2. Measure it: run it for real and compare estimates with reality.
   pg_query {{\"action\": \"explain\", \"sql\": {q}, \"analyze\": true}}
   A statement that writes is executed inside a transaction that is rolled back, so nothing \
changes. If the query has $1, $2 … placeholders, add \"params\": [ … ] with realistic values. \
Large gaps between plan_rows and actual rows mean stale or missing statistics.

3. For each table the plan scans, look at its structure:
   pg_schema {{\"action\": \"describe\", \"name\": \"schema.table\"}}
   Check which indexes exist (definition, partial WHERE, size), the primary and foreign keys, \
and the row estimate. A foreign key without an index on the referencing column is a common cause \
of slow joins and deletes.

4. Check the table's statistics and index usage:
   pg_admin {{\"action\": \"stats\", \"table\": \"schema.table\"}}
   Look at seq_scans vs index_scans, dead_ratio (bloat), last_analyze/last_autoanalyze and \
modified_since_analyze, and indexes with zero scans.

5. If statistics are stale, refresh them (this changes planner statistics only, not data) and \
repeat step 2:
   pg_admin {{\"action\": \"analyze\", \"table\": \"schema.table\", \"autocommit\": true}}

6. Compare with the query history if pg_stat_statements is available (it says so if not):
   pg_monitor {{\"action\": \"slow_queries\", \"order_by\": \"mean_time\"}}

7. Recommend concrete changes: an index (give the exact CREATE INDEX CONCURRENTLY statement), a \
rewrite of the query, or a setting. Do not create indexes or change anything without the user's \
approval; when approved, an index is created with
   pg_schema {{\"action\": \"create\", \"sql\": \"CREATE INDEX CONCURRENTLY …\", \"autocommit\": true}}
   and then verified by repeating step 2.

Finish with a short summary: the bottleneck, the evidence, the recommended change and its \
expected effect."
    )
}

const DEBUG_LOCK_CONTENTION: &str = "Find and explain lock contention in this PostgreSQL \
database. Work step by step with the ColdQuery tools and show the evidence.

1. Who is blocked and by whom:
   pg_monitor {\"action\": \"locks\"}
   Each pair gives the blocked pid, its query and how long it has waited (wait_s), the lock \
mode it wants, and the blocking pid with its query, state and transaction age. A blocking \
state of \"idle in transaction\" means an application opened a transaction and stopped \
talking: it holds its locks until it commits or rolls back.

2. The wider picture, including chains (a blocker that is itself blocked):
   pg_monitor {\"action\": \"activity\"}
   Use blocked_by, wait_event_type/wait_event, transaction_s and state_s. Add \
\"include_idle\": true to see idle sessions too.

3. Long transactions and overall load:
   pg_monitor {\"action\": \"health\"}
   pg_monitor {\"action\": \"connections\"}
   Look at longest_transaction and at idle_in_transaction counts.

4. For each relation involved, see what it is and which indexes it has (missing indexes make \
updates and foreign-key checks hold locks longer):
   pg_schema {\"action\": \"describe\", \"name\": \"schema.table\"}

5. Check whether any of the blockers are your own open transactions:
   pg_tx {\"action\": \"list\"}
   If one is, finish it with pg_tx {\"action\": \"rollback\", \"session_id\": \"tx_…\"} (or \
commit, if its work should be kept).

6. Explain the root cause (which transaction, which statement, which lock) and recommend a fix: \
shorter transactions, consistent lock ordering, an index, or lock_timeout in the application. \
This server does not cancel or terminate other backends; if one must be stopped, tell the user \
which pid and why, so that the database owner can run pg_terminate_backend.

Repeat step 1 at the end to confirm whether the contention is gone.";

/// Render a prompt. Unknown names and a missing required argument are invalid params.
pub fn get(name: &str, arguments: Option<&JsonObject>) -> Result<GetPromptResult, McpError> {
    match name {
        "analyze_query_performance" => {
            let sql = arguments
                .and_then(|a| a.get("sql"))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    McpError::invalid_params(
                        "analyze_query_performance needs the argument sql: the query to analyze",
                        None,
                    )
                })?;
            Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                analyze_query_performance(sql),
            )])
            .with_description("Step-by-step performance analysis of one query"))
        }
        "debug_lock_contention" => Ok(GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            DEBUG_LOCK_CONTENTION,
        )])
        .with_description("Step-by-step lock contention diagnosis")),
        other => Err(McpError::invalid_params(
            format!(
                "unknown prompt {:?}; prompts: {}",
                other.chars().take(64).collect::<String>(),
                NAMES.join(", ")
            ),
            None,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::names::ToolName;
    use crate::mcp::tools;

    /// Every `tool {json}` call written in `text`, parsed.
    fn calls_in(text: &str) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for tool in ToolName::NAMES {
            let needle = format!("{tool} {{");
            let mut from = 0;
            while let Some(at) = text[from..].find(&needle) {
                let start = from + at + tool.len() + 1;
                let mut de =
                    serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
                let v = de
                    .next()
                    .unwrap_or_else(|| panic!("no JSON after {tool}"))
                    .unwrap_or_else(|e| panic!("{tool} call is not JSON: {e}"));
                out.push((tool.to_string(), v));
                from = start;
            }
        }
        out
    }

    fn check_calls(text: &str) -> usize {
        let all = tools::all();
        let calls = calls_in(text);
        for (tool, call) in &calls {
            let t = all
                .iter()
                .find(|t| t.name == tool.as_str())
                .expect("tool exists");
            let props = &t.input_schema["properties"];
            let obj = call.as_object().expect("call is an object");
            for key in obj.keys() {
                assert!(
                    props.get(key).is_some(),
                    "{tool}: unknown argument {key} in {call}"
                );
            }
            let action = obj["action"].as_str().expect("action");
            let tool_name = ToolName::parse(tool).expect("a tool");
            assert!(
                tools::is_known_action(tool_name, action),
                "{tool}: unknown action {action}"
            );
        }
        calls.len()
    }

    #[test]
    fn prompts_use_the_tools_real_arguments() {
        let sql = "SELECT * FROM \"Order\" WHERE note = 'a \"quoted\" \\ value'";
        let text = analyze_query_performance(sql);
        assert!(text.contains(sql));
        assert!(check_calls(&text) >= 7);
        assert!(check_calls(DEBUG_LOCK_CONTENTION) >= 6);
        // The SQL survives the trip through the JSON of the explain call.
        let explain = calls_in(&text)
            .into_iter()
            .find(|(t, c)| t == "pg_query" && c["analyze"] == true)
            .expect("an explain analyze call");
        assert_eq!(explain.1["sql"], sql);
    }

    #[test]
    fn a_missing_sql_argument_and_an_unknown_prompt_are_invalid_params() {
        let e = get("analyze_query_performance", None).unwrap_err();
        assert_eq!(e.code, rmcp::model::ErrorCode::INVALID_PARAMS);
        assert!(e.message.contains("sql"));
        assert!(get("nope", None).is_err());
        assert_eq!(list().len(), NAMES.len());
    }
}
