//! JSON → binary parameters: [`encode_param`] and the [`ParamValue`] it returns, which binds
//! already-encoded bytes under the parameter's real type, plus the JSON readers and the
//! messages for values that do not fit their type.

use serde_json::Value;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, Postgres};

use super::datetime::{
    DateTimeInput, USECS_PER_DAY, USECS_PER_SEC, parse_time_of_day, parse_timestamp,
};
use super::net::inet_to_binary;
use super::numeric::numeric_to_binary;
use super::{Codec, array_needs_text_array, encoder_for, type_name};

/// One query parameter already encoded in PostgreSQL's binary format, bound with
/// `sqlx::Arguments::add`. It declares the parameter's real type in the Parse message (through
/// `Encode::produces`), so PostgreSQL reads the bytes with the right receive function.
#[derive(Debug, Clone)]
pub(crate) struct ParamValue {
    ty: PgTypeInfo,
    /// `None` is SQL NULL.
    bytes: Option<Vec<u8>>,
}

impl sqlx::Type<Postgres> for ParamValue {
    fn type_info() -> PgTypeInfo {
        // Only a fallback: `produces` below always supplies the actual type.
        <str as sqlx::Type<Postgres>>::type_info()
    }
}

impl sqlx::Encode<'_, Postgres> for ParamValue {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        match &self.bytes {
            None => Ok(IsNull::Yes),
            Some(bytes) => {
                buf.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
        }
    }

    fn produces(&self) -> Option<PgTypeInfo> {
        Some(self.ty.clone())
    }

    fn size_hint(&self) -> usize {
        self.bytes.as_ref().map_or(0, Vec::len)
    }
}

/// statement's `parameters()`). JSON null is SQL NULL for every type.
///
/// Accepted JSON per type: integers (int2/int4/int8/oid) from integral numbers or integer
/// strings, range-checked; float4/float8 from numbers or numeric strings including "NaN",
/// "Infinity", "-Infinity"; numeric from numbers or decimal strings (exponents allowed, scale
/// kept: "1.50" stays 1.50); bool from booleans or "true"/"false"/"t"/"f" and PostgreSQL's other
/// spellings; text-like types and enums from strings (numbers and booleans are stringified);
/// json/jsonb from any JSON; uuid from strings; bytea from `"\x…"` hex, else the string's UTF-8
/// bytes; date/time/timestamp/timestamptz from ISO 8601 strings (a timestamptz without an
/// offset is UTC; a timestamp ignores an offset, as PostgreSQL does); inet/cidr from strings
/// (a cidr without a prefix length is a single host, not a classful network); domains as their
/// base type; 1-D arrays of those from JSON arrays.
///
/// The error is a message for the end user. For types that cannot be bound from JSON it
/// suggests a cast written with `$n` standing for the placeholder's number, which the caller
/// may substitute.
pub(crate) fn encode_param(ty: &PgTypeInfo, value: &Value) -> Result<ParamValue, String> {
    if value.is_null() {
        return Ok(ParamValue {
            ty: ty.clone(),
            bytes: None,
        });
    }
    let name = type_name(ty);
    let Some(codec) = encoder_for(ty) else {
        return Err(cast_hint(ty, &name));
    };
    let bytes = encode_value(&codec, &name, value)?;
    Ok(ParamValue {
        ty: ty.clone(),
        bytes: Some(bytes),
    })
}

fn cast_hint(ty: &PgTypeInfo, name: &str) -> String {
    let (via, pass) = if array_needs_text_array(ty) {
        ("text[]", "a JSON array of strings")
    } else {
        ("text", "a string")
    };
    format!(
        "parameter type {name} cannot be bound from JSON; cast it in SQL instead, \
         e.g. $n::{via}::{}, and pass {pass}",
        sql_type_literal(name)
    )
}

/// Quotes the base of a type name when it would not survive as a bare SQL identifier.
fn sql_type_literal(name: &str) -> String {
    let base = name.trim_end_matches("[]");
    let suffix = &name[base.len()..];
    let plain = base
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && base
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_owned()
    } else {
        format!("{}{suffix}", crate::safety::ident::quote_ident(base))
    }
}

