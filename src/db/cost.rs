//! The cost ceiling (contract §8 "Cost ceiling"): with `COLDQUERY_MAX_QUERY_COST` or
//! `COLDQUERY_MAX_ESTIMATED_ROWS` set (or a call's `max_cost`), a read, write or transaction
//! operation is planned first, `EXPLAIN (FORMAT JSON)` with the call's parameters bound, on the
//! connection and in the transaction it is about to run in, and refused with `cost_exceeded`
//! when the planner's estimate is over the ceiling. Nothing has run when it is refused.
//!
//! The statement is priced as ColdQuery runs it: a read carries the row cap's `LIMIT`, so
//! `SELECT * FROM big` (PostgreSQL stops after max_rows + 1 rows) is cheap while
//! `SELECT count(*) FROM big` is not. No estimate is cached: it depends on the parameter
//! values (`WHERE created_at > $1`), and a cached cheap estimate would let an unselective
//! value through. The price is one more round trip on calls that have a ceiling, none on
//! calls that don't.

use serde_json::{Value, json};
use sqlx::postgres::PgConnection;
use sqlx::{Executor, Row};

use crate::db::executor::Limits;
use crate::error::ToolError;

/// What an estimate is compared with. Both unset: no ceiling, and nothing is planned.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ceiling {
    /// Most planner cost units (the plan's total cost).
    pub max_cost: Option<f64>,
    /// Most estimated rows (the top node's plan rows).
    pub max_rows: Option<f64>,
}

impl Ceiling {
    /// The server's ceiling, lowered (never raised) by a call's `max_cost`.
    pub fn for_call(
        server_cost: Option<f64>,
        server_rows: Option<f64>,
        call_max_cost: Option<f64>,
    ) -> Result<Ceiling, ToolError> {
        if let Some(c) = call_max_cost
            && !(c.is_finite() && c > 0.0)
        {
            return Err(ToolError::InvalidInput(format!(
                "max_cost must be a positive number of planner cost units, got {c}; pg_query \
                 explain shows a statement's cost"
            )));
        }
        let max_cost = match (server_cost, call_max_cost) {
            (Some(s), Some(c)) => Some(s.min(c)),
            (s, c) => s.or(c),
        };
        Ok(Ceiling {
            max_cost,
            max_rows: server_rows,
        })
    }

    /// Whether anything is priced at all.
    pub fn is_set(&self) -> bool {
        self.max_cost.is_some() || self.max_rows.is_some()
    }

    /// The ceiling as results and errors show it.
    pub fn to_json(self) -> Value {
        json!({"max_cost": self.max_cost, "max_estimated_rows": self.max_rows})
    }

    /// Whether an estimate is over the ceiling.
    pub fn exceeded_by(&self, total_cost: f64, plan_rows: f64) -> bool {
        self.max_cost.is_some_and(|m| total_cost > m)
            || self.max_rows.is_some_and(|m| plan_rows > m)
    }
}

/// The text put before a statement to price it; error positions shift by its length.
pub const EXPLAIN_PREFIX: &str = "EXPLAIN (FORMAT JSON) ";

/// Plan `sql` (exactly as it will run) with `params` bound and refuse it when the estimate is
/// over `limits.ceiling` (prepared as `limits` say: [`Limits::uncached`]). `position_shift`
/// maps an error position back into the caller's text.
pub async fn check(
    conn: &mut PgConnection,
    sql: &str,
    params: &[Value],
    limits: &Limits,
    position_shift: usize,
) -> Result<(), ToolError> {
    let ceiling = &limits.ceiling;
    let explain = format!("{EXPLAIN_PREFIX}{sql}");
    // The statement was parsed and authorized before it got here; EXPLAIN without ANALYZE
    // plans it and runs nothing.
    let stmt = crate::db::executor::prepare(conn, &explain, limits)
        .await
        .map_err(|e| ToolError::from_sqlx(e, position_shift))?;
    let args = crate::db::executor::bind_params(&stmt, params)?;
    let row = (&mut *conn)
        .fetch_one(sqlx::Statement::query_with(&stmt, args))
        .await
        .map_err(|e| ToolError::from_sqlx(e, position_shift))?;
    let plan: Value = row
        .try_get::<sqlx::types::Json<Value>, _>(0)
        .map(|j| j.0)
        .map_err(|e| ToolError::Unavailable(format!("could not read the plan to price: {e}")))?;
    let top = &plan[0]["Plan"];
    let total_cost = top["Total Cost"].as_f64().unwrap_or(0.0);
    let plan_rows = estimated_rows(top);
    if !ceiling.exceeded_by(total_cost, plan_rows) {
        return Ok(());
    }
    Err(exceeded(total_cost, plan_rows, ceiling, &costliest(top, 3)))
}

