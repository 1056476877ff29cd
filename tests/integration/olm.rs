//! OperatorHub's install path, with OLM's own operators: the bundle of `bundle/` goes into a
//! file-based catalog rendered and validated by the real `opm`, served by `opm serve` on loopback
//! and named by a CatalogSource's `address`; a Subscription in a namespace other than
//! `seccomp-sentinel` makes OLM's catalog operator resolve an InstallPlan and OLM's olm operator
//! install the CSV, whose Deployment runs the operator on a real node; the operator creates the
//! agent DaemonSet and writes statuses; deleting the Subscription and the CSV leaves nothing of
//! ours running.
//!
//! The bundle is the shipped one with only what a test node and the shared test cluster need (as
//! for the kustomize installs): the local image, the host's network with the API server and the
//! health port on loopback, the test nodes' toleration, one replica and the Recreate strategy (both
//! test nodes share the host's network, so two pods would share a port), and the operator's scope
//! (this test's namespace and policies). A user's setting comes through the Subscription's
//! `config`, as OperatorHub's form gives it. (The toleration cannot: OLM applies a config that
//! arrives after the first Deployment only once that Deployment is available.)
use std::{path::Path, time::Duration};

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, ResourceExt, api::PostParams};
use seccomp_sentinel::api::SeccompStatus;
use sentinel_testenv::{Binaries, image::OPERATOR_IMAGE, install, olm};
use serde_json::{Value, json};

use crate::support::{
    self, TestContext,
    nodes::{self, node_context},
    wait_for, wait_for_explained,
};

const PACKAGE: &str = "seccomp-sentinel";
const CHANNEL: &str = "candidate";
/// OLM installs, resolves and garbage-collects asynchronously; on 2 cores this takes a while.
const TIMEOUT: Duration = Duration::from_secs(240);

/// The CSV of `bundle/` with the overrides of a test node (see the module's comment).
fn for_the_test_node(csv: &mut Value, scope: &str, api_port: &str, health: u16, metrics: u16) {
    let deployment = &mut csv["spec"]["install"]["spec"]["deployments"][0]["spec"];
    deployment["replicas"] = json!(1);
    // A new pod must not start beside the old one: they would share the host's ports.
    deployment["strategy"] = json!({ "type": "Recreate" });
    let pod = &mut deployment["template"]["spec"];
    pod["hostNetwork"] = json!(true);
    pod["tolerations"] =
        json!([{ "key": sentinel_testenv::node::NODE_TAINT, "operator": "Exists", "effect": "NoSchedule" }]);
    let manager = &mut pod["containers"][0];
    manager["image"] = json!(OPERATOR_IMAGE);
    manager["imagePullPolicy"] = json!("Never");
    for arg in manager["args"].as_array_mut().expect("args").iter_mut() {
        match arg.as_str() {
            Some(a) if a.starts_with("--health-addr=") => {
                *arg = json!(format!("--health-addr=127.0.0.1:{health}"))
            }
            Some(a) if a.starts_with("--metrics-addr=") => {
                *arg = json!(format!("--metrics-addr=127.0.0.1:{metrics}"))
            }
            _ => {}
        }
    }
    for port in manager["ports"].as_array_mut().expect("ports").iter_mut() {
        port["containerPort"] = json!(if port["name"] == "health" { health } else { metrics });
    }
    // The kubelet probes the pod's IP (here the machine's address) unless told otherwise.
    for probe in ["livenessProbe", "readinessProbe"] {
        manager[probe]["httpGet"]["host"] = json!("127.0.0.1");
    }
    let env = manager["env"].as_array_mut().expect("env");
    for var in env.iter_mut() {
        if var["name"] == "RELATED_IMAGE_AGENT" {
            var["value"] = json!(OPERATOR_IMAGE);
        }
    }
    // The test cluster is shared: this test's namespace and policies only.
    env.push(json!({ "name": "SENTINEL_NAMESPACES", "value": scope }));
    env.push(
        json!({ "name": "SENTINEL_POLICY_SELECTOR", "value": format!("{}={scope}", support::POLICY_LABEL) }),
    );
    env.push(json!({ "name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1" }));
    env.push(json!({ "name": "KUBERNETES_SERVICE_PORT", "value": api_port }));
}

