//! The controller's state, in one place: a table with one entry per pod (its lean form, its
//! stored SeccompStatus, what the policies did to it last), the facts around the pods (nodes,
//! SCCs, namespaces, workload templates, policies) and the eviction ledger. Watch events change it
//! and name the pods a change affects; workers read it to plan a pass and record what they did.
//! No I/O here; the controller keeps it behind one lock.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
};

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::overwrites::Overwrites;
use crate::{
    api::{KubeletSeccompDefault, PolicyAction, ProfileSource, ProfileType},
    engine::{Facts, NodeFacts, NodeOs, PodView, SccDefaults},
    lean::{cluster::PolicyWire, pod::PodWire},
    packed::Packed,
    policy::{
        CompiledPolicy, EvictionLedger, HaltRecord, NodePlacement, OwnerKind, TemplatePlacement,
        plan::Outcome,
    },
    profile::strength::{CatalogEntry, NodeDigest, ProfileCatalog, ProfileIndex},
    status::{RuntimeFinding, StoredStatus},
};

/// A pod: namespace and name. Cheap to clone (shared strings): the work queue holds these.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The controlling owner of a pod.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    pub kind: OwnerKind,
    pub uid: Box<str>,
    /// `<Kind> <name>`, for messages.
    pub display: Box<str>,
}

/// A pod's labels, sorted, in one allocation of exact size (a map's node would hold room for
/// eleven); policies see them as a map only while judging.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Labels(Box<[(Box<str>, Box<str>)]>);

impl Labels {
    pub fn from_map(map: &BTreeMap<String, String>) -> Self {
        Labels(
            map.iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
        )
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// What the controller keeps of a pod (packed, in its [`PodEntry`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeanPod {
    pub uid: Box<str>,
    pub labels: Labels,
    pub owner: Option<Owner>,
    #[serde(with = "crate::packed::timestamp")]
    pub created: Option<Timestamp>,
    pub mirror: bool,
    pub terminating: bool,
    /// Phase Succeeded or Failed.
    pub terminal: bool,
    /// The `Ready` condition is `True`. Not in the fingerprint: readiness alone re-plans nothing;
    /// it is read when an eviction of another pod of the workload is reserved.
    pub ready: bool,
    pub view: PodView,
    /// Changes whenever anything the controller reads changes (not for other status updates).
    pub fingerprint: u64,
}

impl LeanPod {
    /// Reads a pod; `trust_scc`: whether `openshift.io/scc` was written by SCC admission (only
    /// on OpenShift), so it may decide anything.
    pub fn from_wire(pod: &PodWire, trust_scc: bool) -> Option<LeanPod> {
        let meta = &pod.metadata;
        let uid = meta.uid.as_deref().filter(|u| !u.is_empty())?;
        let mut view = PodView::from_wire(pod);
        if !trust_scc {
            view.scc = None;
        }
        let owner = meta.controller().map(|o| Owner {
            kind: OwnerKind::from_kind(&o.api_version, &o.kind),
            uid: o.uid.as_str().into(),
            display: format!("{} {}", o.kind, o.name).into(),
        });
        let terminal = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|phase| phase == "Succeeded" || phase == "Failed");
        let mut lean = LeanPod {
            uid: uid.into(),
            labels: Labels::from_map(&meta.labels),
            owner,
            created: meta.creation_timestamp.and_then(|t| t.timestamp()),
            mirror: meta
                .annotations
                .get(crate::lean::pod::MIRROR_ANNOTATION)
                .is_some(),
            terminating: meta.deletion_timestamp.is_some(),
            terminal,
            ready: pod.status.as_ref().is_some_and(|s| s.ready()),
            view,
            fingerprint: 0,
        };
        let mut hasher = DefaultHasher::new();
        (
            &lean.uid,
            &lean.labels,
            &lean.owner,
            lean.created.map(|t| t.as_second()),
        )
            .hash(&mut hasher);
        (lean.mirror, lean.terminating, lean.terminal, &lean.view).hash(&mut hasher);
        lean.fingerprint = hasher.finish();
        Some(lean)
    }
}

/// One pod's entry: everything the controller keeps about it. The pod and its stored
/// SeccompStatus are held packed ([`crate::packed`]: about a tenth of their size as structs) and
/// read with [`PodEntry::pod`] and [`PodEntry::stored`]; what scans of every pod look at is kept
/// beside them.
#[derive(Clone, Debug, Default)]
pub struct PodEntry {
    /// `None`: its SeccompStatus is known, the pod is not (yet, or any more).
    pod: Option<Packed<LeanPod>>,
    /// The pod's fingerprint, to tell a change without reading the pod.
    pod_fingerprint: u64,
    /// How many pods the watch brought for this entry (wrapping): tells the pod a pass read
    /// from a later one with the same content (see [`State::apply_own_labels`]).
    pod_seen: u16,
    stored: Option<Packed<StoredStatus>>,
    /// What the stored status's node agent found (`None` without a stored status).
    runtime: RuntimeFinding,
    /// What each policy did in the last pass.
    pub outcomes: Box<[Outcome]>,
    /// Effective profile and source per container, from the last pass (for the gauges).
    pub containers: Box<[(ProfileType, ProfileSource)]>,
    /// Failed passes in a row (for the backoff).
    pub failures: u8,
    /// Evictions a PodDisruptionBudget refused in a row (for their backoff).
    pub blocked_in_a_row: u8,
    /// A pass that began with this pod present has ended since the pod arrived, so `outcomes`
    /// are this process's own (the policies' counts are complete once every pod's are).
    recorded: bool,
    /// A write of its SeccompStatus failed without an answer (the connection broke): it may have
    /// been stored all the same, so the next pass reads it back before deciding to write.
    pub write_unconfirmed: bool,
    /// What became of the controller's last write of its SeccompStatus: replaced by another
    /// writer of the same fields, again and again, it is put back less and less often.
    pub overwrites: Overwrites,
}

impl PodEntry {
    pub fn has_pod(&self) -> bool {
        self.pod.is_some()
    }

    /// Which of the pods the watch brought is cached ([`PodEntry::pod_seen`]).
    pub fn pod_seen(&self) -> u16 {
        self.pod_seen
    }

    /// Whether `policy` judged this pod in its latest pass.
    pub fn judged_by(&self, policy: &str) -> bool {
        self.outcomes.iter().any(|o| &*o.policy == policy)
    }

    pub fn pod(&self) -> Option<LeanPod> {
        self.pod.as_ref().map(Packed::unpack)
    }

    pub fn has_stored(&self) -> bool {
        self.stored.is_some()
    }

    pub fn stored(&self) -> Option<StoredStatus> {
        self.stored.as_ref().map(Packed::unpack)
    }

    /// What the node agent found of a pod that exists (a deleted pod's status says nothing now).
    pub fn runtime(&self) -> RuntimeFinding {
        if self.pod.is_some() {
            self.runtime
        } else {
            RuntimeFinding::None
        }
    }

    fn set_stored(&mut self, stored: Option<&StoredStatus>) {
        self.runtime = stored.map_or(RuntimeFinding::None, |s| s.runtime);
        self.stored = stored.map(Packed::pack);
    }
}

/// A policy as the state holds it.
#[derive(Clone, Debug)]
pub struct PolicyEntry {
    pub uid: Option<String>,
    pub generation: Option<i64>,
    pub resource_version: Option<u64>,
    pub compiled: Result<Arc<CompiledPolicy>, String>,
    /// The status as read, for cumulative counters, conditions and the eviction ledger.
    pub status: Option<serde_json::Value>,
    /// The time its halts are lifted (its resume annotation), or why the annotation is ignored.
    pub resume: Result<Option<Timestamp>, String>,
}

impl PolicyEntry {
    /// The policy as read at `now` (a resume time ahead of the clock is refused).
    pub fn from_wire(policy: &PolicyWire, now: Timestamp) -> Self {
        let name = policy.metadata.name();
        PolicyEntry {
            resume: crate::policy::resume_time(
                policy.metadata.annotations.get(crate::policy::RESUME_ANNOTATION),
                now,
            ),
            uid: policy.metadata.uid.clone(),
            generation: policy.metadata.generation,
            resource_version: policy.metadata.resource_version_number(),
            compiled: crate::policy::compile(name, policy.metadata.generation, &policy.spec)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
            status: policy.status.clone(),
        }
    }

