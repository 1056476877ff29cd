//! The workers: for each pod taken from the queue, plan the pass under the state's lock (pure,
//! quick), then carry the plan out, in this order: labels, eviction (reserved in the ledger and
//! the ledger written to the policy before the Eviction API is called), the SeccompStatus (one
//! server-side apply), Events; and record what was done.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use k8s_openapi::{
    api::{core::v1::ObjectReference, policy::v1::Eviction},
    apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, Preconditions},
    jiff::Timestamp,
};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use tracing::{debug, info, warn};

use super::{Context, Error, state::PodKey};
use crate::{
    api::{PolicyAction, SeccompStatusStatus},
    events::Notice,
    lean::{Decoded, cluster::PolicyWire, status::StatusWire},
    policy::{
        self, EvictionFacts, EvictionVerdict, PROFILE_LABEL, Reservation, VIOLATION_LABEL,
        plan::{self, EvictionResult, LabelChange, PassInput, PodFacts, PodPlan},
    },
    profile::strength::{FileReports, ProfileFacts},
    status::{self, StoredStatus},
};

/// Field manager of the pod labels (separate from the SeccompStatus writes).
pub const LABEL_MANAGER: &str = "seccomp-sentinel-labels";
/// Field manager of the eviction ledger in each policy's status.
pub const LEDGER_MANAGER: &str = "seccomp-sentinel-evictions";

/// Takes pods from the queue until it closes.
pub(super) async fn worker(ctx: Arc<Context>) {
    while let Some(key) = ctx.queue.next().await {
        let started = std::time::Instant::now();
        ctx.stats
            .reconciles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ctx.metrics.reconciles.inc();
        // Keys come from the statuses' list too, before their pod is listed: such a pass sees
        // no pod, and records nothing.
        let had_pod = ctx.state().pods.get(&key).is_some_and(|e| e.has_pod());
        let result = pass(&ctx, &key).await;
        // A held pass recorded nothing: it comes again once the warm-up is over.
        let held = matches!(result, Ok(Passed { held: true, .. }));
        if had_pod && !held {
            ctx.state().mark_recorded(&key);
        }
        ctx.metrics
            .reconcile_duration
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(Passed { requeue, .. }) => {
                if let Some(entry) = ctx.state().pods.get_mut(&key) {
                    entry.failures = 0;
                }
                if let Some(delay) = requeue {
                    ctx.queue.add_after(key.clone(), delay);
                }
            }
            // Its namespace is being deleted, and the pod with it: nothing to retry, nothing wrong.
            // Seen here when the namespaces' watch has not shown the deletion yet, or for a
            // refused eviction.
            Err(error) if error.namespace_terminating() => {
                debug!(pod = %key, error = %error, "pass ended: the namespace is being deleted");
            }
            Err(error) => {
                ctx.stats
                    .errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                ctx.metrics.error(error.category());
                let attempts = {
                    let mut state = ctx.state();
                    state.pods.get_mut(&key).map_or(1, |e| {
                        e.failures = e.failures.saturating_add(1);
                        e.failures
                    })
                };
                // 0.5 s, 1 s, 2 s, ... up to a minute (a relist starts again from zero).
                let delay = Duration::from_millis(500)
                    .saturating_mul(1u32 << u32::from(attempts.min(7)))
                    .min(Duration::from_secs(60));
                let crd_gone = error.crd_unavailable();
                if !crd_gone && worth_a_warning(attempts) {
                    warn!(pod = %key, error = %error, category = error.category(), attempts, retry_in = ?delay, "reconcile failed");
                } else if crd_gone && ctx.warn_crd_unavailable(Duration::from_secs(30)) {
                    warn!(pod = %key, error = %error, retry_in = ?delay, "reconcile failed, for every pod alike until the SeccompStatus CRD is installed again (kubectl apply --server-side -k config/crd); retrying");
                } else {
                    debug!(pod = %key, error = %error, attempts, retry_in = ?delay, "reconcile failed");
                }
                ctx.queue.add_after(key.clone(), delay);
            }
        }
        ctx.queue.done(&key);
    }
}

