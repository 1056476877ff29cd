//! SeccompPolicies in the controller: the policy and namespace indexes, the policy pass of a
//! reconcile (verdicts, labels, evictions, events) and the policies' own status. The decisions
//! are made by the pure [`policy`](crate::policy) module; this is the I/O around them.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::{
    api::{
        apps::v1::{ReplicaSet, StatefulSet},
        core::v1::{Namespace, Pod, PodTemplateSpec, ReplicationController},
        policy::v1::Eviction,
    },
    apimachinery::pkg::apis::meta::v1::{Condition, DeleteOptions, ObjectMeta, Preconditions, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{PartialObjectMeta, Patch, PatchParams, PostParams},
    runtime::{
        WatchStreamExt,
        events::{Event, EventType},
        reflector::Store,
        watcher,
    },
};
use serde_json::json;
use tracing::{debug, info, warn};

use super::{
    Context, Error, LeanPod, StatusKey, Triggers, desired,
    facts::{IndexAccess, spawn_mirror},
    pods_where,
};
use crate::{
    api::{
        CONTROLLER_MANAGER, PolicyAction, PolicyActionMode, PolicyResult, SeccompPolicy, SeccompPolicyStatus,
        SeccompStatusStatus, Verdict,
    },
    engine::PodView,
    policy::{
        self, CompiledPolicy, EvictionFacts, EvictionVerdict, Judgement, OwnerKind, PROFILE_LABEL, Subject,
        VIOLATION_LABEL,
    },
};

/// Field manager of the pod labels (separate from the SeccompStatus writes).
pub const LABEL_MANAGER: &str = "seccomp-sentinel-labels";

/// A policy as the index holds it.
#[derive(Clone, Debug)]
pub struct PolicyEntry {
    uid: Option<String>,
    generation: Option<i64>,
    compiled: Result<Arc<CompiledPolicy>, String>,
    /// The status as first seen, for cumulative counters and to avoid rewriting it on restart.
    seen_status: Option<SeccompPolicyStatus>,
}

impl PartialEq for PolicyEntry {
    /// A policy changes when its spec does (a new generation) or it is replaced (a new UID);
    /// status updates do not count.
    fn eq(&self, other: &Self) -> bool {
        self.uid == other.uid && self.generation == other.generation
    }
}

impl super::facts::Versioned for PolicyEntry {}

/// What one policy did to one pod in the last reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub policy: String,
    pub verdict: Verdict,
    pub action: PolicyAction,
}

/// Policy state of the controller.
#[derive(Default)]
pub struct PolicyState {
    pub(super) policies: std::sync::RwLock<HashMap<String, PolicyEntry>>,
    namespace_labels: std::sync::RwLock<HashMap<String, BTreeMap<String, String>>>,
    outcomes: std::sync::RwLock<HashMap<StatusKey, Vec<Outcome>>>,
    ledger: Mutex<policy::EvictionLedger>,
    /// Evictions and blocked evictions per policy since this process started.
    counters: Mutex<HashMap<String, (u32, u32)>>,
    /// Workloads whose evictions stopped (loop guard), per policy.
    halted: Mutex<HashMap<String, Vec<String>>>,
    /// Cumulative counters found in each policy's status when first seen (by policy UID).
    bases: Mutex<HashMap<String, (u32, u32)>>,
    /// Last status written (or seen) per policy.
    written: Mutex<HashMap<String, SeccompPolicyStatus>>,
    warm: AtomicBool,
    reconciled: Mutex<HashSet<StatusKey>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PolicyState {
    fn valid_policies(&self) -> Vec<Arc<CompiledPolicy>> {
        let policies = self.policies.read().unwrap_or_else(|e| e.into_inner());
        let mut valid: Vec<Arc<CompiledPolicy>> = policies
            .values()
            .filter_map(|e| e.compiled.as_ref().ok().cloned())
            .collect();
        valid.sort_by(|a, b| a.name.cmp(&b.name));
        valid
    }

    fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        self.namespace_labels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(namespace)
            .cloned()
            .unwrap_or_default()
    }

