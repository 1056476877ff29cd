//! The node agent: the real kernel's seccomp modes, and a pod on the test control plane mapped to
//! real local processes through a prepared proc tree.
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use seccomp_sentinel::{
    agent::{self, AgentArgs, procfs},
    api::{SeccompMode, SeccompStatus},
};
use serde_json::json;

use crate::support::{self, Operator, unique_name, wait_for};

const ID_FILTERED: &str = "aa11bb22cc33dd44ee55ff6600778899aabbccddeeff00112233445566778899";
const ID_PLAIN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A process (`sleep`) with or without a seccomp filter, alive until dropped. The filter refuses
/// only acct(2), which nothing here uses; it is installed in the child between fork and exec.
struct Helper(Child);

impl Helper {
    fn start(mode: &str) -> Helper {
        let mut command = Command::new("sleep");
        command.arg("3600").stdin(Stdio::null()).stdout(Stdio::null());
        if mode == "filter" {
            use std::os::unix::process::CommandExt;
            let arch =
                seccompiler::TargetArch::try_from(std::env::consts::ARCH).expect("a supported architecture");
            let acct: i64 = if cfg!(target_arch = "aarch64") { 89 } else { 163 };
            let rules = std::collections::BTreeMap::from([(acct, Vec::new())]);
            let filter = seccompiler::SeccompFilter::new(
                rules,
                seccompiler::SeccompAction::Allow,
                seccompiler::SeccompAction::Errno(1),
                arch,
            )
            .expect("filter");
            let program: seccompiler::BpfProgram = filter.try_into().expect("compiled filter");
            // SAFETY: the closure runs in the forked child before exec; it only makes the prctl and
            // seccomp system calls on a program compiled before the fork (no allocation, no locks).
            unsafe {
                command.pre_exec(move || seccompiler::apply_filter(&program).map_err(std::io::Error::other));
            }
        }
        Helper(command.spawn().expect("start the helper process"))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_real_kernel_shows_filter_and_disabled() {
    let filtered = Helper::start("filter");
    let plain = Helper::start("plain");
    let proc = Path::new("/proc");
    let with = procfs::seccomp_of(proc, filtered.pid()).expect("seccomp line");
    let without = procfs::seccomp_of(proc, plain.pid()).expect("seccomp line");
    assert_eq!(with.mode, SeccompMode::Filter);
    assert_eq!(without.mode, SeccompMode::Disabled);
    if let (Some(with), Some(without)) = (with.filters, without.filters) {
        assert!(with >= 1 && without == 0, "{with} / {without}");
    }
}

/// A process the kubelet forks bears its name and command line until it execs; where its PID
/// wrapped below the kubelet's, `/proc` lists it first. Played with real processes in a PID
/// namespace of their own, whose next PIDs are set through `ns_last_pid`: a "kubelet" (a copy of
/// bash by that name) at PID 5000 forks a child that gets PID 100.
#[tokio::test]
async fn a_child_the_kubelet_forked_is_not_taken_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubelet = dir.path().join("kubelet");
    std::fs::copy("/bin/bash", &kubelet).expect("a copy of bash named kubelet");
    let ready = dir.path().join("ready");
    // The child is a subshell: a fork that does not exec, as the kubelet's child is until it does.
    let kubelet_script = format!(
        "echo 99 > /proc/sys/kernel/ns_last_pid; (touch {ready}; sleep 600; :) & wait",
        ready = ready.display()
    );
    let init_script = format!(
        "echo 4999 > /proc/sys/kernel/ns_last_pid; {kubelet} -c '{kubelet_script}' kubelet --hostname-override=node-a & wait",
        kubelet = kubelet.display()
    );
    // Killed with the test (--kill-child: the namespace's first process, and so all, go with it).
    let namespace = Helper(
        Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--mount-proc",
                "--kill-child",
                "bash",
                "-c",
                &init_script,
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux), run as root"),
    );
    let first_pid = wait_for(
        "the namespace's first process",
        Duration::from_secs(10),
        || async {
            let children =
                std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", namespace.pid())).ok()?;
            children.split_whitespace().next()?.parse::<u32>().ok()
        },
    )
    .await;
    wait_for("the kubelet's child", Duration::from_secs(10), || async {
        ready.exists().then_some(())
    })
    .await;
    // The namespace's own /proc, as an agent on that namespace's host would read it.
    let proc_root = Path::new("/proc").join(first_pid.to_string()).join("root/proc");
    let comm = |pid: u32| std::fs::read_to_string(proc_root.join(format!("{pid}/comm"))).unwrap_or_default();
    let listed: Vec<u32> = std::fs::read_dir(&proc_root)
        .expect("the namespace's /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid| comm(*pid).trim() == "kubelet")
        .collect();
    assert_eq!(listed, vec![100, 5000], "the child first, both named kubelet");
    let found = agent::kubelet::find_kubelet(&proc_root, "node-a").map(|(pid, _)| pid);
    assert_eq!(found, Some(5000));
}

/// The systemd cgroup slice of a Burstable pod, as the kubelet names it (`uid` with `_`).
fn pod_slice(uid: &str) -> String {
    format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice")
}

fn link_process(root: &Path, pid: u32, cgroup: &str) {
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("cgroup"), cgroup).expect("cgroup");
    for file in ["status", "stat"] {
        std::os::unix::fs::symlink(format!("/proc/{pid}/{file}"), dir.join(file)).expect("link");
    }
}