/// What the pass needs to carry its plan out, taken from the state with the plan.
struct Prepared {
    plan: PodPlan,
    uid: String,
    labels: BTreeMap<String, String>,
    /// Which pod the plan was made from ([`super::state::PodEntry::pod_seen`]).
    pod_seen: u16,
    facts_owned: EvictionFactsOwned,
    stored: Option<StoredStatus>,
    /// The pod's namespace is being deleted: a status it lacks can no longer be created.
    namespace_terminating: bool,
}

/// The eviction facts of the pod, owned (checked again, atomically, when reserving).
struct EvictionFactsOwned {
    owner: policy::OwnerKind,
    /// The UID of the pod's workload.
    owner_uid: Option<String>,
    mirror: bool,
    terminating: bool,
    terminal: bool,
    created: Option<Timestamp>,
}

fn prepare(ctx: &Context, key: &PodKey, now: Timestamp) -> Option<Prepared> {
    let state = ctx.state();
    let entry = state.pods.get(key)?;
    let pod = entry.pod()?;
    let stored = entry.stored();
    // An earlier pod's status (see `delete_earlier_status`) says nothing of this pod's conditions.
    let earlier = stored
        .as_ref()
        .is_some_and(|s| s.written_for_another_pod(&pod.uid));
    let namespace_labels = state.namespace_labels(&key.namespace);
    let facts = state.facts(
        pod.view.node_name.as_deref(),
        ctx.config.unknown_node_seccomp_default(),
    );
    let workload = pod.owner.as_ref().and_then(|o| state.workloads.get(&*o.uid));
    let template = workload.map(|w| &w.template);
    let replacement_node_without_default = || {
        let placement = &workload?.placement;
        state
            .replacement_node_without_seccomp_default(placement)
            .map(|(name, facts)| (name.to_string(), facts.clone()))
    };
    let rollout = workload.and_then(|w| w.rollout.as_ref());
    // The agent's reports count for the pod they were read for, on the node it runs on.
    let reports = stored
        .as_ref()
        .map(|s| s.profile_reports_for(&pod.uid, pod.view.node_name.as_deref()))
        .unwrap_or_default();
    let labels = pod.labels.to_map();
    let input = PassInput {
        profiles: ProfileFacts {
            files: FileReports::Node(reports),
            catalog: Some(&state.catalog),
            index: Some(&state.profile_index),
        },
        view: &pod.view,
        pod: PodFacts {
            namespace: &key.namespace,
            name: &key.name,
            uid: &pod.uid,
            labels: &labels,
            namespace_labels,
            owner: pod.owner.as_ref().map(|o| (o.kind, &*o.uid, &*o.display)),
            created: pod.created,
            mirror: pod.mirror,
            terminating: pod.terminating,
            terminal: pod.terminal,
        },
        facts: &facts,
        policies: &state.valid_policies,
        previous: &entry.outcomes,
        stored_conditions: stored
            .as_ref()
            .filter(|_| !earlier)
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default(),
        warmed_up: state.listed,
        ledger: &state.ledger,
        template,
        replacement_node_without_default: &replacement_node_without_default,
        rollout,
        owner_selects_outcome_labels: workload.is_some_and(|w| w.selects_outcome_labels),
        operator_namespace: ctx.config.operator_namespace.as_deref(),
        now,
    };
    let plan = policy::plan::plan(&input);
    let prepared = Prepared {
        uid: pod.uid.to_string(),
        labels,
        pod_seen: entry.pod_seen(),
        facts_owned: EvictionFactsOwned {
            owner: pod.owner.as_ref().map_or(policy::OwnerKind::None, |o| o.kind),
            owner_uid: pod.owner.as_ref().map(|o| o.uid.to_string()),
            mirror: pod.mirror,
            terminating: pod.terminating,
            terminal: pod.terminal,
            created: pod.created,
        },
        stored,
        namespace_terminating: state.namespace_terminating(&key.namespace),
        plan,
    };
    Some(prepared)
}

/// Reads back a SeccompStatus whose last write got no answer, so that a write the API server did
/// store is not made again with new transition times.
async fn confirm_unconfirmed_write(ctx: &Context, key: &PodKey) -> Result<(), Error> {
    let unconfirmed = ctx.state().pods.get(key).is_some_and(|e| e.write_unconfirmed);
    if !unconfirmed {
        return Ok(());
    }
    let api: Api<Decoded<StatusWire>> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let stored = api.get_opt(&key.name).await?;
    let mut state = ctx.state();
    if let Some(Decoded::Ok(stored, _)) = stored {
        state.apply_status(key, StoredStatus::from_wire(&stored));
    }
    if let Some(entry) = state.pods.get_mut(key) {
        entry.write_unconfirmed = false;
    }
    Ok(())
}