/// The JSON value as it would appear in the request, cut to about 80 characters so an error
/// about a huge document stays readable.
fn preview(value: &Value) -> String {
    const MAX_CHARS: usize = 80;
    let text = value.to_string();
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn expected(what: &str, name: &str, value: &Value) -> String {
    format!("expected {what} for {name}, got {}", preview(value))
}

fn encode_value(codec: &Codec, name: &str, value: &Value) -> Result<Vec<u8>, String> {
    Ok(match codec {
        Codec::Bool => vec![u8::from(
            json_bool(value).ok_or_else(|| expected("a boolean", name, value))?,
        )],
        Codec::Int2 => int_in_range::<i16>(value, name)?.to_be_bytes().to_vec(),
        Codec::Int4 => int_in_range::<i32>(value, name)?.to_be_bytes().to_vec(),
        Codec::Int8 => int_in_range::<i64>(value, name)?.to_be_bytes().to_vec(),
        Codec::Oid => int_in_range::<u32>(value, name)?.to_be_bytes().to_vec(),
        Codec::Float4 => {
            let v = json_float(value, name)?;
            if v.is_finite() && v.abs() > f64::from(f32::MAX) {
                return Err(format!(
                    "value {} is out of range for {name}",
                    preview(value)
                ));
            }
            // Narrowing is the point: float4 holds the nearest f32.
            (v as f32).to_be_bytes().to_vec()
        }
        Codec::Float8 => json_float(value, name)?.to_be_bytes().to_vec(),
        Codec::Numeric => {
            let text = match value {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_owned(),
                _ => return Err(expected("a number or a decimal string", name, value)),
            };
            numeric_to_binary(&text)
                .map_err(|reason| format!("{reason} for {name}, got {}", preview(value)))?
        }
        Codec::Text => {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(expected("a string", name, value)),
            };
            // PostgreSQL text cannot hold NUL; say so before the server gives a vaguer error.
            if text.contains('\0') {
                return Err(format!(
                    "{name} values cannot contain NUL (\\u0000) characters"
                ));
            }
            text.into_bytes()
        }
        Codec::Char => match value.as_str() {
            Some("") => vec![0],
            Some(s) if s.len() == 1 && s.is_ascii() => s.as_bytes().to_vec(),
            _ => return Err(expected("a single ASCII character", name, value)),
        },
        Codec::Bytea => {
            let text = value
                .as_str()
                .ok_or_else(|| expected("a string (\\x-prefixed hex or text)", name, value))?;
            match text.strip_prefix("\\x") {
                Some(hex) => decode_hex(hex).ok_or_else(|| expected("valid hex", name, value))?,
                None => text.as_bytes().to_vec(),
            }
        }
        Codec::Uuid => value
            .as_str()
            .and_then(parse_uuid)
            .ok_or_else(|| expected("a UUID string", name, value))?
            .to_vec(),
        Codec::Json => serialize_json(value)?,
        Codec::Jsonb => {
            let mut out = vec![1];
            out.extend(serialize_json(value)?);
            out
        }
        Codec::Date => {
            let days = match value.as_str().and_then(parse_timestamp) {
                Some(DateTimeInput::Infinity) => i32::MAX,
                Some(DateTimeInput::NegInfinity) => i32::MIN,
                Some(DateTimeInput::At { days, .. }) => {
                    i32::try_from(days).map_err(|_| format!("date out of range for {name}"))?
                }
                None => return Err(expected("an ISO 8601 date (YYYY-MM-DD)", name, value)),
            };
            days.to_be_bytes().to_vec()
        }
        Codec::Time => value
            .as_str()
            .and_then(parse_time_of_day)
            .ok_or_else(|| expected("a time of day (HH:MM[:SS[.ffffff]])", name, value))?
            .to_be_bytes()
            .to_vec(),
        Codec::Timestamp | Codec::TimestampTz => {
            let with_tz = matches!(codec, Codec::TimestampTz);
            let micros = match value.as_str().and_then(parse_timestamp) {
                Some(DateTimeInput::Infinity) => i64::MAX,
                Some(DateTimeInput::NegInfinity) => i64::MIN,
                Some(DateTimeInput::At {
                    days,
                    micros,
                    offset_secs,
                }) => {
                    let shift = if with_tz {
                        offset_secs.unwrap_or(0) * USECS_PER_SEC
                    } else {
                        0
                    };
                    days.checked_mul(USECS_PER_DAY)
                        .and_then(|v| v.checked_add(micros))
                        .and_then(|v| v.checked_sub(shift))
                        .ok_or_else(|| format!("timestamp out of range for {name}"))?
                }
                None => {
                    return Err(expected(
                        "an ISO 8601 timestamp (YYYY-MM-DDTHH:MM:SS[.ffffff][±HH:MM|Z])",
                        name,
                        value,
                    ));
                }
            };
            micros.to_be_bytes().to_vec()
        }
        Codec::Inet | Codec::Cidr => {
            let is_cidr = matches!(codec, Codec::Cidr);
            let text = value
                .as_str()
                .ok_or_else(|| expected("an IP address string", name, value))?;
            inet_to_binary(text.trim(), is_cidr)
                .map_err(|reason| format!("{reason} for {name}, got {}", preview(value)))?
        }
        Codec::Array {
            elem,
            elem_oid: Some(elem_oid),
            elem_name,
        } => encode_array(*elem_oid, elem_name, elem, name, value)?,
        // `encoder_for` never returns these (see `Codec::encodes`).
        Codec::TimeTz
        | Codec::Interval
        | Codec::MacAddr
        | Codec::MacAddr8
        | Codec::Bit
        | Codec::Array { elem_oid: None, .. } => {
            return Err(format!("parameter type {name} cannot be bound from JSON"));
        }
    })
}

