//! STUB (replaced by the real module)
#[derive(Debug)] pub(crate) struct Parsed { sql: String }
#[derive(Debug, thiserror::Error)] pub(crate) enum ClassifyError { #[error("empty")] Empty }
#[derive(Debug, Clone, Copy, PartialEq, Eq)] pub(crate) enum StatementClass { Read, Write }
#[derive(Debug, Clone, Copy, PartialEq, Eq)] pub(crate) enum ExplainTarget { Read, Write }
pub(crate) struct Refusal { pub(crate) reason: String, pub(crate) use_instead: Option<&'static str> }
pub(crate) fn parse_one(sql: &str) -> Result<Parsed, ClassifyError> { Ok(Parsed{sql: sql.trim().trim_end_matches(';').into()}) }
impl Parsed {
  pub(crate) fn sql(&self) -> &str { &self.sql }
  pub(crate) fn command(&self) -> &'static str { "SELECT" }
  pub(crate) fn class(&self) -> StatementClass { StatementClass::Read }
  pub(crate) fn is_plain_select(&self) -> bool { true }
  pub(crate) fn has_returning(&self) -> bool { false }
}
pub(crate) fn check_read(_p: &Parsed) -> Result<(), Refusal> { Ok(()) }
pub(crate) fn check_write(_p: &Parsed) -> Result<(), Refusal> { Ok(()) }
pub(crate) fn check_explain(_p: &Parsed) -> Result<ExplainTarget, Refusal> { Ok(ExplainTarget::Read) }
