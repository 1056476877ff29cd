use proptest::prelude::*;

use super::*;
use crate::api::ContainerKind;

fn rd() -> Option<RequestedProfile> {
    Some(RequestedProfile::RuntimeDefault)
}
fn unconfined() -> Option<RequestedProfile> {
    Some(RequestedProfile::Unconfined)
}
fn localhost(path: &str) -> Option<RequestedProfile> {
    Some(RequestedProfile::Localhost(path.into()))
}

fn container(name: &str, kind: ContainerKind, profile: Option<RequestedProfile>) -> ContainerView {
    ContainerView {
        name: name.into(),
        kind,
        profile,
        ..Default::default()
    }
}

fn pod(profile: Option<RequestedProfile>, containers: Vec<ContainerView>) -> PodView {
    PodView {
        profile,
        containers,
        node_name: Some("node-a".into()),
        ..Default::default()
    }
}

fn node(seccomp_default: KubeletSeccompDefault, kubelet_minor: u32) -> NodeFacts {
    NodeFacts {
        os: NodeOs::Linux,
        kubelet_minor: Some(kubelet_minor),
        seccomp_default,
    }
}

const OFF: KubeletSeccompDefault = KubeletSeccompDefault::False;
const ON: KubeletSeccompDefault = KubeletSeccompDefault::True;
const UNKNOWN: KubeletSeccompDefault = KubeletSeccompDefault::Unknown;

fn eval_on(pod: &PodView, node: &NodeFacts, sccs: &SccDefaults) -> SeccompStatusStatus {
    evaluate(
        pod,
        &Facts {
            node: Some(node),
            unknown_node_seccomp_default: UNKNOWN,
            sccs,
        },
    )
}

fn eval(pod: &PodView, node: &NodeFacts) -> SeccompStatusStatus {
    eval_on(pod, node, &SccDefaults::default())
}

/// (type, localhostProfile, source) of one container.
fn decided(status: &SeccompStatusStatus, name: &str) -> (ProfileType, Option<String>, ProfileSource) {
    let c = status
        .containers
        .iter()
        .find(|c| c.name == name)
        .expect("container evaluated");
    (c.profile.type_, c.profile.localhost_profile.clone(), c.source)
}

fn warnings(status: &SeccompStatusStatus, name: &str) -> Vec<String> {
    status
        .containers
        .iter()
        .find(|c| c.name == name)
        .expect("container")
        .warnings
        .clone()
}

use ContainerKind::{Container, EphemeralContainer, InitContainer, SidecarContainer};
use ProfileSource as S;
use ProfileType as T;

