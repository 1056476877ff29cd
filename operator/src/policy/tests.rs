use serde_json::json;

use super::*;
use crate::api::{ContainerSeccomp, PodProfile, ProfileType};

fn policy(spec: serde_json::Value) -> SeccompPolicy {
    serde_json::from_value(json!({
        "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompPolicy",
        "metadata": { "name": "p", "generation": 3 }, "spec": spec
    }))
    .expect("policy")
}

fn compiled(spec: serde_json::Value) -> CompiledPolicy {
    compile_policy(&policy(spec)).expect("valid policy")
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn container(name: &str, type_: ProfileType, localhost: Option<&str>) -> ContainerSeccomp {
    ContainerSeccomp::with_profile(name, type_, localhost)
}

fn evaluation(containers: Vec<ContainerSeccomp>) -> SeccompStatusStatus {
    SeccompStatusStatus {
        containers,
        ..Default::default()
    }
}

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).expect("time")
}

struct Pod {
    namespace: &'static str,
    labels: BTreeMap<String, String>,
    namespace_labels: BTreeMap<String, String>,
    scc: Option<&'static str>,
}

impl Pod {
    fn new() -> Pod {
        Pod {
            namespace: "shop",
            labels: labels(&[("app", "web")]),
            namespace_labels: labels(&[("env", "prod")]),
            scc: None,
        }
    }
    fn subject(&self) -> Subject<'_> {
        Subject {
            namespace: self.namespace,
            labels: &self.labels,
            namespace_labels: &self.namespace_labels,
            scc: self.scc,
        }
    }
}

fn verdict(p: &CompiledPolicy, pod: &Pod, containers: Vec<ContainerSeccomp>) -> Judgement {
    p.judge(&pod.subject(), &evaluation(containers), now())
}

use ProfileType::{Localhost as L, NotApplicable as NA, RuntimeDefault as RD, Unconfined as U};

#[test]
fn selection_by_namespace_labels_and_pod_labels() {
    let pod = Pod::new();
    assert!(
        compiled(json!({})).selects(&pod.subject()),
        "an empty policy selects every pod"
    );
    assert!(compiled(json!({ "namespaceSelector": {} , "podSelector": {} })).selects(&pod.subject()));
    assert!(
        compiled(json!({ "namespaceSelector": { "matchLabels": { "env": "prod" } } }))
            .selects(&pod.subject())
    );
    assert!(
        !compiled(json!({ "namespaceSelector": { "matchLabels": { "env": "dev" } } }))
            .selects(&pod.subject())
    );
    assert!(compiled(json!({ "podSelector": { "matchExpressions": [{ "key": "app", "operator": "In", "values": ["web", "api"] }] } }))
        .selects(&pod.subject()));
    assert!(!compiled(json!({ "podSelector": { "matchLabels": { "app": "db" } } })).selects(&pod.subject()));
    assert!(
        compiled(json!({ "namespaceSelector": { "matchLabels": { "env": "prod" } } })).uses_namespace_labels
    );
    assert!(!compiled(json!({ "namespaceSelector": {} })).uses_namespace_labels);
}

#[test]
fn verdicts_on_profiles() {
    let pod = Pod::new();
    let default = compiled(json!({}));
    let rd_only = compiled(json!({ "allowedProfiles": ["RuntimeDefault"] }));
    let localhost_only = compiled(
        json!({ "allowedProfiles": ["Localhost"], "allowedLocalhostProfiles": ["profiles/*.json", "team-a/**"] }),
    );
    let cases: Vec<(&CompiledPolicy, Vec<ContainerSeccomp>, Verdict, &str)> = vec![
        (
            &default,
            vec![container("a", RD, None), container("b", L, Some("x.json"))],
            Verdict::Compliant,
            "Allowed",
        ),
        (
            &default,
            vec![container("a", RD, None), container("b", U, None)],
            Verdict::Violating,
            "Unconfined",
        ),
        (
            &default,
            vec![container("w", NA, None)],
            Verdict::Compliant,
            "Allowed",
        ),
        (
            &rd_only,
            vec![container("a", L, Some("x.json"))],
            Verdict::Violating,
            "ProfileNotAllowed",
        ),
        (
            &localhost_only,
            vec![container("a", RD, None)],
            Verdict::Violating,
            "ProfileNotAllowed",
        ),
        // The kubelet cleans the path: the same file, allowed.
        (
            &localhost_only,
            vec![container("a", L, Some("./profiles//app.json"))],
            Verdict::Compliant,
            "Allowed",
        ),
        (
            &localhost_only,
            vec![container("a", L, Some("profiles/app.json"))],
            Verdict::Compliant,
            "Allowed",
        ),
        (
            &localhost_only,
            vec![container("a", L, Some("team-a/deep/x.json"))],
            Verdict::Compliant,
            "Allowed",
        ),
        // `*` does not cross a '/'.
        (
            &localhost_only,
            vec![container("a", L, Some("profiles/sub/app.json"))],
            Verdict::Violating,
            "LocalhostProfileNotAllowed",
        ),
        (
            &localhost_only,
            vec![container("a", L, Some("other.json"))],
            Verdict::Violating,
            "LocalhostProfileNotAllowed",
        ),
        (
            &localhost_only,
            vec![container("a", L, Some("other.json")), container("b", U, None)],
            Verdict::Violating,
            "Unconfined",
        ),
    ];
    for (i, (p, containers, expected, reason)) in cases.into_iter().enumerate() {
        let j = verdict(p, &pod, containers);
        assert_eq!(
            (j.verdict, j.reason.as_str()),
            (expected, reason),
            "case {i}: {}",
            j.message
        );
    }
}