/// Creates the pod `web` on `node_name`, RuntimeDefault by its pod field, with `containers`;
/// returns its UID as the kubelet's cgroup paths spell it.
async fn create_web_pod(
    ctx: &support::TestContext,
    node_name: &str,
    containers: serde_json::Value,
) -> String {
    let pod: Pod = serde_json::from_value(json!({ "metadata": { "name": "web" }, "spec": {
        "nodeName": node_name,
        "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
        "containers": containers } }))
    .expect("pod");
    let pod = ctx
        .api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    pod.uid().expect("uid").replace('-', "_")
}

/// Marks `containers` (name, container ID with its runtime's prefix) of the pod `name` running,
/// as its kubelet would, and waits for the controller's SeccompStatus of the pod.
async fn mark_running(
    ctx: &support::TestContext,
    name: &str,
    containers: &[(&str, String)],
) -> Api<SeccompStatus> {
    let statuses: Vec<_> = containers
        .iter()
        .map(|(container, id)| {
            json!({ "name": container, "containerID": id, "ready": true, "restartCount": 0,
                "image": "registry.invalid/app:1", "imageID": "",
                "state": { "running": { "startedAt": "2026-11-01T00:00:00Z" } } })
        })
        .collect();
    let status = json!({ "status": { "phase": "Running", "containerStatuses": statuses } });
    ctx.api::<Pod>()
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pod status");
    let seccomp_statuses: Api<SeccompStatus> = ctx.api();
    wait_for("the controller's status", Duration::from_secs(60), || async {
        seccomp_statuses.get_opt(name).await.ok()?.and_then(|s| s.status)
    })
    .await;
    seccomp_statuses
}

