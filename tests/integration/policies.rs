//! SeccompPolicies on the real control plane (with kube-controller-manager: ReplicaSets recreate
//! evicted pods, disruption budgets are computed): verdicts, labels, evictions and their safety.
use std::{collections::BTreeMap, time::Duration};

use futures::StreamExt;
use k8s_openapi::{
    api::{apps::v1::ReplicaSet, core::v1::Pod, policy::v1::PodDisruptionBudget},
    apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use seccomp_sentinel::{
    api::{PolicyAction, SeccompPolicy, SeccompStatus, Verdict},
    controller::LABEL_MANAGER,
};
use serde_json::{Value, json};

use crate::support::{
    self, AdmissionRule, Operator, POLICY_LABEL, TestContext, wait_for, wait_for_explained,
};

const TIMEOUT: Duration = Duration::from_secs(90);

/// Creates a policy that selects only this test's namespace and only this test's operator sees.
pub(crate) async fn create_policy(ctx: &TestContext, suffix: &str, mut spec: Value) -> String {
    let name = format!("{}-{suffix}", ctx.ns);
    spec["namespaceSelector"] = json!({ "matchLabels": { "kubernetes.io/metadata.name": ctx.ns } });
    let policy: SeccompPolicy = serde_json::from_value(json!({
        "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompPolicy",
        "metadata": { "name": name, "labels": { POLICY_LABEL: ctx.ns } },
        "spec": spec,
    }))
    .expect("policy");
    Api::<SeccompPolicy>::all(ctx.client.clone())
        .create(&PostParams::default(), &policy)
        .await
        .expect("create policy");
    name
}

pub(crate) async fn delete_policy(ctx: &TestContext, name: &str) {
    let _ = Api::<SeccompPolicy>::all(ctx.client.clone())
        .delete(name, &DeleteParams::default())
        .await;
}

pub(crate) fn evict_quickly(extra: Value) -> Value {
    let mut eviction = json!({ "minUnconfinedAge": "0s", "workloadCooldown": "1s", "maxPerMinute": 10 });
    if let (Some(e), Some(x)) = (eviction.as_object_mut(), extra.as_object()) {
        e.extend(x.clone());
    }
    json!({ "action": "Evict", "eviction": eviction })
}

pub(crate) fn pod_json(name: &str, app: &str, seccomp: Option<&str>, annotations: Value) -> Value {
    let mut spec = json!({ "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] });
    if let Some(profile) = seccomp {
        spec["securityContext"] = json!({ "seccompProfile": { "type": profile } });
    }
    json!({ "metadata": { "name": name, "labels": { "app": app }, "annotations": annotations }, "spec": spec })
}

/// What the operator has written on a pod: its labels and its label manager's entry. Not the
/// pod's resourceVersion: the scheduler rewrites an unschedulable pod's status whenever a node
/// comes or goes, which other tests do at any time.
async fn operator_marks(
    pods: &Api<Pod>,
    name: &str,
) -> (BTreeMap<String, String>, Option<ManagedFieldsEntry>) {
    let pod = pods.get(name).await.expect("pod");
    let entry = pod
        .managed_fields()
        .iter()
        .find(|e| e.manager.as_deref() == Some(LABEL_MANAGER))
        .cloned();
    (pod.labels().clone(), entry)
}

/// Writes a pod's status as the scheduler does when it tries an unschedulable pod again.
async fn scheduler_writes(pods: &Api<Pod>, name: &str) {
    let condition = json!({ "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": format!("0/{} nodes are available", support::unique_name("n")) });
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": { "conditions": [condition] } })),
    )
    .await
    .expect("the scheduler's status write");
}

pub(crate) async fn create_pod(ctx: &TestContext, pod: Value) {
    let pod: Pod = serde_json::from_value(pod).expect("pod");
    ctx.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
}

/// An existing pod adopted by a ReplicaSet whose template may differ from it (as after someone
/// edited the template): the situation where restarting the pod changes its profile.
pub(crate) async fn adopted_pod(
    ctx: &TestContext,
    app: &str,
    pod_profile: Option<&str>,
    template_profile: Option<&str>,
    annotations: Value,
) {
    create_pod(
        ctx,
        pod_json(&format!("{app}-old"), app, pod_profile, annotations.clone()),
    )
    .await;
    await_controller_cache(ctx, app).await;
    let template = pod_json("", app, template_profile, annotations);
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": { "name": app },
        "spec": { "replicas": 1, "selector": { "matchLabels": { "app": app } },
                  "template": { "metadata": template["metadata"].clone(), "spec": template["spec"].clone() } }
    }))
    .expect("replicaset");
    ctx.api::<ReplicaSet>()
        .create(&PostParams::default(), &rs)
        .await
        .expect("create replicaset");
    let pods: Api<Pod> = ctx.api();
    wait_for("the ReplicaSet to adopt the pod", TIMEOUT, || async {
        let pod = pods.get(&format!("{app}-old")).await.ok()?;
        pod.owner_references()
            .iter()
            .any(|o| o.kind == "ReplicaSet" && o.name == app)
            .then_some(())
    })
    .await;
}

/// A pod of the ReplicaSet `app` whose template carries the SCC annotation but no profile: the
/// operator (trusting the annotation) expects restricted-v2 to default it, as SCC admission would
/// on OpenShift. This control plane has no SCC admission, so a replacement comes back unconfined:
/// the prediction was wrong, which the loop guard must catch.
pub(crate) async fn adopted_pod_whose_replacements_come_back_unconfined(ctx: &TestContext, app: &str) {
    adopted_pod(
        ctx,
        app,
        None,
        None,
        json!({ "openshift.io/scc": "restricted-v2" }),
    )
    .await;
}

/// Waits until kube-controller-manager's pod cache holds the pods labelled `app: {app}`. The
/// ReplicaSet controller adopts an existing pod only if its cache holds the pod when it first
/// syncs the ReplicaSet; otherwise it creates a replica of its own, adopts the pod later and
/// deletes one of the two, either one (seen once in about ten runs on a loaded machine). A
/// PodDisruptionBudget's `expectedPods` is counted from the same cache, so the budget is the
/// witness; it is deleted before anything is evicted.
pub(crate) async fn await_controller_cache(ctx: &TestContext, app: &str) {
    let budgets: Api<PodDisruptionBudget> = ctx.api();
    let name = format!("{app}-cached");
    let budget: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "minAvailable": 0, "selector": { "matchLabels": { "app": app } } }
    }))
    .expect("budget");
    budgets
        .create(&PostParams::default(), &budget)
        .await
        .expect("create the witness budget");
    wait_for("the controller manager to see the pod", TIMEOUT, || async {
        let budget = budgets.get(&name).await.ok()?;
        (budget.status?.expected_pods >= 1).then_some(())
    })
    .await;
    budgets
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete the witness budget");
}

/// The result of `policy` in the SeccompStatus of `pod`, once it satisfies `done`.
pub(crate) async fn policy_result(
    ctx: &TestContext,
    pod: &str,
    policy: &str,
    done: impl Fn(&seccomp_sentinel::api::PolicyResult) -> bool,
) -> seccomp_sentinel::api::PolicyResult {
    let statuses: Api<SeccompStatus> = ctx.api();
    // What the status said last, for the message on a timeout.
    let last_seen = std::sync::Mutex::new(String::from("no SeccompStatus"));
    let remember = |seen: String| *last_seen.lock().unwrap_or_else(|e| e.into_inner()) = seen;
    support::wait_for_explained(
        &format!("policy {policy} on {pod}"),
        TIMEOUT,
        || async {
            let status = statuses.get_opt(pod).await.ok()??.status?;
            remember(format!("the status's results: {:?}", status.policies));
            status.policies.into_iter().find(|r| r.name == policy && done(r))
        },
        || last_seen.lock().unwrap_or_else(|e| e.into_inner()).clone(),
    )
    .await
}

