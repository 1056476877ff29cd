//! The watches that keep the [`State`] current. Every object is decoded on its own into its lean
//! form ([`Decoded`]): one that cannot be decoded is skipped, counted and reported (rarely, and
//! never with its content), and the rest of its list is used. After every (re)list, what the list
//! no longer holds is removed and every pod affected is planned again.

use std::{
    collections::HashSet,
    hash::Hash,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::{
    Api,
    runtime::{WatchStreamExt, watcher},
};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::{
    Context,
    state::{KnownNamespace, LeanPod, PodKey, PolicyEntry, State},
};
use crate::{
    client::BriefWatch,
    engine::PodView,
    lean::{
        Decoded, InvalidObject, WatchedKind,
        cluster::{NamespaceWire, PolicyWire, SccWire, SeccompProfileWire, WorkloadKind, WorkloadWire},
        node::NodeWire,
        pod::{PodWire, TemplateSpecWire},
        status::StatusWire,
    },
    status::{self, StoredStatus},
};

/// How one kind of object changes the state.
pub(super) trait Handler<W>: Send + 'static {
    type Key: Eq + Hash + Clone + Send;
    /// The key of an object by its namespace and name (also for one that did not decode).
    fn key(&self, state: &mut State, namespace: &str, name: &str, object: Option<&W>) -> Option<Self::Key>;
    fn apply(&mut self, state: &mut State, key: &Self::Key, object: W) -> Vec<PodKey>;
    /// The object is gone; `version` is the resourceVersion it was deleted at.
    fn delete(&mut self, state: &mut State, key: &Self::Key, version: Option<u64>) -> Vec<PodKey>;
    /// A (re)list begins.
    fn relist_began(&mut self) {}
    fn relisted(&mut self, state: &mut State, listed: &HashSet<Self::Key>) -> Vec<PodKey>;
}

/// Reports objects that could not be decoded: a counter per resource, and a warning at most once
/// a minute per resource (with the count, and where the first one was, never its content).
struct Undecodable {
    resource: &'static str,
    since_warning: u64,
    last_warning: Option<Instant>,
}

impl Undecodable {
    fn report(&mut self, ctx: &Context, invalid: &InvalidObject) {
        ctx.metrics.undecodable(self.resource);
        self.since_warning += 1;
        if self
            .last_warning
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
        {
            warn!(
                resource = self.resource,
                namespace = invalid.meta.namespace.as_deref().unwrap_or_default(),
                name = invalid.meta.name.as_deref().unwrap_or_default(),
                error = %invalid.error,
                skipped = self.since_warning,
                "objects that cannot be read are skipped"
            );
            self.last_warning = Some(Instant::now());
            self.since_warning = 0;
        }
    }
}

/// Drives the watches of `apis` (one per watched namespace, or one for the cluster) into the
/// state with `handler`; signals `ready` once each has listed.
pub(super) fn spawn<W, H>(
    ctx: &Arc<Context>,
    apis: Vec<Api<Decoded<W>>>,
    config: watcher::Config,
    handler: H,
) -> oneshot::Receiver<()>
where
    W: WatchedKind + serde::de::DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static,
    H: Handler<W>,
    Decoded<W>:
        kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + serde::de::DeserializeOwned,
{
    spawn_with_pause(ctx, apis, config, handler, None)
}

/// The longest the watch of the controller's own objects stays closed during a first sync.
const FIRST_SYNC_PAUSE_LIMIT: Duration = Duration::from_secs(120);

