//! `seccomp-sentinel agent`: one per node. Maps the running containers of the node's pods to their
//! host processes through `/proc`, reads the seccomp mode the kernel enforces, and writes it into
//! each pod's SeccompStatus (`status.containers[].runtime` and the `RuntimeVerified` condition)
//! with a field manager of its own, only when something changed. It also reports the node facts it
//! can see as Node annotations, which the controller prefers over its configuration.

pub mod kubelet;
pub mod procfs;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::{
    api::core::v1::{Node, Pod},
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        WatchStreamExt,
        events::{Event, EventType, Recorder, Reporter},
        reflector::{self, Store},
        watcher,
    },
};
use serde_json::json;
use tracing::{debug, info, warn};

use self::procfs::{ProcessIndex, SeccompState};
use crate::{
    api::{ProfileType, RuntimeObservation, SeccompMode, SeccompStatus},
    controller::desired::{self, RUNTIME_VERIFIED},
};

/// Field manager of the agent's writes.
pub const AGENT_MANAGER: &str = "seccomp-sentinel-agent";
/// Node annotation: the kubelet's `seccompDefault`, as the agent read it from the kubelet's
/// configuration file (`true`/`false`).
pub const KUBELET_DEFAULT_ANNOTATION: &str = "seccomp.sentinel.dev/kubelet-seccomp-default";
/// Node annotation: whether the node's kernel supports seccomp (`true`/`false`).
pub const KERNEL_SECCOMP_ANNOTATION: &str = "seccomp.sentinel.dev/kernel-seccomp";

#[derive(clap::Args, Debug, Clone)]
pub struct AgentArgs {
    /// The node this agent runs on (from the downward API).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,

    /// The host's /proc (mounted read-only; the DaemonSet runs with hostPID).
    #[arg(long, env = "SENTINEL_PROC_ROOT", default_value = "/proc")]
    pub proc_root: PathBuf,

    /// Time between two scans of /proc (e.g. 30s, 2m).
    #[arg(long, env = "SENTINEL_SCAN_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub scan_interval: Duration,

    /// The kubelet's configuration file, if mounted, to report its seccompDefault. Without it the
    /// agent finds this node's kubelet process in the proc root and reads its command line,
    /// `--config` file and `--config-dir` drop-ins through `/proc/<pid>/root`.
    #[arg(long, env = "SENTINEL_KUBELET_CONFIG")]
    pub kubelet_config: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("reading {0}: {1}")]
    Proc(PathBuf, std::io::Error),
}

/// Whether what the kernel enforces agrees with the effective profile. A confined container must
/// have a filter (or strict mode); an unconfined one may have filters of its application's own.
pub fn agrees(effective: ProfileType, mode: SeccompMode) -> bool {
    match effective {
        ProfileType::RuntimeDefault | ProfileType::Localhost => mode != SeccompMode::Disabled,
        ProfileType::Unconfined | ProfileType::NotApplicable => true,
    }
}

/// What the agent last wrote for a pod, without the observation times.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Written {
    containers: Vec<Seen>,
    condition: (String, String),
}

/// One container's observation, without its time.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    name: String,
    mode: SeccompMode,
    filters: Option<u32>,
    pid: Option<i64>,
    agrees: bool,
}

/// One pass over the node's pods: what to write for each.
struct PodReport {
    namespace: String,
    name: String,
    observations: Vec<(String, RuntimeObservation)>,
    condition: Condition,
    written: Written,
}

fn report_for(
    pod: &Pod,
    status: &SeccompStatus,
    index: &ProcessIndex,
    proc_root: &Path,
    now: &Time,
    previous: &[Condition],
) -> Option<PodReport> {
    let pod_status = pod.status.as_ref()?;
    let container_statuses = pod_status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(pod_status.container_statuses.iter().flatten())
        .chain(pod_status.ephemeral_container_statuses.iter().flatten());
    let effective: HashMap<&str, ProfileType> = status
        .status
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .map(|c| (c.name.as_str(), c.profile.type_))
                .collect()
        })
        .unwrap_or_default();
    let mut observations = Vec::new();
    let mut mismatches = Vec::new();
    for container in container_statuses {
        let running = container.state.as_ref().is_some_and(|s| s.running.is_some());
        let Some(id) = container.container_id.as_deref().and_then(procfs::container_id) else {
            continue;
        };
        let Some(effective) = effective.get(container.name.as_str()) else {
            continue;
        };
        if !running || *effective == ProfileType::NotApplicable {
            continue;
        }
        let Some(pid) = index.main_process(id) else {
            continue;
        };
        let Some(SeccompState { mode, filters }) = procfs::seccomp_of(proc_root, pid) else {
            continue;
        };
        let agree = agrees(*effective, mode);
        if !agree {
            mismatches.push(format!(
                "{} is {effective:?} but the kernel shows seccomp {mode:?}",
                container.name
            ));
        }
        observations.push((
            container.name.clone(),
            RuntimeObservation {
                seccomp_mode: mode,
                filters,
                pid: Some(i64::from(pid)),
                observed_at: now.clone(),
                agrees_with_effective: agree,
            },
        ));
    }
    if observations.is_empty() {
        return None;
    }
    let condition = if mismatches.is_empty() {
        desired::condition(
            RUNTIME_VERIFIED,
            "True",
            "Agrees",
            format!(
                "{} running containers match their effective profile",
                observations.len()
            ),
            previous,
            now,
        )
    } else {
        desired::condition(
            RUNTIME_VERIFIED,
            "False",
            "Mismatch",
            mismatches.join("; "),
            previous,
            now,
        )
    };
    let written = Written {
        containers: observations
            .iter()
            .map(|(name, o)| Seen {
                name: name.clone(),
                mode: o.seccomp_mode,
                filters: o.filters,
                pid: o.pid,
                agrees: o.agrees_with_effective,
            })
            .collect(),
        condition: (condition.status.clone(), condition.message.clone()),
    };
    Some(PodReport {
        namespace: pod.namespace().unwrap_or_default(),
        name: pod.name_any(),
        observations,
        condition,
        written,
    })
}

