//! Profile strength on real nodes: the node agent reads each Localhost profile the kubelet hands to
//! the runtime, the operator classifies it, and what the class says matches what the container can
//! do (a probe tries mkdir(2)). Files that cannot be used, links out of the seccomp directory and
//! the same path with different content on two nodes are reported, never guessed.
use std::{os::unix::fs::symlink, time::Duration};

use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
use kube::{Api, ResourceExt, api::PostParams};
use seccomp_sentinel::api::{
    ContainerSeccomp, PolicyAction, ProfileFile, ProfileFileState, ProfileStrength, SeccompStatus,
    StrengthSource, Verdict,
};
use serde_json::json;

use crate::{
    policies::{create_policy, delete_policy, evict_quickly, policy_result},
    support::{
        Operator,
        nodes::{self, container, node_context, pod},
        wait_for,
    },
};

const TIMEOUT: Duration = Duration::from_secs(120);
/// Tries mkdir(2), says what happened, then stays.
const PROBE: &str = "mkdir /tmp/probe && echo mkdir=allowed || echo mkdir=refused; exec sleep 3600";

const DENY_MKDIR: &str = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#;
const LOG_ONLY: &str = r#"{"defaultAction": "SCMP_ACT_LOG"}"#;
const ALLOW_ALL: &str =
    r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_LOG"}]}"#;
/// Denying rules that name no call: one with `names` empty, one naming misspelt calls (runc skips
/// names libseccomp does not know), two in Docker's `name` field, which containerd does not read.
/// mkdir stays allowed.
const DENIES_NOTHING: &str = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"},
    {"names": ["mkdri", "mkdiratt"], "action": "SCMP_ACT_ERRNO"},
    {"name": "mkdir", "action": "SCMP_ACT_ERRNO"}, {"name": "mkdirat", "action": "SCMP_ACT_ERRNO"}]}"#;

fn localhost(name: &str, node: &str, path: &str) -> Pod {
    pod(
        name,
        node,
        PROBE,
        json!({ "securityContext": { "seccompProfile": { "type": "Localhost", "localhostProfile": path } } }),
    )
}

/// Writes `files` (name, content) into a directory of this test's own under the node's seccomp
/// directory; returns the directory, relative to it (as a `localhostProfile` names it).
fn profile_dir(node: &sentinel_testenv::node::NodeHandle, namespace: &str, files: &[(&str, &str)]) -> String {
    let dir = format!("sentinel-{namespace}");
    let profiles = node.seccomp_dir().join(&dir);
    std::fs::create_dir_all(&profiles).expect("profile dir");
    for (name, content) in files {
        std::fs::write(profiles.join(name), content).expect("profile");
    }
    dir
}

/// The container `app` of `pod` once the operator has assessed what the agent reported.
async fn assessed(
    statuses: &Api<SeccompStatus>,
    pod: &str,
    done: impl Fn(&ContainerSeccomp) -> bool,
) -> (SeccompStatus, ContainerSeccomp) {
    wait_for(&format!("the strength of {pod}"), TIMEOUT, || async {
        let status = statuses.get_opt(pod).await.ok()??;
        let app = status
            .status
            .as_ref()?
            .containers
            .iter()
            .find(|c| c.name == "app")?
            .clone();
        done(&app).then_some((status, app))
    })
    .await
}

/// Waits until the node agent has recorded in the status the content `app` of `pod` started with;
/// returns its SHA-256.
async fn started_with(statuses: &Api<SeccompStatus>, pod: &str) -> String {
    wait_for(&format!("the content {pod} started with"), TIMEOUT, || async {
        let status = statuses.get_opt(pod).await.ok()??;
        let runtime = status.status?.runtime?;
        let entry = runtime.profile_files.into_iter().find(|f| f.name == "app")?;
        Some(entry.file.started_with?.sha256)
    })
    .await
}

/// Whether the operator says the container's profile file is not what it runs.
fn not_what_runs(container: &ContainerSeccomp) -> bool {
    container
        .warnings
        .iter()
        .any(|w| w.contains("is not what the container runs"))
}

/// Waits until `app` of `pod` is no longer said to run something else than its file (nor its file
/// said unreadable or unusable), and checks that the file is again the `DenyList` one first reported
/// (`first`).
async fn what_it_started_with_again(statuses: &Api<SeccompStatus>, pod: &str, first: &ProfileFile) {
    let (status, app) = assessed(statuses, pod, |c| {
        !not_what_runs(c)
            && !c
                .warnings
                .iter()
                .any(|w| w.contains("not read") || w.contains("not usable"))
    })
    .await;
    let now = file_of(&status).expect("the agent's report");
    assert!(!now.changed_after_start, "{now:?}");
    assert_eq!(now.sha256, first.sha256);
    assert_eq!(app.strength, Some(ProfileStrength::DenyList));
}

/// Waits until `app` of `pod` has a warning containing `marker` (its file changed, went, or is
/// not usable now), and checks [`judged_by_its_start`].
async fn still_runs_what_it_started_with(statuses: &Api<SeccompStatus>, pod: &str, marker: &str) {
    let (status, app) = assessed(statuses, pod, |c| c.warnings.iter().any(|w| w.contains(marker))).await;
    judged_by_its_start(&status, &app, marker);
}

