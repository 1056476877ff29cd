//! The few facts of a pod that decide its seccomp profiles, extracted once from the Kubernetes
//! object (so the operator caches a few hundred bytes per pod instead of the whole Pod).

use k8s_openapi::api::core::v1::{Pod, SeccompProfile, SecurityContext};

use crate::api::ContainerKind;

/// Annotation written by OpenShift's SCC admission: the SCC that admitted the pod.
pub const SCC_ANNOTATION: &str = "openshift.io/scc";
const POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// A profile as a pod asks for it (field or legacy annotation).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestedProfile {
    RuntimeDefault,
    Unconfined,
    /// Path relative to the kubelet's seccomp directory; may be empty (the container cannot start).
    Localhost(String),
    /// A type this version does not know; the kubelet treats it as Unconfined.
    Unknown(String),
}

impl RequestedProfile {
    pub fn from_field(profile: &SeccompProfile) -> Self {
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
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
    pub fn from_pod(pod: &Pod) -> Self {
        let annotations = pod.metadata.annotations.as_ref();
        let annotation = |key: &str| annotations.and_then(|a| a.get(key)).cloned();
        let Some(spec) = pod.spec.as_ref() else {
            return PodView {
                annotation: annotation(POD_ANNOTATION),
                scc: annotation(SCC_ANNOTATION),
                ..Default::default()
            };
        };
        let pod_context = spec.security_context.as_ref();
        let start_errors = seccomp_start_errors(pod);
        let container = |name: &str, kind: ContainerKind, context: Option<&SecurityContext>| ContainerView {
            name: name.to_string(),
            kind,
            profile: context
                .and_then(|c| c.seccomp_profile.as_ref())
                .map(RequestedProfile::from_field),
            annotation: annotation(&format!("{CONTAINER_ANNOTATION_PREFIX}{name}")),
            privileged: context.and_then(|c| c.privileged).unwrap_or(false),
            host_process: context
                .and_then(|c| c.windows_options.as_ref())
                .and_then(|w| w.host_process)
                .unwrap_or(false),
            start_error: start_errors
                .iter()
                .find(|(container, _)| *container == name)
                .map(|(_, message)| message.clone()),
        };
        let init = spec.init_containers.iter().flatten().map(|c| {
            let kind = if c.restart_policy.as_deref() == Some("Always") {
                ContainerKind::SidecarContainer
            } else {
                ContainerKind::InitContainer
            };
            container(&c.name, kind, c.security_context.as_ref())
        });
        let regular = spec
            .containers
            .iter()
            .map(|c| container(&c.name, ContainerKind::Container, c.security_context.as_ref()));
        let ephemeral = spec.ephemeral_containers.iter().flatten().map(|c| {
            container(
                &c.name,
                ContainerKind::EphemeralContainer,
                c.security_context.as_ref(),
            )
        });
        PodView {
            os: spec.os.as_ref().map(|os| os.name.clone()),
            host_process: pod_context
                .and_then(|c| c.windows_options.as_ref())
                .and_then(|w| w.host_process)
                .unwrap_or(false),
            profile: pod_context
                .and_then(|c| c.seccomp_profile.as_ref())
                .map(RequestedProfile::from_field),
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
fn seccomp_start_errors(pod: &Pod) -> Vec<(&str, String)> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .chain(status.ephemeral_container_statuses.iter().flatten())
        .filter_map(|c| {
            let waiting = c.state.as_ref()?.waiting.as_ref()?;
            let reason = waiting.reason.as_deref()?;
            let message = waiting.message.as_deref()?;
            let refused = matches!(
                reason,
                "CreateContainerError" | "CreateContainerConfigError" | "RunContainerError"
            );
            (refused && message.to_ascii_lowercase().contains("seccomp")).then(|| {
                let mut message: String = message.chars().take(START_ERROR_LIMIT).collect();
                if message.len() < waiting.message.as_deref().map_or(0, str::len) {
                    message.push('…');
                }
                (c.name.as_str(), message)
            })
        })
        .collect()
}
