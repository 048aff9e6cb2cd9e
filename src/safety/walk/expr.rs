//! Walker rules for expressions: function calls (each recorded by name, for the denylist),
//! operators, column references, subscripts, casts, type names, sublinks, CASE, XML and the rest.

use pg_query::NodeRef;
use pg_query::protobuf as pb;

use super::{Children, Facts, last_name};

/// Queues the children of one node of this family (recording facts where it says so);
/// returns any other node untouched, for the next family.
pub(super) fn visit<'a>(
    node: NodeRef<'a>,
    k: &mut Children<'a, '_>,
    facts: &mut Facts,
) -> Option<NodeRef<'a>> {
    match node {
        NodeRef::FuncCall(f) => {
            let pb::FuncCall {
                funcname,
                args,
                agg_order,
                agg_filter,
                over,
                agg_within_group: _,
                agg_star: _,
                agg_distinct: _,
                func_variadic: _,
                funcformat: _,
                location: _,
            } = f;
            if let Some(name) = last_name(funcname) {
                facts.functions.push(name.to_lowercase());
            }
            k.list(funcname);
            k.list(args);
            k.list(agg_order);
            k.opt(agg_filter);
            if let Some(w) = over.as_deref() {
                k.push(NodeRef::WindowDef(w));
            }
        }
        NodeRef::NamedArgExpr(n) => {
            let pb::NamedArgExpr {
                xpr,
                arg,
                name: _,
                argnumber: _,
                location: _,
            } = n;
            k.opt(xpr);
            k.opt(arg);
        }
        NodeRef::AExpr(e) => {
            let pb::AExpr {
                kind: _,
                name,
                lexpr,
                rexpr,
                rexpr_list_start: _,
                rexpr_list_end: _,
                location: _,
            } = e;
            k.list(name);
            k.opt(lexpr);
            k.opt(rexpr);
        }
        NodeRef::ColumnRef(c) => {
            // Attribute notation (`x.f` meaning `f(x)`) only resolves functions whose single
            // argument is a composite type; none of the denylisted functions take one, so
            // column references are not treated as calls.
            let pb::ColumnRef {
                fields,
                location: _,
            } = c;
            k.list(fields);
        }
        NodeRef::AIndices(i) => {
            let pb::AIndices {
                is_slice: _,
                lidx,
                uidx,
            } = i;
            k.opt(lidx);
            k.opt(uidx);
        }
        NodeRef::AIndirection(i) => {
            let pb::AIndirection { arg, indirection } = i;
            k.opt(arg);
            k.list(indirection);
        }
        NodeRef::AArrayExpr(a) => {
            let pb::AArrayExpr {
                elements,
                list_start: _,
                list_end: _,
                location: _,
            } = a;
            k.list(elements);
        }
        NodeRef::TypeCast(t) => {
            let pb::TypeCast {
                arg,
                type_name,
                location: _,
            } = t;
            k.opt(arg);
            if let Some(t) = type_name {
                k.push(NodeRef::TypeName(t));
            }
        }
        NodeRef::TypeName(t) => {
            let pb::TypeName {
                names,
                type_oid: _,
                setof: _,
                pct_type: _,
                typmods,
                typemod: _,
                array_bounds,
                location: _,
            } = t;
            k.list(names);
            k.list(typmods);
            k.list(array_bounds);
        }
        NodeRef::CollateClause(c) => {
            let pb::CollateClause {
                arg,
                collname,
                location: _,
            } = c;
            k.opt(arg);
            k.list(collname);
        }
        NodeRef::SubLink(s) => {
            let pb::SubLink {
                xpr,
                sub_link_type: _,
                sub_link_id: _,
                testexpr,
                oper_name,
                subselect,
                location: _,
            } = s;
            k.opt(xpr);
            k.opt(testexpr);
            k.list(oper_name);
            k.opt(subselect);
        }
        NodeRef::BoolExpr(b) => {
            let pb::BoolExpr {
                xpr,
                boolop: _,
                args,
                location: _,
            } = b;
            k.opt(xpr);
            k.list(args);
        }
        NodeRef::NullTest(n) => {
            let pb::NullTest {
                xpr,
                arg,
                nulltesttype: _,
                argisrow: _,
                location: _,
            } = n;
            k.opt(xpr);
            k.opt(arg);
        }
        NodeRef::BooleanTest(b) => {
            let pb::BooleanTest {
                xpr,
                arg,
                booltesttype: _,
                location: _,
            } = b;
            k.opt(xpr);
            k.opt(arg);
        }
        NodeRef::CaseExpr(c) => {
            let pb::CaseExpr {
                xpr,
                casetype: _,
                casecollid: _,
                arg,
                args,
                defresult,
                location: _,
            } = c;
            k.opt(xpr);
            k.opt(arg);
            k.list(args);
            k.opt(defresult);
        }
        NodeRef::CaseWhen(c) => {
            let pb::CaseWhen {
                xpr,
                expr,
                result,
                location: _,
            } = c;
            k.opt(xpr);
            k.opt(expr);
            k.opt(result);
        }
        NodeRef::CoalesceExpr(c) => {
            let pb::CoalesceExpr {
                xpr,
                coalescetype: _,
                coalescecollid: _,
                args,
                location: _,
            } = c;
            k.opt(xpr);
            k.list(args);
        }
        NodeRef::MinMaxExpr(m) => {
            let pb::MinMaxExpr {
                xpr,
                minmaxtype: _,
                minmaxcollid: _,
                inputcollid: _,
                op: _,
                args,
                location: _,
            } = m;
            k.opt(xpr);
            k.list(args);
        }
        NodeRef::RowExpr(r) => {
            let pb::RowExpr {
                xpr,
                args,
                row_typeid: _,
                row_format: _,
                colnames,
                location: _,
            } = r;
            k.opt(xpr);
            k.list(args);
            k.list(colnames);
        }
        NodeRef::SqlvalueFunction(s) => {
            let pb::SqlValueFunction {
                xpr,
                op: _,
                r#type: _,
                typmod: _,
                location: _,
            } = s;
            k.opt(xpr);
        }
        NodeRef::SetToDefault(s) => {
            let pb::SetToDefault {
                xpr,
                type_id: _,
                type_mod: _,
                collation: _,
                location: _,
            } = s;
            k.opt(xpr);
        }
        NodeRef::CurrentOfExpr(c) => {
            let pb::CurrentOfExpr {
                xpr,
                cvarno: _,
                cursor_name: _,
                cursor_param: _,
            } = c;
            k.opt(xpr);
        }
        NodeRef::MergeSupportFunc(m) => {
            let pb::MergeSupportFunc {
                xpr,
                msftype: _,
                msfcollid: _,
                location: _,
            } = m;
            k.opt(xpr);
        }
        NodeRef::GroupingFunc(g) => {
            let pb::GroupingFunc {
                xpr,
                args,
                refs,
                agglevelsup: _,
                location: _,
            } = g;
            k.opt(xpr);
            k.list(args);
            k.list(refs);
        }
        NodeRef::XmlExpr(x) => {
            let pb::XmlExpr {
                xpr,
                op: _,
                name: _,
                named_args,
                arg_names,
                args,
                xmloption: _,
                indent: _,
                r#type: _,
                typmod: _,
                location: _,
            } = x;
            k.opt(xpr);
            k.list(named_args);
            k.list(arg_names);
            k.list(args);
        }
        NodeRef::XmlSerialize(x) => {
            let pb::XmlSerialize {
                xmloption: _,
                expr,
                type_name,
                indent: _,
                location: _,
            } = x;
            k.opt(expr);
            if let Some(t) = type_name {
                k.push(NodeRef::TypeName(t));
            }
        }
        other => return Some(other),
    }
    None
}