/// `app` is judged by the `DenyList` content it started with, not by its file now: said so, and
/// enforcing (not `ProfileUnusable`: the container runs).
fn judged_by_its_start(status: &SeccompStatus, app: &ContainerSeccomp, phase: &str) {
    assert_eq!(app.strength, Some(ProfileStrength::DenyList), "{phase}: {app:?}");
    assert!(
        app.warnings
            .iter()
            .any(|w| w.contains("the content it started with is DenyList")),
        "{phase}: {:?}",
        app.warnings
    );
    assert_eq!(
        condition(status, "ProfilesEnforcing"),
        ("True".to_string(), "Enforcing".to_string()),
        "{phase}"
    );
}

/// The node agent's report of `app`'s profile file.
fn file_of(status: &SeccompStatus) -> Option<&ProfileFile> {
    status.status.as_ref()?.profile_file_of("app")
}

fn condition(status: &SeccompStatus, type_: &str) -> (String, String) {
    status
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| (c.status.clone(), c.reason.clone()))
        .unwrap_or_default()
}

async fn probe_result(pods: &Api<Pod>, node: &sentinel_testenv::node::NodeHandle, name: &str) -> String {
    let pod = nodes::wait_running(pods, name).await;
    wait_for(&format!("the probe of {name}"), TIMEOUT, || async {
        let log = nodes::log_of(node, &pod, "app");
        log.contains("mkdir=").then_some(log)
    })
    .await
}

