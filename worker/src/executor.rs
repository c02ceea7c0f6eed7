//! The step executor: runs one claimed step and commits its transition.
//!
//! plan → check the claim still holds → call Flinks → store the payload →
//! `transition` (pure) → `commit` (fenced). The one place job state changes.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use apalis_core::task::Task;
use flinkq_shared::store::{Begin, Claim, CommitOutcome, CommitParams, RateLimit};
use flinkq_shared::{
    Classification, JobSnapshot, LocalCode, Outcome, Plan, Policy, ResultRecord, Step, StepError,
    Tick, Transition, TransitionKind, plan, transition,
};
use tracing::{Instrument, Span, debug, info, info_span, warn};

use crate::claimed::ClaimedStep;
use crate::events::{AbandonReason, Event, EventSink, LostAnswer, RedisOp, StepLabel};
use crate::flinks::{DataAnswer, FlinksClient, PayloadTarget};
use crate::result_sink::ResultSink;
use crate::results::ResultWriteError;
use crate::wake::ClaimWake;

/// Backoff bounds of commit retries.
const COMMIT_RETRY_MIN: Duration = Duration::from_millis(100);
const COMMIT_RETRY_MAX: Duration = Duration::from_secs(1);
/// Read-backs of a commit whose answer was lost, once the lease is over.
const RESOLVE_ATTEMPTS: u32 = 5;

/// Everything a step needs.
#[derive(Debug)]
pub struct Executor {
    /// The Flinks client.
    pub flinks: FlinksClient,
    /// Where payloads go.
    pub results: ResultSink,
    /// Timing rules.
    pub policy: Policy,
    /// Lease of a claim (the pre-call check renews it).
    pub lease: Duration,
    /// Global rate limit toward Flinks.
    pub rate_limit: RateLimit,
    /// Where events go.
    pub events: Arc<dyn EventSink>,
    /// Wakes this worker's claim loop for steps due soon.
    pub wake: Arc<ClaimWake>,
}

impl Executor {
    /// Runs one claimed step to its commit. Never fails: every problem ends
    /// in a committed transition, or in a lease left to expire.
    pub async fn run(&self, claimed: ClaimedStep) {
        let span = info_span!(
            "step",
            job.id = %claimed.claim.id,
            login.id = %claimed.claim.login,
            product = %claimed.claim.product,
            step = tracing::field::Empty,
        );
        self.run_step(claimed).instrument(span).await;
    }

    async fn run_step(&self, claimed: ClaimedStep) {
        let job = &claimed.claim;
        // Until when this worker may still commit: the claim's lease, counted
        // (conservatively) from before the claim or the renewal was sent.
        let mut lease_until = claimed.clock.anchor() + self.lease;
        let (step_name, transition, result) = match plan(job, claimed.clock.now_ms(), &self.policy)
        {
            Plan::Finish(transition) => (StepLabel::Claim, transition, None),
            Plan::Run(step) => {
                Span::current().record("step", step.name());
                if let (Step::Poll { .. }, Some(due)) = (&step, job.due_ms) {
                    let late = claimed.clock.now_ms().saturating_sub(due);
                    self.events.emit(Event::PollStarted {
                        lateness: Duration::from_millis(late),
                    });
                }
                if !self.begun_by_claim(&claimed, &step) {
                    let renewing = Instant::now();
                    if !self.claim_still_held(job, &step).await {
                        return;
                    }
                    lease_until = renewing + self.lease;
                }
                let (outcome, result) = self.call(job, &step).await;
                let tick = Tick {
                    now_ms: claimed.clock.now_ms(),
                    jitter: rand::random::<f64>(),
                };
                let transition = transition(job, outcome, tick, &self.policy);
                (StepLabel::of(&step), transition, result)
            }
        };
        let committed_at = claimed.clock.now_ms();
        if self
            .commit(job, &transition, result.as_ref(), lease_until)
            .await
        {
            if result.is_some() {
                // this job's payload is committed: its staged copy has served
                self.results.release(&job.run_key());
            }
            if let Some(due) = transition.due_ms {
                self.wake.scheduled(due);
            }
            let job_age = (transition.kind == TransitionKind::Finish)
                .then(|| Duration::from_millis(committed_at.saturating_sub(job.created_ms)));
            self.events.emit(Event::StepCommitted {
                product: job.product,
                step: step_name,
                kind: transition.kind,
                state: transition.state,
                job_age,
            });
        }
    }