fn encode_array(
    elem_oid: u32,
    elem_name: &str,
    elem: &Codec,
    name: &str,
    value: &Value,
) -> Result<Vec<u8>, String> {
    let Value::Array(items) = value else {
        return Err(expected("a JSON array", name, value));
    };
    let mut out = Vec::new();
    if items.is_empty() {
        // An empty array has no dimensions at all in PostgreSQL.
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&elem_oid.to_be_bytes());
        return Ok(out);
    }
    let len = i32::try_from(items.len()).map_err(|_| format!("too many elements for {name}"))?;
    let has_nulls = items.iter().any(Value::is_null);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&i32::from(has_nulls).to_be_bytes());
    out.extend_from_slice(&elem_oid.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    // A JSON array element is a legitimate json/jsonb value, and an element of an array-typed
    // domain; for anything else it is an attempt at a multi-dimensional array.
    let nested_ok = matches!(elem, Codec::Json | Codec::Jsonb | Codec::Array { .. });
    for (i, item) in items.iter().enumerate() {
        if item.is_null() {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            continue;
        }
        if item.is_array() && !nested_ok {
            return Err(format!(
                "element {}: multi-dimensional arrays cannot be bound for {name}; \
                 pass a 1-D array, or a text literal cast in SQL ($n::text::{})",
                i + 1,
                sql_type_literal(name)
            ));
        }
        let bytes =
            encode_value(elem, elem_name, item).map_err(|e| format!("element {}: {e}", i + 1))?;
        let blen =
            i32::try_from(bytes.len()).map_err(|_| format!("element {} too large", i + 1))?;
        out.extend_from_slice(&blen.to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

fn serialize_json(value: &Value) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("cannot serialize JSON: {e}"))
}

/// PostgreSQL's boolean spellings (boolin), plus JSON booleans.
fn json_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
            "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// An integral JSON number or integer string, range-checked for the target type.
fn int_in_range<T: TryFrom<i128>>(value: &Value, name: &str) -> Result<T, String> {
    let wide: i128 = match value {
        Value::Number(n) => {
            if let Some(v) = n.as_i64() {
                i128::from(v)
            } else if let Some(v) = n.as_u64() {
                i128::from(v)
            } else {
                // A float such as 5.0 or 1e3 is fine if it is a whole number. The bound keeps
                // the cast exact (and far beyond any integer type we target).
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 1e30 => f as i128,
                    _ => return Err(expected("an integer", name, value)),
                }
            }
        }
        Value::String(s) => s
            .trim()
            .parse::<i128>()
            .map_err(|_| expected("an integer", name, value))?,
        _ => return Err(expected("an integer", name, value)),
    };
    T::try_from(wide).map_err(|_| format!("value {wide} is out of range for {name}"))
}

fn json_float(value: &Value, name: &str) -> Result<f64, String> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        // Rust's parser takes "NaN", "Infinity", "-Infinity" (any case) and "inf" as well.
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        expected(
            "a number (or \"NaN\", \"Infinity\", \"-Infinity\")",
            name,
            value,
        )
    })
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    // byteain allows whitespace between byte pairs.
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

