//! A generic scan of a whole parse tree: every function call, operator, relation, procedural
//! block, definition option and setting name, wherever it stands.
//!
//! The classifier's walker (`walk/`) knows the shape of every node a query can contain
//! and refuses what it does not know; DDL is far larger (hundreds of node types), and its
//! expressions hide in many places (column defaults, `USING`, `CHECK`, generated columns,
//! index expressions, view, rule and policy bodies, `CREATE SCHEMA` sub-commands, partition
//! bounds, trigger conditions). Rather than list them, this module serializes the tree (the
//! pg_query protobuf types derive `serde::Serialize`) and visits every value in it, so no
//! field can be missed, now or after a parser upgrade: what is in the tree is seen.
//!
//! Nodes are recognised by their shape (the set of field names), not by the enum tag, because
//! many fields are typed directly (`InsertStmt.relation` is a `RangeVar`, `CallStmt.funccall`
//! a `FuncCall`) and serialize without the tag.

use pg_query::NodeEnum;
use pg_query::protobuf as pb;
use serde_json::{Map, Value};

/// A possibly schema-qualified name as written (the parser has already folded case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct QualName {
    /// The schema, when the name was qualified.
    pub(crate) schema: Option<String>,
    /// The object's own name.
    pub(crate) name: String,
}