#[tokio::test]
async fn each_profile_class_is_reported_and_matches_what_the_container_can_do() {
    let nodes = nodes::nodes();
    let ctx = node_context("strength").await;
    let (a, b) = (&nodes.a, &nodes.b);
    let dir = format!("sentinel-{}", ctx.ns);
    for (node, content) in [(a, DENY_MKDIR), (b, LOG_ONLY)] {
        let profiles = node.seccomp_dir().join(&dir);
        std::fs::create_dir_all(&profiles).expect("profile dir");
        std::fs::write(profiles.join("deny-mkdir.json"), DENY_MKDIR).expect("profile");
        std::fs::write(profiles.join("log-only.json"), LOG_ONLY).expect("profile");
        std::fs::write(profiles.join("allow-all.json"), ALLOW_ALL).expect("profile");
        std::fs::write(profiles.join("denies-nothing.json"), DENIES_NOTHING).expect("profile");
        std::fs::write(profiles.join("broken.json"), "{ not a profile").expect("profile");
        std::fs::write(profiles.join("empty-object.json"), "{}").expect("profile");
        // Two links to each other.
        let _ = symlink("loop-b.json", profiles.join("loop-a.json"));
        let _ = symlink("loop-a.json", profiles.join("loop-b.json"));
        // What mounting a profile that was not there yet leaves.
        std::fs::create_dir_all(profiles.join("mounted.json")).expect("a directory");
        // The same path with other content on each node.
        std::fs::write(profiles.join("drift.json"), content).expect("profile");
        // A link out of the seccomp directory: the runtime would follow it, the agent does not.
        let _ = symlink("/etc/hostname", profiles.join("escape.json"));
    }
    let operator = Operator::for_namespace(&ctx).await;
    let pods: Api<Pod> = ctx.api();
    let statuses: Api<SeccompStatus> = ctx.api();
    let path = |file: &str| format!("{dir}/{file}");
    for spec in [
        localhost("deny-list", &a.name, &path("deny-mkdir.json")),
        localhost("log-only", &a.name, &path("log-only.json")),
        localhost("permissive", &a.name, &path("allow-all.json")),
        localhost("denies-nothing", &a.name, &path("denies-nothing.json")),
        localhost("no-filter", &a.name, &path("empty-object.json")),
        localhost("link-loop", &a.name, &path("loop-a.json")),
        localhost("missing", &a.name, &path("not-there.json")),
        localhost("invalid", &a.name, &path("broken.json")),
        localhost("directory", &a.name, &path("mounted.json")),
        localhost("escape", &a.name, &path("escape.json")),
        localhost("drift-a", &a.name, &path("drift.json")),
        localhost("drift-b", &b.name, &path("drift.json")),
    ] {
        pods.create(&PostParams::default(), &spec)
            .await
            .expect("create pod");
    }

    // A deny list: reported as such, and it refuses what it lists.
    let (status, app) = assessed(&statuses, "deny-list", |c| {
        c.strength == Some(ProfileStrength::DenyList)
    })
    .await;
    assert_eq!(app.strength_source, Some(StrengthSource::Node), "{app:?}");
    let file = file_of(&status).expect("the agent's report");
    assert_eq!(file.state, ProfileFileState::Present);
    assert_eq!(file.default_action.as_deref(), Some("SCMP_ACT_ALLOW"));
    assert_eq!(file.syscall_rules, Some(1));
    assert_eq!(
        condition(&status, "ProfilesEnforcing"),
        ("True".into(), "Enforcing".into())
    );
    assert!(
        probe_result(&pods, a, "deny-list")
            .await
            .contains("mkdir=refused")
    );

    // Log only and permissive: running under a filter that blocks nothing.
    for (name, strength) in [
        ("log-only", ProfileStrength::LogOnly),
        ("permissive", ProfileStrength::Permissive),
        ("denies-nothing", ProfileStrength::Permissive),
        ("no-filter", ProfileStrength::Permissive),
    ] {
        let (status, _) = assessed(&statuses, name, |c| c.strength == Some(strength)).await;
        assert_eq!(
            condition(&status, "ProfilesEnforcing"),
            ("False".into(), "NotEnforcing".into()),
            "{name}"
        );
        assert!(
            probe_result(&pods, a, name).await.contains("mkdir=allowed"),
            "{name}"
        );
    }

    // Its rules are there, and why they deny nothing is said.
    let (_, app) = assessed(&statuses, "denies-nothing", |c| !c.warnings.is_empty()).await;
    let warning = app.warnings.join("; ");
    assert!(
        warning.contains("2 rules name no system call")
            && warning.contains("which the runtime skips: mkdiratt, mkdri")
            && warning.contains("2 rules name their calls only in Docker's `name` field"),
        "{warning}"
    );

    // `{}`: the runtime installs no filter at all (it is no invalid file: the container runs).
    let (status, app) = assessed(&statuses, "no-filter", |c| !c.warnings.is_empty()).await;
    assert!(
        app.warnings.iter().any(|w| w.contains("installs no filter")),
        "{:?}",
        app.warnings
    );
    assert_eq!(file_of(&status).and_then(|f| f.default_action.clone()), None);
    let running = nodes::wait_running(&pods, "no-filter").await;
    let view = nodes::kernel_view(a, &nodes::container_id(&running, "app"));
    assert_eq!(view.proc_seccomp, Some(0), "seccomp disabled: {view:?}");
    // The node agent's check says so, and why.
    let verified = wait_for("no-filter's runtime check", TIMEOUT, || async {
        let status = statuses.get_opt("no-filter").await.ok()??;
        let condition = status
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "RuntimeVerified" && c.reason == "Mismatch")?;
        Some(condition.message)
    })
    .await;
    assert!(verified.contains("the runtime installed no filter"), "{verified}");

    // Missing and invalid files: the container never starts, and the status says why.
    for (name, strength) in [
        ("missing", ProfileStrength::Missing),
        ("invalid", ProfileStrength::Invalid),
        ("directory", ProfileStrength::Invalid),
        ("link-loop", ProfileStrength::Invalid),
    ] {
        let (status, app) = assessed(&statuses, name, |c| c.strength == Some(strength)).await;
        assert_eq!(
            condition(&status, "ProfilesEnforcing"),
            ("False".into(), "ProfileUnusable".into()),
            "{name}: {app:?}"
        );
        let waiting = wait_for(&format!("{name} to be refused"), TIMEOUT, || async {
            let p = pods.get(name).await.ok()?;
            let state = p.status?.container_statuses?.first()?.state.clone()?;
            // ContainerCreating first, then the runtime's refusal.
            state.waiting?.reason.filter(|r| r.starts_with("CreateContainer"))
        })
        .await;
        assert!(!waiting.is_empty(), "{name}");
    }

    // A link out of the directory is not read: unknown, with the reason, never a guess.
    let (status, app) = assessed(&statuses, "escape", |c| {
        c.strength == Some(ProfileStrength::Unknown) && c.warnings.iter().any(|w| w.contains("Refused"))
    })
    .await;
    let file = file_of(&status).expect("the agent's report");
    assert_eq!(file.state, ProfileFileState::Refused, "{file:?}");
    assert!(file.sha256.is_none(), "{file:?}");
    assert!(
        app.warnings.iter().any(|w| w.contains("Refused")),
        "{:?}",
        app.warnings
    );
    assert_eq!(
        condition(&status, "ProfilesEnforcing"),
        ("Unknown".into(), "StrengthUnknown".into())
    );

    // Same path, different content on the two nodes: both pods say so, and an Event names a node.
    for name in ["drift-a", "drift-b"] {
        let (_, app) = assessed(&statuses, name, |c| {
            c.warnings.iter().any(|w| w.contains("differs between nodes"))
        })
        .await;
        let warning = app
            .warnings
            .iter()
            .find(|w| w.contains("differs between nodes"))
            .expect("warning");
        assert!(
            warning.contains(&a.name) && warning.contains(&b.name),
            "{warning}"
        );
    }
    let (_, drift_b) = assessed(&statuses, "drift-b", |c| {
        c.strength == Some(ProfileStrength::LogOnly)
    })
    .await;
    assert_eq!(drift_b.strength_source, Some(StrengthSource::Node));
    let drift_events = || {
        let events = ctx.kubectl(&[
            "get",
            "events",
            "-n",
            "default",
            "--field-selector",
            "reason=ProfileDrift",
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ]);
        events
            .lines()
            .filter(|m| m.contains(&format!("{} differs", path("drift.json"))))
            .count()
    };
    wait_for("the drift Event", TIMEOUT, || async {
        (drift_events() > 0).then_some(())
    })
    .await;
    assert_eq!(drift_events(), 1, "one Event for the path");

    // A restart finds the path differing again, and the Event the last process recorded.
    operator.stop().await;
    let operator = Operator::for_namespace(&ctx).await;
    wait_for("the drift found again", TIMEOUT, || async {
        (operator
            .ctx
            .stats
            .drift_reports
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0)
        .then_some(())
    })
    .await;
    assert_eq!(drift_events(), 1, "not announced again after a restart");

    // kubectl shows the strength column.
    let wide = ctx.kubectl(&["get", "sst", "-n", &ctx.ns, "-o", "wide", "--no-headers"]);
    let row = |name: &str| {
        wide.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("deny-list").contains("DenyList"), "{wide}");
    assert!(row("log-only").contains("LogOnly"), "{wide}");
    assert!(row("missing").contains("Missing"), "{wide}");

    // The one-shot live audit grades each profile as the operator does, from the same reports
    // of the node agent (kept in the pods' SeccompStatuses).
    let audited = ctx.live_audit(&[]);
    let items = audited["items"].as_array().expect("items");
    assert_eq!(items.len(), 12, "{audited}");
    for item in items {
        let name = item["metadata"]["name"].as_str().expect("name");
        let stored = statuses.get(name).await.expect("status");
        let app = stored
            .status
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == "app"))
            .expect("app");
        let audited_app = &item["status"]["containers"][0];
        assert_eq!(
            (&audited_app["strength"], &audited_app["strengthSource"]),
            (
                &serde_json::json!(app.strength),
                &serde_json::json!(app.strength_source)
            ),
            "{name}: the audit and the operator"
        );
    }
    operator.stop().await;
}

