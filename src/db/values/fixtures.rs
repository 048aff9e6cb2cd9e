//! Byte builders shared by the codec tests: big-endian integers and the binary layouts of
//! numeric, interval, inet and arrays, written out field by field.

use std::net::Ipv6Addr;

use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgTypeInfo, Postgres};

use super::datetime::USECS_PER_DAY;
use super::{Codec, builtin_name};

pub(super) fn with_oid(oid: u32) -> PgTypeInfo {
    PgTypeInfo::with_oid(Oid(oid))
}

pub(super) fn type_of<T: sqlx::Type<Postgres>>() -> PgTypeInfo {
    T::type_info()
}

pub(super) fn be16(v: i16) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

pub(super) fn be32(v: i32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

pub(super) fn be64(v: i64) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

pub(super) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Binary numeric from its fields.
pub(super) fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
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
pub(super) fn interval(months: i32, days: i32, micros: i64) -> Vec<u8> {
    cat(&[&be64(micros), &be32(days), &be32(months)])
}

pub(super) fn inet(family: u8, bits: u8, cidr: u8, addr: &[u8]) -> Vec<u8> {
    let mut out = vec![family, bits, cidr, u8::try_from(addr.len()).expect("short")];
    out.extend_from_slice(addr);
    out
}

/// Binary array: dims, then elements (None = NULL).
pub(super) fn array(elem_oid: u32, dims: &[i32], elems: &[Option<Vec<u8>>]) -> Vec<u8> {
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

pub(super) fn ipv6(text: &str) -> Vec<u8> {
    text.parse::<Ipv6Addr>()
        .expect("test address")
        .octets()
        .to_vec()
}

/// 2026-01-01 04:46:21.53 as PostgreSQL microseconds.
pub(super) const TS_2026: i64 = 9497 * USECS_PER_DAY + 17_181_530_000;

/// The codec of a built-in array whose element has OID `elem_oid`, as [`super::decoder_for`]
/// builds it.
pub(super) fn array_of(elem: Codec, elem_oid: u32) -> Codec {
    Codec::Array {
        elem: Box::new(elem),
        elem_oid: Some(elem_oid),
        elem_name: builtin_name(elem_oid).unwrap_or("element").to_owned(),
    }
}
