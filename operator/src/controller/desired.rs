//! What the controller wants a SeccompStatus to be, and whether what is stored already is that.
//! Pure: no I/O, the current time is an argument.

use std::hash::{DefaultHasher, Hash, Hasher};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{PodProfile, SeccompStatus, SeccompStatusStatus, Verdict};

pub const CONFINED: &str = "Confined";
pub const COMPLIANT: &str = "Compliant";
/// Owned by the node agent; the controller never writes it.
pub const RUNTIME_VERIFIED: &str = "RuntimeVerified";

/// What the controller last saw (or wrote) of one SeccompStatus: enough to decide whether a write
/// is needed, without keeping the object.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredStatus {
    /// UID in the pod ownerReference.
    pub owner_uid: Option<String>,
    pub pod_uid: String,
    pub profile_label: Option<String>,
    /// Fingerprint of the controller-owned part of `status` (see [`fingerprint`]).
    pub fingerprint: u64,
    /// The controller-owned conditions, for their `lastTransitionTime`.
    pub conditions: Vec<Condition>,
    /// The node agent found the kernel disagreeing with the effective profile.
    pub runtime_mismatch: bool,
    /// The object's resourceVersion, when it is a number (as etcd's are).
    pub resource_version: Option<u64>,
}

impl StoredStatus {
    pub fn from_object(status: &SeccompStatus) -> Self {
        let owner_uid = status
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.kind == "Pod" && o.api_version == "v1")
            .map(|o| o.uid.clone());
        let profile_label = status
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::api::PROFILE_LABEL))
            .cloned();
        let runtime_mismatch = status.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == RUNTIME_VERIFIED && c.status == "False")
        });
        let (fingerprint, conditions) = match &status.status {
            Some(s) => (
                fingerprint(s),
                s.conditions
                    .iter()
                    .filter(|c| c.type_ != RUNTIME_VERIFIED)
                    .cloned()
                    .collect(),
            ),
            None => (0, Vec::new()),
        };
        StoredStatus {
            owner_uid,
            pod_uid: status.spec.pod_uid.clone(),
            profile_label,
            fingerprint,
            conditions,
            runtime_mismatch,
            resource_version: status
                .metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse().ok()),
        }
    }
}

/// The writes that bring a stored SeccompStatus to the desired one.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WritePlan {
    /// Labels, ownerReference or spec differ (or the object does not exist).
    pub object: bool,
    /// The controller-owned part of the status differs.
    pub status: bool,
}

impl WritePlan {
    pub fn is_empty(&self) -> bool {
        !self.object && !self.status
    }
}

/// Decides which writes are needed. `desired` must carry the conditions from [`with_conditions`].
pub fn plan(stored: Option<&StoredStatus>, pod_uid: &str, desired: &SeccompStatusStatus) -> WritePlan {
    let Some(stored) = stored else {
        return WritePlan {
            object: true,
            status: true,
        };
    };
    let object = stored.owner_uid.as_deref() != Some(pod_uid)
        || stored.pod_uid != pod_uid
        || stored.profile_label.as_deref() != Some(desired.profile.as_str());
    WritePlan {
        object,
        status: object || stored.fingerprint != fingerprint(desired),
    }
}

/// A stable fingerprint of the controller-owned content of a status: everything but the node
/// agent's `runtime` fields and `RuntimeVerified` condition, and but condition timestamps.
/// Computed the same way for what is stored and what is desired, after both went through the
/// same Rust types, so server-side defaults and field order do not matter.
pub fn fingerprint(status: &SeccompStatusStatus) -> u64 {
    let mut owned = status.clone();
    for container in &mut owned.containers {
        container.runtime = None;
    }
    owned.conditions.retain(|c| c.type_ != RUNTIME_VERIFIED);
    for condition in &mut owned.conditions {
        condition.last_transition_time = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    }
    owned.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    let bytes = serde_json::to_vec(&owned).unwrap_or_default();
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// Adds the controller's conditions to an evaluated status, keeping each condition's
/// `lastTransitionTime` from `previous` unless its status changed.
pub fn with_conditions(
    mut status: SeccompStatusStatus,
    previous: &[Condition],
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
        .retain(|c| c.type_ != CONFINED && c.type_ != COMPLIANT);
    status.conditions.push(confined);
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

fn summarize_names(names: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut text = names.iter().take(SHOWN).copied().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    previous: &[Condition],
    now: &Time,
) -> Condition {
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
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
    use crate::api::{ContainerSeccomp, EffectiveProfile, ProfileType, SeccompMode, SeccompStatusSpec};

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
            confined_containers: confined as u32,
            total_containers: 1,
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

    fn stored_from(status: &SeccompStatusStatus, uid: &str) -> StoredStatus {
        let mut object = SeccompStatus::new("p", SeccompStatusSpec { pod_uid: uid.into() });
        object.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: "p".into(),
                uid: uid.into(),
                ..Default::default()
            },
        ]);
        object.metadata.labels = Some(
            [(
                crate::api::PROFILE_LABEL.to_string(),
                status.profile.as_str().to_string(),
            )]
            .into(),
        );
        object.status = Some(status.clone());
        StoredStatus::from_object(&object)
    }

    #[test]
    fn nothing_to_write_when_the_stored_status_is_current() {
        let desired = with_conditions(evaluated(true), &[], &time(100));
        let stored = stored_from(&desired, "uid-1");
        // Later passes produce the same content with a newer clock: still nothing to write.
        let again = with_conditions(evaluated(true), &stored.conditions, &time(500));
        assert!(plan(Some(&stored), "uid-1", &again).is_empty());
        assert_eq!(again.conditions[0].last_transition_time, time(100));
    }

    #[test]
    fn a_missing_status_is_created() {
        let desired = with_conditions(evaluated(true), &[], &time(1));
        assert_eq!(
            plan(None, "uid-1", &desired),
            WritePlan {
                object: true,
                status: true
            }
        );
    }

    #[test]
    fn a_changed_profile_rewrites_label_and_status_and_moves_the_transition_time() {
        let stored = stored_from(&with_conditions(evaluated(true), &[], &time(100)), "uid-1");
        let desired = with_conditions(evaluated(false), &stored.conditions, &time(200));
        assert_eq!(
            plan(Some(&stored), "uid-1", &desired),
            WritePlan {
                object: true,
                status: true
            }
        );
        assert_eq!(desired.conditions[0].status, "False");
        assert_eq!(desired.conditions[0].last_transition_time, time(200));
    }

    #[test]
    fn a_recreated_pod_with_the_same_name_is_corrected() {
        let desired = with_conditions(evaluated(true), &[], &time(1));
        let stored = stored_from(&desired, "old-uid");
        assert_eq!(
            plan(Some(&stored), "new-uid", &desired),
            WritePlan {
                object: true,
                status: true
            }
        );
    }

    #[test]
    fn the_agents_fields_do_not_count() {
        let desired = with_conditions(evaluated(true), &[], &time(1));
        let mut with_agent = desired.clone();
        with_agent.containers[0].runtime = Some(crate::api::RuntimeObservation {
            seccomp_mode: SeccompMode::Filter,
            filters: Some(1),
            pid: Some(42),
            observed_at: time(5),
            agrees_with_effective: true,
        });
        with_agent.conditions.push(condition(
            RUNTIME_VERIFIED,
            "True",
            "Agrees",
            String::new(),
            &[],
            &time(5),
        ));
        assert_eq!(fingerprint(&desired), fingerprint(&with_agent));
        assert!(plan(Some(&stored_from(&with_agent, "u")), "u", &desired).is_empty());
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
}
