//! SCC admission: the audit's simulation (`seccomp_sentinel::scc`) against OpenShift's own SCC
//! admission plugin and Kubernetes' pod create strategy (`e2e/bin/scc-oracle`, built by
//! `make testenv` from `e2e/openshift/oracle`), on the corpus in `tests/openshift/corpus`. For
//! every case they must agree on admitted or refused, the SCC, and every container's effective
//! profile (the engine's reading of each admitted pod).
use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use k8s_openapi::api::core::v1::Pod;
use seccomp_sentinel::{
    api::KubeletSeccompDefault,
    audit::report,
    engine::{self, Facts, NodeFacts, PodView, SccDefaults},
    scc::{self, AdmissionRequest, NamespaceAllocation, OpenShiftVersion, Scc, SccGrant},
};
use serde_json::{Value, json};

const ALLOW_ANNOTATION: &str = "oracle.sentinel.dev/scc-allow";

fn root() -> PathBuf {
    sentinel_testenv::repository_root().to_path_buf()
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    documents.into_iter().filter(Value::is_object).collect()
}

struct Case {
    name: String,
    allow: Vec<String>,
    pod: Pod,
}

fn corpus() -> Vec<Case> {
    let dir = root().join("tests/openshift/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        for document in documents(&file) {
            let allow: Vec<String> = document
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(ALLOW_ANNOTATION))
                .and_then(Value::as_str)
                .unwrap_or("restricted-v2")
                .split(',')
                .map(String::from)
                .collect();
            let found = report::subjects(&document)
                .unwrap_or_else(|e| panic!("{}: {e:?}: {document}", file.display()));
            for subject in found {
                let mut pod = subject.pod;
                pod.metadata.namespace = Some(subject.namespace.clone());
                pod.metadata.name = Some(subject.name.clone());
                cases.push(Case {
                    name: format!(
                        "{}/{}",
                        file.file_name().unwrap_or_default().to_string_lossy(),
                        subject.name
                    ),
                    allow: allow.clone(),
                    pod,
                });
            }
        }
    }
    cases
}

