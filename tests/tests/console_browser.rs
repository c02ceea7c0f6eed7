//! The console in a real browser (Debian's chromium, driven by
//! `tests/browser/console.cjs` through playwright-core) against a real
//! Redis, the simulator, a real worker and `flinkq serve`; then the same
//! forms with JavaScript off. It fails, saying
//! what to install, when the browser, Node.js or playwright-core is
//! missing: `scripts/test` installs them.

use std::time::Duration;

use flinkq_shared::{JobState, LoginId, Product};
use flinkq_tests::browser::{BrowserScript, screenshots_dir};
use flinkq_tests::serve_process::{FAILED_CODE, FULL_TOKEN, serve_mixed};
use flinkq_tests::worker_process::WorkerProcess;

/// One step of the script at most (a cold browser start on a loaded machine).
const STEP: Duration = Duration::from_secs(60);

/// The pages the script photographs, under `target/console-screenshots/`.
const SCREENSHOTS: [&str; 7] = [
    "signin",
    "batch",
    "overview",
    "login",
    "dead",
    "dead-confirm",
    "dead-retried",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_a_batch_live_finds_its_failed_login_and_retries_it_by_clicking() {
    let (world, serve, logins) = serve_mixed(3).await;
    let shots = screenshots_dir();
    for name in SCREENSHOTS {
        // a file left by an earlier run proves nothing
        let _ = std::fs::remove_file(shots.join(format!("{name}.png")));
    }
    let mut browser = BrowserScript::spawn(
        "console.cjs",
        &[
            ("FLINKQ_CONSOLE_URL", serve.url("")),
            ("FLINKQ_API_TOKEN", FULL_TOKEN.to_owned()),
            ("FLINKQ_BATCH", "nightly".to_owned()),
            ("FLINKQ_LOGINS", logins.all().join(",")),
            ("FLINKQ_FAILED_LOGIN", logins.failed.clone()),
            ("FLINKQ_FAILED_CODE", FAILED_CODE.to_owned()),
            ("FLINKQ_SCREENSHOTS", shots.display().to_string()),
        ],
    );

    // the batch page is open with no worker yet: only live updates can fill its bar
    browser.until_step("batch-page-open", STEP).await;
    let worker = WorkerProcess::spawn(&world.setup);
    browser.say("worker-started").await;
    browser.until_step("batch-at-100", STEP).await;
    // stopped, so the job the browser retries stays queued for the check below
    drop(worker);
    let failed = LoginId::parse(&logins.failed).expect("loginId");
    let before = world.job_of_product(&failed, Product::DEFAULT).await;
    assert_eq!(before.state, JobState::Failed);
    browser.say("worker-stopped").await;
    browser.until_step("retried", STEP).await;
    // and the forms work with JavaScript off (sign in, search, the pages)
    browser.until_step("works-without-javascript", STEP).await;
    browser.finish(STEP).await;

    // the click requeued the failed login's job: queued again, no longer a dead letter
    let after = world.job_of_product(&failed, Product::DEFAULT).await;
    assert_eq!(after.state, JobState::Queued, "{after:?}");
    assert_eq!(world.store.dead_count().await.expect("dead count"), 0);
    for ok in &logins.ok {
        let login = LoginId::parse(ok).expect("loginId");
        let job = world.job_of_product(&login, Product::DEFAULT).await;
        assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    }
    for name in SCREENSHOTS {
        let path = shots.join(format!("{name}.png"));
        let size = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("no screenshot {}: {e}", path.display()))
            .len();
        assert!(size > 0, "{} is empty", path.display());
    }
}
