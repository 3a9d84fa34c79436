//! `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date, turned
//! into a delay against the wall-clock time the driver read (the core
//! reads no clock).
//! HTTP-dates are parsed by hand in all three formats of RFC 9110 §5.6.7:
//! IMF-fixdate and the two obsolete ones (RFC 850, asctime). A malformed
//! value is no hint at all.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One `Retry-After` value as a delay from `now`.
pub(crate) fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim_matches([' ', '\t']);
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More seconds than fit are "very long"; the core caps the delay.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = http_date(value, now)?;
    let at = match u64::try_from(at) {
        Ok(secs) => UNIX_EPOCH.checked_add(Duration::from_secs(secs))?,
        Err(_) => UNIX_EPOCH, // before 1970: long past
    };
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An HTTP-date as seconds since the Unix epoch; `now` resolves an RFC 850
/// two-digit year. `None` when it is none of the three formats.
fn http_date(s: &str, now: SystemTime) -> Option<i64> {
    let (day, month, year, time) = match s.split_once(", ") {
        // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
        Some((name, rest)) if DAYS.contains(&name) => {
            let [day, month, year, time, "GMT"] = words::<5>(rest, ' ')? else {
                return None;
            };
            (
                digits(day, 2)?,
                month_number(month)?,
                digits(year, 4)?,
                time,
            )
        }
        // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
        Some((name, rest)) if LONG_DAYS.contains(&name) => {
            let [date, time, "GMT"] = words::<3>(rest, ' ')? else {
                return None;
            };
            let [day, month, year] = words::<3>(date, '-')?;
            let year = two_digit_year(digits(year, 2)?, current_year(now));
            (digits(day, 2)?, month_number(month)?, year, time)
        }
        Some(_) => return None,
        // asctime: `Sun Nov  6 08:49:37 1994` (a one-digit day is padded
        // with a space)
        None => {
            let (name, rest) = s.split_once(' ')?;
            if !DAYS.contains(&name) || rest.len() != 20 {
                return None;
            }
            let (month, rest) = rest.split_once(' ')?;
            let (day, rest) = rest.split_at_checked(2)?;
            let day = match day.as_bytes() {
                [b' ', _] => digits(&day[1..], 1)?,
                _ => digits(day, 2)?,
            };
            let ["", time, year] = words::<3>(rest, ' ')? else {
                return None;
            };
            (day, month_number(month)?, digits(year, 4)?, time)
        }
    };
    let [hour, minute, second] = words::<3>(time, ':')?;
    let (hour, minute, second) = (digits(hour, 2)?, digits(minute, 2)?, digits(second, 2)?);
    // 60: a leap second, which the Unix clock folds into the next one.
    if day == 0 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Exactly `N` pieces of `s` split at `sep` (empty pieces included).
fn words<const N: usize>(s: &str, sep: char) -> Option<[&str; N]> {
    let mut parts = s.split(sep);
    let mut out = [""; N];
    for slot in &mut out {
        *slot = parts.next()?;
    }
    parts.next().is_none().then_some(out)
}

/// Exactly `n` ASCII digits.
fn digits(s: &str, n: usize) -> Option<i64> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `Jan` → 1 … `Dec` → 12 (case-sensitive, as RFC 9110 says).
fn month_number(s: &str) -> Option<i64> {
    let index = MONTHS.iter().position(|m| *m == s)?;
    Some(index as i64 + 1)
}

/// RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is
/// the most recent past year with those last two digits.
fn two_digit_year(yy: i64, current: i64) -> i64 {
    let candidate = current - current.rem_euclid(100) + yy;
    if candidate > current + 50 {
        candidate - 100
    } else if candidate + 100 <= current + 50 {
        candidate + 100
    } else {
        candidate
    }
}

fn current_year(now: SystemTime) -> i64 {
    let secs = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX / 2),
    };
    year_of_day(secs.div_euclid(86_400))
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year of a day counted from 1970-01-01 (`civil_from_days`, year only).
fn year_of_day(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1994-11-06 08:49:37 UTC, RFC 9110's example.
    const EXAMPLE: u64 = 784_111_777;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn delta_seconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_765_000_000);
        assert_eq!(parse("0", now), Some(Duration::ZERO));
        assert_eq!(parse("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", " ", "-1", "+5", "1.5", "5s", "0x10", "1 2"] {
            assert_eq!(parse(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn the_three_date_formats_of_rfc_9110() {
        let now = at(EXAMPLE - 30);
        let want = Some(Duration::from_secs(30));
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT", now), want);
        assert_eq!(parse("Sunday, 06-Nov-94 08:49:37 GMT", now), want);
        assert_eq!(parse("Sun Nov  6 08:49:37 1994", now), want);
        // A date in the past asks for no delay.
        assert_eq!(
            parse("Sun, 06 Nov 1994 08:49:37 GMT", at(EXAMPLE + 5)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse("Thu, 01 Jan 1970 00:00:00 GMT", at(0)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse("Mon, 01 Jan 1900 00:00:00 GMT", at(EXAMPLE)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn dates_against_known_timestamps() {
        let epoch = at(0);
        let secs = |s: &str| parse(s, epoch).map(|d| d.as_secs());
        assert_eq!(secs("Tue, 29 Feb 2000 00:00:00 GMT"), Some(951_782_400));
        assert_eq!(secs("Wed, 31 Dec 2036 23:59:59 GMT"), Some(2_114_380_799));
        assert_eq!(secs("Sat, 01 Jan 2000 00:00:00 GMT"), Some(946_684_800));
        // A leap second folds into the next second.
        assert_eq!(secs("Sat, 31 Dec 2016 23:59:60 GMT"), Some(1_483_228_800));
    }

    #[test]
    fn rfc_850_years_are_resolved_within_50_years() {
        assert_eq!(two_digit_year(94, 2025), 1994);
        assert_eq!(two_digit_year(75, 2025), 2075);
        assert_eq!(two_digit_year(76, 2025), 1976);
        assert_eq!(two_digit_year(0, 2099), 2100);
        assert_eq!(two_digit_year(99, 2001), 1999);
        assert_eq!(current_year(at(EXAMPLE)), 1994);
        assert_eq!(current_year(at(946_684_800)), 2000);
        assert_eq!(current_year(at(946_684_799)), 1999);
    }

    #[test]
    fn malformed_dates_are_no_hint() {
        let now = at(EXAMPLE);
        for bad in [
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 1900 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun,  06 Nov 1994 08:49:37 GMT",
            "Sunday, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov  6 08:49:37 94",
            "Xyz Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "tomorrow",
            "Sun, 06 Nov 1994 08:49:37 GMT\u{e9}",
        ] {
            assert_eq!(parse(bad, now), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            failure_persistence: Some(Box::new(
                proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/retry_after.txt"),
            )),
            ..proptest::test_runner::Config::default()
        })]

        #[test]
        fn any_text_is_a_delay_or_none_and_never_panics(s in "\\PC{0,40}", secs in 0u64..5_000_000_000) {
            let _ = parse(&s, at(secs));
        }

        #[test]
        fn imf_fixdate_round_trips(days in 0i64..200_000, secs in 0i64..86_400) {
            // Build the date text from a timestamp, parse it back.
            let t = days * 86_400 + secs;
            let year = year_of_day(days);
            let mut doy = days - days_from_civil(year, 1, 1);
            let mut month = 1;
            while doy >= days_in_month(year, month) {
                doy -= days_in_month(year, month);
                month += 1;
            }
            let weekday = DAYS[((days + 3).rem_euclid(7)) as usize];
            let text = format!(
                "{weekday}, {:02} {} {year:04} {:02}:{:02}:{:02} GMT",
                doy + 1,
                MONTHS[month as usize - 1],
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            );
            proptest::prop_assert_eq!(http_date(&text, at(0)), Some(t), "{}", text);
        }
    }
}