async fn policy_status(
    ctx: &TestContext,
    name: &str,
    done: impl Fn(&SeccompPolicy) -> bool,
) -> SeccompPolicy {
    let policies: Api<SeccompPolicy> = Api::all(ctx.client.clone());
    wait_for(&format!("status of policy {name}"), TIMEOUT, || async {
        let p = policies.get(name).await.ok()?;
        done(&p).then_some(p)
    })
    .await
}

fn condition(p: &SeccompPolicy, type_: &str) -> Option<(String, String)> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

pub(crate) async fn pods_of(ctx: &TestContext, app: &str) -> Vec<Pod> {
    ctx.api::<Pod>()
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list")
        .items
}

pub(crate) fn events(ctx: &TestContext, reason: &str) -> String {
    ctx.kubectl(&[
        "get",
        "events",
        "-n",
        &ctx.ns,
        "--field-selector",
        &format!("reason={reason}"),
        "-o",
        "name",
    ])
}

#[tokio::test]
async fn a_label_policy_labels_violators_reports_and_cleans_up_when_deleted() {
    let ctx = support::context("pol-label").await;
    create_pod(&ctx, pod_json("open", "web", None, json!({}))).await;
    create_pod(&ctx, pod_json("tight", "web", Some("RuntimeDefault"), json!({}))).await;
    let operator = Operator::for_namespace(&ctx).await;
    let policy = create_policy(&ctx, "label", json!({ "action": "Label" })).await;

    let open = policy_result(&ctx, "open", &policy, |r| r.action == PolicyAction::Labeled).await;
    assert_eq!(
        (open.verdict, open.reason.as_str()),
        (Verdict::Violating, "Unconfined")
    );
    let tight = policy_result(&ctx, "tight", &policy, |_| true).await;
    assert_eq!(
        (tight.verdict, tight.action),
        (Verdict::Compliant, PolicyAction::None)
    );

    let pods: Api<Pod> = ctx.api();
    let labelled = wait_for("labels on the pods", TIMEOUT, || async {
        let open = pods.get("open").await.ok()?;
        let tight = pods.get("tight").await.ok()?;
        let ok = open
            .labels()
            .get("seccomp.sentinel.dev/violation")
            .map(String::as_str)
            == Some("true")
            && tight
                .labels()
                .get("seccomp.sentinel.dev/profile")
                .map(String::as_str)
                == Some("RuntimeDefault");
        ok.then_some((open, tight))
    })
    .await;
    assert_eq!(
        labelled
            .0
            .labels()
            .get("seccomp.sentinel.dev/profile")
            .map(String::as_str),
        Some("Unconfined")
    );
    assert!(!labelled.1.labels().contains_key("seccomp.sentinel.dev/violation"));
    let selected = ctx.kubectl(&[
        "get",
        "pods",
        "-n",
        &ctx.ns,
        "-l",
        "seccomp.sentinel.dev/profile=Unconfined",
        "-o",
        "name",
    ]);
    assert_eq!(selected.trim(), "pod/open");

    // The policy reports counts and health, and kubectl shows them.
    let reported = policy_status(&ctx, &policy, |p| {
        p.status
            .as_ref()
            .is_some_and(|s| s.matched_pods == 2 && s.labeled_pods == 1)
    })
    .await;
    let status = reported.status.as_ref().expect("status");
    assert_eq!(
        (status.compliant_pods, status.violating_pods, status.exempt_pods),
        (1, 1, 0)
    );
    assert_eq!(status.observed_generation, reported.metadata.generation);
    assert_eq!(
        condition(&reported, "Ready"),
        Some(("True".into(), "Valid".into()))
    );
    assert_eq!(
        condition(&reported, "Stalled"),
        Some(("False".into(), "Valid".into()))
    );
    let table = ctx.kubectl(&["get", "seccomppolicy", &policy]);
    let header: Vec<&str> = table.lines().next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "ACTION",
            "MATCHED",
            "VIOLATING",
            "EVICTED",
            "READY",
            "AGE"
        ],
        "{table}"
    );
    let row: Vec<&str> = table.lines().nth(1).expect("row").split_whitespace().collect();
    assert_eq!(&row[1..6], ["Label", "2", "1", "0", "True"], "{table}");
    let sst = ctx.kubectl(&["get", "seccompstatus", "open", "-n", &ctx.ns, "--no-headers"]);
    assert!(sst.contains("Violating") && sst.contains("Labeled"), "{sst}");
    assert!(
        events(&ctx, "Labeled").contains("event"),
        "a Labeled event on the pod"
    );
    // Recorded under the controller's field manager (it was `unknown`: a create that names none
    // is recorded under the first word of a User-Agent, and kube sends none).
    let managers = ctx.kubectl(&[
        "get",
        "events",
        "-n",
        &ctx.ns,
        "--field-selector",
        "reason=Labeled",
        "--show-managed-fields",
        "-o",
        "jsonpath={.items[*].metadata.managedFields[*].manager}",
    ]);
    assert_eq!(
        managers.split_whitespace().collect::<Vec<_>>(),
        ["seccomp-sentinel"],
        "the Labeled event's field managers"
    );

    // A restart with nothing changed: no label, status or policy write, no Event again.
    operator.stop().await;
    let statuses: Api<SeccompStatus> = ctx.api();
    let versions = || async {
        let mut versions = Vec::new();
        for name in ["open", "tight"] {
            versions.push((
                operator_marks(&pods, name).await,
                statuses.get(name).await.expect("status").resource_version(),
            ));
        }
        versions
    };
    let (before, labeled_events) = (versions().await, events(&ctx, "Labeled"));
    let operator = Operator::for_namespace(&ctx).await;
    // Pod status churn from others (here the scheduler's) is no reason to write either.
    for name in ["open", "tight"] {
        scheduler_writes(&pods, name).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        versions().await,
        before,
        "pods or statuses written after a restart"
    );
    assert_eq!((operator.writes(), operator.label_writes()), (0, 0));
    assert_eq!(events(&ctx, "Labeled"), labeled_events, "Labeled announced again");

    // Deleting the policy takes its labels and its verdicts away.
    delete_policy(&ctx, &policy).await;
    wait_for("the labels to go", TIMEOUT, || async {
        let open = pods.get("open").await.ok()?;
        let tight = pods.get("tight").await.ok()?;
        let gone = |p: &Pod| !p.labels().keys().any(|k| k.starts_with("seccomp.sentinel.dev/"));
        (gone(&open) && gone(&tight)).then_some(())
    })
    .await;
    wait_for("the verdicts to go", TIMEOUT, || async {
        let s = statuses.get("open").await.ok()?.status?;
        (s.policies.is_empty() && s.verdict.is_none()).then_some(())
    })
    .await;
    operator.stop().await;
}