    /// Whether the claim itself began this step (`claim.lua` recorded the
    /// spacing the step needs) and is fresh: sent less than a quarter of a
    /// lease ago, so the lease it set is certain to hold still (no reaper
    /// takes a lease before it ends, and this process cannot have stalled
    /// past it), and `begin` would only repeat the claim's check and write.
    /// A step that waited (a rate limit, a busy runtime) begins as usual.
    fn begun_by_claim(&self, claimed: &ClaimedStep, step: &Step) -> bool {
        claimed.claim.begun() == Some(self.spacing(step))
            && claimed.clock.anchor().elapsed() < self.lease / 4
    }

    /// The least time between this step's call and the job's next one,
    /// should this process die mid-call.
    fn spacing(&self, step: &Step) -> Duration {
        match step {
            Step::Poll { .. } => self.policy.poll_interval,
            Step::Authorize => Duration::ZERO,
        }
    }

    /// Renews the lease right before calling Flinks: a worker whose claim was
    /// lost (lease expired, job reaped and claimed elsewhere) makes no call.
    /// A poll also records that the next one may come no sooner than the
    /// interval, even if this process dies mid-call.
    async fn claim_still_held(&self, claim: &Claim, step: &Step) -> bool {
        let spacing = self.spacing(step);
        loop {
            match claim.begin(self.lease, spacing, self.rate_limit).await {
                Ok(Begin::Held) => return true,
                Ok(Begin::Throttled(wait)) => {
                    debug!(wait = ?wait, "rate limited; waiting for a token");
                    tokio::time::sleep(wait).await;
                }
                Ok(Begin::Lost) => {
                    info!("claim lost before the call; another worker owns this step now");
                    self.events.emit(Event::StepAbandoned {
                        product: claim.product,
                        reason: AbandonReason::Lost,
                    });
                    return false;
                }
                Err(error) => {
                    warn!(%error, "cannot confirm the claim; leaving the step to run again after its lease");
                    self.events.emit(Event::redis_error(RedisOp::Begin, &error));
                    self.events.emit(Event::StepAbandoned {
                        product: claim.product,
                        reason: AbandonReason::Lost,
                    });
                    return false;
                }
            }
        }
    }

    /// Makes the step's call. The last stage's 200 is the job's payload:
    /// it is stored, and the commit records it. An earlier stage's 200
    /// (attributes' GetAccountsDetail) is checked the same way, streamed
    /// into nothing, and advances the job to the next stage.
    async fn call(&self, job: &JobSnapshot, step: &Step) -> (Outcome, Option<ResultRecord>) {
        let product = job.product;
        let (request_id, index, accepted) = match step {
            Step::Authorize => return (self.flinks.authorize(product, &job.login).await, None),
            Step::Poll {
                request_id,
                stage,
                accepted,
            } => (request_id, *stage, *accepted),
        };
        let Some(stage) = product.stage(index) else {
            return (no_such_stage(job, index), None);
        };
        if !product.is_last_stage(index) {
            let answer = self
                .flinks
                .data_call(
                    product,
                    stage,
                    accepted,
                    request_id,
                    &job.login,
                    &mut Discard,
                )
                .await;
            return match answer {
                DataAnswer::Ready => (Outcome::Ready, None),
                DataAnswer::NotReady(outcome) => (outcome, None),
            };
        }
        let run_key = job.run_key();
        // Only an attempt whose commit was lost can have left a payload, and
        // then this claim is not the first since the job's last applied
        // commit (`claims` counts them; an applied commit resets it, a claim
        // given back unrun takes itself back). The first claim skips the
        // look, a trip to the results writer thread and a file-system call.
        if job.claims > 1 {
            match self
                .results
                .stored_by_earlier_attempt(product, &job.login, &run_key)
                .await
            {
                Ok(Some(record)) => {
                    info!(
                        "the payload was already stored by an earlier attempt of this job; not polling again"
                    );
                    return (Outcome::Ready, Some(record));
                }
                Ok(None) => {}
                Err(error) => return (result_write_failure(&error), None),
            }
        }
        // The 200's body streams into `staged`; any other answer drops it
        // (and its temp file) here.
        let mut staged = self.results.stage(product, &job.login, &run_key);
        match self
            .flinks
            .data_call(
                product,
                stage,
                accepted,
                request_id,
                &job.login,
                &mut staged,
            )
            .await
        {
            DataAnswer::NotReady(outcome) => (outcome, None),
            DataAnswer::Ready => match self.results.store(staged).await {
                Ok(record) => {
                    debug!(sink = record.sink(), "result stored");
                    (Outcome::Ready, Some(record))
                }
                Err(error) => (result_write_failure(&error), None),
            },
        }
    }

