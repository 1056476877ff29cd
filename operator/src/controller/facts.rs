//! Watches that keep the controller's indexes (node facts, SCC defaults, stored SeccompStatuses)
//! current, and name the pods whose evaluation a change affects.

use std::{collections::HashMap, hash::Hash, sync::Arc};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::{
    Api, ResourceExt,
    api::{ApiResource, DynamicObject, GroupVersionKind},
    runtime::{WatchStreamExt, reflector::ObjectRef, reflector::Store, watcher},
};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::{Context, LeanPod, StatusKey, StoredStatus, Triggers, pods_where};
use crate::{api::SeccompStatus, engine::NodeFacts};

/// A callback that gets the index of a watch to change it.
pub(super) type IndexAccess<'a, K, V> = &'a mut dyn FnMut(&mut HashMap<K, V>);

/// Keeps a map from a watch, and reports which keys changed (added, changed or removed), also
/// across re-lists.
struct Mirror<K, V> {
    relist: Option<HashMap<K, V>>,
}

enum Changed<K> {
    Keys(Vec<K>),
    /// The first complete list arrived.
    Listed(Vec<K>),
}

/// Index values that can tell a stale watch event from a newer one they already hold.
pub(super) trait Versioned {
    /// `self` describes an older state of the object than `current`.
    fn older_than(&self, _current: &Self) -> bool {
        false
    }
}

impl Versioned for NodeFacts {}
impl Versioned for Vec<String> {}
impl Versioned for std::collections::BTreeMap<String, String> {}

impl Versioned for StoredStatus {
    /// The controller records its own writes at once; an event of an earlier write that arrives
    /// after that must not replace the record (it would cause a needless rewrite).
    fn older_than(&self, current: &Self) -> bool {
        matches!((self.resource_version, current.resource_version), (Some(event), Some(held)) if event < held)
    }
}

impl<K: Eq + Hash + Clone, V: PartialEq + Versioned> Mirror<K, V> {
    fn new() -> Self {
        Mirror { relist: None }
    }

    /// Applies one watch event (already mapped to key and value) to `current`.
    fn apply(&mut self, current: &mut HashMap<K, V>, event: watcher::Event<(K, V)>) -> Changed<K> {
        match event {
            watcher::Event::Init => {
                self.relist = Some(HashMap::new());
                Changed::Keys(Vec::new())
            }
            watcher::Event::InitApply((k, v)) => {
                self.relist.get_or_insert_with(HashMap::new).insert(k, v);
                Changed::Keys(Vec::new())
            }
            watcher::Event::InitDone => {
                let fresh = self.relist.take().unwrap_or_default();
                let mut changed: Vec<K> = current
                    .keys()
                    .filter(|k| !fresh.contains_key(*k))
                    .cloned()
                    .collect();
                changed.extend(
                    fresh
                        .iter()
                        .filter(|(k, v)| current.get(*k) != Some(*v))
                        .map(|(k, _)| k.clone()),
                );
                *current = fresh;
                Changed::Listed(changed)
            }
            watcher::Event::Apply((k, v)) => {
                if current
                    .get(&k)
                    .is_some_and(|held| *held == v || v.older_than(held))
                {
                    Changed::Keys(Vec::new())
                } else {
                    current.insert(k.clone(), v);
                    Changed::Keys(vec![k])
                }
            }
            watcher::Event::Delete((k, _)) => {
                if current.remove(&k).is_some() {
                    Changed::Keys(vec![k])
                } else {
                    Changed::Keys(Vec::new())
                }
            }
        }
    }
}

