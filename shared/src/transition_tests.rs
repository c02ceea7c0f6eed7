use super::*;
use crate::{JobId, LoginId, Product};

const NOW: u64 = 1_700_000_000_000;
const SEC: u64 = 1_000;

fn policy() -> Policy {
    Policy {
        poll_interval: Duration::from_secs(10),
        poll_timeout: Duration::from_secs(30 * 60),
        retry_base: Duration::from_secs(1),
        retry_cap: Duration::from_secs(60),
        max_attempts: 5,
        authorize_timeout: Duration::from_secs(30 * 60),
        max_sessions: 3,
        max_claims: 5,
    }
}

fn tick(now_ms: u64) -> Tick {
    Tick {
        now_ms,
        jitter: 0.5,
    }
}

fn job(state: JobState) -> JobSnapshot {
    JobSnapshot {
        id: JobId::new(),
        login: LoginId::parse("5e115eac-1209-4f19-641c-08d6d484e2fe").expect("valid"),
        product: Product::DEFAULT,
        batch: "b".into(),
        state,
        token: None,
        request_id: None,
        deadline_ms: None,
        stage: 0,
        stage_accepted: false,
        attempts: 0,
        polls: 0,
        auths: 0,
        sessions: 0,
        claims: 1,
        retries: 0,
        created_ms: NOW - 60 * SEC,
        started_ms: None,
        updated_ms: NOW - SEC,
        finished_ms: None,
        error: None,
        last: None,
        due_ms: None,
    }
}

fn polling(deadline_ms: u64) -> JobSnapshot {
    JobSnapshot {
        request_id: Some("req-1".into()),
        deadline_ms: Some(deadline_ms),
        auths: 1,
        sessions: 1,
        ..job(JobState::Polling)
    }
}

fn failure(kind: Classification, code: &str, status: u16) -> Outcome {
    Outcome::Failed {
        kind,
        error: StepError {
            code: code.into(),
            http_status: Some(status),
            message: format!("{code} said Flinks"),
        },
        retry_after: None,
    }
}

#[test]
fn queued_and_authorizing_jobs_authorize_polling_jobs_poll() {
    assert_eq!(
        plan(&job(JobState::Queued), NOW, &policy()),
        Plan::Run(Step::Authorize)
    );
    assert_eq!(
        plan(&job(JobState::Authorizing), NOW, &policy()),
        Plan::Run(Step::Authorize)
    );
    assert_eq!(
        plan(&polling(NOW + SEC), NOW, &policy()),
        Plan::Run(Step::Poll {
            request_id: "req-1".into(),
            stage: 0,
            accepted: false,
        })
    );
}

#[test]
fn a_job_claimed_after_its_deadline_times_out_without_a_call() {
    let Plan::Finish(t) = plan(&polling(NOW), NOW, &policy()) else {
        panic!("expected Finish")
    };
    assert_eq!(t.state, JobState::TimedOut);
    assert_eq!(
        t.error.as_ref().map(|e| e.code.as_str()),
        Some("POLL_TIMEOUT")
    );
}

#[test]
fn authorized_sets_the_deadline_once_and_polls_now() {
    let t = transition(
        &job(JobState::Queued),
        Outcome::Authorized {
            request_id: "req-9".into(),
        },
        tick(NOW),
        &policy(),
    );
    assert_eq!(t.kind, TransitionKind::Advance);
    assert_eq!(t.state, JobState::Polling);
    assert_eq!(t.due_ms, Some(NOW));
    assert_eq!(t.request_id.as_deref(), Some("req-9"));
    assert_eq!(t.deadline_ms, Some(NOW + 30 * 60 * SEC));
    assert_eq!(t.auths, 1);

    // re-authorizing after a lost session keeps the original deadline
    let lost = JobSnapshot {
        deadline_ms: Some(NOW + 5 * SEC),
        ..job(JobState::Authorizing)
    };
    let t = transition(
        &lost,
        Outcome::Authorized {
            request_id: "req-10".into(),
        },
        tick(NOW),
        &policy(),
    );
    assert_eq!(t.deadline_ms, Some(NOW + 5 * SEC));
}

