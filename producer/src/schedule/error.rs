//! Errors of `flinkq schedule` found before it starts: each says what is
//! wrong and shows a valid example.

/// A schedule that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error(
        "invalid --cron {expr:?}: {reason}; expected 5 fields (minute hour day-of-month month day-of-week), e.g. \"0 2 * * *\" for 02:00 every day, or 6 with seconds first, e.g. \"*/30 * * * * *\""
    )]
    BadCron {
        /// The expression.
        expr: String,
        /// Why.
        reason: String,
    },
    /// The time zone is not an IANA name.
    #[error(
        "unknown --tz {tz:?}: use an IANA time zone name, e.g. America/Toronto, Europe/Paris or UTC"
    )]
    BadTimeZone {
        /// The name given.
        tz: String,
    },
    /// The expression parses but never matches (e.g. February 30th).
    #[error("--cron {expr:?} never fires: no matching time after {after}; e.g. \"0 2 * * *\"")]
    NeverFires {
        /// The expression.
        expr: String,
        /// From when the search started (RFC 3339).
        after: String,
    },
}
