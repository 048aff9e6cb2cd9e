//! The toolkit of the catalog-reading tools (pg_schema, pg_admin, pg_monitor, completions,
//! resources): qualified-name parsing, catalog queries turned into JSON objects under a byte
//! budget ([`Catalog`]), the read-only scope they run in (which picks a [`crate::db::run`]
//! shape: a session's savepoint or a pooled read), and relation lookup by name.

use serde_json::{Map, Value, json};

use crate::caller::Caller;
use crate::db::executor::{Limits, RowMode, StatementRef, run_statement};
use crate::db::run;
use crate::error::ToolError;
use crate::safety::ident::{MAX_IDENT_BYTES, is_plain_word, quote_ident};
use crate::state::AppState;

/// Rows any one catalog query may return (a table has at most 1600 columns).
const CATALOG_ROWS: usize = 2000;

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

/// One part of a qualified name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    text: String,
    quoted: bool,
}

impl Part {
    /// What PostgreSQL would make of it: unquoted names fold to lower case.
    fn folded(&self) -> String {
        if self.quoted {
            self.text.clone()
        } else {
            self.text.to_ascii_lowercase()
        }
    }
}

/// A validated `name` or `schema.name`, each part either a plain identifier (letters, digits,
/// `_`, `$`) or a double-quoted name (`"Order"`, `""` for a quote inside). Nothing else gets
/// through, so `x; DROP TABLE y` is refused before any SQL is built.
///
/// Unquoted parts follow PostgreSQL's rule (folded to lower case); when nothing matches that,
/// lookups also try the exact spelling, so `Order` finds a table created as `"Order"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QualifiedName {
    schema: Option<Part>,
    name: Part,
}

impl QualifiedName {
    /// Parse `raw`; `what` names the argument in the error message.
    pub(crate) fn parse(what: &str, raw: &str) -> Result<QualifiedName, ToolError> {
        let bad = |why: &str| {
            ToolError::InvalidInput(format!(
                "invalid {what} {:?}: {why}. Use name or schema.name with letters, digits, _ and $ \
                 (unquoted names are folded to lower case), or double-quote a name with other \
                 characters or capitals, e.g. app.orders or app.\"Order\"",
                raw.chars().take(60).collect::<String>()
            ))
        };
        let mut parts: Vec<Part> = Vec::new();
        let mut chars = raw.trim().chars().peekable();
        loop {
            let part = match chars.peek() {
                None => return Err(bad("a name is missing")),
                Some('"') => {
                    chars.next();
                    let mut text = String::new();
                    loop {
                        match chars.next() {
                            None => return Err(bad("a double quote is not closed")),
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                text.push('"');
                            }
                            Some('"') => break,
                            Some('\0') => return Err(bad("NUL is not allowed")),
                            Some(c) => text.push(c),
                        }
                    }
                    if text.is_empty() {
                        return Err(bad("\"\" is not a name"));
                    }
                    Part { text, quoted: true }
                }
                Some(_) => {
                    let mut text = String::new();
                    while let Some(&c) = chars.peek() {
                        if c == '.' {
                            break;
                        }
                        text.push(c);
                        chars.next();
                    }
                    // The length has a message of its own, below.
                    if !is_plain_word(&text, &[]) {
                        return Err(bad("it is not a plain identifier"));
                    }
                    Part {
                        text,
                        quoted: false,
                    }
                }
            };
            if part.text.len() > MAX_IDENT_BYTES {
                return Err(bad("a name is longer than 63 bytes"));
            }
            parts.push(part);
            match chars.next() {
                None => break,
                Some('.') => continue,
                Some(_) => return Err(bad("unexpected text after a quoted name")),
            }
        }
        match parts.len() {
            1 => Ok(QualifiedName {
                schema: None,
                name: parts.remove(0),
            }),
            2 => {
                let name = parts.remove(1);
                Ok(QualifiedName {
                    schema: Some(parts.remove(0)),
                    name,
                })
            }
            _ => Err(bad("use at most schema.name (no database part)")),
        }
    }

    /// Combine with a separate `schema` argument (which must agree with a qualified name).
    pub(crate) fn in_schema(mut self, schema: Option<&str>) -> Result<QualifiedName, ToolError> {
        let Some(raw) = schema else { return Ok(self) };
        let s = QualifiedName::parse("schema", raw)?;
        if s.schema.is_some() {
            return Err(ToolError::InvalidInput(
                "schema takes a schema name only, e.g. app".into(),
            ));
        }
        match &self.schema {
            Some(own) if own.folded() != s.name.folded() => Err(ToolError::InvalidInput(format!(
                "name is qualified with schema {:?} but schema says {:?}; pass one of them",
                own.text, s.name.text
            ))),
            _ => {
                self.schema = Some(s.name);
                Ok(self)
            }
        }
    }

    fn render(&self, exact: bool) -> String {
        let one = |p: &Part| quote_ident(&if exact { p.text.clone() } else { p.folded() });
        match &self.schema {
            Some(s) => format!("{}.{}", one(s), one(&self.name)),
            None => one(&self.name),
        }
    }

    /// Texts for `to_regclass`: PostgreSQL's reading first, then the exact spelling.
    fn regclass_candidates(&self) -> Vec<String> {
        let folded = self.render(false);
        let exact = self.render(true);
        if exact == folded {
            vec![folded]
        } else {
            vec![folded, exact]
        }
    }

    /// Candidate schema names (folded and exact), or `None` for "by search_path".
    pub(crate) fn schema_candidates(&self) -> Option<Vec<String>> {
        self.schema.as_ref().map(candidates)
    }

    /// Candidate object names (folded and exact).
    pub(crate) fn name_candidates(&self) -> Vec<String> {
        candidates(&self.name)
    }

    /// Whether the name has a schema part (or was given one by [`QualifiedName::in_schema`]).
    pub(crate) fn has_schema(&self) -> bool {
        self.schema.is_some()
    }

    /// The name as given, for messages.
    pub(crate) fn shown(&self) -> String {
        self.render(true)
    }
}