/// [`crate::telemetry::worth_a_warning`] for a pod's pass (every failure is counted in
/// `seccomp_sentinel_reconcile_errors_total`, which the `SeccompSentinelReconcileErrors` alert
/// watches).
fn worth_a_warning(attempts: u8) -> bool {
    crate::telemetry::worth_a_warning(u32::from(attempts))
}

/// Event reason on a pod whose SeccompStatus the API server refuses.
pub const STATUS_REFUSED: &str = "StatusRefused";

/// Tells the pod's owners, on the pod, why it has no SeccompStatus when the API server refuses it
/// for good (an admission rule, an object-count quota): otherwise only the operator's log says
/// so. At the failures that are also warnings in the log, and once per pod and message while
/// the API server keeps the Event, so a refusal a minute costs no Event a minute.
async fn announce_status_refused(ctx: &Context, key: &PodKey, uid: &str, error: &kube::Error) {
    let Some(why) = crate::client::refusal(error) else {
        return;
    };
    if crate::client::namespace_terminating(error) {
        return;
    }
    let failures = ctx.state().pods.get(key).map_or(0, |e| e.failures);
    if !worth_a_warning(failures.saturating_add(1)) {
        return;
    }
    let note = format!("the API server refused the pod's SeccompStatus: {why}");
    ctx.events
        .publish_once(
            Notice {
                regarding: pod_reference(key, uid),
                warning: true,
                reason: STATUS_REFUSED,
                action: "Record",
                note: &note,
            },
            (uid, STATUS_REFUSED, &why),
        )
        .await;
}

/// How a pass ended.
struct Passed {
    /// Plan the pod again after this long.
    requeue: Option<Duration>,
    /// An action waited for the warm-up, so nothing was written ([`PodPlan::hold`]), or the pod
    /// is held for replacements of its status ([`super::overwrites`]).
    held: bool,
}

