//! `SeccompPolicy`: which pods must be confined, and what to do when they are not.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// CEL: a pod selector reads none of [`super::OUTCOME_LABELS`].
fn outcome_labels_unselected() -> String {
    let quoted: Vec<String> = super::OUTCOME_LABELS.iter().map(|l| format!("'{l}'")).collect();
    let in_labels: Vec<String> = quoted
        .iter()
        .map(|l| format!("{l} in self.matchLabels"))
        .collect();
    format!(
        "(!has(self.matchLabels) || !({})) && (!has(self.matchExpressions) || !self.matchExpressions.exists(e, e.key in [{}]))",
        in_labels.join(" || "),
        quoted.join(", ")
    )
}

pub(crate) fn outcome_labels_message() -> String {
    format!(
        "{} are set by seccomp-sentinel from the verdicts: select on the pods' own labels",
        super::OUTCOME_LABELS.join(" and ")
    )
}

/// A label name, and a label key (an optional DNS-subdomain prefix and `/`, then a name), as RE2
/// for CEL (`[.]` rather than an escaped dot: CEL strings have no `\.`).
const LABEL_NAME_RE: &str = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";
const DNS_LABEL_RE: &str = "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?";

fn label_key_rule(key: &str) -> String {
    format!(
        "{key}.matches('^({DNS_LABEL_RE}([.]{DNS_LABEL_RE})*/)?{LABEL_NAME_RE}$') && {key}.lastIndexOf('/') <= 253"
    )
}

fn label_value_rule(value: &str) -> String {
    format!("{value}.matches('^({LABEL_NAME_RE})?$')")
}

pub(crate) const LABEL_KEY_MESSAGE: &str = "label keys are a name of at most 63 characters (letters, digits, '-', '_', '.', alphanumeric at both ends), optionally after a DNS subdomain and '/'";
pub(crate) const LABEL_VALUE_MESSAGE: &str = "label values are empty or at most 63 characters: letters, digits, '-', '_', '.', alphanumeric at both ends";

fn rule(rule: String, message: &str) -> serde_json::Value {
    serde_json::json!({ "rule": rule, "message": message })
}

/// A rule whose error names `field_path` (relative to the object the rule is on).
fn rule_at(field_path: &str, rule: String, message: &str) -> serde_json::Value {
    serde_json::json!({ "rule": rule, "message": message, "fieldPath": field_path })
}

/// [`checked_selector`] of the policy's own selectors: 32 expressions of up to 64 values.
fn checked_policy_selector(schema: &mut schemars::Schema) {
    checked_selector(schema, 32, 64);
}

/// [`checked_selector`] of an exemption's pod selector: 16 expressions of up to 16 values, so
/// that the API server can afford the rules on each of 64 exemptions (with 32 and 64 the
/// estimated cost of the values rule is 4.5 times its budget).
fn checked_exemption_selector(schema: &mut schemars::Schema) {
    checked_selector(schema, 16, 16);
}

