//! The benchmark runs every scenario at a small size, as CI's smoke test.
//! No time limit is asserted: machines are noisy. Counts are (round trips
//! and commands per step), and that per-step CPU figures are reported.

use std::process::Command;

use flinkq_tests::worker_process::workspace_binary;

/// Issue 14 aims at 12 Redis commands per step (inside scripts included).
/// Until the scripts get there this is today's bound: 31.4–31.5 measured on
/// 2026-11-25 (smoke size and 5,000 logins), plus room for the claim calls
/// that find nothing, which vary with the machine's load (round trips per
/// step 2.02–2.12). The issue's work lowers it step by step to 12.
const ISSUE_14_COMMANDS_PER_STEP: f64 = 33.0;

#[test]
fn every_benchmark_scenario_runs_at_smoke_size() {
    let out = Command::new(workspace_binary("flinkq-bench"))
        .args(["all", "--smoke", "--no-baseline", "--no-bullmq", "--json"])
        .output()
        .expect("run flinkq-bench");
    assert!(
        out.status.success(),
        "flinkq-bench failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json output");
    let figures = report["figures"].as_array().expect("figures");
    let figure = |scenario: &str, metric: &str| -> f64 {
        figures
            .iter()
            .find(|f| {
                f["scenario"] == scenario
                    && f["metric"].as_str().is_some_and(|m| m.starts_with(metric))
            })
            .and_then(|f| f["value"].as_f64())
            .unwrap_or_else(|| panic!("no figure {scenario}/{metric} in {report}"))
    };
    for (scenario, metric) in [
        ("enqueue", "logins/s"),
        ("drain", "steps/s"),
        ("drain", "jobs/s"),
        ("hold", "worker RSS"),
        ("hold", "polls measured"),
        ("recover", "seconds until"),
    ] {
        let value = figure(scenario, metric);
        assert!(
            value.is_finite() && value > 0.0,
            "{scenario}/{metric} = {value}"
        );
    }
    // batched claims and commits: at most 3 Redis round trips per step
    let round_trips = figure("drain", "Redis round trips per step");
    assert!(
        round_trips <= 3.0,
        "{round_trips} Redis round trips per step"
    );
    let commands = figure("drain", "Redis commands per step");
    assert!(
        commands <= ISSUE_14_COMMANDS_PER_STEP,
        "{commands} Redis commands per step (incl. in scripts), more than {ISSUE_14_COMMANDS_PER_STEP}"
    );
    for metric in ["worker CPU per step", "Redis CPU per step"] {
        let value = figure("drain", metric);
        assert!(value.is_finite() && value > 0.0, "drain/{metric} = {value}");
    }
    // the BullMQ yardstick needs Node and npm's registry: CI skips it, and
    // the output says so
    assert!(
        report["yardsticks"]["bullmq"].is_null()
            && report["yardsticks"]["bullmq_note"]
                .as_str()
                .is_some_and(|note| note.contains("skipped (--no-bullmq)")),
        "{}",
        report["yardsticks"]
    );
    // enqueue: one script call per 1,000 logins
    assert!(figure("enqueue", "round trips per 1,000 logins") <= 2.0);
    // redis-benchmark yardsticks were measured, and ratios reported against them
    assert!(
        report["yardsticks"]["set"]
            .as_f64()
            .is_some_and(|v| v > 0.0),
        "{}",
        report["yardsticks"]
    );
    assert!(
        figures.iter().any(|f| f["ratio"].is_f64()),
        "ratios to the yardsticks"
    );
}
