//! Decoding under a byte budget: a value is measured (and, when asked, cut) *before* it is
//! decoded or escaped into JSON, so a 200 MB text costs what its row already costs and not
//! two or three more full-size copies (the decoded `String`, its escaped serialization).
//!
//! Text-like values (text, varchar, xml, enums, bytea, bit strings, json as text, raw text of
//! types cast or not understood) can be cut to a prefix that fits; other values either fit
//! whole or not at all.

use std::io;

use serde_json::Value;

use crate::db::values::{self, Codec, DecodeError};

/// How one value fits into the bytes left for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fit {
    /// The whole value, and its serialized size in bytes.
    Whole(Value, usize),
    /// A prefix of the value (always a JSON string), its serialized size, and the size of the
    /// whole value's raw form in bytes (for the hint).
    Cut(Value, usize, usize),
    /// The value does not fit and cannot (or may not) be cut.
    TooLarge,
}

/// Serialized JSON size of `v`, counted without building the text.
pub(crate) fn json_size<T: serde::Serialize + ?Sized>(v: &T) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Serializing plain JSON values into a counter cannot fail.
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// Bytes serde_json writes for one character inside a string.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{08}' | '\u{0c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The longest prefix of `s` whose serialized JSON string (quotes included) takes at most
/// `cap` bytes: `(end byte index, serialized size)`. `end == s.len()` means all of it.
fn prefix_within(s: &str, cap: usize) -> (usize, usize) {
    let mut size = 2;
    for (i, c) in s.char_indices() {
        let n = escaped_len(c);
        if size + n > cap {
            return (i, size);
        }
        size += n;
    }
    (s.len(), size)
}

/// A string value under the budget: whole when it fits in `hard`, else cut to `cut_to`.
fn string_within(s: &str, hard: usize, cut_to: Option<usize>) -> Fit {
    let (end, size) = prefix_within(s, hard);
    if end == s.len() && size <= hard {
        return Fit::Whole(Value::String(s.to_owned()), size);
    }
    match cut_to {
        Some(cap) => {
            let (end, size) = prefix_within(s, cap.min(hard));
            Fit::Cut(Value::String(s[..end].to_owned()), size, s.len())
        }
        None => Fit::TooLarge,
    }
}

/// `\x…` hex of bytes under the budget (`"\\x` is 4 bytes serialized, plus the closing quote).
fn hex_within(bytes: &[u8], hard: usize, cut_to: Option<usize>) -> Fit {
    let size_of = |n: usize| 5 + 2 * n;
    let take = if size_of(bytes.len()) <= hard {
        bytes.len()
    } else {
        match cut_to {
            Some(cap) => cap.min(hard).saturating_sub(5) / 2,
            None => return Fit::TooLarge,
        }
    };
    let mut s = String::with_capacity(2 + 2 * take);
    s.push_str("\\x");
    for b in &bytes[..take] {
        s.push_str(&format!("{b:02x}"));
    }
    if take == bytes.len() {
        Fit::Whole(Value::String(s), size_of(take))
    } else {
        Fit::Cut(Value::String(s), size_of(take), bytes.len())
    }
}

/// A value we have no decoder for: its text when UTF-8 (without NUL), else `\x` hex.
pub(crate) fn raw_within(bytes: &[u8], hard: usize, cut_to: Option<usize>) -> Fit {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.contains('\0') => string_within(s, hard, cut_to),
        _ => hex_within(bytes, hard, cut_to),
    }
}

/// Bits of a bit/varbit value under the budget (one byte per bit, plus quotes).
fn bits_within(bytes: &[u8], hard: usize, cut_to: Option<usize>) -> Option<Fit> {
    let len = usize::try_from(i32::from_be_bytes(bytes.get(..4)?.try_into().ok()?)).ok()?;
    let data = bytes.get(4..)?;
    if data.len() != len.div_ceil(8) {
        return None;
    }
    let take = if len + 2 <= hard {
        len
    } else {
        cut_to?.min(hard).saturating_sub(2)
    };
    let s: String = (0..take)
        .map(|i| {
            if data[i / 8] & (0x80 >> (i % 8)) != 0 {
                '1'
            } else {
                '0'
            }
        })
        .collect();
    Some(if take == len {
        Fit::Whole(Value::String(s), len + 2)
    } else {
        Fit::Cut(Value::String(s), take + 2, len)
    })
}

