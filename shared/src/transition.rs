//! The pure state machine: `plan` what a claimed job runs next, and compute the
//! `transition` a step's outcome causes. No I/O and no clock reads: time comes
//! in as a [`Tick`], so every rule is unit-tested with exact timestamps.

use std::time::Duration;

use crate::{Classification, JobSnapshot, JobState, LocalCode, Policy, StepError};

/// The moment a decision is made, supplied by the caller: milliseconds since
/// the Unix epoch on Redis' clock, and one uniform sample in `[0, 1)` for the
/// retry jitter (random in the worker, fixed in tests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tick {
    /// Now, in ms since the epoch (Redis clock).
    pub now_ms: u64,
    /// Jitter sample in `[0, 1)`.
    pub jitter: f64,
}

/// The HTTP call a claimed job makes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `POST /Authorize`: exchange the loginId for a session.
    Authorize,
    /// A data call of the job's product within the session `request_id`:
    /// stage `stage`'s first call, or its poll form once `accepted`.
    Poll {
        /// The session.
        request_id: String,
        /// The product's stage.
        stage: u8,
        /// The stage's first call answered 202 already.
        accepted: bool,
    },
}

impl Step {
    /// `authorize` or `poll`, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Authorize => "authorize",
            Step::Poll { .. } => "poll",
        }
    }
}

/// What a worker does with a job it just claimed.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Make this call.
    Run(Step),
    /// Make no call: apply this transition (the deadline already passed).
    Finish(Transition),
}

/// What happened when a step ran.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Authorize answered 200 with a session.
    Authorized {
        /// The session's `RequestId`.
        request_id: String,
    },
    /// The data call answered 200: the stage is done, and on the last
    /// stage the payload is stored.
    Ready,
    /// Still processing (202 `OPERATION_PENDING` or `OPERATION_DISPATCHED`).
    Pending,
    /// The step failed.
    Failed {
        /// How to react: [`Classification::Transient`],
        /// [`Classification::SessionLost`], or a fatal one
        /// ([`Classification::NeedsUser`], [`Classification::BadRequest`]).
        kind: Classification,
        /// What was said.
        error: StepError,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
}

/// The kind of change, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionKind {
    /// Moved forward (authorized: polling next; a stage done: the next one).
    Advance,
    /// Still pending: polled again after the interval. Never burns a retry.
    Snooze,
    /// Transient failure: same step after a backoff.
    Retry,
    /// Session lost: authorize again.
    Reauthorize,
    /// Reached a terminal state.
    Finish,
}

impl TransitionKind {
    /// Every kind (the `outcome` label values of a committed step).
    pub const ALL: [TransitionKind; 5] = [
        TransitionKind::Advance,
        TransitionKind::Snooze,
        TransitionKind::Retry,
        TransitionKind::Reauthorize,
        TransitionKind::Finish,
    ];

    /// The kind as a log field and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionKind::Advance => "advance",
            TransitionKind::Snooze => "snooze",
            TransitionKind::Retry => "retry",
            TransitionKind::Reauthorize => "reauthorize",
            TransitionKind::Finish => "finish",
        }
    }
}

/// The job's next record, computed from its current one. Applied by the worker
/// in one place, atomically, through the store's `commit` script.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// What kind of change this is.
    pub kind: TransitionKind,
    /// The next state.
    pub state: JobState,
    /// When the next step may run; `None` for terminal states.
    pub due_ms: Option<u64>,
    /// The session to keep.
    pub request_id: Option<String>,
    /// The polling deadline.
    pub deadline_ms: Option<u64>,
    /// The product's stage the job is at.
    pub stage: u8,
    /// The stage's first call answered 202.
    pub stage_accepted: bool,
    /// Consecutive transient failures.
    pub attempts: u32,
    /// Data calls made.
    pub polls: u32,
    /// Sessions obtained, over the job's life.
    pub auths: u32,
    /// Sessions obtained in this run (see [`JobSnapshot::sessions`]).
    pub sessions: u32,
    /// Transient failures retried in all.
    pub retries: u32,
    /// The error to keep on the job.
    pub error: Option<StepError>,
    /// Label of this step's outcome, e.g. `poll:202`.
    pub last: String,
}

