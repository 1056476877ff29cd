//! The alerting rules of `config/prometheus/rules.yaml`, checked and unit-tested by the real
//! promtool (built by `make testenv` from `github.com/prometheus/prometheus`, `e2e/monitoring/`)
//! against `config/prometheus/rules.test.yaml`; every alert of the rules must have a test. The
//! real Prometheus server of the same module scrapes the operator as the shipped ServiceMonitors
//! say.
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

fn root() -> PathBuf {
    sentinel_testenv::repository_root().to_path_buf()
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn promtool(args: &[&str], dir: &Path) -> (bool, String) {
    let promtool = root().join("e2e/bin/promtool");
    assert!(
        promtool.exists(),
        "{} is missing: run `make testenv` (it builds promtool from e2e/monitoring)",
        promtool.display()
    );
    let output = Command::new(&promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn every_alert_passes_promtools_checks_and_unit_tests() {
    let rule = yaml(&root().join("config/prometheus/rules.yaml"));
    assert_eq!(rule["kind"], "PrometheusRule");
    let dir = tempfile::tempdir().expect("tempdir");
    // promtool reads plain rule files: the PrometheusRule's spec is one.
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_json::to_string(&rule["spec"]).expect("json"),
    )
    .expect("write the rules");
    std::fs::copy(
        root().join("config/prometheus/rules.test.yaml"),
        dir.path().join("rules.test.yaml"),
    )
    .expect("copy the tests");

    let (ok, text) = promtool(&["check", "rules", "rules.yaml"], dir.path());
    assert!(ok, "promtool check rules:\n{text}");
    let (ok, text) = promtool(&["test", "rules", "rules.test.yaml"], dir.path());
    assert!(ok, "promtool test rules:\n{text}");

    let alerts: BTreeSet<String> = rule["spec"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["alert"].as_str().map(String::from))
        .collect();
    let tested: BTreeSet<String> = yaml(&root().join("config/prometheus/rules.test.yaml"))["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["alert_rule_test"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["alertname"].as_str().map(String::from))
        .collect();
    assert!(alerts.len() >= 5, "{alerts:?}");
    let untested: Vec<&String> = alerts.difference(&tested).collect();
    assert!(
        untested.is_empty(),
        "alerts without a promtool test: {untested:?}"
    );

    // The tests can fail: the old no-leader rule (sum() alone) misses the case of no replica.
    let old = text_of_rules(&rule).replace(
        "(sum(seccomp_sentinel_is_leader) < 1) or absent(seccomp_sentinel_is_leader)",
        "sum(seccomp_sentinel_is_leader) < 1",
    );
    std::fs::write(dir.path().join("rules.yaml"), old).expect("write");
    let (ok, text) = promtool(&["test", "rules", "rules.test.yaml"], dir.path());
    assert!(!ok && text.contains("SeccompSentinelNoLeader"), "{text}");
}

fn text_of_rules(rule: &Value) -> String {
    serde_json::to_string(&rule["spec"]).expect("json")
}

/// Every query of the Grafana dashboard is valid PromQL (promtool parses it, with the dashboard's
/// variables filled in), every panel says what it shows and in which unit, and the dashboard can
/// be narrowed to one job and instance.
#[test]
fn the_dashboard_queries_parse_and_every_panel_is_described() {
    let path = root().join("config/prometheus/grafana-dashboard.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(variables, ["datasource", "job", "instance"]);
    assert!(
        dashboard["templating"]["list"]
            .as_array()
            .expect("variables")
            .iter()
            .all(|v| v["label"].is_string())
    );
    let mut rules = Vec::new();
    for (i, panel) in dashboard["panels"].as_array().expect("panels").iter().enumerate() {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(
            panel["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{title}: no description"
        );
        assert!(
            panel["fieldConfig"]["defaults"]["unit"].is_string(),
            "{title}: no unit"
        );
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("expr");
            assert!(expr.contains(r#"job=~"$job""#), "{title}: {expr}");
            let filled = expr
                .replace("$__rate_interval", "5m")
                .replace("$job", ".*")
                .replace("$instance", ".*");
            rules.push(serde_json::json!({ "record": format!("dashboard:panel_{i}"), "expr": filled }));
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = serde_json::json!({ "groups": [{ "name": "dashboard", "rules": rules }] });
    std::fs::write(dir.path().join("dashboard.yaml"), file.to_string()).expect("write");
    let (ok, text) = promtool(&["check", "rules", "dashboard.yaml"], dir.path());
    assert!(ok, "the dashboard's queries:\n{text}");
    // The check can fail.
    std::fs::write(
        dir.path().join("broken.yaml"),
        r#"{"groups":[{"name":"x","rules":[{"record":"x:y","expr":"sum by (namespace (up)"}]}]}"#,
    )
    .expect("write");
    assert!(!promtool(&["check", "rules", "broken.yaml"], dir.path()).0);
}

/// The scrape configuration the Prometheus Operator makes of a ServiceMonitor endpoint, for one
/// static target: every field the shipped endpoints use is carried over (a field this does not
/// know fails the test, so the ServiceMonitors cannot say more than is tested). `ca` is the file
/// of the CA a `tlsConfig.ca` names, `token` the file the token of `bearerTokenFile` is in.
fn scrape_config(job: &str, endpoint: &Value, target: &str, ca: &Path, token: &Path) -> Value {
    let mut config = serde_json::json!({
        "job_name": job,
        "scrape_interval": "1s",
        "static_configs": [{ "targets": [target] }],
    });
    for (field, value) in endpoint.as_object().expect("an endpoint") {
        match field.as_str() {
            // The Service's port: here the target.
            "port" | "interval" => {}
            "scheme" => config["scheme"] = value.clone(),
            "path" => config["metrics_path"] = value.clone(),
            "honorLabels" => config["honor_labels"] = value.clone(),
            "bearerTokenFile" => config["authorization"] = serde_json::json!({ "credentials_file": token }),
            "tlsConfig" => {
                let mut tls = serde_json::json!({});
                for (field, value) in value.as_object().expect("tlsConfig") {
                    match field.as_str() {
                        "insecureSkipVerify" => tls["insecure_skip_verify"] = value.clone(),
                        "serverName" => tls["server_name"] = value.clone(),
                        "ca" => {
                            assert!(value["configMap"]["key"].is_string(), "{value}");
                            tls["ca_file"] = serde_json::json!(ca);
                        }
                        other => panic!("tlsConfig.{other} is not carried into the test's scrape"),
                    }
                }
                config["tls_config"] = tls;
            }
            other => panic!("endpoint field {other} is not carried into the test's scrape"),
        }
    }
    config
}

/// The ServiceMonitor of a kustomize target, rendered.
fn service_monitor(ctx: &crate::support::TestContext, target: &str) -> Value {
    let rendered = ctx.kubectl(&["kustomize", &root().join(target).display().to_string()]);
    rendered
        .split("\n---\n")
        .map(|doc| serde_saphyr::from_str::<Value>(doc).expect("yaml"))
        .find(|doc| doc["kind"] == "ServiceMonitor")
        .unwrap_or_else(|| panic!("{target} has no ServiceMonitor"))
}

/// The operator's /metrics, scraped by the real Prometheus server as the shipped ServiceMonitors
/// have it scrape: over HTTPS with its service account's token, without checking the
/// self-signed certificate (`config/prometheus`), and checking the service CA's certificate for
/// the Service's name (`config/openshift/prometheus`). The same scrapes without a token, and
/// checking a certificate the CA did not sign, are refused: the checks are real.
#[tokio::test]
async fn prometheus_scrapes_the_operator_as_the_shipped_service_monitors_say() {
    use std::process::Stdio;
    let prometheus = root().join("e2e/bin/prometheus");
    assert!(
        prometheus.exists(),
        "{} is missing: run `make testenv` (it builds the Prometheus server from e2e/monitoring)",
        prometheus.display()
    );
    let ctx = crate::support::context("prometheus-scrape").await;
    let work = tempfile::tempdir().expect("tempdir");
    let token = crate::deploy::metrics_token(&ctx, "prometheus", true);
    let token_file = work.path().join("token");
    std::fs::write(&token_file, &token).expect("token");

    // Two operators: one with the service CA's certificate for the Service's name (as OpenShift
    // mounts it), one with none (self-signed).
    let vanilla = service_monitor(&ctx, "config/prometheus");
    let openshift = service_monitor(&ctx, "config/openshift/prometheus");
    let server_name = openshift["spec"]["endpoints"][0]["tlsConfig"]["serverName"]
        .as_str()
        .expect("serverName")
        .to_string();
    let issued = crate::support::https::issue("service CA", &server_name);
    let certs = work.path().join("metrics-tls");
    std::fs::create_dir(&certs).expect("dir");
    std::fs::write(certs.join("tls.crt"), &issued.cert).expect("write");
    std::fs::write(certs.join("tls.key"), &issued.key).expect("write");
    let ca_file = work.path().join("service-ca.crt");
    std::fs::write(&ca_file, &issued.ca).expect("write");
    let start = |name: &str, extra: &[String]| {
        let [health, metrics] = sentinel_testenv::free_ports::<2>().expect("ports");
        let log = work.path().join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_seccomp-sentinel"))
            .args(["run", "--namespaces", &ctx.ns])
            .arg(format!("--health-addr=127.0.0.1:{health}"))
            .arg(format!("--metrics-addr=127.0.0.1:{metrics}"))
            .arg(format!(
                "--policy-selector={}={}",
                crate::support::POLICY_LABEL,
                ctx.ns
            ))
            .args(extra)
            .env("KUBECONFIG", ctx.cluster.kubeconfig())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start the operator");
        (KillOnDrop(child), metrics)
    };
    let (_self_signed, self_signed_port) = start("self-signed", &[]);
    let (_service_ca, service_ca_port) =
        start("service-ca", &[format!("--metrics-cert-dir={}", certs.display())]);

    let endpoint = |monitor: &Value| monitor["spec"]["endpoints"][0].clone();
    let mut without_token = endpoint(&openshift);
    without_token
        .as_object_mut()
        .expect("endpoint")
        .remove("bearerTokenFile");
    let target = |port: u16| format!("127.0.0.1:{port}");
    // A CA that signed nothing the operators serve.
    let other_ca_file = work.path().join("other-ca.crt");
    std::fs::write(
        &other_ca_file,
        crate::support::https::issue("other CA", &server_name).ca,
    )
    .expect("write");
    let jobs = [
        ("vanilla", endpoint(&vanilla), self_signed_port, &ca_file, "up"),
        ("openshift", endpoint(&openshift), service_ca_port, &ca_file, "up"),
        // Not the service CA's: made for `localhost` and signed by itself.
        (
            "openshift-self-signed",
            endpoint(&openshift),
            self_signed_port,
            &ca_file,
            "down",
        ),
        // The right name, but another CA is trusted.
        (
            "openshift-other-ca",
            endpoint(&openshift),
            service_ca_port,
            &other_ca_file,
            "down",
        ),
        (
            "openshift-no-token",
            without_token,
            service_ca_port,
            &ca_file,
            "down",
        ),
    ];
    let scrape_configs: Vec<Value> = jobs
        .iter()
        .map(|(job, endpoint, port, ca, _)| scrape_config(job, endpoint, &target(*port), ca, &token_file))
        .collect();
    let config_file = work.path().join("prometheus.yml");
    std::fs::write(
        &config_file,
        serde_json::json!({ "scrape_configs": scrape_configs }).to_string(),
    )
    .expect("write the configuration");
    let [web] = sentinel_testenv::free_ports::<1>().expect("port");
    let prometheus_log = work.path().join("prometheus.log");
    let _server = KillOnDrop(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                work.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&prometheus_log).expect("log"))
            .spawn()
            .expect("start prometheus"),
    );

    // Every target scraped at least once, as Prometheus reports them.
    let targets = crate::support::wait_for_explained(
        "Prometheus to have scraped every target",
        std::time::Duration::from_secs(120),
        || async {
            let answer = http_get_json(web, "/api/v1/targets").await?;
            let active = answer["data"]["activeTargets"].as_array()?.clone();
            (active.len() == jobs.len() && active.iter().all(|t| t["health"] != "unknown")).then_some(active)
        },
        || std::fs::read_to_string(&prometheus_log).unwrap_or_default(),
    )
    .await;
    for (job, _, _, _, health) in &jobs {
        let found = targets
            .iter()
            .find(|t| t["labels"]["job"] == *job)
            .unwrap_or_else(|| panic!("no target of {job}: {targets:?}"));
        assert_eq!(found["health"], *health, "{job}: {found}");
    }
    let error_of = |job: &str| {
        targets
            .iter()
            .find(|t| t["labels"]["job"] == job)
            .and_then(|t| t["lastError"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    for (job, expected) in [
        (
            "openshift-self-signed",
            "not seccomp-sentinel-metrics.seccomp-sentinel.svc",
        ),
        ("openshift-other-ca", "certificate signed by unknown authority"),
    ] {
        assert!(error_of(job).contains(expected), "{job}: {}", error_of(job));
    }
    assert!(
        error_of("openshift-no-token").contains("401"),
        "{}",
        error_of("openshift-no-token")
    );
    // And the samples are there, with the metrics' own labels.
    let query = http_get_json(web, "/api/v1/query?query=seccomp_sentinel_build_info")
        .await
        .expect("query");
    let jobs_with_samples: BTreeSet<&str> = query["data"]["result"]
        .as_array()
        .expect("result")
        .iter()
        .filter_map(|r| r["metric"]["job"].as_str())
        .collect();
    assert_eq!(
        jobs_with_samples,
        BTreeSet::from(["openshift", "vanilla"]),
        "{query}"
    );
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One plain-HTTP GET of a loopback port, its body read as JSON.
async fn http_get_json(port: u16, path: &str) -> Option<Value> {
    let (_, response) = crate::support::plain_get("127.0.0.1", port, path, None).await?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}
