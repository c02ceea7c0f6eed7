//! Issue 10, operations: nothing leaks through `--help`, bad names and bad
//! configuration stop at the door, and the CLI rides out Redis blips. Real
//! binaries, a real `redis-server` that is killed and restarted for real.

use std::process::Command;
use std::time::Duration;

use clap::CommandFactory;
use flinkq_shared::LoginId;
use flinkq_shared::store::{Store, StoreConfig};
use flinkq_tests::cli_output::CliOutput;
use flinkq_tests::redis_harness::{RedisOptions, RedisServer};
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::SimConfig;
use flinkq_tests::worker_process::{
    FlinkqProcess, WorkerProcess, flinkq_cli, flinkq_command, free_port, wait_for, worker_refusal,
    workspace_binary,
};

/// Environment variables of one run: (name, value).
type Vars<'a> = &'a [(&'a str, &'a str)];

fn aof() -> RedisOptions {
    RedisOptions {
        aof: true,
        ..RedisOptions::default()
    }
}

/// Every subcommand path of `flinkq` (`[]`, `["enqueue"]`, `["dead", "retry"]`…).
fn subcommand_paths(command: &clap::Command, prefix: &[String], paths: &mut Vec<Vec<String>>) {
    paths.push(prefix.to_vec());
    for sub in command.get_subcommands() {
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_owned());
        subcommand_paths(sub, &path, paths);
    }
}

#[test]
fn help_never_prints_a_secret_env_value() {
    let secrets = [
        (
            "FLINKQ_REDIS_URL",
            "redis://:s3cr3t-redis-password@127.0.0.1:1",
        ),
        (
            "FLINKQ_BATCH_WEBHOOK",
            "https://hooks.example/s3cr3t-hook-token",
        ),
        ("FLINKQ_BATCH_WEBHOOK_SECRET", "s3cr3t-hmac"),
        ("FLINKQ_AUTH_KEY", "s3cr3t-auth-key"),
        ("FLINKQ_AUTH_KEY_FILE", "/run/s3cr3t-key-file"),
        (
            "FLINKQ_FLINKS_URL",
            "https://user:s3cr3t-banking@flinks.example/v3/customer",
        ),
        (
            "FLINKQ_WEALTH_URL",
            "https://user:s3cr3t-wealth@flinks.example/v3/customer",
        ),
        (
            "FLINKQ_AUTHORIZE_URL",
            "https://user:s3cr3t-authorize@flinks.example/Authorize",
        ),
        (
            "FLINKQ_INVESTMENTS_URL",
            "https://user:s3cr3t-investments@flinks.example/Investments",
        ),
        ("FLINKS_SIM_AUTH_KEY", "s3cr3t-sim-key"),
    ];
    let mut runs: Vec<(&str, Vec<String>)> = Vec::new();
    let mut paths = Vec::new();
    subcommand_paths(&flinkq_producer::cli::Cli::command(), &[], &mut paths);
    assert!(paths.len() > 10, "every subcommand is visited: {paths:?}");
    for path in paths {
        for flag in ["--help", "-h"] {
            let mut args = path.clone();
            args.push(flag.into());
            runs.push(("flinkq", args));
        }
    }
    for binary in ["flinkq-worker", "flinkq-demo", "flinks-sim"] {
        for flag in ["--help", "-h"] {
            runs.push((binary, vec![flag.into()]));
        }
    }
    for (binary, args) in runs {
        let out = Command::new(workspace_binary(binary))
            .env_clear()
            .envs(secrets)
            .args(&args)
            .output()
            .expect("run --help");
        let printed = out.stdout_text() + &out.stderr_text();
        assert!(out.status.success(), "{binary} {args:?}: {printed}");
        assert!(printed.contains("Usage"), "{binary} {args:?}: {printed}");
        assert!(
            !printed.contains("s3cr3t"),
            "{binary} {args:?} printed a secret:\n{printed}"
        );
    }
}

