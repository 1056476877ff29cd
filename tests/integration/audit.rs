//! `seccomp-sentinel audit`: golden reports for every input kind and output format, exit codes,
//! JSON validated against the committed CRD schema, and live mode on the test cluster.
use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use serde_json::{Value, json};

use crate::support;

const NOW: &str = "2026-11-01T12:00:00Z";

fn inputs() -> PathBuf {
    sentinel_testenv::repository_root().join("tests/audit/inputs")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn audit(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seccomp-sentinel"))
        .arg("audit")
        .arg(format!("--now={NOW}"))
        .args(args)
        .current_dir(inputs())
        .env_remove("KUBECONFIG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run seccomp-sentinel audit");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    let output = child.wait_with_output().expect("audit output");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Compares with `tests/audit/golden/NAME`; `SENTINEL_UPDATE_GOLDEN=1` rewrites it instead.
fn golden(name: &str, actual: &str) {
    let path = sentinel_testenv::repository_root()
        .join("tests/audit/golden")
        .join(name);
    if std::env::var_os("SENTINEL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs (SENTINEL_UPDATE_GOLDEN=1 rewrites it):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

const SCCS: &str = "--scc-file=../../../e2e/openshift/sccs.yaml";

#[test]
fn workloads_in_every_format() {
    for (format, file) in [
        ("table", "workloads.table"),
        ("wide", "workloads.wide"),
        ("json", "workloads.json"),
        ("yaml", "workloads.yaml"),
    ] {
        // Without SCCs: no admission simulation (see openshift_admission_is_simulated_for_manifests).
        let run = audit(
            &["-f", "workloads.yaml", "--policy", "policy.yaml", "-o", format],
            None,
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("workloads.yaml, document 10: skipped v1 ConfigMap"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(
                "8 objects: 3 confined, 3 unconfined, 2 mixed, 0 not applicable; 3 violating a policy"
            ),
            "{}",
            run.stderr
        );
        golden(file, &run.stdout);
    }
}

#[test]
fn lists_pod_lists_directories_and_stdin() {
    let pods = audit(
        &["-f", "pods.json", "--kubelet-seccomp-default=true", "-o", "wide"],
        None,
    );
    assert_eq!(pods.code, 0, "{}", pods.stderr);
    golden("pods.wide", &pods.stdout);

    let podlist = audit(&["-f", "podlist.yaml", "-o", "yaml"], None);
    assert_eq!(podlist.code, 0, "{}", podlist.stderr);
    assert!(podlist.stdout.contains("empty localhostProfile"));
    golden("podlist.yaml", &podlist.stdout);

    let tree = audit(&["-f", "tree"], None);
    assert_eq!(tree.code, 0, "{}", tree.stderr);
    golden("tree.table", &tree.stdout);

    let text = std::fs::read_to_string(inputs().join("tree/top.yaml")).expect("input");
    let stdin = audit(&["-f", "-", "-o", "table"], Some(&text));
    assert_eq!(stdin.code, 0, "{}", stdin.stderr);
    assert!(
        stdin.stdout.contains("tree        top    Pod    Unconfined"),
        "{}",
        stdin.stdout
    );
}

#[test]
fn kubelet_version_decides_about_legacy_annotations() {
    let old = audit(
        &[
            "-f",
            "workloads.yaml",
            "--kubernetes-version",
            "1.24",
            "-o",
            "wide",
        ],
        None,
    );
    let row = old
        .stdout
        .lines()
        .find(|l| l.contains("legacy"))
        .expect("legacy row");
    assert!(
        row.contains("PodAnnotation") && row.contains("RuntimeDefault"),
        "{row}"
    );
    let new = audit(
        &[
            "-f",
            "workloads.yaml",
            "--kubernetes-version",
            "1.33",
            "-o",
            "wide",
        ],
        None,
    );
    let row = new
        .stdout
        .lines()
        .find(|l| l.contains("legacy"))
        .expect("legacy row");
    assert!(row.contains("Unconfined"), "{row}");
}

#[test]
fn exit_codes() {
    assert_eq!(audit(&["-f", "tree", "--fail-on", "unconfined"], None).code, 1);
    assert_eq!(
        audit(&["-f", "tree/sub", "--fail-on", "unconfined"], None).code,
        0
    );
    assert_eq!(
        audit(
            &["-f", "tree", "--policy", "policy.yaml", "--fail-on", "violation"],
            None
        )
        .code,
        0,
        "tree is not production"
    );
    assert_eq!(
        audit(
            &[
                "-f",
                "workloads.yaml",
                "--policy",
                "policy.yaml",
                "--fail-on",
                "violation"
            ],
            None
        )
        .code,
        1
    );
    assert_eq!(
        audit(&["-f", "tree", "--kubernetes-version", "one"], None).code,
        2
    );
    let missing = audit(&["-f", "nowhere.yaml"], None);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("nowhere.yaml: no such file or directory"),
        "{}",
        missing.stderr
    );

    // A broken document is named; the others are still reported; the exit code says so.
    let broken = audit(&["-f", "broken.yaml", "--fail-on", "unconfined"], None);
    assert_eq!(broken.code, 2);
    assert!(
        broken.stderr.contains("broken.yaml, document 2:"),
        "{}",
        broken.stderr
    );
    assert!(
        broken.stdout.contains("before") && broken.stdout.contains("after"),
        "{}",
        broken.stdout
    );

    // A cluster that cannot be found: one line that names the file, its path quoted by no one
    // (kube's own text said `failed to read kubeconfig from '"/nowhere/config"'`, and `'""'`
    // when the path came from KUBECONFIG).
    let nowhere = audit(&["-A", "--kubeconfig", "/nowhere/config"], None);
    assert_eq!(nowhere.code, 2, "{}", nowhere.stderr);
    assert!(
        nowhere
            .stderr
            .contains("error: cluster: reading /nowhere/config: No such file or directory"),
        "{}",
        nowhere.stderr
    );
    let inferred = Command::new(env!("CARGO_BIN_EXE_seccomp-sentinel"))
        .args(["audit", "-A"])
        .env("KUBECONFIG", "/nowhere/config")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("run seccomp-sentinel audit");
    let stderr = String::from_utf8_lossy(&inferred.stderr);
    assert_eq!(inferred.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no cluster found (--kubeconfig, KUBECONFIG, ~/.kube/config, or in a pod): reading /nowhere/config: No such file or directory"),
        "{stderr}"
    );
    assert!(!stderr.contains("'\""), "{stderr}");
}

/// The JSON items are SeccompStatus objects the committed CRD schema accepts.
#[test]
fn json_items_match_the_crd_schema() {
    let crd_text = std::fs::read_to_string(
        sentinel_testenv::repository_root().join("crds/seccompstatuses.seccomp.sentinel.dev.yaml"),
    )
    .expect("crd");
    let crd: Value = serde_saphyr::from_str(&crd_text).expect("crd yaml");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let validator = jsonschema::validator_for(schema).expect("schema compiles");
    let mut checked = 0;
    for args in [
        vec![
            "-f",
            "workloads.yaml",
            SCCS,
            "--policy",
            "policy.yaml",
            "-o",
            "json",
        ],
        vec!["-f", "pods.json", "-o", "json"],
        vec!["-f", "podlist.yaml", "-o", "json"],
    ] {
        let run = audit(&args, None);
        let list: Value = serde_json::from_str(&run.stdout).expect("json output");
        assert_eq!(
            (list["apiVersion"].as_str(), list["kind"].as_str()),
            (Some("v1"), Some("List"))
        );
        for item in list["items"].as_array().expect("items") {
            assert_eq!(item["kind"], "SeccompStatus");
            let errors: Vec<String> = validator
                .iter_errors(item)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", item["metadata"]["name"]);
            checked += 1;
        }
    }
    assert_eq!(checked, 8 + 2 + 1);
    // Something the schema must refuse, so the check above can fail.
    let wrong = json!({ "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompStatus",
        "spec": {}, "status": { "profile": "Sandboxed" } });
    assert!(!validator.is_valid(&wrong));
}

/// Manifests judged against the live cluster: its SCCs (the default set, installed by the test
/// environment), its namespace, and the SCCs a service account may use, asked of its RBAC.
#[tokio::test]
async fn manifests_are_admitted_with_the_clusters_sccs_and_grants() {
    use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
    let ctx = support::context("audit-grants").await;
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": { "name": format!("{}-use-anyuid", ctx.ns) },
        "rules": [{ "apiGroups": ["security.openshift.io"], "resources": ["securitycontextconstraints"],
                    "resourceNames": ["anyuid"], "verbs": ["use"] }]
    }))
    .expect("role");
    kube::Api::<ClusterRole>::all(ctx.client.clone())
        .create(&PostParams::default(), &role)
        .await
        .expect("create the cluster role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "builder-anyuid" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("{}-use-anyuid", ctx.ns) },
        "subjects": [{ "kind": "ServiceAccount", "name": "builder", "namespace": ctx.ns }]
    }))
    .expect("binding");
    ctx.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .expect("create the binding");
    let manifests = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: as-builder, namespace: {ns}}}\nspec:\n  serviceAccountName: builder\n  securityContext: {{runAsUser: 0}}\n  containers: [{{name: app, image: i}}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: as-default, namespace: {ns}}}\nspec:\n  securityContext: {{runAsUser: 0}}\n  containers: [{{name: app, image: i}}]\n",
        ns = ctx.ns
    );
    let kubeconfig = ctx.cluster.kubeconfig().display().to_string();
    let run = audit(
        &["-f", "-", "--kubeconfig", &kubeconfig, "-o", "json"],
        Some(&manifests),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = rows_by_name(&run);
    // The binding lets builder use anyuid, which admits root (and writes no profile).
    assert_eq!(
        (rows["as-builder"].0.as_str(), rows["as-builder"].2.as_str()),
        ("Unconfined", "anyuid"),
        "{rows:?}"
    );
    assert_eq!(rows["as-default"].0, "Rejected", "{rows:?}");
    let _ = kube::Api::<ClusterRole>::all(ctx.client.clone())
        .delete(
            &role.metadata.name.clone().unwrap_or_default(),
            &Default::default(),
        )
        .await;
}

