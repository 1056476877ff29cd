use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::*;

/// OpenShift's default SCCs, as the integration tests use them.
fn default_sccs() -> Vec<Scc> {
    include_str!("../../../e2e/openshift/sccs.yaml")
        .split("\n---\n")
        .skip(1)
        .map(|doc| {
            let value: Value = serde_saphyr::from_str(doc).expect("yaml");
            Scc::parse(&value).expect("scc")
        })
        .collect()
}

fn pod(spec: Value) -> Pod {
    serde_json::from_value(json!({ "metadata": { "name": "p", "namespace": "shop" }, "spec": spec }))
        .expect("pod")
}

fn admit(pod: &Pod, allow: &[&str], version: OpenShiftVersion) -> Result<Option<Admission>, Rejection> {
    let sccs = default_sccs();
    let grant = SccGrant::Names(allow.iter().map(|s| s.to_string()).collect());
    let namespace = NamespaceAllocation::assumed("shop");
    simulate(
        pod,
        &AdmissionRequest {
            sccs: &sccs,
            grant: &grant,
            namespace: &namespace,
            version,
        },
    )
}

fn seccomp_of(pod: &Pod) -> (Option<String>, Option<String>) {
    let field = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|c| c.seccomp_profile.as_ref())
        .map(|p| p.type_.clone());
    let annotation = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("seccomp.security.alpha.kubernetes.io/pod"))
        .cloned();
    (field, annotation)
}

#[test]
fn stored_sccs_get_openshifts_defaults() {
    let scc = Scc::parse(&json!({ "metadata": { "name": "x" } })).expect("parse");
    let volumes = scc.volumes.clone().unwrap_or_default();
    assert!(!volumes.contains(&"hostPath".to_string()) && volumes.contains(&"nfs".to_string()));
    assert_eq!(scc.allow_privilege_escalation, Some(true));
    assert_eq!(
        (
            scc.fs_group.type_.as_str(),
            scc.supplemental_groups.type_.as_str()
        ),
        ("RunAsAny", "RunAsAny")
    );
    let host =
        Scc::parse(&json!({ "metadata": { "name": "h" }, "volumes": [], "allowHostDirVolumePlugin": true }))
            .expect("parse");
    assert_eq!(host.volumes, Some(vec!["hostPath".to_string()]));
    let none = Scc::parse(&json!({ "metadata": { "name": "n" }, "volumes": [] })).expect("parse");
    assert_eq!(none.volumes, Some(vec!["none".to_string()]));
    assert!(Scc::parse(&json!({ "priority": "high" })).is_err());
}

#[test]
fn sccs_are_tried_by_priority_then_restrictiveness_then_name() {
    let mut sccs = default_sccs();
    sccs.sort_by(order::admission_order);
    let names: Vec<&str> = sccs.iter().map(Scc::name).collect();
    assert_eq!(
        names,
        [
            "anyuid",
            "restricted-v2",
            "restricted",
            "nonroot-v2",
            "nonroot",
            "hostmount-anyuid",
            "hostnetwork-v2",
            "hostnetwork",
            "hostaccess",
            "privileged"
        ]
    );
}

#[test]
fn id_blocks_and_versions() {
    assert_eq!(
        parse_block("1000680000/10000"),
        Ok((1_000_680_000, 1_000_689_999))
    );
    assert_eq!(parse_block("2000-2999"), Ok((2000, 2999)));
    for bad in ["", "5/0", "9-1", "x/10", "4294967295/2"] {
        assert!(parse_block(bad).is_err(), "{bad}");
    }
    let v412 = OpenShiftVersion::parse("4.12").expect("version");
    assert!(!v412.writes_fields() && v412.syncs_annotations());
    assert_eq!(v412.kubernetes_minor(), 25);
    assert!(OpenShiftVersion::NEWEST.writes_fields() && !OpenShiftVersion::NEWEST.syncs_annotations());
    assert!(OpenShiftVersion::parse("4.10").is_err() && OpenShiftVersion::parse("5.1").is_err());
}

#[test]
fn restricted_v2_writes_its_defaults_into_an_ordinary_pod() {
    let plain = pod(json!({ "containers": [{ "name": "app", "image": "i" }] }));
    let admitted = admit(&plain, &["restricted-v2"], OpenShiftVersion::NEWEST)
        .expect("admitted")
        .expect("subject to SCC admission");
    assert_eq!(admitted.scc, "restricted-v2");
    assert_eq!(
        seccomp_of(&admitted.pod),
        (Some("RuntimeDefault".into()), Some("runtime/default".into()))
    );
    let container = &admitted.pod.spec.as_ref().expect("spec").containers[0];
    let context = container.security_context.as_ref().expect("context");
    assert_eq!(context.run_as_user, Some(1_000_680_000));
    assert_eq!(context.allow_privilege_escalation, Some(false));
    assert_eq!(
        context.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_string()])
    );

    // 4.12 writes the annotation only; its API server copies it into the field.
    let old = admit(&plain, &["restricted-v2"], OpenShiftVersion(12))
        .expect("admitted")
        .expect("subject");
    assert_eq!(
        seccomp_of(&old.pod),
        (Some("RuntimeDefault".into()), Some("runtime/default".into()))
    );
}