#[tokio::test]
async fn the_agent_records_what_the_kernel_enforces() {
    let ctx = support::context("agent").await;
    let node_name = unique_name("agent-node");
    let nodes = create_node_without_kubelet(&ctx.client, &node_name).await;
    let operator = Operator::for_namespace(&ctx).await;

    let uid = create_web_pod(
        &ctx,
        &node_name,
        json!([{ "name": "app", "image": "registry.invalid/app:1" }, { "name": "side", "image": "registry.invalid/side:1" },
            // Not running (no container status): only its profile file is reported.
            { "name": "prof", "image": "registry.invalid/prof:1",
              "securityContext": { "seccompProfile": { "type": "Localhost", "localhostProfile": "log.json" } } }]),
    )
    .await;
    let statuses = mark_running(
        &ctx,
        "web",
        &[
            ("app", format!("containerd://{ID_FILTERED}")),
            ("side", format!("cri-o://{ID_PLAIN}")),
        ],
    )
    .await;

    // A proc tree whose entries point at real processes: "app" runs with a filter, "side" without
    // one although it is declared RuntimeDefault. CRI-O's conmon for "side" must be ignored.
    let filtered = Helper::start("filter");
    let plain = Helper::start("plain");
    let root = tempfile::tempdir().expect("proc root");
    let slice = pod_slice(&uid);
    link_process(
        root.path(),
        filtered.pid(),
        &format!("0::{slice}/cri-containerd-{ID_FILTERED}.scope\n"),
    );
    link_process(
        root.path(),
        plain.pid(),
        &format!("0::{slice}/crio-{ID_PLAIN}.scope\n"),
    );
    link_process(
        root.path(),
        1,
        &format!("0::{slice}/crio-conmon-{ID_PLAIN}.scope\n"),
    );
    // The node's root as the agent sees it (`<proc root>/1/root`): this machine's.
    std::os::unix::fs::symlink("/", root.path().join("1").join("root")).expect("root link");
    let seccomp_dir = tempfile::tempdir().expect("seccomp dir");
    std::fs::write(
        seccomp_dir.path().join("log.json"),
        r#"{"defaultAction":"SCMP_ACT_LOG"}"#,
    )
    .expect("profile");
    let kubelet_config = root.path().join("kubelet-config.yaml");
    std::fs::write(
        &kubelet_config,
        "kind: KubeletConfiguration\nseccompDefault: true\n",
    )
    .expect("kubelet config");

    let args = AgentArgs {
        kubelet_config: Some(kubelet_config),
        seccomp_dir: Some(seccomp_dir.path().to_path_buf()),
        ..agent_args(&node_name, root.path(), Duration::from_secs(1))
    };
    let running = InProcessAgent::start(ctx.client.clone(), args.clone());

    let verified = wait_for("runtime observations", Duration::from_secs(60), || async {
        let s = statuses.get("web").await.ok()?.status?;
        let done = ["app", "side"].iter().all(|c| s.runtime_of(c).is_some())
            && s.runtime_verified().is_some()
            && s.runtime.as_ref().is_some_and(|r| !r.profile_files.is_empty());
        done.then_some(s)
    })
    .await;
    let profile_file = &verified.runtime.as_ref().expect("runtime").profile_files[0];
    assert_eq!(
        (profile_file.name.as_str(), profile_file.file.state),
        ("prof", seccomp_sentinel::api::ProfileFileState::Present),
        "{profile_file:?}"
    );
    let runtime = |name: &str| verified.runtime_of(name).cloned().expect("runtime");
    let app = runtime("app");
    assert_eq!(
        (app.seccomp_mode, app.agrees_with_effective, app.pid),
        (SeccompMode::Filter, true, Some(i64::from(filtered.pid())))
    );
    let side = runtime("side");
    assert_eq!(
        (side.seccomp_mode, side.agrees_with_effective, side.pid),
        (SeccompMode::Disabled, false, Some(i64::from(plain.pid())))
    );
    let condition = verified.runtime_verified().expect("condition");
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "Mismatch")
    );
    assert!(condition.message.contains("side"), "{}", condition.message);
    // The agent publishes the event after it wrote the condition: it may come a moment later.
    wait_for("a SeccompMismatch event", Duration::from_secs(30), || async {
        let events = ctx.kubectl(&[
            "get",
            "events",
            "-n",
            &ctx.ns,
            "--field-selector",
            "reason=SeccompMismatch",
            "-o",
            "name",
        ]);
        events.contains("event").then_some(())
    })
    .await;
    let get_web = |output: &[&str]| {
        let mut args = vec!["get", "seccompstatus", "web", "-n", &ctx.ns, "-o"];
        args.extend_from_slice(output);
        ctx.kubectl(&args)
    };
    let wide = get_web(&["wide", "--no-headers"]);
    assert!(wide.contains("Mismatch") && wide.contains(&node_name), "{wide}");
    // Where users and dashboards read it: each container's entry, under the agent's own field
    // manager, which owns nothing else of the entries.
    let modes = get_web(&["jsonpath={range .status.containers[*]}{.name}={.runtime.seccompMode} {end}"]);
    assert!(
        modes.contains("app=Filter ") && modes.contains("side=Disabled "),
        "{modes}"
    );
    let object: serde_json::Value =
        serde_json::from_str(&get_web(&["json", "--show-managed-fields"])).expect("json");
    let owned = |manager: &str| {
        object["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["manager"] == manager)
            .map(|m| m["fieldsV1"]["f:status"]["f:containers"].clone())
            .unwrap_or_default()
    };
    let agents = owned(agent::AGENT_MANAGER);
    let app = &agents["k:{\"name\":\"app\"}"];
    assert!(
        app.get("f:runtime").is_some() && app.get("f:profile").is_none(),
        "{agents}"
    );
    let controllers = owned(seccomp_sentinel::api::CONTROLLER_MANAGER);
    assert!(
        !controllers.to_string().contains("f:runtime"),
        "the controller owns no runtime: {controllers}"
    );

    // The node's facts as the agent saw them.
    let annotated = wait_for("node annotations", Duration::from_secs(30), || async {
        let n = nodes.get(&node_name).await.ok()?;
        n.annotations()
            .contains_key(agent::KUBELET_DEFAULT_ANNOTATION)
            .then_some(n)
    })
    .await;
    assert_eq!(annotated.annotations()[agent::KUBELET_DEFAULT_ANNOTATION], "true");
    assert_eq!(annotated.annotations()[agent::KERNEL_SECCOMP_ANNOTATION], "true");

    // The controller takes the reported kubelet default (one rewrite of its own fields); after
    // that, with nothing changing, neither the agent nor the controller writes again.
    let settled = wait_for(
        "the controller to use the reported default",
        Duration::from_secs(30),
        || async {
            let s = statuses.get("web").await.ok()?;
            let status = s.status.as_ref()?;
            let prof = status.containers.iter().find(|c| c.name == "prof")?;
            (status.kubelet_seccomp_default == seccomp_sentinel::api::KubeletSeccompDefault::True
                && prof.strength_source == Some(seccomp_sentinel::api::StrengthSource::Node))
            .then_some(s)
        },
    )
    .await;
    let settled_status = settled.status.as_ref().expect("status");
    assert!(
        ["app", "side"]
            .iter()
            .all(|c| settled_status.runtime_of(c).is_some()),
        "the controller kept the agent's fields"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = statuses.get("web").await.expect("status");
    assert_eq!(
        later.resource_version(),
        settled.resource_version(),
        "no rewrite while nothing changes"
    );

    // A restarted agent (a DaemonSet rollout, a node reboot) finds its findings already there:
    // nothing to write, although it has written nothing yet itself.
    running.stop().await;
    let running = InProcessAgent::start(ctx.client.clone(), args.clone());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after_restart = statuses.get("web").await.expect("status");
    assert_eq!(
        after_restart.resource_version(),
        settled.resource_version(),
        "a restarted agent rewrote unchanged findings: {:?}",
        after_restart.status.as_ref().map(|s| &s.containers)
    );

    // "side" restarts, now with a filter: its finding changes and is written; "app"'s does not,
    // and keeps the time it was first observed at.
    let app_observed = after_restart
        .status
        .as_ref()
        .and_then(|s| s.runtime_of("app"))
        .map(|r| r.observed_at.clone())
        .expect("app's observation");
    std::fs::remove_dir_all(root.path().join(plain.pid().to_string())).expect("unlink side");
    drop(plain);
    let side_again = Helper::start("filter");
    link_process(
        root.path(),
        side_again.pid(),
        &format!("0::{slice}/crio-{ID_PLAIN}.scope\n"),
    );
    let restarted = wait_for(
        "the restarted side's finding",
        Duration::from_secs(60),
        || async {
            let s = statuses.get("web").await.ok()?.status?;
            let side = s.runtime_of("side")?;
            (side.pid == Some(i64::from(side_again.pid()))).then_some(s)
        },
    )
    .await;
    let side = restarted.runtime_of("side").expect("side");
    assert_eq!(
        (side.seccomp_mode, side.agrees_with_effective),
        (SeccompMode::Filter, true)
    );
    assert!(
        side.observed_at > app_observed,
        "{:?} / {app_observed:?}",
        side.observed_at
    );
    assert_eq!(
        restarted.runtime_of("app").map(|r| &r.observed_at),
        Some(&app_observed),
        "app's finding did not change, nor should its time"
    );

    // A status deleted by hand is made again by the controller, and the agent, which had
    // nothing new to say, writes its findings into the new object as well.
    statuses
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete the status");
    let old_uid = later.uid();
    let remade = wait_for(
        "the remade status with runtime observations",
        Duration::from_secs(60),
        || async {
            let s = statuses.get("web").await.ok()?;
            let fresh = s.uid() != old_uid;
            let status = s.status.as_ref()?;
            let done = ["app", "side"].iter().all(|c| status.runtime_of(c).is_some())
                && status.runtime_verified().is_some()
                && status
                    .runtime
                    .as_ref()
                    .is_some_and(|r| !r.profile_files.is_empty());
            (fresh && done).then_some(s)
        },
    )
    .await;
    let remade_status = remade.status.as_ref().expect("status");
    assert_eq!(
        remade_status.runtime_of("app").map(|r| r.seccomp_mode),
        Some(SeccompMode::Filter)
    );

    running.stop().await;
    operator.stop().await;
    let _ = nodes.delete(&node_name, &DeleteParams::default()).await;
}

/// Creates a hand-made Node `name` without a kubelet (unschedulable, so nothing is placed there).
/// A running container whose process the agent cannot find (an agent given its own /proc
/// rather than the host's finds none) reads `RuntimeVerified=Unknown`, reason `ProcessNotFound`, once it has
/// been missing for a grace period, and `Agrees` again once its process is found: before, such a
/// container was left out without a word, and an agent that could see nothing looked like an
/// agent with nothing to report.
#[tokio::test]
async fn a_running_container_whose_process_the_agent_cannot_find_reads_unknown() {
    let ctx = support::context("agent-unfound").await;
    let node_name = unique_name("agent-unfound");
    let _nodes = create_node_without_kubelet(&ctx.client, &node_name).await;
    let operator = Operator::for_namespace(&ctx).await;
    let gauge = |value: u32| {
        let line = format!("seccomp_sentinel_runtime_unverified {value}\n");
        let metrics = operator.ctx.metrics.clone();
        async move { metrics.encode().contains(&line).then_some(()) }
    };
    let uid = create_web_pod(
        &ctx,
        &node_name,
        json!([{ "name": "seen", "image": "registry.invalid/app:1" },
            { "name": "hidden", "image": "registry.invalid/app:1" }]),
    )
    .await;
    let statuses = mark_running(
        &ctx,
        "web",
        &[
            ("seen", format!("containerd://{ID_FILTERED}")),
            ("hidden", format!("containerd://{ID_PLAIN}")),
        ],
    )
    .await;

    // Only "seen" has a process in the proc tree.
    let seen = Helper::start("filter");
    let root = tempfile::tempdir().expect("proc root");
    let slice = format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid}.slice");
    link_process(
        root.path(),
        seen.pid(),
        &format!("0::{slice}/cri-containerd-{ID_FILTERED}.scope\n"),
    );
    let running = InProcessAgent::start(
        ctx.client.clone(),
        agent_args(&node_name, root.path(), Duration::from_secs(1)),
    );
    let condition = |wanted: &'static str| {
        let statuses = statuses.clone();
        async move {
            let s = statuses.get("web").await.ok()?.status?;
            let c = s.runtime_verified()?.clone();
            (c.reason == wanted).then_some((c, s))
        }
    };
    // Within the grace period, what was found is reported.
    let (first, _) = wait_for("RuntimeVerified", Duration::from_secs(30), || condition("Agrees")).await;
    assert_eq!(first.message, "1 running container matches its effective profile");
    let (unknown, s) = wait_for("ProcessNotFound", Duration::from_secs(60), || {
        condition(agent::PROCESS_NOT_FOUND)
    })
    .await;
    assert_eq!(unknown.status, "Unknown");
    assert!(
        unknown
            .message
            .starts_with("no process of hidden in the agent's proc root")
            && unknown.message.contains("the host's /proc")
            && unknown
                .message
                .ends_with("; 1 running container matches its effective profile"),
        "{}",
        unknown.message
    );
    assert!(s.runtime_of("seen").is_some() && s.runtime_of("hidden").is_none());
    let wide = ctx.kubectl(&[
        "get",
        "seccompstatus",
        "web",
        "-n",
        &ctx.ns,
        "-o",
        "wide",
        "--no-headers",
    ]);
    assert!(wide.contains("ProcessNotFound"), "{wide}");
    // The operator counts the pod for the SeccompRuntimeUnverified alert.
    wait_for("the unverified gauge at 1", Duration::from_secs(30), || gauge(1)).await;

    // Its process is found: both agree.
    let hidden = Helper::start("filter");
    link_process(
        root.path(),
        hidden.pid(),
        &format!("0::{slice}/cri-containerd-{ID_PLAIN}.scope\n"),
    );
    let (agreed, _) = wait_for("Agrees again", Duration::from_secs(30), || condition("Agrees")).await;
    assert_eq!(
        agreed.message,
        "2 running containers match their effective profile"
    );
    wait_for("the unverified gauge at 0", Duration::from_secs(30), || gauge(0)).await;
    running.stop().await;
}

