//! `numeric` in both directions: PostgreSQL's base-10000 binary form to the exact decimal
//! text `numeric_out` prints, and decimal text (exponents allowed) to that binary form with the
//! scale `numeric_in` would keep.

use std::fmt::Write as _;

use super::decode::Reader;

// Sign words of the numeric binary format.
pub(super) const NUMERIC_POS: u16 = 0x0000;
pub(super) const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;
/// Largest display scale PostgreSQL accepts (NUMERIC_DSCALE_MASK).
const NUMERIC_MAX_DSCALE: u16 = 0x3FFF;
/// Numeric digits are base 10000, four decimal digits each.
const NBASE: i16 = 10000;

/// Renders binary numeric the way `numeric_out` does: integer part without leading zeros (at
/// least "0"), then exactly `dscale` fractional digits.
pub(super) fn numeric_to_string(bytes: &[u8]) -> Result<String, String> {
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

/// Base-10000 binary numeric from decimal text, keeping the text's scale the way numeric_in
/// does (so "1.50" is stored with dscale 2, and "1.5e-3" as 0.0015).
pub(super) fn numeric_to_binary(text: &str) -> Result<Vec<u8>, String> {
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::db::values::{Codec, decode};
    use serde_json::json;

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
            assert_eq!(decode(&Codec::Numeric, &bytes), Ok(json!(want)), "{want}");
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
            assert_eq!(decode(&Codec::Numeric, &bytes), Ok(json!(want)), "{input}");
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
}