/// Waits until every pod has had a pass that wrote what it had to (a pass held for the warm-up
/// does not count) and nothing is in work, or at most [`FIRST_SYNC_PAUSE_LIMIT`]. Asked once a
/// second: until it holds, the answer scans every pod under the state's lock.
async fn first_sync_written(ctx: &Context) {
    let started = Instant::now();
    while started.elapsed() < FIRST_SYNC_PAUSE_LIMIT {
        if ctx.state().outcomes_complete() && ctx.queue.is_idle() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// [`spawn`], and after the first list, when `pause` answers true, the watch is closed until the
/// first sync is written, then listed and watched again. Used for the controller's own
/// SeccompStatuses: during a first sync every write would come back as a watch event that the
/// API server encodes and sends and that carries nothing the write's response did not; the
/// list afterwards brings what others changed meanwhile (deletions, the node agent's fields).
pub(super) fn spawn_with_pause<W, H>(
    ctx: &Arc<Context>,
    apis: Vec<Api<Decoded<W>>>,
    mut config: watcher::Config,
    mut handler: H,
    pause: Option<oneshot::Receiver<bool>>,
) -> oneshot::Receiver<()>
where
    W: WatchedKind + serde::de::DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static,
    H: Handler<W>,
    Decoded<W>:
        kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + serde::de::DeserializeOwned,
{
    let (ready_tx, ready_rx) = oneshot::channel();
    let task_ctx = ctx.clone();
    ctx.spawn(async move {
        let ctx = task_ctx;
        let mut ready = Some(ready_tx);
        let mut lists = Lists::new(apis.len());
        let mut undecodable = Undecodable {
            resource: W::PLURAL,
            since_warning: 0,
            last_warning: None,
        };
        let mut last_watch_warning: Option<Instant> = None;
        let mut pause = pause;
        loop {
            let mut closed_for_first_sync = false;
            let mut list_in_pages = false;
            lists.restart();
            let mut stream = futures::stream::select_all(apis.iter().enumerate().map(|(i, api)| {
                watcher(api.clone(), config.clone())
                    .backoff(crate::client::RetryDelays::for_watches())
                    .map(move |event| (i, event))
                    .boxed()
            }));
            while let Some((i, event)) = stream.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(e) if streaming_refused(&config, &e) => {
                        info!(
                            watch = W::PLURAL,
                            refusal = %BriefWatch(&e),
                            "the API server does not stream lists: listing in pages"
                        );
                        ctx.stats
                            .lists_in_pages
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        config.initial_list_strategy = watcher::InitialListStrategy::ListWatch;
                        list_in_pages = true;
                        break;
                    }
                    Err(e) if crate::client::watch_expired(&e) => {
                        // The API server's watch cache has moved past this watch (a CRD's schema
                        // changed, as at every upgrade; a long disconnection): the watcher lists
                        // again, as it is built to. Not a fault to warn or count.
                        info!(watch = W::PLURAL, "watch expired (410): listing again");
                        ctx.stats
                            .watches_expired
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                    Err(e) => {
                        ctx.metrics.error("watch");
                        if last_watch_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(30)) {
                            warn!(watch = W::PLURAL, error = %BriefWatch(&e), "watch error; retrying");
                            last_watch_warning = Some(Instant::now());
                        }
                        continue;
                    }
                };
                let dirty = {
                    let mut state = ctx.state();
                    match event {
                        watcher::Event::Init => {
                            if lists.began(i) {
                                handler.relist_began();
                            }
                            Vec::new()
                        }
                        watcher::Event::InitApply(decoded) => {
                            let Some(key) = key_of(&handler, &mut state, &decoded) else {
                                continue;
                            };
                            lists.listed(i, key.clone());
                            match decoded {
                                Decoded::Ok(object, _) => handler.apply(&mut state, &key, object),
                                Decoded::Invalid(invalid) => {
                                    // Kept as it was: a later list may read it.
                                    undecodable.report(&ctx, &invalid);
                                    Vec::new()
                                }
                            }
                        }
                        watcher::Event::InitDone => {
                            // Nothing is taken for gone before every watch has listed once.
                            let Some(seen) = lists.done(i) else {
                                continue;
                            };
                            let dirty = handler.relisted(&mut state, &seen);
                            debug!(
                                watch = W::PLURAL,
                                objects = seen.len(),
                                replanned = dirty.len(),
                                "listed"
                            );
                            if let Some(tx) = ready.take() {
                                let _ = tx.send(());
                            }
                            dirty
                        }
                        watcher::Event::Apply(decoded) => {
                            let Some(key) = key_of(&handler, &mut state, &decoded) else {
                                continue;
                            };
                            lists.applied(i, &key);
                            match decoded {
                                Decoded::Ok(object, _) => handler.apply(&mut state, &key, object),
                                Decoded::Invalid(invalid) => {
                                    undecodable.report(&ctx, &invalid);
                                    Vec::new()
                                }
                            }
                        }
                        watcher::Event::Delete(decoded) => {
                            let Some(key) = key_of(&handler, &mut state, &decoded) else {
                                continue;
                            };
                            lists.deleted(i, &key);
                            handler.delete(&mut state, &key, decoded.resource_version_number())
                        }
                    }
                };
                ctx.queue.add_all(dirty);
                if ready.is_none()
                    && let Some(asked) = pause.take()
                    && asked.await.unwrap_or(false)
                {
                    debug!(watch = W::PLURAL, "closed during the first sync");
                    closed_for_first_sync = true;
                    break;
                }
            }
            if list_in_pages {
                continue;
            }
            if !closed_for_first_sync {
                // A watcher with back-off does not end on its own.
                return;
            }
            first_sync_written(&ctx).await;
            debug!(
                watch = W::PLURAL,
                "first sync written: listing and watching again"
            );
        }
    });
    ready_rx
}

