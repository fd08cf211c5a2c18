//! Durations, dates and counts in the reader's language: English keeps the
//! forms rollcall always printed (`1h59m59s`, RFC 3339), Japanese reads
//! `1時間59分59秒` and `2026年12月7日 23:08:55 UTC`. Counts are grouped by
//! thousands in both (`10,000`).

use time::OffsetDateTime;

use crate::i18n::Lang;

/// A length of time to the second, in one token (`1h59m59s`, `1時間59分59秒`).
pub fn duration(lang: Lang, ms: i64) -> String {
    let seconds = ms.unsigned_abs().div_ceil(1000);
    match lang {
        Lang::En => humantime::format_duration(std::time::Duration::from_secs(seconds))
            .to_string()
            .replace(' ', ""),
        Lang::Ja => {
            let units = [(86_400, "日"), (3600, "時間"), (60, "分"), (1, "秒")];
            let mut rest = seconds;
            let mut out = String::new();
            for (size, unit) in units {
                let count = rest / size;
                rest %= size;
                if count > 0 {
                    out.push_str(&format!("{count}{unit}"));
                }
            }
            if out.is_empty() { "0秒".to_string() } else { out }
        }
    }
}

/// A moment in UTC: RFC 3339 in English (as JSON and logs), the Japanese
/// date form in Japanese. Unparsable input stays as it is.
pub fn datetime(lang: Lang, ms: i64) -> String {
    match lang {
        Lang::En => crate::timefmt::rfc3339(ms),
        Lang::Ja => {
            let Ok(at) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
                return crate::timefmt::rfc3339(ms);
            };
            format!(
                "{}年{}月{}日 {:02}:{:02}:{:02} UTC",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            )
        }
    }
}

/// [`datetime`] of an RFC 3339 text; text that does not parse stays as it is.
pub fn datetime_text(lang: Lang, rfc3339: &str) -> String {
    match (lang, crate::timefmt::parse_rfc3339(rfc3339)) {
        (Lang::Ja, Some(ms)) => datetime(lang, ms),
        _ => rfc3339.to_string(),
    }
}

/// A count grouped by thousands (`10,000`), as both languages write it.
pub fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_each_language() {
        assert_eq!(duration(Lang::En, 30 * 60_000), "30m");
        assert_eq!(duration(Lang::Ja, 30 * 60_000), "30分");
        assert_eq!(duration(Lang::Ja, 7_199_000), "1時間59分59秒");
        assert_eq!(duration(Lang::Ja, 0), "0秒");
        assert_eq!(duration(Lang::En, 7_199_000), "1h59m59s");
    }

    #[test]
    fn dates_and_counts() {
        let ms = crate::timefmt::parse_rfc3339("2026-12-07T23:08:55Z").unwrap();
        assert_eq!(datetime(Lang::Ja, ms), "2026年12月7日 23:08:55 UTC");
        assert_eq!(datetime_text(Lang::En, "2026-12-07T23:08:55Z"), "2026-12-07T23:08:55Z");
        assert_eq!(datetime_text(Lang::Ja, "not a date"), "not a date");
        assert_eq!(count(10_000), "10,000");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