#[tokio::test]
async fn live_mode_audits_the_cluster() {
    let ctx = support::context("audit-live").await;
    for (name, profile) in [("open", None), ("tight", Some("RuntimeDefault"))] {
        let mut spec = json!({ "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] });
        if let Some(p) = profile {
            spec["securityContext"] = json!({ "seccompProfile": { "type": p } });
        }
        let pod: Pod = serde_json::from_value(
            json!({ "metadata": { "name": name, "labels": { "team": "a" } }, "spec": spec }),
        )
        .expect("pod");
        ctx.api::<Pod>()
            .create(&PostParams::default(), &pod)
            .await
            .expect("create pod");
    }
    let kubeconfig = ctx.cluster.kubeconfig().display().to_string();
    let run = audit(
        &[
            "--kubeconfig",
            &kubeconfig,
            "-n",
            &ctx.ns,
            "-l",
            "team=a",
            "--policy",
            "policy.yaml",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let list: Value = serde_json::from_str(&run.stdout).expect("json");
    let mut rows: Vec<(String, String, bool)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                i["status"]["profile"].as_str().unwrap_or_default().to_string(),
                i["metadata"]["ownerReferences"][0]["uid"].is_string(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("open".into(), "Unconfined".into(), true),
            ("tight".into(), "RuntimeDefault".into(), true)
        ]
    );

    let failing = audit(
        &[
            "--kubeconfig",
            &kubeconfig,
            "-n",
            &ctx.ns,
            "--fail-on",
            "unconfined",
        ],
        None,
    );
    assert_eq!(failing.code, 1, "{}", failing.stderr);
    assert!(failing.stdout.contains("open"), "{}", failing.stdout);
    let unreachable = audit(&["--kubeconfig", "/nonexistent/kubeconfig"], None);
    assert_eq!(unreachable.code, 2);

    // A pod that names its own SCC, on a cluster that is not OpenShift (no ClusterVersion API),
    // buys no SCC exemption by default, as in the controller; trusted on request, it does.
    create_pod(
        &ctx,
        json!({ "name": "claims-privileged", "labels": { "team": "b" },
            "annotations": { "openshift.io/scc": "privileged" } }),
    )
    .await;
    let policy_dir = tempfile::tempdir().expect("tempdir");
    let exempting = policy_dir.path().join("exempt-privileged.yaml");
    std::fs::write(
        &exempting,
        "apiVersion: seccomp.sentinel.dev/v1alpha1\nkind: SeccompPolicy\nmetadata: {name: confined}\n\
         spec:\n  allowedProfiles: [RuntimeDefault]\n  exemptions:\n  - {reason: platform, sccs: [privileged]}\n",
    )
    .expect("policy");
    let policy = exempting.display().to_string();
    let judged = |trust: &str| {
        let list = ctx.live_audit(&[
            "-l",
            "team=b",
            "--policy",
            &policy,
            "--trust-scc-annotation",
            trust,
        ]);
        let status = &list["items"][0]["status"];
        (status["scc"].clone(), status["verdict"].clone())
    };
    assert_eq!(judged("auto"), (Value::Null, json!("Violating")));
    assert_eq!(judged("true"), (json!("privileged"), json!("Exempt")));

    // A refusal is told in the API server's words, in one short line (kube's own text adds the
    // whole Status in Debug form).
    let mut refused = kube::config::Kubeconfig::read_from(ctx.cluster.kubeconfig()).expect("kubeconfig");
    for user in &mut refused.auth_infos {
        user.auth_info = Some(serde_json::from_value(json!({ "token": "not-a-token" })).expect("auth info"));
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let refused_path = scratch.path().join("refused.kubeconfig");
    std::fs::write(
        &refused_path,
        serde_json::to_vec(&refused).expect("kubeconfig JSON"),
    )
    .expect("write");
    let unauthorized = audit(
        &["--kubeconfig", &refused_path.display().to_string(), "-n", &ctx.ns],
        None,
    );
    assert_eq!(unauthorized.code, 2, "{}", unauthorized.stderr);
    assert!(
        unauthorized.stderr.contains("401 Unauthorized"),
        "{}",
        unauthorized.stderr
    );
    assert!(
        !unauthorized.stderr.contains("Status {") && unauthorized.stderr.len() < 300,
        "{}",
        unauthorized.stderr
    );
}

/// A user allowed to list the pods of one namespace and nothing more (a team's CI account, say)
/// gets its pods' profiles, a note for each piece of cluster context it may not read, and exit
/// code 2 where `--fail-on violation` would otherwise pass on a guess: without the cluster's
/// policies, or without the labels a policy's namespace selector reads.
#[tokio::test]
async fn a_live_audit_by_a_user_who_may_only_list_pods_says_what_it_could_not_read() {
    use k8s_openapi::api::{
        core::v1::{Namespace, ServiceAccount},
        rbac::v1::{Role, RoleBinding},
    };
    use kube::api::{DeleteParams, Patch, PatchParams};
    use seccomp_sentinel::api::SeccompPolicy;
    let ctx = support::context("audit-pods-only").await;
    create_pod(&ctx, json!({ "name": "open" })).await;
    let account: ServiceAccount =
        serde_json::from_value(json!({ "metadata": { "name": "ci" } })).expect("service account");
    ctx.api::<ServiceAccount>()
        .create(&PostParams::default(), &account)
        .await
        .expect("create service account");
    let role: Role = serde_json::from_value(json!({ "metadata": { "name": "pod-reader" },
        "rules": [{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"] }] }))
    .expect("role");
    ctx.api::<Role>()
        .create(&PostParams::default(), &role)
        .await
        .expect("create role");
    let binding: RoleBinding = serde_json::from_value(json!({ "metadata": { "name": "ci" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader" },
        "subjects": [{ "kind": "ServiceAccount", "name": "ci", "namespace": ctx.ns }] }))
    .expect("role binding");
    ctx.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .expect("create role binding");
    let token = ctx.cluster.service_account_token(&ctx.ns, "ci").await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let ci_kubeconfig = scratch.path().join("ci.kubeconfig");
    std::fs::write(&ci_kubeconfig, ctx.cluster.kubeconfig_with_token(&token)).expect("write");
    let ci_kubeconfig = ci_kubeconfig.display().to_string();
    let admin_kubeconfig = ctx.cluster.kubeconfig().display().to_string();
    let as_user = |kubeconfig: &str, extra: &[&str]| {
        let mut args = vec!["--kubeconfig", kubeconfig, "-n", &ctx.ns, "-o", "json"];
        args.extend_from_slice(extra);
        audit(&args, None)
    };
    let profiles = |run: &Run| -> Vec<(String, String)> {
        rows_by_name(run)
            .into_iter()
            .map(|(name, (profile, ..))| (name, profile))
            .collect()
    };
    let open_unconfined = vec![("open".to_string(), "Unconfined".to_string())];

    // A cluster policy that only this namespace's pods come under.
    let policy: SeccompPolicy = serde_json::from_value(json!({
        "metadata": { "name": ctx.ns, "labels": { support::POLICY_LABEL: ctx.ns } },
        "spec": { "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ctx.ns } },
                  "allowedProfiles": ["RuntimeDefault"] } }))
    .expect("policy");
    let policies: kube::Api<SeccompPolicy> = kube::Api::all(ctx.client.clone());
    policies
        .create(&PostParams::default(), &policy)
        .await
        .expect("create policy");
    let admin = as_user(&admin_kubeconfig, &["--fail-on", "violation"]);
    assert_eq!(
        admin.code, 1,
        "the pod violates the cluster's policy: {}",
        admin.stderr
    );

    let user = as_user(&ci_kubeconfig, &[]);
    assert_eq!(user.code, 0, "{}", user.stderr);
    assert_eq!(profiles(&user), open_unconfined);
    for note in [
        "note: not allowed to list SeccompPolicies: no policy is judged",
        "note: not allowed to list nodes: every node is judged by the cluster's version and --kubelet-seccomp-default=false",
        "note: not allowed to list SeccompStatuses: ",
    ] {
        assert!(user.stderr.contains(note), "{note:?} in {}", user.stderr);
    }
    let gate = as_user(&ci_kubeconfig, &["--fail-on", "violation"]);
    assert_eq!(gate.code, 2, "{}", gate.stderr);
    assert!(
        gate.stderr.contains(
            "error: --fail-on violation cannot be answered without the cluster's SeccompPolicies: give them with --policy FILE"
        ),
        "{}",
        gate.stderr
    );
    assert_eq!(profiles(&gate), open_unconfined, "the report is still printed");
    // Unconfined pods need no policy: that gate is answered.
    assert_eq!(as_user(&ci_kubeconfig, &["--fail-on", "unconfined"]).code, 1);
    policies
        .delete(&ctx.ns, &DeleteParams::default())
        .await
        .expect("delete policy");

    // A policy given as a file, selecting namespaces by a label the user cannot read.
    let namespaces: kube::Api<Namespace> = kube::Api::all(ctx.client.clone());
    namespaces
        .patch(
            &ctx.ns,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "audit-team": "payments" } } })),
        )
        .await
        .expect("label namespace");
    let by_label = scratch.path().join("by-label.yaml");
    std::fs::write(
        &by_label,
        "apiVersion: seccomp.sentinel.dev/v1alpha1\nkind: SeccompPolicy\nmetadata: {name: payments}\n\
         spec:\n  namespaceSelector: {matchLabels: {audit-team: payments}}\n  allowedProfiles: [RuntimeDefault]\n",
    )
    .expect("policy file");
    let by_label = by_label.display().to_string();
    let admin = as_user(
        &admin_kubeconfig,
        &["--policy", &by_label, "--fail-on", "violation"],
    );
    assert_eq!(admin.code, 1, "{}", admin.stderr);
    let gate = as_user(&ci_kubeconfig, &["--policy", &by_label, "--fail-on", "violation"]);
    assert_eq!(gate.code, 2, "{}", gate.stderr);
    for line in [
        "note: not allowed to list namespaces: the namespace selectors of payments see each namespace's kubernetes.io/metadata.name label and no other",
        "error: --fail-on violation cannot be answered without the cluster's namespaces: run it as a user allowed to list namespaces",
    ] {
        assert!(gate.stderr.contains(line), "{line:?} in {}", gate.stderr);
    }
    // A policy that selects by no namespace label is answered without them.
    let everywhere = scratch.path().join("everywhere.yaml");
    std::fs::write(
        &everywhere,
        "apiVersion: seccomp.sentinel.dev/v1alpha1\nkind: SeccompPolicy\nmetadata: {name: everywhere}\n\
         spec:\n  allowedProfiles: [RuntimeDefault]\n",
    )
    .expect("policy file");
    let everywhere = everywhere.display().to_string();
    let gate = as_user(
        &ci_kubeconfig,
        &["--policy", &everywhere, "--fail-on", "violation"],
    );
    assert_eq!(gate.code, 1, "{}", gate.stderr);
    assert!(!gate.stderr.contains("namespaces"), "{}", gate.stderr);
}

/// `--profiles-dir`: the Localhost profiles the manifests name are read from a directory and
/// classified; a link out of it is refused; a policy's minimum strength judges by them.
#[test]
fn profiles_dir_classifies_the_localhost_profiles() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("seccomp");
    std::fs::create_dir_all(dir.join("profiles")).expect("dir");
    std::fs::write(
        dir.join("profiles/strict.json"),
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
    )
    .expect("profile");
    std::fs::write(
        dir.join("profiles/log.json"),
        r#"{"defaultAction":"SCMP_ACT_LOG"}"#,
    )
    .expect("profile");
    std::fs::write(
        scratch.path().join("outside.json"),
        r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#,
    )
    .expect("profile");
    std::os::unix::fs::symlink("../../outside.json", dir.join("profiles/link.json")).expect("link");
    let pod = |name: &str, path: &str| {
        json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": name, "namespace": "shop" },
            "spec": { "securityContext": { "seccompProfile": { "type": "Localhost", "localhostProfile": path } },
                      "containers": [{ "name": "app", "image": "app" }] } })
    };
    let list = json!({ "apiVersion": "v1", "kind": "List", "items": [
        pod("strict", "profiles/strict.json"), pod("log", "profiles/log.json"),
        pod("link", "profiles/link.json"), pod("gone", "profiles/gone.json"),
        pod("dotted", "./profiles//log.json"),
    ] });
    let policy = scratch.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: seccomp.sentinel.dev/v1alpha1\nkind: SeccompPolicy\nmetadata: {name: strong}\nspec: {minimumProfileStrength: DenyList}\n",
    )
    .expect("policy");
    let dir_arg = format!("--profiles-dir={}", dir.display());
    let policy_arg = format!("--policy={}", policy.display());
    let run = audit(
        &["-f", "-", "-o", "json", &dir_arg, &policy_arg],
        Some(&list.to_string()),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).expect("json");
    let item = |name: &str| {
        report["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["metadata"]["name"] == name))
            .unwrap_or_else(|| panic!("no {name} in {}", run.stdout))
            .clone()
    };
    let app = |name: &str| item(name)["status"]["containers"][0].clone();
    assert_eq!(app("strict")["strength"], "AllowList");
    assert_eq!(app("strict")["strengthSource"], "ProfilesDir");
    assert_eq!(app("log")["strength"], "LogOnly");
    // The file the kubelet would open (it cleans the path), as the policy judges it too.
    assert_eq!(app("dotted")["strength"], "LogOnly");
    assert_eq!(
        app("dotted")["profile"]["localhostProfile"],
        "./profiles//log.json"
    );
    assert_eq!(app("gone")["strength"], "Missing");
    assert_eq!(
        app("link")["strength"],
        "Unknown",
        "a link out of the directory is not read"
    );
    let verdict = |name: &str| item(name)["status"]["policies"][0]["verdict"].clone();
    assert_eq!(verdict("strict"), "Compliant");
    assert_eq!(verdict("log"), "Violating");
    assert_eq!(verdict("link"), "Compliant", "no verdict on a guess");
    // Without the directory nothing is known.
    let blind = audit(&["-f", "-", "-o", "json"], Some(&list.to_string()));
    let report: Value = serde_json::from_str(&blind.stdout).expect("json");
    assert!(
        report["items"].as_array().is_some_and(|items| items
            .iter()
            .all(|i| i["status"]["containers"][0]["strength"] == "Unknown")),
        "{}",
        blind.stdout
    );
}

/// The rows of a JSON report, by name: profile, source, SCC, and the Admitted condition.
fn rows_by_name(run: &Run) -> std::collections::BTreeMap<String, (String, String, String, String)> {
    let list: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout, run.stderr));
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
            let admitted = i["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Admitted")
                .map(|c| format!("{}:{}", text(&c["status"]), text(&c["message"])))
                .unwrap_or_else(|| "-".into());
            (
                text(&i["metadata"]["name"]),
                (
                    text(&i["status"]["profile"]),
                    text(&i["status"]["source"]),
                    text(&i["status"]["scc"]),
                    admitted,
                ),
            )
        })
        .collect()
}

