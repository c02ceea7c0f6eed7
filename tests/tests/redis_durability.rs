//! Replicated Redis, the hard parts: commits acknowledged by a replica
//! (`FLINKQ_REDIS_WAIT_REPLICAS`) across five Sentinel failovers, only once
//! the replica has them, and per shard on a cluster; a cluster slot moved
//! mid-batch; `/readyz` through a failover. All real processes
//! (redis-server, redis-server --sentinel, workers).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use flinkq_shared::LoginId;
use flinkq_shared::store::{CommitOutcome, Store, StoreConfig, StoreError, Topology, fields};
use flinkq_tests::fixtures::invalid_login;
use flinkq_tests::prom_text::value;
use flinkq_tests::redis_harness::RedisServer;
use flinkq_tests::redis_topology::{
    RedisTopology, SentinelGroup, TopologyKind, redis_cli, start_replica,
};
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::{KeepLogOnPanic, WorkerProcess, plain_log, wait_for};

/// One line of the store's commit trace (target
/// `flinkq_shared::store::commit`): `commit prepared job=… commit=… prior=…`
/// before a commit is first sent, `commit applied … acknowledged=…` for
/// each answer that says it is in the store.
#[derive(Debug, Clone)]
struct Traced {
    job: String,
    commit: String,
    prior: String,
    acknowledged: bool,
    /// Where the line starts in the log (bytes).
    at: usize,
}

/// The lines of `log` whose message is `message`, in one pass (the log of
/// a run is megabytes: only the matching lines lose their colour codes).
fn traced(log: &str, message: &str) -> Vec<Traced> {
    let mut at = 0;
    let mut found = Vec::new();
    for raw in log.split_inclusive('\n') {
        let start = at;
        at += raw.len();
        if !raw.contains(message) {
            continue;
        }
        let line = plain_log(raw);
        let field = |name: &str| {
            line.split_whitespace().find_map(|word| {
                word.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('='))
                    .map(str::to_owned)
            })
        };
        if let (Some(job), Some(commit), Some(prior)) =
            (field("job"), field("commit"), field("prior"))
        {
            found.push(Traced {
                job,
                commit,
                prior,
                acknowledged: field("acknowledged").is_some_and(|a| a == "true"),
                at: start,
            });
        }
    }
    found
}

fn sentinel_group(world: &mut Scenario) -> &mut SentinelGroup {
    match &mut world.topology {
        Some(RedisTopology::Sentinel(group)) => group,
        _ => unreachable!("a Sentinel scenario"),
    }
}

/// SIGKILLs the primary the Sentinels name now, waits for the promotion,
/// and attaches a fresh replica to the new primary so `WAIT 1` can be met
/// again (and the next failover has a replica to promote). Until it is in
/// sync, the new primary applies commits no replica confirms: the workers
/// retry them. Returns the new primary's port and how long the promotion
/// took.
async fn fail_over(world: &mut Scenario) -> (u16, Duration) {
    let primary = sentinel_group(world)
        .primary_port()
        .expect("the Sentinels name a primary");
    let killed = Instant::now();
    if primary == world.redis.port() {
        world.redis.stop();
    } else {
        sentinel_group(world)
            .server_on(primary)
            .expect("the primary is one of the group's servers")
            .stop();
    }
    let group = sentinel_group(world);
    let promoted = wait_for(
        "the Sentinels to promote a replica",
        Duration::from_secs(60),
        async || group.primary_port().filter(|port| *port != primary),
    )
    .await;
    let took = killed.elapsed();
    // the new primary alone for a moment: the commits it applies meanwhile
    // are not confirmed, and are retried
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spare = group
        .attach_replica(promoted)
        .expect("a fresh replica of the new primary");
    println!(
        "  replica 127.0.0.1:{spare} in sync and known to the Sentinels {:?} after the SIGKILL",
        killed.elapsed()
    );
    (promoted, took)
}

