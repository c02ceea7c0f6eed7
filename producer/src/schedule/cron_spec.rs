//! A parsed cron expression in a time zone: which instants are ticks.
//!
//! Ticks are instants in milliseconds since the Unix epoch (UTC); the cron
//! fields are read in the schedule's time zone, so "0 2 * * *" in
//! America/Toronto is 07:00Z in winter and 06:00Z in summer.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use super::error::ScheduleError;

/// A cron schedule in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
    expr: String,
}

impl Schedule {
    /// Parses `expr` (5 fields, or 6 with seconds first) and the IANA time
    /// zone `tz`.
    pub fn parse(expr: &str, tz: &str) -> Result<Schedule, ScheduleError> {
        let bad = |reason: String| ScheduleError::BadCron {
            expr: expr.to_owned(),
            reason,
        };
        let fields = expr.split_whitespace().count();
        if !(fields == 5 || fields == 6) {
            return Err(bad(format!("it has {fields} field(s)")));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expr)
            .map_err(|e| bad(e.to_string()))?;
        let tz: Tz = tz
            .parse()
            .map_err(|_| ScheduleError::BadTimeZone { tz: tz.to_owned() })?;
        let schedule = Schedule {
            cron,
            tz,
            expr: expr.to_owned(),
        };
        // an expression that never matches is refused now, not at runtime
        let now = u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default();
        if schedule.next_after(now).is_none() {
            return Err(ScheduleError::NeverFires {
                expr: expr.to_owned(),
                after: schedule.local_rfc3339(now),
            });
        }
        Ok(schedule)
    }

    /// The expression as given.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The time zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The first tick strictly after `ms`, if the expression ever matches.
    pub fn next_after(&self, ms: u64) -> Option<u64> {
        let start = self.local(ms)?;
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        u64::try_from(next.timestamp_millis()).ok()
    }

    /// The newest tick at or before `ms`, if any.
    pub fn latest_at_or_before(&self, ms: u64) -> Option<u64> {
        let start = self.local(ms)?;
        let previous = self.cron.find_previous_occurrence(&start, true).ok()?;
        u64::try_from(previous.timestamp_millis()).ok()
    }

    /// `ms` as RFC 3339 in the schedule's zone, e.g. `2026-11-25T02:00:00-05:00`.
    pub fn local_rfc3339(&self, ms: u64) -> String {
        self.local(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| format!("{ms} ms"))
    }

    /// `ms` in the zone, cut to the whole second (ticks are whole seconds,
    /// and the cron search keeps the fraction it is given).
    fn local(&self, ms: u64) -> Option<DateTime<Tz>> {
        let ms = i64::try_from(ms - ms % 1_000).ok()?;
        let utc = Utc.timestamp_millis_opt(ms).single()?;
        Some(utc.with_timezone(&self.tz))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> u64 {
        let t = DateTime::parse_from_rfc3339(rfc3339).expect("rfc3339");
        u64::try_from(t.timestamp_millis()).expect("after 1970")
    }

    #[test]
    fn five_fields_tick_on_the_minute_in_the_zone() {
        let s = Schedule::parse("0 2 * * *", "America/Toronto").expect("parse");
        let next = s.next_after(ms("2026-11-25T06:00:00Z")).expect("next");
        assert_eq!(next, ms("2026-11-25T07:00:00Z"), "02:00 EST is 07:00Z");
        assert_eq!(s.local_rfc3339(next), "2026-11-25T02:00:00-05:00");
        assert_eq!(s.next_after(next), Some(ms("2026-11-26T07:00:00Z")));
        assert_eq!(s.latest_at_or_before(next), Some(next), "inclusive");
        assert_eq!(
            s.latest_at_or_before(next - 1),
            Some(ms("2026-11-24T07:00:00Z"))
        );
    }

    #[test]
    fn six_fields_have_seconds_first() {
        let s = Schedule::parse("*/2 * * * * *", "UTC").expect("parse");
        let t = ms("2026-11-25T06:00:01.500Z");
        assert_eq!(s.next_after(t), Some(ms("2026-11-25T06:00:02Z")));
        assert_eq!(s.latest_at_or_before(t), Some(ms("2026-11-25T06:00:00Z")));
    }

    #[test]
    fn daylight_saving_changes_move_the_utc_tick() {
        let s = Schedule::parse("0 3 * * *", "America/Toronto").expect("parse");
        // 2026-03-08: clocks go from 02:00 EST to 03:00 EDT
        let before = s.next_after(ms("2026-03-07T00:00:00Z")).expect("next");
        assert_eq!(before, ms("2026-03-07T08:00:00Z"), "03:00 EST");
        let after = s.next_after(before).expect("next");
        assert_eq!(after, ms("2026-03-08T07:00:00Z"), "03:00 EDT");
        assert_eq!(after - before, 23 * 3_600_000, "a 23 h day");
        // 2026-11-01: back from 02:00 EDT to 01:00 EST
        let before = s.next_after(ms("2026-10-31T00:00:00Z")).expect("next");
        assert_eq!(before, ms("2026-10-31T07:00:00Z"), "03:00 EDT");
        let after = s.next_after(before).expect("next");
        assert_eq!(after, ms("2026-11-01T08:00:00Z"), "03:00 EST");
        assert_eq!(s.local_rfc3339(after), "2026-11-01T03:00:00-05:00");
    }

    #[test]
    fn a_tick_in_the_spring_gap_still_runs_that_day() {
        // 02:30 does not exist in Toronto on 2026-03-08
        let s = Schedule::parse("30 2 * * *", "America/Toronto").expect("parse");
        let t = s.next_after(ms("2026-03-08T05:00:00Z")).expect("next");
        assert!(
            (ms("2026-03-08T06:00:00Z")..ms("2026-03-09T00:00:00Z")).contains(&t),
            "{}",
            s.local_rfc3339(t)
        );
        assert_eq!(
            s.next_after(t),
            Some(ms("2026-03-09T06:30:00Z")),
            "then 02:30 EDT"
        );
    }

    #[test]
    fn bad_expressions_and_zones_say_what_is_wrong() {
        for (expr, wanted) in [
            ("0 2 * *", "4 field(s)"),
            ("0 0 2 * * * 2027", "7 field(s)"),
            ("61 2 * * *", "invalid --cron \"61 2 * * *\""),
            ("0 2 * * * banana", "invalid --cron"),
            ("", "0 field(s)"),
        ] {
            let error = Schedule::parse(expr, "UTC").expect_err(expr).to_string();
            assert!(error.contains(wanted), "{expr:?}: {error}");
            assert!(error.contains("e.g. \"0 2 * * *\""), "{error}");
        }
        let error = Schedule::parse("0 2 * * *", "America/Torronto")
            .expect_err("bad zone")
            .to_string();
        assert!(error.contains("\"America/Torronto\""), "{error}");
        assert!(error.contains("e.g. America/Toronto"), "{error}");
        let error = Schedule::parse("0 0 30 2 *", "UTC")
            .expect_err("never")
            .to_string();
        assert!(error.contains("never fires"), "{error}");
    }
}
