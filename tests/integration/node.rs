//! On real nodes: what the operator reports, what the container runtime was asked for (`crictl
//! inspect` → `.info.runtimeSpec.linux.seccomp`) and what the kernel enforces (`Seccomp` of
//! `/proc/<pid>/status`, and the node agent's reading of it) agree, for every kind of profile and
//! container (init, sidecar, and the ephemeral ones `kubectl debug` adds).
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, ResourceExt, api::PostParams};
use seccomp_sentinel::api::{ContainerSeccomp, ProfileType, SeccompMode, SeccompStatus};
use sentinel_testenv::install;
use serde_json::json;

use crate::support::{
    self, Operator,
    nodes::{
        self, container, container_id, kernel_view, log_of, node_context, pod, wait_node_facts, wait_running,
    },
    wait_for,
};

const TIMEOUT: Duration = Duration::from_secs(120);
/// Prints the kernel's view from inside, then stays.
const REPORT: &str = "grep Seccomp /proc/self/status; exec sleep 3600";

/// A Localhost profile that allows everything but mkdir(2)/mkdirat(2).
const DENY_MKDIR: &str = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#;

/// What a container should look like in all three views.
struct Expected {
    pod: &'static str,
    container: &'static str,
    profile: ProfileType,
    /// The runtime spec's `defaultAction`, or None for no seccomp section.
    default_action: Option<&'static str>,
    /// Init containers have exited: their own log holds the kernel's view.
    exited: bool,
}

fn entry<'a>(status: &'a SeccompStatus, container: &str) -> &'a ContainerSeccomp {
    status
        .status
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == container))
        .unwrap_or_else(|| panic!("no status for container {container} in {status:?}"))
}

/// The node agent's reading of the kernel for `container`.
fn observed<'a>(
    status: &'a SeccompStatus,
    container: &str,
) -> Option<&'a seccomp_sentinel::api::RuntimeObservation> {
    status.status.as_ref()?.runtime_of(container)
}

/// The API server, both kubelets and kubectl are one Kubernetes release: the one whose binaries
/// this run uses (`make test-oldest` runs every test again on 1.33 through
/// `SENTINEL_KUBERNETES_BIN`), so no test passes on a newer part than it names.
#[tokio::test]
async fn the_control_plane_nodes_and_kubectl_are_one_release() {
    let nodes = nodes::nodes();
    let ctx = node_context("one-release").await;
    let binaries = sentinel_testenv::Binaries::locate().expect("binaries");
    let printed = std::process::Command::new(binaries.path("kube-apiserver"))
        .arg("--version")
        .output()
        .expect("kube-apiserver --version");
    let release = String::from_utf8_lossy(&printed.stdout)
        .trim()
        .strip_prefix("Kubernetes ")
        .expect("`Kubernetes vX.Y.Z`")
        .to_string();
    if let Some(dir) = std::env::var_os("SENTINEL_KUBERNETES_BIN") {
        assert!(
            binaries.path("kubelet").starts_with(&dir),
            "the kubelet comes from {}",
            std::path::Path::new(&dir).display()
        );
    }
    let server = ctx.cluster.kubectl(&["version", "-o", "json"]);
    let versions: serde_json::Value = serde_json::from_str(&server).expect("kubectl version JSON");
    assert_eq!(
        versions["serverVersion"]["gitVersion"],
        release.as_str(),
        "{server}"
    );
    assert_eq!(
        versions["clientVersion"]["gitVersion"],
        release.as_str(),
        "{server}"
    );
    let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(ctx.client.clone());
    for name in [&nodes.a.name, &nodes.b.name] {
        let node = api.get(name).await.expect("node");
        let kubelet = node.status.and_then(|s| s.node_info).map(|i| i.kubelet_version);
        assert_eq!(
            kubelet.as_deref(),
            Some(release.as_str()),
            "the kubelet of {name}"
        );
    }
}

