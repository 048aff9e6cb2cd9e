//! The `pg_schema` tool: its arguments and dispatch. Introspection (`list`, `describe`) reads
//! the system catalogs with bound parameters; DDL (`create`, `alter`, `drop`) runs behind
//! default-deny (contract §2). The catalog toolkit it shares with other tools is in
//! [`crate::mcp::catalog`]. The arguments' JSON Schema is derived from [`SchemaArgs`].

mod ddl;
mod describe;
mod list;

pub(crate) use describe::describe_name;
pub(crate) use list::list;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::error::ToolError;
use crate::mcp::common::limits_for;
use crate::mcp::names::{ActionArg, SchemaAction, SchemaTarget};
use crate::safety::classify::DdlKind;
use crate::state::AppState;

/// Arguments of `pg_schema`. Unknown fields are refused (a typo is reported, not ignored).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaArgs {
    /// One of [`SchemaAction`].
    pub action: ActionArg<SchemaAction>,
    /// list: what to list (one of [`SchemaTarget`]; `table` by default).
    pub target: Option<ActionArg<SchemaTarget>>,
    /// list: only this schema; describe: the schema of `name`.
    pub schema: Option<String>,
    /// describe: the table, view or function (`name`, `schema.name`, `app."Order"`).
    pub name: Option<String>,
    /// list: a LIKE pattern on the object's name.
    pub pattern: Option<String>,
    /// list: page size (default 100, at most 1000).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u64>,
    /// list: rows to skip.
    pub offset: Option<u64>,
    /// list: include pg_catalog, information_schema, pg_toast and coldquery.
    pub include_system: Option<bool>,
    /// create/alter/drop: one DDL statement.
    pub sql: Option<String>,
    /// A pg_tx handle: run inside that transaction.
    pub session_id: Option<String>,
    /// create/alter/drop: run in its own transaction and commit.
    pub autocommit: Option<bool>,
    /// create/alter/drop: run and roll back.
    pub dry_run: Option<bool>,
    /// A `confirmation_required` error's token. `confirm::check` takes it out of the arguments
    /// before they are parsed, so it is never read here: it is declared for the schema.
    #[expect(
        dead_code,
        reason = "declared for the input schema; confirm::check consumes it"
    )]
    pub confirm: Option<String>,
}

/// Run one `pg_schema` call.
pub async fn call(state: &AppState, caller: &Caller, args: SchemaArgs) -> Result<Value, ToolError> {
    let action = args.action.known()?;
    match action {
        SchemaAction::List | SchemaAction::Describe => {
            if args.sql.is_some() {
                return Err(ToolError::InvalidInput(format!(
                    "pg_schema {} takes no sql; run SELECTs with pg_query read, DDL with pg_schema \
                     create/alter/drop",
                    args.action
                )));
            }
            let limits = limits_for(state, None)?;
            if action == SchemaAction::List {
                list(state, caller, &args, &limits).await
            } else {
                describe::describe(state, caller, &args, &limits).await
            }
        }
        SchemaAction::Create => ddl::ddl(state, caller, &args, DdlKind::Create).await,
        SchemaAction::Alter => ddl::ddl(state, caller, &args, DdlKind::Alter).await,
        SchemaAction::Drop => ddl::ddl(state, caller, &args, DdlKind::Drop).await,
    }
}