#[test]
fn violation_messages_name_containers_and_stay_short() {
    let containers: Vec<ContainerSeccomp> = (0..8).map(|i| container(&format!("c{i}"), U, None)).collect();
    let j = verdict(&compiled(json!({})), &Pod::new(), containers);
    assert_eq!(
        j.message,
        "not allowed: c0 (Unconfined), c1 (Unconfined), c2 (Unconfined), c3 (Unconfined), c4 (Unconfined) and 3 more"
    );
}

#[test]
fn exemptions_by_namespace_selector_container_and_scc() {
    let p = compiled(json!({ "exemptions": [
        { "reason": "legacy batch", "namespaces": ["batch"] },
        { "reason": "debug tooling", "podSelector": { "matchLabels": { "debug": "true" } } },
        { "reason": "mesh proxy needs ptrace", "containers": ["istio-proxy"] },
        { "reason": "node agents", "sccs": ["privileged"], "namespaces": ["agents"] },
        { "reason": "until the fix ships", "namespaces": ["shop"], "expires": "2020-01-01T00:00:00Z" }
    ]}));
    let unconfined = || vec![container("app", U, None)];

    let mut pod = Pod::new();
    assert_eq!(
        verdict(&p, &pod, unconfined()).verdict,
        Verdict::Violating,
        "the shop exemption has expired"
    );
    assert_eq!(
        p.expired_exemptions(now()),
        vec!["until the fix ships".to_string()]
    );

    pod.namespace = "batch";
    let j = verdict(&p, &pod, unconfined());
    assert_eq!((j.verdict, j.message.as_str()), (Verdict::Exempt, "legacy batch"));

    let mut debug = Pod::new();
    debug.labels.insert("debug".into(), "true".into());
    assert_eq!(verdict(&p, &debug, unconfined()).verdict, Verdict::Exempt);

    // A container exemption spares that container only.
    let pod = Pod::new();
    let j = verdict(
        &p,
        &pod,
        vec![container("app", RD, None), container("istio-proxy", U, None)],
    );
    assert_eq!(
        (j.verdict, j.reason.as_str()),
        (Verdict::Exempt, "ContainersExempted")
    );
    assert!(j.message.contains("ptrace"));
    let j = verdict(
        &p,
        &pod,
        vec![container("app", U, None), container("istio-proxy", U, None)],
    );
    assert_eq!(j.verdict, Verdict::Violating);
    assert!(
        j.message.contains("app") && !j.message.contains("istio-proxy"),
        "{}",
        j.message
    );

    // A message names the first few containers: 64 exemptions of 64 containers each, with
    // reasons of 1,024 characters, would otherwise make a status of megabytes.
    let names: Vec<String> = (0..64).map(|i| format!("c{i}")).collect();
    let many = compiled(json!({ "exemptions": [{ "reason": "r".repeat(1024), "containers": names }] }));
    let j = verdict(
        &many,
        &Pod::new(),
        names.iter().map(|n| container(n, U, None)).collect(),
    );
    assert_eq!(j.verdict, Verdict::Exempt);
    assert!(
        j.message.len() < 6_000 && j.message.ends_with(" and 59 more"),
        "{}",
        j.message.len()
    );

    // Every criterion of an exemption must match: SCC and namespace.
    let mut agent = Pod::new();
    agent.scc = Some("privileged");
    assert_eq!(
        verdict(&p, &agent, unconfined()).verdict,
        Verdict::Violating,
        "wrong namespace"
    );
    agent.namespace = "agents";
    assert_eq!(verdict(&p, &agent, unconfined()).verdict, Verdict::Exempt);
    agent.scc = None;
    assert_eq!(
        verdict(&p, &agent, unconfined()).verdict,
        Verdict::Violating,
        "no SCC"
    );

    // An exemption that has not expired yet applies.
    let later = compiled(
        json!({ "exemptions": [{ "reason": "r", "namespaces": ["shop"], "expires": "2099-01-01T00:00:00Z" }] }),
    );
    assert_eq!(
        verdict(&later, &Pod::new(), unconfined()).verdict,
        Verdict::Exempt
    );
}

#[test]
fn invalid_policies_are_rejected_with_the_field() {
    let cases = [
        (
            json!({ "allowedProfiles": ["Unconfined"] }),
            "spec.allowedProfiles",
        ),
        (
            json!({ "allowedLocalhostProfiles": ["profiles/[ab"] }),
            "spec.allowedLocalhostProfiles",
        ),
        (
            json!({ "podSelector": { "matchExpressions": [{ "key": "a", "operator": "Maybe", "values": ["x"] }] } }),
            "spec.podSelector.matchExpressions[0].operator",
        ),
        (
            json!({ "namespaceSelector": { "matchExpressions": [{ "key": "a", "operator": "In" }] } }),
            "spec.namespaceSelector.matchExpressions[0].values",
        ),
        (json!({ "exemptions": [{ "reason": "r" }] }), "spec.exemptions[0]"),
        (
            json!({ "exemptions": [{ "reason": "  ", "namespaces": ["x"] }] }),
            "spec.exemptions[0]",
        ),
        (json!({ "action": "Label", "eviction": {} }), "spec.eviction"),
        (
            json!({ "action": "Evict", "eviction": { "minUnconfinedAge": "soon" } }),
            "spec.eviction.minUnconfinedAge",
        ),
        (
            json!({ "action": "Evict", "eviction": { "maxPerMinute": 0 } }),
            "spec.eviction.maxPerMinute",
        ),
    ];
    for (spec, field) in cases {
        match compile_policy(&policy(spec.clone())) {
            Err(PolicyError::Invalid { field: f, .. }) => assert_eq!(f, field, "{spec}"),
            Ok(_) => panic!("{spec} must be invalid"),
        }
    }
}

