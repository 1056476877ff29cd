//! A Node as the operator reads it: labels, its OS and kubelet version, and the node agent's
//! annotations with who wrote them (the field manager that owns each, from `managedFields`).

use std::collections::BTreeMap;

use k8s_openapi::ClusterResourceScope;
use serde::Deserialize;

use super::{KeepAnnotations, Meta, decoded::WatchedKind};
use crate::{
    agent::{AGENT_MANAGER, KUBELET_DEFAULT_ANNOTATION},
    api::KubeletSeccompDefault,
    engine::{NodeFacts, NodeOs, kubelet_minor},
    policy::{NodePlacement, Taint},
};

/// The annotations of a Node that the operator reads: the node agent's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeAnnotations;

impl KeepAnnotations for NodeAnnotations {
    fn keep(key: &str) -> bool {
        key.starts_with("seccomp.sentinel.dev/")
    }
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct NodeWire {
    pub metadata: NodeMeta,
    pub spec: Option<NodeSpecWire>,
    pub status: Option<NodeStatusWire>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct NodeSpecWire {
    pub unschedulable: bool,
    pub taints: Vec<Taint>,
}

impl WatchedKind for NodeWire {
    const GROUP: &'static str = "";
    const VERSION: &'static str = "v1";
    const KIND: &'static str = "Node";
    const PLURAL: &'static str = "nodes";
    type Scope = ClusterResourceScope;
}

/// Node metadata: [`Meta`] and the managed fields (who set which annotation).
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeMeta {
    #[serde(flatten)]
    pub meta: Meta<NodeAnnotations>,
    pub managed_fields: Vec<ManagedFieldsWire>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ManagedFieldsWire {
    pub manager: String,
    #[serde(rename = "fieldsV1")]
    pub fields_v1: Option<serde_json::Value>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeStatusWire {
    pub node_info: Option<NodeInfoWire>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeInfoWire {
    pub kubelet_version: String,
    pub operating_system: String,
}

impl NodeWire {
    /// What the node tells of itself: its OS (`status.nodeInfo`, else the `kubernetes.io/os`
    /// label), its kubelet's version and, if its node agent reported it, the kubelet's
    /// `seccompDefault`. `configured` decides that default (from the node's labels) where the agent
    /// has not reported it. The controller and the live audit both read nodes through this.
    pub fn facts(
        &self,
        configured: impl FnOnce(&BTreeMap<String, String>) -> KubeletSeccompDefault,
    ) -> NodeFacts {
        let labels = &self.metadata.meta.labels;
        let info = self.status.as_ref().and_then(|s| s.node_info.as_ref());
        // The kubelet's own report (the OS its binary was built for) decides; the label, which
        // whoever may label nodes can change, stands in only until the kubelet has reported.
        let reported = info
            .map(|i| i.operating_system.as_str())
            .filter(|os| !os.is_empty());
        let os = match reported.or_else(|| labels.get("kubernetes.io/os").map(String::as_str)) {
            Some(os) if os.eq_ignore_ascii_case("windows") => NodeOs::Windows,
            Some(os) if os.eq_ignore_ascii_case("linux") => NodeOs::Linux,
            _ => NodeOs::Unknown,
        };
        NodeFacts {
            os,
            kubelet_minor: info.and_then(|i| kubelet_minor(&i.kubelet_version)),
            seccomp_default: self
                .agent_reported_seccomp_default()
                .unwrap_or_else(|| configured(labels)),
        }
    }

    /// Whether new pods may start on the node: its labels, cordon and taints.
    pub fn placement(&self) -> NodePlacement {
        let spec = self.spec.as_ref();
        NodePlacement {
            labels: self.metadata.meta.labels.clone(),
            cordoned: spec.is_some_and(|s| s.unschedulable),
            // PreferNoSchedule keeps no pod away.
            taints: spec
                .map(|s| {
                    s.taints
                        .iter()
                        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The kubelet's `seccompDefault` as the node agent read it from the kubelet's configuration
    /// (`unknown` when it cannot tell what the kubelet started with): the annotation counts only when the agent's field manager wrote it (by the shipped
    /// admission policy, an agent can annotate only its own node).
    fn agent_reported_seccomp_default(&self) -> Option<KubeletSeccompDefault> {
        if !self
            .annotation_owners(KUBELET_DEFAULT_ANNOTATION)
            .contains(&AGENT_MANAGER)
        {
            return None;
        }
        match self.metadata.meta.annotations.get(KUBELET_DEFAULT_ANNOTATION) {
            Some("true") => Some(KubeletSeccompDefault::True),
            Some("false") => Some(KubeletSeccompDefault::False),
            // The kubelet's files changed after it started: the agent knows it does not know,
            // which beats what the configuration assumes.
            Some("unknown") => Some(KubeletSeccompDefault::Unknown),
            _ => None,
        }
    }

    /// The field managers that own annotation `key` (from `managedFields`).
    pub fn annotation_owners(&self, key: &str) -> Vec<&str> {
        let field = format!("f:{key}");
        self.metadata
            .managed_fields
            .iter()
            .filter(|m| {
                m.fields_v1
                    .as_ref()
                    .and_then(|f| f.get("f:metadata"))
                    .and_then(|f| f.get("f:annotations"))
                    .is_some_and(|a| a.get(&field).is_some())
            })
            .map(|m| m.manager.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_taints_that_keep_pods_away_count_and_a_cordon_does() {
        let placement = |spec: serde_json::Value| {
            serde_json::from_value::<NodeWire>(
                serde_json::json!({ "metadata": { "name": "n" }, "spec": spec }),
            )
            .expect("node")
            .placement()
        };
        let taint = |effect: &str| serde_json::json!({ "taints": [{ "key": "k", "effect": effect }] });
        assert_eq!(
            placement(taint("NoSchedule")).taints,
            vec![Taint {
                key: "k".into(),
                value: String::new(),
                effect: "NoSchedule".into()
            }]
        );
        assert_eq!(placement(taint("NoExecute")).taints.len(), 1);
        assert!(placement(taint("PreferNoSchedule")).taints.is_empty());
        assert!(placement(serde_json::json!({ "unschedulable": true })).cordoned);
        assert_eq!(placement(serde_json::json!({})), NodePlacement::default());
    }

    #[test]
    fn annotations_come_with_their_owners() {
        let node: NodeWire = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "n1", "labels": { "kubernetes.io/os": "linux" },
                "annotations": { "seccomp.sentinel.dev/kubelet-seccomp-default": "true", "node.alpha.kubernetes.io/ttl": "0" },
                "managedFields": [
                    { "manager": "seccomp-sentinel-agent", "operation": "Apply", "time": "99999-12-31T00:00:00Z",
                      "fieldsV1": { "f:metadata": { "f:annotations": { "f:seccomp.sentinel.dev/kubelet-seccomp-default": {} } } } },
                    { "manager": "kubelet", "operation": "Update", "fieldsV1": { "f:metadata": { "f:labels": {} } } }
                ]
            },
            "spec": { "taints": [{ "key": "k", "effect": "NoSchedule", "timeAdded": "99999-01-01T00:00:00Z" }] },
            "status": { "nodeInfo": { "kubeletVersion": "v1.36.3", "operatingSystem": "linux" } }
        }))
        .expect("node");
        assert_eq!(node.metadata.meta.annotations.map.len(), 1);
        assert_eq!(
            node.annotation_owners("seccomp.sentinel.dev/kubelet-seccomp-default"),
            vec!["seccomp-sentinel-agent"]
        );
        assert!(node.annotation_owners("seccomp.sentinel.dev/other").is_empty());
        let placement = node.placement();
        assert_eq!(placement.taints.len(), 1);
        assert!(!placement.cordoned);
        assert_eq!(
            placement.labels.get("kubernetes.io/os").map(String::as_str),
            Some("linux")
        );
        assert_eq!(
            node.status
                .and_then(|s| s.node_info)
                .map(|i| i.kubelet_version)
                .as_deref(),
            Some("v1.36.3")
        );
    }
}