#[test]
fn precedence_table_for_every_container_kind() {
    // (pod field, container field, kubelet seccompDefault) -> (type, localhost, source)
    type Row = (
        Option<RequestedProfile>,
        Option<RequestedProfile>,
        KubeletSeccompDefault,
        (T, Option<&'static str>, S),
    );
    let rows: Vec<Row> = vec![
        (None, None, OFF, (T::Unconfined, None, S::None)),
        (None, None, ON, (T::RuntimeDefault, None, S::KubeletDefault)),
        (rd(), None, OFF, (T::RuntimeDefault, None, S::PodField)),
        (
            localhost("p.json"),
            None,
            OFF,
            (T::Localhost, Some("p.json"), S::PodField),
        ),
        (unconfined(), None, ON, (T::Unconfined, None, S::PodField)),
        // container over pod, both directions
        (
            unconfined(),
            rd(),
            OFF,
            (T::RuntimeDefault, None, S::ContainerField),
        ),
        (rd(), unconfined(), OFF, (T::Unconfined, None, S::ContainerField)),
        (rd(), unconfined(), ON, (T::Unconfined, None, S::ContainerField)),
        (
            localhost("pod.json"),
            localhost("c.json"),
            OFF,
            (T::Localhost, Some("c.json"), S::ContainerField),
        ),
        (
            localhost("pod.json"),
            rd(),
            OFF,
            (T::RuntimeDefault, None, S::ContainerField),
        ),
        (
            rd(),
            localhost("c.json"),
            OFF,
            (T::Localhost, Some("c.json"), S::ContainerField),
        ),
        (None, unconfined(), ON, (T::Unconfined, None, S::ContainerField)),
        (None, rd(), OFF, (T::RuntimeDefault, None, S::ContainerField)),
    ];
    for kind in [Container, InitContainer, SidecarContainer, EphemeralContainer] {
        for (i, (pod_field, container_field, default, (type_, path, source))) in rows.iter().enumerate() {
            let p = pod(
                pod_field.clone(),
                vec![container("c", kind, container_field.clone())],
            );
            let status = eval(&p, &node(*default, 33));
            assert_eq!(
                decided(&status, "c"),
                (*type_, path.map(String::from), *source),
                "row {i} for {kind:?}"
            );
            let c = &status.containers[0];
            assert_eq!(c.kind, kind);
            assert_eq!(
                c.confined,
                matches!(type_, T::RuntimeDefault | T::Localhost),
                "row {i}"
            );
            assert!(c.warnings.is_empty(), "row {i}: {:?}", c.warnings);
        }
    }
}

#[test]
fn unknown_seccomp_default_is_treated_as_off_and_said_so() {
    let p = pod(
        None,
        vec![container("c", Container, None), container("d", Container, rd())],
    );
    let status = eval(&p, &node(UNKNOWN, 33));
    assert_eq!(decided(&status, "c"), (T::Unconfined, None, S::None));
    assert!(
        warnings(&status, "c")[0].contains("unknown"),
        "{:?}",
        warnings(&status, "c")
    );
    assert!(
        warnings(&status, "d").is_empty(),
        "a container with its own profile does not depend on it"
    );
    assert_eq!(status.kubelet_seccomp_default, UNKNOWN);
}

#[test]
fn unscheduled_pods_use_the_configured_default() {
    let p = PodView {
        node_name: None,
        ..pod(None, vec![container("c", Container, None)])
    };
    let sccs = SccDefaults::default();
    let status = evaluate(
        &p,
        &Facts {
            node: None,
            unknown_node_seccomp_default: ON,
            sccs: &sccs,
        },
    );
    assert_eq!(
        decided(&status, "c"),
        (T::RuntimeDefault, None, S::KubeletDefault)
    );
    assert_eq!(status.kubelet_seccomp_default, ON);
    assert_eq!(status.node, None);
}

#[test]
fn privileged_containers_always_run_unconfined() {
    for (pod_field, container_field, default, warns) in [
        (None, rd(), OFF, true),
        (rd(), None, OFF, true),
        (None, localhost("missing.json"), OFF, true),
        (None, None, ON, false), // the kubelet default was never asked for
        (None, unconfined(), OFF, false),
        (None, None, OFF, false),
    ] {
        let mut c = container("c", Container, container_field.clone());
        c.privileged = true;
        let status = eval(&pod(pod_field.clone(), vec![c]), &node(default, 33));
        assert_eq!(
            decided(&status, "c"),
            (T::Unconfined, None, S::Privileged),
            "{pod_field:?} {container_field:?}"
        );
        assert!(!status.containers[0].confined);
        assert_eq!(
            !warnings(&status, "c").is_empty(),
            warns,
            "{pod_field:?} {container_field:?} {default:?}"
        );
    }
}

#[test]
fn privileged_overrides_only_its_own_container() {
    let mut admin = container("admin", SidecarContainer, None);
    admin.privileged = true;
    let p = pod(rd(), vec![container("app", Container, None), admin]);
    let status = eval(&p, &node(OFF, 33));
    assert_eq!(decided(&status, "app"), (T::RuntimeDefault, None, S::PodField));
    assert_eq!(decided(&status, "admin"), (T::Unconfined, None, S::Privileged));
    assert_eq!(status.profile, PodProfile::Mixed);
    assert_eq!(status.confined, "1/2");
    assert_eq!(status.source, Some(S::Privileged));
}

#[test]
fn windows_pods_and_host_process_containers_are_not_applicable() {
    let windows_os = PodView {
        os: Some("windows".into()),
        ..pod(None, vec![container("c", Container, None)])
    };
    let status = eval(&windows_os, &node(ON, 33));
    assert_eq!(decided(&status, "c"), (T::NotApplicable, None, S::Windows));
    assert_eq!(
        (status.profile, status.confined.as_str()),
        (PodProfile::NotApplicable, "0/0")
    );

    let on_windows_node = pod(rd(), vec![container("c", Container, None)]);
    let windows_node = NodeFacts {
        os: NodeOs::Windows,
        ..node(OFF, 33)
    };
    assert_eq!(
        decided(&eval(&on_windows_node, &windows_node), "c"),
        (T::NotApplicable, None, S::Windows)
    );

    // A hostProcess pod whose node is not known yet is one meant for Windows.
    let sccs = SccDefaults::default();
    let unscheduled = |p: &PodView| {
        evaluate(
            p,
            &Facts {
                node: None,
                unknown_node_seccomp_default: ON,
                sccs: &sccs,
            },
        )
    };
    let mut host = container("host", Container, None);
    host.host_process = true;
    let status = unscheduled(&pod(rd(), vec![host, container("other", Container, None)]));
    assert_eq!(decided(&status, "host"), (T::NotApplicable, None, S::Windows));
    assert_eq!(decided(&status, "other"), (T::RuntimeDefault, None, S::PodField));
    assert_eq!(status.confined, "1/1");

    let pod_host_process = PodView {
        host_process: true,
        ..pod(None, vec![container("c", Container, None)])
    };
    assert_eq!(
        decided(&unscheduled(&pod_host_process), "c"),
        (T::NotApplicable, None, S::Windows)
    );
    // So is one on a node whose OS is Windows or not known.
    for os in [NodeOs::Windows, NodeOs::Unknown] {
        let facts = NodeFacts { os, ..node(OFF, 33) };
        assert_eq!(
            decided(&eval(&pod_host_process, &facts), "c"),
            (T::NotApplicable, None, S::Windows),
            "{os:?}"
        );
    }
}

#[test]
fn a_host_process_pod_on_a_linux_node_runs_with_the_linux_settings() {
    // The API server admits `hostProcess` on a pod without `spec.os`; a Linux kubelet ignores
    // `windowsOptions`, so the containers run as any other there: unconfined unless asked.
    let pod_host_process = PodView {
        host_process: true,
        ..pod(None, vec![container("c", Container, None)])
    };
    let status = eval(&pod_host_process, &node(OFF, 33));
    assert_eq!(decided(&status, "c"), (T::Unconfined, None, S::None));
    assert_eq!(status.profile, PodProfile::Unconfined);
    assert!(
        warnings(&status, "c")
            .iter()
            .any(|w| w.contains("hostProcess") && w.contains("Linux")),
        "{:?}",
        warnings(&status, "c")
    );
    assert_eq!(
        decided(&eval(&pod_host_process, &node(ON, 33)), "c"),
        (T::RuntimeDefault, None, S::KubeletDefault)
    );

    let mut host = container("host", Container, localhost("p.json"));
    host.host_process = true;
    let status = eval(&pod(None, vec![host]), &node(OFF, 33));
    assert_eq!(
        decided(&status, "host"),
        (T::Localhost, Some("p.json".into()), S::ContainerField)
    );
    assert_eq!(status.confined, "1/1");
}

#[test]
fn legacy_annotations_count_only_on_old_kubelets() {
    let annotated =
        |pod_annotation: Option<&str>, container_annotation: Option<&str>, pod_field, container_field| {
            let mut c = container("c", Container, container_field);
            c.annotation = container_annotation.map(String::from);
            PodView {
                annotation: pod_annotation.map(String::from),
                ..pod(pod_field, vec![c])
            }
        };
    // kubelet 1.24: container field > container annotation > pod field > pod annotation
    let old = node(OFF, 24);
    let cases = [
        (
            annotated(Some("runtime/default"), None, None, None),
            (T::RuntimeDefault, None, S::PodAnnotation),
        ),
        (
            annotated(None, Some("localhost/a.json"), None, None),
            (T::Localhost, Some("a.json".into()), S::ContainerAnnotation),
        ),
        (
            annotated(None, Some("unconfined"), rd(), None),
            (T::Unconfined, None, S::ContainerAnnotation),
        ),
        (
            annotated(Some("unconfined"), None, rd(), None),
            (T::RuntimeDefault, None, S::PodField),
        ),
        (
            annotated(None, Some("unconfined"), None, rd()),
            (T::RuntimeDefault, None, S::ContainerField),
        ),
        (
            annotated(Some("docker/default"), None, None, None),
            (T::RuntimeDefault, None, S::PodAnnotation),
        ),
    ];
    for (i, (p, expected)) in cases.iter().enumerate() {
        assert_eq!(
            decided(&eval(p, &old), "c"),
            *expected,
            "case {i} on kubelet 1.24"
        );
    }

    // kubelet 1.25+: ignored, with a warning, unless the annotation mirrors the field.
    let new = node(OFF, 25);
    let status = eval(
        &annotated(Some("runtime/default"), Some("localhost/a.json"), None, None),
        &new,
    );
    assert_eq!(decided(&status, "c"), (T::Unconfined, None, S::None));
    assert_eq!(warnings(&status, "c").len(), 2, "{:?}", warnings(&status, "c"));
    assert!(
        warnings(&status, "c")
            .iter()
            .all(|w| w.contains("ignored by kubelets 1.25"))
    );

    let mirrored = eval(&annotated(Some("runtime/default"), None, rd(), None), &new);
    assert_eq!(decided(&mirrored, "c"), (T::RuntimeDefault, None, S::PodField));
    assert!(
        warnings(&mirrored, "c").is_empty(),
        "{:?}",
        warnings(&mirrored, "c")
    );

    // An unknown kubelet version is a current one.
    let unknown_version = NodeFacts {
        kubelet_minor: None,
        ..node(OFF, 0)
    };
    assert_eq!(
        decided(
            &eval(
                &annotated(Some("runtime/default"), None, None, None),
                &unknown_version
            ),
            "c"
        )
        .2,
        S::None
    );
}

#[test]
fn invalid_annotations_are_ignored_with_a_warning() {
    for value in ["bogus", "localhost/", "Runtime/Default", ""] {
        let mut c = container("c", Container, None);
        c.annotation = Some(value.into());
        let status = eval(&pod(None, vec![c]), &node(OFF, 24));
        assert_eq!(decided(&status, "c"), (T::Unconfined, None, S::None), "{value:?}");
        assert!(
            warnings(&status, "c").iter().any(|w| w.contains("invalid")),
            "{value:?}"
        );
    }
}

/// A pod's annotation may hold 256 KiB and its warning is repeated for every container: eight
/// containers made a status larger than the API server stores (1.5 MiB), and the pod had none.
#[test]
fn warnings_repeat_at_most_a_few_hundred_characters_of_the_pods_own_text() {
    let long = format!("localhost/{}.json", "a".repeat(240_000));
    let containers = (0..8)
        .map(|i| {
            let mut c = container(&format!("c{i}"), Container, None);
            c.privileged = i == 0;
            c.profile = (i == 0).then(|| RequestedProfile::Localhost("b".repeat(100_000)));
            c
        })
        .collect();
    let mut annotated = pod(None, containers);
    annotated.annotation = Some(long.clone());
    let status = eval(&annotated, &node(OFF, 33));
    for c in &status.containers {
        let longest = c.warnings.iter().map(String::len).max().unwrap_or_default();
        assert!((100..600).contains(&longest), "{}: {:?}", c.name, c.warnings);
    }
    let ignored = &warnings(&status, "c1")[0];
    assert!(
        ignored.starts_with(r#"pod seccomp annotation "localhost/aaaa"#)
            && ignored.contains(&format!("… ({} bytes)", long.len())),
        "{ignored}"
    );
    assert!(
        warnings(&status, "c0")
            .iter()
            .any(|w| w.contains("privileged containers always run Unconfined"))
    );
}

#[test]
fn empty_localhost_profile_warns_that_the_container_cannot_start() {
    let status = eval(
        &pod(None, vec![container("c", Container, localhost(""))]),
        &node(OFF, 33),
    );
    assert_eq!(
        decided(&status, "c"),
        (T::Localhost, Some(String::new()), S::ContainerField)
    );
    assert!(warnings(&status, "c")[0].contains("cannot") || warnings(&status, "c")[0].contains("refuses"));
}

#[test]
fn unknown_profile_types_run_unconfined_with_a_warning() {
    let p = pod(
        Some(RequestedProfile::Unknown("Strict".into())),
        vec![container("c", Container, None)],
    );
    let status = eval(&p, &node(ON, 33));
    assert_eq!(decided(&status, "c"), (T::Unconfined, None, S::PodField));
    assert!(warnings(&status, "c")[0].contains("Strict"));
}

fn openshift_sccs() -> SccDefaults {
    let mut sccs = SccDefaults::default();
    sccs.insert("restricted-v2", &["runtime/default".into()]);
    sccs.insert("privileged", &["*".into()]);
    sccs.insert("restricted", &[]);
    sccs.insert("custom", &["*".into(), "localhost/profiles/app.json".into()]);
    sccs
}

#[test]
fn openshift_scc_defaults_are_attributed_and_marked_inferred() {
    let sccs = openshift_sccs();
    let admitted = |scc: &str, pod_field, container_field| PodView {
        scc: Some(scc.into()),
        ..pod(pod_field, vec![container("c", Container, container_field)])
    };
    let status = eval_on(&admitted("restricted-v2", rd(), None), &node(OFF, 33), &sccs);
    assert_eq!(decided(&status, "c"), (T::RuntimeDefault, None, S::SccDefault));
    assert!(status.containers[0].source_inferred);
    assert_eq!(status.scc.as_deref(), Some("restricted-v2"));

    let custom = eval_on(
        &admitted("custom", localhost("profiles/app.json"), None),
        &node(OFF, 33),
        &sccs,
    );
    assert_eq!(decided(&custom, "c").2, S::SccDefault);

    // Not the SCC's default, or set on the container, or an unknown SCC: a plain field.
    for (scc, pod_field, container_field, source) in [
        ("restricted-v2", localhost("x.json"), None, S::PodField),
        ("restricted-v2", rd(), rd(), S::ContainerField),
        ("restricted", rd(), None, S::PodField),
        ("not-known", rd(), None, S::PodField),
    ] {
        let status = eval_on(&admitted(scc, pod_field, container_field), &node(OFF, 33), &sccs);
        assert_eq!(decided(&status, "c").2, source, "{scc}");
        assert!(!status.containers[0].source_inferred);
    }

    // The privileged SCC generates nothing: no field, Unconfined.
    let status = eval_on(&admitted("privileged", None, None), &node(OFF, 33), &sccs);
    assert_eq!(decided(&status, "c"), (T::Unconfined, None, S::None));
}

#[test]
fn annotations_that_scc_admission_converted_are_attributed_and_marked_inferred() {
    let sccs = openshift_sccs();
    // The container annotation was the author's; admission copied it into the container field.
    let mut converted = PodView {
        scc: Some("privileged".into()),
        ..pod(None, vec![container("c", Container, unconfined())])
    };
    converted.containers[0].annotation = Some("unconfined".into());
    let status = eval_on(&converted, &node(OFF, 33), &sccs);
    assert_eq!(
        decided(&status, "c"),
        (T::Unconfined, None, S::ContainerAnnotation)
    );
    assert!(status.containers[0].source_inferred);
    // Without SCC admission the same pair is the author's field (and annotation).
    converted.scc = None;
    let status = eval_on(&converted, &node(OFF, 33), &sccs);
    assert_eq!(decided(&status, "c").2, S::ContainerField);
    assert!(!status.containers[0].source_inferred);

    // A pod field with the annotation admission writes beside it: the field, but inferred.
    let mut written = PodView {
        scc: Some("privileged".into()),
        ..pod(
            localhost("profiles/app.json"),
            vec![container("c", Container, None)],
        )
    };
    written.annotation = Some("localhost/profiles/app.json".into());
    let status = eval_on(&written, &node(OFF, 33), &sccs);
    assert_eq!(decided(&status, "c").2, S::PodField);
    assert!(status.containers[0].source_inferred);
}

#[test]
fn pod_summary() {
    let n = node(OFF, 33);
    let summary = |p: PodView| {
        let s = eval(&p, &n);
        (
            s.profile,
            s.confined.clone(),
            s.confined_containers,
            s.total_containers,
            s.source,
        )
    };
    assert_eq!(
        summary(pod(
            rd(),
            vec![
                container("a", Container, None),
                container("b", InitContainer, None)
            ]
        )),
        (PodProfile::RuntimeDefault, "2/2".into(), 2, 2, Some(S::PodField))
    );
    assert_eq!(
        summary(pod(localhost("x"), vec![container("a", Container, None)])),
        (PodProfile::Localhost, "1/1".into(), 1, 1, Some(S::PodField))
    );
    assert_eq!(
        summary(pod(
            localhost("x"),
            vec![container("a", Container, None), container("b", Container, rd())]
        )),
        (PodProfile::RuntimeDefault, "2/2".into(), 2, 2, Some(S::PodField))
    );
    assert_eq!(
        summary(pod(
            None,
            vec![
                container("a", Container, rd()),
                container("b", EphemeralContainer, None)
            ]
        )),
        (PodProfile::Mixed, "1/2".into(), 1, 2, Some(S::None))
    );
    assert_eq!(
        summary(pod(None, vec![container("a", Container, None)])),
        (PodProfile::Unconfined, "0/1".into(), 0, 1, Some(S::None))
    );
    assert_eq!(
        summary(pod(None, vec![])),
        (PodProfile::Unconfined, "0/0".into(), 0, 0, None)
    );
}

#[test]
fn two_hundred_containers() {
    let containers = (0..200)
        .map(|i| container(&format!("c{i}"), Container, if i % 2 == 0 { rd() } else { None }))
        .collect();
    let status = eval(&pod(None, containers), &node(OFF, 33));
    assert_eq!(status.containers.len(), 200);
    assert_eq!(status.confined, "100/200");
    assert_eq!(status.profile, PodProfile::Mixed);
}

#[test]
fn kubelet_versions() {
    assert_eq!(kubelet_minor("v1.24.17"), Some(24));
    assert_eq!(kubelet_minor("v1.29.5+1a2b3c4"), Some(29));
    assert_eq!(kubelet_minor("1.33.0-rc.1"), Some(33));
    assert_eq!(kubelet_minor("v2.0.0"), None);
    assert_eq!(kubelet_minor("garbage"), None);
    assert_eq!(kubelet_minor(""), None);
}

#[test]
fn pod_view_from_a_kubernetes_pod() {
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "p", "annotations": {
            "openshift.io/scc": "restricted-v2",
            "seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
            "container.seccomp.security.alpha.kubernetes.io/app": "unconfined"
        }},
        "spec": {
            "nodeName": "node-a",
            "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
            "initContainers": [
                { "name": "setup" },
                { "name": "proxy", "restartPolicy": "Always", "securityContext": { "privileged": true } }
            ],
            "containers": [{ "name": "app", "securityContext": {
                "seccompProfile": { "type": "Localhost", "localhostProfile": "p.json" } } }],
            "ephemeralContainers": [{ "name": "debug", "securityContext": { "seccompProfile": { "type": "Unconfined" } } }]
        }
    }))
    .expect("pod");
    let view = PodView::from_pod(&pod);
    assert_eq!(view.scc.as_deref(), Some("restricted-v2"));
    assert_eq!(view.annotation.as_deref(), Some("runtime/default"));
    assert_eq!(view.profile, rd());
    assert_eq!(view.node_name.as_deref(), Some("node-a"));
    let kinds: Vec<(&str, ContainerKind)> = view
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("setup", InitContainer),
            ("proxy", SidecarContainer),
            ("app", Container),
            ("debug", EphemeralContainer)
        ]
    );
    assert!(view.containers[1].privileged);
    assert_eq!(view.containers[2].profile, localhost("p.json"));
    assert_eq!(view.containers[2].annotation.as_deref(), Some("unconfined"));
    assert_eq!(view.containers[3].profile, unconfined());

    let status = eval(&view, &node(OFF, 33));
    assert_eq!(status.profile, PodProfile::Mixed);
    assert_eq!(status.confined, "2/4");
}

