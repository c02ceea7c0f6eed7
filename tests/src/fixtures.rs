//! Transitions tests apply by hand to a claimed job, computed by the real
//! state machine (never built field by field).

use flinkq_shared::{
    Classification, JobSnapshot, Outcome, Policy, StepError, Tick, Transition, transition,
};

/// What the state machine does with Flinks' 401 `INVALID_LOGIN` for `job`
/// at `now_ms`: the job fails for good (a dead letter).
pub fn invalid_login(job: &JobSnapshot, now_ms: u64) -> Transition {
    let outcome = Outcome::Failed {
        kind: Classification::NeedsUser,
        error: StepError {
            code: "INVALID_LOGIN".into(),
            http_status: Some(401),
            message: "bad".into(),
        },
        retry_after: None,
    };
    let tick = Tick {
        now_ms,
        jitter: 0.0,
    };
    transition(job, outcome, tick, &Policy::default())
}