/// What the guarantee is about: a transition the worker was told is
/// applied *and* confirmed by `WAIT` (traced `acknowledged=true`) must be on
/// its job's final chain of commits. A commit applied whose answer was lost
/// (the primary SIGKILLed right after applying it; its retry stuck behind
/// other commits' `WAIT`s until the next claim built on it and fenced it)
/// may be on the chain too, though no worker saw it applied: the chain is
/// walked through the `commit prepared` lines, which every commit has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commits_survive_five_failovers_with_wait_replicas() {
    let interval = Duration::from_millis(500);
    let mut world = Scenario::start_on(interval, TopologyKind::Sentinel).await;
    world.setup.lease = Duration::from_secs(6);
    world.setup.extra_env.extend([
        ("FLINKQ_REDIS_WAIT_REPLICAS".into(), "1".into()),
        ("FLINKQ_REDIS_WAIT_TIMEOUT".into(), "500ms".into()),
        // the store's per-commit trace, to check against the final state
        (
            "RUST_LOG".into(),
            "info,flinkq_shared::store::commit=debug".into(),
        ),
    ]);
    let _kept = KeepLogOnPanic::new(&world.setup.log_file, "flinkq-failovers-worker.log");
    let workers = [
        WorkerProcess::spawn(&world.setup),
        WorkerProcess::spawn(&world.setup),
    ];
    let mut batches = Vec::new();
    // log length at each kill: the acknowledged commits before it
    let mut kill_offsets = Vec::new();
    let started = Instant::now();
    for round in 0..5 {
        let batch = format!("round-{round}");
        let logins = world.logins(100, &Script::pending(3));
        // the store's first command after a failover may meet the old
        // primary's dead connection (unanswered): enqueueing again is safe
        wait_for("the enqueue", Duration::from_secs(30), async || {
            world.store.enqueue(&batch, &logins).await.ok()
        })
        .await;
        // mid-batch: every login of the round polled once
        world.wait_polled(&logins, 1, Duration::from_secs(60)).await;
        let log_len = std::fs::metadata(&world.setup.log_file)
            .map(|m| m.len() as usize)
            .unwrap_or(0);
        kill_offsets.push(log_len);
        let (primary, took) = fail_over(&mut world).await;
        println!(
            "failover {round}: primary now 127.0.0.1:{primary}, promoted {took:?} after the SIGKILL ({:?} into the test)",
            started.elapsed()
        );
        batches.push((batch, logins));
    }

    for (batch, _) in &batches {
        let counts = world.wait_finished(batch, Duration::from_secs(180)).await;
        assert_eq!(counts.succeeded, 100, "{batch}: {counts:?}");
        assert_eq!(counts.total, 100, "{batch}: {counts:?}");
    }
    println!("every batch finished {:?} into the test", started.elapsed());
    for mut worker in workers {
        assert!(worker.try_exit_status().is_none(), "no worker exited");
    }

    // every commit the workers sent, by job: commit -> the commit it
    // followed
    let log = std::fs::read_to_string(&world.setup.log_file).expect("worker log");
    let prior_of: HashMap<(String, String), String> = traced(&log, "commit prepared")
        .into_iter()
        .map(|t| ((t.job, t.commit), t.prior))
        .collect();
    let applied = traced(&log, "commit applied");
    // each job's history as Redis holds it now: its last commit, then back
    // through the commits each one followed, to the enqueue
    let mut conn = world.store.connection();
    let mut history: HashMap<String, HashSet<String>> = HashMap::new();
    for (_, logins) in &batches {
        for login in logins {
            let job = world.job_of(login).await;
            let last: String = redis::cmd("HGET")
                .arg(world.store.keys().job(job.id))
                .arg(fields::COMMIT_ID)
                .query_async(&mut conn)
                .await
                .expect("the job's last commit");
            let id = job.id.to_string();
            let mut chain = HashSet::new();
            let mut at = last;
            while at != "none" {
                assert!(chain.insert(at.clone()), "job {id}: a commit loop at {at}");
                at = prior_of
                    .get(&(id.clone(), at.clone()))
                    .unwrap_or_else(|| {
                        panic!("job {id}: commit {at} in Redis was never sent by a worker")
                    })
                    .clone();
            }
            history.insert(id, chain);
        }
    }
    let on_chain = |t: &Traced| {
        history
            .get(&t.job)
            .is_some_and(|chain| chain.contains(&t.commit))
    };
    let acknowledged: Vec<&Traced> = applied.iter().filter(|t| t.acknowledged).collect();
    let lost: Vec<&&Traced> = acknowledged.iter().filter(|t| !on_chain(t)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged commits are not in their job's history: {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(5)]
    );
    // the acknowledged commits before each kill: all in the final state
    for (round, offset) in kill_offsets.iter().enumerate() {
        let before = acknowledged.iter().filter(|t| t.at < *offset).count();
        println!("failover {round}: {before} commits acknowledged before the SIGKILL, none lost");
    }
    let seen: HashSet<(&str, &str)> = applied
        .iter()
        .map(|t| (t.job.as_str(), t.commit.as_str()))
        .collect();
    let unseen = history
        .iter()
        .flat_map(|(job, chain)| {
            chain
                .iter()
                .map(move |commit| (job.as_str(), commit.as_str()))
        })
        .filter(|commit| !seen.contains(commit))
        .count();
    let confirmed: HashSet<(&str, &str)> = acknowledged
        .iter()
        .map(|t| (t.job.as_str(), t.commit.as_str()))
        .collect();
    println!(
        "{} commits acknowledged (WAIT 1); {} applied but not confirmed in time (retried); {unseen} on a final chain though no worker saw them applied (answer lost); simulator violations: {}",
        confirmed.len(),
        seen.len() - confirmed.len(),
        world.sim.violations().len()
    );
    // 500 jobs of an authorize and four polls each: most of their 2500
    // commits acknowledged at once (the rest after a retry, or applied
    // unacknowledged and left for the next step to build on)
    assert!(confirmed.len() >= 1_000, "{}", confirmed.len());
}