#[test]
fn an_unconfined_annotation_overrides_the_field_under_privileged() {
    let mut asked = pod(
        json!({ "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
        "containers": [{ "name": "app", "image": "i" }] }),
    );
    asked.metadata.annotations = Some(
        [(
            "seccomp.security.alpha.kubernetes.io/pod".to_string(),
            "unconfined".to_string(),
        )]
        .into(),
    );
    let admitted = admit(&asked, &["restricted-v2", "privileged"], OpenShiftVersion::NEWEST)
        .expect("admitted")
        .expect("subject");
    assert_eq!(admitted.scc, "privileged");
    assert_eq!(seccomp_of(&admitted.pod).0.as_deref(), Some("Unconfined"));
}

#[test]
fn an_empty_localhost_profile_loses_its_field() {
    let asked = pod(
        json!({ "securityContext": { "seccompProfile": { "type": "Localhost", "localhostProfile": "" } },
        "containers": [{ "name": "app", "image": "i" }] }),
    );
    let refused =
        admit(&asked, &["restricted-v2"], OpenShiftVersion::NEWEST).expect_err("restricted-v2 refuses");
    assert!(
        refused
            .message
            .contains("localhost/ is not an allowed seccomp profile"),
        "{}",
        refused.message
    );
    let admitted = admit(&asked, &["privileged"], OpenShiftVersion::NEWEST)
        .expect("admitted")
        .expect("subject");
    assert_eq!(seccomp_of(&admitted.pod), (None, Some("localhost/".into())));
}

#[test]
fn refusals_say_why_for_every_scc() {
    let root = pod(
        json!({ "hostNetwork": true, "containers": [{ "name": "app", "image": "i",
        "securityContext": { "runAsUser": 0 } }] }),
    );
    let refused = admit(&root, &["restricted-v2"], OpenShiftVersion::NEWEST).expect_err("refused");
    assert!(
        refused.message.starts_with(
            "pods \"p\" is forbidden: unable to validate against any security context constraint: ["
        ),
        "{}",
        refused.message
    );
    assert!(
        refused
            .message
            .contains("provider \"anyuid\": Forbidden: not usable by user or serviceaccount")
    );
    assert!(refused.message.contains("provider restricted-v2: .spec.securityContext.hostNetwork: Invalid value: true: Host network is not allowed to be used"));
    assert!(refused.message.contains("provider restricted-v2: .spec.containers[0].runAsUser: Invalid value: 0: must be in the ranges: [1000680000, 1000689999]"));

    let mut required = pod(json!({ "containers": [{ "name": "app", "image": "i" }] }));
    required.metadata.annotations = Some([(REQUIRED_SCC_ANNOTATION.to_string(), "gone".to_string())].into());
    let refused = admit(&required, &["restricted-v2"], OpenShiftVersion::NEWEST).expect_err("refused");
    assert!(
        refused.message.contains("the required SCC \"gone\""),
        "{}",
        refused.message
    );

    let windows =
        pod(json!({ "os": { "name": "windows" }, "containers": [{ "name": "app", "image": "i" }] }));
    assert_eq!(
        admit(&windows, &["restricted-v2"], OpenShiftVersion::NEWEST),
        Ok(None)
    );
}

#[test]
fn a_namespace_without_its_allocation_refuses_every_pod() {
    let sccs = default_sccs();
    let grant = SccGrant::All;
    let namespace = NamespaceAllocation {
        name: "shop".into(),
        annotations: Default::default(),
    };
    let plain = pod(json!({ "containers": [{ "name": "app", "image": "i" }] }));
    let refused = simulate(
        &plain,
        &AdmissionRequest {
            sccs: &sccs,
            grant: &grant,
            namespace: &namespace,
            version: OpenShiftVersion::NEWEST,
        },
    )
    .expect_err("refused");
    assert!(
        refused
            .message
            .contains("unable to find annotation openshift.io/sa.scc.uid-range")
    );
    // A Namespace manifest without the annotations gets the assumed blocks.
    let written =
        NamespaceAllocation::from_object(&json!({ "metadata": { "name": "shop" } })).expect("namespace");
    let effective = NamespaceAllocation::effective("shop", Some(&written));
    assert_eq!(effective.annotations[UID_RANGE_ANNOTATION], DEFAULT_UID_RANGE);
}