#[test]
fn openshift_admission_is_simulated_for_manifests() {
    let table = audit(&["-f", "openshift", SCCS], None);
    assert_eq!(table.code, 0, "{}", table.stderr);
    golden("openshift.table", &table.stdout);

    let run = audit(&["-f", "openshift", SCCS, "-o", "json"], None);
    let rows = rows_by_name(&run);
    // An ordinary Deployment gets restricted-v2's default, written by admission.
    let web = &rows["web"];
    assert_eq!(
        (web.0.as_str(), web.1.as_str(), web.2.as_str()),
        ("RuntimeDefault", "SCCDefault", "restricted-v2")
    );
    assert!(web.3.starts_with("True:"), "{web:?}");
    // Root and host networking: restricted-v2 refuses them, with OpenShift's reasons; no profile.
    let root = &rows["root-db"];
    assert_eq!(root.0, "Rejected", "{root:?}");
    assert!(
        root.3.starts_with("False:") && root.3.contains("provider restricted-v2: .spec.containers[0].runAsUser: Invalid value: 0: must be in the ranges: [1000680000, 1000689999]"),
        "{root:?}"
    );
    assert!(
        rows["host-net"]
            .3
            .contains("Host network is not allowed to be used"),
        "{:?}",
        rows["host-net"]
    );
    // A legacy annotation is converted into the field; the manifest says where it came from.
    assert_eq!(rows["legacy"].0, "RuntimeDefault");
    assert_eq!(rows["legacy"].1, "PodAnnotation");
    // An admitted pod is read as stored.
    assert_eq!(rows["stored"].1, "SCCDefault");
    assert_eq!(rows["stored"].3, "-");
    assert!(
        run.stderr.contains("2 refused by SCC admission"),
        "{}",
        run.stderr
    );

    assert_eq!(
        audit(&["-f", "openshift", SCCS, "--fail-on", "rejected"], None).code,
        1
    );
    // With more SCCs usable, anyuid admits the root pod (and writes no profile: it lists none)
    // and hostnetwork-v2 the host-network one.
    let wider = audit(
        &[
            "-f",
            "openshift",
            SCCS,
            "--scc-allow",
            "restricted-v2,anyuid,hostnetwork-v2",
            "-o",
            "json",
            "--fail-on",
            "rejected",
        ],
        None,
    );
    assert_eq!(wider.code, 0, "{}", wider.stderr);
    let rows = rows_by_name(&wider);
    assert_eq!(
        (rows["root-db"].0.as_str(), rows["root-db"].2.as_str()),
        ("Unconfined", "anyuid")
    );
    assert_eq!(
        (rows["host-net"].0.as_str(), rows["host-net"].2.as_str()),
        ("RuntimeDefault", "hostnetwork-v2")
    );

    // OpenShift 4.12 writes only the pod annotation; its API server then fills the field.
    let old = audit(
        &[
            "-f",
            "openshift",
            SCCS,
            "--openshift-version",
            "4.12",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(old.code, 0, "{}", old.stderr);
    let rows = rows_by_name(&old);
    assert_eq!(
        (rows["web"].0.as_str(), rows["web"].2.as_str()),
        ("RuntimeDefault", "restricted-v2")
    );
    let too_old = audit(&["-f", "openshift", SCCS, "--openshift-version", "4.9"], None);
    assert_eq!(too_old.code, 2);
    assert!(too_old.stderr.contains("older than 4.11"), "{}", too_old.stderr);
}

/// A live audit lists in pages (`--chunk-size`, 500 by default, as kubectl), so a large
/// cluster's pods never come as one response; every page is read.
#[tokio::test]
async fn a_live_audit_reads_the_cluster_in_pages() {
    let ctx = support::context("audit-pages").await;
    const PODS: usize = 5;
    for i in 0..PODS {
        create_pod(&ctx, json!({ "name": format!("p{i}") })).await;
    }
    let report = ctx.live_audit(&["--chunk-size", "2"]);
    let mut names: Vec<&str> = report["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4"], "every page is read");

    // The pods came in three requests of at most two (the local control plane keeps an audit
    // log; an existing cluster does not).
    let Some(log) = ctx.cluster.audit_log() else {
        eprintln!("note: no audit log on an existing cluster; the page count is not checked");
        return;
    };
    let text = std::fs::read_to_string(&log).expect("audit log");
    let pod_lists = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["stage"] == "ResponseComplete" && event["verb"] == "list")
        .filter(|event| {
            event["requestURI"]
                .as_str()
                .is_some_and(|uri| uri.starts_with(&format!("/api/v1/namespaces/{}/pods?", ctx.ns)))
        })
        .collect::<Vec<_>>();
    // Each names the audit as its sender (kube sends no User-Agent of its own).
    let expected = seccomp_sentinel::client::user_agent(seccomp_sentinel::client::Component::Audit);
    assert!(
        pod_lists
            .iter()
            .all(|event| event["userAgent"] == expected.as_str()),
        "User-Agents, expected {expected}: {:?}",
        pod_lists.iter().map(|e| &e["userAgent"]).collect::<Vec<_>>()
    );
    let pod_lists: Vec<&str> = pod_lists
        .iter()
        .filter_map(|event| event["requestURI"].as_str())
        .collect();
    assert_eq!(pod_lists.len(), 3, "{pod_lists:?}");
    assert!(
        pod_lists.iter().all(|uri| uri.contains("limit=2")),
        "{pod_lists:?}"
    );
    assert_eq!(
        pod_lists.iter().filter(|uri| uri.contains("continue=")).count(),
        2,
        "{pod_lists:?}"
    );
}

