//! PostgreSQL binary wire-format codecs: result bytes → JSON (`decoder_for` + `decode`), JSON →
//! binary parameters (`encode_param`), and the `type_name` helper both sides use in messages.
//!
//! sqlx always uses the binary format on the extended protocol, for results and parameters
//! alike. ColdQuery handles arbitrary queries, so it cannot name a Rust type per column; instead
//! it decodes the bytes of the types it understands here, and has PostgreSQL cast everything
//! else to `text` (or `text[]`) in SQL. The JSON shapes produced here are an interface contract:
//! they are documented on [`decode`] and pinned by the tests at the bottom of the file.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;
use sqlx::TypeInfo as _;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgTypeKind, Postgres};

// ---------------------------------------------------------------------------------------------
// Built-in types
// ---------------------------------------------------------------------------------------------

// OIDs of the built-in types this module encodes or decodes natively. They are fixed by
// PostgreSQL's catalog (pg_type.dat), unlike the OIDs of extension and user-defined types.
const BOOL: u32 = 16;
const BYTEA: u32 = 17;
const CHAR: u32 = 18;
const NAME: u32 = 19;
const INT8: u32 = 20;
const INT2: u32 = 21;
const INT4: u32 = 23;
const TEXT: u32 = 25;
const OID: u32 = 26;
const JSON: u32 = 114;
const XML: u32 = 142;
const CIDR: u32 = 650;
const FLOAT4: u32 = 700;
const FLOAT8: u32 = 701;
const UNKNOWN: u32 = 705;
const MACADDR8: u32 = 774;
const MACADDR: u32 = 829;
const INET: u32 = 869;
const BPCHAR: u32 = 1042;
const VARCHAR: u32 = 1043;
const DATE: u32 = 1082;
const TIME: u32 = 1083;
const TIMESTAMP: u32 = 1114;
const TIMESTAMPTZ: u32 = 1184;
const INTERVAL: u32 = 1186;
const TIMETZ: u32 = 1266;
const BIT: u32 = 1560;
const VARBIT: u32 = 1562;
const NUMERIC: u32 = 1700;
const UUID: u32 = 2950;
const JSONB: u32 = 3802;

/// `(oid, pg_type.typname, oid of the array type or 0)` for the built-in types a user is likely
/// to meet. sqlx only knows some of these by OID, and `PgTypeInfo::with_oid` values cannot be
/// asked for their kind, so names and array element types come from this table first.
const BUILTIN_TYPES: &[(u32, &str, u32)] = &[
    (BOOL, "bool", 1000),
    (BYTEA, "bytea", 1001),
    (CHAR, "char", 1002),
    (NAME, "name", 1003),
    (INT8, "int8", 1016),
    (INT2, "int2", 1005),
    (22, "int2vector", 1006),
    (INT4, "int4", 1007),
    (24, "regproc", 1008),
    (TEXT, "text", 1009),
    (OID, "oid", 1028),
    (27, "tid", 1010),
    (28, "xid", 1011),
    (29, "cid", 1012),
    (30, "oidvector", 1013),
    (JSON, "json", 199),
    (XML, "xml", 143),
    (194, "pg_node_tree", 0),
    (600, "point", 1017),
    (601, "lseg", 1018),
    (602, "path", 1019),
    (603, "box", 1020),
    (604, "polygon", 1027),
    (628, "line", 629),
    (CIDR, "cidr", 651),
    (FLOAT4, "float4", 1021),
    (FLOAT8, "float8", 1022),
    (UNKNOWN, "unknown", 0),
    (718, "circle", 719),
    (MACADDR8, "macaddr8", 775),
    (790, "money", 791),
    (MACADDR, "macaddr", 1040),
    (INET, "inet", 1041),
    (1033, "aclitem", 1034),
    (BPCHAR, "bpchar", 1014),
    (VARCHAR, "varchar", 1015),
    (DATE, "date", 1182),
    (TIME, "time", 1183),
    (TIMESTAMP, "timestamp", 1115),
    (TIMESTAMPTZ, "timestamptz", 1185),
    (INTERVAL, "interval", 1187),
    (TIMETZ, "timetz", 1270),
    (BIT, "bit", 1561),
    (VARBIT, "varbit", 1563),
    (NUMERIC, "numeric", 1231),
    (1790, "refcursor", 2201),
    (2202, "regprocedure", 2207),
    (2203, "regoper", 2208),
    (2204, "regoperator", 2209),
    (2205, "regclass", 2210),
    (2206, "regtype", 2211),
    (2249, "record", 2287),
    (2275, "cstring", 1263),
    (2276, "any", 0),
    (2277, "anyarray", 0),
    (2278, "void", 0),
    (2279, "trigger", 0),
    (2283, "anyelement", 0),
    (UUID, "uuid", 2951),
    (2970, "txid_snapshot", 2949),
    (3220, "pg_lsn", 3221),
    (3614, "tsvector", 3643),
    (3615, "tsquery", 3645),
    (3734, "regconfig", 3735),
    (3769, "regdictionary", 3770),
    (JSONB, "jsonb", 3807),
    (3904, "int4range", 3905),
    (3906, "numrange", 3907),
    (3908, "tsrange", 3909),
    (3910, "tstzrange", 3911),
    (3912, "daterange", 3913),
    (3926, "int8range", 3927),
    (4072, "jsonpath", 4073),
    (4089, "regnamespace", 4090),
    (4096, "regrole", 4097),
    (4191, "regcollation", 4192),
    (4451, "int4multirange", 6150),
    (4532, "nummultirange", 6151),
    (4533, "tsmultirange", 6152),
    (4534, "tstzmultirange", 6153),
    (4535, "datemultirange", 6155),
    (4536, "int8multirange", 6157),
    (5038, "pg_snapshot", 5039),
    (5069, "xid8", 271),
];

fn builtin_name(oid: u32) -> Option<&'static str> {
    BUILTIN_TYPES
        .iter()
        .find(|&&(o, _, _)| o == oid)
        .map(|&(_, name, _)| name)
}

/// The element OID when `oid` is the array type of a built-in in [`BUILTIN_TYPES`].
fn builtin_array_element(oid: u32) -> Option<u32> {
    if oid == 0 {
        return None;
    }
    BUILTIN_TYPES
        .iter()
        .find(|&&(_, _, array)| array == oid)
        .map(|&(elem, _, _)| elem)
}

/// Whether sqlx has resolved `ty` against a connection, which is when `PgTypeInfo::kind()` is
/// safe: sqlx panics there for bare declarations (`with_name`, `array_of`, `with_oid`, and
/// column types it could not look up). By-name declarations have no OID; by-OID declarations
/// are the only types sqlx displays as "?".
fn is_resolved(ty: &PgTypeInfo) -> bool {
    ty.oid().is_some() && ty.name() != "?"
}

/// The `pg_type.typname` of `ty` for display: lowercase catalog names for built-ins ("int4",
/// "timestamptz", "tsvector"), element name + "[]" for arrays ("int4[]", "mood[]"), and for
/// user-defined types the bare name with schema qualification and quotes removed ("mood").
/// A type sqlx knows only by an unfamiliar OID comes out as "oid:NNN".
pub(crate) fn type_name(ty: &PgTypeInfo) -> String {
    if let Some(oid) = ty.oid() {
        if let Some(name) = builtin_name(oid.0) {
            return name.to_owned();
        }
        if let Some(elem) = builtin_array_element(oid.0).and_then(builtin_name) {
            return format!("{elem}[]");
        }
        if !is_resolved(ty) {
            return format!("oid:{}", oid.0);
        }
        if let PgTypeKind::Array(elem) = ty.kind() {
            return format!("{}[]", type_name(elem));
        }
    }
    unqualified(ty.name())
}

/// Strips schema qualification and identifier quotes from a `regtype`-style name:
/// `myschema."My Type"[]` → `My Type[]`.
fn unqualified(name: &str) -> String {
    let mut base = name;
    let mut suffix = String::new();
    // Peel array brackets first so `"x"[]` unquotes; a quoted name ending in `[]"` is left alone.
    while let Some(rest) = base.strip_suffix("[]") {
        base = rest;
        suffix.push_str("[]");
    }
    let mut in_quotes = false;
    let mut start = 0;
    for (i, c) in base.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '.' if !in_quotes => start = i + 1,
            _ => {}
        }
    }
    let last = &base[start..];
    let bare = match last.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => last.to_owned(),
    };
    bare + &suffix
}

