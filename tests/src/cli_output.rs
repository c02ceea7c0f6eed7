//! Reading a finished `flinkq` run: one set of helpers for every test, so
//! no test file keeps its own `stdout()` / `json()` copy.

use std::process::Output;

/// What a test reads of a command's [`Output`].
pub trait CliOutput {
    /// Stdout as text, after checking the command succeeded (the panic
    /// shows the exit code and stderr).
    fn stdout_ok(&self) -> String;
    /// Stdout parsed as one JSON value, after checking the command succeeded.
    fn json_ok(&self) -> serde_json::Value;
    /// Stdout as text, whatever the exit status.
    fn stdout_text(&self) -> String;
    /// Stderr as text.
    fn stderr_text(&self) -> String;
}

impl CliOutput for Output {
    fn stdout_ok(&self) -> String {
        assert!(
            self.status.success(),
            "flinkq failed ({:?}): {}",
            self.status.code(),
            self.stderr_text()
        );
        self.stdout_text()
    }

    fn json_ok(&self) -> serde_json::Value {
        let stdout = self.stdout_ok();
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {stdout}"))
    }

    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// The enqueue report's `(enqueued, already_active, already_in_batch)`.
pub fn enqueue_counts(report: &serde_json::Value) -> (u64, u64, u64) {
    let n = |name: &str| {
        report[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} in {report}"))
    };
    (n("enqueued"), n("already_active"), n("already_in_batch"))
}
