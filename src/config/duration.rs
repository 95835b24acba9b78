//! Durations as the configuration writes them: `"1s"`, `"100ms"`, `"1.5s"`, `"2m"`.
//!
//! Owns the one accepted syntax (digits, an optional decimal fraction, then a unit of
//! `ms`, `s` or `m`, nothing else) and its exact inverse for printing. Parsing is exact:
//! `"0.1s"` is 100 ms, never a float rounded to 99.999 ms. Range rules (VRRP interval,
//! preempt_delay) belong to `validate`, not here.

use std::time::Duration;

use thiserror::Error;

const NANOS_PER_MILLI: u128 = 1_000_000;
const NANOS_PER_SECOND: u128 = 1_000_000_000;
const NANOS_PER_MINUTE: u128 = 60 * NANOS_PER_SECOND;

/// Why a duration string was refused. The text is quoted by the caller's message.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DurationError {
    #[error("empty duration; write a number and a unit, such as \"1s\" or \"100ms\"")]
    Empty,
    #[error("no unit; write \"{0}s\" or \"{0}ms\"")]
    NoUnit(String),
    #[error("unknown unit \"{0}\"; use \"ms\", \"s\" or \"m\"")]
    UnknownUnit(String),
    #[error("expected digits with an optional fraction before the unit, such as \"1.5s\"")]
    BadNumber,
    #[error("finer than a nanosecond")]
    TooPrecise,
    #[error("too large")]
    TooLarge,
}

/// Parse `"1.5s"` and friends exactly.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    let nanos_per_unit = match unit {
        "ms" => NANOS_PER_MILLI,
        "s" => NANOS_PER_SECOND,
        "m" => NANOS_PER_MINUTE,
        "" if !number.is_empty() => return Err(DurationError::NoUnit(number.to_owned())),
        _ if number.is_empty() => return Err(DurationError::BadNumber),
        other => return Err(DurationError::UnknownUnit(other.to_owned())),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok(whole) || (number.contains('.') && !digits_ok(fraction)) {
        return Err(DurationError::BadNumber);
    }
    // Far beyond any setting, and keeps the arithmetic below inside u128.
    if whole.len() > 20 || fraction.len() > 20 {
        return Err(DurationError::TooLarge);
    }
    let whole_nanos = decimal(whole)
        .checked_mul(nanos_per_unit)
        .ok_or(DurationError::TooLarge)?;
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction_scaled = decimal(fraction) * nanos_per_unit;
    if fraction_scaled % scale != 0 {
        return Err(DurationError::TooPrecise);
    }
    let nanos = whole_nanos + fraction_scaled / scale;
    let seconds = u64::try_from(nanos / NANOS_PER_SECOND).map_err(|_| DurationError::TooLarge)?;
    // The remainder is below 10^9, so it fits in u32.
    Ok(Duration::new(seconds, (nanos % NANOS_PER_SECOND) as u32))
}

/// The value of a string of at most 20 ASCII digits (checked by the caller).
fn decimal(digits: &str) -> u128 {
    digits
        .bytes()
        .fold(0, |value, digit| value * 10 + u128::from(digit - b'0'))
}

/// A duration in the syntax [`parse`] reads back to the same value: `"0s"`, `"100ms"`,
/// `"1.5s"`, `"414.062ms"`. Whole seconds print as seconds, shorter spans in milliseconds.
pub fn format(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    let (unit_nanos, unit) = if nanos == 0 || nanos >= NANOS_PER_SECOND {
        (NANOS_PER_SECOND, "s")
    } else {
        (NANOS_PER_MILLI, "ms")
    };
    let mut text = (nanos / unit_nanos).to_string();
    let fraction = nanos % unit_nanos;
    if fraction != 0 {
        let width = unit_nanos.ilog10() as usize;
        let digits = format!("{fraction:0width$}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    text.push_str(unit);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn accepts_each_unit() {
        assert_eq!(parse("100ms"), Ok(ms(100)));
        assert_eq!(parse("1s"), Ok(ms(1000)));
        assert_eq!(parse("2m"), Ok(ms(120_000)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse("1.5s"), Ok(ms(1500)));
        assert_eq!(parse("0.1s"), Ok(ms(100)));
        assert_eq!(parse("40.95s"), Ok(ms(40_950)));
        assert_eq!(parse("0.5m"), Ok(ms(30_000)));
        assert_eq!(parse("1.000000001s"), Ok(Duration::new(1, 1)));
        assert_eq!(parse("0.5ms"), Ok(Duration::from_micros(500)));
    }

    #[test]
    fn refuses_other_forms() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("1"), Err(DurationError::NoUnit("1".into())));
        assert_eq!(parse("1h"), Err(DurationError::UnknownUnit("h".into())));
        assert_eq!(parse("1 s"), Err(DurationError::UnknownUnit(" s".into())));
        assert_eq!(parse("1S"), Err(DurationError::UnknownUnit("S".into())));
        assert_eq!(parse("s"), Err(DurationError::BadNumber));
        assert_eq!(parse("-1s"), Err(DurationError::BadNumber));
        assert_eq!(parse(".5s"), Err(DurationError::BadNumber));
        assert_eq!(parse("1.s"), Err(DurationError::BadNumber));
        assert_eq!(parse("1.2.3s"), Err(DurationError::BadNumber));
        assert_eq!(
            parse("1e3ms"),
            Err(DurationError::UnknownUnit("e3ms".into()))
        );
        assert_eq!(parse("1ms5"), Err(DurationError::UnknownUnit("ms5".into())));
    }

    #[test]
    fn refuses_what_it_cannot_hold() {
        assert_eq!(parse("0.0000000001s"), Err(DurationError::TooPrecise));
        assert_eq!(parse("0.0000001ms"), Err(DurationError::TooPrecise));
        assert_eq!(
            parse("99999999999999999999999m"),
            Err(DurationError::TooLarge)
        );
        assert_eq!(
            parse("999999999999999999999s"),
            Err(DurationError::TooLarge)
        );
    }

    #[test]
    fn display_reads_back_to_the_same_value() {
        for (duration, text) in [
            (Duration::ZERO, "0s"),
            (ms(100), "100ms"),
            (ms(1000), "1s"),
            (ms(1500), "1.5s"),
            (ms(40_950), "40.95s"),
            (ms(120_000), "120s"),
            (Duration::from_micros(414_062), "414.062ms"),
            (Duration::from_micros(3_414_062), "3.414062s"),
            (Duration::from_nanos(1), "0.000001ms"),
        ] {
            assert_eq!(format(duration), text);
            assert_eq!(parse(text), Ok(duration));
        }
    }
}
