//! Identity survives Redis losing data, and operations ride out Redis
//! faults (issue 10, "Trust"): job ids and claim tokens that cannot repeat,
//! commits and result pointers that check their login, commits whose answer
//! was lost read back instead of miscounted, index entries whose job is gone
//! cleaned up, and `flinkq dead retry --all` requeueing each dead letter once.
//! Real redis-server, real simulator, real worker processes; slow links are
//! the test kit's `DelayProxy`.

use flinkq_shared::Product;
use std::time::Duration;

use flinkq_shared::result_record::compress;
use flinkq_shared::store::{Claim, CommitOutcome, Store, StoreError};
use flinkq_shared::{
    JobId, JobSnapshot, JobState, LoginId, Outcome, Policy, ResultRecord, Tick, Transition,
    transition,
};
use flinkq_tests::delay_proxy::DelayProxy;
use flinkq_tests::fixtures::invalid_login;
use flinkq_tests::prom_text;
use flinkq_tests::redis_harness::{RedisOptions, RedisServer};
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::{Fault, Script, ScriptedFault, SimConfig};
use flinkq_tests::worker_process::{WorkerProcess, flinkq_cli, wait_for};
use redis::AsyncCommands;

/// Generous: the machine running the tests may be loaded.
const WAIT: Duration = Duration::from_secs(40);

/// One field of a job hash, read directly.
async fn job_field(store: &Store, id: JobId, field: &str) -> Option<String> {
    let mut conn = store.connection();
    conn.hget(store.keys().job(id), field).await.ok().flatten()
}

/// A worker metric's value (summed over series matching `labels`), once the
/// worker answers.
async fn metric(worker: &WorkerProcess, name: &str, labels: &[(&str, &str)]) -> f64 {
    let samples = wait_for("the worker's /metrics", WAIT, async || {
        worker.metrics().await
    })
    .await;
    prom_text::value(&samples, name, labels).unwrap_or(0.0)
}

/// A log line without its colour codes.
fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find('\x1b') {
        out.push_str(&rest[..at]);
        rest = rest[at..].split_once('m').map_or("", |(_, after)| after);
    }
    out + rest
}

/// How Redis loses its data under a step in flight.
#[derive(Debug, Clone, Copy)]
enum DataLoss {
    Flushall,
    RestartWithoutPersistence,
}

/// Login A's first poll is in flight (the simulator answers it after 5 s);
/// Redis loses everything; login B is enqueued into the empty Redis, claimed,
/// authorized, and its first poll is in flight too (as slow) when A's answer
/// arrives. Before ids and tokens were random, B's job took A's id (the
/// counter restarted at 1) and A's fencing token (both at their second
/// claim): A's stale step committed into B's job, A's session with it, and B
/// ended with A's payload.
async fn stale_step_meets_a_new_job_after(loss: DataLoss) {
    let mut s = Scenario::start(Duration::from_millis(300)).await;
    let slow_first_poll = Script {
        faults: vec![ScriptedFault::poll(1, Fault::Slow { millis: 5_000 })],
        ..Script::default()
    };
    let a = s.logins(1, &slow_first_poll)[0];
    let b = s.logins(1, &slow_first_poll)[0];
    let worker = WorkerProcess::spawn(&s.setup);
    s.enqueue("a", &[a]).await;

    wait_for("A's first poll to reach Flinks", WAIT, async || {
        (s.sim.login_stats(&a.to_string()).investments_calls >= 1).then_some(())
    })
    .await;
    let stale = s.job_of(&a).await;
    match loss {
        DataLoss::Flushall => {
            let mut conn = s.store.connection();
            let () = redis::cmd("FLUSHALL")
                .query_async(&mut conn)
                .await
                .expect("FLUSHALL");
        }
        DataLoss::RestartWithoutPersistence => {
            s.redis.start_again().expect("restart redis-server");
        }
    }
    let report = wait_for("B to be enqueued", WAIT, async || {
        s.store.enqueue("b", &[b]).await.ok()
    })
    .await;
    assert_eq!(report.enqueued, 1);
    wait_for("B's first poll to reach Flinks", WAIT, async || {
        (s.sim.login_stats(&b.to_string()).investments_calls >= 1).then_some(())
    })
    .await;
    let in_flight = s.job_of(&b).await;
    assert_ne!(
        in_flight.id, stale.id,
        "job ids never repeat after Redis lost its data"
    );
    assert!(in_flight.token.is_some() && in_flight.token != stale.token);
    assert_eq!(
        s.sim.login_stats(&a.to_string()).investments_calls,
        1,
        "A's answer must still be on its way (the machine was too slow for this test's timing)"
    );

    wait_for("A's stale step to be fenced", WAIT, async || {
        let fenced = metric(&worker, "flinkq_steps_total", &[("outcome", "fenced")]).await;
        (fenced >= 1.0).then_some(())
    })
    .await;
    let done = wait_for("B to finish", WAIT, async || {
        let job = s.store.job_for_login(&b, Product::DEFAULT).await.ok()??;
        job.state.is_terminal().then_some(job)
    })
    .await;
    assert_eq!(
        (done.id, done.state, done.auths, done.polls),
        (in_flight.id, JobState::Succeeded, 1, 2),
        "B runs its own steps only: {done:?}"
    );
    assert!(
        s.store.job(stale.id).await.expect("read").is_none(),
        "A's stale commit must not bring its job back"
    );
    assert!(
        s.store
            .stored_result(&a, Product::DEFAULT)
            .await
            .expect("read")
            .is_none(),
        "A's stale step must not store a result"
    );
    let counts = s.store.counts(None).await.expect("counts");
    assert_eq!((counts.succeeded, counts.total), (1, 1));

    let out = s.cli(&["result", &b.to_string()]);
    let payload = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(payload.contains(&b.to_string()), "B's payload names B");
    assert!(
        !payload.contains(&a.to_string()),
        "`flinkq result B` must never print A's data"
    );
}

