//! `StepBackend`: flinkq's own apalis backend over the Redis store.
//!
//! apalis runs the worker (task polling, concurrency, graceful shutdown);
//! this backend feeds it steps from the [`Claimer`] loop it spawns, and on
//! close stops claiming and gives back any step that never started.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use apalis_core::backend::finalize::Ephemeral;
use apalis_core::backend::{Backend, BackendConfig};
use apalis_core::task::Task;
use apalis_core::task::task_id::RandomId;
use apalis_core::worker::context::WorkerContext;
use flinkq_shared::store::Store;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::layer::util::Identity;
use tracing::{info, warn};

use crate::claimed::ClaimedStep;
use crate::claimer::Claimer;

type Closing = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The apalis backend of the worker.
pub struct StepBackend {
    rx: Option<mpsc::Receiver<ClaimedStep>>,
    claimer: Option<JoinHandle<()>>,
    stop: CancellationToken,
    store: Store,
    closing: Option<Closing>,
    closed: bool,
}

impl std::fmt::Debug for StepBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepBackend")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl StepBackend {
    /// Spawns the claim loop (on the current tokio runtime) and returns the
    /// backend it feeds. `stop` ends claiming; so does closing the backend.
    pub fn start(claimer: Claimer, stop: CancellationToken) -> Self {
        let (tx, rx) = mpsc::channel(claimer.slots.available_permits().max(1));
        let store = claimer.store.clone();
        let handle = tokio::spawn(claimer.run(tx, stop.clone()));
        StepBackend {
            rx: Some(rx),
            claimer: Some(handle),
            stop,
            store,
            closing: None,
            closed: false,
        }
    }

    fn close_future(&mut self) -> Closing {
        self.stop.cancel();
        let claimer = self.claimer.take();
        let rx = self.rx.take();
        let store = self.store.clone();
        Box::pin(async move {
            if let Some(claimer) = claimer {
                let _ = claimer.await;
            }
            let Some(mut rx) = rx else { return };
            let mut unstarted = Vec::new();
            while let Ok(step) = rx.try_recv() {
                unstarted.push(step);
            }
            let held: Vec<_> = unstarted.iter().map(|s| s.claim.held()).collect();
            if held.is_empty() {
                return;
            }
            match store.release(&held).await {
                Ok(released) => info!(released, "gave back steps that never started"),
                Err(error) => {
                    warn!(%error, "cannot give back unstarted steps; their leases will expire")
                }
            }
        })
    }
}

impl Backend for StepBackend {
    type Task = Task<ClaimedStep>;
    type Error = Infallible;

    fn poll_ready(
        &mut self,
        _: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Option<Result<Task<ClaimedStep>, Infallible>>> {
        match self.rx.as_mut() {
            Some(rx) => rx.poll_recv(cx).map(|step| step.map(|s| Ok(Task::new(s)))),
            None => Poll::Ready(None),
        }
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), Infallible>> {
        if self.closed {
            return Poll::Ready(Ok(()));
        }
        if self.closing.is_none() {
            self.closing = Some(self.close_future());
        }
        let Some(closing) = self.closing.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        match closing.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.closing = None;
                self.closed = true;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl BackendConfig for StepBackend {
    type Args = ClaimedStep;
    type Id = RandomId;
    type Kind = Ephemeral;
    type Config = ();
    type Layer = Identity;

    fn config(&self) -> &() {
        &()
    }

    fn middleware(&mut self, _: &mut WorkerContext) -> Identity {
        Identity::new()
    }
}