// ---- properties -------------------------------------------------------------------------------

fn requested() -> impl Strategy<Value = Option<RequestedProfile>> {
    prop_oneof![
        Just(None),
        Just(rd()),
        Just(unconfined()),
        "[a-z]{0,3}".prop_map(|p| Some(RequestedProfile::Localhost(p))),
        "[A-Z][a-z]{1,5}".prop_map(|t| Some(RequestedProfile::Unknown(t))),
    ]
}

fn annotation() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("runtime/default".to_string())),
        Just(Some("unconfined".to_string())),
        Just(Some("localhost/x.json".to_string())),
        Just(Some("nonsense".to_string())),
    ]
}

fn container_view() -> impl Strategy<Value = ContainerView> {
    (
        requested(),
        annotation(),
        any::<bool>(),
        prop::bool::weighted(0.05),
        0..4usize,
    )
        .prop_map(
            |(profile, annotation, privileged, host_process, kind)| ContainerView {
                name: String::new(),
                kind: [Container, InitContainer, SidecarContainer, EphemeralContainer][kind],
                profile,
                annotation,
                privileged,
                host_process,
                start_error: None,
            },
        )
}

fn pod_view() -> impl Strategy<Value = PodView> {
    (
        requested(),
        annotation(),
        prop::option::of(prop_oneof![
            Just("linux".to_string()),
            Just("windows".to_string())
        ]),
        prop::bool::weighted(0.05),
        prop::option::of(prop_oneof![
            Just("restricted-v2".to_string()),
            Just("privileged".to_string())
        ]),
        prop::collection::vec(container_view(), 0..6),
    )
        .prop_map(|(profile, annotation, os, host_process, scc, mut containers)| {
            for (i, c) in containers.iter_mut().enumerate() {
                c.name = format!("c{i}");
            }
            PodView {
                os,
                host_process,
                profile,
                annotation,
                scc,
                node_name: Some("n".into()),
                containers,
            }
        })
}

