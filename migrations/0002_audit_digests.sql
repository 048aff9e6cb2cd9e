-- MCP session ids and pg_tx handles are no longer stored in clear (contract §8): whoever can
-- read the audit log must not be able to take over a session with what they read. From now on
-- the server writes digests (the first 16 hex digits of the id's SHA-256); rows written before
-- this migration are converted the same way, so no clear id stays behind.
UPDATE coldquery.audit_log
SET mcp_session = CASE WHEN mcp_session IS NULL THEN NULL
                       ELSE left(encode(sha256(convert_to(mcp_session, 'UTF8')), 'hex'), 16) END,
    session_id  = CASE WHEN session_id IS NULL THEN NULL
                       ELSE left(encode(sha256(convert_to(session_id, 'UTF8')), 'hex'), 16) END
WHERE mcp_session IS NOT NULL OR session_id IS NOT NULL;

COMMENT ON COLUMN coldquery.audit_log.mcp_session IS
    'digest of the Mcp-Session-Id: left(encode(sha256(id), ''hex''), 16)';
COMMENT ON COLUMN coldquery.audit_log.session_id IS
    'digest of the pg_tx handle: left(encode(sha256(handle), ''hex''), 16)';