/// The agent's settings for `node_name` with the proc tree at `proc_root`, scanning every
/// `scan_interval`, with no kubelet configuration or seccomp directory given.
pub fn agent_args(node_name: &str, proc_root: &Path, scan_interval: Duration) -> AgentArgs {
    AgentArgs {
        node_name: node_name.to_string(),
        proc_root: proc_root.to_path_buf(),
        scan_interval,
        kubelet_config: None,
        seccomp_dir: None,
        trusted_profile_links: Vec::new(),
    }
}

/// A node agent running in this test's process, as its DaemonSet's pod would run it.
pub struct InProcessAgent {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), agent::AgentError>>,
}

impl InProcessAgent {
    pub fn start(client: kube::Client, args: AgentArgs) -> InProcessAgent {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(agent::run(client, args, async move {
            let _ = stopped.await;
        }));
        InProcessAgent { stop, task }
    }

    /// Stops it as a pod's termination would, and waits (10 s at most) until it has.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

pub async fn create_node_without_kubelet(client: &kube::Client, name: &str) -> Api<Node> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node =
        serde_json::from_value(json!({ "metadata": { "name": name }, "spec": { "unschedulable": true } }))
            .expect("node");
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
    nodes
}

/// PID of the kubelet in [`kubelet_edited_after_its_start`]'s proc tree.
pub const EDITED_KUBELET_PID: u32 = 4242;