impl QualName {
    /// `schema.name` or `name`, for messages.
    pub(crate) fn display(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Everything of interest found anywhere in one statement's tree.
#[derive(Debug, Clone, Default)]
pub(crate) struct Found {
    /// Function calls (including `CALL`, trigger and event-trigger functions).
    pub(crate) calls: Vec<QualName>,
    /// Names that may be functions called with field notation: `t.f` and `(t).f` call
    /// `f(t)` when `t` has no column `f` (PostgreSQL's attribute-notation calls).
    pub(crate) field_calls: Vec<String>,
    /// Operators used in expressions (`a + b`, `x = ANY (…)`, `ORDER BY … USING <`).
    pub(crate) operators: Vec<QualName>,
    /// Relations named (tables, views, sequences…), in any clause.
    pub(crate) relations: Vec<QualName>,
    /// `DO` blocks.
    pub(crate) do_blocks: usize,
    /// `CREATE FUNCTION/PROCEDURE`: the language of each, lower-cased (`sql` when omitted).
    pub(crate) function_languages: Vec<String>,
    /// Bodies of `LANGUAGE sql` functions given as strings (`AS $$ … $$`), to be checked too.
    pub(crate) sql_bodies: Vec<String>,
    /// Names of definition options (`OPTIONS (program '…')`, `WITH (…)`), lower-cased.
    pub(crate) option_names: Vec<String>,
    /// Names of settings set anywhere (`ALTER ROLE … SET x`, `CREATE FUNCTION … SET x`).
    pub(crate) settings: Vec<String>,
}

/// Scans `stmt` and everything below it.
pub(crate) fn scan(stmt: &NodeEnum) -> Found {
    let mut found = Found::default();
    // Serializing plain protobuf structs cannot fail (no maps with non-string keys, no
    // custom serializers); should it ever, the empty tree would find nothing, so fail
    // closed by recording an unresolvable call instead.
    let tree = match serde_json::to_value(stmt) {
        Ok(v) => v,
        Err(_) => {
            found.calls.push(QualName {
                schema: None,
                name: "<unreadable statement>".into(),
            });
            return found;
        }
    };
    // Iterative: deeply nested expressions must not overflow the stack.
    let mut stack = vec![&tree];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                inspect(map, &mut found);
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    found
}

/// Records what one object of the tree is, by its shape.
fn inspect(map: &Map<String, Value>, found: &mut Found) {
    let has = |k: &str| map.contains_key(k);
    if has("DoStmt") {
        found.do_blocks += 1;
    }
    if has("funcname") && has("agg_star") && has("func_variadic") {
        // FuncCall
        if let Some(name) = qual_name(&map["funcname"]) {
            found.calls.push(name);
        }
    } else if has("funcname") && has("trigname") {
        // CreateTrigStmt / CreateEventTrigStmt: the function runs on later events.
        if let Some(name) = qual_name(&map["funcname"]) {
            found.calls.push(name);
        }
    } else if has("funcname") && has("is_procedure") && has("sql_body") {
        // CreateFunctionStmt
        function_definition(map, found);
    }
    if map.len() == 2 && has("fields") && has("location") {
        // ColumnRef: `a.b` (or longer) may be a call of b(a).
        let fields = map["fields"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if fields.len() >= 2
            && let Some(last) = fields
                .last()
                .and_then(|n| n.pointer("/node/String/sval"))
                .and_then(Value::as_str)
        {
            found.field_calls.push(last.to_owned());
        }
    }
    if map.len() == 2 && has("arg") && has("indirection") {
        // A_Indirection: `(expr).b` may be a call of b(expr).
        for item in map["indirection"].as_array().into_iter().flatten() {
            if let Some(name) = item.pointer("/node/String/sval").and_then(Value::as_str) {
                found.field_calls.push(name.to_owned());
            }
        }
    }
    if has("relname") && has("inh") && has("relpersistence") {
        // RangeVar
        let name = map["relname"].as_str().unwrap_or_default();
        if !name.is_empty() {
            let schema = map["schemaname"].as_str().filter(|s| !s.is_empty());
            found.relations.push(QualName {
                schema: schema.map(str::to_owned),
                name: name.to_owned(),
            });
        }
    }
    if has("lexpr") && has("rexpr") && has("kind") && has("name") {
        // A_Expr: only the operator kinds name an operator (BETWEEN's name is a keyword).
        let kind = map["kind"]
            .as_i64()
            .and_then(|k| i32::try_from(k).ok())
            .and_then(|k| pb::AExprKind::try_from(k).ok());
        let names_operator = matches!(
            kind,
            Some(
                pb::AExprKind::AexprOp
                    | pb::AExprKind::AexprOpAny
                    | pb::AExprKind::AexprOpAll
                    | pb::AExprKind::AexprDistinct
                    | pb::AExprKind::AexprNotDistinct
                    | pb::AExprKind::AexprNullif
                    | pb::AExprKind::AexprIn
                    | pb::AExprKind::AexprLike
                    | pb::AExprKind::AexprIlike
                    | pb::AExprKind::AexprSimilar
            )
        );
        if names_operator && let Some(name) = qual_name(&map["name"]) {
            found.operators.push(name);
        }
    }
    if has("sub_link_type")
        && has("oper_name")
        && let Some(name) = qual_name(&map["oper_name"])
    {
        found.operators.push(name);
    }
    if has("sortby_dir")
        && has("use_op")
        && let Some(name) = qual_name(&map["use_op"])
    {
        found.operators.push(name);
    }
    if has("defname") && has("defaction") && has("arg") {
        // DefElem
        if let Some(name) = map["defname"].as_str() {
            found.option_names.push(name.to_ascii_lowercase());
        }
    }
    if has("is_local") && has("name") && has("args") && has("kind") {
        // VariableSetStmt
        if let Some(name) = map["name"].as_str().filter(|s| !s.is_empty()) {
            found.settings.push(name.to_ascii_lowercase());
        }
    }
}

/// Language and string body of a `CREATE FUNCTION/PROCEDURE`.
fn function_definition(map: &Map<String, Value>, found: &mut Found) {
    let mut language = "sql".to_string();
    let mut body = Vec::new();
    for opt in map["options"].as_array().into_iter().flatten() {
        let Some(def) = opt.pointer("/node/DefElem") else {
            continue;
        };
        match def["defname"].as_str() {
            Some("language") => {
                if let Some(l) = def.pointer("/arg/node/String/sval").and_then(Value::as_str) {
                    language = l.to_ascii_lowercase();
                }
            }
            Some("as") => {
                // AS 'body' or AS 'obj_file', 'link_symbol' (C functions): a list of strings.
                if let Some(items) = def
                    .pointer("/arg/node/List/items")
                    .and_then(Value::as_array)
                {
                    for item in items {
                        if let Some(s) = item.pointer("/node/String/sval").and_then(Value::as_str) {
                            body.push(s.to_owned());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if language == "sql" {
        found.sql_bodies.extend(body);
    }
    found.function_languages.push(language);
}

/// A name list (`[String, String]`) as a qualified name: the last element is the name, the
/// one before it the schema (a catalog-qualified three-part name keeps its schema part).
fn qual_name(list: &Value) -> Option<QualName> {
    let parts: Vec<&str> = list
        .as_array()?
        .iter()
        .filter_map(|n| n.pointer("/node/String/sval").and_then(Value::as_str))
        .collect();
    let (name, rest) = parts.split_last()?;
    Some(QualName {
        schema: rest.last().map(|s| (*s).to_owned()),
        name: (*name).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(sql: &str) -> Found {
        let parsed = pg_query::parse(sql, 0).expect("test SQL parses");
        let stmt = parsed.protobuf.stmts[0]
            .stmt
            .as_ref()
            .and_then(|n| n.node.clone())
            .expect("one statement");
        scan(&stmt)
    }

    fn calls(sql: &str) -> Vec<String> {
        let mut v: Vec<String> = found(sql).calls.iter().map(QualName::display).collect();
        v.sort();
        v
    }

    #[test]
    fn calls_are_found_in_every_expression_context_of_ddl() {
        let cases = [
            (
                "ALTER TABLE t ALTER COLUMN a TYPE int USING (pg_read_file('/etc/passwd'))::int",
                "pg_read_file",
            ),
            (
                "ALTER TABLE t ADD COLUMN z bigint DEFAULT setval('s', 42)",
                "setval",
            ),
            ("CREATE TABLE t (a int CHECK (f(a) > 0))", "f"),
            (
                "CREATE TABLE t (a int, b int GENERATED ALWAYS AS (g(a)) STORED)",
                "g",
            ),
            ("CREATE INDEX ON t ((h(a)))", "h"),
            ("CREATE INDEX ON t (a) WHERE i(a)", "i"),
            ("CREATE SCHEMA s CREATE VIEW v AS SELECT j()", "j"),
            (
                "CREATE RULE \"_RETURN\" AS ON SELECT TO t DO INSTEAD SELECT k()",
                "k",
            ),
            ("CREATE POLICY p ON t USING (l(a))", "l"),
            ("CREATE TABLE p1 PARTITION OF p FOR VALUES IN (m())", "m"),
            (
                "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW WHEN (n()) EXECUTE FUNCTION o()",
                "n",
            ),
            ("CREATE MATERIALIZED VIEW mv AS SELECT q()", "q"),
            ("CREATE DOMAIN d AS int CHECK (r(VALUE))", "r"),
            ("CALL pr(1)", "pr"),
            (
                "CREATE FUNCTION f2() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT u(); END",
                "u",
            ),
        ];
        for (sql, want) in cases {
            assert!(
                calls(sql).iter().any(|c| c == want),
                "{sql}: expected a call to {want}, found {:?}",
                calls(sql)
            );
        }
        assert!(
            calls("CREATE TRIGGER tr BEFORE INSERT ON t EXECUTE FUNCTION o()")
                .contains(&"o".to_string())
        );
    }

    #[test]
    fn qualified_names_keep_their_schema() {
        assert_eq!(
            calls("SELECT pg_catalog.lower('A'), ext.crosstab('x')"),
            vec!["ext.crosstab".to_string(), "pg_catalog.lower".to_string()]
        );
    }

    #[test]
    fn operators_relations_and_options_are_found() {
        let f = found(
            "SELECT * FROM s.a JOIN b ON a.x OPERATOR(myschema.===) b.y WHERE a.z = ANY (SELECT 1) ORDER BY 1 USING <",
        );
        let ops: Vec<String> = f.operators.iter().map(QualName::display).collect();
        assert!(ops.contains(&"myschema.===".to_string()), "{ops:?}");
        assert!(ops.contains(&"=".to_string()), "{ops:?}");
        assert!(ops.contains(&"<".to_string()), "{ops:?}");
        let rels: Vec<String> = f.relations.iter().map(QualName::display).collect();
        assert_eq!(rels.len(), 2, "{rels:?}");
        assert!(rels.contains(&"s.a".to_string()) && rels.contains(&"b".to_string()));

        let f = found("CREATE FOREIGN TABLE ft (a text) SERVER srv OPTIONS (program 'id')");
        assert!(f.option_names.contains(&"program".to_string()));
        let f = found("SELECT s.sneaky_row, (s).other FROM sentinel s");
        let mut fields = f.field_calls.clone();
        fields.sort();
        assert_eq!(fields, vec!["other".to_string(), "sneaky_row".to_string()]);
        let f = found("INSERT INTO coldquery.audit_log VALUES (1)");
        assert_eq!(f.relations[0].display(), "coldquery.audit_log");
    }

    #[test]
    fn function_definitions_report_language_and_sql_bodies() {
        let f = found(
            "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT pg_read_file('x') $$",
        );
        assert_eq!(f.function_languages, vec!["sql".to_string()]);
        assert_eq!(f.sql_bodies.len(), 1);
        assert!(f.sql_bodies[0].contains("pg_read_file"));
        let f = found("CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE plpgsql");
        assert_eq!(f.function_languages, vec!["plpgsql".to_string()]);
        assert!(f.sql_bodies.is_empty());
        assert_eq!(found("DO $$ BEGIN END $$").do_blocks, 1);
        let f = found("ALTER ROLE r SET standard_conforming_strings = off");
        assert_eq!(f.settings, vec!["standard_conforming_strings".to_string()]);
    }
}
