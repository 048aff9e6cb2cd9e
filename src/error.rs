//! The crate's error type for tool calls, grouped by who must act: the caller (policy, input,
//! sessions), the database (SQLSTATE and friends) or the operator (unavailable, internal).
//! Every variant becomes a tool result with `isError: true` and a contract §3 category.

use serde_json::{Map, Value, json};

/// Most bytes of an error's message, detail or hint that reach the caller: PostgreSQL echoes
/// values into its messages (a 20 MB string cast to int), and the whole response must stay
/// under 1 MiB. The cut says how much was left out.
pub const MAX_ERROR_TEXT: usize = 4096;

/// `s` cut to [`MAX_ERROR_TEXT`] bytes at a character boundary, with a note of the cut.
pub fn cap_error_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= MAX_ERROR_TEXT {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = MAX_ERROR_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}… [{} more bytes cut]", &s[..end], s.len() - end))
}

/// What a `confirmation_required` error tells the caller to do with its token.
fn confirm_hint(token: &str) -> String {
    format!(
        "if this is intended, repeat the same call unchanged with confirm: \"{token}\" (valid once, \
         for 10 minutes, for this exact statement and parameters)"
    )
}

/// An error a tool call ends with. The message always says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The safety policy refused the call (default-deny, wrong action for the statement).
    #[error("{0}")]
    PolicyDenied(String),
    /// The arguments are wrong: bad action, missing argument, bad parameter value.
    #[error("{0}")]
    InvalidInput(String),
    /// No such session handle for this caller (never existed, or belongs to someone else).
    #[error("{0}")]
    SessionNotFound(String),
    /// The session idled past its TTL and was rolled back.
    #[error("{0}")]
    SessionExpired(String),
    /// The session's connection died; its transaction is rolled back.
    #[error("{0}")]
    SessionLost(String),
    /// Another call is using the session.
    #[error("{0}")]
    SessionBusy(String),
    /// No such open cursor for this caller (unknown, foreign, expired, exhausted or closed).
    #[error("{0}")]
    CursorNotFound(String),
    /// A configured limit was reached (sessions, pool).
    #[error("{0}")]
    LimitExceeded(String),
    /// The call ran past its time budget.
    #[error("{0}")]
    Timeout(String),
    /// PostgreSQL ran the statement and reported an error (boxed: it is the big variant).
    #[error("{}", .0.message)]
    Database(Box<DbError>),
    /// The planner's estimate is over the cost ceiling: refused before it ran.
    #[error("{}", .0.message)]
    CostExceeded(Box<CostExceeded>),
    /// The database cannot be reached or the pool is exhausted: the operator must act.
    #[error("{0}")]
    Unavailable(String),
    /// A destructive statement needs a confirmation first; nothing ran. `token`, when there is
    /// one, approves this exact call once (repeat it with `confirm: "<token>"`).
    #[error("{message}")]
    ConfirmationRequired {
        /// What would run and what it would affect.
        message: String,
        /// The one-time confirm token (absent when only elicitation may confirm).
        token: Option<String>,
    },
    /// The person asked through elicitation declined or cancelled; nothing ran.
    #[error("{0}")]
    ConfirmationDeclined(String),
    /// Not an error: a stateless call must first ask its client (multi round-trip,
    /// `input_required`); the handler answers with this result instead of a tool result.
    #[error("input required")]
    InputRequired(Box<rmcp::model::InputRequiredResult>),
}

/// What PostgreSQL said about a failed statement.
#[derive(Debug, Default)]
pub struct DbError {
    /// Five-character SQLSTATE.
    pub sqlstate: Option<String>,
    /// PostgreSQL's primary message.
    pub message: String,
    /// DETAIL, when PostgreSQL gave one.
    pub detail: Option<String>,
    /// HINT, when PostgreSQL gave one (or ours).
    pub hint: Option<String>,
    /// 1-based character position in the caller's SQL.
    pub position: Option<usize>,
    /// For `transaction`: the 0-based index of the failing operation.
    pub operation_index: Option<usize>,
}

