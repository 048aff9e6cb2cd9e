//! Unit tests of `encode.rs`, in a file of their own so that the module reads as one concern.

use super::super::fixtures::*;
use super::*;
use crate::db::values::datetime::USECS_PER_DAY;
use crate::db::values::numeric::{NUMERIC_NEG, NUMERIC_POS};
use crate::db::values::*;
use serde_json::json;

/// Encodes with the public entry point and returns the bytes.
fn encode_ok(ty: &PgTypeInfo, value: Value) -> Vec<u8> {
    let param =
        encode_param(ty, &value).unwrap_or_else(|e| panic!("{value} as {}: {e}", type_name(ty)));
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
