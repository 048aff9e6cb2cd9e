//! Confirmation of destructive statements (contract §8): before a statement the policy marks
//! destructive runs, the client's user is asked through MCP elicitation, or the call is
//! refused with a one-time confirm token that approves exactly that call. Which calls can be
//! destructive is a match on the call's [`ToolAction`].
//!
//! Tokens are HMAC-SHA256 over the caller (its ownership key), the tool and the call's
//! canonical arguments (action, SQL text, params, session…; everything but `confirm`), with a
//! key drawn at start-up: a restart voids every token. Each token carries a random nonce and
//! its expiry (10 minutes); the nonces of tokens issued and not yet used are kept in a bounded
//! map, so that a token works once. A token for another statement, other parameters or another
//! caller fails the MAC and stays usable for the call it was issued for.
//!
//! Stateless (2026-07-28) requests cannot carry a server-to-client request; a client that
//! declares elicitation in such a request's `_meta` is asked through the multi-round-trip
//! pattern instead (SEP-2322): the call answers `input_required` with an elicitation and a
//! `requestState` (a token of its own kind, which never works as `confirm`), and the client
//! repeats the call with the answer and that state.

use std::time::Duration;

use rmcp::model::{
    ElicitRequest, ElicitRequestParams, ElicitationAction, ElicitationSchema, InputRequest,
    InputRequests, InputRequiredResult, InputResponses,
};
use rmcp::service::{ElicitationMode, Peer, RoleServer};
use serde_json::Value;

use crate::caller::Caller;
use crate::config::ConfirmMode;
use crate::error::ToolError;
use crate::mcp::names::{QueryAction, SchemaAction, ToolAction, ToolName};
use crate::mcp::results::QueryResult;
use crate::safety::classify::DdlKind;
use crate::safety::policy::{Action, Authority};
use crate::state::AppState;

mod tokens;
pub use tokens::Confirmations;
use tokens::PREFIX;
pub(crate) use tokens::binding;

/// How long a person has to answer an elicitation.
const ELICIT_TIMEOUT: Duration = Duration::from_secs(300);

/// Whether the client of this request can be asked with a server-to-client elicitation: it
/// declared the capability (form mode) in an MCP session. Stateless (2026-07-28) requests
/// cannot carry one (rmcp refuses it); they are asked through `input_required` instead
/// ([`can_round_trip`]).
pub(crate) fn can_elicit(peer: &Peer<RoleServer>, in_session: bool) -> bool {
    in_session
        && peer
            .supported_elicitation_modes()
            .contains(&ElicitationMode::Form)
        && peer
            .peer_info()
            .is_some_and(|i| i.protocol_version < rmcp::model::ProtocolVersion::V_2026_07_28)
}

/// How the client of this request can be asked, worked out once per call.
#[derive(Debug, Default)]
pub(crate) struct Ask<'a> {
    /// An MCP session whose client declared elicitation: ask with a server-to-client request.
    pub(crate) peer: Option<&'a Peer<RoleServer>>,
    /// A stateless (2026-07-28) request whose `_meta` declares elicitation: ask through
    /// `input_required` (multi round-trip).
    pub(crate) round_trip: bool,
    /// The answers of a repeated round-trip request.
    pub(crate) responses: Option<&'a InputResponses>,
    /// The `requestState` the repeated request echoes.
    pub(crate) state: Option<&'a str>,
}

/// Whether a stateless request may be answered with `input_required` carrying a form
/// elicitation: it speaks 2026-07-28 or later and declares the capability in its `_meta`.
pub(crate) fn can_round_trip(
    version: Option<rmcp::model::ProtocolVersion>,
    caps: Option<rmcp::model::ClientCapabilities>,
    in_session: bool,
) -> bool {
    let modern = version.is_some_and(|v| v >= rmcp::model::ProtocolVersion::V_2026_07_28);
    let form = caps.and_then(|c| c.elicitation).is_some_and(|e| {
        // No mode named means form (backward compatibility), as for sessions.
        e.form.is_some() || e.url.is_none()
    });
    !in_session && modern && form
}

/// What the round-trip state is bound to: the call, marked so that it never redeems as a
/// `confirm` token (which would let a client skip the question in `elicit` mode).
fn round_trip_binding(bound: &[u8]) -> Vec<u8> {
    let mut b = b"input_required\0".to_vec();
    b.extend_from_slice(bound);
    b
}

