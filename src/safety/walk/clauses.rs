//! Walker rules for clauses: INTO (recorded), WITH and its CTEs, FOR UPDATE/SHARE (recorded),
//! ON CONFLICT, RETURNING, MERGE WHEN, target lists, ORDER BY, windows, grouping sets, options.

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
        NodeRef::IntoClause(c) => {
            facts.into = true;
            let pb::IntoClause {
                rel,
                col_names,
                access_method: _,
                options,
                on_commit: _,
                table_space_name: _,
                view_query,
                skip_data: _,
            } = c;
            if let Some(r) = rel {
                k.push(NodeRef::RangeVar(r));
            }
            k.list(col_names);
            k.list(options);
            if let Some(q) = view_query.as_deref() {
                k.push(NodeRef::Query(q));
            }
        }
        NodeRef::WithClause(w) => {
            let pb::WithClause {
                ctes,
                recursive: _,
                location: _,
            } = w;
            k.list(ctes);
        }
        NodeRef::CommonTableExpr(c) => {
            let pb::CommonTableExpr {
                ctename: _,
                aliascolnames,
                ctematerialized: _,
                ctequery,
                search_clause,
                cycle_clause,
                location: _,
                cterecursive: _,
                cterefcount: _,
                ctecolnames,
                ctecoltypes,
                ctecoltypmods,
                ctecolcollations,
            } = c;
            k.list(aliascolnames);
            k.opt(ctequery);
            if let Some(s) = search_clause {
                k.push(NodeRef::CtesearchClause(s));
            }
            if let Some(c) = cycle_clause.as_deref() {
                k.push(NodeRef::CtecycleClause(c));
            }
            k.list(ctecolnames);
            k.list(ctecoltypes);
            k.list(ctecoltypmods);
            k.list(ctecolcollations);
        }
        NodeRef::CtesearchClause(c) => {
            let pb::CteSearchClause {
                search_col_list,
                search_breadth_first: _,
                search_seq_column: _,
                location: _,
            } = c;
            k.list(search_col_list);
        }
        NodeRef::CtecycleClause(c) => {
            let pb::CteCycleClause {
                cycle_col_list,
                cycle_mark_column: _,
                cycle_mark_value,
                cycle_mark_default,
                cycle_path_column: _,
                location: _,
                cycle_mark_type: _,
                cycle_mark_typmod: _,
                cycle_mark_collation: _,
                cycle_mark_neop: _,
            } = c;
            k.list(cycle_col_list);
            k.opt(cycle_mark_value);
            k.opt(cycle_mark_default);
        }
        NodeRef::LockingClause(c) => {
            facts.locking = true;
            let pb::LockingClause {
                locked_rels,
                strength: _,
                wait_policy: _,
            } = c;
            k.list(locked_rels);
        }
        NodeRef::OnConflictClause(c) => {
            let pb::OnConflictClause {
                action: _,
                infer,
                target_list,
                where_clause,
                location: _,
            } = c;
            if let Some(i) = infer.as_deref() {
                k.push(NodeRef::InferClause(i));
            }
            k.list(target_list);
            k.opt(where_clause);
        }
        NodeRef::InferClause(c) => {
            let pb::InferClause {
                index_elems,
                where_clause,
                conname: _,
                location: _,
            } = c;
            k.list(index_elems);
            k.opt(where_clause);
        }
        NodeRef::IndexElem(e) => {
            let pb::IndexElem {
                name: _,
                expr,
                indexcolname: _,
                collation,
                opclass,
                opclassopts,
                ordering: _,
                nulls_ordering: _,
            } = e;
            k.opt(expr);
            k.list(collation);
            k.list(opclass);
            k.list(opclassopts);
        }
        NodeRef::ReturningClause(r) => {
            let pb::ReturningClause { options, exprs } = r;
            k.list(options);
            k.list(exprs);
        }
        NodeRef::MergeWhenClause(m) => {
            let pb::MergeWhenClause {
                match_kind: _,
                command_type: _,
                r#override: _,
                condition,
                target_list,
                values,
            } = m;
            k.opt(condition);
            k.list(target_list);
            k.list(values);
        }
        NodeRef::DefElem(d) => {
            let pb::DefElem {
                defnamespace: _,
                defname: _,
                arg,
                defaction: _,
                location: _,
                arg_location: _,
            } = d;
            k.opt(arg);
        }
        NodeRef::ResTarget(r) => {
            let pb::ResTarget {
                name: _,
                indirection,
                val,
                location: _,
            } = r;
            k.list(indirection);
            k.opt(val);
        }
        NodeRef::MultiAssignRef(m) => {
            let pb::MultiAssignRef {
                source,
                colno: _,
                ncolumns: _,
            } = m;
            k.opt(source);
        }
        NodeRef::SortBy(s) => {
            let pb::SortBy {
                node,
                sortby_dir: _,
                sortby_nulls: _,
                use_op,
                location: _,
            } = s;
            k.opt(node);
            k.list(use_op);
        }
        NodeRef::WindowDef(w) => {
            let pb::WindowDef {
                name: _,
                refname: _,
                partition_clause,
                order_clause,
                frame_options: _,
                start_offset,
                end_offset,
                location: _,
            } = w;
            k.list(partition_clause);
            k.list(order_clause);
            k.opt(start_offset);
            k.opt(end_offset);
        }
        NodeRef::GroupingSet(g) => {
            let pb::GroupingSet {
                kind: _,
                content,
                location: _,
            } = g;
            k.list(content);
        }
        other => return Some(other),
    }
    None
}
