//! The yardsticks, measured in the same run on the same machine: Redis' own
//! limit (`redis-benchmark`), the apalis-redis 1.0 baseline and BullMQ
//! (`bullmq.rs`).

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use super::bullmq::BullmqFigures;

/// Yardstick figures (operations per second, BullMQ's per step).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Yardsticks {
    /// `redis-benchmark -t set`, unpipelined.
    pub set: Option<f64>,
    /// `redis-benchmark -t set -P 16`.
    pub set_pipelined: Option<f64>,
    /// `redis-benchmark -t zadd`.
    pub zadd: Option<f64>,
    /// `redis-benchmark EVALSHA` of `return 1`.
    pub evalsha: Option<f64>,
    /// apalis-redis bulk push, jobs/s.
    pub apalis_push: Option<f64>,
    /// apalis-redis end-to-end no-op jobs, jobs/s.
    pub apalis_e2e: Option<f64>,
    /// BullMQ doing the drain scenario's work.
    pub bullmq: Option<BullmqFigures>,
    /// Why BullMQ has no figures (skipped, or failed and why).
    pub bullmq_note: Option<String>,
}

impl Yardsticks {
    /// One line per yardstick, for the table's header.
    pub fn summary(&self) -> String {
        let per_s = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}/s"));
        let mut out = format!(
            "yardsticks: redis SET {}, SET -P16 {}, ZADD {}, EVALSHA {}; apalis-redis push {}, e2e {}\n",
            per_s(self.set),
            per_s(self.set_pipelined),
            per_s(self.zadd),
            per_s(self.evalsha),
            per_s(self.apalis_push),
            per_s(self.apalis_e2e),
        );
        match (&self.bullmq, &self.bullmq_note) {
            (Some(b), _) => out.push_str(&format!(
                "BullMQ yardstick: {} on {} logins ({} steps)\n",
                b.config, b.logins, b.steps
            )),
            (None, Some(note)) => out.push_str(&format!("BullMQ yardstick {note}\n")),
            (None, None) => {}
        }
        out
    }
}

fn rate(output: &str) -> Option<f64> {
    output
        .lines()
        .filter_map(|line| line.split_once(": ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|n| n.parse::<f64>().ok())
        .next_back()
}

fn redis_benchmark(port: u16, args: &[&str]) -> Option<f64> {
    let out = Command::new("redis-benchmark")
        .args(["-p", &port.to_string(), "-q", "-n", "100000"])
        .args(args)
        .output()
        .ok()?;
    rate(&String::from_utf8_lossy(&out.stdout).replace('\r', "\n"))
}

fn per_second(output: &str, marker: &str) -> Option<f64> {
    output
        .lines()
        .find(|line| line.contains(marker))
        .and_then(|line| line.split("=> ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Measures the yardsticks against the redis-server on `port`, and runs the
/// apalis-redis baseline script `baseline` when given and present.
pub fn measure_yardsticks(port: u16, baseline: Option<&Path>) -> Yardsticks {
    let sha = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "SCRIPT", "LOAD", "return 1"])
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut yardsticks = Yardsticks {
        set: redis_benchmark(port, &["-t", "set"]),
        set_pipelined: redis_benchmark(port, &["-t", "set", "-P", "16"]),
        zadd: redis_benchmark(port, &["-t", "zadd"]),
        evalsha: redis_benchmark(port, &["evalsha", &sha, "0"]),
        ..Yardsticks::default()
    };
    match baseline {
        Some(script) if script.exists() => {
            eprintln!(
                "running the apalis-redis baseline ({})...",
                script.display()
            );
            if let Ok(out) = Command::new(script).output() {
                let text = String::from_utf8_lossy(&out.stdout);
                yardsticks.apalis_push = per_second(&text, "pushed");
                yardsticks.apalis_e2e = per_second(&text, "e2e total");
            }
        }
        Some(script) => eprintln!(
            "apalis-redis baseline not found at {}; skipped",
            script.display()
        ),
        None => {}
    }
    yardsticks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_tools_output() {
        assert_eq!(
            rate("SET: 103092.78 requests per second, p50=0.231 msec\n"),
            Some(103092.78)
        );
        let lab = "pushed 20000 jobs (chunk 1000) in 0.169s => 118343 jobs/s\nworker ok=true; e2e total 2.500s => 8000 jobs/s\n";
        assert_eq!(per_second(lab, "pushed"), Some(118343.0));
        assert_eq!(per_second(lab, "e2e total"), Some(8000.0));
    }
}