#[test]
fn batch_names_are_validated_like_namespaces() {
    let redis = RedisServer::start().expect("redis-server");
    let login = LoginId::random().to_string();
    let too_long = "b".repeat(65);
    let bad_names = [
        "",
        "nightly\nforged line",
        "\u{1b}[31mred",
        "a b",
        "a:b",
        "{tag}",
        "tab\there",
        too_long.as_str(),
    ];
    for name in bad_names {
        let batch_env = [("FLINKQ_BATCH", name)];
        let prefix_env = [("FLINKQ_SCHEDULE_BATCH_PREFIX", name)];
        let runs: Vec<(Vec<&str>, Vars<'_>)> = vec![
            (vec!["enqueue", "--batch", name, &login], &[]),
            (vec!["enqueue", &login], &batch_env),
            (vec!["refresh", "--batch", name], &[]),
            (vec!["status", "--batch", name], &[]),
            (vec!["status", "--batch", name, "--watch"], &[]),
            (
                vec!["schedule", "--cron", "0 2 * * *", "--batch-prefix", name],
                &[],
            ),
            (vec!["schedule", "--cron", "0 2 * * *"], &prefix_env),
        ];
        for (args, env) in runs {
            let out = flinkq_command(&redis.url(), "ops")
                .args(&args)
                .envs(env.iter().copied())
                .output()
                .expect("run flinkq");
            let stderr = out.stderr_text();
            assert_eq!(out.status.code(), Some(64), "{args:?} {env:?}: {stderr}");
            assert!(
                stderr.contains("is not a batch name") || stderr.contains("batch prefix"),
                "{args:?} {env:?}: {stderr}"
            );
            assert!(
                !stderr.contains('\u{1b}') && !stderr.contains("\nforged line"),
                "the name is quoted, never echoed raw: {stderr:?}"
            );
        }
    }
    // a prefix so long that <prefix>-<tick> would not be a batch name
    let long_prefix = "p".repeat(60);
    let out = flinkq_cli(
        &redis.url(),
        "ops",
        &[
            "schedule",
            "--cron",
            "0 2 * * *",
            "--batch-prefix",
            &long_prefix,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(64), "{}", out.stderr_text());

    let keys = Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "DBSIZE"])
        .output()
        .expect("redis-cli");
    assert_eq!(keys.stdout_text().trim(), "0", "nothing was written");

    let good = flinkq_cli(
        &redis.url(),
        "ops",
        &["enqueue", "--batch", "nightly-2026.11_25", &login],
        None,
    );
    assert!(good.status.success(), "{}", good.stderr_text());
}