/// What the API server checks of a label selector in built-in objects (Deployments, PDBs) and
/// not in a CRD's, checked at admission here: operators, values only where the operator takes
/// them, label keys and values. Bounded (`expressions` of up to `values` each, 64 labels; keys of
/// at most 317 characters: a 253-character prefix, `/`, a 63-character name) so that the API
/// server can afford these rules and the outcome-label rule. The controller checks the same (a
/// policy stored before is `Stalled`).
fn checked_selector(schema: &mut schemars::Schema, expressions_max: u32, values_max: u32) {
    let Some(properties) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    if let Some(expressions) = properties
        .get_mut("matchExpressions")
        .and_then(serde_json::Value::as_object_mut)
    {
        expressions.insert("maxItems".into(), expressions_max.into());
        if let Some(item) = expressions
            .get_mut("items")
            .and_then(serde_json::Value::as_object_mut)
        {
            if let Some(fields) = item
                .get_mut("properties")
                .and_then(serde_json::Value::as_object_mut)
            {
                if let Some(key) = fields.get_mut("key").and_then(serde_json::Value::as_object_mut) {
                    key.insert("maxLength".into(), 317.into());
                }
                if let Some(operator) = fields
                    .get_mut("operator")
                    .and_then(serde_json::Value::as_object_mut)
                {
                    operator.insert(
                        "enum".into(),
                        serde_json::json!(["In", "NotIn", "Exists", "DoesNotExist"]),
                    );
                }
                if let Some(values) = fields
                    .get_mut("values")
                    .and_then(serde_json::Value::as_object_mut)
                {
                    values.insert("maxItems".into(), values_max.into());
                    if let Some(value) = values.get_mut("items").and_then(serde_json::Value::as_object_mut) {
                        value.insert("maxLength".into(), 63.into());
                    }
                }
            }
            item.insert(
                "x-kubernetes-validations".into(),
                serde_json::json!([
                    rule_at(".key", label_key_rule("self.key"), LABEL_KEY_MESSAGE),
                    rule_at(
                        ".values",
                        "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)".into(),
                        "In and NotIn need at least one value",
                    ),
                    rule_at(
                        ".values",
                        "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0".into(),
                        "Exists and DoesNotExist take no values",
                    ),
                    rule_at(
                        ".values",
                        format!("!has(self.values) || self.values.all(v, {})", label_value_rule("v")),
                        LABEL_VALUE_MESSAGE,
                    ),
                ]),
            );
        }
    }
    if let Some(labels) = properties
        .get_mut("matchLabels")
        .and_then(serde_json::Value::as_object_mut)
    {
        labels.insert("maxProperties".into(), 64.into());
        if let Some(value) = labels
            .get_mut("additionalProperties")
            .and_then(serde_json::Value::as_object_mut)
        {
            value.insert("maxLength".into(), 63.into());
        }
        labels.insert(
            "x-kubernetes-validations".into(),
            serde_json::json!([
                rule(format!("self.all(k, {})", label_key_rule("k")), LABEL_KEY_MESSAGE),
                rule(
                    format!("self.all(k, {})", label_value_rule("self[k]")),
                    LABEL_VALUE_MESSAGE
                ),
            ]),
        );
    }
}

/// Which pods a policy selects, what it allows, and what it does about violations.
// clippy reads the repeated `printcolumn(type_ = ...)` arguments as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "seccomp.sentinel.dev",
    version = "v1alpha1",
    kind = "SeccompPolicy",
    plural = "seccomppolicies",
    status = "SeccompPolicyStatus",
    shortname = "ssp",
    category = "seccomp",
    doc = "Which pods must run confined by seccomp, and whether violations are reported, labelled or evicted.",
    printcolumn(name = "Action", type_ = "string", json_path = ".spec.action"),
    printcolumn(name = "Matched", type_ = "integer", json_path = ".status.matchedPods"),
    printcolumn(name = "Violating", type_ = "integer", json_path = ".status.violatingPods"),
    printcolumn(name = "Evicted", type_ = "integer", json_path = ".status.evictedPods"),
    printcolumn(
        name = "Halted",
        type_ = "integer",
        json_path = ".status.haltedWorkloads",
        priority = 1
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("!has(self.eviction) || self.action == 'Evict'")
    .message("eviction settings apply only to a policy with action: Evict"))]
#[x_kube(validation = Rule::new(
    "!has(self.allowedLocalhostProfiles) || size(self.allowedLocalhostProfiles) == 0 || !has(self.allowedProfiles) || size(self.allowedProfiles) == 0 || 'Localhost' in self.allowedProfiles")
    .message("allowedLocalhostProfiles needs Localhost in allowedProfiles"))]
#[serde(rename_all = "camelCase")]
pub struct SeccompPolicySpec {
    /// Namespaces whose pods the policy selects, by their labels. Absent or empty: all namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = checked_policy_selector)]
    pub namespace_selector: Option<LabelSelector>,

    /// Pods the policy selects, by their labels. Absent or empty: all pods of the namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(outcome_labels_unselected()).message(kube::core::Message::Message(outcome_labels_message())))]
    #[schemars(transform = checked_policy_selector)]
    pub pod_selector: Option<LabelSelector>,

