//! The benchmark harness behind `flinkq-bench`: each scenario starts its own
//! redis-server and simulator, runs the release binaries, and reports figures
//! measured in that run, with ratios to yardsticks measured on the same
//! machine in the same run (`redis-benchmark`, the apalis-redis baseline,
//! BullMQ doing the drain's work).

mod bullmq;
mod redis_stats;
mod report;
mod scenarios;
mod yardsticks;

pub use bullmq::{BullmqError, BullmqFigures, BullmqSetup, measure_bullmq};
// also for the group-commit tests' call count and CPU measurement
pub use redis_stats::{command_calls, redis_cpu_seconds};
pub use report::{Figure, Report};
pub use scenarios::{Scenario as BenchScenario, Sizes, run_scenario};
pub use yardsticks::{Yardsticks, measure_yardsticks};
