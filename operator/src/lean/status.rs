//! A SeccompStatus as the controller and the node agent read it back: identity, owner (whose UID
//! says which pod of that name the status is about), label, `spec.podUID`, and the status as plain
//! JSON (compared in canonical form, so nothing in it can fail to decode).

use k8s_openapi::NamespaceResourceScope;
use serde::Deserialize;

use super::{Meta, decoded::WatchedKind};

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct StatusWire {
    pub metadata: Meta,
    pub spec: StatusSpecWire,
    pub status: Option<serde_json::Value>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct StatusSpecWire {
    /// Read as any JSON, so that an odd value there is a difference, not an undecodable object.
    #[serde(rename = "podUID")]
    pub pod_uid: Option<serde_json::Value>,
}

impl WatchedKind for StatusWire {
    const GROUP: &'static str = crate::api::GROUP;
    const VERSION: &'static str = crate::api::VERSION;
    const KIND: &'static str = "SeccompStatus";
    const PLURAL: &'static str = "seccompstatuses";
    type Scope = NamespaceResourceScope;
}

impl StatusWire {
    /// The UID in the owner reference to a Pod: the pod this status was computed for.
    pub fn pod_uid(&self) -> Option<&str> {
        self.metadata
            .owner_references
            .iter()
            .find(|o| o.kind == "Pod" && o.api_version == "v1")
            .map(|o| o.uid.as_str())
    }

    /// The profile files the node agent reported (`status.runtime.profileFiles`); an entry that
    /// does not read as one is no report.
    pub fn profile_files(&self) -> Vec<crate::api::ContainerProfileFile> {
        self.runtime()
            .and_then(|r| r.get("profileFiles"))
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|entry| serde_json::from_value(entry.clone()).ok())
            .collect()
    }

    /// `status.runtime`, the node agent's part, as plain JSON.
    pub fn runtime(&self) -> Option<&serde_json::Value> {
        self.status.as_ref()?.get("runtime")
    }

    /// The entries of the list `status.<field>`, as plain JSON.
    fn status_list(&self, field: &str) -> impl Iterator<Item = &serde_json::Value> {
        self.status
            .as_ref()
            .and_then(|s| s.get(field))
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
    }

    /// The `status.containers` entries, as plain JSON.
    fn containers(&self) -> impl Iterator<Item = &serde_json::Value> {
        self.status_list("containers")
    }

    /// The node agent's finding of each container that has one (`containers[].runtime`), by
    /// name, as plain JSON.
    pub fn container_runtimes(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.containers()
            .filter_map(|c| Some((c.get("name")?.as_str()?, c.get("runtime")?)))
    }

    /// The `status.conditions` entries of type `type_`, as plain JSON.
    pub fn conditions_of_type<'a>(&'a self, type_: &'a str) -> impl Iterator<Item = &'a serde_json::Value> {
        self.status_list("conditions")
            .filter(move |c| c.get("type").and_then(|t| t.as_str()) == Some(type_))
    }

    /// The effective profile type of each container, as the controller wrote it.
    pub fn container_profiles(&self) -> Vec<(&str, &str)> {
        self.containers()
            .filter_map(|c| Some((c.get("name")?.as_str()?, c.get("profile")?.get("type")?.as_str()?)))
            .collect()
    }

    /// The `localhostProfile` of each container whose effective profile is Localhost.
    pub fn localhost_profiles(&self) -> Vec<(&str, &str)> {
        self.containers()
            .filter_map(|c| {
                let profile = c.get("profile")?;
                if profile.get("type")?.as_str()? != "Localhost" {
                    return None;
                }
                Some((
                    c.get("name")?.as_str()?,
                    profile.get("localhostProfile")?.as_str()?,
                ))
            })
            .collect()
    }

    /// The node the status is about (`status.node`).
    pub fn node(&self) -> Option<&str> {
        self.status.as_ref()?.get("node")?.as_str()
    }
}
