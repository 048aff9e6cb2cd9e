//! Unit tests of `decode.rs`, in a file of their own so that the module reads as one concern.

use super::super::fixtures::*;
use super::*;
use crate::db::values::datetime::USECS_PER_DAY;
use crate::db::values::numeric::NUMERIC_POS;
use crate::db::values::{INT4, NUMERIC, TEXT};
use serde_json::json;

#[test]
fn decodes_scalars() {
    let cases: Vec<(Codec, Vec<u8>, Value)> = vec![
        (Codec::Bool, vec![1], json!(true)),
        (Codec::Bool, vec![0], json!(false)),
        (Codec::Int2, be16(-2), json!(-2)),
        (Codec::Int4, be32(256), json!(256)),
        (Codec::Int4, be32(i32::MIN), json!(i32::MIN)),
        (Codec::Oid, vec![0xff; 4], json!(4_294_967_295u32)),
        (Codec::Float4, 1.5f32.to_be_bytes().to_vec(), json!(1.5)),
        (Codec::Float4, 0.1f32.to_be_bytes().to_vec(), json!(0.1)),
        (
            Codec::Float4,
            (-3.4e38f32).to_be_bytes().to_vec(),
            json!(-3.4e38),
        ),
        (Codec::Float4, f32::NAN.to_be_bytes().to_vec(), json!("NaN")),
        (
            Codec::Float4,
            f32::INFINITY.to_be_bytes().to_vec(),
            json!("Infinity"),
        ),
        (Codec::Float8, 0.1f64.to_be_bytes().to_vec(), json!(0.1)),
        (
            Codec::Float8,
            f64::NEG_INFINITY.to_be_bytes().to_vec(),
            json!("-Infinity"),
        ),
        (Codec::Float8, f64::NAN.to_be_bytes().to_vec(), json!("NaN")),
        (Codec::Text, "héllo".as_bytes().to_vec(), json!("héllo")),
        (Codec::Text, vec![], json!("")),
        (Codec::Char, b"a".to_vec(), json!("a")),
        (Codec::Char, vec![0], json!("")),
        (Codec::Char, vec![0xe9], json!("\\351")),
        (Codec::Bytea, vec![1, 2, 0xff], json!("\\x0102ff")),
        (Codec::Bytea, vec![], json!("\\x")),
        (
            Codec::Uuid,
            (0u8..16).collect(),
            json!("00010203-0405-0607-0809-0a0b0c0d0e0f"),
        ),
        (
            Codec::Json,
            br#"{"a": [1, 2.5, null]}"#.to_vec(),
            json!({"a": [1, 2.5, null]}),
        ),
        (Codec::Json, b"\"s\"".to_vec(), json!("s")),
        (Codec::Jsonb, b"\x01[true]".to_vec(), json!([true])),
        (
            Codec::MacAddr,
            vec![0x08, 0, 0x2b, 1, 2, 3],
            json!("08:00:2b:01:02:03"),
        ),
        (
            Codec::MacAddr8,
            vec![0x08, 0, 0x2b, 1, 2, 3, 4, 0xff],
            json!("08:00:2b:01:02:03:04:ff"),
        ),
        (Codec::Bit, cat(&[&be32(4), &[0b0101_0000]]), json!("0101")),
        (
            Codec::Bit,
            cat(&[&be32(10), &[0xff, 0b0100_0000]]),
            json!("1111111101"),
        ),
        (Codec::Bit, be32(0), json!("")),
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
        assert_eq!(decode(&Codec::Int8, &be64(v)), Ok(want), "{v}");
    }
}

