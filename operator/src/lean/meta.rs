//! Object metadata, as much of it as the operator reads.

use std::{collections::BTreeMap, fmt, marker::PhantomData};

use serde::{
    Deserialize, Deserializer,
    de::{IgnoredAny, MapAccess, Visitor},
};

use super::LenientTime;

/// Which annotations a type keeps (others are skipped while reading: a pod may carry a large
/// `kubectl.kubernetes.io/last-applied-configuration`).
pub trait KeepAnnotations {
    fn keep(key: &str) -> bool;
}

/// Annotations filtered by `K` while they are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotations<K> {
    pub map: BTreeMap<String, String>,
    keep: PhantomData<K>,
}

impl<K> Default for Annotations<K> {
    fn default() -> Self {
        Annotations {
            map: BTreeMap::new(),
            keep: PhantomData,
        }
    }
}

impl<K> Annotations<K> {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }
}

impl<'de, K: KeepAnnotations> Deserialize<'de> for Annotations<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Filter<K>(PhantomData<K>);
        impl<'de, K: KeepAnnotations> Visitor<'de> for Filter<K> {
            type Value = Annotations<K>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of annotations")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Annotations::default())
            }
            fn visit_map<M: MapAccess<'de>>(self, mut access: M) -> Result<Self::Value, M::Error> {
                let mut map = BTreeMap::new();
                while let Some(key) = access.next_key::<String>()? {
                    if K::keep(&key) {
                        // A value that is not a string (never from the API server) is skipped.
                        if let serde_json::Value::String(value) = access.next_value::<serde_json::Value>()? {
                            map.insert(key, value);
                        }
                    } else {
                        access.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Annotations {
                    map,
                    keep: PhantomData,
                })
            }
        }
        deserializer.deserialize_any(Filter(PhantomData))
    }
}

/// No annotation at all.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NoAnnotations;

impl KeepAnnotations for NoAnnotations {
    fn keep(_: &str) -> bool {
        false
    }
}

/// An owner reference, as far as the operator reads it.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase", default)]
pub struct OwnerReference {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub controller: Option<bool>,
}

/// Metadata of a watched object; annotations filtered by `K`.
#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase", default, bound(deserialize = "K: KeepAnnotations"))]
pub struct Meta<K = NoAnnotations> {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub generation: Option<i64>,
    #[serde(deserialize_with = "lenient_labels")]
    pub labels: BTreeMap<String, String>,
    pub annotations: Annotations<K>,
    pub owner_references: Vec<OwnerReference>,
    pub creation_timestamp: Option<LenientTime>,
    pub deletion_timestamp: Option<LenientTime>,
}

impl<K> Default for Meta<K> {
    fn default() -> Self {
        Meta {
            name: None,
            namespace: None,
            uid: None,
            resource_version: None,
            generation: None,
            labels: BTreeMap::new(),
            annotations: Annotations::default(),
            owner_references: Vec::new(),
            creation_timestamp: None,
            deletion_timestamp: None,
        }
    }
}

/// A resourceVersion as a number (the API server's are etcd revisions), to tell which of two
/// views of one object is newer; `None` when absent or not a number.
pub fn resource_version_number(resource_version: Option<&str>) -> Option<u64> {
    resource_version?.parse().ok()
}

impl<K> Meta<K> {
    /// See [`resource_version_number`].
    pub fn resource_version_number(&self) -> Option<u64> {
        resource_version_number(self.resource_version.as_deref())
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }

    /// The controlling owner, if any.
    pub fn controller(&self) -> Option<&OwnerReference> {
        self.owner_references.iter().find(|o| o.controller == Some(true))
    }
}

/// Labels (`null` reads as none; a value that is not a string is skipped).
fn lenient_labels<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error> {
    let value = Option::<BTreeMap<String, serde_json::Value>>::deserialize(deserializer)?;
    Ok(value
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(v) => Some((k, v)),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OnlyScc;
    impl KeepAnnotations for OnlyScc {
        fn keep(key: &str) -> bool {
            key == "openshift.io/scc"
        }
    }

    #[test]
    fn metadata_reads_leniently_and_keeps_only_wanted_annotations() {
        let meta: Meta<OnlyScc> = serde_json::from_value(serde_json::json!({
            "name": "p", "namespace": "n", "uid": "u", "resourceVersion": "3",
            "labels": { "app": "web" },
            "annotations": { "openshift.io/scc": "restricted-v2", "kubectl.kubernetes.io/last-applied-configuration": "{...}" },
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "deletionTimestamp": "9999-12-31T23:59:59Z",
            "managedFields": [{ "time": "99999-01-01T00:00:00Z", "manager": "x" }],
            "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "o", "controller": true }]
        }))
        .expect("metadata");
        assert_eq!(meta.annotations.map.len(), 1);
        assert_eq!(meta.annotations.get("openshift.io/scc"), Some("restricted-v2"));
        assert_eq!(meta.deletion_timestamp, Some(LenientTime::FarFuture));
        assert_eq!(meta.controller().map(|o| o.kind.as_str()), Some("ReplicaSet"));
        assert_eq!(meta.labels["app"], "web");
        let empty: Meta = serde_json::from_value(serde_json::json!({ "labels": null, "annotations": null }))
            .expect("nulls");
        assert!(empty.labels.is_empty());
    }
}
