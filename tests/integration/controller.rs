//! The SeccompStatus controller on the real control plane: what it writes for pods of every
//! shape, what users see through kubectl, and when it does not write.
use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use seccomp_sentinel::api::{PodProfile, ProfileSource, ProfileType, SeccompStatus};
use serde_json::{Value, json};

use crate::support::{self, Operator, TestContext, unique_name, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);

async fn create_pod(ctx: &TestContext, pod: Value) -> Pod {
    let pod: Pod = serde_json::from_value(pod).expect("pod json");
    ctx.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod")
}

fn container(name: &str, security_context: Value) -> Value {
    json!({ "name": name, "image": "registry.invalid/app:1", "securityContext": security_context })
}

/// Waits until the pod's SeccompStatus exists, describes the pod's current UID, and satisfies
/// `done`.
async fn status_of(ctx: &TestContext, pod: &str, done: impl Fn(&SeccompStatus) -> bool) -> SeccompStatus {
    let statuses: Api<SeccompStatus> = ctx.api();
    let pods: Api<Pod> = ctx.api();
    wait_for(&format!("the SeccompStatus of {pod}"), TIMEOUT, || async {
        let uid = pods.get(pod).await.ok()?.uid()?;
        let status = statuses.get_opt(pod).await.ok()??;
        (status.pod_uid() == Some(uid.as_str()) && status.status.is_some() && done(&status)).then_some(status)
    })
    .await
}

async fn current_status(ctx: &TestContext, pod: &str) -> SeccompStatus {
    status_of(ctx, pod, |_| true).await
}

fn decided(status: &SeccompStatus, container: &str) -> (ProfileType, ProfileSource) {
    let s = status.status.as_ref().expect("status");
    let c = s
        .containers
        .iter()
        .find(|c| c.name == container)
        .expect("container in status");
    (c.profile.type_, c.source)
}

fn summary(status: &SeccompStatus) -> (PodProfile, String) {
    let s = status.status.as_ref().expect("status");
    (s.profile, s.confined.clone())
}

#[tokio::test]
async fn pods_of_every_shape_get_their_effective_profile() {
    let ctx = support::context("ctl-shapes").await;
    let operator = Operator::for_namespace(&ctx).await;

    create_pod(
        &ctx,
        json!({ "metadata": { "name": "confined" }, "spec": {
        "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
        "containers": [container("app", json!({}))] } }),
    )
    .await;
    create_pod(
        &ctx,
        json!({ "metadata": { "name": "unconfined" }, "spec": {
        "containers": [container("app", json!({}))] } }),
    )
    .await;
    create_pod(
        &ctx,
        json!({ "metadata": { "name": "privileged" }, "spec": {
        "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
        "containers": [container("app", json!({ "privileged": true }))] } }),
    )
    .await;
    create_pod(&ctx, json!({ "metadata": { "name": "mixed" }, "spec": {
        "securityContext": { "seccompProfile": { "type": "Localhost", "localhostProfile": "profiles/app.json" } },
        "initContainers": [
            container("setup", json!({ "seccompProfile": { "type": "Unconfined" } })),
            { "name": "proxy", "image": "registry.invalid/proxy:1", "restartPolicy": "Always" }
        ],
        "containers": [container("app", json!({})), container("tool", json!({ "seccompProfile": { "type": "RuntimeDefault" } }))]
    } }))
    .await;
    create_pod(&ctx, json!({ "metadata": { "name": "windows" }, "spec": {
        "os": { "name": "windows" }, "containers": [{ "name": "app", "image": "registry.invalid/win:1" }] } }))
    .await;

    let confined = current_status(&ctx, "confined").await;
    assert_eq!(summary(&confined), (PodProfile::RuntimeDefault, "1/1".into()));
    assert_eq!(
        decided(&confined, "app"),
        (ProfileType::RuntimeDefault, ProfileSource::PodField)
    );

    let unconfined = current_status(&ctx, "unconfined").await;
    assert_eq!(summary(&unconfined), (PodProfile::Unconfined, "0/1".into()));
    assert_eq!(
        decided(&unconfined, "app"),
        (ProfileType::Unconfined, ProfileSource::None)
    );

    let privileged = current_status(&ctx, "privileged").await;
    assert_eq!(
        decided(&privileged, "app"),
        (ProfileType::Unconfined, ProfileSource::Privileged)
    );
    let warnings = &privileged.status.as_ref().expect("status").containers[0].warnings;
    assert!(warnings.iter().any(|w| w.contains("privileged")), "{warnings:?}");

    let mixed = current_status(&ctx, "mixed").await;
    assert_eq!(summary(&mixed), (PodProfile::Mixed, "3/4".into()));
    assert_eq!(
        decided(&mixed, "setup"),
        (ProfileType::Unconfined, ProfileSource::ContainerField)
    );
    assert_eq!(
        decided(&mixed, "proxy"),
        (ProfileType::Localhost, ProfileSource::PodField)
    );
    assert_eq!(
        decided(&mixed, "app"),
        (ProfileType::Localhost, ProfileSource::PodField)
    );
    assert_eq!(
        decided(&mixed, "tool"),
        (ProfileType::RuntimeDefault, ProfileSource::ContainerField)
    );
    let kinds: Vec<_> = mixed
        .status
        .as_ref()
        .expect("status")
        .containers
        .iter()
        .map(|c| c.kind)
        .collect();
    use seccomp_sentinel::api::ContainerKind::*;
    assert_eq!(kinds, vec![InitContainer, SidecarContainer, Container, Container]);

    let windows = current_status(&ctx, "windows").await;
    assert_eq!(summary(&windows), (PodProfile::NotApplicable, "0/0".into()));
    assert_eq!(
        decided(&windows, "app"),
        (ProfileType::NotApplicable, ProfileSource::Windows)
    );

    // Owned by the pod, labelled with the summary, with a Confined condition.
    let pod = ctx.api::<Pod>().get("mixed").await.expect("pod");
    let owner = &mixed.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Pod", pod.uid().expect("uid").as_str())
    );
    assert_eq!(
        mixed
            .labels()
            .get("seccomp.sentinel.dev/profile")
            .map(String::as_str),
        Some("Mixed")
    );
    let condition = &mixed.status.as_ref().expect("status").conditions[0];
    assert_eq!(
        (condition.type_.as_str(), condition.status.as_str()),
        ("Confined", "False")
    );
    assert!(condition.message.contains("setup"), "{}", condition.message);

    // An ephemeral container added later is evaluated too.
    let debug = json!({ "spec": { "ephemeralContainers": [{ "name": "debug", "image": "registry.invalid/dbg:1",
        "securityContext": { "seccompProfile": { "type": "Unconfined" } } }] } });
    ctx.api::<Pod>()
        .patch_subresource(
            "ephemeralcontainers",
            "confined",
            &PatchParams::default(),
            &Patch::Strategic(&debug),
        )
        .await
        .expect("add ephemeral container");
    let with_debug = status_of(&ctx, "confined", |s| {
        s.status.as_ref().is_some_and(|s| s.containers.len() == 2)
    })
    .await;
    assert_eq!(
        decided(&with_debug, "debug"),
        (ProfileType::Unconfined, ProfileSource::ContainerField)
    );
    assert_eq!(summary(&with_debug), (PodProfile::Mixed, "1/2".into()));

    operator.stop().await;
}