/// The runtime reads a Localhost profile when it creates the container: a file changed on the
/// node afterwards is not what the container runs. The agent says so, the strength is that of the
/// content the container started with (not the new file's class), and the container, probing
/// once a second, still enforces that content; a file removed while the container runs is not
/// "cannot start"; the file put back as it was is what the container runs again.
/// Creates a pod on `node` running the Localhost profile `path`, and returns what its probe says.
async fn started_probe(
    pods: &Api<Pod>,
    node: &sentinel_testenv::node::NodeHandle,
    name: &str,
    path: &str,
) -> String {
    pods.create(&PostParams::default(), &localhost(name, &node.name, path))
        .await
        .expect("create pod");
    probe_result(pods, node, name).await
}

/// How the runtime refused to start `app` of `name`: its message, once the container is waiting
/// for a create that failed (containerd's decoding) or has ended without starting (runc's checks).
async fn runtime_refusal(pods: &Api<Pod>, name: &str) -> String {
    wait_for(&format!("{name} to be refused"), TIMEOUT, || async {
        let status = pods
            .get(name)
            .await
            .ok()?
            .status?
            .container_statuses?
            .into_iter()
            .next()?;
        let waiting = status.state.and_then(|s| s.waiting).filter(|w| {
            w.reason
                .as_deref()
                .is_some_and(|r| r.starts_with("CreateContainer"))
        });
        let not_started = status
            .last_state
            .and_then(|s| s.terminated)
            .filter(|t| t.reason.as_deref() == Some("StartError"));
        waiting
            .and_then(|w| w.message)
            .or_else(|| not_started.and_then(|t| t.message))
    })
    .await
}

