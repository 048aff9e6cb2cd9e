//! The MCP boundary's vocabulary, typed: the tool names ([`ToolName`]), each tool's actions
//! (and the other closed sets a schema lists: pg_schema's list targets, pg_monitor's orders),
//! declared once with their wire names by `wire_names!`. The input schemas' `enum`s, the
//! error for an unknown name, the metric labels and every `match` on a tool or an action come
//! from these declarations, so a new action is one line here and a compile error wherever it
//! is not handled.
//!
//! [`ActionArg`] is how an argument struct holds such a name: any JSON string deserializes, so
//! an unknown action is reported by the tool in its own words (contract §3: `invalid_input`),
//! not as a serde error about the argument's type.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::ToolError;

/// A closed set of names sent over the wire, as `wire_names!` declares it.
pub trait WireName: Copy + Sized + 'static {
    /// Every member, in the order the schema lists them (for the tests that walk them all).
    #[cfg(test)]
    const ALL: &'static [Self];
    /// Their wire names, in the same order.
    const NAMES: &'static [&'static str];
    /// This member's wire name.
    fn name(self) -> &'static str;
    /// The member a wire name denotes (exact spelling).
    fn parse(s: &str) -> Option<Self>;
    /// The error for a name outside the set: what it was (cut short) and what it may be.
    fn unknown(raw: &str) -> ToolError;
}

/// Declares a `Copy` enum with the wire name of each variant, and generates `ALL`, `NAMES`,
/// `name` and `parse`. With `unknown: "… {:?} … {}"` (the text given, then the list of names)
/// it also implements [`WireName`], which an [`ActionArg`] needs.
macro_rules! wire_names {
    (
        $(#[$meta:meta])*
        $vis:vis enum $ty:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $ty {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $ty {
            /// Every member, in the order the schema lists them (for the tests).
            #[cfg(test)]
            $vis const ALL: &'static [Self] = &[$(Self::$variant),+];
            /// Their wire names, in the same order.
            $vis const NAMES: &'static [&'static str] = &[$($wire),+];

            /// This member's wire name.
            $vis const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }

            /// The member a wire name denotes (exact spelling).
            $vis fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $ty:ident, unknown: $unknown:literal {
            $($body:tt)+
        }
    ) => {
        wire_names! {
            $(#[$meta])*
            $vis enum $ty { $($body)+ }
        }

        impl $crate::mcp::names::WireName for $ty {
            #[cfg(test)]
            const ALL: &'static [Self] = <$ty>::ALL;
            const NAMES: &'static [&'static str] = <$ty>::NAMES;
            fn name(self) -> &'static str {
                <$ty>::name(self)
            }
            fn parse(s: &str) -> Option<Self> {
                <$ty>::parse(s)
            }
            fn unknown(raw: &str) -> $crate::error::ToolError {
                $crate::error::ToolError::InvalidInput(format!(
                    $unknown,
                    $crate::mcp::common::truncate_for_message(raw),
                    <$ty>::NAMES.join(", ")
                ))
            }
        }
    };
}

wire_names! {
    /// The tools this build serves, in the order `tools/list` gives them.
    pub enum ToolName {
        /// SQL: reads, writes, plans, transactions in one call, cursors.
        Query = "pg_query",
        /// Structure and DDL.
        Schema = "pg_schema",
        /// Maintenance, statistics, settings.
        Admin = "pg_admin",
        /// Transactions spanning calls.
        Tx = "pg_tx",
        /// Observing the server.
        Monitor = "pg_monitor",
        /// Every read, under one read-only tool.
        Read = "pg_read",
    }
}

wire_names! {
    /// The actions of `pg_query`.
    pub enum QueryAction, unknown: "unknown action {:?} for pg_query; use one of: {}" {
        /// A SELECT (or WITH, VALUES, TABLE, SHOW) in a READ ONLY transaction.
        Read = "read",
        /// INSERT, UPDATE, DELETE, MERGE, CALL, DO, behind default-deny.
        Write = "write",
        /// A plan; `analyze: true` runs it.
        Explain = "explain",
        /// Several statements, all or nothing.
        Transaction = "transaction",
        /// The next page of a cursor.
        Fetch = "fetch",
        /// Ends a cursor.
        CloseCursor = "close_cursor",
    }
}

wire_names! {
    /// The actions of `pg_schema`.
    pub enum SchemaAction, unknown: "unknown action {:?} for pg_schema; use one of: {}" {
        /// Objects of one kind.
        List = "list",
        /// One table, view or function.
        Describe = "describe",
        /// CREATE …
        Create = "create",
        /// ALTER …
        Alter = "alter",
        /// DROP … or TRUNCATE.
        Drop = "drop",
    }
}

wire_names! {
    /// What `pg_schema list` lists (its `target`).
    pub enum SchemaTarget, unknown: "unknown target {:?} for pg_schema list; use one of: {}" {
        /// Schemas.
        Schema = "schema",
        /// Tables (the default).
        Table = "table",
        /// Views.
        View = "view",
        /// Materialized views.
        MaterializedView = "materialized_view",
        /// Functions and procedures.
        Function = "function",
        /// Sequences.
        Sequence = "sequence",
        /// Indexes.
        Index = "index",
        /// Triggers.
        Trigger = "trigger",
        /// Constraints.
        Constraint = "constraint",
        /// Extensions.
        Extension = "extension",
        /// Types.
        Type = "type",
    }
}