/// Copies `bundle/` into `dir`, the CSV adapted by [`for_the_test_node`] (written as JSON, which
/// is YAML too).
fn test_bundle(dir: &Path, scope: &str, api_port: &str, health: u16, metrics: u16) {
    crate::bundle::copy_bundle(dir, |name, text| {
        if !name.ends_with(".clusterserviceversion.yaml") {
            return Some(text);
        }
        let mut csv: Value = serde_saphyr::from_str(&text).expect("CSV yaml");
        for_the_test_node(&mut csv, scope, api_port, health, metrics);
        Some(csv.to_string())
    });
}

fn apply(ctx: &TestContext, object: Value) {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), object.to_string()).expect("write");
    ctx.kubectl(&["apply", "--server-side", "-f", &file.path().display().to_string()]);
}

/// `kubectl get ARGS -o json`, or `None` when it fails (not found, not yet served).
fn get(ctx: &TestContext, args: &[&str]) -> Option<Value> {
    let args = [&["get"], args, &["-o", "json"]].concat();
    let out = ctx.cluster.try_kubectl(&args).ok()?;
    serde_json::from_str(&out).ok()
}

/// `kubectl get KINDS -n NS -o name`: what is left of an install.
fn names(ctx: &TestContext, kinds: &str, namespace: &str) -> Vec<String> {
    ctx.cluster
        .try_kubectl(&["get", kinds, "-n", namespace, "-o", "name"])
        .map(|out| out.lines().map(str::to_string).collect())
        .unwrap_or_else(|e| vec![format!("error: {e}")])
}

