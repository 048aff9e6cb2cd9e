//! The function denylist: calls the gates refuse because their effects escape the transaction
//! (signals, files, other databases, session state, WAL, …) or because they run SQL hidden in a
//! string. Each entry says whether it is refused everywhere or only in reads, and why.

/// How a denylist entry matches a function's (unqualified, lower-cased) name.
#[derive(Debug, Clone, Copy)]
enum NameMatch {
    /// The whole name.
    Exact(&'static str),
    /// Every name starting with this (function families such as `dblink*`).
    Prefix(&'static str),
}

/// One denylisted function (or family).
#[derive(Debug, Clone, Copy)]
pub(super) struct DeniedFunction {
    /// Which names the entry covers.
    name: NameMatch,
    /// `true`: refused in every action that is walked (reads, writes, explain, embedded DDL
    /// queries) because the effect escapes the transaction or the SQL cannot be checked.
    /// `false`: refused only in reads (and explain of reads); a normal part of writes.
    pub(super) everywhere: bool,
    /// Completes `"function X is not allowed …: <why>"`.
    pub(super) why: &'static str,
}

/// Shorthand constructors keep the table below one line per entry.
const fn exact(name: &'static str, everywhere: bool, why: &'static str) -> DeniedFunction {
    DeniedFunction {
        name: NameMatch::Exact(name),
        everywhere,
        why,
    }
}
const fn prefix(name: &'static str, everywhere: bool, why: &'static str) -> DeniedFunction {
    DeniedFunction {
        name: NameMatch::Prefix(name),
        everywhere,
        why,
    }
}

const SIGNALS: &str = "it signals or controls other server processes";
const SERVER_STATE: &str = "it changes server-wide state outside the transaction";
const FILES: &str = "it accesses the database server's file system";
const REMOTE: &str = "it opens connections to other databases, outside this transaction";
const SESSION: &str = "it changes session state that outlives the call on a pooled connection";
const SESSION_LOCK: &str = "it takes or releases session-level advisory locks that outlive the call on a pooled connection";
const XACT_LOCK: &str = "it takes advisory locks; run it in a pg_tx session via pg_query write";
const SEQUENCE: &str =
    "it advances or sets a sequence, which is not rolled back; use pg_query write";
const LARGE_OBJECT: &str = "it creates, opens or modifies large objects; use pg_query write";
const NOTIFY: &str = "it sends notifications to other sessions";
const WAL: &str = "it acts on WAL, backups or replication, outside the transaction";
const HIDDEN_SQL: &str = "it runs SQL given as a string, which cannot be checked";
const STATS: &str = "it resets or overwrites statistics, which is not transactional";
const SEED: &str =
    "it seeds random() for the rest of the connection's life, a state that outlives the call";
const INDEX_STATE: &str =
    "it changes index state that a rollback does not undo; use pg_query write (or pg_admin)";

/// Functions refused by the checks, matched on the unqualified name, case-insensitively,
/// whatever the schema (`pg_catalog.pg_read_file`, `"pg_read_file"`), wherever they are
/// called: target list, FROM (incl. LATERAL and ROWS FROM), WHERE, subqueries, CTEs,
/// arguments, ORDER BY, window clauses, CALL.
///
/// The read-only transaction already stops most writes; this list is about what it does
/// not stop. Add entries freely: a false refusal is cheap, a missed side effect is not.
/// Deliberately absent: pg_sleep* (harmless; statement timeouts bound it), currval and
/// txid_current / pg_current_xact_id (harmless in a read-only transaction), lo_get / loread.
const DENIED_FUNCTIONS: &[DeniedFunction] = &[
    // Other backends and server processes.
    exact("pg_terminate_backend", true, SIGNALS),
    exact("pg_cancel_backend", true, SIGNALS),
    exact("pg_signal_backend", true, SIGNALS),
    exact("pg_log_backend_memory_contexts", true, SIGNALS),
    exact("pg_promote", true, SIGNALS),
    // Server configuration and logs.
    exact("pg_reload_conf", true, SERVER_STATE),
    exact("pg_rotate_logfile", true, SERVER_STATE),
    exact("pg_import_system_collations", true, SERVER_STATE),
    // Server file system (core and adminpack).
    prefix("pg_read_file", true, FILES),
    prefix("pg_read_binary_file", true, FILES),
    prefix("pg_ls_", true, FILES),
    exact("pg_stat_file", true, FILES),
    exact("pg_file_write", true, FILES),
    exact("pg_file_rename", true, FILES),
    exact("pg_file_unlink", true, FILES),
    exact("pg_file_sync", true, FILES),
    exact("pg_logdir_ls", true, FILES),
    exact("lo_import", true, FILES),
    exact("lo_export", true, FILES),
    // Other databases and background workers.
    prefix("dblink", true, REMOTE),
    prefix("pg_background_", true, REMOTE),
    // Session state.
    exact("set_config", true, SESSION),
    exact("setseed", true, SEED),
    prefix("pg_advisory_lock", true, SESSION_LOCK),
    prefix("pg_try_advisory_lock", true, SESSION_LOCK),
    prefix("pg_advisory_unlock", true, SESSION_LOCK),
    // Transaction-scoped locks: fine in a write, not something a read should do.
    prefix("pg_advisory_xact_lock", false, XACT_LOCK),
    prefix("pg_try_advisory_xact_lock", false, XACT_LOCK),
    // Sequences: nextval/setval are not rolled back (and fail in read-only transactions anyway).
    exact("nextval", false, SEQUENCE),
    exact("setval", false, SEQUENCE),
    // Large objects: transactional writes, fine in the write action. (The SQL-level
    // writer is `lowrite`; `lo_write` is only a libpq client call.)
    exact("lo_create", false, LARGE_OBJECT),
    exact("lo_creat", false, LARGE_OBJECT),
    exact("lo_open", false, LARGE_OBJECT),
    exact("lo_unlink", false, LARGE_OBJECT),
    exact("lowrite", false, LARGE_OBJECT),
    exact("lo_put", false, LARGE_OBJECT),
    exact("lo_from_bytea", false, LARGE_OBJECT),
    prefix("lo_truncate", false, LARGE_OBJECT),
    // Index maintenance that works even in a READ ONLY transaction and is not rolled back.
    exact("brin_summarize_new_values", false, INDEX_STATE),
    exact("brin_summarize_range", false, INDEX_STATE),
    exact("brin_desummarize_range", false, INDEX_STATE),
    exact("gin_clean_pending_list", false, INDEX_STATE),
    // Notifications.
    exact("pg_notify", true, NOTIFY),
    // WAL, backups, replication.
    exact("pg_switch_wal", true, WAL),
    exact("pg_create_restore_point", true, WAL),
    exact("pg_start_backup", true, WAL),
    exact("pg_stop_backup", true, WAL),
    exact("pg_backup_start", true, WAL),
    exact("pg_backup_stop", true, WAL),
    prefix("pg_wal_replay_", true, WAL),
    exact("pg_create_physical_replication_slot", true, WAL),
    exact("pg_create_logical_replication_slot", true, WAL),
    exact("pg_copy_physical_replication_slot", true, WAL),
    exact("pg_copy_logical_replication_slot", true, WAL),
    exact("pg_drop_replication_slot", true, WAL),
    exact("pg_replication_slot_advance", true, WAL),
    exact("pg_sync_replication_slots", true, WAL),
    prefix("pg_logical_slot_", true, WAL),
    prefix("pg_replication_origin_", true, WAL),
    exact("pg_logical_emit_message", true, WAL),
    exact("pg_log_standby_snapshot", true, WAL),
    prefix("binary_upgrade_", true, WAL),
    // SQL hidden in strings (query_to_xml, query_to_xml_and_xmlschema, …).
    prefix("query_to_xml", true, HIDDEN_SQL),
    prefix("cursor_to_xml", true, HIDDEN_SQL),
    prefix("table_to_xml", true, HIDDEN_SQL),
    prefix("schema_to_xml", true, HIDDEN_SQL),
    prefix("database_to_xml", true, HIDDEN_SQL),
    // ts_stat(sqlquery) and ts_rewrite(query, select) run their text argument as SQL. (The
    // three-argument ts_rewrite does not, but telling them apart needs types; refuse both.)
    exact("ts_stat", true, HIDDEN_SQL),
    exact("ts_rewrite", true, HIDDEN_SQL),
    // Statistics.
    prefix("pg_stat_reset", true, STATS),
    exact("pg_stat_statements_reset", true, STATS),
    exact("pg_set_relation_stats", true, STATS),
    exact("pg_clear_relation_stats", true, STATS),
    exact("pg_restore_relation_stats", true, STATS),
    exact("pg_set_attribute_stats", true, STATS),
    exact("pg_clear_attribute_stats", true, STATS),
    exact("pg_restore_attribute_stats", true, STATS),
];

/// Looks a (lower-cased, unqualified) function name up in [`DENIED_FUNCTIONS`].
pub(super) fn denied_function(name: &str) -> Option<&'static DeniedFunction> {
    DENIED_FUNCTIONS.iter().find(|d| match d.name {
        NameMatch::Exact(n) => name == n,
        NameMatch::Prefix(p) => name.starts_with(p),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::safety::classify::{check_read, check_write};
    use crate::safety::testkit::{assert_refused, parsed};

    // -----------------------------------------------------------------------------------
    // Function denylist
    // -----------------------------------------------------------------------------------

    /// (call, the name the refusal must mention)
    pub(crate) const DENIED_CALLS: &[(&str, &str)] = &[
        ("pg_read_file('/etc/passwd')", "pg_read_file"),
        ("pg_catalog.pg_read_file('/etc/passwd')", "pg_read_file"),
        ("\"pg_read_file\"('x')", "pg_read_file"),
        ("pg_catalog.\"pg_read_file\"('x')", "pg_read_file"),
        ("PG_READ_FILE('x')", "pg_read_file"),
        ("pg_read_binary_file('x')", "pg_read_binary_file"),
        ("pg_terminate_backend(1)", "pg_terminate_backend"),
        ("pg_cancel_backend(1)", "pg_cancel_backend"),
        ("pg_reload_conf()", "pg_reload_conf"),
        ("pg_ls_dir('.')", "pg_ls_dir"),
        ("pg_stat_file('x')", "pg_stat_file"),
        ("lo_import('/etc/passwd')", "lo_import"),
        ("dblink('dbname=x', 'select 1')", "dblink"),
        ("public.dblink_exec('x', 'y')", "dblink_exec"),
        ("set_config('role', 'x', false)", "set_config"),
        ("pg_advisory_lock(1)", "pg_advisory_lock"),
        ("pg_try_advisory_xact_lock(1)", "pg_try_advisory_xact_lock"),
        ("nextval('s')", "nextval"),
        ("setval('s', 1)", "setval"),
        ("pg_notify('c', 'x')", "pg_notify"),
        (
            "query_to_xml('delete from t', true, true, '')",
            "query_to_xml",
        ),
        ("pg_stat_reset()", "pg_stat_reset"),
        ("lo_unlink(1)", "lo_unlink"),
        ("pg_switch_wal()", "pg_switch_wal"),
        (
            "pg_create_logical_replication_slot('s', 'p')",
            "pg_create_logical_replication_slot",
        ),
        ("database_to_xml(true, true, '')", "database_to_xml"),
        ("ts_stat('SELECT pg_read_file(''x'')::tsvector')", "ts_stat"),
    ];

    /// Places a call can hide in a read; `{f}` is replaced by the call.
    pub(crate) const CALL_SITES: &[&str] = &[
        "SELECT {f}",
        "SELECT * FROM {f}",
        "SELECT * FROM {f} AS x(y text)",
        "SELECT * FROM t WHERE a = {f}",
        "SELECT * FROM t, LATERAL {f} AS x",
        "SELECT * FROM t, LATERAL (SELECT {f}) x",
        "SELECT (SELECT {f})",
        "SELECT CASE WHEN a THEN {f} END FROM t",
        "SELECT coalesce(length({f}::text), 0)",
        "SELECT * FROM t ORDER BY {f}",
        "WITH c AS (SELECT {f}) SELECT * FROM c",
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n FROM c WHERE {f} IS NULL) SELECT * FROM c",
        "SELECT * FROM t GROUP BY {f}",
        "SELECT count(*) FROM t HAVING count(*) > length({f}::text)",
        "SELECT * FROM ROWS FROM (generate_series(1, 2), {f}) AS r",
        "SELECT * FROM t WHERE EXISTS (SELECT 1 WHERE {f} IS NOT NULL)",
        "SELECT 1 UNION SELECT {f}",
        "VALUES ({f})",
        "SELECT row_number() OVER (ORDER BY {f})",
        "SELECT array_agg(a ORDER BY {f}) FROM t",
        "SELECT count(*) FILTER (WHERE {f} IS NULL) FROM t",
        "SELECT * FROM t LIMIT {f}",
        "SELECT json_build_object('k', {f})",
        "SELECT JSON_OBJECT('k' : {f})",
        "SELECT * FROM t WHERE a IN ({f})",
        "SELECT ARRAY[{f}]",
        "SELECT ({f}).x",
        "EXPLAIN SELECT {f}",
        "SELECT * FROM XMLTABLE('/r' PASSING CAST({f} AS xml) COLUMNS a int)",
        "SELECT * FROM t TABLESAMPLE BERNOULLI (length({f}::text))",
        "SELECT * FROM t JOIN u ON u.a = {f}",
        "SELECT * FROM t WHERE NOT ({f} IS NULL OR a > 1)",
        "SELECT {f}::text COLLATE \"C\"",
        "SELECT greatest(1, {f})",
        "SELECT JSON_VALUE(jsonb '{}', '$.a' PASSING {f} AS x)",
    ];

    #[test]
    fn denylisted_functions_are_refused_in_reads_wherever_they_hide() {
        let mut checked = 0;
        for (call, name) in DENIED_CALLS {
            for site in CALL_SITES {
                let sql = site.replace("{f}", call);
                let p = parsed(&sql);
                let refusal = check_read(&p).expect_err(&sql);
                let expected = format!("function {name} is not allowed in reads: ");
                assert!(
                    refusal.reason.starts_with(&expected),
                    "{sql:?}: {:?}",
                    refusal.reason
                );
                checked += 1;
            }
        }
        assert_eq!(checked, DENIED_CALLS.len() * CALL_SITES.len());
    }

    #[test]
    fn every_denylist_entry_matches_and_is_scoped() {
        for entry in DENIED_FUNCTIONS {
            let name = match entry.name {
                NameMatch::Exact(n) => n.to_string(),
                NameMatch::Prefix(p) => format!("{p}_variant"),
            };
            let read = parsed(&format!("SELECT {name}(1)"));
            assert_refused(&name, "read", check_read(&read), "is not allowed in reads");
            let write = parsed(&format!("INSERT INTO t SELECT {name}(1)"));
            if entry.everywhere {
                assert_refused(&name, "write", check_write(&write), "is not allowed: ");
            } else {
                assert_eq!(
                    check_write(&write),
                    Ok(()),
                    "{name} should be fine in writes"
                );
            }
            let call = parsed(&format!("CALL {name}(1)"));
            assert_eq!(check_write(&call).is_err(), entry.everywhere, "CALL {name}");
        }
    }
}
