//! Result bytes → JSON: [`decode`] with the codec [`super::decoder_for`] picked for the
//! column, the bounds-checked [`Reader`] the binary formats are read with, and the simple
//! types' formatting. Numeric, date/time and network values are formatted in their own files.

use serde_json::Value;

use super::Codec;
use super::datetime::{format_date, format_interval, format_time, format_timestamp, push_offset};
use super::net::{format_inet, format_mac};
use super::numeric::numeric_to_string;

/// A value whose bytes did not match its type's binary format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {type_name} value: {reason}")]
pub(crate) struct DecodeError {
    /// The type being decoded, e.g. "int4" or "numeric[]".
    pub(crate) type_name: String,
    /// What was wrong with the bytes.
    pub(crate) reason: String,
}

/// Converts one non-NULL binary value to JSON (SQL NULL is the caller's `null`).
///
/// Output per type:
/// - bool → `true`/`false`; int2, int4, oid → number; int8 → number when |v| ≤ 2^53, else a
///   decimal string (JSON consumers commonly parse numbers as doubles and would lose digits).
/// - float4/float8 → number; NaN and infinities → `"NaN"`, `"Infinity"`, `"-Infinity"`. float4
///   goes through its shortest decimal form, so `0.1::float4` is `0.1`, as PostgreSQL prints it.
/// - numeric → exact string as PostgreSQL prints it, keeping the scale (`"1.50"`), or `"NaN"`,
///   `"Infinity"`, `"-Infinity"`.
/// - text-like, enum, xml, unknown → string; `"char"` → one-character string; bytea → `"\x…"`
///   lowercase hex; uuid → lowercase hyphenated; json/jsonb → the embedded JSON value.
/// - date → `"2026-01-01"`; time → `"04:46:21.53"`; timetz → `"04:46:21.53+02:00"`;
///   timestamp → `"2026-01-01T04:46:21.53"`; timestamptz → UTC with `"+00:00"`. Fractional
///   seconds lose trailing zeros and vanish when zero. Infinite dates and timestamps are
///   `"infinity"`/`"-infinity"`. Years before 1 AD use ISO 8601 astronomical numbering with a
///   sign (44 BC is `"-0043-03-15"`); years after 9999 print all their digits, unsigned.
/// - interval → PostgreSQL's `postgres` IntervalStyle text (`"1 year 2 mons 3 days 04:05:06.5"`).
/// - inet/cidr → PostgreSQL's text form (inet omits a full-length prefix, cidr always shows it);
///   macaddr/macaddr8 → colon-separated lowercase hex; bit/varbit → string of `0`/`1`.
/// - arrays → JSON arrays, nested per dimension, NULL elements as `null`, empty as `[]`. Lower
///   bounds are ignored: `'[0:1]={1,2}'::int4[]` decodes as `[1,2]`.
pub(crate) fn decode(dec: &Codec, bytes: &[u8]) -> Result<Value, DecodeError> {
    decode_value(dec, bytes).map_err(|reason| DecodeError {
        type_name: dec.label(),
        reason,
    })
}

