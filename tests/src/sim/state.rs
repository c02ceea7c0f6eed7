//! The simulator's memory and its answers to Authorize and to every product.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::config::{Endpoint, Fault, Script, ScriptedFault, SimConfig};
use super::hostile::HostileAnswer;
use super::payload::product_payload;
use super::product::{CallKind, Product};
use super::stats::{LoginStats, ProductStats, Totals, Violation};

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

/// One call of a product, as the route parsed it.
#[derive(Debug, Clone)]
pub struct ProductCall {
    /// The product.
    pub product: Product,
    /// Its first call or an `…Async` poll.
    pub kind: CallKind,
    /// The session.
    pub request_id: String,
    /// The login the request names (Investments' body, Attributes' path);
    /// `None` for banking bodies, which name only the session.
    pub login: Option<String>,
}

#[derive(Debug)]
struct Session {
    login: String,
    created: Instant,
    expired: bool,
    products: HashMap<Product, SessionProduct>,
}

/// One product within one session.
#[derive(Debug, Default)]
struct SessionProduct {
    calls: u32,
    last_call: Option<Instant>,
    /// The first call answered 202 or 200: `…Async` polls may follow.
    first_call_answered: bool,
    succeeded_at: Option<Instant>,
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

    /// Records the arrival of any call (Authorize or a product).
    pub fn arrived(&mut self, at: Instant) {
        self.call_times.push(at);
    }

    /// The most calls (Authorize and products) that arrived within any `window`.
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
                expired: false,
                products: HashMap::new(),
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

    /// One call of a product at `now`: checks the contract, then answers
    /// from the login's script (faults, session expiry, pending count per
    /// login and product, then the 200).
    pub fn product_call(
        &mut self,
        config: &SimConfig,
        call: &ProductCall,
        has_key: bool,
        now: Instant,
    ) -> Answer {
        self.totals.product_calls += 1;
        if call.product == Product::Investments {
            self.totals.investments_calls += 1;
        }
        // Banking bodies carry no LoginId: the session says whose it is.
        let session_login = self.sessions.get(&call.request_id).map(|s| s.login.clone());
        let Some(login) = call.login.clone().or(session_login) else {
            self.totals.session_errors += 1;
            self.violations.push(Violation::CallWithoutSession {
                product: call.product,
                request_id: call.request_id.clone(),
            });
            return no_session(&call.request_id);
        };
        let answer = self.login_product_call(config, call, &login, has_key, now);
        if let Some(stats) = self.logins.get_mut(&login) {
            stats.mirror_investments();
        }
        answer
    }

