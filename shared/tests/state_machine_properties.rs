//! Properties of the pure state machine, for any sequence of provider answers
//! (200, 202, transient with any `Retry-After` up to a year and beyond, a
//! lost session, needs-the-user, bad request), any non-decreasing clock and
//! any crashes between claim and commit: each property is named after the
//! invariant it checks. A job's life is played by `play`, which claims the
//! job when it is due (plus any lateness), asks `plan`, answers the step
//! from the sequence (cycled, so a short sequence is a provider that never
//! changes its mind) and applies the `transition`, the way the worker does.

use std::time::Duration;

use flinkq_shared::{
    Classification, JobId, JobSnapshot, JobState, LocalCode, LoginId, Outcome, Plan, Policy,
    Product, Step, StepError, Tick, Transition, bound_ms, plan, transition,
};
use proptest::prelude::*;

const START: u64 = 1_700_000_000_000;
/// More claims than any life within the bounds of `policy()` can take: time
/// advances by at least a 1 s interval every few claims, and the bounds are
/// at most 1200 s apart from the first claim.
const CLAIM_BUDGET: usize = 100_000;

/// What the provider answers a step.
#[derive(Debug, Clone)]
enum Answer {
    /// 200: a session (Authorize) or the payload (poll).
    Ok,
    /// 202 `OPERATION_PENDING`, to Authorize as well.
    Pending,
    /// 5xx, 429, `RETRY_LATER`…, with this `Retry-After` (seconds).
    Transient(Option<u64>),
    /// `SESSION_EXPIRED`.
    SessionLost,
    /// 203, `INVALID_LOGIN`.
    NeedsUser,
    /// 400 `INVALID_REQUEST`.
    BadRequest,
}

/// One claim of the job.
#[derive(Debug, Clone)]
struct Turn {
    answer: Answer,
    /// How long after it was due the job is claimed (ms).
    lateness_ms: u64,
    /// How long the call takes (ms).
    latency_ms: u64,
    /// The worker dies during the call (out of memory on the answer, a
    /// panic), before the commit.
    crash: bool,
    jitter: f64,
}

fn answer() -> impl Strategy<Value = Answer> {
    let retry_after = prop_oneof![
        Just(None),
        (0u64..120).prop_map(Some),
        Just(Some(31_536_000)),
        Just(Some(u64::MAX)),
    ];
    prop_oneof![
        1 => Just(Answer::Ok),
        4 => Just(Answer::Pending),
        3 => retry_after.prop_map(Answer::Transient),
        3 => Just(Answer::SessionLost),
        1 => Just(Answer::NeedsUser),
        1 => Just(Answer::BadRequest),
    ]
}

fn turn() -> impl Strategy<Value = Turn> {
    let lateness = prop_oneof![4 => 0u64..2_000, 1 => 0u64..600_000];
    (
        answer(),
        lateness,
        0u64..30_000,
        prop::bool::weighted(0.1),
        0.0..1.0f64,
    )
        .prop_map(|(answer, lateness_ms, latency_ms, crash, jitter)| Turn {
            answer,
            lateness_ms,
            latency_ms,
            crash,
            jitter,
        })
}

/// Any product: one stage, or two within one session (attributes).
fn product() -> impl Strategy<Value = Product> {
    prop::sample::select(Product::all().collect::<Vec<_>>())
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        1u64..30,
        1u64..600,
        1u64..600,
        1u64..120,
        1u32..12,
        1u32..6,
        1u32..6,
    )
        .prop_map(
            |(interval, poll_timeout, authorize_timeout, cap, attempts, sessions, claims)| Policy {
                poll_interval: Duration::from_secs(interval),
                poll_timeout: Duration::from_secs(poll_timeout),
                retry_base: Duration::from_millis(500),
                retry_cap: Duration::from_secs(cap),
                max_attempts: attempts,
                authorize_timeout: Duration::from_secs(authorize_timeout),
                max_sessions: sessions,
                max_claims: claims,
            },
        )
}

/// What happened at one claim.
#[derive(Debug, Clone)]
struct Claim {
    /// When it was claimed (ms).
    at: u64,
    /// The job as claimed.
    job: JobSnapshot,
    /// The call it made, if any.
    step: Option<Step>,
    /// The transition committed, if any (none after a crash).
    committed: Option<Transition>,
}

/// A job's whole life under `turns` (cycled) and `policy`.
#[derive(Debug)]
struct Life {
    claims: Vec<Claim>,
    /// The job as it ended (or as it was when the budget ran out).
    last: JobSnapshot,
}