/// The lists of the watches behind one handler: one watch per watched namespace, or one for the
/// cluster. Each watch lists on its own (at start, after a watch error, after a 410), and a relist
/// of one namespace must not take another's objects for gone; so with several watches the keys
/// each one holds are kept, and what counts as listed is all of them. Until every watch has
/// listed once nothing is taken for gone, and the handler hears of one list, not one per
/// namespace (its first pass over the pods is one).
struct Lists<K> {
    several: bool,
    /// The list each watch has under way.
    listing: Vec<Option<HashSet<K>>>,
    /// What each watch holds (with several watches only).
    held: Vec<HashSet<K>>,
    listed_once: Vec<bool>,
}

impl<K: Eq + Hash + Clone> Lists<K> {
    fn new(watches: usize) -> Self {
        Lists {
            several: watches > 1,
            listing: (0..watches).map(|_| None).collect(),
            held: (0..watches).map(|_| HashSet::new()).collect(),
            listed_once: vec![false; watches],
        }
    }

    /// The watches start over: every list under way is broken off.
    fn restart(&mut self) {
        self.listing.iter_mut().for_each(|list| *list = None);
    }

    /// Watch `i` starts a list; true when no other list is under way (the handler's relist
    /// begins).
    fn began(&mut self, i: usize) -> bool {
        let first = self.listing.iter().all(Option::is_none);
        self.listing[i] = Some(HashSet::new());
        first
    }

    fn listed(&mut self, i: usize, key: K) {
        if self.several {
            self.held[i].insert(key.clone());
        }
        self.listing[i].get_or_insert_with(HashSet::new).insert(key);
    }

    fn applied(&mut self, i: usize, key: &K) {
        if self.several {
            self.held[i].insert(key.clone());
        }
    }

    fn deleted(&mut self, i: usize, key: &K) {
        if self.several {
            self.held[i].remove(key);
        }
    }

    /// Watch `i` has listed: what all the watches hold now, or None while some watch has never
    /// listed.
    fn done(&mut self, i: usize) -> Option<HashSet<K>> {
        let seen = self.listing[i].take().unwrap_or_default();
        self.listed_once[i] = true;
        if !self.several {
            return Some(seen);
        }
        self.held[i] = seen;
        self.listed_once
            .iter()
            .all(|once| *once)
            .then(|| self.held.iter().flatten().cloned().collect())
    }
}

/// A streaming list the API server refused as a request it does not accept (`sendInitialEvents`
/// with its WatchList feature off: 422, or 400 from an older one).
fn streaming_refused(config: &watcher::Config, error: &watcher::Error) -> bool {
    config.initial_list_strategy == watcher::InitialListStrategy::StreamingList
        && matches!(error, watcher::Error::WatchStartFailed(kube::Error::Api(status))
            if status.code == 422 || status.code == 400)
}

fn key_of<W, H: Handler<W>>(handler: &H, state: &mut State, decoded: &Decoded<W>) -> Option<H::Key> {
    let meta = decoded.meta();
    // Namespaced kinds are watched in the configured namespaces only (one watch each), so
    // every object is in scope.
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    let object = match decoded {
        Decoded::Ok(object, _) => Some(object),
        Decoded::Invalid(_) => None,
    };
    handler.key(state, namespace, meta.name.as_deref().unwrap_or_default(), object)
}

/// Pods, into the table.
pub(super) struct Pods {
    pub ctx: Arc<Context>,
    /// The first list is done: every pod it brought was queued as it came.
    pub listed_once: bool,
}