#[test]
fn pending_is_a_snooze_that_never_burns_a_retry() {
    let before = JobSnapshot {
        attempts: 2,
        polls: 4,
        ..polling(NOW + 600 * SEC)
    };
    let t = transition(&before, Outcome::Pending, tick(NOW), &policy());
    assert_eq!(t.kind, TransitionKind::Snooze);
    assert_eq!(t.state, JobState::Polling);
    assert_eq!(t.due_ms, Some(NOW + 10 * SEC));
    assert_eq!(t.attempts, 0);
    assert_eq!(t.retries, 0);
    assert_eq!(t.polls, 5);
    assert_eq!(t.last, "poll:202");
}

#[test]
fn pending_waits_for_the_deadline_when_the_next_poll_would_pass_it() {
    let deadline = NOW + 9 * SEC;
    let t = transition(&polling(deadline), Outcome::Pending, tick(NOW), &policy());
    assert_eq!(t.kind, TransitionKind::Snooze);
    assert_eq!(t.state, JobState::Polling);
    assert_eq!(
        t.due_ms,
        Some(deadline),
        "wakes at the deadline, not later, not a poll"
    );
    // exactly on the deadline is too late for a poll as well
    let t = transition(
        &polling(NOW + 10 * SEC),
        Outcome::Pending,
        tick(NOW),
        &policy(),
    );
    assert_eq!(t.due_ms, Some(NOW + 10 * SEC));
    let t = transition(
        &polling(NOW + 10 * SEC + 1),
        Outcome::Pending,
        tick(NOW),
        &policy(),
    );
    assert_eq!(t.due_ms, Some(NOW + 10 * SEC));

    // claimed at the deadline: timed out, no call
    let waiting = JobSnapshot {
        last: Some("poll:202".into()),
        ..polling(deadline)
    };
    let Plan::Finish(t) = plan(&waiting, deadline, &policy()) else {
        panic!("expected Finish at the deadline")
    };
    assert_eq!(t.state, JobState::TimedOut);
    let error = t.error.expect("error");
    assert_eq!(
        (error.code.as_str(), error.http_status),
        ("POLL_TIMEOUT", Some(202))
    );
}

#[test]
fn ready_succeeds_and_clears_the_error() {
    let before = JobSnapshot {
        error: Some(StepError {
            code: "RETRY_LATER".into(),
            http_status: Some(401),
            message: "later".into(),
        }),
        ..polling(NOW + SEC)
    };
    let t = transition(&before, Outcome::Ready, tick(NOW), &policy());
    assert_eq!(t.state, JobState::Succeeded);
    assert_eq!(t.kind, TransitionKind::Finish);
    assert_eq!(t.error, None);
    assert_eq!(t.polls, 1);
}

#[test]
fn transient_retries_the_same_step_with_backoff_from_the_stored_attempts() {
    let before = JobSnapshot {
        attempts: 2,
        ..polling(NOW + 600 * SEC)
    };
    let t = transition(
        &before,
        failure(Classification::Transient, "RETRY_LATER", 401),
        tick(NOW),
        &policy(),
    );
    assert_eq!(t.kind, TransitionKind::Retry);
    assert_eq!(t.state, JobState::Polling);
    assert_eq!(t.attempts, 3);
    assert_eq!(t.retries, 1);
    // attempt 3: ceiling 4 s, jitter 0.5 -> 2 s; but a poll waits the interval
    assert_eq!(t.due_ms, Some(NOW + 10 * SEC));
    let later = JobSnapshot {
        attempts: 5,
        ..polling(NOW + 600 * SEC)
    };
    let policy = Policy {
        max_attempts: 10,
        ..policy()
    };
    let t = transition(
        &later,
        failure(Classification::Transient, "HTTP_503", 503),
        tick(NOW),
        &policy,
    );
    // attempt 6: ceiling 32 s, jitter 0.5 -> 16 s, longer than the interval
    assert_eq!(t.due_ms, Some(NOW + 16 * SEC));
    assert_eq!(t.request_id.as_deref(), Some("req-1"));

    let t = transition(
        &job(JobState::Queued),
        failure(Classification::Transient, "HTTP_503", 503),
        tick(NOW),
        &policy,
    );
    assert_eq!(t.state, JobState::Authorizing);
    // an Authorize retry only waits its backoff: attempt 1, ceiling 1 s, jitter 0.5
    assert_eq!(t.due_ms, Some(NOW + SEC / 2));
}

