//! Property-based fuzzing of the parts that read untrusted input: the audit's manifest reading
//! (any text), the lean decoding of watched objects (any JSON, with the right and the wrong types
//! in every field the operator reads) and the engine and plan on whatever that decoding yields;
//! what the node agent reads on a node (`/proc` texts, the kubelet's command line and
//! configuration, profile files) and policies of any shape.
//! None may panic. `make test` runs a few hundred cases of each; `make fuzz` runs many more
//! (`PROPTEST_CASES`).

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{
    api::KubeletSeccompDefault,
    engine::{self, Facts, NodeFacts, PodView, SccDefaults},
    lean::{Decoded, pod::PodWire, status::StatusWire},
    packed::Packed,
};

/// Any JSON value, small.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[ -~]{0,12}".prop_map(Value::String),
        Just(json!("9999-12-31T23:59:59Z")),
        Just(json!("RuntimeDefault")),
        Just(json!("Localhost")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A pod-shaped object whose fields (the ones the operator reads) hold any JSON.
fn pod_like() -> impl Strategy<Value = Value> {
    (any_json(), any_json(), any_json(), any_json(), any_json(), any_json()).prop_map(
        |(profile, privileged, annotations, labels, status, name)| {
            json!({
                "metadata": { "name": name, "namespace": "n", "uid": "u", "labels": labels,
                    "annotations": annotations, "creationTimestamp": "2026-01-01T00:00:00Z" },
                "spec": {
                    "nodeName": "node-a",
                    "securityContext": { "seccompProfile": profile },
                    "containers": [{ "name": "app", "securityContext": { "privileged": privileged, "seccompProfile": profile } }],
                    "initContainers": [{ "name": "init", "restartPolicy": "Always" }]
                },
                "status": status,
            })
        },
    )
}

/// Any text, up to a few characters (Unicode included).
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9.-]{0,12}", ".{0,6}"]
}

/// A time as the API server writes it, or one outside what the client can hold.
fn time() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..4_000_000_000).prop_map(|s| k8s_openapi::jiff::Timestamp::from_second(s)
            .map_or_else(|_| "1970-01-01T00:00:00Z".to_string(), |t| t.to_string())),
        Just("9999-12-31T23:59:59Z".to_string()),
        Just("0001-01-01T00:00:00Z".to_string()),
        Just("yesterday".to_string()),
    ]
}

fn profile() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!({ "type": "RuntimeDefault" })),
        Just(json!({ "type": "Unconfined" })),
        text().prop_map(|path| json!({ "type": "Localhost", "localhostProfile": path })),
        text().prop_map(|other| json!({ "type": other })),
    ]
}