#[tokio::test]
async fn stale_step_never_commits_into_a_job_of_another_login() {
    stale_step_meets_a_new_job_after(DataLoss::Flushall).await;
}

#[tokio::test]
async fn ids_and_tokens_never_repeat_after_a_restart_without_persistence() {
    stale_step_meets_a_new_job_after(DataLoss::RestartWithoutPersistence).await;
}

#[tokio::test]
async fn result_pointer_of_another_login_is_refused() {
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    let (a, b) = (LoginId::random(), LoginId::random());
    store.enqueue("b", &[a]).await.expect("enqueue");
    let claimed = store
        .claim(1, Duration::from_secs(10))
        .await
        .expect("claim");
    let job = &claimed.jobs[0];
    let ready = transition(
        job,
        Outcome::Ready,
        Tick {
            now_ms: claimed.now_ms,
            jitter: 0.0,
        },
        &Policy::default(),
    );
    let secret = "A-private-holdings";
    let record = ResultRecord::Redis {
        gzip: compress(format!("{{\"Login\":\"{a}\",\"Note\":\"{secret}\"}}").as_bytes()),
        ttl: Duration::from_secs(600),
    };

    // a commit that names another login than its job's is refused
    let mut forged = job.job().clone();
    forged.login = b;
    let impostor = Claim::forged(&store, forged);
    let refused = impostor
        .commit(&impostor.prepare(&ready, Some(&record)))
        .await
        .expect("commit");
    assert_eq!(refused, CommitOutcome::Fenced);
    assert!(
        store
            .stored_result(&b, Product::DEFAULT)
            .await
            .expect("read")
            .is_none()
    );

    let applied = job
        .commit(&job.prepare(&ready, Some(&record)))
        .await
        .expect("commit");
    assert_eq!(applied, CommitOutcome::Applied);
    let own = store
        .stored_result(&a, Product::DEFAULT)
        .await
        .expect("read A")
        .expect("A's");
    assert_eq!(own.job, job.id);

    // A's pointer copied under B's key: refused, its data never returned
    let mut conn = store.connection();
    let keys = store.keys();
    let () = redis::cmd("COPY")
        .arg(keys.result(&a, Product::DEFAULT))
        .arg(keys.result(&b, Product::DEFAULT))
        .query_async(&mut conn)
        .await
        .map(|_: i64| ())
        .expect("COPY");
    let error = store
        .stored_result(&b, Product::DEFAULT)
        .await
        .expect_err("another login's pointer");
    assert!(matches!(error, StoreError::ForeignResult { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&a.to_string()) && message.contains(&b.to_string()),
        "{message}"
    );
    let out = flinkq_cli(&redis.url(), "t", &["result", &b.to_string()], None);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(65), "EX_DATAERR: {stdout}{stderr}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
    assert!(stderr.contains("belongs to"), "{stderr}");

    // a pointer that names no login (written before pointers carried one)
    // is refused too
    let _: i64 = conn
        .hdel(keys.result(&a, Product::DEFAULT), "login")
        .await
        .expect("HDEL login");
    assert!(matches!(
        store.stored_result(&a, Product::DEFAULT).await,
        Err(StoreError::ForeignResult { owner: None, .. })
    ));
}

#[tokio::test]
async fn commit_answer_lost_to_a_timeout_is_read_back_not_counted_as_fenced() {
    let interval = Duration::from_millis(2000);
    let mut s = Scenario::start(interval).await;
    s.setup.lease = Duration::from_secs(8);
    s.setup.extra_env.extend([
        ("FLINKQ_REDIS_TIMEOUT".into(), "300ms".into()),
        ("FLINKQ_HTTP_TIMEOUT".into(), "6s".into()),
    ]);
    let redis_link = s.redis_through_proxy().await;
    let flinks = s.flinks_through_proxy().await;
    let login = s.logins(1, &Script::pending(1))[0];
    let worker = WorkerProcess::spawn(&s.setup);
    s.enqueue("lost", &[login]).await;

    // hold the 200 poll on its way to Flinks, slow Redis past the worker's
    // timeout, then let the 200 through: its commit reaches Redis after
    // the worker gave up waiting for the answer
    let polled = wait_for("the first poll (202) to commit", WAIT, async || {
        let job = s
            .store
            .job_for_login(&login, Product::DEFAULT)
            .await
            .ok()??;
        (job.polls >= 1).then_some(job)
    })
    .await;
    flinks.pause();
    let begun_after = polled.updated_ms + interval.as_millis() as u64 * 3 / 2;
    wait_for("the second poll to begin", WAIT, async || {
        let not_before: u64 = job_field(&s.store, polled.id, "not_before")
            .await?
            .parse()
            .ok()?;
        (not_before >= begun_after).then_some(())
    })
    .await;
    assert_eq!(
        s.sim.login_stats(&login.to_string()).investments_calls,
        1,
        "the second poll must be held by the proxy (the machine was too slow to pause in time)"
    );
    redis_link.set_delay(Duration::from_millis(1200));
    flinks.resume();

    // the commit lands about 1.2 s after it is sent; whatever happens, the
    // link is fast again after a while (a worker whose every Redis answer is
    // lost can make no progress at all)
    let slow_phase = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Some(job)) = s.store.job(polled.id).await
                && job.state.is_terminal()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    redis_link.set_delay(Duration::ZERO);
    let log = || std::fs::read_to_string(&s.setup.log_file).unwrap_or_default();
    assert!(
        slow_phase.is_ok(),
        "the commit never reached Redis: {:?}\nworker log:\n{}",
        s.store.job(polled.id).await,
        log()
    );
    let done = s.job_of(&login).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");

    wait_for("the lost answer to be settled", WAIT, async || {
        let settled = metric(
            &worker,
            "flinkq_commits_after_lost_answer_total",
            &[("outcome", "applied")],
        )
        .await;
        (settled >= 1.0).then_some(())
    })
    .await;
    for outcome in ["fenced", "commit_failed"] {
        assert_eq!(
            metric(&worker, "flinkq_steps_total", &[("outcome", outcome)]).await,
            0.0,
            "an applied commit must not count as {outcome}"
        );
    }
    assert_eq!(
        metric(
            &worker,
            "flinkq_steps_total",
            &[("step", "poll"), ("outcome", "finish")]
        )
        .await,
        1.0,
        "the finish is counted once"
    );
    assert_eq!(
        s.sim.login_stats(&login.to_string()).investments_calls,
        2,
        "the step was not run again"
    );
    let log = log();
    assert!(log.contains("commit applied after a lost answer"), "{log}");
    assert!(!log.contains("fenced:"), "{log}");
}