#[test]
fn bad_configuration_is_refused_at_start_with_the_flag_and_reason() {
    // nothing listens there: a configuration accepted by mistake ends on
    // "cannot reach Redis", never hangs
    let nowhere = format!("redis://127.0.0.1:{}", free_port());
    let cases: &[(Vars<'_>, &str, &str)] = &[
        (
            &[("FLINKQ_POLL_INTERVAL", "0s")],
            "--poll-interval (FLINKQ_POLL_INTERVAL)",
            "too short",
        ),
        (
            &[("FLINKQ_HTTP_TIMEOUT", "0s")],
            "--http-timeout (FLINKQ_HTTP_TIMEOUT)",
            "too short",
        ),
        (
            &[("FLINKQ_POLL_TIMEOUT", "30days")],
            "--poll-timeout (FLINKQ_POLL_TIMEOUT)",
            "too long",
        ),
        (
            &[("FLINKQ_POLL_TIMEOUT", "500000000years")],
            "--poll-timeout",
            "",
        ),
        (
            &[("FLINKQ_RETRY_BASE", "0s")],
            "--retry-base (FLINKQ_RETRY_BASE)",
            "too short",
        ),
        (
            &[("FLINKQ_RETRY_CAP", "0s")],
            "--retry-cap (FLINKQ_RETRY_CAP)",
            "too short",
        ),
        (
            &[("FLINKQ_RETRY_BASE", "10s"), ("FLINKQ_RETRY_CAP", "2s")],
            "--retry-cap (FLINKQ_RETRY_CAP)",
            "below FLINKQ_RETRY_BASE",
        ),
        (
            &[("FLINKQ_LEASE", "5s"), ("FLINKQ_HTTP_TIMEOUT", "30s")],
            "--lease (FLINKQ_LEASE)",
            "shorter than FLINKQ_HTTP_TIMEOUT",
        ),
        (
            &[("FLINKQ_MAX_RPS", "1e-300")],
            "--max-rps (FLINKQ_MAX_RPS)",
            "at least 0.01",
        ),
        (
            &[("FLINKQ_RETENTION", "0s")],
            "--retention (FLINKQ_RETENTION)",
            "too short",
        ),
        (
            &[("FLINKQ_REDIS_TIMEOUT", "0s")],
            "--redis-timeout",
            "out of range",
        ),
    ];
    for (vars, flag, reason) in cases {
        let mut env: Vec<(&str, String)> = vec![("FLINKQ_REDIS_URL", nowhere.clone())];
        env.extend(vars.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let out = worker_refusal(&env, Duration::from_secs(30));
        let stderr = out.stderr_text();
        assert_eq!(out.status.code(), Some(2), "{vars:?}: {stderr}");
        assert!(stderr.contains(flag), "{vars:?} names {flag}: {stderr}");
        assert!(
            stderr.contains(reason),
            "{vars:?} says {reason:?}: {stderr}"
        );
        assert!(
            !stderr.contains("cannot reach Redis"),
            "refused before Redis is touched: {stderr}"
        );
    }
    // the defaults (and the edge values) are consistent: only Redis is missing
    let results = tempfile::tempdir().expect("tempdir");
    for vars in [
        &[][..],
        &[("FLINKQ_MAX_RPS", "0")][..],
        &[
            ("FLINKQ_MAX_RPS", "0.01"),
            ("FLINKQ_LEASE", "10s"),
            ("FLINKQ_HTTP_TIMEOUT", "10s"),
        ][..],
    ] {
        let mut env: Vec<(&str, String)> = vec![
            ("FLINKQ_REDIS_URL", nowhere.clone()),
            ("FLINKQ_RESULTS_DIR", results.path().display().to_string()),
        ];
        env.extend(vars.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let out = worker_refusal(&env, Duration::from_secs(30));
        let stderr = out.stderr_text();
        assert!(stderr.contains("cannot reach Redis"), "{vars:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_results_dir_is_refused_at_start_and_readyz_drops_when_it_breaks() {
    let world = Scenario::start(Duration::from_millis(200)).await;
    // a regular file where the directory should be: even root cannot write there
    let blocker = world.work.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("write blocker");
    let out = worker_refusal(
        &[
            ("FLINKQ_REDIS_URL", world.redis.url()),
            ("FLINKQ_NAMESPACE", "test".into()),
            ("FLINKQ_RESULTS_DIR", blocker.display().to_string()),
        ],
        Duration::from_secs(30),
    );
    let stderr = out.stderr_text();
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("FLINKQ_RESULTS_DIR"), "{stderr}");
    assert!(stderr.contains("not-a-dir"), "{stderr}");

    let worker = WorkerProcess::spawn(&world.setup);
    let (_, body) = wait_for("/readyz", Duration::from_secs(20), async || {
        worker
            .health("/readyz")
            .await
            .filter(|(status, _)| *status == 200)
    })
    .await;
    assert_eq!(body["results_writable"], true);

    let dir = world.setup.results_dir.clone();
    let moved = world.work.path().join("results-moved");
    std::fs::rename(&dir, &moved).expect("move the results dir away");
    std::fs::write(&dir, b"x").expect("a file in its place");
    let (_, body) = wait_for("/readyz to drop", Duration::from_secs(30), async || {
        worker
            .health("/readyz")
            .await
            .filter(|(status, _)| *status == 503)
    })
    .await;
    assert_eq!(body["results_writable"], false, "{body}");
    assert_eq!(
        body["redis"], "up",
        "only the results are the problem: {body}"
    );
    let (status, _) = worker.health("/healthz").await.expect("/healthz");
    assert_eq!(status, 200, "the process is alive");

    std::fs::remove_file(&dir).expect("remove the file");
    std::fs::rename(&moved, &dir).expect("put the dir back");
    wait_for("/readyz to recover", Duration::from_secs(30), async || {
        worker
            .health("/readyz")
            .await
            .filter(|(status, _)| *status == 200)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_policy_is_warned_about_at_start() {
    for (policy, warned) in [("allkeys-lru", true), ("noeviction", false)] {
        let world = Scenario::start_full(
            Duration::from_millis(200),
            SimConfig::default(),
            RedisOptions {
                extra_args: vec!["--maxmemory-policy".into(), policy.into()],
                ..RedisOptions::default()
            },
        )
        .await;
        let _worker = WorkerProcess::spawn(&world.setup);
        let log = wait_for("the worker to start", Duration::from_secs(20), async || {
            let log = std::fs::read_to_string(&world.setup.log_file).ok()?;
            log.contains("worker started").then_some(log)
        })
        .await;
        let warning = log.lines().find(|line| line.contains("maxmemory-policy"));
        if warned {
            let warning = warning.unwrap_or_else(|| panic!("no warning for {policy}:\n{log}"));
            assert!(warning.contains("WARN"), "{warning}");
            assert!(warning.contains(policy), "{warning}");
            assert!(warning.contains("noeviction"), "{warning}");
        } else {
            assert!(warning.is_none(), "nothing to say about {policy}:\n{log}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_rides_out_a_redis_restart() {
    let mut world =
        Scenario::start_full(Duration::from_millis(200), SimConfig::default(), aof()).await;
    let logins = world.logins(3, &flinkq_tests::sim::Script::pending(2));
    world.enqueue("watched", &logins).await;
    let mut command = flinkq_command(&world.redis.url(), &world.setup.namespace);
    command.args([
        "status",
        "--batch",
        "watched",
        "--watch",
        "--interval",
        "200ms",
    ]);
    let mut watch = FlinkqProcess::spawn(command, world.work.path(), "watch");
    wait_for("the watch to print", Duration::from_secs(20), async || {
        watch.stdout().contains("watched: 0/3").then_some(())
    })
    .await;

    world.redis.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    world.redis.start_again().expect("redis-server again");
    assert!(
        watch.try_exit_status().is_none(),
        "the watch did not give up on a 1 s restart: {}",
        watch.stderr()
    );

    let _worker = WorkerProcess::spawn(&world.setup);
    let status = watch
        .wait(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("the watch never ended:\n{}", watch.stdout()));
    assert!(status.success(), "{status}: {}", watch.stderr());
    assert!(
        watch.stdout().contains("batch watched finished"),
        "{}",
        watch.stdout()
    );
    assert!(
        watch.stderr().contains("retrying"),
        "the outage was seen and ridden out: {}",
        watch.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_reconnects_promptly_after_a_redis_blip() {
    let mut redis = RedisServer::start_with(aof()).expect("redis-server");
    let store = Store::connect(&StoreConfig::new(redis.url(), "sched"))
        .await
        .expect("store");
    let logins: Vec<LoginId> = (0..5).map(|_| LoginId::random()).collect();
    store.register(&logins).await.expect("register");
    let work = tempfile::tempdir().expect("tempdir");
    let mut command = flinkq_command(&redis.url(), "sched");
    command
        .env("RUST_LOG", "info")
        .env("FLINKQ_LOG_FORMAT", "json")
        .args(["schedule", "--cron", "*/2 * * * * *"]);
    let mut scheduler = FlinkqProcess::spawn(command, work.path(), "scheduler");
    let ran = async |store: &Store, after_ms: u64| {
        let batches = store.batches(50).await.ok()?;
        batches
            .iter()
            .any(|b| b.created_ms > after_ms && b.counts.total == 5)
            .then_some(())
    };
    wait_for("a first tick", Duration::from_secs(20), async || {
        ran(&store, 0).await
    })
    .await;

    // long enough for a doubling backoff to reach delays of seconds
    redis.stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    redis.start_again().expect("redis-server again");
    let back = wait_for("Redis back", Duration::from_secs(10), async || {
        store.time_ms().await.ok()
    })
    .await;
    // ticks every 2 s, retries at most 1 s apart: the first tick after
    // Redis is back runs within a few seconds; 15 s is room for a loaded
    // machine (the old 30 s backoff cap needed up to ~40 s)
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    // logins still active from the first tick are skipped, so later runs
    // show in `schedule:last`, not in batch counts
    let ran_after = async |back: u64| store.schedule_last().await.ok().flatten() > Some(back);
    while !ran_after(back).await {
        assert!(
            std::time::Instant::now() < deadline,
            "no tick ran within 15 s of Redis coming back:\n{}",
            scheduler.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = scheduler
        .sigterm(Duration::from_secs(10))
        .expect("stops on SIGTERM");
    assert!(status.success(), "{status}\n{}", scheduler.stderr());
    let delays: Vec<Duration> = scheduler
        .stderr()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|entry| entry["retry_in"].as_str().map(debug_duration))
        .collect();
    assert!(
        delays.len() >= 3,
        "the blip was logged and retried: {delays:?}\n{}",
        scheduler.stderr()
    );
    assert!(
        delays.iter().all(|d| *d <= Duration::from_secs(1)),
        "retries stay at most 1 s apart, so the scheduler is back within a second of Redis: {delays:?}"
    );
}

/// A `Duration`'s `Debug` text (`150.1ms`, `1.2s`, `950µs`) back to a value.
fn debug_duration(text: &str) -> Duration {
    let (number, unit) = text
        .find(|c: char| c.is_ascii_alphabetic() || c == 'µ')
        .map(|at| text.split_at(at))
        .unwrap_or_else(|| panic!("not a duration: {text}"));
    let number: f64 = number
        .parse()
        .unwrap_or_else(|_| panic!("not a duration: {text}"));
    let seconds = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "µs" => number / 1e6,
        "ns" => number / 1e9,
        _ => panic!("unknown unit in {text}"),
    };
    Duration::from_secs_f64(seconds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_enqueue_reports_how_many_really_went_in() {
    let mut redis = RedisServer::start_with(aof()).expect("redis-server");
    let url = redis.url();
    let config = StoreConfig::new(url.clone(), "bulk");
    let store = Store::connect(&config).await.expect("store");
    let work = tempfile::tempdir().expect("tempdir");
    let write_logins = |name: &str, n: usize| {
        let path = work.path().join(name);
        let body: String = (0..n).map(|_| format!("{}\n", LoginId::random())).collect();
        std::fs::write(&path, body).expect("write logins");
        path
    };
    let enqueue = |file: &std::path::Path, batch: &str, retry_for: &str, name: &str| {
        let mut command = flinkq_command(&url, "bulk");
        command.arg("enqueue").arg("--file").arg(file).args([
            "--batch",
            batch,
            "--retry-for",
            retry_for,
            "--json",
        ]);
        FlinkqProcess::spawn(command, work.path(), name)
    };
    let total_in = async |store: &Store, batch: &str| {
        store
            .counts(Some(batch))
            .await
            .map(|c| c.total)
            .unwrap_or(0)
    };

    // a blip shorter than --retry-for: the lost round trip is resent, every
    // login goes in exactly once and the report is complete
    const N: u64 = 60_000;
    let file = write_logins("blip.txt", N as usize);
    let mut cli = enqueue(&file, "blip", "60s", "blip");
    wait_for(
        "the enqueue to start",
        Duration::from_secs(30),
        async || (total_in(&store, "blip").await > 0).then_some(()),
    )
    .await;
    redis.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.start_again().expect("redis-server again");
    let status = cli
        .wait(Duration::from_secs(120))
        .expect("the enqueue ends");
    assert!(status.success(), "{status}: {}", cli.stderr());
    let report: serde_json::Value =
        serde_json::from_str(cli.stdout().trim()).expect("one JSON report");
    let confirmed = report["enqueued"].as_u64().expect("enqueued")
        + report["already_in_batch"]
            .as_u64()
            .expect("already_in_batch");
    assert_eq!(confirmed, N, "every login is accounted for: {report}");
    assert!(
        cli.stderr().contains("retrying"),
        "the blip hit the enqueue: {}",
        cli.stderr()
    );
    let store = Store::connect(&config).await.expect("store again");
    assert_eq!(total_in(&store, "blip").await, N, "each login once");

    // Redis stays away longer than --retry-for: the CLI says exactly what is
    // confirmed, and Redis (back, with its AOF) agrees
    let file = write_logins("outage.txt", N as usize);
    let mut cli = enqueue(&file, "outage", "2s", "outage");
    wait_for(
        "the enqueue to start",
        Duration::from_secs(30),
        async || (total_in(&store, "outage").await > 0).then_some(()),
    )
    .await;
    redis.stop();
    let status = cli
        .wait(Duration::from_secs(60))
        .expect("the enqueue gives up");
    assert_eq!(status.code(), Some(69), "{}", cli.stderr());
    let report: serde_json::Value =
        serde_json::from_str(cli.stdout().trim()).expect("one JSON report");
    let partial = &report["interrupted"];
    let field = |name: &str| {
        partial[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {report}"))
    };
    let (confirmed, unconfirmed, not_sent) =
        (field("confirmed"), field("unconfirmed"), field("not_sent"));
    assert_eq!(confirmed + unconfirmed + not_sent, N, "{report}");
    assert_eq!(field("total"), N);
    assert_eq!(field("enqueued"), confirmed, "all fresh logins: {report}");
    assert!(unconfirmed > 0, "the round trip in flight: {report}");
    let stderr = cli.stderr();
    assert!(
        stderr.contains(&format!("Confirmed in Redis: {confirmed} of {N} logins")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("unconfirmed: {unconfirmed}")),
        "{stderr}"
    );
    assert!(stderr.contains("--batch outage"), "{stderr}");

    redis.start_again().expect("redis-server again");
    let store = Store::connect(&config).await.expect("store again");
    let really_in = total_in(&store, "outage").await;
    assert!(
        (confirmed..=confirmed + unconfirmed).contains(&really_in),
        "confirmed {confirmed} ≤ in Redis {really_in} ≤ confirmed + unconfirmed {}",
        confirmed + unconfirmed
    );

    // the advice works: the same command, the same batch, completes the set
    let mut again = enqueue(&file, "outage", "30s", "outage-again");
    let status = again
        .wait(Duration::from_secs(120))
        .expect("the re-run ends");
    assert!(status.success(), "{}", again.stderr());
    assert_eq!(total_in(&store, "outage").await, N);
}