#[tokio::test]
async fn the_three_views_agree_for_every_profile_kind() {
    let nodes = nodes::nodes();
    let ctx = node_context("three-views").await;
    let (a, b) = (&nodes.a, &nodes.b);
    wait_node_facts(&ctx.client, &a.name, false).await;
    wait_node_facts(&ctx.client, &b.name, true).await;
    let profile_dir = a.seccomp_dir().join("sentinel");
    std::fs::create_dir_all(&profile_dir).expect("profile dir");
    std::fs::write(profile_dir.join("deny-mkdir.json"), DENY_MKDIR).expect("profile");

    let mut config = support::namespace_config(&ctx);
    // What the operator knows of each node comes from the agent's Node annotations.
    config.kubelet_seccomp_default = seccomp_sentinel::api::KubeletSeccompDefault::Unknown;
    let operator = Operator::start(ctx.client.clone(), config).await;
    let pods: Api<Pod> = ctx.api();
    let runtime_default = json!({ "type": "RuntimeDefault" });
    let specs = vec![
        pod(
            "runtime-default",
            &a.name,
            REPORT,
            json!({ "securityContext": { "seccompProfile": runtime_default } }),
        ),
        pod(
            "localhost",
            &a.name,
            "mkdir /tmp/probe && echo mkdir=allowed || echo mkdir=refused; exec sleep 3600",
            json!({ "containers": [merge_into(
                container("app", "mkdir /tmp/probe && echo mkdir=allowed || echo mkdir=refused; exec sleep 3600"),
                json!({ "securityContext": { "seccompProfile": {
                    "type": "Localhost", "localhostProfile": "sentinel/deny-mkdir.json" } } }),
            )] }),
        ),
        pod(
            "unconfined",
            &a.name,
            REPORT,
            json!({ "containers": [merge_into(container("app", REPORT),
                json!({ "securityContext": { "seccompProfile": { "type": "Unconfined" } } }))] }),
        ),
        pod("unset-default-off", &a.name, REPORT, json!({})),
        pod("unset-default-on", &b.name, REPORT, json!({})),
        pod(
            "privileged",
            &a.name,
            REPORT,
            json!({ "securityContext": { "seccompProfile": runtime_default },
                    "containers": [
                        merge_into(container("app", REPORT), json!({ "securityContext": { "privileged": true } })),
                        container("plain", REPORT),
                    ] }),
        ),
        pod(
            "init-and-sidecar",
            &a.name,
            REPORT,
            json!({ "securityContext": { "seccompProfile": runtime_default },
                    "initContainers": [
                        merge_into(container("init", "grep Seccomp /proc/self/status"),
                            json!({ "securityContext": { "seccompProfile": { "type": "Unconfined" } } })),
                        merge_into(container("sidecar", REPORT), json!({ "restartPolicy": "Always" })),
                    ] }),
        ),
    ];
    // Pods whose one container asks for RuntimeDefault, the pod nothing: what `kubectl debug`
    // adds to them inherits the pod's (none), so the kubelet's default decides; with
    // `--profile=sysadmin` it is privileged.
    let container_only = json!({ "containers": [merge_into(container("app", REPORT),
        json!({ "securityContext": { "seccompProfile": runtime_default } }))] });
    let host_process = json!({ "securityContext": { "windowsOptions": { "hostProcess": true } } });
    let specs: Vec<Pod> = specs
        .into_iter()
        .chain([
            pod("debugged-off", &a.name, REPORT, container_only.clone()),
            pod("debugged-on", &b.name, REPORT, container_only),
            // `hostProcess` without `spec.os`: the API server admits it (with `hostNetwork`), and
            // a Linux kubelet ignores `windowsOptions`: the containers are Linux containers.
            pod("host-process-off", &a.name, REPORT, host_process.clone()),
            pod("host-process-on", &b.name, REPORT, host_process),
        ])
        .collect();
    for spec in &specs {
        pods.create(&PostParams::default(), spec)
            .await
            .expect("create pod");
    }
    for debugged in ["debugged-off", "debugged-on"] {
        wait_running(&pods, debugged).await;
        for (name, profile) in [("dbg", "general"), ("admin", "sysadmin")] {
            ctx.kubectl(&[
                "debug",
                "-n",
                &ctx.ns,
                debugged,
                &format!("--image={}", sentinel_testenv::image::BUSYBOX_IMAGE),
                "--image-pull-policy=Never",
                &format!("--profile={profile}"),
                &format!("--container={name}"),
                "--",
                "sh",
                "-c",
                REPORT,
            ]);
        }
    }
    let expected = [
        (
            "runtime-default",
            "app",
            ProfileType::RuntimeDefault,
            Some("SCMP_ACT_ERRNO"),
            false,
        ),
        (
            "localhost",
            "app",
            ProfileType::Localhost,
            Some("SCMP_ACT_ALLOW"),
            false,
        ),
        ("unconfined", "app", ProfileType::Unconfined, None, false),
        ("unset-default-off", "app", ProfileType::Unconfined, None, false),
        (
            "unset-default-on",
            "app",
            ProfileType::RuntimeDefault,
            Some("SCMP_ACT_ERRNO"),
            false,
        ),
        ("privileged", "app", ProfileType::Unconfined, None, false),
        (
            "privileged",
            "plain",
            ProfileType::RuntimeDefault,
            Some("SCMP_ACT_ERRNO"),
            false,
        ),
        ("debugged-off", "dbg", ProfileType::Unconfined, None, false),
        (
            "debugged-on",
            "dbg",
            ProfileType::RuntimeDefault,
            Some("SCMP_ACT_ERRNO"),
            false,
        ),
        ("debugged-off", "admin", ProfileType::Unconfined, None, false),
        ("debugged-on", "admin", ProfileType::Unconfined, None, false),
        ("host-process-off", "app", ProfileType::Unconfined, None, false),
        (
            "host-process-on",
            "app",
            ProfileType::RuntimeDefault,
            Some("SCMP_ACT_ERRNO"),
            false,
        ),
        ("init-and-sidecar", "init", ProfileType::Unconfined, None, true),
        (
            "init-and-sidecar",
            "sidecar",
            ProfileType::RuntimeDefault,
            Some("SCMP_ACT_ERRNO"),
            false,
        ),
        (
            "init-and-sidecar",
            "app",
            ProfileType::RuntimeDefault,
            Some("SCMP_ACT_ERRNO"),
            false,
        ),
    ]
    .map(|(pod, container, profile, default_action, exited)| Expected {
        pod,
        container,
        profile,
        default_action,
        exited,
    });

    let statuses: Api<SeccompStatus> = ctx.api();
    for want in &expected {
        let on_b = matches!(want.pod, "unset-default-on" | "debugged-on" | "host-process-on");
        let node = if on_b { b } else { a };
        wait_running(&pods, want.pod).await;
        let what = format!("{}/{}", want.pod, want.container);
        // The operator's view, with the agent's reading of the kernel for running containers.
        let status = wait_for(
            &format!("the operator's and the agent's view of {what}"),
            TIMEOUT,
            || async {
                let s = statuses.get_opt(want.pod).await.ok()??;
                let c = entry(&s, want.container);
                let settled = c.profile.type_ == want.profile
                    && (want.exited || observed(&s, want.container).is_some());
                settled.then_some(s)
            },
        )
        .await;
        // Read now: an ephemeral container's ID is in the pod's status once it runs.
        let running = pods.get(want.pod).await.expect("pod");
        let reported = entry(&status, want.container);
        let confined = matches!(want.profile, ProfileType::RuntimeDefault | ProfileType::Localhost);
        assert_eq!(reported.confined, confined, "{what}: {reported:?}");

        // The container runtime's view.
        let view = kernel_view(node, &container_id(&running, want.container));
        assert_eq!(
            view.runtime_seccomp["defaultAction"].as_str(),
            want.default_action,
            "{what}: runtime spec seccomp {}",
            view.runtime_seccomp
        );
        // The kernel's view: from /proc of the running process, or the exited container's own log.
        let kernel_mode = if want.exited {
            let log = log_of(node, &running, want.container);
            assert!(log.contains("Seccomp:"), "{what}: log {log:?}");
            if log.contains("Seccomp:\t2") { 2 } else { 0 }
        } else {
            view.proc_seccomp
                .unwrap_or_else(|| panic!("{what}: no /proc status for {view:?}"))
        };
        assert_eq!(kernel_mode == 2, confined, "{what}: Seccomp {kernel_mode}");
        if let Some(runtime) = observed(&status, want.container) {
            assert_eq!(
                runtime.seccomp_mode,
                if confined {
                    SeccompMode::Filter
                } else {
                    SeccompMode::Disabled
                },
                "{what}: the agent's reading"
            );
            assert!(runtime.agrees_with_effective, "{what}: {runtime:?}");
            // An init container that has exited has no process left to compare with: a reading
            // the agent made while it ran stays (the agent scans every 3 s here, and at once
            // when the pod changes, so it may have caught the container running).
            if !want.exited {
                assert_eq!(
                    runtime.pid.map(|p| p as u32),
                    view.pid,
                    "{what}: the agent found the container's process"
                );
            }
        }
        if on_b && want.profile == ProfileType::RuntimeDefault {
            assert_eq!(
                reported.source,
                seccomp_sentinel::api::ProfileSource::KubeletDefault,
                "{what}"
            );
        }
    }

    // The one-shot live audit sees each pod as the operator does; in particular it takes node b's
    // kubelet seccompDefault from its agent, not from --kubelet-seccomp-default (false here).
    let audited = ctx.live_audit(&["--kubelet-seccomp-default", "false"]);
    for want in &expected {
        let item = audited["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["metadata"]["name"] == want.pod)
            .unwrap_or_else(|| panic!("{}: not in the audit {audited}", want.pod));
        let container = item["status"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == want.container)
            .unwrap_or_else(|| panic!("{}/{}: not in {item}", want.pod, want.container));
        let operator = entry(&statuses.get(want.pod).await.expect("status"), want.container).clone();
        assert_eq!(
            (&container["profile"]["type"], &container["source"]),
            (&json!(operator.profile.type_), &json!(operator.source)),
            "{}/{}: the audit and the operator",
            want.pod,
            want.container
        );
    }

    // The Localhost profile really refuses what it denies.
    let localhost = pods.get("localhost").await.expect("pod");
    let log = wait_for("the Localhost container's probe", TIMEOUT, || async {
        let log = log_of(a, &localhost, "app");
        log.contains("mkdir=").then_some(log)
    })
    .await;
    assert!(log.contains("mkdir=refused"), "{log}");
    // And kubectl shows the agent's verdict.
    let wide = ctx.kubectl(&[
        "get",
        "seccompstatus",
        "-n",
        &ctx.ns,
        "-o",
        "wide",
        "--no-headers",
    ]);
    assert_eq!(
        wide.lines().filter(|l| l.contains("Agrees")).count(),
        specs.len(),
        "{wide}"
    );
    operator.stop().await;
}

fn merge_into(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(base), serde_json::Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

#[tokio::test]
async fn a_localhost_profile_missing_on_the_node_is_a_clear_warning() {
    let nodes = nodes::nodes();
    let ctx = node_context("missing-profile").await;
    let operator = Operator::for_namespace(&ctx).await;
    let pods: Api<Pod> = ctx.api();
    let missing = pod(
        "missing",
        &nodes.a.name,
        REPORT,
        json!({ "securityContext": { "seccompProfile": { "type": "Localhost", "localhostProfile": "sentinel/not-on-this-node.json" } } }),
    );
    pods.create(&PostParams::default(), &missing).await.expect("pod");
    // The runtime refuses to create the container; the pod says so, and so does its status.
    wait_for("the runtime's refusal", TIMEOUT, || async {
        let p = pods.get("missing").await.ok()?;
        let waiting = p.status?.container_statuses?.first()?.state.clone()?.waiting?;
        (waiting.reason.as_deref() == Some("CreateContainerError")).then_some(())
    })
    .await;
    let statuses: Api<SeccompStatus> = ctx.api();
    let status = wait_for("the warning", TIMEOUT, || async {
        let s = statuses.get_opt("missing").await.ok()??;
        let app = entry(&s, "app").clone();
        app.warnings
            .iter()
            .any(|w| w.contains("does not start"))
            .then_some(app)
    })
    .await;
    assert_eq!(status.profile.type_, ProfileType::Localhost, "{status:?}");
    assert!(
        status
            .warnings
            .iter()
            .any(|w| w.contains("sentinel/not-on-this-node.json")),
        "names the profile: {:?}",
        status.warnings
    );
    // No runtime entry: nothing runs.
    let stored = statuses.get("missing").await.expect("status");
    assert!(observed(&stored, "app").is_none(), "{stored:?}");
    // A localhostProfile that leaves the kubelet's seccomp directory never gets that far.
    let escape = pod(
        "escape",
        &nodes.a.name,
        REPORT,
        json!({ "securityContext": { "seccompProfile": { "type": "Localhost", "localhostProfile": "../../../etc/passwd" } } }),
    );
    let refused = pods.create(&PostParams::default(), &escape).await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("must not contain '..'")),
        "{refused:?}"
    );
    operator.stop().await;
}

/// Creates ReplicaSet `web` (one replica, pods labelled `app: web`) with `template`, and waits
/// until it has adopted the running pod `web-old`.
async fn adopt_web_old(ctx: &support::TestContext, template: serde_json::Value) {
    let rs: k8s_openapi::api::apps::v1::ReplicaSet = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": { "replicas": 1, "selector": { "matchLabels": { "app": "web" } }, "template": template } }))
    .expect("rs");
    ctx.api::<k8s_openapi::api::apps::v1::ReplicaSet>()
        .create(&PostParams::default(), &rs)
        .await
        .expect("rs");
    let pods: Api<Pod> = ctx.api();
    wait_for("adoption", TIMEOUT, || async {
        let p = pods.get("web-old").await.ok()?;
        p.owner_references()
            .iter()
            .any(|o| o.kind == "ReplicaSet")
            .then_some(())
    })
    .await;
}

/// An Evict policy for the test's namespace that acts at once; returns its name.
async fn create_evict_policy(ctx: &support::TestContext) -> String {
    let policy_name = format!("{}-evict", ctx.ns);
    let policy: seccomp_sentinel::api::SeccompPolicy = serde_json::from_value(json!({
        "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompPolicy",
        "metadata": { "name": policy_name, "labels": { support::POLICY_LABEL: ctx.ns } },
        "spec": { "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ctx.ns } },
                  "action": "Evict", "eviction": { "minUnconfinedAge": "0s", "workloadCooldown": "1s" } } }))
    .expect("policy");
    Api::<seccomp_sentinel::api::SeccompPolicy>::all(ctx.client.clone())
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
    policy_name
}

