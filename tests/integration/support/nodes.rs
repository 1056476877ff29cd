//! The real nodes of the integration tests, started on first use and shared by the tests of this
//! binary: `sentinel-node-a` (kubelet `seccompDefault` off) and `sentinel-node-b` (on), with the
//! node agent's DaemonSet of `config/agent` on every test node. Pods that must run are created in
//! a namespace from [`node_context`] (the test cluster's guard lets only such namespaces use the
//! nodes), with local images and the host's network ([`pod`]).

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, OnceLock},
    time::Duration,
};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{Api, ResourceExt};
use sentinel_testenv::{
    Binaries,
    image::BUSYBOX_IMAGE,
    node::{self, NODE_PODS_LABEL, NodeHandle},
};
use serde_json::{Value, json};

use super::{TestContext, cluster, context, wait_for};

pub use sentinel_testenv::install::AGENT_NAMESPACE;

pub struct TestNodes {
    /// kubelet `seccompDefault: false`.
    pub a: NodeHandle,
    /// kubelet `seccompDefault: true`.
    pub b: NodeHandle,
}

static NODES: OnceLock<Result<TestNodes, String>> = OnceLock::new();
static RUNNING: Mutex<Vec<node::Node>> = Mutex::new(Vec::new());

/// The shared test nodes, started (with the agent) on first use.
pub fn nodes() -> &'static TestNodes {
    match NODES.get_or_init(|| start().map_err(|e| format!("{e:#}"))) {
        Ok(nodes) => nodes,
        Err(e) => panic!("no test nodes: {e}"),
    }
}

fn start() -> anyhow::Result<TestNodes> {
    let cluster = cluster();
    let plane = cluster.plane().ok_or_else(|| {
        anyhow::anyhow!(
            "the node tests run on the local test environment's own nodes; unset SENTINEL_TEST_KUBECONFIG"
        )
    })?;
    let binaries = Binaries::locate()?;
    let started = node::start_nodes(
        plane,
        &binaries,
        Path::new(env!("CARGO_BIN_EXE_seccomp-sentinel")),
        &[("a", false), ("b", true)],
    )?;
    let handles: Vec<NodeHandle> = started.iter().map(node::Node::handle).collect();
    RUNNING.lock().unwrap_or_else(|e| e.into_inner()).extend(started);
    sentinel_testenv::install::install_agent(
        &binaries,
        plane.kubeconfig(),
        plane.server(),
        plane.data_dir(),
        Some("3s"),
    )?;
    Ok(TestNodes {
        a: handles[0].clone(),
        b: handles[1].clone(),
    })
}

/// Stops the shared nodes (at exit, before the control plane).
pub fn stop() {
    for mut node in RUNNING.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
        node.stop();
    }
}

/// A node of one test's own (e.g. to restart its kubelet), stopped when dropped. The agent
/// DaemonSet runs on it too; an operator another test installs does not (`OWN_NODE_TAINT`).
pub fn own_node(name: &str, seccomp_default: bool) -> node::Node {
    nodes();
    let cluster = cluster();
    let plane = cluster.plane().expect("the local control plane");
    let binaries = Binaries::locate().expect("binaries");
    node::start_own_node(
        plane,
        &binaries,
        Path::new(env!("CARGO_BIN_EXE_seccomp-sentinel")),
        name,
        seccomp_default,
    )
    .unwrap_or_else(|e| panic!("starting node {name}: {e}"))
}

/// A kustomize overlay of a directory of the repository, in the control plane's directory.
pub fn overlay(base: &str, kustomization: &str) -> PathBuf {
    let plane = cluster().plane().expect("the local control plane");
    sentinel_testenv::install::overlay(plane.data_dir(), base, kustomization).expect("overlay")
}

/// A test namespace whose pods may run on the test nodes.
pub async fn node_context(test_name: &str) -> TestContext {
    let ctx = context(test_name).await;
    ctx.kubectl(&[
        "label",
        "namespace",
        &ctx.ns,
        &format!("{NODE_PODS_LABEL}=allowed"),
    ]);
    ctx
}

