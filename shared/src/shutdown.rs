//! The shutdown signal of every long-running flinkq process (the worker,
//! `flinkq schedule`): the first SIGTERM or SIGINT.

use std::fmt;
use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

/// The signal that asked for the shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM (Kubernetes, systemd, `kill`).
    Terminate,
    /// SIGINT (Ctrl-C).
    Interrupt,
}

impl Signal {
    /// The signal's usual name.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signal handler could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the {signal} handler: {source}")]
pub struct SignalError {
    /// Which one.
    pub signal: Signal,
    /// What the OS said.
    #[source]
    pub source: std::io::Error,
}

/// Installs the SIGTERM and SIGINT handlers now (so a signal that arrives
/// before the caller awaits is not lost) and resolves at the first of them.
pub fn on_signal() -> Result<impl Future<Output = Signal> + Send, SignalError> {
    let install = |which: Signal, kind: SignalKind| {
        signal(kind).map_err(|source| SignalError {
            signal: which,
            source,
        })
    };
    let mut terminate = install(Signal::Terminate, SignalKind::terminate())?;
    let mut interrupt = install(Signal::Interrupt, SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => Signal::Terminate,
            _ = interrupt.recv() => Signal::Interrupt,
        }
    })
}
