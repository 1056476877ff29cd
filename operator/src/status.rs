//! What a SeccompStatus should say, and whether the stored one says it. Pure: no I/O, the current
//! time is an argument.
//!
//! A SeccompStatus is written whole, in one server-side apply (object, label, owner and status:
//! the CRD has no status subresource), and only when its canonical content differs from what is
//! stored. Canonical content is the JSON the controller owns: everything in `status` but the node
//! agent's parts (`status.runtime`, each `containers[].runtime`, `RuntimeVerified`), without
//! condition timestamps, with conditions in a fixed order. The
//! stored side is read as plain JSON, so a value the client could not decode (a timestamp out of
//! its range) cannot hide a difference, or stop the controller.

use std::hash::{DefaultHasher, Hash, Hasher};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    api::{CONTROLLER_MANAGER, PROFILE_LABEL, PodProfile, ProfileFile, SeccompStatusStatus, Verdict},
    lean::{LenientTime, status::StatusWire},
    policy::plan::Outcome,
};

pub const CONFINED: &str = "Confined";
pub const COMPLIANT: &str = "Compliant";
/// Whether the Localhost profiles in use block system calls (pods with a Localhost container).
pub const PROFILES_ENFORCING: &str = "ProfilesEnforcing";
/// Audit of manifests only: whether OpenShift's SCC admission (simulated) would admit the pod.
pub const ADMITTED: &str = "Admitted";
/// Owned by the node agent (in `status.conditions`, beside the controller's); the controller
/// never writes it.
pub const RUNTIME_VERIFIED: &str = "RuntimeVerified";

/// What is kept of a stored condition: enough to keep its `lastTransitionTime` while its status
/// stays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionMark {
    pub type_: String,
    pub status: String,
    #[serde(with = "crate::packed::lenient_time")]
    pub last_transition: LenientTime,
}

impl ConditionMark {
    pub fn of(condition: &Condition) -> Self {
        ConditionMark {
            type_: condition.type_.clone(),
            status: condition.status.clone(),
            last_transition: LenientTime::At(condition.last_transition_time.0),
        }
    }

    /// Reads the conditions of a status (or any object with a `conditions` list) as plain JSON.
    pub fn read_all(status: Option<&Value>) -> Vec<ConditionMark> {
        status
            .and_then(|s| s.get("conditions"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some(ConditionMark {
                    type_: c.get("type")?.as_str()?.to_string(),
                    status: c.get("status")?.as_str()?.to_string(),
                    last_transition: c
                        .get("lastTransitionTime")
                        .and_then(Value::as_str)
                        .map_or(LenientTime::Unreadable, LenientTime::parse),
                })
            })
            .collect()
    }
}

/// What the controller last saw (or wrote) of one SeccompStatus: enough to decide whether a write
/// is needed, without keeping the object (the controller keeps it packed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredStatus {
    /// UID in the pod ownerReference: the pod the status was computed for. None as well when
    /// `spec.podUID` names another pod (or none), so such an object is written again.
    pub owner_uid: Option<Box<str>>,
    /// The pod the object names (in `spec.podUID`, else in the owner reference) when that is not
    /// `owner_uid`: see [`StoredStatus::written_for_another_pod`].
    pub named_pod: Option<Box<str>>,
    pub profile_label: Option<Box<str>>,
    /// Fingerprint of the canonical controller-owned content of `status` (see [`fingerprint`]).
    pub fingerprint: u64,
    /// The controller-owned conditions, for their `lastTransitionTime`.
    pub conditions: Vec<ConditionMark>,
    /// What the node agent's `RuntimeVerified` condition says.
    pub runtime: RuntimeFinding,
    /// The node agent's reports of Localhost profile files, by container (usually none).
    #[serde(with = "crate::packed::as_json")]
    pub profile_files: Box<[(Box<str>, ProfileFile)]>,
    /// `status.node`, when there are profile file reports (the node they were read on).
    pub profile_node: Option<Box<str>>,
    /// The object's resourceVersion, when it is a number (as etcd's are).
    pub resource_version: Option<u64>,
}

/// What the node agent's `RuntimeVerified` condition says of a pod, for the gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuntimeFinding {
    /// No condition (no agent, or the pod has not run on its node).
    #[default]
    None,
    /// `True`: the kernel agrees with the effective profile.
    Agrees,
    /// `False`: the kernel disagrees (`Mismatch`).
    Mismatch,
    /// `Unknown`: a running container's process was not found (`ProcessNotFound`).
    Unverified,
}