#[tokio::test]
async fn reaper_survives_index_entries_whose_job_is_gone() {
    let mut s = Scenario::start(Duration::from_millis(200)).await;
    let store = s.store.clone();
    let logins: Vec<LoginId> = (0..6).map(|_| LoginId::random()).collect();
    store.enqueue("mixed", &logins).await.expect("enqueue");

    // two expiring leases, two jobs parked past a near deadline, one dead
    // letter, one left due: of each pair one loses its hash
    let leased = store
        .claim(4, Duration::from_millis(200))
        .await
        .expect("claim");
    let policy = Policy {
        poll_timeout: Duration::from_millis(150),
        ..Policy::default()
    };
    let parked = |job: &JobSnapshot| {
        let t = transition(
            job,
            Outcome::Authorized {
                request_id: "s".into(),
            },
            Tick {
                now_ms: leased.now_ms,
                jitter: 0.0,
            },
            &policy,
        );
        Transition {
            due_ms: Some(leased.now_ms + 60_000),
            ..t
        }
    };
    for job in &leased.jobs[2..] {
        let outcome = job.apply(&parked(job)).await.expect("park");
        assert_eq!(outcome, CommitOutcome::Applied);
    }
    let dying = store
        .claim(1, Duration::from_secs(10))
        .await
        .expect("claim");
    let dying_job = &dying.jobs[0];
    let failed = invalid_login(dying_job, dying.now_ms);
    dying_job.apply(&failed).await.expect("fail");
    let mut conn = store.connection();
    let due: Vec<String> = conn
        .zrange(store.keys().due(), 0, -1)
        .await
        .expect("ZRANGE due");
    let never_claimed: Vec<JobId> = due
        .iter()
        .map(|id| id.parse().expect("a job id"))
        .filter(|id| leased.jobs.iter().all(|job| job.id != *id))
        .collect();
    let [left_due] = never_claimed[..] else {
        panic!("one job left due, found {never_claimed:?}")
    };

    let (healthy_lease, gone_lease) = (leased.jobs[0].id, leased.jobs[1].id);
    let (healthy_late, gone_late) = (leased.jobs[2].id, leased.jobs[3].id);
    let gone = [gone_lease, gone_late, dying_job.id, left_due];
    let keys: Vec<String> = gone.iter().map(|id| store.keys().job(*id)).collect();
    let _: i64 = conn.del(&keys).await.expect("DEL job hashes");
    tokio::time::sleep(Duration::from_millis(400)).await;

    let reaped = store.reap(100).await.expect("reap survives missing hashes");
    assert_eq!(
        (reaped.requeued, reaped.timed_out, reaped.orphans),
        (1, 1, 4)
    );
    let indexes = [
        "due",
        "due:high",
        "due:low",
        "leases",
        "deadlines",
        "dead",
        "finished",
    ];
    for id in gone {
        for index in indexes {
            let key = format!("{}{index}", store.keys().prefix());
            let score: Option<f64> = conn.zscore(&key, id.to_string()).await.expect("ZSCORE");
            assert_eq!(score, None, "orphan {id} left in {index}");
        }
    }
    let late = store.job(healthy_late).await.expect("read").expect("job");
    assert_eq!(late.state, JobState::TimedOut);
    let requeued = store.job(healthy_lease).await.expect("read").expect("job");
    assert_eq!((requeued.state, requeued.token), (JobState::Queued, None));
    assert_eq!(store.reap(100).await.expect("reap again").orphans, 0);

    // a real worker: dead letters whose hashes vanish are dropped by its
    // reaper, logged once for the pass, while it keeps working
    s.setup.lease = Duration::from_millis(600);
    let doomed = s.logins(3, &Script::invalid());
    s.enqueue("doomed", &doomed).await;
    let worker = WorkerProcess::spawn(&s.setup);
    s.wait_finished("doomed", WAIT).await;
    let mut evicted = Vec::new();
    for login in &doomed[..2] {
        evicted.push(store.keys().job(s.job_of(login).await.id));
    }
    let _: i64 = conn.del(&evicted).await.expect("DEL dead job hashes");
    wait_for(
        "the worker's reaper to drop the orphans",
        WAIT,
        async || {
            let dropped = metric(&worker, "flinkq_orphan_entries_dropped_total", &[]).await;
            (dropped >= 2.0).then_some(())
        },
    )
    .await;
    assert_eq!(
        metric(&worker, "flinkq_orphan_entries_dropped_total", &[]).await,
        2.0
    );
    let log = std::fs::read_to_string(&s.setup.log_file).expect("worker log");
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("whose job hash is gone"))
        .collect();
    assert_eq!(lines.len(), 1, "one line per reap pass: {lines:?}");
    assert!(plain(lines[0]).ends_with("orphans=2"), "{}", lines[0]);
    // the requeued healthy job was run to its end meanwhile
    let healthy = s
        .store
        .job(healthy_lease)
        .await
        .expect("read")
        .expect("job");
    wait_for("the requeued job to finish", WAIT, async || {
        let job = s.store.job(healthy.id).await.ok()??;
        job.state.is_terminal().then_some(())
    })
    .await;
    assert_eq!(s.store.dead_count().await.expect("dead"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_retry_all_requeues_each_dead_letter_once_in_pages() {
    const DEAD: usize = 2_500;
    let s = Scenario::start(Duration::from_millis(200)).await;
    let logins = s.logins(DEAD, &Script::invalid());
    s.enqueue("doomed", &logins).await;
    let _worker = WorkerProcess::spawn(&s.setup);
    let counts = s.wait_finished("doomed", Duration::from_secs(90)).await;
    assert_eq!(counts.failed, DEAD as u64);
    let dead = s.store.dead_ids(0, DEAD * 2).await.expect("dead ids");
    assert_eq!(dead.len(), DEAD);

    // the CLI crosses a slow link while the worker sends every requeued
    // job straight back to `dead` (its login is still invalid)
    let link = DelayProxy::start(("127.0.0.1", s.redis.port()))
        .await
        .expect("proxy");
    link.set_delay(Duration::from_millis(30));
    let (url, namespace) = (link.redis_url(), s.setup.namespace.clone());
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || {
            flinkq_cli(&url, &namespace, &["dead", "retry", "--all"], None)
        }),
    )
    .await
    .expect("`flinkq dead retry --all` terminates")
    .expect("CLI task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with(&format!("requeued {DEAD}, skipped 0")),
        "{stdout}"
    );

    let done = s.wait_finished("doomed", Duration::from_secs(90)).await;
    assert_eq!(done.failed, DEAD as u64);
    let mut pipe = redis::pipe();
    for id in &dead {
        pipe.hget(s.store.keys().job(*id), "requeued");
    }
    let mut conn = s.store.connection();
    let requeued: Vec<Option<u64>> = pipe.query_async(&mut conn).await.expect("HGET requeued");
    let not_once: Vec<_> = dead
        .iter()
        .zip(&requeued)
        .filter(|(_, n)| **n != Some(1))
        .collect();
    assert!(
        not_once.is_empty(),
        "{} jobs not requeued exactly once, e.g. {:?}",
        not_once.len(),
        not_once.first()
    );
    assert_eq!(s.sim.totals().authorize_calls, 2 * DEAD as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_rides_out_real_eviction_of_job_records() {
    // A real `maxmemory` squeeze on an `allkeys-random` Redis evicts job
    // hashes, queue entries and counters at random under a running worker:
    // its reaper and claims keep working (no Redis error on them), and once
    // memory is back a new batch runs to its end on the same worker.
    let redis = RedisOptions {
        extra_args: vec!["--maxmemory-policy".into(), "allkeys-random".into()],
        ..RedisOptions::default()
    };
    let mut s = Scenario::start_full(Duration::from_millis(200), SimConfig::default(), redis).await;
    s.setup.lease = Duration::from_millis(800);
    let waiting = s.logins(1_000, &Script::always_pending());
    s.enqueue("squeezed", &waiting).await;
    let mut worker = WorkerProcess::spawn(&s.setup);
    wait_for("the worker to poll", WAIT, async || {
        (s.sim.totals().investments_calls >= 100).then_some(())
    })
    .await;

    let mut conn = s.store.connection();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .expect("INFO memory");
    let used: u64 = info
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .expect("used_memory");
    let jobs_before: usize = s.store.counts(None).await.expect("counts").total as usize;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used * 7 / 10)
        .query_async(&mut conn)
        .await
        .expect("squeeze memory");
    // the worker's own writes make Redis evict; let it claim, commit and
    // reap on the squeezed Redis for a few lease periods
    let evicted = wait_for("Redis to evict keys", WAIT, async || {
        let mut conn = s.store.connection();
        let stats: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut conn)
            .await
            .ok()?;
        stats
            .lines()
            .find_map(|line| line.strip_prefix("evicted_keys:"))
            .and_then(|value| value.trim().parse::<u64>().ok())
            .filter(|evicted| *evicted > 0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(0)
        .query_async(&mut conn)
        .await
        .expect("memory back");
    eprintln!("{evicted}+ keys evicted from {jobs_before} jobs' records");

    let fresh = s.logins(50, &Script::default());
    s.enqueue("after-eviction", &fresh).await;
    let counts = s
        .wait_finished("after-eviction", Duration::from_secs(60))
        .await;
    assert_eq!(counts.succeeded, 50, "{counts:?}");
    assert!(worker.try_exit_status().is_none(), "the worker died");
    for op in ["claim", "reap", "commit"] {
        assert_eq!(
            metric(&worker, "flinkq_redis_errors_total", &[("op", op)]).await,
            0.0,
            "Redis errors on {op} after {evicted} evicted keys"
        );
    }
}