/// [`wait_for`], failing with the install's objects, events and the end of OLM's logs as they
/// are then.
async fn wait_olm<T, F, Fut>(
    ctx: &TestContext,
    ns: &str,
    operators: &olm::Operators,
    what: &str,
    probe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    wait_for_explained(what, TIMEOUT, probe, || {
        let objects = ctx.cluster.try_kubectl(&[
            "get",
            "subscription,installplan,csv,deployment,pods",
            "-n",
            ns,
            "-o",
            "wide",
        ]);
        let statuses = ["subscription", "csv"].map(|kind| {
            get(ctx, &["-n", ns, kind]).map(|list| {
                list["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| i["status"].to_string())
                    .collect::<Vec<_>>()
            })
        });
        let events = ctx.cluster.try_kubectl(&["get", "events", "-n", ns]);
        format!(
            "{objects:?}\n{statuses:?}\n{events:?}\nOLM's logs:\n{}",
            operators.log_tails()
        )
    })
    .await
}

#[tokio::test]
async fn olm_installs_the_bundle_from_a_catalog_into_any_namespace_and_uninstalls_it() {
    let test_nodes = nodes::nodes();
    let ctx = node_context("olm").await;
    let plane = ctx
        .cluster
        .plane()
        .expect("the local control plane (OLM runs against it)");
    let binaries = Binaries::locate().expect("binaries");
    olm::install_crds(&binaries, plane.kubeconfig()).unwrap_or_else(|e| panic!("{e}"));

    // OLM's own namespace and the install namespace, neither of them `seccomp-sentinel`.
    let olm_ns = format!("{}-olm", ctx.ns);
    let install_ns = format!("{}-op", ctx.ns);
    ctx.kubectl(&["create", "namespace", &olm_ns]);
    install::node_namespace(&binaries, plane.kubeconfig(), plane.data_dir(), &install_ns)
        .expect("install namespace");
    let operators = olm::Operators::start(plane, &binaries, &olm_ns).unwrap_or_else(|e| panic!("{e}"));

    let work = tempfile::tempdir_in(plane.data_dir()).expect("work dir");
    let [health, metrics] = sentinel_testenv::free_ports::<2>().expect("ports");
    let bundle = work.path().join("bundle");
    test_bundle(
        &bundle,
        &ctx.ns,
        install::api_server_port(plane.server()),
        health,
        metrics,
    );
    // The Secret the metrics Service's annotation has OpenShift's service CA make, made here by
    // hand: the manager OLM deploys serves /metrics with it.
    let metrics_name = format!("seccomp-sentinel-metrics.{install_ns}.svc");
    // Made (and later renewed) by the real kubectl: `create secret tls`, applied.
    let apply_metrics_secret = |issued: &crate::support::https::Issued| {
        let cert_file = work.path().join("metrics-tls.crt");
        let key_file = work.path().join("metrics-tls.key");
        std::fs::write(&cert_file, &issued.cert).expect("write");
        std::fs::write(&key_file, &issued.key).expect("write");
        let secret = ctx.kubectl(&[
            "create",
            "secret",
            "tls",
            "seccomp-sentinel-metrics-tls",
            "-n",
            &install_ns,
            &format!("--cert={}", cert_file.display()),
            &format!("--key={}", key_file.display()),
            "--dry-run=client",
            "-o",
            "yaml",
        ]);
        let secret_file = work.path().join("metrics-tls.yaml");
        std::fs::write(&secret_file, secret).expect("write");
        ctx.kubectl(&["apply", "-f", &secret_file.display().to_string()]);
    };
    let metrics_cert = crate::support::https::issue("metrics CA", &metrics_name);
    apply_metrics_secret(&metrics_cert);
    let catalog_dir = work.path().join("catalog");
    olm::render_catalog(&binaries, &bundle, PACKAGE, CHANNEL, &catalog_dir).unwrap_or_else(|e| panic!("{e}"));
    let catalog_text =
        std::fs::read_to_string(catalog_dir.join(PACKAGE).join("catalog.json")).expect("catalog");
    assert!(
        catalog_text.contains("olm.bundle.object"),
        "the catalog embeds the bundle's objects"
    );
    let server =
        olm::CatalogServer::start(&binaries, &catalog_dir, work.path()).unwrap_or_else(|e| panic!("{e}"));

    apply(
        &ctx,
        json!({ "apiVersion": "operators.coreos.com/v1alpha1", "kind": "CatalogSource",
            "metadata": { "name": "sentinel-test", "namespace": install_ns },
            "spec": { "sourceType": "grpc", "address": server.address, "displayName": "seccomp-sentinel (test)" } }),
    );
    apply(
        &ctx,
        json!({ "apiVersion": "operators.coreos.com/v1", "kind": "OperatorGroup",
            "metadata": { "name": "sentinel", "namespace": install_ns }, "spec": {} }),
    );
    apply(
        &ctx,
        json!({ "apiVersion": "operators.coreos.com/v1alpha1", "kind": "Subscription",
            "metadata": { "name": PACKAGE, "namespace": install_ns },
            "spec": {
                "name": PACKAGE, "channel": CHANNEL, "source": "sentinel-test", "sourceNamespace": install_ns,
                "installPlanApproval": "Automatic",
                // A user's setting, as OperatorHub's form gives it: OLM injects it into the Deployment.
                "config": { "env": [{ "name": "SENTINEL_LOG_FORMAT", "value": "text" }] } } }),
    );

    let started = std::time::Instant::now();
    let ns = install_ns.as_str();
    let csv_name = wait_olm(&ctx, ns, &operators, "an installed CSV", || async {
        let sub = get(&ctx, &["subscription", PACKAGE, "-n", ns])?;
        sub["status"]["installedCSV"].as_str().map(str::to_string)
    })
    .await;
    // The Subscription names the CSV while its InstallPlan still runs.
    let plan = wait_olm(&ctx, ns, &operators, "a complete InstallPlan", || async {
        let plans = get(&ctx, &["installplan", "-n", ns])?;
        plans["items"]
            .as_array()?
            .iter()
            .find(|p| p["status"]["phase"] == "Complete")
            .and_then(|p| p["metadata"]["name"].as_str().map(str::to_string))
    })
    .await;
    let csv = wait_olm(
        &ctx,
        ns,
        &operators,
        &format!("CSV {csv_name} Succeeded"),
        || async {
            let csv = get(&ctx, &["csv", &csv_name, "-n", ns])?;
            (csv["status"]["phase"] == "Succeeded").then_some(csv)
        },
    )
    .await;
    assert_eq!(csv["spec"]["version"], env!("CARGO_PKG_VERSION"), "{csv_name}");

    // The operator runs on a test node, as OLM deployed it, with the Subscription's config (OLM
    // redeploys when the config reaches it after the first Deployment).
    let has_config = |pod: &Value| {
        pod["spec"]["containers"][0]["env"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["name"] == "SENTINEL_LOG_FORMAT" && e["value"] == "text")
    };
    let manager = wait_olm(
        &ctx,
        ns,
        &operators,
        "the manager pod running with the Subscription's config",
        || async {
            let pods = get(
                &ctx,
                &["pods", "-n", ns, "-l", "app.kubernetes.io/component=manager"],
            )?;
            pods["items"]
                .as_array()?
                .iter()
                .find(|p| {
                    p["status"]["phase"] == "Running"
                        && p["metadata"]["deletionTimestamp"].is_null()
                        && has_config(p)
                })
                .cloned()
        },
    )
    .await;
    let node = manager["spec"]["nodeName"].as_str().unwrap_or_default();
    assert!(
        [&test_nodes.a.name, &test_nodes.b.name]
            .iter()
            .any(|n| n.as_str() == node),
        "on a test node: {node}"
    );

    // /metrics over HTTPS with the Secret's certificate: a scraper that trusts only its CA, for the
    // Service's name, gets an answer (401: this one sends no token).
    let answer = crate::support::https::first_answer_trusting(
        "/metrics with the mounted certificate",
        metrics,
        &metrics_cert.ca,
        &metrics_name,
        TIMEOUT,
        String::new,
    )
    .await;
    assert_eq!(answer.code, 401, "{}", answer.response);
    // The Secret renewed, as the service CA renews it: the kubelet updates the mounted files (at
    // its next sync of the pod, up to a minute) and the manager serves the new certificate without
    // a restart. Checked below, after the other checks, so that the wait overlaps them.
    let renewed = crate::support::https::issue("renewed metrics CA", &metrics_name);
    apply_metrics_secret(&renewed);
    let manager_pod = manager["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // The operator, with OLM's RBAC, creates the agent DaemonSet (owned by its Deployment) and
    // writes statuses.
    let daemonset = wait_for("the agent DaemonSet", TIMEOUT, || async {
        get(&ctx, &["daemonset", "seccomp-sentinel-agent", "-n", ns])
    })
    .await;
    assert_eq!(
        daemonset["spec"]["template"]["spec"]["containers"][0]["image"], OPERATOR_IMAGE,
        "from RELATED_IMAGE_AGENT"
    );
    assert_eq!(daemonset["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    let pods: Api<Pod> = ctx.api();
    pods.create(
        &PostParams::default(),
        &nodes::pod(
            "workload",
            &test_nodes.a.name,
            "sleep 3600",
            json!({ "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } } }),
        ),
    )
    .await
    .expect("workload pod");
    let statuses: Api<SeccompStatus> = ctx.api();
    let status = wait_for("the workload's SeccompStatus", TIMEOUT, || async {
        statuses.get_opt("workload").await.ok().flatten()
    })
    .await;
    assert!(
        status
            .managed_fields()
            .iter()
            .any(|m| m.manager.as_deref() == Some("seccomp-sentinel")),
        "written by the OLM-installed operator: {:?}",
        status.managed_fields()
    );
    assert_eq!(
        status.status.as_ref().map(|s| s.profile),
        Some(seccomp_sentinel::api::PodProfile::RuntimeDefault)
    );

    let selector = format!("olm.owner={csv_name},olm.owner.namespace={ns}");
    let bindings = ctx.kubectl(&["get", "clusterrolebindings", "-l", &selector, "-o", "name"]);
    assert!(
        bindings.lines().count() >= 2,
        "OLM bound the manager's and the agent's cluster permissions: {bindings}"
    );
    eprintln!(
        "olm: installed, running and reporting {:?} after the Subscription",
        started.elapsed()
    );

    let answer = crate::support::https::first_answer_trusting(
        "/metrics with the renewed certificate",
        metrics,
        &renewed.ca,
        &metrics_name,
        TIMEOUT,
        String::new,
    )
    .await;
    assert_eq!(answer.code, 401, "{}", answer.response);
    let still_running = get(&ctx, &["pod", &manager_pod, "-n", ns]).expect("the manager pod");
    assert_eq!(
        still_running["status"]["containerStatuses"][0]["restartCount"], 0,
        "renewed without a restart"
    );

    // A user uninstalls a settled install. OLM's catalog operator goes on applying a plan's steps
    // for a few seconds after the plan is Complete (a sync begun from its cache's older copy); a
    // CSV deleted meanwhile gets its cluster RBAC created again after its finalizer removed it,
    // and nothing removes it then (seen twice in five runs on a loaded machine).
    let mut last = (String::new(), 0, std::time::Instant::now());
    wait_olm(
        &ctx,
        ns,
        &operators,
        &format!("the catalog operator done with {plan} for 10 s"),
        || {
            let current = (
                get(&ctx, &["installplan", &plan, "-n", ns])
                    .and_then(|p| p["metadata"]["resourceVersion"].as_str().map(str::to_string))
                    .unwrap_or_default(),
                std::fs::read_to_string(operators.log_dir.join("catalog.log"))
                    .unwrap_or_default()
                    .matches(&format!("ip={plan} "))
                    .count(),
            );
            if (current.0.as_str(), current.1) != (last.0.as_str(), last.1) {
                last = (current.0, current.1, std::time::Instant::now());
            }
            let settled = last.2.elapsed() >= Duration::from_secs(10);
            async move { settled.then_some(()) }
        },
    )
    .await;

    // Uninstall as OLM documents it: the Subscription, then the CSV.
    let uninstalled = k8s_openapi::jiff::Timestamp::now();
    ctx.kubectl(&["delete", "subscription", PACKAGE, "-n", ns]);
    ctx.kubectl(&["delete", "csv", &csv_name, "-n", ns]);
    wait_olm(
        &ctx,
        ns,
        &operators,
        "nothing of ours running after the uninstall",
        || async {
            names(&ctx, "deployments,daemonsets,replicasets,pods,csv", ns)
                .is_empty()
                .then_some(())
        },
    )
    .await;
    // OLM removes the cluster-wide RBAC it created for the CSV.
    wait_for_explained(
        "the CSV's ClusterRoleBindings removed",
        TIMEOUT,
        || async {
            let out = ctx
                .cluster
                .try_kubectl(&["get", "clusterrolebindings", "-l", &selector, "-o", "name"])
                .ok()?;
            out.trim().is_empty().then_some(())
        },
        || {
            // Which objects stay, and whether they were made before or after the uninstall.
            let left = ctx.cluster.try_kubectl(&[
                "get",
                "clusterrolebindings,clusterroles",
                "-l",
                &selector,
                "-o",
                "custom-columns=NAME:.metadata.name,CREATED:.metadata.creationTimestamp,MANAGERS:.metadata.managedFields[*].manager",
            ]);
            format!(
                "uninstalled at {uninstalled}; left:\n{left:?}\nOLM's logs:\n{}",
                operators.log_tails()
            )
        },
    )
    .await;

    eprintln!("olm: uninstalled {:?} after the Subscription", started.elapsed());
    drop(server);
    drop(operators);
    let _ = ctx
        .cluster
        .try_kubectl(&["delete", "namespace", &install_ns, &olm_ns, "--wait=false"]);
}
