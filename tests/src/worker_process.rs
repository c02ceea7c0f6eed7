//! Real `flinkq-worker` and `flinkq` processes for end-to-end tests: spawned
//! from the workspace's build directory, SIGKILLed or SIGTERMed for real.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use flinkq_shared::{LoginId, Product};

/// Path of a workspace binary next to the running test executable
/// (`target/<profile>/<name>`). Build them first: `cargo build --workspace
/// --bins` (the project's test script does).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test>  or  target/<profile>/<bin>
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests (scripts/test does)",
        path.display()
    );
    path
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    crate::redis_harness::free_port().expect("a free loopback port")
}

/// How to run one worker: every field becomes a `FLINKQ_…` variable.
#[derive(Debug, Clone)]
pub struct WorkerSetup {
    /// `FLINKQ_REDIS_URL`.
    pub redis_url: String,
    /// `FLINKQ_NAMESPACE`.
    pub namespace: String,
    /// `FLINKQ_FLINKS_URL`: the banking instance base, up to the customer id.
    pub flinks_url: String,
    /// `FLINKQ_WEALTH_URL`: the wealth instance base, up to the customer id.
    pub wealth_url: String,
    /// `FLINKQ_AUTHORIZE_URL` (the wealth products' Authorize), if set.
    pub authorize_url: Option<String>,
    /// `FLINKQ_INVESTMENTS_URL` (the Investments call), if set.
    pub investments_url: Option<String>,
    /// `FLINKQ_RESULTS_DIR`.
    pub results_dir: PathBuf,
    /// `FLINKQ_POLL_INTERVAL`.
    pub poll_interval: Duration,
    /// `FLINKQ_POLL_TIMEOUT`.
    pub poll_timeout: Duration,
    /// `FLINKQ_LEASE`.
    pub lease: Duration,
    /// `FLINKQ_HTTP_TIMEOUT`; `None`: the lease, the longest the worker
    /// accepts (a call must end within the lease it runs under).
    pub http_timeout: Option<Duration>,
    /// `FLINKQ_CONCURRENCY`.
    pub concurrency: u32,
    /// Where the worker's stderr goes (appended).
    pub log_file: PathBuf,
    /// Any other variables.
    pub extra_env: Vec<(String, String)>,
}

impl WorkerSetup {
    /// Defaults for a test: namespace `test`, 1 s lease, concurrency 64,
    /// every URL derived from the two instance bases (no override).
    pub fn new(redis_url: &str, flinks_url: &str, wealth_url: &str, work_dir: &Path) -> Self {
        WorkerSetup {
            redis_url: redis_url.to_owned(),
            namespace: "test".into(),
            flinks_url: flinks_url.to_owned(),
            wealth_url: wealth_url.to_owned(),
            authorize_url: None,
            investments_url: None,
            results_dir: work_dir.join("results"),
            poll_interval: Duration::from_millis(500),
            poll_timeout: Duration::from_secs(60),
            lease: Duration::from_secs(1),
            http_timeout: None,
            concurrency: 64,
            log_file: work_dir.join("worker.log"),
            extra_env: Vec::new(),
        }
    }

    /// Where the files sink writes `login`'s payload of `product`.
    pub fn result_file(&self, product: Product, login: &LoginId) -> PathBuf {
        self.results_dir
            .join(product.as_str())
            .join(format!("{login}.json"))
    }

    /// Where the files sink stages the payload of one run of a job, until
    /// that run's commit is applied (named by `JobSnapshot::run_key`).
    pub fn staged_file(&self, run_key: &str) -> PathBuf {
        self.results_dir
            .join(".staged")
            .join(format!("{run_key}.json"))
    }

    fn env(&self, metrics_port: u16) -> Vec<(String, String)> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let mut env = vec![
            ("FLINKQ_REDIS_URL".into(), self.redis_url.clone()),
            ("FLINKQ_NAMESPACE".into(), self.namespace.clone()),
            ("FLINKQ_FLINKS_URL".into(), self.flinks_url.clone()),
            ("FLINKQ_WEALTH_URL".into(), self.wealth_url.clone()),
            (
                "FLINKQ_RESULTS_DIR".into(),
                self.results_dir.display().to_string(),
            ),
            ("FLINKQ_POLL_INTERVAL".into(), ms(self.poll_interval)),
            ("FLINKQ_POLL_TIMEOUT".into(), ms(self.poll_timeout)),
            ("FLINKQ_LEASE".into(), ms(self.lease)),
            (
                "FLINKQ_HTTP_TIMEOUT".into(),
                ms(self.http_timeout.unwrap_or(self.lease)),
            ),
            ("FLINKQ_CONCURRENCY".into(), self.concurrency.to_string()),
            (
                "FLINKQ_METRICS_ADDR".into(),
                format!("127.0.0.1:{metrics_port}"),
            ),
            ("FLINKQ_RETRY_BASE".into(), "100ms".into()),
            ("FLINKQ_RETRY_CAP".into(), "1s".into()),
            ("RUST_LOG".into(), "info".into()),
        ];
        let overrides = [
            ("FLINKQ_AUTHORIZE_URL", &self.authorize_url),
            ("FLINKQ_INVESTMENTS_URL", &self.investments_url),
        ];
        for (name, url) in overrides {
            if let Some(url) = url {
                env.push((name.into(), url.clone()));
            }
        }
        env.extend(self.extra_env.iter().cloned());
        env
    }
}

/// A running `flinkq-worker`. Killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct WorkerProcess {
    child: Option<Child>,
    /// Where its /healthz listens.
    pub metrics_port: u16,
}

