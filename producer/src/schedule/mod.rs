//! `flinkq schedule`: a long-lived cron scheduler that refreshes every
//! registered login at each tick.
//!
//! - [`cron_spec`]: the cron expression in its time zone (which instants are ticks).
//! - [`ticks`]: the pure decision: which tick is due now, when to wake up, batch names.
//! - [`error`]: [`ScheduleError`], refused before anything starts.
//!
//! Replicas: every tick is claimed with one atomic script (per-tick lock +
//! run record, see `Store::schedule_claim`); only the winner enqueues. Time
//! is Redis' `TIME`, so replicas on different hosts agree on what is due.

pub mod cron_spec;
pub mod error;
pub mod ticks;

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use flinkq_shared::store::{RunKind, Store, StoreError, TickClaim, TickRequest};

pub use cron_spec::Schedule;
pub use error::ScheduleError;

use crate::cli::ScheduleArgs;
use crate::error::CliError;
use crate::redis_retry;

/// The per-tick lock is a lease: renewed every third of it while the
/// winner refreshes, so a replica that dies mid-refresh loses it within
/// this long and another replica adopts the run. The run record
/// (`schedule:runs`) keeps a finished tick from running twice.
const TICK_LEASE: Duration = Duration::from_secs(30);

/// The longest single sleep: long waits are cut so that a drift between this
/// host's clock and Redis' is corrected as the tick approaches.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Runs the scheduler until `shutdown` resolves (then returns `Ok`). Redis
/// failures are logged and retried with backoff; they never end the loop.
pub async fn run(
    store: &Store,
    schedule: &Schedule,
    args: &ScheduleArgs,
    out: &mut impl Write,
    shutdown: impl Future<Output = ()>,
) -> Result<(), CliError> {
    tokio::pin!(shutdown);
    let mut scheduler = Scheduler {
        store,
        schedule,
        args,
        replica: args
            .replica
            .clone()
            .unwrap_or_else(flinkq_shared::instance::instance_name),
        awaited: None,
        pending: None,
    };
    tracing::info!(
        cron = schedule.expr(),
        tz = %schedule.tz(),
        replica = %scheduler.replica,
        priority = args.priority.as_str(),
        batch_prefix = %args.batch_prefix,
        "scheduler started"
    );
    // short and capped: the next tick runs within about a second of Redis
    // coming back, however long it was away
    let mut backoff = redis_retry::backoff();
    loop {
        // a step is never cut short by the shutdown: a won tick is enqueued whole
        let wait = match scheduler.step(out).await {
            Ok(Some(wake_at_ms)) => {
                backoff = redis_retry::backoff();
                wake_at_ms
            }
            Ok(None) => {
                tracing::warn!(
                    cron = schedule.expr(),
                    "the cron expression never fires again; waiting for SIGTERM"
                );
                shutdown.as_mut().await;
                return Ok(());
            }
            Err(error) => {
                let delay = backoff.next().unwrap_or(redis_retry::RETRY_CAP);
                tracing::warn!(%error, retry_in = ?delay, "scheduler step failed; retrying");
                tokio::select! {
                    () = shutdown.as_mut() => return Ok(()),
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        tokio::select! {
            () = shutdown.as_mut() => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The loop's state.
struct Scheduler<'a> {
    store: &'a Store,
    schedule: &'a Schedule,
    args: &'a ScheduleArgs,
    replica: String,
    /// The tick the last sleep waited for.
    awaited: Option<u64>,
    /// A tick this replica won whose refresh has not completed yet (Redis
    /// failed midway): retried before anything else.
    pending: Option<(u64, RunKind)>,
}

impl Scheduler<'_> {
    /// Runs what is due, then answers how long to sleep (`None`: never again).
    async fn step(&mut self, out: &mut impl Write) -> Result<Option<Duration>, StoreError> {
        if let Some((tick, kind)) = self.pending {
            self.refresh(tick, kind, out).await?;
            self.pending = None;
        }
        if let Some(adopted) = self.store.schedule_adopt(&self.replica, TICK_LEASE).await? {
            tracing::warn!(
                tick = %self.schedule.local_rfc3339(adopted.tick_ms),
                from = %adopted.from,
                batch = %adopted.batch,
                "adopting a run whose replica stopped mid-refresh; logins it enqueued are skipped"
            );
            self.pending = Some((adopted.tick_ms, adopted.kind));
            self.refresh(adopted.tick_ms, adopted.kind, out).await?;
            self.pending = None;
        }
        let now = self.store.time_ms().await?;
        let last = match self.store.schedule_last().await? {
            Some(last) => last,
            None => {
                let base = ticks::baseline(self.schedule, now);
                let stored = self.store.schedule_baseline(base).await?;
                tracing::info!(
                    baseline = %self.schedule.local_rfc3339(stored),
                    "first start in this namespace: nothing to catch up"
                );
                stored
            }
        };
        let action = ticks::next_action(self.schedule, last, now);
        match action.due {
            Some(tick) => {
                let kind = if self.awaited == Some(tick) {
                    RunKind::Tick
                } else {
                    RunKind::CatchUp
                };
                self.claim(tick, kind, out).await?;
            }
            None => {
                if let Some(awaited) = self.awaited.filter(|a| *a <= now && *a <= last) {
                    tracing::info!(
                        tick = %self.schedule.local_rfc3339(awaited),
                        "tick already run by another replica"
                    );
                }
            }
        }
        self.awaited = action.next_tick;
        Ok(action
            .next_tick
            .map(|next| Duration::from_millis(next.saturating_sub(now)).min(MAX_SLEEP)))
    }

    /// Claims `tick`; the winner runs the refresh.
    async fn claim(
        &mut self,
        tick: u64,
        kind: RunKind,
        out: &mut impl Write,
    ) -> Result<(), StoreError> {
        let batch = ticks::batch_name(&self.args.batch_prefix, tick);
        let request = TickRequest {
            tick_ms: tick,
            replica: &self.replica,
            batch: &batch,
            kind,
            lock_ttl: TICK_LEASE,
        };
        let local = self.schedule.local_rfc3339(tick);
        match self.store.schedule_claim(&request).await? {
            TickClaim::Won => {
                tracing::info!(tick = %local, kind = kind.as_str(), %batch, "won the tick");
                self.pending = Some((tick, kind));
                self.refresh(tick, kind, out).await?;
                self.pending = None;
            }
            TickClaim::Taken { holder } => {
                tracing::info!(tick = %local, %holder, "tick won by another replica");
            }
            TickClaim::Stale { last_ms } => {
                tracing::info!(
                    tick = %local,
                    last = %self.schedule.local_rfc3339(last_ms),
                    "a newer tick was already run"
                );
            }
        }
        Ok(())
    }

    /// Enqueues every registered login into the tick's batch and records
    /// the counts (enqueue skips logins already active, so a retry after a
    /// failure midway enqueues nobody twice).
    async fn refresh(
        &self,
        tick: u64,
        kind: RunKind,
        out: &mut impl Write,
    ) -> Result<(), StoreError> {
        let batch = ticks::batch_name(&self.args.batch_prefix, tick);
        let refresh = crate::refresh::enqueue_registered(
            self.store,
            &batch,
            self.args.priority,
            &self.args.products,
        );
        tokio::pin!(refresh);
        let mut heartbeat = tokio::time::interval(TICK_LEASE / 3);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let report = loop {
            tokio::select! {
                report = &mut refresh => break report?,
                _ = heartbeat.tick() => {
                    match self.store.schedule_extend(tick, &self.replica, TICK_LEASE).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(%batch, "lost the tick's lease; another replica may adopt the run (enqueue skips logins already in the batch)"),
                        Err(error) => tracing::warn!(%error, "cannot renew the tick's lease"),
                    }
                }
            }
        };
        if !self
            .store
            .schedule_finish(tick, &self.replica, &report)
            .await?
        {
            tracing::warn!(%batch, "another replica adopted this run; its record keeps that replica's counts");
        }
        let local = self.schedule.local_rfc3339(tick);
        let note = match kind {
            RunKind::Tick => "",
            RunKind::CatchUp => " (catch-up)",
        };
        tracing::info!(
            tick = %local,
            kind = kind.as_str(),
            %batch,
            enqueued = report.enqueued,
            already_active = report.already_active,
            already_in_batch = report.already_in_batch,
            "tick run"
        );
        let line = format!(
            "tick {local}{note}: enqueued {}, already active {}, already in batch {} (batch {batch})",
            report.enqueued, report.already_active, report.already_in_batch
        );
        if let Err(error) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            tracing::warn!(%error, "cannot write the run to stdout");
        }
        Ok(())
    }
}
