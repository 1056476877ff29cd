//! `SeccompStatus`: one per pod, same name and namespace, owned by the pod.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spec of a SeccompStatus: which pod it describes.
// clippy reads the repeated `printcolumn(type_ = ...)` arguments as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "seccomp.sentinel.dev",
    version = "v1alpha1",
    kind = "SeccompStatus",
    plural = "seccompstatuses",
    namespaced,
    status = "SeccompStatusStatus",
    shortname = "sst",
    category = "seccomp",
    // Lets each node agent watch only the statuses of its node.
    selectable = ".status.node",
    doc = "The effective seccomp profile of one pod's containers, and why; written by seccomp-sentinel.",
    printcolumn(
        name = "Profile",
        type_ = "string",
        json_path = ".status.profile",
        description = "Summary of the containers' effective profiles"
    ),
    printcolumn(
        name = "Confined",
        type_ = "string",
        json_path = ".status.confined",
        description = "Confined containers / containers seccomp applies to"
    ),
    printcolumn(
        name = "Source",
        type_ = "string",
        json_path = ".status.source",
        description = "Where the weakest container's profile comes from"
    ),
    printcolumn(
        name = "SCC",
        type_ = "string",
        json_path = ".status.scc",
        description = "OpenShift SecurityContextConstraints that admitted the pod"
    ),
    printcolumn(
        name = "Verdict",
        type_ = "string",
        json_path = ".status.verdict",
        description = "Worst verdict of the SeccompPolicies that select the pod"
    ),
    printcolumn(
        name = "Action",
        type_ = "string",
        json_path = ".status.action",
        description = "Strongest action taken on the pod"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Node", type_ = "string", json_path = ".status.node", priority = "1"),
    printcolumn(
        name = "Strength",
        type_ = "string",
        json_path = ".status.strength",
        priority = "1",
        description = "How much the weakest container's profile blocks"
    ),
    printcolumn(
        name = "Runtime",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"RuntimeVerified\")].reason",
        priority = "1",
        description = "What the node agent saw in the kernel"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SeccompStatusSpec {
    /// UID of the pod this status was computed for (the owner reference names the same pod). Left
    /// out by `audit` for workloads and manifests without one.
    #[serde(rename = "podUID", default, skip_serializing_if = "String::is_empty")]
    pub pod_uid: String,
}

/// The effective seccomp profile of a pod, container by container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = keep_field_descriptions)]
pub struct SeccompStatusStatus {
    /// Summary: RuntimeDefault or Localhost when every container is confined (RuntimeDefault if
    /// any container uses it), Unconfined when none is, Mixed when some are not, NotApplicable for
    /// Windows pods.
    #[serde(default)]
    pub profile: PodProfile,
    /// "<confined>/<applicable>": confined containers over the containers seccomp applies to (all
    /// of them, except in Windows pods).
    #[serde(default)]
    pub confined: String,
    /// Applicable containers whose effective profile confines them.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub confined_containers: u32,
    /// Containers seccomp applies to (all of them, except in Windows pods).
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub total_containers: u32,
    /// Source of the weakest container's profile (the first unconfined one, else the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ProfileSource>,
    /// The weakest container's profile strength (see `containers[].strength`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<ProfileStrength>,
    /// The node the pod is scheduled to; absent while it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The SCC that admitted the pod (annotation `openshift.io/scc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scc: Option<String>,
    /// The kubelet `seccompDefault` of the pod's node, as far as the operator knows.
    #[serde(default)]
    pub kubelet_seccomp_default: KubeletSeccompDefault,
    /// Worst verdict over `policies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Strongest action over `policies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<PolicyAction>,
    // Keyed by name: the controller owns each entry's fields, the node agent each `runtime`.
    /// Every container of the pod (init, sidecar, regular and ephemeral), in the pod's order:
    /// its effective profile and why, and what the node agent found in the kernel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub containers: Vec<ContainerSeccomp>,
    /// Containers left out of `containers` so that the object stays within what the API server
    /// stores (a pod with thousands of containers); the unconfined ones are listed first. The
    /// counts, conditions and verdicts cover every container.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(extend("format" = "int32"))]
    pub unlisted_containers: u32,
    /// The verdict of every SeccompPolicy that selects the pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub policies: Vec<PolicyResult>,
    // Keyed by type, each condition owned whole by its writer (see `crate::api::crds`), so the
    // controller's and the agent's conditions share the list.
    /// `Confined`, `ProfilesEnforcing` and `Compliant` (written by the operator) and
    /// `RuntimeVerified` (written by the node agent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The Localhost profile files the node agent read on the pod's node; written by the agent
    /// only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeStatus>,
}

fn is_zero(count: &u32) -> bool {
    *count == 0
}

/// Keeps every `Option<enum>` field's own description, at any depth of the status: kube's rewrite
/// of an optional enum lifts the enum type's schema, description included, over the field's.
fn keep_field_descriptions(status: &mut schemars::Schema) {
    use schemars::transform::{RecursiveTransform, Transform};
    RecursiveTransform(|schema: &mut schemars::Schema| {
        let Some(field) = schema.as_object_mut() else {
            return;
        };
        if !field.contains_key("description") {
            return;
        }
        for variant in ["anyOf", "oneOf"] {
            if let Some(variants) = field.get_mut(variant).and_then(|v| v.as_array_mut()) {
                for schema in variants.iter_mut().filter_map(|v| v.as_object_mut()) {
                    schema.remove("description");
                }
            }
        }
    })
    .transform(status);
}

/// The containers seccomp applies to (all of them, except in Windows pods).
pub fn applicable(containers: &[ContainerSeccomp]) -> impl Iterator<Item = &ContainerSeccomp> + Clone {
    containers
        .iter()
        .filter(|c| c.profile.type_ != ProfileType::NotApplicable)
}

impl SeccompStatusStatus {
    /// What the node agent read from the kernel for `container`.
    pub fn runtime_of(&self, container: &str) -> Option<&RuntimeObservation> {
        self.containers
            .iter()
            .find(|c| c.name == container)?
            .runtime
            .as_ref()
    }

    /// The node agent's report of `container`'s Localhost profile file.
    pub fn profile_file_of(&self, container: &str) -> Option<&ProfileFile> {
        let files = &self.runtime.as_ref()?.profile_files;
        files.iter().find(|f| f.name == container).map(|f| &f.file)
    }

    /// The node agent's `RuntimeVerified` condition.
    pub fn runtime_verified(&self) -> Option<&Condition> {
        self.conditions
            .iter()
            .find(|c| c.type_ == crate::status::RUNTIME_VERIFIED)
    }
}

impl SeccompStatus {
    /// The UID in the owner reference to a Pod: the pod this status was computed for.
    pub fn pod_uid(&self) -> Option<&str> {
        let owners = self.metadata.owner_references.as_deref()?;
        owners
            .iter()
            .find(|o| o.kind == "Pod" && o.api_version == "v1")
            .map(|o| o.uid.as_str())
    }
}

/// `status.runtime`: the node agent's reports of profile files, under a field manager of their own
/// (the kernel's view of each container is its `containers[].runtime`), the list owned whole.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeStatus {
    /// The Localhost profiles' files on the node, by container, running or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub profile_files: Vec<ContainerProfileFile>,
}

/// One container's Localhost profile file, as the node agent read it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerProfileFile {
    /// The container's name.
    pub name: String,
    #[serde(flatten)]
    pub file: ProfileFile,
}

