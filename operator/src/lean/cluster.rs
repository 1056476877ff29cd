//! The other objects the controller watches, each read for the little it uses: namespaces (their
//! labels), SecurityContextConstraints (their `seccompProfiles`), workloads (their pod template)
//! and SeccompPolicies (their spec, and their status as plain JSON).

use std::marker::PhantomData;

use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use serde::Deserialize;

use super::{KeepAnnotations, Meta, decoded::WatchedKind, pod::PodTemplateWire};
use crate::{api::SeccompPolicySpec, profile::strength::CatalogEntry};

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct NamespaceWire {
    pub metadata: Meta,
}

impl WatchedKind for NamespaceWire {
    const GROUP: &'static str = "";
    const VERSION: &'static str = "v1";
    const KIND: &'static str = "Namespace";
    const PLURAL: &'static str = "namespaces";
    type Scope = ClusterResourceScope;
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SccWire {
    pub metadata: Meta,
    #[serde(deserialize_with = "strings")]
    pub seccomp_profiles: Vec<String>,
}

impl WatchedKind for SccWire {
    const GROUP: &'static str = "security.openshift.io";
    const VERSION: &'static str = "v1";
    const KIND: &'static str = "SecurityContextConstraints";
    const PLURAL: &'static str = "securitycontextconstraints";
    type Scope = ClusterResourceScope;
}

/// A Security Profiles Operator `SeccompProfile`: what its content blocks, and the
/// `localhostProfile` pods use it by.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SeccompProfileWire {
    pub metadata: Meta,
    pub spec: SeccompProfileSpecWire,
    pub status: SeccompProfileStatusWire,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SeccompProfileSpecWire {
    pub default_action: String,
    #[serde(deserialize_with = "rule_actions")]
    pub syscalls: Vec<String>,
    pub base_profile_name: String,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SeccompProfileStatusWire {
    pub localhost_profile: String,
}

impl WatchedKind for SeccompProfileWire {
    const GROUP: &'static str = "security-profiles-operator.x-k8s.io";
    const VERSION: &'static str = "v1beta1";
    const KIND: &'static str = "SeccompProfile";
    const PLURAL: &'static str = "seccompprofiles";
    type Scope = ClusterResourceScope;
}

impl SeccompProfileWire {
    /// The `localhostProfile` that uses this profile: as its status says, else where the
    /// operator installs it (`operator/[<namespace>/]<name>.json`).
    pub fn localhost_profile(&self) -> String {
        if !self.status.localhost_profile.is_empty() {
            return self.status.localhost_profile.clone();
        }
        let name = self.metadata.name();
        let file = if name.ends_with(".json") {
            name.to_string()
        } else {
            format!("{name}.json")
        };
        match self.metadata.namespace.as_deref().filter(|n| !n.is_empty()) {
            Some(ns) => format!("operator/{ns}/{file}"),
            None => format!("operator/{file}"),
        }
    }

    /// What this profile blocks, as a catalog entry naming the object (`namespace/name`, or
    /// `name`), with the `localhostProfile` it is used by.
    pub fn catalog_entry(&self, namespace: &str, name: &str) -> (String, CatalogEntry) {
        let object = if namespace.is_empty() {
            name.to_string()
        } else {
            format!("{namespace}/{name}")
        };
        let entry = CatalogEntry::new(
            object,
            &self.spec.default_action,
            self.spec.syscalls.iter().map(String::as_str),
            Some(self.spec.base_profile_name.as_str()).filter(|b| !b.is_empty()),
        );
        (self.localhost_profile(), entry)
    }
}

/// The `action` of each rule that every runtime applies to some call
/// ([`crate::profile::Rule::applies`]): the CRD lets `names` be empty or name anything, and the
/// Security Profiles Operator writes such a rule into the file as it is. A rule that does not
/// decode counts as naming nothing.
fn rule_actions<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let value = Option::<Vec<serde_json::Value>>::deserialize(deserializer)?;
    Ok(value
        .unwrap_or_default()
        .into_iter()
        .map(|rule| serde_json::from_value::<crate::profile::Rule>(rule).unwrap_or_default())
        .filter(crate::profile::Rule::applies)
        .map(|rule| rule.action().to_string())
        .collect())
}

/// A list of strings (`null` is empty; entries that are not strings are skipped).
fn strings<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let value = Option::<Vec<serde_json::Value>>::deserialize(deserializer)?;
    Ok(value
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect())
}

