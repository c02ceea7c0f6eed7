//! Group commit (`shared/src/store/commit_batch.rs`): several commits in one
//! call of `commit.lua`, each decided alone, against a real redis-server.

use std::time::{Duration, Instant};

use flinkq_shared::store::{
    Claim, CommitBatching, CommitOutcome, CommitParams, RedisConnection, Store, StoreConfig,
};
use flinkq_shared::{
    ClaimToken, JobSnapshot, JobState, LoginId, Outcome, Policy, Tick, Transition, transition,
};
use flinkq_tests::bench::{command_calls, redis_cpu_seconds};
use flinkq_tests::fixtures::invalid_login;
use flinkq_tests::redis_harness::RedisServer;

/// `n` jobs of batch `batch`, claimed with a long lease.
async fn claimed(store: &Store, batch: &str, n: usize) -> (Vec<Claim>, u64) {
    let logins: Vec<LoginId> = (0..n).map(|_| LoginId::random()).collect();
    store.enqueue(batch, &logins).await.expect("enqueue");
    let claimed = store
        .claim(n, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(claimed.jobs.len(), n);
    (claimed.jobs, claimed.now_ms)
}

/// A fresh redis-server, a store on it and `n` claimed jobs of `batch`
/// (the server lives as long as the returned handle).
async fn fresh(batch: &str, n: usize) -> (RedisServer, Store, Vec<Claim>, u64) {
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    let (jobs, now) = claimed(&store, batch, n).await;
    (redis, store, jobs, now)
}

/// The claimed jobs as the store holds them now.
async fn as_stored(store: &Store, jobs: &[Claim]) -> Vec<JobSnapshot> {
    store
        .jobs(&jobs.iter().map(|job| job.id).collect::<Vec<_>>())
        .await
        .expect("read the jobs back")
}

/// The transition an Authorize 200 causes: the job goes on polling.
fn authorized(job: &Claim, now_ms: u64) -> Transition {
    let outcome = Outcome::Authorized {
        request_id: format!("session-{}", job.id),
    };
    let tick = Tick {
        now_ms,
        jitter: 0.0,
    };
    transition(job, outcome, tick, &Policy::default())
}

/// A claim on `job` under a token that is not (or no longer) its own.
fn stale(store: &Store, job: &Claim) -> Claim {
    let mut snapshot = job.job().clone();
    snapshot.token = Some(ClaimToken::from_stored("a-token-of-an-earlier-claim"));
    Claim::forged(store, snapshot)
}

fn outcomes(
    answers: Vec<Result<CommitOutcome, flinkq_shared::store::StoreError>>,
) -> Vec<CommitOutcome> {
    answers
        .into_iter()
        .map(|answer| answer.expect("an answer for each commit"))
        .collect()
}

/// Sends `params` as one `commit.lua` call: each commit's outcome, in order.
async fn in_one_call(store: &Store, params: &[CommitParams]) -> Vec<CommitOutcome> {
    outcomes(
        store
            .commit_in_one_call(&params.iter().collect::<Vec<_>>())
            .await,
    )
}

#[tokio::test]
async fn commits_sent_together_are_fenced_one_by_one() {
    let (_redis, store, jobs, now) = fresh("b", 3).await;
    let impostor = stale(&store, &jobs[1]);
    let params = [
        jobs[0].prepare(&authorized(&jobs[0], now), None),
        impostor.prepare(&authorized(&impostor, now), None),
        jobs[2].prepare(&authorized(&jobs[2], now), None),
    ];
    assert_eq!(
        in_one_call(&store, &params).await,
        [
            CommitOutcome::Applied,
            CommitOutcome::Fenced,
            CommitOutcome::Applied
        ]
    );
    let after = as_stored(&store, &jobs).await;
    let states: Vec<JobState> = after.iter().map(|job| job.state).collect();
    assert_eq!(
        states,
        [JobState::Polling, JobState::Queued, JobState::Polling]
    );
    assert_eq!(after[1].request_id, None, "the stale commit wrote nothing");
    // the holder of the fenced commit's job still holds it
    let held = jobs[1].prepare(&authorized(&jobs[1], now), None);
    assert_eq!(
        jobs[1].commit(&held).await.expect("commit"),
        CommitOutcome::Applied
    );
    let counts = store.counts(Some("b")).await.expect("counts");
    assert_eq!((counts.polling, counts.queued), (3, 0));
}

#[tokio::test]
async fn a_retried_call_whose_commits_were_applied_reads_already_applied_for_each() {
    let (_redis, store, jobs, now) = fresh("b", 4).await;
    let params: Vec<CommitParams> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| {
            // two finish, two go on polling
            let t = if i % 2 == 0 {
                invalid_login(job, now)
            } else {
                authorized(job, now)
            };
            job.prepare(&t, None)
        })
        .collect();
    assert_eq!(
        in_one_call(&store, &params).await,
        [CommitOutcome::Applied; 4]
    );
    // the answer was lost: the same call again changes nothing
    assert_eq!(
        in_one_call(&store, &params).await,
        [CommitOutcome::AlreadyApplied; 4]
    );
    let counts = store.counts(Some("b")).await.expect("counts");
    assert_eq!(
        (counts.failed, counts.polling, counts.queued),
        (2, 2, 0),
        "each commit counted once"
    );
}

