//! The few facts of a pod that decide its seccomp profiles, extracted once from the Kubernetes
//! object (so the operator caches a few hundred bytes per pod instead of the whole Pod).

use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

pub use crate::lean::pod::SCC_ANNOTATION;
use crate::{
    api::ContainerKind,
    lean::{
        Annotations,
        pod::{
            CONTAINER_SECCOMP_ANNOTATION_PREFIX as CONTAINER_ANNOTATION_PREFIX, ContainerWire,
            POD_SECCOMP_ANNOTATION as POD_ANNOTATION, PodAnnotations, PodSpecWire, PodStatusWire,
            PodTemplateWire, PodWire, SeccompProfileWire,
        },
    },
};

/// A profile as a pod asks for it (field or legacy annotation).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RequestedProfile {
    RuntimeDefault,
    Unconfined,
    /// Path relative to the kubelet's seccomp directory; may be empty (the container cannot start).
    Localhost(String),
    /// A type this version does not know; the kubelet treats it as Unconfined.
    Unknown(String),
}

impl RequestedProfile {
    pub fn from_wire(profile: &SeccompProfileWire) -> Self {
        match profile.type_.as_str() {
            "RuntimeDefault" => RequestedProfile::RuntimeDefault,
            "Unconfined" => RequestedProfile::Unconfined,
            "Localhost" => RequestedProfile::Localhost(profile.localhost_profile.clone().unwrap_or_default()),
            other => RequestedProfile::Unknown(other.to_string()),
        }
    }

    /// Parses a legacy annotation value (`runtime/default`, `docker/default`, `unconfined`,
    /// `localhost/<path>`); `None` for anything else, as the kubelet and the API server do.
    pub fn from_annotation(value: &str) -> Option<Self> {
        match value {
            "runtime/default" | "docker/default" => Some(RequestedProfile::RuntimeDefault),
            "unconfined" => Some(RequestedProfile::Unconfined),
            _ => value
                .strip_prefix("localhost/")
                .filter(|path| !path.is_empty())
                .map(|path| RequestedProfile::Localhost(path.to_string())),
        }
    }
}

/// What the engine needs of one container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContainerView {
    pub name: String,
    pub kind: ContainerKind,
    pub profile: Option<RequestedProfile>,
    /// `container.seccomp.security.alpha.kubernetes.io/<name>`.
    pub annotation: Option<String>,
    pub privileged: bool,
    pub host_process: bool,
    /// Why the container runtime refused to create the container, when that is about its seccomp
    /// profile (e.g. a Localhost profile missing on the node), from the pod's container statuses.
    pub start_error: Option<String>,
}

/// What the engine needs of one pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PodView {
    /// `spec.os.name`.
    pub os: Option<String>,
    /// Pod-level `windowsOptions.hostProcess`.
    pub host_process: bool,
    pub profile: Option<RequestedProfile>,
    /// `seccomp.security.alpha.kubernetes.io/pod`.
    pub annotation: Option<String>,
    /// `openshift.io/scc`.
    pub scc: Option<String>,
    pub node_name: Option<String>,
    pub containers: Vec<ContainerView>,
}

impl PodView {
    /// Every Localhost profile the pod names (fields and `localhost/` annotations), repeats
    /// included.
    pub fn localhost_paths(&self) -> Vec<String> {
        let field = |p: &Option<RequestedProfile>| match p {
            Some(RequestedProfile::Localhost(l)) => Some(l.clone()),
            _ => None,
        };
        let annotated = |a: &Option<String>| a.as_deref()?.strip_prefix("localhost/").map(String::from);
        std::iter::once(field(&self.profile))
            .chain(std::iter::once(annotated(&self.annotation)))
            .chain(
                self.containers
                    .iter()
                    .flat_map(|c| [field(&c.profile), annotated(&c.annotation)]),
            )
            .flatten()
            .collect()
    }

    /// Whether the pod asks for the Localhost profile `path` anywhere (fields or annotations).
    pub fn uses_localhost(&self, path: &str) -> bool {
        self.localhost_paths().iter().any(|l| l == path)
    }