/// Decode one non-NULL value so that it takes at most `hard` serialized bytes. When it does
/// not fit and `cut_to` is given, text-like values are cut to at most that many bytes; other
/// values are [`Fit::TooLarge`]. Memory stays proportional to the budget: a value is never
/// decoded or escaped in full when its raw size already says it cannot fit.
pub(crate) fn decode_within(
    dec: &Codec,
    bytes: &[u8],
    hard: usize,
    cut_to: Option<usize>,
) -> Result<Fit, DecodeError> {
    let bad = |reason: &str| DecodeError {
        type_name: "value".into(),
        reason: reason.into(),
    };
    match dec {
        Codec::Text => {
            let s = std::str::from_utf8(bytes).map_err(|_| bad("invalid UTF-8"))?;
            Ok(string_within(s, hard, cut_to))
        }
        Codec::Bytea => Ok(hex_within(bytes, hard, cut_to)),
        Codec::Bit => bits_within(bytes, hard, cut_to).ok_or_else(|| bad("malformed bit string")),
        Codec::Json | Codec::Jsonb => {
            let text = match (dec, bytes.split_first()) {
                (Codec::Json, _) => bytes,
                (_, Some((1, text))) => text,
                // Unknown jsonb version: let the full decoder report it.
                _ => return values::decode(dec, bytes).map(|v| whole_or_too_large(v, hard)),
            };
            // Compact JSON can be much smaller than PostgreSQL's text (whitespace), so a
            // value up to a few times the budget is parsed and measured; beyond that it
            // cannot fit.
            if text.len() <= hard.saturating_mul(4).saturating_add(64)
                && let Fit::Whole(v, n) = whole_or_too_large(values::decode(dec, bytes)?, hard)
            {
                return Ok(Fit::Whole(v, n));
            }
            // Too large as JSON: when cutting is allowed, its text's prefix, as a string.
            let s = std::str::from_utf8(text).map_err(|_| bad("invalid UTF-8"))?;
            Ok(match cut_to {
                // Its text as a string is no longer the JSON value: always reported as cut.
                Some(cap) => match string_within(s, cap.min(hard), Some(cap)) {
                    Fit::Whole(v, n) => Fit::Cut(v, n, s.len()),
                    other => other,
                },
                None => Fit::TooLarge,
            })
        }
        _ => {
            // Fixed-size and numeric values are small; an array's serialized form is at
            // least about a sixth of its binary form (int8 elements: 12 bytes each, "1," is
            // 2), so anything beyond 8x the budget cannot fit and is not decoded at all.
            if bytes.len() > hard.saturating_mul(8).saturating_add(64) {
                return Ok(Fit::TooLarge);
            }
            Ok(whole_or_too_large(values::decode(dec, bytes)?, hard))
        }
    }
}

fn whole_or_too_large(v: Value, hard: usize) -> Fit {
    let n = json_size(&v);
    if n <= hard {
        Fit::Whole(v, n)
    } else {
        Fit::TooLarge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_size_matches_serialization() {
        for v in [
            serde_json::json!("a\"b\\c\n\u{01}é"),
            serde_json::json!([1, null, "x", {"k": [true]}]),
        ] {
            assert_eq!(json_size(&v), serde_json::to_vec(&v).unwrap().len());
        }
    }

    #[test]
    fn text_is_cut_to_a_prefix_that_fits_escaped() {
        let s = "\"".repeat(1000);
        assert_eq!(
            string_within(&s, 10_000, None),
            Fit::Whole(Value::String(s.clone()), 2002)
        );
        assert_eq!(string_within(&s, 100, None), Fit::TooLarge);
        match string_within(&s, 100, Some(100)) {
            Fit::Cut(Value::String(p), size, whole) => {
                assert_eq!(p.len(), 49);
                assert_eq!(size, serde_json::to_vec(&p).unwrap().len());
                assert!(size <= 100);
                assert_eq!(whole, 1000);
            }
            other => panic!("{other:?}"),
        }
        // A cut never splits a character.
        match string_within(&"é".repeat(100), 11, Some(11)) {
            Fit::Cut(Value::String(p), ..) => assert_eq!(p, "éééé"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bytea_and_raw_values_are_cut_as_hex() {
        assert_eq!(
            hex_within(&[0xab; 4], 100, None),
            Fit::Whole(Value::String("\\xabababab".into()), 13)
        );
        match raw_within(&[0xff; 100], 25, Some(25)) {
            Fit::Cut(Value::String(p), size, 100) => {
                assert_eq!(p, format!("\\x{}", "ff".repeat(10)));
                assert_eq!(size, serde_json::to_vec(&p).unwrap().len());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn large_arrays_are_refused_without_decoding() {
        // A header that claims a huge array; 8x the budget is never decoded.
        let big = vec![0u8; 10_000];
        let dec = Codec::Array {
            elem: Box::new(Codec::Int4),
            elem_oid: Some(23),
            elem_name: "int4".into(),
        };
        assert_eq!(
            decode_within(&dec, &big, 100, Some(100)).unwrap(),
            Fit::TooLarge
        );
    }

    #[test]
    fn oversized_json_becomes_a_cut_string_only_when_cutting_is_allowed() {
        let doc = format!("{{\"k\": \"{}\"}}", "x".repeat(1000));
        let d = decode_within(&Codec::Json, doc.as_bytes(), 2000, None).unwrap();
        assert!(matches!(d, Fit::Whole(Value::Object(_), _)), "{d:?}");
        assert_eq!(
            decode_within(&Codec::Json, doc.as_bytes(), 50, None).unwrap(),
            Fit::TooLarge
        );
        match decode_within(&Codec::Json, doc.as_bytes(), 50, Some(50)).unwrap() {
            Fit::Cut(Value::String(p), _, n) => {
                assert!(p.starts_with("{\"k\""), "{p}");
                assert_eq!(n, doc.len());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bits_are_cut_to_the_budget() {
        // 12 bits: 1010 1010 1010
        let v = [0, 0, 0, 12, 0b1010_1010, 0b1010_0000];
        assert_eq!(
            decode_within(&Codec::Bit, &v, 100, None).unwrap(),
            Fit::Whole(Value::String("101010101010".into()), 14)
        );
        assert_eq!(
            decode_within(&Codec::Bit, &v, 6, Some(6)).unwrap(),
            Fit::Cut(Value::String("1010".into()), 6, 12)
        );
    }
}
