//! Replicated Redis: a Sentinel failover mid-batch and a real Redis Cluster,
//! all real processes (redis-server, redis-server --sentinel, workers, CLI).

use std::time::{Duration, Instant};

use flinkq_shared::store::{Keys, RedisMode, Store, StoreConfig, Topology};
use flinkq_tests::redis_topology::{RedisCluster, RedisTopology, TopologyKind, redis_cli};
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::{WorkerProcess, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_mid_batch_loses_nothing() {
    let interval = Duration::from_millis(500);
    let mut world = Scenario::start_on(interval, TopologyKind::Sentinel).await;
    // the failover (1 s to call the primary down, then the election) fits
    // in the lease: no claimed step runs twice because of it
    world.setup.lease = Duration::from_secs(6);
    let logins = world.logins(500, &Script::pending(4));
    world.enqueue("failover", &logins).await;
    let workers = [
        WorkerProcess::spawn(&world.setup),
        WorkerProcess::spawn(&world.setup),
    ];
    let Some(RedisTopology::Sentinel(group)) = &world.topology else {
        unreachable!("a Sentinel scenario")
    };
    let replica = group.replica.port();
    assert_eq!(group.primary_port(), Some(world.redis.port()));

    // mid-batch: every login polled once, none finished
    world.wait_polled(&logins, 1, Duration::from_secs(60)).await;
    let at_kill = world.store.counts(Some("failover")).await.expect("counts");
    assert!(at_kill.unfinished() > 0, "killed mid-batch: {at_kill:?}");
    let mut sample = Vec::new();
    for login in &logins[..100] {
        sample.push(world.job_of(login).await.id);
    }
    let killed = Instant::now();
    world.redis.stop();

    wait_for(
        "the Sentinels to promote the replica",
        Duration::from_secs(30),
        async || (group.primary_port() == Some(replica)).then_some(()),
    )
    .await;
    let promoted = killed.elapsed();
    // the first commit after the kill: a sampled job's poll count moves on
    // the new primary (read first once the store reaches it)
    let polls = async || -> Option<u32> {
        let jobs = world.store.jobs(&sample).await.ok()?;
        Some(jobs.iter().map(|job| job.polls).sum())
    };
    let baseline = wait_for(
        "the store to reach the new primary",
        Duration::from_secs(30),
        polls,
    )
    .await;
    wait_for(
        "a commit on the new primary",
        Duration::from_secs(30),
        async || (polls().await? != baseline).then_some(()),
    )
    .await;
    let first_commit = killed.elapsed();
    println!(
        "sentinel failover: replica promoted {promoted:?} after the SIGKILL, first commit after the kill at {first_commit:?}"
    );

    let counts = world
        .wait_finished("failover", Duration::from_secs(120))
        .await;
    assert_eq!(counts.succeeded, 500, "{counts:?}");
    assert_eq!(counts.total, 500, "{counts:?}");
    world.sim.assert_data_calls_each(&logins, 5);
    assert_eq!(world.sim.violations(), vec![]);
    assert!(
        workers.iter().all(|w| w.pid() > 0),
        "the same two workers ran throughout"
    );
    for mut worker in workers {
        assert!(worker.try_exit_status().is_none(), "no worker exited");
    }
    // the workers logged the primary at start, and the switch
    let log = std::fs::read_to_string(&world.setup.log_file).expect("worker log");
    assert!(
        log.contains("Redis primary serving the namespace")
            && log.contains(&format!("127.0.0.1:{}", world.redis.port())),
        "{log}"
    );
    assert!(log.contains("Redis primary changed"), "{log}");
    // the CLI reads the new primary through the Sentinels too
    let status = world.cli(&["status", "--batch", "failover"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let topology = world.store.topology().await.expect("topology");
    assert_eq!(
        topology,
        Topology::Sentinel {
            master_name: "mymaster".into(),
            primary: format!("127.0.0.1:{replica}"),
        }
    );
}

/// Two namespace names whose hash slots sit on different masters.
fn namespaces_on_two_shards(world: &Scenario) -> (String, String) {
    let Some(RedisTopology::Cluster(cluster)) = &world.topology else {
        unreachable!("a cluster scenario")
    };
    let master_of = |ns: &str| {
        let key = Keys::new(ns).counts();
        cluster.master_of(cluster.slot_of(&key))
    };
    let first = "night-0".to_owned();
    let second = (1..100)
        .map(|i| format!("night-{i}"))
        .find(|ns| master_of(ns) != master_of(&first))
        .expect("a namespace on another master");
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_runs_two_namespaces_on_different_shards() {
    let interval = Duration::from_millis(300);
    let world = Scenario::start_on(interval, TopologyKind::Cluster).await;
    let (first, second) = namespaces_on_two_shards(&world);
    let mut stores = Vec::new();
    let mut workers = Vec::new();
    for namespace in [&first, &second] {
        let config: StoreConfig = world.store_config(namespace);
        assert_eq!(config.mode, RedisMode::Cluster);
        let store = Store::connect(&config).await.expect("cluster store");
        let logins = world.logins(300, &Script::pending(2));
        store.enqueue("nightly", &logins).await.expect("enqueue");
        let mut setup = world.setup.clone();
        setup.namespace = namespace.clone();
        setup.lease = Duration::from_secs(2);
        workers.push(WorkerProcess::spawn(&setup));
        workers.push(WorkerProcess::spawn(&setup));
        stores.push((store, logins));
    }
    let mut primaries = Vec::new();
    for (store, _) in &stores {
        primaries.push(store.topology().await.expect("topology"));
    }
    match (&primaries[0], &primaries[1]) {
        (Topology::Cluster { primary: a, .. }, Topology::Cluster { primary: b, .. }) => {
            assert_ne!(a, b, "the namespaces sit on different masters")
        }
        other => panic!("not cluster topologies: {other:?}"),
    }

    // one worker of the first namespace dies mid-batch
    wait_for(
        "jobs of the first namespace polling",
        Duration::from_secs(60),
        async || {
            let counts = stores[0].0.counts(Some("nightly")).await.ok()?;
            (counts.polling > 0 || counts.succeeded > 0).then_some(())
        },
    )
    .await;
    workers[0].sigkill();
    world.sim.note_crash();

    for (store, logins) in &stores {
        let counts = wait_for(
            "both namespaces to finish",
            Duration::from_secs(120),
            async || {
                let counts = store.counts(Some("nightly")).await.ok()?;
                (counts.total > 0 && counts.unfinished() == 0).then_some(counts)
            },
        )
        .await;
        assert_eq!(counts.total, 300, "{counts:?}");
        assert_eq!(counts.succeeded, 300, "{counts:?}");
        for login in logins {
            let job = store
                .job_for_login(login, flinkq_shared::Product::DEFAULT)
                .await
                .expect("read")
                .expect("job");
            assert_eq!(job.state, flinkq_shared::JobState::Succeeded, "{login}");
        }
    }
    assert_eq!(world.sim.violations(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noscript_on_a_cluster_reloads_the_script_on_the_namespace_master_only() {
    let world = Scenario::start_on(Duration::from_millis(300), TopologyKind::Cluster).await;
    let Some(RedisTopology::Cluster(cluster)) = &world.topology else {
        unreachable!("a cluster scenario")
    };
    let home = cluster.master_of(cluster.slot_of(&Keys::new(&world.setup.namespace).counts()));
    let flush_everywhere = || {
        for port in cluster.ports() {
            assert_eq!(redis_cli(*port, &["SCRIPT", "FLUSH"]), "OK");
            assert_eq!(RedisCluster::cached_scripts(*port), 0);
        }
    };
    let scripts_per_node = || -> Vec<(u16, u64)> {
        cluster
            .ports()
            .iter()
            .map(|port| (*port, RedisCluster::cached_scripts(*port)))
            .collect()
    };

    // EVALSHA answered NOSCRIPT: the script is loaded where it runs
    flush_everywhere();
    world
        .store
        .queue_stats()
        .await
        .expect("stats after SCRIPT FLUSH");
    for (port, scripts) in scripts_per_node() {
        assert_eq!(
            scripts,
            u64::from(port == home),
            "node {port} (home {home})"
        );
    }

    // a pipeline of EVALSHAs loads its scripts first, on the same node
    flush_everywhere();
    let logins = world.logins(3, &Script::pending(0));
    world.enqueue("reload", &logins).await;
    assert_eq!(
        world
            .store
            .counts(Some("reload"))
            .await
            .expect("counts")
            .total,
        3
    );
    for (port, scripts) in scripts_per_node() {
        assert_eq!(
            scripts > 0,
            port == home,
            "node {port} (home {home}): {scripts}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_primary_sends_writes_to_the_promoted_one_without_readonly_errors() {
    let world = Scenario::start_on(Duration::from_millis(300), TopologyKind::Sentinel).await;
    let Some(RedisTopology::Sentinel(group)) = &world.topology else {
        unreachable!("a Sentinel scenario")
    };
    let (old, new) = (world.redis.port(), group.replica.port());
    let first = world.logins(1, &Script::pending(0));
    world.enqueue("before", &first).await;

    // a manual failover: the old primary lives on, as a replica that
    // answers writes with READONLY
    assert_eq!(
        redis_cli(group.sentinel_port(), &["SENTINEL", "FAILOVER", "mymaster"]),
        "OK"
    );
    wait_for(
        "the replica promoted, the primary demoted",
        Duration::from_secs(30),
        async || {
            let demoted = redis_cli(old, &["ROLE"]).starts_with("slave");
            (group.primary_port() == Some(new) && demoted).then_some(())
        },
    )
    .await;

    // the store still holds a connection to the old primary: its first
    // write is refused there (READONLY) or finds the connection closed by
    // the Sentinels; neither reaches the caller as READONLY, and the write
    // lands on the new primary
    let second = world.logins(1, &Script::pending(0));
    let mut answers = Vec::new();
    for _ in 0..20 {
        match world.store.enqueue("after", &second).await {
            Ok(_) => break,
            Err(error) => answers.push(error.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        answers.iter().all(|a| !a.contains("READONLY")),
        "READONLY reached the caller: {answers:?}"
    );
    assert!(answers.len() < 20, "the write never landed: {answers:?}");
    assert_eq!(
        world
            .store
            .counts(Some("after"))
            .await
            .expect("counts")
            .total,
        1
    );
    assert_eq!(
        world.store.topology().await.expect("topology"),
        Topology::Sentinel {
            master_name: "mymaster".into(),
            primary: format!("127.0.0.1:{new}"),
        }
    );
    println!("errors before the write landed on the new primary: {answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readonly_from_a_quietly_demoted_primary_is_retried_on_the_new_one() {
    let world = Scenario::start_on(Duration::from_millis(300), TopologyKind::Sentinel).await;
    let Some(RedisTopology::Sentinel(group)) = &world.topology else {
        unreachable!("a Sentinel scenario")
    };
    let (old, new) = (world.redis.port(), group.replica.port());
    world
        .enqueue("before", &world.logins(1, &Script::pending(0)))
        .await;

    // swap the roles by hand, without the Sentinels' CLIENT KILL: the
    // store's connection to the old primary stays open, and its next write
    // is answered READONLY there
    assert_eq!(redis_cli(new, &["REPLICAOF", "NO", "ONE"]), "OK");
    assert_eq!(
        redis_cli(old, &["REPLICAOF", "127.0.0.1", &new.to_string()]),
        "OK"
    );
    for sentinel in group.sentinel_ports() {
        assert_eq!(
            redis_cli(sentinel, &["SENTINEL", "REMOVE", "mymaster"]),
            "OK"
        );
        let monitor = [
            "SENTINEL",
            "MONITOR",
            "mymaster",
            "127.0.0.1",
            &new.to_string(),
            "2",
        ];
        assert_eq!(redis_cli(sentinel, &monitor), "OK");
    }
    assert!(redis_cli(old, &["SET", "probe", "1"]).starts_with("READONLY"));

    // one call, no error: READONLY means nothing was applied, so the
    // write runs again on the primary the Sentinels name now
    let after = world.logins(1, &Script::pending(0));
    world
        .store
        .enqueue("after", &after)
        .await
        .expect("the write lands on the new primary at the first call");
    assert_eq!(
        world
            .store
            .counts(Some("after"))
            .await
            .expect("counts")
            .total,
        1
    );
    assert_eq!(
        world.store.topology().await.expect("topology"),
        Topology::Sentinel {
            master_name: "mymaster".into(),
            primary: format!("127.0.0.1:{new}"),
        }
    );
}