/// The kinds of workload whose pods the controller may evict (their template decides).
pub trait WorkloadKind {
    const GROUP: &'static str;
    const VERSION: &'static str;
    const KIND: &'static str;
    const PLURAL: &'static str;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ReplicaSetKind;
#[derive(Clone, Copy, Debug, Default)]
pub struct StatefulSetKind;
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplicationControllerKind;

impl WorkloadKind for ReplicaSetKind {
    const GROUP: &'static str = "apps";
    const VERSION: &'static str = "v1";
    const KIND: &'static str = "ReplicaSet";
    const PLURAL: &'static str = "replicasets";
}

impl WorkloadKind for StatefulSetKind {
    const GROUP: &'static str = "apps";
    const VERSION: &'static str = "v1";
    const KIND: &'static str = "StatefulSet";
    const PLURAL: &'static str = "statefulsets";
}

impl WorkloadKind for ReplicationControllerKind {
    const GROUP: &'static str = "";
    const VERSION: &'static str = "v1";
    const KIND: &'static str = "ReplicationController";
    const PLURAL: &'static str = "replicationcontrollers";
}

/// A workload: identity and pod template.
#[derive(Deserialize, Debug, Default)]
#[serde(default, bound(deserialize = ""))]
pub struct WorkloadWire<K: Default> {
    pub metadata: Meta,
    pub spec: WorkloadSpecWire,
    pub status: WorkloadStatusWire,
    #[serde(skip)]
    kind: PhantomData<K>,
}

impl<K: Default> Clone for WorkloadWire<K> {
    fn clone(&self) -> Self {
        WorkloadWire {
            metadata: self.metadata.clone(),
            spec: self.spec.clone(),
            status: self.status.clone(),
            kind: PhantomData,
        }
    }
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadSpecWire {
    /// The pods the workload wants (the API server defaults it to 1).
    pub replicas: Option<i32>,
    pub template: Option<PodTemplateWire>,
    /// StatefulSets only.
    pub update_strategy: Option<UpdateStrategyWire>,
    /// StatefulSets only.
    pub ordinals: Option<OrdinalsWire>,
    /// Whether its selector reads one of the operator's own pod labels
    /// ([`WorkloadWire::selects_outcome_labels`]); nothing else of the selector is kept.
    pub selector: SelectsOutcomeLabels,
}

/// Whether a workload's selector, a label selector (ReplicaSets, StatefulSets) or a plain map
/// (ReplicationControllers), reads one of [`crate::api::OUTCOME_LABELS`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SelectsOutcomeLabels(pub bool);

impl<'de> Deserialize<'de> for SelectsOutcomeLabels {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let Some(selector) = value.as_object() else {
            return Ok(SelectsOutcomeLabels(false));
        };
        let ours = |key: &str| crate::api::OUTCOME_LABELS.contains(&key);
        // A map with no keys but these two is a label selector; any other is a plain map.
        let label_selector = selector
            .keys()
            .all(|k| k == "matchLabels" || k == "matchExpressions");
        let reads = if label_selector {
            let by_label = selector
                .get("matchLabels")
                .and_then(serde_json::Value::as_object)
                .is_some_and(|labels| labels.keys().any(|k| ours(k)));
            let by_expression = selector
                .get("matchExpressions")
                .and_then(serde_json::Value::as_array)
                .is_some_and(|expressions| {
                    expressions
                        .iter()
                        .filter_map(|e| e.get("key")?.as_str())
                        .any(ours)
                });
            by_label || by_expression
        } else {
            selector.keys().any(|k| ours(k))
        };
        Ok(SelectsOutcomeLabels(reads))
    }
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct UpdateStrategyWire {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub rolling_update: Option<RollingUpdateWire>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct RollingUpdateWire {
    /// An int32 for StatefulSets (a Deployment's would be an int or a percentage: not read).
    pub partition: Option<i64>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct OrdinalsWire {
    pub start: Option<i64>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadStatusWire {
    /// StatefulSets only.
    pub update_revision: Option<String>,
    pub observed_generation: Option<i64>,
}

impl<K: Default> WorkloadWire<K> {
    /// Its selector reads one of the operator's own pod labels
    /// ([`crate::api::OUTCOME_LABELS`]): changing that label on one of its pods would take the
    /// pod from it, and it would start another.
    pub fn selects_outcome_labels(&self) -> bool {
        self.spec.selector.0
    }

    /// What a StatefulSet's controller does with pods of earlier revisions; `None` for other
    /// workloads, and before the StatefulSet's controller has written its revision.
    pub fn stateful_rollout(&self) -> Option<crate::policy::StatefulRollout> {
        let update_revision = self.status.update_revision.clone().filter(|r| !r.is_empty())?;
        let strategy = self.spec.update_strategy.as_ref();
        // The API server defaults the type to RollingUpdate.
        let kind = strategy
            .and_then(|s| s.type_.as_deref())
            .unwrap_or("RollingUpdate");
        let partition = strategy
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.partition);
        let start = self.spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
        let held_below = match (kind, partition) {
            ("RollingUpdate", Some(partition)) => start.saturating_add(partition),
            _ => i64::MIN,
        };
        Some(crate::policy::StatefulRollout {
            // Until its controller has seen the latest spec, `updateRevision` is the earlier
            // template's.
            settled: self
                .status
                .observed_generation
                .is_some_and(|seen| self.metadata.generation.is_none_or(|latest| seen >= latest)),
            update_revision,
            // Recreate (alpha) deletes every pod of an earlier revision itself, too.
            replaces_earlier: kind != "OnDelete",
            held_below,
        })
    }
}

impl<K: WorkloadKind + Default> WatchedKind for WorkloadWire<K> {
    const GROUP: &'static str = K::GROUP;
    const VERSION: &'static str = K::VERSION;
    const KIND: &'static str = K::KIND;
    const PLURAL: &'static str = K::PLURAL;
    type Scope = NamespaceResourceScope;
}

/// The one annotation of a SeccompPolicy the operator reads: the time its halts are lifted.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PolicyAnnotations;

impl KeepAnnotations for PolicyAnnotations {
    fn keep(key: &str) -> bool {
        key == crate::policy::RESUME_ANNOTATION
    }
}

/// A SeccompPolicy: its spec as the CRD validated it, its status as plain JSON (the controller
/// reads counters, conditions and the eviction ledger from it leniently).
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct PolicyWire {
    pub metadata: Meta<PolicyAnnotations>,
    pub spec: SeccompPolicySpec,
    pub status: Option<serde_json::Value>,
}

impl WatchedKind for PolicyWire {
    const GROUP: &'static str = crate::api::GROUP;
    const VERSION: &'static str = crate::api::VERSION;
    const KIND: &'static str = "SeccompPolicy";
    const PLURAL: &'static str = "seccomppolicies";
    type Scope = ClusterResourceScope;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selects(kind_selector: serde_json::Value) -> bool {
        let workload: WorkloadWire<ReplicaSetKind> =
            serde_json::from_value(serde_json::json!({ "spec": { "selector": kind_selector } }))
                .expect("decodes");
        workload.selects_outcome_labels()
    }

    #[test]
    fn a_selector_reading_the_operators_labels_is_seen_in_either_form() {
        // A label selector (ReplicaSets, StatefulSets), by label or by expression.
        assert!(selects(
            serde_json::json!({ "matchLabels": { "app": "a", "seccomp.sentinel.dev/profile": "RuntimeDefault" } })
        ));
        assert!(selects(serde_json::json!({ "matchExpressions": [
            { "key": "seccomp.sentinel.dev/violation", "operator": "DoesNotExist" }] })));
        assert!(!selects(serde_json::json!({ "matchLabels": { "app": "a" },
            "matchExpressions": [{ "key": "tier", "operator": "Exists" }] })));
        // A ReplicationController's plain map.
        assert!(selects(
            serde_json::json!({ "app": "a", "seccomp.sentinel.dev/violation": "true" })
        ));
        assert!(!selects(serde_json::json!({ "app": "a" })));
        // Nothing, or something unreadable: no such key.
        assert!(!selects(serde_json::json!(null)));
        assert!(!selects(serde_json::json!("app=a")));
        assert!(!selects(serde_json::json!({ "matchLabels": "odd" })));
    }
}
