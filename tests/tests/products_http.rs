//! Every Flinks product over real HTTP: a real worker against the
//! simulator, each job's calls built from the product table (hosts, paths,
//! methods, bodies), its payload checked for the product's key and stored
//! in `<results dir>/<product>/<loginId>.json`, and the provider's contract
//! kept (no GET …Async before the 202, polls spaced by the interval, no call
//! after the 200, attributes only after GetAccountsDetail's 200).

use std::collections::HashMap;
use std::time::Duration;

use flinkq_shared::{JobState, LoginId, Product};
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::{self, Script};
use flinkq_tests::worker_process::WorkerProcess;

const PER_PRODUCT: usize = 20;

/// The simulator's name for a product of the table.
fn sim_product(product: Product) -> sim::Product {
    sim::Product::ALL
        .into_iter()
        .find(|p| p.as_str() == product.as_str())
        .unwrap_or_else(|| panic!("the simulator does not serve {product}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_product_is_fetched_over_its_own_calls_and_stored_under_its_name() {
    let interval = Duration::from_secs(1);
    let world = Scenario::start(interval).await;
    let mut product_of: HashMap<LoginId, Product> = HashMap::new();
    for product in Product::all() {
        // two 202s before the 200: the poll form of each stage is exercised
        let logins = world.logins(PER_PRODUCT, &Script::pending(2));
        world.enqueue_product("products", product, &logins).await;
        for login in logins {
            product_of.insert(login, product);
        }
    }

    let _worker = WorkerProcess::spawn(&world.setup);
    let counts = world
        .wait_finished("products", Duration::from_secs(120))
        .await;
    assert_eq!(
        counts.succeeded as usize,
        product_of.len(),
        "every job succeeds: {counts:?}"
    );

    for (login, product) in &product_of {
        let job = world.job_of_product(login, *product).await;
        assert_eq!(job.state, JobState::Succeeded, "{product} {login}");
        assert_eq!(job.product, *product);

        let file = world.setup.result_file(*product, login);
        let payload: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())),
        )
        .expect("the stored payload is JSON");
        let last = product.stages().last().expect("a stage");
        let (key, _) = last.payload;
        assert!(
            payload.get(key).is_some(),
            "{product}: {} has no `{key}`",
            file.display()
        );
        for other in Product::all().filter(|p| p != product) {
            assert!(
                !world.setup.result_file(other, login).exists(),
                "{product}'s payload also stored as {other}"
            );
        }

        let stats = world.sim.login_stats(&login.to_string());
        assert_eq!(stats.authorize_calls, 1, "{product} {login}: one session");
        let seen = stats.product(sim_product(*product));
        assert_eq!(seen.calls, 3, "{product} {login}: two 202s, then the 200");
        assert!(seen.succeeded_at.is_some(), "{product} {login}");
        assert!(
            seen.min_poll_spacing
                .is_some_and(|gap| gap >= interval - sim::SPACING_TOLERANCE),
            "{product} {login}: calls {:?} apart",
            seen.min_poll_spacing
        );
        if product.as_str() == "attributes" {
            let accounts = stats.product(sim::Product::AccountsDetail);
            let accounts_done = accounts
                .succeeded_at
                .expect("GetAccountsDetail answered 200 first");
            let attributes_first = seen.first_call_at.expect("GetAllAttributes called");
            assert!(
                accounts_done <= attributes_first,
                "{login}: GetAllAttributes before GetAccountsDetail's 200"
            );
            assert_eq!(accounts.calls, 3, "{login}: POST, then GET …Async twice");
        }
    }
    assert_eq!(world.sim.violations(), Vec::new(), "no contract violation");
}
