//! SeccompPolicy decisions: which pods a policy selects, its verdict on each, and whether an
//! eviction is safe. Pure: no Kubernetes I/O; time is an argument.

mod eviction;
mod placement;

use std::{collections::BTreeMap, time::Duration};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::LabelSelector, jiff::Timestamp};
use kube::core::{Selector, SelectorExt};

pub mod plan;

pub use eviction::{
    EvictionFacts, EvictionLedger, EvictionRecord, EvictionVerdict, HaltRecord, OwnerKind, POD_INDEX_LABEL,
    PolicyLedger, RESUME_ANNOTATION, REVISION_LABEL, Reservation, SYSTEM_NAMESPACES, StatefulRollout,
    WARMING_UP, eviction_verdict, reserve_eviction, resume_time, stateful_rollout_verdict,
};
pub use placement::{
    NodePlacement, NodeSelectorRequirement, NodeSelectorTerm, Taint, TemplatePlacement, Toleration,
    node_without_seccomp_default,
};

use crate::api::{
    ContainerKind, ContainerSeccomp, PolicyAction, PolicyActionMode, PolicyResult, ProfileStrength,
    ProfileType, SeccompPolicy, SeccompPolicySpec, SeccompStatusStatus, Verdict,
};

/// The reason of a verdict whose only violations are profiles weaker than the policy's minimum.
pub const WEAK_PROFILE: &str = "WeakProfile";
/// The reason of a judgement with an unconfined container among its violations.
pub const UNCONFINED: &str = "Unconfined";
/// The reason an Evict policy gives for not evicting a pod that only its ephemeral containers
/// make violate.
pub const EPHEMERAL_ONLY: &str = "EphemeralContainers";

/// Labels set on pods by `action: Label` and `action: Evict` policies.
pub use crate::api::{OUTCOME_LABELS, PROFILE_LABEL, VIOLATION_LABEL};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Eviction limits of a policy, with defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvictionLimits {
    pub dry_run: bool,
    pub min_age: Duration,
    pub max_per_minute: u32,
    pub max_per_namespace_per_minute: Option<u32>,
    pub workload_cooldown: Duration,
    /// The operator's bound over the evictions of every policy together
    /// (`--max-evictions-per-minute`): not a policy's setting, the controller adds it.
    pub all_policies_per_minute: Option<u32>,
}

impl Default for EvictionLimits {
    fn default() -> Self {
        EvictionLimits {
            dry_run: false,
            min_age: Duration::from_secs(300),
            max_per_minute: 5,
            max_per_namespace_per_minute: None,
            workload_cooldown: Duration::from_secs(120),
            all_policies_per_minute: None,
        }
    }
}

#[derive(Clone, Debug)]
struct CompiledExemption {
    reason: String,
    namespaces: Vec<String>,
    pod_selector: Option<Selector>,
    containers: Vec<String>,
    sccs: Vec<String>,
    expires: Option<Timestamp>,
}

/// A validated policy, ready to judge pods.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    pub name: String,
    pub generation: Option<i64>,
    namespace_selector: Option<Selector>,
    pod_selector: Option<Selector>,
    allow_runtime_default: bool,
    allow_localhost: bool,
    localhost_globs: Option<GlobSet>,
    minimum_strength: Option<ProfileStrength>,
    exemptions: Vec<CompiledExemption>,
    pub action: PolicyActionMode,
    pub eviction: EvictionLimits,
    /// Whether the namespace's labels matter (a namespace selector is set).
    pub uses_namespace_labels: bool,
}

/// `selector`, validated, with none of the `refused` label keys (pod selectors refuse
/// [`OUTCOME_LABELS`]).
fn selector(
    field: &str,
    selector: Option<&LabelSelector>,
    refused: &[&str],
) -> Result<Option<Selector>, PolicyError> {
    let Some(selector) = selector else { return Ok(None) };
    validate_selector(field, selector, refused)?;
    let parsed = Selector::try_from(selector.clone()).map_err(|e| invalid(field, e.to_string()))?;
    Ok((!parsed.selects_all()).then_some(parsed))
}