/// Profile files as containerd decodes them (Go's encoding/json: keys in any case, a repeated key
/// decoding over the first, types checked in every field it knows) and as runc and libseccomp
/// check them (architectures, comparisons, names, argument indexes, errno values, flags,
/// SCMP_ACT_NOTIFY): the class matches what the container does, and a file the runtime refuses is
/// `Invalid`.
#[tokio::test]
async fn profiles_are_read_as_the_runtime_decodes_and_checks_them() {
    let nodes = nodes::nodes();
    let ctx = node_context("decoding").await;
    let a = &nodes.a;
    let deny = r#"[{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]"#;
    let allow_but =
        |extra: &str| format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", {extra}"syscalls": {deny}}}"#);
    let files = [
        (
            "go-case",
            r#"{"DefaultAction": "SCMP_ACT_ALLOW", "SYSCALLS": [{"Names": ["mkdir", "mkdirat"], "Action": "SCMP_ACT_ERRNO"}]}"#
                .to_string(),
        ),
        ("long-s", format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "ſyscalls": {deny}}}"#)),
        (
            "repeated",
            format!(r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [], "defaultAction": "SCMP_ACT_ALLOW", "syscalls": {deny}}}"#),
        ),
        ("null-text", allow_but(r#""defaultAction": null, "#)),
        ("null-list", format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {deny}, "syscalls": null}}"#)),
        // Latin-1, not UTF-8, in a field containerd does not read.
        ("odd-bytes", allow_but("\"comment\": \"caf\u{1}\", ")),
        ("wrong-type", allow_but(r#""architectures": "SCMP_ARCH_X86_64", "#)),
        (
            "fraction",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1.0}]}"#
                .to_string(),
        ),
        ("array", r#"["SCMP_ACT_ALLOW"]"#.to_string()),
        ("unknown-arch", allow_but(r#""architectures": ["SCMP_ARCH_NOPE"], "#)),
        (
            "unknown-op",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NOPE"}]}]}"#
                .to_string(),
        ),
        (
            "same-as-default",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 65537}]}"#
                .to_string(),
        ),
        (
            "empty-name",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#
                .to_string(),
        ),
        (
            "seventh-argument",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#
                .to_string(),
        ),
        (
            "errno-too-large",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}"#
                .to_string(),
        ),
        ("flags", allow_but(r#""flags": ["SECCOMP_FILTER_FLAG_LOG"], "#)),
        (
            "notify-default",
            r#"{"defaultAction": "SCMP_ACT_NOTIFY", "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}"#
                .to_string(),
        ),
    ];
    let profiles = a.seccomp_dir().join(format!("sentinel-{}", ctx.ns));
    std::fs::create_dir_all(&profiles).expect("profile dir");
    for (name, content) in &files {
        let bytes: Vec<u8> = content.bytes().map(|b| if b == 1 { 0xe9 } else { b }).collect();
        std::fs::write(profiles.join(format!("{name}.json")), bytes).expect("profile");
    }
    let _operator = Operator::for_namespace(&ctx).await;
    let pods: Api<Pod> = ctx.api();
    let statuses: Api<SeccompStatus> = ctx.api();
    for (name, _) in &files {
        let spec = localhost(name, &a.name, &format!("sentinel-{}/{name}.json", ctx.ns));
        pods.create(&PostParams::default(), &spec)
            .await
            .expect("create pod");
    }

    // Decoded as containerd decodes them: they run, and the class is what they do.
    for (name, strength, probe) in [
        ("go-case", ProfileStrength::DenyList, "mkdir=refused"),
        ("long-s", ProfileStrength::DenyList, "mkdir=refused"),
        ("repeated", ProfileStrength::DenyList, "mkdir=refused"),
        ("null-text", ProfileStrength::DenyList, "mkdir=refused"),
        ("odd-bytes", ProfileStrength::DenyList, "mkdir=refused"),
        ("same-as-default", ProfileStrength::DenyList, "mkdir=refused"),
        ("null-list", ProfileStrength::Permissive, "mkdir=allowed"),
    ] {
        let (_, app) = assessed(&statuses, name, |c| {
            c.strength.is_some_and(|s| s != ProfileStrength::Unknown)
        })
        .await;
        assert_eq!(app.strength, Some(strength), "{name}: {app:?}");
        assert!(probe_result(&pods, a, name).await.contains(probe), "{name}");
    }

    // Refused by containerd's decoding or by runc's checks: Invalid, as the runtime says.
    for (name, runtime_says) in [
        ("wrong-type", "cannot unmarshal string"),
        ("fraction", "cannot unmarshal number 1.0"),
        ("array", "cannot unmarshal array"),
        ("unknown-arch", "not a valid arch"),
        ("unknown-op", "not a valid operator"),
        ("empty-name", "empty string is not a valid syscall"),
        ("seventh-argument", "syscalls only have up to 6 arguments"),
        // libseccomp-golang words libseccomp's EINVAL so.
        (
            "errno-too-large",
            "error adding seccomp filter rule for syscall mkdir",
        ),
    ] {
        let (status, app) = assessed(&statuses, name, |c| {
            c.strength.is_some_and(|s| s != ProfileStrength::Unknown)
        })
        .await;
        assert_eq!(app.strength, Some(ProfileStrength::Invalid), "{name}: {app:?}");
        assert_eq!(
            condition(&status, "ProfilesEnforcing").1,
            "ProfileUnusable",
            "{name}"
        );
        let refusal = runtime_refusal(&pods, name).await;
        assert!(refusal.contains(runtime_says), "{name}: {refusal}");
    }

    // Refused by this node's runc (1.1) but not by every runtime: the class stays, the note says
    // why the container may not start.
    for (name, strength, note, runtime_says) in [
        (
            "flags",
            ProfileStrength::DenyList,
            "runc before 1.2 refuses any flag",
            "seccomp flags are not yet supported",
        ),
        (
            "notify-default",
            ProfileStrength::Delegated,
            "runc refuses SCMP_ACT_NOTIFY as the default action",
            "SCMP_ACT_NOTIFY cannot be used as default action",
        ),
    ] {
        let (_, app) = assessed(&statuses, name, |c| c.warnings.iter().any(|w| w.contains(note))).await;
        assert_eq!(app.strength, Some(strength), "{name}: {app:?}");
        let refusal = runtime_refusal(&pods, name).await;
        assert!(refusal.contains(runtime_says), "{name}: {refusal}");
    }
}