/// Creates a pod with one container and `metadata` (its name, labels, annotations).
async fn create_pod(ctx: &support::TestContext, metadata: Value) {
    let pod: Pod = serde_json::from_value(json!({ "metadata": metadata,
        "spec": { "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] } }))
    .expect("pod");
    ctx.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
}

/// A plain-HTTP front of the API server for the audit binary: each request goes on through the
/// test's own client, except GETs of the `failing` paths, answered with a 500.
async fn front_failing(client: kube::Client, failing: Vec<String>) -> std::net::SocketAddr {
    use axum::{body::Body, extract::Request, response::Response};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the front");
    let address = listener.local_addr().expect("address");
    let app = axum::Router::new().fallback(move |request: Request| {
        let (client, failing) = (client.clone(), failing.clone());
        async move {
            let (parts, body) = request.into_parts();
            if parts.method == http::Method::GET && failing.iter().any(|p| parts.uri.path() == p) {
                let status = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"down on purpose","reason":"InternalError","code":500}"#;
                return Response::builder()
                    .status(500)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Body::from(status))
                    .expect("response");
            }
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let mut forward = http::Request::builder().method(parts.method.clone()).uri(path);
            for (name, value) in &parts.headers {
                if name != http::header::HOST {
                    forward = forward.header(name, value);
                }
            }
            let forward = forward
                .body(kube::client::Body::from(bytes.to_vec()))
                .expect("request");
            match client.send(forward).await {
                Ok(answer) => {
                    let (parts, body) = answer.into_parts();
                    Response::from_parts(parts, Body::new(body))
                }
                Err(e) => Response::builder()
                    .status(502)
                    .body(Body::from(e.to_string()))
                    .expect("response"),
            }
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    address
}

/// Discovery that fails (an API server restarting, an aggregated API down) is not taken for an
/// API the cluster lacks without a word: the report notes that `openshift.io/scc` is not trusted
/// and that the Security Profiles Operator's profiles were not read. Before, both were dropped
/// in silence, as off OpenShift and without the operator.
#[tokio::test]
async fn a_live_audit_says_when_discovery_fails_instead_of_guessing() {
    let ctx = support::context("audit-discovery").await;
    create_pod(&ctx, json!({ "name": "web" })).await;
    let front = front_failing(
        ctx.client.clone(),
        vec![
            "/apis/security.openshift.io/v1".into(),
            "/apis/security-profiles-operator.x-k8s.io/v1beta1".into(),
        ],
    )
    .await;
    let kubeconfig = tempfile::NamedTempFile::new().expect("temp file");
    support::write_plain_kubeconfig(kubeconfig.path(), &format!("http://{front}"));
    // The front runs on this test's runtime: the audit is waited for without blocking it.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_seccomp-sentinel"))
        .args(["audit", "-n", &ctx.ns, "-o", "json", "--kubeconfig"])
        .arg(kubeconfig.path())
        .env_remove("KUBECONFIG")
        .output()
        .await
        .expect("run seccomp-sentinel audit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Said once, as a note: not also as kube's ERROR log line for each 5xx answer.
    assert!(!stderr.contains("kube_client"), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("audit json");
    assert_eq!(report["items"][0]["metadata"]["name"], "web", "{report}");
    assert!(
        stderr.contains("note: cannot list the API groups (discovery) (500")
            && stderr.contains("`openshift.io/scc` is not trusted"),
        "{stderr}"
    );
    assert!(
        stderr.contains("note: cannot list SeccompProfiles (500"),
        "{stderr}"
    );
}
