//! The instructions a client gets at initialize (2025-11-25) or discover (2026-07-28): what the
//! tools are for, in the order a model needs them. Kept short: they are sent into every
//! conversation.

/// Short instructions sent at initialize / discover.
pub(super) const INSTRUCTIONS: &str = "ColdQuery gives safe access to one PostgreSQL database through \
tools with an action argument. pg_read does every read without changing anything: query \
(SELECT, capped rows), explain (plans), list and describe (schema), stats, settings, tx_list. \
pg_query: read, explain (analyze: true measures), write (INSERT/UPDATE/DELETE) and transaction. \
pg_schema: list, describe; create/alter/drop run DDL. pg_admin: vacuum/analyze/reindex, stats, \
settings. pg_tx: begin a transaction that spans calls (pass its session_id to the other tools), \
then commit or rollback. pg_monitor: health, activity, connections, locks, size, slow_queries. \
Anything that changes the database is default-deny: pass autocommit: true (or a session_id; \
dry_run: true previews a write or DDL and rolls it back). Pass values in params ($1, $2…), never \
inside the SQL text. Start with pg_read list and describe to learn the schema.";

/// Instructions under `COLDQUERY_READ_ONLY=true`, where only the read-only tools are listed.
pub(super) const READ_ONLY_INSTRUCTIONS: &str = "ColdQuery gives read-only access to one PostgreSQL \
database (the server runs with COLDQUERY_READ_ONLY=true: nothing can be changed). pg_read: \
query (SELECT, capped rows), explain (plans), list and describe (schema), stats, settings, \
tx_list. pg_monitor: health, activity, connections, locks, size, slow_queries. Pass values in \
params ($1, $2…), never inside the SQL text. Start with pg_read list and describe.";
