//! The simulator's memory and its answers to Authorize and /Investments.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::config::{Script, SimConfig};
use super::payload::investments_payload;
use super::stats::{LoginStats, Totals, Violation};

/// Polls closer than the minimum interval by less than this are not
/// violations: the worker schedules on Redis' millisecond clock and the
/// simulator measures arrival on its own, so a millisecond or two of
/// disagreement is clock granularity, not a contract breach.
pub const SPACING_TOLERANCE: Duration = Duration::from_millis(5);

/// An HTTP answer: status and JSON body.
pub type Answer = (u16, Value);

#[derive(Debug)]
struct Session {
    login: String,
    created: Instant,
    polls: u32,
    last_poll: Option<Instant>,
    expired: bool,
}

/// All the simulator remembers.
#[derive(Debug, Default)]
pub struct SimState {
    scripts: HashMap<String, Script>,
    logins: HashMap<String, LoginStats>,
    sessions: HashMap<String, Session>,
    totals: Totals,
    violations: Vec<Violation>,
}

impl SimState {
    /// Sets one login's script.
    pub fn set_script(&mut self, login: String, script: Script) {
        self.scripts.insert(login, script);
    }

    /// What was seen for one login (all zero if never called).
    pub fn login_stats(&self, login: &str) -> LoginStats {
        self.logins.get(login).cloned().unwrap_or_default()
    }

    /// Totals.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Contract violations, in order.
    pub fn violations(&self) -> Vec<Violation> {
        self.violations.clone()
    }

    /// Counts a request refused before it reached a login.
    pub fn reject(&mut self) {
        self.totals.rejected += 1;
    }

    fn script(&self, config: &SimConfig, login: &str) -> Script {
        self.scripts
            .get(login)
            .cloned()
            .unwrap_or_else(|| config.default_script.script_for(login))
    }

    /// `POST /Authorize` for `login` at `now`.
    pub fn authorize(
        &mut self,
        config: &SimConfig,
        login: &str,
        has_key: bool,
        now: Instant,
    ) -> Answer {
        self.totals.authorize_calls += 1;
        let stats = self.logins.entry(login.to_owned()).or_default();
        stats.authorize_calls += 1;
        stats.authorize_times.push(now);
        stats.auth_header_seen |= has_key;
        if self.script(config, login).invalid {
            return error(
                401,
                "INVALID_LOGIN",
                "The login is invalid: the user must reconnect",
                None,
            );
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        self.sessions.insert(
            request_id.clone(),
            Session {
                login: login.to_owned(),
                created: now,
                polls: 0,
                last_poll: None,
                expired: false,
            },
        );
        (
            200,
            json!({
                "HttpStatusCode": 200,
                "RequestId": request_id,
                "Links": [{"rel": "InvestmentsDetail", "href": "/Investments", "example": null}],
                "Login": {"Id": login, "Username": "demo-user", "IsScheduledRefresh": false, "Type": null},
                "Institution": {"Id": 999_999_999, "Name": "FlinksInvestment"},
            }),
        )
    }

    /// `POST /Investments` for `login` in session `request_id` at `now`.
    pub fn investments(
        &mut self,
        config: &SimConfig,
        request_id: &str,
        login: &str,
        has_key: bool,
        now: Instant,
    ) -> Answer {
        self.totals.investments_calls += 1;
        let script = self.script(config, login);
        let stats = self.logins.entry(login.to_owned()).or_default();
        stats.investments_calls += 1;
        stats.investments_times.push(now);
        stats.auth_header_seen |= has_key;
        let first = *stats.first_investments_at.get_or_insert(now);
        let deadline = first + config.poll_timeout;
        if now > deadline {
            self.violations.push(Violation::PollAfterDeadline {
                login: login.to_owned(),
                late_by_ms: millis(now - deadline),
            });
        }
        if stats.succeeded_at.is_some() {
            stats.calls_after_success += 1;
            self.violations.push(Violation::PollAfterSuccess {
                login: login.to_owned(),
            });
        }

        let Some(session) = self
            .sessions
            .get_mut(request_id)
            .filter(|s| s.login == login)
        else {
            self.totals.session_errors += 1;
            self.violations.push(Violation::InvestmentsWithoutSession {
                login: login.to_owned(),
            });
            return error(
                400,
                "SESSION_NONEXISTENT",
                "No session with this RequestId for this login",
                Some(request_id),
            );
        };
        if let Some(last) = session.last_poll {
            let gap = now.saturating_duration_since(last);
            stats.min_poll_spacing = Some(stats.min_poll_spacing.map_or(gap, |min| min.min(gap)));
            if gap + SPACING_TOLERANCE < config.min_poll_interval {
                self.violations.push(Violation::PollTooSoon {
                    login: login.to_owned(),
                    gap_ms: millis(gap),
                });
            }
        }
        session.last_poll = Some(now);
        session.polls += 1;
        let over_polls = script
            .expire_session_after_polls
            .is_some_and(|limit| session.polls > limit);
        if session.expired
            || over_polls
            || now.saturating_duration_since(session.created) > config.session_ttl
        {
            session.expired = true;
            self.totals.session_errors += 1;
            return error(
                401,
                "SESSION_EXPIRED",
                "The session has expired: authorize again",
                Some(request_id),
            );
        }
        if script.always_pending || stats.pending_served < script.pending {
            stats.pending_served += 1;
            self.totals.pending_answers += 1;
            return (
                202,
                json!({
                    "HttpStatusCode": 202,
                    "FlinksCode": "OPERATION_PENDING",
                    "Message": "Your operation is still processing",
                    "RequestId": request_id,
                    "Links": [{"rel": "Investments", "href": "/Investments", "example": null}],
                }),
            );
        }
        stats.succeeded_at = Some(now);
        self.totals.successes += 1;
        (200, investments_payload(login, request_id))
    }
}

/// A Flinks error body.
pub fn error(status: u16, code: &str, message: &str, request_id: Option<&str>) -> Answer {
    (
        status,
        json!({
            "HttpStatusCode": status,
            "FlinksCode": code,
            "Message": message,
            "RequestId": request_id,
        }),
    )
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
