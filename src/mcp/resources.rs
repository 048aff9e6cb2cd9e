//! MCP resources (contract §7): `postgres://schema/tables`, the template
//! `postgres://schema/{schema}/{table}`, `postgres://monitor/health` and
//! `postgres://monitor/activity`, each read as JSON text (`application/json`), computed by the
//! same code as the matching tool action.

use rmcp::ErrorData as McpError;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use serde_json::{Value, json};

use crate::caller::Caller;
use crate::error::ToolError;
use crate::mcp::catalog::{Catalog, QualifiedName, read_scope};
use crate::mcp::common::limits_for;
use crate::mcp::monitor;
use crate::mcp::names::{MonitorAction, SchemaAction, SchemaTarget};
use crate::mcp::schema::{self, SchemaArgs};
use crate::mcp::support::ms;
use crate::safety::ident::quote_ident;
use crate::state::AppState;

/// Every table (as `pg_schema list` with target table, up to 1000).
pub const TABLES_URI: &str = "postgres://schema/tables";
/// One table or view described (as `pg_schema describe`).
pub const TABLE_TEMPLATE: &str = "postgres://schema/{schema}/{table}";
/// As `pg_monitor health`.
pub const HEALTH_URI: &str = "postgres://monitor/health";
/// As `pg_monitor activity`.
pub const ACTIVITY_URI: &str = "postgres://monitor/activity";

const JSON: &str = "application/json";
const TABLE_PREFIX: &str = "postgres://schema/";

/// The fixed resources.
pub fn list() -> Vec<Resource> {
    vec![
        Resource::new(TABLES_URI, "tables")
            .with_title("Tables")
            .with_description(
                "Every user table: schema, name, kind, row estimate, total size, comment (as \
                 pg_schema list with target table).",
            )
            .with_mime_type(JSON),
        Resource::new(HEALTH_URI, "health")
            .with_title("Database health")
            .with_description(
                "Version, uptime, database size, connections vs max, cache hit ratio, longest \
                 transaction, replication lag (as pg_monitor health).",
            )
            .with_mime_type(JSON),
        Resource::new(ACTIVITY_URI, "activity")
            .with_title("Database activity")
            .with_description(
                "Non-idle backends with their query, durations, waits and blockers (as \
                 pg_monitor activity).",
            )
            .with_mime_type(JSON),
    ]
}

/// The resource templates.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(TABLE_TEMPLATE, "table")
            .with_title("Table structure")
            .with_description(
                "One table or view: columns, keys, foreign keys both ways, constraints, indexes, \
                 triggers, partitions, sizes (as pg_schema describe). Names are exact (case \
                 kept); percent-encode / and other reserved characters.",
            )
            .with_mime_type(JSON),
    ]
}

/// Decode `%XX` escapes (RFC 3986); `None` if malformed or not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `postgres://schema/{schema}/{table}` → the exact schema and table names.
fn table_of(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix(TABLE_PREFIX)?;
    let (schema, table) = rest.split_once('/')?;
    if schema.is_empty() || table.is_empty() || table.contains('/') {
        return None;
    }
    Some((percent_decode(schema)?, percent_decode(table)?))
}

fn not_found(uri: &str, why: &str) -> McpError {
    McpError::resource_not_found(
        format!("resource {uri:?} not found: {why}"),
        Some(json!({ "uri": uri })),
    )
}

fn tool_error(e: ToolError) -> McpError {
    McpError::internal_error(e.to_text(), Some(json!({ "error": e.to_json() })))
}

fn contents(uri: &str, value: &Value) -> ReadResourceResult {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    ReadResourceResult::new(vec![ResourceContents::text(text, uri).with_mime_type(JSON)])
}

/// Read one resource.
pub async fn read(
    state: &AppState,
    caller: &Caller,
    uri: &str,
) -> Result<ReadResourceResult, McpError> {
    let value = match uri {
        TABLES_URI => {
            let args = SchemaArgs {
                action: SchemaAction::List.into(),
                target: Some(SchemaTarget::Table.into()),
                limit: Some(1000),
                ..SchemaArgs::default()
            };
            let limits = limits_for(state, None).map_err(tool_error)?;
            schema::list(state, caller, &args, &limits)
                .await
                .map_err(tool_error)?
        }
        HEALTH_URI => monitor::health(state, caller).await.map_err(tool_error)?,
        ACTIVITY_URI => {
            let args = monitor::MonitorArgs {
                action: MonitorAction::Activity.into(),
                ..monitor::MonitorArgs::default()
            };
            let started = std::time::Instant::now();
            let mut v = monitor::activity(state, caller, &args)
                .await
                .map_err(tool_error)?;
            v["duration_ms"] = json!(ms(started));
            v
        }
        _ => {
            let Some((schema_name, table)) = table_of(uri) else {
                return Err(not_found(
                    uri,
                    "known resources are postgres://schema/tables, \
                     postgres://schema/{schema}/{table}, postgres://monitor/health and \
                     postgres://monitor/activity",
                ));
            };
            // The URI's names are exact: quote both parts so that case is kept.
            let name = QualifiedName::parse(
                "table",
                &format!("{}.{}", quote_ident(&schema_name), quote_ident(&table)),
            )
            .map_err(|_| not_found(uri, "that is not a valid schema and table name"))?;
            let limits = limits_for(state, None).map_err(tool_error)?;
            let mut cat = Catalog::new(&limits);
            let (found, _) = read_scope(state, caller, None, &limits, async |c| {
                schema::describe_name(c, &mut cat, &name).await
            })
            .await
            .map_err(tool_error)?;
            match found {
                Some(v) if v["kind"] != "function" => v,
                _ => {
                    return Err(not_found(
                        uri,
                        &format!("no table or view {schema_name}.{table}"),
                    ));
                }
            }
        }
    };
    Ok(contents(uri, &value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_uris_are_split_and_percent_decoded() {
        assert_eq!(
            table_of("postgres://schema/app/Order"),
            Some(("app".into(), "Order".into()))
        );
        assert_eq!(
            table_of("postgres://schema/my%20app/a%2Fb"),
            Some(("my app".into(), "a/b".into()))
        );
        assert_eq!(table_of("postgres://schema/tables"), None);
        assert_eq!(table_of("postgres://schema/a/b/c"), None);
        assert_eq!(table_of("postgres://schema//b"), None);
        assert_eq!(table_of("postgres://schema/a/%zz"), None);
        assert_eq!(table_of("postgres://monitor/a/b"), None);
    }
}