/// Decides what a claimed job does: the step its state calls for, or a
/// terminal transition without a call when the job is a poison pill (claimed
/// more than `max_claims` times without a commit) or past its bound (see
/// [`bound_ms`]).
pub fn plan(job: &JobSnapshot, now_ms: u64, policy: &Policy) -> Plan {
    if let Some(end) = poison_pill(job, policy).or_else(|| past_bound(job, now_ms, policy)) {
        return Plan::Finish(end);
    }
    match (&job.state, &job.request_id) {
        (JobState::Polling, Some(request_id)) => Plan::Run(Step::Poll {
            request_id: request_id.clone(),
            stage: job.stage,
            accepted: job.stage_accepted,
        }),
        _ => Plan::Run(Step::Authorize),
    }
}

/// `failed` with `POISON_PILL` for a job claimed more than `max_claims`
/// times without a commit: each of its workers died on it, so the next one
/// would too.
fn poison_pill(job: &JobSnapshot, policy: &Policy) -> Option<Transition> {
    if job.claims <= policy.max_claims {
        return None;
    }
    let error = StepError {
        code: LocalCode::PoisonPill.as_str().into(),
        http_status: None,
        message: format!(
            "claimed {} times without a commit (FLINKQ_MAX_CLAIMS={}): the worker died on it \
             each time (out of memory, a panic, a kill); find the cause in the worker logs, \
             then `flinkq dead retry`",
            job.claims, policy.max_claims
        ),
    };
    Some(finish(job, JobState::Failed, Some(error), "claim:poison"))
}

/// `timed_out` for a job claimed at or after its bound: `POLL_TIMEOUT` past
/// the polling deadline, `AUTHORIZE_TIMEOUT` past the authorize deadline.
fn past_bound(job: &JobSnapshot, now_ms: u64, policy: &Policy) -> Option<Transition> {
    if now_ms < bound_ms(job, policy)? {
        return None;
    }
    let pending = job
        .last
        .as_deref()
        .filter(|l| l.ends_with(":202"))
        .map(|_| 202);
    let (error, last) = if job.deadline_ms.is_some() {
        let error = StepError {
            code: LocalCode::PollTimeout.as_str().into(),
            http_status: pending,
            message: "still pending at the polling deadline (Flinks: poll for at most 30 minutes by default)".into(),
        };
        (error, "claim:deadline")
    } else {
        let error = StepError {
            code: LocalCode::AuthorizeTimeout.as_str().into(),
            http_status: pending,
            message: format!(
                "no session within FLINKQ_AUTHORIZE_TIMEOUT ({}) of the first claim; last answer: {}",
                humantime::format_duration(policy.authorize_timeout),
                job.last.as_deref().unwrap_or("none")
            ),
        };
        (error, "claim:authorize_deadline")
    };
    Some(finish(job, JobState::TimedOut, Some(error), last))
}

/// When the job must have ended (ms, Redis clock): its polling deadline once
/// it has one, else its authorize deadline, `authorize_timeout` after its
/// first claim. `None` for a job never claimed. No transition schedules a
/// step past it, and `plan` finishes a job claimed at or after it.
pub fn bound_ms(job: &JobSnapshot, policy: &Policy) -> Option<u64> {
    job.deadline_ms.or_else(|| {
        job.started_ms
            .map(|started| started.saturating_add(millis(policy.authorize_timeout)))
    })
}

/// The pure state machine: the transition `outcome` causes for `job` at `tick`.
pub fn transition(job: &JobSnapshot, outcome: Outcome, tick: Tick, policy: &Policy) -> Transition {
    match outcome {
        Outcome::Authorized { request_id } => on_authorized(job, request_id, tick.now_ms, policy),
        Outcome::Ready => on_ready(job, tick.now_ms, policy),
        Outcome::Pending => on_pending(job, tick.now_ms, policy),
        Outcome::Failed {
            kind,
            error,
            retry_after,
        } => on_failed(job, kind, error, retry_after, tick, policy),
    }
}

