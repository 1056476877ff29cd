//! Every two seconds: each policy's status (counters from the latest outcomes, `Ready`/`Stalled`
//! with `observedGeneration`, `EvictionsHalted` from the ledger), written only when it changed;
//! the ledger of policies whose reservations were taken back or halts lifted (by the resume
//! annotation, or because the workload is gone); an Event for each lift; and the container gauges.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{Api, api::Patch};
use serde_json::json;
use tracing::warn;

use super::{Context, Error, execute::persist_ledger, state::PolicyEntry};
use crate::{
    api::{PolicyAction, SeccompPolicyStatus, Verdict},
    events::Notice,
    lean::{Decoded, cluster::PolicyWire},
    status::{ConditionMark, RuntimeFinding, condition},
};

pub(super) fn spawn(ctx: Arc<Context>) {
    let task_ctx = ctx.clone();
    task_ctx.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut writes = Writes::new(StatusManager::for_config(&ctx.config));
        loop {
            tick.tick().await;
            refresh_gauges(&ctx);
            report_drift(&ctx).await;
            report_resumed(&ctx).await;
            if let Err(e) = write_policy_statuses(&ctx, &mut writes).await {
                warn!(error = %e, "policy status update failed");
            }
        }
    });
}

/// One Warning Event for each newly seen disagreement of nodes about a profile path, about the
/// node whose content differs from most others.
async fn report_drift(ctx: &Context) {
    let found = std::mem::take(&mut ctx.state().drift_found);
    for (path, digests) in found {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (_, sha) in &digests {
            *counts.entry(sha.as_str()).or_default() += 1;
        }
        let usual = counts
            .iter()
            .max_by_key(|(sha, n)| (**n, std::cmp::Reverse(**sha)))
            .map(|(sha, _)| *sha);
        let Some((odd_node, _)) = digests.iter().find(|(_, sha)| Some(sha.as_str()) != usual) else {
            continue;
        };
        let shown: Vec<String> = digests
            .iter()
            .take(5)
            .map(|(node, sha)| format!("{} on {node}", crate::profile::short_digest(sha)))
            .collect();
        let note = format!("profile {path} differs between nodes: {}", shown.join(", "));
        let regarding = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(odd_node.clone()),
            ..Default::default()
        };
        // One Event per path and set of contents, across restarts too: a new process finds the
        // paths differing again and would announce each of them a second time.
        let contents: BTreeSet<&str> = digests.iter().map(|(_, sha)| sha.as_str()).collect();
        ctx.events
            .publish_once(
                Notice {
                    regarding,
                    warning: true,
                    reason: "ProfileDrift",
                    action: "Compare",
                    note: &note,
                },
                (&path, contents),
            )
            .await;
        ctx.stats.drift_reports.fetch_add(1, Ordering::Relaxed);
    }
}

/// One Event on each policy whose resume annotation lifted halts, naming the workloads.
async fn report_resumed(ctx: &Context) {
    let resumed = std::mem::take(&mut ctx.state().resumed);
    for (policy, lifted) in resumed {
        let names: Vec<&str> = lifted.iter().map(|h| h.name.as_str()).collect();
        let note = format!(
            "{} lifted the eviction halt of: {}",
            crate::policy::RESUME_ANNOTATION,
            crate::status::summarize_names(&names)
        );
        tracing::info!(%policy, workloads = ?names, "eviction halts lifted");
        ctx.events
            .publish(Notice {
                regarding: super::execute::policy_reference(&policy),
                warning: false,
                reason: "EvictionsResumed",
                action: "Resume",
                note: &note,
            })
            .await;
    }
}

fn refresh_gauges(ctx: &Context) {
    let state = ctx.state();
    let pods = state
        .pods
        .iter()
        .filter(|(_, e)| e.has_pod())
        .map(|(k, e)| (&*k.namespace, &*e.containers));
    ctx.metrics.set_containers(pods);
    let count = |finding| state.pods.values().filter(|e| e.runtime() == finding).count();
    ctx.metrics
        .set_runtime_findings(count(RuntimeFinding::Mismatch), count(RuntimeFinding::Unverified));
    ctx.metrics
        .known_policies(state.policies.keys().map(String::as_str));
    ctx.metrics.set_halted(
        state
            .ledger
            .halted_by_policy()
            .filter(|(policy, _)| state.policies.contains_key(*policy)),
    );
}