/// The operator's label write goes to the pod it was decided for, and to no other: a pod
/// recreated under the same name meanwhile (a StatefulSet's) keeps its own labels, and a pod
/// deleted meanwhile is no error.
#[tokio::test]
async fn labels_reach_only_the_pod_they_were_decided_for() {
    use seccomp_sentinel::controller::{PodLabels, write_pod_labels};
    let ctx = support::context("pol-label-uid").await;
    let violating: std::collections::BTreeMap<String, String> = [
        (
            "seccomp.sentinel.dev/profile".to_string(),
            "Unconfined".to_string(),
        ),
        ("seccomp.sentinel.dev/violation".to_string(), "true".to_string()),
    ]
    .into();
    let pods: Api<Pod> = ctx.api();
    create_pod(&ctx, pod_json("web-0", "web", None, json!({}))).await;
    let first = pods.get("web-0").await.expect("first pod").uid().expect("uid");

    // The pod it was decided for gets the labels.
    let written = write_pod_labels(&ctx.client, &ctx.ns, "web-0", &first, &violating).await;
    assert_eq!(written.expect("label the pod"), PodLabels::Written);
    let labels = pods.get("web-0").await.expect("pod").labels().clone();
    assert_eq!(
        labels.get("seccomp.sentinel.dev/violation").map(String::as_str),
        Some("true")
    );

    // Replaced by a confined pod of the same name: the write decided for the first is not made.
    pods.delete("web-0", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete the first pod");
    wait_for("the first pod to go", TIMEOUT, || async {
        pods.get_opt("web-0").await.ok()?.is_none().then_some(())
    })
    .await;
    create_pod(&ctx, pod_json("web-0", "web", Some("RuntimeDefault"), json!({}))).await;
    let second = pods.get("web-0").await.expect("second pod").uid().expect("uid");
    assert_ne!(first, second);
    let written = write_pod_labels(&ctx.client, &ctx.ns, "web-0", &first, &violating).await;
    assert_eq!(written.expect("no error for a replaced pod"), PodLabels::PodGone);
    let labels = pods.get("web-0").await.expect("pod").labels().clone();
    assert!(
        !labels.contains_key("seccomp.sentinel.dev/violation"),
        "the replacement got the first pod's labels: {labels:?}"
    );

    // Deleted and not replaced: nothing to label, and no error.
    pods.delete("web-0", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete the second pod");
    wait_for("the second pod to go", TIMEOUT, || async {
        pods.get_opt("web-0").await.ok()?.is_none().then_some(())
    })
    .await;
    let written = write_pod_labels(&ctx.client, &ctx.ns, "web-0", &second, &violating).await;
    assert_eq!(written.expect("no error for a deleted pod"), PodLabels::PodGone);
    assert!(pods.get_opt("web-0").await.expect("get").is_none());
}

/// The operator's two label keys are its own: a `violation=true` that came with the pod (copied
/// into its template) or that someone else set later goes from a compliant pod, and every such
/// label goes, whoever set it, once no policy labels the pod.
#[tokio::test]
async fn labels_someone_else_put_on_the_operators_keys_are_corrected() {
    const PROFILE: &str = "seccomp.sentinel.dev/profile";
    const VIOLATION: &str = "seccomp.sentinel.dev/violation";
    let ctx = support::context("pol-label-foreign").await;
    let mut good = pod_json("good", "web", Some("RuntimeDefault"), json!({}));
    good["metadata"]["labels"][VIOLATION] = json!("true");
    good["metadata"]["labels"][PROFILE] = json!("Unconfined");
    create_pod(&ctx, good).await;
    create_pod(&ctx, pod_json("bad", "web", None, json!({}))).await;
    let operator = Operator::for_namespace(&ctx).await;
    let policy = create_policy(&ctx, "label", json!({ "action": "Label" })).await;
    let pods: Api<Pod> = ctx.api();
    let ours = |pod: &Pod| {
        (
            pod.labels().get(PROFILE).cloned(),
            pod.labels().get(VIOLATION).cloned(),
        )
    };
    let labels_become = |name: &'static str, want: (Option<&'static str>, Option<&'static str>)| {
        let pods = pods.clone();
        async move {
            let want = (want.0.map(String::from), want.1.map(String::from));
            wait_for(&format!("{name}'s labels to be {want:?}"), TIMEOUT, || async {
                let pod = pods.get(name).await.ok()?;
                (ours(&pod) == want).then_some(())
            })
            .await;
        }
    };
    labels_become("good", (Some("RuntimeDefault"), None)).await;
    labels_become("bad", (Some("Unconfined"), Some("true"))).await;

    // Someone else marks the compliant pod as violating, and co-owns the mark on the other.
    let mark = |name: &'static str| {
        let pods = pods.clone();
        async move {
            let body = json!({ "apiVersion": "v1", "kind": "Pod",
                "metadata": { "name": name, "labels": { VIOLATION: "true" } } });
            pods.patch(
                name,
                &PatchParams::apply("someone-else").force(),
                &Patch::Apply(&body),
            )
            .await
            .expect("someone else's label");
        }
    };
    mark("good").await;
    mark("bad").await;
    labels_become("good", (Some("RuntimeDefault"), None)).await;

    // No policy labels them any more: the operator's keys go from both, whoever set them.
    delete_policy(&ctx, &policy).await;
    labels_become("good", (None, None)).await;
    labels_become("bad", (None, None)).await;
    operator.stop().await;
}

/// A ReplicaSet whose selector reads one of the operator's labels: changing the label on its pod
/// would take the pod from it, and it would start another, whose label would be changed in turn,
/// without end (before this was guarded: 62 pods within 10 s). Its pods keep their labels; the
/// verdict says why they are not labelled.
#[tokio::test]
async fn pods_whose_workload_selects_by_the_operators_labels_keep_them() {
    const PROFILE: &str = "seccomp.sentinel.dev/profile";
    let ctx = support::context("pol-label-selector").await;
    let operator = Operator::for_namespace(&ctx).await;
    let policy = create_policy(&ctx, "label", json!({ "action": "Label" })).await;
    // Its pods say RuntimeDefault, and run unconfined.
    let labels = json!({ "app": "churn", PROFILE: "RuntimeDefault" });
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": { "name": "churn" },
        "spec": { "replicas": 1, "selector": { "matchLabels": labels },
                  "template": { "metadata": { "labels": labels },
                                "spec": { "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] } } }
    }))
    .expect("replicaset");
    ctx.api::<ReplicaSet>()
        .create(&PostParams::default(), &rs)
        .await
        .expect("create replicaset");
    let pod = wait_for("the ReplicaSet's pod", TIMEOUT, || async {
        pods_of(&ctx, "churn").await.into_iter().next()
    })
    .await;
    let name = pod.name_any();
    let result = policy_result(&ctx, &name, &policy, |r| r.message.contains("NotLabelled")).await;
    assert_eq!(
        (result.verdict, result.action),
        (Verdict::Violating, PolicyAction::None)
    );
    // Long enough for a label change, an orphaned pod and its replacement (they took under 1 s).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let pods = pods_of(&ctx, "churn").await;
    let seen: Vec<(String, Option<String>)> = pods
        .iter()
        .map(|p| (p.name_any(), p.labels().get(PROFILE).cloned()))
        .collect();
    assert_eq!(
        seen,
        [(name, Some("RuntimeDefault".to_string()))],
        "the ReplicaSet's pods and their profile labels"
    );
    operator.stop().await;
}