/// The content of a Localhost profile a container started with.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartedContent {
    /// The container's start (`startedAt`) this content is for.
    pub container_started: Time,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// The content's class, when it was a profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<ProfileClass>,
}

// `Time` has no `Hash`; its timestamp does.
impl std::hash::Hash for StartedContent {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.container_started.0.hash(state);
        self.sha256.hash(state);
        self.class.hash(state);
    }
}

/// The effective profile of one container and why.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSeccomp {
    /// The container's name.
    pub name: String,
    /// Container, InitContainer, SidecarContainer (an init container with `restartPolicy:
    /// Always`) or EphemeralContainer.
    #[serde(default)]
    pub kind: ContainerKind,
    /// The profile the container runs with: what the runtime applies, after every default and
    /// override.
    #[serde(default)]
    #[x_kube(merge_strategy = MapMerge::Atomic)]
    pub profile: EffectiveProfile,
    /// Where the effective profile comes from: the container's or the pod's `seccompProfile`
    /// (ContainerField, PodField), a legacy annotation (ContainerAnnotation, PodAnnotation), the
    /// OpenShift SCC that admitted the pod (SCCDefault), the kubelet's `seccompDefault`
    /// (KubeletDefault), `privileged: true` (Privileged), a Windows pod (Windows), or nothing
    /// (None: unconfined).
    #[serde(default)]
    pub source: ProfileSource,
    /// The effective profile is RuntimeDefault or Localhost.
    #[serde(default)]
    pub confined: bool,
    /// The source was inferred (an OpenShift SCC default cannot be told from a user's choice).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub source_inferred: bool,
    /// How much the container's profile blocks, weakest first: Unconfined, Missing or Invalid
    /// (the Localhost file is absent or not a profile on the node), Permissive, LogOnly,
    /// Delegated (a user-space listener decides), Unknown, DenyList, AllowList (RuntimeDefault
    /// is one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<ProfileStrength>,
    /// Where the strength of a Localhost profile was learnt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength_source: Option<StrengthSource>,
    /// Why the effective profile may not be what the pod's author expects: an annotation this
    /// kubelet ignores, a profile overridden by `privileged`, an empty `localhostProfile`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The seccomp mode the kernel enforces on the container's main process, while it runs (and
    /// the last one read after it stopped); written by the node agent only, owned whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = MapMerge::Atomic)]
    pub runtime: Option<RuntimeObservation>,
}