    /// Commits, retrying Redis errors (an outage, a failover) for as long as
    /// the lease still holds: a short outage costs no repeated call. Every
    /// retry carries the same commit id, so a retry of a commit that was
    /// applied but whose answer was lost reads "already applied". Past the
    /// lease, the commit is settled by a read-back. Returns whether the
    /// transition was applied: an applied commit is never counted as fenced
    /// or abandoned.
    async fn commit(
        &self,
        job: &Claim,
        t: &Transition,
        result: Option<&ResultRecord>,
        lease_until: Instant,
    ) -> bool {
        let params = job.prepare(t, result);
        let mut delays = commit_retry_delays();
        let mut delay = delays.next().unwrap_or(COMMIT_RETRY_MIN);
        loop {
            match job.commit(&params).await {
                Ok(CommitOutcome::Applied) => {
                    log_transition(t);
                    return true;
                }
                Ok(CommitOutcome::AlreadyApplied) => {
                    self.applied_after_lost_answer(t);
                    return true;
                }
                Ok(CommitOutcome::Fenced) => {
                    info!(state = %t.state, "fenced: this claim is stale, the transition was not applied");
                    if result.is_some() {
                        // the attempt that owns the job now polls or finds
                        // its own staged payload; this one's is not needed
                        self.results.release(&job.run_key());
                    }
                    self.events.emit(Event::StepAbandoned {
                        product: job.product,
                        reason: AbandonReason::Fenced,
                    });
                    return false;
                }
                Err(error) if Instant::now() + delay < lease_until => {
                    warn!(%error, retry_in = ?delay, "commit failed; retrying while the lease holds");
                    self.events
                        .emit(Event::redis_error(RedisOp::Commit, &error));
                    tokio::time::sleep(delay).await;
                    delay = delays.next().unwrap_or(COMMIT_RETRY_MAX);
                }
                Err(error) => {
                    warn!(%error, "commit failed and the lease is over; reading back whether it was applied");
                    self.events
                        .emit(Event::redis_error(RedisOp::Commit, &error));
                    return self.resolve(job, &params, t).await;
                }
            }
        }
    }

    /// Settles a commit whose answer was lost: a few read-backs with backoff.
    /// "Not applied" is final (the read-back spends the claim), so the step
    /// safely runs again after its lease.
    async fn resolve(&self, job: &Claim, params: &CommitParams, t: &Transition) -> bool {
        let mut delays = commit_retry_delays();
        for _ in 0..RESOLVE_ATTEMPTS {
            match job.resolve_commit(params).await {
                Ok(true) => {
                    self.applied_after_lost_answer(t);
                    return true;
                }
                Ok(false) => {
                    info!(state = %t.state, "commit not applied (its answer was lost); the step will run again after its lease");
                    self.events.emit(Event::CommitAfterLostAnswer {
                        outcome: LostAnswer::NotApplied,
                    });
                    self.events.emit(Event::StepAbandoned {
                        product: job.product,
                        reason: AbandonReason::CommitFailed,
                    });
                    return false;
                }
                Err(error) => {
                    let delay = delays.next().unwrap_or(COMMIT_RETRY_MAX);
                    warn!(%error, retry_in = ?delay, "cannot read back the commit; retrying");
                    self.events
                        .emit(Event::redis_error(RedisOp::ResolveCommit, &error));
                    tokio::time::sleep(delay).await;
                }
            }
        }
        warn!(
            state = %t.state,
            "cannot tell whether the commit was applied (Redis does not answer); if it was not, the step will run again after its lease"
        );
        self.events.emit(Event::CommitAfterLostAnswer {
            outcome: LostAnswer::Unknown,
        });
        self.events.emit(Event::StepAbandoned {
            product: job.product,
            reason: AbandonReason::CommitFailed,
        });
        false
    }