/// One pass over one pod.
async fn pass(ctx: &Context, key: &PodKey) -> Result<Passed, Error> {
    // Another writer keeps replacing this pod's status: nothing is written (status or labels)
    // until the hold is over.
    let hold = ctx
        .state()
        .pods
        .get(key)
        .and_then(|e| e.overwrites.held(ctx.clock()));
    if let Some(rest) = hold {
        debug!(pod = %key, ?rest, "pass held: another writer keeps replacing the pod's SeccompStatus");
        return Ok(Passed {
            requeue: Some(rest),
            held: true,
        });
    }
    confirm_unconfirmed_write(ctx, key).await?;
    let now = Timestamp::now();
    let Some(Prepared {
        mut plan,
        uid,
        labels,
        pod_seen,
        facts_owned,
        stored,
        namespace_terminating,
    }) = prepare(ctx, key, now)
    else {
        return Ok(Passed {
            requeue: None,
            held: false,
        });
    };

    // What the actions came to is part of the status, not a condition for it: an action the API
    // server refuses is an outcome, and one that fails for a moment (a webhook down, the API
    // server busy) is tried again after the status is written with the rest of the pass.
    let mut action_failed: Option<Error> = None;
    match sync_labels(ctx, key, &uid, &labels, &plan.labels).await {
        Ok(LabelSync::Written(written)) => ctx.state().apply_own_labels(key, pod_seen, &written),
        Ok(LabelSync::Refused(why)) => {
            plan.labels_refused(&why);
            // Once per refusal, as its Event; then at each minute's try only in debug.
            if plan.announcements.iter().any(|a| a.reason == plan::LABEL_REFUSED) {
                warn!(pod = %key, %why, "the API server refused the pod's labels");
            } else {
                debug!(pod = %key, %why, "the API server refused the pod's labels again");
            }
        }
        Ok(LabelSync::Unchanged) => {}
        Err(error) => {
            plan.labels_refused(&format!("not written yet: {error}"));
            action_failed = Some(error);
        }
    }

    if let Some(halt) = plan.halt.clone() {
        let recorded = ctx.state().ledger.halt_for(
            &halt.policy,
            &halt.workload_uid,
            &halt.workload,
            halt.reason.clone(),
            now,
        );
        if recorded {
            warn!(pod = %key, workload = %halt.workload, "eviction loop guard tripped");
            if let Err(error) = persist_ledger(ctx, &halt.policy, now).await {
                // The policy status tick writes it again; the halt holds in memory meanwhile.
                ctx.state().ledger_dirty.insert(halt.policy.to_string());
                action_failed.get_or_insert(error);
            }
        }
    }

    let mut blocked_in_a_row = 0;
    if let Some(candidate) = plan.eviction.clone() {
        let blocked_before = ctx.state().pods.get(key).map_or(0, |e| e.blocked_in_a_row);
        // Failed for a moment: the pod stays EvictionPending.
        match evict(ctx, key, &uid, &candidate.policy, &facts_owned, now).await {
            Ok(result) => {
                plan.eviction_result(&result, blocked_before);
                if result == EvictionResult::Blocked {
                    blocked_in_a_row = blocked_before.saturating_add(1);
                }
            }
            Err(error) => {
                action_failed.get_or_insert(error);
            }
        }
    }

    // Only an update of its own status is let into a namespace being deleted.
    let earlier = stored.as_ref().filter(|s| s.written_for_another_pod(&uid));
    let creates = stored.is_none() || earlier.is_some();
    let desired = status::within_size(&plan.status);
    if ctx
        .status_crd_terminating
        .load(std::sync::atomic::Ordering::Acquire)
    {
        // Its deletion waits until no status is left: this one goes too, and the pod is passed
        // again when the CRD is established again.
        debug!(pod = %key, "no SeccompStatus written: its CRD is being deleted");
    } else if creates && namespace_terminating {
        debug!(pod = %key, "no SeccompStatus created: the namespace is being deleted");
    } else if !plan.hold && status::needs_write(stored.as_ref(), &uid, &desired) {
        if let Some(earlier) = earlier {
            delete_earlier_status(ctx, key, earlier).await?;
        }
        let body = status::object(&key.namespace, &key.name, &uid, &desired);
        let fingerprint = status::fingerprint(&desired);
        ctx.writes.until_ready().await;
        if let Some(entry) = ctx.state().pods.get_mut(key) {
            entry.overwrites.writing(fingerprint, ctx.clock());
        }
        let api: Api<Decoded<StatusWire>> = Api::namespaced(ctx.client.clone(), &key.namespace);
        let written = match api
            .patch(
                &key.name,
                &crate::client::apply_as(status::MANAGER),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(written) => written,
            Err(error) => {
                // A client error (4xx) says it was not stored; a broken connection or a server
                // error (a 500 from an API server shutting down mid-request) may come after it was.
                let refused = matches!(&error, kube::Error::Api(status) if status.code < 500);
                if !refused && let Some(entry) = ctx.state().pods.get_mut(key) {
                    entry.write_unconfirmed = true;
                }
                announce_status_refused(ctx, key, &uid, &error).await;
                return Err(error.into());
            }
        };
        ctx.status_written();
        if let Decoded::Ok(written, _) = written {
            let record = StoredStatus::from_wire(&written);
            // Someone else's fields in the controller's part (server-side apply cannot remove
            // what another manager owns): replace the controller's part whole.
            if record.fingerprint != fingerprint {
                remove_foreign_fields(ctx, key, &desired, &written).await?;
            }
            ctx.state().apply_status(key, record);
        }
        debug!(pod = %key, profile = plan.status.profile.as_str(), "SeccompStatus written");
    }

    for announcement in &plan.announcements {
        if announcement.reason != "EvictionHalted" {
            let action = plan
                .outcomes
                .iter()
                .find(|o| o.policy == announcement.policy)
                .map(|o| o.action)
                .unwrap_or(PolicyAction::None);
            if action != PolicyAction::None {
                ctx.metrics.action(&announcement.policy, action);
            }
        }
        let note = format!("policy {}: {}", announcement.policy, announcement.note);
        ctx.events
            .publish(Notice {
                regarding: pod_reference(key, &uid),
                warning: announcement.warning,
                reason: announcement.reason,
                action: announcement.action,
                note: &note,
            })
            .await;
        ctx.events
            .publish(Notice {
                regarding: policy_reference(&announcement.policy),
                warning: announcement.warning,
                reason: announcement.reason,
                action: announcement.action,
                note: &format!("{key}: {note}"),
            })
            .await;
    }

    let passed = Passed {
        requeue: plan.requeue,
        held: plan.hold,
    };
    let mut state = ctx.state();
    let Some(entry) = state.pods.get_mut(key) else {
        return action_failed.map_or(Ok(passed), Err);
    };
    // A pod newly blocked by a budget counts once per episode, when the pass is recorded.
    let newly_blocked = plan.newly_blocked();
    entry.blocked_in_a_row = blocked_in_a_row;
    entry.outcomes = std::mem::take(&mut plan.outcomes).into_boxed_slice();
    entry.containers = plan
        .status
        .containers
        .iter()
        .map(|c| (c.profile.type_, c.source))
        .collect();
    for policy in newly_blocked {
        state
            .policy_counters
            .entry(policy.to_string())
            .or_default()
            .blocked += 1;
    }
    action_failed.map_or(Ok(passed), Err)
}

