//! Classification: what kind of statement a parse tree is (read, write, DDL, admin, …), whatever action it was sent to.
//!
//! Every statement an MCP client sends goes through [`parse_one`] (the real PostgreSQL
//! grammar, via libpg_query, in `parse.rs`) and then through the `check_*` gate of the action
//! it was sent to (`gates.rs`). The database's READ ONLY transaction is the second layer; these
//! modules exist so that refusals happen early, with a message a model can act on, and so that
//! things a read-only transaction does NOT stop (signalling backends, reading server files, session
//! state on a pooled connection, non-transactional sequence bumps, …) are refused at all.
//!
//! This file holds the classes ([`StatementClass`], [`DdlKind`], [`Forbidden`]) and `classify`,
//! which gives each top-level statement its command tag and class. The rest of the crate reaches
//! the safety layer through here: parsing, the gates and redaction are re-exported below.
//!
//! Decisions worth knowing (the files of `safety` explain the details where they are made):
//! - Exactly one statement per call; empty statements (`SELECT 1;;`) and comments do not count.
//! - `SELECT … FOR UPDATE/SHARE` and `LOCK TABLE` take locks, so they are write-class.
//! - A `SELECT` with a data-modifying `WITH` (at any depth) is write-class.
//! - `SELECT … INTO t` creates a table, so it is DDL `create` (as is `CREATE TABLE … AS`).
//! - `TRUNCATE` is DDL `drop`: it is not MVCC-safe (other snapshots see the table empty) and
//!   cannot be filtered by a WHERE clause, so it belongs with the destructive schema tools.
//! - `COMMENT ON`, `GRANT`/`REVOKE`, `SECURITY LABEL`, `REFRESH MATERIALIZED VIEW` are DDL `alter`.
//! - The explain action wants the bare statement; text that already starts with `EXPLAIN` is
//!   refused with a hint rather than unwrapped, because its options (ANALYZE, FORMAT …) would
//!   silently conflict with the action's own options.
//! - The tree walker fails closed: a node type it has no rule for makes the check refuse,
//!   so a future parser version can never smuggle an unvisited subtree past the checks.

use pg_query::protobuf as pb;
use pg_query::{Node, NodeEnum};

use super::walk::Facts;

pub(crate) use super::gates::{
    ExplainTarget, Refusal, check_admin, check_ddl, check_explain, check_read,
    check_rolled_back_write, check_write,
};
pub(crate) use super::parse::{ClassifyError, Parsed, parse_one};
pub(crate) use super::redact::redact;

/// The three DDL sub-actions of the pg_schema tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DdlKind {
    /// CREATE …, CREATE TABLE … AS, SELECT … INTO, IMPORT FOREIGN SCHEMA.
    Create,
    /// ALTER …, RENAME, OWNER, COMMENT ON, GRANT/REVOKE, SECURITY LABEL, REFRESH MATERIALIZED VIEW.
    Alter,
    /// DROP …, DROP OWNED, TRUNCATE.
    Drop,
}

impl DdlKind {
    /// The sub-action name as the pg_schema tool spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DdlKind::Create => "create",
            DdlKind::Alter => "alter",
            DdlKind::Drop => "drop",
        }
    }

    /// The tool call that runs statements of this kind.
    pub(super) fn tool(self) -> &'static str {
        match self {
            DdlKind::Create => "pg_schema create",
            DdlKind::Alter => "pg_schema alter",
            DdlKind::Drop => "pg_schema drop",
        }
    }
}

/// Statements that no action accepts, grouped by the explanation the caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forbidden {
    /// SET ROLE, SET SESSION AUTHORIZATION and their RESET forms.
    RoleSwitch,
    /// RESET ALL.
    ResetAll,
    /// Any other SET/RESET, and SET CONSTRAINTS.
    SessionSetting,
    /// ALTER SYSTEM.
    AlterSystem,
    /// COPY … TO/FROM PROGRAM.
    CopyProgram,
    /// COPY … TO/FROM '/server/file'.
    CopyServerFile,
    /// COPY … FROM STDIN / TO STDOUT.
    CopyStdio,
    /// LOAD 'library'.
    Load,
    /// DISCARD ALL/PLANS/SEQUENCES/TEMP.
    Discard,
    /// LISTEN, UNLISTEN, NOTIFY.
    ListenNotify,
    /// PREPARE, EXECUTE, DEALLOCATE.
    PreparedStatement,
    /// DECLARE, FETCH, MOVE, CLOSE.
    Cursor,
    /// CHECKPOINT.
    Checkpoint,
    /// CREATE/ALTER/DROP DATABASE (incl. rename and owner changes).
    Database,
    /// CREATE/ALTER/DROP TABLESPACE and ALTER … ALL IN TABLESPACE.
    Tablespace,
    /// A statement type this module does not know; refused so new syntax fails closed.
    Unsupported,
}

