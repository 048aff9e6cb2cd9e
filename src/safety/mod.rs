//! Safety: statement classification with the real PostgreSQL parser (`pg_query`) and the
//! rules of which action may run what.

pub mod classify;
pub(crate) mod destructive;
pub(crate) mod functions;
pub mod ident;
pub(crate) mod policy;
pub(crate) mod scan;