/// `WAIT` counts the replicas that reached its connection's offset, and
/// since Redis 7.2 (and in Valkey) that offset moves only with a command
/// that propagated something. A commit retried after an unconfirmed
/// answer reads "already applied" and writes nothing, so its `WAIT`, on
/// another of the commit connections, would count the replica up to that
/// connection's older write and acknowledge a commit the replica does not
/// have: lost in the next failover though the worker counted it. (Redis
/// 7.0 moves the offset with every command, so there the script call
/// before `WAIT` covered it.) Here the replica is frozen (SIGSTOP) right
/// after the enqueue it confirmed: no retry and no read-back of the commit
/// may be acknowledged until it is thawed, whatever the Redis version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_read_as_already_applied_is_acknowledged_only_once_a_replica_has_the_commit() {
    let primary = RedisServer::start().expect("redis-server");
    let replica = start_replica(primary.port()).expect("a replica");
    let store = Store::connect(&StoreConfig {
        wait_replicas: 1,
        wait_timeout: Duration::from_millis(200),
        commit_connections: 2,
        ..StoreConfig::new(primary.url(), "t")
    })
    .await
    .expect("connect");
    let login = LoginId::random();
    store
        .enqueue("b", &[login])
        .await
        .expect("an enqueue the replica confirms");
    let claimed = store
        .claim(1, Duration::from_secs(60))
        .await
        .expect("claim");
    let job = &claimed.jobs[0];
    let params = job.prepare(&invalid_login(job, claimed.now_ms), None);

    replica.freeze();
    fn not_replicated<T>(answer: &Result<T, StoreError>) -> bool {
        matches!(answer, Err(StoreError::NotReplicated { acked: 0, .. }))
    }
    let first = job.commit(&params).await;
    assert!(not_replicated(&first), "applied, not confirmed: {first:?}");
    // each call goes over the next commit connection: every one of them
    for _ in 0..4 {
        let retry = job.commit(&params).await;
        assert!(not_replicated(&retry), "a retry: {retry:?}");
        let read_back = job.resolve_commit(&params).await;
        assert!(not_replicated(&read_back), "a read-back: {read_back:?}");
    }

    replica.thaw();
    assert_eq!(
        job.commit(&params).await.expect("confirmed once thawed"),
        CommitOutcome::AlreadyApplied
    );
    assert_eq!(
        redis_cli(
            replica.port(),
            &["HGET", &store.keys().job(job.id), fields::COMMIT_ID]
        ),
        params.commit_id().to_string(),
        "the replica has the commit it confirmed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_migration_mid_batch_leaves_nothing_stuck() {
    let interval = Duration::from_millis(500);
    let mut world = Scenario::start_on(interval, TopologyKind::Cluster).await;
    world.setup.lease = Duration::from_secs(6);
    let _keep = KeepLogOnPanic::new(&world.setup.log_file, "flinkq-reshard-worker.log");
    let logins = world.logins(300, &Script::pending(4));
    world.enqueue("reshard", &logins).await;
    let workers = [
        WorkerProcess::spawn(&world.setup),
        WorkerProcess::spawn(&world.setup),
    ];
    let Some(RedisTopology::Cluster(cluster)) = &world.topology else {
        unreachable!("a cluster scenario")
    };
    let slot = cluster.slot_of(&world.store.keys().counts());
    let from = cluster.master_of(slot);
    let to = *cluster
        .ports()
        .iter()
        .find(|port| **port != from)
        .expect("another master");

    world.wait_polled(&logins, 1, Duration::from_secs(60)).await;
    let at_move = world.store.counts(Some("reshard")).await.expect("counts");
    assert!(at_move.unfinished() > 0, "moved mid-batch: {at_move:?}");
    // ten keys per MIGRATE: the slot stays half-moved for a while, and the
    // workers' scripts meet ASK and TRYAGAIN, then MOVED
    let started = Instant::now();
    let moved = cluster
        .migrate_slot(slot, to, 10)
        .expect("migrate the slot");
    println!(
        "slot {slot} moved from 127.0.0.1:{from} to 127.0.0.1:{to}: {moved} keys in {:?}",
        started.elapsed()
    );
    assert_eq!(cluster.master_of(slot), to);

    let counts = world
        .wait_finished("reshard", Duration::from_secs(120))
        .await;
    assert_eq!(counts.succeeded, 300, "{counts:?}");
    assert_eq!(counts.total, 300, "{counts:?}");
    world.sim.assert_data_calls_each(&logins, 5);
    assert_eq!(world.sim.violations(), vec![]);
    for mut worker in workers {
        assert!(worker.try_exit_status().is_none(), "no worker exited");
    }
    assert_eq!(
        world.store.topology().await.expect("topology"),
        Topology::Cluster {
            slot,
            primary: format!("127.0.0.1:{to}"),
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_false_while_no_writable_primary_answers() {
    let mut world = Scenario::start_on(Duration::from_millis(500), TopologyKind::Sentinel).await;
    let worker = WorkerProcess::spawn(&world.setup);
    let readyz = async |want: u16| {
        let (status, body) = worker.health("/readyz").await?;
        (status == want).then_some(body)
    };
    wait_for("the worker ready", Duration::from_secs(30), async || {
        readyz(200).await
    })
    .await;

    let replica = sentinel_group(&mut world).replica.port();
    let killed = Instant::now();
    world.redis.stop();
    // the claimer may notice first (its claim fails); the probe says why
    wait_for(
        "/readyz to turn false without a writable primary",
        Duration::from_secs(10),
        async || {
            readyz(503)
                .await
                .filter(|body| body["primary_writable"] == false)
        },
    )
    .await;
    let unready = killed.elapsed();
    let group = sentinel_group(&mut world);
    wait_for(
        "the Sentinels to promote the replica",
        Duration::from_secs(30),
        async || (group.primary_port() == Some(replica)).then_some(()),
    )
    .await;
    let promoted = killed.elapsed();
    let body = wait_for(
        "/readyz to turn true on the new primary",
        Duration::from_secs(30),
        async || readyz(200).await,
    )
    .await;
    assert_eq!(body["primary_writable"], true, "{body}");
    println!(
        "readyz: false {unready:?} after the SIGKILL, replica promoted at {promoted:?}, ready again at {:?}",
        killed.elapsed()
    );
}

/// `FLINKQ_REDIS_WAIT_REPLICAS` on a Redis Cluster: the `WAIT` rides in the
/// commit's pipeline to the namespace's master, so it counts that shard's
/// replica. In sync, it confirms the commits (the worker counts every job
/// finished). Frozen (SIGSTOP), the master still applies the commits but
/// nobody confirms them: each is counted in
/// `flinkq_commits_unreplicated_total`, not acknowledged (no finish is
/// counted meanwhile) and sent again with the same commit id until the
/// replica is back; the jobs then end exactly as scripted, no call made
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_replicas_on_a_cluster_count_the_namespace_shards_replica() {
    let interval = Duration::from_millis(500);
    let mut world = Scenario::start_on(interval, TopologyKind::ReplicatedCluster).await;
    world.setup.lease = Duration::from_secs(3);
    world.setup.extra_env.extend([
        ("FLINKQ_REDIS_WAIT_REPLICAS".into(), "1".into()),
        ("FLINKQ_REDIS_WAIT_TIMEOUT".into(), "1s".into()),
    ]);
    let _kept = KeepLogOnPanic::new(&world.setup.log_file, "flinkq-cluster-wait-worker.log");
    let worker = WorkerProcess::spawn(&world.setup);
    let metric = async |name: &str, labels: &[(&str, &str)]| {
        worker
            .metrics()
            .await
            .and_then(|samples| value(&samples, name, labels))
    };
    let succeeded = [("state", "succeeded")];

    let replicated = world.logins(50, &Script::pending(2));
    world.enqueue("replicated", &replicated).await;
    let counts = world
        .wait_finished("replicated", Duration::from_secs(60))
        .await;
    assert_eq!((counts.succeeded, counts.total), (50, 50), "{counts:?}");
    // each job's last commit confirmed by the replica, or the worker would
    // not count it finished
    wait_for(
        "the worker to count 50 jobs finished",
        Duration::from_secs(30),
        async || (metric("flinkq_jobs_finished_total", &succeeded).await? == 50.0).then_some(()),
    )
    .await;

    let Some(RedisTopology::Cluster(cluster)) = &world.topology else {
        unreachable!("a cluster scenario")
    };
    let master = cluster.master_of(cluster.slot_of(&world.store.keys().counts()));
    let replica = cluster
        .replica_of(master)
        .expect("the namespace's master has a replica");
    replica.freeze();
    let unreplicated = world.logins(20, &Script::pending(2));
    world.enqueue("unreplicated", &unreplicated).await;
    let short = wait_for(
        "commits applied but not confirmed",
        Duration::from_secs(60),
        async || {
            let n = metric("flinkq_commits_unreplicated_total", &[]).await?;
            (n >= 20.0).then_some(n)
        },
    )
    .await;
    let finished_while_frozen = metric("flinkq_jobs_finished_total", &succeeded).await;
    replica.thaw();

    let counts = world
        .wait_finished("unreplicated", Duration::from_secs(60))
        .await;
    assert_eq!((counts.succeeded, counts.total), (20, 20), "{counts:?}");
    assert_eq!(
        finished_while_frozen,
        Some(50.0),
        "no finish acknowledged while the replica was frozen"
    );
    for login in replicated.iter().chain(&unreplicated) {
        let stats = world.sim.login_stats(&login.to_string());
        assert_eq!(
            (stats.authorize_calls, stats.investments_calls),
            (1, 3),
            "{login}: {stats:?}"
        );
    }
    assert_eq!(world.sim.violations(), vec![]);
    let not_replicated = metric(
        "flinkq_redis_errors_total",
        &[("op", "commit"), ("kind", "not_replicated")],
    )
    .await;
    println!(
        "cluster WAIT: 50 jobs acknowledged by the shard's replica; with it frozen, {short} commits unconfirmed (redis errors not_replicated: {not_replicated:?}), all 20 jobs exact once it was back"
    );
}