/// A proc tree with `node_name`'s kubelet, started an hour ago (up 10,000 s, started 6,400 s
/// after boot), whose configuration file (`<pid>/root/etc/kubelet.yaml`), written now, turns
/// seccompDefault on; and that kubelet's start, as the agent reads it.
pub fn kubelet_edited_after_its_start(node_name: &str) -> (tempfile::TempDir, agent::kubelet::KubeletStart) {
    let root = tempfile::tempdir().expect("proc root");
    let kubelet = root.path().join(EDITED_KUBELET_PID.to_string());
    std::fs::create_dir_all(kubelet.join("root/etc")).expect("dirs");
    std::fs::write(kubelet.join("comm"), "kubelet\n").expect("comm");
    let cmdline = format!("kubelet\0--hostname-override={node_name}\0--config=/etc/kubelet.yaml\0");
    std::fs::write(kubelet.join("cmdline"), cmdline).expect("cmdline");
    let clock_ticks: u64 = String::from_utf8_lossy(
        &Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .expect("getconf")
            .stdout,
    )
    .trim()
    .parse()
    .expect("CLK_TCK");
    std::fs::write(
        kubelet.join("stat"),
        format!(
            "{EDITED_KUBELET_PID} (kubelet) S 1{} {} 0 0",
            " 0".repeat(17),
            6_400 * clock_ticks
        ),
    )
    .expect("stat");
    let boot = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - 10_000;
    std::fs::write(root.path().join("uptime"), "10000.00 0.00\n").expect("uptime");
    std::fs::write(root.path().join("stat"), format!("cpu 1\nbtime {boot}\n")).expect("stat");
    std::fs::write(kubelet.join("root/etc/kubelet.yaml"), "seccompDefault: true\n").expect("config");
    let start = agent::kubelet::start_of(root.path(), EDITED_KUBELET_PID).expect("the kubelet's start");
    assert!(
        start.changed_since(Some(k8s_openapi::jiff::Timestamp::now())),
        "the file changed after the kubelet started"
    );
    (root, start)
}

