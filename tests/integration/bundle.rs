//! The OLM bundle against the real API server: every object of `bundle/manifests` passes a
//! server-side dry run (the ClusterServiceVersion against OLM's own CSV CRD, from the pinned
//! `github.com/operator-framework/api` module), in a namespace other than `seccomp-sentinel`, and
//! nothing in it names an install namespace.
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support;

fn manifests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bundle/manifests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make bundle`)", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn every_bundle_object_passes_the_api_servers_validation_in_any_namespace() {
    let ctx = support::context("bundle-dry-run").await;
    let csv_crd = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/bin/crds/clusterserviceversions.crd.yaml");
    assert!(
        csv_crd.is_file(),
        "{} is missing: run `make testenv` (it copies OLM's CSV CRD from the operator-framework/api module)",
        csv_crd.display()
    );
    sentinel_testenv::apply_and_wait_established(&ctx.cluster.kubectl, ctx.cluster.kubeconfig(), &[&csv_crd])
        .expect("install OLM's ClusterServiceVersion CRD");

    let files = manifests();
    assert!(files.len() >= 3, "{files:?}");
    for file in &files {
        let path = file.display().to_string();
        let result = ctx.cluster.try_kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--dry-run=server",
            "--field-manager=bundle-check",
            "-n",
            &ctx.ns,
            "-f",
            &path,
        ]);
        assert!(result.is_ok(), "{path}: {result:?}");
        let text = std::fs::read_to_string(file).expect("read");
        let object: Value = serde_saphyr::from_str(&text).expect("yaml");
        // OLM creates bundle objects as written: a namespace in one would pin the install there.
        assert!(
            !text
                .lines()
                .any(|l| l.trim_start().trim_start_matches("- ") == "namespace: seccomp-sentinel")
                && object.pointer("/metadata/namespace").is_none(),
            "{path} names a namespace"
        );
    }

    // The agent's permissions are OLM permissions, so OLM binds them in the install namespace.
    let csv_file = files
        .iter()
        .find(|f| f.to_string_lossy().ends_with(".clusterserviceversion.yaml"))
        .expect("the CSV");
    let csv: Value = serde_saphyr::from_str(&std::fs::read_to_string(csv_file).expect("read")).expect("yaml");
    let accounts: Vec<&str> = csv["spec"]["install"]["spec"]["clusterPermissions"]
        .as_array()
        .expect("clusterPermissions")
        .iter()
        .filter_map(|p| p["serviceAccountName"].as_str())
        .collect();
    assert!(accounts.contains(&"seccomp-sentinel-agent"), "{accounts:?}");

    // The check can fail: a CSV with an owned CRD resource without its name (the bundle's old
    // defect) is refused by OLM's schema.
    let mut broken = csv.clone();
    broken["spec"]["customresourcedefinitions"]["owned"][0]["resources"] =
        serde_json::json!([{ "kind": "Pod", "version": "v1" }]);
    let dir = tempfile::tempdir().expect("tempdir");
    let broken_file = dir.path().join("broken.json");
    std::fs::write(&broken_file, broken.to_string()).expect("write");
    let refused = ctx.cluster.try_kubectl(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        "-n",
        &ctx.ns,
        "-f",
        &broken_file.display().to_string(),
    ]);
    let message = format!("{refused:?}");
    assert!(
        refused.is_err() && message.contains("Required value"),
        "{message}"
    );
}
