//! When evicting a violating pod is safe. Pure: the controller gathers the facts, fetches the
//! owner's template, calls the Eviction API and records what happened in the ledger.

use std::{collections::HashMap, time::Duration};

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::EvictionLimits;

/// Namespaces whose pods are never evicted, whatever a policy says.
pub const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

/// The kind of the pod's controlling owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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

/// What a StatefulSet's own controller does with its pods when its template changes (read from
/// the StatefulSet: `spec.updateStrategy`, `spec.ordinals.start`, `status.updateRevision`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatefulRollout {
    /// The StatefulSet's controller has seen its latest spec (`status.observedGeneration`):
    /// `update_revision` is the current template's.
    pub settled: bool,
    /// The revision of the current template (`status.updateRevision`).
    pub update_revision: String,
    /// `RollingUpdate` (or `Recreate`): the controller replaces the pods of earlier revisions
    /// itself; `OnDelete`: only when someone deletes them.
    pub replaces_earlier: bool,
    /// Ordinals below this (`ordinals.start` + `rollingUpdate.partition`) stay at, and come back
    /// at, the earlier revision.
    pub held_below: i64,
}

/// The label with a StatefulSet pod's revision, and the one with its ordinal.
pub const REVISION_LABEL: &str = "controller-revision-hash";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// Whether a StatefulSet's own controller has a pod of an earlier revision in hand, so that
/// evicting it would help nothing or add a second disruption to a rolling update: `Some` skip
/// when it does. `labels` and `name` are the pod's (the ordinal is its `pod-index` label, or the
/// name's last number).
pub fn stateful_rollout_verdict(
    rollout: &StatefulRollout,
    labels: &std::collections::BTreeMap<String, String>,
    name: &str,
) -> Option<EvictionVerdict> {
    // A template just changed: the controller is about to start its own rollout. A skip, not a
    // wait: the StatefulSet's status catching up plans its pods again, and a skip between two
    // skips announces nothing (a rollout of many pods is not an Event per pod).
    if !rollout.settled {
        return Some(skip(
            "StatefulSetUpdating",
            "the StatefulSet's controller has not taken in its latest spec yet",
        ));
    }
    let revision = labels.get(REVISION_LABEL).map(String::as_str).unwrap_or_default();
    if revision == rollout.update_revision {
        return None;
    }
    let ordinal = labels
        .get(POD_INDEX_LABEL)
        .map(String::as_str)
        .or_else(|| name.rsplit_once('-').map(|(_, n)| n))
        .and_then(|n| n.parse::<i64>().ok());
    match ordinal {
        // The controller creates it again at the earlier revision: evicting changes nothing.
        Some(ordinal) if ordinal < rollout.held_below => Some(skip(
            "PartitionHeld",
            "the StatefulSet's partition keeps this pod at an earlier revision, and a replacement \
             would be too: lower the partition",
        )),
        _ if rollout.replaces_earlier => Some(skip(
            "StatefulSetRollout",
            "the StatefulSet's rolling update replaces this pod with its template itself; evicting \
             it as well would take a second pod down",
        )),
        // OnDelete: deleting the pod is how it gets the template.
        _ => None,
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
    /// Every cache has listed once (the warm-up is over).
    pub warmed_up: bool,
    /// How many other pods of the workload are down (not ready, or being deleted), when counted:
    /// only when the eviction is reserved, as it needs a look at every pod of the namespace.
    pub workload_down: Option<usize>,
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

/// The reason of a [`EvictionVerdict::Later`] before the warm-up ends: nothing is decided yet.
pub const WARMING_UP: &str = "WarmingUp";

fn evictions(count: usize) -> String {
    match count {
        1 => "1 eviction".into(),
        n => format!("{n} evictions"),
    }
}

fn later(reason: &'static str, message: impl Into<String>, retry_after: Duration) -> EvictionVerdict {
    EvictionVerdict::Later {
        reason,
        message: message.into(),
        retry_after: retry_after.max(Duration::from_secs(1)),
    }
}

/// What the controller has evicted, per policy, for rate limits, cooldowns and the loop guard.
/// It lives in each policy's status as well (`status.evictions`), written before every eviction,
/// so a new leader, or the same one after a restart, goes on from where the last one stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EvictionLedger {
    policies: HashMap<String, PolicyLedger>,
    /// What this process knew of each workload when it evicted one of its pods (in memory only).
    witnesses: Vec<Witness>,
    /// Reserved evictions whose Eviction request has not been answered yet (in memory only: a
    /// reservation read back after a restart counts as an eviction, the safe side).
    in_flight: Vec<EvictionRecord>,
}

/// The pods of a workload the controller knew when it reserved the eviction of one of them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Witness {
    workload: String,
    at: Timestamp,
    /// Pod UIDs, sorted.
    pods: Vec<String>,
}

