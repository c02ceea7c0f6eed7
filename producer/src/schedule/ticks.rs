//! The scheduler's decision, pure: given the schedule, the newest tick run
//! and the time, which tick to run now (if any) and when to wake up next.

use super::cron_spec::Schedule;

/// What to do at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// A tick that is due and was not run yet: the newest tick at or before
    /// now when it is newer than the last run. Only the newest one: ticks
    /// missed while every scheduler was down are caught up once, not once each.
    pub due: Option<u64>,
    /// The first tick after now (`None` if the expression never fires again).
    pub next_tick: Option<u64>,
}

/// Decides what to do at `now_ms`, given `last_run_ms` (`schedule:last`).
///
/// `last_run_ms` must be `Some`: on a first-ever start the caller records a
/// baseline (see [`baseline`]) so that nothing is caught up.
pub fn next_action(schedule: &Schedule, last_run_ms: u64, now_ms: u64) -> Action {
    let due = schedule
        .latest_at_or_before(now_ms)
        .filter(|tick| *tick > last_run_ms);
    Action {
        due,
        next_tick: schedule.next_after(now_ms),
    }
}

/// The `schedule:last` to record on a first-ever start: the newest tick at
/// or before now (or now), so that start catches nothing up.
pub fn baseline(schedule: &Schedule, now_ms: u64) -> u64 {
    schedule.latest_at_or_before(now_ms).unwrap_or(now_ms)
}

/// The batch of a tick: `<prefix>-<UTC time>`, e.g. `nightly-20261125T070000Z`,
/// the same on every replica.
pub fn batch_name(prefix: &str, tick_ms: u64) -> String {
    format!(
        "{prefix}-{}",
        crate::batch_name::compact_utc(tick_ms / 1_000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> u64 {
        let t = chrono::DateTime::parse_from_rfc3339(rfc3339).expect("rfc3339");
        u64::try_from(t.timestamp_millis()).expect("after 1970")
    }

    fn nightly() -> Schedule {
        Schedule::parse("0 2 * * *", "America/Toronto").expect("parse")
    }

    #[test]
    fn nothing_is_due_between_ticks() {
        let s = nightly();
        let last = ms("2026-11-25T02:00:00-05:00");
        let action = next_action(&s, last, ms("2026-11-25T13:00:00-05:00"));
        assert_eq!(action.due, None);
        assert_eq!(action.next_tick, Some(ms("2026-11-26T02:00:00-05:00")));
    }

    #[test]
    fn the_awaited_tick_is_due_once_reached() {
        let s = nightly();
        let tick = ms("2026-11-26T02:00:00-05:00");
        let last = ms("2026-11-25T02:00:00-05:00");
        assert_eq!(next_action(&s, last, tick - 1).due, None);
        let action = next_action(&s, last, tick);
        assert_eq!(action.due, Some(tick));
        assert_eq!(action.next_tick, Some(ms("2026-11-27T02:00:00-05:00")));
        assert_eq!(next_action(&s, tick, tick + 5).due, None, "ran: not again");
    }

    #[test]
    fn several_missed_ticks_are_caught_up_once_with_the_newest() {
        let s = nightly();
        let last = ms("2026-11-20T02:00:00-05:00");
        let now = ms("2026-11-25T09:30:00-05:00");
        let action = next_action(&s, last, now);
        assert_eq!(action.due, Some(ms("2026-11-25T02:00:00-05:00")));
        let after = next_action(&s, ms("2026-11-25T02:00:00-05:00"), now + 1);
        assert_eq!(after.due, None, "one catch-up, not one per missed night");
        assert_eq!(after.next_tick, Some(ms("2026-11-26T02:00:00-05:00")));
    }

    #[test]
    fn a_first_start_records_a_baseline_and_catches_nothing_up() {
        let s = nightly();
        let now = ms("2026-11-25T09:30:00-05:00");
        let base = baseline(&s, now);
        assert_eq!(base, ms("2026-11-25T02:00:00-05:00"));
        assert_eq!(next_action(&s, base, now).due, None);
    }

    #[test]
    fn the_next_tick_follows_daylight_saving_time() {
        let s = nightly();
        // 2026-11-01 02:00 EDT becomes 01:00 EST: 02:00 comes once, at -05:00
        let action = next_action(&s, 0, ms("2026-10-31T12:00:00-04:00"));
        assert_eq!(action.next_tick, Some(ms("2026-11-01T02:00:00-05:00")));
        // and the day after the spring change 02:00 is at -04:00
        let action = next_action(&s, 0, ms("2026-03-08T12:00:00-04:00"));
        assert_eq!(action.next_tick, Some(ms("2026-03-09T02:00:00-04:00")));
    }

    #[test]
    fn batch_names_come_from_the_tick_alone() {
        let tick = ms("2026-11-25T02:00:00-05:00");
        assert_eq!(batch_name("nightly", tick), "nightly-20261125T070000Z");
        assert_eq!(
            batch_name("nightly", tick + 999),
            "nightly-20261125T070000Z"
        );
        assert_ne!(batch_name("n", tick), batch_name("n", tick + 2_000));
    }
}