#[tokio::test]
async fn a_pod_whose_template_is_confined_is_evicted_and_comes_back_confined() {
    let ctx = support::context("pol-evict").await;
    adopted_pod(&ctx, "web", None, Some("RuntimeDefault"), json!({})).await;
    let operator = Operator::for_namespace(&ctx).await;
    let policy = create_policy(&ctx, "evict", evict_quickly(json!({}))).await;

    wait_for("the old pod to be evicted and replaced", TIMEOUT, || async {
        let pods = pods_of(&ctx, "web").await;
        (pods.len() == 1 && pods[0].name_any() != "web-old").then_some(())
    })
    .await;
    let replacement = pods_of(&ctx, "web").await.remove(0).name_any();
    let result = policy_result(&ctx, &replacement, &policy, |_| true).await;
    assert_eq!(
        (result.verdict, result.action),
        (Verdict::Compliant, PolicyAction::None)
    );
    let reported = policy_status(&ctx, &policy, |p| {
        p.status.as_ref().is_some_and(|s| s.evicted_pods == 1)
    })
    .await;
    assert_eq!(reported.status.as_ref().expect("status").violating_pods, 0);
    assert!(events(&ctx, "Evicted").contains("event"));
    assert_eq!(operator.evictions(), 1);
    delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

#[tokio::test]
async fn a_pod_whose_template_is_unconfined_is_not_evicted() {
    let ctx = support::context("pol-template").await;
    adopted_pod(&ctx, "api", None, None, json!({})).await;
    let operator = Operator::for_namespace(&ctx).await;
    // The pod is younger than the age limit: evicting would not help, and that is said at once,
    // not in ten minutes.
    let policy = create_policy(&ctx, "evict", evict_quickly(json!({ "minUnconfinedAge": "10m" }))).await;

    let result = policy_result(&ctx, "api-old", &policy, |r| {
        r.action == PolicyAction::EvictionSkipped
    })
    .await;
    assert_eq!(events(&ctx, "EvictionPending"), "", "no wait announced");
    assert!(
        result
            .message
            .contains("the template itself is unconfined: fix the workload"),
        "{}",
        result.message
    );
    assert!(
        ctx.api::<Pod>().get_opt("api-old").await.expect("get").is_some(),
        "not evicted"
    );
    assert!(events(&ctx, "EvictionSkipped").contains("event"));

    // A restart with nothing changed: the warm-up's undecided action is not written over the
    // decided one, nothing is written once it is decided again, and nothing is announced again.
    operator.stop().await;
    let statuses = ctx.api::<SeccompStatus>();
    let pods = ctx.api::<Pod>();
    let versions = || async {
        (
            statuses.get("api-old").await.expect("status").resource_version(),
            operator_marks(&pods, "api-old").await,
        )
    };
    let (before, skipped_events) = (versions().await, events(&ctx, "EvictionSkipped"));
    let operator = Operator::for_namespace(&ctx).await;
    scheduler_writes(&pods, "api-old").await;
    // Longer than the warm-up's look again (5 s): the pod has had its pass with actions decided.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(versions().await, before, "status or pod written after a restart");
    assert_eq!(operator.writes(), 0);
    assert_eq!(
        events(&ctx, "EvictionSkipped"),
        skipped_events,
        "EvictionSkipped announced again"
    );
    delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

/// `kubectl debug --profile=sysadmin` adds a privileged (so unconfined) ephemeral container to a
/// confined pod of a confined workload. No template has ephemeral containers, so the replacement
/// would "come back confined": before, the pod was evicted in its next pass (its age was long
/// past `minUnconfinedAge`), ending the debugging session it was added for.
#[tokio::test]
async fn a_pod_being_debugged_is_labelled_not_evicted() {
    let ctx = support::context("pol-debug").await;
    adopted_pod(
        &ctx,
        "dbg",
        Some("RuntimeDefault"),
        Some("RuntimeDefault"),
        json!({}),
    )
    .await;
    let operator = Operator::for_namespace(&ctx).await;
    let policy = create_policy(&ctx, "evict", evict_quickly(json!({}))).await;
    policy_result(&ctx, "dbg-old", &policy, |r| r.verdict == Verdict::Compliant).await;
    let uid = ctx
        .api::<Pod>()
        .get("dbg-old")
        .await
        .expect("pod")
        .uid()
        .expect("uid");

    // What `kubectl debug --profile=sysadmin` does to the pod (it returns once the container is
    // in the spec; nothing attaches).
    let debug = |container: &str| {
        ctx.cluster.try_kubectl(&[
            "debug",
            "-n",
            &ctx.ns,
            "dbg-old",
            "--image=registry.invalid/debug:1",
            "--profile=sysadmin",
            &format!("--container={container}"),
        ])
    };
    debug("debugger").expect("kubectl debug");
    let result = policy_result(&ctx, "dbg-old", &policy, |r| r.action != PolicyAction::None).await;
    assert_eq!(
        (result.verdict, result.action),
        (Verdict::Violating, PolicyAction::EvictionSkipped),
        "{}",
        result.message
    );
    assert!(
        result.message.contains("debugger (Unconfined)")
            && result
                .message
                .contains("EphemeralContainers: only ephemeral containers"),
        "{}",
        result.message
    );
    // Labelled as violating, as any violator of an Evict policy is.
    let labelled = ctx.kubectl(&[
        "get",
        "pods",
        "-n",
        &ctx.ns,
        "-l",
        "seccomp.sentinel.dev/violation=true",
        "-o",
        "name",
    ]);
    assert_eq!(labelled.trim(), "pod/dbg-old");
    // Longer than a pass or two: still the same pod, never evicted.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pod = ctx.api::<Pod>().get_opt("dbg-old").await.expect("get");
    assert_eq!(
        pod.and_then(|p| p.uid()),
        Some(uid),
        "the debugged pod was evicted"
    );
    assert_eq!(operator.evictions(), 0);
    assert!(events(&ctx, "EvictionSkipped").contains("event"));

    // What the README points to for keeping such containers out: admission. Pod Security
    // checks the ephemeral containers kubectl debug adds.
    ctx.kubectl(&[
        "label",
        "namespace",
        &ctx.ns,
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
    let refused = debug("debugger-2").expect_err("Pod Security admits a privileged debug container");
    assert!(refused.to_string().contains("privileged"), "{refused}");
    delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

#[tokio::test]
async fn a_disruption_budget_blocks_the_eviction_until_it_allows_it() {
    let ctx = support::context("pol-pdb").await;
    adopted_pod(&ctx, "db", None, Some("RuntimeDefault"), json!({})).await;
    let ready = json!({ "status": { "phase": "Running",
        "conditions": [{ "type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z" }] } });
    ctx.api::<Pod>()
        .patch_status("db-old", &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .expect("ready");
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": { "name": "db" }, "spec": { "minAvailable": 1, "selector": { "matchLabels": { "app": "db" } } }
    }))
    .expect("pdb");
    let budgets: Api<PodDisruptionBudget> = ctx.api();
    budgets
        .create(&PostParams::default(), &pdb)
        .await
        .expect("create pdb");
    wait_for("the budget to be computed", TIMEOUT, || async {
        let status = budgets.get("db").await.ok()?.status?;
        (status.current_healthy == 1 && status.disruptions_allowed == 0).then_some(())
    })
    .await;

    let operator = Operator::for_namespace(&ctx).await;
    let policy = create_policy(&ctx, "evict", evict_quickly(json!({}))).await;
    let blocked = policy_result(&ctx, "db-old", &policy, |r| {
        r.action == PolicyAction::EvictionBlocked
    })
    .await;
    assert!(
        blocked.message.contains("PodDisruptionBudget"),
        "{}",
        blocked.message
    );
    assert!(ctx.api::<Pod>().get_opt("db-old").await.expect("get").is_some());
    policy_status(&ctx, &policy, |p| {
        p.status.as_ref().is_some_and(|s| s.blocked_evictions == 1)
    })
    .await;

    // A restart while the budget still refuses: tried again and refused again, but the same
    // blocked eviction is not counted twice, nor its status written again; and the refusal is
    // learnt from a dry run, so the policy is not written either (it was twice per look: the
    // reservation written ahead of the eviction, then taken back).
    operator.stop().await;
    let statuses = ctx.api::<SeccompStatus>();
    let before = statuses.get("db-old").await.expect("status").resource_version();
    let policies = Api::<SeccompPolicy>::all(ctx.client.clone());
    let policy_before = policies.get(&policy).await.expect("policy").resource_version();
    let operator = Operator::for_namespace(&ctx).await;
    // Past the warm-up's look again (5 s), so the eviction was tried.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let after = policies.get(&policy).await.expect("policy");
    assert_eq!(after.resource_version(), policy_before, "the policy was written");
    assert_eq!(after.status.map(|s| s.blocked_evictions), Some(1));
    assert_eq!(
        statuses.get("db-old").await.expect("status").resource_version(),
        before
    );

    let relax = json!({ "spec": { "minAvailable": 0 } });
    budgets
        .patch("db", &PatchParams::default(), &Patch::Merge(&relax))
        .await
        .expect("relax pdb");
    wait_for("the eviction once the budget allows it", TIMEOUT, || async {
        let pod = ctx.api::<Pod>().get_opt("db-old").await.ok()?;
        pod.is_none_or(|p| p.metadata.deletion_timestamp.is_some())
            .then_some(())
    })
    .await;
    // Evicted by the real request, not by the dry run asked before it (that would leave the real
    // one a 404, and the eviction uncounted).
    wait_for("the eviction counted", TIMEOUT, || async {
        let policy = policies.get_opt(&policy).await.ok()??;
        (policy.status?.evicted_pods == 1).then_some(())
    })
    .await;
    delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

#[tokio::test]
async fn bare_pods_are_never_evicted_and_a_dry_run_evicts_nothing() {
    let ctx = support::context("pol-safe").await;
    create_pod(&ctx, pod_json("lonely", "lonely", None, json!({}))).await;
    adopted_pod(&ctx, "batch", None, Some("RuntimeDefault"), json!({})).await;
    let operator = Operator::for_namespace(&ctx).await;
    let evict = create_policy(
        &ctx,
        "evict",
        json!({
        "podSelector": { "matchLabels": { "app": "lonely" } },
        "action": "Evict", "eviction": { "minUnconfinedAge": "0s" } }),
    )
    .await;
    let dry = create_policy(
        &ctx,
        "dry",
        json!({
        "podSelector": { "matchLabels": { "app": "batch" } },
        "action": "Evict", "eviction": { "minUnconfinedAge": "0s", "dryRun": true } }),
    )
    .await;

    let bare = policy_result(&ctx, "lonely", &evict, |r| {
        r.action == PolicyAction::EvictionSkipped
    })
    .await;
    assert!(
        bare.message
            .contains("BarePod: no controller would recreate this pod"),
        "{}",
        bare.message
    );
    let would = policy_result(&ctx, "batch-old", &dry, |r| r.action == PolicyAction::WouldEvict).await;
    assert_eq!(would.verdict, Verdict::Violating);
    // Give a real eviction every chance to happen, then check that none did.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pods: Api<Pod> = ctx.api();
    for name in ["lonely", "batch-old"] {
        let pod = pods.get(name).await.expect("still there");
        assert!(pod.metadata.deletion_timestamp.is_none(), "{name} was evicted");
    }
    assert_eq!(operator.evictions(), 0);
    assert!(events(&ctx, "WouldEvict").contains("event"));
    delete_policy(&ctx, &evict).await;
    delete_policy(&ctx, &dry).await;
    operator.stop().await;
}

/// The operator starts on pods that its Label and Evict policies already judge: each status is
/// written once, with its decided action (each violating pod was written twice, undecided before
/// the warm-up and decided after it).
#[tokio::test]
async fn a_first_sync_under_label_and_evict_policies_writes_each_status_once() {
    let ctx = support::context("pol-once").await;
    let open: Vec<String> = (0..20).map(|i| format!("open-{i}")).collect();
    let safe: Vec<String> = (0..5).map(|i| format!("safe-{i}")).collect();
    for name in &open {
        create_pod(&ctx, pod_json(name, "open", None, json!({}))).await;
    }
    for name in &safe {
        create_pod(&ctx, pod_json(name, "safe", Some("RuntimeDefault"), json!({}))).await;
    }
    adopted_pod(&ctx, "batch", None, Some("RuntimeDefault"), json!({})).await;
    let label = create_policy(
        &ctx,
        "label",
        json!({ "podSelector": { "matchExpressions": [{ "key": "app", "operator": "In", "values": ["open", "safe"] }] },
        "action": "Label" }),
    )
    .await;
    let dry = create_policy(
        &ctx,
        "dry",
        json!({ "podSelector": { "matchLabels": { "app": "batch" } },
        "action": "Evict", "eviction": { "minUnconfinedAge": "0s", "dryRun": true } }),
    )
    .await;
    let operator = Operator::for_namespace(&ctx).await;

    for name in &open {
        policy_result(&ctx, name, &label, |r| r.action == PolicyAction::Labeled).await;
    }
    policy_result(&ctx, "batch-old", &dry, |r| r.action == PolicyAction::WouldEvict).await;
    for name in &safe {
        policy_result(&ctx, name, &label, |r| r.verdict == Verdict::Compliant).await;
    }
    // Past the warm-up's look again (5 s): a second write would have been made by now.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let statuses: Api<SeccompStatus> = ctx.api();
    let written_more_than_once: Vec<String> = statuses
        .list(&ListParams::default())
        .await
        .expect("list statuses")
        .items
        .iter()
        // No status subresource: each write that changes the object counts a generation.
        .filter(|s| s.metadata.generation != Some(1))
        .map(|s| format!("{} (generation {:?})", s.name_any(), s.metadata.generation))
        .collect();
    assert!(
        written_more_than_once.is_empty(),
        "written more than once: {written_more_than_once:?}"
    );
    assert_eq!(operator.writes(), 26, "one write per pod");
    assert_eq!(
        operator.label_writes(),
        26,
        "one label write per pod (Evict policies label too)"
    );
    delete_policy(&ctx, &label).await;
    delete_policy(&ctx, &dry).await;
    operator.stop().await;
}

/// How many of the workloads' first pods (`<app>-old`) have a policy result whose message says
/// `text`.
async fn pods_whose_results_say(ctx: &TestContext, workloads: &[String], text: &str) -> usize {
    let statuses: Api<SeccompStatus> = ctx.api();
    let mut count = 0;
    for app in workloads {
        let status = statuses
            .get_opt(&format!("{app}-old"))
            .await
            .ok()
            .flatten()
            .and_then(|s| s.status);
        if status.is_some_and(|s| s.policies.iter().any(|r| r.message.contains(text))) {
            count += 1;
        }
    }
    count
}

#[tokio::test]
async fn evictions_respect_the_rate() {
    let ctx = support::context("pol-rate").await;
    let workloads: Vec<String> = (0..5).map(|i| format!("w{i}")).collect();
    for app in &workloads {
        adopted_pod(&ctx, app, None, Some("RuntimeDefault"), json!({})).await;
    }
    let operator = Operator::for_namespace(&ctx).await;
    let policy = create_policy(
        &ctx,
        "evict",
        json!({ "action": "Evict",
        "eviction": { "minUnconfinedAge": "0s", "maxPerMinute": 2, "workloadCooldown": "1s" } }),
    )
    .await;
    // Two go at once; the others wait for the rest of the minute.
    wait_for("two evictions and three rate-limited pods", TIMEOUT, || async {
        let pending = pods_whose_results_say(&ctx, &workloads, "RateLimited").await;
        (operator.evictions() == 2 && pending == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(operator.evictions(), 2, "no more within the minute");
    delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

/// Each policy's `maxPerMinute` alone would let a policy per team multiply the cluster's rate:
/// the operator bounds all policies together.
#[tokio::test]
async fn evictions_by_all_policies_together_respect_the_operators_bound() {
    let ctx = support::context("pol-rate-all").await;
    let workloads: Vec<String> = (0..5).map(|i| format!("w{i}")).collect();
    for app in &workloads {
        adopted_pod(&ctx, app, None, Some("RuntimeDefault"), json!({})).await;
    }
    let operator = Operator::start(
        ctx.client.clone(),
        seccomp_sentinel::controller::ControllerConfig {
            max_evictions_per_minute: std::num::NonZeroU32::new(2).expect("2"),
            ..support::namespace_config(&ctx)
        },
    )
    .await;
    let team = |apps: &[&str]| {
        let mut spec = evict_quickly(json!({}));
        spec["podSelector"] =
            json!({ "matchExpressions": [{ "key": "app", "operator": "In", "values": apps }] });
        spec
    };
    let first = create_policy(&ctx, "team-a", team(&["w0", "w1", "w2"])).await;
    let second = create_policy(&ctx, "team-b", team(&["w3", "w4"])).await;
    let explain = || format!("{} evictions", operator.evictions());
    let waiting = || async {
        let bounded = pods_whose_results_say(&ctx, &workloads, "by all policies").await;
        (operator.evictions() == 2 && bounded == 3).then_some(())
    };
    let what = "two evictions and three pods waiting for the operator's bound";
    support::wait_for_explained(what, TIMEOUT, waiting, explain).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(operator.evictions(), 2, "no more within the minute");
    delete_policy(&ctx, &first).await;
    delete_policy(&ctx, &second).await;
    operator.stop().await;
}

/// Refuses, in the test's namespace, what the operator's actions write: the violation label on a
/// pod, and every eviction (a cluster's own admission rules, a policy engine's webhook).
async fn refuse_the_operators_actions(ctx: &TestContext) -> AdmissionRule {
    let rules = json!([
        { "apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["pods"] },
        { "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods/eviction"] }]);
    let refusing = AdmissionRule::create(
        ctx,
        "refuses-actions",
        rules,
        "has(request.subResource) && request.subResource == 'eviction' ? false : !has(object.metadata.labels) || !('seccomp.sentinel.dev/violation' in object.metadata.labels)",
        "not on this cluster's pods",
    )
    .await;
    // The API server takes the policy in within a moment: until a marked pod is refused.
    create_pod(ctx, pod_json("probe", "probe", Some("RuntimeDefault"), json!({}))).await;
    let pods: Api<Pod> = ctx.api();
    let mark = json!({ "metadata": { "labels": { "seccomp.sentinel.dev/violation": "true" } } });
    wait_for("the admission policy to refuse a marked pod", TIMEOUT, || async {
        pods.patch("probe", &PatchParams::default(), &Patch::Merge(&mark))
            .await
            .is_err()
            .then_some(())
    })
    .await;
    refusing
}

/// What the API server refuses to the operator's actions does not keep a pod from its status:
/// before, each pass ended at the refused label write or eviction, so the pod had no status at
/// all and the policy did not count it.
#[tokio::test]
async fn actions_the_api_server_refuses_leave_the_status_written_and_say_why() {
    let ctx = support::context("pol-refused").await;
    adopted_pod(&ctx, "evictee", None, Some("RuntimeDefault"), json!({})).await;
    let refusing = refuse_the_operators_actions(&ctx).await;
    create_pod(&ctx, pod_json("marked", "marked", None, json!({}))).await;
    let operator = Operator::for_namespace(&ctx).await;
    let mut label = json!({ "action": "Label" });
    label["podSelector"] = json!({ "matchLabels": { "app": "marked" } });
    let label = create_policy(&ctx, "label", label).await;
    let mut evict = evict_quickly(json!({}));
    evict["podSelector"] = json!({ "matchLabels": { "app": "evictee" } });
    let evict = create_policy(&ctx, "evict", evict).await;

    let refused = policy_result(&ctx, "marked", &label, |r| r.message.contains("LabelRefused")).await;
    assert_eq!(
        (refused.verdict, refused.action),
        (Verdict::Violating, PolicyAction::None)
    );
    assert!(
        refused.message.contains("not on this cluster's pods") && refused.message.contains("LabelRefused"),
        "{}",
        refused.message
    );
    let blocked = policy_result(&ctx, "evictee-old", &evict, |r| {
        r.action == PolicyAction::EvictionBlocked
    })
    .await;
    assert!(
        blocked.message.contains("EvictionRefused") && blocked.message.contains("not on this cluster's pods"),
        "{}",
        blocked.message
    );
    assert_eq!(operator.evictions(), 0);
    let pods: Api<Pod> = ctx.api();
    let marked = pods.get("marked").await.expect("pod");
    assert!(!marked.labels().contains_key("seccomp.sentinel.dev/violation"));
    let counted = |s: &SeccompPolicy| {
        s.status
            .as_ref()
            .map(|st| (st.matched_pods, st.violating_pods, st.labeled_pods))
    };
    let policies: Api<SeccompPolicy> = Api::all(ctx.client.clone());
    wait_for(
        "the label policy to count the pod, unlabelled",
        TIMEOUT,
        || async { (counted(&policies.get(&label).await.ok()?)? == (1, 1, 0)).then_some(()) },
    )
    .await;

    delete_policy(&ctx, &label).await;
    delete_policy(&ctx, &evict).await;
    refusing.remove(&ctx).await;
    operator.stop().await;
}

/// A webhook on pod updates that does not answer (its service down, `failurePolicy: Fail`): each
/// label write fails with a 500 for as long as it is down. The status must not wait for it:
/// before, every pass ended at the failed write, so the pods under a Label policy had no status.
#[tokio::test]
async fn a_webhook_that_is_down_delays_the_labels_not_the_status() {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    let ctx = support::context("pol-webhook-down").await;
    let name = format!("{}-down", ctx.ns);
    // Nothing listens on port 1 of the loopback address: the API server cannot call it.
    let webhook: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": { "name": name },
        "webhooks": [{
            "name": "down.seccomp.sentinel.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "timeoutSeconds": 2,
            "clientConfig": { "url": "https://127.0.0.1:1/validate" },
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ctx.ns } },
            "rules": [{ "apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["pods"] }]
        }]
    }))
    .expect("webhook");
    let webhooks: Api<ValidatingWebhookConfiguration> = Api::all(ctx.client.clone());
    webhooks
        .create(&PostParams::default(), &webhook)
        .await
        .expect("create the webhook");
    create_pod(&ctx, pod_json("marked", "marked", None, json!({}))).await;
    let pods: Api<Pod> = ctx.api();
    let mark = json!({ "metadata": { "labels": { "probe": "1" } } });
    wait_for("the API server to call the webhook", TIMEOUT, || async {
        pods.patch("marked", &PatchParams::default(), &Patch::Merge(&mark))
            .await
            .is_err()
            .then_some(())
    })
    .await;
    let operator = Operator::for_namespace(&ctx).await;
    let label = create_policy(&ctx, "label", json!({ "action": "Label" })).await;

    let waiting = policy_result(&ctx, "marked", &label, |r| r.message.contains("not written yet")).await;
    assert_eq!(
        (waiting.verdict, waiting.action),
        (Verdict::Violating, PolicyAction::None)
    );
    assert!(
        waiting.message.contains("failed calling webhook"),
        "{}",
        waiting.message
    );
    // Back up: labelled at the next try.
    webhooks
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete the webhook");
    policy_result(&ctx, "marked", &label, |r| r.action == PolicyAction::Labeled).await;
    let marked = pods.get("marked").await.expect("pod");
    assert_eq!(
        marked
            .labels()
            .get("seccomp.sentinel.dev/violation")
            .map(String::as_str),
        Some("true")
    );
    delete_policy(&ctx, &label).await;
    operator.stop().await;
}

/// Each policy selecting a pod adds its result to the pod's status, and an exemption's message
/// names up to five containers with their reasons (up to 1,024 characters each): 320 such
/// policies made a status of about 1.7 MB, which the API server refused on every try, so the pod
/// kept the status of fewer policies, or none. The messages are cut once the results grow that
/// large; every policy's verdict stays.
#[tokio::test]
async fn a_pod_selected_by_hundreds_of_policies_keeps_its_status() {
    const POLICIES: usize = 320;
    let ctx = support::context("pol-many").await;
    let names: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    let containers: Vec<Value> = names
        .iter()
        .map(|name| json!({ "name": name, "image": "registry.invalid/app:1" }))
        .collect();
    create_pod(
        &ctx,
        json!({ "metadata": { "name": "shared", "labels": { "app": "shared" } }, "spec": { "containers": containers } }),
    )
    .await;
    let spec = json!({ "exemptions": [{ "reason": "r".repeat(1_024), "containers": names }] });
    let policies: Vec<String> = futures::stream::iter(0..POLICIES)
        .map(|i| {
            let (ctx, spec) = (&ctx, spec.clone());
            async move { create_policy(ctx, &format!("team-{i}"), spec).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let operator = Operator::for_namespace(&ctx).await;
    let statuses: Api<SeccompStatus> = ctx.api();
    let status = wait_for_explained(
        "the status with every policy's result",
        Duration::from_secs(180),
        || async {
            let status = statuses.get_opt("shared").await.ok()??.status?;
            (status.policies.len() == POLICIES).then_some(status)
        },
        || {
            let failed = operator
                .ctx
                .stats
                .errors
                .load(std::sync::atomic::Ordering::Relaxed);
            format!("{failed} passes failed (a status larger than the API server stores is refused)")
        },
    )
    .await;
    assert_eq!(status.verdict, Some(Verdict::Exempt));
    for result in &status.policies {
        assert_eq!(result.verdict, Verdict::Exempt, "{result:?}");
        assert!(
            result.message.starts_with("c0: rrr") && result.message.ends_with('…'),
            "{}",
            result.message
        );
        assert!(result.message.chars().count() <= 201, "{}", result.message);
    }
    futures::stream::iter(&policies)
        .for_each_concurrent(16, |name| delete_policy(&ctx, name))
        .await;
}

#[tokio::test]
async fn an_invalid_policy_is_stalled_and_takes_no_action() {
    let ctx = support::context("pol-invalid").await;
    create_pod(&ctx, pod_json("open", "web", None, json!({}))).await;
    let operator = Operator::for_namespace(&ctx).await;
    // Admission checks a duration's spelling, not its size; the operator finds that it does
    // not fit (as it finds whatever a policy stored under an earlier CRD got past admission).
    let policy = create_policy(
        &ctx,
        "broken",
        json!({ "action": "Evict", "eviction": { "minUnconfinedAge": "99999999999999999999h" } }),
    )
    .await;
    let stalled = policy_status(&ctx, &policy, |p| condition(p, "Stalled").is_some()).await;
    assert_eq!(
        condition(&stalled, "Stalled"),
        Some(("True".into(), "InvalidSpec".into()))
    );
    assert_eq!(
        condition(&stalled, "Ready"),
        Some(("False".into(), "InvalidSpec".into()))
    );
    assert_eq!(
        stalled.status.as_ref().expect("status").observed_generation,
        stalled.metadata.generation
    );
    let message = &stalled
        .status
        .as_ref()
        .expect("status")
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("ready")
        .message;
    assert!(message.contains("spec.eviction.minUnconfinedAge"), "{message}");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let pod = ctx.api::<Pod>().get("open").await.expect("pod");
    assert!(
        !pod.labels()
            .keys()
            .any(|k| k.starts_with("seccomp.sentinel.dev/")),
        "an invalid policy never acts"
    );
    let status = ctx
        .api::<SeccompStatus>()
        .get("open")
        .await
        .expect("status")
        .status
        .expect("status");
    assert!(status.policies.is_empty());
    assert_eq!(operator.label_writes(), 0);
    delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

#[tokio::test]
async fn a_restart_leaves_the_policy_status_as_it_was() {
    let ctx = support::context("pol-restart").await;
    const PODS: usize = 40;
    for i in 0..PODS {
        let profile = (i % 2 == 0).then_some("RuntimeDefault");
        create_pod(&ctx, pod_json(&format!("p{i}"), "web", profile, json!({}))).await;
    }
    let policy = create_policy(&ctx, "audit", json!({ "action": "Audit" })).await;
    let operator = Operator::for_namespace(&ctx).await;
    let counted = policy_status(&ctx, &policy, |p| {
        p.status.as_ref().is_some_and(|s| s.matched_pods as usize == PODS)
    })
    .await;
    operator.stop().await;

    // While it was down, four records went; after the restart one worker writes them again at 2
    // writes/s, so for seconds some pods have no outcome in this process yet. The policy's counts
    // are the same before and after: nothing about it is to be written.
    let statuses = ctx.api::<SeccompStatus>();
    for i in 0..4 {
        statuses
            .delete(&format!("p{i}"), &DeleteParams::default())
            .await
            .expect("delete status");
    }
    let mut config = support::namespace_config(&ctx);
    config.max_writes_per_second = std::num::NonZeroU32::new(2).expect("nonzero");
    config.write_burst = std::num::NonZeroU32::new(1).expect("nonzero");
    config.concurrency = Some(1);
    let operator = Operator::start(ctx.client.clone(), config).await;
    wait_for("the four records written again", TIMEOUT, || async {
        (operator.writes() >= 4).then_some(())
    })
    .await;
    // Two more ticks of the policy status writer.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = Api::<SeccompPolicy>::all(ctx.client.clone())
        .get(&policy)
        .await
        .expect("policy");
    assert_eq!(
        after.resource_version(),
        counted.resource_version(),
        "the policy status was rewritten after a restart: {:?} -> {:?}",
        counted.status.map(|s| s.matched_pods),
        after.status.map(|s| s.matched_pods)
    );
    assert_eq!(operator.writes(), 4, "only the four missing records were written");
    delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

#[tokio::test]
async fn a_policy_deleted_and_created_again_gets_its_status() {
    let ctx = support::context("pol-again").await;
    create_pod(&ctx, pod_json("open", "web", None, json!({}))).await;
    let operator = Operator::for_namespace(&ctx).await;
    let ready = |p: &SeccompPolicy| {
        p.status
            .as_ref()
            .is_some_and(|s| s.matched_pods == 1 && s.observed_generation == Some(1))
    };
    let policy = create_policy(&ctx, "audit", json!({ "action": "Audit" })).await;
    policy_status(&ctx, &policy, ready).await;
    // Deleted and applied again, as a GitOps tool may do: a new object, the same content.
    delete_policy(&ctx, &policy).await;
    let policies = Api::<SeccompPolicy>::all(ctx.client.clone());
    wait_for("the policy to go", TIMEOUT, || async {
        policies.get_opt(&policy).await.ok()?.is_none().then_some(())
    })
    .await;
    // Two ticks of the policy status writer without it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        create_policy(&ctx, "audit", json!({ "action": "Audit" })).await,
        policy
    );
    let again = policy_status(&ctx, &policy, ready).await;
    assert_eq!(condition(&again, "Ready"), Some(("True".into(), "Valid".into())));
    delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

#[tokio::test]
async fn an_exemption_that_expires_stops_exempting_without_anything_else_changing() {
    let ctx = support::context("pol-expiry").await;
    create_pod(&ctx, pod_json("open", "web", None, json!({}))).await;
    let operator = Operator::for_namespace(&ctx).await;
    let expires = k8s_openapi::jiff::Timestamp::now() + Duration::from_secs(8);
    let policy = create_policy(
        &ctx,
        "audit",
        json!({ "exemptions": [{ "reason": "until the migration", "namespaces": [ctx.ns],
                "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string() }] }),
    )
    .await;
    let exempt = policy_result(&ctx, "open", &policy, |_| true).await;
    assert_eq!(exempt.verdict, Verdict::Exempt, "{exempt:?}");
    let violating = policy_result(&ctx, "open", &policy, |r| r.verdict == Verdict::Violating).await;
    assert!(
        k8s_openapi::jiff::Timestamp::now() >= expires,
        "judged violating before the exemption expired: {violating:?}"
    );
    delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

#[tokio::test]
async fn evictions_stop_when_the_replacement_comes_back_unconfined_until_the_halt_is_lifted() {
    let ctx = support::context("pol-loop").await;
    adopted_pod_whose_replacements_come_back_unconfined(&ctx, "legacy").await;
    // Trusted as it would be on OpenShift (this cluster runs no SCC admission).
    let mut config = support::namespace_config(&ctx);
    config.trust_scc_annotation = seccomp_sentinel::controller::config::TrustScc::True;
    let operator = Operator::start(ctx.client.clone(), config).await;
    let policy = create_policy(&ctx, "evict", evict_quickly(json!({}))).await;

    wait_for("the first eviction", TIMEOUT, || async {
        let pods = pods_of(&ctx, "legacy").await;
        (pods.len() == 1 && pods[0].name_any() != "legacy-old").then_some(())
    })
    .await;
    let replacement = pods_of(&ctx, "legacy").await.remove(0).name_any();
    let halted = policy_result(&ctx, &replacement, &policy, |r| {
        r.action == PolicyAction::EvictionSkipped
    })
    .await;
    assert!(
        halted.message.contains("ReplacementUnconfined"),
        "{}",
        halted.message
    );
    let reported = policy_status(&ctx, &policy, |p| condition(p, "EvictionsHalted").is_some()).await;
    assert_eq!(
        condition(&reported, "EvictionsHalted"),
        Some(("True".into(), "ReplacementUnconfined".into()))
    );
    assert!(events(&ctx, "EvictionHalted").contains("event"));
    // What `kubectl get seccomppolicy -o wide` shows.
    let wide = ctx.kubectl(&["get", "seccomppolicy", &policy, "-o", "wide"]);
    let mut lines = wide.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    let row: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    let halted_column = header
        .iter()
        .position(|h| *h == "HALTED")
        .expect("a HALTED column");
    assert_eq!(row.get(halted_column), Some(&"1"), "{wide}");
    let halted_series = format!("seccomp_sentinel_halted_workloads{{policy=\"{policy}\"}} 1");
    wait_for("the halted-workloads gauge", TIMEOUT, || async {
        operator
            .ctx
            .metrics
            .encode()
            .contains(&halted_series)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(operator.evictions(), 1, "evicted once, then stopped");

    // Lifted as the condition says, with kubectl. Nothing was fixed here, so the operator evicts
    // the replacement once more, and halts the workload again when the next one comes back
    // unconfined too.
    let halted_since = |p: &SeccompPolicy| -> Vec<String> {
        p.status
            .as_ref()
            .and_then(|s| s.evictions.as_ref())
            .map(|e| e.halted.iter().map(|h| h.since.clone()).collect())
            .unwrap_or_default()
    };
    let first_halt = halted_since(&reported);
    assert_eq!(first_halt.len(), 1, "{first_halt:?}");
    let resumed_at = k8s_openapi::jiff::Timestamp::now();
    let annotation = format!(
        "seccomp.sentinel.dev/resume-evictions={}",
        resumed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    );
    ctx.kubectl(&["annotate", "seccomppolicy", &policy, &annotation, "--overwrite"]);
    wait_for("the replacement to be evicted as well", TIMEOUT, || async {
        (operator.evictions() == 2).then_some(())
    })
    .await;
    // The ledger is written at once, the conditions by the next status tick.
    let halted_again = policy_status(&ctx, &policy, |p| {
        let since = halted_since(p);
        since.len() == 1 && since != first_halt && condition(p, "EvictionsHalted").is_some()
    })
    .await;
    let since: k8s_openapi::jiff::Timestamp = halted_since(&halted_again)[0].parse().expect("a time");
    assert!(since > resumed_at, "halted at {since}, resumed at {resumed_at}");
    assert_eq!(
        condition(&halted_again, "EvictionsHalted"),
        Some(("True".into(), "ReplacementUnconfined".into()))
    );
    // Announced by the next status tick.
    wait_for("the EvictionsResumed Event", TIMEOUT, || async {
        let messages = ctx.kubectl(&[
            "get",
            "events",
            "-n",
            "default",
            "--field-selector",
            &format!("reason=EvictionsResumed,involvedObject.name={policy}"),
            "-o",
            "jsonpath={.items[*].message}",
        ]);
        messages
            .contains(&format!("{}/ReplicaSet legacy", ctx.ns))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        operator.evictions(),
        2,
        "evicted once more after the lift, then stopped again"
    );

    // The workload goes: so does its halt, from the ledger and from the condition.
    let replica_sets: Api<ReplicaSet> = ctx.api();
    replica_sets
        .delete("legacy", &DeleteParams::default())
        .await
        .expect("delete the ReplicaSet");
    let unhalted = policy_status(&ctx, &policy, |p| {
        halted_since(p).is_empty() && condition(p, "EvictionsHalted").is_none()
    })
    .await;
    assert_eq!(unhalted.status.map(|s| s.halted_workloads), Some(0));
    wait_for("the halted-workloads gauge to go", TIMEOUT, || async {
        let metrics = operator.ctx.metrics.encode();
        (!metrics.contains("seccomp_sentinel_halted_workloads{")).then_some(())
    })
    .await;
    delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

#[tokio::test]
async fn a_namespace_label_change_brings_its_pods_under_a_policy() {
    let ctx = support::context("pol-nslabel").await;
    create_pod(&ctx, pod_json("open", "web", None, json!({}))).await;
    let operator = Operator::for_namespace(&ctx).await;
    let name = format!("{}-gold", ctx.ns);
    let policy: SeccompPolicy = serde_json::from_value(json!({
        "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompPolicy",
        "metadata": { "name": name, "labels": { POLICY_LABEL: ctx.ns } },
        "spec": { "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ctx.ns, "tier": "gold" } } },
    }))
    .expect("policy");
    Api::<SeccompPolicy>::all(ctx.client.clone())
        .create(&PostParams::default(), &policy)
        .await
        .expect("create");
    let statuses: Api<SeccompStatus> = ctx.api();
    wait_for("a first status", TIMEOUT, || async {
        statuses.get_opt("open").await.ok()?.and_then(|s| s.status)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = statuses
        .get("open")
        .await
        .expect("status")
        .status
        .expect("status");
    assert!(before.policies.is_empty(), "the namespace is not gold yet");

    ctx.kubectl(&["label", "namespace", &ctx.ns, "tier=gold"]);
    let result = policy_result(&ctx, "open", &name, |_| true).await;
    assert_eq!(result.verdict, Verdict::Violating);
    delete_policy(&ctx, &name).await;
    operator.stop().await;
}