#[test]
fn decodes_arrays() {
    let int4 = |v: i32| Some(be32(v));
    let text = |s: &str| Some(s.as_bytes().to_vec());
    let cases: Vec<(Codec, u32, Vec<u8>, Value)> = vec![
        (
            Codec::Int4,
            INT4,
            array(INT4, &[3], &[int4(1), int4(2), int4(3)]),
            json!([1, 2, 3]),
        ),
        (
            Codec::Int4,
            INT4,
            array(INT4, &[2], &[int4(1), None]),
            json!([1, null]),
        ),
        (
            Codec::Int4,
            INT4,
            array(INT4, &[2, 2], &[int4(1), int4(2), int4(3), None]),
            json!([[1, 2], [3, null]]),
        ),
        (
            Codec::Int4,
            INT4,
            array(INT4, &[2, 1, 2], &[int4(1), int4(2), int4(3), int4(4)]),
            json!([[[1, 2]], [[3, 4]]]),
        ),
        (Codec::Int4, INT4, array(INT4, &[], &[]), json!([])),
        (
            Codec::Text,
            TEXT,
            array(TEXT, &[2], &[text("a,b"), text("")]),
            json!(["a,b", ""]),
        ),
        (
            Codec::Numeric,
            NUMERIC,
            array(
                NUMERIC,
                &[1],
                &[Some(numeric(0, NUMERIC_POS, 2, &[1, 5000]))],
            ),
            json!(["1.50"]),
        ),
    ];
    for (elem, oid, bytes, want) in cases {
        let dec = array_of(elem, oid);
        assert_eq!(decode(&dec, &bytes), Ok(want.clone()), "{want}");
    }
    // Lower bounds other than 1 are ignored.
    let mut shifted = array(INT4, &[2], &[int4(7), int4(8)]);
    shifted[16..20].copy_from_slice(&be32(0));
    let dec = array_of(Codec::Int4, INT4);
    assert_eq!(decode(&dec, &shifted), Ok(json!([7, 8])));
    // Arrays of arrays arise from domains over array types.
    let inner = array(INT4, &[2], &[int4(1), int4(2)]);
    let outer = array(INT4, &[1], &[Some(inner)]);
    let dec = array_of(array_of(Codec::Int4, INT4), 1007);
    assert_eq!(decode(&dec, &outer), Ok(json!([[1, 2]])));
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let int4_array = array_of(Codec::Int4, INT4);
    let cases: Vec<(Codec, Vec<u8>, &str)> = vec![
        (Codec::Int4, vec![0, 1], "int4"),
        (Codec::Int4, vec![0; 5], "int4"),
        (Codec::Int8, vec![], "int8"),
        (Codec::Bool, vec![], "bool"),
        (Codec::Text, vec![0xff, 0xfe], "text"),
        (Codec::Uuid, vec![0; 15], "uuid"),
        (Codec::Json, b"{".to_vec(), "json"),
        (Codec::Json, b"1e999".to_vec(), "json"),
        (Codec::Jsonb, b"\x02{}".to_vec(), "jsonb"),
        (Codec::Jsonb, vec![], "jsonb"),
        (
            Codec::Numeric,
            numeric(0, NUMERIC_POS, 0, &[10000]),
            "numeric",
        ),
        (Codec::Numeric, numeric(0, 0x1234, 0, &[1]), "numeric"),
        (
            Codec::Numeric,
            numeric(0, NUMERIC_POS, 0x4000, &[1]),
            "numeric",
        ),
        (Codec::Numeric, cat(&[&be16(-1), &[0; 6]]), "numeric"),
        (
            Codec::Numeric,
            cat(&[&be16(3), &[0; 6], &be16(1)]),
            "numeric",
        ),
        (Codec::Time, be64(-1), "time"),
        (Codec::Time, be64(USECS_PER_DAY + 1), "time"),
        (Codec::TimeTz, be64(0), "timetz"),
        (Codec::Interval, vec![0; 15], "interval"),
        (Codec::Inet, inet(9, 32, 0, &[1, 2, 3, 4]), "inet"),
        (Codec::Inet, inet(2, 33, 0, &[1, 2, 3, 4]), "inet"),
        (Codec::Inet, inet(2, 32, 0, &[1, 2, 3]), "inet"),
        (Codec::Cidr, inet(3, 64, 1, &[0; 4]), "cidr"),
        (Codec::Bit, cat(&[&be32(9), &[0xff]]), "bit"),
        (Codec::Bit, cat(&[&be32(-1)]), "bit"),
        (Codec::Bit, cat(&[&be32(4), &[0xff, 0xff]]), "bit"),
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
        Codec::Bool,
        Codec::Int2,
        Codec::Int4,
        Codec::Int8,
        Codec::Oid,
        Codec::Float4,
        Codec::Float8,
        Codec::Numeric,
        Codec::Text,
        Codec::Char,
        Codec::Bytea,
        Codec::Uuid,
        Codec::Json,
        Codec::Jsonb,
        Codec::Date,
        Codec::Time,
        Codec::TimeTz,
        Codec::Timestamp,
        Codec::TimestampTz,
        Codec::Interval,
        Codec::Inet,
        Codec::Cidr,
        Codec::MacAddr,
        Codec::MacAddr8,
        Codec::Bit,
        array_of(Codec::Numeric, NUMERIC),
        array_of(array_of(Codec::Text, TEXT), 1009),
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