/// Drives `stream` into an index, calls `on_change` with changed keys, and signals `ready` after
/// the first complete list.
pub(super) fn spawn_mirror<T, K, V>(
    ctx: &Context,
    what: &'static str,
    stream: impl Stream<Item = Result<watcher::Event<T>, watcher::Error>> + Send + 'static,
    to_entry: impl Fn(T) -> Option<(K, V)> + Send + 'static,
    mut with_index: impl FnMut(IndexAccess<'_, K, V>) + Send + 'static,
    on_change: impl Fn(&[K]) + Send + 'static,
) -> oneshot::Receiver<()>
where
    T: Send + 'static,
    K: Eq + Hash + Clone + Send + 'static,
    V: PartialEq + Versioned + Send + 'static,
{
    let (ready_tx, ready_rx) = oneshot::channel();
    ctx.spawn(async move {
        let mut ready = Some(ready_tx);
        let mut mirror = Mirror::new();
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    warn!(watch = what, error = %e, "watch error; retrying");
                    continue;
                }
            };
            // Objects that cannot be indexed (no name) are skipped; markers pass through.
            let mapped = match event {
                watcher::Event::Apply(o) => to_entry(o).map(watcher::Event::Apply),
                watcher::Event::Delete(o) => to_entry(o).map(watcher::Event::Delete),
                watcher::Event::InitApply(o) => to_entry(o).map(watcher::Event::InitApply),
                watcher::Event::Init => Some(watcher::Event::Init),
                watcher::Event::InitDone => Some(watcher::Event::InitDone),
            };
            let Some(mapped) = mapped else { continue };
            let mut changed = Changed::Keys(Vec::new());
            let mut event = Some(mapped);
            with_index(&mut |index| {
                if let Some(event) = event.take() {
                    changed = mirror.apply(index, event);
                }
            });
            match changed {
                Changed::Keys(keys) => on_change(&keys),
                Changed::Listed(keys) => {
                    on_change(&keys);
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
            }
        }
    });
    ready_rx
}

pub(super) fn spawn_node_watch(
    ctx: Arc<Context>,
    pods: Store<LeanPod>,
    triggers: Triggers,
) -> oneshot::Receiver<()> {
    let api: Api<Node> = Api::all(ctx.client.clone());
    let stream = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    let facts_ctx = ctx.clone();
    let index_ctx = ctx.clone();
    spawn_mirror(
        &ctx,
        "nodes",
        stream,
        move |node: Node| Some((node.name_any(), facts_ctx.config.node_facts(&node))),
        move |f: IndexAccess<'_, String, NodeFacts>| {
            f(&mut index_ctx.nodes.write().unwrap_or_else(|e| e.into_inner()))
        },
        move |changed: &[String]| {
            for node in changed {
                for pod in pods_where(&pods, |p| p.view.node_name.as_deref() == Some(node.as_str())) {
                    let _ = triggers.unbounded_send(pod);
                }
            }
        },
    )
}

pub(super) fn spawn_status_watch(
    ctx: Arc<Context>,
    pods: Store<LeanPod>,
    triggers: Triggers,
) -> oneshot::Receiver<()> {
    let api: Api<SeccompStatus> = match ctx.config.watched_namespace() {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let stream = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    let filter_ctx = ctx.clone();
    let index_ctx = ctx.clone();
    spawn_mirror(
        &ctx,
        "seccompstatuses",
        stream,
        move |status: SeccompStatus| {
            let namespace = status.namespace()?;
            filter_ctx
                .config
                .watches(&namespace)
                .then(|| ((namespace, status.name_any()), StoredStatus::from_object(&status)))
        },
        move |f: IndexAccess<'_, StatusKey, StoredStatus>| {
            f(&mut index_ctx.statuses.write().unwrap_or_else(|e| e.into_inner()))
        },
        move |changed: &[StatusKey]| {
            // A status changed by someone else, or deleted while its pod lives: look again.
            for (namespace, name) in changed {
                if pods.get(&ObjectRef::new(name).within(namespace)).is_some() {
                    let _ = triggers.unbounded_send(ObjectRef::new(name).within(namespace));
                }
            }
        },
    )
}