fn node_facts() -> impl Strategy<Value = NodeFacts> {
    (0..10usize, prop::option::of(20u32..37), 0..3usize).prop_map(|(os, kubelet_minor, d)| NodeFacts {
        // Mostly Linux, some Windows, some not known.
        os: match os {
            0 => NodeOs::Windows,
            1 => NodeOs::Unknown,
            _ => NodeOs::Linux,
        },
        kubelet_minor,
        seccomp_default: [ON, OFF, UNKNOWN][d],
    })
}

proptest! {
    #[test]
    fn invariants(p in pod_view(), n in prop::option::of(node_facts())) {
        let sccs = openshift_sccs();
        let status = evaluate(&p, &Facts { node: n.as_ref(), unknown_node_seccomp_default: UNKNOWN, sccs: &sccs });
        prop_assert_eq!(status.containers.len(), p.containers.len());
        // hostProcess counts where the node is not known to run Linux.
        let host_process_counts = n.as_ref().is_none_or(|n| n.os != NodeOs::Linux);
        let windows_pod = p.os.as_deref() == Some("windows")
            || (p.host_process && host_process_counts)
            || n.as_ref().is_some_and(|n| n.os == NodeOs::Windows);
        for (view, c) in p.containers.iter().zip(&status.containers) {
            let windows = windows_pod || (view.host_process && host_process_counts);
            // NotApplicable exactly for Windows.
            prop_assert_eq!(c.profile.type_ == T::NotApplicable, windows);
            prop_assert_eq!(c.source == S::Windows, windows);
            // confined means RuntimeDefault or Localhost.
            prop_assert_eq!(c.confined, matches!(c.profile.type_, T::RuntimeDefault | T::Localhost));
            if windows { continue; }
            // Privileged is never confined.
            if view.privileged {
                prop_assert!(!c.confined);
                prop_assert_eq!(c.source, S::Privileged);
                continue;
            }
            // A container field always decides.
            if let Some(field) = &view.profile {
                // ...reported as the annotation SCC admission converted when they are equal.
                let converted = p.scc.is_some()
                    && view.annotation.as_deref().and_then(RequestedProfile::from_annotation).as_ref() == Some(field);
                prop_assert_eq!(c.source, if converted { S::ContainerAnnotation } else { S::ContainerField });
                prop_assert_eq!(c.source_inferred, converted);
                let expected = match field {
                    RequestedProfile::RuntimeDefault => T::RuntimeDefault,
                    RequestedProfile::Localhost(_) => T::Localhost,
                    RequestedProfile::Unconfined | RequestedProfile::Unknown(_) => T::Unconfined,
                };
                prop_assert_eq!(c.profile.type_, expected);
            }
            // Localhost always names its profile; nothing else does.
            prop_assert_eq!(c.profile.localhost_profile.is_some(), c.profile.type_ == T::Localhost);
        }
        // The counts are the containers' own, and the display string says the same.
        let (confined, total) = (status.confined_containers, status.total_containers);
        prop_assert_eq!(total as usize, crate::api::applicable(&status.containers).count());
        prop_assert_eq!(confined as usize, crate::api::applicable(&status.containers).filter(|c| c.confined).count());
        prop_assert!(confined <= total);
        prop_assert_eq!(&status.confined, &format!("{confined}/{total}"));
        let expected_profile_unconfined = total > 0 && confined == 0;
        prop_assert_eq!(status.profile == PodProfile::Unconfined && total > 0, expected_profile_unconfined);
        prop_assert_eq!(status.profile == PodProfile::Mixed, confined > 0 && confined < total);
    }
}

