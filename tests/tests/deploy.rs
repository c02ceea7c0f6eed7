//! `deploy/` is checked against the real tools and a live worker: promtool
//! accepts the config and rules, Prometheus scrapes a worker and answers the
//! dashboard's queries, every metric the dashboard and the alerts use exists,
//! and the compose file and manifests are well-formed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use flinkq_tests::prom_text::families;
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::{WorkerProcess, free_port, wait_for, workspace_binary};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("read deploy/{path}: {e}"))
}

/// Every `flinkq_…` metric family named in `text` (histogram suffixes stripped).
fn metric_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("flinkq_"))
        .map(|word| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| word.strip_suffix(suffix))
                .unwrap_or(word)
                .to_owned()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every PromQL expression of the dashboard.
fn dashboard_queries() -> Vec<String> {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("grafana/dashboards/flinkq.json")).expect("dashboard JSON");
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|target| target["expr"].as_str().map(str::to_owned))
        .collect()
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool").args(args).output().expect(
        "promtool not found: install Prometheus (`apt-get install prometheus`; scripts/test does)",
    );
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_config_and_the_alert_rules() {
    promtool(&[
        "check",
        "config",
        deploy("prometheus/prometheus.yml").to_str().expect("path"),
    ]);
    promtool(&[
        "check",
        "rules",
        deploy("prometheus/alerts.yml").to_str().expect("path"),
    ]);
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_live_worker_and_answers_every_dashboard_query() {
    let world = Scenario::start(Duration::from_millis(200)).await;
    let worker = WorkerProcess::spawn(&world.setup);

    // Prometheus, scraping the worker every second, with the shipped rules.
    let dir = world.work.path().join("prometheus");
    std::fs::create_dir_all(&dir).expect("prometheus dir");
    std::fs::copy(deploy("prometheus/alerts.yml"), dir.join("alerts.yml")).expect("copy rules");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - alerts.yml\nscrape_configs:\n  - job_name: flinkq\n    static_configs:\n      - targets: [\"127.0.0.1:{}\"]\n",
        worker.metrics_port
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("config");
    let port = free_port();
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).expect("log"))
            .spawn()
            .expect("prometheus not found: install it (`apt-get install prometheus`; scripts/test does)"),
    );

    let logins = world.logins(30, &Script::pending(1));
    world.enqueue("scraped", &logins).await;
    world
        .wait_finished("scraped", Duration::from_secs(30))
        .await;

    let http = reqwest::Client::new();
    let query = async |expr: &str| -> Option<serde_json::Value> {
        let response = http
            .get(format!("http://127.0.0.1:{port}/api/v1/query"))
            .query(&[("query", expr)])
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = response.json().await.ok()?;
        (body["status"] == "success").then_some(body["data"]["result"].clone())
    };
    // Prometheus has scraped the finished batch (gauges refresh every 3 s).
    wait_for(
        "Prometheus to see the finished batch",
        Duration::from_secs(30),
        async || {
            let result = query("max(flinkq_jobs{state=\"succeeded\"})").await?;
            (result[0]["value"][1] == "30").then_some(())
        },
    )
    .await;
    let finished = query("sum(flinkq_jobs_finished_total{state=\"succeeded\"})")
        .await
        .expect("query");
    assert_eq!(finished[0]["value"][1], "30");
    for expr in dashboard_queries() {
        let result = query(&expr)
            .await
            .unwrap_or_else(|| panic!("Prometheus rejected the dashboard query {expr}"));
        assert!(result.is_array(), "{expr}: {result}");
    }
    // the rules loaded and were evaluated
    let rules: serde_json::Value = http
        .get(format!("http://127.0.0.1:{port}/api/v1/rules"))
        .send()
        .await
        .expect("rules")
        .json()
        .await
        .expect("rules json");
    let loaded = rules["data"]["groups"][0]["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let file: yaml_serde::Value =
        yaml_serde::from_str(&read("prometheus/alerts.yml")).expect("alerts YAML");
    let written = file["groups"][0]["rules"].as_sequence().map_or(0, Vec::len);
    assert!(written >= 7, "the alert rules: {file:?}");
    assert_eq!(loaded.len(), written, "every rule loaded: {rules}");
    for rule in &loaded {
        assert_eq!(rule["health"], "ok", "{rule}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_use_exists_live() {
    let world = Scenario::start(Duration::from_millis(200)).await;
    let worker = WorkerProcess::spawn(&world.setup);
    let text = wait_for("/metrics", Duration::from_secs(10), async || {
        reqwest::get(format!("http://127.0.0.1:{}/metrics", worker.metrics_port))
            .await
            .ok()?
            .text()
            .await
            .ok()
    })
    .await;
    let live = families(&text);
    let dashboard = metric_names(&dashboard_queries().join("\n"));
    let alerts = metric_names(&read("prometheus/alerts.yml"));
    assert!(
        dashboard.len() >= 8 && alerts.len() >= 4,
        "{dashboard:?} {alerts:?}"
    );
    for name in dashboard.iter().chain(&alerts) {
        assert!(
            live.contains(name),
            "{name} is used in deploy/ but not exported; live: {live:?}"
        );
    }
}

#[test]
fn compose_file_and_kubernetes_manifests_are_well_formed() {
    let mut compose: yaml_serde::Value =
        yaml_serde::from_str(&read("docker-compose.yml")).expect("compose YAML");
    compose.apply_merge().expect("the x-worker anchor merges");
    let services = compose["services"].as_mapping().expect("services");
    for name in ["redis", "worker-1", "worker-2", "prometheus", "grafana"] {
        assert!(services.contains_key(name), "compose service {name}");
    }
    let redis_command = format!("{:?}", compose["services"]["redis"]["command"]);
    assert!(
        redis_command.contains("appendonly"),
        "Redis runs with AOF on"
    );
    for worker in ["worker-1", "worker-2"] {
        let env = &compose["services"][worker]["environment"];
        assert!(
            env["FLINKQ_REDIS_URL"]
                .as_str()
                .is_some_and(|u| u.starts_with("redis://redis")),
            "{worker}"
        );
        assert_eq!(env["FLINKQ_METRICS_ADDR"], "0.0.0.0:9187");
    }
    // every file the compose file mounts exists in the repository
    for service in services.values() {
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let spec = volume.as_str().unwrap_or_default();
            if let Some(source) = spec.split(':').next().filter(|s| s.starts_with("./")) {
                assert!(
                    deploy(source).exists(),
                    "compose mounts {source}, which does not exist"
                );
            }
        }
    }

    let mut kinds = Vec::new();
    for file in [
        "worker-deployment.yaml",
        "worker-pdb.yaml",
        "nightly-refresh-cronjob.yaml",
        "scheduler-deployment.yaml",
        "secret.example.yaml",
        "results-pvc.yaml",
    ] {
        let doc: yaml_serde::Value =
            yaml_serde::from_str(&read(&format!("k8s/{file}"))).expect("manifest YAML");
        assert!(
            doc["apiVersion"].is_string() && doc["metadata"]["name"].is_string(),
            "{file}"
        );
        kinds.push(doc["kind"].as_str().unwrap_or_default().to_owned());
        if doc["metadata"]["name"] == "flinkq-scheduler" {
            scheduler_is_accepted_by_the_binary(&doc);
        } else if doc["kind"] == "Deployment" {
            let pod = &doc["spec"]["template"];
            assert_eq!(
                pod["metadata"]["annotations"]["prometheus.io/scrape"],
                "true"
            );
            let container = &pod["spec"]["containers"][0];
            assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
            assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
            assert!(container["resources"]["limits"]["memory"].is_string());
            let grace = pod["spec"]["terminationGracePeriodSeconds"]
                .as_u64()
                .expect("grace");
            assert!(
                grace > 10 + 40,
                "longer than one step (10 s HTTP timeout) plus FLINKQ_SHUTDOWN_GRACE (40 s)"
            );
        }
    }
    for kind in ["Deployment", "PodDisruptionBudget", "CronJob"] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "a {kind} ships in deploy/k8s"
        );
    }
}

/// The scheduler Deployment's command and settings pass the real binary's
/// checks: pointed at a closed port it stops on the unreachable Redis (69),
/// not on its cron or time zone (64).
fn scheduler_is_accepted_by_the_binary(doc: &yaml_serde::Value) {
    let container = &doc["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(yaml_serde::Value::as_str)
        .collect();
    assert_eq!(args, ["schedule"]);
    let mut command = Command::new(workspace_binary("flinkq"));
    for var in container["env"].as_sequence().expect("env") {
        if let (Some(name), Some(value)) = (var["name"].as_str(), var["value"].as_str()) {
            command.env(name, value);
        }
    }
    let out = command
        .env(
            "FLINKQ_REDIS_URL",
            format!("redis://127.0.0.1:{}", free_port()),
        )
        .args(&args)
        .output()
        .expect("flinkq schedule");
    assert_eq!(
        out.status.code(),
        Some(69),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
