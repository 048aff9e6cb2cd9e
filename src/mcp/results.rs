//! The typed results of `pg_query` (contract §3): [`RowResult`] (read, write, fetch and each
//! operation of a transaction), [`ExplainResult`] with its [`PlanSummary`],
//! [`TransactionResult`] and [`CursorClosed`], one of them a [`QueryResult`]. The tools build
//! them and hand them up as they are; they become JSON once, where the tool result is rendered
//! (`render`). Optional keys are skipped when absent, so a result carries exactly the keys it
//! carried when these were built by hand; `null` stays `null` (`rows_affected` of a read).

use serde::Serialize;
use serde_json::Value;

use crate::db::cost::Ceiling;
use crate::db::executor::{ColumnInfo, Limits, RowSet, Truncation};
use crate::db::sessions::SessionView;
use crate::mcp::common::truncate_for_message;

/// Which cap cut a row result short (`truncated_by`; also the metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TruncatedBy {
    /// The row cap.
    MaxRows,
    /// The byte budget (also when one value was cut).
    MaxResultBytes,
}

impl TruncatedBy {
    /// The spelling results and metrics use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TruncatedBy::MaxRows => "max_rows",
            TruncatedBy::MaxResultBytes => "max_result_bytes",
        }
    }
}

impl From<Truncation> for TruncatedBy {
    fn from(t: Truncation) -> Self {
        match t {
            Truncation::Rows => TruncatedBy::MaxRows,
            Truncation::Bytes | Truncation::Value { .. } => TruncatedBy::MaxResultBytes,
        }
    }
}

/// The contract §3 row result.
#[derive(Debug, Serialize)]
pub(crate) struct RowResult {
    /// Name and type of each column.
    pub(crate) columns: Vec<ColumnInfo>,
    /// The rows, as arrays in column order.
    pub(crate) rows: Vec<Vec<Value>>,
    /// `rows.len()`.
    pub(crate) row_count: usize,
    /// A cap cut the result.
    pub(crate) truncated: bool,
    /// The command tag's verb, e.g. `SELECT`.
    pub(crate) command: String,
    /// Rows a write changed; `null` for reads.
    pub(crate) rows_affected: Option<u64>,
    /// Wall time of the statement.
    pub(crate) duration_ms: f64,
    /// Which cap, when `truncated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) truncated_by: Option<TruncatedBy>,
    /// What to do next: narrowing a truncated result, the cursor to fetch, what a dry run did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hint: Option<String>,
    /// The cursor a truncated read continues in (`pg_query fetch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_cursor: Option<String>,
    /// A write that ran and was rolled back.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) dry_run: bool,
    /// A pooled write: whether it was committed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) committed: Option<bool>,
    /// The pg_tx session the call ran in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) session: Option<SessionView>,
}

impl RowResult {
    /// The row result of `r`, with the hint a truncation needs (it names the cap of `limits`).
    pub(crate) fn new(r: RowSet, limits: &Limits) -> RowResult {
        let hint = r.truncated.map(|t| truncation_hint(t, &r, limits));
        RowResult {
            row_count: r.rows.len(),
            truncated: r.truncated.is_some(),
            truncated_by: r.truncated.map(TruncatedBy::from),
            columns: r.columns,
            rows: r.rows,
            command: r.command,
            rows_affected: r.rows_affected,
            duration_ms: r.duration_ms,
            hint,
            next_cursor: None,
            dry_run: false,
            committed: None,
            session: None,
        }
    }
}

/// How to get the rest of a result that `t` cut short.
fn truncation_hint(t: Truncation, r: &RowSet, limits: &Limits) -> String {
    match t {
        Truncation::Rows => format!(
            "result truncated at {} rows (max_rows); narrow it with WHERE, aggregate it, or \
             page with ORDER BY … LIMIT/OFFSET",
            limits.max_rows
        ),
        Truncation::Bytes => format!(
            "result truncated at {} bytes (max_result_bytes) after {} rows; select fewer or \
             narrower columns (e.g. left(col, 200)), or page with ORDER BY … LIMIT/OFFSET",
            limits.max_bytes,
            r.rows.len()
        ),
        Truncation::Value {
            column,
            whole_bytes,
        } => {
            let name = r
                .columns
                .get(column)
                .map(|c| truncate_for_message(&c.name))
                .unwrap_or_default();
            format!(
                "the first row alone is larger than {} bytes (max_result_bytes): the value of \
                 column {name:?} ({whole_bytes} bytes) was cut to its first part (a json value \
                 becomes the start of its text), and the result ends there; read the value in \
                 pieces with substring(col from 1 for 100000) or left(col, n), or select its \
                 length(col) first",
                limits.max_bytes
            )
        }
    }
}