#[test]
fn eviction_limits_and_defaults() {
    let p = compiled(json!({ "action": "Evict", "eviction": {
        "dryRun": true, "minUnconfinedAge": "1h30m", "maxPerMinute": 2, "maxPerNamespacePerMinute": 1, "workloadCooldown": "90s" } }));
    assert_eq!(
        p.eviction,
        EvictionLimits {
            dry_run: true,
            min_age: Duration::from_secs(5400),
            max_per_minute: 2,
            max_per_namespace_per_minute: Some(1),
            workload_cooldown: Duration::from_secs(90),
            all_policies_per_minute: None,
        }
    );
    assert_eq!(
        compiled(json!({ "action": "Evict" })).eviction,
        EvictionLimits::default()
    );
    assert_eq!(compiled(json!({})).action, PolicyActionMode::Audit);
}

#[test]
fn labels_wanted_by_label_and_evict_policies_only() {
    use PolicyActionMode::*;
    assert_eq!(
        desired_labels(&[(Audit, Verdict::Violating)], PodProfile::Unconfined),
        None
    );
    assert_eq!(desired_labels(&[], PodProfile::Unconfined), None);
    assert_eq!(
        desired_labels(
            &[(Audit, Verdict::Violating), (Label, Verdict::Compliant)],
            PodProfile::Mixed
        ),
        Some(labels(&[(PROFILE_LABEL, "Mixed")]))
    );
    assert_eq!(
        desired_labels(&[(Evict, Verdict::Violating)], PodProfile::Unconfined),
        Some(labels(&[
            (PROFILE_LABEL, "Unconfined"),
            (VIOLATION_LABEL, "true")
        ]))
    );
}

// ---- eviction safety ----------------------------------------------------------------------

fn facts() -> EvictionFacts<'static> {
    EvictionFacts {
        policy: "p",
        namespace: "shop",
        operator_namespace: Some("seccomp-sentinel"),
        owner: OwnerKind::ReplicaSet,
        owner_uid: Some("rs-1"),
        mirror: false,
        terminating: false,
        terminal: false,
        created: Some(Timestamp::from_second(1_799_990_000).expect("time")),
        warmed_up: true,
        workload_down: Some(0),
    }
}

fn reason(v: &EvictionVerdict) -> &'static str {
    match v {
        EvictionVerdict::Proceed => "Proceed",
        EvictionVerdict::Skip { reason, .. } | EvictionVerdict::Later { reason, .. } => reason,
    }
}

#[test]
fn pods_that_are_never_evicted() {
    let limits = EvictionLimits::default();
    let ledger = EvictionLedger::default();
    let check = |f: EvictionFacts<'_>| reason(&eviction_verdict(&f, &limits, &ledger, now()));
    assert_eq!(check(facts()), "Proceed");
    for ns in SYSTEM_NAMESPACES {
        assert_eq!(
            check(EvictionFacts {
                namespace: ns,
                ..facts()
            }),
            "SystemNamespace"
        );
    }
    assert_eq!(
        check(EvictionFacts {
            namespace: "seccomp-sentinel",
            ..facts()
        }),
        "OperatorNamespace"
    );
    assert_eq!(
        check(EvictionFacts {
            mirror: true,
            ..facts()
        }),
        "StaticPod"
    );
    assert_eq!(
        check(EvictionFacts {
            owner: OwnerKind::None,
            owner_uid: None,
            ..facts()
        }),
        "BarePod"
    );
    assert_eq!(
        check(EvictionFacts {
            owner: OwnerKind::DaemonSet,
            ..facts()
        }),
        "DaemonSetPod"
    );
    assert_eq!(
        check(EvictionFacts {
            owner: OwnerKind::Job,
            ..facts()
        }),
        "JobPod"
    );
    assert_eq!(
        check(EvictionFacts {
            owner: OwnerKind::Other,
            ..facts()
        }),
        "UnknownWorkload"
    );
    assert_eq!(
        check(EvictionFacts {
            terminating: true,
            ..facts()
        }),
        "Terminating"
    );
    assert_eq!(
        check(EvictionFacts {
            terminal: true,
            ..facts()
        }),
        "Completed"
    );
    assert_eq!(
        check(EvictionFacts {
            owner: OwnerKind::StatefulSet,
            ..facts()
        }),
        "Proceed"
    );
    assert_eq!(
        check(EvictionFacts {
            owner: OwnerKind::ReplicationController,
            ..facts()
        }),
        "Proceed"
    );
    // Another pod of the workload down (not ready, or being replaced): not now, and not in the
    // plan's pass, which does not count them.
    assert_eq!(
        check(EvictionFacts {
            workload_down: Some(1),
            ..facts()
        }),
        "WorkloadUnavailable"
    );
    assert_eq!(
        check(EvictionFacts {
            workload_down: None,
            ..facts()
        }),
        "Proceed"
    );
    // Hard exclusions hold in dry runs too.
    let dry = EvictionLimits {
        dry_run: true,
        ..EvictionLimits::default()
    };
    assert_eq!(
        reason(&eviction_verdict(
            &EvictionFacts {
                owner: OwnerKind::None,
                ..facts()
            },
            &dry,
            &ledger,
            now()
        )),
        "BarePod"
    );
}

