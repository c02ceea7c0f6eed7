//! flinkq's worker: claims steps from Redis, calls Flinks, commits each
//! transition atomically. apalis (`apalis-core`) runs the worker; the backend
//! is flinkq's own (see DESIGN.md, "Why not apalis-redis").
//!
//! # Layout
//!
//! - [`config`]: the `flinkq-worker` flags (each also a `FLINKQ_…` env var).
//! - [`run`](mod@run): the process: store, background loops, apalis monitor, shutdown.
//! - [`backend`]: `StepBackend`, the apalis backend fed by the claim loop.
//! - [`claimer`]: the claim loop (batches, concurrency slots, idle sleeps).
//! - [`claimed`]: a claimed step, its lease guard and its Redis-anchored clock.
//! - [`executor`]: runs one step and commits its transition.
//! - [`flinks`]: the Flinks HTTP client, its typed bodies, and answers read under caps (no redirects).
//! - [`results`]: atomic `<loginId>.json` result files, streamed; `.staged/<jobId>-<first claim>.json` links.
//! - [`result_sink`]: the configured sink (files or Redis) and what a commit records.
//! - [`leases`]: the leases this process holds (renewed by the heartbeat).
//! - [`services`]: the background services, one per file (heartbeat, reaper, retention, gauges,
//!   results probe, batch webhook, presence), run by one loop with backoff and shutdown.
//! - [`events`]: what happens, as events (no Prometheus in the domain).
//! - [`metrics`]: the Prometheus mapping of events, and the queue gauges.
//! - [`health`]: `/healthz`, `/readyz` and `/metrics`.
//! - [`secret`]: a string that never prints.
//! - [`wake`]: wakes the claim loop for steps scheduled sooner than it would look.
//! - [`error`]: the `WorkerError` enum.

pub mod backend;
pub mod claimed;
pub mod claimer;
pub mod config;
pub mod error;
pub mod events;
pub mod executor;
pub mod flinks;
pub mod health;
pub mod leases;
pub mod metrics;
pub mod result_sink;
mod result_writer;
pub mod results;
pub mod run;
pub mod secret;
pub mod services;
pub mod wake;

pub use config::WorkerConfig;
pub use error::WorkerError;
pub use run::run;