#[test]
fn transient_honours_retry_after() {
    let outcome = Outcome::Failed {
        kind: Classification::Transient,
        error: StepError {
            code: "TOO_MANY_REQUESTS".into(),
            http_status: Some(429),
            message: "slow down".into(),
        },
        retry_after: Some(Duration::from_secs(20)),
    };
    let t = transition(&polling(NOW + 600 * SEC), outcome, tick(NOW), &policy());
    assert_eq!(t.due_ms, Some(NOW + 20 * SEC));
    assert_eq!(t.state, JobState::Polling);
}

#[test]
fn transient_never_retries_past_the_deadline_or_the_attempt_limit() {
    let outcome = failure(Classification::Transient, "RETRY_LATER", 401);
    let t = transition(&polling(NOW + 100), outcome.clone(), tick(NOW), &policy());
    assert_eq!(t.state, JobState::TimedOut);
    assert_eq!(
        t.error.as_ref().map(|e| e.code.as_str()),
        Some("RETRY_LATER")
    );

    let exhausted = JobSnapshot {
        attempts: 4,
        ..job(JobState::Authorizing)
    };
    let t = transition(&exhausted, outcome, tick(NOW), &policy());
    assert_eq!(t.state, JobState::Failed);
    assert!(
        t.error
            .as_ref()
            .is_some_and(|e| e.message.contains("gave up after 5"))
    );
}

#[test]
fn session_lost_authorizes_again_with_the_same_deadline() {
    let t = transition(
        &polling(NOW + 600 * SEC),
        failure(Classification::SessionLost, "SESSION_EXPIRED", 401),
        tick(NOW),
        &policy(),
    );
    assert_eq!(t.kind, TransitionKind::Reauthorize);
    assert_eq!(t.state, JobState::Authorizing);
    assert_eq!(t.request_id, None);
    assert_eq!(t.deadline_ms, Some(NOW + 600 * SEC));
    assert_eq!(
        t.due_ms,
        Some(NOW + 10 * SEC),
        "authorizes again one poll interval after the poll that lost the session"
    );
    assert_eq!(
        plan(&job(JobState::Authorizing), NOW, &policy()),
        Plan::Run(Step::Authorize)
    );
}

#[test]
fn needs_user_and_bad_request_fail_at_once_keeping_code_status_and_message() {
    for (kind, code, status) in [
        (Classification::NeedsUser, "INVALID_LOGIN", 401),
        (Classification::NeedsUser, "SECURITY_CHALLENGE", 203),
        (Classification::BadRequest, "INVALID_REQUEST", 400),
        (Classification::BadRequest, "BAD_BODY", 200),
    ] {
        let t = transition(
            &job(JobState::Queued),
            failure(kind, code, status),
            tick(NOW),
            &policy(),
        );
        assert_eq!(t.state, JobState::Failed, "{code}");
        assert_eq!(t.due_ms, None);
        let error = t.error.expect("error kept");
        assert_eq!(error.code, code);
        assert_eq!(error.http_status, Some(status));
        assert_eq!(error.message, format!("{code} said Flinks"));
        assert_eq!(t.last, format!("authorize:{code}"));
    }
}

/// A job claimed for the first time at `NOW - elapsed`, still without a session.
fn authorizing_since(elapsed_ms: u64) -> JobSnapshot {
    JobSnapshot {
        started_ms: Some(NOW - elapsed_ms),
        ..job(JobState::Authorizing)
    }
}