    /// The resume time its annotation gives, if it gives a valid one.
    pub fn resume_at(&self) -> Option<Timestamp> {
        self.resume.as_ref().ok().copied().flatten()
    }

    /// A policy changes when its spec does (a new generation) or it is replaced (a new UID).
    fn same_spec(&self, other: &PolicyEntry) -> bool {
        self.uid == other.uid && self.generation == other.generation
    }
}

/// What a policy's actions came to since this process started (the status adds them to the
/// cumulative counts it held when first seen).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyCounters {
    pub evicted: u32,
    pub blocked: u32,
}

fn policy_bases_of(status: Option<&serde_json::Value>) -> PolicyCounters {
    let counter = |field: &str| {
        status
            .and_then(|s| s.get(field))
            .and_then(|v| v.as_u64())
            .map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX))
    };
    PolicyCounters {
        evicted: counter("evictedPods"),
        blocked: counter("blockedEvictions"),
    }
}

/// A node as the controller knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownNode {
    /// What the engine reads of the node its pods run on.
    pub facts: NodeFacts,
    /// Whether new pods may start there.
    pub placement: NodePlacement,
}

impl KnownNode {
    /// What decides whether a replacement pod started there is confined by default.
    fn where_pods_start(&self) -> (&NodePlacement, NodeOs, KubeletSeccompDefault) {
        (&self.placement, self.facts.os, self.facts.seccomp_default)
    }
}

/// A workload's pod template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadEntry {
    pub template: PodView,
    /// Where its pods may start.
    pub placement: TemplatePlacement,
    /// A StatefulSet's rollout of its template (`None` for other workloads).
    pub rollout: Option<crate::policy::StatefulRollout>,
    /// The pods it wants (`spec.replicas`). A change of it alone plans nothing again: it is read
    /// when an eviction of one of its pods is reserved.
    pub replicas: i32,
    /// Its selector reads the operator's own pod labels, which are then left alone on its pods.
    pub selects_outcome_labels: bool,
}

impl WorkloadEntry {
    /// What the plans of its pods read: the template and the rollout.
    fn plans_alike(&self, other: &WorkloadEntry) -> bool {
        self.template == other.template
            && self.rollout == other.rollout
            && self.placement == other.placement
            && self.selects_outcome_labels == other.selects_outcome_labels
    }
}

/// A namespace, as the pods' passes read it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct KnownNamespace {
    pub labels: BTreeMap<String, String>,
    /// Being deleted (its `deletionTimestamp`). The API server creates nothing more in it, so a
    /// pod there whose status is gone gets none: before ordered namespace deletion (on by
    /// default from Kubernetes 1.33) the namespace controller deletes statuses and pods together,
    /// and pods often outlive their statuses by their grace period.
    pub terminating: bool,
}

/// The labels of a namespace not (yet) seen.
static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// See the module documentation.
#[derive(Default)]
pub struct State {
    /// Boxed: the table's empty slots then cost a pointer, not a whole entry.
    pub pods: HashMap<PodKey, Box<PodEntry>>,
    namespaces: HashSet<Arc<str>>,
    /// Pod entries dropped since the interned names were last pruned.
    dropped_since_prune: usize,
    known_namespaces: HashMap<Arc<str>, KnownNamespace>,
    pub nodes: HashMap<String, KnownNode>,
    /// Deleted Nodes whose facts are kept while pods still run on them, with how many do: a Node
    /// object deleted before its pods (a reclaimed instance; the pod garbage collector deletes
    /// them a minute later) turned its kubelet's known `seccompDefault` into the configured
    /// guess, and its pods' statuses (and labels) were rewritten with it just before they went.
    gone_nodes: HashMap<String, usize>,
    scc_lists: HashMap<String, Vec<String>>,
    pub sccs: SccDefaults,
    pub policies: BTreeMap<String, PolicyEntry>,
    /// Valid policies in name order (rebuilt when policies change).
    pub valid_policies: Vec<Arc<CompiledPolicy>>,
    /// By workload UID.
    pub workloads: HashMap<Box<str>, WorkloadEntry>,
    pub ledger: EvictionLedger,
    /// Policies whose ledger changed without being written (a reservation taken back, halts
    /// lifted).
    pub ledger_dirty: HashSet<String>,
    /// Halts a policy's resume annotation lifted, to announce (taken by the status tick).
    pub resumed: Vec<(String, Vec<HaltRecord>)>,
    /// Evictions and blocked evictions per policy since this process started.
    pub policy_counters: HashMap<String, PolicyCounters>,
    /// The cumulative counters each policy's status held when first seen.
    pub policy_bases: HashMap<String, PolicyCounters>,
    /// SeccompProfile objects (Security Profiles Operator), by `localhostProfile`.
    pub catalog: ProfileCatalog,
    /// The profile digests the node agents reported.
    pub profile_index: ProfileIndex,
    /// Profile paths whose nodes started to disagree, or found another content, to announce
    /// (taken by the status tick): one entry per path, its latest nodes and digests.
    pub drift_found: Vec<(String, Vec<NodeDigest>)>,
    /// The contents (digests) of each drifting path when it was last announced: another node with
    /// one of them is no news.
    drift_announced: HashMap<String, BTreeSet<String>>,
    /// Profile paths whose strength facts changed (drift, catalog): their pods are dirty.
    drift_changed: Vec<String>,
    /// See [`State::outcomes_complete`].
    outcomes_whole: bool,
    /// Every watch has listed once: the caches are whole, so policy actions may run (the
    /// warm-up is over). A pass decides from the caches alone, never from another pod's pass,
    /// so waiting for every pod to have had a pass would add nothing but a second write for each
    /// pod whose action waited.
    pub listed: bool,
}

/// Below this many interned names, pruning waits for half this many drops (a small set is not
/// worth scanning after every drop).
const MIN_NAMES_TO_PRUNE: usize = 64;

/// A watch event at resourceVersion `event` is older than the status held (the controller wrote
/// or saw a newer one since): it changes nothing.
fn older_than_held(event: Option<u64>, held: Option<&StoredStatus>) -> bool {
    matches!((event, held.and_then(|s| s.resource_version)), (Some(event), Some(held)) if event < held)
}

impl State {
    /// The UIDs of the cached pods in `namespace` whose controlling owner is `workload`.
    pub fn pods_of_workload(&self, namespace: &str, workload: &str) -> Vec<String> {
        self.pods
            .iter()
            .filter(|(key, _)| &*key.namespace == namespace)
            .filter_map(|(_, entry)| entry.pod())
            .filter(|pod| pod.owner.as_ref().is_some_and(|o| &*o.uid == workload))
            .map(|pod| pod.uid.into())
            .collect()
    }

    /// How many pods of the workload `workload` (a UID) other than `except` (a pod UID) are down:
    /// not ready, being deleted, or not there (fewer live pods than its `replicas`: a StatefulSet
    /// makes a pod's replacement only once the pod is gone). Finished pods do not count (their
    /// workload has replaced them).
    pub fn unavailable_of_workload(&self, namespace: &str, workload: &str, except: &str) -> usize {
        let (mut live, mut down) = (0usize, 0usize);
        let pods = self
            .pods
            .iter()
            .filter(|(key, _)| &*key.namespace == namespace)
            .filter_map(|(_, entry)| entry.pod())
            .filter(|pod| pod.owner.as_ref().is_some_and(|o| &*o.uid == workload) && !pod.terminal);
        for pod in pods {
            if !pod.terminating {
                live += 1;
            }
            if &*pod.uid != except && (pod.terminating || !pod.ready) {
                down += 1;
            }
        }
        let wanted = self
            .workloads
            .get(workload)
            .map_or(0, |w| usize::try_from(w.replicas).unwrap_or_default());
        down.max(wanted.saturating_sub(live))
    }