/// A session: poll next, right away.
fn on_authorized(job: &JobSnapshot, request_id: String, now: u64, policy: &Policy) -> Transition {
    // The limit starts with the first data call, which runs right
    // after this commit; written now so a crash in between cannot restart
    // the clock. A re-authorize keeps the original.
    let deadline = job
        .deadline_ms
        .unwrap_or(now.saturating_add(millis(policy.poll_timeout)));
    Transition {
        kind: TransitionKind::Advance,
        state: JobState::Polling,
        // a session that came after the deadline: wake at the deadline
        // (already past) and end there, never scheduled past it
        due_ms: Some(now.min(deadline)),
        request_id: Some(request_id),
        deadline_ms: Some(deadline),
        // a new session starts at the first stage: a later stage needs the
        // earlier ones done in the same session
        stage: 0,
        stage_accepted: false,
        attempts: 0,
        auths: job.auths + 1,
        sessions: job.sessions + 1,
        last: "authorize:200".into(),
        ..carry(job)
    }
}

/// A 200: the next stage right away, in the same session; after the last
/// stage the payload is stored and the job succeeded.
fn on_ready(job: &JobSnapshot, now: u64, policy: &Policy) -> Transition {
    if job.state == JobState::Polling && !job.product.is_last_stage(job.stage) {
        return Transition {
            kind: TransitionKind::Advance,
            state: JobState::Polling,
            // a stage done after the deadline wakes at the deadline and ends
            due_ms: Some(spaced_until_bound(job, now, Duration::ZERO, policy)),
            stage: job.stage + 1,
            stage_accepted: false,
            attempts: 0,
            polls: job.polls + 1,
            last: "poll:200".into(),
            ..carry(job)
        };
    }
    Transition {
        polls: job.polls + 1,
        last: "poll:200".into(),
        ..finish(job, JobState::Succeeded, None, "")
    }
}

/// A failed step, by its classification.
fn on_failed(
    job: &JobSnapshot,
    kind: Classification,
    error: StepError,
    retry_after: Option<Duration>,
    tick: Tick,
    policy: &Policy,
) -> Transition {
    let last = format!("{}:{}", step_name(job), error.code);
    match kind {
        Classification::SessionLost if job.state == JobState::Polling => {
            on_session_lost(job, error, last, tick.now_ms, policy)
        }
        // A lost session while authorizing makes no sense: treat it as a
        // transient failure of Authorize. A "pending" failure is never built
        // by the client (a 202 is `Outcome::Pending`); retrying it is safe.
        Classification::SessionLost | Classification::Transient | Classification::Pending => {
            on_transient(job, error, retry_after, last, tick, policy)
        }
        // A "successful" failure is never built either: the client calls an
        // unusable 200 a bad request, and so does this.
        Classification::NeedsUser | Classification::BadRequest | Classification::Success => {
            on_fatal(job, error, &last)
        }
    }
}

/// The end user must act, or the request is wrong: fail now.
fn on_fatal(job: &JobSnapshot, error: StepError, last: &str) -> Transition {
    Transition {
        polls: job.polls + u32::from(job.state == JobState::Polling),
        ..finish(job, JobState::Failed, Some(error), last)
    }
}

/// 202: the same step again after one poll interval — Authorize too, so a
/// provider answering 202 to Authorize forever is asked once per interval
/// until the authorize deadline. Never burns a retry.
fn on_pending(job: &JobSnapshot, now: u64, policy: &Policy) -> Transition {
    let polls = job.polls + u32::from(job.state == JobState::Polling);
    Transition {
        kind: TransitionKind::Snooze,
        state: next_state(job),
        due_ms: Some(spaced_until_bound(job, now, policy.poll_interval, policy)),
        // a data call answered 202: from now on the stage is polled in its
        // poll form
        stage_accepted: job.stage_accepted || job.state == JobState::Polling,
        attempts: 0,
        polls,
        last: format!("{}:202", step_name(job)),
        ..carry(job)
    }
}