impl RuntimeFinding {
    fn of(condition_status: &str) -> RuntimeFinding {
        match condition_status {
            "True" => RuntimeFinding::Agrees,
            "False" => RuntimeFinding::Mismatch,
            "Unknown" => RuntimeFinding::Unverified,
            _ => RuntimeFinding::None,
        }
    }
}

impl StoredStatus {
    pub fn from_wire(object: &StatusWire) -> Self {
        let meta = &object.metadata;
        let status = object.status.as_ref();
        // The agent's condition shares the list with the controller's; it is kept apart here.
        let (agents, conditions): (Vec<ConditionMark>, Vec<ConditionMark>) = ConditionMark::read_all(status)
            .into_iter()
            .partition(|c| c.type_ == RUNTIME_VERIFIED);
        let runtime = agents
            .first()
            .map_or(RuntimeFinding::None, |c| RuntimeFinding::of(&c.status));
        let profile_files: Box<[(Box<str>, ProfileFile)]> = object
            .profile_files()
            .into_iter()
            .map(|file| (file.name.into_boxed_str(), file.file))
            .collect();
        let profile_node = (!profile_files.is_empty())
            .then(|| object.node().map(Into::into))
            .flatten();
        let spec_pod = object.spec.pod_uid.as_ref().and_then(Value::as_str);
        let owner_uid = object.pod_uid().filter(|uid| spec_pod == Some(*uid));
        StoredStatus {
            profile_files,
            profile_node,
            named_pod: owner_uid
                .is_none()
                .then(|| spec_pod.or(object.pod_uid()).map(Into::into))
                .flatten(),
            owner_uid: owner_uid.map(Into::into),
            profile_label: meta.labels.get(PROFILE_LABEL).map(|v| v.as_str().into()),
            fingerprint: status.map_or(0, fingerprint_value),
            conditions,
            runtime,
            resource_version: meta.resource_version_number(),
        }
    }

    /// Whether this is the status of another pod of the same name (one recreated, as a
    /// StatefulSet's are) than `pod_uid`: what the node agent wrote in it, under its own field
    /// manager, is that pod's, and an apply cannot remove another manager's fields.
    pub fn written_for_another_pod(&self, pod_uid: &str) -> bool {
        self.owner_uid
            .as_deref()
            .or(self.named_pod.as_deref())
            .is_some_and(|named| named != pod_uid)
    }

    /// The node agent's profile file reports, if they were read for the pod `pod_uid` on the node
    /// it runs on (`node`): reports for an earlier pod of the same name, or from another node,
    /// say nothing of this one.
    pub fn profile_reports_for(&self, pod_uid: &str, node: Option<&str>) -> &[(Box<str>, ProfileFile)] {
        if self.owner_uid.as_deref() == Some(pod_uid) && self.profile_node.as_deref() == node {
            &self.profile_files
        } else {
            &[]
        }
    }
}

/// What each policy did to the pod, as a stored SeccompStatus records it (`status.policies`):
/// after a restart, the outcomes a first pass compares with, so that it announces and counts only
/// what changed. An entry that does not read as one is left out.
pub fn stored_outcomes(object: &StatusWire) -> Vec<Outcome> {
    object
        .status
        .as_ref()
        .and_then(|s| s.get("policies"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            fn field<T: serde::de::DeserializeOwned>(entry: &Value, name: &str) -> Option<T> {
                serde_json::from_value(entry.get(name)?.clone()).ok()
            }
            Some(Outcome {
                policy: entry.get("name")?.as_str()?.into(),
                verdict: field(entry, "verdict")?,
                action: field(entry, "action")?,
            })
        })
        .collect()
}

/// Whether the stored SeccompStatus (if any) differs from the desired one: label, owner (the pod's
/// UID) or the controller-owned status. `desired` must carry the conditions from
/// [`with_conditions`].
pub fn needs_write(stored: Option<&StoredStatus>, pod_uid: &str, desired: &SeccompStatusStatus) -> bool {
    let Some(stored) = stored else { return true };
    stored.owner_uid.as_deref() != Some(pod_uid)
        || stored.profile_label.as_deref() != Some(desired.profile.as_str())
        || stored.fingerprint != fingerprint(desired)
}

