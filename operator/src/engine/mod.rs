//! The effective seccomp profile of every container of a pod: pure functions, no Kubernetes I/O.
//!
//! The decision follows what the kubelet and the container runtimes do with the *stored* pod
//! (admission, the API server's old annotation/field sync and OpenShift's SCC defaulting have
//! already happened by then):
//!
//! 1. Windows (pod `spec.os.name`, node OS; `hostProcess` unless the node is known to run Linux,
//!    whose kubelet ignores it) → `NotApplicable`.
//! 2. Container field, else pod field (kubelets ≤ 1.24 also read the legacy annotations:
//!    container field > container annotation > pod field > pod annotation), else the kubelet's
//!    `seccompDefault` (RuntimeDefault) or nothing (Unconfined).
//! 3. `privileged: true` → Unconfined whatever was asked: the runtime drops the profile.
//!
//! A pod field equal to the default of the OpenShift SCC that admitted the pod is attributed to
//! `SCCDefault`, marked as inferred: the stored pod cannot tell who wrote it. On a pod SCC
//! admission admitted, a container field equal to the container's legacy annotation is attributed
//! to the annotation (admission converted it), and a pod field equal to the pod annotation is
//! marked inferred (admission writes that annotation for every field it keeps).

mod view;

use std::collections::HashMap;

pub use view::{ContainerView, PodView, RequestedProfile, SCC_ANNOTATION};

use crate::api::{
    ContainerSeccomp, EffectiveProfile, KubeletSeccompDefault, PodProfile, ProfileSource, ProfileType,
    SeccompStatusStatus,
};

/// The operating system a node runs: its `kubernetes.io/os` label or
/// `status.nodeInfo.operatingSystem`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NodeOs {
    Linux,
    Windows,
    /// Neither says (a Node object made by hand), or the node is assumed (the audit's manifests).
    #[default]
    Unknown,
}

/// What the operator knows about the node a pod runs on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFacts {
    pub os: NodeOs,
    /// Minor version of the node's kubelet (Kubernetes 1.x), when known.
    pub kubelet_minor: Option<u32>,
    pub seccomp_default: KubeletSeccompDefault,
}

/// The first non-wildcard `seccompProfiles` entry of every known SCC: what SCC admission writes
/// into a pod that asks for nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SccDefaults {
    defaults: HashMap<String, Option<RequestedProfile>>,
}

impl SccDefaults {
    /// Records an SCC from its `seccompProfiles` list (annotation spelling: `runtime/default`,
    /// `localhost/<path>`, `unconfined`, `*`).
    pub fn insert(&mut self, scc: &str, seccomp_profiles: &[String]) {
        let default = seccomp_profiles
            .iter()
            .find(|p| p.as_str() != "*")
            .and_then(|p| RequestedProfile::from_annotation(p));
        self.defaults.insert(scc.to_string(), default);
    }

    pub fn remove(&mut self, scc: &str) -> bool {
        self.defaults.remove(scc).is_some()
    }

    pub fn default_of(&self, scc: &str) -> Option<&RequestedProfile> {
        self.defaults.get(scc).and_then(Option::as_ref)
    }

    pub fn len(&self) -> usize {
        self.defaults.len()
    }

    pub fn is_empty(&self) -> bool {
        self.defaults.is_empty()
    }
}

/// Facts outside the pod that decide its effective profile.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    /// The pod's node, if scheduled and known.
    pub node: Option<&'a NodeFacts>,
    /// `seccompDefault` to assume when the node is not known (unscheduled pods).
    pub unknown_node_seccomp_default: KubeletSeccompDefault,
    pub sccs: &'a SccDefaults,
}

/// Kubelets up to this minor version honour the legacy seccomp annotations.
const LAST_ANNOTATION_KUBELET: u32 = 24;

/// Evaluates every container of `pod`. The result has no policies and no conditions yet.
pub fn evaluate(pod: &PodView, facts: &Facts<'_>) -> SeccompStatusStatus {
    let seccomp_default = facts
        .node
        .map_or(facts.unknown_node_seccomp_default, |n| n.seccomp_default);
    // A Linux kubelet ignores `windowsOptions` (the API server lets a pod without `spec.os` ask
    // for `hostProcess`) and runs the containers with the Linux seccomp settings as any other.
    let linux_node = facts.node.is_some_and(|n| n.os == NodeOs::Linux);
    let windows_pod = pod
        .os
        .as_deref()
        .is_some_and(|os| os.eq_ignore_ascii_case("windows"))
        || (pod.host_process && !linux_node)
        || facts.node.is_some_and(|n| n.os == NodeOs::Windows);
    // An unknown kubelet version is taken as a current one: every supported cluster is ≥ 1.33.
    let annotations_honoured = facts
        .node
        .and_then(|n| n.kubelet_minor)
        .is_some_and(|minor| minor <= LAST_ANNOTATION_KUBELET);
    let scc_default = pod.scc.as_deref().and_then(|scc| facts.sccs.default_of(scc));

    let rules = Rules {
        pod,
        windows_pod,
        linux_node,
        annotations_honoured,
        seccomp_default,
        scc_default,
    };
    let containers: Vec<ContainerSeccomp> = pod.containers.iter().map(|c| rules.container(c)).collect();
    summarize(pod, containers, seccomp_default)
}