async fn delete_policy(ctx: &support::TestContext, name: &str) {
    let _ = Api::<seccomp_sentinel::api::SeccompPolicy>::all(ctx.client.clone())
        .delete(name, &Default::default())
        .await;
}

/// Waits until `web-old` is gone and the only pod is its running replacement.
async fn running_replacement(pods: &Api<Pod>) -> Pod {
    let replacement = wait_for("the eviction and a running replacement", TIMEOUT, || async {
        let list = pods.list(&Default::default()).await.ok()?.items;
        let [only] = list.as_slice() else { return None };
        let running = only.status.as_ref()?.phase.as_deref() == Some("Running");
        (only.name_any() != "web-old" && running).then(|| only.clone())
    })
    .await;
    wait_running(pods, &replacement.name_any()).await
}

#[tokio::test]
async fn an_evicted_pod_comes_back_confined_on_the_node() {
    let nodes = nodes::nodes();
    let ctx = node_context("evict-node").await;
    let pods: Api<Pod> = ctx.api();
    let mut old = pod("web-old", &nodes.a.name, REPORT, json!({}));
    old.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    pods.create(&PostParams::default(), &old).await.expect("pod");
    wait_running(&pods, "web-old").await;
    // The workload's template is confined; it adopts the unconfined pod.
    let template_spec = pod(
        "t",
        &nodes.a.name,
        REPORT,
        json!({ "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } } }),
    )
    .spec
    .expect("spec");
    adopt_web_old(
        &ctx,
        json!({ "metadata": { "labels": { "app": "web" } }, "spec": template_spec }),
    )
    .await;
    let policy_name = create_evict_policy(&ctx).await;
    let operator = Operator::for_namespace(&ctx).await;

    let replacement = running_replacement(&pods).await;
    let view = kernel_view(&nodes.a, &container_id(&replacement, "app"));
    assert_eq!(
        view.proc_seccomp,
        Some(2),
        "the replacement runs with a filter: {view:?}"
    );
    assert_eq!(view.runtime_seccomp["defaultAction"], "SCMP_ACT_ERRNO");
    let statuses: Api<SeccompStatus> = ctx.api();
    wait_for("the replacement's status, verified", TIMEOUT, || async {
        let s = statuses.get_opt(&replacement.name_any()).await.ok()??.status?;
        let verified = s.runtime_verified().is_some_and(|c| c.reason == "Agrees");
        (s.profile == seccomp_sentinel::api::PodProfile::RuntimeDefault && verified).then_some(())
    })
    .await;
    assert_eq!(operator.evictions(), 1);
    // The evicted pod took its grace period to go, watched by the operator all along: its
    // deletion is no news (no Warning that it "is already being deleted").
    let announced = |reason: &str| crate::policies::events(&ctx, reason);
    assert!(
        announced("Evicted").contains("event/web-old."),
        "{}",
        announced("Evicted")
    );
    assert_eq!(announced("EvictionSkipped"), "", "a Warning after the eviction");
    operator.stop().await;
    delete_policy(&ctx, &policy_name).await;
}

/// A template that asks for no profile is confined only where the kubelet runs with
/// `seccompDefault`. The pod runs unconfined on node b, whose kubelet has it, and its ReplicaSet's
/// template (edited since) asks for nothing: judged on node b alone, the template looked confined
/// and the pod was evicted, although the scheduler may start the replacement on node a, whose
/// kubelet does not confine it. Once the template's required node affinity keeps it off node a, the
/// pod is evicted and its replacement starts on node b, confined by the kubelet's default.
#[tokio::test]
async fn a_template_confined_only_by_some_nodes_kubelet_default_is_not_trusted_elsewhere() {
    let nodes = nodes::nodes();
    let ctx = node_context("evict-default").await;
    let pods: Api<Pod> = ctx.api();
    let mut old = pod(
        "web-old",
        &nodes.b.name,
        REPORT,
        json!({ "securityContext": { "seccompProfile": { "type": "Unconfined" } } }),
    );
    old.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    pods.create(&PostParams::default(), &old).await.expect("pod");
    wait_running(&pods, "web-old").await;
    // Asks for no profile; may start on either test node (the scheduler places it).
    let template = |affinity: serde_json::Value| {
        let mut spec =
            serde_json::to_value(pod("t", "", REPORT, json!({})).spec.expect("spec")).expect("spec");
        let spec = spec.as_object_mut().expect("object");
        spec.remove("nodeName");
        spec.insert(
            "nodeSelector".into(),
            json!({ "seccomp.sentinel.dev/test-node": "true" }),
        );
        spec.insert("affinity".into(), affinity);
        spec.insert(
            "tolerations".into(),
            json!([{ "key": "seccomp.sentinel.dev/test-node", "operator": "Exists", "effect": "NoSchedule" }]),
        );
        json!({ "metadata": { "labels": { "app": "web" } }, "spec": spec })
    };
    adopt_web_old(&ctx, template(json!({}))).await;
    let policy_name = create_evict_policy(&ctx).await;
    let operator = Operator::for_namespace(&ctx).await;

    let skipped = crate::policies::policy_result(&ctx, "web-old", &policy_name, |r| {
        r.action == seccomp_sentinel::api::PolicyAction::EvictionSkipped
    })
    .await;
    assert!(
        skipped.message.contains("TemplateUnconfined")
            && skipped.message.contains(&format!("node {}", nodes.a.name)),
        "{}",
        skipped.message
    );
    assert_eq!(operator.evictions(), 0);

    // The template now keeps off node a: the replacement starts where the default confines it.
    let only_b = json!({ "spec": { "template": template(json!({ "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [
            { "matchExpressions": [{ "key": "kubernetes.io/hostname", "operator": "NotIn", "values": [nodes.a.name] }] }
        ] } } })) } });
    ctx.api::<k8s_openapi::api::apps::v1::ReplicaSet>()
        .patch(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&only_b),
        )
        .await
        .expect("patch the template");
    let replacement = running_replacement(&pods).await;
    assert_eq!(
        replacement.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some(nodes.b.name.as_str())
    );
    let statuses: Api<SeccompStatus> = ctx.api();
    wait_for(
        "the replacement's status, confined by the kubelet's default",
        TIMEOUT,
        || async {
            let s = statuses.get_opt(&replacement.name_any()).await.ok()??.status?;
            (s.source == Some(seccomp_sentinel::api::ProfileSource::KubeletDefault)
                && s.profile == seccomp_sentinel::api::PodProfile::RuntimeDefault)
                .then_some(())
        },
    )
    .await;
    assert_eq!(operator.evictions(), 1);
    operator.stop().await;
    delete_policy(&ctx, &policy_name).await;
}

