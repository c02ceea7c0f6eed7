//! The simulator's memory and its answers to Authorize and /Investments.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::config::{Endpoint, Fault, Script, ScriptedFault, SimConfig};
use super::hostile::HostileAnswer;
use super::payload::investments_payload;
use super::stats::{LoginStats, Totals, Violation};

/// Polls closer than the minimum interval by less than this are not
/// violations: the worker schedules on Redis' millisecond clock and the
/// simulator measures arrival on its own, so a millisecond or two of
/// disagreement is clock granularity, not a contract breach.
pub const SPACING_TOLERANCE: Duration = Duration::from_millis(5);

/// A poll after a success is excused (an at-least-once repeat, not a
/// violation) only when a worker crash was noted at most this long after the
/// 200 was served: the worker that received it died before recording it.
pub const CRASH_WINDOW: Duration = Duration::from_secs(5);

/// ... or at most this long before it: a request the killed worker had
/// already sent is read from the socket and answered after its death (seen
/// in the chaos test: 200s served after the kill, to nobody).
pub const CRASH_LEAD: Duration = Duration::from_secs(1);

/// What the simulator answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A JSON body.
    Json {
        /// HTTP status.
        status: u16,
        /// Body.
        body: Value,
        /// `Retry-After` seconds, if any.
        retry_after: Option<u64>,
    },
    /// HTTP 200 with a body that is not JSON.
    Malformed,
    /// Cut the connection mid-answer.
    Reset,
    /// Wait, then answer 503.
    Slow(Duration),
    /// One of the hostile answers (see `sim::hostile`).
    Hostile(HostileAnswer),
}