/// Runs before a `pg_query` or `pg_schema` call: takes `confirm` out of `args`, and returns
/// `Ok` when the call may run (not destructive, confirmation off, a valid token, or a person
/// accepted through elicitation). Calls whose statement the policy refuses pass through: the
/// tool itself reports the refusal, exactly as without confirmation.
pub(crate) async fn check(
    state: &AppState,
    caller: &Caller,
    tool: ToolName,
    args: &mut Value,
    ask: Ask<'_>,
) -> Result<(), ToolError> {
    if !matches!(tool, ToolName::Query | ToolName::Schema) {
        return Ok(());
    }
    let token = match args.as_object_mut().and_then(|o| o.remove("confirm")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            return Err(ToolError::InvalidInput(
                "confirm must be the string token of a confirmation_required error".into(),
            ));
        }
    };
    let mode = state.config.confirm_destructive;
    if mode == ConfirmMode::Off {
        return Ok(());
    }
    let Some(reason) = destructive(state, tool, args).await else {
        return Ok(());
    };
    let bound = binding(caller, tool.name(), args);
    if let Some(t) = &token
        && state.confirmations.redeem(t, &bound)
    {
        return Ok(());
    }
    if ask.round_trip && mode != ConfirmMode::Token {
        let rt = round_trip_binding(&bound);
        if let Some(echoed) = ask.state
            && echoed.starts_with(PREFIX)
            && state.confirmations.redeem(echoed, &rt)
        {
            // The repeat of the very call that was asked about, once: the answer decides.
            let answer = ask
                .responses
                .and_then(|r| r.get("confirm"))
                .and_then(|v| serde_json::from_value::<rmcp::model::ElicitResult>(v.clone()).ok());
            return match answer.map(judge) {
                Some(Asked::Accepted) => Ok(()),
                Some(Asked::Declined(how)) => Err(declined(how, reason)),
                Some(Asked::Failed) | None => Err(declined("did not answer", reason)),
            };
        }
        // First round (or a state that is unknown, used or expired): ask.
        let preview = preview(state, caller, tool, args).await?;
        let what = statement_of(args);
        let message = question(reason, &what, &preview);
        let mut requests = InputRequests::new();
        requests.insert(
            "confirm".into(),
            InputRequest::Elicitation(ElicitRequest::new(form(message))),
        );
        return Err(ToolError::InputRequired(Box::new(
            InputRequiredResult::new(Some(requests), Some(state.confirmations.issue(&rt))),
        )));
    }
    let stale = if token.is_some() {
        " The confirm token given does not approve this call: it was issued for another \
         statement, other parameters or another caller, has expired, or was used already."
    } else {
        ""
    };
    let preview = preview(state, caller, tool, args).await?;
    let what = statement_of(args);
    let peer = ask.peer.filter(|_| mode != ConfirmMode::Token);
    if let Some(peer) = peer {
        match elicit(peer, question(reason, &what, &preview)).await {
            Asked::Accepted => return Ok(()),
            Asked::Declined(how) => return Err(declined(how, reason)),
            // The client could not be asked after all: fall back to the token.
            Asked::Failed if mode == ConfirmMode::On => {}
            Asked::Failed => {
                return Err(ToolError::ConfirmationDeclined(format!(
                    "the user could not be asked to confirm the destructive statement \
                     ({reason}); nothing ran"
                )));
            }
        }
    } else if mode == ConfirmMode::Elicit {
        return Err(ToolError::ConfirmationRequired {
            message: format!(
                "{reason}; {preview} This server accepts such statements only when a person \
                 confirms them through MCP elicitation (COLDQUERY_CONFIRM_DESTRUCTIVE=elicit), \
                 which this client does not offer; nothing ran. Ask the user to run it from a \
                 client that supports elicitation, or narrow the statement (add a WHERE).{stale}"
            ),
            token: None,
        });
    }
    Err(ToolError::ConfirmationRequired {
        message: format!(
            "{reason}; {preview} Nothing ran: it needs a confirmation. Make sure the user wants \
             this, then repeat the call with the confirm token.{stale}"
        ),
        token: Some(state.confirmations.issue(&bound)),
    })
}