/// The headline numbers of an EXPLAIN (FORMAT JSON) plan. The numbers are PostgreSQL's own
/// JSON values, passed on as they are (`null` when the plan lacks them).
#[derive(Debug, Serialize)]
pub(crate) struct PlanSummary {
    /// The top node's `Total Cost`.
    pub(crate) total_cost: Value,
    /// The top node's `Plan Rows`.
    pub(crate) plan_rows: Value,
    /// With ANALYZE: `Execution Time` (else the top node's `Actual Total Time`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) actual_total_ms: Option<Value>,
    /// With ANALYZE: the top node's `Actual Rows`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) actual_rows: Option<Value>,
    /// The first few nodes, breadth-first, as `Node on relation using index (cost c)`.
    pub(crate) top_nodes: Vec<String>,
    /// The cost ceiling in force, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ceiling: Option<Value>,
    /// Whether the plan as explained is over that ceiling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) over_ceiling: Option<bool>,
}

impl PlanSummary {
    /// Summarise `plan` (PostgreSQL's EXPLAIN (FORMAT JSON) output).
    pub(crate) fn of(plan: &Value, analyzed: bool) -> PlanSummary {
        let root = plan.get(0).unwrap_or(plan);
        let top = root.get("Plan").unwrap_or(&Value::Null);
        let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
        PlanSummary {
            total_cost: field(top, "Total Cost"),
            plan_rows: field(top, "Plan Rows"),
            actual_total_ms: analyzed.then(|| {
                root.get("Execution Time")
                    .or_else(|| top.get("Actual Total Time"))
                    .cloned()
                    .unwrap_or(Value::Null)
            }),
            actual_rows: analyzed.then(|| field(top, "Actual Rows")),
            top_nodes: top_nodes(top),
            ceiling: None,
            over_ceiling: None,
        }
    }
}

/// Breadth-first over the plan tree: the first few nodes are where the cost is decided.
fn top_nodes(top: &Value) -> Vec<String> {
    let mut nodes = Vec::new();
    let mut queue = std::collections::VecDeque::from([top]);
    while let Some(n) = queue.pop_front() {
        if nodes.len() >= 5 {
            break;
        }
        let Some(kind) = n.get("Node Type").and_then(Value::as_str) else {
            continue;
        };
        let mut label = kind.to_owned();
        if let Some(rel) = n.get("Relation Name").and_then(Value::as_str) {
            label.push_str(&format!(" on {rel}"));
        }
        if let Some(idx) = n.get("Index Name").and_then(Value::as_str) {
            label.push_str(&format!(" using {idx}"));
        }
        if let Some(c) = n.get("Total Cost") {
            label.push_str(&format!(" (cost {c})"));
        }
        nodes.push(label);
        if let Some(children) = n.get("Plans").and_then(Value::as_array) {
            queue.extend(children);
        }
    }
    nodes
}

/// The result of `pg_query explain`.
#[derive(Debug, Serialize)]
pub(crate) struct ExplainResult {
    /// The headline numbers.
    pub(crate) summary: PlanSummary,
    /// PostgreSQL's plan, as it sent it.
    pub(crate) plan: Value,
    /// EXPLAIN ANALYZE: the statement ran.
    pub(crate) analyzed: bool,
    /// It ran a write, and that was rolled back.
    pub(crate) rolled_back: bool,
    /// Wall time of the EXPLAIN.
    pub(crate) duration_ms: f64,
    /// The pg_tx session the call ran in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) session: Option<SessionView>,
}

impl ExplainResult {
    /// The cost ceiling beside the plan's cost, and whether the statement as explained is over
    /// it (a read runs with the row cap's LIMIT, which can make it cheaper). Nothing without a
    /// ceiling.
    pub(crate) fn with_ceiling(mut self, ceiling: &Ceiling) -> Self {
        if ceiling.is_set() {
            let top = &self.plan[0]["Plan"];
            let cost = top["Total Cost"].as_f64().unwrap_or(0.0);
            let rows = crate::db::cost::estimated_rows(top);
            self.summary.ceiling = Some(ceiling.to_json());
            self.summary.over_ceiling = Some(ceiling.exceeded_by(cost, rows));
        }
        self
    }
}