wire_names! {
    /// The actions of `pg_admin`.
    pub enum AdminAction, unknown: "unknown action {:?} for pg_admin; use one of: {}" {
        /// VACUUM.
        Vacuum = "vacuum",
        /// ANALYZE.
        Analyze = "analyze",
        /// REINDEX.
        Reindex = "reindex",
        /// A table's statistics.
        Stats = "stats",
        /// Show, list or set settings.
        Settings = "settings",
    }
}

wire_names! {
    /// The actions of `pg_tx`.
    pub enum TxAction, unknown: "unknown action {:?} for pg_tx; use one of: {}" {
        /// Opens a session.
        Begin = "begin",
        /// Commits and closes it.
        Commit = "commit",
        /// Rolls back and closes it.
        Rollback = "rollback",
        /// SAVEPOINT.
        Savepoint = "savepoint",
        /// RELEASE SAVEPOINT.
        Release = "release",
        /// ROLLBACK TO SAVEPOINT.
        RollbackTo = "rollback_to",
        /// The caller's open sessions.
        List = "list",
    }
}

wire_names! {
    /// The actions of `pg_monitor`.
    pub enum MonitorAction, unknown: "unknown action {:?} for pg_monitor; use one of: {}" {
        /// Version, uptime, size, connections, cache hit ratio….
        Health = "health",
        /// Backends and what they wait for.
        Activity = "activity",
        /// Connections by database, user, application, state.
        Connections = "connections",
        /// Blocked and blocking pairs.
        Locks = "locks",
        /// Database and largest tables.
        Size = "size",
        /// pg_stat_statements.
        SlowQueries = "slow_queries",
    }
}

wire_names! {
    /// How `pg_monitor slow_queries` orders (its `order_by`).
    pub enum MonitorOrder, unknown: "unknown order_by {:?}; use one of: {}" {
        /// Mean time per call (the default).
        MeanTime = "mean_time",
        /// Total time.
        TotalTime = "total_time",
        /// Number of calls.
        Calls = "calls",
    }
}

wire_names! {
    /// The actions of `pg_read`, each served by another tool's action (see `read.rs`).
    pub enum ReadAction, unknown: "unknown action {:?} for pg_read; use one of: {}" {
        /// pg_query read.
        Query = "query",
        /// pg_query explain, without analyze.
        Explain = "explain",
        /// pg_query fetch.
        Fetch = "fetch",
        /// pg_query close_cursor.
        CloseCursor = "close_cursor",
        /// pg_schema list.
        List = "list",
        /// pg_schema describe.
        Describe = "describe",
        /// pg_admin stats.
        Stats = "stats",
        /// pg_admin settings, without setting_value.
        Settings = "settings",
        /// pg_tx list.
        TxList = "tx_list",
    }
}

/// One tool's action: what the checks before dispatch (read-only mode, confirmation,
/// progress) match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolAction {
    /// pg_query.
    Query(QueryAction),
    /// pg_schema.
    Schema(SchemaAction),
    /// pg_admin.
    Admin(AdminAction),
    /// pg_tx.
    Tx(TxAction),
    /// pg_monitor.
    Monitor(MonitorAction),
    /// pg_read.
    Read(ReadAction),
}

impl ToolAction {
    /// `tool`'s action named `action`, if it has one of that name.
    pub fn parse(tool: ToolName, action: &str) -> Option<Self> {
        match tool {
            ToolName::Query => QueryAction::parse(action).map(Self::Query),
            ToolName::Schema => SchemaAction::parse(action).map(Self::Schema),
            ToolName::Admin => AdminAction::parse(action).map(Self::Admin),
            ToolName::Tx => TxAction::parse(action).map(Self::Tx),
            ToolName::Monitor => MonitorAction::parse(action).map(Self::Monitor),
            ToolName::Read => ReadAction::parse(action).map(Self::Read),
        }
    }

    /// The action a call's arguments name, if it is one of `tool`'s (an unknown one is the
    /// tool's own error, reported when it parses its arguments).
    pub fn of(tool: ToolName, args: &Value) -> Option<Self> {
        Self::parse(tool, args.get("action").and_then(Value::as_str)?)
    }

    /// The wire names of `tool`'s actions, in schema order.
    #[cfg(test)]
    pub fn names(tool: ToolName) -> &'static [&'static str] {
        match tool {
            ToolName::Query => QueryAction::NAMES,
            ToolName::Schema => SchemaAction::NAMES,
            ToolName::Admin => AdminAction::NAMES,
            ToolName::Tx => TxAction::NAMES,
            ToolName::Monitor => MonitorAction::NAMES,
            ToolName::Read => ReadAction::NAMES,
        }
    }

    /// The tool it belongs to.
    pub fn tool(self) -> ToolName {
        match self {
            Self::Query(_) => ToolName::Query,
            Self::Schema(_) => ToolName::Schema,
            Self::Admin(_) => ToolName::Admin,
            Self::Tx(_) => ToolName::Tx,
            Self::Monitor(_) => ToolName::Monitor,
            Self::Read(_) => ToolName::Read,
        }
    }

    /// Its wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Query(a) => a.name(),
            Self::Schema(a) => a.name(),
            Self::Admin(a) => a.name(),
            Self::Tx(a) => a.name(),
            Self::Monitor(a) => a.name(),
            Self::Read(a) => a.name(),
        }
    }
}

