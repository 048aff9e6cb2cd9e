//! PostgreSQL binary wire-format codecs: result bytes → JSON ([`decoder_for`] + [`decode()`]),
//! JSON → binary parameters ([`encode_param`]), and the [`type_name`] helper both sides use in
//! messages. This file is the type table: the OIDs handled natively, how a `PgTypeInfo` maps to
//! a [`Codec`] (the one enum both directions share), and type names for display. The codecs
//! themselves live by direction ([`decode`](mod@decode), [`encode`](mod@encode)) and, for the
//! types with real arithmetic in them, by family ([`numeric`], [`datetime`], [`net`]).
//!
//! sqlx always uses the binary format on the extended protocol, for results and parameters
//! alike. ColdQuery handles arbitrary queries, so it cannot name a Rust type per column; instead
//! it decodes the bytes of the types it understands here, and has PostgreSQL cast everything
//! else to `text` (or `text[]`) in SQL. The JSON shapes produced here are an interface contract:
//! they are documented on [`decode()`] and pinned by the tests next to each codec.

mod datetime;
mod decode;
mod encode;
mod net;
mod numeric;

use sqlx::TypeInfo as _;
use sqlx::postgres::{PgTypeInfo, PgTypeKind};

pub(crate) use decode::{DecodeError, decode};
pub(crate) use encode::encode_param;

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

// ---------------------------------------------------------------------------------------------
// Codecs
// ---------------------------------------------------------------------------------------------

/// How one type's binary format maps to JSON and back. One enum serves both directions, so a
/// new type is added in one place: [`decoder_for`] builds it once per result column, and
/// `encode_param` once per parameter, refusing the variants that [`Codec::encodes`] says have
/// no encoder (they are bound through a cast in SQL instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Codec {
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
    Array {
        /// How each element is coded.
        elem: Box<Codec>,
        /// The element type's OID, which an encoded array's header must name (array_recv
        /// checks it); `None` when sqlx did not give one, and then the array cannot be encoded.
        elem_oid: Option<u32>,
        /// The element type's name (as [`type_name`] gives it), for messages about one element.
        elem_name: String,
    },
}

impl Codec {
    /// The type label used in error messages.
    pub(super) fn label(&self) -> String {
        let name = match self {
            Codec::Bool => "bool",
            Codec::Int2 => "int2",
            Codec::Int4 => "int4",
            Codec::Int8 => "int8",
            Codec::Oid => "oid",
            Codec::Float4 => "float4",
            Codec::Float8 => "float8",
            Codec::Numeric => "numeric",
            Codec::Text => "text",
            Codec::Char => "\"char\"",
            Codec::Bytea => "bytea",
            Codec::Uuid => "uuid",
            Codec::Json => "json",
            Codec::Jsonb => "jsonb",
            Codec::Date => "date",
            Codec::Time => "time",
            Codec::TimeTz => "timetz",
            Codec::Timestamp => "timestamp",
            Codec::TimestampTz => "timestamptz",
            Codec::Interval => "interval",
            Codec::Inet => "inet",
            Codec::Cidr => "cidr",
            Codec::MacAddr => "macaddr",
            Codec::MacAddr8 => "macaddr8",
            Codec::Bit => "bit",
            Codec::Array { elem, .. } => return format!("{}[]", elem.label()),
        };
        name.to_owned()
    }

    /// Whether JSON can be encoded into this type's binary format; parameters of the other
    /// types (decode-only here) are refused with a hint to cast them in SQL. Every variant is
    /// listed so that a new one has to choose.
    pub(super) fn encodes(&self) -> bool {
        match self {
            Codec::Bool
            | Codec::Int2
            | Codec::Int4
            | Codec::Int8
            | Codec::Oid
            | Codec::Float4
            | Codec::Float8
            | Codec::Numeric
            | Codec::Text
            | Codec::Char
            | Codec::Bytea
            | Codec::Uuid
            | Codec::Json
            | Codec::Jsonb
            | Codec::Date
            | Codec::Time
            | Codec::Timestamp
            | Codec::TimestampTz
            | Codec::Inet
            | Codec::Cidr => true,
            Codec::TimeTz | Codec::Interval | Codec::MacAddr | Codec::MacAddr8 | Codec::Bit => {
                false
            }
            Codec::Array { elem, elem_oid, .. } => elem_oid.is_some() && elem.encodes(),
        }
    }
}