    /// The shared copy of a namespace name.
    pub fn intern(&mut self, namespace: &str) -> Arc<str> {
        if let Some(existing) = self.namespaces.get(namespace) {
            return existing.clone();
        }
        let shared: Arc<str> = namespace.into();
        self.namespaces.insert(shared.clone());
        shared
    }

    pub fn key(&mut self, namespace: &str, name: &str) -> PodKey {
        PodKey {
            namespace: self.intern(namespace),
            name: name.into(),
        }
    }

    fn entry(&mut self, key: &PodKey) -> &mut PodEntry {
        self.pods.entry(key.clone()).or_default()
    }

    fn drop_if_empty(&mut self, key: &PodKey) {
        if self
            .pods
            .get(key)
            .is_some_and(|e| !e.has_pod() && !e.has_stored())
        {
            self.pods.remove(key);
            self.dropped_since_prune += 1;
            // Namespaces come and go (one per CI run, per preview environment): a name nothing
            // else holds is let go. Each drop leaves at most one dead name, so pruning once the
            // drops reach half the names keeps the set under twice the live names, at a constant
            // cost per dropped pod.
            if 2 * self.dropped_since_prune >= self.namespaces.len().max(MIN_NAMES_TO_PRUNE) {
                self.prune_namespaces();
            }
        }
    }

    /// Lets go of the interned namespace names that only the set still holds.
    fn prune_namespaces(&mut self) {
        self.namespaces.retain(|name| Arc::strong_count(name) > 1);
        self.namespaces.shrink_to_fit();
        self.dropped_since_prune = 0;
    }

    /// A pod added or changed; returns whether it must be planned again.
    pub fn apply_pod(&mut self, key: &PodKey, pod: LeanPod) -> bool {
        let entry = self.entry(key);
        let arrived = entry.pod.is_none();
        let changed = arrived || entry.pod_fingerprint != pod.fingerprint;
        if arrived {
            // A pass that ran before the pod arrived (for its stored status) did not see it.
            entry.recorded = false;
        }
        entry.pod_fingerprint = pod.fingerprint;
        entry.pod_seen = entry.pod_seen.wrapping_add(1);
        entry.pod = Some(Packed::pack(&pod));
        if arrived && !self.gone_nodes.is_empty() {
            self.count_on_gone_node(pod.view.node_name.as_deref(), true);
        }
        changed
    }

    /// After the operator wrote its labels on a pod (`written`: its two keys as they now are),
    /// the cached pod carries them at once, unless the watch has brought another pod since the
    /// pass read the one it saw as `seen` ([`PodEntry::pod_seen`]). Until the watch brings the
    /// labelled pod, another pass (a re-plan of every pod, a requeue) read the labels from before
    /// the write and wrote them again. The fingerprint stays the read pod's: the labelled pod,
    /// when it comes, is planned again as before. Not the fingerprint to tell the read pod: the
    /// labelled pod and then one with the labels taken off again (by someone else, before this
    /// ran) has the read pod's fingerprint, and the cache then said "labelled" of a pod without
    /// labels, for good.
    pub fn apply_own_labels(&mut self, key: &PodKey, seen: u16, written: &BTreeMap<String, String>) {
        let Some(entry) = self.pods.get_mut(key) else {
            return;
        };
        if entry.pod_seen != seen {
            return;
        }
        let Some(mut pod) = entry.pod() else {
            return;
        };
        let mut labels = pod.labels.to_map();
        for own in crate::api::OUTCOME_LABELS {
            labels.remove(own);
        }
        labels.extend(written.iter().map(|(k, v)| (k.clone(), v.clone())));
        pod.labels = Labels::from_map(&labels);
        entry.pod = Some(Packed::pack(&pod));
    }

    pub fn delete_pod(&mut self, key: &PodKey) {
        if !self.gone_nodes.is_empty() {
            let node = self
                .pods
                .get(key)
                .and_then(|e| e.pod())
                .and_then(|p| p.view.node_name);
            self.count_on_gone_node(node.as_deref(), false);
        }
        if let Some(entry) = self.pods.get_mut(key) {
            entry.pod = None;
            entry.outcomes = Box::default();
            entry.containers = Box::default();
        }
        self.drop_if_empty(key);
    }

