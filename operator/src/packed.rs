//! Values the controller keeps per pod for a long time, each held as one compact byte string
//! (postcard) and read back when a pass or a scan needs it. A pod's lean form is a few dozen small
//! allocations as structs (strings, vectors, boxed parts: about 1.5 KB with the allocator's
//! headers); packed, it is one allocation of about a hundred bytes.
//!
//! Postcard is not self-describing: a packed type must serialize every field it deserializes
//! (no `skip_serializing_if`, `flatten`, untagged enums or `deserialize_any`). The adapters below
//! give such fields a plain form; the round-trip tests hold every packed type to it.

use std::marker::PhantomData;

use serde::{Serialize, de::DeserializeOwned};

/// A `T`, packed. Equal values pack to equal bytes.
pub struct Packed<T> {
    bytes: Box<[u8]>,
    kind: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Packed<T> {
    pub fn pack(value: &T) -> Self {
        // Serializing a derived type into a vector only fails for the serde features the module
        // documentation rules out.
        let bytes =
            postcard::to_allocvec(value).expect("a packed type serializes (see the module documentation)");
        Packed {
            bytes: bytes.into_boxed_slice(),
            kind: PhantomData,
        }
    }

    pub fn unpack(&self) -> T {
        // The bytes came from `pack` of the same type in this process.
        postcard::from_bytes(&self.bytes).expect("packed bytes read back as their type")
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl<T> Clone for Packed<T> {
    fn clone(&self) -> Self {
        Packed {
            bytes: self.bytes.clone(),
            kind: PhantomData,
        }
    }
}

impl<T> PartialEq for Packed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl<T> Eq for Packed<T> {}

impl<T> std::fmt::Debug for Packed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packed({} bytes)", self.bytes.len())
    }
}

/// `Option<Timestamp>` as nanoseconds since the epoch.
pub mod timestamp {
    use k8s_openapi::jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    pub fn serialize<S: Serializer>(value: &Option<Timestamp>, serializer: S) -> Result<S::Ok, S::Error> {
        value.map(|t| t.as_nanosecond()).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Timestamp>, D::Error> {
        Option::<i128>::deserialize(deserializer)?
            .map(|ns| Timestamp::from_nanosecond(ns).map_err(D::Error::custom))
            .transpose()
    }
}

/// A value whose serde form is meant for JSON (optional fields left out), as a JSON string.
pub mod as_json {
    use serde::{
        Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned, de::Error as _,
        ser::Error as _,
    };

    pub fn serialize<T: Serialize, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
        serde_json::to_string(value)
            .map_err(S::Error::custom)?
            .serialize(serializer)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(deserializer)?;
        serde_json::from_str(&text).map_err(D::Error::custom)
    }
}

/// A [`LenientTime`](crate::lean::LenientTime), which reads itself leniently from JSON only.
pub mod lenient_time {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::lean::LenientTime;

    #[derive(Serialize, Deserialize)]
    enum Form {
        /// Nanoseconds since the epoch.
        At(i128),
        FarFuture,
        FarPast,
        Unreadable,
    }

    pub fn serialize<S: Serializer>(value: &LenientTime, serializer: S) -> Result<S::Ok, S::Error> {
        match *value {
            LenientTime::At(at) => Form::At(at.as_nanosecond()),
            LenientTime::FarFuture => Form::FarFuture,
            LenientTime::FarPast => Form::FarPast,
            LenientTime::Unreadable => Form::Unreadable,
        }
        .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<LenientTime, D::Error> {
        Ok(match Form::deserialize(deserializer)? {
            Form::At(ns) => k8s_openapi::jiff::Timestamp::from_nanosecond(ns)
                .map_or(LenientTime::Unreadable, LenientTime::At),
            Form::Unreadable => LenientTime::Unreadable,
            Form::FarFuture => LenientTime::FarFuture,
            Form::FarPast => LenientTime::FarPast,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Sample {
        name: Box<str>,
        #[serde(with = "timestamp")]
        at: Option<k8s_openapi::jiff::Timestamp>,
        list: Box<[(Box<str>, u8)]>,
    }

    #[test]
    fn a_packed_value_reads_back_as_it_was_and_is_compact() {
        let sample = Sample {
            name: "p00001".into(),
            at: Some(k8s_openapi::jiff::Timestamp::from_second(1_764_000_000).expect("time")),
            list: vec![("app".into(), 1), ("proxy".into(), 2)].into_boxed_slice(),
        };
        let packed = Packed::pack(&sample);
        assert_eq!(packed.unpack(), sample);
        assert!(packed.len() < 40, "{packed:?}");
        let other = Sample { at: None, ..sample };
        assert_ne!(Packed::pack(&other), packed);
    }
}