/// The most of a `localhostProfile` a status repeats: no longer path can be opened on a node
/// (Linux's `PATH_MAX`; containerd then fails the container, "file name too long").
pub const SHOWN_PATH_BYTES: usize = 4096;
/// Bytes of `containers` a status holds at most, each entry counted with [`ENTRY_RESERVE`]. The
/// API server stores objects up to 1.5 MiB; a pod may be about that large and have thousands of
/// containers, each of which costs far more bytes in its status than in its spec.
pub const CONTAINERS_BUDGET: usize = 256 * 1024;
/// Bytes a listed container costs beyond its entry and twice its name: its keys in the managed
/// fields of the controller (about 130 B) and of the node agent (about 40 B), and the agent's
/// `runtime` (about 160 B).
pub const ENTRY_RESERVE: usize = 384;
/// JSON bytes of `policies` a status holds before their messages are cut to
/// [`SHORT_POLICY_MESSAGE`] characters. A policy's message names up to five containers with
/// their exemption reasons (up to 1,024 characters each): some three hundred such policies
/// selecting one pod made a status larger than the API server stores.
pub const POLICIES_BUDGET: usize = 256 * 1024;
/// Characters of a policy result's message kept once `policies` is over its budget.
pub const SHORT_POLICY_MESSAGE: usize = 200;

/// `status` as it can be stored: each `localhostProfile` cut to [`SHOWN_PATH_BYTES`] (with a
/// warning), and `containers` to [`CONTAINERS_BUDGET`] bytes, unconfined containers first, the
/// others counted in `unlistedContainers`; and, when `policies` is over [`POLICIES_BUDGET`]
/// bytes, each policy's message to [`SHORT_POLICY_MESSAGE`] characters (its verdict, action and
/// reason stay). Counts, conditions and verdicts were made from every container and policy
/// before. Unchanged (borrowed) for any pod of a usual size.
pub fn within_size(status: &SeccompStatusStatus) -> std::borrow::Cow<'_, SeccompStatusStatus> {
    let long_path = |c: &crate::api::ContainerSeccomp| {
        c.profile
            .localhost_profile
            .as_ref()
            .is_some_and(|p| p.len() > SHOWN_PATH_BYTES)
    };
    let sizes = |containers: &[crate::api::ContainerSeccomp]| -> Vec<usize> {
        containers.iter().map(stored_cost).collect()
    };
    let fits = |sizes: &[usize]| sizes.iter().sum::<usize>() <= CONTAINERS_BUDGET;
    let policies_fit = json_size(&status.policies) <= POLICIES_BUDGET;
    if policies_fit && !status.containers.iter().any(long_path) && fits(&sizes(&status.containers)) {
        return std::borrow::Cow::Borrowed(status);
    }
    let mut bounded = status.clone();
    if !policies_fit {
        for result in &mut bounded.policies {
            result.message = cut(&result.message, SHORT_POLICY_MESSAGE);
        }
    }
    for c in bounded.containers.iter_mut().filter(|c| long_path(c)) {
        if let Some(path) = c.profile.localhost_profile.as_mut() {
            let length = path.len();
            let mut end = SHOWN_PATH_BYTES;
            while !path.is_char_boundary(end) {
                end -= 1;
            }
            path.truncate(end);
            c.warnings.push(format!(
                "localhostProfile is {length} bytes long, shown cut to {end}: no node can open a path longer than {SHOWN_PATH_BYTES} bytes, so the container does not start"
            ));
        }
    }
    let sizes = sizes(&bounded.containers);
    if !fits(&sizes) {
        // Unconfined containers first, then the others, each in the pod's order.
        let mut order: Vec<usize> = (0..bounded.containers.len()).collect();
        order.sort_by_key(|&i| bounded.containers[i].confined);
        let mut listed = vec![false; sizes.len()];
        let mut used = 0;
        for i in order {
            if used + sizes[i] <= CONTAINERS_BUDGET {
                used += sizes[i];
                listed[i] = true;
            }
        }
        let mut listed = listed.into_iter();
        bounded.containers.retain(|_| listed.next().unwrap_or(false));
        bounded.unlisted_containers =
            u32::try_from(sizes.len() - bounded.containers.len()).unwrap_or(u32::MAX);
    }
    std::borrow::Cow::Owned(bounded)
}