#[tokio::test]
async fn terminal_and_non_terminal_commits_in_one_call_each_finish_or_advance_their_job() {
    let (_redis, store, jobs, now) = fresh("mixed", 3).await;
    let params = [
        jobs[0].prepare(&invalid_login(&jobs[0], now), None),
        jobs[1].prepare(&authorized(&jobs[1], now), None),
        jobs[2].prepare(&invalid_login(&jobs[2], now), None),
    ];
    assert_eq!(
        in_one_call(&store, &params).await,
        [CommitOutcome::Applied; 3]
    );
    let after = as_stored(&store, &jobs).await;
    let states: Vec<JobState> = after.iter().map(|job| job.state).collect();
    assert_eq!(
        states,
        [JobState::Failed, JobState::Polling, JobState::Failed]
    );
    assert!(after[0].finished_ms.is_some() && after[1].finished_ms.is_none());
    assert!(
        store.batch_events(10).await.expect("events").is_empty(),
        "one job of the batch is unfinished: it is not complete"
    );
    // the finished logins may be enqueued again; the polling one may not
    let again = store
        .enqueue("again", &[after[0].login, after[1].login, after[2].login])
        .await
        .expect("enqueue");
    assert_eq!((again.enqueued, again.already_active), (2, 1));
}

#[tokio::test]
async fn a_batch_whose_last_jobs_finish_in_one_call_completes_exactly_once() {
    let (_redis, store, jobs, now) = fresh("last", 3).await;
    let params: Vec<CommitParams> = jobs
        .iter()
        .map(|job| job.prepare(&invalid_login(job, now), None))
        .collect();
    assert_eq!(
        in_one_call(&store, &params).await,
        [CommitOutcome::Applied; 3]
    );
    let events = store.batch_events(10).await.expect("events");
    assert_eq!(events.len(), 1, "one completion event: {events:?}");
    assert_eq!(
        (events[0].batch.as_str(), events[0].counts.failed),
        ("last", 3)
    );
}

