//! `completion/complete` (contract §8): the resource template's `schema` and `table`
//! arguments and the prompts' arguments, completed from the catalog by prefix, at most 100
//! values. An argument we cannot complete gets an empty list, not an error: a client typing
//! into a form should never see a failure for asking.

use rmcp::model::{CompleteRequestParams, CompletionInfo, Reference};
use serde_json::Value;

use crate::caller::Caller;
use crate::error::ToolError;
use crate::mcp::catalog::{Catalog, read_scope};
use crate::mcp::common::limits_for;
use crate::mcp::resources::TABLE_TEMPLATE;
use crate::state::AppState;

/// One more than the protocol's cap, so `has_more` is known without counting everything.
const FETCH: usize = CompletionInfo::MAX_VALUES + 1;

/// Schemas a user made: the system ones and ColdQuery's own are left out, as in pg_schema list.
const SCHEMAS: &str = "SELECT nspname::text AS v FROM pg_namespace \
     WHERE nspname NOT IN ('information_schema', 'coldquery') AND nspname NOT LIKE 'pg\\_%' \
       AND left(nspname, length($1::text)) = $1::text \
     ORDER BY 1 LIMIT 101";

/// Tables, views and materialized views by name prefix, in one schema (`$2`) or in every user
/// schema when `$2` is null.
const TABLES: &str = "SELECT DISTINCT c.relname::text AS v FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
       AND left(c.relname, length($1::text)) = $1::text \
       AND CASE WHEN $2::text IS NULL \
                THEN n.nspname NOT IN ('information_schema', 'coldquery') AND n.nspname NOT LIKE 'pg\\_%' \
                ELSE n.nspname = $2::text END \
     ORDER BY 1 LIMIT 101";

/// What one completion request asks for.
#[derive(Debug, PartialEq)]
enum Want {
    Schemas(String),
    /// Tables with this prefix, in this schema if given.
    Tables(String, Option<String>),
    /// A SQL text whose last word is completed as a table name: (text before it, the word).
    SqlTable(String, String),
    Nothing,
}

fn want(request: &CompleteRequestParams) -> Want {
    let value = request.argument.value.clone();
    let context = |k: &str| {
        request
            .context
            .as_ref()
            .and_then(|c| c.arguments.as_ref())
            .and_then(|a| a.get(k))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    match (&request.r#ref, request.argument.name.as_str()) {
        (Reference::Resource(r), "schema") if r.uri == TABLE_TEMPLATE => Want::Schemas(value),
        (Reference::Resource(r), "table") if r.uri == TABLE_TEMPLATE => {
            Want::Tables(value, context("schema"))
        }
        (Reference::Prompt(p), "sql") if p.name == "analyze_query_performance" => {
            // The word being typed is the table name to complete: "SELECT * FROM ord" → orders.
            let at = value
                .rfind(|c: char| c.is_whitespace() || c == ',' || c == '(')
                .map_or(0, |i| i + 1);
            let (head, word) = value.split_at(at);
            if head.trim().is_empty() {
                Want::Nothing
            } else {
                Want::SqlTable(head.to_owned(), word.to_owned())
            }
        }
        _ => Want::Nothing,
    }
}

/// Answer one `completion/complete`.
pub(crate) async fn complete(
    state: &AppState,
    caller: &Caller,
    request: &CompleteRequestParams,
) -> Result<CompletionInfo, ToolError> {
    let (sql, prefix, schema, head) = match want(request) {
        Want::Schemas(p) => (SCHEMAS, p, None, String::new()),
        Want::Tables(p, s) => (TABLES, p, s, String::new()),
        Want::SqlTable(h, w) => (TABLES, w, None, h),
        Want::Nothing => return Ok(CompletionInfo::default()),
    };
    // A prefix longer than any identifier matches nothing; do not send it to the database.
    if prefix.len() > 128 {
        return Ok(CompletionInfo::default());
    }
    let limits = limits_for(state, None)?;
    let mut cat = Catalog::new(&limits);
    let params = [
        Value::String(prefix),
        schema.map_or(Value::Null, Value::String),
    ];
    let (rows, _) = read_scope(state, caller, None, &limits, async |c| {
        if sql == SCHEMAS {
            cat.rows(c, SCHEMAS, &params[..1]).await
        } else {
            cat.rows(c, TABLES, &params).await
        }
    })
    .await?;
    let mut values: Vec<String> = rows
        .iter()
        .filter_map(|r| r["v"].as_str())
        .map(|v| format!("{head}{v}"))
        .collect();
    let has_more = values.len() >= FETCH;
    values.truncate(CompletionInfo::MAX_VALUES);
    let total = (!has_more).then_some(values.len() as u32);
    CompletionInfo::with_pagination(values, total, has_more)
        .map_err(|e| ToolError::Unavailable(format!("completion: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{ArgumentInfo, CompletionContext};

    fn req(r: Reference, name: &str, value: &str) -> CompleteRequestParams {
        CompleteRequestParams::new(r, ArgumentInfo::new(name, value))
    }

    #[test]
    fn each_argument_asks_the_catalog_for_the_right_names() {
        let tpl = || Reference::for_resource(TABLE_TEMPLATE);
        assert_eq!(
            want(&req(tpl(), "schema", "pu")),
            Want::Schemas("pu".into())
        );
        assert_eq!(
            want(&req(tpl(), "table", "or")),
            Want::Tables("or".into(), None)
        );
        let mut r = req(tpl(), "table", "or");
        r.context = Some(CompletionContext::with_arguments(
            [("schema".to_owned(), "app".to_owned())].into(),
        ));
        assert_eq!(want(&r), Want::Tables("or".into(), Some("app".into())));
        let p = || Reference::for_prompt("analyze_query_performance");
        assert_eq!(
            want(&req(p(), "sql", "SELECT * FROM ord")),
            Want::SqlTable("SELECT * FROM ".into(), "ord".into())
        );
        assert_eq!(want(&req(p(), "sql", "SEL")), Want::Nothing);
        assert_eq!(
            want(&req(Reference::for_prompt("test_prompt"), "arg1", "x")),
            Want::Nothing
        );
        assert_eq!(
            want(&req(Reference::for_resource("test://x/{id}"), "id", "1")),
            Want::Nothing
        );
    }
}