/// What kind of statement a [`Parsed`] is, independent of the action it was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatementClass {
    /// SELECT/VALUES/TABLE without INTO, locking or data-modifying WITH; SHOW; EXPLAIN (no ANALYZE) of such a read.
    Read,
    /// INSERT, UPDATE, DELETE, MERGE, CALL, DO, LOCK TABLE, SELECT … FOR UPDATE/SHARE, SELECT with a data-modifying WITH.
    Write,
    /// EXPLAIN ANALYZE of anything, or EXPLAIN of a non-read: belongs to the explain action.
    Explain,
    /// Schema changes for pg_schema.
    Ddl(DdlKind),
    /// VACUUM, ANALYZE, REINDEX, CLUSTER: pg_admin.
    Admin,
    /// BEGIN/COMMIT/ROLLBACK/SAVEPOINT/…, SET TRANSACTION: pg_tx.
    TxControl,
    /// Refused in every action.
    Forbidden(Forbidden),
}

/// Generates the CREATE/ALTER/DROP command tags for each object type from one table.
macro_rules! object_tags {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// `"CREATE <object>"` for an object type, "CREATE" when unknown.
        fn create_tag(t: pb::ObjectType) -> &'static str {
            match t {
                $(pb::ObjectType::$variant => concat!("CREATE ", $name),)*
                _ => "CREATE",
            }
        }
        /// `"ALTER <object>"` for an object type, "ALTER" when unknown.
        fn alter_tag(t: pb::ObjectType) -> &'static str {
            match t {
                $(pb::ObjectType::$variant => concat!("ALTER ", $name),)*
                _ => "ALTER",
            }
        }
        /// `"DROP <object>"` for an object type, "DROP" when unknown.
        fn drop_tag(t: pb::ObjectType) -> &'static str {
            match t {
                $(pb::ObjectType::$variant => concat!("DROP ", $name),)*
                _ => "DROP",
            }
        }
    };
}

object_tags! {
    ObjectAccessMethod => "ACCESS METHOD",
    ObjectAggregate => "AGGREGATE",
    ObjectAmop => "OPERATOR",
    ObjectAmproc => "FUNCTION",
    ObjectAttribute => "TYPE",
    ObjectCast => "CAST",
    ObjectColumn => "TABLE",
    ObjectCollation => "COLLATION",
    ObjectConversion => "CONVERSION",
    ObjectDatabase => "DATABASE",
    ObjectDefault => "TABLE",
    ObjectDefacl => "DEFAULT PRIVILEGES",
    ObjectDomain => "DOMAIN",
    ObjectDomconstraint => "DOMAIN",
    ObjectEventTrigger => "EVENT TRIGGER",
    ObjectExtension => "EXTENSION",
    ObjectFdw => "FOREIGN DATA WRAPPER",
    ObjectForeignServer => "SERVER",
    ObjectForeignTable => "FOREIGN TABLE",
    ObjectFunction => "FUNCTION",
    ObjectIndex => "INDEX",
    ObjectLanguage => "LANGUAGE",
    ObjectLargeobject => "LARGE OBJECT",
    ObjectMatview => "MATERIALIZED VIEW",
    ObjectOpclass => "OPERATOR CLASS",
    ObjectOperator => "OPERATOR",
    ObjectOpfamily => "OPERATOR FAMILY",
    ObjectParameterAcl => "PARAMETER",
    ObjectPolicy => "POLICY",
    ObjectProcedure => "PROCEDURE",
    ObjectPublication => "PUBLICATION",
    ObjectPublicationNamespace => "PUBLICATION",
    ObjectPublicationRel => "PUBLICATION",
    ObjectRole => "ROLE",
    ObjectRoutine => "ROUTINE",
    ObjectRule => "RULE",
    ObjectSchema => "SCHEMA",
    ObjectSequence => "SEQUENCE",
    ObjectSubscription => "SUBSCRIPTION",
    ObjectStatisticExt => "STATISTICS",
    ObjectTabconstraint => "TABLE",
    ObjectTable => "TABLE",
    ObjectTablespace => "TABLESPACE",
    ObjectTransform => "TRANSFORM",
    ObjectTrigger => "TRIGGER",
    ObjectTsconfiguration => "TEXT SEARCH CONFIGURATION",
    ObjectTsdictionary => "TEXT SEARCH DICTIONARY",
    ObjectTsparser => "TEXT SEARCH PARSER",
    ObjectTstemplate => "TEXT SEARCH TEMPLATE",
    ObjectType => "TYPE",
    ObjectUserMapping => "USER MAPPING",
    ObjectView => "VIEW",
}