#[test]
fn pods_that_are_evicted_later() {
    let limits = EvictionLimits::default();
    let ledger = EvictionLedger::default();
    assert_eq!(
        reason(&eviction_verdict(
            &EvictionFacts {
                warmed_up: false,
                ..facts()
            },
            &limits,
            &ledger,
            now()
        )),
        "WarmingUp"
    );
    let young = EvictionFacts {
        created: Some(Timestamp::from_second(1_800_000_000 - 60).expect("t")),
        ..facts()
    };
    match eviction_verdict(&young, &limits, &ledger, now()) {
        EvictionVerdict::Later {
            reason, retry_after, ..
        } => {
            assert_eq!(reason, "TooYoung");
            assert_eq!(retry_after, Duration::from_secs(240));
        }
        other => panic!("{other:?}"),
    }
}

/// A verdict to wait: its reason, how long, and its message.
fn waits(verdict: EvictionVerdict) -> (&'static str, Duration, String) {
    match verdict {
        EvictionVerdict::Later {
            reason,
            retry_after,
            message,
        } => (reason, retry_after, message),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rates_cooldowns_and_the_loop_guard() {
    let limits = EvictionLimits {
        max_per_minute: 2,
        max_per_namespace_per_minute: Some(1),
        ..EvictionLimits::default()
    };
    let mut ledger = EvictionLedger::default();
    let t0 = now();
    let at = |secs: i64| Timestamp::from_second(1_800_000_000 + secs).expect("t");

    ledger.record("p", "shop", Some("rs-1"), t0);
    // Same workload: cooldown. Other workload, same namespace: namespace rate.
    assert_eq!(
        reason(&eviction_verdict(&facts(), &limits, &ledger, at(10))),
        "WorkloadCooldown"
    );
    let other = EvictionFacts {
        owner_uid: Some("rs-2"),
        ..facts()
    };
    match eviction_verdict(&other, &limits, &ledger, at(10)) {
        EvictionVerdict::Later { reason, message, .. } => assert_eq!(
            (reason, message.as_str()),
            ("RateLimited", "1 eviction in shop in the last minute")
        ),
        other => panic!("{other:?}"),
    }
    let elsewhere = EvictionFacts {
        owner_uid: Some("rs-3"),
        namespace: "blog",
        ..facts()
    };
    assert_eq!(
        reason(&eviction_verdict(&elsewhere, &limits, &ledger, at(10))),
        "Proceed"
    );
    ledger.record("p", "blog", Some("rs-3"), at(10));
    // The policy's cluster-wide rate is used up for the rest of the minute...
    let third = EvictionFacts {
        owner_uid: Some("rs-4"),
        namespace: "wiki",
        ..facts()
    };
    assert_eq!(
        waits(eviction_verdict(&third, &limits, &ledger, at(20))),
        (
            "RateLimited",
            Duration::from_secs(40),
            "2 evictions in the last minute (maxPerMinute)".into()
        )
    );
    // ... and free again after it; another policy has its own budget.
    assert_eq!(
        reason(&eviction_verdict(&third, &limits, &ledger, at(61))),
        "Proceed"
    );
    assert_eq!(
        reason(&eviction_verdict(
            &EvictionFacts { policy: "q", ..third },
            &limits,
            &ledger,
            at(20)
        )),
        "Proceed"
    );
    assert_eq!(ledger.last_eviction("rs-1"), Some(t0));
    // ... unless the operator's bound over all policies is used up: the two of "p" count for "q".
    let bounded = EvictionLimits {
        all_policies_per_minute: Some(2),
        ..limits.clone()
    };
    assert_eq!(
        waits(eviction_verdict(
            &EvictionFacts { policy: "q", ..third },
            &bounded,
            &ledger,
            at(20)
        )),
        (
            "RateLimited",
            Duration::from_secs(40),
            "2 evictions in the last minute by all policies (the operator's --max-evictions-per-minute)"
                .into()
        )
    );
    assert_eq!(
        reason(&eviction_verdict(
            &EvictionFacts { policy: "q", ..third },
            &bounded,
            &ledger,
            at(61)
        )),
        "Proceed"
    );

    // The loop guard stops a workload for good, dry run or not.
    assert!(ledger.halt("rs-1", "replacement came back unconfined".into()));
    assert!(!ledger.halt("rs-1", "again".into()));
    assert_eq!(
        reason(&eviction_verdict(&facts(), &limits, &ledger, at(3600))),
        "ReplacementUnconfined"
    );
    assert_eq!(ledger.halted_count(), 1);
    // A pod created in the second of an eviction, or later, replaces an evicted one.
    assert!(ledger.is_replacement("rs-1", "pod-new", t0));
    assert!(!ledger.is_replacement(
        "rs-1",
        "pod-old",
        Timestamp::from_second(1_800_000_000 - 1).expect("t")
    ));
    assert!(!ledger.is_replacement("rs-9", "pod-new", t0));
    // Dry runs ignore rates and cooldowns: they evict nothing.
    let dry = EvictionLimits {
        dry_run: true,
        ..limits
    };
    assert_eq!(
        reason(&eviction_verdict(&other, &dry, &ledger, at(10))),
        "Proceed"
    );
}

/// The API server stamps creation times with its clock and the operator its evictions with its
/// own: the two need not agree.
#[test]
fn clocks_that_disagree_neither_age_a_pod_nor_hide_a_replacement() {
    let at = |secs: i64| Timestamp::from_second(1_800_000_000 + secs).expect("t");
    let limits = EvictionLimits::default();
    let ledger = EvictionLedger::default();
    // Created "ten minutes from now" by the operator's clock: young, not ten minutes old.
    let ahead = EvictionFacts {
        created: Some(at(600)),
        ..facts()
    };
    match eviction_verdict(&ahead, &limits, &ledger, now()) {
        EvictionVerdict::Later {
            reason, retry_after, ..
        } => assert_eq!((reason, retry_after), ("TooYoung", limits.min_age)),
        other => panic!("{other:?}"),
    }
    // An eviction recorded ahead (by a leader whose clock was ahead) counts for the rate and the
    // cooldown, rather than as long past.
    let mut earlier_leader = EvictionLedger::default();
    earlier_leader.record(facts().policy, "shop", Some("rs-1"), at(90));
    assert_eq!(
        reason(&eviction_verdict(&facts(), &limits, &earlier_leader, now())),
        "WorkloadCooldown"
    );

    // This operator's clock runs 5 s ahead of the API server's: it evicts at (its) 5 s; the
    // ReplicaSet's replacement is created at (the server's) 1 s, "before" the eviction.
    let mut ledger = EvictionLedger::default();
    let (_, reservation) = reserve_eviction(&facts(), &limits, &mut ledger, at(5));
    let reservation = reservation.expect("reserved");
    // Without what it knew of the workload, only the clocks can tell: the replacement is missed.
    assert!(!ledger.is_replacement("rs-1", "replacement", at(1)));
    ledger.witness(&reservation, vec!["evicted".into(), "sibling".into()]);
    assert!(ledger.is_replacement("rs-1", "replacement", at(1)));
    // The pods that were there are not replacements, whenever the server says they were created
    // (a clock behind the server's would take a sibling created "after" for one).
    assert!(!ledger.is_replacement("rs-1", "sibling", at(9)));
    assert!(!ledger.is_replacement("rs-1", "evicted", at(-100)));
    // Another workload's eviction says nothing of this one.
    assert!(!ledger.is_replacement("rs-2", "replacement", at(1)));
    // A reservation taken back takes its witness with it: the clocks decide again.
    ledger.release(reservation);
    assert!(!ledger.is_replacement("rs-1", "replacement", at(1)));
}

#[test]
fn owner_kinds() {
    assert_eq!(
        OwnerKind::from_kind("apps/v1", "ReplicaSet"),
        OwnerKind::ReplicaSet
    );
    assert_eq!(OwnerKind::from_kind("apps/v1", "DaemonSet"), OwnerKind::DaemonSet);
    assert_eq!(
        OwnerKind::from_kind("v1", "ReplicationController"),
        OwnerKind::ReplicationController
    );
    assert_eq!(OwnerKind::from_kind("batch/v1", "Job"), OwnerKind::Job);
    assert_eq!(
        OwnerKind::from_kind("example.com/v1", "ReplicaSet"),
        OwnerKind::Other
    );
}

#[test]
fn a_released_reservation_does_not_come_back_with_the_ledger_written_ahead() {
    let mut ledger = EvictionLedger::default();
    let (_, reservation) = reserve_eviction(&facts(), &EvictionLimits::default(), &mut ledger, now());
    // Written ahead of the attempt; the budget refuses; that write's watch event comes after.
    let written_ahead = ledger.to_status(facts().policy, now());
    ledger.release(reservation.expect("reserved"));
    ledger.load(facts().policy, Some(&json!({ "evictions": written_ahead })));
    assert_eq!(ledger.last_eviction("rs-1"), None);
    assert!(!ledger.is_replacement("rs-1", "pod-new", now()));
    // Another process's eviction in the same status is still taken in.
    let mut other = EvictionLedger::default();
    other.record(facts().policy, "ns", Some("rs-9"), now());
    ledger.load(
        facts().policy,
        Some(&json!({ "evictions": other.to_status(facts().policy, now()) })),
    );
    assert_eq!(ledger.last_eviction("rs-9"), Some(now()));
}

#[test]
fn a_resume_time_lifts_the_halts_recorded_before_it_and_lets_the_workload_be_evicted_once_more() {
    let at = |s: i64| Timestamp::from_second(1_800_000_000 + s).expect("t");
    let policy = facts().policy;
    let mut ledger = EvictionLedger::default();
    ledger.record(policy, "shop", Some("rs-1"), at(0));
    assert!(ledger.is_replacement("rs-1", "pod-5", at(5)));
    assert!(ledger.halt_for(policy, "rs-1", "shop/web", "came back unconfined".into(), at(10)));
    let status = json!({ "evictions": ledger.to_status(policy, at(20)) });

    // Resumed at 30: the halt of 10 goes, and the eviction of 0 no longer makes the pod of 5 a
    // replacement, so that pod may be evicted (once more) instead of halting the workload again.
    let lifted = ledger.resume(policy, Some(at(30)));
    assert_eq!(lifted.len(), 1, "{lifted:?}");
    assert_eq!(lifted[0].name, "shop/web");
    assert_eq!(ledger.halted("rs-1"), None);
    assert!(!ledger.is_replacement("rs-1", "pod-5", at(5)));
    // The cooldown still counts the eviction: it happened.
    assert_eq!(ledger.last_eviction("rs-1"), Some(at(0)));
    // The status written before the resume (a watch event arriving late, or a restart) does not
    // bring the halt back.
    ledger.load(policy, Some(&status));
    assert_eq!(ledger.halted("rs-1"), None);
    let mut restarted = EvictionLedger::default();
    restarted.resume(policy, Some(at(30)));
    restarted.load(policy, Some(&status));
    assert_eq!(restarted.halted("rs-1"), None);
    assert_eq!(restarted.halted_count(), 0);

    // The next eviction, after the resume, counts for the loop guard again, and a new halt stays.
    ledger.record(policy, "shop", Some("rs-1"), at(200));
    assert!(ledger.is_replacement("rs-1", "pod-205", at(205)));
    assert!(ledger.halt_for(policy, "rs-1", "shop/web", "again".into(), at(210)));
    assert!(ledger.resume(policy, Some(at(30))).is_empty());
    assert_eq!(ledger.halted("rs-1"), Some("again"));
    // Without the annotation, nothing is lifted; a resume time of another policy lifts nothing here.
    assert!(ledger.resume(policy, None).is_empty());
    assert!(ledger.resume("other", Some(at(300))).is_empty());
    assert_eq!(ledger.halted("rs-1"), Some("again"));
}

#[test]
fn the_halts_of_workloads_that_are_gone_are_forgotten() {
    let mut ledger = EvictionLedger::default();
    assert!(ledger.halt_for("p", "rs-old", "shop/ReplicaSet web-1", "why".into(), now()));
    assert!(ledger.halt_for("p", "rs-new", "shop/ReplicaSet web-2", "why".into(), now()));
    assert!(ledger.halt_for("q", "sts-1", "shop/StatefulSet db", "why".into(), now()));
    let changed = ledger.forget_halts_of_gone_workloads(|uid| uid != "rs-old");
    assert_eq!(changed, vec!["p".to_string()]);
    assert_eq!(ledger.halted("rs-old"), None);
    assert!(ledger.halted("rs-new").is_some());
    assert!(ledger.halted("sts-1").is_some());
    assert!(ledger.forget_halts_of_gone_workloads(|_| true).is_empty());
}

#[test]
fn a_resume_time_must_be_a_time_and_not_ahead_of_the_clock() {
    use super::resume_time;
    let now = Timestamp::from_second(1_800_000_000).expect("t");
    assert_eq!(resume_time(None, now), Ok(None));
    assert_eq!(
        resume_time(Some("2027-01-15T08:00:00Z"), now),
        Ok(Some("2027-01-15T08:00:00Z".parse().expect("t")))
    );
    // A clock a little ahead of the operator's is fine; an hour ahead would keep lifting halts.
    let soon = (now + Duration::from_secs(30)).to_string();
    assert!(resume_time(Some(&soon), now).is_ok());
    let later = (now + Duration::from_secs(3600)).to_string();
    let error = resume_time(Some(&later), now).expect_err("ahead");
    assert!(error.contains("3600s ahead"), "{error}");
    let error = resume_time(Some("now"), now).expect_err("not a time");
    assert!(error.contains("not an RFC 3339 time"), "{error}");
}

#[test]
fn reservations_count_at_once_and_can_be_released() {
    let limits = EvictionLimits {
        max_per_minute: 1,
        ..EvictionLimits::default()
    };
    let mut ledger = EvictionLedger::default();
    let (first, reservation) = reserve_eviction(&facts(), &limits, &mut ledger, now());
    assert_eq!(first, EvictionVerdict::Proceed);
    let reservation = reservation.expect("reserved");
    // A second reconcile running meanwhile sees the reservation.
    let other = EvictionFacts {
        owner_uid: Some("rs-2"),
        ..facts()
    };
    assert_eq!(
        reason(&reserve_eviction(&other, &limits, &mut ledger, now()).0),
        "RateLimited"
    );
    // Another pod of the same workload is told the eviction is under way, not that it is done
    // (a cooldown), and looks again soon.
    let sibling = EvictionFacts {
        created: Some(Timestamp::from_second(1_799_990_001).expect("time")),
        ..facts()
    };
    match eviction_verdict(&sibling, &limits, &ledger, now()) {
        EvictionVerdict::Later {
            reason, retry_after, ..
        } => assert_eq!(
            (reason, retry_after),
            ("EvictionInProgress", Duration::from_secs(5))
        ),
        other => panic!("{other:?}"),
    }
    // One never answered (its reconcile cancelled) reads as an eviction after two minutes.
    let long_cooldown = EvictionLimits {
        workload_cooldown: Duration::from_secs(600),
        ..limits.clone()
    };
    let later_on = Timestamp::from_second(1_800_000_121).expect("t");
    assert_eq!(
        reason(&eviction_verdict(&sibling, &long_cooldown, &ledger, later_on)),
        "WorkloadCooldown"
    );
    // The eviction did not happen (e.g. a budget refused it): the budget is free again.
    ledger.release(reservation);
    assert_eq!(
        reason(&eviction_verdict(&sibling, &limits, &ledger, now())),
        "Proceed"
    );
    assert_eq!(ledger.last_eviction("rs-1"), None);
    assert_eq!(
        reason(&reserve_eviction(&other, &limits, &mut ledger, now()).0),
        "Proceed"
    );
    // Dry runs reserve nothing.
    let dry = EvictionLimits {
        dry_run: true,
        ..limits
    };
    let (verdict, reservation) = reserve_eviction(
        &EvictionFacts {
            owner_uid: Some("rs-3"),
            namespace: "x",
            policy: "q",
            ..facts()
        },
        &dry,
        &mut ledger,
        now(),
    );
    assert_eq!((verdict, reservation.is_none()), (EvictionVerdict::Proceed, true));
    // An eviction that happened: the workload's other pods wait out its cooldown.
    let mut ledger = EvictionLedger::default();
    let done = ledger.reserve("p", "shop", Some("rs-1"), now());
    ledger.settle(done);
    assert_eq!(
        reason(&eviction_verdict(&sibling, &limits, &ledger, now())),
        "WorkloadCooldown"
    );
}

#[test]
fn selectors_are_checked_as_the_api_server_checks_them_for_built_in_objects() {
    let bad = [
        (
            json!({ "podSelector": { "matchLabels": { "bad key!": "x" } } }),
            "spec.podSelector.matchLabels",
        ),
        (
            json!({ "podSelector": { "matchLabels": { "app": "-nope" } } }),
            "spec.podSelector.matchLabels[app]",
        ),
        (
            json!({ "namespaceSelector": { "matchExpressions": [{ "key": "env", "operator": "In" }] } }),
            "spec.namespaceSelector.matchExpressions[0].values",
        ),
        (
            json!({ "podSelector": { "matchExpressions": [{ "key": "env", "operator": "Exists", "values": ["x"] }] } }),
            "spec.podSelector.matchExpressions[0].values",
        ),
        (
            json!({ "podSelector": { "matchExpressions": [{ "key": "Not_A.Prefix/x", "operator": "Exists" }] } }),
            "spec.podSelector.matchExpressions[0].key",
        ),
        (
            json!({ "podSelector": { "matchExpressions": [{ "key": "env", "operator": "Near", "values": ["x"] }] } }),
            "spec.podSelector.matchExpressions[0].operator",
        ),
        (
            json!({ "exemptions": [{ "reason": "r", "podSelector": { "matchLabels": { "": "x" } } }] }),
            "spec.exemptions[0].podSelector.matchLabels",
        ),
    ];
    for (spec, field) in bad {
        match compile_policy(&policy(spec.clone())) {
            Err(PolicyError::Invalid { field: f, .. }) => assert_eq!(f, field, "{spec}"),
            Ok(_) => panic!("accepted: {spec}"),
        }
    }
    let good = json!({ "podSelector": { "matchLabels": { "app.kubernetes.io/name": "web", "tier": "" },
        "matchExpressions": [{ "key": "example.com/team", "operator": "NotIn", "values": ["a", "b-2"] }] } });
    assert!(compile_policy(&policy(good)).is_ok());
}

#[test]
fn pod_selectors_may_not_read_the_labels_the_operator_sets() {
    // Selecting on a label that the verdict sets would label and unlabel the pod for ever.
    let bad = [
        (
            json!({ "podSelector": { "matchExpressions": [{ "key": VIOLATION_LABEL, "operator": "DoesNotExist" }] } }),
            "spec.podSelector.matchExpressions[0].key",
        ),
        (
            json!({ "podSelector": { "matchLabels": { "app": "web", PROFILE_LABEL: "Unconfined" } } }),
            "spec.podSelector.matchLabels",
        ),
        (
            json!({ "exemptions": [{ "reason": "r", "podSelector": { "matchLabels": { VIOLATION_LABEL: "true" } } }] }),
            "spec.exemptions[0].podSelector.matchLabels",
        ),
    ];
    for (spec, field) in bad {
        match compile_policy(&policy(spec.clone())) {
            Err(PolicyError::Invalid { field: f, message }) => {
                assert_eq!(f, field, "{spec}");
                assert!(message.contains("select on the pods' own labels"), "{message}");
            }
            Ok(_) => panic!("accepted: {spec}"),
        }
    }
    // The user's own labels of the project's prefix, and namespaces' labels, stay selectable.
    let opt_out = json!({ "podSelector": { "matchExpressions": [
        { "key": "seccomp.sentinel.dev/opt-out", "operator": "DoesNotExist" }] },
        "namespaceSelector": { "matchLabels": { PROFILE_LABEL: "x" } } });
    assert!(compile_policy(&policy(opt_out)).is_ok());
}

fn with_strength(mut c: ContainerSeccomp, strength: crate::api::ProfileStrength) -> ContainerSeccomp {
    c.strength = Some(strength);
    c
}

#[test]
fn a_minimum_strength_flags_weak_localhost_profiles_but_never_unknown_ones() {
    use crate::api::ProfileStrength as S;
    let p = compiled(json!({ "minimumProfileStrength": "AllowList" }));
    let pod = Pod::new();
    let local = |s| with_strength(container("app", L, Some("p.json")), s);
    assert_eq!(
        verdict(&p, &pod, vec![local(S::AllowList)]).verdict,
        Verdict::Compliant
    );
    let weak = verdict(&p, &pod, vec![local(S::LogOnly)]);
    assert_eq!(weak.verdict, Verdict::Violating);
    assert!(weak.weak_profiles_only(), "{weak:?}");
    assert!(weak.message.contains("LogOnly"), "{}", weak.message);
    let unknown = verdict(&p, &pod, vec![local(S::Unknown)]);
    assert_eq!(unknown.verdict, Verdict::Compliant, "no verdict on a guess");
    assert!(
        unknown.message.contains("not known") || unknown.reason == "StrengthUnknown",
        "{unknown:?}"
    );
    // A deny list passes a DenyList minimum, not an AllowList one.
    let deny = compiled(json!({ "minimumProfileStrength": "DenyList" }));
    assert_eq!(
        verdict(&deny, &pod, vec![local(S::DenyList)]).verdict,
        Verdict::Compliant
    );
    assert_eq!(
        verdict(&p, &pod, vec![local(S::DenyList)]).verdict,
        Verdict::Violating
    );
    // An unconfined container is a plain violation, not a weak profile.
    let mixed = verdict(
        &p,
        &pod,
        vec![
            local(S::LogOnly),
            with_strength(container("side", U, None), S::Unconfined),
        ],
    );
    assert!(!mixed.weak_profiles_only(), "{mixed:?}");
}

/// A StatefulSet as the API server stores it, read the way the controller reads it.
fn stateful_set(strategy: serde_json::Value, ordinals_start: Option<i64>) -> StatefulRollout {
    let mut spec = json!({ "updateStrategy": strategy,
                           "template": { "spec": { "containers": [{ "name": "db", "image": "db" }] } } });
    if let Some(start) = ordinals_start {
        spec["ordinals"] = json!({ "start": start });
    }
    let workload: crate::lean::cluster::WorkloadWire<crate::lean::cluster::StatefulSetKind> =
        serde_json::from_value(json!({
            "metadata": { "name": "db", "namespace": "shop", "uid": "sts-1", "generation": 4 },
            "spec": spec,
            "status": { "currentRevision": "db-old", "updateRevision": "db-new", "replicas": 3,
                        "observedGeneration": 4 }
        }))
        .expect("statefulset");
    workload.stateful_rollout().expect("a rollout")
}

fn stateful_pod(revision: &str, index: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = labels(&[(REVISION_LABEL, revision)]);
    if let Some(index) = index {
        labels.insert(POD_INDEX_LABEL.into(), index.into());
    }
    labels
}

#[test]
fn a_statefulset_that_replaces_or_holds_its_pods_itself_decides() {
    let skip_reason = |v: Option<EvictionVerdict>| match v {
        Some(EvictionVerdict::Skip { reason, .. }) => Some(reason),
        None => None,
        other => panic!("{other:?}"),
    };
    let rolling = stateful_set(
        json!({ "type": "RollingUpdate", "rollingUpdate": { "partition": 0 } }),
        None,
    );
    assert_eq!(rolling.held_below, 0);
    // A partition holds the ordinals below it (counted from ordinals.start) at the earlier
    // revision.
    let partitioned = stateful_set(
        json!({ "type": "RollingUpdate", "rollingUpdate": { "partition": 2 } }),
        Some(10),
    );
    let on_delete = stateful_set(json!({ "type": "OnDelete" }), None);
    let recreate = stateful_set(json!({ "type": "Recreate" }), None);
    // (rollout, the pod's revision, its pod-index label, its name, the verdict)
    let cases = [
        // A pod of the earlier revision: the rolling update will replace it.
        (&rolling, "db-old", Some("0"), "db-0", Some("StatefulSetRollout")),
        // A pod of the template's revision: the template decides, as for any workload.
        (&rolling, "db-new", Some("0"), "db-0", None),
        (&partitioned, "db-old", Some("11"), "db-11", Some("PartitionHeld")),
        // Without the label, the ordinal is the name's last number.
        (&partitioned, "db-old", None, "db-11", Some("PartitionHeld")),
        (&partitioned, "db-old", None, "db-12", Some("StatefulSetRollout")),
        // OnDelete: deleting is how a pod gets the template; Recreate (alpha) replaces them.
        (&on_delete, "db-old", Some("0"), "db-0", None),
        (&recreate, "db-old", Some("0"), "db-0", Some("StatefulSetRollout")),
    ];
    for (rollout, revision, index, name, expected) in cases {
        assert_eq!(
            skip_reason(stateful_rollout_verdict(
                rollout,
                &stateful_pod(revision, index),
                name
            )),
            expected,
            "{name} at {revision} of {rollout:?}"
        );
    }
    // A template changed a moment ago: the controller has not taken it in (its updateRevision
    // is still the earlier one); wait for it rather than judge by the stale revision.
    let stale: crate::lean::cluster::WorkloadWire<crate::lean::cluster::StatefulSetKind> =
        serde_json::from_value(json!({ "metadata": { "name": "db", "generation": 5 }, "spec": {},
            "status": { "updateRevision": "db-old", "observedGeneration": 4 } }))
        .expect("statefulset");
    let stale = stale.stateful_rollout().expect("a rollout");
    match stateful_rollout_verdict(&stale, &stateful_pod("db-old", Some("0")), "db-0") {
        Some(EvictionVerdict::Skip { reason, .. }) => assert_eq!(reason, "StatefulSetUpdating"),
        other => panic!("{other:?}"),
    }
    // No revision written yet: nothing known, nothing decided here.
    let fresh: crate::lean::cluster::WorkloadWire<crate::lean::cluster::StatefulSetKind> =
        serde_json::from_value(json!({ "metadata": { "name": "db" }, "spec": {} })).expect("statefulset");
    assert_eq!(fresh.stateful_rollout(), None);
}
