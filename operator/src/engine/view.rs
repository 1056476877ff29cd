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