    /// Actions wait until every cache has synced and every pod was evaluated once.
    pub fn warmed_up(&self) -> bool {
        self.warm.load(Ordering::Acquire)
    }

    pub(super) fn reconciled(&self, key: &StatusKey) {
        if !self.warmed_up() {
            lock(&self.reconciled).insert(key.clone());
        }
    }

    /// Drops the verdicts of pods that no longer exist.
    fn forget_gone_pods(&self, pods: &Store<LeanPod>) {
        self.outcomes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(ns, name), _| {
                pods.get(&kube::runtime::reflector::ObjectRef::new(name).within(ns))
                    .is_some()
            });
    }
}

/// Marks the controller warm once the pod cache is complete and every pod in it has been
/// reconciled at least once.
/// `listed` turns true once the pod cache holds a complete list. (Not `Store::wait_until_ready`:
/// its readiness wakes only one waiter, and the controller runtime is already waiting on it.)
pub(super) fn spawn_warm_up(
    ctx: Arc<Context>,
    pods: Store<LeanPod>,
    mut listed: tokio::sync::watch::Receiver<bool>,
) {
    let task_ctx = ctx.clone();
    task_ctx.spawn(async move {
        if listed.wait_for(|listed| *listed).await.is_err() {
            return;
        }
        ctx.metrics.ready.store(true, Ordering::Release);
        debug!("pod cache ready; waiting for the first full pass");
        loop {
            let all_seen = {
                let seen = lock(&ctx.policy.reconciled);
                pods.state()
                    .iter()
                    .all(|p| seen.contains(&(p.namespace().to_string(), p.name().to_string())))
            };
            if all_seen {
                ctx.policy.warm.store(true, Ordering::Release);
                lock(&ctx.policy.reconciled).clear();
                info!("first full pass complete: policy actions enabled");
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

pub(super) fn spawn_policy_watch(
    ctx: Arc<Context>,
    pods: Store<LeanPod>,
    triggers: Triggers,
) -> tokio::sync::oneshot::Receiver<()> {
    let api: Api<SeccompPolicy> = Api::all(ctx.client.clone());
    let mut config = watcher::Config::default().any_semantic();
    if let Some(selector) = &ctx.config.policy_selector {
        config = config.labels(selector);
    }
    let stream = watcher(api, config).default_backoff();
    let index_ctx = ctx.clone();
    let trigger_ctx = ctx.clone();
    spawn_mirror(
        &ctx,
        "seccomppolicies",
        stream,
        |p: SeccompPolicy| {
            let entry = PolicyEntry {
                uid: p.uid(),
                generation: p.metadata.generation,
                compiled: policy::compile(&p).map(Arc::new).map_err(|e| e.to_string()),
                seen_status: p.status.clone(),
            };
            Some((p.name_any(), entry))
        },
        move |f: IndexAccess<'_, String, PolicyEntry>| {
            f(&mut index_ctx
                .policy
                .policies
                .write()
                .unwrap_or_else(|e| e.into_inner()))
        },
        move |changed: &[String]| {
            // Re-evaluate the pods the policy judged before, and those it selects now.
            let ctx = &trigger_ctx;
            let judged: HashSet<StatusKey> = ctx
                .policy
                .outcomes
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter(|(_, outcomes)| outcomes.iter().any(|o| changed.contains(&o.policy)))
                .map(|(k, _)| k.clone())
                .collect();
            let now_selecting: Vec<Arc<CompiledPolicy>> = ctx
                .policy
                .valid_policies()
                .into_iter()
                .filter(|p| changed.contains(&p.name))
                .collect();
            let affected = pods_where(&pods, |pod| {
                let key = (pod.namespace().to_string(), pod.name().to_string());
                judged.contains(&key)
                    || now_selecting
                        .iter()
                        .any(|p| p.selects(&subject(pod, &ctx.policy.namespace_labels(pod.namespace()))))
            });
            debug!(policies = ?changed, pods = affected.len(), "policy change");
            for pod in affected {
                let _ = triggers.unbounded_send(pod);
            }
        },
    )
}

pub(super) fn spawn_namespace_watch(
    ctx: Arc<Context>,
    pods: Store<LeanPod>,
    triggers: Triggers,
) -> tokio::sync::oneshot::Receiver<()> {
    let api: Api<PartialObjectMeta<Namespace>> = Api::all(ctx.client.clone());
    let mut config = watcher::Config::default().any_semantic();
    if let Some(ns) = ctx.config.watched_namespace() {
        config = config.fields(&format!("metadata.name={ns}"));
    }
    let stream = watcher(api, config).default_backoff();
    let index_ctx = ctx.clone();
    let trigger_ctx = ctx.clone();
    spawn_mirror(
        &ctx,
        "namespaces",
        stream,
        |ns: PartialObjectMeta<Namespace>| Some((ns.name_any(), ns.metadata.labels.unwrap_or_default())),
        move |f: IndexAccess<'_, String, BTreeMap<String, String>>| {
            f(&mut index_ctx
                .policy
                .namespace_labels
                .write()
                .unwrap_or_else(|e| e.into_inner()))
        },
        move |changed: &[String]| {
            if !trigger_ctx
                .policy
                .valid_policies()
                .iter()
                .any(|p| p.uses_namespace_labels)
            {
                return;
            }
            for namespace in changed {
                for pod in pods_where(&pods, |p| p.namespace() == namespace) {
                    let _ = triggers.unbounded_send(pod);
                }
            }
        },
    )
}

fn subject<'a>(pod: &'a LeanPod, namespace_labels: &'a BTreeMap<String, String>) -> Subject<'a> {
    Subject {
        namespace: pod.namespace(),
        labels: pod.labels(),
        namespace_labels,
        scc: pod.view.scc.as_deref(),
    }
}

/// What the policy pass of a reconcile decided.
pub(super) struct PolicyPass {
    pub results: Vec<PolicyResult>,
    /// Look at the pod again after this long (pending evictions, deferred actions).
    pub requeue: Option<Duration>,
}

/// Judges the pod by every policy that selects it, and acts: labels, evictions, events.
pub(super) async fn pass(
    ctx: &Context,
    pod: &LeanPod,
    evaluation: &SeccompStatusStatus,
) -> Result<PolicyPass, Error> {
    let key: StatusKey = (pod.namespace().to_string(), pod.name().to_string());
    let namespace_labels = ctx.policy.namespace_labels(pod.namespace());
    let subject = subject(pod, &namespace_labels);
    let now = Timestamp::now();
    let judged: Vec<(Arc<CompiledPolicy>, Judgement)> = ctx
        .policy
        .valid_policies()
        .into_iter()
        .filter(|p| p.selects(&subject))
        .map(|p| {
            let judgement = p.judge(&subject, evaluation, now);
            (p, judgement)
        })
        .collect();
    let previous = ctx
        .policy
        .outcomes
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned()
        .unwrap_or_default();
    if judged.is_empty() && previous.is_empty() && !has_our_labels(pod) {
        return Ok(PolicyPass {
            results: Vec::new(),
            requeue: None,
        });
    }

    let warm = ctx.policy.warmed_up();
    let mut requeue: Option<Duration> = None;
    let mut defer = |d: Duration| requeue = Some(requeue.map_or(d, |r| r.min(d)));

    // Labels, for Label and Evict policies.
    let modes: Vec<(PolicyActionMode, Verdict)> = judged.iter().map(|(p, j)| (p.action, j.verdict)).collect();
    let wanted = policy::desired_labels(&modes, evaluation.profile);
    let labeled = if warm {
        sync_labels(ctx, pod, wanted.as_ref()).await?;
        wanted.as_ref().is_some_and(|l| l.contains_key(VIOLATION_LABEL))
    } else {
        if wanted.is_some() || has_our_labels(pod) {
            defer(Duration::from_secs(2));
        }
        false
    };

    let mut results = Vec::with_capacity(judged.len());
    let mut outcomes = Vec::with_capacity(judged.len());
    let mut evicted_by: Option<String> = None;
    for (p, judgement) in &judged {
        let (action, note) = match (p.action, judgement.verdict) {
            (_, Verdict::Compliant | Verdict::Exempt) | (PolicyActionMode::Audit, _) => {
                (PolicyAction::None, None)
            }
            (PolicyActionMode::Label, Verdict::Violating) => {
                if labeled {
                    (PolicyAction::Labeled, None)
                } else {
                    (PolicyAction::None, None)
                }
            }
            (PolicyActionMode::Evict, Verdict::Violating) => match &evicted_by {
                Some(by) => (PolicyAction::Evicted, Some(format!("evicted for policy {by}"))),
                None => {
                    let (action, note, retry) = evict_if_safe(ctx, pod, p, &subject, now).await?;
                    if let Some(retry) = retry {
                        defer(retry);
                    }
                    if action == PolicyAction::Evicted {
                        evicted_by = Some(p.name.clone());
                    }
                    (action, Some(note))
                }
            },
        };
        let outcome = Outcome {
            policy: p.name.clone(),
            verdict: judgement.verdict,
            action,
        };
        if !previous.contains(&outcome) {
            if outcome.action != PolicyAction::None {
                ctx.metrics.action(&p.name, outcome.action);
            }
            announce(
                ctx,
                pod,
                p,
                &outcome,
                note.as_deref().unwrap_or(&judgement.message),
            )
            .await;
        }
        results.push(policy::result(p, judgement, action, note.as_deref()));
        outcomes.push(outcome);
    }
    ctx.policy
        .outcomes
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, outcomes);
    Ok(PolicyPass { results, requeue })
}

fn has_our_labels(pod: &LeanPod) -> bool {
    let labels = pod.labels();
    labels.contains_key(VIOLATION_LABEL) || labels.contains_key(PROFILE_LABEL)
}

/// Sets or removes the pod's profile and violation labels, writing only when they differ.
async fn sync_labels(
    ctx: &Context,
    pod: &LeanPod,
    wanted: Option<&BTreeMap<String, String>>,
) -> Result<(), Error> {
    let current = pod.labels();
    let ours = |labels: &BTreeMap<String, String>| {
        (
            labels.get(PROFILE_LABEL).cloned(),
            labels.get(VIOLATION_LABEL).cloned(),
        )
    };
    let now = ours(current);
    let target = wanted.map(ours).unwrap_or((None, None));
    if now == target {
        return Ok(());
    }
    let labels = wanted.cloned().unwrap_or_default();
    let patch = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": pod.name(), "namespace": pod.namespace(), "labels": labels },
    });
    ctx.writes.until_ready().await;
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), pod.namespace());
    match pods
        .patch(
            pod.name(),
            &PatchParams::apply(LABEL_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
    {
        Ok(_) => {}
        // The pod went away meanwhile: nothing to label.
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    ctx.stats.label_writes.fetch_add(1, Ordering::Relaxed);
    ctx.metrics.write("label");
    debug!(pod = %format!("{}/{}", pod.namespace(), pod.name()), ?labels, "labels updated");
    Ok(())
}

/// Decides, and if safe performs, the eviction of a pod a policy finds violating. Returns the
/// action to record, a message, and when to look again.
async fn evict_if_safe(
    ctx: &Context,
    pod: &LeanPod,
    p: &CompiledPolicy,
    subject: &Subject<'_>,
    now: Timestamp,
) -> Result<(PolicyAction, String, Option<Duration>), Error> {
    let owner = pod.controller();
    let owner_kind = owner.map_or(OwnerKind::None, |o| OwnerKind::from_kind(&o.api_version, &o.kind));
    let owner_uid = owner.map(|o| o.uid.as_str());
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);

    // Loop guard: a pod of a workload created after we evicted one of its pods, and still
    // violating, means evicting does not help.
    let terminating = pod.metadata.deletion_timestamp.is_some();
    if let (Some(workload), Some(created), false) = (owner_uid, created, terminating) {
        let replacement = lock(&ctx.policy.ledger).is_replacement(workload, created);
        if replacement {
            let owner_name = owner
                .map(|o| format!("{} {}", o.kind, o.name))
                .unwrap_or_default();
            let why = format!(
                "the replacement pods of {owner_name} are not confined either; evictions of it stopped"
            );
            if lock(&ctx.policy.ledger).halt(workload, why.clone()) {
                lock(&ctx.policy.halted)
                    .entry(p.name.clone())
                    .or_default()
                    .push(format!("{}/{owner_name}", pod.namespace()));
                warn!(pod = %format!("{}/{}", pod.namespace(), pod.name()), workload = %owner_name, "eviction loop guard tripped");
                let event = Event {
                    type_: EventType::Warning,
                    reason: "EvictionHalted".into(),
                    note: Some(why.clone()),
                    action: "Evict".into(),
                    secondary: None,
                };
                publish(ctx, &event, &pod_reference(pod)).await;
                publish(ctx, &event, &policy_reference(&p.name)).await;
            }
        }
    }

    let facts = EvictionFacts {
        policy: &p.name,
        namespace: pod.namespace(),
        operator_namespace: ctx.config.operator_namespace.as_deref(),
        owner: owner_kind,
        owner_uid,
        mirror: pod.mirror,
        terminating: pod.metadata.deletion_timestamp.is_some(),
        terminal: pod.terminal,
        created,
        warmed_up: ctx.policy.warmed_up(),
    };
    let (verdict, reservation) = {
        let mut ledger = lock(&ctx.policy.ledger);
        policy::reserve_eviction(&facts, &p.eviction, &mut ledger, now)
    };
    let outcome = async {
        match verdict {
            EvictionVerdict::Skip { reason, message } => Ok((
                PolicyAction::EvictionSkipped,
                format!("{reason}: {message}"),
                None,
            )),
            EvictionVerdict::Later {
                reason,
                message,
                retry_after,
            } => Ok((
                PolicyAction::EvictionPending,
                format!("{reason}: {message}"),
                Some(retry_after),
            )),
            EvictionVerdict::Proceed => {
                let Some(owner) = owner else {
                    return Ok((
                        PolicyAction::EvictionSkipped,
                        "BarePod: no controller".into(),
                        None,
                    ));
                };
                match template_verdict(ctx, pod, owner_kind, &owner.name, p, subject, now).await? {
                    None => Ok((
                        PolicyAction::EvictionPending,
                        "WorkloadUnreadable: the pod's workload could not be read".into(),
                        Some(Duration::from_secs(15)),
                    )),
                    Some(j) if j.verdict == Verdict::Violating => Ok((
                        PolicyAction::EvictionSkipped,
                        format!(
                            "TemplateUnconfined: the template itself is unconfined: fix the workload ({})",
                            j.message
                        ),
                        None,
                    )),
                    Some(_) if p.eviction.dry_run => Ok((
                        PolicyAction::WouldEvict,
                        "dry run: the pod would be evicted and come back confined".into(),
                        None,
                    )),
                    Some(_) => evict(ctx, pod, p, subject, now).await,
                }
            }
        }
    }
    .await;
    // The reservation stands only for an eviction that happened.
    if let Some(reservation) = reservation
        && !matches!(outcome, Ok((PolicyAction::Evicted, ..)))
    {
        lock(&ctx.policy.ledger).release(reservation);
    }
    outcome
}

/// The policy's verdict on a pod made from the workload's current template, on the same node and
/// under the same SCC as the pod. `None` when the workload cannot be read.
async fn template_verdict(
    ctx: &Context,
    pod: &LeanPod,
    kind: OwnerKind,
    name: &str,
    p: &CompiledPolicy,
    subject: &Subject<'_>,
    now: Timestamp,
) -> Result<Option<Judgement>, Error> {
    let ns = pod.namespace();
    let client = ctx.client.clone();
    let template: Option<PodTemplateSpec> = match kind {
        OwnerKind::ReplicaSet => Api::<ReplicaSet>::namespaced(client, ns)
            .get_opt(name)
            .await?
            .and_then(|o| o.spec?.template),
        OwnerKind::StatefulSet => Api::<StatefulSet>::namespaced(client, ns)
            .get_opt(name)
            .await?
            .and_then(|o| o.spec.map(|s| s.template)),
        OwnerKind::ReplicationController => Api::<ReplicationController>::namespaced(client, ns)
            .get_opt(name)
            .await?
            .and_then(|o| o.spec?.template),
        _ => None,
    };
    let Some(template) = template else { return Ok(None) };
    let from_template = Pod {
        metadata: template.metadata.unwrap_or_default(),
        spec: template.spec,
        status: None,
    };
    let mut view = PodView::from_pod(&from_template);
    view.node_name = pod.view.node_name.clone();
    view.scc = pod.view.scc.clone();
    // What SCC admission would write into a replacement that asks for nothing.
    if view.profile.is_none() {
        let sccs = ctx.sccs.read().unwrap_or_else(|e| e.into_inner());
        view.profile = view.scc.as_deref().and_then(|s| sccs.default_of(s)).cloned();
    }
    let evaluation = ctx.evaluate(&view);
    Ok(Some(p.judge(subject, &evaluation, now)))
}

async fn evict(
    ctx: &Context,
    pod: &LeanPod,
    p: &CompiledPolicy,
    subject: &Subject<'_>,
    now: Timestamp,
) -> Result<(PolicyAction, String, Option<Duration>), Error> {
    let (ns, name) = (pod.namespace(), pod.name());
    ctx.writes.until_ready().await;
    // A fresh read right before the destructive call: same pod, still violating.
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let Some(fresh) = pods.get_opt(name).await? else {
        return Ok((PolicyAction::None, "the pod is gone".into(), None));
    };
    if fresh.metadata.uid != pod.metadata.uid || fresh.metadata.deletion_timestamp.is_some() {
        return Ok((
            PolicyAction::EvictionPending,
            "PodChanged: looking again".into(),
            Some(Duration::from_secs(2)),
        ));
    }
    let fresh = LeanPod::from_pod(fresh);
    if p.judge(subject, &ctx.evaluate(&fresh.view), now).verdict != Verdict::Violating {
        return Ok((PolicyAction::None, "no longer violating".into(), None));
    }
    let eviction = Eviction {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        delete_options: Some(DeleteOptions {
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        }),
    };
    let evictions: Api<Pod> = Api::namespaced(ctx.eviction_client.clone(), ns);
    let result = evictions
        .create_subresource::<Eviction, kube::core::Status>(
            "eviction",
            name,
            &PostParams::default(),
            &eviction,
        )
        .await;
    match result {
        Ok(_) => {
            lock(&ctx.policy.counters).entry(p.name.clone()).or_default().0 += 1;
            ctx.stats.evictions.fetch_add(1, Ordering::Relaxed);
            ctx.metrics.write("eviction");
            info!(pod = %format!("{ns}/{name}"), policy = %p.name, "evicted");
            Ok((
                PolicyAction::Evicted,
                "evicted: the workload's template is confined".into(),
                None,
            ))
        }
        Err(kube::Error::Api(s)) if s.code == 429 => {
            let previous = ctx
                .policy
                .outcomes
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&(ns.to_string(), name.to_string()))
                .cloned();
            let was_blocked = previous
                .iter()
                .flatten()
                .any(|o| o.policy == p.name && o.action == PolicyAction::EvictionBlocked);
            if !was_blocked {
                lock(&ctx.policy.counters).entry(p.name.clone()).or_default().1 += 1;
            }
            Ok((
                PolicyAction::EvictionBlocked,
                "DisruptionBudget: a PodDisruptionBudget does not allow the eviction now".into(),
                Some(Duration::from_secs(20)),
            ))
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok((PolicyAction::None, "the pod is gone".into(), None)),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok((
            PolicyAction::EvictionPending,
            "PodChanged: looking again".into(),
            Some(Duration::from_secs(2)),
        )),
        Err(kube::Error::Api(s)) if s.code == 500 => Ok((
            PolicyAction::EvictionBlocked,
            format!("EvictionRefused: {}", s.message),
            Some(Duration::from_secs(60)),
        )),
        Err(e) => Err(e.into()),
    }
}

fn pod_reference(pod: &LeanPod) -> k8s_openapi::api::core::v1::ObjectReference {
    pod.object_ref(&())
}

fn policy_reference(name: &str) -> k8s_openapi::api::core::v1::ObjectReference {
    k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(SeccompPolicy::api_version(&()).into()),
        kind: Some(SeccompPolicy::kind(&()).into()),
        name: Some(name.into()),
        ..Default::default()
    }
}