#[tokio::test]
async fn a_profile_file_changed_after_the_start_is_not_taken_for_what_runs() {
    let nodes = nodes::nodes();
    let ctx = node_context("strength-changed").await;
    let a = &nodes.a;
    let dir = profile_dir(a, &ctx.ns, &[("deny-mkdir.json", DENY_MKDIR)]);
    let profiles = a.seccomp_dir().join(&dir);
    let path = profiles.join("deny-mkdir.json");
    // A file written in the second the container starts could be older or newer than the start:
    // only a file older than that second proves what the container started with.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let operator = Operator::for_namespace(&ctx).await;
    let pods: Api<Pod> = ctx.api();
    let repeating = "i=0; while true; do i=$((i+1)); mkdir /tmp/probe$i && echo mkdir=allowed || echo mkdir=refused; sleep 1; done";
    let spec = pod(
        "changed",
        &a.name,
        repeating,
        json!({ "securityContext": { "seccompProfile": { "type": "Localhost", "localhostProfile": format!("{dir}/deny-mkdir.json") } } }),
    );
    pods.create(&PostParams::default(), &spec).await.expect("pod");
    let running = nodes::wait_running(&pods, "changed").await;
    let statuses: Api<SeccompStatus> = ctx.api();
    let (before, _) = assessed(&statuses, "changed", |c| {
        c.strength == Some(ProfileStrength::DenyList)
    })
    .await;
    let before = file_of(&before).expect("the agent's report").clone();
    assert!(!before.changed_after_start, "{before:?}");
    assert_eq!(Some(started_with(&statuses, "changed").await), before.sha256);

    // Past the start's second, the file is replaced as configuration tools do (a new file
    // renamed over it): it now allows mkdir.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let replacement = profiles.join("deny-mkdir.json.new");
    std::fs::write(&replacement, ALLOW_ALL).expect("new profile");
    std::fs::rename(&replacement, &path).expect("rename");
    let (status, app) = assessed(&statuses, "changed", not_what_runs).await;
    let now = file_of(&status).expect("the agent's report");
    assert!(now.changed_after_start, "{now:?}");
    assert_ne!(
        now.sha256, before.sha256,
        "the report is of the file as it is now"
    );
    assert!(
        now.message
            .as_deref()
            .is_some_and(|m| m.contains("after the container started")),
        "{now:?}"
    );
    // The strength is that of the content the container started with, not the new file's.
    judged_by_its_start(&status, &app, "replaced");
    // The kernel still enforces the content the container started with (mkdir's own complaint
    // on stderr may come between the probes' lines).
    let probes = |log: &str| {
        log.lines()
            .filter_map(|l| l.rsplit_once(' ').map(|(_, word)| word.to_string()))
            .filter(|word| word.starts_with("mkdir="))
            .collect::<Vec<_>>()
    };
    let probed_before = probes(&nodes::log_of(a, &running, "app")).len();
    let after = wait_for("two more probes", TIMEOUT, || async {
        let probed = probes(&nodes::log_of(a, &running, "app"));
        (probed.len() >= probed_before + 2).then_some(probed)
    })
    .await;
    assert_eq!(
        after.last().map(String::as_str),
        Some("mkdir=refused"),
        "{after:?}"
    );

    // Removed while the container runs: the container has run with it, so it is not Missing.
    std::fs::remove_file(&path).expect("remove");
    let status = wait_for("the report of the removed file", TIMEOUT, || async {
        let status = statuses.get_opt("changed").await.ok()??;
        let file = file_of(&status)?;
        (file.state == ProfileFileState::Missing).then_some(status)
    })
    .await;
    assert!(
        file_of(&status).is_some_and(|f| f.changed_after_start),
        "{status:?}"
    );
    still_runs_what_it_started_with(&statuses, "changed", "the container has run with it since").await;

    // A FIFO in its place, which the agent does not read: the content the container started
    // with, read before, is still what runs.
    let fifo = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo");
    assert!(fifo.success(), "mkfifo {}", path.display());
    still_runs_what_it_started_with(&statuses, "changed", "not read (Refused)").await;

    // A directory in its place (what a bind mount of a file not there leaves): no runtime could
    // use it now, yet the container runs the content it started with.
    std::fs::remove_file(&path).expect("remove the FIFO");
    std::fs::create_dir(&path).expect("a directory");
    still_runs_what_it_started_with(&statuses, "changed", "not usable (Invalid)").await;
    std::fs::remove_dir(&path).expect("remove the directory");

    // Put back with the content the container started with (a configuration tool restoring it):
    // that is what runs, though the file is newer than the start.
    std::fs::write(&replacement, DENY_MKDIR).expect("the first profile again");
    std::fs::rename(&replacement, &path).expect("rename");
    what_it_started_with_again(&statuses, "changed", &before).await;
    operator.stop().await;
}

/// A link pointed at another file (`ln -sfn`, atomically: a new link renamed over the old one)
/// changes what the path opens, though the file it now opens is older than the container: the
/// link's own change counts. Pointed back, the path opens what the container started with.
#[tokio::test]
async fn a_profile_link_pointed_elsewhere_after_the_start_is_not_taken_for_what_runs() {
    let nodes = nodes::nodes();
    let ctx = node_context("strength-relinked").await;
    let a = &nodes.a;
    let dir = profile_dir(
        a,
        &ctx.ns,
        &[("deny-mkdir.json", DENY_MKDIR), ("allow-all.json", ALLOW_ALL)],
    );
    let profiles = a.seccomp_dir().join(&dir);
    let point_at = |target: &str| {
        let next = profiles.join("current.json.next");
        symlink(target, &next).expect("link");
        std::fs::rename(&next, profiles.join("current.json")).expect("rename");
    };
    point_at("deny-mkdir.json");
    // A file written in the second the container starts could be older or newer than the start:
    // only a file older than that second proves what the container started with.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let operator = Operator::for_namespace(&ctx).await;
    let pods: Api<Pod> = ctx.api();
    assert!(
        started_probe(&pods, a, "relinked", &format!("{dir}/current.json"))
            .await
            .contains("mkdir=refused"),
        "the runtime followed the link"
    );
    let statuses: Api<SeccompStatus> = ctx.api();
    let (before, _) = assessed(&statuses, "relinked", |c| {
        c.strength == Some(ProfileStrength::DenyList)
    })
    .await;
    let before = file_of(&before).expect("the agent's report").clone();
    assert!(!before.changed_after_start, "{before:?}");
    assert_eq!(Some(started_with(&statuses, "relinked").await), before.sha256);

    // Past the start's second, the link is pointed at the permissive file, written before the pod.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    point_at("allow-all.json");
    let (status, app) = assessed(&statuses, "relinked", not_what_runs).await;
    assert_eq!(
        app.strength,
        Some(ProfileStrength::DenyList),
        "what runs: {app:?}"
    );
    let now = file_of(&status).expect("the agent's report");
    assert!(now.changed_after_start, "{now:?}");
    assert!(
        now.message
            .as_deref()
            .is_some_and(|m| m.contains("after the container started")),
        "the link's change time: {now:?}"
    );

    // Pointed back: the content the container started with.
    point_at("deny-mkdir.json");
    what_it_started_with_again(&statuses, "relinked", &before).await;
    operator.stop().await;
}

