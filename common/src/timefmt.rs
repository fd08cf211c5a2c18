//! Time on the wire and in output: milliseconds since the Unix epoch inside
//! rollcall, RFC 3339 (UTC) for people and JSON.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    ms_of(OffsetDateTime::now_utc())
}

pub fn ms_of(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// RFC 3339 in UTC with millisecond precision; an out-of-range input gives
/// the epoch rather than a panic.
pub fn rfc3339(ms: i64) -> String {
    let at =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let truncated = at
        .replace_nanosecond((at.nanosecond() / 1_000_000) * 1_000_000)
        .unwrap_or(at);
    truncated
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// RFC 3339, or the empty string for 0 ("never").
pub fn rfc3339_or_empty(ms: i64) -> String {
    if ms == 0 { String::new() } else { rfc3339(ms) }
}

pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339).ok().map(ms_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let ms = 1_790_000_000_123;
        let text = rfc3339(ms);
        assert!(text.ends_with('Z'), "{text}");
        assert_eq!(parse_rfc3339(&text), Some(ms));
        assert_eq!(rfc3339_or_empty(0), "");
    }
}