/// One policy's part of the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyLedger {
    /// Evictions of the last [`KEPT`], oldest first.
    pub recent: Vec<EvictionRecord>,
    /// Workloads whose replacements came back violating: never evicted again.
    pub halted: Vec<HaltRecord>,
    /// Reservations taken back (the eviction did not happen), never written to the status. The
    /// ledger was written ahead with each of them, and that write's watch event can arrive after
    /// the release: without this, [`EvictionLedger::load`] put the refused eviction back, where it
    /// counted against the rate and the loop guard took the pod for its own replacement.
    released: Vec<EvictionRecord>,
    /// The policy's [`RESUME_ANNOTATION`]: halts recorded at or before it are lifted, and
    /// evictions at or before it no longer make a pod a replacement for the loop guard.
    resumed_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvictionRecord {
    pub at: Timestamp,
    pub namespace: String,
    /// UID of the pod's workload.
    pub workload: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaltRecord {
    pub workload: String,
    /// `<namespace>/<Kind> <name>`.
    pub name: String,
    pub reason: String,
    pub since: Timestamp,
}

const WINDOW: Duration = Duration::from_secs(60);
/// Longer than an Eviction request takes but on a stalled connection; past it a reservation
/// still unanswered reads as an eviction (a cooldown for its workload), the safe side.
const IN_FLIGHT_AT_MOST: Duration = Duration::from_secs(120);
/// How long evictions are remembered: the rate window, workload cooldowns, and the time a
/// replacement needs to show whether it comes back confined.
pub const KEPT: Duration = Duration::from_secs(600);
/// At most this many evictions and halted workloads are kept per policy.
const MAX_RECORDS: usize = 1000;

/// The policy annotation that lifts its halts: an RFC 3339 time; the halts recorded at or before
/// it end (`kubectl annotate seccomppolicy <name> seccomp.sentinel.dev/resume-evictions=$(date -u
/// +%FT%TZ) --overwrite`).
pub const RESUME_ANNOTATION: &str = "seccomp.sentinel.dev/resume-evictions";
/// How far ahead of the operator's clock a resume time may be (clocks differ a little). A time
/// further ahead would keep lifting halts until then, which turns the loop guard off: refused.
pub const RESUME_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The resume time a policy's [`RESUME_ANNOTATION`] gives at `now`: none without the annotation,
/// an error (said in the policy's status) for a value that is not an RFC 3339 time or lies
/// ahead of the operator's clock.
pub fn resume_time(annotation: Option<&str>, now: Timestamp) -> Result<Option<Timestamp>, String> {
    let Some(text) = annotation else {
        return Ok(None);
    };
    let at: Timestamp = text.trim().parse().map_err(|_| {
        format!("{RESUME_ANNOTATION} {text:?} is not an RFC 3339 time (e.g. 2026-12-04T10:00:00Z): ignored")
    })?;
    let ahead = at.duration_since(now);
    if ahead.is_positive() && ahead.unsigned_abs() > RESUME_CLOCK_SKEW {
        return Err(format!(
            "{RESUME_ANNOTATION} {text:?} is {}s ahead of the operator's clock: ignored",
            ahead.as_secs()
        ));
    }
    Ok(Some(at))
}

/// Whether something recorded at `at` lies at or before a resume time. Exact, not in whole
/// seconds: an eviction in the second of the resume time, after it, counts for the loop guard.
fn lifted_by(at: Timestamp, resumed: Timestamp) -> bool {
    at <= resumed
}

/// How long ago `then` was; zero for a time ahead of `now`. Times come from other clocks (a
/// pod's creation from the API server's, an eviction from an earlier leader's): a time ahead is
/// taken as just now, never as long ago, so a pod created "in the future" is young and an
/// eviction recorded "in the future" counts for the rate and the cooldown.
fn since(now: Timestamp, then: Timestamp) -> Duration {
    now.duration_since(then).max(SignedDuration::ZERO).unsigned_abs()
}

/// Evictions in the last minute, and when the oldest of them leaves the window.
fn window_use<'a>(records: impl Iterator<Item = &'a EvictionRecord>, now: Timestamp) -> (usize, Duration) {
    let recent: Vec<Timestamp> = records
        .map(|r| r.at)
        .filter(|t| since(now, *t) < WINDOW)
        .collect();
    let free_in = recent
        .iter()
        .map(|t| WINDOW.saturating_sub(since(now, *t)))
        .min()
        .unwrap_or_default();
    (recent.len(), free_in)
}