    /// After a relist of pods: those not listed are gone. Returns every pod (all are planned
    /// again: a full in-memory comparison, which writes only what differs).
    pub fn pods_relisted(&mut self, listed: &HashSet<PodKey>) -> Vec<PodKey> {
        self.drop_unlisted_pods(listed);
        self.pods
            .iter()
            .filter(|(_, e)| e.has_pod())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// After a list of pods: those not listed are gone, and every pod's failures start again.
    pub fn drop_unlisted_pods(&mut self, listed: &HashSet<PodKey>) {
        let gone: Vec<PodKey> = self
            .pods
            .iter()
            .filter(|(k, e)| e.has_pod() && !listed.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &gone {
            self.delete_pod(key);
        }
        for entry in self.pods.values_mut() {
            entry.failures = 0;
        }
    }

    /// A SeccompStatus seen (or written); returns whether its pod must be planned again. A stale
    /// event (older than the record) is ignored.
    pub fn apply_status(&mut self, key: &PodKey, stored: StoredStatus) -> bool {
        self.put_status(key, stored, None).0
    }

    /// A SeccompStatus from the watch, at `now` on the controller's clock: as
    /// [`State::apply_status`], and also how many times in a row someone else has replaced
    /// the controller's write of it ([`Overwrites::replaced`], 0 when this is not one).
    pub fn apply_watched_status(&mut self, key: &PodKey, stored: StoredStatus, now: u32) -> (bool, u8) {
        self.put_status(key, stored, Some(now))
    }

    fn put_status(&mut self, key: &PodKey, stored: StoredStatus, now: Option<u32>) -> (bool, u8) {
        let entry = self.entry(key);
        let previous = entry.stored();
        if older_than_held(stored.resource_version, previous.as_ref()) || previous.as_ref() == Some(&stored) {
            return (false, 0);
        }
        let overwrites = now.map_or(0, |now| {
            entry
                .overwrites
                .replaced(previous.as_ref().map(|p| p.fingerprint), stored.fingerprint, now)
        });
        entry.set_stored(Some(&stored));
        let planned = entry.has_pod();
        self.index_profiles(previous.as_ref(), Some(&stored));
        (planned, overwrites)
    }

    /// A pod that has had no pass in this process takes the outcomes its stored status records,
    /// so that its first pass announces and counts only what changed since (not every label and
    /// blocked eviction again after each restart).
    pub fn seed_outcomes(&mut self, key: &PodKey, stored: impl FnOnce() -> Vec<Outcome>) {
        let entry = self.entry(key);
        if !entry.recorded && entry.outcomes.is_empty() {
            entry.outcomes = stored().into_boxed_slice();
        }
    }

    /// The pod's SeccompStatus was deleted (at resourceVersion `version`). A deletion older than
    /// the status held (an earlier object's, the controller wrote this one since) changes nothing.
    pub fn delete_status(&mut self, key: &PodKey, version: Option<u64>) -> bool {
        let (had_pod, previous) = match self.pods.get_mut(key) {
            Some(entry) => {
                let previous = entry.stored();
                if older_than_held(version, previous.as_ref()) {
                    return false;
                }
                entry.set_stored(None);
                (previous.is_some() && entry.has_pod(), previous)
            }
            None => (false, None),
        };
        self.index_profiles(previous.as_ref(), None);
        self.drop_if_empty(key);
        had_pod
    }

    /// Moves a pod's profile reports in the index from `previous` to `current`; paths whose nodes
    /// now disagree (or agree again) make their pods dirty (`drift_changed`).
    fn index_profiles(&mut self, previous: Option<&StoredStatus>, current: Option<&StoredStatus>) {
        let reports = |s: Option<&StoredStatus>| {
            s.and_then(|s| Some((s.profile_node.clone()?, s.profile_files.clone())))
        };
        let (before, after) = (reports(previous), reports(current));
        if before == after {
            return;
        }
        let mut changed = Vec::new();
        if let Some((node, files)) = &before {
            changed.extend(self.profile_index.update(node, files, false));
        }
        if let Some((node, files)) = &after {
            changed.extend(self.profile_index.update(node, files, true));
        }
        changed.sort();
        changed.dedup();
        for path in changed {
            match self.profile_index.drift(&path) {
                Some(drift) => {
                    let contents: BTreeSet<String> = drift.iter().map(|(_, sha)| sha.clone()).collect();
                    if let Some(pending) = self.drift_found.iter_mut().find(|(p, _)| *p == path) {
                        // Not announced yet: announce the latest picture once.
                        pending.1 = drift;
                        self.drift_announced.insert(path.clone(), contents);
                    } else if self.drift_announced.get(&path) != Some(&contents) {
                        self.drift_found.push((path.clone(), drift));
                        self.drift_announced.insert(path.clone(), contents);
                    }
                }
                // The nodes agree again: nothing to announce, and a later disagreement is news.
                None => {
                    self.drift_found.retain(|(p, _)| *p != path);
                    self.drift_announced.remove(&path);
                }
            }
            if !self.drift_changed.contains(&path) {
                self.drift_changed.push(path);
            }
        }
    }

    /// The pods that use a profile path whose drift or catalog entry changed since the last call.
    pub fn take_profile_changes(&mut self) -> Vec<PodKey> {
        let paths = std::mem::take(&mut self.drift_changed);
        if paths.is_empty() {
            return Vec::new();
        }
        self.pods_where(|_, pod| paths.iter().any(|p| pod.view.uses_localhost(p)))
    }

    /// A SeccompProfile seen or gone; its pods are planned again.
    pub fn apply_catalog(&mut self, path: &str, entry: Option<CatalogEntry>) {
        let changed = match entry {
            Some(entry) => self.catalog.insert(path.to_string(), entry.clone()).as_ref() != Some(&entry),
            None => self.catalog.remove(path).is_some(),
        };
        if changed && !self.drift_changed.iter().any(|p| p == path) {
            self.drift_changed.push(path.to_string());
        }
    }

    /// Pods whose SeccompStatus is not known to be stored, their failures forgotten: the
    /// SeccompStatus CRD is back, and their next pass is not a retry.
    pub fn pods_without_status_afresh(&mut self) -> Vec<PodKey> {
        self.pods
            .iter_mut()
            .filter(|(_, entry)| !entry.has_stored())
            .map(|(key, entry)| {
                entry.failures = 0;
                key.clone()
            })
            .collect()
    }

    /// After a relist of SeccompStatuses: the records not listed are gone. Returns the pods whose
    /// record went. `newest_listed` is the highest resourceVersion the list held: a record at or
    /// below it was deleted before the list was taken, but one above it (the controller's own
    /// write, answered while the list was on its way) may be newer than the list rather than
    /// deleted, so its pod reads it back before it writes (`write_unconfirmed`): a second write
    /// would carry new transition times.
    pub fn statuses_relisted(&mut self, listed: &HashSet<PodKey>, newest_listed: u64) -> Vec<PodKey> {
        let mut gone = Vec::new();
        for (key, entry) in &mut self.pods {
            if entry.has_stored() && !listed.contains(key) {
                let version = entry.stored().and_then(|s| s.resource_version);
                entry.write_unconfirmed |= version.is_none_or(|v| v > newest_listed);
                gone.push(key.clone());
            }
        }
        gone.into_iter().filter(|k| self.delete_status(k, None)).collect()
    }

    /// A pod's pass ended, its outcomes recorded (or it failed: one failing pod must not hold
    /// every policy's counts back). Only for a pass that began with the pod present.
    pub fn mark_recorded(&mut self, key: &PodKey) {
        if let Some(entry) = self.pods.get_mut(key) {
            entry.recorded = true;
        }
    }

    /// Every pod listed at start has had a pass: counts taken from the outcomes are the whole
    /// truth, not a part of it (after a restart, the stored policy counts are until then). Once
    /// true it stays true: afterwards some pod is always mid-pass in a busy cluster, and holding
    /// the counts back for that would hold them back for good. (Until then each call scans the
    /// pods: during start-up only, from the policy status tick and the first sync's watch pause.)
    pub fn outcomes_complete(&mut self) -> bool {
        if !self.outcomes_whole && self.listed && self.pods.values().all(|e| e.recorded || !e.has_pod()) {
            self.outcomes_whole = true;
        }
        self.outcomes_whole
    }

    /// Pods without a stored SeccompStatus, and stored SeccompStatuses.
    pub fn statuses_to_write(&self) -> (usize, usize) {
        self.pods.values().fold((0, 0), |(missing, stored), e| {
            (
                missing + usize::from(e.has_pod() && !e.has_stored()),
                stored + usize::from(e.has_stored()),
            )
        })
    }

    /// Pods for which `affected` holds (each pod read back from its packed form).
    pub fn pods_where(&self, affected: impl Fn(&PodKey, &LeanPod) -> bool) -> Vec<PodKey> {
        self.pods
            .iter()
            .filter_map(|(k, e)| e.pod().filter(|p| affected(k, p)).map(|_| k.clone()))
            .collect()
    }

    /// A node's facts (None: the Node is deleted); returns the pods on it when they changed, and
    /// when where new pods may start changed, the pods whose eviction that decides (see
    /// [`State::replacement_node_without_seccomp_default`]). A deleted Node's facts stay while
    /// pods run on it (see `gone_nodes`), but no new pod starts there.
    pub fn apply_node(&mut self, name: &str, node: Option<KnownNode>) -> Vec<PodKey> {
        let Some(node) = node else {
            if !self.nodes.contains_key(name) {
                return Vec::new();
            }
            let on_node = self
                .pods_where(|_, p| p.view.node_name.as_deref() == Some(name))
                .len();
            if on_node > 0 {
                self.gone_nodes.insert(name.to_string(), on_node);
            } else {
                self.forget_node(name);
            }
            // Its pods keep their facts; evictions elsewhere may depend on it.
            return self.pods_planned_on_placement();
        };
        // A node kept only for its pods was no place for new ones.
        let was_gone = self.gone_nodes.remove(name).is_some();
        let (changed, placement_changed) = match self.nodes.get(name) {
            Some(old) => (
                *old != node,
                was_gone || old.where_pods_start() != node.where_pods_start(),
            ),
            None => (true, true),
        };
        self.nodes.insert(name.to_string(), node);
        let mut pods = if changed {
            self.pods_where(|_, p| p.view.node_name.as_deref() == Some(name))
        } else {
            Vec::new()
        };
        if placement_changed {
            pods.extend(self.pods_planned_on_placement());
            pods.sort_unstable();
            pods.dedup();
        }
        pods
    }

    /// Pods whose last pass decided an eviction from where a replacement may start: skipped, or
    /// evicted in a dry run. (Pods waiting for an eviction are planned again anyway.)
    fn pods_planned_on_placement(&self) -> Vec<PodKey> {
        self.pods
            .iter()
            .filter(|(_, e)| {
                e.has_pod()
                    && e.outcomes
                        .iter()
                        .any(|o| matches!(o.action, PolicyAction::EvictionSkipped | PolicyAction::WouldEvict))
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The first node (by name) where a new pod of a workload with `template` may start and whose
    /// kubelet does not confine pods that ask for nothing. Deleted nodes whose pods still run are
    /// not such places.
    pub fn replacement_node_without_seccomp_default(
        &self,
        template: &TemplatePlacement,
    ) -> Option<(&str, &NodeFacts)> {
        crate::policy::node_without_seccomp_default(
            self.nodes
                .iter()
                .filter(|(name, _)| !self.gone_nodes.contains_key(*name))
                .map(|(name, node)| (name.as_str(), &node.facts, &node.placement)),
            template,
        )
    }

    fn forget_node(&mut self, name: &str) {
        self.nodes.remove(name);
        self.gone_nodes.remove(name);
    }

    /// A pod arrived on, or left, a deleted Node whose facts are kept: at the last pod's going,
    /// they go too.
    fn count_on_gone_node(&mut self, node: Option<&str>, arrived: bool) {
        let Some(node) = node else { return };
        let Some(count) = self.gone_nodes.get_mut(node) else {
            return;
        };
        if arrived {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.forget_node(node);
            }
        }
    }

    pub fn nodes_relisted(&mut self, listed: &HashSet<String>) -> Vec<PodKey> {
        let gone: Vec<String> = self
            .nodes
            .keys()
            .filter(|n| !listed.contains(*n) && !self.gone_nodes.contains_key(*n))
            .cloned()
            .collect();
        gone.iter().flat_map(|n| self.apply_node(n, None)).collect()
    }

    /// An SCC's `seccompProfiles` (None: deleted); returns the pods it admitted when it changed.
    pub fn apply_scc(&mut self, name: &str, profiles: Option<Vec<String>>) -> Vec<PodKey> {
        let changed = match profiles {
            Some(list) => self.scc_lists.insert(name.to_string(), list.clone()) != Some(list),
            None => self.scc_lists.remove(name).is_some(),
        };
        if !changed {
            return Vec::new();
        }
        let mut sccs = SccDefaults::default();
        for (scc, list) in &self.scc_lists {
            sccs.insert(scc, list);
        }
        self.sccs = sccs;
        self.pods_where(|_, p| p.view.scc.as_deref() == Some(name))
    }

    pub fn sccs_relisted(&mut self, listed: &HashSet<String>) -> Vec<PodKey> {
        let gone: Vec<String> = self
            .scc_lists
            .keys()
            .filter(|n| !listed.contains(*n))
            .cloned()
            .collect();
        gone.iter().flat_map(|n| self.apply_scc(n, None)).collect()
    }

    /// A namespace's labels (empty for one not seen).
    pub fn namespace_labels(&self, name: &str) -> &BTreeMap<String, String> {
        self.known_namespaces.get(name).map_or(&NO_LABELS, |n| &n.labels)
    }

    /// Whether a namespace is being deleted.
    pub fn namespace_terminating(&self, name: &str) -> bool {
        self.known_namespaces.get(name).is_some_and(|n| n.terminating)
    }

    /// A namespace added, changed or deleted (None); returns its pods when its labels changed and
    /// some policy selects by namespace labels (its deletion changes no plan, only whether a
    /// status can still be created there).
    pub fn apply_namespace(&mut self, name: &str, namespace: Option<KnownNamespace>) -> Vec<PodKey> {
        let changed = match namespace {
            Some(namespace) => {
                let changed = self
                    .known_namespaces
                    .get(name)
                    .is_none_or(|known| known.labels != namespace.labels);
                let key = self.intern(name);
                self.known_namespaces.insert(key, namespace);
                changed
            }
            None => self.known_namespaces.remove(name).is_some(),
        };
        if !changed || !self.valid_policies.iter().any(|p| p.uses_namespace_labels) {
            return Vec::new();
        }
        self.pods
            .iter()
            .filter(|(k, e)| e.has_pod() && &*k.namespace == name)
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn namespaces_relisted(&mut self, listed: &HashSet<String>) -> Vec<PodKey> {
        let gone: Vec<String> = self
            .known_namespaces
            .keys()
            .filter(|n| !listed.contains(&***n))
            .map(|n| n.to_string())
            .collect();
        gone.iter().flat_map(|n| self.apply_namespace(n, None)).collect()
    }

    /// A workload's template and rollout (None: deleted); returns its pods when it changed.
    pub fn apply_workload(&mut self, uid: &str, workload: Option<WorkloadEntry>) -> Vec<PodKey> {
        let changed = match workload {
            Some(entry) => self
                .workloads
                .insert(uid.into(), entry.clone())
                .is_none_or(|old| !old.plans_alike(&entry)),
            None => self.workloads.remove(uid).is_some(),
        };
        if !changed {
            return Vec::new();
        }
        self.pods_where(|_, p| p.owner.as_ref().is_some_and(|o| &*o.uid == uid))
    }

    /// A policy (None: deleted); returns the pods it judged before or may select now.
    pub fn apply_policy(&mut self, name: &str, entry: Option<PolicyEntry>) -> Vec<PodKey> {
        let spec_changed = match &entry {
            Some(new) => self.policies.get(name).is_none_or(|old| !old.same_spec(new)),
            None => self.policies.contains_key(name),
        };
        match entry {
            Some(entry) => {
                let replaced = self.policies.get(name).is_some_and(|old| old.uid != entry.uid);
                if replaced {
                    self.policy_counters.remove(name);
                    self.policy_bases.remove(name);
                }
                self.policy_bases
                    .entry(name.to_string())
                    .or_insert_with(|| policy_bases_of(entry.status.as_ref()));
                self.policies.insert(name.to_string(), entry);
            }
            None => {
                self.policies.remove(name);
                self.policy_counters.remove(name);
                self.policy_bases.remove(name);
            }
        }
        self.valid_policies = self
            .policies
            .values()
            .filter_map(|e| e.compiled.as_ref().ok().cloned())
            .collect();
        if !spec_changed {
            return Vec::new();
        }
        let now_selecting: Vec<Arc<CompiledPolicy>> = self
            .valid_policies
            .iter()
            .filter(|p| p.name == name)
            .cloned()
            .collect();
        self.pods
            .iter()
            .filter(|(key, entry)| {
                if !entry.has_pod() {
                    return false;
                }
                if entry.judged_by(name) {
                    return true;
                }
                let Some(pod) = entry.pod() else { return false };
                let labels = pod.labels.to_map();
                now_selecting.iter().any(|p| {
                    p.selects(&crate::policy::Subject {
                        namespace: &key.namespace,
                        labels: &labels,
                        namespace_labels: self.namespace_labels(&key.namespace),
                        scc: pod.view.scc.as_deref(),
                    })
                })
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The pods a policy judged in their latest pass.
    pub fn judged_by(&self, policy: &str) -> Vec<PodKey> {
        self.pods
            .iter()
            .filter(|(_, entry)| entry.has_pod() && entry.judged_by(policy))
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn policies_relisted(&mut self, listed: &HashSet<String>) -> Vec<PodKey> {
        let gone: Vec<String> = self
            .policies
            .keys()
            .filter(|n| !listed.contains(*n))
            .cloned()
            .collect();
        gone.iter().flat_map(|n| self.apply_policy(n, None)).collect()
    }

    /// The facts the engine needs for a pod on `node`.
    pub fn facts(
        &self,
        node: Option<&str>,
        unknown_node_seccomp_default: KubeletSeccompDefault,
    ) -> Facts<'_> {
        Facts {
            node: node.and_then(|n| self.nodes.get(n)).map(|n| &n.facts),
            unknown_node_seccomp_default,
            sccs: &self.sccs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::StoredStatus;

    fn pod(uid: &str, node: &str) -> LeanPod {
        let wire: PodWire = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "p", "namespace": "n", "uid": uid },
            "spec": { "nodeName": node, "containers": [{ "name": "app" }] }
        }))
        .expect("pod");
        LeanPod::from_wire(&wire, true).expect("lean")
    }

    fn stored(rv: u64) -> StoredStatus {
        StoredStatus {
            owner_uid: Some("u".into()),
            named_pod: None,
            profile_label: None,
            fingerprint: rv,
            conditions: Vec::new(),
            runtime: RuntimeFinding::None,
            resource_version: Some(rv),
            profile_files: Box::default(),
            profile_node: None,
        }
    }

    #[test]
    fn the_labels_the_operator_wrote_are_read_before_the_watch_brings_them() {
        use crate::api::{PROFILE_LABEL, VIOLATION_LABEL};
        let mut state = State::default();
        let key = state.key("n", "p");
        let mut read = pod("u1", "node-a");
        read.labels = Labels::from_map(&BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            (VIOLATION_LABEL.to_string(), "true".to_string()),
        ]));
        state.apply_pod(&key, read.clone());
        let seen = state.pods[&key].pod_seen();
        let written = BTreeMap::from([(PROFILE_LABEL.to_string(), "RuntimeDefault".to_string())]);
        state.apply_own_labels(&key, seen, &written);
        let labels = state.pods[&key]
            .pod()
            .map(|p| p.labels.to_map())
            .unwrap_or_default();
        assert_eq!(
            labels,
            BTreeMap::from([
                ("app".to_string(), "web".to_string()),
                (PROFILE_LABEL.to_string(), "RuntimeDefault".to_string()),
            ]),
            "the violation label the write took away is gone, the pod's own label stays"
        );
        // The labelled pod from the watch is still a change (planned again, as before).
        let labelled = LeanPod::from_wire(
            &serde_json::from_value(serde_json::json!({
                "metadata": { "name": "p", "namespace": "n", "uid": "u1", "labels": labels },
                "spec": { "nodeName": "node-a", "containers": [{ "name": "app" }] }
            }))
            .expect("pod"),
            true,
        )
        .expect("lean");
        assert!(state.apply_pod(&key, labelled.clone()));
        // A newer pod came meanwhile (someone else's change): it is kept as the watch brought it.
        state.apply_own_labels(&key, seen, &BTreeMap::new());
        assert_eq!(state.pods[&key].pod().map(|p| p.labels), Some(labelled.labels));
    }

    #[test]
    fn labels_taken_off_again_before_the_write_is_recorded_stay_off() {
        use crate::api::VIOLATION_LABEL;
        let with_labels = |labels: &BTreeMap<String, String>| {
            let wire: PodWire = serde_json::from_value(serde_json::json!({
                "metadata": { "name": "p", "namespace": "n", "uid": "u1", "labels": labels },
                "spec": { "nodeName": "node-a", "containers": [{ "name": "app" }] }
            }))
            .expect("pod");
            LeanPod::from_wire(&wire, true).expect("lean")
        };
        let mut state = State::default();
        let key = state.key("n", "p");
        let read = with_labels(&BTreeMap::new());
        state.apply_pod(&key, read.clone());
        let seen = state.pods[&key].pod_seen();
        let written = BTreeMap::from([(VIOLATION_LABEL.to_string(), "true".to_string())]);
        // The watch brings the labelled pod, then the pod with the label taken off by someone
        // else (another operator, a person): the same content as the pod the pass read.
        assert!(state.apply_pod(&key, with_labels(&written)));
        assert!(state.apply_pod(&key, read.clone()));
        state.apply_own_labels(&key, seen, &written);
        assert_eq!(
            state.pods[&key].pod().map(|p| p.labels.to_map()),
            Some(BTreeMap::new()),
            "the cache says what the pod has, so the next pass labels it again"
        );
    }

    /// A pod of workload `w1`: its readiness, and whether it is being deleted or finished.
    fn workload_pod(uid: &str, ready: bool, deleting: bool, phase: &str) -> LeanPod {
        let mut metadata = serde_json::json!({ "name": uid, "namespace": "n", "uid": uid,
            "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db",
                                  "uid": "w1", "controller": true }] });
        if deleting {
            metadata["deletionTimestamp"] = "2026-12-05T00:00:00Z".into();
        }
        let wire: PodWire = serde_json::from_value(serde_json::json!({
            "metadata": metadata,
            "spec": { "containers": [{ "name": "app" }] },
            "status": { "phase": phase, "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }] }
        }))
        .expect("pod");
        LeanPod::from_wire(&wire, true).expect("lean")
    }

    fn put(state: &mut State, name: &str, pod: Option<LeanPod>) {
        let key = state.key("n", name);
        match pod {
            Some(pod) => {
                state.apply_pod(&key, pod);
            }
            None => state.delete_pod(&key),
        }
    }

    #[test]
    fn a_workload_is_down_while_a_pod_other_than_the_candidate_is_unready_deleted_or_missing() {
        let mut state = State::default();
        let workload = |replicas| WorkloadEntry {
            template: PodView::default(),
            placement: TemplatePlacement::default(),
            rollout: None,
            replicas,
            selects_outcome_labels: false,
        };
        state.apply_workload("w1", Some(workload(3)));
        put(
            &mut state,
            "db-0",
            Some(workload_pod("u0", true, false, "Running")),
        );
        put(
            &mut state,
            "db-1",
            Some(workload_pod("u1", true, false, "Running")),
        );
        put(
            &mut state,
            "db-2",
            Some(workload_pod("u2", false, false, "Running")),
        );
        // The candidate's own readiness does not count.
        assert_eq!(state.unavailable_of_workload("n", "w1", "u2"), 0);
        assert_eq!(
            state.unavailable_of_workload("n", "w1", "u0"),
            1,
            "db-2 is not ready"
        );
        assert_eq!(
            state.unavailable_of_workload("other", "w1", "u0"),
            3,
            "no pod of it there"
        );
        // Being deleted, then gone before its replacement comes.
        put(
            &mut state,
            "db-1",
            Some(workload_pod("u1", true, true, "Running")),
        );
        assert_eq!(
            state.unavailable_of_workload("n", "w1", "u2"),
            1,
            "db-1 is being deleted"
        );
        put(&mut state, "db-1", None);
        assert_eq!(
            state.unavailable_of_workload("n", "w1", "u2"),
            1,
            "db-1 is missing"
        );
        // A finished pod is no pod of it; its ready replacement makes it whole.
        put(
            &mut state,
            "db-1-old",
            Some(workload_pod("u1-old", false, false, "Failed")),
        );
        put(
            &mut state,
            "db-1",
            Some(workload_pod("u1b", true, false, "Running")),
        );
        assert_eq!(state.unavailable_of_workload("n", "w1", "u2"), 0);
        // A scale change alone plans nothing again, and counts.
        assert!(state.apply_workload("w1", Some(workload(4))).is_empty());
        assert_eq!(
            state.unavailable_of_workload("n", "w1", "u2"),
            1,
            "one more wanted"
        );
    }

    #[test]
    fn a_pod_has_one_entry_with_everything_about_it() {
        let mut state = State::default();
        let key = state.key("n", "p");
        assert!(state.apply_pod(&key, pod("u1", "node-a")), "new");
        assert!(!state.apply_pod(&key, pod("u1", "node-a")), "unchanged");
        assert!(state.apply_status(&key, stored(5)));
        // A stale event of an earlier write does not replace the record.
        assert!(!state.apply_status(&key, stored(4)));
        assert_eq!(
            state.pods[&key].stored().and_then(|s| s.resource_version),
            Some(5)
        );
        assert_eq!(state.pods.len(), 1);
        // The same namespace string is shared by every key.
        let other = state.key("n", "q");
        assert!(Arc::ptr_eq(&key.namespace, &other.namespace));
        // Gone when both the pod and its status are.
        state.delete_pod(&key);
        assert!(state.pods.contains_key(&key));
        // The deletion of an earlier object (its event late, after this one was written) is not
        // this one's.
        state.delete_status(&key, Some(4));
        assert!(state.pods[&key].has_stored());
        state.delete_status(&key, Some(6));
        assert!(!state.pods.contains_key(&key));
    }

    #[test]
    fn the_names_of_namespaces_that_are_gone_are_let_go() {
        let mut state = State::default();
        let kept = state.key("kept", "p");
        state.apply_pod(&kept, pod("u0", "node-a"));
        // Rounds of 1,000 short-lived namespaces with one pod each, gone again (no status written).
        for round in 0..6 {
            for i in 0..1_000 {
                let key = state.key(&format!("ci-{round}-{i}"), "p");
                state.apply_pod(&key, pod(&format!("u{i}"), "node-a"));
            }
            for i in 0..1_000 {
                let key = state.key(&format!("ci-{round}-{i}"), "p");
                state.delete_pod(&key);
            }
            assert_eq!(state.pods.len(), 1);
            // Without pruning, 1,000 more names each round; with it, under twice the most live.
            assert!(
                state.namespaces.len() <= 2 * 1_001,
                "round {round}: {} namespace names interned",
                state.namespaces.len()
            );
        }
        assert!(Arc::ptr_eq(&state.key("kept", "q").namespace, &kept.namespace));
    }

    #[test]
    fn a_namespace_being_deleted_is_known_until_it_is_gone() {
        let mut state = State::default();
        let namespace = |terminating| KnownNamespace {
            labels: BTreeMap::from([("team".to_string(), "a".to_string())]),
            terminating,
        };
        state.apply_namespace("shop", Some(namespace(false)));
        assert!(!state.namespace_terminating("shop"));
        state.apply_namespace("shop", Some(namespace(true)));
        assert!(state.namespace_terminating("shop"));
        assert_eq!(state.namespace_labels("shop"), &namespace(true).labels);
        // Deleted while the watch was down: the relist lets it go.
        state.namespaces_relisted(&HashSet::new());
        assert!(!state.namespace_terminating("shop"));
        state.apply_namespace("ci-1", Some(namespace(true)));
        state.apply_namespace("ci-1", None);
        assert!(!state.namespace_terminating("ci-1"));
        assert!(state.namespace_labels("ci-1").is_empty());
    }

    #[test]
    fn a_pod_and_its_status_are_kept_in_a_few_hundred_bytes() {
        let wire: PodWire = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "web-7d9f-x2x4q", "namespace": "shop",
                "uid": "3f1c2a9e-54b1-4c5e-9a77-0d2e1f4b8c61", "creationTimestamp": "2026-12-01T10:00:00Z",
                "labels": { "app": "web", "pod-template-hash": "7d9f" },
                "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f",
                    "uid": "9b2e7c1d-0f3a-4e8b-b6d5-2c4a1e9f7a30", "controller": true }] },
            "spec": { "nodeName": "worker-1", "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
                "containers": [{ "name": "app" }, { "name": "proxy", "securityContext": { "privileged": true } }] }
        }))
        .expect("pod");
        let mut state = State::default();
        let key = state.key("shop", "web-7d9f-x2x4q");
        state.apply_pod(&key, LeanPod::from_wire(&wire, true).expect("lean"));
        let mut status = stored(7);
        status.owner_uid = Some("3f1c2a9e-54b1-4c5e-9a77-0d2e1f4b8c61".into());
        status.profile_label = Some("Mixed".into());
        status.conditions = vec![crate::status::ConditionMark {
            type_: crate::status::CONFINED.into(),
            status: "False".into(),
            last_transition: crate::lean::LenientTime::parse("2026-12-01T10:00:05Z"),
        }];
        state.apply_status(&key, status.clone());
        let entry = &state.pods[&key];
        let (pod, stored) = (
            entry.pod.as_ref().map_or(0, Packed::len),
            entry.stored.as_ref().map_or(0, Packed::len),
        );
        // As structs they took about 1.5 KB in some twenty allocations.
        assert!(pod <= 200 && stored <= 100, "pod {pod} B, status {stored} B");
        assert!(
            std::mem::size_of::<PodEntry>() <= 96,
            "{}",
            std::mem::size_of::<PodEntry>()
        );
        assert_eq!(entry.pod().map(|p| p.view.containers.len()), Some(2));
        assert_eq!(entry.stored(), Some(status));
    }

    #[test]
    fn a_relist_removes_what_went_and_plans_every_pod_again() {
        let mut state = State::default();
        let (a, b) = (state.key("n", "a"), state.key("n", "b"));
        state.apply_pod(&a, pod("ua", "x"));
        state.apply_pod(&b, pod("ub", "x"));
        state.pods.get_mut(&a).expect("a").failures = 7;
        let listed: HashSet<PodKey> = [a.clone()].into();
        let again = state.pods_relisted(&listed);
        assert_eq!(again, vec![a.clone()]);
        assert!(
            state.pods.get(&b).is_none_or(|e| !e.has_pod()),
            "b went during the gap"
        );
        assert_eq!(
            state.pods[&a].failures, 0,
            "backoff reset when the watch recovers"
        );
    }

    #[test]
    fn the_pods_without_a_status_are_passed_afresh_when_the_crd_returns() {
        let mut state = State::default();
        let (stored_one, missing) = (state.key("n", "stored"), state.key("n", "missing"));
        state.apply_pod(&stored_one, pod("us", "x"));
        state.apply_pod(&missing, pod("um", "x"));
        state.apply_status(&stored_one, stored(3));
        for key in [&stored_one, &missing] {
            state.pods.get_mut(key).expect("entry").failures = 6;
        }
        assert_eq!(state.pods_without_status_afresh(), vec![missing.clone()]);
        assert_eq!(state.pods[&missing].failures, 0, "not a retry: no backoff");
        assert_eq!(state.pods[&stored_one].failures, 6, "its own failures stand");
    }

    #[test]
    fn a_status_newer_than_a_relist_is_read_back_not_written_again() {
        let mut state = State::default();
        let (old, new, gone) = (
            state.key("n", "old"),
            state.key("n", "new"),
            state.key("n", "gone"),
        );
        for key in [&old, &new, &gone] {
            state.apply_pod(key, pod("u", "x"));
        }
        state.apply_status(&old, stored(5));
        state.apply_status(&gone, stored(4));
        // Written while the list (of `old` at 5) was on its way: the list was taken before it.
        state.apply_status(&new, stored(7));
        let listed: HashSet<PodKey> = [old.clone()].into();
        let mut replanned = state.statuses_relisted(&listed, 5);
        replanned.sort();
        assert_eq!(replanned, vec![gone.clone(), new.clone()]);
        assert!(state.pods[&new].write_unconfirmed, "read back before any write");
        assert!(
            !state.pods[&gone].write_unconfirmed,
            "deleted before the list: written again"
        );
        assert!(state.pods[&old].has_stored());
        assert!(!state.pods[&new].has_stored() && !state.pods[&gone].has_stored());
    }

    #[test]
    fn outcomes_complete_only_when_every_listed_pod_had_a_pass() {
        let mut state = State::default();
        let (a, b, c) = (state.key("n", "a"), state.key("n", "b"), state.key("n", "c"));
        state.apply_pod(&a, pod("ua", "x"));
        state.apply_pod(&b, pod("ub", "x"));
        state.mark_recorded(&a);
        assert!(!state.outcomes_complete(), "not listed yet");
        state.listed = true;
        assert!(!state.outcomes_complete(), "b had no pass");
        state.apply_pod(&c, pod("uc", "x"));
        state.delete_pod(&c);
        assert!(!state.outcomes_complete(), "b still had no pass");
        state.mark_recorded(&b);
        assert!(state.outcomes_complete(), "a deleted pod does not hold it back");
        // Pods keep coming in a busy cluster: one mid-pass at every tick must not stop the counts.
        let d = state.key("n", "d");
        state.apply_pod(&d, pod("ud", "x"));
        assert!(state.outcomes_complete(), "complete once, complete for good");
    }

    #[test]
    fn outcomes_come_from_the_stored_status_until_the_pod_has_had_a_pass() {
        use crate::api::{PolicyAction, Verdict};
        let outcome = |action| {
            vec![Outcome {
                policy: "p".into(),
                verdict: Verdict::Violating,
                action,
            }]
        };
        let mut state = State::default();
        let a = state.key("n", "a");
        // After a restart the statuses' list may come before the pods'.
        state.seed_outcomes(&a, || outcome(PolicyAction::Labeled));
        state.apply_status(&a, stored(1));
        state.apply_pod(&a, pod("ua", "x"));
        assert_eq!(
            &*state.pods[&a].outcomes,
            outcome(PolicyAction::Labeled).as_slice()
        );
        // Once a pass decided, a later event of the status (its own write, an edit) changes nothing.
        if let Some(entry) = state.pods.get_mut(&a) {
            entry.outcomes = outcome(PolicyAction::EvictionBlocked).into_boxed_slice();
        }
        state.mark_recorded(&a);
        state.seed_outcomes(&a, || outcome(PolicyAction::None));
        assert_eq!(
            &*state.pods[&a].outcomes,
            outcome(PolicyAction::EvictionBlocked).as_slice()
        );
    }

    #[test]
    fn a_drifting_profile_is_announced_once_per_new_content() {
        use crate::api::{ProfileFile, ProfileFileState};
        let mut state = State::default();
        let report = |state: &mut State, pod: &str, node: &str, sha: &str| {
            let key = state.key("n", pod);
            let file = ProfileFile {
                path: "profiles/app.json".into(),
                state: ProfileFileState::Present,
                sha256: Some(sha.into()),
                ..Default::default()
            };
            let mut status = stored(1);
            status.profile_files = vec![(Box::from("app"), file)].into_boxed_slice();
            status.profile_node = Some(node.into());
            state.apply_status(&key, status);
            key
        };
        // The statuses' list after a restart: 40 nodes, two contents.
        for i in 0..40 {
            report(
                &mut state,
                &format!("p{i}"),
                &format!("node-{i}"),
                if i % 2 == 0 { "aaa" } else { "bbb" },
            );
        }
        let found = std::mem::take(&mut state.drift_found);
        assert_eq!(found.len(), 1, "one announcement, not one per node");
        assert_eq!(found[0].1.len(), 40, "with every node seen");
        // Another node with a known content is no news; a third content is.
        report(&mut state, "p40", "node-40", "aaa");
        assert!(state.drift_found.is_empty());
        report(&mut state, "p41", "node-41", "ccc");
        assert_eq!(std::mem::take(&mut state.drift_found).len(), 1);
        // The nodes agree again, then disagree again: news again.
        for i in 0..42 {
            report(&mut state, &format!("p{i}"), &format!("node-{i}"), "aaa");
        }
        assert!(state.drift_found.is_empty(), "agreement is not announced");
        report(&mut state, "p0", "node-0", "ddd");
        assert_eq!(state.drift_found.len(), 1);
    }

    #[test]
    fn a_pass_that_ended_before_its_pod_arrived_is_not_its_pass() {
        let mut state = State::default();
        let a = state.key("n", "a");
        // The statuses' list queued `a` before the pods' list brought it; its pass ended just
        // after the pod arrived.
        state.apply_status(&a, stored(1));
        state.mark_recorded(&a);
        state.apply_pod(&a, pod("ua", "x"));
        state.listed = true;
        assert!(!state.outcomes_complete(), "the pod itself had no pass");
        state.mark_recorded(&a);
        assert!(state.outcomes_complete());
    }

    fn known(facts: NodeFacts) -> KnownNode {
        KnownNode {
            facts,
            placement: NodePlacement::default(),
        }
    }

    #[test]
    fn where_new_pods_may_start_plans_again_the_pods_whose_eviction_it_decided() {
        use crate::api::{KubeletSeccompDefault::True, Verdict};
        let mut state = State::default();
        let (skipped, other) = (state.key("n", "skipped"), state.key("n", "other"));
        state.apply_pod(&skipped, pod("us", "node-1"));
        state.apply_pod(&other, pod("uo", "node-1"));
        let outcome = |action| {
            vec![Outcome {
                policy: "evict".into(),
                verdict: Verdict::Violating,
                action,
            }]
            .into_boxed_slice()
        };
        state.pods.get_mut(&skipped).expect("pod").outcomes = outcome(PolicyAction::EvictionSkipped);
        state.pods.get_mut(&other).expect("pod").outcomes = outcome(PolicyAction::Labeled);
        let hardened = known(NodeFacts {
            seccomp_default: True,
            ..NodeFacts::default()
        });
        let plain = KnownNode::default();
        let any = TemplatePlacement::default();
        state.apply_node("node-1", Some(hardened.clone()));
        assert_eq!(state.replacement_node_without_seccomp_default(&any), None);
        // A node where the kubelet confines nothing by default joins: the skipped pod elsewhere
        // is planned again; the other only as far as it runs on the node.
        assert_eq!(
            state.apply_node("node-2", Some(plain.clone())),
            vec![skipped.clone()]
        );
        assert_eq!(
            state
                .replacement_node_without_seccomp_default(&any)
                .map(|(n, _)| n),
            Some("node-2")
        );
        // Only its labels change, which no template selects on: where pods start changed.
        let labelled = KnownNode {
            placement: NodePlacement {
                labels: BTreeMap::from([("pool".into(), "batch".into())]),
                ..NodePlacement::default()
            },
            ..plain.clone()
        };
        assert_eq!(state.apply_node("node-2", Some(labelled)), vec![skipped.clone()]);
        // Cordoned: no replacement starts there.
        let cordoned = KnownNode {
            placement: NodePlacement {
                cordoned: true,
                ..NodePlacement::default()
            },
            ..plain
        };
        state.apply_node("node-2", Some(cordoned.clone()));
        assert_eq!(state.replacement_node_without_seccomp_default(&any), None);
        // A deleted node whose pods still run keeps its facts for them, not as a place to start.
        state.apply_node("node-3", Some(KnownNode::default()));
        let on_3 = state.key("n", "on-3");
        state.apply_pod(&on_3, pod("u3", "node-3"));
        assert_eq!(state.apply_node("node-3", None), vec![skipped.clone()]);
        assert!(state.nodes.contains_key("node-3"));
        assert_eq!(state.replacement_node_without_seccomp_default(&any), None);
        // Registered again as it was: its pods have nothing new, the skipped pod has.
        assert_eq!(
            state.apply_node("node-3", Some(KnownNode::default())),
            vec![skipped]
        );
        assert_eq!(
            state
                .replacement_node_without_seccomp_default(&any)
                .map(|(n, _)| n),
            Some("node-3")
        );
        state.apply_node("node-3", None);
        // Kubelet facts alone (its version) do not change where pods start: nothing runs on
        // node-2, and nothing else is planned again.
        let newer = KnownNode {
            facts: NodeFacts {
                kubelet_minor: Some(37),
                ..NodeFacts::default()
            },
            ..cordoned
        };
        assert!(state.apply_node("node-2", Some(newer)).is_empty());
    }

    #[test]
    fn node_changes_name_exactly_the_pods_on_the_node() {
        let mut state = State::default();
        let (a, b) = (state.key("n", "a"), state.key("n", "b"));
        state.apply_pod(&a, pod("ua", "node-1"));
        state.apply_pod(&b, pod("ub", "node-2"));
        let facts = NodeFacts::default();
        assert_eq!(state.apply_node("node-1", Some(known(facts.clone()))), vec![a]);
        assert!(
            state.apply_node("node-1", Some(known(facts))).is_empty(),
            "unchanged"
        );
    }

    #[test]
    fn a_deleted_nodes_facts_stay_while_its_pods_run_and_go_with_the_last() {
        let mut state = State::default();
        let (a, b, c) = (state.key("n", "a"), state.key("n", "b"), state.key("n", "c"));
        state.apply_pod(&a, pod("ua", "node-1"));
        state.apply_pod(&b, pod("ub", "node-1"));
        let hardened = NodeFacts {
            seccomp_default: crate::api::KubeletSeccompDefault::True,
            ..NodeFacts::default()
        };
        assert_eq!(state.apply_node("node-1", Some(known(hardened.clone()))).len(), 2);
        // Deleted before its pods: nothing to judge again, the facts stay.
        assert!(state.apply_node("node-1", None).is_empty());
        assert_eq!(state.nodes.get("node-1").map(|n| &n.facts), Some(&hardened));
        // A relist that lacks it keeps them too.
        assert!(state.nodes_relisted(&HashSet::new()).is_empty());
        assert_eq!(state.nodes.get("node-1").map(|n| &n.facts), Some(&hardened));
        // A pod bound to it afterwards counts as well.
        state.apply_pod(&c, pod("uc", "node-1"));
        state.delete_pod(&a);
        state.delete_pod(&b);
        assert!(state.nodes.contains_key("node-1"), "c still runs there");
        state.delete_pod(&c);
        assert!(!state.nodes.contains_key("node-1") && state.gone_nodes.is_empty());
        // A Node without pods goes at once; one registered again is an ordinary node.
        state.apply_node("node-2", Some(KnownNode::default()));
        assert!(state.apply_node("node-2", None).is_empty());
        assert!(!state.nodes.contains_key("node-2"));
        state.apply_pod(&a, pod("ua2", "node-3"));
        state.apply_node("node-3", Some(KnownNode::default()));
        state.apply_node("node-3", None);
        assert_eq!(state.apply_node("node-3", Some(known(hardened))), vec![a.clone()]);
        state.delete_pod(&a);
        assert!(
            state.nodes.contains_key("node-3"),
            "registered again: no longer kept for its pods alone"
        );
    }
}