/// `--kubelet-config` naming a copy of the kubelet's configuration (a ConfigMap's, say) is read
/// as it says: a copy's change times say nothing of what the kubelet read. Naming the kubelet's
/// own file, an edit made after the kubelet started counts.
#[tokio::test]
async fn a_kubelet_configuration_given_as_a_copy_is_read_as_it_is() {
    let ctx = support::context("agent-config-copy").await;
    let node_name = unique_name("copied-config");
    let nodes = create_node_without_kubelet(&ctx.client, &node_name).await;
    let (root, _) = kubelet_edited_after_its_start(&node_name);
    let copy = tempfile::NamedTempFile::new().expect("copy");
    std::fs::write(copy.path(), "seccompDefault: true\n").expect("copy");
    let own = root
        .path()
        .join(EDITED_KUBELET_PID.to_string())
        .join("root/etc/kubelet.yaml");
    let reported = |config: &Path| {
        let args = AgentArgs {
            kubelet_config: Some(config.to_path_buf()),
            ..agent_args(&node_name, root.path(), Duration::from_millis(300))
        };
        let client = ctx.client.clone();
        let nodes = nodes.clone();
        let node_name = node_name.clone();
        async move {
            // The Node's facts cleared, then the agent's first report.
            let cleared = json!({ "metadata": { "annotations": {
                agent::KUBELET_DEFAULT_ANNOTATION: null, agent::KUBELET_STARTED_ANNOTATION: null,
                agent::KERNEL_SECCOMP_ANNOTATION: null } } });
            nodes
                .patch(&node_name, &PatchParams::default(), &Patch::Merge(&cleared))
                .await
                .expect("clear the node's facts");
            let running = InProcessAgent::start(client, args);
            let node = wait_for("the agent's report", Duration::from_secs(60), || async {
                let node = nodes.get(&node_name).await.ok()?;
                node.annotations()
                    .contains_key(agent::KERNEL_SECCOMP_ANNOTATION)
                    .then_some(node)
            })
            .await;
            running.stop().await;
            node.annotations().get(agent::KUBELET_DEFAULT_ANNOTATION).cloned()
        }
    };
    assert_eq!(
        reported(copy.path()).await.as_deref(),
        Some("true"),
        "a copy, as it says"
    );
    assert_eq!(
        reported(&own).await.as_deref(),
        Some("unknown"),
        "the kubelet's own file, edited after its start, with no earlier reading"
    );
    nodes
        .delete(&node_name, &DeleteParams::default())
        .await
        .expect("delete node");
}