/// An eviction counted before it is attempted (so concurrent reconciles cannot exceed a rate);
/// released if it does not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub policy: String,
    record: EvictionRecord,
}

impl EvictionLedger {
    fn all(&self) -> impl Iterator<Item = &EvictionRecord> {
        self.policies.values().flat_map(|p| p.recent.iter())
    }

    /// Records an eviction as made (what [`EvictionLedger::reserve`] builds on).
    pub(crate) fn record(
        &mut self,
        policy: &str,
        namespace: &str,
        workload: Option<&str>,
        now: Timestamp,
    ) -> Reservation {
        let record = EvictionRecord {
            at: now,
            namespace: namespace.to_string(),
            workload: workload.map(String::from),
        };
        let ledger = self.policies.entry(policy.to_string()).or_default();
        ledger.recent.retain(|r| since(now, r.at) < KEPT);
        ledger.released.retain(|r| since(now, r.at) < KEPT);
        ledger.recent.push(record.clone());
        if ledger.recent.len() > MAX_RECORDS {
            let excess = ledger.recent.len() - MAX_RECORDS;
            ledger.recent.drain(..excess);
        }
        Reservation {
            policy: policy.to_string(),
            record,
        }
    }

    /// Records an eviction about to be requested: it counts at once, and until it is settled or
    /// released the other pods of its workload are told it is under way, not done.
    pub fn reserve(
        &mut self,
        policy: &str,
        namespace: &str,
        workload: Option<&str>,
        now: Timestamp,
    ) -> Reservation {
        let reservation = self.record(policy, namespace, workload, now);
        self.in_flight.retain(|r| since(now, r.at) < IN_FLIGHT_AT_MOST);
        self.in_flight.push(reservation.record.clone());
        reservation
    }

    /// The eviction of a reservation happened: it stays recorded and is no longer under way.
    pub fn settle(&mut self, reservation: Reservation) {
        self.forget_in_flight(&reservation.record);
    }

    fn forget_in_flight(&mut self, record: &EvictionRecord) {
        if let Some(i) = self.in_flight.iter().position(|r| r == record) {
            self.in_flight.swap_remove(i);
        }
    }