/// Counts of what one policy found, from the pods' latest outcomes.
#[derive(Clone, Copy, Default)]
struct Counts {
    matched: u32,
    compliant: u32,
    violating: u32,
    exempt: u32,
    labeled: u32,
}

/// Who writes policy statuses, and how. An operator limited by `--namespaces` (one shard of
/// several) counts only its namespaces' pods: two shards that forced their counts over each other
/// wrote one policy's status for ever. So each shard applies under a name of its own
/// (`seccomp-sentinel-policy-status-<hash of its namespaces>`) without forcing, and leaves a
/// status another seccomp-sentinel keeps; the operator of every namespace, whose counts are the
/// whole, forces (`seccomp-sentinel-policy-status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct StatusManager {
    name: String,
    shard: bool,
}

/// The field manager of policy statuses of the operator that watches every namespace; shards
/// add a suffix.
const POLICY_STATUS_MANAGER: &str = "seccomp-sentinel-policy-status";

impl StatusManager {
    fn for_config(config: &super::config::ControllerConfig) -> Self {
        StatusManager::for_namespaces(config.namespace_list())
    }

    fn for_namespaces<'a>(namespaces: impl IntoIterator<Item = &'a str>) -> Self {
        let scope: BTreeSet<&str> = namespaces.into_iter().collect();
        if scope.is_empty() {
            return StatusManager {
                name: POLICY_STATUS_MANAGER.into(),
                shard: false,
            };
        }
        use sha2::Digest;
        let digest = sha2::Sha256::digest(scope.into_iter().collect::<Vec<_>>().join(",").as_bytes());
        let hash: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
        StatusManager {
            name: format!("{POLICY_STATUS_MANAGER}-{hash}"),
            shard: true,
        }
    }

    fn params(&self) -> kube::api::PatchParams {
        if self.shard {
            crate::client::apply_unforced(&self.name)
        } else {
            crate::client::apply_as(&self.name)
        }
    }
}

/// What a shard does when its apply of a policy status conflicts with `managers`' fields: leave
/// the status to another seccomp-sentinel that keeps it (named), or take over from anyone else (a
/// person's edit, or this operator's release before field managers were per shard, which wrote
/// as plain `seccomp-sentinel`).
fn keeper_of<'a>(own: &str, managers: &[&'a str]) -> Option<&'a str> {
    managers
        .iter()
        .copied()
        .find(|m| *m != own && m.starts_with(POLICY_STATUS_MANAGER))
}

/// The field managers a server-side apply conflict names, in its message (`conflict with "NAME"
/// ...`, or `conflicts with "NAME" ...` for several fields of one manager) and in its causes.
fn conflicting_managers<'a>(messages: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut managers = Vec::new();
    for message in messages {
        for pattern in ["conflict with \"", "conflicts with \""] {
            for rest in message.split(pattern).skip(1) {
                if let Some((name, _)) = rest.split_once('"')
                    && !managers.contains(&name)
                {
                    managers.push(name);
                }
            }
        }
    }
    managers
}

/// This process's policy-status writes.
struct Writes {
    manager: StatusManager,
    /// Per policy, its last write.
    statuses: HashMap<String, WrittenStatus>,
    /// Per policy a shard leaves to another operator: the policy object as it was then (its uid and
    /// resourceVersion) and the status this shard wanted; tried again when either changes.
    left: HashMap<String, LeftStatus>,
    /// Policies (name, uid) whose keeper was named in a warning: once each.
    warned: HashSet<(String, Option<String>)>,
}

impl Writes {
    /// Policies gone, or replaced by another object of the same name, are forgotten; a status
    /// left to another operator is tried again once the policy changed.
    fn forget_gone(&mut self, policies: &std::collections::BTreeMap<String, PolicyEntry>) {
        let same_object =
            |name: &str, uid: &Option<String>| policies.get(name).is_some_and(|e| &e.uid == uid);
        self.statuses.retain(|name, w| same_object(name, &w.uid));
        self.warned.retain(|(name, uid)| same_object(name, uid));
        self.left.retain(|name, l| {
            policies
                .get(name)
                .is_some_and(|e| e.uid == l.uid && e.resource_version == l.resource_version)
        });
    }

    fn new(manager: StatusManager) -> Self {
        Writes {
            manager,
            statuses: HashMap::new(),
            left: HashMap::new(),
            warned: HashSet::new(),
        }
    }
}

#[derive(Debug)]
struct LeftStatus {
    uid: Option<String>,
    resource_version: Option<u64>,
    status: SeccompPolicyStatus,
}