/// How much a container's seccomp profile blocks, weakest first.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
pub enum ProfileStrength {
    /// No profile.
    Unconfined,
    /// The Localhost profile's file is not on the node: the container cannot start there.
    Missing,
    /// The file is not a seccomp profile: the container cannot start there.
    Invalid,
    /// The profile allows every system call.
    Permissive,
    /// The profile records system calls and blocks none by default.
    LogOnly,
    /// A user-space listener decides (`SCMP_ACT_NOTIFY` by default).
    Delegated,
    /// Not known: the node agent has not read the file (or cannot) and no SeccompProfile object
    /// describes the path.
    Unknown,
    /// The profile allows every system call but those it lists.
    DenyList,
    /// The profile denies every system call but those it lists (RuntimeDefault is one).
    AllowList,
}

impl ProfileStrength {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileStrength::Unconfined => "Unconfined",
            ProfileStrength::Missing => "Missing",
            ProfileStrength::Invalid => "Invalid",
            ProfileStrength::Permissive => "Permissive",
            ProfileStrength::LogOnly => "LogOnly",
            ProfileStrength::Delegated => "Delegated",
            ProfileStrength::Unknown => "Unknown",
            ProfileStrength::DenyList => "DenyList",
            ProfileStrength::AllowList => "AllowList",
        }
    }

    /// Blocks system calls by itself.
    pub fn enforcing(self) -> bool {
        matches!(self, ProfileStrength::DenyList | ProfileStrength::AllowList)
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum StrengthSource {
    /// The file on the pod's node, read by the node agent.
    Node,
    /// A Security Profiles Operator `SeccompProfile` whose `status.localhostProfile` is the path.
    SeccompProfile,
    /// The profile files given to `seccomp-sentinel audit --profiles-dir`.
    ProfilesDir,
}

/// The class of a seccomp profile's content, from its default action and rules.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ProfileClass {
    /// The default action denies; the rules allow.
    AllowList,
    /// The default action allows; some rules deny.
    DenyList,
    /// The default action logs.
    LogOnly,
    /// The default action allows and no rule denies.
    Permissive,
    /// The default action is `SCMP_ACT_NOTIFY`.
    Delegated,
}

