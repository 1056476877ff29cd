//! What the operator reads of the objects it watches, decoded straight into lean forms.
//!
//! Two reasons. Memory: a watched Pod is read field by field into the few values the operator
//! uses (its seccomp settings, identity, labels, owner), never into a whole `Pod`. Robustness: an
//! object the API server accepted must never stop the operator, so these types read only what
//! they need, read timestamps leniently ([`LenientTime`]: a time outside what the client can
//! represent is kept as such, not an error), and every watched item is decoded on its own
//! ([`Decoded`]): one that still fails is skipped and counted, and the rest of its list is used.
//! Error messages kept from a failed decoding name the position and the kind of error only, never
//! a value, so nothing of an object (say a container's environment) reaches the logs.

pub mod cluster;
mod decoded;
mod meta;
pub mod node;
pub mod pod;
pub mod status;
mod time;

pub use decoded::{Decoded, InvalidObject, WatchedKind};
pub use meta::{Annotations, KeepAnnotations, Meta, OwnerReference};
pub use time::LenientTime;
