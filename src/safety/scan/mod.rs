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
//!
//! The serializer ([`stream`]) visits the tree as it is serialized, without building it as a
//! JSON value first (that took a seventh of a point read's instructions); only the few fields
//! the rules read are captured as values. Findings are reported in the order of a depth-first
//! visit of the serialized tree, children in descending key and index order, which is what
//! the by-value scan this replaced reported (and so which refusal a caller sees first).

mod stream;

#[cfg(test)]
mod by_value;

use pg_query::NodeEnum;
use pg_query::protobuf as pb;
use serde_json::Value;

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
#[derive(Debug, Clone, Default, PartialEq)]
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
    match stream::findings(stmt) {
        Ok((entries, do_blocks)) => collect(entries, do_blocks),
        // Serializing plain protobuf structs cannot fail (no maps, no custom serializers);
        // should it ever, the tree would not have been seen, so fail closed by recording an
        // unresolvable call instead.
        Err(_) => Found {
            calls: vec![QualName {
                schema: None,
                name: "<unreadable statement>".into(),
            }],
            ..Found::default()
        },
    }
}

/// One thing found in the tree, before it is sorted into [`Found`].
#[derive(Debug)]
enum Entry {
    Call(QualName),
    FieldCall(String),
    Operator(QualName),
    Relation(QualName),
    Language(String),
    SqlBody(String),
    OptionName(String),
    Setting(String),
}

/// Sorts entries, already in visiting order, into their lists.
fn collect(entries: impl IntoIterator<Item = Entry>, do_blocks: usize) -> Found {
    let mut found = Found {
        do_blocks,
        ..Found::default()
    };
    for entry in entries {
        match entry {
            Entry::Call(n) => found.calls.push(n),
            Entry::FieldCall(n) => found.field_calls.push(n),
            Entry::Operator(n) => found.operators.push(n),
            Entry::Relation(n) => found.relations.push(n),
            Entry::Language(l) => found.function_languages.push(l),
            Entry::SqlBody(b) => found.sql_bodies.push(b),
            Entry::OptionName(n) => found.option_names.push(n),
            Entry::Setting(n) => found.settings.push(n),
        }
    }
    found
}

/// The field names that the shape rules below test for, one bit each.
mod key {
    pub(super) const FUNCNAME: u32 = 1 << 0;
    pub(super) const AGG_STAR: u32 = 1 << 1;
    pub(super) const FUNC_VARIADIC: u32 = 1 << 2;
    pub(super) const TRIGNAME: u32 = 1 << 3;
    pub(super) const IS_PROCEDURE: u32 = 1 << 4;
    pub(super) const SQL_BODY: u32 = 1 << 5;
    pub(super) const FIELDS: u32 = 1 << 6;
    pub(super) const LOCATION: u32 = 1 << 7;
    pub(super) const ARG: u32 = 1 << 8;
    pub(super) const INDIRECTION: u32 = 1 << 9;
    pub(super) const RELNAME: u32 = 1 << 10;
    pub(super) const INH: u32 = 1 << 11;
    pub(super) const RELPERSISTENCE: u32 = 1 << 12;
    pub(super) const SCHEMANAME: u32 = 1 << 13;
    pub(super) const LEXPR: u32 = 1 << 14;
    pub(super) const REXPR: u32 = 1 << 15;
    pub(super) const KIND: u32 = 1 << 16;
    pub(super) const NAME: u32 = 1 << 17;
    pub(super) const SUB_LINK_TYPE: u32 = 1 << 18;
    pub(super) const OPER_NAME: u32 = 1 << 19;
    pub(super) const SORTBY_DIR: u32 = 1 << 20;
    pub(super) const USE_OP: u32 = 1 << 21;
    pub(super) const DEFNAME: u32 = 1 << 22;
    pub(super) const DEFACTION: u32 = 1 << 23;
    pub(super) const IS_LOCAL: u32 = 1 << 24;
    pub(super) const ARGS: u32 = 1 << 25;
    pub(super) const OPTIONS: u32 = 1 << 26;

    /// The fields whose values the rules read (the others are only tested for presence).
    pub(super) const CAPTURED: u32 = FUNCNAME
        | FIELDS
        | INDIRECTION
        | RELNAME
        | SCHEMANAME
        | KIND
        | NAME
        | OPER_NAME
        | USE_OP
        | DEFNAME
        | OPTIONS;

    /// The bit of a field name, 0 for the names no rule tests.
    pub(super) fn bit(name: &str) -> u32 {
        match name {
            "funcname" => FUNCNAME,
            "agg_star" => AGG_STAR,
            "func_variadic" => FUNC_VARIADIC,
            "trigname" => TRIGNAME,
            "is_procedure" => IS_PROCEDURE,
            "sql_body" => SQL_BODY,
            "fields" => FIELDS,
            "location" => LOCATION,
            "arg" => ARG,
            "indirection" => INDIRECTION,
            "relname" => RELNAME,
            "inh" => INH,
            "relpersistence" => RELPERSISTENCE,
            "schemaname" => SCHEMANAME,
            "lexpr" => LEXPR,
            "rexpr" => REXPR,
            "kind" => KIND,
            "name" => NAME,
            "sub_link_type" => SUB_LINK_TYPE,
            "oper_name" => OPER_NAME,
            "sortby_dir" => SORTBY_DIR,
            "use_op" => USE_OP,
            "defname" => DEFNAME,
            "defaction" => DEFACTION,
            "is_local" => IS_LOCAL,
            "args" => ARGS,
            "options" => OPTIONS,
            _ => 0,
        }
    }
}

