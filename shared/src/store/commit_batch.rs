//! Group commit: the commits of a worker's steps go to Redis several in one
//! call of `commit.lua`.
//!
//! Why: a commit's Redis commands are a small part of what it costs Redis.
//! Most of a call is its overhead — EVALSHA, the script's text run again
//! (its prelude of local functions and tables), ARGV and KEYS built, the
//! reply converted, Lua's garbage — paid once per call, not per commit. So
//! the commits that wait while one call is in flight go together in the
//! next one: under load a call carries many commits, and when idle a lone
//! commit goes at once (nothing waits for company).
//!
//! Each commit is still decided alone by the script (fencing, commit id,
//! finish), and every commit of a call goes through
//! [`Store::write_durably`], so `FLINKQ_REDIS_WAIT_REPLICAS` covers each.
//! An error of the call (a timeout, a lost connection, replicas short) is
//! the error of every commit in it: each step retries its own commit as
//! today, and a retry of one that was applied reads "already applied".
//!
//! Bounded by configuration: the queue holds at most `queue` commits (the
//! worker's concurrency: one per running step), a call at most
//! `max_commits` commits, `max_args` arguments and `max_bytes` bytes of
//! values (a commit larger than that goes alone: payloads stored in Redis
//! can be megabytes, and a call past Redis' query buffer limit would fail
//! every commit in it, again on each retry), and at most `in_flight` calls
//! run at once.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::commit::{CommitAnswer, CommitParams};
use super::{Store, StoreError};

/// How commits are grouped (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitBatching {
    /// Commits waiting for a call, at most (a commit past it waits to be
    /// queued): the worker's concurrency.
    pub queue: usize,
    /// Commits in one call, at most.
    pub max_commits: usize,
    /// Arguments of one call, at most (a single larger commit goes alone).
    pub max_args: usize,
    /// Bytes of values in one call, at most (a single larger commit goes
    /// alone).
    pub max_bytes: usize,
    /// Calls in flight at once: 1, or one per `WAIT` lane so a slow replica
    /// confirmation does not hold every other commit back.
    pub in_flight: usize,
}

impl CommitBatching {
    /// The worker's grouping: as many waiting as it runs steps, up to 64
    /// commits (a commit is some 12 to 40 arguments) and 4 MiB in a call.
    pub fn for_concurrency(concurrency: usize, in_flight: usize) -> Self {
        CommitBatching {
            queue: concurrency.max(1),
            max_commits: 64,
            max_args: 2048,
            max_bytes: 4 << 20,
            in_flight: in_flight.max(1),
        }
    }
}

/// A commit waiting for its call, and where its answer goes.
struct Waiting {
    params: CommitParams,
    answer: oneshot::Sender<CommitAnswer>,
}

/// The handle steps commit through; its task sends the calls.
pub(super) struct CommitBatcher {
    queue: mpsc::Sender<Waiting>,
}

impl std::fmt::Debug for CommitBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitBatcher").finish_non_exhaustive()
    }
}

impl CommitBatcher {
    /// Starts the task that sends the calls on `store` (a store without a
    /// batcher: the task must not keep its own queue open). It ends once
    /// every handle is dropped.
    pub(super) fn start(store: Store, limits: CommitBatching) -> Self {
        let (queue, waiting) = mpsc::channel(limits.queue.max(1));
        tokio::spawn(send_calls(store, limits, waiting));
        CommitBatcher { queue }
    }

    /// Queues `params` for the next call and waits for its answer.
    pub(super) async fn commit(&self, params: CommitParams) -> CommitAnswer {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Waiting { params, answer })
            .await
            .map_err(|_| StoreError::BatcherStopped)?;
        answered.await.map_err(|_| StoreError::BatcherStopped)?
    }
}

/// The batcher's task: takes a call slot, then every commit waiting (up to
/// the bounds) — the first one awaited, the rest only if already there —
/// and sends them in one call on a task of its own.
async fn send_calls(store: Store, limits: CommitBatching, mut waiting: mpsc::Receiver<Waiting>) {
    let slots = Arc::new(Semaphore::new(limits.in_flight.max(1)));
    let mut carried: Option<Waiting> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(first) => first,
            None => match waiting.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let mut args = first.params.arg_count();
        let mut bytes = first.params.byte_len();
        let mut batch = vec![first];
        while batch.len() < limits.max_commits {
            let Ok(next) = waiting.try_recv() else {
                break;
            };
            let (more_args, more_bytes) = (next.params.arg_count(), next.params.byte_len());
            if args + more_args > limits.max_args || bytes + more_bytes > limits.max_bytes {
                // the first of the next call
                carried = Some(next);
                break;
            }
            args += more_args;
            bytes += more_bytes;
            batch.push(next);
        }
        let store = store.clone();
        tokio::spawn(async move {
            let params: Vec<&CommitParams> = batch.iter().map(|w| &w.params).collect();
            let answers = store.commit_together(&params).await;
            drop(slot);
            for (waiting, answer) in batch.into_iter().zip(answers) {
                // a step that stopped waiting (its task ended) needs no answer
                let _ = waiting.answer.send(answer);
            }
        });
    }
}