    /// The view of a Kubernetes Pod (as the audit reads them from files), through the same lean
    /// reading the controller uses.
    pub fn from_pod(pod: &Pod) -> Self {
        let wire: PodWire = serde_json::to_value(pod)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        Self::from_wire(&wire)
    }

    /// The view of a pod as watched.
    pub fn from_wire(pod: &PodWire) -> Self {
        Self::build(&pod.metadata.annotations, pod.spec.as_ref(), pod.status.as_ref())
    }

    /// The view of a workload's pod template (no node, no status).
    pub fn from_template(template: &PodTemplateWire) -> Self {
        Self::build(
            &template.metadata.annotations,
            template.spec.as_ref().map(|s| &s.pod),
            None,
        )
    }

    fn build(
        annotations: &Annotations<PodAnnotations>,
        spec: Option<&PodSpecWire>,
        status: Option<&PodStatusWire>,
    ) -> Self {
        let annotation = |key: &str| annotations.get(key).map(String::from);
        let Some(spec) = spec else {
            return PodView {
                annotation: annotation(POD_ANNOTATION),
                scc: annotation(SCC_ANNOTATION),
                ..Default::default()
            };
        };
        let pod_context = spec.security_context.as_ref();
        let start_errors = status.map(seccomp_start_errors).unwrap_or_default();
        let container = |c: &ContainerWire, kind: ContainerKind| {
            let context = c.security_context.as_ref();
            ContainerView {
                name: c.name.clone(),
                kind,
                profile: context
                    .and_then(|c| c.seccomp_profile.as_ref())
                    .map(RequestedProfile::from_wire),
                annotation: annotation(&format!("{CONTAINER_ANNOTATION_PREFIX}{}", c.name)),
                privileged: context.and_then(|c| c.privileged).unwrap_or(false),
                host_process: context
                    .and_then(|c| c.windows_options.as_ref())
                    .and_then(|w| w.host_process)
                    .unwrap_or(false),
                start_error: start_errors
                    .iter()
                    .find(|(name, _)| *name == c.name)
                    .map(|(_, message)| message.clone()),
            }
        };
        let init = spec.init_containers.iter().map(|c| {
            let kind = if c.restart_policy.as_deref() == Some("Always") {
                ContainerKind::SidecarContainer
            } else {
                ContainerKind::InitContainer
            };
            container(c, kind)
        });
        let regular = spec
            .containers
            .iter()
            .map(|c| container(c, ContainerKind::Container));
        let ephemeral = spec
            .ephemeral_containers
            .iter()
            .map(|c| container(c, ContainerKind::EphemeralContainer));
        PodView {
            os: spec.os.as_ref().map(|os| os.name.clone()),
            host_process: pod_context
                .and_then(|c| c.windows_options.as_ref())
                .and_then(|w| w.host_process)
                .unwrap_or(false),
            profile: pod_context
                .and_then(|c| c.seccomp_profile.as_ref())
                .map(RequestedProfile::from_wire),
            annotation: annotation(POD_ANNOTATION),
            scc: annotation(SCC_ANNOTATION),
            node_name: spec.node_name.clone().filter(|n| !n.is_empty()),
            containers: init.chain(regular).chain(ephemeral).collect(),
        }
    }
}

/// Longest runtime error message kept (they name the profile's path; that is enough).
const START_ERROR_LIMIT: usize = 300;

/// Containers the runtime could not create because of their seccomp profile: waiting with a
/// create/run error whose message is about seccomp.
fn seccomp_start_errors(status: &PodStatusWire) -> Vec<(&str, String)> {
    status
        .all()
        .filter_map(|c| {
            let waiting = c.state.as_ref()?.waiting.as_ref()?;
            let reason = waiting.reason.as_deref()?;
            let full = waiting.message.as_deref()?;
            let refused = matches!(
                reason,
                "CreateContainerError" | "CreateContainerConfigError" | "RunContainerError"
            );
            (refused && full.to_ascii_lowercase().contains("seccomp"))
                .then(|| (c.name.as_str(), crate::status::cut(full, START_ERROR_LIMIT)))
        })
        .collect()
}