/// What a pass did to the pod's labels.
enum LabelSync {
    Unchanged,
    /// Written: the labels as written.
    Written(BTreeMap<String, String>),
    /// The API server refused the write (its message).
    Refused(String),
}

/// Sets or removes the pod's profile and violation labels (only those two keys).
async fn sync_labels(
    ctx: &Context,
    key: &PodKey,
    uid: &str,
    current: &BTreeMap<String, String>,
    change: &LabelChange,
) -> Result<LabelSync, Error> {
    let labels = match change {
        LabelChange::Keep => return Ok(LabelSync::Unchanged),
        LabelChange::Set(labels) => labels.clone(),
        LabelChange::Remove
            if !current.contains_key(PROFILE_LABEL) && !current.contains_key(VIOLATION_LABEL) =>
        {
            return Ok(LabelSync::Unchanged);
        }
        LabelChange::Remove => BTreeMap::new(),
    };
    ctx.writes.until_ready().await;
    match write_pod_labels(&ctx.client, &key.namespace, &key.name, uid, &labels).await? {
        PodLabels::Written => {}
        PodLabels::PodGone => {
            debug!(pod = %key, %uid, "not labelled: the pod is gone or was replaced");
            return Ok(LabelSync::Unchanged);
        }
        PodLabels::Refused(why) => return Ok(LabelSync::Refused(why)),
    }
    ctx.stats
        .label_writes
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ctx.metrics.write("label");
    debug!(pod = %key, ?labels, "labels updated");
    Ok(LabelSync::Written(labels))
}

/// What became of a write of a pod's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodLabels {
    Written,
    /// The pod the labels were decided for is gone, or another pod now has its name.
    PodGone,
    /// The API server refused it for good (an admission policy or webhook, RBAC): its message.
    Refused(String),
}

/// Sets the operator's labels on the pod `namespace/name` to exactly `labels` (the profile and
/// violation keys; a key not in it is removed, whoever set it) only if it is still the pod `uid`.
/// A merge patch, not an apply: an apply removes only what its own manager set, so a
/// `violation=true` copied into a pod template or set by hand stayed on a compliant pod. The UID
/// in the body makes the write conditional: a pod recreated under the same name (a
/// StatefulSet's) is not labelled with what was decided for the pod before it.
pub async fn write_pod_labels(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    uid: &str,
    labels: &BTreeMap<String, String>,
) -> Result<PodLabels, kube::Error> {
    let exactly: serde_json::Map<String, serde_json::Value> = crate::api::OUTCOME_LABELS
        .iter()
        .map(|key| {
            (
                key.to_string(),
                labels.get(*key).map_or(serde_json::Value::Null, |v| json!(v)),
            )
        })
        .collect();
    let patch = json!({ "metadata": { "uid": uid, "labels": exactly } });
    let pods: Api<Decoded<crate::lean::pod::PodWire>> = Api::namespaced(client.clone(), namespace);
    let params = kube::api::PatchParams {
        field_manager: Some(LABEL_MANAGER.to_string()),
        ..Default::default()
    };
    match pods.patch(name, &params, &Patch::Merge(&patch)).await {
        Ok(_) => Ok(PodLabels::Written),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(PodLabels::PodGone),
        Err(e) if crate::client::uid_mismatch(&e) => Ok(PodLabels::PodGone),
        Err(e) => match crate::client::refusal(&e) {
            Some(message) => Ok(PodLabels::Refused(message)),
            None => Err(e),
        },
    }
}