/// The result of `pg_query transaction`: one row result per operation.
#[derive(Debug, Serialize)]
pub(crate) struct TransactionResult {
    /// Whether the operations were committed (never inside a session: its commit does that).
    pub(crate) committed: bool,
    /// Inside a session: whether the operations stay in its transaction (not for a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) applied_to_session: Option<bool>,
    /// The operations' row results, in order.
    pub(crate) results: Vec<RowResult>,
    /// The operations ran and were rolled back.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) dry_run: bool,
    /// The pg_tx session the call ran in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) session: Option<SessionView>,
}

/// The result of `pg_query close_cursor`.
#[derive(Debug, Serialize)]
pub(crate) struct CursorClosed {
    /// The cursor, as the caller named it.
    pub(crate) cursor: String,
    /// Always true: a cursor that is not there is an error instead.
    pub(crate) closed: bool,
}

/// What one `pg_query` call returns.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum QueryResult {
    /// read, write, fetch.
    Rows(RowResult),
    /// explain.
    Explain(ExplainResult),
    /// transaction.
    Transaction(TransactionResult),
    /// close_cursor.
    CursorClosed(CursorClosed),
}

impl QueryResult {
    /// The result of a call made inside a pg_tx session shows that session.
    pub(crate) fn in_session(mut self, view: SessionView) -> Self {
        match &mut self {
            QueryResult::Rows(r) => r.session = Some(view),
            QueryResult::Explain(r) => r.session = Some(view),
            QueryResult::Transaction(r) => r.session = Some(view),
            // Cursors are closed by their own handle, never inside a session call.
            QueryResult::CursorClosed(_) => {}
        }
        self
    }
}

impl From<RowResult> for QueryResult {
    fn from(r: RowResult) -> Self {
        QueryResult::Rows(r)
    }
}

/// For callers that read a result as JSON (the confirmation's dry-run preview).
impl From<QueryResult> for Value {
    fn from(r: QueryResult) -> Self {
        serde_json::to_value(r).expect("results are plain data with string keys: they serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::db::sessions::SessionState;

    fn limits() -> Limits {
        Limits {
            max_rows: 2,
            max_bytes: 1000,
            statement_timeout: std::time::Duration::from_secs(30),
            lock_timeout: std::time::Duration::from_secs(5),
            fresh_statements: false,
            uncached: false,
            ceiling: Ceiling::default(),
        }
    }

    fn rowset(truncated: Option<Truncation>, rows_affected: Option<u64>) -> RowSet {
        RowSet {
            columns: vec![ColumnInfo {
                name: "n".into(),
                type_name: "int4".into(),
            }],
            rows: vec![vec![json!(1)], vec![json!(2)]],
            truncated,
            rows_affected,
            command: "SELECT".into(),
            duration_ms: 1.5,
        }
    }

    fn view() -> SessionView {
        SessionView {
            id: "tx_1".into(),
            expires_in_s: 300,
            state: SessionState::Idle,
            detail: None,
        }
    }

    #[test]
    fn a_complete_read_has_the_contract_keys_and_rows_affected_null() {
        let v = serde_json::to_value(RowResult::new(rowset(None, None), &limits())).unwrap();
        assert_eq!(
            v,
            json!({"columns": [{"name": "n", "type": "int4"}], "rows": [[1], [2]],
                   "row_count": 2, "truncated": false, "command": "SELECT",
                   "rows_affected": null, "duration_ms": 1.5})
        );
    }

    #[test]
    fn a_truncated_result_says_by_what_and_how_to_narrow_it() {
        let v = serde_json::to_value(RowResult::new(
            rowset(Some(Truncation::Rows), None),
            &limits(),
        ))
        .unwrap();
        assert_eq!(v["truncated"], true);
        assert_eq!(v["truncated_by"], "max_rows");
        assert!(
            v["hint"]
                .as_str()
                .unwrap()
                .starts_with("result truncated at 2 rows")
        );
        for (t, hint) in [
            (Truncation::Bytes, "result truncated at 1000 bytes"),
            (
                Truncation::Value {
                    column: 0,
                    whole_bytes: 5000,
                },
                "the value of column \"n\" (5000 bytes)",
            ),
        ] {
            let v = serde_json::to_value(RowResult::new(rowset(Some(t), None), &limits())).unwrap();
            assert_eq!(v["truncated_by"], "max_result_bytes");
            assert!(v["hint"].as_str().unwrap().contains(hint), "{v}");
        }
    }

    #[test]
    fn the_optional_keys_of_a_row_result_appear_only_when_set() {
        let mut r = RowResult::new(rowset(None, Some(2)), &limits());
        r.dry_run = true;
        r.committed = Some(false);
        r.next_cursor = Some("cur_1".into());
        r.session = Some(view());
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(v["rows_affected"], 2);
        assert_eq!(v["dry_run"], true);
        assert_eq!(v["committed"], false);
        assert_eq!(v["next_cursor"], "cur_1");
        assert_eq!(
            v["session"],
            json!({"id": "tx_1", "expires_in_s": 300, "state": "idle"})
        );
        assert_eq!(v.as_object().unwrap().len(), 11, "{v}");
    }

    #[test]
    fn a_transaction_result_shows_session_keys_only_in_a_session() {
        let pooled = TransactionResult {
            committed: true,
            applied_to_session: None,
            results: vec![RowResult::new(rowset(None, Some(1)), &limits())],
            dry_run: false,
            session: None,
        };
        let v = serde_json::to_value(&pooled).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
        assert_eq!(v["committed"], true);
        assert_eq!(v["results"][0]["rows_affected"], 1);
        let in_session = QueryResult::Transaction(TransactionResult {
            committed: false,
            applied_to_session: Some(false),
            dry_run: true,
            ..pooled
        })
        .in_session(view());
        let v = serde_json::to_value(in_session).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "applied_to_session",
                "committed",
                "dry_run",
                "results",
                "session"
            ]
        );
    }