/// What a container's entry costs the stored object: its JSON, and what [`ENTRY_RESERVE`] holds
/// for, where the name appears once more in each writer's managed-fields key.
fn stored_cost(container: &crate::api::ContainerSeccomp) -> usize {
    json_size(container) + 2 * container.name.len() + ENTRY_RESERVE
}

/// Bytes of `value` as JSON, plus its comma in a list.
fn json_size(value: &impl serde::Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(1);
    // Writing into a counter cannot fail; a value that does not serialize counts what it wrote.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// The whole SeccompStatus of a pod, as one server-side apply body.
pub fn object(namespace: &str, name: &str, pod_uid: &str, status: &SeccompStatusStatus) -> Value {
    json!({
        "apiVersion": format!("{}/{}", crate::api::GROUP, crate::api::VERSION),
        "kind": "SeccompStatus",
        "metadata": {
            "name": name, "namespace": namespace,
            "labels": { PROFILE_LABEL: status.profile.as_str() },
            "ownerReferences": [{ "apiVersion": "v1", "kind": "Pod", "name": name, "uid": pod_uid, "controller": true }],
        },
        "spec": { "podUID": pod_uid },
        "status": status,
    })
}

/// The field manager of [`object`] writes.
pub const MANAGER: &str = CONTROLLER_MANAGER;

/// A stable fingerprint of the controller-owned content of a status.
pub fn fingerprint(status: &SeccompStatusStatus) -> u64 {
    serde_json::to_value(status).map_or(0, |v| fingerprint_value(&v))
}

/// [`fingerprint`] of a status given as JSON (as stored).
pub fn fingerprint_value(status: &Value) -> u64 {
    let canonical = canonical(status.clone());
    let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// The controller-owned content of a status: the agent's `runtime`s and `RuntimeVerified`,
/// condition timestamps and empty lists removed, conditions ordered by type. (Maps are ordered by
/// key in `serde_json::Value`.)
fn canonical(mut status: Value) -> Value {
    let Some(object) = status.as_object_mut() else {
        return status;
    };
    object.remove("runtime");
    if let Some(Value::Array(containers)) = object.get_mut("containers") {
        for container in containers.iter_mut() {
            if let Some(c) = container.as_object_mut() {
                c.remove("runtime");
            }
        }
        // An entry holding nothing but its name is only the agent's (a finding for a container
        // the controller no longer lists): the controller's apply cannot remove it, so it is no
        // difference to write for.
        containers.retain(|c| c.as_object().is_none_or(|c| c.keys().any(|k| k != "name")));
    }
    if let Some(Value::Array(conditions)) = object.get_mut("conditions") {
        conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some(RUNTIME_VERIFIED));
        for condition in conditions.iter_mut() {
            if let Some(c) = condition.as_object_mut() {
                c.remove("lastTransitionTime");
            }
        }
        conditions.sort_by(|a, b| {
            let key = |c: &Value| {
                c.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            key(a).cmp(&key(b))
        });
    }
    object.retain(|_, v| !matches!(v, Value::Array(a) if a.is_empty()) && !v.is_null());
    status
}

/// Adds the controller's conditions to an evaluated status, keeping each condition's
/// `lastTransitionTime` from `previous` unless its status changed.
pub fn with_conditions(
    mut status: SeccompStatusStatus,
    previous: &[ConditionMark],
    now: &Time,
) -> SeccompStatusStatus {
    let unconfined: Vec<&str> = status
        .containers
        .iter()
        .filter(|c| !c.confined && c.profile.type_ != crate::api::ProfileType::NotApplicable)
        .map(|c| c.name.as_str())
        .collect();
    let (state, reason, message) = match status.profile {
        PodProfile::NotApplicable => (
            "Unknown",
            "NotApplicable",
            "seccomp does not apply to Windows containers".to_string(),
        ),
        _ if unconfined.is_empty() => (
            "True",
            "AllConfined",
            format!("{} containers confined", status.confined),
        ),
        _ => (
            "False",
            "UnconfinedContainers",
            format!("unconfined: {}", summarize_names(&unconfined)),
        ),
    };
    let confined = condition(CONFINED, state, reason, message, previous, now);
    status
        .conditions
        .retain(|c| c.type_ != CONFINED && c.type_ != COMPLIANT && c.type_ != PROFILES_ENFORCING);
    status.conditions.push(confined);
    if let Some((state, reason, message)) = crate::profile::strength::enforcing_condition(&status) {
        let enforcing = condition(PROFILES_ENFORCING, state, reason, message, previous, now);
        status.conditions.push(enforcing);
    }
    // Compliant only where a policy selects the pod.
    if let Some(worst) = status.verdict {
        let violated: Vec<&str> = status
            .policies
            .iter()
            .filter(|p| p.verdict == Verdict::Violating)
            .map(|p| p.name.as_str())
            .collect();
        let compliant = match worst {
            Verdict::Violating => condition(
                COMPLIANT,
                "False",
                "Violating",
                format!("violates: {}", summarize_names(&violated)),
                previous,
                now,
            ),
            Verdict::Exempt => condition(
                COMPLIANT,
                "True",
                "Exempt",
                "exempt from the policies that select it".into(),
                previous,
                now,
            ),
            Verdict::Compliant => condition(COMPLIANT, "True", "Compliant", String::new(), previous, now),
        };
        status.conditions.push(compliant);
    }
    status
}

/// The first few names and how many more: condition messages stay short whatever the count.
pub fn summarize_names(names: &[&str]) -> String {
    first_few(names.iter(), ", ")
}

/// The first five items joined by `separator`, and how many more: a message that names the
/// containers of a pod stays short whatever the pod (a status must fit what the API server
/// stores).
pub fn first_few<T: std::fmt::Display>(items: impl ExactSizeIterator<Item = T>, separator: &str) -> String {
    const SHOWN: usize = 5;
    let more = items.len().saturating_sub(SHOWN);
    let mut text = items
        .take(SHOWN)
        .map(|item| item.to_string())
        .collect::<Vec<_>>()
        .join(separator);
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

/// The first `limit` characters of `text`, and whether that is all of it.
pub fn first_chars(text: &str, limit: usize) -> (&str, bool) {
    match text.char_indices().nth(limit) {
        Some((end, _)) => (&text[..end], false),
        None => (text, true),
    }
}

/// `text` cut to `limit` characters, with an ellipsis where it was cut.
pub fn cut(text: &str, limit: usize) -> String {
    match first_chars(text, limit) {
        (whole, true) => whole.to_string(),
        (start, false) => format!("{start}…"),
    }
}

/// A condition whose `lastTransitionTime` is kept from `previous` while its status stays (a
/// stored time that cannot be read is replaced by `now`).
pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    previous: &[ConditionMark],
    now: &Time,
) -> Condition {
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition.timestamp())
        .map(Time)
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: None,
        last_transition_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        ContainerSeccomp, EffectiveProfile, ProfileType, RuntimeObservation, RuntimeStatus, SeccompMode,
    };

    fn time(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).expect("valid time"))
    }

    fn evaluated(confined: bool) -> SeccompStatusStatus {
        let type_ = if confined {
            ProfileType::RuntimeDefault
        } else {
            ProfileType::Unconfined
        };
        SeccompStatusStatus {
            profile: if confined {
                PodProfile::RuntimeDefault
            } else {
                PodProfile::Unconfined
            },
            confined: format!("{}/1", confined as u8),
            containers: vec![ContainerSeccomp {
                name: "app".into(),
                profile: EffectiveProfile {
                    type_,
                    localhost_profile: None,
                },
                confined,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// The status as the API server would return it after the controller's write (and, with
    /// `agent`, the node agent's).
    fn stored_from(status: &SeccompStatusStatus, uid: &str) -> StoredStatus {
        let object = object("ns", "p", uid, status);
        let wire: StatusWire = serde_json::from_value(object).expect("wire");
        StoredStatus::from_wire(&wire)
    }

    #[test]
    fn stored_outcomes_read_what_each_policy_did() {
        let object: StatusWire = serde_json::from_value(json!({ "status": { "policies": [
            { "name": "label", "verdict": "Violating", "action": "Labeled", "reason": "Unconfined", "message": "" },
            { "name": "odd", "verdict": "Sideways", "action": "None" },
            { "name": "audit", "verdict": "Compliant", "action": "None" }] } }))
        .expect("status");
        let outcomes = stored_outcomes(&object);
        let read: Vec<(&str, Verdict, crate::api::PolicyAction)> = outcomes
            .iter()
            .map(|o| (&*o.policy, o.verdict, o.action))
            .collect();
        assert_eq!(
            read,
            [
                ("label", Verdict::Violating, crate::api::PolicyAction::Labeled),
                ("audit", Verdict::Compliant, crate::api::PolicyAction::None)
            ],
            "an entry that does not read is left out"
        );
        assert!(stored_outcomes(&StatusWire::default()).is_empty());
    }

    #[test]
    fn nothing_to_write_when_the_stored_status_is_current() {
        let desired = with_conditions(evaluated(true), &[], &time(100));
        let stored = stored_from(&desired, "uid-1");
        // Later passes produce the same content with a newer clock: still nothing to write.
        let again = with_conditions(evaluated(true), &stored.conditions, &time(500));
        assert!(!needs_write(Some(&stored), "uid-1", &again));
        assert_eq!(again.conditions[0].last_transition_time, time(100));
    }

    #[test]
    fn a_missing_status_is_written() {
        let desired = with_conditions(evaluated(true), &[], &time(1));
        assert!(needs_write(None, "uid-1", &desired));
    }

    #[test]
    fn a_changed_profile_is_written_and_moves_the_transition_time() {
        let stored = stored_from(&with_conditions(evaluated(true), &[], &time(100)), "uid-1");
        let desired = with_conditions(evaluated(false), &stored.conditions, &time(200));
        assert!(needs_write(Some(&stored), "uid-1", &desired));
        assert_eq!(desired.conditions[0].status, "False");
        assert_eq!(desired.conditions[0].last_transition_time, time(200));
    }

    #[test]
    fn a_recreated_pod_with_the_same_name_is_corrected() {
        let desired = with_conditions(evaluated(true), &[], &time(1));
        let stored = stored_from(&desired, "old-uid");
        assert!(needs_write(Some(&stored), "new-uid", &desired));
    }

    #[test]
    fn the_status_of_an_earlier_pod_of_the_same_name_is_known_as_such() {
        let desired = with_conditions(evaluated(true), &[], &time(1));
        let written = object("ns", "p", "old-uid", &desired);
        let read = |object: &Value| {
            let wire: StatusWire = serde_json::from_value(object.clone()).expect("wire");
            StoredStatus::from_wire(&wire)
        };
        assert!(read(&written).written_for_another_pod("new-uid"));
        assert!(!read(&written).written_for_another_pod("old-uid"));
        // Orphaned (`kubectl delete --cascade=orphan` takes the owner reference away): the spec
        // still names the earlier pod.
        let mut orphaned = written.clone();
        orphaned["metadata"]["ownerReferences"] = json!([]);
        assert!(read(&orphaned).written_for_another_pod("new-uid"));
        // Naming this pod, or none, it is only incomplete: an apply completes it.
        assert!(!read(&orphaned).written_for_another_pod("old-uid"));
        let mut unnamed = orphaned.clone();
        unnamed["spec"] = json!({});
        assert!(!read(&unnamed).written_for_another_pod("new-uid"));
        // The usual case keeps nothing more.
        assert_eq!(read(&written).named_pod, None);
    }

    #[test]
    fn a_spec_pod_uid_that_is_missing_or_names_another_pod_is_written_again() {
        let desired = with_conditions(evaluated(true), &[], &time(1));
        let written = object("ns", "p", "u", &desired);
        assert_eq!(written["spec"]["podUID"], "u");
        for spec in [json!({}), json!({ "podUID": "other" }), json!({ "podUID": 7 })] {
            let mut stored = written.clone();
            stored["spec"] = spec;
            let wire: StatusWire = serde_json::from_value(stored).expect("wire");
            assert!(needs_write(Some(&StoredStatus::from_wire(&wire)), "u", &desired));
        }
    }

    #[test]
    fn the_agents_fields_do_not_count() {
        let desired = with_conditions(evaluated(true), &[], &time(1));
        let mut with_agent = desired.clone();
        let observation = RuntimeObservation {
            seccomp_mode: SeccompMode::Filter,
            filters: Some(1),
            pid: Some(42),
            observed_at: time(5),
            agrees_with_effective: true,
        };
        assert!(!with_agent.containers.is_empty());
        for container in &mut with_agent.containers {
            container.runtime = Some(observation.clone());
        }
        with_agent.runtime = Some(RuntimeStatus {
            profile_files: vec![crate::api::ContainerProfileFile {
                name: "app".into(),
                file: ProfileFile::default(),
            }],
        });
        // Its condition sits among the controller's, in any place.
        with_agent.conditions.insert(
            0,
            condition(
                RUNTIME_VERIFIED,
                "False",
                "Mismatch",
                String::new(),
                &[],
                &time(5),
            ),
        );
        assert_eq!(fingerprint(&desired), fingerprint(&with_agent));
        // A finding the agent wrote for a container the controller no longer lists is an entry
        // of the agent's alone.
        let mut stored = serde_json::to_value(&with_agent).expect("json");
        if let Some(containers) = stored["containers"].as_array_mut() {
            containers.push(json!({ "name": "gone", "runtime": observation }));
        }
        assert_eq!(fingerprint(&desired), fingerprint_value(&stored));
        let stored = stored_from(&with_agent, "u");
        assert!(!needs_write(Some(&stored), "u", &desired));
        assert_eq!(stored.runtime, RuntimeFinding::Mismatch);
        assert!(stored.conditions.iter().all(|c| c.type_ != RUNTIME_VERIFIED));
    }

    #[test]
    fn profile_reports_count_for_their_pod_on_their_node() {
        let mut status = evaluated(true);
        status.node = Some("node-a".into());
        status.runtime = Some(RuntimeStatus {
            profile_files: vec![crate::api::ContainerProfileFile {
                name: "app".into(),
                file: ProfileFile {
                    path: "p.json".into(),
                    ..Default::default()
                },
            }],
        });
        let stored = stored_from(&status, "u");
        assert_eq!(stored.profile_reports_for("u", Some("node-a")).len(), 1);
        // A pod of the same name made again, or moved to another node: not its reports.
        assert!(stored.profile_reports_for("u2", Some("node-a")).is_empty());
        assert!(stored.profile_reports_for("u", Some("node-b")).is_empty());
        assert!(stored.profile_reports_for("u", None).is_empty());
    }

    #[test]
    fn a_field_written_by_someone_else_is_a_difference() {
        let desired = with_conditions(evaluated(true), &[], &time(1));
        let mut tampered = serde_json::to_value(&desired).expect("json");
        tampered["verdict"] = json!("Compliant");
        assert_ne!(fingerprint_value(&tampered), fingerprint(&desired));
    }

    #[test]
    fn a_stored_time_the_client_cannot_hold_does_not_stop_anything() {
        let desired = with_conditions(evaluated(true), &[], &time(1));
        let mut object = object("ns", "p", "u", &desired);
        object["status"]["conditions"][0]["lastTransitionTime"] = json!("9999-12-31T23:59:59Z");
        let wire: StatusWire = serde_json::from_value(object).expect("wire");
        let stored = StoredStatus::from_wire(&wire);
        assert_eq!(stored.conditions[0].last_transition, LenientTime::FarFuture);
        // The content is the same: nothing to write, and a new condition would get `now`.
        let again = with_conditions(evaluated(true), &stored.conditions, &time(9));
        assert!(!needs_write(Some(&stored), "u", &again));
        assert_eq!(again.conditions[0].last_transition_time, time(9));
    }

    #[test]
    fn condition_messages_name_the_unconfined_containers() {
        let mut status = evaluated(false);
        for i in 0..7 {
            let mut c = status.containers[0].clone();
            c.name = format!("extra{i}");
            status.containers.push(c);
        }
        let with = with_conditions(status, &[], &time(1));
        assert_eq!(
            with.conditions[0].message,
            "unconfined: app, extra0, extra1, extra2, extra3 and 3 more"
        );
    }

    /// A pod with thousands of containers (8,000 here), or a long Localhost path repeated for
    /// each of them, made a status larger than the API server stores: it was refused ("request
    /// is too large") on every try, and the pod had no status at all.
    #[test]
    fn a_status_is_cut_to_what_the_api_server_stores() {
        let usual = with_conditions(evaluated(false), &[], &time(1));
        assert!(matches!(within_size(&usual), std::borrow::Cow::Borrowed(_)));

        let mut many = evaluated(true);
        many.containers = (0..8_000)
            .map(|i| ContainerSeccomp {
                name: format!("c{i}"),
                confined: i % 1_000 != 999,
                warnings: vec![
                    "no profile set and the node's kubelet seccompDefault is unknown: assumed off".into(),
                ],
                ..many.containers[0].clone()
            })
            .collect();
        let bounded = within_size(&many);
        let listed = bounded.containers.len();
        assert!((300..8_000).contains(&listed), "{listed}");
        assert_eq!(bounded.unlisted_containers as usize, 8_000 - listed);
        let cost: usize = bounded.containers.iter().map(stored_cost).sum();
        assert!(json_size(&bounded.containers) < cost && cost <= CONTAINERS_BUDGET);
        // The 8 unconfined ones are listed, and the pod's order is kept.
        let unconfined: Vec<&str> = bounded
            .containers
            .iter()
            .filter(|c| !c.confined)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            unconfined,
            [
                "c999", "c1999", "c2999", "c3999", "c4999", "c5999", "c6999", "c7999"
            ]
        );
        assert_eq!(bounded.containers[0].name, "c0");
        // What is stored reads back as what was meant: nothing to write again.
        let stored = stored_from(&bounded, "u");
        assert!(!needs_write(Some(&stored), "u", &within_size(&many)));
        assert!(
            serde_json::to_vec(&object("ns", "p", "u", &bounded))
                .expect("json")
                .len()
                < 1_000_000
        );

        let mut long = evaluated(true);
        long.containers[0].profile = EffectiveProfile {
            type_: crate::api::ProfileType::Localhost,
            localhost_profile: Some(format!("{}é", "a".repeat(SHOWN_PATH_BYTES - 1))),
        };
        let bounded = within_size(&long);
        let shown = bounded.containers[0]
            .profile
            .localhost_profile
            .as_deref()
            .unwrap_or_default();
        assert_eq!(shown.len(), SHOWN_PATH_BYTES - 1, "cut where a character starts");
        assert_eq!(bounded.unlisted_containers, 0);
        assert!(bounded.policies.is_empty());
        assert_eq!(
            bounded.containers[0].warnings,
            [format!(
                "localhostProfile is {} bytes long, shown cut to {}: no node can open a path longer than {SHOWN_PATH_BYTES} bytes, so the container does not start",
                SHOWN_PATH_BYTES + 1,
                SHOWN_PATH_BYTES - 1
            )]
        );
    }

    /// Each policy selecting a pod adds its result, and an exemption's message names up to five
    /// containers with their reasons of up to 1,024 characters: 320 such policies made a status
    /// of about 1.7 MB, which the API server refused on every try.
    #[test]
    fn the_results_of_hundreds_of_policies_are_cut_to_what_the_api_server_stores() {
        let reason = "r".repeat(1_024);
        let message = (0..5)
            .map(|i| format!("c{i}: {reason}"))
            .collect::<Vec<_>>()
            .join("; ");
        let result = |i: usize| crate::api::PolicyResult {
            name: format!("team-{i}"),
            verdict: if i.is_multiple_of(2) {
                Verdict::Exempt
            } else {
                Verdict::Violating
            },
            action: crate::api::PolicyAction::None,
            reason: "ContainersExempted".into(),
            message: message.clone(),
        };
        let mut few = evaluated(true);
        few.policies = (0..40).map(result).collect();
        assert!(
            matches!(within_size(&few), std::borrow::Cow::Borrowed(_)),
            "40 policies fit as they are"
        );

        let mut many = evaluated(true);
        many.policies = (0..320).map(result).collect();
        assert!(
            json_size(&many.policies) > 1_572_864,
            "more than the API server stores"
        );
        let bounded = within_size(&many);
        assert_eq!(bounded.policies.len(), 320);
        for (cut, whole) in bounded.policies.iter().zip(&many.policies) {
            assert_eq!(
                cut.message.chars().count(),
                SHORT_POLICY_MESSAGE + 1,
                "cut, with an ellipsis"
            );
            assert!(whole.message.starts_with(cut.message.trim_end_matches('…')));
            assert_eq!(
                (&cut.name, cut.verdict, cut.action, &cut.reason),
                (&whole.name, whole.verdict, whole.action, &whole.reason)
            );
        }
        assert!(json_size(&bounded.policies) <= POLICIES_BUDGET);
        let stored = stored_from(&bounded, "u");
        assert!(!needs_write(Some(&stored), "u", &within_size(&many)));
    }
}
