//! The BullMQ yardstick: BullMQ's step-job program (`bullmq/worker.js` and
//! `bullmq/enqueue.js` of `../shared/bench/peers`, run from their place) does
//! the drain scenario's work in the same run: the same number of logins, the
//! same simulator scripted the same way (2 pending answers, then the 200), a
//! fresh redis-server, measured the same way. BullMQ's best configuration in
//! the peers' results is reported: 2 worker processes of 64 jobs each, HTTP
//! with `undici.request`.
//!
//! Its npm packages (the versions pinned in the peers' `package-lock.json`)
//! are installed once into `<target>/bench-bullmq/node_modules` and found by
//! Node through `NODE_PATH`; the peers' folder is only read.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use flinkq_shared::LoginId;
use serde::Serialize;

use super::redis_stats::{
    command_calls, delta, process_cpu_seconds, redis_cpu_seconds, sorted_set_len,
};
use super::scenarios::{drain_script, scripted, world};
use crate::sim::SimConfig;
use crate::worker_process::terminate;

/// BullMQ worker processes, as in the peers' best configuration.
const PROCESSES: usize = 2;
/// Jobs in flight per process (the peers' setting).
const CONCURRENCY: usize = 64;
/// The HTTP client of the best configuration.
const HTTP_CLIENT: &str = "undici";
/// BullMQ's queue name (its keys are `bull:<queue>:…`).
const QUEUE: &str = "flinks";
/// `npm ci` may download; a run stuck longer than this is a failure.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// What BullMQ measured.
#[derive(Debug, Clone, Serialize)]
pub struct BullmqFigures {
    /// The configuration measured.
    pub config: String,
    /// Logins enqueued and drained.
    pub logins: usize,
    /// `node enqueue.js` (addBulk by 1,000): logins/s, process wall time
    /// including Node's start-up, as `flinkq enqueue` is timed.
    pub enqueue_logins_per_s: f64,
    /// Simulator calls during the drain (Authorize + /Investments).
    pub steps: u64,
    /// Steps per second, from the workers' spawn to the last job finished.
    pub steps_per_s: f64,
    /// Jobs per second, likewise.
    pub jobs_per_s: f64,
    /// CPU of the worker processes (user + system) per step, µs.
    pub worker_cpu_us_per_step: f64,
    /// Redis' CPU (`INFO cpu`) per step, µs.
    pub redis_cpu_us_per_step: f64,
    /// Redis commands per step, including those run inside scripts.
    pub commands_per_step: f64,
    /// Redis round trips (commands sent by a client) per step.
    pub round_trips_per_step: f64,
}

/// Why the BullMQ yardstick has no figures.
#[derive(Debug, thiserror::Error)]
pub enum BullmqError {
    /// The peers' folder is not where `--peers` says.
    #[error("{0} not found: pass --peers <the folder holding bullmq/worker.js>, or --no-bullmq")]
    PeersMissing(PathBuf),
    /// Node or npm could not start.
    #[error(
        "`{program}` could not start ({source}): install Node.js 20+ and npm, or pass --no-bullmq"
    )]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A step ended badly; its log says more.
    #[error("{what} {how}; its output ({log}):\n{tail}")]
    Step {
        /// The step.
        what: &'static str,
        /// `exited with …`, `timed out after …`.
        how: String,
        /// Its log file.
        log: String,
        /// The last lines of that log.
        tail: String,
    },
    /// The drain did not end with every job succeeded.
    #[error(
        "the drain was not exact: {completed} completed and {failed} failed of {logins} jobs (every one should complete); worker logs in {logs}"
    )]
    NotExact {
        /// Jobs in `bull:<queue>:completed`.
        completed: u64,
        /// Jobs in `bull:<queue>:failed`.
        failed: u64,
        /// Jobs enqueued.
        logins: usize,
        /// Where the worker logs are.
        logs: String,
    },
}

/// Where the yardstick works.
#[derive(Debug, Clone)]
pub struct BullmqSetup {
    /// The peers' folder (`bullmq/`, `package.json`, `package-lock.json`).
    pub peers: PathBuf,
    /// Where `node_modules` goes (kept between runs).
    pub install_dir: PathBuf,
    /// Scratch space of this run (logins file, results, logs).
    pub work: PathBuf,
    /// How long the drain may take.
    pub drain_timeout: Duration,
}