impl Handler<PodWire> for Pods {
    type Key = PodKey;
    fn key(&self, state: &mut State, namespace: &str, name: &str, _: Option<&PodWire>) -> Option<PodKey> {
        (!name.is_empty()).then(|| state.key(namespace, name))
    }
    fn apply(&mut self, state: &mut State, key: &PodKey, pod: PodWire) -> Vec<PodKey> {
        match LeanPod::from_wire(&pod, self.ctx.trust_scc()) {
            Some(lean) => {
                if state.apply_pod(key, lean) {
                    vec![key.clone()]
                } else {
                    Vec::new()
                }
            }
            None => Vec::new(),
        }
    }
    fn delete(&mut self, state: &mut State, key: &PodKey, _version: Option<u64>) -> Vec<PodKey> {
        state.delete_pod(key);
        Vec::new()
    }
    fn relisted(&mut self, state: &mut State, listed: &HashSet<PodKey>) -> Vec<PodKey> {
        if self.listed_once {
            return state.pods_relisted(listed);
        }
        // Each pod of the first list was queued on arrival, and workers may have passed it
        // already (they start before this list ends): nothing to plan again. (Pods of a list
        // that broke off and started over may be gone: they are dropped all the same.)
        self.listed_once = true;
        state.drop_unlisted_pods(listed);
        Vec::new()
    }
}

/// SeccompStatuses, into the table (what is stored).
pub(super) struct Statuses {
    ctx: Arc<Context>,
    /// During a (re)list: the highest resourceVersion it brought so far.
    newest_listed: Option<u64>,
}

impl Statuses {
    pub fn new(ctx: Arc<Context>) -> Self {
        Statuses {
            ctx,
            newest_listed: None,
        }
    }
}

impl Handler<StatusWire> for Statuses {
    type Key = PodKey;
    fn key(&self, state: &mut State, namespace: &str, name: &str, _: Option<&StatusWire>) -> Option<PodKey> {
        (!name.is_empty()).then(|| state.key(namespace, name))
    }
    fn apply(&mut self, state: &mut State, key: &PodKey, status: StatusWire) -> Vec<PodKey> {
        state.seed_outcomes(key, || status::stored_outcomes(&status));
        let status = StoredStatus::from_wire(&status);
        if let (Some(newest), Some(version)) = (&mut self.newest_listed, status.resource_version) {
            *newest = (*newest).max(version);
        }
        // A pod held for replacements ([`super::overwrites`]) is planned all the same: its pass
        // waits out the hold.
        let (planned, overwrites) = state.apply_watched_status(key, status, self.ctx.clock());
        if overwrites > 0 {
            self.ctx.overwritten(key, overwrites);
        }
        let mut dirty = if planned { vec![key.clone()] } else { Vec::new() };
        // Pods whose profile's nodes started or stopped disagreeing.
        dirty.extend(state.take_profile_changes());
        dirty
    }
    fn delete(&mut self, state: &mut State, key: &PodKey, version: Option<u64>) -> Vec<PodKey> {
        // Deleted while its pod lives: write it again.
        let mut dirty = if state.delete_status(key, version) {
            vec![key.clone()]
        } else {
            Vec::new()
        };
        dirty.extend(state.take_profile_changes());
        dirty
    }
    fn relist_began(&mut self) {
        self.newest_listed = Some(0);
    }
    fn relisted(&mut self, state: &mut State, listed: &HashSet<PodKey>) -> Vec<PodKey> {
        let newest_listed = self.newest_listed.take().unwrap_or_default();
        let mut dirty = state.statuses_relisted(listed, newest_listed);
        dirty.extend(state.take_profile_changes());
        dirty
    }
}

/// Nodes: their facts.
pub(super) struct Nodes {
    pub ctx: Arc<Context>,
}

impl Handler<NodeWire> for Nodes {
    type Key = String;
    fn key(&self, _: &mut State, _: &str, name: &str, _: Option<&NodeWire>) -> Option<String> {
        (!name.is_empty()).then(|| name.to_string())
    }
    fn apply(&mut self, state: &mut State, key: &String, node: NodeWire) -> Vec<PodKey> {
        let known = super::state::KnownNode {
            facts: self.ctx.config.node_facts(&node),
            placement: node.placement(),
        };
        state.apply_node(key, Some(known))
    }
    fn delete(&mut self, state: &mut State, key: &String, _version: Option<u64>) -> Vec<PodKey> {
        state.apply_node(key, None)
    }
    fn relisted(&mut self, state: &mut State, listed: &HashSet<String>) -> Vec<PodKey> {
        state.nodes_relisted(listed)
    }
}

/// SecurityContextConstraints: their `seccompProfiles`.
pub(super) struct Sccs;