    /// The profiles a container may run with: RuntimeDefault and/or Localhost. Default: both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2), inner(length(max = 32)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[x_kube(validation = Rule::new("!self.exists(p, p == 'Unconfined')")
        .message("Unconfined cannot be an allowed profile: list the confined profiles the policy accepts, and exempt workloads that must run unconfined"))]
    #[x_kube(validation = Rule::new("self.all(p, p == 'RuntimeDefault' || p == 'Localhost')")
        .message("allowedProfiles may contain only RuntimeDefault and Localhost"))]
    pub allowed_profiles: Vec<String>,

    /// Localhost profiles a container may use (paths relative to the kubelet's seccomp
    /// directory; `*` matches within one path segment, `**` across segments, `?` one
    /// character). Empty: any Localhost profile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(max = 253)))]
    #[x_kube(validation = Rule::new("self.all(g, size(g) > 0 && size(g) <= 253)")
        .message("allowedLocalhostProfiles entries must be 1 to 253 characters long"))]
    #[x_kube(validation = Rule::new("self.all(g, !g.startsWith('/'))")
        .message("allowedLocalhostProfiles are relative to the kubelet's seccomp directory: no leading '/'"))]
    #[x_kube(validation = Rule::new("self.all(g, !g.contains('..'))")
        .message("allowedLocalhostProfiles may not contain '..'"))]
    #[x_kube(validation = Rule::new("self.all(g, g.matches('^[A-Za-z0-9._/*?-]+$'))")
        .message("allowedLocalhostProfiles may use letters, digits, '.', '_', '-', '/' and the wildcards '*' and '?'"))]
    pub allowed_localhost_profiles: Vec<String>,

    /// The weakest profile a container may run with: `DenyList` (the profile must block some
    /// system calls: log-only and permissive Localhost profiles violate, and so do files missing
    /// or invalid on the node) or `AllowList` (it must block every call it does not list;
    /// RuntimeDefault is one). A profile whose strength is not known (the node agent has not read
    /// the file, no SeccompProfile object describes it) does not violate; the verdict says so.
    /// Such violations are labelled, never evicted: a replacement would run the same file.
    /// Absent: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_profile_strength: Option<MinimumProfileStrength>,

    /// Pods or containers the policy does not judge, each with a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub exemptions: Vec<Exemption>,

    /// What to do about violating pods: Audit (report only), Label, or Evict.
    #[serde(default)]
    pub action: PolicyActionMode,

    /// How to evict (only with `action: Evict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eviction: Option<EvictionSettings>,
}

/// The weakest profile strength a policy accepts (`spec.minimumProfileStrength`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum MinimumProfileStrength {
    DenyList,
    AllowList,
}

impl From<MinimumProfileStrength> for crate::api::ProfileStrength {
    fn from(minimum: MinimumProfileStrength) -> Self {
        match minimum {
            MinimumProfileStrength::DenyList => crate::api::ProfileStrength::DenyList,
            MinimumProfileStrength::AllowList => crate::api::ProfileStrength::AllowList,
        }
    }
}

/// What a policy does about violating pods.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
pub enum PolicyActionMode {
    /// Report in SeccompStatus and the policy's status only.
    #[default]
    Audit,
    /// Also label violating pods (`seccomp.sentinel.dev/violation`) and their profile.
    Label,
    /// Also evict violating pods whose workload would come back confined.
    Evict,
}

/// Pods or containers a policy does not judge. Every criterion given must match.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[x_kube(validation = Rule::new(
    "(has(self.namespaces) && size(self.namespaces) > 0) || has(self.podSelector) || (has(self.containers) && size(self.containers) > 0) || (has(self.sccs) && size(self.sccs) > 0)")
    .message("an exemption must name namespaces, a podSelector, containers or sccs"))]
#[serde(rename_all = "camelCase")]
pub struct Exemption {
    /// Why these pods may run unconfined (shown in every verdict it causes).
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("self.matches('[^ \\t]')").message("an exemption needs a reason"))]
    pub reason: String,

    /// Namespaces whose pods are exempt, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(length(max = 63)))]
    #[x_kube(validation = Rule::new("self.all(n, n.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(n) <= 63)")
        .message("exemption namespaces must be namespace names"))]
    pub namespaces: Option<Vec<String>>,

    /// Pods that are exempt, by their labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(outcome_labels_unselected()).message(kube::core::Message::Message(outcome_labels_message())))]
    #[schemars(transform = checked_exemption_selector)]
    pub pod_selector: Option<LabelSelector>,

    /// Container names exempt in the selected pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(length(max = 63)))]
    #[x_kube(validation = Rule::new("self.all(c, c.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(c) <= 63)")
        .message("exemption containers must be container names"))]
    pub containers: Option<Vec<String>>,

    /// OpenShift SCCs (annotation `openshift.io/scc`) whose pods are exempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), inner(length(max = 253)))]
    #[x_kube(validation = Rule::new("self.all(s, size(s) > 0 && size(s) <= 253)")
        .message("exemption sccs must be SCC names"))]
    pub sccs: Option<Vec<String>>,

    /// After this time (RFC 3339, e.g. `2027-06-30T00:00:00Z`) the exemption no longer applies.
    /// Kept as text: the operator reads it leniently, so no value the API server accepts can
    /// stop it from reading the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"), length(max = 64))]
    #[x_kube(validation = Rule::new("self < timestamp('9999-12-30T00:00:00Z')")
        .message("expires must be before 9999-12-30"))]
    pub expires: Option<String>,
}

