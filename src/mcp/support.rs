//! Small helpers every tool uses alike: paging a listing (`limit`/`offset` in, a page object
//! out) and timing a call.

use serde_json::{Value, json};

use crate::error::ToolError;

/// Resolve `limit`/`offset` for a listing: default `default`, at most `max`.
pub(crate) fn page(
    limit: Option<u64>,
    offset: Option<u64>,
    default: u64,
    max: u64,
) -> Result<(u64, u64), ToolError> {
    let limit = match limit {
        Some(0) => {
            return Err(ToolError::InvalidInput(format!(
                "limit must be at least 1 (default {default}, at most {max})"
            )));
        }
        Some(n) => n.min(max),
        None => default,
    };
    let offset = offset.unwrap_or(0);
    if offset > i64::MAX as u64 {
        return Err(ToolError::InvalidInput("offset is too large".into()));
    }
    Ok((limit, offset))
}

/// Turn rows carrying `total_count` into a page: `{items, count, total, limit, offset,
/// has_more, next_offset?}`.
pub(crate) fn paged(mut rows: Vec<Value>, limit: u64, offset: u64, truncated: bool) -> Value {
    let total = rows
        .first()
        .and_then(|r| r.get("total_count"))
        .and_then(Value::as_u64);
    for r in &mut rows {
        if let Value::Object(m) = r {
            m.remove("total_count");
        }
    }
    let count = rows.len() as u64;
    let total = match (total, offset) {
        (Some(t), _) => Some(t),
        // No rows on the first page: there are none at all.
        (None, 0) => Some(0),
        (None, _) => None,
    };
    let has_more = truncated || total.is_some_and(|t| offset + count < t);
    let mut out = json!({
        "items": rows,
        "count": count,
        "total": total,
        "limit": limit,
        "offset": offset,
        "has_more": has_more,
    });
    if has_more {
        out["next_offset"] = json!(offset + count);
    }
    if truncated {
        out["truncated"] = json!(true);
        out["hint"] = json!(
            "the result reached the size cap; page with a smaller limit, or narrow it with schema \
             or pattern"
        );
    }
    out
}

/// Milliseconds since `t`, rounded to microseconds.
pub(crate) fn ms(t: std::time::Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_bounded() {
        assert_eq!(page(None, None, 100, 1000).unwrap(), (100, 0));
        assert_eq!(page(Some(5000), Some(7), 100, 1000).unwrap(), (1000, 7));
        assert!(page(Some(0), None, 100, 1000).is_err());
        let p = paged(
            vec![
                json!({"a": 1, "total_count": 3}),
                json!({"a": 2, "total_count": 3}),
            ],
            2,
            0,
            false,
        );
        assert_eq!(p["items"], json!([{"a": 1}, {"a": 2}]));
        assert_eq!(p["total"], 3);
        assert_eq!(p["has_more"], true);
        assert_eq!(p["next_offset"], 2);
        let empty = paged(vec![], 2, 0, false);
        assert_eq!(empty["total"], 0);
        assert_eq!(empty["has_more"], false);
    }
}
