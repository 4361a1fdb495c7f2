//! Calendar dates of Unix times, for the few places that print one (no time-zone data: UTC).

/// The proleptic Gregorian date (year, month 1-12, day 1-31) of `days` since 1970-01-01,
/// by Howard Hinnant's `civil_from_days` (400-year eras).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Unix milliseconds as (date, seconds into the day, milliseconds), all UTC.
pub fn split_ms(ms: i64) -> ((i64, u32, u32), i64, i64) {
    let secs = ms.div_euclid(1000);
    (
        civil_from_days(secs.div_euclid(86_400)),
        secs.rem_euclid(86_400),
        ms.rem_euclid(1000),
    )
}

/// `2025-01-31T12:34:56Z` for Unix milliseconds (UTC, whole seconds).
pub fn rfc3339(ms: i64) -> String {
    let ((y, m, d), rem, _) = split_ms(ms);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_793), (2026, 12, 6));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(rfc3339(1_738_326_896_000), "2025-01-31T12:34:56Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