/// What the API server checks of a label selector in built-in objects: label keys and values,
/// operators, and values only where the operator takes them. The CRD's rules check the same at
/// admission; this refuses a policy stored before they did (an earlier CRD).
fn validate_selector(field: &str, selector: &LabelSelector, refused: &[&str]) -> Result<(), PolicyError> {
    let key_of = |at: String, key: &str| {
        label_key(&at, key)?;
        if refused.contains(&key) {
            return Err(invalid(at, crate::api::outcome_labels_message()));
        }
        Ok(())
    };
    for (key, value) in selector.match_labels.iter().flatten() {
        key_of(format!("{field}.matchLabels"), key)?;
        label_value(&format!("{field}.matchLabels[{key}]"), value)?;
    }
    for (i, e) in selector.match_expressions.iter().flatten().enumerate() {
        let at = format!("{field}.matchExpressions[{i}]");
        key_of(format!("{at}.key"), &e.key)?;
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(invalid(
                    format!("{at}.values"),
                    "In and NotIn need at least one value",
                ));
            }
            "In" | "NotIn" => {
                for value in values {
                    label_value(&format!("{at}.values"), value)?;
                }
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(invalid(
                    format!("{at}.values"),
                    "Exists and DoesNotExist take no values",
                ));
            }
            "Exists" | "DoesNotExist" => {}
            other => {
                return Err(invalid(
                    format!("{at}.operator"),
                    format!(
                        "Unsupported value: {other:?}: supported values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\""
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A DNS label (RFC 1123), as namespace and container names and each part of a label key's
/// prefix are: 1 to 63 lowercase letters, digits and `-`, alphanumeric at both ends.
pub(crate) fn dns_label(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A label name: 1 to 63 characters, alphanumeric at both ends, `-`, `_`, `.` inside.
fn label_name_ok(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A label key: a name, optionally after a DNS subdomain and `/`.
pub(crate) fn label_key_ok(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| !p.is_empty() && p.len() <= 253 && p.split('.').all(dns_label));
    prefix_ok && label_name_ok(name)
}

/// A label value: empty, or a name.
pub(crate) fn label_value_ok(value: &str) -> bool {
    value.is_empty() || label_name_ok(value)
}

fn label_key(field: &str, key: &str) -> Result<(), PolicyError> {
    if label_key_ok(key) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{key:?}: {}", crate::api::LABEL_KEY_MESSAGE),
        ))
    }
}

fn label_value(field: &str, value: &str) -> Result<(), PolicyError> {
    if label_value_ok(value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{value:?}: {}", crate::api::LABEL_VALUE_MESSAGE),
        ))
    }
}

fn duration(field: &str, value: Option<&str>, default: Duration) -> Result<Duration, PolicyError> {
    value.map_or(Ok(default), |v| {
        humantime::parse_duration(v).map_err(|e| invalid(field, format!("{v:?}: {e}")))
    })
}

/// The CRD's admission rules (its schema's bounds and CEL rules, `crate::api::policy`), in their
/// words, for a policy the API server has not seen: the audit's `--policy` files, and a policy
/// stored under an earlier CRD. `tests/policies/invalid/` holds a policy breaking each, which both
/// the API server and this refuse. Label selectors are checked by [`validate_selector`].
fn admission_rules(spec: &SeccompPolicySpec) -> Result<(), PolicyError> {
    let profiles = &spec.allowed_profiles;
    if profiles.len() > 2 {
        return Err(invalid("spec.allowedProfiles", "must have at most 2 items"));
    }
    if profiles.iter().any(|p| p == "Unconfined") {
        return Err(invalid(
            "spec.allowedProfiles",
            "Unconfined cannot be an allowed profile: list the confined profiles the policy accepts, and exempt workloads that must run unconfined",
        ));
    }
    if let Some((i, duplicate)) = profiles
        .iter()
        .enumerate()
        .find(|(i, p)| profiles[..*i].contains(p))
    {
        return Err(invalid(
            format!("spec.allowedProfiles[{i}]"),
            format!("Duplicate value: {duplicate:?}"),
        ));
    }
    let globs = &spec.allowed_localhost_profiles;
    let field = "spec.allowedLocalhostProfiles";
    if globs.len() > 32 {
        return Err(invalid(field, "must have at most 32 items"));
    }
    for glob in globs {
        let message = if glob.is_empty() || glob.chars().count() > 253 {
            "allowedLocalhostProfiles entries must be 1 to 253 characters long"
        } else if glob.starts_with('/') {
            "allowedLocalhostProfiles are relative to the kubelet's seccomp directory: no leading '/'"
        } else if glob.contains("..") {
            "allowedLocalhostProfiles may not contain '..'"
        } else if !glob
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/*?-".contains(&b))
        {
            "allowedLocalhostProfiles may use letters, digits, '.', '_', '-', '/' and the wildcards '*' and '?'"
        } else {
            continue;
        };
        return Err(invalid(field, message));
    }
    if !globs.is_empty() && !profiles.is_empty() && !profiles.iter().any(|p| p == "Localhost") {
        return Err(invalid(
            "spec",
            "allowedLocalhostProfiles needs Localhost in allowedProfiles",
        ));
    }
    if spec.exemptions.len() > 64 {
        return Err(invalid("spec.exemptions", "must have at most 64 items"));
    }
    for (i, exemption) in spec.exemptions.iter().enumerate() {
        let at = format!("spec.exemptions[{i}]");
        // The API server counts characters, not bytes.
        if exemption.reason.chars().count() > 1024 {
            return Err(invalid(format!("{at}.reason"), "may not be more than 1024 bytes"));
        }
        let lists = [
            ("namespaces", &exemption.namespaces, 64),
            ("containers", &exemption.containers, 64),
            ("sccs", &exemption.sccs, 32),
        ];
        for (name, list, most) in lists {
            if list.as_ref().is_some_and(|l| l.len() > most) {
                return Err(invalid(
                    format!("{at}.{name}"),
                    format!("must have at most {most} items"),
                ));
            }
        }
        if !exemption.namespaces.iter().flatten().all(|n| dns_label(n)) {
            return Err(invalid(
                format!("{at}.namespaces"),
                "exemption namespaces must be namespace names",
            ));
        }
        if !exemption.containers.iter().flatten().all(|c| dns_label(c)) {
            return Err(invalid(
                format!("{at}.containers"),
                "exemption containers must be container names",
            ));
        }
        if !exemption
            .sccs
            .iter()
            .flatten()
            .all(|s| !s.is_empty() && s.chars().count() <= 253)
        {
            return Err(invalid(format!("{at}.sccs"), "exemption sccs must be SCC names"));
        }
        // Read as the controller reads it (leniently: the API server's date-time takes forms a
        // strict RFC 3339 parser does not); what cannot be read is refused in `compile`.
        let far = match exemption.expires.as_deref().map(crate::lean::LenientTime::parse) {
            Some(crate::lean::LenientTime::At(at)) => at >= Timestamp::constant(253_402_128_000, 0),
            Some(crate::lean::LenientTime::FarFuture) => true,
            _ => false,
        };
        if far {
            return Err(invalid(
                format!("{at}.expires"),
                "expires must be before 9999-12-30",
            ));
        }
    }
    if let Some(eviction) = &spec.eviction {
        if eviction.max_per_minute.is_some_and(|n| n > 600) {
            return Err(invalid(
                "spec.eviction.maxPerMinute",
                "maxPerMinute may be at most 600",
            ));
        }
        let durations = [
            ("minUnconfinedAge", &eviction.min_unconfined_age),
            ("workloadCooldown", &eviction.workload_cooldown),
        ];
        for (name, value) in durations {
            if value.as_deref().is_some_and(|v| !admitted_duration(v)) {
                return Err(invalid(
                    format!("spec.eviction.{name}"),
                    format!("{name} must be a duration such as 90s, 10m or 1h30m"),
                ));
            }
        }
    }
    Ok(())
}

/// A duration as the CRD admits it (`^([0-9]+(ms|s|m|h))+$`): `90s`, `10m`, `1h30m`, `500ms`.
fn admitted_duration(text: &str) -> bool {
    let mut rest = text.as_bytes();
    if rest.is_empty() || rest.len() > 32 {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = if rest.starts_with(b"ms") {
            2
        } else if rest.starts_with(b"s") || rest.starts_with(b"m") || rest.starts_with(b"h") {
            1
        } else {
            return false;
        };
        rest = &rest[unit..];
    }
    true
}

/// [`compile`] of a policy object.
pub fn compile_policy(policy: &SeccompPolicy) -> Result<CompiledPolicy, PolicyError> {
    compile(
        policy.metadata.name.as_deref().unwrap_or_default(),
        policy.metadata.generation,
        &policy.spec,
    )
}

/// Validates a policy (again: the API server's schema and CEL rules cannot check everything,
/// e.g. label selector operators) and prepares it for judging pods.
pub fn compile(
    name: &str,
    generation: Option<i64>,
    spec: &SeccompPolicySpec,
) -> Result<CompiledPolicy, PolicyError> {
    admission_rules(spec)?;
    let mut allow_runtime_default = spec.allowed_profiles.is_empty();
    let mut allow_localhost = spec.allowed_profiles.is_empty();
    for profile in &spec.allowed_profiles {
        match profile.as_str() {
            "RuntimeDefault" => allow_runtime_default = true,
            "Localhost" => allow_localhost = true,
            _ => {
                return Err(invalid(
                    "spec.allowedProfiles",
                    "allowedProfiles may contain only RuntimeDefault and Localhost",
                ));
            }
        }
    }
    let localhost_globs = if spec.allowed_localhost_profiles.is_empty() {
        None
    } else {
        let mut set = GlobSetBuilder::new();
        for pattern in &spec.allowed_localhost_profiles {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(false)
                .build()
                .map_err(|e| invalid("spec.allowedLocalhostProfiles", format!("{pattern:?}: {e}")))?;
            set.add(glob);
        }
        Some(
            set.build()
                .map_err(|e| invalid("spec.allowedLocalhostProfiles", e.to_string()))?,
        )
    };
    let exemptions = spec
        .exemptions
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let field = format!("spec.exemptions[{i}]");
            let compiled = CompiledExemption {
                reason: e.reason.trim().to_string(),
                namespaces: e.namespaces.clone().unwrap_or_default(),
                pod_selector: selector(
                    &format!("{field}.podSelector"),
                    e.pod_selector.as_ref(),
                    &OUTCOME_LABELS,
                )?,
                containers: e.containers.clone().unwrap_or_default(),
                sccs: e.sccs.clone().unwrap_or_default(),
                expires: match e.expires.as_deref().map(crate::lean::LenientTime::parse) {
                    None | Some(crate::lean::LenientTime::FarFuture) => None,
                    Some(crate::lean::LenientTime::At(at)) => Some(at),
                    Some(crate::lean::LenientTime::FarPast) => Some(Timestamp::MIN),
                    Some(crate::lean::LenientTime::Unreadable) => {
                        return Err(invalid(
                            format!("{field}.expires"),
                            "must be an RFC 3339 date-time",
                        ));
                    }
                },
            };
            let names_something = !compiled.namespaces.is_empty()
                || e.pod_selector.is_some()
                || !compiled.containers.is_empty()
                || !compiled.sccs.is_empty();
            if !names_something {
                return Err(invalid(
                    field,
                    "an exemption must name namespaces, a podSelector, containers or sccs",
                ));
            }
            if compiled.reason.is_empty() {
                return Err(invalid(field, "an exemption needs a reason"));
            }
            Ok(compiled)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if spec.eviction.is_some() && spec.action != PolicyActionMode::Evict {
        return Err(invalid(
            "spec.eviction",
            "eviction settings apply only to a policy with action: Evict",
        ));
    }
    let settings = spec.eviction.clone().unwrap_or_default();
    let defaults = EvictionLimits::default();
    let positive = |field: &str, v: Option<i32>| -> Result<Option<u32>, PolicyError> {
        match v {
            Some(n) if n < 1 => {
                let name = field.rsplit('.').next().unwrap_or(field);
                Err(invalid(field, format!("{name} must be at least 1")))
            }
            Some(n) => Ok(Some(n as u32)),
            None => Ok(None),
        }
    };
    let eviction = EvictionLimits {
        dry_run: settings.dry_run,
        min_age: duration(
            "spec.eviction.minUnconfinedAge",
            settings.min_unconfined_age.as_deref(),
            defaults.min_age,
        )?,
        max_per_minute: positive("spec.eviction.maxPerMinute", settings.max_per_minute)?
            .unwrap_or(defaults.max_per_minute),
        max_per_namespace_per_minute: positive(
            "spec.eviction.maxPerNamespacePerMinute",
            settings.max_per_namespace_per_minute,
        )?,
        workload_cooldown: duration(
            "spec.eviction.workloadCooldown",
            settings.workload_cooldown.as_deref(),
            defaults.workload_cooldown,
        )?,
        all_policies_per_minute: None,
    };
    let namespace_selector = selector("spec.namespaceSelector", spec.namespace_selector.as_ref(), &[])?;
    Ok(CompiledPolicy {
        name: name.to_string(),
        generation,
        uses_namespace_labels: namespace_selector.is_some(),
        namespace_selector,
        pod_selector: selector("spec.podSelector", spec.pod_selector.as_ref(), &OUTCOME_LABELS)?,
        allow_runtime_default,
        allow_localhost,
        localhost_globs,
        minimum_strength: spec.minimum_profile_strength.map(Into::into),
        exemptions,
        action: spec.action,
        eviction,
    })
}

/// The facts of a pod a policy looks at (besides its evaluation).
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub namespace: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub namespace_labels: &'a BTreeMap<String, String>,
    pub scc: Option<&'a str>,
}

/// One policy's judgement of one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: String,
    pub message: String,
    /// Violating, and every violating container is an ephemeral one (`kubectl debug`).
    pub ephemeral_only: bool,
}

impl Judgement {
    /// Violating only for profile strength: the profile file is the fix; evicting is not.
    pub fn weak_profiles_only(&self) -> bool {
        self.verdict == Verdict::Violating && self.reason == WEAK_PROFILE
    }
}

impl CompiledPolicy {
    pub fn selects(&self, subject: &Subject<'_>) -> bool {
        self.namespace_selector
            .as_ref()
            .is_none_or(|s| s.matches(subject.namespace_labels))
            && self
                .pod_selector
                .as_ref()
                .is_none_or(|s| s.matches(subject.labels))
    }

    /// Exemptions that apply to this pod (any container), and are not expired.
    fn active_exemptions<'s>(
        &'s self,
        subject: &'s Subject<'_>,
        now: Timestamp,
    ) -> impl Iterator<Item = &'s CompiledExemption> + 's {
        self.exemptions.iter().filter(move |e| {
            e.expires.is_none_or(|t| t > now)
                && (e.namespaces.is_empty() || e.namespaces.iter().any(|n| n == subject.namespace))
                && e.pod_selector.as_ref().is_none_or(|s| s.matches(subject.labels))
                && (e.sccs.is_empty() || subject.scc.is_some_and(|scc| e.sccs.iter().any(|s| s == scc)))
        })
    }

    /// When the first of the exemptions that apply to this pod now runs out: its verdict changes
    /// then, with nothing else changing.
    pub fn next_expiry(&self, subject: &Subject<'_>, now: Timestamp) -> Option<Timestamp> {
        self.active_exemptions(subject, now)
            .filter_map(|e| e.expires)
            .min()
    }

    /// Exemptions that have expired by `now` (reported on the policy).
    pub fn expired_exemptions(&self, now: Timestamp) -> Vec<String> {
        self.exemptions
            .iter()
            .filter(|e| e.expires.is_some_and(|t| t <= now))
            .map(|e| e.reason.clone())
            .collect()
    }

    fn allows(&self, container: &ContainerSeccomp) -> Result<(), &'static str> {
        self.allows_type(&container.profile)?;
        // Strength is checked where it is known; Unknown never violates (no verdict on a guess).
        match (self.minimum_strength, container.strength) {
            (Some(minimum), Some(strength)) if strength < minimum && strength != ProfileStrength::Unknown => {
                Err(WEAK_PROFILE)
            }
            _ => Ok(()),
        }
    }

    fn allows_type(&self, profile: &crate::api::EffectiveProfile) -> Result<(), &'static str> {
        match profile.type_ {
            ProfileType::NotApplicable => Ok(()),
            ProfileType::Unconfined => Err(UNCONFINED),
            ProfileType::RuntimeDefault if self.allow_runtime_default => Ok(()),
            ProfileType::RuntimeDefault => Err("ProfileNotAllowed"),
            ProfileType::Localhost if !self.allow_localhost => Err("ProfileNotAllowed"),
            ProfileType::Localhost => match (&self.localhost_globs, &profile.localhost_profile) {
                (None, _) => Ok(()),
                (Some(globs), Some(path))
                    if globs.is_match(crate::profile::clean_localhost_path(path).as_ref()) =>
                {
                    Ok(())
                }
                _ => Err("LocalhostProfileNotAllowed"),
            },
        }
    }

    /// The verdict on a pod this policy selects.
    pub fn judge(
        &self,
        subject: &Subject<'_>,
        evaluation: &SeccompStatusStatus,
        now: Timestamp,
    ) -> Judgement {
        let exemptions: Vec<&CompiledExemption> = self.active_exemptions(subject, now).collect();
        if let Some(pod_wide) = exemptions.iter().find(|e| e.containers.is_empty()) {
            return Judgement {
                verdict: Verdict::Exempt,
                reason: "Exempted".into(),
                message: pod_wide.reason.clone(),
                ephemeral_only: false,
            };
        }
        let mut violations: Vec<(&str, &'static str)> = Vec::new();
        let mut exempted: Vec<(&str, &str)> = Vec::new();
        let mut ephemeral_only = true;
        for container in &evaluation.containers {
            if let Err(why) = self.allows(container) {
                match exemptions
                    .iter()
                    .find(|e| e.containers.iter().any(|c| c == &container.name))
                {
                    Some(e) => exempted.push((container.name.as_str(), e.reason.as_str())),
                    None => {
                        ephemeral_only &= container.kind == ContainerKind::EphemeralContainer;
                        violations.push((container.name.as_str(), why));
                    }
                }
            }
        }
        if violations.is_empty() {
            let unknown: Vec<&str> = match self.minimum_strength {
                Some(_) => evaluation
                    .containers
                    .iter()
                    .filter(|c| c.strength == Some(ProfileStrength::Unknown))
                    .map(|c| c.name.as_str())
                    .collect(),
                None => Vec::new(),
            };
            return match exempted.as_slice() {
                [] if !unknown.is_empty() => Judgement {
                    verdict: Verdict::Compliant,
                    reason: "StrengthUnknown".into(),
                    message: format!(
                        "profile strength not known (the node agent has not read the file, no SeccompProfile describes it): {}",
                        crate::status::summarize_names(&unknown)
                    ),
                    ephemeral_only: false,
                },
                [] => Judgement {
                    verdict: Verdict::Compliant,
                    reason: "Allowed".into(),
                    message: String::new(),
                    ephemeral_only: false,
                },
                _ => Judgement {
                    verdict: Verdict::Exempt,
                    reason: "ContainersExempted".into(),
                    message: crate::status::first_few(
                        exempted.iter().map(|(c, why)| format!("{c}: {why}")),
                        "; ",
                    ),
                    ephemeral_only: false,
                },
            };
        }
        let reason = if violations.iter().any(|(_, why)| *why == UNCONFINED) {
            UNCONFINED
        } else {
            // A weak profile is the reason only when nothing else violates.
            violations
                .iter()
                .map(|(_, why)| *why)
                .find(|why| *why != WEAK_PROFILE)
                .unwrap_or(WEAK_PROFILE)
        };
        let named = violations.iter().map(|(c, why)| {
            let strength = evaluation
                .containers
                .iter()
                .find(|k| k.name == *c)
                .and_then(|k| k.strength)
                .filter(|_| *why == WEAK_PROFILE);
            match strength {
                Some(s) => format!("{c} ({why}: {})", s.as_str()),
                None => format!("{c} ({why})"),
            }
        });
        let message = format!("not allowed: {}", crate::status::first_few(named, ", "));
        Judgement {
            verdict: Verdict::Violating,
            reason: reason.into(),
            message,
            ephemeral_only,
        }
    }
}

/// The result entry of a policy for `SeccompStatus.status.policies`.
pub fn result(
    policy: &CompiledPolicy,
    judgement: &Judgement,
    action: PolicyAction,
    action_message: Option<&str>,
) -> PolicyResult {
    let message = match action_message {
        Some(extra) if !judgement.message.is_empty() => format!("{}; {extra}", judgement.message),
        Some(extra) => extra.to_string(),
        None => judgement.message.clone(),
    };
    PolicyResult {
        name: policy.name.clone(),
        verdict: judgement.verdict,
        action,
        reason: judgement.reason.clone(),
        message,
    }
}

/// The labels `Label`/`Evict` policies want on a pod: `None` when no such policy selects it (and
/// the labels should go), else the profile label and, if violating, the violation label.
pub fn desired_labels(
    results: &[(PolicyActionMode, Verdict)],
    profile: crate::api::PodProfile,
) -> Option<BTreeMap<String, String>> {
    let labelling: Vec<&Verdict> = results
        .iter()
        .filter(|(mode, _)| *mode != PolicyActionMode::Audit)
        .map(|(_, v)| v)
        .collect();
    if labelling.is_empty() {
        return None;
    }
    let mut labels = BTreeMap::from([(PROFILE_LABEL.to_string(), profile.as_str().to_string())]);
    if labelling.iter().any(|v| **v == Verdict::Violating) {
        labels.insert(VIOLATION_LABEL.to_string(), "true".to_string());
    }
    Some(labels)
}

#[cfg(test)]
mod tests;