#[tokio::test]
async fn counters_summed_over_one_call_match_the_jobs_states_of_each_batch_and_all() {
    // commit.lua sums the counters' moves of a call and applies them at its
    // end, except when a batch's completion must be decided mid-call: batch
    // "done" completes first (its pending moves applied for the check),
    // batch "open" keeps moving after that in the same call
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    let (done, now) = claimed(&store, "done", 2).await;
    let (open, _) = claimed(&store, "open", 3).await;
    let params = [
        done[0].prepare(&invalid_login(&done[0], now), None),
        open[0].prepare(&authorized(&open[0], now), None),
        done[1].prepare(&invalid_login(&done[1], now), None),
        open[1].prepare(&invalid_login(&open[1], now), None),
        open[2].prepare(&authorized(&open[2], now), None),
    ];
    assert_eq!(
        in_one_call(&store, &params).await,
        [CommitOutcome::Applied; 5]
    );
    // (queued, polling, failed, total) of each batch, then of every job
    for (batch, expected) in [
        (Some("done"), (0, 0, 2, 2)),
        (Some("open"), (0, 2, 1, 3)),
        (None, (0, 2, 3, 5)),
    ] {
        let c = store.counts(batch).await.expect("counts");
        assert_eq!(
            (c.queued, c.polling, c.failed, c.total),
            expected,
            "{batch:?}"
        );
    }
    let events = store.batch_events(10).await.expect("events");
    assert_eq!(events.len(), 1, "only \"done\" completed: {events:?}");
    assert_eq!(
        (
            events[0].batch.as_str(),
            events[0].counts.failed,
            events[0].counts.queued
        ),
        ("done", 2, 0)
    );
}

/// Six good commits and a stale one, committed through a store batching
/// with `limits`, queued behind the first one's call while Redis answers
/// nothing: each one's outcome, and how many `commit.lua` calls they took.
async fn queued_behind_a_call(limits: CommitBatching) -> (Vec<CommitOutcome>, u64) {
    let redis = RedisServer::start().expect("redis-server");
    let plain = redis.store().await;
    let (jobs, now) = claimed(&plain, "b", 6).await;
    let store = plain.clone().with_commit_batching(limits);
    // the claims commit through the batching store, as a worker's do
    let mut claims: Vec<Claim> = jobs
        .iter()
        .map(|job| Claim::forged(&store, job.job().clone()))
        .collect();
    claims.push(stale(&store, &jobs[5]));
    // loaded as a worker does at start: a NOSCRIPT answer would count as a call
    plain.load_worker_scripts().await.expect("load scripts");
    let mut conn: RedisConnection = plain.connection();
    let evalsha = async |conn: &mut RedisConnection| {
        command_calls(conn)
            .await
            .get("evalsha")
            .copied()
            .unwrap_or(0)
    };
    let before = evalsha(&mut conn).await;
    // Redis answers nothing: the first commit's call stays in flight, and the
    // others queue behind it (a current-thread runtime runs them as this
    // test yields)
    redis.freeze();
    let mut tasks = Vec::new();
    for claim in claims {
        let t = authorized(&claim, now);
        tasks.push(tokio::spawn(async move {
            let params = claim.prepare(&t, None);
            claim.commit(&params).await
        }));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }
    redis.thaw();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("commit task").expect("commit"));
    }
    (answers, evalsha(&mut conn).await - before)
}

fn six_applied_and_the_stale_one_fenced() -> Vec<CommitOutcome> {
    let mut expected = vec![CommitOutcome::Applied; 6];
    expected.push(CommitOutcome::Fenced);
    expected
}

#[tokio::test]
async fn commits_waiting_behind_a_call_go_in_the_next_one_each_with_its_own_outcome() {
    let (answers, calls) = queued_behind_a_call(CommitBatching::for_concurrency(16, 1)).await;
    assert_eq!(answers, six_applied_and_the_stale_one_fenced());
    assert_eq!(calls, 2, "the lone first commit, then the six that waited");
}

#[tokio::test]
async fn commits_past_a_calls_bounds_wait_for_the_next_call() {
    // a call of at most 3 commits: 1, then 3 and 3
    let by_count = CommitBatching {
        max_commits: 3,
        ..CommitBatching::for_concurrency(16, 1)
    };
    let (answers, calls) = queued_behind_a_call(by_count).await;
    assert_eq!(answers, six_applied_and_the_stale_one_fenced());
    assert_eq!(calls, 3, "{by_count:?}");
    // a call of at most one commit's bytes (a payload stored in Redis can
    // be megabytes): each commit alone
    let by_bytes = CommitBatching {
        max_bytes: 1,
        ..CommitBatching::for_concurrency(16, 1)
    };
    let (answers, calls) = queued_behind_a_call(by_bytes).await;
    assert_eq!(answers, six_applied_and_the_stale_one_fenced());
    assert_eq!(calls, 7, "{by_bytes:?}");
}