/// A policy status this process wrote: for which policy object, and the resourceVersion the
/// write returned.
#[derive(Debug)]
struct WrittenStatus {
    uid: Option<String>,
    resource_version: Option<u64>,
    status: SeccompPolicyStatus,
}

/// The status to compare a policy's desired status with: what its watch shows, or this process's
/// last write to the same object while the watch does not show that write yet. (Compared with
/// the last write alone, a policy deleted and created again, or a status edited by hand, was
/// never written again.)
fn last_known<'a>(entry: &PolicyEntry, written: Option<&'a WrittenStatus>) -> LastKnown<'a> {
    if let Some(own) = written.filter(|w| w.uid == entry.uid)
        && matches!((entry.resource_version, own.resource_version), (Some(seen), Some(wrote)) if seen < wrote)
    {
        return LastKnown::OwnWrite(&own.status);
    }
    LastKnown::Stored(
        entry
            .status
            .as_ref()
            .and_then(|s| serde_json::from_value::<SeccompPolicyStatus>(strip_times(s.clone())).ok()),
    )
}

enum LastKnown<'a> {
    /// Written by this process, not shown by the watch yet.
    OwnWrite(&'a SeccompPolicyStatus),
    /// As the watch shows it (condition times left out), if it reads as a status.
    Stored(Option<SeccompPolicyStatus>),
}

impl LastKnown<'_> {
    /// The own write, whose conditions stand for the stored ones (their transition times).
    fn own_write(&self) -> Option<&SeccompPolicyStatus> {
        match self {
            LastKnown::OwnWrite(status) => Some(status),
            LastKnown::Stored(_) => None,
        }
    }

    fn same_as(&self, desired: &SeccompPolicyStatus) -> bool {
        let last = match self {
            LastKnown::OwnWrite(status) => Some(*status),
            LastKnown::Stored(status) => status.as_ref(),
        };
        last.is_some_and(|last| same_status(last, desired))
    }
}