/// The session is gone: authorize again, but no sooner than one poll
/// interval after the poll that lost it (else a login whose sessions always
/// expire makes an Authorize + poll pair as fast as the network allows), and
/// no more than `max_sessions` times in one run.
fn on_session_lost(
    job: &JobSnapshot,
    error: StepError,
    last: String,
    now: u64,
    policy: &Policy,
) -> Transition {
    let polls = job.polls + 1;
    if job.sessions >= policy.max_sessions {
        let message = format!(
            "gave up after {} sessions (FLINKQ_MAX_SESSIONS), each lost before the payload; last: {}",
            job.sessions, error.message
        );
        let error = StepError { message, ..error };
        return Transition {
            polls,
            ..finish(job, JobState::Failed, Some(error), &last)
        };
    }
    Transition {
        kind: TransitionKind::Reauthorize,
        state: JobState::Authorizing,
        due_ms: Some(spaced_until_bound(job, now, policy.poll_interval, policy)),
        request_id: None,
        stage: 0,
        stage_accepted: false,
        attempts: 0,
        polls,
        error: Some(error),
        last,
        ..carry(job)
    }
}

/// A transient failure: the same step after a backoff (at least
/// `Retry-After`, capped at `retry_cap`; a poll at least the interval), until
/// `max_attempts`; a retry that would come at or after the job's bound ends
/// it `timed_out` now, keeping the error.
fn on_transient(
    job: &JobSnapshot,
    error: StepError,
    retry_after: Option<Duration>,
    last: String,
    tick: Tick,
    policy: &Policy,
) -> Transition {
    let polls = job.polls + u32::from(job.state == JobState::Polling);
    let attempts = job.attempts + 1;
    if attempts >= policy.max_attempts {
        let message = format!(
            "gave up after {attempts} consecutive transient failures; last: {}",
            error.message
        );
        let error = StepError { message, ..error };
        return Transition {
            attempts,
            polls,
            ..finish(job, JobState::Failed, Some(error), &last)
        };
    }
    let mut delay = policy.retry_delay(attempts, tick.jitter, retry_after);
    if job.state == JobState::Polling {
        // A retried poll is still a poll: never closer than the interval.
        delay = delay.max(policy.poll_interval);
    }
    let due = tick.now_ms.saturating_add(millis(delay));
    if due >= job_bound(job, tick.now_ms, policy) {
        return Transition {
            attempts,
            polls,
            ..finish(job, JobState::TimedOut, Some(error), &last)
        };
    }
    Transition {
        kind: TransitionKind::Retry,
        state: next_state(job),
        due_ms: Some(due),
        attempts,
        polls,
        retries: job.retries + 1,
        error: Some(error),
        last,
        ..carry(job)
    }
}

/// `now + wait`, or the job's bound if that comes first: the job then wakes
/// once more at its bound and `plan` ends it there, without a call.
fn spaced_until_bound(job: &JobSnapshot, now: u64, wait: Duration, policy: &Policy) -> u64 {
    now.saturating_add(millis(wait))
        .min(job_bound(job, now, policy))
}

/// [`bound_ms`] of a claimed job (a snapshot without `started` counts from now).
fn job_bound(job: &JobSnapshot, now: u64, policy: &Policy) -> u64 {
    bound_ms(job, policy).unwrap_or_else(|| now.saturating_add(millis(policy.authorize_timeout)))
}

/// The step the job's state calls for, as a label.
fn step_name(job: &JobSnapshot) -> &'static str {
    match job.state {
        JobState::Polling => "poll",
        _ => "authorize",
    }
}

/// A queued job that ran a step is authorizing from then on.
fn next_state(job: &JobSnapshot) -> JobState {
    if job.state == JobState::Queued {
        JobState::Authorizing
    } else {
        job.state
    }
}

/// The job's current record as a no-op transition, to build changes from.
fn carry(job: &JobSnapshot) -> Transition {
    Transition {
        kind: TransitionKind::Snooze,
        state: job.state,
        due_ms: None,
        request_id: job.request_id.clone(),
        deadline_ms: job.deadline_ms,
        stage: job.stage,
        stage_accepted: job.stage_accepted,
        attempts: job.attempts,
        polls: job.polls,
        auths: job.auths,
        sessions: job.sessions,
        retries: job.retries,
        error: job.error.clone(),
        last: job.last.clone().unwrap_or_default(),
    }
}

fn finish(job: &JobSnapshot, state: JobState, error: Option<StepError>, last: &str) -> Transition {
    Transition {
        kind: TransitionKind::Finish,
        state,
        due_ms: None,
        error,
        last: last.into(),
        ..carry(job)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "transition_tests.rs"]
mod tests;
