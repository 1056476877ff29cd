//! The lean pod cache: each Pod is reduced, as it arrives from the watch, to the metadata the
//! controller uses and the engine's [`PodView`]. Everything else (managedFields, env, volumes,
//! resources, status, ...) is dropped before it reaches the store.

use std::{
    borrow::Cow,
    hash::{DefaultHasher, Hash, Hasher},
};

use k8s_openapi::{
    NamespaceResourceScope,
    api::core::v1::Pod,
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use kube::runtime::watcher;

use crate::engine::PodView;

/// A cached pod: identity, labels, owners, and the seccomp-relevant view.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeanPod {
    pub metadata: ObjectMeta,
    pub view: PodView,
    /// A static pod's mirror (annotation `kubernetes.io/config.mirror`).
    pub mirror: bool,
    /// Phase Succeeded or Failed.
    pub terminal: bool,
    /// Changes whenever anything the controller reads changes (not for other status updates).
    pub fingerprint: u64,
}

impl LeanPod {
    pub fn from_pod(pod: Pod) -> Self {
        let view = PodView::from_pod(&pod);
        let mirror = pod
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
        let terminal = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|phase| phase == "Succeeded" || phase == "Failed");
        let meta = pod.metadata;
        let metadata = ObjectMeta {
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            labels: meta.labels,
            owner_references: meta.owner_references.map(|owners| {
                owners
                    .into_iter()
                    .map(|o| OwnerReference {
                        api_version: o.api_version,
                        kind: o.kind,
                        name: o.name,
                        uid: o.uid,
                        controller: o.controller,
                        block_owner_deletion: None,
                    })
                    .collect()
            }),
            deletion_timestamp: meta.deletion_timestamp,
            creation_timestamp: meta.creation_timestamp,
            ..Default::default()
        };
        let mut hasher = DefaultHasher::new();
        metadata.uid.hash(&mut hasher);
        metadata.labels.hash(&mut hasher);
        for owner in metadata.owner_references.iter().flatten() {
            (&owner.uid, &owner.kind, owner.controller).hash(&mut hasher);
        }
        metadata.deletion_timestamp.is_some().hash(&mut hasher);
        (mirror, terminal).hash(&mut hasher);
        view.hash(&mut hasher);
        let fingerprint = hasher.finish();
        LeanPod {
            metadata,
            view,
            mirror,
            terminal,
            fingerprint,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }

    pub fn uid(&self) -> Option<&str> {
        self.metadata.uid.as_deref()
    }

    pub fn labels(&self) -> &std::collections::BTreeMap<String, String> {
        static EMPTY: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
        self.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    /// The controlling owner (the workload), if any.
    pub fn controller(&self) -> Option<&OwnerReference> {
        self.metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
    }
}

/// Maps a watch event of full Pods into one of lean pods.
pub fn lean_event(event: watcher::Event<Pod>) -> watcher::Event<LeanPod> {
    match event {
        watcher::Event::Apply(pod) => watcher::Event::Apply(LeanPod::from_pod(pod)),
        watcher::Event::Delete(pod) => watcher::Event::Delete(LeanPod::from_pod(pod)),
        watcher::Event::InitApply(pod) => watcher::Event::InitApply(LeanPod::from_pod(pod)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// The controller runtime asks for `Deserialize`; a lean pod is read as a full Pod, then reduced.
impl<'de> serde::Deserialize<'de> for LeanPod {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Pod::deserialize(deserializer).map(LeanPod::from_pod)
    }
}

impl kube::Resource for LeanPod {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("Pod")
    }

    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }

    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("pods")
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