/// Watches SecurityContextConstraints where the cluster serves them (OpenShift); elsewhere
/// reports ready at once and never looks again.
pub(super) async fn spawn_scc_watch(
    ctx: Arc<Context>,
    pods: Store<LeanPod>,
    triggers: Triggers,
) -> oneshot::Receiver<()> {
    let served = ctx
        .client
        .list_api_group_resources("security.openshift.io/v1")
        .await
        .map(|list| {
            list.resources
                .iter()
                .any(|r| r.name == "securitycontextconstraints")
        })
        .unwrap_or(false);
    if !served {
        info!("security.openshift.io/v1 SecurityContextConstraints not served: no SCC attribution");
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(());
        return rx;
    }
    info!("watching SecurityContextConstraints");
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("security.openshift.io", "v1", "SecurityContextConstraints"),
        "securitycontextconstraints",
    );
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &resource);
    let stream = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    let index_ctx = ctx.clone();
    let mut profiles: HashMap<String, Vec<String>> = HashMap::new();
    spawn_mirror(
        &ctx,
        "securitycontextconstraints",
        stream,
        |scc: DynamicObject| {
            let list = scc
                .data
                .get("seccompProfiles")
                .and_then(|v| v.as_array())
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(String::from))
                        .collect::<Vec<_>>()
                });
            Some((scc.name_any(), list.unwrap_or_default()))
        },
        move |f: IndexAccess<'_, String, Vec<String>>| {
            f(&mut profiles);
            let mut sccs = index_ctx.sccs.write().unwrap_or_else(|e| e.into_inner());
            let mut fresh = crate::engine::SccDefaults::default();
            for (name, list) in &profiles {
                fresh.insert(name, list);
            }
            *sccs = fresh;
        },
        move |changed: &[String]| {
            for scc in changed {
                for pod in pods_where(&pods, |p| p.view.scc.as_deref() == Some(scc.as_str())) {
                    let _ = triggers.unbounded_send(pod);
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Versioned for u32 {}

    #[test]
    fn a_stale_status_event_does_not_replace_a_newer_record() {
        let record = |rv: Option<u64>, fingerprint: u64| StoredStatus {
            owner_uid: None,
            pod_uid: "u".into(),
            profile_label: None,
            fingerprint,
            conditions: Vec::new(),
            runtime_mismatch: false,
            resource_version: rv,
        };
        let mut mirror = Mirror::new();
        let mut index = HashMap::from([("p", record(Some(12), 7))]);
        // The event of the object write (11) arrives after the status write (12) was recorded.
        assert!(
            matches!(mirror.apply(&mut index, watcher::Event::Apply(("p", record(Some(11), 0)))), Changed::Keys(k) if k.is_empty())
        );
        assert_eq!(index["p"].fingerprint, 7);
        // A newer one, or one without a numeric version, replaces it.
        mirror.apply(&mut index, watcher::Event::Apply(("p", record(Some(13), 9))));
        assert_eq!(index["p"].fingerprint, 9);
        mirror.apply(&mut index, watcher::Event::Apply(("p", record(None, 3))));
        assert_eq!(index["p"].fingerprint, 3);
    }

    #[test]
    fn a_mirror_reports_changes_and_relists() {
        let mut mirror = Mirror::new();
        let mut index: HashMap<&str, u32> = HashMap::new();
        fn keys(changed: Changed<&'static str>) -> Vec<&'static str> {
            match changed {
                Changed::Keys(mut k) | Changed::Listed(mut k) => {
                    k.sort();
                    k
                }
            }
        }
        assert!(keys(mirror.apply(&mut index, watcher::Event::Init)).is_empty());
        mirror.apply(&mut index, watcher::Event::InitApply(("a", 1)));
        mirror.apply(&mut index, watcher::Event::InitApply(("b", 1)));
        assert!(
            matches!(mirror.apply(&mut index, watcher::Event::InitDone), Changed::Listed(k) if k.len() == 2)
        );
        assert!(
            keys(mirror.apply(&mut index, watcher::Event::Apply(("a", 1)))).is_empty(),
            "unchanged"
        );
        assert_eq!(
            keys(mirror.apply(&mut index, watcher::Event::Apply(("a", 2)))),
            vec!["a"]
        );
        assert_eq!(
            keys(mirror.apply(&mut index, watcher::Event::Delete(("b", 0)))),
            vec!["b"]
        );
        // A re-list that lost "a" and found "c".
        mirror.apply(&mut index, watcher::Event::Init);
        mirror.apply(&mut index, watcher::Event::InitApply(("c", 1)));
        assert_eq!(
            keys(mirror.apply(&mut index, watcher::Event::InitDone)),
            vec!["a", "c"]
        );
        assert_eq!(index, HashMap::from([("c", 1)]));
    }
}