/// A valid pod with every part the controller keeps, each with varied content.
fn realistic_pod() -> impl Strategy<Value = Value> {
    let container = (text(), profile(), any::<Option<bool>>(), prop::option::of(text()));
    (
        prop::collection::btree_map(text(), text(), 0..4),
        prop::collection::btree_map(
            prop_oneof![
                Just("openshift.io/scc".to_string()),
                Just("seccomp.security.alpha.kubernetes.io/pod".to_string()),
                text().prop_map(|c| format!("container.seccomp.security.alpha.kubernetes.io/{c}")),
                Just("kubernetes.io/config.mirror".to_string()),
            ],
            text(),
            0..3,
        ),
        prop::option::of((text(), text())),
        time(),
        prop::option::of(text()),
        profile(),
        prop::collection::vec(container, 0..4),
        prop::option::of(prop_oneof![Just("Running"), Just("Succeeded"), Just("Pending")]),
    )
        .prop_map(|(labels, annotations, owner, created, node, pod_profile, containers, phase)| {
            let containers: Vec<Value> = containers
                .into_iter()
                .map(|(name, profile, privileged, restart)| {
                    json!({ "name": name, "restartPolicy": restart,
                        "securityContext": { "seccompProfile": profile, "privileged": privileged } })
                })
                .collect();
            let owners: Vec<Value> = owner
                .into_iter()
                .map(|(kind, name)| json!({ "apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "o-1", "controller": true }))
                .collect();
            json!({
                "metadata": { "name": "p", "namespace": "n", "uid": "3f1c-uid", "labels": labels,
                    "annotations": annotations, "ownerReferences": owners, "creationTimestamp": created },
                "spec": { "nodeName": node, "securityContext": { "seccompProfile": pod_profile },
                    "containers": containers.clone(), "initContainers": containers },
                "status": { "phase": phase },
            })
        })
}

/// A valid SeccompStatus with conditions, the agent's profile file reports and odd times.
fn realistic_status() -> impl Strategy<Value = Value> {
    let condition = (
        text(),
        prop_oneof![Just("True"), Just("False"), Just("Unknown")],
        time(),
    );
    (
        prop::collection::vec(condition, 0..4),
        prop::option::of(text()),
        prop::collection::vec((text(), text(), prop::option::of(text())), 0..3),
        any::<bool>(),
        prop::option::of(0u64..u64::MAX),
    )
        .prop_map(|(conditions, node, files, mismatch, version)| {
            let conditions: Vec<Value> = conditions
                .into_iter()
                .map(|(type_, status, at)| json!({ "type": type_, "status": status, "lastTransitionTime": at, "reason": "R", "message": "" }))
                .collect();
            let files: Vec<Value> = files
                .into_iter()
                .map(|(name, path, sha)| json!({ "name": name, "path": path, "state": "Present", "sha256": sha }))
                .collect();
            let verified = if mismatch { "False" } else { "True" };
            json!({
                "metadata": { "name": "p", "namespace": "n", "resourceVersion": version.map(|v| v.to_string()),
                    "labels": { "seccomp.sentinel.dev/profile": "Mixed" },
                    "ownerReferences": [{ "apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "3f1c-uid" }] },
                "status": { "profile": "Mixed", "node": node, "conditions": conditions,
                    "runtime": { "conditions": [{ "type": "RuntimeVerified", "status": verified,
                        "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "R", "message": "" }],
                        "profileFiles": files } },
            })
        })
}

/// A valid object (by construction) decoded, or the test's failure naming it.
fn decode_valid<T: serde::de::DeserializeOwned>(object: &Value) -> Result<T, TestCaseError> {
    match Decoded::<T>::from_json(&object.to_string()) {
        Decoded::Ok(wire, _) => Ok(wire),
        Decoded::Invalid(_) => Err(TestCaseError::fail(format!(
            "a valid object did not decode: {object}"
        ))),
    }
}

fn facts(sccs: &SccDefaults) -> Facts<'_> {
    Facts {
        node: None,
        unknown_node_seccomp_default: KubeletSeccompDefault::Unknown,
        sccs,
    }
}

/// Reads `text` as the audit reads a manifest file, and lists each document's subjects.
fn read_and_list_subjects(text: &str) {
    let mut documents = Vec::new();
    let mut errors = Vec::new();
    crate::audit::read_source_for_fuzzing("fuzz", text, &mut documents, &mut errors);
    for document in &documents {
        let _ = crate::audit::report::subjects(document);
    }
}

proptest! {
    #[test]
    fn reading_any_text_as_manifests_never_panics(text in "(?s).{0,400}") {
        read_and_list_subjects(&text);
    }

    #[test]
    fn reading_yaml_like_text_never_panics(lines in prop::collection::vec(
        prop_oneof![
            Just("---".to_string()),
            Just("kind: Pod".to_string()),
            Just("apiVersion: apps/v1".to_string()),
            Just("kind: Deployment".to_string()),
            Just("spec:".to_string()),
            Just("  template: {spec: {containers: [{name: a}]}}".to_string()),
            Just("  containers: [{name: a, securityContext: {seccompProfile: {type: Localhost}}}]".to_string()),
            Just("items: [{kind: Pod, spec: {}}]".to_string()),
            Just("&a [*a, *a]".to_string()),
            "[ -~]{0,30}",
        ],
        0..20,
    )) {
        read_and_list_subjects(&lines.join("\n"));
    }

    #[test]
    fn decoding_any_pod_shaped_object_never_panics_and_the_engine_takes_what_it_gives(pod in pod_like()) {
        let text = pod.to_string();
        let decoded: Decoded<PodWire> = Decoded::from_json(&text);
        if let Decoded::Ok(wire, _) = decoded {
            let view = PodView::from_wire(&wire);
            let sccs = SccDefaults::default();
            let status = engine::evaluate(&view, &facts(&sccs));
            prop_assert_eq!(status.containers.len(), view.containers.len());
            let stored = crate::status::within_size(&status);
            prop_assert_eq!(stored.containers.len() + stored.unlisted_containers as usize, view.containers.len());
            let node = NodeFacts { os: crate::engine::NodeOs::Linux, kubelet_minor: Some(36), seccomp_default: KubeletSeccompDefault::True };
            let on_node = Facts { node: Some(&node), ..facts(&sccs) };
            let _ = engine::evaluate(&view, &on_node);
            if let Some(lean) = crate::controller::state::LeanPod::from_wire(&wire, true) {
                prop_assert_eq!(Packed::pack(&lean).unpack(), lean);
            }
        }
    }

    #[test]
    fn a_pod_reads_back_from_its_packed_form_as_it_was(
        pod in realistic_pod(),
    ) {
        let wire: PodWire = decode_valid(&pod)?;
        let lean = crate::controller::state::LeanPod::from_wire(&wire, true)
            .ok_or_else(|| TestCaseError::fail("a pod with a UID is kept"))?;
        prop_assert_eq!(Packed::pack(&lean).unpack(), lean);
    }

    #[test]
    fn a_stored_status_reads_back_from_its_packed_form_as_it_was(
        status in realistic_status(),
    ) {
        let wire: StatusWire = decode_valid(&status)?;
        let stored = crate::status::StoredStatus::from_wire(&wire);
        let reports = status["status"]["runtime"]["profileFiles"].as_array().map_or(0, Vec::len);
        prop_assert_eq!(stored.profile_files.len(), reports, "every report is read");
        prop_assert_eq!(Packed::pack(&stored).unpack(), stored);
    }

    #[test]
    fn a_policy_with_any_resume_annotation_and_ledger_never_panics(
        annotation in prop_oneof![any_json(), time().prop_map(Value::String)],
        recent in any_json(),
        halted in any_json(),
        since in time(),
        now in 0i64..4_000_000_000,
    ) {
        let object = json!({
            "metadata": { "name": "p", "uid": "u", "generation": 1,
                "annotations": { crate::policy::RESUME_ANNOTATION: annotation } },
            "spec": {},
            "status": { "evictions": { "recent": recent,
                "halted": [{ "workload": "rs-1", "name": "n/ReplicaSet w", "since": since }, halted] } },
        });
        let decoded: Decoded<crate::lean::cluster::PolicyWire> = Decoded::from_json(&object.to_string());
        if let Decoded::Ok(wire, _) = decoded {
            let now = k8s_openapi::jiff::Timestamp::from_second(now).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let entry = crate::controller::state::PolicyEntry::from_wire(&wire, now);
            let mut ledger = crate::policy::EvictionLedger::default();
            let resumed = entry.resume_at();
            let _ = ledger.resume("p", resumed);
            ledger.load("p", entry.status.as_ref());
            // A resume time lifts every halt it covers, whatever else the status holds.
            if let (Some(at), Ok(since)) = (resumed, since.parse::<k8s_openapi::jiff::Timestamp>())
                && since <= at
            {
                prop_assert!(ledger.halted("rs-1").is_none());
            }
            let _ = ledger.is_replacement("rs-1", "pod-1", now);
            let _ = ledger.to_status("p", now);
        }
    }

    #[test]
    fn decoding_any_status_shaped_object_never_panics(status in any_json(), uid in any_json()) {
        let object = json!({ "metadata": { "name": "p", "namespace": "n", "resourceVersion": "1",
                "ownerReferences": [{ "apiVersion": "v1", "kind": "Pod", "name": "p", "uid": uid }] },
            "spec": { "podUID": uid }, "status": status });
        let decoded: Decoded<StatusWire> = Decoded::from_json(&object.to_string());
        if let Decoded::Ok(wire, _) = decoded {
            let stored = crate::status::StoredStatus::from_wire(&wire);
            let _ = crate::status::needs_write(Some(&stored), "p", &Default::default());
            let _ = wire.container_profiles();
        }
    }
}

/// Any number, the edges often.
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(u64::MAX),
        Just(i64::MAX as u64),
        0..200u64,
        any::<u64>()
    ]
}

/// A profile-shaped document whose fields hold any JSON.
fn profile_like() -> impl Strategy<Value = Value> {
    (any_json(), any_json(), any_json(), any_json(), any_json()).prop_map(
        |(default, names, name, action, extra)| {
            json!({ "defaultAction": default, "architectures": extra,
                "syscalls": [{ "names": names, "name": name, "action": action }, extra] })
        },
    )
}

proptest! {
    #[test]
    fn node_side_inputs_of_any_content_never_panic(
        text in "(?s).{0,300}",
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        profile in prop_oneof![profile_like(), any_json()],
        ticks in edgy_u64(), per_second in edgy_u64(), uptime in edgy_u64(), boot in edgy_u64(),
    ) {
        let _ = crate::agent::procfs::parse_status(&text);
        let _ = crate::agent::procfs::container_of(&text);
        let _ = crate::agent::procfs::parse_stat(&text);
        let _ = crate::agent::procfs::container_id(&text);
        let command_line = crate::agent::kubelet::parse_command_line(&bytes);
        let _ = crate::agent::kubelet::resolve_setting(&command_line, &[("f".into(), text.clone())]);
        let _ = crate::agent::kubelet::parse_uptime(&text);
        let _ = crate::agent::kubelet::parse_boot_time(&text);
        let _ = crate::agent::kubelet::KubeletStart::from_parts(
            ticks, per_second, std::time::Duration::from_secs(uptime), boot, k8s_openapi::jiff::Timestamp::now());
        for content in [bytes.as_slice(), text.as_bytes(), profile.to_string().as_bytes()] {
            if let Ok(summary) = crate::profile::summarize(content) {
                prop_assert_eq!(summary.sha256.len(), 64);
            }
        }
        let cleaned = crate::profile::clean_localhost_path(&text);
        let _ = crate::profile::lexical_path(std::path::Path::new("/seccomp"), &cleaned);
    }

    #[test]
    fn policies_of_any_shape_compile_or_are_refused(
        selector in any_json(), profiles in any_json(), globs in any_json(),
        exemption in any_json(), eviction in any_json(), action in any_json(),
        glob in "[ -~]{0,40}", duration in "[0-9a-z .]{0,12}",
    ) {
        let specs = [
            json!({ "namespaceSelector": selector, "podSelector": selector, "allowedProfiles": profiles,
                    "allowedLocalhostProfiles": globs, "exemptions": [exemption], "eviction": eviction, "action": action }),
            json!({ "allowedProfiles": ["Localhost"], "allowedLocalhostProfiles": [glob],
                    "exemptions": [{ "reason": "r", "containers": ["a"], "expires": duration }],
                    "action": "Evict", "eviction": { "minUnconfinedAge": duration, "workloadCooldown": duration } }),
        ];
        for spec in specs {
            let object = json!({ "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompPolicy",
                                 "metadata": { "name": "p", "generation": 1 }, "spec": spec });
            if let Ok(policy) = serde_json::from_value::<crate::api::SeccompPolicy>(object) {
                let _ = crate::policy::compile_policy(&policy);
            }
        }
    }
}