    /// Whether an eviction of a pod of `workload` has been reserved and not yet answered. One
    /// left behind by a request that never came back (a reconcile cancelled mid-way) stops
    /// counting after [`IN_FLIGHT_AT_MOST`], and is then an eviction like any other.
    pub fn eviction_in_flight(&self, workload: &str, now: Timestamp) -> bool {
        self.in_flight
            .iter()
            .any(|r| r.workload.as_deref() == Some(workload) && since(now, r.at) < IN_FLIGHT_AT_MOST)
    }

    /// Takes back a recorded eviction that did not happen.
    pub fn release(&mut self, reservation: Reservation) {
        self.forget_in_flight(&reservation.record);
        self.witnesses.retain(|w| {
            w.at != reservation.record.at || Some(&w.workload) != reservation.record.workload.as_ref()
        });
        if let Some(ledger) = self.policies.get_mut(&reservation.policy)
            && let Some(i) = ledger.recent.iter().rposition(|r| *r == reservation.record)
        {
            let released = ledger.recent.remove(i);
            ledger.released.push(released);
            if ledger.released.len() > MAX_RECORDS {
                ledger.released.remove(0);
            }
        }
    }

    /// When a pod of `workload` was last evicted (by any policy).
    pub fn last_eviction(&self, workload: &str) -> Option<Timestamp> {
        self.all()
            .filter(|r| r.workload.as_deref() == Some(workload))
            .map(|r| r.at)
            .max()
    }

    /// Remembers the pods of the reservation's workload that this process knows (`pods`, their
    /// UIDs) as it evicts one of them: any other pod of the workload came after the eviction,
    /// whatever the clocks say (see [`EvictionLedger::is_replacement`]).
    pub fn witness(&mut self, reservation: &Reservation, mut pods: Vec<String>) {
        let Some(workload) = reservation.record.workload.clone() else {
            return;
        };
        let at = reservation.record.at;
        pods.sort_unstable();
        self.witnesses.retain(|w| since(at, w.at) < KEPT);
        self.witnesses.push(Witness { workload, at, pods });
    }

    /// Whether the pod `uid`, created at `created`, replaces one evicted from `workload` (the
    /// latest eviction of it counts). Where this process made that eviction, a replacement is a
    /// pod of the workload it did not know then: no clock is compared. Otherwise (another
    /// leader's eviction, or this process's before a restart) it is a pod created at or after
    /// the eviction's second: a creation time, from the API server's clock, against the
    /// evicting operator's. Creation times have whole seconds, so a pod created in the second of
    /// the eviction counts (the cautious side: it stops evictions rather than repeats them).
    /// Evictions at or before their policy's resume time do not count: the pods they brought
    /// are what the user looked at before lifting the halt.
    pub fn is_replacement(&self, workload: &str, uid: &str, created: Timestamp) -> bool {
        let Some(evicted) = self
            .policies
            .values()
            .flat_map(|p| {
                p.recent
                    .iter()
                    .filter(move |r| p.resumed_at.is_none_or(|resumed| !lifted_by(r.at, resumed)))
            })
            .filter(|r| r.workload.as_deref() == Some(workload))
            .map(|r| r.at)
            .max()
        else {
            return false;
        };
        match self
            .witnesses
            .iter()
            .find(|w| w.at == evicted && w.workload == workload)
        {
            Some(witness) => witness.pods.binary_search_by(|p| p.as_str().cmp(uid)).is_err(),
            None => created.as_second() >= evicted.as_second(),
        }
    }

    /// Stops evicting a workload for good (its replacements come back unconfined); true when
    /// it was not halted before.
    pub fn halt(&mut self, workload: &str, why: String) -> bool {
        self.halt_for("", workload, workload, why, Timestamp::UNIX_EPOCH)
    }

    /// [`EvictionLedger::halt`] on behalf of `policy`, with the workload's name and a time.
    pub fn halt_for(
        &mut self,
        policy: &str,
        workload: &str,
        name: &str,
        why: String,
        now: Timestamp,
    ) -> bool {
        if self.halted(workload).is_some() {
            return false;
        }
        let ledger = self.policies.entry(policy.to_string()).or_default();
        ledger.halted.push(HaltRecord {
            workload: workload.to_string(),
            name: name.to_string(),
            reason: why,
            since: now,
        });
        if ledger.halted.len() > MAX_RECORDS {
            ledger.halted.remove(0);
        }
        true
    }