fn scalar_codec(oid: u32) -> Option<Codec> {
    Some(match oid {
        BOOL => Codec::Bool,
        INT2 => Codec::Int2,
        INT4 => Codec::Int4,
        INT8 => Codec::Int8,
        OID => Codec::Oid,
        FLOAT4 => Codec::Float4,
        FLOAT8 => Codec::Float8,
        NUMERIC => Codec::Numeric,
        TEXT | VARCHAR | BPCHAR | NAME | UNKNOWN | XML => Codec::Text,
        CHAR => Codec::Char,
        BYTEA => Codec::Bytea,
        UUID => Codec::Uuid,
        JSON => Codec::Json,
        JSONB => Codec::Jsonb,
        DATE => Codec::Date,
        TIME => Codec::Time,
        TIMETZ => Codec::TimeTz,
        TIMESTAMP => Codec::Timestamp,
        TIMESTAMPTZ => Codec::TimestampTz,
        INTERVAL => Codec::Interval,
        INET => Codec::Inet,
        CIDR => Codec::Cidr,
        MACADDR => Codec::MacAddr,
        MACADDR8 => Codec::MacAddr8,
        BIT | VARBIT => Codec::Bit,
        _ => return None,
    })
}

/// The decoder for a result column of type `ty`, or `None` when the binary format is not
/// understood here and the caller must cast the column in SQL instead: to `text[]` when
/// [`array_needs_text_array`] says so, otherwise to `text`.
///
/// Enums decode as their label, domains as their base type, and arrays natively when their
/// element type is native.
pub(crate) fn decoder_for(ty: &PgTypeInfo) -> Option<Codec> {
    if let Some(oid) = ty.oid() {
        if let Some(codec) = scalar_codec(oid.0) {
            return Some(codec);
        }
        if let Some(elem_oid) = builtin_array_element(oid.0) {
            return Some(Codec::Array {
                elem: Box::new(scalar_codec(elem_oid)?),
                elem_oid: Some(elem_oid),
                elem_name: builtin_name(elem_oid).unwrap_or("element").to_owned(),
            });
        }
    }
    if !is_resolved(ty) {
        return None;
    }
    match ty.kind() {
        // A domain's receive function is its base type's, followed by the constraint checks.
        PgTypeKind::Domain(base) => decoder_for(base),
        PgTypeKind::Enum(_) => Some(Codec::Text),
        PgTypeKind::Array(elem) => Some(Codec::Array {
            elem: Box::new(decoder_for(elem)?),
            elem_oid: elem.oid().map(|oid| oid.0),
            elem_name: type_name(elem),
        }),
        _ => None,
    }
}

/// The codec for a parameter of type `ty`, or `None` when it must be bound through a cast in
/// SQL: [`decoder_for`], limited to the types [`Codec::encodes`].
pub(super) fn encoder_for(ty: &PgTypeInfo) -> Option<Codec> {
    decoder_for(ty).filter(Codec::encodes)
}

#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn picks_decoders_by_type() {
        let int4 = || Codec::Int4;
        let some_array = |d: Codec, elem_oid: u32| Some(array_of(d, elem_oid));
        let cases: Vec<(PgTypeInfo, Option<Codec>)> = vec![
            (type_of::<i32>(), Some(int4())),
            (with_oid(INT4), Some(int4())),
            (type_of::<Vec<i32>>(), some_array(int4(), INT4)),
            (with_oid(1007), some_array(int4(), INT4)),
            (type_of::<Vec<String>>(), some_array(Codec::Text, TEXT)),
            (type_of::<String>(), Some(Codec::Text)),
            (with_oid(VARCHAR), Some(Codec::Text)),
            (with_oid(BPCHAR), Some(Codec::Text)),
            (with_oid(NAME), Some(Codec::Text)),
            (with_oid(XML), Some(Codec::Text)),
            (with_oid(UNKNOWN), Some(Codec::Text)),
            (with_oid(CHAR), Some(Codec::Char)),
            (with_oid(VARBIT), Some(Codec::Bit)),
            (with_oid(3807), some_array(Codec::Jsonb, JSONB)),
            (with_oid(1231), some_array(Codec::Numeric, NUMERIC)),
            (with_oid(651), some_array(Codec::Cidr, CIDR)),
            (type_of::<f64>(), Some(Codec::Float8)),
            (type_of::<bool>(), Some(Codec::Bool)),
            (type_of::<Vec<u8>>(), Some(Codec::Bytea)),
            (type_of::<serde_json::Value>(), Some(Codec::Jsonb)),
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
}
