//! Proof that the test control plane is a real one: workload controllers, garbage collection,
//! disruption budgets and evictions, server-side apply, CRD validation rules, and the OpenShift
//! SecurityContextConstraints API.
use std::time::Duration;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, ReplicaSet},
        core::v1::{ConfigMap, Pod},
        policy::v1::{Eviction, PodDisruptionBudget},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, ResourceExt,
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
        PostParams,
    },
};
use serde_json::json;

use crate::support::{self, TestContext, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);

fn pod_template(app: &str) -> serde_json::Value {
    json!({
        "metadata": { "labels": { "app": app } },
        "spec": { "containers": [{ "name": "main", "image": "registry.invalid/app:1" }] }
    })
}

async fn pods_with_label(ctx: &TestContext, app: &str) -> Vec<Pod> {
    let pods: Api<Pod> = ctx.api();
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list pods")
        .items
}

#[tokio::test]
async fn a_deployment_produces_a_replicaset_and_pods() {
    let ctx = support::context("smoke-deployment").await;
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": { "replicas": 2, "selector": { "matchLabels": { "app": "web" } }, "template": pod_template("web") }
    }))
    .expect("deployment");
    ctx.api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");

    let replicasets: Api<ReplicaSet> = ctx.api();
    let rs = wait_for("a ReplicaSet owned by the Deployment", TIMEOUT, || async {
        replicasets
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|rs| {
                rs.owner_references()
                    .iter()
                    .any(|o| o.kind == "Deployment" && o.name == "web")
            })
    })
    .await;
    let pods = wait_for("two pods owned by the ReplicaSet", TIMEOUT, || async {
        let pods = pods_with_label(&ctx, "web").await;
        let owned = pods
            .iter()
            .filter(|p| p.owner_references().iter().any(|o| o.name == rs.name_any()))
            .count();
        (owned == 2).then_some(pods)
    })
    .await;
    assert_eq!(pods.len(), 2);
}

#[tokio::test]
async fn deleting_a_replicaset_garbage_collects_its_pods() {
    let ctx = support::context("smoke-gc").await;
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": { "name": "worker" },
        "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "worker" } }, "template": pod_template("worker") }
    }))
    .expect("replicaset");
    let replicasets: Api<ReplicaSet> = ctx.api();
    replicasets
        .create(&PostParams::default(), &rs)
        .await
        .expect("create replicaset");
    wait_for("three pods", TIMEOUT, || async {
        (pods_with_label(&ctx, "worker").await.len() == 3).then_some(())
    })
    .await;

    replicasets
        .delete("worker", &DeleteParams::background())
        .await
        .expect("delete replicaset");
    wait_for("the garbage collector to delete the pods", TIMEOUT, || async {
        pods_with_label(&ctx, "worker").await.is_empty().then_some(())
    })
    .await;
}

/// Creates a pod and reports it Running and Ready, as a kubelet would.
async fn ready_pod(ctx: &TestContext, name: &str, app: &str) {
    let pods: Api<Pod> = ctx.api();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "app": app } },
        "spec": { "nodeName": "smoke-node", "containers": [{ "name": "main", "image": "registry.invalid/db:1" }] }
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let status = json!({ "status": {
        "phase": "Running",
        "conditions": [{ "type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z" }]
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("mark pod ready");
}

async fn evict(ctx: &TestContext, name: &str) -> Result<(), kube::Error> {
    let eviction: Eviction = serde_json::from_value(json!({
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": { "name": name, "namespace": ctx.ns }
    }))
    .expect("eviction");
    // A client without the default retry, which would otherwise retry the budget's 429 for minutes.
    let pods: Api<Pod> = Api::namespaced(ctx.cluster.client_without_retry().await, &ctx.ns);
    pods.create_subresource::<Eviction, kube::core::Status>(
        "eviction",
        name,
        &PostParams::default(),
        &eviction,
    )
    .await
    .map(|_| ())
}

async fn disruptions_allowed(ctx: &TestContext, expected: i32) {
    let budgets: Api<PodDisruptionBudget> = ctx.api();
    wait_for(&format!("disruptionsAllowed == {expected}"), TIMEOUT, || async {
        let pdb = budgets.get("db").await.ok()?;
        let status = pdb.status?;
        (status.observed_generation == pdb.metadata.generation && status.disruptions_allowed == expected)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_disruption_budget_is_computed_and_guards_evictions() {
    let ctx = support::context("smoke-pdb").await;
    ready_pod(&ctx, "db-0", "db").await;
    ready_pod(&ctx, "db-1", "db").await;
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": { "name": "db" },
        "spec": { "minAvailable": 2, "selector": { "matchLabels": { "app": "db" } } }
    }))
    .expect("pdb");
    let budgets: Api<PodDisruptionBudget> = ctx.api();
    budgets
        .create(&PostParams::default(), &pdb)
        .await
        .expect("create pdb");
    disruptions_allowed(&ctx, 0).await;

    match evict(&ctx, "db-0").await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 429, "{status:?}"),
        other => panic!("eviction must be refused by the budget, got {other:?}"),
    }

    let relax = json!({ "spec": { "minAvailable": 1 } });
    budgets
        .patch("db", &PatchParams::default(), &Patch::Merge(&relax))
        .await
        .expect("relax pdb");
    disruptions_allowed(&ctx, 1).await;
    evict(&ctx, "db-0").await.expect("eviction allowed by the budget");
    let pods: Api<Pod> = ctx.api();
    let evicted = pods.get_opt("db-0").await.expect("get pod");
    assert!(
        evicted.is_none_or(|p| p.metadata.deletion_timestamp.is_some()),
        "an evicted pod is deleted or terminating"
    );
}