struct Rules<'a> {
    pod: &'a PodView,
    windows_pod: bool,
    linux_node: bool,
    annotations_honoured: bool,
    seccomp_default: KubeletSeccompDefault,
    scc_default: Option<&'a RequestedProfile>,
}

impl Rules<'_> {
    fn container(&self, c: &ContainerView) -> ContainerSeccomp {
        let mut warnings = Vec::new();
        if self.windows_pod || (c.host_process && !self.linux_node) {
            return ContainerSeccomp {
                name: c.name.clone(),
                kind: c.kind,
                profile: EffectiveProfile {
                    type_: ProfileType::NotApplicable,
                    localhost_profile: None,
                },
                source: ProfileSource::Windows,
                confined: false,
                ..Default::default()
            };
        }

        let pod = self.pod;
        if c.host_process || pod.host_process {
            warnings.push(
                "windowsOptions.hostProcess is set, but the node runs Linux: its kubelet ignores it and applies the Linux seccomp settings".into(),
            );
        }
        let container_annotation =
            self.annotation(c.annotation.as_deref(), &c.profile, "container", &mut warnings);
        let pod_annotation = self.annotation(pod.annotation.as_deref(), &pod.profile, "pod", &mut warnings);
        let (requested, mut source) = if let Some(p) = &c.profile {
            (p.clone(), ProfileSource::ContainerField)
        } else if let Some(p) = container_annotation {
            (p, ProfileSource::ContainerAnnotation)
        } else if let Some(p) = &pod.profile {
            (p.clone(), ProfileSource::PodField)
        } else if let Some(p) = pod_annotation {
            (p, ProfileSource::PodAnnotation)
        } else {
            match self.seccomp_default {
                KubeletSeccompDefault::True => {
                    (RequestedProfile::RuntimeDefault, ProfileSource::KubeletDefault)
                }
                KubeletSeccompDefault::False => (RequestedProfile::Unconfined, ProfileSource::None),
                KubeletSeccompDefault::Unknown => {
                    warnings.push(
                        "no profile set and the node's kubelet seccompDefault is unknown: assumed off".into(),
                    );
                    (RequestedProfile::Unconfined, ProfileSource::None)
                }
            }
        };

        let mut source_inferred = false;
        if source == ProfileSource::PodField && self.scc_default == Some(&requested) {
            source = ProfileSource::SccDefault;
            source_inferred = true;
        }
        if pod.scc.is_some() {
            // SCC admission (OpenShift 4.13+) turns a container annotation into an equal
            // container field, and writes the pod annotation for every pod field it keeps: the
            // stored pod cannot say which of the two its author wrote.
            let annotated = |value: Option<&str>| value.and_then(RequestedProfile::from_annotation);
            if source == ProfileSource::ContainerField
                && annotated(c.annotation.as_deref()).as_ref() == Some(&requested)
            {
                source = ProfileSource::ContainerAnnotation;
                source_inferred = true;
            } else if source == ProfileSource::PodField
                && annotated(pod.annotation.as_deref()).as_ref() == Some(&requested)
            {
                source_inferred = true;
            }
        }

        let mut profile = match &requested {
            RequestedProfile::RuntimeDefault => EffectiveProfile {
                type_: ProfileType::RuntimeDefault,
                localhost_profile: None,
            },
            RequestedProfile::Unconfined => EffectiveProfile {
                type_: ProfileType::Unconfined,
                localhost_profile: None,
            },
            RequestedProfile::Localhost(path) => {
                if path.is_empty() {
                    warnings.push(
                        "Localhost profile with an empty localhostProfile: the kubelet refuses to start the container (CreateContainerConfigError)".into(),
                    );
                }

                EffectiveProfile {
                    type_: ProfileType::Localhost,
                    localhost_profile: Some(path.clone()),
                }
            }
            RequestedProfile::Unknown(type_) => {
                warnings.push(format!(
                    "unknown seccompProfile type {}: the kubelet runs the container Unconfined",
                    quoted(type_)
                ));
                EffectiveProfile {
                    type_: ProfileType::Unconfined,
                    localhost_profile: None,
                }
            }
        };

        if let Some(error) = &c.start_error {
            warnings.push(format!(
                "the container runtime cannot apply this profile on the node, so the container does not start: {error}"
            ));
        }

        if c.privileged {
            // A profile the kubelet defaulted was never asked for: nothing to warn about.
            if profile.type_ != ProfileType::Unconfined && source != ProfileSource::KubeletDefault {
                warnings.push(format!(
                    "{} requested, but privileged containers always run Unconfined",
                    describe(&profile)
                ));
            }
            profile = EffectiveProfile {
                type_: ProfileType::Unconfined,
                localhost_profile: None,
            };
            source = ProfileSource::Privileged;
            source_inferred = false;
        }

        let confined = matches!(
            profile.type_,
            ProfileType::RuntimeDefault | ProfileType::Localhost
        );
        ContainerSeccomp {
            name: c.name.clone(),
            kind: c.kind,
            profile,
            source,
            confined,
            source_inferred,
            warnings,
            strength: None,
            strength_source: None,
            runtime: None,
        }
    }

    /// The profile a legacy annotation asks for, when this node's kubelet honours it. Otherwise
    /// (or when the value is invalid) a warning, unless the annotation just mirrors the field.
    fn annotation(
        &self,
        value: Option<&str>,
        field: &Option<RequestedProfile>,
        level: &str,
        warnings: &mut Vec<String>,
    ) -> Option<RequestedProfile> {
        let value = value?;
        let Some(parsed) = RequestedProfile::from_annotation(value) else {
            warnings.push(format!(
                "invalid {level} seccomp annotation value {}: ignored",
                quoted(value)
            ));
            return None;
        };
        if self.annotations_honoured {
            return Some(parsed);
        }
        if field.as_ref() != Some(&parsed) {
            warnings.push(format!(
                "{level} seccomp annotation {} is ignored by kubelets 1.25 and newer; use the seccompProfile field",
                quoted(value)
            ));
        }
        None
    }
}