/// True when `ty` is an array type (directly, or as a domain over one): a caller that cannot
/// decode such a column natively should cast it to `text[]`, which keeps the array shape,
/// rather than to `text`.
pub(crate) fn array_needs_text_array(ty: &PgTypeInfo) -> bool {
    if let Some(oid) = ty.oid() {
        if builtin_array_element(oid.0).is_some() {
            return true;
        }
        if builtin_name(oid.0).is_some() {
            return false;
        }
    }
    if !is_resolved(ty) {
        return false;
    }
    match ty.kind() {
        PgTypeKind::Array(_) => true,
        PgTypeKind::Domain(base) => array_needs_text_array(base),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// How to turn one column's binary value into JSON; built by [`decoder_for`] once per column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoder {
    /// `bool`.
    Bool,
    /// `int2`.
    Int2,
    /// `int4`.
    Int4,
    /// `int8`: a number up to 2^53 in magnitude, a decimal string beyond.
    Int8,
    /// `oid` (unsigned 32-bit).
    Oid,
    /// `float4`, printed through its shortest decimal form.
    Float4,
    /// `float8`.
    Float8,
    /// `numeric`, as an exact decimal string.
    Numeric,
    /// Types whose binary form is their text: text, varchar, bpchar, name, unknown, xml, enums.
    Text,
    /// The one-byte `"char"` type.
    Char,
    /// `bytea`, as a `\x` hex string.
    Bytea,
    /// `uuid`.
    Uuid,
    /// `json`, embedded as JSON.
    Json,
    /// `jsonb`, embedded as JSON.
    Jsonb,
    /// `date`.
    Date,
    /// `time`.
    Time,
    /// `timetz`.
    TimeTz,
    /// `timestamp`.
    Timestamp,
    /// `timestamptz`, rendered in UTC.
    TimestampTz,
    /// `interval`, in the `postgres` IntervalStyle.
    Interval,
    /// `inet`.
    Inet,
    /// `cidr`.
    Cidr,
    /// `macaddr`.
    MacAddr,
    /// `macaddr8`.
    MacAddr8,
    /// `bit` and `varbit`.
    Bit,
    /// An array of any of the above, any number of dimensions.
    Array(Box<Decoder>),
}

impl Decoder {
    /// The type label used in error messages.
    fn label(&self) -> String {
        let name = match self {
            Decoder::Bool => "bool",
            Decoder::Int2 => "int2",
            Decoder::Int4 => "int4",
            Decoder::Int8 => "int8",
            Decoder::Oid => "oid",
            Decoder::Float4 => "float4",
            Decoder::Float8 => "float8",
            Decoder::Numeric => "numeric",
            Decoder::Text => "text",
            Decoder::Char => "\"char\"",
            Decoder::Bytea => "bytea",
            Decoder::Uuid => "uuid",
            Decoder::Json => "json",
            Decoder::Jsonb => "jsonb",
            Decoder::Date => "date",
            Decoder::Time => "time",
            Decoder::TimeTz => "timetz",
            Decoder::Timestamp => "timestamp",
            Decoder::TimestampTz => "timestamptz",
            Decoder::Interval => "interval",
            Decoder::Inet => "inet",
            Decoder::Cidr => "cidr",
            Decoder::MacAddr => "macaddr",
            Decoder::MacAddr8 => "macaddr8",
            Decoder::Bit => "bit",
            Decoder::Array(elem) => return format!("{}[]", elem.label()),
        };
        name.to_owned()
    }
}

fn scalar_decoder(oid: u32) -> Option<Decoder> {
    Some(match oid {
        BOOL => Decoder::Bool,
        INT2 => Decoder::Int2,
        INT4 => Decoder::Int4,
        INT8 => Decoder::Int8,
        OID => Decoder::Oid,
        FLOAT4 => Decoder::Float4,
        FLOAT8 => Decoder::Float8,
        NUMERIC => Decoder::Numeric,
        TEXT | VARCHAR | BPCHAR | NAME | UNKNOWN | XML => Decoder::Text,
        CHAR => Decoder::Char,
        BYTEA => Decoder::Bytea,
        UUID => Decoder::Uuid,
        JSON => Decoder::Json,
        JSONB => Decoder::Jsonb,
        DATE => Decoder::Date,
        TIME => Decoder::Time,
        TIMETZ => Decoder::TimeTz,
        TIMESTAMP => Decoder::Timestamp,
        TIMESTAMPTZ => Decoder::TimestampTz,
        INTERVAL => Decoder::Interval,
        INET => Decoder::Inet,
        CIDR => Decoder::Cidr,
        MACADDR => Decoder::MacAddr,
        MACADDR8 => Decoder::MacAddr8,
        BIT | VARBIT => Decoder::Bit,
        _ => return None,
    })
}

/// The decoder for a result column of type `ty`, or `None` when the binary format is not
/// understood here and the caller must cast the column in SQL instead: to `text[]` when
/// [`array_needs_text_array`] says so, otherwise to `text`.
///
/// Enums decode as their label, domains as their base type, and arrays natively when their
/// element type is native.
pub(crate) fn decoder_for(ty: &PgTypeInfo) -> Option<Decoder> {
    if let Some(oid) = ty.oid() {
        if let Some(decoder) = scalar_decoder(oid.0) {
            return Some(decoder);
        }
        if let Some(elem) = builtin_array_element(oid.0) {
            return scalar_decoder(elem).map(|d| Decoder::Array(Box::new(d)));
        }
    }
    if !is_resolved(ty) {
        return None;
    }
    match ty.kind() {
        PgTypeKind::Domain(base) => decoder_for(base),
        PgTypeKind::Enum(_) => Some(Decoder::Text),
        PgTypeKind::Array(elem) => decoder_for(elem).map(|d| Decoder::Array(Box::new(d))),
        _ => None,
    }
}

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
pub(crate) fn decode(dec: &Decoder, bytes: &[u8]) -> Result<Value, DecodeError> {
    decode_value(dec, bytes).map_err(|reason| DecodeError {
        type_name: dec.label(),
        reason,
    })
}

fn decode_value(dec: &Decoder, bytes: &[u8]) -> Result<Value, String> {
    Ok(match dec {
        Decoder::Bool => Value::Bool(fixed::<1>(bytes)?[0] != 0),
        Decoder::Int2 => Value::from(i16::from_be_bytes(fixed(bytes)?)),
        Decoder::Int4 => Value::from(i32::from_be_bytes(fixed(bytes)?)),
        Decoder::Int8 => int8_json(i64::from_be_bytes(fixed(bytes)?)),
        Decoder::Oid => Value::from(u32::from_be_bytes(fixed(bytes)?)),
        Decoder::Float4 => float4_json(f32::from_be_bytes(fixed(bytes)?)),
        Decoder::Float8 => float8_json(f64::from_be_bytes(fixed(bytes)?)),
        Decoder::Numeric => Value::String(numeric_to_string(bytes)?),
        Decoder::Text => Value::String(utf8(bytes)?.to_owned()),
        Decoder::Char => Value::String(char_to_string(fixed::<1>(bytes)?[0])),
        Decoder::Bytea => Value::String(bytea_hex(bytes)),
        Decoder::Uuid => Value::String(format_uuid(&fixed::<16>(bytes)?)),
        Decoder::Json => parse_json(bytes)?,
        Decoder::Jsonb => match bytes.split_first() {
            Some((1, text)) => parse_json(text)?,
            Some((version, _)) => return Err(format!("unsupported jsonb version {version}")),
            None => return Err("empty value".to_owned()),
        },
        Decoder::Date => Value::String(format_date(i32::from_be_bytes(fixed(bytes)?))),
        Decoder::Time => Value::String(format_time(i64::from_be_bytes(fixed(bytes)?))?),
        Decoder::TimeTz => {
            let mut r = Reader::new(bytes);
            let micros = r.i64()?;
            // PostgreSQL stores the zone as seconds *west* of UTC, the opposite of ISO offsets.
            let zone_west = r.i32()?;
            r.finish()?;
            let mut out = format_time(micros)?;
            push_offset(&mut out, -i64::from(zone_west));
            Value::String(out)
        }
        Decoder::Timestamp => {
            Value::String(format_timestamp(i64::from_be_bytes(fixed(bytes)?), false))
        }
        Decoder::TimestampTz => {
            Value::String(format_timestamp(i64::from_be_bytes(fixed(bytes)?), true))
        }
        Decoder::Interval => {
            let mut r = Reader::new(bytes);
            let micros = r.i64()?;
            let days = r.i32()?;
            let months = r.i32()?;
            r.finish()?;
            Value::String(format_interval(micros, days, months))
        }
        Decoder::Inet => Value::String(format_inet(bytes, false)?),
        Decoder::Cidr => Value::String(format_inet(bytes, true)?),
        Decoder::MacAddr => Value::String(format_mac(&fixed::<6>(bytes)?)),
        Decoder::MacAddr8 => Value::String(format_mac(&fixed::<8>(bytes)?)),
        Decoder::Bit => Value::String(format_bits(bytes)?),
        Decoder::Array(elem) => decode_array(elem, bytes)?,
    })
}

/// Big-endian cursor over a binary value; every read is bounds-checked so that truncated or
/// garbage input becomes an error instead of a panic.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
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

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let slice = self.take(N)?;
        slice
            .try_into()
            .map_err(|_| format!("expected {N} bytes, got {}", slice.len()))
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes::<1>()?[0])
    }

    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.bytes()?))
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes(self.bytes()?))
    }

    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.bytes()?))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.bytes()?))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.bytes()?))
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// PostgreSQL's receive functions reject trailing bytes, and so do we: they mean the value
    /// is not in the format we think it is.
    fn finish(&self) -> Result<(), String> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(format!("{} unexpected trailing bytes", self.buf.len()))
        }
    }
}