/// A statement priced over the cost ceiling (see [`crate::db::cost`]).
#[derive(Debug)]
pub struct CostExceeded {
    /// What was over, the costliest plan nodes, and what to do.
    pub message: String,
    /// `{"total_cost", "plan_rows"}` as the planner estimated them.
    pub estimate: Value,
    /// `{"max_cost", "max_estimated_rows"}` the estimate was compared with.
    pub ceiling: Value,
    /// For `transaction`: the 0-based index of the operation refused.
    pub operation_index: Option<usize>,
}

impl ToolError {
    /// A database error.
    pub fn database(e: DbError) -> ToolError {
        ToolError::Database(Box::new(e))
    }

    /// A database error with its position moved by `f` (from the text that ran to the
    /// caller's).
    pub fn map_position(self, f: impl FnOnce(usize) -> usize) -> ToolError {
        match self {
            ToolError::Database(mut d) => {
                d.position = d.position.map(f);
                ToolError::Database(d)
            }
            other => other,
        }
    }

    /// The SQLSTATE, for database errors.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            ToolError::Database(d) => d.sqlstate.as_deref(),
            _ => None,
        }
    }

    /// The contract §3 category string.
    pub fn category(&self) -> &'static str {
        match self {
            ToolError::PolicyDenied(_) => "policy_denied",
            ToolError::InvalidInput(_) => "invalid_input",
            ToolError::SessionNotFound(_) => "session_not_found",
            ToolError::SessionExpired(_) => "session_expired",
            ToolError::SessionLost(_) => "session_lost",
            ToolError::SessionBusy(_) => "session_busy",
            ToolError::CursorNotFound(_) => "cursor_not_found",
            ToolError::LimitExceeded(_) => "limit_exceeded",
            ToolError::Timeout(_) => "timeout",
            ToolError::Database(_) => "database_error",
            ToolError::CostExceeded(_) => "cost_exceeded",
            ToolError::Unavailable(_) => "unavailable",
            ToolError::ConfirmationRequired { .. } => "confirmation_required",
            ToolError::ConfirmationDeclined(_) => "confirmation_declined",
            ToolError::InputRequired(_) => "input_required",
        }
    }

    /// Attach the failing operation's index (for `pg_query transaction`).
    pub fn at_operation(self, index: usize) -> ToolError {
        match self {
            ToolError::Database(mut d) => {
                d.message = format!("operation {index}: {}", d.message);
                d.operation_index = Some(index);
                ToolError::Database(d)
            }
            ToolError::PolicyDenied(m) => {
                ToolError::PolicyDenied(format!("operation {index}: {m}"))
            }
            ToolError::InvalidInput(m) => {
                ToolError::InvalidInput(format!("operation {index}: {m}"))
            }
            ToolError::CostExceeded(mut c) => {
                c.message = format!("operation {index}: {}", c.message);
                c.operation_index = Some(index);
                ToolError::CostExceeded(c)
            }
            other => other,
        }
    }

    /// The `structuredContent.error` object.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("category".into(), json!(self.category()));
        o.insert("message".into(), json!(cap_error_text(&self.to_string())));
        if let ToolError::Database(d) = self {
            let DbError {
                sqlstate,
                detail,
                hint,
                position,
                operation_index,
                ..
            } = &**d;
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    o.insert(k.into(), v);
                }
            };
            put("sqlstate", sqlstate.as_ref().map(|s| json!(s)));
            put("detail", detail.as_ref().map(|s| json!(cap_error_text(s))));
            put("hint", hint.as_ref().map(|s| json!(cap_error_text(s))));
            put("position", position.map(|p| json!(p)));
            put("operation_index", operation_index.map(|p| json!(p)));
        }
        if let ToolError::ConfirmationRequired {
            token: Some(token), ..
        } = self
        {
            o.insert("confirm".into(), json!(token));
            o.insert("hint".into(), json!(confirm_hint(token)));
        }
        if let ToolError::CostExceeded(c) = self {
            o.insert("estimate".into(), c.estimate.clone());
            o.insert("ceiling".into(), c.ceiling.clone());
            if let Some(i) = c.operation_index {
                o.insert("operation_index".into(), json!(i));
            }
        }
        Value::Object(o)
    }

    /// The single text block: category first, then message and the useful extras.
    pub fn to_text(&self) -> String {
        let mut s = format!("{}: {}", self.category(), cap_error_text(&self.to_string()));
        if let ToolError::Database(d) = self {
            let DbError {
                sqlstate,
                detail,
                hint,
                position,
                ..
            } = &**d;
            if let Some(c) = sqlstate {
                s.push_str(&format!(" (SQLSTATE {c})"));
            }
            if let Some(d) = detail {
                s.push_str(&format!("\nDETAIL: {}", cap_error_text(d)));
            }
            if let Some(h) = hint {
                s.push_str(&format!("\nHINT: {}", cap_error_text(h)));
            }
            if let Some(p) = position {
                s.push_str(&format!("\nPOSITION: {p}"));
            }
        }
        if let ToolError::ConfirmationRequired {
            token: Some(token), ..
        } = self
        {
            s.push_str(&format!("\nHINT: {}", confirm_hint(token)));
        }
        s
    }

    /// Translate a driver error. `position_shift` is how many characters our own wrapping
    /// (e.g. the row-cap subquery) put in front of the caller's SQL, so positions stay theirs.
    pub fn from_sqlx(e: sqlx::Error, position_shift: usize) -> ToolError {
        match e {
            sqlx::Error::Database(db) => {
                let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
                let sqlstate = db.code().map(|c| c.into_owned());
                let (detail, hint, position) = match pg {
                    Some(pg) => {
                        let pos = match pg.position() {
                            Some(sqlx::postgres::PgErrorPosition::Original(p)) => {
                                p.checked_sub(position_shift).filter(|p| *p > 0)
                            }
                            _ => None,
                        };
                        (
                            pg.detail().map(|d| cap_error_text(d).into_owned()),
                            pg.hint().map(|h| cap_error_text(h).into_owned()),
                            pos,
                        )
                    }
                    None => (None, None, None),
                };
                // Capped here too, so no full-size copy of a huge message travels further.
                let message = cap_error_text(db.message()).into_owned();
                match sqlstate.as_deref() {
                    // query_canceled: our statement_timeout or a cancel request.
                    Some("57014") => ToolError::Timeout(format!(
                        "{message}: the statement ran past its time budget or was cancelled; \
                         narrow the query (WHERE, LIMIT) or raise COLDQUERY_STATEMENT_TIMEOUT"
                    )),
                    // lock_not_available from lock_timeout.
                    Some("55P03") => ToolError::Timeout(format!(
                        "{message}: another transaction holds a conflicting lock; retry later, \
                         or look at pg_monitor locks"
                    )),
                    _ => ToolError::database(DbError {
                        sqlstate,
                        message,
                        detail,
                        hint,
                        position,
                        operation_index: None,
                    }),
                }
            }
            sqlx::Error::PoolTimedOut => ToolError::Unavailable(
                "every pooled database connection is busy; retry shortly or raise COLDQUERY_POOL_SIZE"
                    .into(),
            ),
            sqlx::Error::PoolClosed => {
                ToolError::Unavailable("the server is shutting down; retry against a running server".into())
            }
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
                // The error text of these can include host names but never passwords;
                // still, keep it generic and point at /health.
                ToolError::Unavailable(
                    "the database connection failed; check that PostgreSQL is up (GET /health) and retry"
                        .into(),
                )
            }
            other => ToolError::Unavailable(format!(
                "database driver error ({}); retry, and report it if it persists",
                short_kind(&other)
            )),
        }
    }

    /// The database cannot be connected to; `why` is the failed connection attempt. The text
    /// names the kind of failure (refused, starting up, shutting down), never host or password.
    pub fn unreachable(why: &sqlx::Error) -> ToolError {
        ToolError::unreachable_because(&unreachable_kind(why))
    }

    /// [`ToolError::unreachable`] with the failure already described (`unreachable_kind`).
    pub fn unreachable_because(kind: &str) -> ToolError {
        ToolError::Unavailable(format!(
            "the database is unreachable ({kind}); calls fail until it is back: check that \
             PostgreSQL is running (GET /health says why) and retry"
        ))
    }

    /// Whether this tool error came from a connection that is gone ([`ToolError::from_sqlx`]
    /// of an I/O, TLS or protocol failure, or PostgreSQL terminating the backend).
    pub fn is_lost_connection(&self) -> bool {
        match self {
            ToolError::Unavailable(m) => m.starts_with("the database connection failed"),
            ToolError::Database(d) => d
                .sqlstate
                .as_deref()
                .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
            _ => false,
        }
    }

    /// Whether this error means the connection itself is gone (so it must not be reused).
    pub fn is_connection_loss(e: &sqlx::Error) -> bool {
        matches!(
            e,
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_)
        ) || matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")))
    }
}