async fn publish(ctx: &Context, event: &Event, reference: &k8s_openapi::api::core::v1::ObjectReference) {
    if let Err(e) = ctx.recorder.publish(event, reference).await {
        warn!(error = %e, reason = %event.reason, "could not record an event");
    }
}

/// An Event on the pod and on the policy for every action (not for plain verdicts).
async fn announce(ctx: &Context, pod: &LeanPod, p: &CompiledPolicy, outcome: &Outcome, note: &str) {
    let (type_, reason) = match outcome.action {
        PolicyAction::None => return,
        PolicyAction::Labeled => (EventType::Normal, "Labeled"),
        PolicyAction::WouldEvict => (EventType::Normal, "WouldEvict"),
        PolicyAction::Evicted => (EventType::Normal, "Evicted"),
        PolicyAction::EvictionPending => (EventType::Normal, "EvictionPending"),
        PolicyAction::EvictionBlocked => (EventType::Warning, "EvictionBlocked"),
        PolicyAction::EvictionSkipped => (EventType::Warning, "EvictionSkipped"),
    };
    let action = if matches!(outcome.action, PolicyAction::Labeled) {
        "Label"
    } else {
        "Evict"
    };
    let target = format!("{}/{}", pod.namespace(), pod.name());
    let mut note: String = format!("policy {}: {note}", p.name);
    note.truncate(1000);
    publish(
        ctx,
        &Event {
            type_,
            reason: reason.into(),
            note: Some(note.clone()),
            action: action.into(),
            secondary: None,
        },
        &pod_reference(pod),
    )
    .await;
    let mut policy_note = format!("{target}: {note}");
    policy_note.truncate(1000);
    let policy_event = Event {
        type_,
        reason: reason.into(),
        note: Some(policy_note),
        action: action.into(),
        secondary: None,
    };
    publish(ctx, &policy_event, &policy_reference(&p.name)).await;
}

