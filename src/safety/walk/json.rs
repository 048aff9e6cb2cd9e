//! Walker rules for SQL/JSON: constructors, aggregates, JSON_TABLE, the query functions
//! (JSON_VALUE, JSON_QUERY, JSON_EXISTS) and their behaviours. They record no facts.

use pg_query::NodeRef;
use pg_query::protobuf as pb;

use super::Children;

/// Queues the children of one node of this family (recording facts where it says so);
/// returns any other node untouched, for the next family.
pub(super) fn visit<'a>(node: NodeRef<'a>, k: &mut Children<'a, '_>) -> Option<NodeRef<'a>> {
    match node {
        NodeRef::JsonValueExpr(j) => {
            let pb::JsonValueExpr {
                raw_expr,
                formatted_expr,
                format,
            } = j;
            k.opt(raw_expr);
            k.opt(formatted_expr);
            if let Some(f) = format {
                k.push(NodeRef::JsonFormat(f));
            }
        }
        NodeRef::JsonOutput(j) => {
            let pb::JsonOutput {
                type_name,
                returning,
            } = j;
            if let Some(t) = type_name {
                k.push(NodeRef::TypeName(t));
            }
            if let Some(r) = returning {
                k.push(NodeRef::JsonReturning(r));
            }
        }
        NodeRef::JsonReturning(j) => {
            let pb::JsonReturning {
                format,
                typid: _,
                typmod: _,
            } = j;
            if let Some(f) = format {
                k.push(NodeRef::JsonFormat(f));
            }
        }
        NodeRef::JsonKeyValue(j) => {
            let pb::JsonKeyValue { key, value } = j;
            k.opt(key);
            if let Some(v) = value.as_deref() {
                k.push(NodeRef::JsonValueExpr(v));
            }
        }
        NodeRef::JsonObjectConstructor(j) => {
            let pb::JsonObjectConstructor {
                exprs,
                output,
                absent_on_null: _,
                unique: _,
                location: _,
            } = j;
            k.list(exprs);
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
        }
        NodeRef::JsonArrayConstructor(j) => {
            let pb::JsonArrayConstructor {
                exprs,
                output,
                absent_on_null: _,
                location: _,
            } = j;
            k.list(exprs);
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
        }
        NodeRef::JsonArrayQueryConstructor(j) => {
            let pb::JsonArrayQueryConstructor {
                query,
                output,
                format,
                absent_on_null: _,
                location: _,
            } = j;
            k.opt(query);
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
            if let Some(f) = format {
                k.push(NodeRef::JsonFormat(f));
            }
        }
        NodeRef::JsonAggConstructor(j) => {
            let pb::JsonAggConstructor {
                output,
                agg_filter,
                agg_order,
                over,
                location: _,
            } = j;
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
            k.opt(agg_filter);
            k.list(agg_order);
            if let Some(w) = over.as_deref() {
                k.push(NodeRef::WindowDef(w));
            }
        }
        NodeRef::JsonObjectAgg(j) => {
            let pb::JsonObjectAgg {
                constructor,
                arg,
                absent_on_null: _,
                unique: _,
            } = j;
            if let Some(c) = constructor.as_deref() {
                k.push(NodeRef::JsonAggConstructor(c));
            }
            if let Some(a) = arg.as_deref() {
                k.push(NodeRef::JsonKeyValue(a));
            }
        }
        NodeRef::JsonArrayAgg(j) => {
            let pb::JsonArrayAgg {
                constructor,
                arg,
                absent_on_null: _,
            } = j;
            if let Some(c) = constructor.as_deref() {
                k.push(NodeRef::JsonAggConstructor(c));
            }
            if let Some(a) = arg.as_deref() {
                k.push(NodeRef::JsonValueExpr(a));
            }
        }
        NodeRef::JsonParseExpr(j) => {
            let pb::JsonParseExpr {
                expr,
                output,
                unique_keys: _,
                location: _,
            } = j;
            if let Some(e) = expr.as_deref() {
                k.push(NodeRef::JsonValueExpr(e));
            }
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
        }
        NodeRef::JsonScalarExpr(j) => {
            let pb::JsonScalarExpr {
                expr,
                output,
                location: _,
            } = j;
            k.opt(expr);
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
        }
        NodeRef::JsonSerializeExpr(j) => {
            let pb::JsonSerializeExpr {
                expr,
                output,
                location: _,
            } = j;
            if let Some(e) = expr.as_deref() {
                k.push(NodeRef::JsonValueExpr(e));
            }
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
        }
        NodeRef::JsonIsPredicate(j) => {
            let pb::JsonIsPredicate {
                expr,
                format,
                item_type: _,
                unique_keys: _,
                location: _,
            } = j;
            k.opt(expr);
            if let Some(f) = format {
                k.push(NodeRef::JsonFormat(f));
            }
        }
        NodeRef::JsonFuncExpr(j) => {
            let pb::JsonFuncExpr {
                op: _,
                column_name: _,
                context_item,
                pathspec,
                passing,
                output,
                on_empty,
                on_error,
                wrapper: _,
                quotes: _,
                location: _,
            } = j;
            if let Some(c) = context_item.as_deref() {
                k.push(NodeRef::JsonValueExpr(c));
            }
            k.opt(pathspec);
            k.list(passing);
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
            for b in [on_empty, on_error].into_iter().flatten() {
                k.push(NodeRef::JsonBehavior(b));
            }
        }
        NodeRef::JsonArgument(j) => {
            let pb::JsonArgument { val, name: _ } = j;
            if let Some(v) = val.as_deref() {
                k.push(NodeRef::JsonValueExpr(v));
            }
        }
        NodeRef::JsonBehavior(j) => {
            let pb::JsonBehavior {
                btype: _,
                expr,
                coerce: _,
                location: _,
            } = j;
            k.opt(expr);
        }
        NodeRef::JsonTable(j) => {
            let pb::JsonTable {
                context_item,
                pathspec,
                passing,
                columns,
                on_error,
                alias,
                lateral: _,
                location: _,
            } = j;
            if let Some(c) = context_item.as_deref() {
                k.push(NodeRef::JsonValueExpr(c));
            }
            if let Some(p) = pathspec.as_deref() {
                k.push(NodeRef::JsonTablePathSpec(p));
            }
            k.list(passing);
            k.list(columns);
            if let Some(b) = on_error.as_deref() {
                k.push(NodeRef::JsonBehavior(b));
            }
            if let Some(a) = alias {
                k.push(NodeRef::Alias(a));
            }
        }
        NodeRef::JsonTablePathSpec(j) => {
            let pb::JsonTablePathSpec {
                string,
                name: _,
                name_location: _,
                location: _,
            } = j;
            k.opt(string);
        }
        NodeRef::JsonTableColumn(j) => {
            let pb::JsonTableColumn {
                coltype: _,
                name: _,
                type_name,
                pathspec,
                format,
                wrapper: _,
                quotes: _,
                columns,
                on_empty,
                on_error,
                location: _,
            } = j;
            if let Some(t) = type_name {
                k.push(NodeRef::TypeName(t));
            }
            if let Some(p) = pathspec.as_deref() {
                k.push(NodeRef::JsonTablePathSpec(p));
            }
            if let Some(f) = format {
                k.push(NodeRef::JsonFormat(f));
            }
            k.list(columns);
            for b in [on_empty, on_error].into_iter().flatten() {
                k.push(NodeRef::JsonBehavior(b));
            }
        }
        other => return Some(other),
    }
    None
}