/// Checks the limits with the pod's workload counted (who else is down), then asks the Eviction
/// API as a dry run, which the API server answers from the pod's PodDisruptionBudget without
/// writing anything; then reserves the eviction in the ledger (the limits are checked again,
/// atomically), writes the ledger to the policy, and evicts for real with the pod's UID as
/// precondition. A budget that keeps refusing (a database under `maxUnavailable: 0`) so costs one
/// request per look, where it cost two writes of the policy (the reservation written ahead, then
/// taken back), each an event to every watcher of it; a workload with a pod down costs none.
async fn evict(
    ctx: &Context,
    key: &PodKey,
    uid: &str,
    policy_name: &str,
    facts: &EvictionFactsOwned,
    now: Timestamp,
) -> Result<EvictionResult, Error> {
    let gate = |reserve| eviction_gate(ctx, key, uid, policy_name, facts, now, reserve);
    if let Err(not_now) = gate(false) {
        return Ok(not_now);
    }
    if let Err(refused) = request_eviction(ctx, key, uid, true).await? {
        debug!(pod = %key, policy = %policy_name, ?refused, "eviction refused in a dry run");
        return Ok(refused);
    }
    // Again: other reconciles may have reserved or evicted during the dry run.
    let reservation = match gate(true) {
        Ok(Some(reservation)) => reservation,
        Ok(None) => return Ok(EvictionResult::NotReserved(EvictionVerdict::Proceed)),
        Err(not_now) => return Ok(not_now),
    };
    // Written ahead: a leader that dies now leaves the eviction counted for the next one.
    if let Err(e) = persist_ledger(ctx, policy_name, now).await {
        ctx.state().ledger.release(reservation);
        return Err(e);
    }
    let result = match request_eviction(ctx, key, uid, false).await {
        Ok(Ok(())) => {
            ctx.state().ledger.settle(reservation);
            ctx.stats
                .evictions
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ctx.metrics.write("eviction");
            ctx.state()
                .policy_counters
                .entry(policy_name.to_string())
                .or_default()
                .evicted += 1;
            info!(pod = %key, policy = %policy_name, "evicted");
            return Ok(EvictionResult::Evicted);
        }
        // The budget changed between the dry run and now, or the pod did.
        Ok(Err(refused)) => refused,
        Err(e) => {
            ctx.state().ledger.release(reservation);
            return Err(e.into());
        }
    };
    // Not evicted: the reservation goes, from the policy's ledger too, now. Left there until the
    // next policy status tick, a restart in between read it as an eviction, and the loop guard
    // took the pod, created in the same second, for its own replacement and halted the workload.
    ctx.state().ledger.release(reservation);
    if let Err(e) = persist_ledger(ctx, policy_name, now).await {
        // The policy status tick writes it again.
        warn!(policy = %policy_name, error = %e, "could not write the eviction ledger back");
        ctx.state().ledger_dirty.insert(policy_name.to_string());
    }
    Ok(result)
}

