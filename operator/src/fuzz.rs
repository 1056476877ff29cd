//! Property-based fuzzing of the parts that read untrusted input: the audit's manifest reading
//! (any text), the lean decoding of watched objects (any JSON, with the right and the wrong types
//! in every field the operator reads) and the engine and plan on whatever that decoding yields.
//! None may panic. `make test` runs a few hundred cases of each; `make fuzz` runs many more
//! (`PROPTEST_CASES`).

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{
    api::KubeletSeccompDefault,
    engine::{self, Facts, NodeFacts, PodView, SccDefaults},
    lean::{Decoded, pod::PodWire, status::StatusWire},
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
            let node = NodeFacts { windows: false, kubelet_minor: Some(36), seccomp_default: KubeletSeccompDefault::True };
            let on_node = Facts { node: Some(&node), ..facts(&sccs) };
            let _ = engine::evaluate(&view, &on_node);
            let _ = crate::controller::state::LeanPod::from_wire(&wire, true);
        }
    }

    #[test]
    fn decoding_any_status_shaped_object_never_panics(status in any_json(), uid in any_json()) {
        let object = json!({ "metadata": { "name": "p", "namespace": "n", "resourceVersion": "1",
                "ownerReferences": [{ "apiVersion": "v1", "kind": "Pod", "name": "p", "uid": uid }] },
            "status": status });
        let decoded: Decoded<StatusWire> = Decoded::from_json(&object.to_string());
        if let Decoded::Ok(wire, _) = decoded {
            let stored = crate::status::StoredStatus::from_wire(&wire);
            let _ = crate::status::needs_write(Some(&stored), "p", &Default::default());
            let _ = wire.container_profiles();
        }
    }
}