/// Every container's effective profile, as the engine reads an admitted pod.
fn profiles(pod: &Pod, sccs: &SccDefaults) -> Vec<String> {
    let node = NodeFacts {
        os: seccomp_sentinel::engine::NodeOs::Linux,
        kubelet_minor: Some(33),
        seccomp_default: KubeletSeccompDefault::False,
    };
    let facts = Facts {
        node: Some(&node),
        unknown_node_seccomp_default: KubeletSeccompDefault::False,
        sccs,
    };
    engine::evaluate(&PodView::from_pod(pod), &facts)
        .containers
        .iter()
        .map(|c| {
            format!(
                "{}={:?}{}",
                c.name,
                c.profile.type_,
                c.profile
                    .localhost_profile
                    .as_deref()
                    .map(|p| format!("({p})"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Admitted { scc: String, profiles: Vec<String> },
    NotSubject { profiles: Vec<String> },
    Refused(String),
}

impl Answer {
    fn same_as(&self, other: &Answer) -> bool {
        match (self, other) {
            (Answer::Refused(_), Answer::Refused(_)) => true,
            _ => self == other,
        }
    }
}

/// The SCCs of `objects`, and the seccomp profile each defaults to.
fn parse_sccs(objects: &[Value]) -> (Vec<Scc>, SccDefaults) {
    let sccs: Vec<Scc> = objects
        .iter()
        .map(|o| Scc::parse(o).expect("a valid SCC"))
        .collect();
    let mut defaults = SccDefaults::default();
    for scc in &sccs {
        defaults.insert(scc.name(), &scc.seccomp_profiles);
    }
    (sccs, defaults)
}

fn oracle_binary() -> PathBuf {
    let oracle = root().join("e2e/bin/scc-oracle");
    assert!(
        oracle.exists(),
        "{} is missing: run `make testenv` (it builds OpenShift's SCC admission oracle from e2e/openshift)",
        oracle.display()
    );
    oracle
}

/// OpenShift's admission of every case of `input`, one answer each, in order.
fn run_oracle(oracle: &Path, input: &Value) -> Vec<Value> {
    let mut child = Command::new(oracle)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scc-oracle");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write the corpus to the oracle");
    let output = child.wait_with_output().expect("oracle output");
    assert!(
        output.status.success(),
        "scc-oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the oracle's JSON")
}

/// What the audit's simulation and OpenShift's admission said of a set of cases.
struct Comparison {
    disagreements: Vec<String>,
    admitted: usize,
    refused: usize,
    chosen: BTreeSet<String>,
}

/// Admits every case with OpenShift's plugin (the oracle) and with the audit's simulation, and
/// compares the answers: admitted or refused, the SCC, every container's profile.
fn compare_with_openshift(cases: &[Case]) -> Comparison {
    let oracle = oracle_binary();
    let mut scc_objects = documents(&root().join("e2e/openshift/sccs.yaml"));
    scc_objects.extend(documents(&root().join("tests/openshift/sccs-custom.yaml")));
    let (sccs, scc_defaults) = parse_sccs(&scc_objects);
    let written: BTreeMap<String, NamespaceAllocation> =
        documents(&root().join("tests/openshift/namespaces.yaml"))
            .iter()
            .filter_map(NamespaceAllocation::from_object)
            .map(|n| (n.name.clone(), n))
            .collect();
    let namespaces: BTreeSet<String> = cases
        .iter()
        .filter_map(|c| c.pod.metadata.namespace.clone())
        .collect();
    let allocations: BTreeMap<String, NamespaceAllocation> = namespaces
        .iter()
        .map(|n| (n.clone(), NamespaceAllocation::effective(n, written.get(n))))
        .collect();

    let input = json!({
        "sccs": scc_objects,
        "namespaces": allocations.values().map(|a| json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": { "name": a.name, "annotations": a.annotations },
        })).collect::<Vec<_>>(),
        "cases": cases.iter().map(|c| json!({
            "name": c.name,
            "allow": c.allow.iter().map(|a| if a == "all" { "*" } else { a.as_str() }).collect::<Vec<_>>(),
            "pod": c.pod,
        })).collect::<Vec<_>>(),
    });
    if let Some(path) = std::env::var_os("SENTINEL_ORACLE_INPUT") {
        // For debugging: the oracle's input, to run it by hand.
        std::fs::write(path, input.to_string()).expect("write the oracle input");
    }
    let results = run_oracle(&oracle, &input);
    assert_eq!(results.len(), cases.len());

    let mut disagreements = Vec::new();
    let mut chosen = BTreeSet::new();
    let (mut admitted, mut refused) = (0, 0);
    for (case, result) in cases.iter().zip(&results) {
        assert_eq!(result["name"], case.name.as_str());
        let oracle_answer = if result["admitted"] == true {
            let pod: Pod = serde_json::from_value(result["pod"].clone()).expect("the oracle's pod");
            let profiles = profiles(&pod, &scc_defaults);
            match result["scc"].as_str().filter(|s| !s.is_empty()) {
                Some(scc) => Answer::Admitted {
                    scc: scc.to_string(),
                    profiles,
                },
                None => Answer::NotSubject { profiles },
            }
        } else {
            Answer::Refused(format!(
                "{}: {}",
                result["stage"].as_str().unwrap_or_default(),
                result["reason"].as_str().unwrap_or_default()
            ))
        };
        let grant = if case.allow.iter().any(|a| a == "all") {
            SccGrant::All
        } else {
            SccGrant::Names(case.allow.iter().cloned().collect())
        };
        let namespace = case.pod.metadata.namespace.clone().unwrap_or_default();
        let request = AdmissionRequest {
            sccs: &sccs,
            grant: &grant,
            namespace: &allocations[&namespace],
            version: OpenShiftVersion::NEWEST,
        };
        let simulated = match scc::simulate(&case.pod, &request) {
            Ok(Some(admission)) => Answer::Admitted {
                scc: admission.scc,
                profiles: profiles(&admission.pod, &scc_defaults),
            },
            Ok(None) => Answer::NotSubject {
                profiles: profiles(&case.pod, &scc_defaults),
            },
            Err(rejection) => Answer::Refused(rejection.message),
        };
        match &oracle_answer {
            Answer::Admitted { scc, .. } => {
                admitted += 1;
                chosen.insert(scc.clone());
            }
            Answer::Refused(_) => refused += 1,
            Answer::NotSubject { .. } => {}
        }
        if !simulated.same_as(&oracle_answer) {
            disagreements.push(format!(
                "{}:\n  OpenShift: {oracle_answer:?}\n  audit:     {simulated:?}",
                case.name
            ));
        }
    }
    Comparison {
        disagreements,
        admitted,
        refused,
        chosen,
    }
}

/// [`compare_with_openshift`], which must find no disagreement; `what` names the cases.
fn agreeing_with_openshift(what: &str, cases: &[Case]) -> Comparison {
    let comparison = compare_with_openshift(cases);
    let Comparison {
        disagreements,
        admitted,
        refused,
        chosen,
    } = &comparison;
    eprintln!(
        "scc oracle, {what}: {} cases, {admitted} admitted by {} SCCs, {refused} refused, {} disagreements",
        cases.len(),
        chosen.len(),
        disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{what}: {} of {} cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
    comparison
}

#[test]
fn scc_admission_simulation_agrees_with_openshifts_admission_plugin() {
    let cases = corpus();
    let Comparison {
        admitted,
        refused,
        chosen,
        ..
    } = agreeing_with_openshift("the corpus", &cases);
    // The corpus must keep exercising both outcomes and many SCCs.
    assert!(cases.len() >= 60, "the corpus has only {} cases", cases.len());
    assert!(
        admitted >= 20 && refused >= 20,
        "{admitted} admitted, {refused} refused"
    );
    assert!(chosen.len() >= 8, "SCCs chosen: {chosen:?}");
}

/// Random pods, from a fixed seed (`SENTINEL_ORACLE_SEED` picks another), through OpenShift's
/// plugin and the audit's simulation: combinations of user and group IDs, SELinux levels,
/// privilege, capabilities, host namespaces and ports, volumes, sysctls, user namespaces, seccomp
/// fields and annotations at both levels, init and sidecar containers, service accounts,
/// `openshift.io/required-scc` and the SCCs a case may use, that a hand-written corpus does not
/// cross. Left out by construction: what Kubernetes' pod validation refuses for reasons other than
/// seccomp (privileged without privilege escalation, host namespaces without user namespaces,
/// sysctls beside host namespaces, a host port that is not the container's port), which the audit
/// does not simulate.
#[test]
fn random_pods_are_admitted_as_openshift_admits_them() {
    let seed: u64 = std::env::var("SENTINEL_ORACLE_SEED")
        .ok()
        .map(|s| s.parse().expect("SENTINEL_ORACLE_SEED: a number"))
        .unwrap_or(5);
    let cases = random_cases(seed, 600);
    let Comparison {
        admitted,
        refused,
        chosen,
        ..
    } = agreeing_with_openshift(&format!("seed {seed}"), &cases);
    assert!(
        admitted >= 80 && refused >= 80 && chosen.len() >= 12,
        "seed {seed}: {admitted} admitted by {chosen:?}, {refused} refused: the generator no longer covers both outcomes"
    );
}

/// The SCCs a random case may be allowed: OpenShift's own and the corpus's custom ones.
fn random_sccs() -> Vec<&'static str> {
    let custom = [
        "custom-localhost",
        "custom-docker-default",
        "custom-glob",
        "custom-star-runtime",
        "custom-priority",
        "custom-readonly",
        "custom-fixed",
        "custom-sysctl",
        "custom-default-add",
        "custom-userns",
        "custom-flex",
        "custom-builder",
    ];
    scc::STANDARD_SCCS.iter().copied().chain(custom).collect()
}

/// `count` random cases from `seed` (see [`random_pods_are_admitted_as_openshift_admits_them`]).
fn random_cases(seed: u64, count: usize) -> Vec<Case> {
    use proptest::{
        prelude::RngExt,
        test_runner::{RngAlgorithm, TestRng},
    };
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let rng = &mut rng;
    let sccs = random_sccs();
    fn pick<T: Clone>(rng: &mut TestRng, items: &[T]) -> T {
        items[rng.random_range(0..items.len())].clone()
    }
    fn chance(rng: &mut TestRng, p: f64) -> bool {
        rng.random_bool(p)
    }
    fn profile(rng: &mut TestRng) -> Value {
        match rng.random_range(0..3) {
            0 => json!({ "type": "RuntimeDefault" }),
            1 => json!({ "type": "Unconfined" }),
            _ => json!({ "type": "Localhost",
                "localhostProfile": pick(rng, &["profiles/a.json", "b.json", "custom.json", "nested/x.json"]) }),
        }
    }
    fn annotation(rng: &mut TestRng) -> &'static str {
        pick(
            rng,
            &[
                "runtime/default",
                "docker/default",
                "unconfined",
                "localhost/profiles/a.json",
                "localhost/b.json",
            ],
        )
    }
    // A container's or the pod's securityContext.
    fn security_context(rng: &mut TestRng, container: bool) -> Value {
        let mut context = serde_json::Map::new();
        if chance(rng, 0.3) {
            context.insert(
                "runAsUser".into(),
                json!(pick(rng, &[0, 1000, 1000680000, 1000689999, 65534])),
            );
        }
        if chance(rng, 0.2) {
            context.insert("runAsNonRoot".into(), json!(chance(rng, 0.5)));
        }
        if chance(rng, 0.15) {
            context.insert("runAsGroup".into(), json!(pick(rng, &[0, 1000, 1000680000])));
        }
        if chance(rng, 0.15) {
            context.insert(
                "seLinuxOptions".into(),
                json!({ "level": pick(rng, &["s0:c26,c15", "s0:c1,c2", "s0"]) }),
            );
        }
        if chance(rng, 0.35) {
            context.insert("seccompProfile".into(), profile(rng));
        }
        if container {
            let privileged = chance(rng, 0.15).then(|| chance(rng, 0.5));
            if let Some(privileged) = privileged {
                context.insert("privileged".into(), json!(privileged));
            }
            // Kubernetes refuses privileged without privilege escalation.
            if chance(rng, 0.2) {
                let escalation = privileged == Some(true) || chance(rng, 0.5);
                context.insert("allowPrivilegeEscalation".into(), json!(escalation));
            }
            if chance(rng, 0.25) {
                let mut capabilities = serde_json::Map::new();
                if chance(rng, 0.6) {
                    capabilities.insert(
                        "drop".into(),
                        json!(pick(rng, &[vec!["ALL"], vec!["KILL", "MKNOD"], vec!["NET_RAW"]])),
                    );
                }
                if chance(rng, 0.5) {
                    let add = pick(
                        rng,
                        &[
                            vec!["NET_BIND_SERVICE"],
                            vec!["NET_ADMIN"],
                            vec!["SYS_ADMIN"],
                            vec!["SYS_CHROOT"],
                            vec!["CHOWN", "SETUID"],
                        ],
                    );
                    capabilities.insert("add".into(), json!(add));
                }
                context.insert("capabilities".into(), Value::Object(capabilities));
            }
            if chance(rng, 0.1) {
                context.insert("readOnlyRootFilesystem".into(), json!(chance(rng, 0.5)));
            }
        } else {
            if chance(rng, 0.15) {
                context.insert("fsGroup".into(), json!(pick(rng, &[0, 1000, 1000680000])));
            }
            if chance(rng, 0.1) {
                context.insert(
                    "supplementalGroups".into(),
                    json!([pick(rng, &[1000, 1000680000, 0])]),
                );
            }
            if chance(rng, 0.08) {
                let name = pick(
                    rng,
                    &[
                        "kernel.shm_rmid_forced",
                        "net.ipv4.ip_forward",
                        "kernel.msgmax",
                        "net.ipv4.ping_group_range",
                    ],
                );
                context.insert("sysctls".into(), json!([{ "name": name, "value": "1" }]));
            }
        }
        Value::Object(context)
    }
    fn container(rng: &mut TestRng, name: &str, host_port: bool, sidecar: bool) -> Value {
        let mut container = json!({ "name": name, "image": "registry.example/app:1" });
        let context = security_context(rng, true);
        if context.as_object().is_some_and(|c| !c.is_empty()) {
            container["securityContext"] = context;
        }
        if host_port && chance(rng, 0.08) {
            // The same port inside and out: Kubernetes refuses others under hostNetwork.
            let port = pick(rng, &[80, 8080]);
            container["ports"] = json!([{ "containerPort": port, "hostPort": port }]);
        }
        if sidecar {
            container["restartPolicy"] = json!("Always");
        }
        container
    }

    (0..count)
        .map(|i| {
            let name = format!("random-{seed}-{i}");
            let namespace = pick(rng, &["default", "team-a", "team-b", "bare"]);
            let mut allow: BTreeSet<String> = (0..pick(rng, &[1, 1, 2, 3, 5]))
                .map(|_| pick(rng, &sccs[..]).to_string())
                .collect();
            if chance(rng, 0.3) {
                allow.insert("restricted-v2".into());
            }
            if chance(rng, 0.1) {
                allow = ["all".to_string()].into();
            }
            let mut annotations = serde_json::Map::new();
            let mut containers = vec![container(rng, "app", true, false)];
            if chance(rng, 0.3) {
                containers.push(container(rng, "second", false, false));
            }
            let mut init_containers = Vec::new();
            if chance(rng, 0.25) {
                init_containers.push(container(rng, "init", false, false));
            }
            if chance(rng, 0.15) {
                init_containers.push(container(rng, "side", false, true));
            }
            let mut spec = json!({ "containers": containers });
            if !init_containers.is_empty() {
                spec["initContainers"] = json!(init_containers);
            }
            if chance(rng, 0.3) {
                annotations.insert("seccomp.security.alpha.kubernetes.io/pod".into(), json!(annotation(rng)));
            }
            if chance(rng, 0.25) {
                let target = pick(rng, &["app", "init", "side", "second"]);
                annotations.insert(
                    format!("container.seccomp.security.alpha.kubernetes.io/{target}"),
                    json!(annotation(rng)),
                );
            }
            if chance(rng, 0.06) {
                annotations.insert("openshift.io/required-scc".into(), json!(pick(rng, &sccs[..])));
            }
            let mut host_namespaces = false;
            for field in ["hostNetwork", "hostPID", "hostIPC"] {
                if chance(rng, 0.07) {
                    spec[field] = json!(true);
                    host_namespaces = true;
                }
            }
            // Kubernetes refuses host namespaces in a user namespace, and sysctls beside them.
            if !host_namespaces && chance(rng, 0.06) {
                spec["hostUsers"] = json!(false);
            }
            let mut pod_context = security_context(rng, false);
            if host_namespaces && let Some(context) = pod_context.as_object_mut() {
                context.remove("sysctls");
            }
            if pod_context.as_object().is_some_and(|c| !c.is_empty()) {
                spec["securityContext"] = pod_context;
            }
            if chance(rng, 0.15) {
                let volume = pick(
                    rng,
                    &[
                        json!({ "name": "v", "hostPath": { "path": "/tmp" } }),
                        json!({ "name": "v", "emptyDir": {} }),
                        json!({ "name": "v", "configMap": { "name": "x" } }),
                        json!({ "name": "v", "csi": { "driver": "d" } }),
                        json!({ "name": "v", "ephemeral": { "volumeClaimTemplate": { "spec": {
                            "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } } } } }),
                        json!({ "name": "v", "flexVolume": { "driver": "example/flex" } }),
                    ],
                );
                spec["volumes"] = json!([volume]);
            }
            if chance(rng, 0.1) {
                spec["serviceAccountName"] = json!(pick(rng, &["builder", "agent", "default", "special"]));
            }
            let pod: Pod = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": { "name": name, "namespace": namespace, "annotations": annotations },
                "spec": spec,
            }))
            .expect("a random pod");
            Case {
                name,
                allow: allow.into_iter().collect(),
                pod,
            }
        })
        .collect()
}

/// The shipped OpenShift install (`config/openshift`, and the bundle's manager), as OpenShift's
/// own SCC admission sees it: the manager's pod is admitted under restricted-v2 (which every
/// authenticated user may use), the node agent's under the SCC the install ships for it (its
/// ClusterRole grants `use` to the agent's service account), and every container of both runs
/// with the runtime's default profile.
#[test]
fn openshifts_admission_admits_the_pods_of_the_shipped_openshift_install() {
    let oracle = oracle_binary();
    let kubectl = sentinel_testenv::Binaries::locate()
        .expect("the Kubernetes binaries: run `make testenv`")
        .kubectl();
    let rendered = Command::new(&kubectl)
        .args([
            "kustomize",
            &root().join("config/openshift").display().to_string(),
        ])
        .output()
        .expect("kubectl kustomize");
    assert!(
        rendered.status.success(),
        "kubectl kustomize config/openshift: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let objects: Vec<Value> = serde_saphyr::from_multiple(&String::from_utf8_lossy(&rendered.stdout))
        .expect("the rendered install");
    let of_kind = |kind: &'static str| objects.iter().filter(move |o| o["kind"] == kind);
    let shipped_sccs: Vec<Value> = of_kind("SecurityContextConstraints").cloned().collect();
    assert!(!shipped_sccs.is_empty(), "config/openshift ships an SCC");
    // The SCCs the install lets a service account use, from its ClusterRoles and their bindings.
    let usable_by = |account: &str| -> Vec<String> {
        let roles: BTreeSet<&str> = of_kind("ClusterRoleBinding")
            .filter(|b| {
                b["subjects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| s["kind"] == "ServiceAccount" && s["name"] == account)
            })
            .filter_map(|b| b["roleRef"]["name"].as_str())
            .collect();
        of_kind("ClusterRole")
            .filter(|r| r["metadata"]["name"].as_str().is_some_and(|n| roles.contains(n)))
            .flat_map(|r| r["rules"].as_array().cloned().unwrap_or_default())
            .filter(|rule| {
                rule["resources"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r == "securitycontextconstraints"))
                    && rule["verbs"]
                        .as_array()
                        .is_some_and(|v| v.iter().any(|v| v == "use"))
            })
            .flat_map(|rule| rule["resourceNames"].as_array().cloned().unwrap_or_default())
            .filter_map(|n| n.as_str().map(String::from))
            .collect()
    };
    let mut cases = Vec::new();
    for workload in of_kind("Deployment").chain(of_kind("DaemonSet")) {
        let template = &workload["spec"]["template"];
        let namespace = workload["metadata"]["namespace"].as_str().expect("a namespace");
        let account = template["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default");
        let mut allow = vec!["restricted-v2".to_string()];
        allow.extend(usable_by(account));
        let name = workload["metadata"]["name"].as_str().expect("a name").to_string();
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": name, "namespace": namespace, "labels": template["metadata"]["labels"] },
            "spec": template["spec"],
        });
        cases.push((name, namespace.to_string(), allow, pod));
    }
    // Under OLM the manager's Deployment comes from the bundle's CSV (and the agent's DaemonSet
    // from the operator, the same as config/agent's: a unit test compares them).
    let csv: Value = documents(&root().join("bundle/manifests/seccomp-sentinel.clusterserviceversion.yaml"))
        .into_iter()
        .next()
        .expect("the CSV");
    for deployment in csv["spec"]["install"]["spec"]["deployments"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let template = &deployment["spec"]["template"];
        let name = format!("olm-{}", deployment["name"].as_str().expect("a name"));
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": name, "namespace": "seccomp-sentinel", "labels": template["metadata"]["labels"] },
            "spec": template["spec"],
        });
        cases.push((name, "seccomp-sentinel".into(), vec!["restricted-v2".into()], pod));
    }
    let names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "seccomp-sentinel",
            "seccomp-sentinel-agent",
            "olm-seccomp-sentinel"
        ],
        "the manager and the agent, and the manager of the bundle"
    );

    let mut scc_objects = documents(&root().join("e2e/openshift/sccs.yaml"));
    scc_objects.extend(shipped_sccs);
    let (_, scc_defaults) = parse_sccs(&scc_objects);
    let namespaces: BTreeSet<&str> = cases.iter().map(|c| c.1.as_str()).collect();
    let input = json!({
        "sccs": scc_objects,
        "namespaces": namespaces.iter().map(|n| {
            let allocation = NamespaceAllocation::effective(n, None);
            json!({ "apiVersion": "v1", "kind": "Namespace",
                    "metadata": { "name": n, "annotations": allocation.annotations } })
        }).collect::<Vec<_>>(),
        "cases": cases.iter().map(|(name, _, allow, pod)| json!({ "name": name, "allow": allow, "pod": pod })).collect::<Vec<_>>(),
    });
    let results = run_oracle(&oracle, &input);
    let answers: Vec<(String, String, Vec<String>)> = results
        .iter()
        .map(|result| {
            assert_eq!(
                result["admitted"], true,
                "{}: refused by OpenShift's admission: {} {}",
                result["name"], result["stage"], result["reason"]
            );
            let pod: Pod = serde_json::from_value(result["pod"].clone()).expect("the oracle's pod");
            (
                result["name"].as_str().unwrap_or_default().to_string(),
                result["scc"].as_str().unwrap_or_default().to_string(),
                profiles(&pod, &scc_defaults),
            )
        })
        .collect();
    assert_eq!(
        answers,
        [
            (
                "seccomp-sentinel".to_string(),
                "restricted-v2".to_string(),
                vec!["manager=RuntimeDefault".to_string()]
            ),
            (
                "seccomp-sentinel-agent".to_string(),
                "seccomp-sentinel-agent".to_string(),
                vec!["agent=RuntimeDefault".to_string()]
            ),
            (
                "olm-seccomp-sentinel".to_string(),
                "restricted-v2".to_string(),
                vec!["manager=RuntimeDefault".to_string()]
            ),
        ]
    );
}