#[tokio::test]
async fn an_unanswered_call_fails_every_commit_in_it_and_its_retry_applies_each_once() {
    let redis = RedisServer::start().expect("redis-server");
    let store = Store::connect(&StoreConfig {
        response_timeout: Duration::from_millis(300),
        ..StoreConfig::new(redis.url(), "t")
    })
    .await
    .expect("connect");
    let (jobs, now) = claimed(&store, "b", 3).await;
    let params: Vec<CommitParams> = jobs
        .iter()
        .map(|job| job.prepare(&authorized(job, now), None))
        .collect();
    let batch: Vec<&CommitParams> = params.iter().collect();
    redis.freeze();
    let answers = store.commit_in_one_call(&batch).await;
    redis.thaw();
    assert_eq!(answers.len(), 3);
    for answer in answers {
        let error = answer.expect_err("no answer came");
        assert!(error.is_unanswered(), "{error}");
    }
    // the call may have run once Redis woke: a retry applies each commit
    // now or reads it applied, never fenced
    let retried = outcomes(store.commit_in_one_call(&batch).await);
    assert!(
        retried.iter().all(|outcome| outcome.is_applied()),
        "{retried:?}"
    );
    let counts = store.counts(Some("b")).await.expect("counts");
    assert_eq!((counts.polling, counts.queued), (3, 0));
}

/// Redis CPU (`INFO cpu`, user + sys) per commit, by commits per call:
/// `cargo test --release -p flinkq-tests --test group_commit -- --ignored --nocapture`.
/// Two ways: one call at a time (each call its own round trip, as a lone
/// worker step's commit), and 64 commits per round trip (calls pipelined on
/// the connection, as a busy worker's commits were before they were
/// grouped), so that what grouping saves inside Redis shows apart from the
/// round trips. A measurement, not a test: it asserts nothing about the figures.
#[tokio::test]
#[ignore = "a measurement: run by hand"]
async fn redis_cpu_per_commit_by_commits_per_call() {
    const COMMITS: usize = 12_000;
    const PER_ROUND_TRIP: usize = 64;
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    let mut conn = store.connection();
    // the first round warms Redis up (its memory taken from the system):
    // its figure is not comparable
    let rounds = [
        (64usize, false),
        (1, false),
        (8, false),
        (32, false),
        (64, false),
    ]
    .into_iter()
    .chain([(1usize, true), (8, true), (32, true), (64, true)]);
    for (round, (per_call, pipelined)) in rounds.enumerate() {
        // each round on an empty keyspace (an earlier round's keys would
        // make it pay for a bigger dictionary), rehashed before it counts
        let _: () = redis::cmd("FLUSHALL")
            .arg("SYNC")
            .query_async(&mut conn)
            .await
            .expect("FLUSHALL");
        store.load_worker_scripts().await.expect("load scripts");
        let batch = format!("cpu-{round}");
        let mut jobs = Vec::new();
        let mut now = 0;
        let logins: Vec<LoginId> = (0..COMMITS).map(|_| LoginId::random()).collect();
        store.enqueue(&batch, &logins).await.expect("enqueue");
        while jobs.len() < COMMITS {
            let claimed = store
                .claim(100, Duration::from_secs(600))
                .await
                .expect("claim");
            now = claimed.now_ms;
            jobs.extend(claimed.jobs);
        }
        let params: Vec<CommitParams> = jobs
            .iter()
            .map(|job| job.prepare(&authorized(job, now), None))
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let cpu_before = redis_cpu_seconds(&mut conn).await;
        let started = Instant::now();
        let trip = if pipelined { PER_ROUND_TRIP } else { per_call };
        for round_trip in params.chunks(trip) {
            let calls = round_trip.chunks(per_call).map(|chunk| {
                let batch: Vec<&CommitParams> = chunk.iter().collect();
                let store = &store;
                async move { store.commit_in_one_call(&batch).await }
            });
            for answers in futures::future::join_all(calls).await {
                for answer in answers {
                    assert_eq!(answer.expect("commit"), CommitOutcome::Applied);
                }
            }
        }
        let elapsed = started.elapsed();
        let cpu = redis_cpu_seconds(&mut conn).await - cpu_before;
        println!(
            "{}commits per call {per_call:>3}, {}: Redis CPU {:.1} µs per commit ({COMMITS} commits, {:.0} commits/s)",
            if round == 0 { "(warm-up) " } else { "" },
            if pipelined {
                "64 commits per round trip"
            } else {
                "one call per round trip"
            },
            cpu * 1e6 / COMMITS as f64,
            COMMITS as f64 / elapsed.as_secs_f64()
        );
    }
}

