//! A real browser for the console: Debian's `chromium` driven by a Node
//! script (`tests/browser/*.cjs`) through `playwright-core` from npm, which
//! downloads no browser of its own. `scripts/test` installs all three when
//! a machine lacks them; a test that needs them fails with what to install
//! rather than skipping.
//!
//! The script and the test talk in lines: the script prints `step <name>`
//! on stdout as it goes, and waits on stdin where the test has to act in
//! between (start or stop a worker).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The browser: `FLINKQ_CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("FLINKQ_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "{} is missing: install Debian's chromium (`apt-get install chromium`; scripts/test does) or point FLINKQ_CHROMIUM at a Chromium",
        path.display()
    );
    path
}

/// The `node_modules` holding `playwright-core`: `FLINKQ_PLAYWRIGHT_MODULES`,
/// else where `scripts/test` installs it (`~/.cache/flinkq/browser`, from
/// `tests/browser/package-lock.json`).
pub fn playwright_modules() -> PathBuf {
    let modules = std::env::var_os("FLINKQ_PLAYWRIGHT_MODULES")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
            Some(cache.join("flinkq/browser/node_modules"))
        })
        .unwrap_or_else(|| PathBuf::from("node_modules"));
    assert!(
        modules.join("playwright-core/package.json").exists(),
        "playwright-core is not installed in {}: run scripts/test (it runs `npm ci` from tests/browser/ into ~/.cache/flinkq/browser), or set FLINKQ_PLAYWRIGHT_MODULES to a node_modules holding it",
        modules.display()
    );
    modules
}

/// `tests/browser/<name>`.
pub fn script(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("browser")
        .join(name);
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// `target/console-screenshots/`, next to the build the test runs from.
pub fn screenshots_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test>
    let target = exe
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
            Path::to_path_buf,
        );
    target.join("console-screenshots")
}

/// A running browser script. Killed when dropped.
#[derive(Debug)]
pub struct BrowserScript {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Every line read so far (for failure messages).
    pub seen: Vec<String>,
}

impl BrowserScript {
    /// `node tests/browser/<name>` with `env`, the browser and
    /// playwright-core found (or a clear failure saying what to install).
    pub fn spawn(name: &str, env: &[(&str, String)]) -> BrowserScript {
        let chromium = chromium();
        let modules = playwright_modules();
        let mut command = Command::new("node");
        command
            .arg(script(name))
            .env("NODE_PATH", &modules)
            .env("FLINKQ_CHROMIUM", &chromium)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot run node ({e}): install Node.js (`apt-get install nodejs npm`; scripts/test does)")
        });
        let stdin = child.stdin.take().expect("piped stdin");
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        BrowserScript {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until `step <name>`; panics with the script's output if
    /// it ends or `timeout` passes first.
    pub async fn until_step(&mut self, name: &str, timeout: Duration) {
        let wanted = format!("step {name}");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line()).await;
            match line {
                Ok(Ok(Some(line))) => {
                    let done = line == wanted;
                    self.seen.push(line);
                    if done {
                        return;
                    }
                }
                Ok(_) => {
                    let failure = self.failure().await;
                    panic!("the browser script ended before `{wanted}`:\n{failure}");
                }
                Err(_) => {
                    let _ = self.child.start_kill();
                    let failure = self.failure().await;
                    panic!("no `{wanted}` from the browser script within {timeout:?}:\n{failure}");
                }
            }
        }
    }

    /// Answers the script on its stdin.
    pub async fn say(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to the browser script");
        self.stdin.flush().await.expect("flush the browser script");
    }

    /// Waits for the script to exit; panics with its output unless it
    /// exits 0.
    pub async fn finish(mut self, timeout: Duration) {
        self.until_step("done", timeout).await;
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .expect("the browser script to exit")
            .expect("wait for the browser script");
        if !status.success() {
            let failure = self.failure().await;
            panic!("the browser script exited {status}:\n{failure}");
        }
    }

    /// What the script printed, for a failure message.
    async fn failure(&mut self) -> String {
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), pipe.read_to_string(&mut stderr))
                .await;
        }
        format!("stdout:\n{}\nstderr:\n{stderr}", self.seen.join("\n"))
    }
}
