//! Walker rules for the statements themselves: SELECT (and its UNION arms), INSERT, UPDATE,
//! DELETE, MERGE (each recorded as data modification), CALL, DO, LOCK and EXPLAIN.

use pg_query::NodeRef;
use pg_query::protobuf as pb;

use super::{Children, Facts};

/// Queues the children of one node of this family (recording facts where it says so);
/// returns any other node untouched, for the next family.
pub(super) fn visit<'a>(
    node: NodeRef<'a>,
    k: &mut Children<'a, '_>,
    facts: &mut Facts,
) -> Option<NodeRef<'a>> {
    match node {
        NodeRef::SelectStmt(s) => {
            let pb::SelectStmt {
                distinct_clause,
                into_clause,
                target_list,
                from_clause,
                where_clause,
                group_clause,
                group_distinct: _,
                having_clause,
                window_clause,
                values_lists,
                sort_clause,
                limit_offset,
                limit_count,
                limit_option: _,
                locking_clause,
                with_clause,
                op: _,
                all: _,
                larg,
                rarg,
            } = s;
            if let Some(into) = into_clause.as_deref() {
                k.push(NodeRef::IntoClause(into));
            }
            k.list(distinct_clause);
            k.list(target_list);
            k.list(from_clause);
            k.opt(where_clause);
            k.list(group_clause);
            k.opt(having_clause);
            k.list(window_clause);
            k.list(values_lists);
            k.list(sort_clause);
            k.opt(limit_offset);
            k.opt(limit_count);
            k.list(locking_clause);
            if let Some(w) = with_clause {
                k.push(NodeRef::WithClause(w));
            }
            for arm in [larg, rarg].into_iter().flatten() {
                k.push(NodeRef::SelectStmt(arm));
            }
        }
        NodeRef::InsertStmt(s) => {
            facts.dml.push("INSERT");
            let pb::InsertStmt {
                relation,
                cols,
                select_stmt,
                on_conflict_clause,
                returning_clause,
                with_clause,
                r#override: _,
            } = s;
            if let Some(r) = relation {
                k.push(NodeRef::RangeVar(r));
            }
            k.list(cols);
            k.opt(select_stmt);
            if let Some(c) = on_conflict_clause.as_deref() {
                k.push(NodeRef::OnConflictClause(c));
            }
            if let Some(r) = returning_clause {
                k.push(NodeRef::ReturningClause(r));
            }
            if let Some(w) = with_clause {
                k.push(NodeRef::WithClause(w));
            }
        }
        NodeRef::UpdateStmt(s) => {
            facts.dml.push("UPDATE");
            let pb::UpdateStmt {
                relation,
                target_list,
                where_clause,
                from_clause,
                returning_clause,
                with_clause,
            } = s;
            if let Some(r) = relation {
                k.push(NodeRef::RangeVar(r));
            }
            k.list(target_list);
            k.opt(where_clause);
            k.list(from_clause);
            if let Some(r) = returning_clause {
                k.push(NodeRef::ReturningClause(r));
            }
            if let Some(w) = with_clause {
                k.push(NodeRef::WithClause(w));
            }
        }
        NodeRef::DeleteStmt(s) => {
            facts.dml.push("DELETE");
            let pb::DeleteStmt {
                relation,
                using_clause,
                where_clause,
                returning_clause,
                with_clause,
            } = s;
            if let Some(r) = relation {
                k.push(NodeRef::RangeVar(r));
            }
            k.list(using_clause);
            k.opt(where_clause);
            if let Some(r) = returning_clause {
                k.push(NodeRef::ReturningClause(r));
            }
            if let Some(w) = with_clause {
                k.push(NodeRef::WithClause(w));
            }
        }
        NodeRef::MergeStmt(s) => {
            facts.dml.push("MERGE");
            let pb::MergeStmt {
                relation,
                source_relation,
                join_condition,
                merge_when_clauses,
                returning_clause,
                with_clause,
            } = s;
            if let Some(r) = relation {
                k.push(NodeRef::RangeVar(r));
            }
            k.opt(source_relation);
            k.opt(join_condition);
            k.list(merge_when_clauses);
            if let Some(r) = returning_clause {
                k.push(NodeRef::ReturningClause(r));
            }
            if let Some(w) = with_clause {
                k.push(NodeRef::WithClause(w));
            }
        }
        NodeRef::CallStmt(s) => {
            let pb::CallStmt {
                funccall,
                funcexpr,
                outargs,
            } = s;
            if let Some(f) = funccall.as_deref() {
                k.push(NodeRef::FuncCall(f));
            }
            // Only set after parse analysis; if it ever shows up it is reported as unknown.
            if let Some(f) = funcexpr.as_deref() {
                k.push(NodeRef::FuncExpr(f));
            }
            k.list(outargs);
        }
        NodeRef::DoStmt(s) => {
            // The body is an opaque string for the procedural language; only the write action accepts DO.
            let pb::DoStmt { args } = s;
            k.list(args);
        }
        NodeRef::LockStmt(s) => {
            let pb::LockStmt {
                relations,
                mode: _,
                nowait: _,
            } = s;
            k.list(relations);
        }
        NodeRef::ExplainStmt(s) => {
            let pb::ExplainStmt { query, options } = s;
            k.opt(query);
            k.list(options);
        }
        other => return Some(other),
    }
    None
}