/// The rows a statement produces or, for a write (whose ModifyTable node returns no rows
/// without RETURNING), the rows it would change: the input of the ModifyTable node.
pub fn estimated_rows(top: &Value) -> f64 {
    let own = top["Plan Rows"].as_f64().unwrap_or(0.0);
    if top["Node Type"] == "ModifyTable" {
        let input = top["Plans"][0]["Plan Rows"].as_f64().unwrap_or(0.0);
        return own.max(input);
    }
    own
}

/// The `cost_exceeded` error: estimate, ceiling, the costliest nodes, and what to do.
fn exceeded(total_cost: f64, plan_rows: f64, ceiling: &Ceiling, nodes: &[String]) -> ToolError {
    let mut over = Vec::new();
    if let Some(m) = ceiling.max_cost
        && total_cost > m
    {
        over.push(format!(
            "estimated cost {} is over the ceiling of {}",
            round(total_cost),
            round(m)
        ));
    }
    if let Some(m) = ceiling.max_rows
        && plan_rows > m
    {
        over.push(format!(
            "estimated rows {} are over the ceiling of {} (COLDQUERY_MAX_ESTIMATED_ROWS)",
            round(plan_rows),
            round(m)
        ));
    }
    let message = format!(
        "refused before it ran: {}. Costliest plan nodes: {}. Narrow it with a WHERE on an \
         indexed column or a LIMIT (pg_query explain shows the plan), or ask the operator to \
         raise COLDQUERY_MAX_QUERY_COST / COLDQUERY_MAX_ESTIMATED_ROWS",
        over.join("; "),
        nodes.join(", ")
    );
    ToolError::CostExceeded(Box::new(crate::error::CostExceeded {
        message,
        estimate: json!({"total_cost": total_cost, "plan_rows": plan_rows}),
        ceiling: ceiling.to_json(),
        operation_index: None,
    }))
}

/// A number as people read it: `48,000,000`, `15406.5`.
fn round(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let digits = format!("{}", v as i64);
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 && c != '-' {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        format!("{v:.1}")
    }
}

/// The `n` nodes of the plan tree with the highest own cost (total minus children's), as
/// "Seq Scan on events (rows≈48,000,000, cost 912,000)".
fn costliest(top: &Value, n: usize) -> Vec<String> {
    let mut nodes: Vec<(f64, String)> = Vec::new();
    let mut stack = vec![top];
    while let Some(node) = stack.pop() {
        let children: Vec<&Value> = node["Plans"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let total = node["Total Cost"].as_f64().unwrap_or(0.0);
        let below: f64 = children
            .iter()
            .map(|c| c["Total Cost"].as_f64().unwrap_or(0.0))
            .sum();
        let mut label = node["Node Type"].as_str().unwrap_or("?").to_owned();
        if let Some(rel) = node["Relation Name"].as_str() {
            label.push_str(&format!(" on {rel}"));
        }
        if let Some(idx) = node["Index Name"].as_str() {
            label.push_str(&format!(" using {idx}"));
        }
        let rows = node["Plan Rows"].as_f64().unwrap_or(0.0);
        label.push_str(&format!(" (rows≈{}, cost {})", round(rows), round(total)));
        nodes.push(((total - below).max(0.0), label));
        stack.extend(children);
    }
    nodes.sort_by(|a, b| b.0.total_cmp(&a.0));
    nodes.into_iter().take(n).map(|(_, l)| l).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_lowers_the_ceiling_and_never_raises_it() {
        let c = Ceiling::for_call(Some(1000.0), None, Some(5000.0)).unwrap();
        assert_eq!(c.max_cost, Some(1000.0));
        let c = Ceiling::for_call(Some(1000.0), None, Some(10.0)).unwrap();
        assert_eq!(c.max_cost, Some(10.0));
        let c = Ceiling::for_call(None, None, Some(10.0)).unwrap();
        assert_eq!(c.max_cost, Some(10.0));
        assert!(!Ceiling::for_call(None, None, None).unwrap().is_set());
        assert!(Ceiling::for_call(None, None, Some(0.0)).is_err());
        assert!(Ceiling::for_call(None, None, Some(f64::NAN)).is_err());
    }

    #[test]
    fn costliest_nodes_are_ranked_by_their_own_cost() {
        let plan = json!({"Node Type": "Aggregate", "Total Cost": 20000.0, "Plan Rows": 1.0,
            "Plans": [{"Node Type": "Seq Scan", "Relation Name": "events", "Total Cost": 19000.0, "Plan Rows": 48000000.0}]});
        let nodes = costliest(&plan, 2);
        assert_eq!(
            nodes[0],
            "Seq Scan on events (rows≈48,000,000, cost 19,000)"
        );
        assert_eq!(nodes[1], "Aggregate (rows≈1, cost 20,000)");
        assert_eq!(round(15406.34), "15406.3");
        let update = json!({"Node Type": "ModifyTable", "Plan Rows": 0.0,
            "Plans": [{"Node Type": "Seq Scan", "Plan Rows": 999990.0}]});
        assert_eq!(estimated_rows(&update), 999990.0);
        assert_eq!(round(1000.0), "1,000");
    }
}