/// A node whose seccomp directory is a link to where the profiles really are (as where the
/// kubelet's root was moved to a larger disk and linked back): the runtime opens the profiles
/// through it, and the agent reads them there rather than refusing them as links out of the
/// directory.
#[tokio::test]
async fn profiles_in_a_seccomp_directory_behind_a_link_are_read() {
    let ctx = node_context("strength-linked-dir").await;
    let mut node = nodes::own_node("seclink", false);
    let handle = node.handle();
    let seccomp = handle.seccomp_dir();
    let elsewhere = seccomp.with_file_name("seccomp-elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("profile dir");
    let _ = std::fs::remove_dir_all(&seccomp);
    symlink(&elsewhere, &seccomp).expect("link");
    let dir = profile_dir(&handle, &ctx.ns, &[("deny-mkdir.json", DENY_MKDIR)]);
    assert!(
        elsewhere.join(&dir).join("deny-mkdir.json").is_file(),
        "written through the link"
    );
    let operator = Operator::for_namespace(&ctx).await;
    let pods: Api<Pod> = ctx.api();
    assert!(
        started_probe(&pods, &handle, "linked-dir", &format!("{dir}/deny-mkdir.json"))
            .await
            .contains("mkdir=refused"),
        "the runtime loaded the profile through the link"
    );
    let statuses: Api<SeccompStatus> = ctx.api();
    let (status, _) = assessed(&statuses, "linked-dir", |c| {
        c.strength == Some(ProfileStrength::DenyList)
    })
    .await;
    let file = file_of(&status).expect("the agent's report");
    assert_eq!(file.state, ProfileFileState::Present, "{file:?}");
    operator.stop().await;
    node.stop();
}

#[tokio::test]
async fn a_weak_profile_violates_a_minimum_strength_but_is_never_evicted() {
    let nodes = nodes::nodes();
    let ctx = node_context("strength-policy").await;
    let a = &nodes.a;
    let dir = profile_dir(a, &ctx.ns, &[("log-only.json", LOG_ONLY)]);
    let operator = Operator::for_namespace(&ctx).await;
    // A workload (so eviction would be possible) whose template asks for the weak profile.
    let template = json!({
        "metadata": { "labels": { "app": "weak" } },
        "spec": {
            "nodeName": a.name, "hostNetwork": true, "terminationGracePeriodSeconds": 1,
            "securityContext": { "seccompProfile": { "type": "Localhost", "localhostProfile": format!("{dir}/log-only.json") } },
            "containers": [container("app", PROBE)],
        }
    });
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": { "name": "weak" },
        "spec": { "replicas": 1, "selector": { "matchLabels": { "app": "weak" } }, "template": template }
    }))
    .expect("replicaset");
    ctx.api::<ReplicaSet>()
        .create(&PostParams::default(), &rs)
        .await
        .expect("create replicaset");
    let pods: Api<Pod> = ctx.api();
    let name = wait_for("the ReplicaSet's pod", TIMEOUT, || async {
        let list = pods.list(&Default::default()).await.ok()?;
        list.items.first().map(ResourceExt::name_any)
    })
    .await;
    let statuses: Api<SeccompStatus> = ctx.api();
    assessed(&statuses, &name, |c| c.strength == Some(ProfileStrength::LogOnly)).await;

    let mut spec = evict_quickly(json!({}));
    spec["minimumProfileStrength"] = json!("DenyList");
    let policy = create_policy(&ctx, "minimum", spec).await;
    let result = policy_result(&ctx, &name, &policy, |r| {
        r.action == PolicyAction::EvictionSkipped
    })
    .await;
    assert_eq!(result.verdict, Verdict::Violating, "{result:?}");
    assert!(result.message.contains("LogOnly"), "{}", result.message);
    assert!(result.message.contains("WeakProfile"), "{}", result.message);
    // Some time for a wrong eviction to happen; the same pod is still there.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(pods.get_opt(&name).await.expect("get").is_some(), "never evicted");
    assert_eq!(operator.evictions(), 0);
    delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