/// A short, safe description of a failed connection attempt.
pub(crate) fn unreachable_kind(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::TimedOut => "no answer to a connection attempt".into(),
            kind => format!("connection failed: {kind}"),
        },
        // "the database system is starting up / shutting down", "too many clients", auth.
        sqlx::Error::Database(db) => format!("it refused the connection: {}", db.message()),
        sqlx::Error::Tls(_) => "the TLS handshake failed".into(),
        sqlx::Error::PoolTimedOut => "no connection within the time-out".into(),
        other => format!("connection failed: {}", short_kind(other)),
    }
}

fn short_kind(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Configuration(_) => "configuration",
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "decode",
        sqlx::Error::Encode(_) => "encode",
        sqlx::Error::TypeNotFound { .. } => "type not found",
        sqlx::Error::WorkerCrashed => "worker crashed",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_is_capped_at_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_TEXT);
        let e = ToolError::database(DbError {
            message: long.clone(),
            detail: Some(long.clone()),
            hint: Some(long),
            ..DbError::default()
        });
        let text = e.to_text();
        assert!(text.len() < 4 * MAX_ERROR_TEXT, "{}", text.len());
        assert!(text.contains("more bytes cut]"));
        let j = e.to_json().to_string();
        assert!(j.len() < 4 * MAX_ERROR_TEXT, "{}", j.len());
        assert_eq!(cap_error_text("short"), "short");
    }

    #[test]
    fn categories_match_the_contract() {
        let cases: Vec<(ToolError, &str)> = vec![
            (ToolError::PolicyDenied("x".into()), "policy_denied"),
            (ToolError::InvalidInput("x".into()), "invalid_input"),
            (ToolError::SessionNotFound("x".into()), "session_not_found"),
            (ToolError::SessionExpired("x".into()), "session_expired"),
            (ToolError::SessionLost("x".into()), "session_lost"),
            (ToolError::SessionBusy("x".into()), "session_busy"),
            (ToolError::CursorNotFound("x".into()), "cursor_not_found"),
            (ToolError::LimitExceeded("x".into()), "limit_exceeded"),
            (ToolError::Timeout("x".into()), "timeout"),
            (ToolError::Unavailable("x".into()), "unavailable"),
        ];
        for (e, cat) in cases {
            assert_eq!(e.category(), cat);
            assert!(e.to_text().starts_with(cat));
            assert_eq!(e.to_json()["category"], cat);
        }
    }

    #[test]
    fn database_errors_carry_every_field_and_the_operation_index() {
        let e = ToolError::database(DbError {
            sqlstate: Some("23505".into()),
            message: "duplicate key".into(),
            detail: Some("Key (id)=(1) already exists.".into()),
            hint: None,
            position: Some(8),
            operation_index: None,
        })
        .at_operation(2);
        let j = e.to_json();
        assert_eq!(j["sqlstate"], "23505");
        assert_eq!(j["operation_index"], 2);
        assert_eq!(j["position"], 8);
        assert!(j.get("hint").is_none());
        assert!(
            e.to_text()
                .starts_with("database_error: operation 2: duplicate key")
        );
    }
}