/// One object of the tree as the rules see it: which tested fields it has, how many fields
/// in all, and the values of the [`key::CAPTURED`] fields it has.
struct Shape<'a> {
    keys: u32,
    len: usize,
    values: &'a [(u32, Value)],
}

impl Shape<'_> {
    fn has(&self, keys: u32) -> bool {
        self.keys & keys == keys
    }

    /// A captured field's value (`Null` when absent: every rule tests presence first).
    fn get(&self, key: u32) -> &Value {
        static NULL: Value = Value::Null;
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(&NULL, |(_, v)| v)
    }
}

/// Records what one object of the tree is, by its shape.
fn inspect(shape: &Shape<'_>, out: &mut Vec<Entry>) {
    use key::*;
    if shape.has(FUNCNAME | AGG_STAR | FUNC_VARIADIC) {
        // FuncCall
        if let Some(name) = qual_name(shape.get(FUNCNAME)) {
            out.push(Entry::Call(name));
        }
    } else if shape.has(FUNCNAME | TRIGNAME) {
        // CreateTrigStmt / CreateEventTrigStmt: the function runs on later events.
        if let Some(name) = qual_name(shape.get(FUNCNAME)) {
            out.push(Entry::Call(name));
        }
    } else if shape.has(FUNCNAME | IS_PROCEDURE | SQL_BODY) {
        // CreateFunctionStmt
        function_definition(shape.get(OPTIONS), out);
    }
    if shape.len == 2 && shape.has(FIELDS | LOCATION) {
        // ColumnRef: `a.b` (or longer) may be a call of b(a).
        let fields = shape
            .get(FIELDS)
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if fields.len() >= 2
            && let Some(last) = fields.last().and_then(string_node)
        {
            out.push(Entry::FieldCall(last.to_owned()));
        }
    }
    if shape.len == 2 && shape.has(ARG | INDIRECTION) {
        // A_Indirection: `(expr).b` may be a call of b(expr).
        for item in shape.get(INDIRECTION).as_array().into_iter().flatten() {
            if let Some(name) = string_node(item) {
                out.push(Entry::FieldCall(name.to_owned()));
            }
        }
    }
    if shape.has(RELNAME | INH | RELPERSISTENCE) {
        // RangeVar
        let name = shape.get(RELNAME).as_str().unwrap_or_default();
        if !name.is_empty() {
            let schema = shape.get(SCHEMANAME).as_str().filter(|s| !s.is_empty());
            out.push(Entry::Relation(QualName {
                schema: schema.map(str::to_owned),
                name: name.to_owned(),
            }));
        }
    }
    if shape.has(LEXPR | REXPR | KIND | NAME) {
        // A_Expr: only the operator kinds name an operator (BETWEEN's name is a keyword).
        let kind = shape
            .get(KIND)
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
        if names_operator && let Some(name) = qual_name(shape.get(NAME)) {
            out.push(Entry::Operator(name));
        }
    }
    if shape.has(SUB_LINK_TYPE | OPER_NAME)
        && let Some(name) = qual_name(shape.get(OPER_NAME))
    {
        out.push(Entry::Operator(name));
    }
    if shape.has(SORTBY_DIR | USE_OP)
        && let Some(name) = qual_name(shape.get(USE_OP))
    {
        out.push(Entry::Operator(name));
    }
    if shape.has(DEFNAME | DEFACTION | ARG) {
        // DefElem
        if let Some(name) = shape.get(DEFNAME).as_str() {
            out.push(Entry::OptionName(name.to_ascii_lowercase()));
        }
    }
    if shape.has(IS_LOCAL | NAME | ARGS | KIND) {
        // VariableSetStmt
        if let Some(name) = shape.get(NAME).as_str().filter(|s| !s.is_empty()) {
            out.push(Entry::Setting(name.to_ascii_lowercase()));
        }
    }
}

/// Language and string body of a `CREATE FUNCTION/PROCEDURE`, from its options.
fn function_definition(options: &Value, out: &mut Vec<Entry>) {
    let mut language = "sql".to_string();
    let mut body = Vec::new();
    for opt in options.as_array().into_iter().flatten() {
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
                        if let Some(s) = string_node(item) {
                            body.push(s.to_owned());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if language == "sql" {
        out.extend(body.into_iter().map(Entry::SqlBody));
    }
    out.push(Entry::Language(language));
}

/// The text of a `String` node (`{"node": {"String": {"sval": …}}}`). By key, not with
/// `Value::pointer`, which splits its path and unescapes each part on every call.
fn string_node(v: &Value) -> Option<&str> {
    v.get("node")?.get("String")?.get("sval")?.as_str()
}

/// A name list (`[String, String]`) as a qualified name: the last element is the name, the
/// one before it the schema (a catalog-qualified three-part name keeps its schema part).
fn qual_name(list: &Value) -> Option<QualName> {
    let parts: Vec<&str> = list.as_array()?.iter().filter_map(string_node).collect();
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
