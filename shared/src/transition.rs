//! The pure state machine: `plan` what a claimed job runs next, and compute the
//! `transition` a step's outcome causes. No I/O and no clock reads: time comes
//! in as a [`Tick`], so every rule is unit-tested with exact timestamps.

use std::time::Duration;

use crate::{JobSnapshot, JobState, Policy, StepError};

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
    /// `POST /Investments` within the session `request_id`.
    Poll {
        /// The session.
        request_id: String,
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

/// Why a step failed, already classified (see [`crate::classify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Same step again after a backoff.
    Transient,
    /// Authorize again, same deadline.
    SessionLost,
    /// Fail now: the end user must act.
    NeedsUser,
    /// Fail now: the request or the answer is malformed.
    BadRequest,
}

/// What happened when a step ran.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Authorize answered 200 with a session.
    Authorized {
        /// The session's `RequestId`.
        request_id: String,
    },
    /// /Investments answered 200 and the payload was stored.
    Ready,
    /// Still processing (202 `OPERATION_PENDING` or `OPERATION_DISPATCHED`).
    Pending,
    /// The step failed.
    Failed {
        /// How to react.
        kind: FailureKind,
        /// What was said.
        error: StepError,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
}

/// The kind of change, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionKind {
    /// Moved forward (authorized: polling next).
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
    /// Consecutive transient failures.
    pub attempts: u32,
    /// /Investments calls made.
    pub polls: u32,
    /// Sessions obtained.
    pub auths: u32,
    /// Transient failures retried in all.
    pub retries: u32,
    /// The error to keep on the job.
    pub error: Option<StepError>,
    /// Label of this step's outcome, e.g. `poll:202`.
    pub last: String,
}

/// Decides what a claimed job does: the step its state calls for, or
/// `timed_out` without a call when the deadline has already passed.
pub fn plan(job: &JobSnapshot, now_ms: u64) -> Plan {
    if let Some(deadline) = job.deadline_ms
        && now_ms >= deadline
    {
        let error = StepError {
            code: "POLL_TIMEOUT".into(),
            http_status: job.last.as_deref().filter(|l| l.ends_with(":202")).map(|_| 202),
            message: "still pending at the polling deadline (Flinks: poll for at most 30 minutes by default)".into(),
        };
        return Plan::Finish(finish(
            job,
            JobState::TimedOut,
            Some(error),
            "claim:deadline",
        ));
    }
    match (&job.state, &job.request_id) {
        (JobState::Polling, Some(request_id)) => Plan::Run(Step::Poll {
            request_id: request_id.clone(),
        }),
        _ => Plan::Run(Step::Authorize),
    }
}

/// The pure state machine: the transition `outcome` causes for `job` at `tick`.
pub fn transition(job: &JobSnapshot, outcome: Outcome, tick: Tick, policy: &Policy) -> Transition {
    let now = tick.now_ms;
    let step = match job.state {
        JobState::Polling => "poll",
        _ => "authorize",
    };
    match outcome {
        Outcome::Authorized { request_id } => Transition {
            kind: TransitionKind::Advance,
            state: JobState::Polling,
            due_ms: Some(now),
            request_id: Some(request_id),
            // The limit starts with the first /Investments call, which runs
            // right after this commit; written now so a crash in between
            // cannot restart the clock. A re-authorize keeps the original.
            deadline_ms: Some(job.deadline_ms.unwrap_or(now + millis(policy.poll_timeout))),
            attempts: 0,
            auths: job.auths + 1,
            last: "authorize:200".into(),
            ..carry(job)
        },
        Outcome::Ready => Transition {
            polls: job.polls + 1,
            last: "poll:200".into(),
            ..finish(job, JobState::Succeeded, None, "")
        },
        Outcome::Pending => {
            let polls = job.polls + u32::from(job.state == JobState::Polling);
            let next = now + millis(policy.poll_interval);
            let last = format!("{step}:202");
            // The next poll would pass the deadline: no more polls. The job
            // wakes once more at its deadline and ends `timed_out` there (see
            // `plan`), so it ends at its deadline, not up to an interval early.
            let due = match job.deadline_ms {
                Some(deadline) if next >= deadline => deadline,
                _ => next,
            };
            Transition {
                kind: TransitionKind::Snooze,
                due_ms: Some(due),
                attempts: 0,
                polls,
                last,
                ..carry(job)
            }
        }
        Outcome::Failed {
            kind,
            error,
            retry_after,
        } => {
            let last = format!("{step}:{}", error.code);
            let polls = job.polls + u32::from(job.state == JobState::Polling);
            match kind {
                FailureKind::NeedsUser | FailureKind::BadRequest => Transition {
                    polls,
                    ..finish(job, JobState::Failed, Some(error), &last)
                },
                FailureKind::SessionLost if job.state == JobState::Polling => Transition {
                    kind: TransitionKind::Reauthorize,
                    state: JobState::Authorizing,
                    due_ms: Some(now),
                    request_id: None,
                    attempts: 0,
                    polls,
                    error: Some(error),
                    last,
                    ..carry(job)
                },
                // A lost session while authorizing makes no sense: treat it as
                // a transient failure of Authorize.
                FailureKind::SessionLost | FailureKind::Transient => {
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
                    let due = now + millis(delay);
                    if let Some(deadline) = job.deadline_ms
                        && due >= deadline
                    {
                        return Transition {
                            attempts,
                            polls,
                            ..finish(job, JobState::TimedOut, Some(error), &last)
                        };
                    }
                    Transition {
                        kind: TransitionKind::Retry,
                        state: if job.state == JobState::Queued {
                            JobState::Authorizing
                        } else {
                            job.state
                        },
                        due_ms: Some(due),
                        attempts,
                        polls,
                        retries: job.retries + 1,
                        error: Some(error),
                        last,
                        ..carry(job)
                    }
                }
            }
        }
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
        attempts: job.attempts,
        polls: job.polls,
        auths: job.auths,
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