impl From<ProfileClass> for ProfileStrength {
    fn from(class: ProfileClass) -> Self {
        match class {
            ProfileClass::AllowList => ProfileStrength::AllowList,
            ProfileClass::DenyList => ProfileStrength::DenyList,
            ProfileClass::LogOnly => ProfileStrength::LogOnly,
            ProfileClass::Permissive => ProfileStrength::Permissive,
            ProfileClass::Delegated => ProfileStrength::Delegated,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
pub enum ProfileFileState {
    /// Read and parsed.
    Present,
    #[default]
    Missing,
    /// Not a seccomp profile: a file that does not parse, or a directory.
    Invalid,
    /// Not read: its path leaves the profile directory, or it is a device or FIFO, or too large.
    Refused,
    /// Could not be read (permissions, I/O).
    Unreadable,
}

#[cfg(test)]
impl ContainerSeccomp {
    /// A container with this effective profile, confined when the profile confines (for tests).
    pub(crate) fn with_profile(name: &str, type_: ProfileType, localhost: Option<&str>) -> Self {
        ContainerSeccomp {
            name: name.into(),
            profile: EffectiveProfile {
                type_,
                localhost_profile: localhost.map(String::from),
            },
            confined: matches!(type_, ProfileType::RuntimeDefault | ProfileType::Localhost),
            ..Default::default()
        }
    }
}

/// A Localhost profile's file on a node, as the node agent found it. Holds no time but the start
/// of the container it concerns, so it is written only when the file or that start changes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileFile {
    /// The `localhostProfile`, relative to the kubelet's seccomp directory.
    pub path: String,
    /// Present (read and parsed), Missing, Invalid (not a seccomp profile: it does not parse, or
    /// is a directory), Refused (not read: it leaves the profile directory, is a device or FIFO,
    /// or is too large) or Unreadable.
    pub state: ProfileFileState,
    /// SHA-256 of the file's content, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The profile's `defaultAction`, e.g. `SCMP_ACT_ERRNO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<String>,
    /// Number of `syscalls` rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub syscall_rules: Option<u32>,
    /// AllowList (the default action denies), DenyList (it allows, some rules deny), LogOnly,
    /// Permissive (nothing denied) or Delegated (`SCMP_ACT_NOTIFY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<ProfileClass>,
    /// Why the file was not read or is not a profile; for a Present file, a note on its class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For a running container: the file is not what the container started with (it changed or
    /// went after the start), so the container runs the earlier content until it restarts, and
    /// this entry does not describe it. The message says when.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed_after_start: bool,
    /// For a running container: the content it started with, where the agent read the file
    /// unchanged since before the start. Kept with that start, so the file written again with
    /// this content, or put back, is known to be what the container runs, and a file changed
    /// since does not hide the class of what runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_with: Option<StartedContent>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveProfile {
    /// RuntimeDefault, Localhost, Unconfined, or NotApplicable (seccomp does not exist for a
    /// Windows container).
    #[serde(rename = "type")]
    pub type_: ProfileType,
    /// For Localhost: the profile's path, relative to the kubelet's seccomp directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localhost_profile: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
pub enum ProfileType {
    RuntimeDefault,
    Localhost,
    #[default]
    Unconfined,
    /// Seccomp does not exist for this container (Windows).
    NotApplicable,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
pub enum ProfileSource {
    ContainerField,
    PodField,
    ContainerAnnotation,
    PodAnnotation,
    /// Defaulted by the OpenShift SCC that admitted the pod (inferred).
    #[serde(rename = "SCCDefault")]
    SccDefault,
    /// Nothing asked; the kubelet's `seccompDefault` applies RuntimeDefault.
    KubeletDefault,
    /// `privileged: true` makes the runtime drop any profile.
    Privileged,
    Windows,
    /// Nothing asked and no default: Unconfined.
    #[default]
    None,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
pub enum ContainerKind {
    #[default]
    Container,
    InitContainer,
    /// An init container with `restartPolicy: Always`.
    SidecarContainer,
    EphemeralContainer,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
pub enum PodProfile {
    RuntimeDefault,
    Localhost,
    #[default]
    Unconfined,
    /// Some containers are confined and at least one is not.
    Mixed,
    NotApplicable,
    /// OpenShift's SCC admission would refuse the pod (audit of manifests only): no profile.
    Rejected,
}

impl PodProfile {
    pub fn as_str(self) -> &'static str {
        match self {
            PodProfile::RuntimeDefault => "RuntimeDefault",
            PodProfile::Localhost => "Localhost",
            PodProfile::Unconfined => "Unconfined",
            PodProfile::Mixed => "Mixed",
            PodProfile::NotApplicable => "NotApplicable",
            PodProfile::Rejected => "Rejected",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
pub enum KubeletSeccompDefault {
    #[serde(rename = "true")]
    True,
    #[serde(rename = "false")]
    False,
    /// Not known to the operator; treated as off.
    #[default]
    #[serde(rename = "unknown")]
    Unknown,
}

/// One policy's judgement of the pod.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyResult {
    /// The SeccompPolicy's name.
    pub name: String,
    /// Compliant, Exempt (an exemption of the policy matched) or Violating.
    pub verdict: Verdict,
    /// What the policy did about the pod: None, WouldEvict (a dry run), Labeled, EvictionSkipped
    /// (not safe to evict, or evicting would not help), EvictionBlocked (a
    /// PodDisruptionBudget or the API server refused the eviction), EvictionPending or Evicted.
    pub action: PolicyAction,
    /// Why, in one word (e.g. `Allowed`, `Exempted`, `WeakProfile`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Why, for a person: the containers at fault and what the policy allows.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
pub enum Verdict {
    Compliant,
    Exempt,
    Violating,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
pub enum PolicyAction {
    None,
    WouldEvict,
    Labeled,
    EvictionSkipped,
    EvictionBlocked,
    EvictionPending,
    Evicted,
}

/// The seccomp mode of a container's main process, from `/proc/<pid>/status`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeObservation {
    /// The `Seccomp:` line of `/proc/<pid>/status`: Disabled (0), Strict (1) or Filter (2).
    pub seccomp_mode: SeccompMode,
    /// `Seccomp_filters` (Linux 5.9 and newer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub filters: Option<u32>,
    /// The process the agent read, as the node sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    /// When the agent first saw this finding. It stays while the container's finding stays the
    /// same, whatever changes in the other containers.
    pub observed_at: Time,
    /// The kernel agrees with the container's effective profile: a confined container's process
    /// runs with seccomp (Filter or Strict). An unconfined one always agrees: its process may
    /// install filters of its own.
    pub agrees_with_effective: bool,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum SeccompMode {
    Disabled,
    Strict,
    Filter,
}
