//! The tree walker: one pass over a statement's parse tree that gathers the [`Facts`] the gates
//! check (data-modifying statements, locking and INTO clauses, every function called).
//!
//! The walker fails closed: a node type it has no rule for makes the checks refuse, so a future
//! parser version can never smuggle an unvisited subtree past them. The rules for each node
//! type live in one file per node family (`statements`, `clauses`, `from`, `expr`, `json`);
//! [`visit`] hands a node to each family in turn.

mod clauses;
mod expr;
mod from;
mod json;
mod statements;

use pg_query::{Node, NodeEnum, NodeRef};

/// What a full walk of a statement's tree found.
#[derive(Debug, Clone, Default)]
pub(super) struct Facts {
    /// Whether the tree was walked at all (only for statements whose checks need it).
    pub(super) walked: bool,
    /// INSERT/UPDATE/DELETE/MERGE nodes found anywhere (the root included), in visiting order.
    pub(super) dml: Vec<&'static str>,
    /// A FOR UPDATE/SHARE/… clause somewhere.
    pub(super) locking: bool,
    /// An INTO clause somewhere (SELECT … INTO, CREATE TABLE … AS).
    pub(super) into: bool,
    /// Unqualified, lower-cased name of every function called, in visiting order.
    pub(super) functions: Vec<String>,
    /// The first node type the walker has no rule for; checks refuse when set.
    pub(super) unknown: Option<String>,
}

/// Walks the parts of a statement that the checks look at.
///
/// DDL is not walked in general (pg_schema is a privileged action that runs what it is
/// given), except the queries embedded in CREATE TABLE AS / CREATE VIEW, which can hide
/// data-modifying WITH clauses or denylisted calls that a later read would trigger.
pub(super) fn walk_statement(stmt: &NodeEnum) -> Facts {
    match stmt {
        NodeEnum::SelectStmt(_)
        | NodeEnum::InsertStmt(_)
        | NodeEnum::UpdateStmt(_)
        | NodeEnum::DeleteStmt(_)
        | NodeEnum::MergeStmt(_)
        | NodeEnum::CallStmt(_)
        | NodeEnum::DoStmt(_)
        | NodeEnum::LockStmt(_)
        | NodeEnum::ExplainStmt(_)
        | NodeEnum::VariableShowStmt(_) => walk(vec![stmt.to_ref()]),
        NodeEnum::CreateTableAsStmt(c) => {
            let mut roots = Vec::new();
            if let Some(query) = c.query.as_deref().and_then(|n| n.node.as_ref()) {
                roots.push(query.to_ref());
            }
            walk(roots)
        }
        NodeEnum::ViewStmt(v) => {
            let mut roots = Vec::new();
            if let Some(query) = v.query.as_deref().and_then(|n| n.node.as_ref()) {
                roots.push(query.to_ref());
            }
            walk(roots)
        }
        _ => Facts::default(),
    }
}

/// Pushes child nodes onto the walker's stack.
struct Children<'a, 's> {
    stack: &'s mut Vec<NodeRef<'a>>,
}

impl<'a> Children<'a, '_> {
    fn push(&mut self, node: NodeRef<'a>) {
        self.stack.push(node);
    }
    fn node(&mut self, node: &'a Node) {
        if let Some(inner) = node.node.as_ref() {
            self.stack.push(inner.to_ref());
        }
    }
    fn opt(&mut self, node: &'a Option<Box<Node>>) {
        if let Some(node) = node.as_deref() {
            self.node(node);
        }
    }
    fn list(&mut self, nodes: &'a [Node]) {
        for node in nodes {
            self.node(node);
        }
    }
}

/// The last identifier of a qualified name list: `pg_catalog.pg_read_file` → `pg_read_file`.
fn last_name(names: &[Node]) -> Option<&str> {
    match names.last().and_then(|n| n.node.as_ref()) {
        Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
        _ => None,
    }
}

/// The variant name of a node, for messages about node types the walker does not know.
fn node_kind(node: NodeRef<'_>) -> String {
    let debug = format!("{node:?}");
    debug
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap_or("unknown")
        .to_string()
}

/// Walks every node below `roots` (iteratively: deep nesting must not overflow the stack).
fn walk(roots: Vec<NodeRef<'_>>) -> Facts {
    let mut facts = Facts {
        walked: true,
        ..Facts::default()
    };
    let mut stack = roots;
    while let Some(node) = stack.pop() {
        let mut kids = Children { stack: &mut stack };
        visit(node, &mut kids, &mut facts);
    }
    facts
}

/// Records facts about one node and queues its children.
///
/// Every struct with child nodes is destructured without `..`, so when a pg_query upgrade
/// adds a field the code stops compiling until someone decides whether to walk it. Only
/// raw-parser node types reachable from the walked statements are listed; anything else
/// (analyzer-only nodes, DDL pieces) is recorded as unknown and makes the checks refuse.
///
/// Leaves and lists are handled here; every other node goes to the node families in turn,
/// each of which handles its own node types and hands any other node back. No node type
/// belongs to two families, so the order of the chain does not change what a node produces.
fn visit<'a>(node: NodeRef<'a>, k: &mut Children<'a, '_>, facts: &mut Facts) {
    match node {
        // ---- leaves: no child nodes ----
        NodeRef::Integer(_)
        | NodeRef::Float(_)
        | NodeRef::Boolean(_)
        | NodeRef::String(_)
        | NodeRef::BitString(_)
        | NodeRef::AConst(_)
        | NodeRef::ParamRef(_)
        | NodeRef::AStar(_)
        | NodeRef::RoleSpec(_)
        | NodeRef::JsonFormat(_)
        | NodeRef::ReturningOption(_)
        | NodeRef::VariableShowStmt(_) => {}

        NodeRef::List(l) => k.list(&l.items),
        other => {
            let unknown = statements::visit(other, k, facts)
                .and_then(|n| clauses::visit(n, k, facts))
                .and_then(|n| from::visit(n, k))
                .and_then(|n| expr::visit(n, k, facts))
                .and_then(|n| json::visit(n, k));
            // Anything else is not produced by the raw parser inside the statements we walk
            // (analyzer nodes such as Query or FuncExpr, DDL pieces such as Constraint). Fail closed.
            if let Some(other) = unknown
                && facts.unknown.is_none()
            {
                facts.unknown = Some(node_kind(other));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::classify::{ClassifyError, check_read, check_write, parse_one};
    use crate::safety::testkit::{assert_refused, parsed};

    // -----------------------------------------------------------------------------------
    // Fail-closed walker
    // -----------------------------------------------------------------------------------

    #[test]
    fn unknown_nodes_fail_closed() {
        let mut p = parsed("SELECT 1");
        std::sync::Arc::make_mut(&mut p.facts).unknown = Some("Query".to_string());
        assert_refused("SELECT 1", "read", check_read(&p), "construct (Query)");
        let mut p = parsed("INSERT INTO t VALUES (1)");
        std::sync::Arc::make_mut(&mut p.facts).unknown = Some("Query".to_string());
        assert_refused("INSERT", "write", check_write(&p), "construct (Query)");
        // The name helper reports the variant, not the whole debug dump.
        let stmt = parsed("SELECT 1").stmt;
        assert_eq!(node_kind(stmt.to_ref()), "SelectStmt");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let depth = 500;
        let sql = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
        match parse_one(&sql) {
            Ok(p) => assert!(check_read(&p).is_ok()),
            // libpg_query may refuse with "stack depth limit exceeded"; either way, no panic.
            Err(e) => assert!(matches!(e, ClassifyError::Syntax { .. }), "{e}"),
        }
    }
}
