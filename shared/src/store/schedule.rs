//! The store side of `flinkq schedule`: Redis' clock, the per-tick lock and
//! the run records (see the key table in [`super`]).

use std::time::Duration;

use redis::AsyncCommands;

use super::{EnqueueReport, Store, StoreError, millis, reply};

/// How many run records `schedule:runs` keeps.
pub const SCHEDULE_RUNS_KEPT: u64 = 1_000;

/// Why a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// The tick the scheduler was waiting for.
    Tick,
    /// The newest tick missed while no scheduler was running.
    CatchUp,
}

impl RunKind {
    /// As stored in the run record's `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Tick => "tick",
            RunKind::CatchUp => "catch_up",
        }
    }
}

/// What [`Store::schedule_claim`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickClaim {
    /// This replica won the tick and recorded the run: it runs the refresh.
    Won,
    /// Another replica holds or ran the tick.
    Taken {
        /// The replica that won it.
        holder: String,
    },
    /// A newer tick (or the first-start baseline) is already recorded.
    Stale {
        /// `schedule:last` (ms).
        last_ms: u64,
    },
}

/// One claim of a tick.
#[derive(Debug, Clone, Copy)]
pub struct TickRequest<'a> {
    /// The tick (ms since the epoch).
    pub tick_ms: u64,
    /// Who asks.
    pub replica: &'a str,
    /// The batch the run enqueues.
    pub batch: &'a str,
    /// Regular tick or catch-up.
    pub kind: RunKind,
    /// How long the per-tick lock lives.
    pub lock_ttl: Duration,
}

impl Store {
    /// Redis' clock (ms): every replica of every host reads the same one.
    pub async fn time_ms(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let (secs, micros): (u64, u64) = redis::cmd("TIME")
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command("TIME"))?;
        Ok(secs * 1_000 + micros / 1_000)
    }

    /// `schedule:last`: the newest tick run (or the baseline), if any.
    pub async fn schedule_last(&self) -> Result<Option<u64>, StoreError> {
        let mut conn = self.conn.clone();
        conn.get(self.keys.schedule_last())
            .await
            .map_err(StoreError::command("GET schedule:last"))
    }

    /// Sets `schedule:last` to `baseline_ms` unless it is already set (first
    /// start of any replica); returns the value now stored.
    pub async fn schedule_baseline(&self, baseline_ms: u64) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let key = self.keys.schedule_last();
        let (_, stored): (Option<String>, u64) = redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(baseline_ms)
            .arg("NX")
            .get(&key)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command("SET schedule:last NX"))?;
        Ok(stored)
    }

    /// Takes the lock of one tick and records the run, atomically: exactly
    /// one replica wins each tick.
    pub async fn schedule_claim(&self, request: &TickRequest<'_>) -> Result<TickClaim, StoreError> {
        const OP: &str = "schedule_claim";
        let mut conn = self.conn.clone();
        let value: redis::Value = self
            .invoke(&self.scripts.schedule_claim)
            .arg(request.tick_ms)
            .arg(request.replica)
            .arg(millis(request.lock_ttl).max(1))
            .arg(request.batch)
            .arg(request.kind.as_str())
            .arg(SCHEDULE_RUNS_KEPT)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command(OP))?;
        let parts = reply::array(&value).ok_or_else(|| StoreError::reply(OP, "not an array"))?;
        let [won, other] = parts else {
            return Err(StoreError::reply(OP, "expected 2 parts"));
        };
        let other = reply::text(other).unwrap_or_default();
        match reply::int(won) {
            Some(1) => Ok(TickClaim::Won),
            Some(0) => Ok(TickClaim::Taken { holder: other }),
            Some(-1) => Ok(TickClaim::Stale {
                last_ms: other.parse().unwrap_or_default(),
            }),
            _ => Err(StoreError::reply(OP, "bad verdict")),
        }
    }

    /// Records the counts of a refresh this replica ran and releases the
    /// tick's lease; false (nothing written) if another replica adopted the
    /// run meanwhile.
    pub async fn schedule_finish(
        &self,
        tick_ms: u64,
        replica: &str,
        report: &EnqueueReport,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let recorded: i64 = self
            .invoke(&self.scripts.schedule_finish)
            .arg(tick_ms)
            .arg(replica)
            .arg(report.enqueued)
            .arg(report.already_active)
            .arg(report.already_in_batch)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("schedule_finish"))?;
        Ok(recorded == 1)
    }

    /// Renews this replica's lease on a tick it is refreshing; false if it
    /// no longer holds it.
    pub async fn schedule_extend(
        &self,
        tick_ms: u64,
        replica: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let held: i64 = self
            .invoke(&self.scripts.schedule_extend)
            .arg(tick_ms)
            .arg(replica)
            .arg(millis(lease).max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("schedule_extend"))?;
        Ok(held == 1)
    }

    /// Takes over the newest run whose replica died mid-refresh (still
    /// `running`, lease expired), if there is one.
    pub async fn schedule_adopt(
        &self,
        replica: &str,
        lease: Duration,
    ) -> Result<Option<AdoptedRun>, StoreError> {
        const OP: &str = "schedule_adopt";
        let mut conn = self.conn.clone();
        let value: redis::Value = self
            .invoke(&self.scripts.schedule_adopt)
            .arg(replica)
            .arg(millis(lease).max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command(OP))?;
        let parts = reply::array(&value).ok_or_else(|| StoreError::reply(OP, "not an array"))?;
        let [tick, batch, kind, from] = parts else {
            return Ok(None);
        };
        let tick_ms = reply::int(tick)
            .and_then(|t| u64::try_from(t).ok())
            .ok_or_else(|| StoreError::reply(OP, "bad tick"))?;
        Ok(Some(AdoptedRun {
            tick_ms,
            batch: reply::text(batch).unwrap_or_default(),
            kind: match reply::text(kind).as_deref() {
                Some("catch_up") => RunKind::CatchUp,
                _ => RunKind::Tick,
            },
            from: reply::text(from).unwrap_or_default(),
        }))
    }
}

/// A run taken over from a replica that died mid-refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptedRun {
    /// Its tick (ms).
    pub tick_ms: u64,
    /// Its batch.
    pub batch: String,
    /// Regular tick or catch-up.
    pub kind: RunKind,
    /// The replica that abandoned it.
    pub from: String,
}