    fn login_product_call(
        &mut self,
        config: &SimConfig,
        call: &ProductCall,
        login: &str,
        has_key: bool,
        now: Instant,
    ) -> Answer {
        let (product, request_id) = (call.product, call.request_id.as_str());
        let script = self.script(config, login);
        let stats = self.logins.entry(login.to_owned()).or_default();
        stats.auth_header_seen |= has_key;
        let seen = stats.products.entry(product).or_default();
        seen.calls += 1;
        seen.times.push(now);
        let call_number = seen.calls;
        let deadline = *seen.first_call_at.get_or_insert(now) + config.poll_timeout;
        if now > deadline {
            self.violations.push(Violation::PollAfterDeadline {
                login: login.to_owned(),
                product,
                late_by_ms: millis(now - deadline),
            });
        }
        let session = self.sessions.get(request_id).filter(|s| s.login == login);
        let succeeded_at = if product == Product::Investments {
            seen.succeeded_at
        } else {
            session
                .and_then(|s| s.products.get(&product))
                .and_then(|p| p.succeeded_at)
        };
        if let Some(succeeded_at) = succeeded_at {
            seen.calls_after_success += 1;
            match crash_excuse(&self.crashes, succeeded_at) {
                Ok(()) => self.totals.repeats_after_crash += 1,
                Err(last_crash_after_ms) => self.violations.push(Violation::PollAfterSuccess {
                    login: login.to_owned(),
                    product,
                    after_ms: millis(now.saturating_duration_since(succeeded_at)),
                    last_crash_after_ms,
                }),
            }
        }

        let Some(session) = self
            .sessions
            .get_mut(request_id)
            .filter(|s| s.login == login)
        else {
            self.totals.session_errors += 1;
            self.violations.push(if product == Product::Investments {
                Violation::InvestmentsWithoutSession {
                    login: login.to_owned(),
                }
            } else {
                Violation::CallWithoutSession {
                    product,
                    request_id: request_id.to_owned(),
                }
            });
            return no_session(request_id);
        };
        let accounts_detail_ready = session
            .products
            .get(&Product::AccountsDetail)
            .is_some_and(|p| p.succeeded_at.is_some());
        let ttl_passed = now.saturating_duration_since(session.created) > config.session_ttl;
        let in_session = session.products.entry(product).or_default();
        if let Some(last) = in_session.last_call {
            let gap = now.saturating_duration_since(last);
            seen.min_poll_spacing = Some(seen.min_poll_spacing.map_or(gap, |min| min.min(gap)));
            if gap + SPACING_TOLERANCE < config.min_poll_interval {
                self.violations.push(Violation::PollTooSoon {
                    login: login.to_owned(),
                    product,
                    gap_ms: millis(gap),
                });
            }
        }
        in_session.last_call = Some(now);
        in_session.calls += 1;
        let over_polls = script
            .expire_session_after_polls
            .is_some_and(|limit| in_session.calls > limit);
        if session.expired || over_polls || ttl_passed {
            session.expired = true;
            self.totals.session_errors += 1;
            return error(
                401,
                "SESSION_EXPIRED",
                "The session has expired: authorize again",
                Some(request_id),
            );
        }
        if call.kind == CallKind::Async && !in_session.first_call_answered {
            self.violations.push(Violation::AsyncBeforeFirstCall {
                login: login.to_owned(),
                product,
            });
            return error(
                400,
                "INVALID_REQUEST",
                &format!(
                    "No {product} operation for this RequestId: make the first call before polling its Async endpoint"
                ),
                Some(request_id),
            );
        }
        if product == Product::Attributes && !accounts_detail_ready {
            // What Flinks answers while GetAccountsDetail still processes;
            // not a step of the script's pending count.
            self.violations
                .push(Violation::AttributesBeforeAccountsDetail {
                    login: login.to_owned(),
                });
            self.totals.pending_answers += 1;
            return pending_answer(product, request_id);
        }
        let pending = script.always_pending || seen.pending_served < script.pending;
        let answer = match self.fault(config, &script, product.into(), call_number) {
            Some(fault) => self.fault_answer(fault, Some(request_id)),
            None if pending => {
                self.totals.pending_answers += 1;
                if let Some(seen) = self.product_stats(login, product) {
                    seen.pending_served += 1;
                }
                pending_answer(product, request_id)
            }
            None => {
                self.totals.successes += 1;
                if let Some(seen) = self.product_stats(login, product) {
                    seen.succeeded_at.get_or_insert(now);
                }
                if let Some(in_session) = self.session_product(request_id, product) {
                    in_session.succeeded_at.get_or_insert(now);
                }
                Answer::json(200, product_payload(product, login, request_id))
            }
        };
        let opened = matches!(
            answer,
            Answer::Json {
                status: 200 | 202,
                ..
            }
        );
        if call.kind == CallKind::First
            && opened
            && let Some(in_session) = self.session_product(request_id, product)
        {
            in_session.first_call_answered = true;
        }
        answer
    }

    fn product_stats(&mut self, login: &str, product: Product) -> Option<&mut ProductStats> {
        self.logins.get_mut(login)?.products.get_mut(&product)
    }

    fn session_product(
        &mut self,
        request_id: &str,
        product: Product,
    ) -> Option<&mut SessionProduct> {
        self.sessions
            .get_mut(request_id)?
            .products
            .get_mut(&product)
    }
}

/// `Ok` when a worker crash excuses a call after a success (see
/// [`CRASH_WINDOW`]); otherwise the nearest crash, in ms after the 200
/// (negative: before it).
fn crash_excuse(crashes: &[Instant], succeeded_at: Instant) -> Result<(), Option<i64>> {
    let excused = crashes
        .iter()
        .any(|crash| *crash + CRASH_LEAD >= succeeded_at && *crash <= succeeded_at + CRASH_WINDOW);
    if excused {
        return Ok(());
    }
    Err(crashes
        .iter()
        .map(|crash| {
            if *crash >= succeeded_at {
                i64::try_from(millis(*crash - succeeded_at)).unwrap_or(i64::MAX)
            } else {
                -i64::try_from(millis(succeeded_at - *crash)).unwrap_or(i64::MAX)
            }
        })
        .min_by_key(|ms| ms.unsigned_abs()))
}

fn no_session(request_id: &str) -> Answer {
    error(
        400,
        "SESSION_NONEXISTENT",
        "No session with this RequestId for this login",
        Some(request_id),
    )
}

/// The 202 of a product still processing.
fn pending_answer(product: Product, request_id: &str) -> Answer {
    let (rel, href) = product.pending_link();
    Answer::json(
        202,
        json!({
            "HttpStatusCode": 202,
            "FlinksCode": "OPERATION_PENDING",
            "Message": "Your operation is still processing",
            "RequestId": request_id,
            "Links": [{"rel": rel, "href": href, "example": null}],
        }),
    )
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
