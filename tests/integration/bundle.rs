//! What the project ships, against the real API server: every object of `bundle/manifests` passes a
//! server-side dry run (the ClusterServiceVersion against OLM's own CSV CRD, from the pinned
//! `github.com/operator-framework/api` module), in a namespace other than `seccomp-sentinel`, and
//! nothing in it names an install namespace; every kustomize target of `config/`, rendered by the
//! real kubectl, passes one too (the monitoring objects against the Prometheus Operator's CRDs).
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support;

fn manifests() -> Vec<PathBuf> {
    let dir = sentinel_testenv::repository_root().join("bundle/manifests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make bundle`)", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// Copies `bundle/` (manifests and metadata) into `dir`, each file's text through `edit`, which
/// may change it or leave the file out (`None`).
pub fn copy_bundle(dir: &Path, mut edit: impl FnMut(&str, String) -> Option<String>) {
    let source = sentinel_testenv::repository_root().join("bundle");
    for sub in ["manifests", "metadata"] {
        let from = source.join(sub);
        std::fs::create_dir_all(dir.join(sub)).expect("bundle dir");
        for entry in std::fs::read_dir(&from)
            .unwrap_or_else(|e| panic!("{}: {e} (run `make bundle`)", from.display()))
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(entry.path()).expect("read");
            if let Some(text) = edit(&name, text) {
                std::fs::write(dir.join(sub).join(&name), text).expect("write");
            }
        }
    }
}

#[tokio::test]
async fn every_bundle_object_passes_the_api_servers_validation_in_any_namespace() {
    let ctx = support::context("bundle-dry-run").await;
    let csv_crd = sentinel_testenv::repository_root()
        .join("e2e/bin/olm-crds/operators.coreos.com_clusterserviceversions.yaml");
    assert!(
        csv_crd.is_file(),
        "{} is missing: run `make bundle-validate` (e2e/olm/build.sh copies OLM's CRDs from the \
         operator-framework/api module its OLM build uses)",
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
    // The agent's image is a related image and RELATED_IMAGE_AGENT (mirroring rewrites both).
    let related: Vec<&str> = csv["spec"]["relatedImages"]
        .as_array()
        .expect("relatedImages")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(related.contains(&"agent"), "{related:?}");
    let env =
        &csv["spec"]["install"]["spec"]["deployments"][0]["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .into_iter()
            .flatten()
            .any(|e| e["name"] == "RELATED_IMAGE_AGENT" && e["value"].is_string()),
        "{env}"
    );

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

#[tokio::test]
async fn every_kustomize_target_passes_the_api_servers_strict_validation() {
    let ctx = support::context("kustomize-dry-run").await;
    let crds = sentinel_testenv::repository_root().join("e2e/bin/crds");
    let monitoring = [
        crds.join("servicemonitors.crd.yaml"),
        crds.join("prometheusrules.crd.yaml"),
    ];
    for crd in &monitoring {
        assert!(
            crd.is_file(),
            "{} is missing: run `make testenv` (it copies the Prometheus Operator's CRDs from its module)",
            crd.display()
        );
    }
    let paths: Vec<&Path> = monitoring.iter().map(PathBuf::as_path).collect();
    sentinel_testenv::apply_and_wait_established(&ctx.cluster.kubectl, ctx.cluster.kubeconfig(), &paths)
        .expect("install the ServiceMonitor and PrometheusRule CRDs");
    let dir = tempfile::tempdir().expect("tempdir");
    for target in [
        "config/default",
        "config/agent",
        "config/openshift",
        "config/prometheus",
        "config/openshift/prometheus",
        "config/samples",
    ] {
        let path = sentinel_testenv::repository_root().join(target);
        let rendered = ctx
            .cluster
            .try_kubectl(&["kustomize", &path.display().to_string()])
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        assert!(rendered.contains("kind:"), "{target} renders nothing");
        // Into this test's namespace (a dry-run Namespace does not make the next objects' exist).
        let rendered = rendered
            .lines()
            .map(|l| match l.split_once("namespace: ") {
                Some((indent, ns))
                    if indent.trim().is_empty() && ns.starts_with("seccomp-") && !l.contains("openshift") =>
                {
                    format!("{indent}namespace: {}", ctx.ns)
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let file = dir.path().join(format!("{}.yaml", target.replace('/', "-")));
        std::fs::write(&file, &rendered).expect("write");
        // Server-side apply validates strictly: an unknown or misspelt field is an error.
        let result = ctx.cluster.try_kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--dry-run=server",
            "--field-manager=kustomize-check",
            "-f",
            &file.display().to_string(),
        ]);
        assert!(result.is_ok(), "{target}: {result:?}");
    }
    // The check can fail: a misspelt field in a ServiceMonitor is refused.
    let wrong = dir.path().join("wrong.yaml");
    std::fs::write(
        &wrong,
        format!(
            "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {{name: wrong, namespace: {}}}\nspec:\n  selector: {{}}\n  endpoints: [{{port: metrics, honourLabels: true}}]\n",
            ctx.ns
        ),
    )
    .expect("write");
    let refused = ctx.cluster.try_kubectl(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        &wrong.display().to_string(),
    ]);
    assert!(
        refused.is_err() && format!("{refused:?}").contains("honourLabels"),
        "{refused:?}"
    );
}

/// `operator-sdk bundle validate` (the binary `make bundle-validate` runs) passes `bundle/` and
/// fails a copy whose CSV owns a CRD the bundle does not carry.
#[test]
fn operator_sdk_validates_the_bundle_and_refuses_a_broken_copy() {
    let sdk = sentinel_testenv::Binaries::locate()
        .expect("binaries")
        .path("operator-sdk");
    assert!(
        sdk.is_file(),
        "{} is missing: run `make bundle-validate` (e2e/olm/build.sh builds it)",
        sdk.display()
    );
    let validate = |dir: &Path| {
        std::process::Command::new(&sdk)
            .args(["bundle", "validate", &dir.display().to_string()])
            .args([
                "--select-optional",
                "suite=operatorframework",
                "--optional-values=k8s-version=1.33",
            ])
            .output()
            .expect("operator-sdk runs")
    };
    let root = sentinel_testenv::repository_root().join("bundle");
    let shipped = validate(&root);
    assert!(
        shipped.status.success(),
        "{}",
        String::from_utf8_lossy(&shipped.stderr)
    );

    let broken = tempfile::tempdir().expect("tempdir");
    // The CRD the CSV owns, left out.
    copy_bundle(broken.path(), |name, text| {
        (!name.ends_with("_seccompstatuses.yaml")).then_some(text)
    });
    let refused = validate(broken.path());
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        !refused.status.success()
            && output.contains("Kind=SeccompStatus")
            && output.contains("not found in bundle"),
        "{output}"
    );
}
