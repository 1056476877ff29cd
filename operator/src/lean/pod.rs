//! A Pod (or pod template) as the operator reads it: the seccomp-relevant parts of its spec, the
//! container states that say whether a runtime refused a profile or a container runs, and the
//! few annotations that matter. Environment, volumes, resources, probes, conditions and the rest are
//! skipped while reading.

use k8s_openapi::NamespaceResourceScope;
use serde::Deserialize;

use super::{KeepAnnotations, LenientTime, Meta, decoded::WatchedKind};

/// Annotation keys the operator reads on pods.
pub const SCC_ANNOTATION: &str = "openshift.io/scc";
pub const POD_SECCOMP_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
pub const CONTAINER_SECCOMP_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The annotations of a pod that the operator keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodAnnotations;

impl KeepAnnotations for PodAnnotations {
    fn keep(key: &str) -> bool {
        key == SCC_ANNOTATION
            || key == POD_SECCOMP_ANNOTATION
            || key == MIRROR_ANNOTATION
            || key.starts_with(CONTAINER_SECCOMP_ANNOTATION_PREFIX)
    }
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct PodWire {
    pub metadata: Meta<PodAnnotations>,
    pub spec: Option<PodSpecWire>,
    pub status: Option<PodStatusWire>,
}

impl WatchedKind for PodWire {
    const GROUP: &'static str = "";
    const VERSION: &'static str = "v1";
    const KIND: &'static str = "Pod";
    const PLURAL: &'static str = "pods";
    type Scope = NamespaceResourceScope;
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpecWire {
    pub node_name: Option<String>,
    pub os: Option<PodOsWire>,
    pub security_context: Option<SecurityContextWire>,
    pub containers: Vec<ContainerWire>,
    pub init_containers: Vec<ContainerWire>,
    pub ephemeral_containers: Vec<ContainerWire>,
}

/// A template's spec: what the pods read, and where new pods may start. Pods skip the latter while
/// reading (it is read for templates only, whose pods are not placed yet).
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct TemplateSpecWire {
    #[serde(flatten)]
    pub pod: PodSpecWire,
    pub node_selector: std::collections::BTreeMap<String, String>,
    pub tolerations: Vec<crate::policy::Toleration>,
    /// Only the required node affinity is read.
    pub affinity: Option<AffinityWire>,
}

impl TemplateSpecWire {
    /// Where new pods of this template may start, as far as the operator reads it.
    pub fn into_placement(self) -> crate::policy::TemplatePlacement {
        crate::policy::TemplatePlacement {
            node_name: self.pod.node_name.filter(|n| !n.is_empty()),
            node_selector: self.node_selector,
            tolerations: self.tolerations,
            // The API refuses a required affinity without terms; were one stored, it is read as
            // none, which reaches more nodes.
            required_terms: self
                .affinity
                .and_then(|a| a.node_affinity)
                .and_then(|n| n.required_during_scheduling_ignored_during_execution)
                .map(|r| r.node_selector_terms)
                .filter(|terms| !terms.is_empty()),
        }
    }
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct AffinityWire {
    pub node_affinity: Option<NodeAffinityWire>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeAffinityWire {
    pub required_during_scheduling_ignored_during_execution: Option<NodeSelectorWire>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeSelectorWire {
    pub node_selector_terms: Vec<crate::policy::NodeSelectorTerm>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct PodOsWire {
    pub name: String,
}

/// The pod's or a container's security context, as far as seccomp goes.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SecurityContextWire {
    pub seccomp_profile: Option<SeccompProfileWire>,
    pub privileged: Option<bool>,
    pub windows_options: Option<WindowsOptionsWire>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct SeccompProfileWire {
    #[serde(rename = "type")]
    pub type_: String,
    pub localhost_profile: Option<String>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct WindowsOptionsWire {
    pub host_process: Option<bool>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerWire {
    pub name: String,
    pub restart_policy: Option<String>,
    pub security_context: Option<SecurityContextWire>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct PodStatusWire {
    pub phase: Option<String>,
    pub conditions: Vec<PodConditionWire>,
    pub container_statuses: Vec<ContainerStatusWire>,
    pub init_container_statuses: Vec<ContainerStatusWire>,
    pub ephemeral_container_statuses: Vec<ContainerStatusWire>,
}

/// Whether a pod condition is `Ready: True` (nothing else of it is read, and nothing of it is
/// allocated: every pod event decodes its conditions).
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct PodConditionWire {
    #[serde(rename = "type")]
    pub type_: ConditionTypeWire,
    pub status: ConditionStatusWire,
}

#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConditionTypeWire {
    Ready,
    #[default]
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConditionStatusWire {
    True,
    #[default]
    #[serde(other)]
    Other,
}

impl PodStatusWire {
    /// The pod's `Ready` condition is `True`: it serves.
    pub fn ready(&self) -> bool {
        self.conditions
            .iter()
            .any(|c| c.type_ == ConditionTypeWire::Ready && c.status == ConditionStatusWire::True)
    }

    /// Init, regular and ephemeral container statuses.
    pub fn all(&self) -> impl Iterator<Item = &ContainerStatusWire> {
        self.init_container_statuses
            .iter()
            .chain(&self.container_statuses)
            .chain(&self.ephemeral_container_statuses)
    }
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerStatusWire {
    pub name: String,
    #[serde(rename = "containerID")]
    pub container_id: Option<String>,
    pub state: Option<ContainerStateWire>,
}

impl ContainerStatusWire {
    pub fn running(&self) -> bool {
        self.state.as_ref().is_some_and(|s| s.running.is_some())
    }

    /// When the running container started (`state.running.startedAt`, whole seconds); None when
    /// it does not run or the time does not read as one.
    pub fn started_at(&self) -> Option<k8s_openapi::jiff::Timestamp> {
        self.state.as_ref()?.running.as_ref()?.started_at.timestamp()
    }
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct ContainerStateWire {
    pub waiting: Option<WaitingWire>,
    pub running: Option<RunningWire>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct RunningWire {
    /// Read leniently: a value that is not a time must not fail the pod's decoding.
    pub started_at: LenientTime,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct WaitingWire {
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// A workload's pod template.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct PodTemplateWire {
    pub metadata: Meta<PodAnnotations>,
    pub spec: Option<TemplateSpecWire>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_templates_placement_is_its_node_its_selector_and_whether_it_tolerates() {
        let spec = |spec: serde_json::Value| {
            serde_json::from_value::<TemplateSpecWire>(spec)
                .expect("spec")
                .into_placement()
        };
        // Pods are placed already: they do not read where they may start, so nothing there can
        // make one undecodable.
        let pod: PodWire = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "p" },
            "spec": { "tolerations": "odd", "affinity": 1, "nodeSelector": [], "containers": [{ "name": "app" }] }
        }))
        .expect("a pod skips placement fields");
        assert_eq!(pod.spec.map(|s| s.containers.len()), Some(1));
        let template: TemplateSpecWire = serde_json::from_value(serde_json::json!({
            "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
            "nodeSelector": { "pool": "app" },
            "containers": [{ "name": "app" }]
        }))
        .expect("template");
        assert_eq!(template.pod.containers.len(), 1);
        assert!(template.pod.security_context.is_some());
        let placed = spec(serde_json::json!({
            "nodeSelector": { "pool": "app" },
            "tolerations": [{ "key": "dedicated", "operator": "Exists", "effect": "NoSchedule" }],
            "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [
                { "matchExpressions": [{ "key": "zone", "operator": "In", "values": ["a"] }] }] } },
                          "podAntiAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": [] } },
            "containers": [{ "name": "app" }]
        }));
        assert_eq!(placed.node_selector.get("pool").map(String::as_str), Some("app"));
        assert_eq!(placed.tolerations.len(), 1);
        assert_eq!(placed.tolerations[0].key, "dedicated");
        assert!(placed.node_name.is_none());
        let terms = placed.required_terms.expect("terms");
        assert_eq!(terms[0].match_expressions[0].values, ["a"]);
        let pinned = spec(serde_json::json!({ "nodeName": "n1", "tolerations": [] }));
        assert_eq!(pinned.node_name.as_deref(), Some("n1"));
        assert!(pinned.tolerations.is_empty() && pinned.required_terms.is_none());
        assert_eq!(spec(serde_json::json!({ "nodeName": "" })).node_name, None);
    }

    #[test]
    fn a_pod_is_read_without_what_the_operator_does_not_use() {
        let pod: PodWire = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "web", "namespace": "shop",
                "annotations": { "openshift.io/scc": "restricted-v2", "note": "big" } },
            "spec": {
                "nodeName": "n1",
                "securityContext": { "runAsUser": 1000, "seccompProfile": { "type": "RuntimeDefault" } },
                "containers": [{ "name": "app", "image": "i", "env": [{ "name": "TOKEN", "value": "s3cr3t" }],
                    "securityContext": { "privileged": true, "capabilities": { "add": ["NET_ADMIN"] } } }],
                "initContainers": [{ "name": "side", "restartPolicy": "Always" }]
            },
            "status": { "phase": "Running",
                "conditions": [{ "type": "Ready", "status": "True", "lastTransitionTime": "99999-01-01T00:00:00Z" }],
                "containerStatuses": [{ "name": "app", "containerID": "containerd://abc", "state": { "running": { "startedAt": "x" } } }] }
        }))
        .expect("pod");
        let spec = pod.spec.as_ref().expect("spec");
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        assert_eq!(
            spec.containers[0]
                .security_context
                .as_ref()
                .and_then(|s| s.privileged),
            Some(true)
        );
        assert_eq!(spec.init_containers[0].restart_policy.as_deref(), Some("Always"));
        assert_eq!(pod.metadata.annotations.map.len(), 1);
        let status = pod.status.expect("status");
        assert!(status.container_statuses[0].running());
        assert!(!format!("{:?}", pod.metadata).contains("s3cr3t"));
    }
}