impl WorkerProcess {
    /// Starts a worker.
    pub fn spawn(setup: &WorkerSetup) -> WorkerProcess {
        let metrics_port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&setup.log_file)
            .expect("open the worker log");
        let child = Command::new(workspace_binary("flinkq-worker"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(setup.env(metrics_port))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn flinkq-worker");
        WorkerProcess {
            child: Some(child),
            metrics_port,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    /// The most resident memory the process has used so far (`VmHWM` in
    /// /proc/<pid>/status), in bytes; `None` once it has exited.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// SIGKILL, no goodbye: what a crash or an OOM kill looks like.
    pub fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait up to `timeout` for the exit status.
    pub fn sigterm(&mut self, timeout: Duration) -> Option<ExitStatus> {
        terminate(self.child.take()?, timeout)
    }

    /// Its `/metrics`, parsed; `None` while it does not answer.
    pub async fn metrics(&self) -> Option<Vec<crate::prom_text::Sample>> {
        let url = format!("http://127.0.0.1:{}/metrics", self.metrics_port);
        let text = reqwest::get(url).await.ok()?.text().await.ok()?;
        Some(crate::prom_text::parse(&text))
    }

    /// Has it exited on its own? Returns the status if so.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }
}

impl WorkerProcess {
    /// GETs `path` (`/healthz`, `/readyz`) from its health endpoint: the
    /// status and the JSON body, or `None` while it does not answer.
    pub async fn health(&self, path: &str) -> Option<(u16, serde_json::Value)> {
        let url = format!("http://127.0.0.1:{}{path}", self.metrics_port);
        let response = reqwest::get(url).await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.json().await.ok()?))
    }
}

/// Runs `flinkq-worker` with exactly `env` (plus PATH and a free
/// `FLINKQ_METRICS_ADDR`) and returns its output once it exits; for
/// configurations it must refuse at start. Killed after `timeout`: a worker
/// that accepted the configuration runs on, and that fails the test.
pub fn worker_refusal(env: &[(&str, String)], timeout: Duration) -> Output {
    let child = Command::new(workspace_binary("flinkq-worker"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FLINKQ_METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flinkq-worker");
    let pid = child.id();
    let started = Instant::now();
    let waiter = std::thread::spawn(move || child.wait_with_output());
    while !waiter.is_finished() {
        if started.elapsed() > timeout {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            let output = waiter.join().expect("waiter").expect("worker output");
            panic!(
                "flinkq-worker {env:?} still runs after {timeout:?}: it accepted the configuration\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    waiter.join().expect("waiter").expect("worker output")
}

/// A long-running `flinkq` command (`schedule`, `status --watch`, a large
/// `enqueue`): stdout and stderr go to files in a directory. SIGKILLed when
/// dropped.
#[derive(Debug)]
pub struct FlinkqProcess {
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl FlinkqProcess {
    /// Starts `command` (see [`flinkq_command`]); `name` names its output
    /// files in `dir`.
    pub fn spawn(mut command: Command, dir: &Path, name: &str) -> FlinkqProcess {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.log"));
        let child = command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn flinkq");
        FlinkqProcess {
            child: Some(child),
            stdout,
            stderr,
        }
    }

    /// Waits up to `timeout` for it to exit on its own.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.try_exit_status() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Has it exited? Its status if so (kept: asking again answers again).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().ok().flatten()
    }

    /// SIGTERM, then wait up to `timeout` for the exit status (SIGKILL and
    /// `None` after it).
    pub fn sigterm(&mut self, timeout: Duration) -> Option<ExitStatus> {
        terminate(self.child.take()?, timeout)
    }

    /// SIGKILL.
    pub fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What it printed on stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// What it logged on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for FlinkqProcess {
    fn drop(&mut self) {
        self.sigkill();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// The `flinkq` CLI with `FLINKQ_REDIS_URL`/`FLINKQ_NAMESPACE` set, to add
/// arguments and variables to.
pub fn flinkq_command(redis_url: &str, namespace: &str) -> Command {
    let mut command = Command::new(workspace_binary("flinkq"));
    command
        .env("FLINKQ_REDIS_URL", redis_url)
        .env("FLINKQ_NAMESPACE", namespace);
    command
}

/// Runs the `flinkq` CLI with `FLINKQ_REDIS_URL`/`FLINKQ_NAMESPACE` set and
/// `stdin` fed, returning its output.
pub fn flinkq_cli(redis_url: &str, namespace: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut child = flinkq_command(redis_url, namespace)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flinkq");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("flinkq output")
}

/// Polls `check` every 50 ms until it returns `Some`, or panics with `what`
/// after `timeout`.
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM `child`, then wait up to `timeout` for its exit status (SIGKILL
/// and `None` after it).
pub fn terminate(mut child: Child, timeout: Duration) -> Option<ExitStatus> {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Copies a worker log to the system's temp directory if the test panics
/// while this guard lives (the log's own directory is deleted with the
/// scenario), so a failure that happens once in many runs leaves its
/// evidence behind. Declare it after the scenario: it must drop first.
#[derive(Debug)]
pub struct KeepLogOnPanic {
    log: PathBuf,
    kept: PathBuf,
}

impl KeepLogOnPanic {
    /// Keeps `log` as `<temp dir>/<name>` on a panic.
    pub fn new(log: &Path, name: &str) -> KeepLogOnPanic {
        KeepLogOnPanic {
            log: log.to_path_buf(),
            kept: std::env::temp_dir().join(name),
        }
    }
}

impl Drop for KeepLogOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() && std::fs::copy(&self.log, &self.kept).is_ok() {
            eprintln!("worker log kept in {}", self.kept.display());
        }
    }
}

/// Log text without its colour codes (the worker writes ANSI escapes only
/// when its stderr is a terminal; this keeps a test's reading of a log
/// independent of that).
pub fn plain_log(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\x1b') {
        out.push_str(&rest[..at]);
        rest = rest[at..].split_once('m').map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    out
}