    #[test]
    fn plan_summary_reads_the_top_node_and_walks_children() {
        let plan = json!([{
            "Plan": {"Node Type": "Hash Join", "Total Cost": 42.5, "Plan Rows": 10,
                     "Actual Rows": 9, "Actual Total Time": 1.2,
                     "Plans": [{"Node Type": "Seq Scan", "Relation Name": "t", "Total Cost": 20.0},
                               {"Node Type": "Index Scan", "Relation Name": "u", "Index Name": "u_pkey"}]},
            "Execution Time": 1.5
        }]);
        let s = serde_json::to_value(PlanSummary::of(&plan, true)).unwrap();
        assert_eq!(s["total_cost"], 42.5);
        assert_eq!(s["plan_rows"], 10);
        assert_eq!(s["actual_total_ms"], 1.5);
        assert_eq!(s["actual_rows"], 9);
        assert_eq!(s["top_nodes"][0], "Hash Join (cost 42.5)");
        assert_eq!(s["top_nodes"][1], "Seq Scan on t (cost 20.0)");
        assert_eq!(s["top_nodes"][2], "Index Scan on u using u_pkey");
        assert!(s.get("ceiling").is_none());
        let s = serde_json::to_value(PlanSummary::of(&plan, false)).unwrap();
        assert!(s.get("actual_rows").is_none() && s.get("actual_total_ms").is_none());
    }

    #[test]
    fn an_explain_result_carries_the_ceiling_only_when_one_is_set() {
        let plan = json!([{"Plan": {"Node Type": "Seq Scan", "Total Cost": 50.0, "Plan Rows": 7}}]);
        let explained = |ceiling: &Ceiling| {
            let r = ExplainResult {
                summary: PlanSummary::of(&plan, false),
                plan: plan.clone(),
                analyzed: false,
                rolled_back: false,
                duration_ms: 0.5,
                session: None,
            };
            serde_json::to_value(r.with_ceiling(ceiling)).unwrap()
        };
        let v = explained(&Ceiling::default());
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["analyzed", "duration_ms", "plan", "rolled_back", "summary"]
        );
        assert_eq!(
            v["summary"],
            json!({"total_cost": 50.0, "plan_rows": 7, "top_nodes": ["Seq Scan (cost 50.0)"]})
        );
        let v = explained(&Ceiling::for_call(Some(10.0), None, None).unwrap());
        assert_eq!(v["summary"]["over_ceiling"], true);
        assert_eq!(v["summary"]["ceiling"]["max_cost"], 10.0);
    }

    #[test]
    fn a_closed_cursor_is_its_name_and_closed() {
        let v = serde_json::to_value(QueryResult::CursorClosed(CursorClosed {
            cursor: "cur_1".into(),
            closed: true,
        }))
        .unwrap();
        assert_eq!(v, json!({"cursor": "cur_1", "closed": true}));
    }
}