/// Characters of a pod's own text (an annotation, a path) a warning repeats at most: a warning
/// is repeated for every container, and a pod's annotations may hold 256 KiB.
const QUOTED_LIMIT: usize = 256;

/// `value` quoted, cut to [`QUOTED_LIMIT`] characters.
fn quoted(value: &str) -> String {
    match crate::status::first_chars(value, QUOTED_LIMIT) {
        (whole, true) => format!("{whole:?}"),
        (start, false) => format!("{start:?}… ({} bytes)", value.len()),
    }
}

fn describe(profile: &EffectiveProfile) -> String {
    match (&profile.type_, &profile.localhost_profile) {
        (ProfileType::Localhost, Some(path)) => format!("Localhost {}", quoted(path)),
        (t, _) => format!("{t:?}"),
    }
}

fn summarize(
    pod: &PodView,
    containers: Vec<ContainerSeccomp>,
    seccomp_default: KubeletSeccompDefault,
) -> SeccompStatusStatus {
    // Scoped: the iterator borrows `containers`, which the status then takes.
    let (total, confined, profile) = {
        let applicable = crate::api::applicable(&containers);
        let total = applicable.clone().count() as u32;
        let confined = applicable.clone().filter(|c| c.confined).count() as u32;
        let profile = if total == 0 {
            if containers.is_empty() {
                PodProfile::Unconfined
            } else {
                PodProfile::NotApplicable
            }
        } else if confined == 0 {
            PodProfile::Unconfined
        } else if confined < total {
            PodProfile::Mixed
        } else if applicable
            .clone()
            .any(|c| c.profile.type_ == ProfileType::RuntimeDefault)
        {
            PodProfile::RuntimeDefault
        } else {
            PodProfile::Localhost
        };
        (total, confined, profile)
    };
    let weakest = weakest(&containers);
    SeccompStatusStatus {
        profile,
        confined: format!("{confined}/{total}"),
        confined_containers: confined,
        total_containers: total,
        source: weakest.map(|c| c.source),
        node: pod.node_name.clone(),
        scc: pod.scc.clone(),
        kubelet_seccomp_default: seccomp_default,
        containers,
        ..Default::default()
    }
}

/// The container whose profile stands for the pod's `source`: the first unconfined one, else the
/// first.
pub fn weakest(containers: &[ContainerSeccomp]) -> Option<&ContainerSeccomp> {
    containers
        .iter()
        .find(|c| !c.confined && c.profile.type_ != ProfileType::NotApplicable)
        .or_else(|| containers.first())
}

/// Parses a kubelet version such as `v1.29.5+abc` into its minor version.
pub fn kubelet_minor(version: &str) -> Option<u32> {
    let mut parts = version.trim_start_matches('v').split('.');
    if parts.next()? != "1" {
        return None;
    }
    let minor: String = parts.next()?.chars().take_while(char::is_ascii_digit).collect();
    minor.parse().ok()
}

#[cfg(test)]
mod tests;