/// Decodes a protobuf enum field holding an object type; unknown values become `Undefined`.
fn object_type(value: i32) -> pb::ObjectType {
    pb::ObjectType::try_from(value).unwrap_or(pb::ObjectType::Undefined)
}

/// Returns `Forbidden::Database`/`Tablespace` for objects that are refused whatever the DDL verb.
fn forbidden_object(t: pb::ObjectType) -> Option<Forbidden> {
    match t {
        pb::ObjectType::ObjectDatabase => Some(Forbidden::Database),
        pb::ObjectType::ObjectTablespace => Some(Forbidden::Tablespace),
        _ => None,
    }
}

/// A role switch (`SET`/`RESET` of `role` or `session_authorization`) inside a stored
/// `LANGUAGE sql` body: it would run in the middle of a later caller's statement and leave that
/// caller's role (contract §8 "Caller roles"), so it is refused wherever stored code is checked.
pub(crate) fn role_switch_in_body(stmt: &NodeEnum) -> Option<Refusal> {
    let NodeEnum::VariableSetStmt(v) = stmt else {
        return None;
    };
    let name = v.name.to_ascii_lowercase();
    (name == "role" || name == "session_authorization").then(|| {
        Forbidden::RoleSwitch.refusal("a function body that sets role or session_authorization")
    })
}

/// Classifies a generic ALTER-like statement on an object (rename, owner, schema, …).
fn alter_object(tag: &'static str, t: pb::ObjectType) -> (&'static str, StatementClass) {
    match forbidden_object(t) {
        Some(f) => (tag, StatementClass::Forbidden(f)),
        None => (tag, StatementClass::Ddl(DdlKind::Alter)),
    }
}