/// A pod for a test node: the host's network, the busybox image (never pulled), `command` as the
/// container's; `extra` is merged into the spec (a JSON object).
pub fn pod(name: &str, node: &str, command: &str, extra: Value) -> Pod {
    let mut spec = json!({
        "nodeName": node,
        "hostNetwork": true,
        "terminationGracePeriodSeconds": 1,
        "containers": [container("app", command)],
    });
    merge(&mut spec, extra);
    serde_json::from_value(json!({ "metadata": { "name": name }, "spec": spec })).expect("pod")
}

/// What a container of `pod` on `node` wrote to its log so far (empty when nothing yet).
pub fn log_of(node: &NodeHandle, pod: &Pod, container: &str) -> String {
    let path = node.container_log(
        &pod.namespace().unwrap_or_default(),
        &pod.name_any(),
        &pod.uid().unwrap_or_default(),
        container,
    );
    std::fs::read_to_string(&path).unwrap_or_default()
}

/// A busybox container running `command` with `sh -c`.
pub fn container(name: &str, command: &str) -> Value {
    json!({ "name": name, "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never", "command": ["sh", "-c", command] })
}

fn merge(target: &mut Value, extra: Value) {
    match (target, extra) {
        (Value::Object(target), Value::Object(extra)) => {
            for (k, v) in extra {
                merge(target.entry(k).or_insert(Value::Null), v);
            }
        }
        (target, extra) => *target = extra,
    }
}

/// Waits until every container of the pod runs (and its init containers have finished).
pub async fn wait_running(pods: &Api<Pod>, name: &str) -> Pod {
    wait_for(
        &format!("pod {name} running"),
        Duration::from_secs(120),
        || async {
            let pod = pods.get(name).await.ok()?;
            let status = pod.status.as_ref()?;
            let running = status
                .container_statuses
                .iter()
                .flatten()
                .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()));
            (status.phase.as_deref() == Some("Running") && running).then_some(pod)
        },
    )
    .await
}

/// What the container runtime and the kernel say of one container.
#[derive(Debug)]
pub struct KernelView {
    /// `.info.runtimeSpec.linux.seccomp` of `crictl inspect` (null: no filter asked for).
    pub runtime_seccomp: Value,
    /// `Seccomp` of `/proc/<pid>/status` (0 disabled, 1 strict, 2 filter), for a running container.
    pub proc_seccomp: Option<u8>,
    pub pid: Option<u32>,
}

/// The runtime's ID of a container (init, regular or ephemeral) of `pod`, as its status gives it.
pub fn container_id(pod: &Pod, container: &str) -> String {
    let status = pod.status.as_ref().expect("pod status");
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .chain(status.ephemeral_container_statuses.iter().flatten())
        .find(|c| c.name == container)
        .and_then(|c| c.container_id.clone())
        .unwrap_or_else(|| panic!("no container ID for {container}"))
}

/// Reads the runtime's and the kernel's view of a container by its ID (`containerd://...`).
pub fn kernel_view(node: &NodeHandle, container_id: &str) -> KernelView {
    let id = container_id.split_once("://").map_or(container_id, |(_, id)| id);
    let inspect: Value =
        serde_json::from_str(&node.crictl(&["inspect", id]).expect("crictl inspect")).expect("inspect JSON");
    let runtime_seccomp = inspect["info"]["runtimeSpec"]["linux"]["seccomp"].clone();
    let pid = inspect["info"]["pid"]
        .as_u64()
        .filter(|p| *p > 0)
        .map(|p| p as u32);
    let proc_seccomp = pid.and_then(|pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .and_then(|v| v.trim().parse().ok())
    });
    KernelView {
        runtime_seccomp,
        proc_seccomp,
        pid,
    }
}

/// Waits until the agent has annotated every test node with its kubelet's seccompDefault.
pub async fn wait_node_facts(client: &kube::Client, name: &str, expected: bool) {
    let nodes: Api<Node> = Api::all(client.clone());
    let want = expected.to_string();
    wait_for(
        &format!("the agent's report of {name}'s kubelet"),
        Duration::from_secs(120),
        || async {
            let node = nodes.get(name).await.ok()?;
            (node
                .annotations()
                .get(seccomp_sentinel::agent::KUBELET_DEFAULT_ANNOTATION)
                == Some(&want))
            .then_some(())
        },
    )
    .await;
}
