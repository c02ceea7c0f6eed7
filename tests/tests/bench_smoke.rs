//! The benchmark runs every scenario at a small size, as CI's smoke test.
//! No time limit is asserted: machines are noisy. Counts are (round trips
//! and commands per step), and that per-step CPU figures are reported.

use std::process::Command;

use flinkq_tests::worker_process::workspace_binary;

/// Redis commands per step, inside scripts included. Issue 14's target is
/// 12: the release worker measures 11.7 since the claim begins the steps it
/// hands out and commit.lua writes only what changes (31.5 before). This
/// smoke run uses the debug worker, whose slower steps let the heartbeat
/// renew more leases per step (11.8–12.0 measured), and the claim calls that
/// find nothing vary with the machine's load: hence the half-command margin.
/// A change of the scripts that adds a command per step fails it.
const COMMANDS_PER_STEP_BOUND: f64 = 12.5;

/// Round trips per step: one EVALSHA (the commit) plus a share of a claim
/// (1.02–1.03 measured); begin's round trip is gone unless a rate limit or
/// a wait makes the step begin again.
const ROUND_TRIPS_PER_STEP_BOUND: f64 = 1.5;

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
    // batched claims, begin folded into the claim, one commit per step
    let round_trips = figure("drain", "Redis round trips per step");
    assert!(
        round_trips <= ROUND_TRIPS_PER_STEP_BOUND,
        "{round_trips} Redis round trips per step"
    );
    let commands = figure("drain", "Redis commands per step");
    assert!(
        commands <= COMMANDS_PER_STEP_BOUND,
        "{commands} Redis commands per step (incl. in scripts), more than {COMMANDS_PER_STEP_BOUND}"
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