/// The statement text(s) of a call, for the person asked (cut to a readable length).
fn statement_of(args: &Value) -> String {
    let cut = |s: &str| -> String {
        let s = s.trim();
        if s.chars().count() > 600 {
            format!("{}…", s.chars().take(600).collect::<String>())
        } else {
            s.to_owned()
        }
    };
    if let Some(sql) = args.get("sql").and_then(Value::as_str) {
        return format!("Statement: {}", cut(sql));
    }
    let ops = args
        .get("operations")
        .and_then(Value::as_array)
        .map(|ops| {
            ops.iter()
                .take(10)
                .enumerate()
                .map(|(i, op)| {
                    format!(
                        "  {i}: {}",
                        cut(op.get("sql").and_then(Value::as_str).unwrap_or(""))
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    format!("Operations:\n{ops}")
}

/// Why the call needs confirmation, if it does (the policy's [`crate::safety::policy::Plan`]
/// says). `None` also when the statement does not parse or is refused: the tool reports that.
/// Whether [`check`] has anything to do for a call: a `confirm` argument to take out, or an
/// action that can be destructive. `dispatch` skips building its future when not (reads).
pub(crate) fn applies(tool: ToolName, args: &Value) -> bool {
    matches!(tool, ToolName::Query | ToolName::Schema)
        && (args.get("confirm").is_some() || ToolAction::of(tool, args).is_some_and(confirmable))
}

/// [`applies`] before the arguments are a `Value`: true when it may apply (an action that is
/// missing or unknown counts as one that may).
pub(crate) fn may_apply(tool: ToolName, args: Option<&serde_json::Map<String, Value>>) -> bool {
    matches!(tool, ToolName::Query | ToolName::Schema)
        && args.is_none_or(|a| {
            a.contains_key("confirm")
                || a.get("action")
                    .and_then(Value::as_str)
                    .and_then(|action| ToolAction::parse(tool, action))
                    .is_none_or(confirmable)
        })
}

/// The actions whose statements can be destructive: the only ones [`destructive`] looks at.
fn confirmable(action: ToolAction) -> bool {
    matches!(
        action,
        ToolAction::Query(QueryAction::Write | QueryAction::Transaction)
            | ToolAction::Schema(SchemaAction::Create | SchemaAction::Alter | SchemaAction::Drop)
    )
}

async fn destructive(state: &AppState, tool: ToolName, args: &Value) -> Option<&'static str> {
    let action = ToolAction::of(tool, args).filter(|a| confirmable(*a))?;
    let flag = |k: &str| args.get(k).and_then(Value::as_bool).unwrap_or(false);
    let auth = Authority {
        dry_run: flag("dry_run"),
        autocommit: flag("autocommit"),
        session: args.get("session_id").is_some_and(|v| !v.is_null()),
    };
    if auth.dry_run {
        return None;
    }
    let sql = || args.get("sql").and_then(Value::as_str);
    match action {
        ToolAction::Query(QueryAction::Write) => {
            let parsed = crate::mcp::common::parse(sql()?).ok()?;
            let plan = crate::mcp::gate::authorize(state, Action::Write, &parsed, auth)
                .await
                .ok()?;
            plan.destructive
        }
        ToolAction::Query(QueryAction::Transaction) => {
            let mut parsed = Vec::new();
            for op in args.get("operations")?.as_array()? {
                parsed.push(crate::mcp::common::parse(op.get("sql")?.as_str()?).ok()?);
            }
            let plan = crate::mcp::gate::authorize_operations(state, &parsed, auth)
                .await
                .ok()?;
            plan.destructive
        }
        ToolAction::Schema(
            ddl @ (SchemaAction::Create | SchemaAction::Alter | SchemaAction::Drop),
        ) => {
            let kind = match ddl {
                SchemaAction::Create => DdlKind::Create,
                SchemaAction::Alter => DdlKind::Alter,
                _ => DdlKind::Drop,
            };
            let parsed = crate::mcp::common::parse(sql()?).ok()?;
            let plan = crate::mcp::gate::authorize(state, Action::Ddl(kind), &parsed, auth)
                .await
                .ok()?;
            plan.destructive
        }
        _ => None,
    }
}

/// What the statement would do, from a dry run of the same call (rolled back; inside a
/// session, under a savepoint that is rolled back). An error that would also stop the real
/// call (a constraint, a missing table) is returned as is: nothing runs either way.
async fn preview(
    state: &AppState,
    caller: &Caller,
    tool: ToolName,
    args: &Value,
) -> Result<String, ToolError> {
    let mut dry = args.clone();
    if let Value::Object(o) = &mut dry {
        o.insert("dry_run".into(), Value::Bool(true));
        o.remove("autocommit");
    }
    let parse_err = |e: serde_json::Error| {
        ToolError::InvalidInput(format!(
            "bad arguments for {}: {e}; see the tool's input schema",
            tool.name()
        ))
    };
    let counts: Option<Vec<u64>> = match tool {
        ToolName::Query => {
            let a = serde_json::from_value(dry).map_err(parse_err)?;
            match crate::mcp::query::call(state, caller, a).await {
                Ok(QueryResult::Rows(r)) => r.rows_affected.map(|n| vec![n]),
                Ok(QueryResult::Transaction(t)) => {
                    // One figure per operation that reports rows (reads report none).
                    let each = t.results.iter().enumerate();
                    return Ok(format!(
                        "A dry run (rolled back) affected these rows: {}.",
                        each.filter_map(|(i, r)| r
                            .rows_affected
                            .map(|n| format!("operation {i}: {n}")))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                Ok(_) => None,
                Err(e) => return could_not_dry_run(e),
            }
        }
        _ => {
            let a = serde_json::from_value(dry).map_err(parse_err)?;
            match crate::mcp::schema::call(state, caller, a).await {
                // DDL reports no row counts: the table's size is the preview.
                Ok(_) => None,
                Err(e) => return could_not_dry_run(e),
            }
        }
    };
    if let Some([n]) = counts.as_deref() {
        return Ok(format!(
            "A dry run (rolled back) affected {n} row{}.",
            if *n == 1 { "" } else { "s" }
        ));
    }
    let estimate = table_rows(state, args).await;
    Ok(match estimate {
        Some(n) => format!("A dry run succeeded (rolled back); the table holds about {n} rows."),
        None => "A dry run succeeded (rolled back).".into(),
    })
}

/// The preview when the dry run itself failed.
fn could_not_dry_run(e: ToolError) -> Result<String, ToolError> {
    match e {
        // The dry run is stricter than the real call (only allowlisted functions may run
        // where nothing may last): say that the count is unknown, and ask anyway.
        ToolError::PolicyDenied(_) | ToolError::InvalidInput(_) => {
            Ok("It could not be dry-run, so the rows it would affect are unknown.".into())
        }
        e => Err(e),
    }
}

/// The planner's row estimate of the table a TRUNCATE or DROP TABLE names (the first one).
async fn table_rows(state: &AppState, args: &Value) -> Option<i64> {
    use pg_query::NodeEnum;
    let sql = args.get("sql")?.as_str()?;
    let parsed = crate::mcp::common::parse(sql).ok()?;
    let name = match parsed.stmt() {
        NodeEnum::TruncateStmt(t) => match t.relations.first()?.node.as_ref()? {
            NodeEnum::RangeVar(r) => {
                let mut parts = Vec::new();
                if !r.schemaname.is_empty() {
                    parts.push(crate::safety::ident::quote_ident(&r.schemaname));
                }
                parts.push(crate::safety::ident::quote_ident(&r.relname));
                parts.join(".")
            }
            _ => return None,
        },
        NodeEnum::DropStmt(d) => match d.objects.first()?.node.as_ref()? {
            NodeEnum::List(l) => l
                .items
                .iter()
                .map(|n| match n.node.as_ref() {
                    Some(NodeEnum::String(s)) => Some(crate::safety::ident::quote_ident(&s.sval)),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?
                .join("."),
            _ => return None,
        },
        _ => return None,
    };
    // The name is bound, never pasted; a statistics figure, so no table scan for a count.
    let mut conn = state.pools.monitor.acquire().await.ok()?;
    sqlx::query_scalar::<_, i64>(
        "SELECT greatest(c.reltuples, 0)::bigint FROM pg_class c WHERE c.oid = to_regclass($1)",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .ok()
    .flatten()
}

enum Asked {
    Accepted,
    /// "declined" or "cancelled".
    Declined(&'static str),
    /// The request did not reach the user (no answer, transport).
    Failed,
}

/// The question a person is asked.
fn question(reason: &str, what: &str, preview: &str) -> String {
    format!(
        "ColdQuery is about to run a destructive statement: {reason}.\n\n{what}\n\n{preview}\n\nRun it?"
    )
}

fn declined(how: &str, reason: &str) -> ToolError {
    ToolError::ConfirmationDeclined(format!(
        "the user {how} the destructive statement ({reason}); nothing ran. Do not retry it \
         unless the user asks for it"
    ))
}

/// The form: one required boolean, `confirm`.
fn form(message: String) -> ElicitRequestParams {
    let schema = ElicitationSchema::builder()
        .required_bool("confirm")
        .description("Set confirm to true to run the statement")
        .build()
        .expect("a schema with one property");
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema: schema,
    }
}

/// Only an accepted form with `confirm: true` is a yes.
fn judge(r: rmcp::model::ElicitResult) -> Asked {
    match r.action {
        ElicitationAction::Accept => {
            let yes = r
                .content
                .as_ref()
                .and_then(|c| c.get("confirm"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if yes {
                Asked::Accepted
            } else {
                Asked::Declined("declined")
            }
        }
        ElicitationAction::Decline => Asked::Declined("declined"),
        ElicitationAction::Cancel => Asked::Declined("cancelled"),
        // A future answer this server does not know is not a yes.
        _ => Asked::Declined("declined"),
    }
}

async fn elicit(peer: &Peer<RoleServer>, message: String) -> Asked {
    match peer
        .create_elicitation_with_timeout(form(message), Some(ELICIT_TIMEOUT))
        .await
    {
        Ok(r) => judge(r),
        Err(rmcp::service::ServiceError::Timeout { .. }) => Asked::Declined("did not answer"),
        Err(e) => {
            tracing::warn!(error = %e, "elicitation failed; falling back to a confirm token");
            Asked::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn caller(owner: &str) -> Caller {
        let mut c = Caller::anonymous();
        c.owner = owner.into();
        c
    }

    #[test]
    fn only_stateless_modern_requests_that_declare_form_elicitation_round_trip() {
        use rmcp::model::{ClientCapabilities, ProtocolVersion};
        let with = || Some(ClientCapabilities::builder().enable_elicitation().build());
        let modern = || Some(ProtocolVersion::V_2026_07_28);
        assert!(can_round_trip(modern(), with(), false));
        assert!(
            !can_round_trip(modern(), with(), true),
            "sessions are asked directly"
        );
        assert!(!can_round_trip(
            modern(),
            Some(ClientCapabilities::default()),
            false
        ));
        assert!(!can_round_trip(modern(), None, false));
        assert!(!can_round_trip(
            Some(ProtocolVersion::V_2025_06_18),
            with(),
            false
        ));
    }

    #[test]
    fn a_round_trip_state_is_not_a_confirm_token() {
        let store = Confirmations::new();
        let bound = binding(
            &caller("anonymous"),
            "pg_query",
            &json!({"sql": "DELETE FROM t"}),
        );
        let state = store.issue(&round_trip_binding(&bound));
        assert!(!store.redeem(&state, &bound));
        assert!(store.redeem(&state, &round_trip_binding(&bound)));
    }

    #[test]
    fn the_check_is_skipped_only_for_calls_it_could_not_stop_or_change() {
        let q = ToolName::Query;
        let s = ToolName::Schema;
        assert!(!applies(q, &json!({"action": "read", "sql": "SELECT 1"})));
        assert!(!applies(
            q,
            &json!({"action": "explain", "sql": "DELETE FROM t"})
        ));
        assert!(!applies(
            ToolName::Admin,
            &json!({"action": "vacuum", "confirm": "x"})
        ));
        assert!(!applies(s, &json!({"action": "list"})));
        assert!(applies(
            q,
            &json!({"action": "write", "sql": "DELETE FROM t"})
        ));
        assert!(applies(
            q,
            &json!({"action": "transaction", "operations": []})
        ));
        for ddl in ["create", "alter", "drop"] {
            assert!(
                applies(s, &json!({"action": ddl, "sql": "DROP TABLE t"})),
                "{ddl}"
            );
        }
        // A `confirm` argument is always taken out (and checked), whatever the action.
        assert!(applies(
            q,
            &json!({"action": "read", "sql": "SELECT 1", "confirm": "t"})
        ));
        assert!(applies(q, &json!({"action": "read", "confirm": null})));
    }
}
