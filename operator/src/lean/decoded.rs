//! One watched item decoded on its own.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer, de::DeserializeOwned};

/// An item of a list or watch event: `Ok` when it decoded, `Invalid` when it did not (the list or
/// event stream goes on). Either way the metadata the watch itself needs (resourceVersion, name,
/// namespace) is kept, so a watch never restarts over one bad object.
#[derive(Clone, Debug)]
pub enum Decoded<T> {
    Ok(T, ObjectMeta),
    Invalid(InvalidObject),
}

/// An object that could not be decoded: where it is and why, without any of its values.
#[derive(Clone, Debug, Default)]
pub struct InvalidObject {
    pub meta: ObjectMeta,
    /// The kind of error and its position (line and column), nothing of the content.
    pub error: String,
}

/// Just enough of any object's metadata for the watch: read leniently (strings only).
#[derive(Deserialize, Default)]
struct WatchMeta {
    #[serde(default)]
    metadata: WatchMetaFields,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WatchMetaFields {
    name: Option<String>,
    namespace: Option<String>,
    resource_version: Option<String>,
}

impl<T> Decoded<T> {
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Decoded::Ok(_, meta) => meta,
            Decoded::Invalid(invalid) => &invalid.meta,
        }
    }

    /// See [`super::meta::resource_version_number`].
    pub fn resource_version_number(&self) -> Option<u64> {
        super::meta::resource_version_number(self.meta().resource_version.as_deref())
    }

    pub fn into_result(self) -> Result<T, Box<InvalidObject>> {
        match self {
            Decoded::Ok(value, _) => Ok(value),
            Decoded::Invalid(invalid) => Err(Box::new(invalid)),
        }
    }

    /// Decodes one object from its JSON text.
    pub fn from_json(text: &str) -> Self
    where
        T: DeserializeOwned,
    {
        let watch: WatchMeta = serde_json::from_str(text).unwrap_or_default();
        let meta = ObjectMeta {
            name: watch.metadata.name,
            namespace: watch.metadata.namespace,
            resource_version: watch.metadata.resource_version,
            ..Default::default()
        };
        match serde_json::from_str::<T>(text) {
            Ok(value) => Decoded::Ok(value, meta),
            Err(e) => Decoded::Invalid(InvalidObject {
                meta,
                error: describe(&e),
            }),
        }
    }
}

/// A serde_json error without its message: serde's messages quote the values they did not
/// expect, and those may be anything (environment values among them).
fn describe(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "malformed JSON",
        serde_json::error::Category::Data => "a value of an unexpected type or range",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Decoded<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The item's own text, then decoded apart from its list.
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        Ok(Decoded::from_json(raw.get()))
    }
}

/// Watched types name their API resource through this (the `Resource` impl of [`Decoded`]).
pub trait WatchedKind {
    const GROUP: &'static str;
    const VERSION: &'static str;
    const KIND: &'static str;
    const PLURAL: &'static str;
    type Scope;
}

impl<T: WatchedKind> kube::Resource for Decoded<T> {
    type DynamicType = ();
    type Scope = T::Scope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(T::KIND)
    }

    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(T::GROUP)
    }

    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(T::VERSION)
    }

    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(T::PLURAL)
    }

    fn meta(&self) -> &ObjectMeta {
        Decoded::meta(self)
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Decoded::Ok(_, meta) => meta,
            Decoded::Invalid(invalid) => &mut invalid.meta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct Strict {
        count: u8,
    }

    #[test]
    fn one_bad_item_does_not_fail_its_list() {
        let list = r#"[{"metadata": {"name": "a", "resourceVersion": "7"}, "count": 1},
                       {"metadata": {"name": "b", "namespace": "n", "resourceVersion": "8"}, "count": "s3cr3t-value"},
                       {"count": 3}]"#;
        let items: Vec<Decoded<Strict>> = serde_json::from_str(list).expect("the list decodes");
        assert!(
            matches!(&items[0], Decoded::Ok(Strict { count: 1 }, m) if m.resource_version.as_deref() == Some("7"))
        );
        let Decoded::Invalid(bad) = &items[1] else {
            panic!("{:?}", items[1])
        };
        assert_eq!(
            (
                bad.meta.name.as_deref(),
                bad.meta.namespace.as_deref(),
                bad.meta.resource_version.as_deref()
            ),
            (Some("b"), Some("n"), Some("8"))
        );
        assert!(
            !bad.error.contains("s3cr3t"),
            "no values in the error: {}",
            bad.error
        );
        assert!(bad.error.contains("line 1"), "{}", bad.error);
        assert!(matches!(&items[2], Decoded::Ok(Strict { count: 3 }, _)));
    }
}