fn fresh_job(product: Product) -> JobSnapshot {
    JobSnapshot {
        id: JobId::new(),
        login: LoginId::parse("5e115eac-1209-4f19-641c-08d6d484e2fe").expect("valid login"),
        product,
        batch: "b".into(),
        state: JobState::Queued,
        token: None,
        request_id: None,
        deadline_ms: None,
        stage: 0,
        stage_accepted: false,
        attempts: 0,
        polls: 0,
        auths: 0,
        sessions: 0,
        claims: 0,
        retries: 0,
        created_ms: START,
        started_ms: None,
        updated_ms: START,
        finished_ms: None,
        error: None,
        last: None,
        due_ms: Some(START),
    }
}

fn outcome(step: &Step, answer: &Answer) -> Outcome {
    let failed = |kind, code: &str, status, retry_after: Option<u64>| Outcome::Failed {
        kind,
        error: StepError {
            code: code.into(),
            http_status: Some(status),
            message: format!("{code} from the provider"),
        },
        retry_after: retry_after.map(Duration::from_secs),
    };
    match (answer, step) {
        (Answer::Ok, Step::Authorize) => Outcome::Authorized {
            request_id: "session".into(),
        },
        (Answer::Ok, Step::Poll { .. }) => Outcome::Ready,
        (Answer::Pending, _) => Outcome::Pending,
        (Answer::Transient(after), _) => {
            failed(Classification::Transient, "TOO_MANY_REQUESTS", 429, *after)
        }
        (Answer::SessionLost, _) => {
            failed(Classification::SessionLost, "SESSION_EXPIRED", 401, None)
        }
        (Answer::NeedsUser, _) => failed(Classification::NeedsUser, "INVALID_LOGIN", 401, None),
        (Answer::BadRequest, _) => failed(Classification::BadRequest, "INVALID_REQUEST", 400, None),
    }
}

/// The job record after `t` is committed at `now`, as commit.lua writes it.
fn apply(job: &JobSnapshot, t: &Transition, now: u64) -> JobSnapshot {
    JobSnapshot {
        state: t.state,
        request_id: t.request_id.clone(),
        deadline_ms: t.deadline_ms,
        stage: t.stage,
        stage_accepted: t.stage_accepted,
        attempts: t.attempts,
        polls: t.polls,
        auths: t.auths,
        sessions: t.sessions,
        retries: t.retries,
        error: t.error.clone(),
        last: Some(t.last.clone()),
        claims: 0,
        updated_ms: now,
        finished_ms: t.state.is_terminal().then_some(now),
        due_ms: t.due_ms,
        ..job.clone()
    }
}