    /// Forgets the halts of workloads that no longer exist (`exists` says which do) and returns
    /// the policies whose ledger changed. A deleted workload has no pods to evict, and each
    /// rollout of a Deployment leaves its old ReplicaSet behind: kept, their halts would fill the
    /// policy's status and name dead workloads in its `EvictionsHalted` condition.
    pub fn forget_halts_of_gone_workloads(&mut self, exists: impl Fn(&str) -> bool) -> Vec<String> {
        let mut changed = Vec::new();
        for (policy, ledger) in &mut self.policies {
            let before = ledger.halted.len();
            ledger.halted.retain(|h| exists(&h.workload));
            if ledger.halted.len() != before {
                changed.push(policy.clone());
            }
        }
        changed
    }

    pub fn halted(&self, workload: &str) -> Option<&str> {
        self.policies
            .values()
            .flat_map(|p| p.halted.iter())
            .find(|h| h.workload == workload)
            .map(|h| h.reason.as_str())
    }

    pub fn halted_count(&self) -> usize {
        self.policies.values().map(|p| p.halted.len()).sum()
    }

    /// How many workloads each policy halted.
    pub fn halted_by_policy(&self) -> impl Iterator<Item = (&str, usize)> {
        self.policies
            .iter()
            .map(|(policy, ledger)| (policy.as_str(), ledger.halted.len()))
    }

    pub fn policy(&self, policy: &str) -> Option<&PolicyLedger> {
        self.policies.get(policy)
    }

