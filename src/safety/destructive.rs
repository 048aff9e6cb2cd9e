//! Which statements are destructive enough to need a confirmation before they run (contract
//! §8 "Destructive statements"): they remove or rewrite data wholesale, and no WHERE clause or
//! narrower statement limits what they touch.
//!
//! Destructive:
//! - `DELETE` or `UPDATE` without `WHERE`, at the top or in a data-modifying `WITH`;
//! - `TRUNCATE`;
//! - `DROP TABLE`, `DROP SCHEMA`, `DROP MATERIALIZED VIEW`, `DROP DATABASE`, `DROP OWNED`;
//! - any `DROP … CASCADE` (it drops whatever depends on the object, tables and columns too:
//!   `DROP TYPE … CASCADE` drops the columns of that type);
//! - `ALTER TABLE … DROP COLUMN` and `ALTER TABLE … ALTER COLUMN … TYPE` (rewrites every row,
//!   and a `USING` expression can lose data).
//!
//! Not destructive: `DROP VIEW/INDEX/FUNCTION/SEQUENCE/…` without CASCADE (no rows are lost;
//! the definition can be recreated), `DELETE … WHERE` whatever the condition (`WHERE true`
//! is the caller's explicit choice), `MERGE` (it always has a join condition), and EXPLAIN
//! ANALYZE (its writes are always rolled back).

use pg_query::NodeEnum;
use pg_query::protobuf as pb;

/// Why `stmt` needs confirmation (a short phrase for messages), or `None` when it does not.
pub(crate) fn destructive(stmt: &NodeEnum) -> Option<&'static str> {
    match stmt {
        NodeEnum::DeleteStmt(d) => {
            if d.where_clause.is_none() {
                return Some("DELETE without WHERE removes every row of the table");
            }
            with_clause(d.with_clause.as_ref())
        }
        NodeEnum::UpdateStmt(u) => {
            if u.where_clause.is_none() {
                return Some("UPDATE without WHERE changes every row of the table");
            }
            with_clause(u.with_clause.as_ref())
        }
        NodeEnum::SelectStmt(s) => select(s),
        NodeEnum::InsertStmt(i) => with_clause(i.with_clause.as_ref()).or_else(|| {
            i.select_stmt
                .as_ref()
                .and_then(|n| n.node.as_ref())
                .and_then(destructive)
        }),
        NodeEnum::MergeStmt(m) => with_clause(m.with_clause.as_ref()),
        NodeEnum::CreateTableAsStmt(c) => c
            .query
            .as_ref()
            .and_then(|n| n.node.as_ref())
            .and_then(destructive),
        NodeEnum::TruncateStmt(_) => Some("TRUNCATE removes every row of the table"),
        NodeEnum::DropStmt(d) => drop(d),
        NodeEnum::DropdbStmt(_) => Some("DROP DATABASE removes a whole database"),
        NodeEnum::DropOwnedStmt(_) => Some("DROP OWNED drops every object the role owns"),
        NodeEnum::AlterTableStmt(a) => a.cmds.iter().find_map(|c| match c.node.as_ref() {
            Some(NodeEnum::AlterTableCmd(cmd)) => alter_cmd(cmd),
            _ => None,
        }),
        _ => None,
    }
}

fn select(s: &pb::SelectStmt) -> Option<&'static str> {
    with_clause(s.with_clause.as_ref())
        .or_else(|| s.larg.as_deref().and_then(select))
        .or_else(|| s.rarg.as_deref().and_then(select))
}

/// A data-modifying CTE without WHERE is as destructive as the statement on its own.
fn with_clause(w: Option<&pb::WithClause>) -> Option<&'static str> {
    w?.ctes.iter().find_map(|c| match c.node.as_ref() {
        Some(NodeEnum::CommonTableExpr(cte)) => cte
            .ctequery
            .as_ref()
            .and_then(|n| n.node.as_ref())
            .and_then(destructive),
        _ => None,
    })
}