#[tokio::test]
async fn kubectl_shows_statuses_with_columns_categories_and_labels() {
    let ctx = support::context("ctl-kubectl").await;
    let operator = Operator::for_namespace(&ctx).await;
    let node = unique_name("kubectl-node");
    create_pod(&ctx, json!({ "metadata": { "name": "good" }, "spec": { "nodeName": node,
        "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } }, "containers": [container("app", json!({}))] } }))
    .await;
    let bad = create_pod(
        &ctx,
        json!({ "metadata": { "name": "bad" }, "spec": {
        "containers": [container("app", json!({}))] } }),
    )
    .await;
    current_status(&ctx, "good").await;
    current_status(&ctx, "bad").await;

    // The contract's fields as a script reads them: the pod's UID, the counts as numbers, the
    // kubelet default (the test operator's flag: off), every container's kind, a plain
    // `Container` included.
    let fields = ctx.kubectl(&[
        "get",
        "sst",
        "bad",
        "-n",
        &ctx.ns,
        "-o",
        "jsonpath={.spec.podUID} {.status.confinedContainers} {.status.totalContainers} \
         {.status.kubeletSeccompDefault} {.status.containers[*].kind}",
    ]);
    assert_eq!(
        fields.trim(),
        format!("{} 0 1 false Container", bad.uid().expect("uid"))
    );

    let table = ctx.kubectl(&["get", "seccompstatus", "-n", &ctx.ns]);
    let header: Vec<&str> = table.lines().next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "PROFILE", "CONFINED", "SOURCE", "SCC", "VERDICT", "ACTION", "AGE"
        ],
        "{table}"
    );
    let row = |name: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .expect("row")
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(&row("good")[1..4], ["RuntimeDefault", "1/1", "PodField"]);
    assert_eq!(&row("bad")[1..4], ["Unconfined", "0/1", "None"]);

    let wide = ctx.kubectl(&["get", "sst", "-n", &ctx.ns, "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().expect("header").split_whitespace().collect();
    assert_eq!(
        &header[header.len() - 3..],
        ["NODE", "STRENGTH", "RUNTIME"],
        "{wide}"
    );
    // A runtime's default profile is an allow list; no profile at all is the weakest there is.
    assert!(
        wide.lines()
            .any(|l| l.starts_with("good") && l.contains(&node) && l.contains("AllowList")),
        "{wide}"
    );
    assert!(
        wide.lines()
            .any(|l| l.starts_with("bad") && l.trim_end().ends_with("Unconfined")),
        "{wide}"
    );

    let category = ctx.kubectl(&["get", "seccomp", "-n", &ctx.ns, "-o", "name"]);
    let mut names: Vec<&str> = category.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "seccompstatus.seccomp.sentinel.dev/bad",
            "seccompstatus.seccomp.sentinel.dev/good"
        ]
    );

    let selected = ctx.kubectl(&[
        "get",
        "seccompstatus",
        "-A",
        "-l",
        "seccomp.sentinel.dev/profile=Unconfined",
        "-o",
        "custom-columns=NS:.metadata.namespace,NAME:.metadata.name",
        "--no-headers",
    ]);
    let ours: Vec<&str> = selected.lines().filter(|l| l.starts_with(&ctx.ns)).collect();
    assert_eq!(ours.len(), 1, "{selected}");
    assert!(ours[0].ends_with("bad"), "{selected}");
    operator.stop().await;
}

/// The paths of the fields with fields of their own, from `kubectl explain <resource> --recursive`
/// (two spaces of indent per level), except `metadata`, which the API server describes.
fn object_paths(resource: &str, recursive: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut objects = vec![resource.to_string()];
    let fields = recursive
        .lines()
        .skip_while(|l| !l.starts_with("FIELDS:"))
        .skip(1);
    for line in fields {
        let Some((name, kind)) = line.trim_start().split_once('\t') else {
            continue; // an `enum:` line
        };
        let depth = (line.len() - line.trim_start().len()) / 2;
        stack.truncate(depth.saturating_sub(1));
        stack.push(name.to_string());
        if kind.starts_with("<Object>") || kind.starts_with("<[]Object>") {
            objects.push(format!("{resource}.{}", stack.join(".")));
        }
    }
    objects.retain(|p| !p.starts_with(&format!("{resource}.metadata")));
    objects
}

#[tokio::test]
async fn kubectl_explain_describes_every_field_of_both_kinds() {
    let cluster = support::cluster();
    for resource in ["seccompstatus", "seccomppolicy"] {
        // kubectl explain reads the OpenAPI document, which publishes a new CRD a little after it
        // is established.
        let recursive = wait_for(&format!("kubectl explain {resource}"), TIMEOUT, || async {
            cluster.try_kubectl(&["explain", resource, "--recursive"]).ok()
        })
        .await;
        let objects = object_paths(resource, &recursive);
        // status, its containers, their profile, the runtime report and its lists, conditions...
        assert!(
            objects.len() >= 8,
            "{resource}: objects {objects:?} in\n{recursive}"
        );
        let mut undescribed = Vec::new();
        for path in &objects {
            let explained = cluster.kubectl(&["explain", path]);
            let mut field = "";
            for line in explained.lines().skip_while(|l| !l.starts_with("FIELDS:")) {
                if line.starts_with("  ") && !line.starts_with("   ") && line.contains('\t') {
                    field = line.trim().split('\t').next().unwrap_or_default();
                } else if line.contains("<no description>") {
                    undescribed.push(format!("{path}: {field}"));
                }
            }
        }
        assert!(
            undescribed.is_empty(),
            "kubectl explain shows no description for {undescribed:#?}"
        );
    }
}

#[tokio::test]
async fn a_deleted_pod_takes_its_status_with_it_and_a_recreated_one_gets_a_new_status() {
    let ctx = support::context("ctl-lifecycle").await;
    let operator = Operator::for_namespace(&ctx).await;
    let spec = |profile: &str| {
        json!({ "metadata": { "name": "app" }, "spec": {
        "securityContext": { "seccompProfile": { "type": profile } }, "containers": [container("app", json!({}))] } })
    };
    let first = create_pod(&ctx, spec("RuntimeDefault")).await;
    current_status(&ctx, "app").await;

    // Recreate with the same name but another UID, while the operator is stopped, so the old
    // status is still there when it starts again.
    operator.stop().await;
    let pods: Api<Pod> = ctx.api();
    pods.delete("app", &DeleteParams::default())
        .await
        .expect("delete pod");
    let second = create_pod(&ctx, spec("Unconfined")).await;
    assert_ne!(first.uid(), second.uid());
    let operator = Operator::for_namespace(&ctx).await;
    let corrected = status_of(&ctx, "app", |s| {
        s.owner_references()
            .iter()
            .any(|o| Some(&o.uid) == second.uid().as_ref())
    })
    .await;
    assert_eq!(summary(&corrected), (PodProfile::Unconfined, "0/1".into()));
    assert_eq!(corrected.owner_references().len(), 1, "the old owner is gone");

    // Deleting the pod lets the garbage collector delete its status.
    pods.delete("app", &DeleteParams::default())
        .await
        .expect("delete pod");
    let statuses: Api<SeccompStatus> = ctx.api();
    wait_for("the garbage collector to remove the status", TIMEOUT, || async {
        statuses.get_opt("app").await.ok()?.is_none().then_some(())
    })
    .await;
    operator.stop().await;
}

#[tokio::test]
async fn a_pod_outliving_its_status_in_a_namespace_being_deleted_is_no_failure() {
    use std::sync::atomic::Ordering::Relaxed;
    let ctx = support::context("ctl-ns-deleted").await;
    let operator = Operator::for_namespace(&ctx).await;
    // A finalizer keeps the pod past its namespace's deletion, as a grace period does.
    create_pod(
        &ctx,
        json!({ "metadata": { "name": "held", "finalizers": ["seccomp.sentinel.dev/test-hold"] },
        "spec": { "containers": [container("app", json!({}))] } }),
    )
    .await;
    current_status(&ctx, "held").await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(ctx.client.clone());
    namespaces
        .delete(&ctx.ns, &DeleteParams::background())
        .await
        .expect("delete the namespace");
    let pods: Api<Pod> = ctx.api();
    wait_for("the namespace controller to delete the pod", TIMEOUT, || async {
        pods.get("held")
            .await
            .ok()?
            .metadata
            .deletion_timestamp
            .map(|_| ())
    })
    .await;
    // Kubernetes 1.33 and later delete a namespace's pods before the rest; an earlier namespace
    // controller deletes the status alongside, as this does by hand.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = &operator.ctx.stats;
    let (errors, writes, passes) = (
        stats.errors.load(Relaxed),
        stats.status_writes.load(Relaxed),
        stats.reconciles.load(Relaxed),
    );
    let statuses: Api<SeccompStatus> = ctx.api();
    statuses
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete the status");
    wait_for("a pass over the pod whose status went", TIMEOUT, || async {
        (stats.reconciles.load(Relaxed) > passes).then_some(())
    })
    .await;
    // Room for the retries a failed pass would make (0.5 s, then 1 s).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stats.errors.load(Relaxed),
        errors,
        "a create the API server refuses in a terminating namespace is not a failure to retry"
    );
    assert_eq!(stats.status_writes.load(Relaxed), writes);
    assert!(statuses.get_opt("held").await.expect("get").is_none());

    pods.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
    )
    .await
    .expect("let the pod go");
    wait_for("the namespace to go", TIMEOUT, || async {
        namespaces.get_opt(&ctx.ns).await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(stats.errors.load(Relaxed), errors);
    operator.stop().await;
}

fn resource_versions(list: &[SeccompStatus]) -> BTreeMap<String, String> {
    list.iter()
        .map(|s| (s.name_any(), s.resource_version().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn nothing_is_written_after_a_restart_or_for_pod_status_updates() {
    let ctx = support::context("ctl-writes").await;
    let operator = Operator::for_namespace(&ctx).await;
    for i in 0..5 {
        create_pod(&ctx, json!({ "metadata": { "name": format!("p{i}") }, "spec": {
            "containers": [container("app", json!({})), container("side", json!({ "seccompProfile": { "type": "RuntimeDefault" } }))] } }))
        .await;
    }
    for i in 0..5 {
        current_status(&ctx, &format!("p{i}")).await;
    }
    let statuses: Api<SeccompStatus> = ctx.api();
    let before = resource_versions(&statuses.list(&ListParams::default()).await.expect("list").items);
    assert_eq!(before.len(), 5);
    operator.stop().await;

    // A restart with nothing changed: every pod is reconciled, nothing is written.
    let operator = Operator::for_namespace(&ctx).await;
    wait_for("the first pass after the restart", TIMEOUT, || async {
        (operator.reconciles() >= 5).then_some(())
    })
    .await;

    // Status-only updates of the pods (what kubelets do all day) write nothing either.
    let pods: Api<Pod> = ctx.api();
    for i in 0..5 {
        let status = json!({ "status": { "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }] } });
        pods.patch_status(&format!("p{i}"), &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("pod status");
    }
    // A change that matters is written: the marker that the watch has caught up.
    create_pod(
        &ctx,
        json!({ "metadata": { "name": "marker" }, "spec": { "containers": [container("app", json!({}))] } }),
    )
    .await;
    current_status(&ctx, "marker").await;

    let after = resource_versions(&statuses.list(&ListParams::default()).await.expect("list").items);
    for (name, version) in &before {
        assert_eq!(after.get(name), Some(version), "{name} was rewritten");
    }
    assert_eq!(
        operator.writes(),
        1,
        "only the marker's SeccompStatus was written, in one write"
    );
    operator.stop().await;
}

#[tokio::test]
async fn openshift_scc_defaults_are_attributed() {
    let ctx = support::context("ctl-openshift").await;
    // The test cluster serves the SCC API but runs no SCC admission: told to trust the annotation,
    // as it would on OpenShift (where `auto` trusts it).
    let mut config = support::namespace_config(&ctx);
    config.trust_scc_annotation = seccomp_sentinel::controller::config::TrustScc::True;
    let operator = Operator::start(ctx.client.clone(), config).await;
    create_pod(&ctx, json!({ "metadata": { "name": "restricted", "annotations": { "openshift.io/scc": "restricted-v2" } },
        "spec": { "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } }, "containers": [container("app", json!({}))] } }))
    .await;
    create_pod(
        &ctx,
        json!({ "metadata": { "name": "privileged", "annotations": { "openshift.io/scc": "privileged" } },
        "spec": { "containers": [container("app", json!({}))] } }),
    )
    .await;
    create_pod(&ctx, json!({ "metadata": { "name": "own-choice", "annotations": { "openshift.io/scc": "restricted-v2" } },
        "spec": { "securityContext": { "seccompProfile": { "type": "Localhost", "localhostProfile": "x.json" } }, "containers": [container("app", json!({}))] } }))
    .await;

    let restricted = current_status(&ctx, "restricted").await;
    assert_eq!(
        decided(&restricted, "app"),
        (ProfileType::RuntimeDefault, ProfileSource::SccDefault)
    );
    let s = restricted.status.as_ref().expect("status");
    assert!(s.containers[0].source_inferred);
    assert_eq!(s.scc.as_deref(), Some("restricted-v2"));
    assert_eq!(
        decided(&current_status(&ctx, "privileged").await, "app"),
        (ProfileType::Unconfined, ProfileSource::None)
    );
    assert_eq!(
        decided(&current_status(&ctx, "own-choice").await, "app"),
        (ProfileType::Localhost, ProfileSource::PodField)
    );

    let table = ctx.kubectl(&[
        "get",
        "seccompstatus",
        "restricted",
        "-n",
        &ctx.ns,
        "--no-headers",
    ]);
    assert!(
        table.contains("SCCDefault") && table.contains("restricted-v2"),
        "{table}"
    );
    operator.stop().await;
}

#[tokio::test]
async fn node_facts_decide_and_their_changes_reevaluate_exactly_the_pods_on_the_node() {
    let ctx = support::context("ctl-nodes").await;
    let (old_node, new_node) = (unique_name("kubelet-124"), unique_name("kubelet-133"));
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    for (name, version) in [(&old_node, "v1.24.17"), (&new_node, "v1.33.2")] {
        let node: Node =
            // Unschedulable: hand-made Nodes have no kubelet (and the scheduler of the real-node tests
            // need not consider them).
            serde_json::from_value(json!({ "metadata": { "name": name, "labels": { "pool": "plain" } },
                "spec": { "unschedulable": true } }))
            .expect("node");
        nodes
            .create(&PostParams::default(), &node)
            .await
            .expect("create node");
        let status = json!({ "status": { "nodeInfo": { "kubeletVersion": version, "operatingSystem": "linux",
            "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "containerd://1.7.0", "kernelVersion": "",
            "kubeProxyVersion": "", "machineID": "", "osImage": "", "systemUUID": "" } } });
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("node status");
    }
    let mut config = support::namespace_config(&ctx);
    config.kubelet_seccomp_default_nodes = Some("pool=hardened".parse().expect("selector"));
    let operator = Operator::start(ctx.client.clone(), config).await;

    let annotated = |name: &str, node: &str| {
        json!({ "metadata": { "name": name,
        "annotations": { "seccomp.security.alpha.kubernetes.io/pod": "runtime/default" } },
        "spec": { "nodeName": node, "containers": [container("app", json!({}))] } })
    };
    create_pod(&ctx, annotated("on-old", &old_node)).await;
    create_pod(&ctx, annotated("on-new", &new_node)).await;
    assert_eq!(
        decided(&current_status(&ctx, "on-old").await, "app"),
        (ProfileType::RuntimeDefault, ProfileSource::PodAnnotation)
    );
    let on_new = current_status(&ctx, "on-new").await;
    assert_eq!(
        decided(&on_new, "app"),
        (ProfileType::Unconfined, ProfileSource::None)
    );
    assert!(
        on_new.status.as_ref().expect("status").containers[0]
            .warnings
            .iter()
            .any(|w| w.contains("ignored"))
    );
    let old_version = current_status(&ctx, "on-old").await.resource_version();

    // The new node joins the hardened pool: its kubelet defaults to RuntimeDefault now.
    let label = json!({ "metadata": { "labels": { "pool": "hardened" } } });
    nodes
        .patch(&new_node, &PatchParams::default(), &Patch::Merge(&label))
        .await
        .expect("label node");
    let on_new = status_of(&ctx, "on-new", |s| {
        s.status
            .as_ref()
            .is_some_and(|s| s.profile == PodProfile::RuntimeDefault)
    })
    .await;
    assert_eq!(
        decided(&on_new, "app"),
        (ProfileType::RuntimeDefault, ProfileSource::KubeletDefault)
    );
    assert_eq!(
        on_new.status.as_ref().expect("status").kubelet_seccomp_default,
        seccomp_sentinel::api::KubeletSeccompDefault::True
    );
    assert_eq!(
        current_status(&ctx, "on-old").await.resource_version(),
        old_version,
        "the other node's pod is untouched"
    );

    // The Node deleted while its pod still runs (a reclaimed instance; the pod garbage collector
    // deletes such pods 40 s later): its kubelet's seccompDefault is still known, and the status
    // is not rewritten with the configured guess (it was: Unconfined, "assumed off").
    let hardened_version = current_status(&ctx, "on-new").await.resource_version();
    nodes
        .delete(&new_node, &DeleteParams::default())
        .await
        .expect("delete node");
    for _ in 0..16 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = current_status(&ctx, "on-new").await;
        assert_eq!(
            (now.resource_version(), decided(&now, "app")),
            (
                hardened_version.clone(),
                (ProfileType::RuntimeDefault, ProfileSource::KubeletDefault)
            ),
            "rewritten after its Node was deleted: {:?}",
            now.status
        );
    }

    operator.stop().await;
    for node in [&old_node, &new_node] {
        let _ = nodes.delete(node, &DeleteParams::default()).await;
    }
}

#[tokio::test]
async fn odd_pods_get_a_status_and_do_not_disturb_others() {
    let ctx = support::context("ctl-odd").await;
    let operator = Operator::for_namespace(&ctx).await;
    let many: Vec<Value> = (0..200)
        .map(|i| {
            container(
                &format!("c{i}"),
                if i % 4 == 0 {
                    json!({ "seccompProfile": { "type": "RuntimeDefault" } })
                } else {
                    json!({})
                },
            )
        })
        .collect();
    create_pod(
        &ctx,
        json!({ "metadata": { "name": "two-hundred" }, "spec": { "containers": many } }),
    )
    .await;
    let long_name = format!("long-{}", "x".repeat(248));
    create_pod(&ctx, json!({ "metadata": { "name": long_name,
        "annotations": { "seccomp.security.alpha.kubernetes.io/pod": "localhost/profiles/a.json" } },
        "spec": { "containers": [container("app", json!({ "seccompProfile": { "type": "Localhost", "localhostProfile": "" } }))] } }))
    .await;
    create_pod(
        &ctx,
        json!({ "metadata": { "name": "plain" }, "spec": { "containers": [container("app", json!({}))] } }),
    )
    .await;
    // Each container's warning repeats the pod's annotation: both pods' statuses were larger
    // than the API server stores ("etcdserver: request is too large"), so they had none.
    let thousands: Vec<Value> = (0..8_000)
        .map(|i| {
            let profile = if i == 7_999 {
                json!({})
            } else {
                json!({ "seccompProfile": { "type": "RuntimeDefault" } })
            };
            container(&format!("c{i}"), profile)
        })
        .collect();
    let ignored = json!({ "seccomp.security.alpha.kubernetes.io/pod": "localhost/profiles/x.json" });
    create_pod(
        &ctx,
        json!({ "metadata": { "name": "thousands", "annotations": ignored }, "spec": { "containers": thousands } }),
    )
    .await;
    let long_annotation = format!("localhost/{}.json", "a/".repeat(120_000));
    let eight: Vec<Value> = (0..8).map(|i| container(&format!("c{i}"), json!({}))).collect();
    create_pod(
        &ctx,
        json!({ "metadata": { "name": "long-annotation",
        "annotations": { "seccomp.security.alpha.kubernetes.io/pod": long_annotation } },
        "spec": { "containers": eight } }),
    )
    .await;

    let many = current_status(&ctx, "two-hundred").await;
    assert_eq!(summary(&many), (PodProfile::Mixed, "50/200".into()));
    let long = current_status(&ctx, &long_name).await;
    let warnings = &long.status.as_ref().expect("status").containers[0].warnings;
    assert!(
        warnings.iter().any(|w| w.contains("empty localhostProfile")),
        "{warnings:?}"
    );
    assert!(warnings.iter().any(|w| w.contains("annotation")), "{warnings:?}");
    assert_eq!(
        summary(&current_status(&ctx, "plain").await),
        (PodProfile::Unconfined, "0/1".into())
    );
    let thousands = current_status(&ctx, "thousands").await;
    assert_eq!(summary(&thousands), (PodProfile::Mixed, "7999/8000".into()));
    let listed = thousands.status.as_ref().expect("status");
    assert!(
        listed.unlisted_containers > 0
            && listed.containers.len() + listed.unlisted_containers as usize == 8_000
    );
    assert!(
        listed.containers.iter().any(|c| c.name == "c7999" && !c.confined),
        "the unconfined one is listed"
    );
    let long = current_status(&ctx, "long-annotation").await;
    let long = long.status.as_ref().expect("status");
    assert_eq!((long.containers.len(), long.unlisted_containers), (8, 0));
    assert!(long.containers[7].warnings[0].contains(&format!("({} bytes)", long_annotation.len())));
    assert_eq!(
        operator
            .ctx
            .stats
            .errors
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    operator.stop().await;
}

/// A first sync of many pods closes the watch of SeccompStatuses (its events would only echo the
/// controller's own writes) and lists them again once written: what someone else changed
/// meanwhile is still repaired, and the watch works again afterwards. A restart with every
/// status stored does not close it.
#[tokio::test]
async fn a_large_first_sync_closes_the_status_watch_and_repairs_what_changed_meanwhile() {
    use futures::StreamExt;
    use std::sync::atomic::Ordering::Relaxed;
    let ctx = support::context("ctl-first-sync").await;
    let count = seccomp_sentinel::controller::FIRST_SYNC_PAUSE_ABOVE + 44;
    let pods: Api<Pod> = ctx.api();
    futures::stream::iter(0..count)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let pod: Pod = serde_json::from_value(json!({ "metadata": { "name": format!("p{i:03}") },
                    "spec": { "containers": [container("app", json!({}))] } }))
                .expect("pod json");
                pods.create(&PostParams::default(), &pod)
                    .await
                    .expect("create pod");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    // Slow enough writes that the sync is still going when a status is deleted under it.
    let mut config = support::namespace_config(&ctx);
    config.max_writes_per_second = std::num::NonZeroU32::new(30).expect("rate");
    config.write_burst = std::num::NonZeroU32::new(10).expect("burst");
    let operator = Operator::start(ctx.client.clone(), config.clone()).await;
    let statuses: Api<SeccompStatus> = ctx.api();
    let written = wait_for("the first 20 statuses", TIMEOUT, || async {
        let list = statuses.list(&ListParams::default()).await.ok()?;
        (list.items.len() >= 20).then_some(list.items)
    })
    .await;
    assert_eq!(
        operator.ctx.stats.first_sync_watch_pauses.load(Relaxed),
        1,
        "the watch was closed for the first sync"
    );
    let victim = written[0].name_any();
    statuses
        .delete(&victim, &DeleteParams::default())
        .await
        .expect("delete a status during the sync");
    assert!(
        (operator.writes() as usize) < count,
        "the sync was still going when the status was deleted ({} writes)",
        operator.writes()
    );

    wait_for(
        "every pod's status, the deleted one again",
        Duration::from_secs(120),
        || async {
            let list = statuses.list(&ListParams::default()).await.ok()?;
            (list.items.len() == count).then_some(())
        },
    )
    .await;
    current_status(&ctx, &victim).await;
    // The watch is open again: a status deleted now comes back at once.
    let again = statuses.get("p001").await.expect("p001").uid();
    statuses
        .delete("p001", &DeleteParams::default())
        .await
        .expect("delete after the sync");
    wait_for("p001 written again", TIMEOUT, || async {
        let status = statuses.get_opt("p001").await.ok()??;
        (status.uid() != again && status.status.is_some()).then_some(())
    })
    .await;
    operator.stop().await;

    // A restart with every status stored keeps the watch open and writes nothing.
    let operator = Operator::start(ctx.client.clone(), config).await;
    wait_for("the first pass after the restart", TIMEOUT, || async {
        (operator.reconciles() as usize >= count).then_some(())
    })
    .await;
    assert_eq!(operator.ctx.stats.first_sync_watch_pauses.load(Relaxed), 0);
    assert_eq!(operator.writes(), 0, "nothing was written after the restart");
    operator.stop().await;
}

/// `make run` with `KUBECONFIG` pointing at a reachable cluster (e2e/run.sh, as a user runs it):
/// installs the CRDs there and runs the operator against it.
#[tokio::test]
async fn make_run_runs_the_operator_on_the_cluster_of_kubeconfig() {
    let ctx = support::context("ctl-make-run").await;
    create_pod(
        &ctx,
        json!({ "metadata": { "name": "web", "namespace": ctx.ns },
                "spec": { "containers": [container("app", json!({ "seccompProfile": { "type": "RuntimeDefault" } }))] } }),
    )
    .await;
    let root = sentinel_testenv::repository_root();
    let log = tempfile::NamedTempFile::new().expect("temporary file");
    let output = || std::fs::read_to_string(log.path()).unwrap_or_default();
    // stdout and stderr both append: neither writes over the other.
    let appending = || {
        std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .expect("log")
    };
    let mut run = std::process::Command::new("bash")
        .arg(root.join("e2e/run.sh"))
        // Flags after `--` in `make run ARGS=...`: this test's namespace only, no fixed ports.
        .args([
            "--namespaces",
            &ctx.ns,
            "--health-addr=127.0.0.1:0",
            "--metrics-addr=127.0.0.1:0",
        ])
        .arg(format!("--policy-selector={}={}", support::POLICY_LABEL, ctx.ns))
        .env("KUBECONFIG", ctx.cluster.kubeconfig())
        .env("SENTINEL_BIN", env!("CARGO_BIN_EXE_seccomp-sentinel"))
        .stdin(std::process::Stdio::null())
        .stdout(appending())
        .stderr(appending())
        .spawn()
        .expect("bash e2e/run.sh");
    let statuses: Api<SeccompStatus> = ctx.api();
    let started = std::time::Instant::now();
    let status = loop {
        if let Ok(Some(exit)) = run.try_wait() {
            panic!("make run stopped ({exit}):\n{}", output());
        }
        if let Ok(Some(status)) = statuses.get_opt("web").await
            && status.status.is_some()
        {
            break status;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "no SeccompStatus from make run within {TIMEOUT:?}:\n{}",
            output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = run.kill();
    let _ = run.wait();
    assert_eq!(summary(&status), (PodProfile::RuntimeDefault, "1/1".to_string()));
    assert!(
        output().contains("run: using the cluster of KUBECONFIG="),
        "{}",
        output()
    );
}

/// The quick start's table in README.md, for the Pending samples of
/// `config/samples/demo-workloads.yaml`, is what the operator writes for them with the settings
/// of `make run` (e2e/run.sh trusts the samples' `openshift.io/scc`, standing in for SCC
/// admission), as the real kubectl shows it.
#[tokio::test]
async fn the_readme_quick_start_table_is_what_the_demo_samples_get() {
    let ctx = support::context("ctl-readme-demo").await;
    let root = sentinel_testenv::repository_root();
    let samples =
        std::fs::read_to_string(root.join("config/samples/demo-workloads.yaml")).expect("demo samples");
    let pods: Vec<String> = samples
        .split("\n---\n")
        .filter(|document| document.contains("kind: Pod"))
        .map(|document| document.replace("namespace: seccomp-demo\n", &format!("namespace: {}\n", ctx.ns)))
        .collect();
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), pods.join("\n---\n")).expect("samples written");
    let path = file.path().to_str().expect("UTF-8 path");
    ctx.kubectl(&["apply", "-f", path]);

    let mut config = support::namespace_config(&ctx);
    config.kubelet_seccomp_default =
        seccomp_sentinel::controller::ControllerConfig::default().kubelet_seccomp_default;
    let run_script = std::fs::read_to_string(root.join("e2e/run.sh")).expect("e2e/run.sh");
    assert!(
        run_script.contains("export SENTINEL_TRUST_SCC_ANNOTATION=${SENTINEL_TRUST_SCC_ANNOTATION:-true}"),
        "make run (e2e/run.sh) trusts the samples' SCC annotations, as this test does"
    );
    config.trust_scc_annotation = seccomp_sentinel::controller::config::TrustScc::True;
    let operator = Operator::start(ctx.client.clone(), config).await;
    let names: Vec<String> = ctx
        .kubectl(&["get", "pods", "-n", &ctx.ns, "-o", "name"])
        .lines()
        .map(|line| line.trim_start_matches("pod/").to_string())
        .collect();
    assert_eq!(names.len(), pods.len(), "every sample pod was created");
    for name in &names {
        current_status(&ctx, name).await;
    }

    let shown = table_rows(&ctx.kubectl(&["get", "seccompstatus", "-n", &ctx.ns, "-o", "wide"]));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let block = readme
        .split("```\n")
        .find(|block| block.starts_with("NAMESPACE ") && block.contains("seccomp-demo "))
        .expect("README.md has the quick start's table");
    let documented: BTreeMap<String, BTreeMap<String, String>> = table_rows(block)
        .into_iter()
        .filter(|(_, row)| row.get("NAMESPACE").map(String::as_str) == Some("seccomp-demo"))
        .collect();
    assert_eq!(
        documented.keys().collect::<Vec<_>>(),
        shown.keys().collect::<Vec<_>>(),
        "README.md's seccomp-demo rows name the demo's pods"
    );
    for (name, row) in &shown {
        for (column, value) in row {
            if column == "AGE" {
                continue;
            }
            assert_eq!(
                documented[name].get(column),
                Some(value),
                "README.md's quick start table, pod {name}, column {column}"
            );
        }
    }
    operator.stop().await;
}

/// The rows of a table as kubectl prints it, keyed by NAME: each cell is the text below its
/// column's header, up to where the next column starts (empty cells leave only spaces).
fn table_rows(table: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut lines = table.lines().filter(|line| !line.trim().is_empty());
    let header = lines.next().expect("a header line");
    let mut starts: Vec<(usize, &str)> = Vec::new();
    let mut previous = ' ';
    for (at, c) in header.char_indices() {
        if c != ' ' && previous == ' ' {
            let name = header[at..].split(' ').next().unwrap_or_default();
            starts.push((at, name));
        }
        previous = c;
    }
    lines
        .map(|line| {
            let row: BTreeMap<String, String> = starts
                .iter()
                .enumerate()
                .map(|(i, (start, column))| {
                    let end = starts
                        .get(i + 1)
                        .map_or(line.len(), |(next, _)| (*next).min(line.len()));
                    let cell = line.get((*start).min(line.len())..end).unwrap_or_default();
                    (column.to_string(), cell.trim().to_string())
                })
                .collect();
            (row["NAME"].clone(), row)
        })
        .collect()
}
