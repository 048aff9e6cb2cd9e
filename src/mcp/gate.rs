//! The tools' way into the policy point ([`crate::safety::policy`]): fetches the catalog
//! snapshot, asks, reloads the snapshot once when a statement names something it lacks, and
//! turns refusals into `policy_denied` errors.

use crate::error::ToolError;
use crate::safety::classify::Parsed;
use crate::safety::policy::{self, Action, Authority, Denial, Plan};
use crate::state::AppState;

use super::common::refused;

/// Authorizes one statement for `action` with the caller's `auth`.
pub(crate) async fn authorize(
    state: &AppState,
    action: Action,
    parsed: &Parsed,
    auth: Authority,
) -> Result<Plan, ToolError> {
    let cat = state.catalog.get().await?;
    match policy::authorize(action, parsed, auth, &cat, &state.rules) {
        Ok(plan) => Ok(plan),
        Err(Denial::Refused(r)) => Err(refused(r)),
        Err(Denial::Unknown(_)) => {
            let cat = state.catalog.refresh_after_miss().await?;
            match policy::authorize(action, parsed, auth, &cat, &state.rules) {
                Ok(plan) => Ok(plan),
                Err(Denial::Refused(r)) => Err(refused(r)),
                Err(Denial::Unknown(name)) => Err(refused(policy::unknown_refusal(&name))),
            }
        }
    }
}

/// Authorizes the operations of `pg_query transaction`; an error names the operation.
pub(crate) async fn authorize_operations(
    state: &AppState,
    parsed: &[Parsed],
    auth: Authority,
) -> Result<Plan, ToolError> {
    let mut plan = Plan {
        read_only: true,
        commit: false,
        close_connection: false,
        explain: None,
        one_statement: false,
        destructive: None,
    };
    // Each operation is checked as if authorized, so that a refusal names its operation;
    // whether writes may commit at all is decided once, below.
    let each = Authority {
        autocommit: true,
        ..auth
    };
    for (i, p) in parsed.iter().enumerate() {
        let one = authorize(state, Action::Operation, p, each)
            .await
            .map_err(|e| e.at_operation(i))?;
        plan.read_only &= one.read_only;
        plan.close_connection |= one.close_connection;
        plan.destructive = plan.destructive.or(one.destructive);
    }
    if !plan.read_only && !auth.dry_run && !auth.autocommit && !auth.session {
        return Err(refused(policy::default_deny_operations()));
    }
    plan.commit = !auth.dry_run && !auth.session;
    Ok(plan)
}