pub(super) fn decode_value(dec: &Codec, bytes: &[u8]) -> Result<Value, String> {
    Ok(match dec {
        Codec::Bool => Value::Bool(fixed::<1>(bytes)?[0] != 0),
        Codec::Int2 => Value::from(i16::from_be_bytes(fixed(bytes)?)),
        Codec::Int4 => Value::from(i32::from_be_bytes(fixed(bytes)?)),
        Codec::Int8 => int8_json(i64::from_be_bytes(fixed(bytes)?)),
        Codec::Oid => Value::from(u32::from_be_bytes(fixed(bytes)?)),
        Codec::Float4 => float4_json(f32::from_be_bytes(fixed(bytes)?)),
        Codec::Float8 => float8_json(f64::from_be_bytes(fixed(bytes)?)),
        Codec::Numeric => Value::String(numeric_to_string(bytes)?),
        Codec::Text => Value::String(utf8(bytes)?.to_owned()),
        Codec::Char => Value::String(char_to_string(fixed::<1>(bytes)?[0])),
        Codec::Bytea => Value::String(bytea_hex(bytes)),
        Codec::Uuid => Value::String(format_uuid(&fixed::<16>(bytes)?)),
        Codec::Json => parse_json(bytes)?,
        Codec::Jsonb => match bytes.split_first() {
            Some((1, text)) => parse_json(text)?,
            Some((version, _)) => return Err(format!("unsupported jsonb version {version}")),
            None => return Err("empty value".to_owned()),
        },
        Codec::Date => Value::String(format_date(i32::from_be_bytes(fixed(bytes)?))),
        Codec::Time => Value::String(format_time(i64::from_be_bytes(fixed(bytes)?))?),
        Codec::TimeTz => {
            let mut r = Reader::new(bytes);
            let micros = r.i64()?;
            // PostgreSQL stores the zone as seconds *west* of UTC, the opposite of ISO offsets.
            let zone_west = r.i32()?;
            r.finish()?;
            let mut out = format_time(micros)?;
            push_offset(&mut out, -i64::from(zone_west));
            Value::String(out)
        }
        Codec::Timestamp => {
            Value::String(format_timestamp(i64::from_be_bytes(fixed(bytes)?), false))
        }
        Codec::TimestampTz => {
            Value::String(format_timestamp(i64::from_be_bytes(fixed(bytes)?), true))
        }
        Codec::Interval => {
            let mut r = Reader::new(bytes);
            let micros = r.i64()?;
            let days = r.i32()?;
            let months = r.i32()?;
            r.finish()?;
            Value::String(format_interval(micros, days, months))
        }
        Codec::Inet => Value::String(format_inet(bytes, false)?),
        Codec::Cidr => Value::String(format_inet(bytes, true)?),
        Codec::MacAddr => Value::String(format_mac(&fixed::<6>(bytes)?)),
        Codec::MacAddr8 => Value::String(format_mac(&fixed::<8>(bytes)?)),
        Codec::Bit => Value::String(format_bits(bytes)?),
        Codec::Array { elem, .. } => decode_array(elem, bytes)?,
    })
}

/// Big-endian cursor over a binary value; every read is bounds-checked so that truncated or
/// garbage input becomes an error instead of a panic.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!(
                "truncated value: needed {n} more bytes, {} left",
                self.buf.len()
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(super) fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let slice = self.take(N)?;
        slice
            .try_into()
            .map_err(|_| format!("expected {N} bytes, got {}", slice.len()))
    }

    pub(super) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes::<1>()?[0])
    }

    pub(super) fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.bytes()?))
    }

    pub(super) fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes(self.bytes()?))
    }

    pub(super) fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.bytes()?))
    }

    pub(super) fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.bytes()?))
    }

    pub(super) fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.bytes()?))
    }

    pub(super) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// PostgreSQL's receive functions reject trailing bytes, and so do we: they mean the value
    /// is not in the format we think it is.
    pub(super) fn finish(&self) -> Result<(), String> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(format!("{} unexpected trailing bytes", self.buf.len()))
        }
    }
}

/// The whole of a fixed-size value.
pub(super) fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", bytes.len()))
}

fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))
}

/// 2^53: integers beyond this lose precision in JavaScript and other double-based JSON readers.
const MAX_SAFE_JSON_INT: u64 = 1 << 53;

fn int8_json(v: i64) -> Value {
    if v.unsigned_abs() <= MAX_SAFE_JSON_INT {
        Value::from(v)
    } else {
        Value::String(v.to_string())
    }
}

fn float4_json(v: f32) -> Value {
    if !v.is_finite() {
        return non_finite_json(f64::from(v));
    }
    // Widening directly would expose binary noise (0.1f32 is 0.100000001490116…); Rust prints
    // the shortest decimal that round-trips to the same f32, which is what PostgreSQL prints.
    let shortest = v.to_string().parse::<f64>().unwrap_or(f64::from(v));
    Value::from(shortest)
}

fn float8_json(v: f64) -> Value {
    if v.is_finite() {
        Value::from(v)
    } else {
        non_finite_json(v)
    }
}