/// `localhostProfile: ./<dir>//deny-mkdir.json` passes the API server's checks (relative, no
/// `..`), and the kubelet opens `<dir>/deny-mkdir.json` (Go's `filepath.Join` cleans it). A policy
/// allowing `<dir>/*.json` took the spelling for another file: `LocalhostProfileNotAllowed` for
/// a container running an allowed profile.
#[tokio::test]
async fn a_localhost_path_is_judged_as_the_file_the_kubelet_opens() {
    let nodes = nodes::nodes();
    let ctx = node_context("strength-path").await;
    let a = &nodes.a;
    let dir = profile_dir(a, &ctx.ns, &[("deny-mkdir.json", DENY_MKDIR)]);
    let operator = Operator::for_namespace(&ctx).await;
    let pods: Api<Pod> = ctx.api();
    // The kubelet ran the file: the probe is refused.
    let probe = started_probe(&pods, a, "dotted", &format!("./{dir}//deny-mkdir.json")).await;
    assert!(probe.contains("mkdir=refused"));
    let policy = create_policy(
        &ctx,
        "paths",
        json!({ "allowedProfiles": ["Localhost"], "allowedLocalhostProfiles": [format!("{dir}/*.json")],
                "minimumProfileStrength": "DenyList" }),
    )
    .await;
    let result = policy_result(&ctx, "dotted", &policy, |r| {
        r.verdict != Verdict::Compliant || r.reason == "Allowed"
    })
    .await;
    assert_eq!(
        (result.verdict, result.reason.as_str()),
        (Verdict::Compliant, "Allowed"),
        "{}",
        result.message
    );
    // Graded from the agent's reading of the same file.
    let statuses: Api<SeccompStatus> = ctx.api();
    let (_, app) = assessed(&statuses, "dotted", |c| c.strength.is_some()).await;
    assert_eq!(
        (app.strength, app.strength_source),
        (Some(ProfileStrength::DenyList), Some(StrengthSource::Node))
    );
    delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

/// With the Security Profiles Operator's API served (its CRD from the pinned module), its
/// SeccompProfile objects classify the profiles pods name, with no node involved.
#[tokio::test]
async fn security_profiles_operator_objects_classify_profiles_without_a_node() {
    let ctx = crate::support::context("strength-spo").await;
    let suffix = &ctx.ns;
    let objects = [
        (
            "strict",
            json!({ "defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{ "action": "SCMP_ACT_ALLOW", "names": ["read"] }] }),
        ),
        ("logging", json!({ "defaultAction": "SCMP_ACT_LOG" })),
        // The CRD lets a rule name no call; the runtime applies it to none.
        (
            "unnamed",
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "action": "SCMP_ACT_ERRNO", "names": [] }] }),
        ),
        (
            "based",
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "baseProfileName": "runc-v1.2.0" }),
        ),
    ];
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = scratch.path().join("seccompprofiles.yaml");
    let docs: Vec<String> = objects
        .iter()
        .map(|(name, spec)| {
            json!({ "apiVersion": "security-profiles-operator.x-k8s.io/v1beta1", "kind": "SeccompProfile",
                    "metadata": { "name": format!("{name}-{suffix}") }, "spec": spec })
            .to_string()
        })
        .collect();
    std::fs::write(&file, docs.join("\n---\n")).expect("manifest");
    ctx.kubectl(&["apply", "-f", &file.display().to_string()]);
    let operator = Operator::for_namespace(&ctx).await;
    let pods: Api<Pod> = ctx.api();
    for (name, _) in &objects {
        let spec: Pod = serde_json::from_value(json!({ "metadata": { "name": name },
            "spec": { "securityContext": { "seccompProfile": { "type": "Localhost",
                          "localhostProfile": format!("operator/{name}-{suffix}.json") } },
                      "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] } }))
        .expect("pod");
        pods.create(&PostParams::default(), &spec)
            .await
            .expect("create pod");
    }
    // The same object, named as the kubelet would open it after cleaning the path.
    let dotted: Pod = serde_json::from_value(json!({ "metadata": { "name": "strict-dotted" },
        "spec": { "securityContext": { "seccompProfile": { "type": "Localhost",
                      "localhostProfile": format!("./operator//strict-{suffix}.json") } },
                  "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] } }))
    .expect("pod");
    pods.create(&PostParams::default(), &dotted)
        .await
        .expect("create pod");
    let statuses: Api<SeccompStatus> = ctx.api();
    for (name, strength) in [
        ("strict", ProfileStrength::AllowList),
        ("strict-dotted", ProfileStrength::AllowList),
        ("logging", ProfileStrength::LogOnly),
        ("unnamed", ProfileStrength::Permissive),
        ("based", ProfileStrength::Unknown),
    ] {
        let (_, app) = assessed(&statuses, name, |c| {
            c.strength == Some(strength) && c.strength_source == Some(StrengthSource::SeccompProfile)
        })
        .await;
        if strength == ProfileStrength::Unknown {
            assert!(
                app.warnings.iter().any(|w| w.contains("runc-v1.2.0")),
                "{:?}",
                app.warnings
            );
        }
    }
    // The live audit grades them from the same objects.
    let audited = ctx.live_audit(&[]);
    for (name, strength) in [("strict", "AllowList"), ("logging", "LogOnly")] {
        let app = audited["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["metadata"]["name"] == *name)
            .map(|i| &i["status"]["containers"][0])
            .unwrap_or_else(|| panic!("{name}: not in {audited}"));
        assert_eq!(
            (&app["strength"], &app["strengthSource"]),
            (&json!(strength), &json!("SeccompProfile")),
            "{name}: {app}"
        );
    }
    // Deleting the object takes its knowledge with it.
    ctx.kubectl(&["delete", "seccompprofile", &format!("logging-{suffix}")]);
    let (_, app) = assessed(&statuses, "logging", |c| {
        c.strength == Some(ProfileStrength::Unknown)
    })
    .await;
    assert_eq!(app.strength_source, None, "{app:?}");
    for (name, _) in &objects {
        ctx.kubectl(&[
            "delete",
            "seccompprofile",
            &format!("{name}-{suffix}"),
            "--ignore-not-found",
        ]);
    }
    operator.stop().await;
}