    /// Adds what a policy's status says (`status.evictions`, as JSON) to the ledger: entries
    /// already known stay once. Unreadable entries are skipped.
    pub fn load(&mut self, policy: &str, status: Option<&serde_json::Value>) {
        let Some(evictions) = status.and_then(|s| s.get("evictions")) else {
            return;
        };
        let time = |v: &serde_json::Value, key: &str| {
            v.get(key)
                .and_then(|t| t.as_str())
                .and_then(|t| crate::lean::LenientTime::parse(t).timestamp())
        };
        let ledger = self.policies.entry(policy.to_string()).or_default();
        for entry in evictions
            .get("recent")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            let Some(at) = time(entry, "at") else { continue };
            let record = EvictionRecord {
                at,
                namespace: entry
                    .get("namespace")
                    .and_then(|n| n.as_str())
                    .unwrap_or_default()
                    .to_string(),
                workload: entry.get("workload").and_then(|w| w.as_str()).map(String::from),
            };
            if !ledger.recent.contains(&record) && !ledger.released.contains(&record) {
                ledger.recent.push(record);
            }
        }
        ledger.recent.sort_by_key(|r| r.at);
        for entry in evictions
            .get("halted")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            let Some(workload) = entry.get("workload").and_then(|w| w.as_str()) else {
                continue;
            };
            if ledger.halted.iter().any(|h| h.workload == workload) {
                continue;
            }
            let since = time(entry, "since").unwrap_or(Timestamp::UNIX_EPOCH);
            // Lifted: the ledger's own write may still show it, or another process wrote it.
            if ledger.resumed_at.is_some_and(|resumed| lifted_by(since, resumed)) {
                continue;
            }
            ledger.halted.push(HaltRecord {
                workload: workload.to_string(),
                name: entry
                    .get("name")
                    .and_then(|n| n.as_str())
                    .unwrap_or(workload)
                    .to_string(),
                reason: entry
                    .get("reason")
                    .and_then(|n| n.as_str())
                    .unwrap_or_default()
                    .to_string(),
                since,
            });
        }
    }

    /// Sets a policy's resume time (its [`RESUME_ANNOTATION`], `None` without one) and returns the
    /// halts it lifts: those recorded at or before it.
    pub fn resume(&mut self, policy: &str, at: Option<Timestamp>) -> Vec<HaltRecord> {
        let ledger = match (self.policies.get_mut(policy), at) {
            (Some(ledger), _) => ledger,
            (None, Some(_)) => self.policies.entry(policy.to_string()).or_default(),
            (None, None) => return Vec::new(),
        };
        ledger.resumed_at = at;
        let Some(at) = at else { return Vec::new() };
        let (lifted, kept) = std::mem::take(&mut ledger.halted)
            .into_iter()
            .partition(|h| lifted_by(h.since, at));
        ledger.halted = kept;
        lifted
    }

    /// A policy's part of the ledger as its status carries it (`status.evictions`), without what
    /// is older than [`KEPT`] at `now`.
    pub fn to_status(&self, policy: &str, now: Timestamp) -> serde_json::Value {
        let Some(ledger) = self.policies.get(policy) else {
            return serde_json::json!({ "recent": [], "halted": [] });
        };
        let recent: Vec<serde_json::Value> = ledger
            .recent
            .iter()
            .filter(|r| since(now, r.at) < KEPT)
            .map(|r| serde_json::json!({ "at": r.at.to_string(), "namespace": r.namespace, "workload": r.workload }))
            .collect();
        let halted: Vec<serde_json::Value> = ledger
            .halted
            .iter()
            .map(|h| serde_json::json!({ "workload": h.workload, "name": h.name, "reason": h.reason, "since": h.since.to_string() }))
            .collect();
        serde_json::json!({ "recent": recent, "halted": halted })
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
        .then(|| ledger.reserve(facts.policy, facts.namespace, facts.owner_uid, now));
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
            WARMING_UP,
            "waiting until every cache has listed once",
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
    // Another reconcile is evicting a pod of the workload right now: whether that eviction
    // happens (a cooldown then) or is refused (a budget; then this pod may go) is known within
    // a request's time, so look again soon rather than wait a cooldown for nothing.
    if facts.owner_uid.is_some_and(|w| ledger.eviction_in_flight(w, now)) {
        return later(
            "EvictionInProgress",
            "another pod of this workload is being evicted now",
            Duration::from_secs(5),
        );
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
    let records = ledger
        .policy(facts.policy)
        .map(|p| p.recent.as_slice())
        .unwrap_or_default();
    let (used, free_in) = window_use(records.iter(), now);
    if used >= limits.max_per_minute as usize {
        return later(
            "RateLimited",
            format!("{} in the last minute (maxPerMinute)", evictions(used)),
            free_in,
        );
    }
    if let Some(max) = limits.max_per_namespace_per_minute {
        let (used, free_in) = window_use(records.iter().filter(|r| r.namespace == facts.namespace), now);
        if used >= max as usize {
            return later(
                "RateLimited",
                format!("{} in {} in the last minute", evictions(used), facts.namespace),
                free_in,
            );
        }
    }
    // Each policy's rate alone lets a cluster with a policy per team evict that many times more.
    if let Some(max) = limits.all_policies_per_minute {
        let (used, free_in) = window_use(ledger.all(), now);
        if used >= max as usize {
            return later(
                "RateLimited",
                format!(
                    "{} in the last minute by all policies (the operator's --max-evictions-per-minute)",
                    evictions(used)
                ),
                free_in,
            );
        }
    }
    // One pod of a workload down at a time, by the operator's hand or anyone's: a replacement
    // that never gets ready (a Localhost profile missing on its node, a bad image) stops the
    // evictions of its workload before they take every pod of it down.
    if facts.workload_down.is_some_and(|down| down > 0) {
        return later(
            "WorkloadUnavailable",
            "another pod of the workload is not ready or is being replaced: evicting waits until every pod of it is ready",
            Duration::from_secs(30),
        );
    }
    EvictionVerdict::Proceed
}