/// The eviction verdict with every fact of the pod and its workload, under the state's lock;
/// with `reserve`, a verdict to proceed is also recorded in the ledger at once (`None`: proceed
/// without a reservation, as a dry-run policy does). `Err`: why not now.
fn eviction_gate(
    ctx: &Context,
    key: &PodKey,
    uid: &str,
    policy_name: &str,
    facts: &EvictionFactsOwned,
    now: Timestamp,
    reserve: bool,
) -> Result<Option<Reservation>, EvictionResult> {
    let mut state = ctx.state();
    let owner_uid = facts.owner_uid.as_deref();
    let Some(limits) = state
        .valid_policies
        .iter()
        .find(|p| p.name == policy_name)
        .map(|p| policy::EvictionLimits {
            all_policies_per_minute: Some(ctx.config.max_evictions_per_minute.get()),
            ..p.eviction.clone()
        })
    else {
        return Err(EvictionResult::PodChanged);
    };
    let eviction_facts = EvictionFacts {
        policy: policy_name,
        namespace: &key.namespace,
        operator_namespace: ctx.config.operator_namespace.as_deref(),
        owner: facts.owner,
        owner_uid,
        mirror: facts.mirror,
        terminating: facts.terminating,
        terminal: facts.terminal,
        created: facts.created,
        warmed_up: state.listed,
        workload_down: owner_uid.map(|w| state.unavailable_of_workload(&key.namespace, w, uid)),
    };
    if !reserve {
        return match policy::eviction_verdict(&eviction_facts, &limits, &state.ledger, now) {
            EvictionVerdict::Proceed => Ok(None),
            verdict => Err(EvictionResult::NotReserved(verdict)),
        };
    }
    match policy::reserve_eviction(&eviction_facts, &limits, &mut state.ledger, now) {
        (_, Some(reservation)) => {
            // Its replacements are then told by what was here before, not by clocks.
            if let Some(workload) = owner_uid {
                let known = state.pods_of_workload(&key.namespace, workload);
                state.ledger.witness(&reservation, known);
            }
            Ok(Some(reservation))
        }
        (EvictionVerdict::Proceed, None) => Ok(None),
        (verdict, None) => Err(EvictionResult::NotReserved(verdict)),
    }
}

/// One request to the Eviction API for the pod with this UID, `dry_run` or for real (under the
/// write rate limit either way: a dry run costs the API server nearly what an eviction does).
/// `Ok(Err(..))` is the API server's refusal.
async fn request_eviction(
    ctx: &Context,
    key: &PodKey,
    uid: &str,
    dry_run: bool,
) -> Result<Result<(), EvictionResult>, kube::Error> {
    let eviction = Eviction {
        metadata: ObjectMeta {
            name: Some(key.name.to_string()),
            namespace: Some(key.namespace.to_string()),
            ..Default::default()
        },
        delete_options: Some(DeleteOptions {
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        }),
    };
    ctx.writes.until_ready().await;
    let pods: Api<Decoded<crate::lean::pod::PodWire>> =
        Api::namespaced(ctx.eviction_client.clone(), &key.namespace);
    // The API server copies the request's dryRun into the eviction's delete options.
    let params = PostParams {
        dry_run,
        ..PostParams::default()
    };
    match pods
        .create_subresource::<Eviction, kube::core::Status>("eviction", &key.name, &params, &eviction)
        .await
    {
        Ok(_) => Ok(Ok(())),
        Err(kube::Error::Api(s)) if s.code == 429 => Ok(Err(EvictionResult::Blocked)),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(Err(EvictionResult::PodChanged)),
        // More than one budget selects the pod, which the Eviction API does not support.
        Err(kube::Error::Api(s)) if s.code == 500 => Ok(Err(EvictionResult::Refused(s.message))),
        Err(e) => match crate::client::refusal(&e) {
            Some(message) => Ok(Err(EvictionResult::Refused(message))),
            None => Err(e),
        },
    }
}

/// Writes the policy's part of the eviction ledger into its status (own field manager, so the
/// policy status writer's fields stay).
pub(super) async fn persist_ledger(ctx: &Context, policy_name: &str, now: Timestamp) -> Result<(), Error> {
    // One write at a time, each with the ledger as it is when the write starts: a write of an
    // older snapshot can never land after a newer one.
    let _serialized = ctx.ledger_writes.lock().await;
    let ledger = ctx.state().ledger.to_status(policy_name, now);
    let body = json!({
        "apiVersion": format!("{}/{}", crate::api::GROUP, crate::api::VERSION), "kind": "SeccompPolicy",
        "metadata": { "name": policy_name }, "status": { "evictions": ledger },
    });
    ctx.writes.until_ready().await;
    let api: Api<Decoded<PolicyWire>> = Api::all(ctx.client.clone());
    match api
        .patch_status(
            policy_name,
            &crate::client::apply_as(LEDGER_MANAGER),
            &Patch::Apply(&body),
        )
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    ctx.metrics.write("ledger");
    Ok(())
}