/// The node facts the agent reports as Node annotations. A kubelet not found (e.g. restarting)
/// keeps the value last reported.
fn node_facts(
    args: &AgentArgs,
    last: Option<&serde_json::Map<String, serde_json::Value>>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut annotations = serde_json::Map::new();
    let kernel = std::fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(procfs::parse_status)
        .is_some();
    annotations.insert(KERNEL_SECCOMP_ANNOTATION.into(), json!(kernel.to_string()));
    let kubelet = match &args.kubelet_config {
        Some(path) => kubelet::from_file(path),
        None => kubelet::discover(&args.proc_root, &args.node_name),
    };
    match kubelet {
        Some(found) => {
            debug!(enabled = found.enabled, source = %found.source, "kubelet seccompDefault");
            annotations.insert(
                KUBELET_DEFAULT_ANNOTATION.into(),
                json!(found.enabled.to_string()),
            );
        }
        None => {
            if let Some(previous) = last.and_then(|l| l.get(KUBELET_DEFAULT_ANNOTATION)) {
                annotations.insert(KUBELET_DEFAULT_ANNOTATION.into(), previous.clone());
            }
        }
    }
    annotations
}

struct Agent {
    client: Client,
    args: AgentArgs,
    recorder: Recorder,
    written: tokio::sync::Mutex<HashMap<String, Written>>,
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    client: Client,
    args: AgentArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let reporter = Reporter {
        controller: AGENT_MANAGER.into(),
        instance: Some(args.node_name.clone()),
    };
    let agent = Arc::new(Agent {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        args,
        written: Default::default(),
    });
    let node_field = format!("spec.nodeName={}", agent.args.node_name);
    let (pods, pod_writer) = reflector::store::<Pod>();
    let pod_stream = watcher(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().fields(&node_field),
    )
    .default_backoff()
    .modify(|pod| {
        // Keep identity and container statuses; the rest is not needed here.
        pod.managed_fields_mut().clear();
        pod.annotations_mut().clear();
        pod.spec = None;
        if let Some(status) = pod.status.as_mut() {
            status.conditions = None;
        }
    })
    .reflect(pod_writer)
    .applied_objects();
    let status_field = format!("status.node={}", agent.args.node_name);
    let (statuses, status_writer) = reflector::store::<SeccompStatus>();
    let status_stream = watcher(
        Api::<SeccompStatus>::all(client.clone()),
        watcher::Config::default().fields(&status_field),
    )
    .default_backoff()
    .modify(|s| s.managed_fields_mut().clear())
    .reflect(status_writer)
    .applied_objects();
    // Any change of a pod or status on this node triggers a scan; otherwise every interval.
    let (kick_tx, mut kick_rx) = tokio::sync::mpsc::channel::<()>(1);
    let kick_pods = kick_tx.clone();
    tokio::spawn(pod_stream.for_each(move |event| {
        match event {
            Ok(_) => drop(kick_pods.try_send(())),
            Err(e) => warn!(error = %e, "pod watch failed; retrying"),
        }
        futures::future::ready(())
    }));
    tokio::spawn(status_stream.for_each(move |event| {
        match event {
            Ok(_) => drop(kick_tx.try_send(())),
            Err(e) => warn!(error = %e, "SeccompStatus watch failed; retrying"),
        }
        futures::future::ready(())
    }));
    info!(node = %agent.args.node_name, proc_root = %agent.args.proc_root.display(), "agent started");
    let mut shutdown = std::pin::pin!(shutdown);
    // The node facts are read again on every pass (a kubelet may be restarted with another
    // seccompDefault) and written when they differ from what was last reported.
    let mut reported: Option<serde_json::Map<String, serde_json::Value>> = None;
    loop {
        let facts = node_facts(&agent.args, reported.as_ref());
        if reported.as_ref() != Some(&facts) {
            match report_node(&agent, &facts).await {
                Ok(()) => reported = Some(facts),
                Err(e) => warn!(error = %e, "could not annotate the node"),
            }
        }
        if let Err(e) = scan(&agent, &pods, &statuses).await {
            warn!(error = %e, "scan failed");
        }
        // Coalesce bursts of changes: wait a moment after a kick.
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(agent.args.scan_interval) => {}
            Some(()) = kick_rx.recv() => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    info!("agent stopped");
    Ok(())
}

async fn scan(agent: &Agent, pods: &Store<Pod>, statuses: &Store<SeccompStatus>) -> Result<(), AgentError> {
    let proc_root = &agent.args.proc_root;
    let index = ProcessIndex::scan(proc_root).map_err(|e| AgentError::Proc(proc_root.clone(), e))?;
    let now = Time(Timestamp::now());
    let by_name: HashMap<(String, String), Arc<SeccompStatus>> = statuses
        .state()
        .into_iter()
        .map(|s| ((s.namespace().unwrap_or_default(), s.name_any()), s))
        .collect();
    let mut written = agent.written.lock().await;
    for pod in pods.state() {
        let key = (pod.namespace().unwrap_or_default(), pod.name_any());
        let Some(status) = by_name.get(&key) else { continue };
        // A status for another pod of the same name (recreated) is not ours to complete yet.
        if Some(&status.spec.pod_uid) != pod.metadata.uid.as_ref() {
            continue;
        }
        let previous: Vec<Condition> = status
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().cloned())
            .collect();
        let Some(report) = report_for(&pod, status, &index, proc_root, &now, &previous) else {
            continue;
        };
        let uid = pod.uid().unwrap_or_default();
        if written.get(&uid) == Some(&report.written) {
            continue;
        }
        let was_mismatch = written.get(&uid).is_some_and(|w| w.condition.0 == "False");
        write(agent, &report).await?;
        if report.condition.status == "False" && !was_mismatch {
            let event = Event {
                type_: EventType::Warning,
                reason: "SeccompMismatch".into(),
                note: Some(report.condition.message.chars().take(1000).collect()),
                action: "Verify".into(),
                secondary: None,
            };
            if let Err(e) = agent.recorder.publish(&event, &pod.object_ref(&())).await {
                warn!(error = %e, "could not record an event");
            }
        }
        written.insert(uid, report.written);
    }
    debug!(containers = index.containers(), "scan complete");
    Ok(())
}

