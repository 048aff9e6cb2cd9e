//! Walker rules for FROM items: tables and aliases, subqueries, functions (incl. ROWS FROM and
//! their column definition lists), TABLESAMPLE, XMLTABLE and joins. They record no facts.

use pg_query::NodeRef;
use pg_query::protobuf as pb;

use super::Children;

/// Queues the children of one node of this family (recording facts where it says so);
/// returns any other node untouched, for the next family.
pub(super) fn visit<'a>(node: NodeRef<'a>, k: &mut Children<'a, '_>) -> Option<NodeRef<'a>> {
    match node {
        NodeRef::RangeVar(r) => {
            let pb::RangeVar {
                catalogname: _,
                schemaname: _,
                relname: _,
                inh: _,
                relpersistence: _,
                alias,
                location: _,
            } = r;
            if let Some(a) = alias {
                k.push(NodeRef::Alias(a));
            }
        }
        NodeRef::Alias(a) => {
            let pb::Alias {
                aliasname: _,
                colnames,
            } = a;
            k.list(colnames);
        }
        NodeRef::RangeSubselect(r) => {
            let pb::RangeSubselect {
                lateral: _,
                subquery,
                alias,
            } = r;
            k.opt(subquery);
            if let Some(a) = alias {
                k.push(NodeRef::Alias(a));
            }
        }
        NodeRef::RangeFunction(r) => {
            let pb::RangeFunction {
                lateral: _,
                ordinality: _,
                is_rowsfrom: _,
                functions,
                alias,
                coldeflist,
            } = r;
            k.list(functions);
            if let Some(a) = alias {
                k.push(NodeRef::Alias(a));
            }
            k.list(coldeflist);
        }
        NodeRef::RangeTableSample(r) => {
            let pb::RangeTableSample {
                relation,
                method,
                args,
                repeatable,
                location: _,
            } = r;
            k.opt(relation);
            k.list(method);
            k.list(args);
            k.opt(repeatable);
        }
        NodeRef::RangeTableFunc(r) => {
            let pb::RangeTableFunc {
                lateral: _,
                docexpr,
                rowexpr,
                namespaces,
                columns,
                alias,
                location: _,
            } = r;
            k.opt(docexpr);
            k.opt(rowexpr);
            k.list(namespaces);
            k.list(columns);
            if let Some(a) = alias {
                k.push(NodeRef::Alias(a));
            }
        }
        NodeRef::RangeTableFuncCol(c) => {
            let pb::RangeTableFuncCol {
                colname: _,
                type_name,
                for_ordinality: _,
                is_not_null: _,
                colexpr,
                coldefexpr,
                location: _,
            } = c;
            if let Some(t) = type_name {
                k.push(NodeRef::TypeName(t));
            }
            k.opt(colexpr);
            k.opt(coldefexpr);
        }
        NodeRef::JoinExpr(j) => {
            let pb::JoinExpr {
                jointype: _,
                is_natural: _,
                larg,
                rarg,
                using_clause,
                join_using_alias,
                quals,
                alias,
                rtindex: _,
            } = j;
            k.opt(larg);
            k.opt(rarg);
            k.list(using_clause);
            for a in [join_using_alias, alias].into_iter().flatten() {
                k.push(NodeRef::Alias(a));
            }
            k.opt(quals);
        }
        NodeRef::ColumnDef(c) => {
            // Column definition lists of functions in FROM: `AS t(a int, b text)`.
            let pb::ColumnDef {
                colname: _,
                type_name,
                compression: _,
                inhcount: _,
                is_local: _,
                is_not_null: _,
                is_from_type: _,
                storage: _,
                storage_name: _,
                raw_default,
                cooked_default,
                identity: _,
                identity_sequence,
                generated: _,
                coll_clause,
                coll_oid: _,
                constraints,
                fdwoptions,
                location: _,
            } = c;
            if let Some(t) = type_name {
                k.push(NodeRef::TypeName(t));
            }
            k.opt(raw_default);
            k.opt(cooked_default);
            if let Some(r) = identity_sequence {
                k.push(NodeRef::RangeVar(r));
            }
            if let Some(c) = coll_clause.as_deref() {
                k.push(NodeRef::CollateClause(c));
            }
            k.list(constraints);
            k.list(fdwoptions);
        }
        other => return Some(other),
    }
    None
}