#[test]
fn a_job_without_a_session_at_its_authorize_deadline_times_out_without_a_call() {
    let bound = 30 * 60 * SEC;
    assert_eq!(
        plan(&authorizing_since(bound - 1), NOW, &policy()),
        Plan::Run(Step::Authorize)
    );
    let waiting = JobSnapshot {
        last: Some("authorize:202".into()),
        ..authorizing_since(bound)
    };
    let Plan::Finish(t) = plan(&waiting, NOW, &policy()) else {
        panic!("expected Finish at the authorize deadline")
    };
    assert_eq!(t.state, JobState::TimedOut);
    let error = t.error.expect("error");
    assert_eq!(
        (error.code.as_str(), error.http_status),
        ("AUTHORIZE_TIMEOUT", Some(202))
    );
    assert!(error.message.contains("authorize:202"), "{}", error.message);
    // a job that has a session is bounded by its polling deadline instead
    let polling = JobSnapshot {
        started_ms: Some(NOW - bound),
        ..polling(NOW + SEC)
    };
    assert!(matches!(
        plan(&polling, NOW, &policy()),
        Plan::Run(Step::Poll { .. })
    ));
}

#[test]
fn authorize_pending_snoozes_one_interval_and_wakes_at_the_authorize_deadline() {
    let t = transition(
        &JobSnapshot {
            started_ms: Some(NOW),
            ..job(JobState::Queued)
        },
        Outcome::Pending,
        tick(NOW),
        &policy(),
    );
    assert_eq!(t.kind, TransitionKind::Snooze);
    assert_eq!(t.state, JobState::Authorizing);
    assert_eq!(t.due_ms, Some(NOW + 10 * SEC));
    assert_eq!((t.polls, t.attempts, t.retries), (0, 0, 0));
    assert_eq!(t.last, "authorize:202");
    // 5 s before the authorize deadline: wake at it, not past it
    let t = transition(
        &authorizing_since(30 * 60 * SEC - 5 * SEC),
        Outcome::Pending,
        tick(NOW),
        &policy(),
    );
    assert_eq!(t.due_ms, Some(NOW + 5 * SEC));
}

#[test]
fn session_lost_after_max_sessions_fails_keeping_the_flinks_code() {
    let exhausted = JobSnapshot {
        sessions: 3,
        auths: 7,
        ..polling(NOW + 600 * SEC)
    };
    let t = transition(
        &exhausted,
        failure(Classification::SessionLost, "SESSION_EXPIRED", 401),
        tick(NOW),
        &policy(),
    );
    assert_eq!(t.state, JobState::Failed);
    let error = t.error.expect("error kept");
    assert_eq!(
        (error.code.as_str(), error.http_status),
        ("SESSION_EXPIRED", Some(401))
    );
    assert!(
        error.message.starts_with("gave up after 3 sessions"),
        "{}",
        error.message
    );
    // one session fewer: authorize again, and the next session is counted
    let t = transition(
        &JobSnapshot {
            sessions: 2,
            ..exhausted
        },
        failure(Classification::SessionLost, "SESSION_EXPIRED", 401),
        tick(NOW),
        &policy(),
    );
    assert_eq!(t.kind, TransitionKind::Reauthorize);
    let lost = JobSnapshot {
        state: JobState::Authorizing,
        sessions: t.sessions,
        ..job(JobState::Authorizing)
    };
    let t = transition(
        &lost,
        Outcome::Authorized {
            request_id: "r".into(),
        },
        tick(NOW),
        &policy(),
    );
    assert_eq!(t.sessions, 3);
}

#[test]
fn session_lost_near_the_deadline_wakes_at_the_deadline_not_past_it() {
    let t = transition(
        &polling(NOW + 3 * SEC),
        failure(Classification::SessionLost, "SESSION_EXPIRED", 401),
        tick(NOW),
        &policy(),
    );
    assert_eq!(t.kind, TransitionKind::Reauthorize);
    assert_eq!(t.due_ms, Some(NOW + 3 * SEC));
}