/// Installs BullMQ if needed, then enqueues and drains `logins` jobs with it.
pub async fn measure_bullmq(
    setup: &BullmqSetup,
    logins: usize,
) -> Result<BullmqFigures, BullmqError> {
    // absolute: Node runs in the peers' folder, the paths must not move with it
    let peers = std::fs::canonicalize(&setup.peers)
        .map_err(|_| BullmqError::PeersMissing(setup.peers.clone()))?;
    let program = |name: &str| peers.join("bullmq").join(name);
    for needed in [
        program("worker.js"),
        program("enqueue.js"),
        peers.join("package-lock.json"),
    ] {
        if !needed.exists() {
            return Err(BullmqError::PeersMissing(needed));
        }
    }
    install(&peers, &setup.install_dir)?;
    let work = setup.work.join("bullmq");
    std::fs::create_dir_all(&work).map_err(|e| step_error("creating the work folder", e, &work))?;
    let node_path = setup.install_dir.join("node_modules");

    let w = world(SimConfig::default()).await;
    let ids: Vec<LoginId> = (0..logins).map(|_| LoginId::random()).collect();
    scripted(&w.sim, &ids, &drain_script());
    let file = work.join("logins.txt");
    let text: String = ids.iter().map(|id| format!("{id}\n")).collect();
    std::fs::write(&file, text).map_err(|e| step_error("writing the logins file", e, &file))?;
    let node = |script: PathBuf| {
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .current_dir(&peers)
            .env("NODE_PATH", &node_path)
            .env("NODE_ENV", "production")
            .env("REDIS_URL", w.redis.url())
            .env("QUEUE", QUEUE);
        cmd
    };

    let started = Instant::now();
    run_to_end(
        "node enqueue.js",
        node(program("enqueue.js")).arg(&file),
        &work.join("enqueue.log"),
        Duration::from_secs(600),
    )?;
    let enqueue_seconds = started.elapsed().as_secs_f64();

    let mut conn = w.store.connection();
    let before = command_calls(&mut conn).await;
    let redis_before = redis_cpu_seconds(&mut conn).await;
    let started = Instant::now();
    let mut workers = Vec::with_capacity(PROCESSES);
    for i in 0..PROCESSES {
        let log = work.join(format!("worker{i}.log"));
        let mut cmd = node(program("worker.js"));
        cmd.env("AUTHORIZE_URL", w.sim.authorize_url())
            .env("INVESTMENTS_URL", w.sim.investments_url())
            .env("POLL_INTERVAL_MS", "0")
            .env("CONCURRENCY", CONCURRENCY.to_string())
            .env("HTTP_CLIENT", HTTP_CLIENT)
            .env("RESULTS_DIR", work.join("results"));
        workers.push((spawn_logged("node worker.js", &mut cmd, &log)?, log));
    }
    let completed_key = format!("bull:{QUEUE}:completed");
    let failed_key = format!("bull:{QUEUE}:failed");
    let mut polls = 0u64;
    let outcome = loop {
        let completed = sorted_set_len(&mut conn, &completed_key).await;
        let failed = sorted_set_len(&mut conn, &failed_key).await;
        polls += 2;
        if completed + failed >= logins as u64 {
            break Ok((completed, failed));
        }
        if let Some((log, status)) = workers
            .iter_mut()
            .find_map(|(child, log)| Some((log.clone(), child.try_wait().ok().flatten()?)))
        {
            break Err(failed_step(
                "a BullMQ worker",
                format!("exited with {status} during the drain"),
                &log,
            ));
        }
        if started.elapsed() > setup.drain_timeout {
            break Err(BullmqError::Step {
                what: "the BullMQ drain",
                how: format!(
                    "was not done after {:?}: {} of {logins} jobs finished",
                    setup.drain_timeout,
                    completed + failed
                ),
                log: work.join("worker0.log").display().to_string(),
                tail: tail(&work.join("worker0.log")),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = started.elapsed().as_secs_f64();
    let worker_cpu: f64 = workers
        .iter()
        .map(|(child, _)| process_cpu_seconds(&child.id().to_string()))
        .sum();
    let redis_cpu = redis_cpu_seconds(&mut conn).await - redis_before;
    let commands = delta(&before, &command_calls(&mut conn).await).without_harness(polls);
    for (child, _) in workers {
        terminate(child, Duration::from_secs(30));
    }
    let (completed, failed) = outcome?;
    if completed != logins as u64 || failed != 0 {
        return Err(BullmqError::NotExact {
            completed,
            failed,
            logins,
            logs: work.display().to_string(),
        });
    }
    let totals = w.sim.totals();
    let steps = totals.authorize_calls + totals.product_calls;
    let per_step = |x: f64| x / steps.max(1) as f64;
    Ok(BullmqFigures {
        config: format!("bullmq {PROCESSES}w {HTTP_CLIENT}"),
        logins,
        enqueue_logins_per_s: logins as f64 / enqueue_seconds,
        steps,
        steps_per_s: steps as f64 / elapsed,
        jobs_per_s: logins as f64 / elapsed,
        worker_cpu_us_per_step: per_step(worker_cpu * 1e6),
        redis_cpu_us_per_step: per_step(redis_cpu * 1e6),
        commands_per_step: per_step(commands.all as f64),
        round_trips_per_step: per_step(commands.round_trips as f64),
    })
}

/// `npm ci` of the peers' lock file into `dir`, unless that lock file is
/// already installed there.
fn install(peers: &Path, dir: &Path) -> Result<(), BullmqError> {
    let lock = std::fs::read(peers.join("package-lock.json")).unwrap_or_default();
    let installed = std::fs::read(dir.join("package-lock.json")).unwrap_or_default();
    if lock == installed && dir.join("node_modules/bullmq/package.json").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| step_error("creating the npm folder", e, dir))?;
    for manifest in ["package.json", "package-lock.json"] {
        // the peers' files are read-only, and so would an earlier copy be
        let _ = std::fs::remove_file(dir.join(manifest));
        std::fs::copy(peers.join(manifest), dir.join(manifest))
            .map_err(|e| step_error("copying the npm manifests", e, dir))?;
    }
    eprintln!("installing BullMQ into {} (npm ci)...", dir.display());
    run_to_end(
        "npm ci",
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .env("npm_config_cache", dir.join("npm-cache")),
        &dir.join("npm-ci.log"),
        INSTALL_TIMEOUT,
    )
}

fn spawn_logged(what: &'static str, cmd: &mut Command, log: &Path) -> Result<Child, BullmqError> {
    let out = File::create(log).map_err(|e| step_error(what, e, log))?;
    let err = out.try_clone().map_err(|e| step_error(what, e, log))?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|source| BullmqError::Spawn {
            program: cmd.get_program().to_string_lossy().into_owned(),
            source,
        })
}

/// Runs a command to its end within `timeout`, its output in `log`.
fn run_to_end(
    what: &'static str,
    cmd: &mut Command,
    log: &Path,
    timeout: Duration,
) -> Result<(), BullmqError> {
    let mut child = spawn_logged(what, cmd, log)?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(exited(what, status, log)),
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed_step(
                    what,
                    format!("timed out after {timeout:?}"),
                    log,
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(step_error(what, e, log)),
        }
    }
}

fn exited(what: &'static str, status: ExitStatus, log: &Path) -> BullmqError {
    failed_step(what, format!("exited with {status}"), log)
}

fn failed_step(what: &'static str, how: String, log: &Path) -> BullmqError {
    BullmqError::Step {
        what,
        how,
        log: log.display().to_string(),
        tail: tail(log),
    }
}

fn step_error(what: &'static str, e: std::io::Error, path: &Path) -> BullmqError {
    BullmqError::Step {
        what,
        how: format!("failed: {e}"),
        log: path.display().to_string(),
        tail: String::new(),
    }
}

/// A log's first and last lines, for an error message (Node prints the
/// error first, then its stack, then its version).
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= 12 {
        return lines.join("\n");
    }
    format!(
        "{}\n  …\n{}",
        lines[..5].join("\n"),
        lines[lines.len() - 6..].join("\n")
    )
}