impl Handler<SccWire> for Sccs {
    type Key = String;
    fn key(&self, _: &mut State, _: &str, name: &str, _: Option<&SccWire>) -> Option<String> {
        (!name.is_empty()).then(|| name.to_string())
    }
    fn apply(&mut self, state: &mut State, key: &String, scc: SccWire) -> Vec<PodKey> {
        state.apply_scc(key, Some(scc.seccomp_profiles))
    }
    fn delete(&mut self, state: &mut State, key: &String, _version: Option<u64>) -> Vec<PodKey> {
        state.apply_scc(key, None)
    }
    fn relisted(&mut self, state: &mut State, listed: &HashSet<String>) -> Vec<PodKey> {
        state.sccs_relisted(listed)
    }
}

/// Security Profiles Operator SeccompProfiles: the strength of the Localhost profiles they
/// install, by `localhostProfile`.
#[derive(Default)]
pub(super) struct SeccompProfiles {
    /// Object key → the path it was filed under.
    paths: std::collections::HashMap<(String, String), String>,
}

impl Handler<SeccompProfileWire> for SeccompProfiles {
    type Key = (String, String);
    fn key(
        &self,
        _: &mut State,
        namespace: &str,
        name: &str,
        _: Option<&SeccompProfileWire>,
    ) -> Option<Self::Key> {
        (!name.is_empty()).then(|| (namespace.to_string(), name.to_string()))
    }
    fn apply(&mut self, state: &mut State, key: &Self::Key, profile: SeccompProfileWire) -> Vec<PodKey> {
        let (path, entry) = profile.catalog_entry(&key.0, &key.1);
        if let Some(old) = self.paths.insert(key.clone(), path.clone())
            && old != path
        {
            state.apply_catalog(&old, None);
        }
        state.apply_catalog(&path, Some(entry));
        state.take_profile_changes()
    }
    fn delete(&mut self, state: &mut State, key: &Self::Key, _version: Option<u64>) -> Vec<PodKey> {
        if let Some(path) = self.paths.remove(key) {
            state.apply_catalog(&path, None);
        }
        state.take_profile_changes()
    }
    fn relisted(&mut self, state: &mut State, listed: &HashSet<Self::Key>) -> Vec<PodKey> {
        let gone: Vec<Self::Key> = self
            .paths
            .keys()
            .filter(|k| !listed.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(path) = self.paths.remove(&key) {
                state.apply_catalog(&path, None);
            }
        }
        state.take_profile_changes()
    }
}

/// Namespaces: their labels.
pub(super) struct Namespaces;

impl Handler<NamespaceWire> for Namespaces {
    type Key = String;
    fn key(&self, _: &mut State, _: &str, name: &str, _: Option<&NamespaceWire>) -> Option<String> {
        (!name.is_empty()).then(|| name.to_string())
    }
    fn apply(&mut self, state: &mut State, key: &String, namespace: NamespaceWire) -> Vec<PodKey> {
        let terminating = namespace.metadata.deletion_timestamp.is_some();
        state.apply_namespace(
            key,
            Some(KnownNamespace {
                labels: namespace.metadata.labels,
                terminating,
            }),
        )
    }
    fn delete(&mut self, state: &mut State, key: &String, _version: Option<u64>) -> Vec<PodKey> {
        state.apply_namespace(key, None)
    }
    fn relisted(&mut self, state: &mut State, listed: &HashSet<String>) -> Vec<PodKey> {
        state.namespaces_relisted(listed)
    }
}

/// SeccompPolicies.
pub(super) struct Policies;

impl Handler<PolicyWire> for Policies {
    type Key = String;
    fn key(&self, _: &mut State, _: &str, name: &str, _: Option<&PolicyWire>) -> Option<String> {
        (!name.is_empty()).then(|| name.to_string())
    }
    fn apply(&mut self, state: &mut State, key: &String, policy: PolicyWire) -> Vec<PodKey> {
        let entry = PolicyEntry::from_wire(&policy, Timestamp::now());
        let lifted = state.ledger.resume(key, entry.resume_at());
        state.ledger.load(key, entry.status.as_ref());
        let mut dirty = state.apply_policy(key, Some(entry));
        if !lifted.is_empty() {
            // Judged again: a pod whose eviction was skipped for the halt may be evicted now.
            dirty.extend(state.judged_by(key));
            state.ledger_dirty.insert(key.clone());
            state.resumed.push((key.clone(), lifted));
        }
        dirty
    }
    fn delete(&mut self, state: &mut State, key: &String, _version: Option<u64>) -> Vec<PodKey> {
        state.apply_policy(key, None)
    }
    fn relisted(&mut self, state: &mut State, listed: &HashSet<String>) -> Vec<PodKey> {
        state.policies_relisted(listed)
    }
}

