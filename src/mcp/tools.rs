//! Tool definitions: names, descriptions a model can act on, flat JSON input schemas (no
//! top-level `oneOf`, no `["x","null"]` type arrays: some clients reject them, MCP Inspector
//! `--strict` warns), small output schemas and annotations that are true of every action.
//!
//! The input schemas are derived from the argument structs the tools parse ([`input_schema`]),
//! so an argument cannot be offered and refused, or accepted and hidden; the derived schema is
//! compacted to the flat shape clients take, and pinned by `testdata/input_schemas.json`.
//!
//! The list is built once ([`listed`]): rmcp asks for a tool's schema while validating each
//! request, and `tools/list` is sent into every conversation, so it is kept under 8 KB.

use std::sync::{Arc, LazyLock};

use rmcp::model::{Tool, ToolAnnotations};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

#[cfg(test)]
use super::names::ToolAction;
use super::names::ToolName;

/// Whether `action` is one of `tool`'s actions (the tests check every listed one).
#[cfg(test)]
pub fn is_known_action(tool: ToolName, action: &str) -> bool {
    ToolAction::parse(tool, action).is_some()
}

const PG_QUERY_DESCRIPTION: &str = "Run SQL, one statement a call; values go in params ($1, $2…), never into sql.
- read: SELECT/WITH/VALUES/TABLE/SHOW, READ ONLY (as pg_read query).
- write: INSERT/UPDATE/DELETE/MERGE/CALL/DO. Default-deny: needs autocommit: true or a session_id; dry_run: true reports rows_affected and rolls back.
- explain: JSON plan and summary; analyze: true executes it (writes roll back).
- transaction: operations [{sql, params}], all or nothing; writes need autocommit: true.
- fetch: next page (cursor: a next_cursor; max_rows); close_cursor ends one.
DELETE/UPDATE without WHERE, TRUNCATE, DROP TABLE/COLUMN… need the user's consent: the client asks, or the error gives a token to pass as confirm once they agree.
max_cost lowers the cost ceiling for a call.
Errors start with a category and say what to do.
Example: {\"action\":\"write\",\"sql\":\"DELETE FROM t WHERE id = $1\",\"params\":[5],\"autocommit\":true}";

const PG_SCHEMA_DESCRIPTION: &str = "Database structure and DDL.
- list: target (table default); schema, pattern (LIKE), limit/offset, include_system.
- describe: name (\"app.orders\"): columns, keys, foreign keys both ways, constraints, indexes, triggers, sizes, view or function definition.
- create / alter / drop: sql, one DDL statement of that kind (drop: also TRUNCATE). Default-deny: autocommit: true or session_id; dry_run: true rolls back. Destructive ones need confirm, as in pg_query.
Example: {\"action\":\"describe\",\"name\":\"app.orders\"}";

const PG_ADMIN_DESCRIPTION: &str = "Maintenance, statistics, settings.
- vacuum / analyze / reindex: table (\"app.orders\") or the whole database; full, verbose, concurrently. Need autocommit: true; cannot be rolled back; VACUUM refuses session_id.
- stats: a table's tuples, dead ratio, scans, last vacuum/analyze, sizes, index usage; no table: the busiest.
- settings: setting_name: value, unit, source; neither: a list (category, pattern). setting_value with session_id sets it for that transaction.
Example: {\"action\":\"analyze\",\"table\":\"app.orders\",\"autocommit\":true}";

const PG_TX_DESCRIPTION: &str = "Transactions spanning tool calls, each on its own connection.
- begin: returns session_id; isolation_level, read_only.
- commit / rollback: end it (commit of a failed transaction reports the rollback).
- savepoint / release / rollback_to: savepoint_name.
- list: your open sessions.
Pass session_id to the other tools to work inside it. Idle sessions roll back after a TTL (30 min): always commit or rollback.
Example: {\"action\":\"commit\",\"session_id\":\"tx_…\"}";

const PG_MONITOR_DESCRIPTION: &str = "Observe the server (read-only).
- health: version, uptime, size, connections, cache hit ratio, longest transaction, replication.
- activity: non-idle backends (include_idle: all), waits, blockers, queries.
- connections: by database, user, application, state.
- locks: blocked/blocking pairs and their queries.
- size: database and largest tables.
- slow_queries: from pg_stat_statements (order_by).
Example: {\"action\":\"locks\"}";

const PG_READ_DESCRIPTION: &str =
    "Every read, in one read-only tool (clients may run it without asking).
- query: a SELECT/WITH/VALUES/TABLE/SHOW, as pg_query read.
- explain: its plan, not run (sql, params).
- fetch / close_cursor: as pg_query.
- list / describe: as pg_schema (same arguments).
- stats / settings: as pg_admin (table; setting_name, category, pattern).
- tx_list: your pg_tx sessions.
session_id reads inside a transaction.
Example: {\"action\":\"query\",\"sql\":\"SELECT * FROM t WHERE id = $1\",\"params\":[7]}";

fn object(v: Value) -> Arc<serde_json::Map<String, Value>> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => unreachable!("schemas are written as JSON objects"),
    }
}

/// The input schema of the arguments `T`, in the shape every client takes: one object with
/// inline properties (no `$schema`, `title`, `$defs`/`$ref`), each `Option` as its plain type,
/// no `additionalProperties`, `default`s or numeric `format`s, and descriptions only where a
/// field asks for one with `x-description`: the tool descriptions say what the arguments
/// mean, and repeating that per property would double the bytes every conversation pays for.
/// Doc comments on the fields are for readers of the code.
pub(crate) fn input_schema<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .for_deserialize()
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    compact(&mut schema);
    schema
}

/// `input_schema`'s rewriting of one schema object and, recursively, its subschemas.
fn compact(schema: &mut Value) {
    let Value::Object(s) = schema else { return };
    for key in ["$schema", "title", "$defs", "default", "description"] {
        s.remove(key);
    }
    if let Some(d) = s.remove("x-description") {
        s.insert("description".into(), d);
    }
    if s.get("additionalProperties") == Some(&Value::Bool(false)) {
        s.remove("additionalProperties");
    }
    // `u64` says `minimum: 0` beside its format; an explicit range (pg_schema's limit) stays.
    if let Some(Value::String(format)) = s.remove("format")
        && format.starts_with("uint")
        && s.get("minimum") == Some(&json!(0))
    {
        s.remove("minimum");
    }
    // Vec<Value>: `items: true` (anything) says nothing.
    if s.get("items") == Some(&Value::Bool(true)) {
        s.remove("items");
    }
    not_nullable(s);
    if let Some(Value::Object(props)) = s.get_mut("properties") {
        props.values_mut().for_each(compact);
    }
    if let Some(items) = s.get_mut("items") {
        compact(items);
    }
}

/// An `Option` is "absent or this type" to the server (a JSON null is refused by most fields
/// anyway): drop the `null` alternative schemars adds, so no type array or `anyOf` remains.
fn not_nullable(s: &mut Map<String, Value>) {
    let is_null = |v: &Value| v.get("type") == Some(&json!("null"));
    let or_null =
        matches!(s.get("anyOf"), Some(Value::Array(a)) if a.len() == 2 && a.iter().any(is_null));
    if or_null
        && let Some(Value::Array(alternatives)) = s.remove("anyOf")
        && let Some(Value::Object(inner)) = alternatives.into_iter().find(|v| !is_null(v))
    {
        // The field's own keys (an `x-description`) win over the type's.
        for (k, v) in inner {
            s.entry(k).or_insert(v);
        }
    }
    if let Some(Value::Array(types)) = s.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.pop().expect("one type");
            s.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = s.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
}

// Output schemas' shared property schemas.
fn boolean() -> Value {
    json!({"type": "boolean"})
}

/// Output schemas: permissive (no `required`, no type arrays), naming the fields a client may
/// rely on; one tool returns several shapes (rows, plans, `{error}`), all objects.
fn output(properties: Value) -> Value {
    json!({"type": "object", "properties": properties})
}

fn rows_output() -> Value {
    output(json!({
        "columns": {"type": "array"},
        "rows": {"type": "array"},
        "row_count": {"type": "integer"},
        "truncated": boolean(),
        "error": {"type": "object"}
    }))
}

fn plain_output() -> Value {
    output(json!({"error": {"type": "object"}}))
}

fn tool(
    name: ToolName,
    description: &'static str,
    input: Value,
    output: Value,
    annotations: ToolAnnotations,
) -> Tool {
    Tool::new(name.name(), description, object(input))
        .with_raw_output_schema(object(output))
        // The title lives in the annotations only: a second copy costs bytes in every conversation.
        .with_annotations(annotations.open_world(false))
}

/// Every tool this build serves, built once.
static ALL: LazyLock<Vec<Tool>> = LazyLock::new(|| {
    // Annotations are per tool, so each must hold for the tool's most consequential action.
    vec![
        tool(
            ToolName::Query,
            PG_QUERY_DESCRIPTION,
            input_schema::<super::query::QueryArgs>(),
            rows_output(),
            // write runs DELETE/UPDATE; the same write twice is not the same as once.
            ToolAnnotations::with_title("PostgreSQL query")
                .read_only(false)
                .destructive(true)
                .idempotent(false),
        ),
        tool(
            ToolName::Schema,
            PG_SCHEMA_DESCRIPTION,
            input_schema::<super::schema::SchemaArgs>(),
            plain_output(),
            // drop runs DROP and TRUNCATE.
            ToolAnnotations::with_title("PostgreSQL schema")
                .read_only(false)
                .destructive(true)
                .idempotent(false),
        ),
        tool(
            ToolName::Admin,
            PG_ADMIN_DESCRIPTION,
            input_schema::<super::admin::AdminArgs>(),
            plain_output(),
            // VACUUM, ANALYZE and REINDEX rewrite statistics and storage, never rows, and
            // repeating one has no further effect; a session setting is overwritten, not piled up.
            ToolAnnotations::with_title("PostgreSQL maintenance")
                .read_only(false)
                .destructive(false)
                .idempotent(true),
        ),
        tool(
            ToolName::Tx,
            PG_TX_DESCRIPTION,
            input_schema::<super::tx::TxArgs>(),
            plain_output(),
            // rollback discards a session's writes, commit makes deletes permanent.
            ToolAnnotations::with_title("PostgreSQL transactions")
                .read_only(false)
                .destructive(true)
                .idempotent(false),
        ),
        tool(
            ToolName::Monitor,
            PG_MONITOR_DESCRIPTION,
            input_schema::<super::monitor::MonitorArgs>(),
            plain_output(),
            // Statistics views, read in READ ONLY transactions.
            ToolAnnotations::with_title("PostgreSQL monitoring")
                .read_only(true)
                .destructive(false)
                .idempotent(true),
        ),
        tool(
            ToolName::Read,
            PG_READ_DESCRIPTION,
            input_schema::<super::read::ReadArgs>(),
            plain_output(),
            // Every action is served by a read path (READ ONLY transactions, catalog reads);
            // arguments that could change something are refused (see read.rs).
            ToolAnnotations::with_title("PostgreSQL read")
                .read_only(true)
                .destructive(false)
                .idempotent(true),
        ),
    ]
});

/// The tools offered under `COLDQUERY_READ_ONLY=true`: those annotated read-only.
static READ_ONLY: LazyLock<Vec<Tool>> = LazyLock::new(|| {
    ALL.iter()
        .filter(|t| t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true))
        .cloned()
        .collect()
});

/// Every tool this build serves (`listed` gives what a client sees).
#[cfg(test)]
pub fn all() -> &'static [Tool] {
    &ALL
}

/// The tools `tools/list` offers: all of them, or only the read-only ones.
pub fn listed(read_only: bool) -> &'static [Tool] {
    if read_only { &READ_ONLY } else { &ALL }
}

/// One tool by name (also those hidden by read-only mode: a call to one is refused with a
/// reason, not as an unknown tool).
pub fn get(name: &str) -> Option<&'static Tool> {
    ALL.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::names::{ActionArg, MonitorOrder};

    /// A sample of each shape the argument structs use.
    #[derive(JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // only its schema is used
    struct Sample {
        /// Doc comments are for the code's readers.
        order: ActionArg<MonitorOrder>,
        count: Option<u64>,
        #[schemars(range(min = 1, max = 10))]
        page: Option<u64>,
        ratio: Option<f64>,
        #[schemars(extend("x-description" = "kept"))]
        values: Option<Vec<Value>>,
        items: Option<Vec<SampleItem>>,
        by: Option<ActionArg<MonitorOrder>>,
    }

    /// An inner object: inlined, not a `$ref`.
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct SampleItem {
        name: String,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[test]
    fn derived_schemas_are_compacted_to_flat_plain_types() {
        let order = json!({"type": "string", "enum": ["mean_time", "total_time", "calls"]});
        assert_eq!(
            input_schema::<Sample>(),
            json!({
                "type": "object",
                "properties": {
                    "order": order,
                    "count": {"type": "integer"},
                    "page": {"type": "integer", "minimum": 1, "maximum": 10},
                    "ratio": {"type": "number"},
                    "values": {"type": "array", "description": "kept"},
                    "items": {"type": "array", "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "tags": {"type": "array", "items": {"type": "string"}}
                        },
                        "required": ["name"]
                    }},
                    "by": order
                },
                "required": ["order"]
            })
        );
    }

    /// The input schemas of [`all`], in list order, as the fixture holds them.
    fn input_schemas_text() -> String {
        let schemas: Vec<Value> = all()
            .iter()
            .map(|t| json!({"name": t.name, "inputSchema": Value::Object((*t.input_schema).clone())}))
            .collect();
        serde_json::to_string_pretty(&schemas).expect("schemas serialize") + "\n"
    }

    /// The input schemas clients see, pinned byte for byte: a change to an argument type that
    /// would change them shows up here, to be made deliberately (regenerate the fixture with
    /// `COLDQUERY_WRITE_FIXTURE=1 cargo test --lib input_schemas`).
    #[test]
    fn input_schemas_equal_the_fixture_byte_for_byte() {
        let got = input_schemas_text();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/mcp/testdata/input_schemas.json"
        );
        if std::env::var_os("COLDQUERY_WRITE_FIXTURE").is_some() {
            // Compared on the next build, which includes the new file.
            std::fs::write(path, &got).expect("write the fixture");
            return;
        }
        let want = include_str!("testdata/input_schemas.json");
        assert!(got == want, "input schemas differ from {path}:\n{got}");
    }

    /// Every schema object in `v`, recursively.
    fn schemas<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(m) => {
                out.push(v);
                m.values().for_each(|c| schemas(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| schemas(c, out)),
            _ => {}
        }
    }

    #[test]
    fn schemas_are_flat_objects_with_required_action() {
        for t in all() {
            let s = Value::Object((*t.input_schema).clone());
            assert_eq!(s["type"], "object");
            assert!(s.get("oneOf").is_none() && s.get("anyOf").is_none());
            assert_eq!(s["required"], json!(["action"]));
            assert!(t.output_schema.is_some());
            assert!(ToolName::NAMES.contains(&t.name.as_ref()));
        }
        assert_eq!(all().len(), ToolName::NAMES.len());
    }

    #[test]
    fn no_schema_uses_type_arrays_or_combinators_that_portable_clients_warn_about() {
        for t in all() {
            for schema in [
                Value::Object((*t.input_schema).clone()),
                Value::Object((*t.output_schema.clone().unwrap()).clone()),
            ] {
                let mut all = Vec::new();
                schemas(&schema, &mut all);
                for s in all {
                    let bad = s.get("type").is_some_and(Value::is_array)
                        || ["oneOf", "anyOf", "allOf", "not"]
                            .iter()
                            .any(|k| s.get(k).is_some());
                    assert!(!bad, "{}: {s}", t.name);
                }
            }
        }
    }

    #[test]
    fn the_tool_list_is_under_8_kb_and_each_description_under_1024_characters() {
        let listed = serde_json::to_string(&rmcp::model::ListToolsResult::with_all_items(
            all().to_vec(),
        ))
        .unwrap();
        assert!(
            listed.len() <= 8 * 1024,
            "tools/list is {} bytes",
            listed.len()
        );
        for t in all() {
            let d = t.description.as_deref().unwrap_or_default();
            assert!(d.chars().count() < 1024, "{}: {} chars", t.name, d.len());
        }
    }

    #[test]
    fn every_action_is_in_the_schema_and_the_description() {
        for t in all() {
            let s = Value::Object((*t.input_schema).clone());
            let actions = s["properties"]["action"]["enum"]
                .as_array()
                .unwrap()
                .clone();
            assert!(!actions.is_empty());
            let desc = t.description.as_deref().unwrap_or_default();
            for a in actions {
                let a = a.as_str().unwrap();
                let tool = ToolName::parse(&t.name).expect("a listed tool has a name");
                assert!(is_known_action(tool, a), "{} {a}", t.name);
                assert!(
                    desc.contains(a),
                    "{} description does not mention {a}",
                    t.name
                );
            }
            assert!(desc.contains("Example"), "{} has no example", t.name);
        }
    }

    #[test]
    fn annotations_are_true_of_every_action_and_reads_have_a_read_only_tool() {
        let by = |n: &str| get(n).unwrap().annotations.clone().unwrap();
        for n in ["pg_monitor", "pg_read"] {
            let a = by(n);
            assert_eq!(a.read_only_hint, Some(true), "{n}");
            assert_eq!(a.destructive_hint, Some(false), "{n}");
        }
        // write (DELETE), drop (DROP/TRUNCATE), commit/rollback: each tool can destroy data.
        for n in ["pg_schema", "pg_tx", "pg_query"] {
            let a = by(n);
            assert_eq!(a.read_only_hint, Some(false), "{n}");
            assert_eq!(a.destructive_hint, Some(true), "{n}");
        }
        assert_eq!(by("pg_admin").read_only_hint, Some(false));
        for t in all() {
            assert_eq!(t.annotations.as_ref().unwrap().open_world_hint, Some(false));
        }
        // Read-only mode lists exactly the read-only tools, pg_read among them.
        let names: Vec<&str> = listed(true).iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, ["pg_monitor", "pg_read"]);
        assert_eq!(listed(false).len(), ToolName::NAMES.len());
    }
}
