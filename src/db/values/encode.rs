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
mod tests;