/// Workloads (ReplicaSets, StatefulSets, ReplicationControllers): their pod templates, by UID.
pub(super) struct Workloads<K> {
    pub kind: std::marker::PhantomData<K>,
    /// Namespace and name → UID, for deletions of objects that did not decode.
    uids: std::collections::HashMap<(String, String), String>,
}

impl<K> Workloads<K> {
    pub fn new() -> Self {
        Workloads {
            kind: std::marker::PhantomData,
            uids: Default::default(),
        }
    }
}

impl<K: WorkloadKind + Default + Send + Sync + 'static> Handler<WorkloadWire<K>> for Workloads<K> {
    type Key = String;
    fn key(
        &self,
        _: &mut State,
        namespace: &str,
        name: &str,
        workload: Option<&WorkloadWire<K>>,
    ) -> Option<String> {
        match workload {
            Some(w) => w.metadata.uid.clone(),
            None => self.uids.get(&(namespace.to_string(), name.to_string())).cloned(),
        }
    }
    fn apply(&mut self, state: &mut State, key: &String, workload: WorkloadWire<K>) -> Vec<PodKey> {
        self.uids.insert(
            (
                workload.metadata.namespace().to_string(),
                workload.metadata.name().to_string(),
            ),
            key.clone(),
        );
        let rollout = workload.stateful_rollout();
        let replicas = workload.spec.replicas.unwrap_or(1);
        let selects_outcome_labels = workload.selects_outcome_labels();
        let template = workload.spec.template.map(|t| {
            let view = PodView::from_template(&t);
            (
                view,
                t.spec.map(TemplateSpecWire::into_placement).unwrap_or_default(),
            )
        });
        state.apply_workload(
            key,
            template.map(|(template, placement)| super::state::WorkloadEntry {
                template,
                placement,
                rollout,
                replicas,
                selects_outcome_labels,
            }),
        )
    }
    fn delete(&mut self, state: &mut State, key: &String, _version: Option<u64>) -> Vec<PodKey> {
        self.uids.retain(|_, uid| uid != key);
        state.apply_workload(key, None)
    }
    fn relisted(&mut self, state: &mut State, listed: &HashSet<String>) -> Vec<PodKey> {
        let gone: Vec<String> = state
            .workloads
            .keys()
            .filter(|uid| !listed.contains(&***uid) && self.uids.values().any(|u| u == &***uid))
            .map(|u| u.to_string())
            .collect();
        self.uids.retain(|_, uid| listed.contains(uid));
        gone.iter()
            .flat_map(|uid| state.apply_workload(uid, None))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: &[&'static str]) -> HashSet<&'static str> {
        keys.iter().copied().collect()
    }

    #[test]
    fn one_watch_reports_each_list_as_it_is() {
        let mut lists = Lists::new(1);
        assert!(lists.began(0));
        lists.listed(0, "a");
        lists.listed(0, "b");
        assert_eq!(lists.done(0), Some(set(&["a", "b"])));
        assert!(lists.began(0));
        assert_eq!(lists.done(0), Some(set(&[])), "everything went");
    }

    /// One watch per namespace: a relist of one namespace keeps the others' objects, and
    /// nothing is taken for gone until both have listed.
    #[test]
    fn a_relist_of_one_namespace_keeps_the_others_objects() {
        let mut lists = Lists::new(2);
        assert!(lists.began(0));
        assert!(!lists.began(1), "one relist of the handler for both first lists");
        lists.listed(0, "a/web");
        lists.listed(1, "b/web");
        assert_eq!(lists.done(0), None, "b has not listed yet");
        assert_eq!(lists.done(1), Some(set(&["a/web", "b/web"])));

        // Namespace b's watch fails and lists again, while a's keeps going.
        lists.applied(0, &"a/api");
        assert!(lists.began(1));
        lists.listed(1, "b/db");
        assert_eq!(lists.done(1), Some(set(&["a/web", "a/api", "b/db"])));

        lists.deleted(0, &"a/web");
        assert!(lists.began(0));
        lists.listed(0, "a/api");
        assert_eq!(lists.done(0), Some(set(&["a/api", "b/db"])));

        // Watches that start over (lists broken off) begin one relist again.
        lists.began(1);
        lists.restart();
        assert!(lists.began(0));
    }
}
