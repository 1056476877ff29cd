//! Events (events.k8s.io/v1) on pods and policies, from the controller and the node agent. Each
//! Event gets a name that fits whatever the name of the object it is about (a pod name may have
//! 253 characters, an Event name no more).

use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};

use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{Api, Client, api::PostParams};
use tracing::{debug, warn};

pub struct Publisher {
    controller: &'static str,
    client: Client,
    instance: String,
}

/// Longest note an Event takes.
const NOTE_LIMIT: usize = 1024;
/// Room left in a name for the suffix.
const NAME_PREFIX_LIMIT: usize = 200;

/// A hash that is the same in every build: SHA-256 of what is hashed (integers little-endian), its
/// first 8 bytes. The standard library's hasher may change with a Rust release, and an Event name
/// that changed with an upgrade would record a `publish_once` Event a second time.
struct StableHasher(Sha256);

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn write_u16(&mut self, n: u16) {
        self.write(&n.to_le_bytes());
    }

    fn write_u32(&mut self, n: u32) {
        self.write(&n.to_le_bytes());
    }

    fn write_u64(&mut self, n: u64) {
        self.write(&n.to_le_bytes());
    }

    fn write_u128(&mut self, n: u128) {
        self.write(&n.to_le_bytes());
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }
}

/// An Event name for an object named `object`: its name (cut to fit, ending on a letter or digit)
/// and a hash of what makes the Event unique.
pub fn event_name(object: &str, unique: impl Hash) -> String {
    let mut hasher = StableHasher(Sha256::new());
    unique.hash(&mut hasher);
    let mut prefix: String = object.chars().take(NAME_PREFIX_LIMIT).collect();
    while prefix.ends_with(['-', '.']) {
        prefix.pop();
    }
    if prefix.is_empty() {
        prefix.push_str("seccomp-sentinel");
    }
    format!("{prefix}.{:016x}", hasher.finish())
}

/// What an Event says, and about what.
pub struct Notice<'a> {
    pub regarding: ObjectReference,
    pub warning: bool,
    pub reason: &'a str,
    pub action: &'a str,
    pub note: &'a str,
}

impl Publisher {
    /// Events reported by `controller` (a field manager name), from `instance`.
    pub fn new(client: Client, controller: &'static str, instance: Option<String>) -> Self {
        Publisher {
            controller,
            client,
            instance: instance.unwrap_or_else(|| controller.to_string()),
        }
    }

    /// Records an Event (cluster-scoped objects get theirs in `default`). Failures are logged,
    /// never fatal.
    pub async fn publish(&self, notice: Notice<'_>) {
        let unique = (
            notice.regarding.uid.clone(),
            notice.note,
            Timestamp::now().as_nanosecond(),
        );
        self.publish_once(notice, unique).await;
    }

    /// [`publish`](Self::publish) once per `identity` while the API server keeps the Event (its
    /// event TTL, an hour by default): the name comes from `identity` alone, so a second process
    /// (a restart, a new leader) finds the first one's Event there instead of adding its own.
    pub async fn publish_once(&self, notice: Notice<'_>, identity: impl Hash) {
        let Notice {
            regarding,
            warning,
            reason,
            action,
            note,
        } = notice;
        let name = event_name(regarding.name.as_deref().unwrap_or_default(), (reason, identity));
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".into());
        let mut note: String = note.chars().take(NOTE_LIMIT).collect();
        note.shrink_to_fit();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(Timestamp::now())),
            action: Some(action.into()),
            reason: Some(reason.into()),
            note: Some(note),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            reporting_controller: Some(self.controller.into()),
            reporting_instance: Some(self.instance.clone()),
            regarding: Some(regarding),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        // A create names no field manager by default; the API server would take one from the
        // User-Agent.
        let params = PostParams {
            field_manager: Some(self.controller.into()),
            ..PostParams::default()
        };
        match api.create(&params, &event).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => debug!(%reason, "event recorded before"),
            Err(e) if crate::client::namespace_terminating(&e) => {
                debug!(%reason, %namespace, "no event: the namespace is being deleted");
            }
            Err(e) => warn!(error = %crate::client::Brief(&e), %reason, "could not record an event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_fit_any_object_name() {
        let long = format!("{}-x", "a".repeat(251));
        let name = event_name(&long, 1);
        assert!(name.len() <= 253, "{}", name.len());
        let cut = event_name(&format!("{}-{}", "b".repeat(199), "c".repeat(50)), 1);
        assert!(!cut.contains("-."), "{cut}");
        assert_ne!(event_name("p", 1), event_name("p", 2));
        assert!(event_name("", 0).starts_with("seccomp-sentinel."));
    }

    /// The names are the same in every build (a `publish_once` Event is not recorded again after
    /// an upgrade): SHA-256 of the parts, strings ending in 0xff as `Hash` writes them, integers
    /// little-endian (the values below are Python's hashlib of those bytes).
    #[test]
    fn event_names_are_the_same_in_every_build() {
        assert_eq!(event_name("web", ("Evicted", "uid-1")), "web.2aab62aeece5f3cb");
        assert_eq!(event_name("web", 7u64), "web.aae89fc0f03e2959");
    }
}
