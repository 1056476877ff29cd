//! When evicting a violating pod is safe. Pure: the controller gathers the facts, fetches the
//! owner's template, calls the Eviction API and records what happened in the ledger.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use k8s_openapi::jiff::Timestamp;

use super::EvictionLimits;

/// Namespaces whose pods are never evicted, whatever a policy says.
pub const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

/// The kind of the pod's controlling owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerKind {
    ReplicaSet,
    StatefulSet,
    ReplicationController,
    DaemonSet,
    Job,
    Other,
    /// No controller: a bare pod.
    None,
}

impl OwnerKind {
    pub fn from_kind(api_version: &str, kind: &str) -> OwnerKind {
        match (api_version, kind) {
            ("apps/v1", "ReplicaSet") => OwnerKind::ReplicaSet,
            ("apps/v1", "StatefulSet") => OwnerKind::StatefulSet,
            ("apps/v1", "DaemonSet") => OwnerKind::DaemonSet,
            ("v1", "ReplicationController") => OwnerKind::ReplicationController,
            ("batch/v1", "Job") => OwnerKind::Job,
            _ => OwnerKind::Other,
        }
    }
}

/// What the safety rules look at.
#[derive(Clone, Copy, Debug)]
pub struct EvictionFacts<'a> {
    pub policy: &'a str,
    pub namespace: &'a str,
    pub operator_namespace: Option<&'a str>,
    pub owner: OwnerKind,
    /// UID of the controlling owner (the workload).
    pub owner_uid: Option<&'a str>,
    /// A static pod's mirror (annotation `kubernetes.io/config.mirror`).
    pub mirror: bool,
    pub terminating: bool,
    /// Succeeded or Failed.
    pub terminal: bool,
    pub created: Option<Timestamp>,
    /// Every cache has synced and every pod has been evaluated once.
    pub warmed_up: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvictionVerdict {
    /// Safe to evict now (after the template check), or to report `WouldEvict` in a dry run.
    Proceed,
    /// Never evict this pod (as it is).
    Skip { reason: &'static str, message: String },
    /// Not now; look again after `retry_after`. Messages are fixed texts (no counts or times), so a
    /// status that repeats them is not rewritten.
    Later {
        reason: &'static str,
        message: String,
        retry_after: Duration,
    },
}

fn skip(reason: &'static str, message: impl Into<String>) -> EvictionVerdict {
    EvictionVerdict::Skip {
        reason,
        message: message.into(),
    }
}

fn later(reason: &'static str, message: impl Into<String>, retry_after: Duration) -> EvictionVerdict {
    EvictionVerdict::Later {
        reason,
        message: message.into(),
        retry_after: retry_after.max(Duration::from_secs(1)),
    }
}

/// What the controller has evicted, for rate limits, cooldowns and the loop guard.
#[derive(Debug, Default)]
pub struct EvictionLedger {
    by_policy: HashMap<String, VecDeque<Timestamp>>,
    by_namespace: HashMap<(String, String), VecDeque<Timestamp>>,
    last_by_workload: HashMap<String, Timestamp>,
    halted: HashMap<String, String>,
}

const WINDOW: Duration = Duration::from_secs(60);

fn since(now: Timestamp, then: Timestamp) -> Duration {
    now.duration_since(then).unsigned_abs()
}

/// Evictions in the last minute, and when the oldest of them leaves the window.
fn window_use(window: Option<&VecDeque<Timestamp>>, now: Timestamp) -> (usize, Duration) {
    let recent: Vec<&Timestamp> = window
        .into_iter()
        .flatten()
        .filter(|t| since(now, **t) < WINDOW)
        .collect();
    let free_in = recent
        .iter()
        .map(|t| WINDOW.saturating_sub(since(now, **t)))
        .min()
        .unwrap_or_default();
    (recent.len(), free_in)
}

/// An eviction counted before it is attempted (so concurrent reconciles cannot exceed a rate);
/// released if it does not happen.
#[derive(Debug)]
pub struct Reservation {
    policy: String,
    namespace: String,
    workload: Option<String>,
    at: Timestamp,
    previous_workload_eviction: Option<Timestamp>,
}

impl EvictionLedger {
    pub fn record(
        &mut self,
        policy: &str,
        namespace: &str,
        workload: Option<&str>,
        now: Timestamp,
    ) -> Reservation {
        for window in [
            self.by_policy.entry(policy.to_string()).or_default(),
            self.by_namespace
                .entry((policy.to_string(), namespace.to_string()))
                .or_default(),
        ] {
            window.retain(|t| since(now, *t) < WINDOW);
            window.push_back(now);
        }
        let previous_workload_eviction =
            workload.and_then(|w| self.last_by_workload.insert(w.to_string(), now));
        Reservation {
            policy: policy.to_string(),
            namespace: namespace.to_string(),
            workload: workload.map(String::from),
            at: now,
            previous_workload_eviction,
        }
    }

    /// Takes back a recorded eviction that did not happen.
    pub fn release(&mut self, reservation: Reservation) {
        let key = (reservation.policy.clone(), reservation.namespace);
        for window in [
            self.by_policy.get_mut(&reservation.policy),
            self.by_namespace.get_mut(&key),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(i) = window.iter().rposition(|t| *t == reservation.at) {
                window.remove(i);
            }
        }
        if let Some(workload) = reservation.workload {
            match reservation.previous_workload_eviction {
                Some(previous) => self.last_by_workload.insert(workload, previous),
                None => self.last_by_workload.remove(&workload),
            };
        }
    }

    /// When a pod of `workload` was last evicted.
    pub fn last_eviction(&self, workload: &str) -> Option<Timestamp> {
        self.last_by_workload.get(workload).copied()
    }

    /// Whether a pod created at `created` replaces one evicted from `workload`. Creation times
    /// have whole seconds, so a pod created in the second of the eviction counts as a
    /// replacement (the cautious side: it stops evictions rather than repeats them).
    pub fn is_replacement(&self, workload: &str, created: Timestamp) -> bool {
        self.last_eviction(workload)
            .is_some_and(|evicted| created.as_second() >= evicted.as_second())
    }

    /// Stops evicting a workload for good (its replacements come back unconfined).
    pub fn halt(&mut self, workload: &str, why: String) -> bool {
        self.halted.insert(workload.to_string(), why).is_none()
    }

    pub fn halted(&self, workload: &str) -> Option<&str> {
        self.halted.get(workload).map(String::as_str)
    }

    pub fn halted_count(&self) -> usize {
        self.halted.len()
    }
}

/// Applies every safety rule, in order: pods that must never be evicted, then pods that may be
/// evicted later. Rates and cooldowns do not apply to dry runs, which evict nothing.
/// [`eviction_verdict`], and when it says proceed (and it is not a dry run), the eviction is
/// recorded at once: reconciles running side by side cannot exceed the rates together. Release
/// the reservation if the eviction does not happen.
pub fn reserve_eviction(
    facts: &EvictionFacts<'_>,
    limits: &EvictionLimits,
    ledger: &mut EvictionLedger,
    now: Timestamp,
) -> (EvictionVerdict, Option<Reservation>) {
    let verdict = eviction_verdict(facts, limits, ledger, now);
    let reservation = (verdict == EvictionVerdict::Proceed && !limits.dry_run)
        .then(|| ledger.record(facts.policy, facts.namespace, facts.owner_uid, now));
    (verdict, reservation)
}

pub fn eviction_verdict(
    facts: &EvictionFacts<'_>,
    limits: &EvictionLimits,
    ledger: &EvictionLedger,
    now: Timestamp,
) -> EvictionVerdict {
    if SYSTEM_NAMESPACES.contains(&facts.namespace) {
        return skip(
            "SystemNamespace",
            format!("pods in {} are never evicted", facts.namespace),
        );
    }
    if facts.operator_namespace == Some(facts.namespace) {
        return skip(
            "OperatorNamespace",
            "the operator never evicts pods of its own namespace",
        );
    }
    if facts.mirror {
        return skip("StaticPod", "static pods cannot be evicted through the API");
    }
    match facts.owner {
        OwnerKind::None => {
            return skip(
                "BarePod",
                "no controller would recreate this pod: fix and recreate it by hand",
            );
        }
        OwnerKind::DaemonSet => return skip("DaemonSetPod", "DaemonSet pods are never evicted"),
        OwnerKind::Job => {
            return skip(
                "JobPod",
                "evicting a Job's pod can fail the Job: fix the Job template",
            );
        }
        OwnerKind::Other => {
            return skip(
                "UnknownWorkload",
                "the pod's controller is not a ReplicaSet, StatefulSet or ReplicationController",
            );
        }
        OwnerKind::ReplicaSet | OwnerKind::StatefulSet | OwnerKind::ReplicationController => {}
    }
    if facts.terminating {
        return skip("Terminating", "the pod is already being deleted");
    }
    if facts.terminal {
        return skip("Completed", "the pod has finished");
    }
    if let Some(why) = facts.owner_uid.and_then(|w| ledger.halted(w)) {
        return skip("ReplacementUnconfined", why.to_string());
    }
    if !facts.warmed_up {
        return later(
            "WarmingUp",
            "waiting until every cache has synced and every pod was evaluated once",
            Duration::from_secs(5),
        );
    }
    let age = facts.created.map(|c| since(now, c)).unwrap_or_default();
    if age < limits.min_age {
        let wait = limits.min_age - age;
        return later(
            "TooYoung",
            format!(
                "the pod is younger than minUnconfinedAge; evictable in {}s",
                wait.as_secs()
            ),
            wait,
        );
    }
    if limits.dry_run {
        return EvictionVerdict::Proceed;
    }
    if let Some(last) = facts.owner_uid.and_then(|w| ledger.last_eviction(w)) {
        let elapsed = since(now, last);
        if elapsed < limits.workload_cooldown {
            let wait = limits.workload_cooldown - elapsed;
            return later(
                "WorkloadCooldown",
                format!("a pod of this workload was evicted {}s ago", elapsed.as_secs()),
                wait,
            );
        }
    }
    let (used, free_in) = window_use(ledger.by_policy.get(facts.policy), now);
    if used >= limits.max_per_minute as usize {
        return later(
            "RateLimited",
            format!("{used} evictions in the last minute (maxPerMinute)"),
            free_in,
        );
    }
    if let Some(max) = limits.max_per_namespace_per_minute {
        let key = (facts.policy.to_string(), facts.namespace.to_string());
        let (used, free_in) = window_use(ledger.by_namespace.get(&key), now);
        if used >= max as usize {
            return later(
                "RateLimited",
                format!("{used} evictions in {} in the last minute", facts.namespace),
                free_in,
            );
        }
    }
    EvictionVerdict::Proceed
}
