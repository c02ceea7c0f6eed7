//! flinkq's test kit: the pieces end-to-end tests, the benchmark and the demo
//! are built from. Everything here is real: a real `redis-server`, real
//! worker processes, real HTTP.
//!
//! # Layout
//!
//! - [`sim`]: the Flinks simulator (axum), scripted per login, counting what it sees.
//! - [`bench`]: the `flinkq-bench` scenarios, yardsticks and report.
//! - [`browser`]: Debian's chromium driven by a playwright-core script (`tests/browser/`) for the console.
//! - [`prom_text`]: reads scraped `/metrics` text for assertions.
//! - [`fixtures`]: transitions computed by the real state machine, for tests that apply them by hand.
//! - [`delay_proxy`]: a TCP proxy that delays, holds or cuts traffic (a slow link to Redis or Flinks).
//! - [`redis_harness`]: a private `redis-server` per test (free port, own dir, kill/restart, AOF).
//! - [`redis_topology`]: a Sentinel group and a Redis Cluster of real processes around a harness node.
//! - [`scenario`]: the usual end-to-end test bed (Redis, simulator, worker setup, store) in one call.
//! - [`serve_process`]: a real `flinkq serve` (free port, both tokens) and an SSE reader.
//! - [`worker_process`]: real `flinkq-worker` / `flinkq` processes (spawn, SIGKILL, SIGTERM).

pub mod bench;
pub mod browser;
pub mod cli_output;
pub mod delay_proxy;
pub mod fixtures;
pub mod prom_text;
pub mod redis_harness;
pub mod redis_topology;
pub mod scenario;
pub mod serve_process;
pub mod sim;
pub mod worker_process;