#[tokio::test]
#[ignore = "a measurement: run by hand"]
async fn redis_cpu_per_claimed_job_and_per_commit_while_jobs_poll() {
    // Redis' own CPU time for the two calls a step makes, as the worker
    // makes them, without the worker and the simulator sharing the cores:
    // claims that also begin the step, and commits of as many jobs per
    // call (FLINKQ_MEASURE_PER_CALL, 25 unless given; one call per round
    // trip); every job keeps polling (202), so each round claims and
    // commits the same jobs again, as a drain's middle steps do
    const JOBS: usize = 10_000;
    let (per_call, rounds) = measure_sizes();
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    let mut conn = store.connection();
    let logins: Vec<LoginId> = (0..JOBS).map(|_| LoginId::random()).collect();
    store.enqueue("cpu", &logins).await.expect("enqueue");
    let spacing = Duration::from_millis(1);
    let (mut claim_cpu, mut commit_cpu, mut steps) = (0.0, 0.0, 0usize);
    for round in 0..=rounds {
        let before = redis_cpu_seconds(&mut conn).await;
        let mut jobs = Vec::new();
        let mut now = 0;
        while jobs.len() < JOBS {
            let claimed = store
                .claim_to_run(
                    per_call,
                    Duration::from_secs(600),
                    Duration::from_secs(600),
                    spacing,
                )
                .await
                .expect("claim");
            assert!(!claimed.jobs.is_empty(), "every job due again");
            now = claimed.now_ms;
            jobs.extend(claimed.jobs);
        }
        let claimed_at = redis_cpu_seconds(&mut conn).await;
        let params: Vec<CommitParams> = jobs
            .iter()
            .map(|job| {
                let t = if round == 0 {
                    authorized(job, now)
                } else {
                    let tick = Tick {
                        now_ms: now,
                        jitter: 0.0,
                    };
                    transition(job, Outcome::Pending, tick, &Policy::default())
                };
                // due again at once: the next round claims it
                let t = Transition {
                    due_ms: Some(now),
                    ..t
                };
                job.prepare(&t, None)
            })
            .collect();
        let committed_from = redis_cpu_seconds(&mut conn).await;
        for chunk in params.chunks(per_call) {
            let batch: Vec<&CommitParams> = chunk.iter().collect();
            for answer in store.commit_in_one_call(&batch).await {
                assert_eq!(answer.expect("commit"), CommitOutcome::Applied);
            }
        }
        let committed = redis_cpu_seconds(&mut conn).await;
        // round 0 authorizes (a first claim and commit do more): not counted
        if round > 0 {
            claim_cpu += claimed_at - before;
            commit_cpu += committed - committed_from;
            steps += JOBS;
        }
    }
    println!(
        "Redis CPU per polling step: claim {:.2} µs, commit {:.2} µs, both {:.2} µs ({steps} steps, {per_call} per call)",
        claim_cpu * 1e6 / steps as f64,
        commit_cpu * 1e6 / steps as f64,
        (claim_cpu + commit_cpu) * 1e6 / steps as f64,
    );
}