/// A pod recreated under the same name (as a StatefulSet's is) gets a status of its own: nothing
/// the node agent found in the earlier pod's containers stays in it, although the new pod never
/// runs where the agent could look at it again.
/// A StatefulSet whose template is fixed rolls its pods itself, one at a time, each waiting for
/// the one before to be Ready. Here the new revision never gets Ready (a readiness probe that
/// fails, as a bad release would), so the rollout stops after replacing `rolling-1`, with
/// `rolling-0` still unconfined and serving. Before, the operator evicted `rolling-0` too (the
/// template was confined): both pods down at once, which the rollout exists to prevent. A
/// partition holds `held-0` at the earlier revision, to which a replacement would return. With
/// `OnDelete`, evicting is how a pod gets the template: `manual-0` is evicted.
#[tokio::test]
async fn a_statefulset_rolling_or_holding_its_pods_is_left_to_it() {
    let nodes = nodes::nodes();
    let ctx = node_context("evict-sts").await;
    let pods: Api<Pod> = ctx.api();
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> = ctx.api();
    let spec_on_a = |extra: serde_json::Value| pod("t", &nodes.a.name, REPORT, extra).spec.expect("spec");
    let cases = [
        ("rolling", 2, json!({ "type": "RollingUpdate" })),
        (
            "held",
            1,
            json!({ "type": "RollingUpdate", "rollingUpdate": { "partition": 1 } }),
        ),
        ("manual", 1, json!({ "type": "OnDelete" })),
    ];
    for (name, replicas, strategy) in &cases {
        let set: k8s_openapi::api::apps::v1::StatefulSet = serde_json::from_value(json!({
            "metadata": { "name": name },
            "spec": { "replicas": replicas, "serviceName": name, "updateStrategy": strategy,
                      "selector": { "matchLabels": { "app": name } },
                      "template": { "metadata": { "labels": { "app": name } }, "spec": spec_on_a(json!({})) } } }))
        .expect("statefulset");
        sets.create(&PostParams::default(), &set)
            .await
            .expect("statefulset");
    }
    let ready = |name: String| {
        let pods = pods.clone();
        async move {
            wait_for(&format!("{name} ready"), TIMEOUT, || async {
                let pod = pods.get(&name).await.ok()?;
                let ready = pod
                    .status
                    .as_ref()?
                    .conditions
                    .as_ref()?
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                ready.then(|| pod.uid()).flatten()
            })
            .await
        }
    };
    let before: std::collections::BTreeMap<&str, String> = [
        ("rolling-0", ready("rolling-0".into()).await),
        ("rolling-1", ready("rolling-1".into()).await),
        ("held-0", ready("held-0".into()).await),
        ("manual-0", ready("manual-0".into()).await),
    ]
    .into();
    let operator = Operator::for_namespace(&ctx).await;
    let policy =
        crate::policies::create_policy(&ctx, "evict", crate::policies::evict_quickly(json!({}))).await;
    crate::policies::policy_result(&ctx, "rolling-0", &policy, |r| {
        r.message.contains("TemplateUnconfined")
    })
    .await;

    // The fix: RuntimeDefault. The rolling StatefulSet's new revision never gets Ready.
    let confined = json!({ "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } } });
    let never_ready = json!({ "containers": [{ "name": "app",
        "readinessProbe": { "exec": { "command": ["false"] }, "periodSeconds": 1 } }] });
    for (name, _, _) in &cases {
        let mut template = spec_on_a(confined.clone());
        if *name == "rolling" {
            let probe = never_ready["containers"][0]["readinessProbe"].clone();
            template.containers[0].readiness_probe = Some(serde_json::from_value(probe).expect("probe"));
        }
        let patch = json!({ "spec": { "template": { "spec": template } } });
        sets.patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("patch the template");
    }
    for (pod_name, reason) in [("rolling-0", "StatefulSetRollout"), ("held-0", "PartitionHeld")] {
        let result =
            crate::policies::policy_result(&ctx, pod_name, &policy, |r| r.message.contains(reason)).await;
        assert_eq!(
            result.action,
            seccomp_sentinel::api::PolicyAction::EvictionSkipped,
            "{pod_name}: {}",
            result.message
        );
    }
    // The OnDelete StatefulSet's pod is evicted and comes back with the template.
    wait_for("manual-0 evicted and back", TIMEOUT, || async {
        let pod = pods.get("manual-0").await.ok()?;
        (pod.uid().as_deref() != Some(before["manual-0"].as_str())).then_some(())
    })
    .await;
    // The rollout replaced rolling-1 itself and waits for it; nothing else went.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for kept in ["rolling-0", "held-0"] {
        let uid = pods.get(kept).await.expect("pod").uid().expect("uid");
        assert_eq!(uid, before[kept], "{kept} was evicted");
    }
    let rolling_1 = pods.get("rolling-1").await.expect("pod");
    assert_ne!(
        rolling_1.uid().as_deref(),
        Some(before["rolling-1"].as_str()),
        "the rollout did not start"
    );
    assert_eq!(operator.evictions(), 1);
    // The moment between the template's change and the controller taking it in is no news: no
    // Event per pod on every rollout.
    assert_eq!(crate::policies::events(&ctx, "EvictionPending"), "");
    crate::policies::delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

/// A replacement that never gets ready (its template names a Localhost profile the node does
/// not have, so the kubelet cannot create its container) stops the evictions of its workload:
/// one pod down, not all of them one cooldown after the other.
#[tokio::test]
async fn a_replacement_that_never_gets_ready_stops_the_evictions_of_its_workload() {
    let nodes = nodes::nodes();
    let ctx = node_context("evict-unready").await;
    let pods: Api<Pod> = ctx.api();
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> = ctx.api();
    let spec_on_a = |extra: serde_json::Value| pod("t", &nodes.a.name, REPORT, extra).spec.expect("spec");
    let set: k8s_openapi::api::apps::v1::StatefulSet = serde_json::from_value(json!({
        "metadata": { "name": "db" },
        "spec": { "replicas": 3, "serviceName": "db", "podManagementPolicy": "Parallel",
                  "updateStrategy": { "type": "OnDelete" },
                  "selector": { "matchLabels": { "app": "db" } },
                  "template": { "metadata": { "labels": { "app": "db" } }, "spec": spec_on_a(json!({})) } } }))
    .expect("statefulset");
    sets.create(&PostParams::default(), &set)
        .await
        .expect("statefulset");
    let mut before = std::collections::BTreeMap::new();
    for name in ["db-0", "db-1", "db-2"] {
        before.insert(name, wait_running(&pods, name).await.uid().expect("uid"));
    }
    // The "fix" names a profile file no node has.
    let missing = json!({ "securityContext": { "seccompProfile": {
        "type": "Localhost", "localhostProfile": "sentinel-test/missing.json" } } });
    let patch = json!({ "spec": { "template": { "spec": spec_on_a(missing) } } });
    sets.patch(
        "db",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .expect("patch the template");
    let operator = Operator::for_namespace(&ctx).await;
    let policy =
        crate::policies::create_policy(&ctx, "evict", crate::policies::evict_quickly(json!({}))).await;
    // One pod is evicted; its replacement cannot start.
    let evicted = wait_for("one pod evicted", TIMEOUT, || async {
        for name in ["db-0", "db-1", "db-2"] {
            let pod = pods.get(name).await.ok()?;
            if pod.uid().as_deref() != Some(before[name].as_str()) {
                return Some(name);
            }
        }
        None
    })
    .await;
    wait_for(
        &format!("{evicted}'s replacement failing to start"),
        TIMEOUT,
        || async {
            let pod = pods.get(evicted).await.ok()?;
            let waiting = pod.status?.container_statuses?.first()?.state.clone()?.waiting?;
            waiting.reason.filter(|r| r.starts_with("CreateContainer"))
        },
    )
    .await;
    // The others wait for it, well past the 1 s cooldown, and say why.
    for name in ["db-0", "db-1", "db-2"].into_iter().filter(|n| *n != evicted) {
        let result = crate::policies::policy_result(&ctx, name, &policy, |r| {
            r.message.contains("WorkloadUnavailable")
        })
        .await;
        assert_eq!(
            result.action,
            seccomp_sentinel::api::PolicyAction::EvictionPending,
            "{name}: {}",
            result.message
        );
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    for name in ["db-0", "db-1", "db-2"].into_iter().filter(|n| *n != evicted) {
        let pod = pods.get(name).await.expect("pod");
        assert_eq!(pod.uid(), Some(before[name].clone()), "{name} was evicted too");
    }
    assert_eq!(operator.evictions(), 1);
    crate::policies::delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

#[tokio::test]
async fn a_recreated_pod_does_not_inherit_the_earlier_pods_runtime_findings() {
    let nodes = nodes::nodes();
    let ctx = node_context("recreated").await;
    let pods: Api<Pod> = ctx.api();
    let statuses: Api<SeccompStatus> = ctx.api();
    let operator = Operator::for_namespace(&ctx).await;
    let confined = json!({ "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } } });
    let first = pod("web", &nodes.a.name, REPORT, confined.clone());
    pods.create(&PostParams::default(), &first).await.expect("pod");
    let first = wait_running(&pods, "web").await;
    wait_for("the agent's findings", TIMEOUT, || async {
        let s = statuses.get_opt("web").await.ok()??.status?;
        let agrees = s.runtime_verified().is_some_and(|c| c.reason == "Agrees");
        (agrees && s.containers.iter().any(|c| c.runtime.is_some())).then_some(())
    })
    .await;
    // Gone without taking its status along (the owner reference goes instead), so that the
    // garbage collector cannot remove the status before the new pod's pass.
    pods.delete(
        "web",
        &kube::api::DeleteParams {
            grace_period_seconds: Some(0),
            propagation_policy: Some(kube::api::PropagationPolicy::Orphan),
            ..Default::default()
        },
    )
    .await
    .expect("delete");
    wait_for("the first pod gone", TIMEOUT, || async {
        let current = pods.get_opt("web").await.ok()?;
        current.is_none_or(|p| p.uid() != first.uid()).then_some(())
    })
    .await;
    // Its replacement waits for a node that does not exist.
    let mut second = pod(
        "web",
        &nodes.a.name,
        REPORT,
        merge_into(
            confined,
            json!({ "nodeSelector": { "seccomp.sentinel.dev/nowhere": "x" } }),
        ),
    );
    if let Some(spec) = second.spec.as_mut() {
        spec.node_name = None;
    }
    let second = pods.create(&PostParams::default(), &second).await.expect("pod");
    let second_uid = second.uid().expect("uid");
    let status = wait_for("the new pod's status", TIMEOUT, || async {
        let s = statuses.get_opt("web").await.ok()??;
        (s.pod_uid() == Some(second_uid.as_str()) && s.spec.pod_uid == second_uid).then_some(s)
    })
    .await;
    let content = status.status.expect("status");
    assert_eq!(content.runtime, None, "the earlier pod's files: {content:?}");
    assert!(
        content.containers.iter().all(|c| c.runtime.is_none()),
        "the earlier pod's findings: {content:?}"
    );
    assert!(content.runtime_verified().is_none(), "{:?}", content.conditions);
    assert_eq!(content.node, None);
    operator.stop().await;
}

/// A container that stopped keeps the agent's last finding: here an unconfined init container
/// that finished before the app container started. Before, the agent rewrote the findings of
/// the running containers only, so the app's first finding took the init container's away (and
/// a container waiting to restart, or an ephemeral one that exited, lost its finding the same
/// way), while a pod whose containers had all stopped kept every finding.
#[tokio::test]
async fn a_finished_init_container_keeps_what_the_agent_read() {
    let nodes = nodes::nodes();
    let ctx = node_context("init-kept").await;
    let pods: Api<Pod> = ctx.api();
    let statuses: Api<SeccompStatus> = ctx.api();
    let operator = Operator::for_namespace(&ctx).await;
    let unconfined = json!({ "seccompProfile": { "type": "Unconfined" } });
    let mut init = container("init", "sleep 8");
    init["securityContext"] = unconfined;
    let spec = pod(
        "web",
        &nodes.a.name,
        REPORT,
        json!({ "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } }, "initContainers": [init] }),
    );
    pods.create(&PostParams::default(), &spec).await.expect("pod");
    // Read while it runs (the agent scans every 3 s here, and when the pod changes).
    let while_running = wait_for("the agent's finding for the init container", TIMEOUT, || async {
        let s = statuses.get_opt("web").await.ok()??;
        observed(&s, "init").cloned()
    })
    .await;
    assert_eq!(while_running.seccomp_mode, SeccompMode::Disabled);
    wait_running(&pods, "web").await;
    let status = wait_for("the agent's finding for the app container", TIMEOUT, || async {
        let s = statuses.get_opt("web").await.ok()??;
        observed(&s, "app").is_some().then_some(s)
    })
    .await;
    assert_eq!(
        observed(&status, "app").map(|o| o.seccomp_mode),
        Some(SeccompMode::Filter)
    );
    assert_eq!(
        observed(&status, "init"),
        Some(&while_running),
        "the finished init container's finding, as it was read: {:?}",
        status.status.as_ref().map(|s| &s.containers)
    );
    let verified = status
        .status
        .as_ref()
        .and_then(|s| s.runtime_verified())
        .map(|c| (c.reason.clone(), c.message.clone()));
    assert_eq!(
        verified,
        Some((
            "Agrees".into(),
            "1 running container matches its effective profile".into()
        )),
        "the condition speaks of the running containers"
    );
    operator.stop().await;
}

/// The processes of the container whose init is `init`, other than the init: every host
/// process in the same cgroup.
fn others_in_cgroup_of(init: u32) -> Vec<u32> {
    let cgroup = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok();
    let Some(own) = cgroup(&init.to_string()) else {
        return Vec::new();
    };
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != init && cgroup(&pid.to_string()).as_ref() == Some(&own))
        .collect()
}

fn set_last_pid(pid: u32) {
    std::fs::write("/proc/sys/kernel/ns_last_pid", pid.to_string())
        .expect("write /proc/sys/kernel/ns_last_pid (the node tests run as root)");
}

/// PIDs wrap (at 32,768 on many nodes): a process a container starts after the wrap has a lower
/// PID than the container's init. The agent still reads the init, the process the runtime
/// names (`crictl inspect` → `.info.pid`), not the container's lowest PID.
#[tokio::test]
async fn the_agent_reads_the_containers_init_after_the_pids_wrap() {
    let nodes = nodes::nodes();
    let ctx = node_context("pid-wrap").await;
    let pods: Api<Pod> = ctx.api();
    let statuses: Api<SeccompStatus> = ctx.api();
    let operator = Operator::for_namespace(&ctx).await;
    let signal = tempfile::tempdir().expect("signal dir");
    let mut spec = pod(
        "wrap",
        &nodes.a.name,
        "while [ ! -e /signal/go ]; do sleep 1; done; sleep 3600 & wait",
        json!({
            "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
            "volumes": [{ "name": "signal", "hostPath": { "path": signal.path() } }],
        }),
    );
    if let Some(app) = spec.spec.as_mut().and_then(|s| s.containers.first_mut()) {
        app.volume_mounts = Some(vec![k8s_openapi::api::core::v1::VolumeMount {
            name: "signal".into(),
            mount_path: "/signal".into(),
            ..Default::default()
        }]);
    }
    // The init gets a PID in the upper half of the range, whatever the host's counter is at.
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .expect("pid_max")
        .trim()
        .parse()
        .expect("pid_max");
    set_last_pid(pid_max / 2);
    pods.create(&PostParams::default(), &spec).await.expect("pod");
    let running = wait_running(&pods, "wrap").await;
    let init = kernel_view(&nodes.a, &container_id(&running, "app"))
        .pid
        .expect("the container's init");
    let agent_pid = |s: SeccompStatus| observed(&s, "app").and_then(|r| r.pid);
    wait_for("the agent's reading of the init", TIMEOUT, || async {
        let s = statuses.get_opt("wrap").await.ok()??;
        (agent_pid(s) == Some(i64::from(init))).then_some(())
    })
    .await;

    // The wrap, then the container starts a process.
    set_last_pid(300);
    std::fs::write(signal.path().join("go"), "").expect("signal");
    let child = wait_for("the container's second process", TIMEOUT, || async {
        let others = others_in_cgroup_of(init);
        others.iter().copied().find(|pid| *pid < init)
    })
    .await;
    // A pod change makes the agent look again at once; its scans come every 3 s besides.
    ctx.kubectl(&["annotate", "pod", "-n", &ctx.ns, "wrap", "looked-at=again"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    while tokio::time::Instant::now() < deadline {
        let s = statuses.get("wrap").await.expect("status");
        assert_eq!(
            agent_pid(s),
            Some(i64::from(init)),
            "the agent took process {child}, started after the wrap, for the init {init}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    operator.stop().await;
}

#[tokio::test]
async fn the_agent_follows_a_kubelet_restart_and_flags_pods_started_before_it() {
    let ctx = node_context("kubelet-restart").await;
    let mut node = nodes::own_node("restart", false);
    let handle = node.handle();
    wait_node_facts(&ctx.client, &handle.name, false).await;
    let agent_pods: Api<Pod> = Api::namespaced(ctx.client.clone(), nodes::AGENT_NAMESPACE);
    let agent = running_agent_of(&ctx.client, &handle.name, None).await;
    let pods: Api<Pod> = ctx.api();

    // A pod meant for the shared test nodes (it tolerates their taint, as an operator another
    // test installs does) is not scheduled here, where it would go with this test's kubelet.
    let stray = json!({
        "nodeName": null,
        "tolerations": [{ "key": sentinel_testenv::node::NODE_TAINT, "operator": "Exists" }],
        "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{ "matchExpressions": [
                { "key": "kubernetes.io/hostname", "operator": "In", "values": [handle.name] }] }] } } },
    });
    pods.create(&PostParams::default(), &pod("stray", "", REPORT, stray))
        .await
        .expect("pod");
    let refused = wait_for("the stray pod's scheduling verdict", TIMEOUT, || async {
        let p = pods.get("stray").await.ok()?;
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
        let scheduled = p
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled")?;
        Some((node, scheduled.status, scheduled.message.unwrap_or_default()))
    })
    .await;
    assert_eq!(
        (refused.0.as_deref(), refused.1.as_str()),
        (None, "False"),
        "{refused:?}"
    );
    assert!(refused.2.contains("untolerated taint"), "{refused:?}");
    pods.delete("stray", &Default::default()).await.expect("delete");

    let mut config = support::namespace_config(&ctx);
    config.kubelet_seccomp_default = seccomp_sentinel::api::KubeletSeccompDefault::Unknown;
    let operator = Operator::start(ctx.client.clone(), config).await;
    let statuses: Api<SeccompStatus> = ctx.api();
    let condition = |s: &SeccompStatus| {
        s.status
            .as_ref()
            .and_then(|s| s.runtime_verified())
            .map(|c| c.reason.clone())
    };
    started_asking_nothing(&pods, &handle, "before", 0).await;
    wait_for("before: Unconfined, verified", TIMEOUT, || async {
        let s = statuses.get_opt("before").await.ok()??;
        let unconfined = entry(&s, "app").profile.type_ == ProfileType::Unconfined;
        (unconfined && condition(&s).as_deref() == Some("Agrees")).then_some(())
    })
    .await;

    // The kubelet comes back with seccompDefault on, laid out as some installers do: its
    // `--config` an absolute link (which the agent, in its container, must follow in the node's
    // root) to a file that says off, and a `--config-dir` whose drop-in in a subdirectory, read
    // last, says `yes`, as many configuration tools write it (the kubelet reads YAML 1.1
    // booleans; a file not named `*.conf` it does not read). The pod started after it shows what
    // the kubelet made of that; the agent, not restarted, notices.
    let drop_in = |value: &str| {
        format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nseccompDefault: {value}\n"
        )
    };
    let (off, on) = (drop_in("false"), drop_in("yes"));
    node.restart_kubelet_with_drop_ins(
        false,
        &[
            ("10-off.conf", &off),
            ("later/20-on.conf", &on),
            ("later/30-off.yaml", &off),
        ],
    )
    .expect("kubelet restart");
    wait_node_facts(&ctx.client, &handle.name, true).await;
    let same_agent = agent_pods.get(&agent.name_any()).await.expect("agent pod");
    assert_eq!(same_agent.uid(), agent.uid());
    let restarts: i32 = same_agent
        .status
        .and_then(|s| s.container_statuses)
        .map(|c| c.iter().map(|c| c.restart_count).sum())
        .unwrap_or_default();
    assert_eq!(restarts, 0, "the agent was not restarted");

    // The pod started before still runs without a filter: now a mismatch.
    let flagged = wait_for("before: a mismatch", TIMEOUT, || async {
        let s = statuses.get_opt("before").await.ok()??;
        (condition(&s).as_deref() == Some("Mismatch")).then_some(s)
    })
    .await;
    let app = entry(&flagged, "app");
    assert_eq!(
        (app.profile.type_, app.source),
        (
            ProfileType::RuntimeDefault,
            seccomp_sentinel::api::ProfileSource::KubeletDefault
        )
    );
    assert_eq!(
        observed(&flagged, "app").map(|r| r.seccomp_mode),
        Some(SeccompMode::Disabled)
    );
    // A pod started now gets the runtime's default filter, and agrees.
    started_asking_nothing(&pods, &handle, "after", 2).await;
    wait_for("after: RuntimeDefault, verified", TIMEOUT, || async {
        let s = statuses.get_opt("after").await.ok()??;
        let default = entry(&s, "app").source == seccomp_sentinel::api::ProfileSource::KubeletDefault;
        (default && condition(&s).as_deref() == Some("Agrees")).then_some(())
    })
    .await;

    // A drop-in that sets it to null (`seccompDefault:` with nothing after it, as a template
    // with an empty value writes it) takes back what an earlier one set: the kubelet merges its
    // drop-ins as JSON merge patches, and the pod started next runs without a filter.
    let reset = on.replace("seccompDefault: yes", "seccompDefault:");
    node.restart_kubelet_with_drop_ins(false, &[("10-on.conf", &on), ("20-reset.conf", &reset)])
        .expect("kubelet restart");
    wait_node_facts(&ctx.client, &handle.name, false).await;
    started_asking_nothing(&pods, &handle, "reset", 0).await;
    wait_for("reset: Unconfined, verified", TIMEOUT, || async {
        let s = statuses.get_opt("reset").await.ok()??;
        let unconfined = entry(&s, "app").profile.type_ == ProfileType::Unconfined;
        (unconfined && condition(&s).as_deref() == Some("Agrees")).then_some(())
    })
    .await;

    // Lines appended to a file that already sets them (`echo ... >> config.yaml`): the kubelet's
    // strict decoding refuses the duplicate keys, its lenient decoding keeps the last values, and
    // the pod started next runs with the runtime's filter.
    node.restart_kubelet_appending(false, "seccompDefault: true\nmaxPods: 110\n")
        .expect("kubelet restart");
    wait_node_facts(&ctx.client, &handle.name, true).await;
    started_asking_nothing(&pods, &handle, "appended", 2).await;
    operator.stop().await;
    node.stop();
}

/// Creates a pod asking for no profile on `node` and, once it runs, checks the `Seccomp:` line the
/// kernel shows for its container: what the kubelet made of its configuration (0: no filter, 2:
/// the runtime's default).
async fn started_asking_nothing(
    pods: &Api<Pod>,
    node: &sentinel_testenv::node::NodeHandle,
    name: &str,
    proc_seccomp: u8,
) {
    pods.create(&PostParams::default(), &pod(name, &node.name, REPORT, json!({})))
        .await
        .expect("pod");
    let running = wait_running(pods, name).await;
    assert_eq!(
        kernel_view(node, &container_id(&running, "app")).proc_seccomp,
        Some(proc_seccomp),
        "{name}"
    );
}

/// The running node agent pod of `node`, other than `not` (one deleted).
async fn running_agent_of(client: &kube::Client, node: &str, not: Option<&str>) -> Pod {
    let agent_pods: Api<Pod> = Api::namespaced(client.clone(), nodes::AGENT_NAMESPACE);
    wait_for(&format!("the agent on {node}"), TIMEOUT, || async {
        let list = agent_pods.list(&Default::default()).await.ok()?.items;
        list.into_iter().find(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                && p.metadata.deletion_timestamp.is_none()
                && p.metadata.uid.as_deref() != not
        })
    })
    .await
}

/// The kubelet reads its configuration when it starts, so a file edited since says what its next
/// start runs with. The agent keeps reporting what it read for this start of the kubelet (an agent
/// started after the edit too, from the Node), and says `unknown` where nobody read it before the
/// edit; a pod that asks for nothing is then not taken for confined by a default its kubelet
/// does not apply.
#[tokio::test]
async fn a_kubelet_configuration_edited_without_a_restart_is_not_what_the_kubelet_runs() {
    use seccomp_sentinel::{
        agent::{KUBELET_DEFAULT_ANNOTATION, KUBELET_STARTED_ANNOTATION},
        api::{KubeletSeccompDefault, ProfileSource},
    };
    let ctx = node_context("kubelet-edit").await;
    let mut node = nodes::own_node("edit", false);
    let handle = node.handle();
    wait_node_facts(&ctx.client, &handle.name, false).await;
    let node_api: Api<k8s_openapi::api::core::v1::Node> = Api::all(ctx.client.clone());
    let annotation = |key: &'static str| {
        let node_api = node_api.clone();
        let name = handle.name.clone();
        async move {
            let node = node_api.get(&name).await.expect("node");
            node.annotations().get(key).cloned()
        }
    };
    let started = annotation(KUBELET_STARTED_ANNOTATION)
        .await
        .expect("the kubelet's start is reported");

    let mut config = support::namespace_config(&ctx);
    config.kubelet_seccomp_default = KubeletSeccompDefault::False;
    let operator = Operator::start(ctx.client.clone(), config).await;
    let pods: Api<Pod> = ctx.api();
    let statuses: Api<SeccompStatus> = ctx.api();
    // A pod's status once the agent has verified it (in a pass that read the kubelet's files
    // again: it reports the node before it scans).
    let verified = |name: &'static str| {
        let statuses = statuses.clone();
        async move {
            wait_for(&format!("{name}: verified by the agent"), TIMEOUT, || async {
                let s = statuses.get_opt(name).await.ok()??;
                let reason = s.status.as_ref()?.runtime_verified()?.reason.clone();
                (reason == "Agrees" || reason == "Mismatch").then_some(s)
            })
            .await
        }
    };
    let assert_unconfined = |s: &SeccompStatus, default: KubeletSeccompDefault| {
        let app = entry(s, "app");
        assert_eq!(
            (app.profile.type_, app.source),
            (ProfileType::Unconfined, ProfileSource::None),
            "{s:?}"
        );
        assert_eq!(
            s.status.as_ref().map(|s| s.kubelet_seccomp_default),
            Some(default)
        );
        assert_eq!(
            s.status
                .as_ref()
                .and_then(|s| s.runtime_verified())
                .map(|c| c.reason.as_str()),
            Some("Agrees"),
            "the kernel agrees: {s:?}"
        );
    };

    // seccompDefault turned on in the file; the kubelet is not restarted.
    let path = node.kubelet_config();
    let text = std::fs::read_to_string(&path).expect("kubelet configuration");
    assert!(text.contains("seccompDefault: false"), "{text}");
    std::fs::write(
        &path,
        text.replace("seccompDefault: false", "seccompDefault: true"),
    )
    .expect("edit the kubelet configuration");
    pods.create(
        &PostParams::default(),
        &pod("edited", &handle.name, REPORT, json!({})),
    )
    .await
    .expect("pod");
    let edited = wait_running(&pods, "edited").await;
    assert_eq!(
        kernel_view(&handle, &container_id(&edited, "app")).proc_seccomp,
        Some(0),
        "the kubelet runs with the setting it started with"
    );
    let status = verified("edited").await;
    assert_unconfined(&status, KubeletSeccompDefault::False);
    assert_eq!(
        annotation(KUBELET_DEFAULT_ANNOTATION).await.as_deref(),
        Some("false")
    );

    // An agent started after the edit reports what the one before it read for this start.
    let agent = running_agent_of(&ctx.client, &handle.name, None).await;
    let agent_pods: Api<Pod> = Api::namespaced(ctx.client.clone(), nodes::AGENT_NAMESPACE);
    let restart_agent = |agent: Pod| {
        let agent_pods = agent_pods.clone();
        let client = ctx.client.clone();
        let node = handle.name.clone();
        async move {
            agent_pods
                .delete(&agent.name_any(), &Default::default())
                .await
                .expect("delete the agent pod");
            // Gone, so what follows is the new agent's doing.
            wait_for("the agent pod gone", TIMEOUT, || async {
                agent_pods
                    .get_opt(&agent.name_any())
                    .await
                    .ok()?
                    .is_none()
                    .then_some(())
            })
            .await;
            running_agent_of(&client, &node, agent.metadata.uid.as_deref()).await
        }
    };
    restart_agent(agent).await;
    pods.create(
        &PostParams::default(),
        &pod("after-agent", &handle.name, REPORT, json!({})),
    )
    .await
    .expect("pod");
    wait_running(&pods, "after-agent").await;
    assert_unconfined(&verified("after-agent").await, KubeletSeccompDefault::False);
    assert_eq!(
        annotation(KUBELET_DEFAULT_ANNOTATION).await.as_deref(),
        Some("false"),
        "the new agent reports the setting read before the edit"
    );
    assert_eq!(
        annotation(KUBELET_STARTED_ANNOTATION).await,
        Some(started.clone())
    );

    // Nobody's reading left (the annotations removed, the agent started again): not known.
    ctx.kubectl(&[
        "annotate",
        "node",
        &handle.name,
        &format!("{KUBELET_DEFAULT_ANNOTATION}-"),
        &format!("{KUBELET_STARTED_ANNOTATION}-"),
    ]);
    let agent = running_agent_of(&ctx.client, &handle.name, None).await;
    restart_agent(agent).await;
    wait_for("the kubelet's setting reported unknown", TIMEOUT, || async {
        (annotation(KUBELET_DEFAULT_ANNOTATION).await.as_deref() == Some("unknown")).then_some(())
    })
    .await;
    let unknown = wait_for("edited: judged with the setting unknown", TIMEOUT, || async {
        let s = statuses.get_opt("edited").await.ok()??;
        (s.status.as_ref()?.kubelet_seccomp_default == KubeletSeccompDefault::Unknown).then_some(s)
    })
    .await;
    assert_unconfined(&unknown, KubeletSeccompDefault::Unknown);

    // The kubelet restarted reads the file: on, for its new start.
    node.restart_kubelet(true).expect("kubelet restart");
    wait_node_facts(&ctx.client, &handle.name, true).await;
    assert_ne!(annotation(KUBELET_STARTED_ANNOTATION).await, Some(started));
    operator.stop().await;
    node.stop();
}

/// The manager installed as `config/default` installs it, as two real pods that elect a leader
/// through the Lease. Overrides: the image (local, never pulled), the host's network with the API
/// server on loopback, a toleration of the test nodes' taint, the scope (the test cluster is
/// shared: one namespace, this test's policies), ephemeral health and metrics ports (two replicas share the host's network, so
/// `:8080`/`:8081` would collide and probes could not tell them apart; probes and declared ports go).
#[tokio::test]
async fn the_operator_runs_as_pods_from_config_default_and_fails_over() {
    use k8s_openapi::api::coordination::v1::Lease;
    nodes::nodes();
    let ctx = node_context("operator-pods").await;
    let operator_ns = format!("{}-op", ctx.ns);
    let prefix = format!("{}-", ctx.ns);
    ctx.kubectl(&["create", "namespace", &operator_ns]);
    ctx.kubectl(&[
        "label",
        "namespace",
        &operator_ns,
        &format!("{}=allowed", sentinel_testenv::node::NODE_PODS_LABEL),
    ]);
    let server = ctx
        .cluster
        .plane()
        .expect("local control plane")
        .server()
        .to_string();
    let port = install::api_server_port(&server);
    let overlay = nodes::overlay(
        "config/default",
        &format!(
            "namespace: {operator_ns}
namePrefix: {prefix}
{}patches:
- target: {{kind: Deployment}}
  patch: |
{}    - {{op: remove, path: /spec/template/spec/containers/0/ports}}
    - {{op: remove, path: /spec/template/spec/containers/0/livenessProbe}}
    - {{op: remove, path: /spec/template/spec/containers/0/readinessProbe}}
    - {{op: replace, path: /spec/template/spec/containers/0/args/2, value: --health-addr=127.0.0.1:0}}
    - {{op: replace, path: /spec/template/spec/containers/0/args/3, value: --metrics-addr=127.0.0.1:0}}
{}{}",
            install::image_override(),
            install::host_network_patch(port) + &install::node_toleration_patch(),
            install::env_patch("SENTINEL_NAMESPACES", &ctx.ns),
            install::env_patch(
                "SENTINEL_POLICY_SELECTOR",
                &format!("{}={}", support::POLICY_LABEL, ctx.ns)
            ),
        ),
    );
    let rendered = ctx.kubectl(&["kustomize", &overlay.display().to_string()]);
    let file = overlay.join("rendered.yaml");
    std::fs::write(&file, &rendered).expect("rendered");
    ctx.kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &file.display().to_string(),
    ]);

    let manager_pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &operator_ns);
    let running_managers = || async {
        let list = manager_pods.list(&Default::default()).await.ok()?.items;
        let running: Vec<Pod> = list
            .into_iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            })
            .collect();
        (running.len() == 2).then_some(running)
    };
    let managers = wait_for("two manager pods running", TIMEOUT, running_managers).await;
    let leases: Api<Lease> = Api::namespaced(ctx.client.clone(), &operator_ns);
    let holder = || async {
        leases
            .get_opt("seccomp-sentinel")
            .await
            .ok()??
            .spec?
            .holder_identity
    };
    let leader = wait_for("a leader", TIMEOUT, || async {
        let h = holder().await?;
        managers.iter().any(|p| p.name_any() == h).then_some(h)
    })
    .await;

    // The leader reports a pod of the watched namespace, and the agent verifies it.
    let pods: Api<Pod> = ctx.api();
    let statuses: Api<SeccompStatus> = ctx.api();
    let workload = |name: &str| {
        pod(
            name,
            &nodes::nodes().a.name,
            REPORT,
            json!({ "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } } }),
        )
    };
    pods.create(&PostParams::default(), &workload("before"))
        .await
        .expect("pod");
    let verified = |name: &'static str| {
        let statuses = statuses.clone();
        async move {
            wait_for(&format!("{name}: reported and verified"), TIMEOUT, || async {
                let s = statuses.get_opt(name).await.ok()??;
                let verified = s
                    .status
                    .as_ref()?
                    .runtime_verified()
                    .is_some_and(|c| c.reason == "Agrees");
                (s.status.as_ref()?.profile == seccomp_sentinel::api::PodProfile::RuntimeDefault && verified)
                    .then_some(s)
            })
            .await
        }
    };
    let before = verified("before").await;
    let managers_of = |s: &SeccompStatus| -> Vec<String> {
        s.managed_fields()
            .iter()
            .filter_map(|m| m.manager.clone())
            .collect()
    };
    assert!(
        managers_of(&before).contains(&"seccomp-sentinel".to_string()),
        "{:?}",
        managers_of(&before)
    );
    let wide = ctx.kubectl(&[
        "get",
        "seccompstatus",
        "before",
        "-n",
        &ctx.ns,
        "-o",
        "wide",
        "--no-headers",
    ]);
    assert!(
        wide.contains("RuntimeDefault") && wide.contains("Agrees"),
        "{wide}"
    );

    // The leader's pod goes: another replica (the standby, or the ReplicaSet's replacement if it is
    // quicker) takes over and keeps reporting.
    ctx.kubectl(&["delete", "pod", &leader, "-n", &operator_ns, "--wait=false"]);
    let new_leader = wait_for("another replica to lead", TIMEOUT, || async {
        holder().await.filter(|h| *h != leader)
    })
    .await;
    assert!(
        new_leader.starts_with(&format!("{prefix}seccomp-sentinel-")),
        "{new_leader}"
    );
    pods.create(&PostParams::default(), &workload("after"))
        .await
        .expect("pod");
    verified("after").await;
    // Nothing written twice across the failover.
    let again = statuses.get("before").await.expect("status");
    assert_eq!(
        again.metadata.resource_version, before.metadata.resource_version,
        "the new leader found the status current"
    );

    ctx.kubectl(&["delete", "namespace", &operator_ns, "--wait=false"]);
    for kind in ["clusterrolebinding", "clusterrole"] {
        let _ = ctx.cluster.try_kubectl(&[
            "delete",
            kind,
            &format!("{prefix}seccomp-sentinel-manager"),
            "--ignore-not-found",
        ]);
    }
}