#[test]
fn retry_after_a_year_on_authorize_is_capped_at_the_retry_cap() {
    let outcome = Outcome::Failed {
        kind: Classification::Transient,
        error: StepError {
            code: "TOO_MANY_REQUESTS".into(),
            http_status: Some(429),
            message: "slow down".into(),
        },
        retry_after: Some(Duration::from_secs(31_536_000)),
    };
    let t = transition(&authorizing_since(0), outcome.clone(), tick(NOW), &policy());
    assert_eq!(t.kind, TransitionKind::Retry);
    assert_eq!(t.due_ms, Some(NOW + 60 * SEC), "capped at FLINKQ_RETRY_CAP");
    // within one retry cap of the authorize deadline: timed out now
    let t = transition(
        &authorizing_since(30 * 60 * SEC - 30 * SEC),
        outcome,
        tick(NOW),
        &policy(),
    );
    assert_eq!(t.state, JobState::TimedOut);
    assert_eq!(
        t.error.map(|e| e.code),
        Some("TOO_MANY_REQUESTS".to_owned())
    );
}

#[test]
fn a_job_claimed_more_than_max_claims_times_without_a_commit_fails_as_a_poison_pill() {
    let crashed = JobSnapshot {
        claims: 5,
        ..polling(NOW + 600 * SEC)
    };
    assert!(matches!(
        plan(&crashed, NOW, &policy()),
        Plan::Run(Step::Poll { .. })
    ));
    let poison = JobSnapshot {
        claims: 6,
        ..crashed
    };
    let Plan::Finish(t) = plan(&poison, NOW, &policy()) else {
        panic!("expected Finish for a poison pill")
    };
    assert_eq!(t.state, JobState::Failed);
    let error = t.error.expect("error");
    assert_eq!(error.code, LocalCode::PoisonPill.as_str());
    assert!(
        error.message.contains("claimed 6 times"),
        "{}",
        error.message
    );
}

fn attributes(deadline_ms: u64) -> JobSnapshot {
    JobSnapshot {
        product: "attributes".parse().expect("a product"),
        ..polling(deadline_ms)
    }
}

#[test]
fn a_202_makes_the_next_call_of_the_stage_its_poll_form() {
    let t = transition(
        &polling(NOW + 600 * SEC),
        Outcome::Pending,
        tick(NOW),
        &policy(),
    );
    assert!(t.stage_accepted);
    assert_eq!(t.stage, 0);
    let job = JobSnapshot {
        stage_accepted: true,
        ..polling(NOW + 600 * SEC)
    };
    assert_eq!(
        plan(&job, NOW + 10 * SEC, &policy()),
        Plan::Run(Step::Poll {
            request_id: "req-1".into(),
            stage: 0,
            accepted: true,
        })
    );
}

#[test]
fn the_first_stages_200_runs_the_next_stage_right_away_in_the_same_session() {
    let detail_pending = JobSnapshot {
        stage_accepted: true,
        ..attributes(NOW + 600 * SEC)
    };
    let t = transition(&detail_pending, Outcome::Ready, tick(NOW), &policy());
    assert_eq!(t.kind, TransitionKind::Advance);
    assert_eq!(t.state, JobState::Polling);
    assert_eq!((t.stage, t.stage_accepted), (1, false));
    assert_eq!(t.due_ms, Some(NOW));
    assert_eq!(t.request_id.as_deref(), Some("req-1"));
    assert_eq!(
        t.deadline_ms,
        Some(NOW + 600 * SEC),
        "one deadline for every stage"
    );
    // the last stage's 200 is the payload
    let last = JobSnapshot {
        stage: 1,
        ..attributes(NOW + 600 * SEC)
    };
    let t = transition(&last, Outcome::Ready, tick(NOW), &policy());
    assert_eq!(t.state, JobState::Succeeded);
}

#[test]
fn a_session_lost_at_a_later_stage_starts_again_at_the_first() {
    let at_attributes = JobSnapshot {
        stage: 1,
        stage_accepted: true,
        ..attributes(NOW + 600 * SEC)
    };
    let t = transition(
        &at_attributes,
        failure(Classification::SessionLost, "SESSION_EXPIRED", 400),
        tick(NOW),
        &policy(),
    );
    assert_eq!(t.kind, TransitionKind::Reauthorize);
    assert_eq!((t.stage, t.stage_accepted), (0, false));
}
