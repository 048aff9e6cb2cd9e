//! Safety: statement classification with the real PostgreSQL parser (`pg_query`) and the
//! rules of which action may run what.

// check_ddl, check_admin and redact serve pg_schema, pg_admin and the audit log, which land
// with issues #4 and #5; until then they are exercised by this module's own tests only.
#[allow(dead_code)]
pub mod classify;
pub mod ident;