/// The hand-run measurements' sizes: jobs per call
/// (`FLINKQ_MEASURE_PER_CALL`, 25 unless given) and polling rounds after the
/// authorize round (`FLINKQ_MEASURE_ROUNDS`, 4 unless given; 0 leaves only
/// the enqueue and the authorize round, whose count `scripts/redis-instructions`
/// subtracts to get the polling steps' alone).
fn measure_sizes() -> (usize, usize) {
    let read = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    (
        read("FLINKQ_MEASURE_PER_CALL", 25),
        read("FLINKQ_MEASURE_ROUNDS", 4),
    )
}

#[tokio::test]
#[ignore = "a measurement: run by scripts/redis-instructions --floor"]
async fn redis_cpu_floor_of_a_fenced_claim_and_commit() {
    // The same workload as redis_cpu_per_claimed_job_and_per_commit_while_jobs_poll
    // (10,000 jobs, an authorize round, then polling rounds, as many jobs
    // per call), run through tests/lua/floor_*.lua instead of flinkq's
    // scripts: the Redis work of a claim and a commit that keep the same
    // guarantees when a job is a short header plus one value only the
    // worker reads and writes. What a redesign of the job's storage could
    // save at most (BENCHMARKS.md, issue 14's ninth pass).
    const JOBS: usize = 10_000;
    // what the record would hold: the login, product and batch, the
    // session, deadlines, stage, counters and the last error (~200 bytes)
    const RECORD: usize = 200;
    let (per_call, rounds) = measure_sizes();
    let redis = RedisServer::start().expect("redis-server");
    let mut conn = redis.plain_connection().await;
    let claim = redis::Script::new(include_str!("../lua/floor_claim.lua"));
    let commit = redis::Script::new(include_str!("../lua/floor_commit.lua"));
    let queues = ["due_high", "due", "due_low"];
    let record = "r".repeat(RECORD);
    let logins: Vec<String> = (0..JOBS).map(|_| LoginId::random().to_string()).collect();
    for (chunk, logins) in logins.chunks(500).enumerate() {
        let mut pipe = redis::pipe();
        for (i, login) in logins.iter().enumerate() {
            let id = format!("{:08}", chunk * 500 + i);
            pipe.hset_multiple(
                format!("job:{id}"),
                &[
                    ("login", login.as_str()),
                    ("batch", "cpu"),
                    ("state", "queued"),
                    ("created", "1"),
                    ("rec", record.as_str()),
                ],
            )
            .ignore()
            .zadd("due", &id, 0)
            .ignore();
        }
        let () = pipe.query_async(&mut conn).await.expect("enqueue");
    }
    let login_of = |id: &str| logins[id.parse::<usize>().expect("an id")].as_str();
    let (mut steps, mut calls) = (0usize, 0usize);
    for round in 0..=rounds {
        let mut jobs: Vec<(String, String)> = Vec::new();
        let mut now = 0i64;
        while jobs.len() < JOBS {
            // a base of its own per call, as the worker's claims send one:
            // no two claims share a token
            calls += 1;
            let (at, _next, claimed): (i64, String, Vec<String>) = claim
                .key(&queues[..])
                .key("leases")
                .key("deadlines")
                .arg(per_call)
                .arg(600_000)
                .arg(format!("base{calls}"))
                .arg(600_000)
                .arg(1)
                .invoke_async(&mut conn)
                .await
                .expect("claim");
            assert!(!claimed.is_empty(), "every job due again");
            now = at;
            for job in claimed.chunks(4) {
                jobs.push((job[0].clone(), job[1].clone()));
            }
        }
        for (k, chunk) in jobs.chunks(per_call).enumerate() {
            let mut call = commit.key(&queues[..]);
            call.key("leases").key("counts");
            for (id, token) in chunk {
                call.arg(id)
                    .arg(login_of(id))
                    .arg(token)
                    .arg(format!("{round}.{k}.{id}"))
                    .arg("polling")
                    .arg(now)
                    .arg(&record);
            }
            let answers: Vec<i64> = call.invoke_async(&mut conn).await.expect("commit");
            assert!(answers.iter().all(|&a| a == 1), "{answers:?}");
        }
        steps += JOBS;
    }
    println!("floor: {steps} steps, {per_call} per call");
}
