//! Chaos: 2,000 logins with random faults, two workers, one of them
//! SIGKILLed and restarted at random moments. Every job must reach the state
//! its script implies, counts must be exact, every result file must parse,
//! and the simulator must see no contract violation.

use flinkq_shared::Product;
use std::collections::HashMap;
use std::time::Duration;

use flinkq_shared::{JobState, LoginId};
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::{Fault, Script, ScriptedFault, SimConfig};
use flinkq_tests::worker_process::WorkerProcess;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LOGINS: usize = 2_000;
const KILLS: usize = 5;

/// A random script and the terminal state it implies.
fn random_script(rng: &mut StdRng) -> (Script, JobState) {
    let roll = rng.random_range(0..100);
    let pending = rng.random_range(0..=3);
    let mut script = Script {
        pending,
        ..Script::default()
    };
    // Permanent faults cover every call from their first one on, so a step
    // repeated after a crash meets the same answer.
    let from = |first: u32, fault: Fault| -> Vec<ScriptedFault> {
        (first..first + 12)
            .map(|call| ScriptedFault::poll(call, fault.clone()))
            .collect()
    };
    let expected = match roll {
        0..=4 => {
            script.invalid = true;
            JobState::Failed
        }
        5..=8 => {
            script.faults = from(rng.random_range(1..=pending + 1), Fault::answer(203, None));
            JobState::Failed
        }
        9..=10 => {
            script.faults = from(rng.random_range(1..=pending + 1), Fault::MalformedJson);
            JobState::Failed
        }
        _ => {
            // transient faults that a retry survives, and lost sessions
            let transients = [
                Fault::answer(503, None),
                Fault::answer(500, Some("AGGREGATION_ERROR")),
                Fault::answer(401, Some("RETRY_LATER")),
                Fault::Reset,
                Fault::RateLimited {
                    retry_after_secs: 1,
                },
                Fault::answer(202, Some("OPERATION_DISPATCHED")),
            ];
            for _ in 0..rng.random_range(0..=2) {
                let fault = transients[rng.random_range(0..transients.len())].clone();
                let call = rng.random_range(1..=pending + 2);
                if rng.random_bool(0.2) {
                    script.faults.push(ScriptedFault::authorize(1, fault));
                } else {
                    script.faults.push(ScriptedFault::poll(call, fault));
                }
            }
            if rng.random_bool(0.1) {
                script.expire_session_after_polls = Some(1);
            }
            JobState::Succeeded
        }
    };
    (script, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kill_worker_repeatedly() {
    let seed = std::env::var("FLINKQ_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("chaos seed {seed} (set FLINKQ_CHAOS_SEED to replay)");
    let mut rng = StdRng::seed_from_u64(seed);

    let interval = Duration::from_millis(300);
    let mut world = Scenario::start_with(
        interval,
        SimConfig {
            random_5xx_rate: 0.03,
            ..SimConfig::default()
        },
    )
    .await;
    // Short enough that killed steps come back within the test, long enough
    // that a live worker starved of CPU on a 2-core CI machine keeps its
    // leases (a lost lease repeats a call without any crash).
    world.setup.lease = Duration::from_secs(5);
    world.setup.concurrency = 32;
    world.setup.extra_env = vec![("RUST_LOG".into(), "warn".into())];

    let mut expected = HashMap::new();
    let mut scripts = Vec::new();
    for _ in 0..LOGINS {
        let login = LoginId::random();
        let (script, state) = random_script(&mut rng);
        scripts.push((login.to_string(), script));
        expected.insert(login, state);
    }
    world.sim.set_scripts(scripts);
    let logins: Vec<LoginId> = expected.keys().copied().collect();
    world.enqueue("chaos", &logins).await;

    let _steady = WorkerProcess::spawn(&world.setup);
    let mut victim = WorkerProcess::spawn(&world.setup);
    for kill in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..900))).await;
        victim.sigkill();
        world.sim.note_crash();
        println!(
            "kill {kill}: {:?}",
            world.store.counts(Some("chaos")).await.ok()
        );
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
        victim = WorkerProcess::spawn(&world.setup);
    }

    let counts = world.wait_finished("chaos", Duration::from_secs(240)).await;
    let want = |state| expected.values().filter(|s| **s == state).count() as u64;
    assert_eq!(counts.total, LOGINS as u64);
    assert_eq!(counts.succeeded, want(JobState::Succeeded), "{counts:?}");
    assert_eq!(counts.failed, want(JobState::Failed), "{counts:?}");
    assert_eq!(counts.timed_out + counts.cancelled, 0, "{counts:?}");

    for (login, state) in &expected {
        let job = world
            .store
            .job_for_login(login, Product::DEFAULT)
            .await
            .expect("read")
            .expect("job");
        assert_eq!(job.state, *state, "{login}: {job:?}");
        if *state == JobState::Succeeded {
            let path = world.setup.result_file(Product::DEFAULT, login);
            let payload: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).expect("result file"))
                    .expect("result parses");
            assert!(payload.to_string().contains(&login.to_string()));
        }
    }
    assert_eq!(
        world.sim.violations(),
        vec![],
        "contract violations (seed {seed})"
    );
    println!("simulator totals: {:?}", world.sim.totals());
}