#[test]
fn a_profile_the_runtime_cannot_apply_is_reported_with_the_runtime_s_reason() {
    let stored: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "p" },
        "spec": { "nodeName": "node-a", "containers": [
            { "name": "app", "image": "i", "securityContext": { "seccompProfile": { "type": "Localhost", "localhostProfile": "profiles/missing.json" } } },
            { "name": "other", "image": "i" } ] },
        "status": { "containerStatuses": [
            { "name": "app", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
              "state": { "waiting": { "reason": "CreateContainerError", "message": "failed to create containerd container: cannot load seccomp profile \"/var/lib/kubelet/seccomp/profiles/missing.json\": open ...: no such file or directory" } } },
            { "name": "other", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
              "state": { "waiting": { "reason": "CreateContainerError", "message": "image not found" } } } ] }
    }))
    .expect("pod");
    let view = PodView::from_pod(&stored);
    let status = eval(&view, &node(OFF, 36));
    let app = &status.containers[0];
    assert_eq!(
        app.profile.type_,
        ProfileType::Localhost,
        "the requested profile is kept"
    );
    assert!(
        app.warnings
            .iter()
            .any(|w| w.contains("does not start") && w.contains("cannot load seccomp profile")),
        "{:?}",
        app.warnings
    );
    assert!(
        status.containers[1]
            .warnings
            .iter()
            .all(|w| !w.contains("does not start")),
        "not about seccomp"
    );
}