fn drop(d: &pb::DropStmt) -> Option<&'static str> {
    use pb::ObjectType as O;
    match O::try_from(d.remove_type) {
        Ok(O::ObjectTable) => return Some("DROP TABLE removes the table and all its rows"),
        Ok(O::ObjectSchema) => {
            return Some("DROP SCHEMA removes the schema (with CASCADE, everything in it)");
        }
        Ok(O::ObjectMatview) => {
            return Some("DROP MATERIALIZED VIEW removes the view and its stored rows");
        }
        Ok(O::ObjectDatabase) => return Some("DROP DATABASE removes a whole database"),
        _ => {}
    }
    (d.behavior == pb::DropBehavior::DropCascade as i32).then_some(
        "DROP … CASCADE also drops every object that depends on it, tables and columns included",
    )
}

fn alter_cmd(cmd: &pb::AlterTableCmd) -> Option<&'static str> {
    use pb::AlterTableType as T;
    match T::try_from(cmd.subtype) {
        Ok(T::AtDropColumn) => Some("ALTER TABLE … DROP COLUMN removes the column's data"),
        Ok(T::AtAlterColumnType) => {
            Some("ALTER COLUMN … TYPE rewrites every row of the column, and can lose data")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sql: &str) -> Option<&'static str> {
        let parsed = crate::safety::classify::parse_one(sql).expect("parses");
        destructive(parsed.stmt())
    }

    #[test]
    fn statements_without_a_limit_on_what_they_touch_are_destructive() {
        for sql in [
            "DELETE FROM t",
            "DELETE FROM t USING u",
            "DELETE FROM t RETURNING *",
            "UPDATE t SET a = 1",
            "UPDATE t SET a = u.a FROM u",
            "TRUNCATE t",
            "TRUNCATE TABLE a, b RESTART IDENTITY CASCADE",
            "DROP TABLE t",
            "DROP TABLE IF EXISTS a, b",
            "DROP SCHEMA s",
            "DROP SCHEMA s CASCADE",
            "DROP MATERIALIZED VIEW mv",
            "DROP TYPE mood CASCADE",
            "DROP VIEW v CASCADE",
            "DROP OWNED BY someone",
            "DROP DATABASE other",
            "ALTER TABLE t DROP COLUMN c",
            "ALTER TABLE t ADD COLUMN d int, DROP COLUMN c",
            "ALTER TABLE t ALTER COLUMN c TYPE text",
            "ALTER TABLE t ALTER c SET DATA TYPE bigint USING c::bigint",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d",
            "WITH u AS (UPDATE t SET a = 0 RETURNING *) INSERT INTO log SELECT * FROM u",
            "WITH d AS (DELETE FROM t RETURNING id) DELETE FROM u WHERE id IN (SELECT id FROM d)",
        ] {
            assert!(check(sql).is_some(), "{sql} should need confirmation");
        }
    }

    #[test]
    fn statements_limited_by_where_or_that_lose_no_rows_are_not() {
        for sql in [
            "DELETE FROM t WHERE id = $1",
            "DELETE FROM t WHERE true",
            "UPDATE t SET a = 1 WHERE id = 2",
            "WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d",
            "INSERT INTO t VALUES (1)",
            "INSERT INTO t SELECT * FROM u",
            "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE",
            "SELECT * FROM t",
            "DROP VIEW v",
            "DROP INDEX i",
            "DROP FUNCTION f(int)",
            "DROP SEQUENCE s",
            "ALTER TABLE t ADD COLUMN c int",
            "ALTER TABLE t RENAME COLUMN a TO b",
            "ALTER TABLE t ALTER COLUMN c SET DEFAULT 0",
            "ALTER TABLE t DROP CONSTRAINT c",
            "CREATE TABLE t (id int)",
        ] {
            assert_eq!(check(sql), None, "{sql} should run without confirmation");
        }
    }
}