/// Accepts what uuid_in does in practice: optional braces, hyphens anywhere, any hex case.
fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let text = text.trim();
    let text = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text);
    let hex: String = text.chars().filter(|&c| c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    decode_hex(&hex)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::db::values::datetime::USECS_PER_DAY;
    use crate::db::values::numeric::{NUMERIC_NEG, NUMERIC_POS};
    use crate::db::values::*;
    use serde_json::json;

    /// Encodes with the public entry point and returns the bytes.
    fn encode_ok(ty: &PgTypeInfo, value: Value) -> Vec<u8> {
        let param = encode_param(ty, &value)
            .unwrap_or_else(|e| panic!("{value} as {}: {e}", type_name(ty)));
        param.bytes.expect("non-null")
    }

    #[test]
    fn encodes_scalars() {
        let cases: Vec<(u32, Value, Vec<u8>)> = vec![
            (INT2, json!(-2), be16(-2)),
            (INT4, json!(5), be32(5)),
            (INT4, json!("5"), be32(5)),
            (INT4, json!(" -7 "), be32(-7)),
            (INT4, json!(5.0), be32(5)),
            (INT4, json!(1e3), be32(1000)),
            (INT8, json!("9007199254740993"), be64(9_007_199_254_740_993)),
            (INT8, json!(i64::MIN), be64(i64::MIN)),
            (OID, json!(4_294_967_295u32), vec![0xff; 4]),
            (FLOAT4, json!(1.5), 1.5f32.to_be_bytes().to_vec()),
            (FLOAT8, json!(0.1), 0.1f64.to_be_bytes().to_vec()),
            (FLOAT8, json!("NaN"), f64::NAN.to_be_bytes().to_vec()),
            (
                FLOAT8,
                json!("-Infinity"),
                f64::NEG_INFINITY.to_be_bytes().to_vec(),
            ),
            (
                FLOAT4,
                json!("Infinity"),
                f32::INFINITY.to_be_bytes().to_vec(),
            ),
            (BOOL, json!(true), vec![1]),
            (BOOL, json!("f"), vec![0]),
            (BOOL, json!("TRUE"), vec![1]),
            (TEXT, json!("héllo"), "héllo".as_bytes().to_vec()),
            (TEXT, json!(5), b"5".to_vec()),
            (VARCHAR, json!(1.5), b"1.5".to_vec()),
            (NAME, json!(false), b"false".to_vec()),
            (CHAR, json!("x"), b"x".to_vec()),
            (JSON, json!({"a": [1, null]}), br#"{"a":[1,null]}"#.to_vec()),
            (JSONB, json!("s"), b"\x01\"s\"".to_vec()),
            (JSONB, json!([1]), b"\x01[1]".to_vec()),
            (
                UUID,
                json!("00010203-0405-0607-0809-0A0B0C0D0E0F"),
                (0u8..16).collect(),
            ),
            (
                UUID,
                json!("{000102030405060708090a0b0c0d0e0f}"),
                (0u8..16).collect(),
            ),
            (BYTEA, json!("\\x0102ff"), vec![1, 2, 0xff]),
            (BYTEA, json!("\\x01 02"), vec![1, 2]),
            (BYTEA, json!("hi"), b"hi".to_vec()),
            (DATE, json!("2026-01-01"), be32(9497)),
            (DATE, json!("-0043-03-15"), be32(-746_117)),
            (DATE, json!("0044-03-15 BC"), be32(-746_117)),
            (DATE, json!("infinity"), be32(i32::MAX)),
            (TIME, json!("04:46:21.53"), be64(17_181_530_000)),
            (TIME, json!("04:46"), be64(17_160_000_000)),
            (TIME, json!("24:00:00"), be64(USECS_PER_DAY)),
            (TIME, json!("00:00:00.0000005"), be64(1)),
            (TIMESTAMP, json!("2026-01-01T04:46:21.53"), be64(TS_2026)),
            (TIMESTAMP, json!("2026-01-01 04:46:21.53"), be64(TS_2026)),
            (
                TIMESTAMP,
                json!("2026-01-01T04:46:21.53+02:00"),
                be64(TS_2026),
            ),
            (TIMESTAMP, json!("2026-01-01"), be64(9497 * USECS_PER_DAY)),
            (TIMESTAMPTZ, json!("2026-01-01T04:46:21.53Z"), be64(TS_2026)),
            (TIMESTAMPTZ, json!("2026-01-01T04:46:21.53"), be64(TS_2026)),
            (
                TIMESTAMPTZ,
                json!("2026-01-01T06:46:21.53+02:00"),
                be64(TS_2026),
            ),
            (
                TIMESTAMPTZ,
                json!("2026-01-01 06:46:21.53+02"),
                be64(TS_2026),
            ),
            (
                TIMESTAMPTZ,
                json!("2026-01-01T00:16:21.53-0430"),
                be64(TS_2026),
            ),
            (TIMESTAMPTZ, json!("-infinity"), be64(i64::MIN)),
            (INET, json!("10.0.0.0/8"), inet(2, 8, 0, &[10, 0, 0, 0])),
            (
                INET,
                json!("192.168.0.1"),
                inet(2, 32, 0, &[192, 168, 0, 1]),
            ),
            (INET, json!("::1"), inet(3, 128, 0, &ipv6("::1"))),
            (
                CIDR,
                json!("2001:db8::/32"),
                inet(3, 32, 1, &ipv6("2001:db8::")),
            ),
            (CIDR, json!("10.1.0.0/16"), inet(2, 16, 1, &[10, 1, 0, 0])),
            (
                NUMERIC,
                json!("1.50"),
                numeric(0, NUMERIC_POS, 2, &[1, 5000]),
            ),
            (NUMERIC, json!(12), numeric(0, NUMERIC_POS, 0, &[12])),
            (NUMERIC, json!(-0.5), numeric(-1, NUMERIC_NEG, 1, &[5000])),
        ];
        for (oid, value, want) in cases {
            assert_eq!(encode_ok(&with_oid(oid), value.clone()), want, "{value}");
        }
    }

    #[test]
    fn encodes_arrays() {
        let int4_array = with_oid(1007);
        assert_eq!(
            encode_ok(&int4_array, json!([1, null, 3])),
            array(INT4, &[3], &[Some(be32(1)), None, Some(be32(3))])
        );
        assert_eq!(encode_ok(&int4_array, json!([])), array(INT4, &[], &[]));
        assert_eq!(
            encode_ok(&type_of::<Vec<String>>(), json!(["a", 2])),
            array(TEXT, &[2], &[Some(b"a".to_vec()), Some(b"2".to_vec())])
        );
        assert_eq!(
            encode_ok(&with_oid(3807), json!([[1], {"a": 1}])),
            array(
                JSONB,
                &[2],
                &[Some(b"\x01[1]".to_vec()), Some(b"\x01{\"a\":1}".to_vec())]
            )
        );
    }

    #[test]
    fn null_binds_for_every_type() {
        for ty in [
            with_oid(INT4),
            with_oid(3614),
            with_oid(99_999),
            with_oid(1187),
        ] {
            let param = encode_param(&ty, &Value::Null).expect("null always binds");
            assert!(param.bytes.is_none());
            assert_eq!(sqlx::Encode::<Postgres>::produces(&param), Some(ty));
        }
    }

    #[test]
    fn rejects_bad_params_with_guidance() {
        let long = "x".repeat(500);
        let cases: Vec<(PgTypeInfo, Value, &str)> = vec![
            (
                with_oid(INT4),
                json!("abc"),
                "expected an integer for int4, got \"abc\"",
            ),
            (
                with_oid(INT4),
                json!(1.5),
                "expected an integer for int4, got 1.5",
            ),
            (
                with_oid(INT4),
                json!(true),
                "expected an integer for int4, got true",
            ),
            (
                with_oid(INT2),
                json!(40000),
                "value 40000 is out of range for int2",
            ),
            (
                with_oid(INT8),
                json!("9223372036854775808"),
                "out of range for int8",
            ),
            (with_oid(OID), json!(-1), "value -1 is out of range for oid"),
            (with_oid(FLOAT4), json!(1e300), "out of range for float4"),
            (with_oid(FLOAT8), json!("fast"), "expected a number"),
            (
                with_oid(NUMERIC),
                json!("1.2.3"),
                "expected a decimal number for numeric",
            ),
            (
                with_oid(NUMERIC),
                json!([1]),
                "expected a number or a decimal string",
            ),
            (
                with_oid(BOOL),
                json!("maybe"),
                "expected a boolean for bool, got \"maybe\"",
            ),
            (
                with_oid(TEXT),
                json!({"a": 1}),
                "expected a string for text",
            ),
            (with_oid(TEXT), json!("a\u{0}b"), "cannot contain NUL"),
            (
                with_oid(CHAR),
                json!("ab"),
                "expected a single ASCII character",
            ),
            (
                with_oid(UUID),
                json!("not-a-uuid"),
                "expected a UUID string for uuid",
            ),
            (
                with_oid(BYTEA),
                json!("\\xzz"),
                "expected valid hex for bytea",
            ),
            (
                with_oid(DATE),
                json!("2026-02-30"),
                "expected an ISO 8601 date",
            ),
            (
                with_oid(DATE),
                json!("yesterday"),
                "expected an ISO 8601 date",
            ),
            (with_oid(TIME), json!("25:00"), "expected a time of day"),
            (
                with_oid(TIMESTAMPTZ),
                json!("2026-01-01T04:61"),
                "expected an ISO 8601 timestamp",
            ),
            (
                with_oid(TIMESTAMPTZ),
                json!("2026-01-01T04:00+16:00"),
                "expected an ISO 8601",
            ),
            (
                with_oid(INET),
                json!("10.0.0.256"),
                "expected an IPv4 or IPv6 address",
            ),
            (
                with_oid(INET),
                json!("10.0.0.1/33"),
                "invalid prefix length",
            ),
            (with_oid(CIDR), json!("10.0.0.1/8"), "bits set to the right"),
            (
                with_oid(1007),
                json!(5),
                "expected a JSON array for int4[], got 5",
            ),
            (
                with_oid(1007),
                json!([1, "x"]),
                "element 2: expected an integer for int4",
            ),
            (with_oid(1007), json!([[1, 2]]), "multi-dimensional arrays"),
            (
                with_oid(3614),
                json!("a b"),
                "parameter type tsvector cannot be bound from JSON; \
                 cast it in SQL instead, e.g. $n::text::tsvector, and pass a string",
            ),
            (with_oid(1186), json!("1 day"), "$n::text::interval"),
            (with_oid(3643), json!(["a"]), "$n::text[]::tsvector[]"),
            (
                with_oid(99_999),
                json!(1),
                "parameter type oid:99999 cannot be bound",
            ),
            (
                PgTypeInfo::with_name("\"Mood\""),
                json!("x"),
                "$n::text::\"Mood\"",
            ),
            (with_oid(INT4), json!(long), "expected an integer for int4"),
        ];
        for (ty, value, want) in cases {
            let err = encode_param(&ty, &value).expect_err(&value.to_string());
            assert!(err.contains(want), "{err:?} should contain {want:?}");
            assert!(err.chars().count() < 200, "overlong error: {err}");
        }
    }

    #[test]
    fn encoded_values_decode_back() {
        // (type, input, decoded output): the two halves of the module agree.
        let cases: Vec<(u32, Value, Value)> = vec![
            (INT8, json!("-9007199254740993"), json!("-9007199254740993")),
            (FLOAT4, json!(0.1), json!(0.1)),
            (NUMERIC, json!("-0.000123"), json!("-0.000123")),
            (NUMERIC, json!(1e20), json!("100000000000000000000")),
            (DATE, json!("1999-12-31"), json!("1999-12-31")),
            (DATE, json!("-4713-11-24"), json!("-4713-11-24")),
            (
                TIMESTAMP,
                json!("1969-07-20T20:17:40.5"),
                json!("1969-07-20T20:17:40.5"),
            ),
            (
                TIMESTAMPTZ,
                json!("2026-06-30T23:30:00-01:00"),
                json!("2026-07-01T00:30:00+00:00"),
            ),
            (TIME, json!("23:59:59.999999"), json!("23:59:59.999999")),
            (INET, json!("2001:db8::1/64"), json!("2001:db8::1/64")),
            (CIDR, json!("10.0.0.0/8"), json!("10.0.0.0/8")),
            (
                UUID,
                json!("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
                json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            ),
            (JSONB, json!({"k": [1, "two"]}), json!({"k": [1, "two"]})),
            (1231, json!(["1.10", null, -2]), json!(["1.10", null, "-2"])),
            (1182, json!(["2026-01-01"]), json!(["2026-01-01"])),
        ];
        for (oid, input, want) in cases {
            let ty = with_oid(oid);
            let bytes = encode_ok(&ty, input.clone());
            let dec = decoder_for(&ty).expect("decodable");
            assert_eq!(decode(&dec, &bytes), Ok(want), "{input}");
        }
    }

    #[test]
    fn previews_are_bounded() {
        let long = Value::String("é".repeat(300));
        let p = preview(&long);
        assert_eq!(p.chars().count(), 81);
        assert!(p.ends_with('…'));
        assert_eq!(preview(&json!("short")), "\"short\"");
    }
}