/// Returns the command tag and class of a top-level statement.
pub(super) fn classify(stmt: &NodeEnum, facts: &Facts) -> (&'static str, StatementClass) {
    use DdlKind::{Alter, Create, Drop};
    use StatementClass::{Admin, Ddl, Explain, Read, TxControl, Write};
    let forbidden = |tag: &'static str, f: Forbidden| (tag, StatementClass::Forbidden(f));

    match stmt {
        NodeEnum::SelectStmt(_) => {
            // INTO may sit on the leftmost arm of a UNION rather than on the top node, so
            // any IntoClause in the tree makes this a SELECT INTO (nested ones are errors anyway).
            if facts.into {
                ("SELECT INTO", Ddl(Create))
            } else if !facts.dml.is_empty() || facts.locking {
                ("SELECT", Write)
            } else {
                ("SELECT", Read)
            }
        }
        NodeEnum::InsertStmt(_) => ("INSERT", Write),
        NodeEnum::UpdateStmt(_) => ("UPDATE", Write),
        NodeEnum::DeleteStmt(_) => ("DELETE", Write),
        NodeEnum::MergeStmt(_) => ("MERGE", Write),
        NodeEnum::CallStmt(_) => ("CALL", Write),
        NodeEnum::DoStmt(_) => ("DO", Write),
        // LOCK only matters inside a transaction and takes locks: same reasoning as FOR UPDATE.
        NodeEnum::LockStmt(_) => ("LOCK TABLE", Write),
        NodeEnum::VariableShowStmt(_) => ("SHOW", Read),
        NodeEnum::ExplainStmt(e) => {
            let inner = e.query.as_deref().and_then(|n| n.node.as_ref());
            let inner_is_read = inner.is_some_and(|inner| {
                matches!(inner, NodeEnum::SelectStmt(_)) && classify(inner, facts).1 == Read
            });
            if inner_is_read && !explain_has_analyze(&e.options) {
                ("EXPLAIN", Read)
            } else {
                ("EXPLAIN", Explain)
            }
        }

        NodeEnum::TransactionStmt(t) => {
            use pb::TransactionStmtKind as K;
            let tag = match K::try_from(t.kind).unwrap_or(K::Undefined) {
                K::TransStmtBegin => "BEGIN",
                K::TransStmtStart => "START TRANSACTION",
                K::TransStmtCommit => "COMMIT",
                K::TransStmtRollback => "ROLLBACK",
                K::TransStmtSavepoint => "SAVEPOINT",
                K::TransStmtRelease => "RELEASE",
                K::TransStmtRollbackTo => "ROLLBACK TO SAVEPOINT",
                K::TransStmtPrepare => "PREPARE TRANSACTION",
                K::TransStmtCommitPrepared => "COMMIT PREPARED",
                K::TransStmtRollbackPrepared => "ROLLBACK PREPARED",
                K::Undefined => "TRANSACTION",
            };
            (tag, TxControl)
        }
        NodeEnum::VariableSetStmt(v) => {
            use pb::VariableSetKind as K;
            let kind = K::try_from(v.kind).unwrap_or(K::Undefined);
            let name = v.name.to_ascii_lowercase();
            let tag = if matches!(kind, K::VarReset | K::VarResetAll) {
                "RESET"
            } else {
                "SET"
            };
            if kind == K::VarResetAll {
                forbidden("RESET ALL", Forbidden::ResetAll)
            } else if name == "role" || name == "session_authorization" {
                forbidden(tag, Forbidden::RoleSwitch)
            } else if name == "transaction" || name == "transaction snapshot" {
                ("SET TRANSACTION", TxControl)
            } else if name == "session characteristics" {
                ("SET SESSION CHARACTERISTICS", TxControl)
            } else if name.starts_with("transaction_") {
                // SET/RESET transaction_isolation, transaction_read_only, …: the current
                // transaction's mode belongs to pg_tx, and must not be flipped from SQL.
                (tag, TxControl)
            } else {
                forbidden(tag, Forbidden::SessionSetting)
            }
        }
        NodeEnum::ConstraintsSetStmt(_) => forbidden("SET CONSTRAINTS", Forbidden::SessionSetting),

        NodeEnum::VacuumStmt(v) => (if v.is_vacuumcmd { "VACUUM" } else { "ANALYZE" }, Admin),
        NodeEnum::ReindexStmt(_) => ("REINDEX", Admin),
        NodeEnum::ClusterStmt(_) => ("CLUSTER", Admin),

        NodeEnum::AlterSystemStmt(_) => forbidden("ALTER SYSTEM", Forbidden::AlterSystem),
        NodeEnum::CopyStmt(c) => {
            let f = if c.is_program {
                Forbidden::CopyProgram
            } else if !c.filename.is_empty() {
                Forbidden::CopyServerFile
            } else {
                Forbidden::CopyStdio
            };
            forbidden("COPY", f)
        }
        NodeEnum::LoadStmt(_) => forbidden("LOAD", Forbidden::Load),
        NodeEnum::DiscardStmt(_) => forbidden("DISCARD", Forbidden::Discard),
        NodeEnum::ListenStmt(_) => forbidden("LISTEN", Forbidden::ListenNotify),
        NodeEnum::UnlistenStmt(_) => forbidden("UNLISTEN", Forbidden::ListenNotify),
        NodeEnum::NotifyStmt(_) => forbidden("NOTIFY", Forbidden::ListenNotify),
        NodeEnum::PrepareStmt(_) => forbidden("PREPARE", Forbidden::PreparedStatement),
        NodeEnum::ExecuteStmt(_) => forbidden("EXECUTE", Forbidden::PreparedStatement),
        NodeEnum::DeallocateStmt(_) => forbidden("DEALLOCATE", Forbidden::PreparedStatement),
        NodeEnum::DeclareCursorStmt(_) => forbidden("DECLARE CURSOR", Forbidden::Cursor),
        NodeEnum::FetchStmt(f) => {
            forbidden(if f.ismove { "MOVE" } else { "FETCH" }, Forbidden::Cursor)
        }
        NodeEnum::ClosePortalStmt(_) => forbidden("CLOSE CURSOR", Forbidden::Cursor),
        NodeEnum::CheckPointStmt(_) => forbidden("CHECKPOINT", Forbidden::Checkpoint),
        NodeEnum::CreatedbStmt(_) => forbidden("CREATE DATABASE", Forbidden::Database),
        NodeEnum::AlterDatabaseStmt(_)
        | NodeEnum::AlterDatabaseSetStmt(_)
        | NodeEnum::AlterDatabaseRefreshCollStmt(_) => {
            forbidden("ALTER DATABASE", Forbidden::Database)
        }
        NodeEnum::DropdbStmt(_) => forbidden("DROP DATABASE", Forbidden::Database),
        NodeEnum::CreateTableSpaceStmt(_) => forbidden("CREATE TABLESPACE", Forbidden::Tablespace),
        NodeEnum::AlterTableSpaceOptionsStmt(_) => {
            forbidden("ALTER TABLESPACE", Forbidden::Tablespace)
        }
        NodeEnum::DropTableSpaceStmt(_) => forbidden("DROP TABLESPACE", Forbidden::Tablespace),
        NodeEnum::AlterTableMoveAllStmt(m) => {
            forbidden(alter_tag(object_type(m.objtype)), Forbidden::Tablespace)
        }

        // ---- DDL: create ----
        NodeEnum::CreateStmt(_) => ("CREATE TABLE", Ddl(Create)),
        NodeEnum::CreateForeignTableStmt(_) => ("CREATE FOREIGN TABLE", Ddl(Create)),
        NodeEnum::CreateTableAsStmt(c) => {
            let tag = if c.is_select_into {
                "SELECT INTO"
            } else if object_type(c.objtype) == pb::ObjectType::ObjectMatview {
                "CREATE MATERIALIZED VIEW"
            } else {
                "CREATE TABLE AS"
            };
            (tag, Ddl(Create))
        }
        NodeEnum::IndexStmt(_) => ("CREATE INDEX", Ddl(Create)),
        NodeEnum::ViewStmt(_) => ("CREATE VIEW", Ddl(Create)),
        NodeEnum::CreateFunctionStmt(f) => (
            if f.is_procedure {
                "CREATE PROCEDURE"
            } else {
                "CREATE FUNCTION"
            },
            Ddl(Create),
        ),
        NodeEnum::CreateSchemaStmt(_) => ("CREATE SCHEMA", Ddl(Create)),
        NodeEnum::CreateSeqStmt(_) => ("CREATE SEQUENCE", Ddl(Create)),
        NodeEnum::DefineStmt(d) => (create_tag(object_type(d.kind)), Ddl(Create)),
        NodeEnum::CompositeTypeStmt(_)
        | NodeEnum::CreateEnumStmt(_)
        | NodeEnum::CreateRangeStmt(_) => ("CREATE TYPE", Ddl(Create)),
        NodeEnum::CreateDomainStmt(_) => ("CREATE DOMAIN", Ddl(Create)),
        NodeEnum::CreateExtensionStmt(_) => ("CREATE EXTENSION", Ddl(Create)),
        NodeEnum::CreateTrigStmt(_) => ("CREATE TRIGGER", Ddl(Create)),
        NodeEnum::CreateEventTrigStmt(_) => ("CREATE EVENT TRIGGER", Ddl(Create)),
        NodeEnum::CreatePolicyStmt(_) => ("CREATE POLICY", Ddl(Create)),
        NodeEnum::RuleStmt(_) => ("CREATE RULE", Ddl(Create)),
        NodeEnum::CreateCastStmt(_) => ("CREATE CAST", Ddl(Create)),
        NodeEnum::CreateConversionStmt(_) => ("CREATE CONVERSION", Ddl(Create)),
        NodeEnum::CreateOpClassStmt(_) => ("CREATE OPERATOR CLASS", Ddl(Create)),
        NodeEnum::CreateOpFamilyStmt(_) => ("CREATE OPERATOR FAMILY", Ddl(Create)),
        NodeEnum::CreateAmStmt(_) => ("CREATE ACCESS METHOD", Ddl(Create)),
        NodeEnum::CreatePlangStmt(_) => ("CREATE LANGUAGE", Ddl(Create)),
        NodeEnum::CreateFdwStmt(_) => ("CREATE FOREIGN DATA WRAPPER", Ddl(Create)),
        NodeEnum::CreateForeignServerStmt(_) => ("CREATE SERVER", Ddl(Create)),
        NodeEnum::CreateUserMappingStmt(_) => ("CREATE USER MAPPING", Ddl(Create)),
        NodeEnum::ImportForeignSchemaStmt(_) => ("IMPORT FOREIGN SCHEMA", Ddl(Create)),
        NodeEnum::CreatePublicationStmt(_) => ("CREATE PUBLICATION", Ddl(Create)),
        NodeEnum::CreateSubscriptionStmt(_) => ("CREATE SUBSCRIPTION", Ddl(Create)),
        NodeEnum::CreateStatsStmt(_) => ("CREATE STATISTICS", Ddl(Create)),
        NodeEnum::CreateTransformStmt(_) => ("CREATE TRANSFORM", Ddl(Create)),
        NodeEnum::CreateRoleStmt(r) => {
            use pb::RoleStmtType as K;
            let tag = match K::try_from(r.stmt_type).unwrap_or(K::Undefined) {
                K::RolestmtUser => "CREATE USER",
                K::RolestmtGroup => "CREATE GROUP",
                K::RolestmtRole | K::Undefined => "CREATE ROLE",
            };
            (tag, Ddl(Create))
        }

        // ---- DDL: alter ----
        NodeEnum::AlterTableStmt(a) => (alter_tag(object_type(a.objtype)), Ddl(Alter)),
        NodeEnum::RenameStmt(r) => {
            let renamed = object_type(r.rename_type);
            // Renaming a column or constraint is an ALTER of the relation that owns it.
            let tag_type = match renamed {
                pb::ObjectType::ObjectColumn | pb::ObjectType::ObjectTabconstraint => {
                    object_type(r.relation_type)
                }
                other => other,
            };
            alter_object(alter_tag(tag_type), renamed)
        }
        NodeEnum::AlterOwnerStmt(a) => {
            let t = object_type(a.object_type);
            alter_object(alter_tag(t), t)
        }
        NodeEnum::AlterObjectSchemaStmt(a) => {
            let t = object_type(a.object_type);
            alter_object(alter_tag(t), t)
        }
        NodeEnum::AlterObjectDependsStmt(a) => {
            let t = object_type(a.object_type);
            alter_object(alter_tag(t), t)
        }
        NodeEnum::AlterFunctionStmt(a) => (alter_tag(object_type(a.objtype)), Ddl(Alter)),
        NodeEnum::AlterSeqStmt(_) => ("ALTER SEQUENCE", Ddl(Alter)),
        NodeEnum::AlterTypeStmt(_) | NodeEnum::AlterEnumStmt(_) => ("ALTER TYPE", Ddl(Alter)),
        NodeEnum::AlterDomainStmt(_) => ("ALTER DOMAIN", Ddl(Alter)),
        NodeEnum::AlterCollationStmt(_) => ("ALTER COLLATION", Ddl(Alter)),
        NodeEnum::AlterOperatorStmt(_) => ("ALTER OPERATOR", Ddl(Alter)),
        NodeEnum::AlterOpFamilyStmt(_) => ("ALTER OPERATOR FAMILY", Ddl(Alter)),
        NodeEnum::AlterTsdictionaryStmt(_) => ("ALTER TEXT SEARCH DICTIONARY", Ddl(Alter)),
        NodeEnum::AlterTsconfigurationStmt(_) => ("ALTER TEXT SEARCH CONFIGURATION", Ddl(Alter)),
        NodeEnum::AlterStatsStmt(_) => ("ALTER STATISTICS", Ddl(Alter)),
        NodeEnum::AlterExtensionStmt(_) | NodeEnum::AlterExtensionContentsStmt(_) => {
            ("ALTER EXTENSION", Ddl(Alter))
        }
        NodeEnum::AlterEventTrigStmt(_) => ("ALTER EVENT TRIGGER", Ddl(Alter)),
        NodeEnum::AlterFdwStmt(_) => ("ALTER FOREIGN DATA WRAPPER", Ddl(Alter)),
        NodeEnum::AlterForeignServerStmt(_) => ("ALTER SERVER", Ddl(Alter)),
        NodeEnum::AlterUserMappingStmt(_) => ("ALTER USER MAPPING", Ddl(Alter)),
        NodeEnum::AlterPolicyStmt(_) => ("ALTER POLICY", Ddl(Alter)),
        NodeEnum::AlterPublicationStmt(_) => ("ALTER PUBLICATION", Ddl(Alter)),
        NodeEnum::AlterSubscriptionStmt(_) => ("ALTER SUBSCRIPTION", Ddl(Alter)),
        NodeEnum::AlterRoleStmt(_) | NodeEnum::AlterRoleSetStmt(_) => ("ALTER ROLE", Ddl(Alter)),
        NodeEnum::AlterDefaultPrivilegesStmt(_) => ("ALTER DEFAULT PRIVILEGES", Ddl(Alter)),
        NodeEnum::GrantStmt(g) => (if g.is_grant { "GRANT" } else { "REVOKE" }, Ddl(Alter)),
        NodeEnum::GrantRoleStmt(g) => (if g.is_grant { "GRANT" } else { "REVOKE" }, Ddl(Alter)),
        NodeEnum::ReassignOwnedStmt(_) => ("REASSIGN OWNED", Ddl(Alter)),
        NodeEnum::CommentStmt(_) => ("COMMENT", Ddl(Alter)),
        NodeEnum::SecLabelStmt(_) => ("SECURITY LABEL", Ddl(Alter)),
        // REFRESH replaces a materialized view's contents: a change to an object, not a DML
        // statement on rows the caller chose, so it sits with ALTER.
        NodeEnum::RefreshMatViewStmt(_) => ("REFRESH MATERIALIZED VIEW", Ddl(Alter)),

        // ---- DDL: drop ----
        NodeEnum::DropStmt(d) => (drop_tag(object_type(d.remove_type)), Ddl(Drop)),
        NodeEnum::DropRoleStmt(_) => ("DROP ROLE", Ddl(Drop)),
        NodeEnum::DropOwnedStmt(_) => ("DROP OWNED", Ddl(Drop)),
        NodeEnum::DropUserMappingStmt(_) => ("DROP USER MAPPING", Ddl(Drop)),
        NodeEnum::DropSubscriptionStmt(_) => ("DROP SUBSCRIPTION", Ddl(Drop)),
        // See the module docs: TRUNCATE is not MVCC-safe, so it goes with the destructive DDL.
        NodeEnum::TruncateStmt(_) => ("TRUNCATE TABLE", Ddl(Drop)),

        _ => forbidden("this statement", Forbidden::Unsupported),
    }
}

/// True when EXPLAIN's options ask for ANALYZE, i.e. EXPLAIN would execute the statement.
///
/// Mirrors PostgreSQL's defGetBoolean: no value means true, and only an explicit
/// false/off/0 turns it off. Anything unexpected counts as ANALYZE (fail closed).
fn explain_has_analyze(options: &[Node]) -> bool {
    options.iter().any(|option| {
        let Some(NodeEnum::DefElem(d)) = option.node.as_ref() else {
            return false;
        };
        if !(d.defname.eq_ignore_ascii_case("analyze") || d.defname.eq_ignore_ascii_case("analyse"))
        {
            return false;
        }
        match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
            None => true,
            Some(NodeEnum::String(s)) => !matches!(
                s.sval.to_ascii_lowercase().as_str(),
                "false" | "off" | "0" | "no"
            ),
            Some(NodeEnum::Integer(i)) => i.ival != 0,
            Some(NodeEnum::Boolean(b)) => b.boolval,
            Some(_) => true,
        }
    })
}

#[cfg(test)]
pub(super) mod tests;
