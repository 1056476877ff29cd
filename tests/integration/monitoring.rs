//! The alerting rules of `config/prometheus/rules.yaml`, checked and unit-tested by the real
//! promtool (built by `make testenv` from `github.com/prometheus/prometheus`, `e2e/monitoring/`)
//! against `config/prometheus/rules.test.yaml`; every alert of the rules must have a test.
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
