//! Every invalid policy of `tests/policies/invalid/` is rejected by the real API server with a
//! message a person understands; every sample in `config/samples/`, and every policy of
//! `tests/policies/valid/`, is accepted. The audit reads both directories the same way
//! (`operator/src/audit/mod.rs`).
use std::path::{Path, PathBuf};

use crate::support;

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn invalid_policies_are_rejected_at_admission() {
    let cluster = support::cluster();
    let dir = sentinel_testenv::repository_root().join("tests/policies/invalid");
    let files = yaml_files(&dir);
    assert!(files.len() >= 20, "the corpus holds {} policies", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks an '# expect: ' first line", file.display()));
        let path = file.display().to_string();
        match cluster.try_kubectl(&["create", "--dry-run=server", "-f", &path]) {
            Ok(out) => failures.push(format!("{path}: accepted ({})", out.trim())),
            Err(e) if e.to_string().contains(expected) => {}
            Err(e) => failures.push(format!("{path}: rejected without {expected:?}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The samples, and the valid policies at the edges of every rule (`tests/policies/valid/`, which
/// the audit accepts too).
#[test]
fn sample_and_edge_policies_are_accepted() {
    let cluster = support::cluster();
    let root = sentinel_testenv::repository_root();
    let mut policies: Vec<PathBuf> = yaml_files(&root.join("config/samples"))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("policy-"))
        })
        .collect();
    assert!(policies.len() >= 3);
    let edges = yaml_files(&root.join("tests/policies/valid"));
    assert!(edges.len() >= 3);
    policies.extend(edges);
    for file in policies {
        let path = file.display().to_string();
        let out = cluster.kubectl(&["create", "--dry-run=server", "-f", &path, "-o", "name"]);
        assert!(
            out.contains("seccomppolicy.seccomp.sentinel.dev/"),
            "{path}: {out}"
        );
    }
}

/// Label keys and values at the edges of what Kubernetes allows, in every selector a policy
/// has: the API server's admission of the policy (the CRD's schema and CEL rules), the
/// operator's own check of a stored policy, and Kubernetes' own validation of the same selector
/// in a built-in object (a PodDisruptionBudget, the reference) all agree on every one. So a
/// policy admitted is never one the operator then refuses for its selectors, and neither refuses
/// a selector Kubernetes takes.
#[tokio::test]
async fn admission_the_operator_and_kubernetes_agree_on_label_selectors() {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use kube::api::{Api, PostParams};
    use seccomp_sentinel::api::SeccompPolicy;

    let ctx = support::context("selector-agreement").await;
    let policies: Api<SeccompPolicy> = Api::all(ctx.client.clone());
    let budgets: Api<PodDisruptionBudget> = ctx.api();
    let long_name = "n".repeat(63);
    let too_long_name = "n".repeat(64);
    let long_prefix = format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61)
    );
    let too_long_prefix = format!("{long_prefix}x");
    let keys = [
        "app".to_string(),
        "app.kubernetes.io/name".into(),
        "A_b-c.D".into(),
        long_name.clone(),
        format!("{long_prefix}/{long_name}"),
        too_long_name.clone(),
        format!("{too_long_prefix}/a"),
        "Example.com/a".into(),
        "example..com/a".into(),
        "-app".into(),
        "app-".into(),
        "a/b/c".into(),
        "/a".into(),
        "a/".into(),
        "my app".into(),
        String::new(),
    ];
    let values = [
        String::new(),
        "web".into(),
        "Web_1.x-y".into(),
        long_name,
        too_long_name,
        "-web".into(),
        "web.".into(),
        "a/b".into(),
        "my web".into(),
    ];
    let mut selectors: Vec<serde_json::Value> = Vec::new();
    for key in &keys {
        selectors.push(serde_json::json!({ "matchLabels": { key: "v" } }));
        selectors.push(serde_json::json!({ "matchExpressions": [{ "key": key, "operator": "Exists" }] }));
    }
    for value in &values {
        selectors.push(serde_json::json!({ "matchLabels": { "k": value } }));
        selectors.push(serde_json::json!({ "matchExpressions": [{ "key": "k", "operator": "In", "values": ["v", value] }] }));
    }
    for (operator, values) in [
        ("In", serde_json::json!([])),
        ("NotIn", serde_json::Value::Null),
        ("Exists", serde_json::json!(["v"])),
        ("DoesNotExist", serde_json::json!([])),
        ("NotIn", serde_json::json!(["a", "b"])),
    ] {
        let mut expression = serde_json::json!({ "key": "k", "operator": operator });
        if !values.is_null() {
            expression["values"] = values;
        }
        selectors.push(serde_json::json!({ "matchExpressions": [expression] }));
    }
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let mut disagreements = Vec::new();
    let (mut taken, mut refused) = (0, 0);
    for selector in selectors {
        let budget: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "selector-agreement" },
            "spec": { "maxUnavailable": 1, "selector": selector } }))
        .expect("a PodDisruptionBudget");
        let kubernetes = match budgets.create(&dry_run, &budget).await {
            Ok(_) => true,
            Err(kube::Error::Api(e)) if e.code == 422 => false,
            Err(e) => panic!("creating a PodDisruptionBudget (dry run): {e}"),
        };
        if kubernetes {
            taken += 1;
        } else {
            refused += 1;
        }
        for spec in [
            serde_json::json!({ "podSelector": selector }),
            serde_json::json!({ "namespaceSelector": selector }),
            serde_json::json!({ "exemptions": [{ "reason": "r", "podSelector": selector }] }),
        ] {
            let policy: SeccompPolicy = serde_json::from_value(serde_json::json!({
                "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompPolicy",
                "metadata": { "name": "selector-agreement" }, "spec": spec }))
            .expect("a SeccompPolicy");
            let admitted = match policies.create(&dry_run, &policy).await {
                Ok(_) => true,
                Err(kube::Error::Api(e)) if e.code == 422 => false,
                Err(e) => panic!("creating a SeccompPolicy (dry run): {e}"),
            };
            let valid = seccomp_sentinel::policy::compile_policy(&policy).is_ok();
            if admitted != kubernetes || valid != kubernetes {
                disagreements.push(format!(
                    "{spec}: Kubernetes {kubernetes}, admission {admitted}, operator {valid}"
                ));
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    // Both outcomes were exercised.
    assert!(taken >= 10 && refused >= 20, "taken {taken}, refused {refused}");
}