/// An argument naming one member of `A` (an action, a list target, an order): the text as
/// sent, checked by [`ActionArg::known`] when the tool runs. Its schema is
/// `{"type":"string","enum":[…A::NAMES]}`.
pub struct ActionArg<A> {
    raw: String,
    of: PhantomData<A>,
}

impl<A: WireName> ActionArg<A> {
    /// The member it names, or the tool's `invalid_input` error listing the names it takes.
    pub fn known(&self) -> Result<A, ToolError> {
        A::parse(&self.raw).ok_or_else(|| A::unknown(&self.raw))
    }

    /// The text as sent.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl<A: WireName> From<A> for ActionArg<A> {
    fn from(a: A) -> Self {
        ActionArg {
            raw: a.name().to_owned(),
            of: PhantomData,
        }
    }
}

// By hand rather than derived: a derive would require `A: Default`/`Clone`/`Debug` of the
// marker type, which only the text needs.
impl<A> Default for ActionArg<A> {
    fn default() -> Self {
        ActionArg {
            raw: String::new(),
            of: PhantomData,
        }
    }
}

impl<A> Clone for ActionArg<A> {
    fn clone(&self) -> Self {
        ActionArg {
            raw: self.raw.clone(),
            of: PhantomData,
        }
    }
}

impl<A> fmt::Debug for ActionArg<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.raw, f)
    }
}

/// The text as sent (for messages that name the action).
impl<A> fmt::Display for ActionArg<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl<'de, A> Deserialize<'de> for ActionArg<A> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Any string: whether it is a known name is the tool's question, answered in its words.
        String::deserialize(d).map(|raw| ActionArg {
            raw,
            of: PhantomData,
        })
    }
}

impl<A: WireName> JsonSchema for ActionArg<A> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        std::any::type_name::<A>().into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "enum": A::NAMES})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_name_round_trips<A: WireName + PartialEq + fmt::Debug>() {
        assert_eq!(A::ALL.len(), A::NAMES.len());
        for (a, n) in A::ALL.iter().zip(A::NAMES) {
            assert_eq!(a.name(), *n);
            assert_eq!(A::parse(n), Some(*a));
        }
        assert_eq!(A::parse(""), None);
    }

    #[test]
    fn every_wire_name_parses_back_to_its_member() {
        every_name_round_trips::<QueryAction>();
        every_name_round_trips::<SchemaAction>();
        every_name_round_trips::<SchemaTarget>();
        every_name_round_trips::<AdminAction>();
        every_name_round_trips::<TxAction>();
        every_name_round_trips::<MonitorAction>();
        every_name_round_trips::<MonitorOrder>();
        every_name_round_trips::<ReadAction>();
        for t in ToolName::ALL {
            assert_eq!(ToolName::parse(t.name()), Some(*t));
            for a in ToolAction::names(*t) {
                let ta = ToolAction::parse(*t, a).expect("listed actions parse");
                assert_eq!((ta.tool(), ta.name()), (*t, *a));
            }
        }
        assert_eq!(ToolName::parse("pg_nope"), None);
        assert_eq!(ToolAction::parse(ToolName::Tx, "read"), None);
    }

    #[test]
    fn an_unknown_name_deserializes_and_is_refused_by_the_tool_in_its_own_words() {
        let a: ActionArg<TxAction> = serde_json::from_value(serde_json::json!("nope")).unwrap();
        assert_eq!(a.as_str(), "nope");
        let e = a.known().unwrap_err();
        assert_eq!(e.category(), "invalid_input");
        assert_eq!(
            e.to_text(),
            ToolError::InvalidInput(
                "unknown action \"nope\" for pg_tx; use one of: begin, commit, rollback, \
                 savepoint, release, rollback_to, list"
                    .into()
            )
            .to_text()
        );
        let long = "x".repeat(100);
        let e = ActionArg::<QueryAction>::from_raw(&long)
            .known()
            .unwrap_err();
        assert!(e.to_text().contains(&format!("{:?}", "x".repeat(64))));
        assert!(!e.to_text().contains(&"x".repeat(65)));
        // Not a string: still serde's error, as before.
        assert!(serde_json::from_value::<ActionArg<TxAction>>(serde_json::json!(5)).is_err());
        let good: ActionArg<MonitorOrder> =
            serde_json::from_value(serde_json::json!("calls")).unwrap();
        assert_eq!(good.known().unwrap(), MonitorOrder::Calls);
    }

    impl<A> ActionArg<A> {
        fn from_raw(s: &str) -> Self {
            ActionArg {
                raw: s.to_owned(),
                of: PhantomData,
            }
        }
    }
}