async fn write_policy_statuses(ctx: &Context, writes: &mut Writes) -> Result<(), Error> {
    let now = Timestamp::now();
    let (desired, ledgers): (Vec<Desired>, Vec<String>) = {
        let mut state = ctx.state();
        if state.listed {
            // Once the workload caches are whole, a halted workload they lack is gone.
            let state = &mut *state;
            let workloads = &state.workloads;
            let pruned = state
                .ledger
                .forget_halts_of_gone_workloads(|uid| workloads.contains_key(uid));
            state.ledger_dirty.extend(pruned);
        }
        writes.forget_gone(&state.policies);
        let (written, left) = (&writes.statuses, &writes.left);
        let complete = state.outcomes_complete();
        let mut counts: HashMap<&str, Counts> = HashMap::new();
        for entry in state.pods.values().filter(|e| e.has_pod()) {
            for o in &entry.outcomes {
                let c = counts.entry(&o.policy).or_default();
                c.matched += 1;
                match o.verdict {
                    Verdict::Compliant => c.compliant += 1,
                    Verdict::Violating => c.violating += 1,
                    Verdict::Exempt => c.exempt += 1,
                }
                // Label and Evict policies label the pods they find violating.
                if o.verdict == Verdict::Violating && o.action != PolicyAction::None {
                    c.labeled += 1;
                }
            }
        }
        let desired = state
            .policies
            .iter()
            .filter(|(_, entry)| may_write(entry, complete))
            .map(|(name, entry)| {
                let last = last_known(entry, written.get(name));
                let status = policy_status(
                    &state,
                    name,
                    entry,
                    counts.get(name.as_str()),
                    last.own_write(),
                    now,
                );
                // Left to another operator: not tried again until the policy or this status changes.
                let unchanged =
                    last.same_as(&status) || left.get(name).is_some_and(|l| same_status(&l.status, &status));
                Desired {
                    name: name.clone(),
                    uid: entry.uid.clone(),
                    resource_version: entry.resource_version,
                    status,
                    unchanged,
                }
            })
            .collect();
        let ledgers = state.ledger_dirty.drain().collect();
        (desired, ledgers)
    };
    for policy in ledgers {
        persist_ledger(ctx, &policy, now).await?;
    }
    for Desired {
        name,
        uid,
        resource_version,
        status,
        unchanged,
    } in desired
    {
        if unchanged {
            continue;
        }
        match apply_policy_status(ctx, &writes.manager, &name, &status).await {
            Ok(Applied::Stored(resource_version)) => {
                ctx.metrics.write("policy_status");
                writes.statuses.insert(
                    name,
                    WrittenStatus {
                        uid,
                        resource_version,
                        status,
                    },
                );
            }
            Ok(Applied::LeftTo(keeper)) => {
                if writes.warned.insert((name.clone(), uid.clone())) {
                    warn!(
                        policy = %name,
                        keeper,
                        own = %writes.manager.name,
                        "another seccomp-sentinel (watching other namespaces) keeps this policy's status; \
                         its counts are that operator's and this one leaves them: give each shard its own \
                         policies (--policy-selector) to have every policy counted whole; if that operator \
                         no longer runs, hand the status over by clearing the policy's managed fields"
                    );
                }
                writes.left.insert(
                    name,
                    LeftStatus {
                        uid,
                        resource_version,
                        status,
                    },
                );
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A policy's status this pass would write.
struct Desired {
    name: String,
    uid: Option<String>,
    /// The policy's, as read.
    resource_version: Option<u64>,
    status: SeccompPolicyStatus,
    /// The same as what is stored, or as what was left to another operator.
    unchanged: bool,
}

/// What became of an apply of a policy's status.
enum Applied {
    /// Written; the resourceVersion it returned.
    Stored(Option<u64>),
    /// Not written: another seccomp-sentinel (this field manager) keeps it.
    LeftTo(String),
}

/// Applies `status` to policy `name` as `manager`. A shard's apply that conflicts with another
/// seccomp-sentinel's fields leaves the status to it ([`keeper_of`]); one that conflicts with
/// anyone else's is made again, forced.
async fn apply_policy_status(
    ctx: &Context,
    manager: &StatusManager,
    name: &str,
    status: &SeccompPolicyStatus,
) -> Result<Applied, kube::Error> {
    let api: Api<Decoded<PolicyWire>> = Api::all(ctx.client.clone());
    let body = json!({
        "apiVersion": format!("{}/{}", crate::api::GROUP, crate::api::VERSION), "kind": "SeccompPolicy",
        "metadata": { "name": name }, "status": status,
    });
    let mut params = manager.params();
    loop {
        ctx.writes.until_ready().await;
        match api.patch_status(name, &params, &Patch::Apply(&body)).await {
            Ok(stored) => return Ok(Applied::Stored(stored.resource_version_number())),
            Err(kube::Error::Api(refusal)) if refusal.code == 409 && !params.force => {
                let causes = refusal.details.iter().flat_map(|d| &d.causes);
                let managers = conflicting_managers(
                    std::iter::once(refusal.message.as_str()).chain(causes.map(|c| c.message.as_str())),
                );
                if let Some(keeper) = keeper_of(&manager.name, &managers) {
                    return Ok(Applied::LeftTo(keeper.to_string()));
                }
                // Someone else's edit: taken over, as the operator of every namespace does.
                params = params.force();
            }
            Err(e) => return Err(e),
        }
    }
}

/// Until every pod listed at start has had a pass (`outcomes_complete`), the counts are a part of
/// the truth: a policy whose status describes its current spec (a restart) keeps that status until
/// then. One without a status, or whose spec changed, gets its conditions now, with the counts so
/// far.
fn may_write(entry: &PolicyEntry, outcomes_complete: bool) -> bool {
    let observed = entry
        .status
        .as_ref()
        .and_then(|s| s.get("observedGeneration"))
        .and_then(serde_json::Value::as_i64);
    outcomes_complete || observed.is_none() || observed != entry.generation
}

/// A stored policy status as JSON, with condition times made readable whatever they were (they
/// do not take part in the comparison).
fn strip_times(mut status: serde_json::Value) -> serde_json::Value {
    if let Some(conditions) = status.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in conditions {
            c["lastTransitionTime"] = json!("1970-01-01T00:00:00Z");
        }
    }
    status
}

fn same_status(a: &SeccompPolicyStatus, b: &SeccompPolicyStatus) -> bool {
    let strip = |s: &SeccompPolicyStatus| {
        let mut s = s.clone();
        // The ledger has its own writer.
        s.evictions = None;
        for c in &mut s.conditions {
            c.last_transition_time = Time(Timestamp::UNIX_EPOCH);
        }
        s.conditions.sort_by(|x, y| x.type_.cmp(&y.type_));
        s
    };
    strip(a) == strip(b)
}

fn policy_status(
    state: &super::state::State,
    name: &str,
    entry: &PolicyEntry,
    counts: Option<&Counts>,
    last_written: Option<&SeccompPolicyStatus>,
    now: Timestamp,
) -> SeccompPolicyStatus {
    let counts = counts.copied().unwrap_or_default();
    let now_time = Time(now);
    // Cumulative counters: what the status held when first seen, plus this process's.
    let seen = entry.status.as_ref();
    let base = state.policy_bases.get(name).copied().unwrap_or_default();
    let own = state.policy_counters.get(name).copied().unwrap_or_default();
    let previous: Vec<ConditionMark> = match last_written {
        Some(s) => s.conditions.iter().map(ConditionMark::of).collect(),
        None => ConditionMark::read_all(seen),
    };
    let mut conditions = match &entry.compiled {
        Ok(p) => {
            let expired = p.expired_exemptions(now);
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
                condition("Ready", "True", "Valid", message, &previous, &now_time),
                condition("Stalled", "False", "Valid", String::new(), &previous, &now_time),
            ]
        }
        Err(e) => vec![
            condition(
                "Ready",
                "False",
                "InvalidSpec",
                format!("the policy is ignored: {e}"),
                &previous,
                &now_time,
            ),
            condition("Stalled", "True", "InvalidSpec", e.clone(), &previous, &now_time),
        ],
    };
    if let Some(ledger) = state.ledger.policy(name).filter(|l| !l.halted.is_empty()) {
        let names: Vec<&str> = ledger.halted.iter().map(|h| h.name.as_str()).collect();
        let mut message = format!(
            "replacements came back unconfined, evictions stopped for: {} (status.evictions.halted \
             lists them); to resume once fixed, annotate the policy {}=<the current time, RFC 3339>",
            crate::status::summarize_names(&names),
            crate::policy::RESUME_ANNOTATION
        );
        if let Err(ignored) = &entry.resume {
            message.push_str(&format!(" ({ignored})"));
        }
        conditions.push(condition(
            "EvictionsHalted",
            "True",
            "ReplacementUnconfined",
            message,
            &previous,
            &now_time,
        ));
    }
    for c in &mut conditions {
        c.observed_generation = entry.generation;
    }
    SeccompPolicyStatus {
        observed_generation: entry.generation,
        conditions,
        matched_pods: counts.matched,
        compliant_pods: counts.compliant,
        violating_pods: counts.violating,
        exempt_pods: counts.exempt,
        labeled_pods: counts.labeled,
        evicted_pods: base.evicted + own.evicted,
        blocked_evictions: base.blocked + own.blocked,
        halted_workloads: state
            .ledger
            .policy(name)
            .map_or(0, |l| u32::try_from(l.halted.len()).unwrap_or(u32::MAX)),
        evictions: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(generation: i64, status: Option<serde_json::Value>) -> PolicyEntry {
        PolicyEntry {
            uid: Some("u".into()),
            generation: Some(generation),
            resource_version: Some(10),
            compiled: Err("not needed".into()),
            status,
            resume: Ok(None),
        }
    }

    #[test]
    fn shards_write_under_names_of_their_own_and_leave_a_status_another_sentinel_keeps() {
        let whole = StatusManager::for_namespaces([]);
        assert_eq!((whole.name.as_str(), whole.shard), (POLICY_STATUS_MANAGER, false));
        // `SENTINEL_NAMESPACES=` (empty) is every namespace, not a shard.
        let from_env = super::super::config::ControllerConfig {
            namespaces: vec![String::new(), " ".into()],
            ..Default::default()
        };
        assert_eq!(StatusManager::for_config(&from_env), whole);
        let shard = StatusManager::for_namespaces(["b", "a"]);
        // The order and repeats of --namespaces do not make another shard.
        assert_eq!(shard, StatusManager::for_namespaces(["a", "b", "a"]));
        let other = StatusManager::for_namespaces(["c"]);
        assert!(shard.shard && shard.name != other.name, "{shard:?} {other:?}");
        assert!(
            shard.name.len() <= 128,
            "a field manager name is at most 128 bytes"
        );
        // As the API server words conflicts (Kubernetes 1.37, captured on `make run`): one
        // manager with several fields, and another in a cause.
        let message = format!(
            "Apply failed with 3 conflicts: conflicts with \"{}\" with subresource \"status\":\n\
             - .status.compliantPods\n- .status.matchedPods",
            other.name
        );
        let cause = "conflict with \"kubectl-edit\" with subresource \"status\"";
        let managers = conflicting_managers([message.as_str(), cause, cause]);
        assert_eq!(managers, [other.name.as_str(), "kubectl-edit"]);
        assert_eq!(keeper_of(&shard.name, &managers), Some(other.name.as_str()));
        assert_eq!(
            keeper_of(&shard.name, &[POLICY_STATUS_MANAGER]),
            Some(POLICY_STATUS_MANAGER)
        );
        // A person's edit, or this operator's earlier release (plain `seccomp-sentinel`), is taken over.
        assert_eq!(
            keeper_of(&shard.name, &["kubectl-edit", "seccomp-sentinel"]),
            None
        );
        assert_eq!(keeper_of(&shard.name, &[shard.name.as_str()]), None);
    }

    #[test]
    fn the_last_known_status_is_the_stored_one_once_the_watch_shows_the_own_write() {
        let stored = entry(1, Some(json!({ "observedGeneration": 1, "matchedPods": 3 })));
        let own = WrittenStatus {
            uid: Some("u".into()),
            resource_version: Some(12),
            status: SeccompPolicyStatus {
                matched_pods: 4,
                ..Default::default()
            },
        };
        // The watch still shows resourceVersion 10: the own write (12) stands for it.
        assert!(matches!(last_known(&stored, Some(&own)), LastKnown::OwnWrite(s) if s.matched_pods == 4));
        // The watch caught up (or someone wrote after it): what it shows counts.
        let caught_up = PolicyEntry {
            resource_version: Some(12),
            ..entry(1, Some(json!({ "observedGeneration": 1, "matchedPods": 3 })))
        };
        assert!(
            matches!(last_known(&caught_up, Some(&own)), LastKnown::Stored(Some(s)) if s.matched_pods == 3)
        );
        // A policy deleted and created again: another object, nothing of the old one counts.
        let recreated = PolicyEntry {
            uid: Some("u2".into()),
            ..entry(1, None)
        };
        assert!(matches!(
            last_known(&recreated, Some(&own)),
            LastKnown::Stored(None)
        ));
    }

    #[test]
    fn the_halt_condition_says_how_to_lift_it_and_why_an_annotation_is_ignored() {
        let now = Timestamp::from_second(1_800_000_000).expect("t");
        let mut state = super::super::state::State::default();
        state.ledger.halt_for(
            "p",
            "rs-1",
            "shop/ReplicaSet web",
            "came back unconfined".into(),
            now,
        );
        let halted = |state: &super::super::state::State, entry: &PolicyEntry| {
            policy_status(state, "p", entry, None, None, now)
                .conditions
                .into_iter()
                .find(|c| c.type_ == "EvictionsHalted")
                .map(|c| c.message)
                .expect("an EvictionsHalted condition")
        };
        let message = halted(&state, &entry(1, None));
        assert!(message.contains("shop/ReplicaSet web"), "{message}");
        // However many workloads halted, the message names a few.
        for i in 0..40 {
            state.ledger.halt_for(
                "p",
                &format!("rs-{i}-x"),
                &format!("shop/ReplicaSet web-{i}"),
                "why".into(),
                now,
            );
        }
        let message = halted(&state, &entry(1, None));
        assert!(message.contains("and 36 more"), "{message}");
        let status = policy_status(&state, "p", &entry(1, None), None, None, now);
        assert_eq!(status.halted_workloads, 41);
        assert!(message.len() < 400, "{message}");
        assert!(
            message.contains("seccomp.sentinel.dev/resume-evictions="),
            "{message}"
        );
        let mut typo = entry(1, None);
        typo.resume = crate::policy::resume_time(Some("yesterday"), now);
        let message = halted(&state, &typo);
        assert!(
            message.contains("\"yesterday\" is not an RFC 3339 time"),
            "{message}"
        );
    }

    #[test]
    fn partial_counts_do_not_replace_a_status_of_the_current_spec() {
        let current = entry(2, Some(json!({ "observedGeneration": 2, "matchedPods": 40 })));
        assert!(
            !may_write(&current, false),
            "a restart: kept until every pod had a pass"
        );
        assert!(may_write(&current, true));
        let changed = entry(3, Some(json!({ "observedGeneration": 2, "matchedPods": 40 })));
        assert!(
            may_write(&changed, false),
            "a new spec shows its conditions at once"
        );
        assert!(may_write(&entry(1, None), false), "a new policy too");
        assert!(
            may_write(&entry(1, Some(json!({}))), false),
            "a status without a generation"
        );
    }
}