/// The whole of a fixed-size value.
fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], String> {
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

fn push_hex(out: &mut String, bytes: &[u8]) {
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

fn format_mac(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        push_hex(&mut out, std::slice::from_ref(b));
    }
    out
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

fn decode_array(elem: &Decoder, bytes: &[u8]) -> Result<Value, String> {
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

// --- numeric ---------------------------------------------------------------------------------

// Sign words of the numeric binary format.
const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;
/// Largest display scale PostgreSQL accepts (NUMERIC_DSCALE_MASK).
const NUMERIC_MAX_DSCALE: u16 = 0x3FFF;
/// Numeric digits are base 10000, four decimal digits each.
const NBASE: i16 = 10000;

/// Renders binary numeric the way `numeric_out` does: integer part without leading zeros (at
/// least "0"), then exactly `dscale` fractional digits.
fn numeric_to_string(bytes: &[u8]) -> Result<String, String> {
    let mut r = Reader::new(bytes);
    let ndigits = r.i16()?;
    let mut weight = r.i16()?;
    let sign = r.u16()?;
    let dscale = r.u16()?;
    let ndigits = usize::try_from(ndigits).map_err(|_| format!("negative ndigits {ndigits}"))?;
    let mut digits = Vec::with_capacity(ndigits);
    for _ in 0..ndigits {
        let d = r.i16()?;
        if !(0..NBASE).contains(&d) {
            return Err(format!("invalid base-10000 digit {d}"));
        }
        digits.push(d);
    }
    r.finish()?;
    let negative = match sign {
        NUMERIC_NAN => return Ok("NaN".to_owned()),
        NUMERIC_PINF => return Ok("Infinity".to_owned()),
        NUMERIC_NINF => return Ok("-Infinity".to_owned()),
        NUMERIC_POS => false,
        NUMERIC_NEG => true,
        other => return Err(format!("invalid sign word {other:#06x}")),
    };
    if dscale > NUMERIC_MAX_DSCALE {
        return Err(format!("invalid scale {dscale}"));
    }
    // PostgreSQL strips zero digit groups on receipt; doing the same keeps odd-but-valid input
    // from printing as "00001".
    let leading = digits.iter().take_while(|&&d| d == 0).count();
    digits.drain(..leading);
    weight = weight.saturating_sub(i16::try_from(leading).unwrap_or(i16::MAX));
    while digits.last() == Some(&0) {
        digits.pop();
    }

    let digit_at = |pos: i32| -> i16 {
        usize::try_from(pos)
            .ok()
            .and_then(|p| digits.get(p).copied())
            .unwrap_or(0)
    };
    let weight = i32::from(weight);
    let mut out = String::new();
    // Zero has no sign in PostgreSQL.
    if negative && !digits.is_empty() {
        out.push('-');
    }
    if weight < 0 || digits.is_empty() {
        out.push('0');
    } else {
        for pos in 0..=weight {
            if pos == 0 {
                let _ = write!(out, "{}", digit_at(pos));
            } else {
                let _ = write!(out, "{:04}", digit_at(pos));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut remaining = usize::from(dscale);
        // The first fraction group sits at index weight + 1; when weight < -1 the indexes
        // before 0 are the leading zero groups.
        let mut pos = weight + 1;
        while remaining > 0 {
            let group = format!("{:04}", digit_at(pos));
            let take = remaining.min(4);
            out.push_str(&group[..take]);
            remaining -= take;
            pos += 1;
        }
    }
    Ok(out)
}

// --- dates and times -------------------------------------------------------------------------

const USECS_PER_SEC: i64 = 1_000_000;
const USECS_PER_MINUTE: i64 = 60 * USECS_PER_SEC;
const USECS_PER_HOUR: i64 = 60 * USECS_PER_MINUTE;
const USECS_PER_DAY: i64 = 24 * USECS_PER_HOUR;
/// Days from 1970-01-01 (the civil-calendar helpers' epoch) to 2000-01-01 (PostgreSQL's).
const PG_EPOCH_DAYS: i64 = 10_957;

/// Proleptic Gregorian (year, month, day) for a day count relative to 1970-01-01, using 400-year
/// eras, so any day count a date or timestamp can hold works without floating point or tables.
/// Years are astronomical (0 = 1 BC).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift to 0000-03-01 so leap days fall at the end of each year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    // month is 1..=12 and day 1..=31 by construction.
    (year, month as u32, day as u32)
}

/// Inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let march_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * march_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn is_leap_year(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn push_ymd(out: &mut String, pg_days: i64) {
    let (year, month, day) = civil_from_days(pg_days + PG_EPOCH_DAYS);
    if year < 0 {
        let _ = write!(out, "-{:04}", year.unsigned_abs());
    } else {
        let _ = write!(out, "{year:04}");
    }
    let _ = write!(out, "-{month:02}-{day:02}");
}

/// Appends `.ffffff` with trailing zeros trimmed, or nothing for a whole second, as
/// PostgreSQL's AppendSeconds does.
fn push_fraction(out: &mut String, micros: u64) {
    if micros == 0 {
        return;
    }
    let digits = format!("{micros:06}");
    out.push('.');
    out.push_str(digits.trim_end_matches('0'));
}

/// `HH:MM:SS[.ffffff]` for a non-negative microsecond count; hours may exceed 23.
fn push_hms(out: &mut String, micros: u64) {
    let us_hour = USECS_PER_HOUR.unsigned_abs();
    let us_minute = USECS_PER_MINUTE.unsigned_abs();
    let us_sec = USECS_PER_SEC.unsigned_abs();
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        micros / us_hour,
        micros % us_hour / us_minute,
        micros % us_minute / us_sec
    );
    push_fraction(out, micros % us_sec);
}

/// `±HH:MM`, plus `:SS` when the offset has seconds (historical zones do).
fn push_offset(out: &mut String, east_secs: i64) {
    out.push(if east_secs < 0 { '-' } else { '+' });
    let abs = east_secs.unsigned_abs();
    let _ = write!(out, "{:02}:{:02}", abs / 3600, abs % 3600 / 60);
    if !abs.is_multiple_of(60) {
        let _ = write!(out, ":{:02}", abs % 60);
    }
}

fn format_date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".to_owned(),
        i32::MIN => "-infinity".to_owned(),
        _ => {
            let mut out = String::with_capacity(10);
            push_ymd(&mut out, i64::from(days));
            out
        }
    }
}

fn format_time(micros: i64) -> Result<String, String> {
    // 24:00:00 is a valid PostgreSQL time.
    match u64::try_from(micros) {
        Ok(us) if micros <= USECS_PER_DAY => {
            let mut out = String::with_capacity(15);
            push_hms(&mut out, us);
            Ok(out)
        }
        _ => Err(format!("time of day out of range: {micros} µs")),
    }
}

fn format_timestamp(micros: i64, utc_suffix: bool) -> String {
    match micros {
        i64::MAX => return "infinity".to_owned(),
        i64::MIN => return "-infinity".to_owned(),
        _ => {}
    }
    let mut out = String::with_capacity(32);
    push_ymd(&mut out, micros.div_euclid(USECS_PER_DAY));
    out.push('T');
    push_hms(&mut out, micros.rem_euclid(USECS_PER_DAY).unsigned_abs());
    if utc_suffix {
        out.push_str("+00:00");
    }
    out
}

/// Interval text in the `postgres` IntervalStyle (PostgreSQL's default), field by field as its
/// EncodeInterval does. Its quirks are deliberate: each nonzero year/month/day field shows a
/// "+" on the *next* field when it was negative ("-1 days +02:00:00"), the time part gets one
/// sign of its own, hours are not folded into days, and a zero interval prints "00:00:00".
fn format_interval(micros: i64, days: i32, months: i32) -> String {
    // PostgreSQL 17 represents infinite intervals with every field at its extreme.
    if micros == i64::MAX && days == i32::MAX && months == i32::MAX {
        return "infinity".to_owned();
    }
    if micros == i64::MIN && days == i32::MIN && months == i32::MIN {
        return "-infinity".to_owned();
    }
    // Rust's / and % truncate toward zero like C's, so every field keeps the sign of its source.
    let years = i64::from(months / 12);
    let months = i64::from(months % 12);
    let hours = micros / USECS_PER_HOUR;
    let minutes = micros % USECS_PER_HOUR / USECS_PER_MINUTE;
    let seconds = micros % USECS_PER_MINUTE / USECS_PER_SEC;
    let fraction = micros % USECS_PER_SEC;

    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    for (value, unit) in [(years, "year"), (months, "mon"), (i64::from(days), "day")] {
        if value == 0 {
            continue;
        }
        if !is_zero {
            out.push(' ');
        }
        if is_before && value > 0 {
            out.push('+');
        }
        let plural = if value == 1 { "" } else { "s" };
        let _ = write!(out, "{value} {unit}{plural}");
        is_before = value < 0;
        is_zero = false;
    }
    if is_zero || micros != 0 {
        if !is_zero {
            out.push(' ');
        }
        if micros < 0 {
            out.push('-');
        } else if is_before {
            out.push('+');
        }
        let _ = write!(
            out,
            "{:02}:{:02}:{:02}",
            hours.unsigned_abs(),
            minutes.unsigned_abs(),
            seconds.unsigned_abs()
        );
        push_fraction(&mut out, fraction.unsigned_abs());
    }
    out
}

// --- network addresses -----------------------------------------------------------------------

/// Address family bytes of the inet/cidr binary format (PGSQL_AF_INET, PGSQL_AF_INET6).
const PGSQL_AF_INET: u8 = 2;
const PGSQL_AF_INET6: u8 = 3;

fn format_inet(bytes: &[u8], is_cidr: bool) -> Result<String, String> {
    let mut r = Reader::new(bytes);
    let family = r.u8()?;
    let bits = r.u8()?;
    // The value's own cidr flag only echoes its type, which the decoder already knows.
    let _is_cidr = r.u8()?;
    let nb = r.u8()?;
    let (len, max_bits) = match family {
        PGSQL_AF_INET => (4, 32),
        PGSQL_AF_INET6 => (16, 128),
        other => return Err(format!("unknown address family {other}")),
    };
    if usize::from(nb) != len {
        return Err(format!("address length {nb} does not match its family"));
    }
    if bits > max_bits {
        return Err(format!("invalid prefix length {bits}"));
    }
    let addr = r.take(len)?;
    r.finish()?;
    let mut out = if family == PGSQL_AF_INET {
        addr.iter().map(u8::to_string).collect::<Vec<_>>().join(".")
    } else {
        format_ipv6(addr)
    };
    // inet hides a full-length prefix; cidr always shows it.
    if is_cidr || bits != max_bits {
        let _ = write!(out, "/{bits}");
    }
    Ok(out)
}