/// Deletes the SeccompStatus of an earlier pod of the same name (a StatefulSet's pod, recreated),
/// as the garbage collector does once it gets to it, before this pod's is written: an apply would
/// keep what the node agent found in the earlier pod's containers and profile files, under the
/// agent's own field manager, until the agent looks at the new pod, which it never does while
/// that pod is not running on its node. The delete holds only if the object is still the one
/// read (else it fails and the pass is tried again).
async fn delete_earlier_status(ctx: &Context, key: &PodKey, earlier: &StoredStatus) -> Result<(), Error> {
    ctx.writes.until_ready().await;
    let api: Api<Decoded<StatusWire>> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let params = kube::api::DeleteParams {
        preconditions: earlier.resource_version.map(|version| kube::api::Preconditions {
            resource_version: Some(version.to_string()),
            uid: None,
        }),
        ..Default::default()
    };
    match api.delete(&key.name, &params).await {
        Ok(_) => ctx.status_written(),
        // The garbage collector was first.
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    debug!(pod = %key, "the SeccompStatus of an earlier pod of the same name deleted");
    Ok(())
}

/// Replaces the controller-owned part of a SeccompStatus (a JSON merge patch: lists and fields
/// written by another field manager go), keeping the node agent's `RuntimeVerified` condition and
/// each listed container's `runtime` of `written`, on condition that the object is still
/// `written` (else the write fails and is tried again).
async fn remove_foreign_fields(
    ctx: &Context,
    key: &PodKey,
    desired: &SeccompStatusStatus,
    written: &StatusWire,
) -> Result<(), Error> {
    let mut status = serde_json::to_value(desired).unwrap_or_default();
    // The agent's findings as it wrote them, into the entries they belong to.
    if let Some(containers) = status.get_mut("containers").and_then(|c| c.as_array_mut()) {
        for (name, runtime) in written.container_runtimes() {
            let entry = containers
                .iter_mut()
                .find(|c| c.get("name").and_then(|n| n.as_str()) == Some(name));
            if let Some(serde_json::Value::Object(entry)) = entry {
                entry.insert("runtime".into(), runtime.clone());
            }
        }
    }
    let agents: Vec<serde_json::Value> = written
        .conditions_of_type(status::RUNTIME_VERIFIED)
        .cloned()
        .collect();
    if let Some(object) = status.as_object_mut()
        && !agents.is_empty()
    {
        let conditions = object
            .entry("conditions")
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let Some(list) = conditions.as_array_mut() {
            list.extend(agents);
        }
    }
    for field in [
        "source",
        "node",
        "scc",
        "verdict",
        "action",
        "containers",
        "unlistedContainers",
        "policies",
        "conditions",
    ] {
        if let Some(object) = status.as_object_mut() {
            object.entry(field).or_insert(serde_json::Value::Null);
        }
    }
    warn!(pod = %key, "the SeccompStatus held fields written by someone else: replaced");
    ctx.writes.until_ready().await;
    let api: Api<Decoded<StatusWire>> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let written = api
        .patch(
            &key.name,
            &PatchParams {
                field_manager: Some(status::MANAGER.into()),
                ..PatchParams::default()
            },
            &Patch::Merge(&json!({
                "metadata": { "resourceVersion": written.metadata.resource_version },
                "status": status,
            })),
        )
        .await?;
    ctx.metrics.write("status");
    if let Decoded::Ok(written, _) = written {
        ctx.state().apply_status(key, StoredStatus::from_wire(&written));
    }
    Ok(())
}

fn pod_reference(key: &PodKey, uid: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(key.name.to_string()),
        namespace: Some(key.namespace.to_string()),
        uid: Some(uid.to_string()),
        ..Default::default()
    }
}

pub(super) fn policy_reference(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(format!("{}/{}", crate::api::GROUP, crate::api::VERSION)),
        kind: Some("SeccompPolicy".into()),
        name: Some(name.to_string()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::worth_a_warning;

    #[test]
    fn a_failure_that_lasts_is_a_warning_less_and_less_often() {
        let warned: Vec<u8> = (1..=u8::MAX).filter(|&a| worth_a_warning(a)).collect();
        // At most a minute apart from the 7th on: about two hours with 8 warnings, where there
        // were 255 (and one a minute after that).
        assert_eq!(warned, [1, 2, 4, 8, 16, 32, 64, 128]);
    }
}
