//! UTC times as RFC 3339 text (`2027-01-31T00:00:00Z`), without a time-zone
//! database: bundles, SBOMs and reports carry UTC only, and no reader may
//! depend on the host's zone settings. The civil-calendar conversions are
//! shared with the Debian Release dates (RFC 2822) in airlock-debian.

/// Seconds since 1970-01-01T00:00:00Z as RFC 3339 UTC text.
pub fn format(unix: u64) -> String {
    let days = (unix / 86400) as i64;
    let seconds = unix % 86400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Parses `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (date, time) = match bytes.len() {
        10 => (text, None),
        20 if bytes[10] == b'T' && bytes[19] == b'Z' => (&text[..10], Some(&text[11..19])),
        _ => return None,
    };
    if date.as_bytes()[4] != b'-' || date.as_bytes()[7] != b'-' {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if year < 1970 || !(1..=12).contains(&month) || day == 0 || day > days_in(year, month) {
        return None;
    }
    let mut seconds = 0;
    if let Some(time) = time {
        let t = time.as_bytes();
        if t[2] != b':' || t[5] != b':' {
            return None;
        }
        let (h, m, s) = (number(11..13)?, number(14..16)?, number(17..19)?);
        if h > 23 || m > 59 || s > 59 {
            return None;
        }
        seconds = h * 3600 + m * 60 + s;
    }
    let days = days_from_civil(year as i64, month as u32, day as u32);
    Some(days as u64 * 86400 + seconds)
}

fn days_in(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's algorithms (public domain), proleptic Gregorian.
/// (year, month, day) of day `z` counted from 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The day number (from 1970-01-01) of year `y`, month `m`, day `d`.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp as i64 + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(format(0), "1970-01-01T00:00:00Z");
        assert_eq!(format(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(parse("2000-02-29"), Some(951_782_400));
        assert_eq!(parse("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        for bad in [
            "2023-02-29",
            "2023-13-01",
            "2023-11-14T24:00:00Z",
            "2023-11-14 22:13:20",
            "2023-11-14T22:13:20+01:00",
            "1969-12-31",
            "2023-1-014",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(unix in 0u64..253_402_300_799) {
            prop_assert_eq!(parse(&format(unix)), Some(unix));
        }
    }
}