fn candidates(p: &Part) -> Vec<String> {
    let mut v = vec![p.folded()];
    if p.text != v[0] {
        v.push(p.text.clone());
    }
    v
}

/// A schema filter argument as candidate names (folded and exact).
pub(crate) fn schema_filter(raw: Option<&str>) -> Result<Value, ToolError> {
    match raw {
        None => Ok(Value::Null),
        Some(raw) => {
            let q = QualifiedName::parse("schema", raw)?;
            if q.schema.is_some() {
                return Err(ToolError::InvalidInput(
                    "schema takes a schema name only, e.g. app".into(),
                ));
            }
            Ok(json!(q.name_candidates()))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Catalog reads
// ---------------------------------------------------------------------------------------

/// Runs our own constant catalog queries and turns their rows into JSON objects, under one
/// byte budget for the whole call so that a result (twice: structured and text) stays well
/// under the 1 MiB message limit.
pub(crate) struct Catalog {
    limits: Limits,
    left: usize,
    /// A query's rows were cut by the budget.
    pub(crate) truncated: bool,
}

impl Catalog {
    /// A reader with the call's limits; the budget is the server's result-byte cap.
    pub(crate) fn new(limits: &Limits) -> Catalog {
        Catalog {
            limits: *limits,
            left: limits.max_bytes,
            truncated: false,
        }
    }

    /// All rows of `sql` (one of our constants) with `params` bound, as objects.
    pub(crate) async fn rows(
        &mut self,
        conn: &mut sqlx::PgConnection,
        sql: &'static str,
        params: &[Value],
    ) -> Result<Vec<Value>, ToolError> {
        self.rows_of(conn, sql, params).await
    }

    /// Like [`Catalog::rows`] for SQL assembled from constants and catalog names passed
    /// through [`quote_ident`] only; values are still bound.
    pub(crate) async fn rows_built(
        &mut self,
        conn: &mut sqlx::PgConnection,
        sql: String,
        params: &[Value],
    ) -> Result<Vec<Value>, ToolError> {
        self.rows_of(conn, &sql, params).await
    }

    async fn rows_of(
        &mut self,
        conn: &mut sqlx::PgConnection,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Value>, ToolError> {
        let st = StatementRef {
            body: sql.to_owned(),
            command: "SELECT".into(),
            plain_select: false,
            returning: false,
            plannable: false,
            bound: None,
        };
        let limits = Limits {
            max_rows: CATALOG_ROWS,
            max_bytes: self.left.max(1),
            ..self.limits
        };
        let rs = run_statement(conn, sql, &st, params, &limits, RowMode::Verbatim).await?;
        if rs.truncated.is_some() {
            self.truncated = true;
        }
        let mut out = Vec::with_capacity(rs.rows.len());
        for row in &rs.rows {
            let mut m = Map::new();
            for (c, v) in rs.columns.iter().zip(row) {
                m.insert(c.name.clone(), v.clone());
            }
            let obj = Value::Object(m);
            // Objects repeat their keys, so they are measured again here.
            let size = serde_json::to_vec(&obj).map(|b| b.len()).unwrap_or(0) + 1;
            if size > self.left {
                self.truncated = true;
                self.left = 0;
                break;
            }
            self.left -= size;
            out.push(obj);
        }
        Ok(out)
    }

    /// The first row of `sql`, if any.
    pub(crate) async fn one(
        &mut self,
        conn: &mut sqlx::PgConnection,
        sql: &'static str,
        params: &[Value],
    ) -> Result<Option<Value>, ToolError> {
        Ok(self.rows(conn, sql, params).await?.into_iter().next())
    }
}

/// Run `f` read-only: on a pooled READ ONLY transaction that is rolled back
/// ([`run::Pooled::READ`]), or, with a `session_id`, inside that session under a read-only
/// savepoint that is rolled back (so the session's own uncommitted changes are visible).
/// Returns the session view when one was used.
pub(crate) async fn read_scope<T>(
    state: &AppState,
    caller: &Caller,
    session_id: Option<&str>,
    limits: &Limits,
    f: impl AsyncFnOnce(&mut sqlx::PgConnection) -> Result<T, ToolError>,
) -> Result<(T, Option<Value>), ToolError> {
    match session_id {
        Some(id) => {
            let mut g = state.sessions.acquire(&caller.owner, id).await?;
            let r = run::under_savepoint(&mut g, true, false, f).await?;
            Ok((r, Some(g.view().into())))
        }
        None => {
            let (r, _) =
                run::pooled(&state.pools, caller.role(), run::Pooled::READ, limits, f).await?;
            Ok((r, None))
        }
    }
}

/// [`read_scope`] for `pg_monitor`: without a session, on the monitoring pool of its own
/// ([`run::monitor_read`]).
pub(crate) async fn monitor_scope<T>(
    state: &AppState,
    caller: &Caller,
    session_id: Option<&str>,
    limits: &Limits,
    f: impl AsyncFnOnce(&mut sqlx::PgConnection) -> Result<T, ToolError>,
) -> Result<(T, Option<Value>), ToolError> {
    if session_id.is_some() {
        return read_scope(state, caller, session_id, limits, f).await;
    }
    let r = run::monitor_read(&state.pools, caller.role(), limits, f).await?;
    Ok((r, None))
}

/// A relation found in the catalogs.
#[derive(Debug, Clone)]
pub(crate) struct Relation {
    /// pg_class oid.
    pub(crate) oid: i64,
    /// Its schema, as stored.
    pub(crate) schema: String,
    /// Its name, as stored.
    pub(crate) name: String,
    /// pg_class.relkind.
    pub(crate) relkind: String,
}

impl Relation {
    /// `"schema"."name"`, quoted for SQL text.
    pub(crate) fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    /// `schema.name` for people (quoted only where needed).
    pub(crate) fn shown(&self) -> String {
        format!("{}.{}", show_ident(&self.schema), show_ident(&self.name))
    }
}

/// A name as a person would type it in SQL: bare when that reads back the same.
fn show_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain { s.to_owned() } else { quote_ident(s) }
}

/// `to_regclass` takes the quoted text as a bound parameter; it honours the search_path for an
/// unqualified name, as PostgreSQL itself would.
const RESOLVE_RELATION: &str = "SELECT c.oid::int8 AS oid, n.nspname::text AS schema, \
     c.relname::text AS name, c.relkind::text AS relkind \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.oid = to_regclass($1::text)";

/// Find the relation `name` means, or `None`.
pub(crate) async fn resolve_relation(
    conn: &mut sqlx::PgConnection,
    cat: &mut Catalog,
    name: &QualifiedName,
) -> Result<Option<Relation>, ToolError> {
    for text in name.regclass_candidates() {
        if let Some(row) = cat.one(conn, RESOLVE_RELATION, &[json!(text)]).await? {
            return Ok(Some(Relation {
                oid: row["oid"].as_i64().unwrap_or_default(),
                schema: str_of(&row["schema"]),
                name: str_of(&row["name"]),
                relkind: str_of(&row["relkind"]),
            }));
        }
    }
    Ok(None)
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// The contract's spelling of pg_class.relkind.
pub(crate) fn relkind_name(k: &str) -> &'static str {
    match k {
        "r" => "table",
        "p" => "partitioned_table",
        "v" => "view",
        "m" => "materialized_view",
        "f" => "foreign_table",
        "S" => "sequence",
        "i" => "index",
        "I" => "partitioned_index",
        "c" => "composite_type",
        "t" => "toast_table",
        _ => "relation",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> QualifiedName {
        QualifiedName::parse("name", raw).unwrap()
    }

    #[test]
    fn qualified_names_fold_unquoted_parts_and_keep_quoted_ones() {
        let cases: &[(&str, &[&str])] = &[
            ("orders", &["\"orders\""]),
            ("App.Orders", &["\"app\".\"orders\"", "\"App\".\"Orders\""]),
            ("app.\"Order\"", &["\"app\".\"Order\""]),
            ("\"My Table\"", &["\"My Table\""]),
            ("\"a\"\"b\"", &["\"a\"\"b\""]),
            ("  _x$1 ", &["\"_x$1\""]),
        ];
        for (raw, want) in cases {
            assert_eq!(q(raw).regclass_candidates(), *want, "{raw}");
        }
        assert_eq!(q("Order").name_candidates(), vec!["order", "Order"]);
        assert_eq!(q("app.x").schema_candidates(), Some(vec!["app".to_owned()]));
        assert_eq!(q("x").schema_candidates(), None);
    }

    #[test]
    fn anything_that_is_not_a_name_is_refused() {
        for raw in [
            "",
            "x; DROP TABLE y",
            "a b",
            "a.b.c",
            "\"unclosed",
            "\"\"",
            "a.",
            ".a",
            "\"a\"b",
            "1abc",
            "a-b",
            "t--",
        ] {
            let e = QualifiedName::parse("table", raw).unwrap_err();
            assert!(matches!(e, ToolError::InvalidInput(_)), "{raw}");
            assert!(e.to_string().contains("invalid table"), "{raw}: {e}");
        }
        let long = "a".repeat(64);
        assert!(QualifiedName::parse("table", &long).is_err());
    }

    #[test]
    fn a_separate_schema_qualifies_or_must_agree() {
        let n = q("orders").in_schema(Some("billing")).unwrap();
        assert_eq!(n.regclass_candidates(), vec!["\"billing\".\"orders\""]);
        assert!(q("app.orders").in_schema(Some("billing")).is_err());
        assert!(q("app.orders").in_schema(Some("APP")).is_ok());
    }
}