/// An agent whose writes the API server refuses (here its role lacks `patch` on SeccompStatuses
/// and Nodes, as in an install that missed a rule) says so with the API server's reason, in
/// warnings less and less often. Before, a 403 was taken for a status of another node and dropped without a
/// word: the agent ran, found the container, and neither wrote nor said anything.
#[tokio::test]
async fn an_agent_whose_writes_are_refused_says_why() {
    use k8s_openapi::api::{
        authentication::v1::TokenRequest,
        core::v1::ServiceAccount,
        rbac::v1::{ClusterRole, ClusterRoleBinding},
    };
    let ctx = support::context("agent-refused").await;
    let node_name = unique_name("agent-node");
    let nodes = create_node_without_kubelet(&ctx.client, &node_name).await;
    let operator = Operator::for_namespace(&ctx).await;
    let uid = create_web_pod(
        &ctx,
        &node_name,
        json!([{ "name": "app", "image": "registry.invalid/app:1" }]),
    )
    .await;
    let statuses = mark_running(&ctx, "web", &[("app", format!("containerd://{ID_FILTERED}"))]).await;
    let filtered = Helper::start("filter");
    let root = tempfile::tempdir().expect("proc root");
    let slice = pod_slice(&uid);
    link_process(
        root.path(),
        filtered.pid(),
        &format!("0::{slice}/cri-containerd-{ID_FILTERED}.scope\n"),
    );

    // The agent's role, but for `patch` on SeccompStatuses (and on Nodes).
    let name = ctx.ns.clone();
    let role: ClusterRole = serde_json::from_value(json!({ "metadata": { "name": name }, "rules": [
        { "apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"] },
        { "apiGroups": [""], "resources": ["nodes"], "verbs": ["get"] },
        { "apiGroups": ["seccomp.sentinel.dev"], "resources": ["seccompstatuses"], "verbs": ["list", "watch"] },
        { "apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"] }] }))
    .expect("role");
    Api::<ClusterRole>::all(ctx.client.clone())
        .create(&PostParams::default(), &role)
        .await
        .expect("role");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({ "metadata": { "name": name },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name },
        "subjects": [{ "kind": "ServiceAccount", "name": "limited-agent", "namespace": ctx.ns }] }))
    .expect("binding");
    Api::<ClusterRoleBinding>::all(ctx.client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .expect("binding");
    let accounts: Api<ServiceAccount> = ctx.api();
    let account: ServiceAccount =
        serde_json::from_value(json!({ "metadata": { "name": "limited-agent" } })).expect("account");
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("account");
    let request: TokenRequest =
        serde_json::from_value(json!({ "spec": { "audiences": [], "expirationSeconds": 3600 } }))
            .expect("request");
    let token = accounts
        .create_token_request("limited-agent", &PostParams::default(), &request)
        .await
        .expect("token")
        .status
        .expect("token")
        .token;
    let kubeconfig = root.path().join("kubeconfig");
    std::fs::write(&kubeconfig, ctx.cluster.kubeconfig_with_token(&token)).expect("kubeconfig");

    let log_path = root.path().join("agent.log");
    let mut agent = Command::new(env!("CARGO_BIN_EXE_seccomp-sentinel"))
        .args(["agent", "--node-name", &node_name, "--scan-interval", "1s"])
        .arg("--proc-root")
        .arg(root.path())
        .env("KUBECONFIG", &kubeconfig)
        .env("SENTINEL_LOG", "info,seccomp_sentinel=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log"))
        .spawn()
        .expect("start the agent");
    wait_for(
        "the agent to tell its refused writes",
        Duration::from_secs(60),
        || async {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            log.contains("runtime observations not written").then_some(())
        },
    )
    .await;
    // Some eight scans more (one a second): warnings at the 1st, 2nd, 4th, 8th ... in a row.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let _ = agent.kill();
    let _ = agent.wait();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let told: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("runtime observations not written"))
        .collect();
    let warned: Vec<&str> = told.iter().copied().filter(|l| l.contains("WARN")).collect();
    let scans = told.len();
    assert!(scans >= 4, "{told:#?}");
    let powers_of_two = |n: usize| (0..).take_while(|p| 1usize << p <= n).count();
    assert_eq!(
        warned.len(),
        powers_of_two(scans),
        "{scans} failing scans: {warned:#?}"
    );
    // Its role has no `patch` on Nodes either: the node's annotations are refused at each pass,
    // told the same way.
    let annotations: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("could not annotate the node"))
        .collect();
    let annotations_warned = annotations.iter().filter(|l| l.contains("WARN")).count();
    assert!(annotations.len() >= 4, "{annotations:#?}");
    assert_eq!(
        annotations_warned,
        powers_of_two(annotations.len()),
        "{annotations:#?}"
    );
    assert!(annotations[0].contains("403"), "{}", annotations[0]);
    assert!(
        warned[0].contains("403") && warned[0].contains("cannot patch resource \"seccompstatuses\""),
        "the API server's reason: {}",
        warned[0]
    );
    let status = statuses.get("web").await.expect("status").status.expect("status");
    assert!(
        status.runtime.is_none() && status.containers.iter().all(|c| c.runtime.is_none()),
        "nothing written: {status:?}"
    );

    operator.stop().await;
    let _ = Api::<ClusterRoleBinding>::all(ctx.client.clone())
        .delete(&name, &DeleteParams::default())
        .await;
    let _ = Api::<ClusterRole>::all(ctx.client.clone())
        .delete(&name, &DeleteParams::default())
        .await;
    let _ = nodes.delete(&node_name, &DeleteParams::default()).await;
}
