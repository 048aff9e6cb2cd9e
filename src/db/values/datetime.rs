//! Dates and times in both directions: proleptic Gregorian calendar arithmetic, the text
//! PostgreSQL prints for date, time, timetz, timestamp, timestamptz and interval, and the
//! ISO 8601 parsers that parameters of those types are read with.

use std::fmt::Write as _;

pub(super) const USECS_PER_SEC: i64 = 1_000_000;
pub(super) const USECS_PER_MINUTE: i64 = 60 * USECS_PER_SEC;
pub(super) const USECS_PER_HOUR: i64 = 60 * USECS_PER_MINUTE;
pub(super) const USECS_PER_DAY: i64 = 24 * USECS_PER_HOUR;
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
pub(super) fn push_offset(out: &mut String, east_secs: i64) {
    out.push(if east_secs < 0 { '-' } else { '+' });
    let abs = east_secs.unsigned_abs();
    let _ = write!(out, "{:02}:{:02}", abs / 3600, abs % 3600 / 60);
    if !abs.is_multiple_of(60) {
        let _ = write!(out, ":{:02}", abs % 60);
    }
}

pub(super) fn format_date(days: i32) -> String {
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

pub(super) fn format_time(micros: i64) -> Result<String, String> {
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

pub(super) fn format_timestamp(micros: i64, utc_suffix: bool) -> String {
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
pub(super) fn format_interval(micros: i64, days: i32, months: i32) -> String {
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

/// A parsed date or timestamp, before it is narrowed to a particular type.
pub(super) enum DateTimeInput {
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

pub(super) fn parse_time_of_day(text: &str) -> Option<i64> {
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
/// year; otherwise negative years are astronomical, as [`super::decode()`] prints them.
pub(super) fn parse_timestamp(text: &str) -> Option<DateTimeInput> {
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::db::values::{Codec, decode};
    use serde_json::json;

    #[test]
    fn decodes_dates_and_times() {
        let cases: Vec<(Codec, Vec<u8>, &str)> = vec![
            (Codec::Date, be32(0), "2000-01-01"),
            (Codec::Date, be32(9497), "2026-01-01"),
            (Codec::Date, be32(-10957), "1970-01-01"),
            (Codec::Date, be32(-746_117), "-0043-03-15"),
            (Codec::Date, be32(-2_451_545), "-4713-11-24"),
            (Codec::Date, be32(2_145_031_948), "5874897-12-31"),
            (Codec::Date, be32(i32::MAX), "infinity"),
            (Codec::Date, be32(i32::MIN), "-infinity"),
            (Codec::Time, be64(17_181_530_000), "04:46:21.53"),
            (Codec::Time, be64(17_181_000_000), "04:46:21"),
            (Codec::Time, be64(0), "00:00:00"),
            (Codec::Time, be64(1), "00:00:00.000001"),
            (Codec::Time, be64(USECS_PER_DAY), "24:00:00"),
            (
                Codec::TimeTz,
                cat(&[&be64(17_181_530_000), &be32(-7200)]),
                "04:46:21.53+02:00",
            ),
            (
                Codec::TimeTz,
                cat(&[&be64(0), &be32(19_800)]),
                "00:00:00-05:30",
            ),
            (Codec::TimeTz, cat(&[&be64(0), &be32(0)]), "00:00:00+00:00"),
            (
                Codec::TimeTz,
                cat(&[&be64(0), &be32(-(3600 + 15))]),
                "00:00:00+01:00:15",
            ),
            (Codec::Timestamp, be64(TS_2026), "2026-01-01T04:46:21.53"),
            (Codec::Timestamp, be64(0), "2000-01-01T00:00:00"),
            (Codec::Timestamp, be64(-500_000), "1999-12-31T23:59:59.5"),
            (
                Codec::Timestamp,
                be64(-746_117 * USECS_PER_DAY + 12 * USECS_PER_HOUR),
                "-0043-03-15T12:00:00",
            ),
            (Codec::Timestamp, be64(i64::MAX), "infinity"),
            (Codec::Timestamp, be64(i64::MIN), "-infinity"),
            (
                Codec::TimestampTz,
                be64(TS_2026),
                "2026-01-01T04:46:21.53+00:00",
            ),
            (Codec::TimestampTz, be64(i64::MIN), "-infinity"),
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
            let got = decode(&Codec::Interval, &interval(months, days, micros));
            assert_eq!(got, Ok(json!(want)), "{months} {days} {micros}");
        }
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