/// IPv6 text as PostgreSQL prints it, which differs from Rust's RFC 5952 `Display`: the first
/// longest run of two or more zero groups becomes "::", and when the address starts with five
/// zero groups then ffff (IPv4-mapped) or with six zero groups (IPv4-compatible), the last 32 bits
/// print as dotted quad (`::ffff:1.2.3.4`, `::1.2.3.4`, and `::2:3` as `::0.2.0.3`).
fn format_ipv6(addr: &[u8]) -> String {
    let mut words = [0u16; 8];
    for (word, pair) in words.iter_mut().zip(addr.chunks_exact(2)) {
        *word = u16::from_be_bytes([pair[0], pair[1]]);
    }
    let mut best: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < words.len() {
        if words[i] != 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < words.len() && words[i] == 0 {
            i += 1;
        }
        let len = i - start;
        if len >= 2 && best.is_none_or(|(_, best_len)| len > best_len) {
            best = Some((start, len));
        }
    }
    let embedded_v4 = matches!(best, Some((0, 6))) || (best == Some((0, 5)) && words[5] == 0xffff);

    let mut out = String::with_capacity(40);
    let mut i = 0;
    while i < words.len() {
        if let Some((start, len)) = best
            && i == start
        {
            out.push(':');
            if start + len == words.len() {
                out.push(':');
            }
            i += len;
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6 && embedded_v4 {
            let _ = write!(
                out,
                "{}",
                Ipv4Addr::new(addr[12], addr[13], addr[14], addr[15])
            );
            break;
        }
        let _ = write!(out, "{:x}", words[i]);
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Parameter encoding
// ---------------------------------------------------------------------------------------------

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

/// How a JSON value becomes the binary format of one parameter type.
#[derive(Debug, Clone)]
enum Encoder {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Numeric,
    Text,
    Char,
    Bytea,
    Uuid,
    Json,
    Jsonb,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Inet,
    Cidr,
    Array {
        elem_oid: u32,
        elem_name: String,
        elem: Box<Encoder>,
    },
}

fn scalar_encoder(oid: u32) -> Option<Encoder> {
    Some(match oid {
        BOOL => Encoder::Bool,
        INT2 => Encoder::Int2,
        INT4 => Encoder::Int4,
        INT8 => Encoder::Int8,
        OID => Encoder::Oid,
        FLOAT4 => Encoder::Float4,
        FLOAT8 => Encoder::Float8,
        NUMERIC => Encoder::Numeric,
        TEXT | VARCHAR | BPCHAR | NAME | UNKNOWN | XML => Encoder::Text,
        CHAR => Encoder::Char,
        BYTEA => Encoder::Bytea,
        UUID => Encoder::Uuid,
        JSON => Encoder::Json,
        JSONB => Encoder::Jsonb,
        DATE => Encoder::Date,
        TIME => Encoder::Time,
        TIMESTAMP => Encoder::Timestamp,
        TIMESTAMPTZ => Encoder::TimestampTz,
        INET => Encoder::Inet,
        CIDR => Encoder::Cidr,
        _ => return None,
    })
}

fn encoder_for(ty: &PgTypeInfo) -> Option<Encoder> {
    if let Some(oid) = ty.oid() {
        if let Some(encoder) = scalar_encoder(oid.0) {
            return Some(encoder);
        }
        if let Some(elem_oid) = builtin_array_element(oid.0) {
            return Some(Encoder::Array {
                elem_oid,
                elem_name: builtin_name(elem_oid).unwrap_or("element").to_owned(),
                elem: Box::new(scalar_encoder(elem_oid)?),
            });
        }
    }
    if !is_resolved(ty) {
        return None;
    }
    match ty.kind() {
        // A domain's receive function is its base type's, followed by the constraint checks.
        PgTypeKind::Domain(base) => encoder_for(base),
        PgTypeKind::Enum(_) => Some(Encoder::Text),
        PgTypeKind::Array(elem) => Some(Encoder::Array {
            // The array header must name the element type, or array_recv rejects it.
            elem_oid: elem.oid()?.0,
            elem_name: type_name(elem),
            elem: Box::new(encoder_for(elem)?),
        }),
        _ => None,
    }
}

/// Encodes `value` for a parameter whose type PostgreSQL inferred as `ty` (from a prepared
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
    let Some(encoder) = encoder_for(ty) else {
        return Err(cast_hint(ty, &name));
    };
    let bytes = encode_value(&encoder, &name, value)?;
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
        format!("\"{}\"{suffix}", base.replace('"', "\"\""))
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

fn encode_value(encoder: &Encoder, name: &str, value: &Value) -> Result<Vec<u8>, String> {
    Ok(match encoder {
        Encoder::Bool => vec![u8::from(
            json_bool(value).ok_or_else(|| expected("a boolean", name, value))?,
        )],
        Encoder::Int2 => int_in_range::<i16>(value, name)?.to_be_bytes().to_vec(),
        Encoder::Int4 => int_in_range::<i32>(value, name)?.to_be_bytes().to_vec(),
        Encoder::Int8 => int_in_range::<i64>(value, name)?.to_be_bytes().to_vec(),
        Encoder::Oid => int_in_range::<u32>(value, name)?.to_be_bytes().to_vec(),
        Encoder::Float4 => {
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
        Encoder::Float8 => json_float(value, name)?.to_be_bytes().to_vec(),
        Encoder::Numeric => {
            let text = match value {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_owned(),
                _ => return Err(expected("a number or a decimal string", name, value)),
            };
            numeric_to_binary(&text)
                .map_err(|reason| format!("{reason} for {name}, got {}", preview(value)))?
        }
        Encoder::Text => {
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
        Encoder::Char => match value.as_str() {
            Some("") => vec![0],
            Some(s) if s.len() == 1 && s.is_ascii() => s.as_bytes().to_vec(),
            _ => return Err(expected("a single ASCII character", name, value)),
        },
        Encoder::Bytea => {
            let text = value
                .as_str()
                .ok_or_else(|| expected("a string (\\x-prefixed hex or text)", name, value))?;
            match text.strip_prefix("\\x") {
                Some(hex) => decode_hex(hex).ok_or_else(|| expected("valid hex", name, value))?,
                None => text.as_bytes().to_vec(),
            }
        }
        Encoder::Uuid => value
            .as_str()
            .and_then(parse_uuid)
            .ok_or_else(|| expected("a UUID string", name, value))?
            .to_vec(),
        Encoder::Json => serialize_json(value)?,
        Encoder::Jsonb => {
            let mut out = vec![1];
            out.extend(serialize_json(value)?);
            out
        }
        Encoder::Date => {
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
        Encoder::Time => value
            .as_str()
            .and_then(parse_time_of_day)
            .ok_or_else(|| expected("a time of day (HH:MM[:SS[.ffffff]])", name, value))?
            .to_be_bytes()
            .to_vec(),
        Encoder::Timestamp | Encoder::TimestampTz => {
            let with_tz = matches!(encoder, Encoder::TimestampTz);
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
        Encoder::Inet | Encoder::Cidr => {
            let is_cidr = matches!(encoder, Encoder::Cidr);
            let text = value
                .as_str()
                .ok_or_else(|| expected("an IP address string", name, value))?;
            inet_to_binary(text.trim(), is_cidr)
                .map_err(|reason| format!("{reason} for {name}, got {}", preview(value)))?
        }
        Encoder::Array {
            elem_oid,
            elem_name,
            elem,
        } => encode_array(*elem_oid, elem_name, elem, name, value)?,
    })
}

fn encode_array(
    elem_oid: u32,
    elem_name: &str,
    elem: &Encoder,
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
    let nested_ok = matches!(elem, Encoder::Json | Encoder::Jsonb | Encoder::Array { .. });
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

/// Base-10000 binary numeric from decimal text, keeping the text's scale the way numeric_in
/// does (so "1.50" is stored with dscale 2, and "1.5e-3" as 0.0015).
fn numeric_to_binary(text: &str) -> Result<Vec<u8>, String> {
    let header = |ndigits: i16, weight: i16, sign: u16, dscale: u16| {
        let mut out = Vec::with_capacity(8);
        out.extend_from_slice(&ndigits.to_be_bytes());
        out.extend_from_slice(&weight.to_be_bytes());
        out.extend_from_slice(&sign.to_be_bytes());
        out.extend_from_slice(&dscale.to_be_bytes());
        out
    };
    match text.to_ascii_lowercase().as_str() {
        "nan" => return Ok(header(0, 0, NUMERIC_NAN, 0)),
        "infinity" | "+infinity" | "inf" | "+inf" => return Ok(header(0, 0, NUMERIC_PINF, 0)),
        "-infinity" | "-inf" => return Ok(header(0, 0, NUMERIC_NINF, 0)),
        _ => {}
    }
    let invalid = || "expected a decimal number".to_owned();
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => {
            let exp = unsigned[at + 1..].parse::<i32>().map_err(|_| invalid())?;
            (&unsigned[..at], exp)
        }
        None => (unsigned, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.len() + frac_part.len() == 0 || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(invalid());
    }
    let out_of_range = || "value out of numeric range".to_owned();
    // Scale after the exponent moves the point, as numeric_in computes it.
    let frac_len = i64::try_from(frac_part.len()).map_err(|_| out_of_range())?;
    let dscale = (frac_len - i64::from(exponent)).max(0);
    let dscale = u16::try_from(dscale)
        .ok()
        .filter(|&d| d <= NUMERIC_MAX_DSCALE)
        .ok_or_else(out_of_range)?;

    // Decimal digit i of `int_part ++ frac_part` has place value 10^(point - 1 - i).
    let digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    let point = i64::try_from(int_part.len()).map_err(|_| out_of_range())? + i64::from(exponent);
    let Some(first) = digits.iter().position(|&d| d != 0) else {
        // Zero: no digits, no sign, but the scale still shows ("0.00").
        return Ok(header(0, 0, NUMERIC_POS, dscale));
    };
    let last = digits.iter().rposition(|&d| d != 0).unwrap_or(first);
    let place = |i: usize| point - 1 - i as i64;
    // Base-10000 group g holds decimal places 4g..4g+3.
    let top_group = place(first).div_euclid(4);
    let bottom_group = place(last).div_euclid(4);
    let ndigits = usize::try_from(top_group - bottom_group + 1).map_err(|_| out_of_range())?;
    let weight = i16::try_from(top_group).map_err(|_| out_of_range())?;
    let ndigits_i16 = i16::try_from(ndigits).map_err(|_| out_of_range())?;
    let mut groups = vec![0i16; ndigits];
    for (i, &d) in digits.iter().enumerate().take(last + 1).skip(first) {
        let p = place(i);
        let slot = usize::try_from(top_group - p.div_euclid(4)).map_err(|_| out_of_range())?;
        let scale = 10i16.pow(p.rem_euclid(4) as u32);
        if let Some(group) = groups.get_mut(slot) {
            *group += i16::from(d) * scale;
        }
    }
    let sign = if negative { NUMERIC_NEG } else { NUMERIC_POS };
    let mut out = header(ndigits_i16, weight, sign, dscale);
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Ok(out)
}

/// A parsed date or timestamp, before it is narrowed to a particular type.
enum DateTimeInput {
    Infinity,
    NegInfinity,
    At {
        /// Days since 2000-01-01.
        days: i64,
        /// Microseconds since midnight (may reach 24:00:00).
        micros: i64,
        /// Offset east of UTC, when the text had one.
        offset_secs: Option<i64>,
    },
}

/// Byte cursor for the ISO 8601 parsers.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor {
            s: s.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Between `min` and `max` ASCII digits as a number, and how many there were.
    fn number(&mut self, min: usize, max: usize) -> Option<(i64, usize)> {
        let start = self.pos;
        let mut value: i64 = 0;
        while self.pos - start < max {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    value = value.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
                    self.pos += 1;
                }
                _ => break,
            }
        }
        let count = self.pos - start;
        (count >= min).then_some((value, count))
    }

    fn at_end(&self) -> bool {
        self.pos == self.s.len()
    }

    /// Case-insensitive keyword.
    fn eat_word(&mut self, word: &str) -> bool {
        let end = self.pos + word.len();
        match self.s.get(self.pos..end) {
            Some(found) if found.eq_ignore_ascii_case(word.as_bytes()) => {
                self.pos = end;
                true
            }
            _ => false,
        }
    }
}

/// `HH:MM[:SS[.fraction]]` as microseconds; fractions beyond microseconds are rounded, as
/// PostgreSQL does. 24:00:00 is allowed, and a leap second 60 rolls over like in PostgreSQL.
fn parse_hms(c: &mut Cursor<'_>) -> Option<i64> {
    let (hour, _) = c.number(1, 2)?;
    if !c.eat(b':') {
        return None;
    }
    let (minute, _) = c.number(2, 2)?;
    let (mut second, mut fraction) = (0, 0);
    if c.eat(b':') {
        second = c.number(2, 2)?.0;
        if c.eat(b'.') {
            let (digits, count) = c.number(1, 7)?;
            // number() stops at 7 digits; anything further is below rounding precision.
            while matches!(c.peek(), Some(b'0'..=b'9')) {
                c.pos += 1;
            }
            fraction = match count {
                7 => (digits + 5) / 10,
                n => digits * 10i64.pow(u32::try_from(6 - n).ok()?),
            };
        }
    }
    if minute > 59 || second > 60 || hour > 24 {
        return None;
    }
    let micros =
        hour * USECS_PER_HOUR + minute * USECS_PER_MINUTE + second * USECS_PER_SEC + fraction;
    (micros <= USECS_PER_DAY).then_some(micros)
}

fn parse_time_of_day(text: &str) -> Option<i64> {
    let mut c = Cursor::new(text.trim());
    let micros = parse_hms(&mut c)?;
    c.at_end().then_some(micros)
}

/// `Z`, `UTC`, or `±HH[[:]MM[[:]SS]]`, as seconds east of UTC: `Ok(None)` when no offset
/// follows, `Err(())` when one starts but is malformed (it must not be mistaken for UTC).
fn parse_offset(c: &mut Cursor<'_>) -> Result<Option<i64>, ()> {
    if c.eat(b'Z') || c.eat(b'z') || c.eat_word("UTC") {
        return Ok(Some(0));
    }
    let sign = if c.eat(b'+') {
        1
    } else if c.eat(b'-') {
        -1
    } else {
        return Ok(None);
    };
    let (hours, _) = c.number(1, 2).ok_or(())?;
    let mut minutes = 0;
    let mut seconds = 0;
    let colon = c.eat(b':');
    match c.number(2, 2) {
        Some((m, _)) => {
            minutes = m;
            // Seconds use the same separator style as minutes.
            if (colon && c.eat(b':')) || (!colon && c.peek().is_some_and(|b| b.is_ascii_digit())) {
                seconds = c.number(2, 2).ok_or(())?.0;
            }
        }
        None if colon => return Err(()),
        None => {}
    }
    // PostgreSQL accepts offsets up to 15:59:59.
    if hours > 15 || minutes > 59 || seconds > 59 {
        return Err(());
    }
    Ok(Some(sign * (hours * 3600 + minutes * 60 + seconds)))
}

/// ISO 8601 date or timestamp: `[±]YYYY-MM-DD[(T| )HH:MM[:SS[.f]]][offset][ BC]`, or
/// `infinity`/`-infinity`. A `BC` suffix (PostgreSQL's own output for old dates) converts the
/// year; otherwise negative years are astronomical, as [`decode`] prints them.
fn parse_timestamp(text: &str) -> Option<DateTimeInput> {
    let text = text.trim();
    match text.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => return Some(DateTimeInput::Infinity),
        "-infinity" => return Some(DateTimeInput::NegInfinity),
        _ => {}
    }
    let mut c = Cursor::new(text);
    let negative_year = if c.eat(b'-') {
        true
    } else {
        c.eat(b'+');
        false
    };
    let (year, _) = c.number(1, 7)?;
    let mut year = if negative_year { -year } else { year };
    if !c.eat(b'-') {
        return None;
    }
    let month = u32::try_from(c.number(1, 2)?.0).ok()?;
    if !c.eat(b'-') {
        return None;
    }
    let day = u32::try_from(c.number(1, 2)?.0).ok()?;
    let mut micros = 0;
    let mut offset_secs = None;
    let before_time = c.pos;
    if c.eat(b'T') || c.eat(b't') || c.eat(b' ') {
        if matches!(c.peek(), Some(b'0'..=b'9')) {
            micros = parse_hms(&mut c)?;
            c.skip_spaces();
            offset_secs = parse_offset(&mut c).ok()?;
        } else {
            c.pos = before_time;
        }
    }
    c.skip_spaces();
    if c.eat_word("BC") {
        if negative_year || year < 1 {
            return None;
        }
        year = 1 - year;
    } else {
        c.eat_word("AD");
    }
    if !c.at_end() || !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day)
    {
        return None;
    }
    Some(DateTimeInput::At {
        days: days_from_civil(year, month, day) - PG_EPOCH_DAYS,
        micros,
        offset_secs,
    })
}

/// inet/cidr binary from `address[/prefix]`.
fn inet_to_binary(text: &str, is_cidr: bool) -> Result<Vec<u8>, String> {
    let (addr_text, bits_text) = match text.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (text, None),
    };
    let (family, addr, max_bits): (u8, Vec<u8>, u8) = if let Ok(v4) = addr_text.parse::<Ipv4Addr>()
    {
        (PGSQL_AF_INET, v4.octets().to_vec(), 32)
    } else if let Ok(v6) = addr_text.parse::<Ipv6Addr>() {
        (PGSQL_AF_INET6, v6.octets().to_vec(), 128)
    } else {
        return Err("expected an IPv4 or IPv6 address".to_owned());
    };
    let bits = match bits_text {
        None => max_bits,
        Some(b) => b
            .parse::<u8>()
            .ok()
            .filter(|&b| b <= max_bits)
            .ok_or_else(|| format!("invalid prefix length (0 to {max_bits})"))?,
    };
    if is_cidr {
        // cidr_recv rejects host bits right of the mask; name the fix instead.
        for (i, &byte) in addr.iter().enumerate() {
            let kept = usize::from(bits).saturating_sub(i * 8).min(8);
            let host_mask = if kept == 8 { 0 } else { 0xffu8 >> kept };
            if byte & host_mask != 0 {
                return Err("cidr value has bits set to the right of the prefix length \
                            (use the network address, or type inet)"
                    .to_owned());
            }
        }
    }
    let nb = u8::try_from(addr.len()).map_err(|_| "address too long".to_owned())?;
    let mut out = vec![family, bits, u8::from(is_cidr), nb];
    out.extend_from_slice(&addr);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sqlx::postgres::types::Oid;

    fn with_oid(oid: u32) -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(oid))
    }

    fn type_of<T: sqlx::Type<Postgres>>() -> PgTypeInfo {
        T::type_info()
    }

    fn be16(v: i16) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }

    fn be32(v: i32) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }

    fn be64(v: i64) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// Binary numeric from its fields.
    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut out = be16(i16::try_from(digits.len()).expect("few digits"));
        out.extend(be16(weight));
        out.extend(sign.to_be_bytes());
        out.extend(dscale.to_be_bytes());
        for d in digits {
            out.extend(be16(*d));
        }
        out
    }

    /// Binary interval from (months, days, microseconds).
    fn interval(months: i32, days: i32, micros: i64) -> Vec<u8> {
        cat(&[&be64(micros), &be32(days), &be32(months)])
    }

    fn inet(family: u8, bits: u8, cidr: u8, addr: &[u8]) -> Vec<u8> {
        let mut out = vec![family, bits, cidr, u8::try_from(addr.len()).expect("short")];
        out.extend_from_slice(addr);
        out
    }

    /// Binary array: dims, then elements (None = NULL).
    fn array(elem_oid: u32, dims: &[i32], elems: &[Option<Vec<u8>>]) -> Vec<u8> {
        let mut out = be32(i32::try_from(dims.len()).expect("few dims"));
        out.extend(be32(i32::from(elems.iter().any(Option::is_none))));
        out.extend(elem_oid.to_be_bytes());
        for d in dims {
            out.extend(be32(*d));
            out.extend(be32(1));
        }
        for e in elems {
            match e {
                None => out.extend(be32(-1)),
                Some(b) => {
                    out.extend(be32(i32::try_from(b.len()).expect("small")));
                    out.extend(b);
                }
            }
        }
        out
    }

    fn ipv6(text: &str) -> Vec<u8> {
        text.parse::<Ipv6Addr>()
            .expect("test address")
            .octets()
            .to_vec()
    }

    /// 2026-01-01 04:46:21.53 as PostgreSQL microseconds.
    const TS_2026: i64 = 9497 * USECS_PER_DAY + 17_181_530_000;

    #[test]
    fn decodes_scalars() {
        let cases: Vec<(Decoder, Vec<u8>, Value)> = vec![
            (Decoder::Bool, vec![1], json!(true)),
            (Decoder::Bool, vec![0], json!(false)),
            (Decoder::Int2, be16(-2), json!(-2)),
            (Decoder::Int4, be32(256), json!(256)),
            (Decoder::Int4, be32(i32::MIN), json!(i32::MIN)),
            (Decoder::Oid, vec![0xff; 4], json!(4_294_967_295u32)),
            (Decoder::Float4, 1.5f32.to_be_bytes().to_vec(), json!(1.5)),
            (Decoder::Float4, 0.1f32.to_be_bytes().to_vec(), json!(0.1)),
            (
                Decoder::Float4,
                (-3.4e38f32).to_be_bytes().to_vec(),
                json!(-3.4e38),
            ),
            (
                Decoder::Float4,
                f32::NAN.to_be_bytes().to_vec(),
                json!("NaN"),
            ),
            (
                Decoder::Float4,
                f32::INFINITY.to_be_bytes().to_vec(),
                json!("Infinity"),
            ),
            (Decoder::Float8, 0.1f64.to_be_bytes().to_vec(), json!(0.1)),
            (
                Decoder::Float8,
                f64::NEG_INFINITY.to_be_bytes().to_vec(),
                json!("-Infinity"),
            ),
            (
                Decoder::Float8,
                f64::NAN.to_be_bytes().to_vec(),
                json!("NaN"),
            ),
            (Decoder::Text, "héllo".as_bytes().to_vec(), json!("héllo")),
            (Decoder::Text, vec![], json!("")),
            (Decoder::Char, b"a".to_vec(), json!("a")),
            (Decoder::Char, vec![0], json!("")),
            (Decoder::Char, vec![0xe9], json!("\\351")),
            (Decoder::Bytea, vec![1, 2, 0xff], json!("\\x0102ff")),
            (Decoder::Bytea, vec![], json!("\\x")),
            (
                Decoder::Uuid,
                (0u8..16).collect(),
                json!("00010203-0405-0607-0809-0a0b0c0d0e0f"),
            ),
            (
                Decoder::Json,
                br#"{"a": [1, 2.5, null]}"#.to_vec(),
                json!({"a": [1, 2.5, null]}),
            ),
            (Decoder::Json, b"\"s\"".to_vec(), json!("s")),
            (Decoder::Jsonb, b"\x01[true]".to_vec(), json!([true])),
            (
                Decoder::MacAddr,
                vec![0x08, 0, 0x2b, 1, 2, 3],
                json!("08:00:2b:01:02:03"),
            ),
            (
                Decoder::MacAddr8,
                vec![0x08, 0, 0x2b, 1, 2, 3, 4, 0xff],
                json!("08:00:2b:01:02:03:04:ff"),
            ),
            (
                Decoder::Bit,
                cat(&[&be32(4), &[0b0101_0000]]),
                json!("0101"),
            ),
            (
                Decoder::Bit,
                cat(&[&be32(10), &[0xff, 0b0100_0000]]),
                json!("1111111101"),
            ),
            (Decoder::Bit, be32(0), json!("")),
        ];
        for (dec, bytes, want) in cases {
            assert_eq!(decode(&dec, &bytes), Ok(want), "{dec:?} {bytes:?}");
        }
    }

    #[test]
    fn int8_switches_to_string_beyond_2_pow_53() {
        let cases = [
            (0, json!(0)),
            (9_007_199_254_740_992, json!(9_007_199_254_740_992i64)),
            (-9_007_199_254_740_992, json!(-9_007_199_254_740_992i64)),
            (9_007_199_254_740_993, json!("9007199254740993")),
            (-9_007_199_254_740_993, json!("-9007199254740993")),
            (i64::MAX, json!("9223372036854775807")),
            (i64::MIN, json!("-9223372036854775808")),
        ];
        for (v, want) in cases {
            assert_eq!(decode(&Decoder::Int8, &be64(v)), Ok(want), "{v}");
        }
    }

    #[test]
    fn decodes_numeric() {
        let cases = [
            (numeric(0, NUMERIC_POS, 2, &[1, 5000]), "1.50"),
            (numeric(-1, NUMERIC_POS, 3, &[10]), "0.001"),
            (numeric(1, NUMERIC_NEG, 3, &[12, 3456, 7890]), "-123456.789"),
            (numeric(0, NUMERIC_POS, 0, &[]), "0"),
            (numeric(0, NUMERIC_POS, 2, &[]), "0.00"),
            (numeric(0, NUMERIC_NEG, 1, &[]), "0.0"),
            (numeric(1, NUMERIC_POS, 0, &[1]), "10000"),
            (numeric(2, NUMERIC_POS, 0, &[1]), "100000000"),
            (numeric(-2, NUMERIC_POS, 8, &[1]), "0.00000001"),
            (numeric(-2, NUMERIC_POS, 10, &[1, 2000]), "0.0000000120"),
            (
                numeric(
                    7,
                    NUMERIC_POS,
                    0,
                    &[12, 3456, 7890, 1234, 5678, 9012, 3456, 7890],
                ),
                "123456789012345678901234567890",
            ),
            // Digits past dscale are cut, as numeric_out does.
            (numeric(0, NUMERIC_POS, 1, &[3, 1415]), "3.1"),
            // Leading and trailing zero groups are tolerated.
            (numeric(1, NUMERIC_POS, 0, &[0, 7, 0]), "7"),
            (numeric(0, NUMERIC_NAN, 0, &[]), "NaN"),
            (numeric(0, NUMERIC_PINF, 0, &[]), "Infinity"),
            (numeric(0, NUMERIC_NINF, 0, &[]), "-Infinity"),
        ];
        for (bytes, want) in cases {
            assert_eq!(decode(&Decoder::Numeric, &bytes), Ok(json!(want)), "{want}");
        }
    }

    #[test]
    fn numeric_round_trips_through_binary() {
        let cases = [
            ("0", "0"),
            ("-0", "0"),
            ("0.000", "0.000"),
            ("-0.00", "0.00"),
            ("1.50", "1.50"),
            ("+7", "7"),
            ("007.10", "7.10"),
            ("-123.456", "-123.456"),
            ("0.001", "0.001"),
            (".5", "0.5"),
            ("5.", "5"),
            ("10000", "10000"),
            ("99999999", "99999999"),
            ("1.5e3", "1500"),
            ("1.5E-3", "0.0015"),
            ("1e20", "100000000000000000000"),
            ("12.5e1", "125"),
            ("12.345e1", "123.45"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            (
                "-98765432109876543210.0123456789012345",
                "-98765432109876543210.0123456789012345",
            ),
            (
                "0.000000000000000000000000000001",
                "0.000000000000000000000000000001",
            ),
            ("NaN", "NaN"),
            ("nan", "NaN"),
            ("Infinity", "Infinity"),
            ("-Infinity", "-Infinity"),
        ];
        for (input, want) in cases {
            let bytes = numeric_to_binary(input).expect(input);
            assert_eq!(
                decode(&Decoder::Numeric, &bytes),
                Ok(json!(want)),
                "{input}"
            );
        }
        for bad in [
            "",
            "-",
            ".",
            "1.2.3",
            "abc",
            "1e",
            "1e5000000000",
            "1e-20000",
            "--1",
            "1 2",
        ] {
            assert!(
                numeric_to_binary(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn decodes_dates_and_times() {
        let cases: Vec<(Decoder, Vec<u8>, &str)> = vec![
            (Decoder::Date, be32(0), "2000-01-01"),
            (Decoder::Date, be32(9497), "2026-01-01"),
            (Decoder::Date, be32(-10957), "1970-01-01"),
            (Decoder::Date, be32(-746_117), "-0043-03-15"),
            (Decoder::Date, be32(-2_451_545), "-4713-11-24"),
            (Decoder::Date, be32(2_145_031_948), "5874897-12-31"),
            (Decoder::Date, be32(i32::MAX), "infinity"),
            (Decoder::Date, be32(i32::MIN), "-infinity"),
            (Decoder::Time, be64(17_181_530_000), "04:46:21.53"),
            (Decoder::Time, be64(17_181_000_000), "04:46:21"),
            (Decoder::Time, be64(0), "00:00:00"),
            (Decoder::Time, be64(1), "00:00:00.000001"),
            (Decoder::Time, be64(USECS_PER_DAY), "24:00:00"),
            (
                Decoder::TimeTz,
                cat(&[&be64(17_181_530_000), &be32(-7200)]),
                "04:46:21.53+02:00",
            ),
            (
                Decoder::TimeTz,
                cat(&[&be64(0), &be32(19_800)]),
                "00:00:00-05:30",
            ),
            (
                Decoder::TimeTz,
                cat(&[&be64(0), &be32(0)]),
                "00:00:00+00:00",
            ),
            (
                Decoder::TimeTz,
                cat(&[&be64(0), &be32(-(3600 + 15))]),
                "00:00:00+01:00:15",
            ),
            (Decoder::Timestamp, be64(TS_2026), "2026-01-01T04:46:21.53"),
            (Decoder::Timestamp, be64(0), "2000-01-01T00:00:00"),
            (Decoder::Timestamp, be64(-500_000), "1999-12-31T23:59:59.5"),
            (
                Decoder::Timestamp,
                be64(-746_117 * USECS_PER_DAY + 12 * USECS_PER_HOUR),
                "-0043-03-15T12:00:00",
            ),
            (Decoder::Timestamp, be64(i64::MAX), "infinity"),
            (Decoder::Timestamp, be64(i64::MIN), "-infinity"),
            (
                Decoder::TimestampTz,
                be64(TS_2026),
                "2026-01-01T04:46:21.53+00:00",
            ),
            (Decoder::TimestampTz, be64(i64::MIN), "-infinity"),
        ];
        for (dec, bytes, want) in cases {
            assert_eq!(decode(&dec, &bytes), Ok(json!(want)), "{want}");
        }
    }

    #[test]
    fn formats_intervals_like_postgres() {
        const H: i64 = USECS_PER_HOUR;
        const M: i64 = USECS_PER_MINUTE;
        const S: i64 = USECS_PER_SEC;
        // Expected strings are PostgreSQL 15's output with IntervalStyle = postgres.
        let cases = [
            (0, 1, 2 * H + 3 * M + 4 * S, "1 day 02:03:04"),
            (
                14,
                3,
                4 * H + 5 * M + 6 * S + 500_000,
                "1 year 2 mons 3 days 04:05:06.5",
            ),
            (0, -1, 2 * H, "-1 days +02:00:00"),
            (0, 0, 0, "00:00:00"),
            (3, 0, 0, "3 mons"),
            (0, 0, -1_500_000, "-00:00:01.5"),
            (-14, 3, 0, "-1 years -2 mons +3 days"),
            (1, -1, 0, "1 mon -1 days"),
            (-1, 1, -S, "-1 mons +1 day -00:00:01"),
            (0, 0, 100 * H, "100:00:00"),
            (12, 0, 0, "1 year"),
            (-12, 0, 0, "-1 years"),
            (0, 1, 0, "1 day"),
            (0, 2, 1, "2 days 00:00:00.000001"),
            (0, -2, -1, "-2 days -00:00:00.000001"),
            (1, 1, -H, "1 mon 1 day -01:00:00"),
            (-7, 0, 0, "-7 mons"),
            (13, 0, 0, "1 year 1 mon"),
            (0, 0, 1_234_567, "00:00:01.234567"),
            (0, -1, -H, "-1 days -01:00:00"),
            (0, 1, -H, "1 day -01:00:00"),
            (-1, 0, H, "-1 mons +01:00:00"),
            (i32::MAX, i32::MAX, i64::MAX, "infinity"),
            (i32::MIN, i32::MIN, i64::MIN, "-infinity"),
            (0, 0, i64::MIN + 1, "-2562047788:00:54.775807"),
        ];
        for (months, days, micros, want) in cases {
            let got = decode(&Decoder::Interval, &interval(months, days, micros));
            assert_eq!(got, Ok(json!(want)), "{months} {days} {micros}");
        }
    }

    #[test]
    fn formats_network_addresses_like_postgres() {
        let cases: Vec<(Decoder, Vec<u8>, &str)> = vec![
            (
                Decoder::Inet,
                inet(2, 32, 0, &[192, 168, 0, 1]),
                "192.168.0.1",
            ),
            (Decoder::Inet, inet(2, 8, 0, &[10, 0, 0, 0]), "10.0.0.0/8"),
            (Decoder::Inet, inet(2, 8, 0, &[10, 0, 0, 1]), "10.0.0.1/8"),
            (
                Decoder::Cidr,
                inet(2, 16, 1, &[192, 168, 0, 0]),
                "192.168.0.0/16",
            ),
            (
                Decoder::Cidr,
                inet(2, 32, 1, &[192, 168, 0, 1]),
                "192.168.0.1/32",
            ),
            (Decoder::Inet, inet(3, 128, 0, &ipv6("::1")), "::1"),
            (Decoder::Inet, inet(3, 128, 0, &ipv6("::")), "::"),
            (Decoder::Inet, inet(3, 128, 0, &ipv6("1::")), "1::"),
            (
                Decoder::Cidr,
                inet(3, 32, 1, &ipv6("2001:db8::")),
                "2001:db8::/32",
            ),
            (Decoder::Inet, inet(3, 128, 0, &ipv6("::2:3")), "::0.2.0.3"),
            (
                Decoder::Inet,
                inet(3, 128, 0, &ipv6("::ffff:1.2.3.4")),
                "::ffff:1.2.3.4",
            ),
            (
                Decoder::Inet,
                inet(3, 128, 0, &ipv6("::1.2.3.4")),
                "::1.2.3.4",
            ),
            (
                Decoder::Inet,
                inet(3, 128, 0, &ipv6("1:0:0:2:0:0:0:3")),
                "1:0:0:2::3",
            ),
            (
                Decoder::Inet,
                inet(3, 128, 0, &ipv6("1:0:2:0:3:0:4:0")),
                "1:0:2:0:3:0:4:0",
            ),
            (
                Decoder::Inet,
                inet(3, 128, 0, &ipv6("1:0:0:2:0:0:3:4")),
                "1::2:0:0:3:4",
            ),
            (
                Decoder::Inet,
                inet(3, 128, 0, &ipv6("0:0:0:0:0:1:0:0")),
                "::1:0:0",
            ),
            (
                Decoder::Cidr,
                inet(3, 96, 1, &ipv6("::ffff:0:0")),
                "::ffff:0.0.0.0/96",
            ),
            (
                Decoder::Inet,
                inet(3, 64, 0, &ipv6("fe80::abcd:ef01:2345:6789")),
                "fe80::abcd:ef01:2345:6789/64",
            ),
        ];
        for (dec, bytes, want) in cases {
            assert_eq!(decode(&dec, &bytes), Ok(json!(want)), "{want}");
        }
    }

    #[test]
    fn decodes_arrays() {
        let int4 = |v: i32| Some(be32(v));
        let text = |s: &str| Some(s.as_bytes().to_vec());
        let cases: Vec<(Decoder, Vec<u8>, Value)> = vec![
            (
                Decoder::Int4,
                array(INT4, &[3], &[int4(1), int4(2), int4(3)]),
                json!([1, 2, 3]),
            ),
            (
                Decoder::Int4,
                array(INT4, &[2], &[int4(1), None]),
                json!([1, null]),
            ),
            (
                Decoder::Int4,
                array(INT4, &[2, 2], &[int4(1), int4(2), int4(3), None]),
                json!([[1, 2], [3, null]]),
            ),
            (
                Decoder::Int4,
                array(INT4, &[2, 1, 2], &[int4(1), int4(2), int4(3), int4(4)]),
                json!([[[1, 2]], [[3, 4]]]),
            ),
            (Decoder::Int4, array(INT4, &[], &[]), json!([])),
            (
                Decoder::Text,
                array(TEXT, &[2], &[text("a,b"), text("")]),
                json!(["a,b", ""]),
            ),
            (
                Decoder::Numeric,
                array(
                    NUMERIC,
                    &[1],
                    &[Some(numeric(0, NUMERIC_POS, 2, &[1, 5000]))],
                ),
                json!(["1.50"]),
            ),
        ];
        for (elem, bytes, want) in cases {
            let dec = Decoder::Array(Box::new(elem));
            assert_eq!(decode(&dec, &bytes), Ok(want.clone()), "{want}");
        }
        // Lower bounds other than 1 are ignored.
        let mut shifted = array(INT4, &[2], &[int4(7), int4(8)]);
        shifted[16..20].copy_from_slice(&be32(0));
        let dec = Decoder::Array(Box::new(Decoder::Int4));
        assert_eq!(decode(&dec, &shifted), Ok(json!([7, 8])));
        // Arrays of arrays arise from domains over array types.
        let inner = array(INT4, &[2], &[int4(1), int4(2)]);
        let outer = array(INT4, &[1], &[Some(inner)]);
        let dec = Decoder::Array(Box::new(Decoder::Array(Box::new(Decoder::Int4))));
        assert_eq!(decode(&dec, &outer), Ok(json!([[1, 2]])));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let int4_array = Decoder::Array(Box::new(Decoder::Int4));
        let cases: Vec<(Decoder, Vec<u8>, &str)> = vec![
            (Decoder::Int4, vec![0, 1], "int4"),
            (Decoder::Int4, vec![0; 5], "int4"),
            (Decoder::Int8, vec![], "int8"),
            (Decoder::Bool, vec![], "bool"),
            (Decoder::Text, vec![0xff, 0xfe], "text"),
            (Decoder::Uuid, vec![0; 15], "uuid"),
            (Decoder::Json, b"{".to_vec(), "json"),
            (Decoder::Json, b"1e999".to_vec(), "json"),
            (Decoder::Jsonb, b"\x02{}".to_vec(), "jsonb"),
            (Decoder::Jsonb, vec![], "jsonb"),
            (
                Decoder::Numeric,
                numeric(0, NUMERIC_POS, 0, &[10000]),
                "numeric",
            ),
            (Decoder::Numeric, numeric(0, 0x1234, 0, &[1]), "numeric"),
            (
                Decoder::Numeric,
                numeric(0, NUMERIC_POS, 0x4000, &[1]),
                "numeric",
            ),
            (Decoder::Numeric, cat(&[&be16(-1), &[0; 6]]), "numeric"),
            (
                Decoder::Numeric,
                cat(&[&be16(3), &[0; 6], &be16(1)]),
                "numeric",
            ),
            (Decoder::Time, be64(-1), "time"),
            (Decoder::Time, be64(USECS_PER_DAY + 1), "time"),
            (Decoder::TimeTz, be64(0), "timetz"),
            (Decoder::Interval, vec![0; 15], "interval"),
            (Decoder::Inet, inet(9, 32, 0, &[1, 2, 3, 4]), "inet"),
            (Decoder::Inet, inet(2, 33, 0, &[1, 2, 3, 4]), "inet"),
            (Decoder::Inet, inet(2, 32, 0, &[1, 2, 3]), "inet"),
            (Decoder::Cidr, inet(3, 64, 1, &[0; 4]), "cidr"),
            (Decoder::Bit, cat(&[&be32(9), &[0xff]]), "bit"),
            (Decoder::Bit, cat(&[&be32(-1)]), "bit"),
            (Decoder::Bit, cat(&[&be32(4), &[0xff, 0xff]]), "bit"),
            (int4_array.clone(), vec![0; 11], "int4[]"),
            (
                int4_array.clone(),
                cat(&[&be32(7), &be32(0), &be32(23)]),
                "int4[]",
            ),
            (
                int4_array.clone(),
                cat(&[&be32(-1), &be32(0), &be32(23)]),
                "int4[]",
            ),
            (
                int4_array.clone(),
                cat(&[
                    &be32(1),
                    &be32(0),
                    &be32(23),
                    &be32(1_000_000_000),
                    &be32(1),
                ]),
                "int4[]",
            ),
            (
                int4_array.clone(),
                cat(&[&be32(1), &be32(0), &be32(23), &be32(-5), &be32(1)]),
                "int4[]",
            ),
            (
                int4_array.clone(),
                array(INT4, &[1], &[Some(vec![1])]),
                "int4[]",
            ),
            (
                int4_array.clone(),
                cat(&[&array(INT4, &[1], &[Some(be32(1))]), &[0]]),
                "int4[]",
            ),
            (
                int4_array,
                cat(&[&be32(1), &be32(0), &be32(23), &be32(1), &be32(1), &be32(-2)]),
                "int4[]",
            ),
        ];
        for (dec, bytes, type_name) in cases {
            let err = decode(&dec, &bytes).expect_err(&format!("{dec:?} {bytes:?}"));
            assert_eq!(err.type_name, type_name);
            assert!(
                err.to_string()
                    .starts_with(&format!("cannot decode {type_name} value: "))
            );
        }
    }

    #[test]
    fn no_decoder_panics_on_arbitrary_bytes() {
        let decoders = [
            Decoder::Bool,
            Decoder::Int2,
            Decoder::Int4,
            Decoder::Int8,
            Decoder::Oid,
            Decoder::Float4,
            Decoder::Float8,
            Decoder::Numeric,
            Decoder::Text,
            Decoder::Char,
            Decoder::Bytea,
            Decoder::Uuid,
            Decoder::Json,
            Decoder::Jsonb,
            Decoder::Date,
            Decoder::Time,
            Decoder::TimeTz,
            Decoder::Timestamp,
            Decoder::TimestampTz,
            Decoder::Interval,
            Decoder::Inet,
            Decoder::Cidr,
            Decoder::MacAddr,
            Decoder::MacAddr8,
            Decoder::Bit,
            Decoder::Array(Box::new(Decoder::Numeric)),
            Decoder::Array(Box::new(Decoder::Array(Box::new(Decoder::Text)))),
        ];
        // A small deterministic generator: enough variety to hit every length check.
        let mut state: u32 = 0x1234_5678;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for dec in &decoders {
            for len in 0..40 {
                for fill in [0x00, 0xff, 0x7f, 0x80] {
                    let _ = decode(dec, &vec![fill; len]);
                }
                for _ in 0..20 {
                    let bytes: Vec<u8> = (0..len).map(|_| next().to_be_bytes()[0]).collect();
                    let _ = decode(dec, &bytes);
                }
            }
        }
    }

    #[test]
    fn picks_decoders_by_type() {
        let int4 = || Decoder::Int4;
        let array_of = |d: Decoder| Some(Decoder::Array(Box::new(d)));
        let cases: Vec<(PgTypeInfo, Option<Decoder>)> = vec![
            (type_of::<i32>(), Some(int4())),
            (with_oid(INT4), Some(int4())),
            (type_of::<Vec<i32>>(), array_of(int4())),
            (with_oid(1007), array_of(int4())),
            (type_of::<Vec<String>>(), array_of(Decoder::Text)),
            (type_of::<String>(), Some(Decoder::Text)),
            (with_oid(VARCHAR), Some(Decoder::Text)),
            (with_oid(BPCHAR), Some(Decoder::Text)),
            (with_oid(NAME), Some(Decoder::Text)),
            (with_oid(XML), Some(Decoder::Text)),
            (with_oid(UNKNOWN), Some(Decoder::Text)),
            (with_oid(CHAR), Some(Decoder::Char)),
            (with_oid(VARBIT), Some(Decoder::Bit)),
            (with_oid(3807), array_of(Decoder::Jsonb)),
            (with_oid(1231), array_of(Decoder::Numeric)),
            (with_oid(651), array_of(Decoder::Cidr)),
            (type_of::<f64>(), Some(Decoder::Float8)),
            (type_of::<bool>(), Some(Decoder::Bool)),
            (type_of::<Vec<u8>>(), Some(Decoder::Bytea)),
            (type_of::<serde_json::Value>(), Some(Decoder::Jsonb)),
            // Not native: money, geometry, tsvector, reg*, ranges, records, unknown OIDs.
            (with_oid(790), None),
            (with_oid(791), None),
            (with_oid(600), None),
            (with_oid(3614), None),
            (with_oid(3643), None),
            (with_oid(2205), None),
            (with_oid(3904), None),
            (with_oid(2249), None),
            (with_oid(4451), None),
            (with_oid(99_999), None),
            (PgTypeInfo::with_name("mood"), None),
            (PgTypeInfo::array_of("mood"), None),
        ];
        for (ty, want) in cases {
            assert_eq!(decoder_for(&ty), want, "{ty:?}");
        }
    }

    #[test]
    fn tells_arrays_from_scalars_for_text_casts() {
        let cases = [
            (with_oid(791), true),
            (with_oid(3643), true),
            (with_oid(1017), true),
            (with_oid(1007), true),
            (type_of::<Vec<i64>>(), true),
            (with_oid(790), false),
            (with_oid(3614), false),
            (with_oid(99_999), false),
            (PgTypeInfo::with_name("mood"), false),
        ];
        for (ty, want) in cases {
            assert_eq!(array_needs_text_array(&ty), want, "{ty:?}");
        }
    }

    #[test]
    fn names_types() {
        let cases = [
            (type_of::<i32>(), "int4"),
            (with_oid(INT4), "int4"),
            (with_oid(1007), "int4[]"),
            (type_of::<Vec<String>>(), "text[]"),
            (with_oid(TIMESTAMPTZ), "timestamptz"),
            (with_oid(CHAR), "char"),
            (with_oid(BPCHAR), "bpchar"),
            (with_oid(3614), "tsvector"),
            (with_oid(3643), "tsvector[]"),
            (with_oid(2205), "regclass"),
            (with_oid(3220), "pg_lsn"),
            (with_oid(4451), "int4multirange"),
            (with_oid(6150), "int4multirange[]"),
            (with_oid(2278), "void"),
            (with_oid(99_999), "oid:99999"),
            (PgTypeInfo::with_name("mood"), "mood"),
            (PgTypeInfo::with_name("public.mood"), "mood"),
            (PgTypeInfo::with_name("\"Mood\""), "Mood"),
            (PgTypeInfo::with_name("app.\"My.Type\""), "My.Type"),
            (PgTypeInfo::with_name("\"say \"\"hi\"\"\""), "say \"hi\""),
            (PgTypeInfo::array_of("mood"), "mood[]"),
        ];
        for (ty, want) in cases {
            assert_eq!(type_name(&ty), want, "{ty:?}");
        }
    }

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

    #[test]
    fn civil_calendar_round_trips() {
        for days in (-3_000_000..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert!(d >= 1 && d <= days_in_month(y, m), "{days}");
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