async fn write(agent: &Agent, report: &PodReport) -> Result<(), AgentError> {
    let containers: Vec<serde_json::Value> = report
        .observations
        .iter()
        .map(|(name, observation)| json!({ "name": name, "runtime": observation }))
        .collect();
    let body = json!({
        "apiVersion": SeccompStatus::api_version(&()), "kind": SeccompStatus::kind(&()),
        "metadata": { "name": report.name, "namespace": report.namespace },
        "status": { "containers": containers, "conditions": [report.condition] },
    });
    let api: Api<SeccompStatus> = Api::namespaced(agent.client.clone(), &report.namespace);
    match api
        .patch_status(
            &report.name,
            &PatchParams::apply(AGENT_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
    {
        Ok(_) => {
            debug!(pod = %format!("{}/{}", report.namespace, report.name), "runtime observations written");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Annotates the node with the facts the agent can see, writing only what differs.
async fn report_node(
    agent: &Agent,
    annotations: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), AgentError> {
    let nodes: Api<Node> = Api::all(agent.client.clone());
    let node = nodes.get(&agent.args.node_name).await?;
    let current = node.annotations();
    let same = annotations
        .iter()
        .all(|(k, v)| current.get(k).map(String::as_str) == v.as_str());
    if same {
        return Ok(());
    }
    let patch = json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": agent.args.node_name, "annotations": annotations } });
    nodes
        .patch(
            &agent.args.node_name,
            &PatchParams::apply(AGENT_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    info!(node = %agent.args.node_name, ?annotations, "node facts reported");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement() {
        use ProfileType::*;
        use SeccompMode::*;
        assert!(agrees(RuntimeDefault, Filter));
        assert!(agrees(Localhost, Filter));
        assert!(
            !agrees(RuntimeDefault, Disabled),
            "declared confined, runs without a filter"
        );
        assert!(!agrees(Localhost, Disabled));
        assert!(agrees(Unconfined, Disabled));
        assert!(
            agrees(Unconfined, Filter),
            "applications may install filters of their own"
        );
        assert!(agrees(RuntimeDefault, Strict));
    }

    #[test]
    fn kubelet_configuration_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let on = dir.path().join("on.yaml");
        std::fs::write(
            &on,
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nseccompDefault: true\n",
        )
        .expect("write");
        let absent = dir.path().join("absent.yaml");
        std::fs::write(
            &absent,
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n",
        )
        .expect("write");
        let enabled = |path: &Path| kubelet::from_file(path).map(|found| found.enabled);
        assert_eq!(enabled(&on), Some(true));
        assert_eq!(enabled(&absent), Some(false));
        assert_eq!(enabled(&dir.path().join("missing.yaml")), None);
    }
}