/// Limits on evictions. Evictions always go through the Eviction API (PodDisruptionBudgets
/// apply) and never touch bare, static, DaemonSet, terminating or system pods.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvictionSettings {
    /// Record `WouldEvict` instead of evicting.
    #[serde(default)]
    pub dry_run: bool,

    /// A pod must be at least this old before it is evicted (e.g. `10m`, `1h30m`). Default 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(ms|s|m|h))+$')")
        .message("minUnconfinedAge must be a duration such as 90s, 10m or 1h30m"))]
    pub min_unconfined_age: Option<String>,

    /// Evictions per minute across the cluster, for this policy. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message("maxPerMinute must be at least 1"))]
    #[x_kube(validation = Rule::new("self <= 600").message("maxPerMinute may be at most 600"))]
    pub max_per_minute: Option<i32>,

    /// Evictions per minute in one namespace, for this policy. Default: no extra limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message("maxPerNamespacePerMinute must be at least 1"))]
    pub max_per_namespace_per_minute: Option<i32>,

    /// Minimum time between two evictions of pods of the same workload, so each replacement is
    /// judged before the next eviction. Default 2m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(ms|s|m|h))+$')")
        .message("workloadCooldown must be a duration such as 90s, 10m or 1h30m"))]
    pub workload_cooldown: Option<String>,
}

/// Observed state of a policy (kstatus-compatible: `observedGeneration`, `Ready`, `Stalled`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeccompPolicyStatus {
    /// The `metadata.generation` of the spec these figures and conditions are for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the policy is valid and applied; the message names expired exemptions),
    /// `Stalled` (the spec cannot be applied, so the policy is ignored; the message says why) and,
    /// while the loop guard holds some workloads, `EvictionsHalted`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Pods the policy selects.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub matched_pods: u32,
    /// Selected pods whose every container the policy allows.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub compliant_pods: u32,
    /// Selected pods with a container the policy does not allow.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub violating_pods: u32,
    /// Selected pods an exemption of the policy takes out.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub exempt_pods: u32,
    /// Pods labelled as violating by this policy.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub labeled_pods: u32,
    /// Pods evicted by this policy (cumulative).
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub evicted_pods: u32,
    /// Evictions refused by a PodDisruptionBudget or skipped as unsafe (cumulative).
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub blocked_evictions: u32,
    /// Workloads whose evictions the loop guard stopped (`evictions.halted` names them; the
    /// `seccomp.sentinel.dev/resume-evictions` annotation lifts them).
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub halted_workloads: u32,
    /// The eviction ledger of this policy, kept by the operator (written before each eviction),
    /// so rates, cooldowns and the loop guard hold across restarts and leader changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evictions: Option<EvictionLedgerStatus>,
}

/// Recent evictions and halted workloads of one policy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvictionLedgerStatus {
    /// Evictions of the last ten minutes.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub recent: Vec<EvictionEntry>,
    /// Workloads whose replacements came back violating: not evicted again until the policy's
    /// `seccomp.sentinel.dev/resume-evictions` annotation (a time) lifts the halts recorded
    /// before it.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub halted: Vec<HaltedWorkload>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvictionEntry {
    /// When (RFC 3339).
    #[schemars(length(max = 64))]
    pub at: String,
    /// The evicted pod's namespace.
    #[schemars(length(max = 253))]
    pub namespace: String,
    /// UID of the evicted pod's workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub workload: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HaltedWorkload {
    /// UID of the workload.
    #[schemars(length(max = 64))]
    pub workload: String,
    /// `<namespace>/<Kind> <name>`.
    #[schemars(length(max = 600))]
    pub name: String,
    /// Why the evictions stopped: what the replacements came back with.
    #[schemars(length(max = 1024))]
    pub reason: String,
    /// Since when (RFC 3339).
    #[schemars(length(max = 64))]
    pub since: String,
}
