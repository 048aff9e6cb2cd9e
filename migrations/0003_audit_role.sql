-- Caller roles (contract §8): a bearer token (or Tailscale login, or COLDQUERY_DEFAULT_ROLE) may
-- make a caller's statements run as a PostgreSQL role of its own. The audit log records it
-- beside the principal; NULL means the call ran as the login role.
ALTER TABLE coldquery.audit_log ADD COLUMN IF NOT EXISTS role text;

COMMENT ON COLUMN coldquery.audit_log.role IS
    'the PostgreSQL role the call ran as (SET LOCAL ROLE); NULL: the login role';