/// JSON has no NaN or infinities, so they travel as PostgreSQL spells them.
fn non_finite_json(v: f64) -> Value {
    let text = if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    };
    Value::String(text.to_owned())
}

/// Output of `"char"`, mirroring PostgreSQL's `charout`: NUL is the empty string and bytes
/// with the high bit set (not valid UTF-8 on their own) become a `\ooo` octal escape.
fn char_to_string(b: u8) -> String {
    match b {
        0 => String::new(),
        0x80..=0xff => format!("\\{b:03o}"),
        _ => char::from(b).to_string(),
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

pub(super) fn push_hex(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

fn bytea_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("\\x");
    push_hex(&mut out, bytes);
    out
}

fn format_uuid(b: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, chunk) in [&b[0..4], &b[4..6], &b[6..8], &b[8..10], &b[10..16]]
        .iter()
        .enumerate()
    {
        if i > 0 {
            out.push('-');
        }
        push_hex(&mut out, chunk);
    }
    out
}

fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    // Can fail on valid PostgreSQL JSON that serde_json cannot hold (numbers beyond f64 range,
    // nesting deeper than 128); reported as an error rather than silently altered.
    serde_json::from_slice(bytes).map_err(|e| format!("unrepresentable JSON: {e}"))
}

fn format_bits(bytes: &[u8]) -> Result<String, String> {
    let mut r = Reader::new(bytes);
    let len = r.i32()?;
    let len = usize::try_from(len).map_err(|_| format!("negative bit length {len}"))?;
    let data = r.take(len.div_ceil(8))?;
    r.finish()?;
    Ok((0..len)
        .map(|i| {
            if data[i / 8] & (0x80 >> (i % 8)) != 0 {
                '1'
            } else {
                '0'
            }
        })
        .collect())
}

/// PostgreSQL's own limit on array dimensions (MAXDIM).
const MAX_ARRAY_DIMS: i32 = 6;

fn decode_array(elem: &Codec, bytes: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(bytes);
    let ndim = r.i32()?;
    let _has_nulls = r.i32()?;
    let _elem_oid = r.u32()?;
    if ndim == 0 {
        r.finish()?;
        return Ok(Value::Array(Vec::new()));
    }
    if !(1..=MAX_ARRAY_DIMS).contains(&ndim) {
        return Err(format!("invalid number of dimensions {ndim}"));
    }
    let mut dims = Vec::new();
    for _ in 0..ndim {
        let len = r.i32()?;
        // Lower bounds only shift subscripts; JSON arrays always start at index 0.
        let _lower_bound = r.i32()?;
        dims.push(usize::try_from(len).map_err(|_| format!("negative dimension {len}"))?);
    }
    let total = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or("array size overflows")?;
    if total == 0 {
        // PostgreSQL sends empty arrays with ndim = 0; never build nested empties from garbage.
        r.finish()?;
        return Ok(Value::Array(Vec::new()));
    }
    // Each element carries at least a 4-byte length, which bounds the allocation by input size.
    if total > r.remaining() / 4 {
        return Err(format!(
            "{total} elements declared but only {} bytes follow",
            r.remaining()
        ));
    }
    let mut elems = Vec::with_capacity(total);
    for i in 0..total {
        let len = r.i32()?;
        if len == -1 {
            elems.push(Value::Null);
            continue;
        }
        let len = usize::try_from(len).map_err(|_| format!("invalid element length {len}"))?;
        let data = r.take(len)?;
        let value = decode_value(elem, data)
            .map_err(|e| format!("element {} ({}): {e}", i + 1, elem.label()))?;
        elems.push(value);
    }
    r.finish()?;
    Ok(nest(&dims, &mut elems.into_iter()))
}

/// Rebuilds the row-major element list into nested arrays, outermost dimension first.
fn nest(dims: &[usize], elems: &mut impl Iterator<Item = Value>) -> Value {
    match dims.split_first() {
        None => elems.next().unwrap_or(Value::Null),
        Some((&len, inner)) => Value::Array((0..len).map(|_| nest(inner, elems)).collect()),
    }
}

#[cfg(test)]
mod tests;