#[tokio::test]
async fn server_side_apply_round_trips_with_a_field_manager() {
    let ctx = support::context("smoke-ssa").await;
    let maps: Api<ConfigMap> = ctx.api();
    let apply = |value: &str| json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "settings" }, "data": { "mode": value } });
    let params = PatchParams::apply("smoke-manager").force();
    let first = maps
        .patch("settings", &params, &Patch::Apply(apply("a")))
        .await
        .expect("first apply");
    let managers: Vec<_> = first
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, vec!["smoke-manager".to_string()]);

    let second = maps
        .patch("settings", &params, &Patch::Apply(apply("b")))
        .await
        .expect("second apply");
    assert_eq!(
        second
            .data
            .as_ref()
            .and_then(|d| d.get("mode"))
            .map(String::as_str),
        Some("b")
    );
    assert_ne!(first.resource_version(), second.resource_version());

    // The same content again is a no-op for the server: the resourceVersion stays.
    let third = maps
        .patch("settings", &params, &Patch::Apply(apply("b")))
        .await
        .expect("third apply");
    assert_eq!(second.resource_version(), third.resource_version());
}

#[tokio::test]
async fn a_crd_validation_rule_rejects_an_invalid_object() {
    let ctx = support::context("smoke-cel").await;
    let group = format!("{}.smoke.sentinel.dev", ctx.ns);
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": { "name": format!("gadgets.{group}") },
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": { "plural": "gadgets", "singular": "gadget", "kind": "Gadget" },
            "versions": [{ "name": "v1", "served": true, "storage": true, "schema": { "openAPIV3Schema": {
                "type": "object",
                "properties": { "spec": {
                    "type": "object",
                    "properties": { "min": { "type": "integer" }, "max": { "type": "integer" } },
                    "x-kubernetes-validations": [{ "rule": "self.min <= self.max", "message": "min must not exceed max" }]
                }}
            }}}]
        }
    }))
    .expect("crd");
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create crd");
    ctx.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        &format!("crd/gadgets.{group}"),
    ]);

    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, "v1", "Gadget"));
    let gadgets: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ctx.ns, &resource);
    let gadget = |min: i64, max: i64| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": format!("{group}/v1"), "kind": "Gadget",
            "metadata": { "name": format!("g{min}{max}") }, "spec": { "min": min, "max": max }
        }))
        .expect("gadget")
    };
    gadgets
        .create(&PostParams::default(), &gadget(1, 2))
        .await
        .expect("a valid gadget is accepted");
    match gadgets.create(&PostParams::default(), &gadget(3, 2)).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status.message.contains("min must not exceed max"),
                "{}",
                status.message
            );
        }
        other => panic!("an invalid gadget must be rejected, got {other:?}"),
    }
    crds.delete(&format!("gadgets.{group}"), &DeleteParams::default())
        .await
        .expect("delete crd");
}

#[tokio::test]
async fn security_context_constraints_can_be_created_and_listed() {
    let ctx = support::context("smoke-scc").await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("security.openshift.io", "v1", "SecurityContextConstraints"),
        "securitycontextconstraints",
    );
    let sccs: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &resource);
    let name = ctx.ns.clone();
    let scc: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "security.openshift.io/v1", "kind": "SecurityContextConstraints",
        "metadata": { "name": name },
        "priority": 5,
        "allowPrivilegedContainer": false, "allowHostDirVolumePlugin": false, "allowHostIPC": false,
        "allowHostNetwork": false, "allowHostPID": false, "allowHostPorts": false, "readOnlyRootFilesystem": true,
        "allowedCapabilities": null, "defaultAddCapabilities": null, "requiredDropCapabilities": ["ALL"],
        "seccompProfiles": ["localhost/profiles/audit.json"],
        "runAsUser": { "type": "MustRunAsNonRoot" }, "seLinuxContext": { "type": "MustRunAs" },
        "volumes": ["configMap", "secret"]
    }))
    .expect("scc");
    sccs.create(&PostParams::default(), &scc)
        .await
        .expect("create scc");

    let listed = sccs.list(&ListParams::default()).await.expect("list sccs").items;
    let names: Vec<String> = listed.iter().map(|s| s.name_any()).collect();
    for expected in [
        "restricted-v2",
        "restricted",
        "nonroot-v2",
        "hostnetwork-v2",
        "anyuid",
        "privileged",
        &name,
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    let restricted_v2 = listed
        .iter()
        .find(|s| s.name_any() == "restricted-v2")
        .expect("restricted-v2");
    assert_eq!(restricted_v2.data["seccompProfiles"], json!(["runtime/default"]));
    let anyuid = listed.iter().find(|s| s.name_any() == "anyuid").expect("anyuid");
    assert_eq!(anyuid.data["priority"], json!(10));
    let table = ctx.kubectl(&["get", "securitycontextconstraints", &name]);
    assert!(table.contains(&name), "{table}");
    sccs.delete(&name, &DeleteParams::default())
        .await
        .expect("delete scc");
}
