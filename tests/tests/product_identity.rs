//! The product is a dimension of job identity (issue 11): one unfinished
//! job per (loginId, product), batch dedupe per (loginId, product), result
//! pointers that name and check their product, `flinkq --product` on every
//! command that names a login's job, and `dead retry --all` over every
//! product unless one is given. Real redis-server and the real `flinkq`
//! binary; jobs are moved by the real store (claim, commit) where a worker
//! of the other products is not needed.

use std::time::Duration;

use flinkq_shared::result_record::compress;
use flinkq_shared::store::{Claim, CommitOutcome, StoreError};
use flinkq_shared::{JobState, LoginId, Outcome, Policy, Priority, Product, ResultRecord, Tick};
use flinkq_tests::cli_output::{CliOutput, enqueue_counts};
use flinkq_tests::fixtures::invalid_login;
use flinkq_tests::scenario::Scenario;
use flinkq_tests::worker_process::{FlinkqProcess, flinkq_command, wait_for};

fn product(name: &str) -> Product {
    name.parse().expect("a known product")
}

async fn world() -> Scenario {
    Scenario::start(Duration::from_millis(100)).await
}

/// Claims every due job and applies what the state machine does with the
/// Authorize answer `outcome` (Ready: succeeded, with `payload` in Redis).
async fn claim_all(world: &Scenario, n: usize) -> (u64, Vec<Claim>) {
    let claimed = world
        .store
        .claim(n, Duration::from_secs(30))
        .await
        .expect("claim");
    assert_eq!(claimed.jobs.len(), n, "every enqueued job is due");
    (claimed.now_ms, claimed.jobs)
}

async fn succeed(claim: &Claim, now_ms: u64, payload: &str) {
    let ready = flinkq_shared::transition(
        claim,
        Outcome::Ready,
        Tick {
            now_ms,
            jitter: 0.0,
        },
        &Policy::default(),
    );
    assert_eq!(ready.state, JobState::Succeeded, "{ready:?}");
    let record = ResultRecord::Redis {
        gzip: compress(payload.as_bytes()),
        ttl: Duration::from_secs(600),
    };
    let applied = claim
        .commit(&claim.prepare(&ready, Some(&record)))
        .await
        .expect("commit");
    assert_eq!(applied, CommitOutcome::Applied);
}

