//! `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date.

use std::time::{Duration, SystemTime};

use http::header::{DATE, HeaderMap, RETRY_AFTER};

/// How long the answer asks to wait, if it says. An HTTP-date is taken
/// relative to the answer's own `Date` header when it has a valid one (the
/// two then come from the same clock, whatever ours says), else relative to
/// `now`; a date in the past means no wait. Capping the value is the retry
/// policy's business, not the parser's.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    let date = headers.get(DATE).and_then(|v| v.to_str().ok());
    parse(value, date, now)
}

/// The longest wait read from an answer: any more is read as this much, so
/// that no later sum of a timestamp and the wait can overflow (the retry
/// policy caps it far lower anyway).
const LONGEST: Duration = Duration::from_secs(u32::MAX as u64);

fn parse(value: &str, date: Option<&str>, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // more digits than a u64 holds is still "a very long time"
        let secs = value.parse().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(LONGEST));
    }
    let until = httpdate::parse_http_date(value).ok()?;
    let base = date
        .and_then(|d| httpdate::parse_http_date(d.trim()).ok())
        .unwrap_or(now);
    Some(
        until
            .duration_since(base)
            .unwrap_or(Duration::ZERO)
            .min(LONGEST),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(parse("120", None, at(0)), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 ", None, at(0)), Some(Duration::ZERO));
        assert_eq!(parse("99999999999999999999999", None, at(0)), Some(LONGEST));
        assert_eq!(
            parse("18446744073709551615", None, at(0)),
            Some(LONGEST),
            "never a wait whose milliseconds overflow a timestamp"
        );
        assert_eq!(parse("-5", None, at(0)), None);
        assert_eq!(parse("1.5", None, at(0)), None);
        assert_eq!(parse("", None, at(0)), None);
    }

    #[test]
    fn http_date_relative_to_the_answers_date() {
        // 1994-11-06 08:49:37 GMT is 784111777 s after the epoch.
        let until = "Sun, 06 Nov 1994 08:49:37 GMT";
        let date = "Sun, 06 Nov 1994 08:49:07 GMT";
        // our clock is far off: the answer's own Date decides
        assert_eq!(
            parse(until, Some(date), at(0)),
            Some(Duration::from_secs(30))
        );
        // without a Date header, the system clock
        assert_eq!(
            parse(until, None, at(784_111_777 - 45)),
            Some(Duration::from_secs(45))
        );
        assert_eq!(
            parse(until, Some("not a date"), at(784_111_777 - 5)),
            Some(Duration::from_secs(5))
        );
        // the obsolete forms RFC 9110 still requires recipients to accept
        assert_eq!(
            parse("Sunday, 06-Nov-94 08:49:37 GMT", Some(date), at(0)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse("Sun Nov  6 08:49:37 1994", Some(date), at(0)),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn a_past_date_means_no_wait_and_garbage_means_none() {
        let until = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(
            parse(until, Some("Sun, 06 Nov 1994 09:00:00 GMT"), at(0)),
            Some(Duration::ZERO)
        );
        assert_eq!(parse(until, None, SystemTime::now()), Some(Duration::ZERO));
        assert_eq!(parse("tomorrow", None, at(0)), None);
    }

    #[test]
    fn read_from_the_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, at(0)), None);
        headers.insert(RETRY_AFTER, "7".parse().expect("header"));
        assert_eq!(retry_after(&headers, at(0)), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            httpdate::fmt_http_date(at(1_000_010))
                .parse()
                .expect("header"),
        );
        headers.insert(
            DATE,
            httpdate::fmt_http_date(at(1_000_000))
                .parse()
                .expect("header"),
        );
        assert_eq!(retry_after(&headers, at(0)), Some(Duration::from_secs(10)));
    }
}