    fn applied_after_lost_answer(&self, t: &Transition) {
        info!(state = %t.state, "commit applied after a lost answer");
        self.events.emit(Event::CommitAfterLostAnswer {
            outcome: LostAnswer::Applied,
        });
        log_transition(t);
    }
}

/// Delays between commit retries and read-backs: doubling from
/// [`COMMIT_RETRY_MIN`] to [`COMMIT_RETRY_MAX`] (the services' backoff).
fn commit_retry_delays() -> impl Iterator<Item = Duration> {
    crate::services::backoff(COMMIT_RETRY_MIN, COMMIT_RETRY_MAX)
}

/// Where an earlier stage's payload goes: checked on its way (shape,
/// UTF-8, FLINKQ_MAX_PAYLOAD), then dropped chunk by chunk, never held.
struct Discard;

impl PayloadTarget for Discard {
    type Error = Infallible;

    async fn write_chunk(&mut self, _chunk: &[u8]) -> Result<(), Infallible> {
        Ok(())
    }
}

/// A job at a stage its product does not have (a stored job edited by
/// hand, or a product whose stages changed under a running job): it
/// cannot go on, and says so.
fn no_such_stage(job: &JobSnapshot, index: u8) -> Outcome {
    warn!(
        stage = index,
        "the job is at a stage its product does not have"
    );
    Outcome::Failed {
        kind: Classification::BadRequest,
        error: StepError {
            code: LocalCode::BadBody.as_str().into(),
            http_status: None,
            message: format!(
                "the job is at stage {index} of {}, which has {} stage(s); enqueue the login again",
                job.product,
                job.product.stages().len()
            ),
        },
        retry_after: None,
    }
}

/// The payload could not be stored: the poll is retried (transient).
fn result_write_failure(error: &ResultWriteError) -> Outcome {
    warn!(%error, "result not written; the poll will be retried");
    Outcome::Failed {
        kind: Classification::Transient,
        error: StepError {
            code: LocalCode::ResultWrite.as_str().into(),
            http_status: None,
            message: error.to_string(),
        },
        retry_after: None,
    }
}

fn log_transition(t: &Transition) {
    let error = t.error.as_ref().map(StepError::to_string);
    match t.kind {
        TransitionKind::Finish => info!(state = %t.state, last = %t.last, error, "job finished"),
        TransitionKind::Retry => {
            info!(attempt = t.attempts, last = %t.last, error, "transient failure; retrying")
        }
        TransitionKind::Reauthorize => info!(last = %t.last, "session lost; authorizing again"),
        TransitionKind::Advance | TransitionKind::Snooze => {
            debug!(state = %t.state, last = %t.last, "step committed")
        }
    }
}

/// The executor as the tower `Service` apalis drives.
#[derive(Debug, Clone)]
pub struct StepService {
    executor: Arc<Executor>,
}

impl StepService {
    /// Wraps an executor.
    pub fn new(executor: Executor) -> Self {
        StepService {
            executor: Arc::new(executor),
        }
    }
}

impl tower::Service<Task<ClaimedStep>> for StepService {
    type Response = ();
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<(), Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, task: Task<ClaimedStep>) -> Self::Future {
        let executor = self.executor.clone();
        // apalis drives every running step from the worker's one task; spawn
        // the step so steps run on all the runtime's threads. A panic in a
        // step (a bug) ends that step only: its lease expires and it reruns.
        // Boxed: the step's future is several KiB (the Flinks call, the
        // payload stream, the commit), and tokio moves a task's future, and
        // its finished stage of the same size, several times per task; a box
        // is moved instead (the copies were ~4% of the worker's
        // instructions per step, BENCHMARKS.md seventh pass).
        let step = tokio::spawn(Box::pin(async move { executor.run(task.args).await }));
        Box::pin(async move {
            if let Err(error) = step.await {
                tracing::error!(%error, "step task failed; its lease will expire and it will run again");
            }
            Ok(())
        })
    }
}
