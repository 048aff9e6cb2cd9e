-- ColdQuery's own schema: the audit log of every write, DDL and admin action (contract §5.6).
-- Rows are written on a separate connection, outside the caller's transaction, so a rollback
-- never erases the record of what was attempted.
-- Not `CREATE SCHEMA IF NOT EXISTS`: PostgreSQL checks the database's CREATE privilege before
-- it looks for the schema, which would fail for a least-privilege role that owns a schema an
-- administrator created for it.
DO $$
BEGIN
    IF to_regnamespace('coldquery') IS NULL THEN
        CREATE SCHEMA coldquery;
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS coldquery.audit_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    principal     text NOT NULL,           -- bearer-token name, Tailscale login, or 'anonymous'
    mcp_session   text,                    -- Mcp-Session-Id of 2025-11-25 clients
    session_id    text,                    -- pg_tx handle, when the call used one
    tool          text NOT NULL,
    action        text NOT NULL,
    statement     text,                    -- SQL with passwords redacted; parameters are not stored
    rows_affected bigint,
    duration_ms   double precision,
    outcome       text NOT NULL,           -- ok, dry_run, or an error category
    sqlstate      text
);

CREATE INDEX IF NOT EXISTS audit_log_at_idx ON coldquery.audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_principal_idx ON coldquery.audit_log (principal, at);