#[tokio::test]
async fn one_job_per_login_and_product() {
    let world = world().await;
    let login = LoginId::random().to_string();
    let enqueue = |args: &[&str]| {
        let mut all = vec!["enqueue", "--json"];
        all.extend_from_slice(args);
        all.push(&login);
        world.cli(&all).json_ok()
    };

    let investments = enqueue(&["--batch", "b1"]);
    assert_eq!(enqueue_counts(&investments), (1, 0, 0));
    assert_eq!(investments["product"], "investments", "the default product");
    // the same login under another product, in the same batch: a second job
    let detail = enqueue(&["--batch", "b1", "--product", "accounts-detail"]);
    assert_eq!(enqueue_counts(&detail), (1, 0, 0), "{detail}");
    assert_eq!(detail["product"], "accounts-detail");
    // the same (login, product) again while active: one job
    assert_eq!(
        enqueue_counts(&enqueue(&["--batch", "b2", "--product", "accounts-detail"])),
        (0, 1, 0)
    );
    assert_eq!(enqueue_counts(&enqueue(&["--batch", "b2"])), (0, 1, 0));
    // the same (login, product) again in its batch: already in it
    assert_eq!(
        enqueue_counts(&enqueue(&["--batch", "b1", "--product", "accounts-detail"])),
        (0, 0, 1)
    );
    // the product from the environment
    let mut command = flinkq_command(&world.redis.url(), &world.setup.namespace);
    command
        .env("FLINKQ_PRODUCT", "statements")
        .args(["enqueue", "--json", "--batch", "b1", &login]);
    let from_env = command.output().expect("flinkq").json_ok();
    assert_eq!(
        (enqueue_counts(&from_env), from_env["product"].as_str()),
        ((1, 0, 0), Some("statements"))
    );
    assert_eq!(
        world.store.counts(Some("b1")).await.expect("counts").total,
        3
    );

    // `flinkq job` per product: three jobs, three ids, one login
    let mut ids = Vec::new();
    for name in ["investments", "accounts-detail", "statements"] {
        let job = world
            .cli(&["job", &login, "--product", name, "--json"])
            .json_ok();
        assert_eq!(job["login"], login.as_str());
        assert_eq!(job["product"], name);
        assert_eq!(job["state"], "queued");
        assert_eq!(job["batch"], "b1");
        ids.push(job["id"].as_str().expect("id").to_owned());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "one job per (login, product): {ids:?}");
    let default = world.cli(&["job", &login, "--json"]).json_ok();
    assert_eq!(default["product"], "investments");
    let human = world
        .cli(&["job", &login, "--product", "statements"])
        .stdout_ok();
    assert!(human.contains("product   statements"), "{human}");

    // a product with no job of this login is "no job", named
    let none = world.cli(&["job", &login, "--product", "attributes"]);
    assert_eq!(none.status.code(), Some(1), "EX not found");
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(
        stderr.contains("no job for loginId") && stderr.contains("attributes"),
        "{stderr}"
    );

    // an unknown product is a usage error that lists the known ones
    for args in [
        vec!["enqueue", "--product", "checking", login.as_str()],
        vec!["job", "--product", "checking", login.as_str()],
        vec!["dead", "retry", "--all", "--product", "checking"],
    ] {
        let out = world.cli(&args);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for known in Product::all() {
            assert!(stderr.contains(known.as_str()), "{args:?}: {stderr}");
        }
    }

    // cancel is per product too: the investments job stays
    let cancelled = world
        .cli(&["cancel", &login, "--product", "accounts-detail"])
        .stdout_ok();
    assert!(cancelled.starts_with("cancelled job"), "{cancelled}");
    let detail = world
        .job_of_product(&login.parse().expect("uuid"), product("accounts-detail"))
        .await;
    assert_eq!(detail.state, JobState::Cancelled);
    let investments = world.job_of(&login.parse().expect("uuid")).await;
    assert_eq!(investments.state, JobState::Queued);
    // and a (login, product) whose job finished takes a new one
    assert_eq!(
        enqueue_counts(&enqueue(&["--batch", "b3", "--product", "accounts-detail"])),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn refresh_enqueues_the_registry_for_the_given_product() {
    let world = world().await;
    let (a, b) = (LoginId::random().to_string(), LoginId::random().to_string());
    world.cli(&["logins", "add", &a, &b]).stdout_ok();
    let detail = world
        .cli(&[
            "refresh",
            "--batch",
            "r1",
            "--product",
            "accounts-detail",
            "--json",
        ])
        .json_ok();
    assert_eq!(
        (enqueue_counts(&detail), detail["product"].as_str()),
        ((2, 0, 0), Some("accounts-detail"))
    );
    // the same batch for the default product: two more jobs, not "already in batch"
    let investments = world.cli(&["refresh", "--batch", "r1", "--json"]).json_ok();
    assert_eq!(enqueue_counts(&investments), (2, 0, 0));
    // a re-run is idempotent per (login, product)
    let again = world
        .cli(&[
            "refresh",
            "--batch",
            "r1",
            "--product",
            "accounts-detail",
            "--json",
        ])
        .json_ok();
    assert_eq!(enqueue_counts(&again), (0, 0, 2));
    let job = world
        .cli(&["job", &a, "--product", "accounts-detail", "--json"])
        .json_ok();
    assert_eq!(
        (job["batch"].as_str(), job["product"].as_str()),
        (Some("r1"), Some("accounts-detail"))
    );
}

#[tokio::test]
async fn result_pointer_of_another_product_is_refused() {
    let world = world().await;
    let login = LoginId::random();
    let detail = product("accounts-detail");
    world
        .store
        .enqueue_with("r", Priority::Normal, detail, &[login])
        .await
        .expect("enqueue detail");
    world.enqueue("r", &[login]).await;
    let (now_ms, jobs) = claim_all(&world, 2).await;
    for claim in &jobs {
        let payload = format!(
            "{{\"Login\":\"{login}\",\"Note\":\"payload-of-{}\"}}",
            claim.product
        );
        succeed(claim, now_ms, &payload).await;
    }

    // each product's result prints that product's payload
    for name in ["investments", "accounts-detail"] {
        let out = world
            .cli(&["result", &login.to_string(), "--product", name])
            .stdout_ok();
        assert!(out.contains(&format!("payload-of-{name}")), "{name}: {out}");
        let meta = world
            .cli(&["result", &login.to_string(), "--product", name, "--meta"])
            .json_ok();
        assert_eq!(meta["product"], name);
    }
    // the results stream names each job's product
    let entries = world.store.result_entries(None, 10).await.expect("results");
    let mut products: Vec<&str> = entries.iter().map(|e| e.product.as_str()).collect();
    products.sort_unstable();
    assert_eq!(products, ["accounts-detail", "investments"]);

    // the investments pointer copied under the accounts-detail key: refused
    let keys = world.store.keys();
    let mut conn = world.store.connection();
    let () = redis::cmd("COPY")
        .arg(keys.result(&login, Product::DEFAULT))
        .arg(keys.result(&login, detail))
        .arg("REPLACE")
        .query_async(&mut conn)
        .await
        .map(|_: i64| ())
        .expect("COPY");
    let error = world
        .store
        .stored_result(&login, detail)
        .await
        .expect_err("a pointer of another product");
    assert!(matches!(error, StoreError::ForeignResult { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("investments") && message.contains("accounts-detail"),
        "{message}"
    );
    let out = world.cli(&["result", &login.to_string(), "--product", "accounts-detail"]);
    let (out_text, err_text) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(65),
        "EX_DATAERR: {out_text}{err_text}"
    );
    assert!(!out_text.contains("payload-of") && !err_text.contains("payload-of"));
    assert!(err_text.contains("belongs to"), "{err_text}");
}

#[tokio::test]
async fn job_json_never_prints_the_token_or_a_payload() {
    let world = world().await;
    let login = LoginId::random();
    world.enqueue("j", &[login]).await;
    let (now_ms, jobs) = claim_all(&world, 1).await;
    let token = jobs[0].token.clone().expect("a claimed job holds a token");

    let held = world.cli(&["job", &login.to_string(), "--json"]);
    let text = held.stdout_ok();
    assert!(
        !text.contains(token.as_str()),
        "the claim token leaked: {text}"
    );
    let job: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
    for field in [
        "id",
        "login",
        "product",
        "state",
        "batch",
        "stage",
        "polls",
        "attempts",
        "error",
        "created_ms",
        "finished_ms",
    ] {
        assert!(job.get(field).is_some(), "no {field} in {job}");
    }
    assert!(job.get("token").is_none(), "{job}");
    assert!(job["error"].is_null());

    let secret = "private-holdings-of-the-login";
    succeed(&jobs[0], now_ms, &format!("{{\"Note\":\"{secret}\"}}")).await;
    let text = world
        .cli(&["job", &login.to_string(), "--json"])
        .stdout_ok();
    assert!(!text.contains(secret), "a payload leaked: {text}");
    let job: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
    assert_eq!(job["state"], "succeeded");
    assert!(job["finished_ms"].as_u64().is_some(), "{job}");
    assert!(job.get("token").is_none(), "{job}");

    // a failed job's error is {code, http_status, message}
    world.enqueue("j2", &[login]).await;
    let (now_ms, jobs) = claim_all(&world, 1).await;
    let failed = jobs[0]
        .apply(&invalid_login(&jobs[0], now_ms))
        .await
        .expect("commit");
    assert_eq!(failed, CommitOutcome::Applied);
    let job = world.cli(&["job", &login.to_string(), "--json"]).json_ok();
    assert_eq!(job["error"]["code"], "INVALID_LOGIN", "{job}");
    assert_eq!(job["error"]["http_status"], 401);
    assert!(job["error"]["message"].is_string());
}

#[tokio::test]
async fn dead_retry_all_requeues_every_product_unless_one_is_given() {
    let world = world().await;
    let (a, b) = (LoginId::random(), LoginId::random());
    let detail = product("accounts-detail");
    let statements = product("statements");
    world.enqueue("night", &[a]).await;
    for (p, login) in [(detail, a), (statements, b)] {
        world
            .store
            .enqueue_with("night", Priority::Normal, p, &[login])
            .await
            .expect("enqueue");
    }
    let (now_ms, jobs) = claim_all(&world, 3).await;
    for claim in &jobs {
        let applied = claim
            .apply(&invalid_login(claim, now_ms))
            .await
            .expect("commit");
        assert_eq!(applied, CommitOutcome::Applied);
    }
    assert_eq!(world.store.dead_count().await.expect("dead"), 3);

    // list and purge filter by product
    let listed = world
        .cli(&["dead", "list", "--product", "statements", "--json"])
        .json_ok();
    let listed = listed.as_array().expect("array");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["login"], b.to_string().as_str());
    let human = world.cli(&["dead", "list"]).stdout_ok();
    assert!(
        human.contains("accounts-detail") && human.contains("statements"),
        "{human}"
    );
    let purged = world
        .cli(&[
            "dead",
            "purge",
            "--older-than",
            "0s",
            "--product",
            "statements",
        ])
        .stdout_ok();
    assert!(
        purged.starts_with("purged 1 dead statements jobs"),
        "{purged}"
    );
    assert_eq!(world.store.dead_count().await.expect("dead"), 2);

    // --product: only that product's dead letters
    let one = world
        .cli(&["dead", "retry", "--all", "--product", "accounts-detail"])
        .stdout_ok();
    assert!(one.starts_with("requeued 1, skipped 0"), "{one}");
    assert_eq!(
        world.job_of_product(&a, detail).await.state,
        JobState::Queued
    );
    assert_eq!(world.job_of(&a).await.state, JobState::Failed);

    // no --product: every product
    let all = world.cli(&["dead", "retry", "--all"]).stdout_ok();
    assert!(all.starts_with("requeued 1, skipped 0"), "{all}");
    assert_eq!(world.job_of(&a).await.state, JobState::Queued);
    assert_eq!(world.store.dead_count().await.expect("dead"), 0);

    // a requeued (login, product) is active again: enqueue dedupes it
    let again = world
        .store
        .enqueue_with("again", Priority::Normal, detail, &[a])
        .await
        .expect("enqueue");
    assert_eq!(again.already_active, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_enqueues_every_login_once_per_listed_product() {
    let world = world().await;
    let (a, b) = (LoginId::random().to_string(), LoginId::random().to_string());
    world.cli(&["logins", "add", &a, &b]).stdout_ok();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = flinkq_command(&world.redis.url(), &world.setup.namespace);
    command.args([
        "schedule",
        "--cron",
        "*/2 * * * * *",
        "--product",
        "accounts-detail",
        "--product",
        "investments",
        "--product",
        "accounts-detail",
    ]);
    let mut scheduler = FlinkqProcess::spawn(command, dir.path(), "scheduler");
    let lines = wait_for("two scheduled ticks", Duration::from_secs(60), async || {
        let lines: Vec<String> = scheduler
            .stdout()
            .lines()
            .filter(|l| l.starts_with("tick "))
            .map(str::to_owned)
            .collect();
        (lines.len() >= 2).then_some(lines)
    })
    .await;
    scheduler.sigterm(Duration::from_secs(10));
    // the first tick: two logins, two products (listed twice counts once),
    // one batch; the next: every (login, product) still active
    assert!(
        lines[0].contains("enqueued 4, already active 0, already in batch 0"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("enqueued 0, already active 4"),
        "{lines:?}"
    );
    let batch = |name: &str, login: &str| {
        world
            .cli(&["job", login, "--product", name, "--json"])
            .json_ok()["batch"]
            .as_str()
            .expect("batch")
            .to_owned()
    };
    let first = batch("investments", &a);
    assert!(first.starts_with("nightly-"), "{first}");
    for login in [&a, &b] {
        assert_eq!(batch("investments", login), first);
        assert_eq!(batch("accounts-detail", login), first);
    }
    assert_eq!(
        world
            .store
            .counts(Some(&first))
            .await
            .expect("counts")
            .total,
        4
    );
}