/// Keeps each policy's status current: counters from the latest verdicts, `Ready`/`Stalled`
/// conditions with `observedGeneration`. Writes only what changed, at most every two seconds.
pub(super) fn spawn_status_writer(ctx: Arc<Context>, pods: Store<LeanPod>) {
    let task_ctx = ctx.clone();
    task_ctx.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            ctx.policy.forget_gone_pods(&pods);
            ctx.metrics.retain_pods(|ns, name| {
                pods.get(&kube::runtime::reflector::ObjectRef::new(name).within(ns))
                    .is_some()
            });
            if let Err(e) = write_policy_statuses(&ctx).await {
                warn!(error = %e, "policy status update failed");
            }
        }
    });
}

async fn write_policy_statuses(ctx: &Context) -> Result<(), Error> {
    let policies: Vec<(String, PolicyEntry)> = ctx
        .policy
        .policies
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let now = Time(Timestamp::now());
    for (name, entry) in policies {
        let desired = policy_status(ctx, &name, &entry, &now);
        let unchanged = {
            let written = lock(&ctx.policy.written);
            let last = written.get(&name).or(entry.seen_status.as_ref());
            last.is_some_and(|last| same_status(last, &desired))
        };
        if unchanged {
            continue;
        }
        let api: Api<SeccompPolicy> = Api::all(ctx.client.clone());
        let body = json!({
            "apiVersion": SeccompPolicy::api_version(&()), "kind": SeccompPolicy::kind(&()),
            "metadata": { "name": name }, "status": desired,
        });
        ctx.writes.until_ready().await;
        match api
            .patch_status(
                &name,
                &PatchParams::apply(CONTROLLER_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(_) => {
                lock(&ctx.policy.written).insert(name, desired);
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn same_status(a: &SeccompPolicyStatus, b: &SeccompPolicyStatus) -> bool {
    let strip = |s: &SeccompPolicyStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_transition_time = Time(Timestamp::UNIX_EPOCH);
        }
        s.conditions.sort_by(|x, y| x.type_.cmp(&y.type_));
        s
    };
    strip(a) == strip(b)
}

fn policy_status(ctx: &Context, name: &str, entry: &PolicyEntry, now: &Time) -> SeccompPolicyStatus {
    let (mut matched, mut compliant, mut violating, mut exempt, mut labeled) = (0u32, 0u32, 0u32, 0u32, 0u32);
    for outcomes in ctx
        .policy
        .outcomes
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
    {
        for o in outcomes.iter().filter(|o| o.policy == name) {
            matched += 1;
            match o.verdict {
                Verdict::Compliant => compliant += 1,
                Verdict::Violating => violating += 1,
                Verdict::Exempt => exempt += 1,
            }
            // Label and Evict policies label the pods they find violating.
            if o.verdict == Verdict::Violating && o.action != PolicyAction::None {
                labeled += 1;
            }
        }
    }
    let base = *lock(&ctx.policy.bases)
        .entry(entry.uid.clone().unwrap_or_else(|| name.to_string()))
        .or_insert_with(|| {
            entry
                .seen_status
                .as_ref()
                .map(|s| (s.evicted_pods, s.blocked_evictions))
                .unwrap_or_default()
        });
    let (evicted, blocked) = lock(&ctx.policy.counters).get(name).copied().unwrap_or_default();
    let previous: Vec<Condition> = lock(&ctx.policy.written)
        .get(name)
        .or(entry.seen_status.as_ref())
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut conditions = match &entry.compiled {
        Ok(p) => {
            let expired = p.expired_exemptions(now.0);
            let message = if expired.is_empty() {
                "the policy is valid and applied".to_string()
            } else {
                format!(
                    "{} exemption(s) expired and no longer apply: {}",
                    expired.len(),
                    expired.join("; ")
                )
            };
            vec![
                desired::condition("Ready", "True", "Valid", message, &previous, now),
                desired::condition("Stalled", "False", "Valid", String::new(), &previous, now),
            ]
        }
        Err(e) => vec![
            desired::condition(
                "Ready",
                "False",
                "InvalidSpec",
                format!("the policy is ignored: {e}"),
                &previous,
                now,
            ),
            desired::condition("Stalled", "True", "InvalidSpec", e.clone(), &previous, now),
        ],
    };
    if let Some(halted) = lock(&ctx.policy.halted).get(name).filter(|h| !h.is_empty()) {
        let message = format!(
            "replacements came back unconfined, evictions stopped for: {}",
            halted.join(", ")
        );
        conditions.push(desired::condition(
            "EvictionsHalted",
            "True",
            "ReplacementUnconfined",
            message,
            &previous,
            now,
        ));
    }
    for c in &mut conditions {
        c.observed_generation = entry.generation;
    }
    SeccompPolicyStatus {
        observed_generation: entry.generation,
        conditions,
        matched_pods: matched,
        compliant_pods: compliant,
        violating_pods: violating,
        exempt_pods: exempt,
        labeled_pods: labeled,
        evicted_pods: base.0 + evicted,
        blocked_evictions: base.1 + blocked,
    }
}
