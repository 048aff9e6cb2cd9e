//! Safety: statement classification with the real PostgreSQL parser (`pg_query`) and the
//! rules of which action may run what.
//!
//! How a statement goes through it: `parse` (exactly one statement, with error positions) →
//! `walk` (the facts the checks need, failing closed on unknown nodes) and `scan` (calls,
//! operators, relations anywhere in the tree) → `classify` (command tag and class) → the
//! action's gate in `gates`, which refuses with a message saying where to go instead, using the
//! function list in `denylist` → `policy` (who may run what). `redact` hides secrets in logs.
//! `shapes` keeps plain reads parsed, by their text with small integers blanked, so that the
//! same query with other numbers is not parsed again.
//! The rest of the crate imports all of this through `classify`.

pub(crate) mod classify;
mod denylist;
pub(crate) mod destructive;
pub(crate) mod functions;
mod gates;
pub(crate) mod ident;
mod parse;
pub(crate) mod policy;
#[cfg(test)]
mod properties;
mod redact;
pub(crate) mod scan;
pub(crate) mod shapes;
mod walk;

/// Helpers shared by the unit tests of the safety modules.
#[cfg(test)]
mod testkit {
    use super::classify::{Parsed, Refusal, parse_one};

    pub(super) fn parsed(sql: &str) -> Parsed {
        parse_one(sql).unwrap_or_else(|e| panic!("{sql:?} should parse: {e}"))
    }

    /// Every entry of the three SQL corpora of `tests/corpus` (bypass, accept, dry run), as
    /// written: entries are separated by `---` lines and `## ` headings; `#` lines are comments.
    pub(super) fn corpus_entries() -> Vec<String> {
        let corpora = [
            include_str!("../../tests/corpus/bypass.txt"),
            include_str!("../../tests/corpus/accept.txt"),
            include_str!("../../tests/corpus/dry_run.txt"),
        ];
        let mut entries = Vec::new();
        for corpus in corpora {
            let mut entry = String::new();
            for line in corpus.lines() {
                if line.trim() == "---" || line.trim_start().starts_with('#') {
                    entries.push(std::mem::take(&mut entry));
                } else {
                    entry.push_str(line);
                    entry.push('\n');
                }
            }
            entries.push(entry);
        }
        entries.retain(|e| !e.trim().is_empty());
        entries
    }

    /// Asserts a refusal mentions `needle` (and, when given, points at `tool`).
    pub(super) fn assert_refused(sql: &str, what: &str, r: Result<(), Refusal>, needle: &str) {
        match r {
            Ok(()) => panic!("{what}: {sql:?} should be refused (expected {needle:?})"),
            Err(refusal) => assert!(
                refusal.reason.contains(needle),
                "{what}: {sql:?}: reason {:?} should contain {needle:?}",
                refusal.reason
            ),
        }
    }
}
