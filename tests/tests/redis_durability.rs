//! Replicated Redis, the hard parts: commits acknowledged by a replica
//! (`FLINKQ_REDIS_WAIT_REPLICAS`) across five Sentinel failovers, a cluster
//! slot moved mid-batch, and `/readyz` through a failover. All real
//! processes (redis-server, redis-server --sentinel, workers).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use flinkq_shared::store::{Topology, fields};
use flinkq_tests::redis_topology::{RedisTopology, SentinelGroup, TopologyKind};
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::{WorkerProcess, plain_log, wait_for};

/// One commit a worker saw applied on the primary: the store's debug trace
/// (`commit applied job=… commit=… prior=… acknowledged=…`).
#[derive(Debug, Clone)]
struct Traced {
    job: String,
    commit: String,
    prior: String,
    acknowledged: bool,
}

fn traced_commits(log: &str) -> Vec<Traced> {
    plain_log(log)
        .lines()
        .filter(|line| line.contains("commit applied"))
        .filter_map(|line| {
            let field = |name: &str| {
                line.split_whitespace().find_map(|word| {
                    word.strip_prefix(name)
                        .and_then(|rest| rest.strip_prefix('='))
                        .map(str::to_owned)
                })
            };
            Some(Traced {
                job: field("job")?,
                commit: field("commit")?,
                prior: field("prior")?,
                acknowledged: field("acknowledged")? == "true",
            })
        })
        .collect()
}

fn sentinel_group(world: &mut Scenario) -> &mut SentinelGroup {
    match &mut world.topology {
        Some(RedisTopology::Sentinel(group)) => group,
        _ => unreachable!("a Sentinel scenario"),
    }
}

/// SIGKILLs the primary the Sentinels name now, waits for the promotion,
/// and attaches a fresh replica to the new primary so `WAIT 1` can be met
/// again (and the next failover has a replica to promote). Returns the new
/// primary's port and how long the promotion took.
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
    group
        .attach_replica(promoted)
        .expect("a fresh replica of the new primary");
    (promoted, took)
}

// Failed once in six runs on a loaded machine, cause not yet captured (the
// test copies the worker log to /tmp/flinkq-failovers-worker.log when its
// walk-back fails): kept out of CI until understood. Run it with
// `cargo test -p flinkq-tests --test redis_durability -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "flaky (1 failure in 6 runs, cause not captured yet); issue 13 stays open until it is fixed"]
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
    let workers = [
        WorkerProcess::spawn(&world.setup),
        WorkerProcess::spawn(&world.setup),
    ];
    let mut batches = Vec::new();
    // log length at each kill: the acknowledged commits before it
    let mut kill_offsets = Vec::new();
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
            "failover {round}: primary now 127.0.0.1:{primary}, promoted {took:?} after the SIGKILL"
        );
        batches.push((batch, logins));
    }

    for (batch, _) in &batches {
        let counts = world.wait_finished(batch, Duration::from_secs(180)).await;
        assert_eq!(counts.succeeded, 100, "{batch}: {counts:?}");
        assert_eq!(counts.total, 100, "{batch}: {counts:?}");
    }
    for mut worker in workers {
        assert!(worker.try_exit_status().is_none(), "no worker exited");
    }

    // every commit the workers saw applied, by job: commit -> the commit it
    // followed
    let log = std::fs::read_to_string(&world.setup.log_file).expect("worker log");
    let traced = traced_commits(&log);
    let mut prior_of: HashMap<(String, String), String> = HashMap::new();
    for t in &traced {
        prior_of.insert((t.job.clone(), t.commit.clone()), t.prior.clone());
    }
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
                        let kept = std::env::temp_dir().join("flinkq-failovers-worker.log");
                        let _ = std::fs::write(&kept, &log);
                        panic!(
                            "job {id}: commit {at} in Redis was never reported applied by a worker (worker log kept in {})",
                            kept.display()
                        )
                    })
                    .clone();
            }
            history.insert(id, chain);
        }
    }
    let acknowledged: Vec<&Traced> = traced.iter().filter(|t| t.acknowledged).collect();
    let lost: Vec<&&Traced> = acknowledged
        .iter()
        .filter(|t| {
            !history
                .get(&t.job)
                .is_some_and(|chain| chain.contains(&t.commit))
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged commits are not in their job's history: {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(5)]
    );
    // the acknowledged commits before each kill: all in the final state
    let plain_upto = |offset: usize| {
        traced_commits(&String::from_utf8_lossy(
            &log.as_bytes()[..offset.min(log.len())],
        ))
    };
    for (round, offset) in kill_offsets.iter().enumerate() {
        let before = plain_upto(*offset)
            .into_iter()
            .filter(|t| t.acknowledged)
            .count();
        println!("failover {round}: {before} commits acknowledged before the SIGKILL, none lost");
    }
    let unacknowledged = traced.len() - acknowledged.len();
    println!(
        "{} commits acknowledged (WAIT 1), {unacknowledged} applied but not acknowledged in time (retried); simulator violations: {}",
        acknowledged.len(),
        world.sim.violations().len()
    );
    // 500 jobs of an authorize and four polls each: most of their 2500
    // commits acknowledged at once (the rest after a retry, or applied
    // unacknowledged and left for the next step to build on)
    assert!(acknowledged.len() >= 1_000, "{}", acknowledged.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_migration_mid_batch_leaves_nothing_stuck() {
    let interval = Duration::from_millis(500);
    let mut world = Scenario::start_on(interval, TopologyKind::Cluster).await;
    world.setup.lease = Duration::from_secs(6);
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
    for login in &logins {
        let stats = world.sim.login_stats(&login.to_string());
        assert_eq!(stats.investments_calls, 5, "{login}: {stats:?}");
    }
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