fn play(turns: &[Turn], policy: &Policy, product: Product) -> Life {
    let mut job = fresh_job(product);
    let mut clock = START;
    let mut claims = Vec::new();
    for turn in turns.iter().cycle().take(CLAIM_BUDGET) {
        if job.state.is_terminal() {
            break;
        }
        // claim.lua: when due (or later), one more claim, clock started once
        let at = clock.max(job.due_ms.unwrap_or(clock)) + turn.lateness_ms;
        clock = at;
        job.claims += 1;
        job.started_ms.get_or_insert(at);
        let claimed = job.clone();
        let (step, t) = match plan(&job, at, policy) {
            Plan::Finish(t) => (None, t),
            Plan::Run(step) => {
                let after = at + turn.latency_ms;
                let tick = Tick {
                    now_ms: after,
                    jitter: turn.jitter,
                };
                clock = after;
                let t = transition(&job, outcome(&step, &turn.answer), tick, policy);
                (Some(step), t)
            }
        };
        // a crash: the call (if any) was made, nothing was committed, and
        // the lease expires; the job is due again (begin.lua's not_before
        // keeps a crashed poll's successor an interval away)
        let committed = (!turn.crash || step.is_none()).then_some(t);
        match &committed {
            Some(t) => job = apply(&job, t, clock),
            None => {
                if matches!(step, Some(Step::Poll { .. })) {
                    job.due_ms = Some(at + millis(policy.poll_interval));
                }
            }
        }
        claims.push(Claim {
            at,
            job: claimed,
            step,
            committed,
        });
    }
    Life { claims, last: job }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// No call (poll, or Authorize after a lost session) comes sooner than
    /// the poll interval after a poll that did not finish its stage (only a
    /// stage's 200 lets the next stage's first call come right away).
    #[test]
    fn no_call_comes_sooner_than_the_poll_interval_after_a_poll(
        turns in prop::collection::vec(turn(), 1..48),
        policy in policy(),
        product in product(),
    ) {
        let life = play(&turns, &policy, product);
        let mut last_poll: Option<u64> = None;
        for claim in &life.claims {
            let Some(step) = &claim.step else { continue };
            if let Some(poll) = last_poll {
                prop_assert!(
                    claim.at >= poll + millis(policy.poll_interval),
                    "{} at {} only {} ms after the poll at {poll}",
                    step.name(), claim.at, claim.at - poll
                );
            }
            if matches!(step, Step::Poll { .. }) {
                let stage_done = claim
                    .committed
                    .as_ref()
                    .is_some_and(|t| t.last == "poll:200");
                last_poll = (!stage_done).then_some(claim.at);
            }
        }
    }

    /// A stage runs only once every earlier stage answered 200 in the same
    /// session, and a new session starts again at the first stage.
    #[test]
    fn a_later_stage_runs_only_after_the_earlier_ones_in_the_same_session(
        turns in prop::collection::vec(turn(), 1..48),
        policy in policy(),
        product in product(),
    ) {
        let life = play(&turns, &policy, product);
        // stages done (answered 200) in the current session
        let mut done: u8 = 0;
        for claim in &life.claims {
            if let Some(Step::Poll { stage, .. }) = &claim.step {
                prop_assert_eq!(*stage, done, "stage {} ran with {} done", stage, done);
                prop_assert!(usize::from(*stage) < product.stages().len());
            }
            if let Some(t) = &claim.committed {
                if t.last == "poll:200" {
                    done += 1;
                } else if t.request_id.is_none() || t.last == "authorize:200" {
                    // the session is gone, or a new one began
                    done = 0;
                }
                prop_assert_eq!(t.stage, if t.state.is_terminal() { t.stage } else { done });
            }
        }
    }

    /// Every job reaches a terminal state, and by its bound: no step is
    /// scheduled past the bound (polling deadline, or the authorize deadline
    /// before a session), and a job claimed at or after it ends without a call.
    #[test]
    fn every_job_reaches_a_terminal_state_by_its_bound(
        turns in prop::collection::vec(turn(), 1..48),
        policy in policy(),
        product in product(),
    ) {
        let life = play(&turns, &policy, product);
        prop_assert!(
            life.last.state.is_terminal(),
            "still {} after {} claims", life.last.state, life.claims.len()
        );
        for claim in &life.claims {
            let bound = bound_ms(&claim.job, &policy).expect("a claimed job has a bound");
            if claim.at >= bound {
                prop_assert!(claim.step.is_none(), "called {:?} at/after its bound", claim.step);
                let t = claim.committed.as_ref();
                if let Some(t) = t.filter(|_| claim.job.claims <= policy.max_claims) {
                    prop_assert_eq!(t.state, JobState::TimedOut);
                }
            }
            if let Some(t) = &claim.committed {
                let after = apply(&claim.job, t, claim.at);
                if let (Some(due), Some(bound)) = (t.due_ms, bound_ms(&after, &policy)) {
                    prop_assert!(due <= bound, "due {due} past the bound {bound}: {t:?}");
                }
            }
        }
    }

    /// Consecutive transient failures never exceed `max_attempts`, sessions
    /// of a run never exceed `max_sessions`, and a job claimed more than
    /// `max_claims` times without a commit makes no call and fails as a
    /// poison pill.
    #[test]
    fn attempts_sessions_and_claims_never_exceed_their_limits(
        turns in prop::collection::vec(turn(), 1..48),
        policy in policy(),
        product in product(),
    ) {
        let life = play(&turns, &policy, product);
        let mut authorized = 0;
        for claim in &life.claims {
            prop_assert!(claim.job.attempts < policy.max_attempts);
            prop_assert!(claim.job.sessions <= policy.max_sessions);
            if claim.job.claims > policy.max_claims {
                prop_assert!(claim.step.is_none(), "a poison pill made a call");
                if let Some(t) = &claim.committed {
                    prop_assert_eq!(t.state, JobState::Failed);
                    prop_assert_eq!(
                        t.error.as_ref().map(|e| e.code.as_str()),
                        Some(LocalCode::PoisonPill.as_str())
                    );
                }
            }
            if let Some(t) = &claim.committed {
                prop_assert!(t.attempts <= policy.max_attempts);
                prop_assert!(t.sessions <= policy.max_sessions);
                authorized += u32::from(t.last == "authorize:200");
            }
        }
        prop_assert!(authorized <= policy.max_sessions, "{authorized} sessions");
        prop_assert!(life.last.sessions <= policy.max_sessions);
    }
}