/// The agent's trust boundary (the ValidatingAdmissionPolicy of `config/agent`): with a token
/// bound to its pod on node A, the agent may annotate node A with its own keys and write the
/// runtime fields of node A's SeccompStatuses, and nothing else: not node B, not node A's
/// labels, not a status of node B's pods, not the controller's fields.
#[tokio::test]
async fn an_agent_token_reaches_only_its_own_node() {
    use k8s_openapi::api::{authentication::v1::TokenRequest, core::v1::ServiceAccount};
    let nodes = nodes::nodes();
    let ctx = node_context("agent-boundary").await;
    let agent_pods: Api<Pod> = Api::namespaced(ctx.client.clone(), nodes::AGENT_NAMESPACE);
    let agent = wait_for("the agent on node A", TIMEOUT, || async {
        agent_pods
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(nodes.a.name.as_str()))
    })
    .await;
    let account = agent
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .expect("service account");
    let request: TokenRequest = serde_json::from_value(json!({ "spec": { "audiences": [], "expirationSeconds": 3600,
        "boundObjectRef": { "apiVersion": "v1", "kind": "Pod", "name": agent.name_any(), "uid": agent.uid() } } }))
    .expect("token request");
    let token = Api::<ServiceAccount>::namespaced(ctx.client.clone(), nodes::AGENT_NAMESPACE)
        .create_token_request(&account, &PostParams::default(), &request)
        .await
        .expect("a pod-bound token")
        .status
        .expect("token")
        .token;
    let kubeconfig: kube::config::Kubeconfig =
        serde_saphyr::from_str(&ctx.cluster.kubeconfig_with_token(&token)).expect("kubeconfig");
    let config = seccomp_sentinel::client::from_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let as_agent = kube::Client::try_from(config).expect("client");

    let node_api: Api<k8s_openapi::api::core::v1::Node> = Api::all(as_agent.clone());
    let annotate = |node: &str, key: &str| json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": node, "annotations": { key: "true" } } });
    // Not the agent's own field manager name: an apply under it would take the running agent's
    // annotations away (fields an apply leaves out are removed).
    let patch = |_: &str| kube::api::PatchParams::apply("agent-boundary-test").force();
    // The admission policy takes effect a moment after it is created: wait until it refuses
    // another node's annotation, tried as a dry run.
    let dry_run = kube::api::PatchParams {
        dry_run: true,
        ..patch("")
    };
    wait_for("the agent's admission policy to take effect", TIMEOUT, || async {
        let probe = node_api
            .patch(
                &nodes.b.name,
                &dry_run,
                &kube::api::Patch::Apply(annotate(&nodes.b.name, "seccomp.sentinel.dev/kernel-seccomp")),
            )
            .await;
        matches!(probe, Err(kube::Error::Api(s)) if s.message.contains("may not change node")).then_some(())
    })
    .await;
    let allowed = node_api
        .patch(
            &nodes.a.name,
            &patch("seccomp-sentinel-agent"),
            &kube::api::Patch::Apply(annotate(&nodes.a.name, "seccomp.sentinel.dev/kernel-seccomp")),
        )
        .await;
    assert!(allowed.is_ok(), "its own node's annotation: {allowed:?}");
    let refused = |result: Result<k8s_openapi::api::core::v1::Node, kube::Error>, what: &str| {
        assert!(
            matches!(&result, Err(kube::Error::Api(s)) if s.code == 422 || s.code == 403),
            "{what} must be refused: {result:?}"
        );
    };
    refused(
        node_api
            .patch(
                &nodes.b.name,
                &patch("seccomp-sentinel-agent"),
                &kube::api::Patch::Apply(annotate(
                    &nodes.b.name,
                    "seccomp.sentinel.dev/kubelet-seccomp-default",
                )),
            )
            .await,
        "another node's annotation",
    );
    let label = json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": nodes.a.name, "labels": { "pool": "evil" } } });
    refused(
        node_api
            .patch(
                &nodes.a.name,
                &patch("seccomp-sentinel-agent"),
                &kube::api::Patch::Apply(label),
            )
            .await,
        "a label on its own node",
    );

    // SeccompStatuses: one pod on each node, reported by an operator.
    let operator = Operator::for_namespace(&ctx).await;
    let pods: Api<Pod> = ctx.api();
    pods.create(
        &PostParams::default(),
        &pod("on-a", &nodes.a.name, REPORT, json!({})),
    )
    .await
    .expect("pod");
    pods.create(
        &PostParams::default(),
        &pod("on-b", &nodes.b.name, REPORT, json!({})),
    )
    .await
    .expect("pod");
    let statuses: Api<SeccompStatus> = ctx.api();
    for name in ["on-a", "on-b"] {
        wait_for(&format!("{name}: reported"), TIMEOUT, || async {
            statuses.get_opt(name).await.ok()?.and_then(|s| s.status)
        })
        .await;
    }
    let status_api: Api<SeccompStatus> = Api::namespaced(as_agent, &ctx.ns);
    let runtime = |name: &str| {
        json!({ "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompStatus", "metadata": { "name": name },
            "status": { "containers": [{ "name": "app", "runtime": { "seccompMode": "Disabled", "observedAt": "2026-12-01T00:00:00Z", "agreesWithEffective": true } }],
                "conditions": [{ "type": "RuntimeVerified", "status": "True", "reason": "Agrees", "message": "", "lastTransitionTime": "2026-12-01T00:00:00Z" }] } })
    };
    let own = status_api
        .patch(
            "on-a",
            &patch("seccomp-sentinel-agent"),
            &kube::api::Patch::Apply(runtime("on-a")),
        )
        .await;
    assert!(own.is_ok(), "the runtime fields of its own node's pod: {own:?}");
    // Its condition went beside the controller's, which are still there.
    let types: Vec<String> = own
        .expect("written")
        .status
        .expect("status")
        .conditions
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert!(
        types.contains(&"RuntimeVerified".to_string()) && types.contains(&"Confined".to_string()),
        "{types:?}"
    );
    let other = status_api
        .patch(
            "on-b",
            &patch("seccomp-sentinel-agent"),
            &kube::api::Patch::Apply(runtime("on-b")),
        )
        .await;
    assert!(
        matches!(&other, Err(kube::Error::Api(s)) if s.code == 422 || s.code == 403),
        "another node's pod: {other:?}"
    );
    // Every field the controller decides, each forged on its own: every property of `status`
    // in the CRD but the agent's `runtime` (a field added later without its line in the admission
    // policy is caught here), and the spec, owner and labels.
    let other_node = nodes.b.name.clone();
    let forged_status = [
        ("action", json!("Labeled")),
        (
            "conditions",
            json!([{ "type": "Confined", "status": "True", "reason": "AllConfined", "message": "", "lastTransitionTime": "2026-12-01T00:00:00Z" }]),
        ),
        ("confined", json!("9/9")),
        ("confinedContainers", json!(7)),
        (
            "containers",
            json!([{ "name": "app", "profile": { "type": "RuntimeDefault" }, "source": "PodField", "confined": true }]),
        ),
        ("kubeletSeccompDefault", json!("true")),
        ("node", json!(other_node)),
        (
            "policies",
            json!([{ "name": "forged", "verdict": "Compliant", "action": "None" }]),
        ),
        ("profile", json!("RuntimeDefault")),
        ("scc", json!("privileged")),
        ("source", json!("PodField")),
        ("strength", json!("AllowList")),
        ("totalContainers", json!(9)),
        ("unlistedContainers", json!(3)),
        ("verdict", json!("Compliant")),
    ];
    let crd = <SeccompStatus as kube::CustomResourceExt>::crd();
    let schema_fields: std::collections::BTreeSet<String> = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| s.properties.as_ref()?.get("status")?.properties.as_ref())
        .expect("the status schema")
        .keys()
        .filter(|k| *k != "runtime")
        .cloned()
        .collect();
    let forged_fields: std::collections::BTreeSet<String> =
        forged_status.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(
        forged_fields, schema_fields,
        "one forged value for each field the controller writes"
    );
    // In its own entries too: each field of a container the controller decides, beside the
    // agent's `runtime`; and an entry of the agent's making.
    let observed =
        json!({ "seccompMode": "Filter", "observedAt": "2026-12-01T00:00:00Z", "agreesWithEffective": true });
    let forged_container = [
        // (The pod asks for nothing on a node whose kubelet confines nothing by default.)
        ("confined", json!(true)),
        ("kind", json!("InitContainer")),
        ("profile", json!({ "type": "RuntimeDefault" })),
        ("source", json!("Privileged")),
        ("sourceInferred", json!(true)),
        ("strength", json!("DenyList")),
        ("strengthSource", json!("SeccompProfile")),
        ("warnings", json!(["forged"])),
    ];
    let container_fields: std::collections::BTreeSet<String> = serde_json::to_value(&crd)
        .expect("json")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        ["properties"]["containers"]["items"]["properties"]
        .as_object()
        .expect("the container schema")
        .keys()
        .filter(|k| *k != "name" && *k != "runtime")
        .cloned()
        .collect();
    assert_eq!(
        forged_container
            .iter()
            .map(|(k, _)| k.to_string())
            .collect::<std::collections::BTreeSet<_>>(),
        container_fields,
        "one forged value for each container field the controller writes"
    );
    let forged_entries = forged_container
        .into_iter()
        .map(|(field, value)| json!({ "name": "app", "runtime": observed, field: value }))
        .chain([json!({ "name": "made-up", "runtime": observed })])
        .map(|entry| json!({ "status": { "containers": [entry] } }));
    let forged_all = forged_status
        .into_iter()
        .map(|(field, value)| json!({ "status": { field: value } }))
        .chain(forged_entries)
        .chain([
            json!({ "spec": { "podUID": "forged" } }),
            json!({ "metadata": { "ownerReferences": [{ "apiVersion": "v1", "kind": "Pod", "name": "other", "uid": "forged" }] } }),
            json!({ "metadata": { "labels": { "seccomp.sentinel.dev/profile": "RuntimeDefault" } } }),
        ]);
    for forged in forged_all {
        let mut body = json!({ "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompStatus", "metadata": { "name": "on-a" } });
        for (key, value) in forged.as_object().expect("object") {
            match (
                body.get_mut(key).and_then(|b| b.as_object_mut()),
                value.as_object(),
            ) {
                (Some(part), Some(value)) => part.extend(value.clone()),
                _ => {
                    body[key] = value.clone();
                }
            }
        }
        let result = status_api
            .patch(
                "on-a",
                &patch("seccomp-sentinel-agent"),
                &kube::api::Patch::Apply(&body),
            )
            .await;
        // Refused by the agent's admission policy, not by the schema (a forged value the schema
        // refuses would prove nothing).
        assert!(
            matches!(&result, Err(kube::Error::Api(s)) if s.message.contains("the node agent may change only")),
            "the controller's fields ({forged}): {result:?}"
        );
    }
    operator.stop().await;
}