impl Answer {
    fn json(status: u16, body: Value) -> Answer {
        Answer::Json {
            status,
            body,
            retry_after: None,
        }
    }
}

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
    crashes: Vec<Instant>,
    rng_state: u64,
    call_times: Vec<Instant>,
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

    /// Records the arrival of any call to either endpoint.
    pub fn arrived(&mut self, at: Instant) {
        self.call_times.push(at);
    }

    /// The most calls (both endpoints) that arrived within any `window`.
    pub fn max_calls_in_window(&self, window: Duration) -> usize {
        let mut times = self.call_times.clone();
        times.sort_unstable();
        let mut start = 0;
        let mut best = 0;
        for end in 0..times.len() {
            while times[end].saturating_duration_since(times[start]) >= window {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best
    }

    /// Counts a request refused before it reached a login.
    pub fn reject(&mut self) {
        self.totals.rejected += 1;
    }

    /// Records that a worker was killed now. A poll after a success is not a
    /// violation when a crash came within [`CRASH_WINDOW`] after the 200: the
    /// worker that received it died before recording it, and steps are
    /// at-least-once (counted in `Totals::repeats_after_crash` instead).
    pub fn note_crash(&mut self, at: Instant) {
        self.crashes.push(at);
    }

    /// The injected fault for this call, if any: a scripted one, else a
    /// random 503 at `random_5xx_rate`.
    fn fault(
        &mut self,
        config: &SimConfig,
        script: &Script,
        endpoint: Endpoint,
        call: u32,
    ) -> Option<Fault> {
        let on = |wanted: u32| {
            script
                .faults
                .iter()
                .find(|f| f.endpoint == endpoint && f.call == wanted)
                .map(|f| f.fault.clone())
        };
        let scripted = on(call).or_else(|| on(ScriptedFault::EVERY_CALL));
        if scripted.is_some() {
            return scripted;
        }
        if config.random_5xx_rate > 0.0 && self.next_random() < config.random_5xx_rate {
            return Some(Fault::answer(503, None));
        }
        None
    }

    /// xorshift64*: a deterministic stream, good enough for fault dice.
    fn next_random(&mut self) -> f64 {
        if self.rng_state == 0 {
            self.rng_state = 0x9E37_79B9_7F4A_7C15;
        }
        let mut x = self.rng_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng_state = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn fault_answer(&mut self, fault: Fault, request_id: Option<&str>) -> Answer {
        self.totals.faults += 1;
        match fault {
            Fault::Answer { status, code } => match code.as_deref() {
                Some(code @ ("OPERATION_DISPATCHED" | "OPERATION_PENDING")) => Answer::json(
                    status,
                    json!({
                        "HttpStatusCode": status,
                        "FlinksCode": code,
                        "Message": "The operation was dispatched and is processing",
                        "RequestId": request_id,
                    }),
                ),
                Some(code) => error(status, code, "Injected fault", request_id),
                None => Answer::json(
                    status,
                    json!({"HttpStatusCode": status, "Message": "Injected fault", "RequestId": request_id}),
                ),
            },
            Fault::RateLimited { retry_after_secs } => Answer::Json {
                status: 429,
                body: json!({
                    "HttpStatusCode": 429,
                    "FlinksCode": "TOO_MANY_REQUESTS",
                    "Message": "Too many requests: slow down",
                    "RequestId": request_id,
                }),
                retry_after: Some(retry_after_secs),
            },
            Fault::Reset => Answer::Reset,
            Fault::Slow { millis } => Answer::Slow(Duration::from_millis(millis)),
            Fault::MalformedJson => Answer::Malformed,
            fault @ (Fault::Redirect { .. }
            | Fault::HugeBody { .. }
            | Fault::StalledBody
            | Fault::MistypedEnvelope { .. }
            | Fault::InvalidUtf8
            | Fault::RetryAfterDate { .. }) => {
                Answer::Hostile(HostileAnswer::of(fault, request_id))
            }
            Fault::ExpireSession => {
                if let Some(session) = request_id.and_then(|id| self.sessions.get_mut(id)) {
                    session.expired = true;
                }
                self.totals.session_errors += 1;
                error(
                    401,
                    "SESSION_EXPIRED",
                    "The session has expired: authorize again",
                    request_id,
                )
            }
        }
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
        let call = stats.authorize_calls;
        let script = self.script(config, login);
        if let Some(fault) = self.fault(config, &script, Endpoint::Authorize, call) {
            return self.fault_answer(fault, None);
        }
        if script.invalid {
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
        Answer::json(
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
        let call = stats.investments_calls;
        let first = *stats.first_investments_at.get_or_insert(now);
        let deadline = first + config.poll_timeout;
        if now > deadline {
            self.violations.push(Violation::PollAfterDeadline {
                login: login.to_owned(),
                late_by_ms: millis(now - deadline),
            });
        }
        if let Some(succeeded_at) = stats.succeeded_at {
            stats.calls_after_success += 1;
            let excused = self.crashes.iter().any(|crash| {
                *crash + CRASH_LEAD >= succeeded_at && *crash <= succeeded_at + CRASH_WINDOW
            });
            if excused {
                self.totals.repeats_after_crash += 1;
            } else {
                // ms from the 200 to the nearest crash (negative: before it)
                let last_crash_ms = self
                    .crashes
                    .iter()
                    .map(|crash| {
                        if *crash >= succeeded_at {
                            i64::try_from(millis(*crash - succeeded_at)).unwrap_or(i64::MAX)
                        } else {
                            -i64::try_from(millis(succeeded_at - *crash)).unwrap_or(i64::MAX)
                        }
                    })
                    .min_by_key(|ms| ms.unsigned_abs());
                self.violations.push(Violation::PollAfterSuccess {
                    login: login.to_owned(),
                    after_ms: millis(now.saturating_duration_since(succeeded_at)),
                    last_crash_after_ms: last_crash_ms,
                });
            }
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
        let expired = session.expired
            || over_polls
            || now.saturating_duration_since(session.created) > config.session_ttl;
        if expired {
            session.expired = true;
            self.totals.session_errors += 1;
            return error(
                401,
                "SESSION_EXPIRED",
                "The session has expired: authorize again",
                Some(request_id),
            );
        }
        let pending = script.always_pending || stats.pending_served < script.pending;
        if let Some(fault) = self.fault(config, &script, Endpoint::Investments, call) {
            return self.fault_answer(fault, Some(request_id));
        }
        let Some(stats) = self.logins.get_mut(login) else {
            return error(
                500,
                "AGGREGATION_ERROR",
                "simulator lost its stats",
                Some(request_id),
            );
        };
        if pending {
            stats.pending_served += 1;
            self.totals.pending_answers += 1;
            return Answer::json(
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
        stats.succeeded_at.get_or_insert(now);
        self.totals.successes += 1;
        Answer::json(200, investments_payload(login, request_id))
    }
}

/// A Flinks error body.
pub fn error(status: u16, code: &str, message: &str, request_id: Option<&str>) -> Answer {
    Answer::json(
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
