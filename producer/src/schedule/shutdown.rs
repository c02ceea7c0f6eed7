//! The scheduler's shutdown future: the first SIGTERM or SIGINT.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

use crate::error::CliError;

/// Installs the SIGTERM and SIGINT handlers now (so a signal that arrives
/// before the loop starts is not lost) and resolves at the first of them.
pub fn on_signal() -> Result<impl Future<Output = ()>, CliError> {
    let mut term = signal(SignalKind::terminate()).map_err(|source| CliError::Signal {
        signal: "SIGTERM",
        source,
    })?;
    let mut int = signal(SignalKind::interrupt()).map_err(|source| CliError::Signal {
        signal: "SIGINT",
        source,
    })?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping the scheduler"),
            _ = int.recv() => tracing::info!("SIGINT: stopping the scheduler"),
        }
    })
}
