//! From Kubernetes documents to SeccompStatus objects and a report. Pure: no files, no network.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Pod, PodTemplateSpec},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time},
    jiff::Timestamp,
};
use serde_json::Value;

use crate::{
    api::{
        PROFILE_LABEL, PodProfile, PolicyAction, ProfileSource, SeccompStatus, SeccompStatusSpec,
        SeccompStatusStatus, Verdict,
    },
    engine::{self, Facts, PodView},
    policy::{self, CompiledPolicy, Subject},
    profile::strength::{self, FileReports, ProfileFacts},
};

/// Annotation on audit items made from a workload: the workload's kind.
pub const KIND_ANNOTATION: &str = "seccomp.sentinel.dev/kind";

/// Something with a pod spec: a pod, or a workload's pod template.
#[derive(Clone, Debug, Default)]
pub struct AuditSubject {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub uid: Option<String>,
    /// The pod to evaluate: as written, or as SCC admission would store it.
    pub pod: Pod,
    pub admission: SubjectAdmission,
}

/// What the simulated SCC admission made of a subject.
#[derive(Clone, Debug, Default)]
pub enum SubjectAdmission {
    /// No simulation (no SCCs known, an admitted pod, a Windows pod).
    #[default]
    NotSimulated,
    /// Admitted by `scc`; `pod` is now the admitted pod and `written` the manifest's.
    Admitted { scc: String, written: Box<Pod> },
    /// OpenShift would refuse the pod, for these reasons.
    Rejected(String),
}

/// Why a document yields nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAudited {
    /// A kind without pods (a note, not an error): its `apiVersion kind`.
    UnknownKind(String),
    /// A kind this audit does not know whose `spec.template` looks like a pod template but is
    /// not one (a note, not an error): its `apiVersion kind`, and why.
    NotAPodTemplate { kind: String, why: String },
    /// The document is not a usable object.
    Invalid(String),
}

/// Where a workload kind keeps its pod template.
fn template_path(api_version: &str, kind: &str) -> Option<&'static [&'static str]> {
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    match (group, kind) {
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("", "ReplicationController")
        | ("batch", "Job")
        | ("apps.openshift.io", "DeploymentConfig") => Some(&["spec", "template"]),
        ("batch", "CronJob") => Some(&["spec", "jobTemplate", "spec", "template"]),
        ("", "PodTemplate") => Some(&["template"]),
        _ => None,
    }
}

/// The pod template of a kind this audit does not know, when it keeps one where the built-in
/// workloads do (`spec.template` with `spec.containers`): Argo Rollouts, OpenKruise CloneSets
/// and many other operators' workloads, which a CI gate must not pass over. A `spec.template`
/// that holds containers but does not decode as a pod template (Knative's containers may be
/// nameless) leaves the kind skipped, with the reason.
fn inferred_template(document: &Value, kind: &str) -> Result<PodTemplateSpec, NotAudited> {
    let template = document.pointer("/spec/template");
    let has_containers = template
        .and_then(|t| t.pointer("/spec/containers"))
        .is_some_and(Value::is_array);
    match template {
        Some(template) if has_containers => decode(template, "spec.template").map_err(|why| match why {
            NotAudited::Invalid(why) => NotAudited::NotAPodTemplate {
                kind: kind.to_string(),
                why,
            },
            other => other,
        }),
        _ => Err(NotAudited::UnknownKind(kind.to_string())),
    }
}

/// The pods and pod templates in one document (a List yields its items).
pub fn subjects(document: &Value) -> Result<Vec<AuditSubject>, NotAudited> {
    subjects_noting(document, &mut Vec::new())
}

/// As [`subjects`], and adds to `skipped` the items of a List that look like workloads but are
/// not audited (a `spec.template` that is not a pod template), so a List from `kubectl get -o
/// yaml` says what it passed over as a single document does. Items of kinds without pods (the
/// Services of `kubectl get all`) are left out without a word.
pub fn subjects_noting(
    document: &Value,
    skipped: &mut Vec<NotAudited>,
) -> Result<Vec<AuditSubject>, NotAudited> {
    let kind = document.get("kind").and_then(Value::as_str).unwrap_or_default();
    let api_version = document
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind.is_empty() {
        return Err(NotAudited::Invalid("no kind".into()));
    }
    if kind == "List" || kind.ends_with("List") {
        let items = document
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
        let mut found = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let mut item = item;
            // Items of a typed list (PodList) may omit their kind.
            if let (Some(k), Some(obj)) = (item_kind, item.as_object_mut()) {
                obj.entry("kind").or_insert_with(|| Value::String(k.to_string()));
                obj.entry("apiVersion")
                    .or_insert_with(|| Value::String(api_version.to_string()));
            }
            match subjects_noting(&item, skipped) {
                Ok(mut s) => found.append(&mut s),
                Err(NotAudited::UnknownKind(_)) => {}
                Err(NotAudited::NotAPodTemplate { kind, why }) => skipped.push(NotAudited::NotAPodTemplate {
                    kind: format!("{kind} (item {i})"),
                    why,
                }),
                Err(NotAudited::Invalid(why)) => return Err(NotAudited::Invalid(format!("item {i}: {why}"))),
            }
        }
        return Ok(found);
    }
    let metadata: ObjectMeta = document
        .get("metadata")
        .map(|m| decode(m, "metadata"))
        .transpose()?
        .unwrap_or_default();
    let name = metadata
        .name
        .clone()
        .or_else(|| metadata.generate_name.clone())
        .unwrap_or_default();
    let namespace = metadata.namespace.clone().unwrap_or_else(|| "default".into());
    if kind == "Pod" && api_version == "v1" {
        let mut pod: Pod = decode(document, "")?;
        needs_containers(pod.spec.as_ref(), "spec")?;
        // A pod read back from a cluster (it has a UID) carries what SCC admission wrote; one
        // that was never stored carries only what its author wrote.
        if pod.metadata.uid.is_none() {
            drop_scc_annotation(&mut pod.metadata);
        }
        return Ok(vec![AuditSubject {
            kind: kind.into(),
            name,
            namespace,
            uid: metadata.uid,
            pod,
            admission: SubjectAdmission::NotSimulated,
        }]);
    }
    let (template, template_at) = match template_path(api_version, kind) {
        Some(path) => {
            let at = path.join(".");
            let Some(template) = path.iter().try_fold(document, |v, key| v.get(*key)) else {
                return Err(NotAudited::Invalid(format!("{kind} without {at}")));
            };
            (decode::<PodTemplateSpec>(template, &at)?, at)
        }
        None => (
            inferred_template(document, &format!("{api_version} {kind}"))?,
            "spec.template".to_string(),
        ),
    };
    needs_containers(template.spec.as_ref(), &format!("{template_at}.spec"))?;
    let mut pod_meta = template.metadata.unwrap_or_default();
    drop_scc_annotation(&mut pod_meta);
    pod_meta.name = Some(name.clone());
    pod_meta.namespace = Some(namespace.clone());
    let pod = Pod {
        metadata: pod_meta,
        spec: template.spec,
        status: None,
    };
    Ok(vec![AuditSubject {
        kind: kind.into(),
        name,
        namespace,
        uid: metadata.uid,
        pod,
        admission: SubjectAdmission::NotSimulated,
    }])
}

/// A pod spec without containers is refused by the API server, so it has no profile to report:
/// read as one, it would be unconfined and confined at once (0 of 0 containers).
fn needs_containers(
    spec: Option<&k8s_openapi::api::core::v1::PodSpec>,
    path: &str,
) -> Result<(), NotAudited> {
    match spec {
        Some(spec) if !spec.containers.is_empty() => Ok(()),
        Some(_) => Err(NotAudited::Invalid(format!(
            "{path}.containers: no containers (Kubernetes refuses a pod without one)"
        ))),
        None => Err(NotAudited::Invalid(format!(
            "{path}: no pod spec (Kubernetes refuses a pod without one)"
        ))),
    }
}

/// Forgets a pod's `openshift.io/scc` where SCC admission did not write it. It writes its choice on
/// each pod it admits, over whatever the manifest says: a value in a pod template, in a pod never
/// stored, or on a cluster without SCC admission is no SCC's decision (it would buy an SCC
/// exemption, and skip the admission simulation).
pub(crate) fn drop_scc_annotation(meta: &mut ObjectMeta) {
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(crate::engine::SCC_ANNOTATION);
    }
}

/// Decodes `value`, found at `prefix` in its manifest; an error names the field that does not
/// decode (`spec.template.spec.containers[0].ports`), not just what was wrong with it.
fn decode<T: serde::de::DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, NotAudited> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (prefix, inner.as_str()) {
            (prefix, ".") => prefix.to_string(),
            ("", inner) => inner.to_string(),
            (prefix, inner) if inner.starts_with('[') => format!("{prefix}{inner}"),
            (prefix, inner) => format!("{prefix}.{inner}"),
        };
        let message = e.into_inner();
        if path.is_empty() {
            NotAudited::Invalid(message.to_string())
        } else {
            NotAudited::Invalid(format!("{path}: {message}"))
        }
    })
}

/// The facts the audit assumes, and the policies it judges by.
pub struct AuditContext<'a> {
    pub facts: Facts<'a>,
    pub policies: &'a [CompiledPolicy],
    /// Labels of the namespaces the audit knows (from the input or the cluster).
    pub namespace_labels: &'a BTreeMap<String, BTreeMap<String, String>>,
    pub now: Timestamp,
    /// Profile files read from `--profiles-dir`, by `localhostProfile`.
    pub profile_files: Option<&'a BTreeMap<String, crate::api::ProfileFile>>,
    /// Live: what the node agent read of this pod's Localhost profile files on its node, by
    /// container (from the pod's SeccompStatus). `--profiles-dir` goes first.
    pub node_reports: Option<&'a [(Box<str>, crate::api::ProfileFile)]>,
    /// Live: the cluster's Security Profiles Operator `SeccompProfile` objects.
    pub catalog: Option<&'a crate::profile::strength::ProfileCatalog>,
}

/// The SeccompStatus the controller would write for `subject`.
pub fn audit(subject: &AuditSubject, ctx: &AuditContext<'_>) -> SeccompStatus {
    let now = Time(ctx.now);
    let status = match &subject.admission {
        SubjectAdmission::Rejected(message) => SeccompStatusStatus {
            profile: PodProfile::Rejected,
            confined: "0/0".into(),
            conditions: vec![crate::status::condition(
                crate::status::ADMITTED,
                "False",
                "SCCRejected",
                message.clone(),
                &[],
                &now,
            )],
            ..Default::default()
        },
        _ => evaluated_status(subject, ctx),
    };
    item_for(subject, status)
}

/// The sources of an admitted pod's profiles, from what the manifest wrote: SCC admission turns
/// annotations into fields and writes its default as a field, which the stored pod cannot tell
/// apart, but the manifest can.
fn attribute_admitted(status: &mut SeccompStatusStatus, written: &Pod) {
    let view = PodView::from_pod(written);
    for container in &mut status.containers {
        let attributable = matches!(
            container.source,
            ProfileSource::ContainerField
                | ProfileSource::ContainerAnnotation
                | ProfileSource::PodField
                | ProfileSource::PodAnnotation
                | ProfileSource::SccDefault
        );
        if !attributable {
            continue;
        }
        let original = view.containers.iter().find(|c| c.name == container.name);
        container.source = if original.is_some_and(|c| c.profile.is_some()) {
            ProfileSource::ContainerField
        } else if container.source == ProfileSource::ContainerField {
            // Only a container annotation becomes a container field.
            ProfileSource::ContainerAnnotation
        } else if view.profile.is_some() {
            ProfileSource::PodField
        } else if view.annotation.is_some() {
            ProfileSource::PodAnnotation
        } else {
            ProfileSource::SccDefault
        };
        container.source_inferred = false;
    }
    status.source = engine::weakest(&status.containers).map(|c| c.source);
}

fn evaluated_status(subject: &AuditSubject, ctx: &AuditContext<'_>) -> SeccompStatusStatus {
    let view = PodView::from_pod(&subject.pod);
    let mut evaluation = engine::evaluate(&view, &ctx.facts);
    if let SubjectAdmission::Admitted { written, .. } = &subject.admission {
        attribute_admitted(&mut evaluation, written);
    }
    let files = match (ctx.profile_files, ctx.node_reports) {
        (Some(files), _) => FileReports::Dir(files),
        (None, Some(reports)) => FileReports::Node(reports),
        (None, None) => FileReports::None,
    };
    strength::assess(
        &mut evaluation,
        &ProfileFacts {
            files,
            catalog: ctx.catalog,
            ..ProfileFacts::default()
        },
    );
    let mut namespace_labels = ctx
        .namespace_labels
        .get(&subject.namespace)
        .cloned()
        .unwrap_or_default();
    namespace_labels
        .entry("kubernetes.io/metadata.name".into())
        .or_insert_with(|| subject.namespace.clone());
    let labels = subject.pod.metadata.labels.clone().unwrap_or_default();
    let who = Subject {
        namespace: &subject.namespace,
        labels: &labels,
        namespace_labels: &namespace_labels,
        scc: view.scc.as_deref(),
    };
    evaluation.policies = ctx
        .policies
        .iter()
        .filter(|p| p.selects(&who))
        .map(|p| policy::result(p, &p.judge(&who, &evaluation, ctx.now), PolicyAction::None, None))
        .collect();
    evaluation.verdict = evaluation.policies.iter().map(|r| r.verdict).max();
    evaluation.action = evaluation.policies.iter().map(|r| r.action).max();
    let mut status = crate::status::with_conditions(evaluation, &[], &Time(ctx.now));
    // As the controller stores it.
    if let std::borrow::Cow::Owned(bounded) = crate::status::within_size(&status) {
        status = bounded;
    }
    if let SubjectAdmission::Admitted { scc, .. } = &subject.admission {
        status.conditions.push(crate::status::condition(
            crate::status::ADMITTED,
            "True",
            "SCCAdmitted",
            format!("SCC admission (simulated) admits the pod with {scc}"),
            &[],
            &Time(ctx.now),
        ));
    }
    status
}

fn item_for(subject: &AuditSubject, status: SeccompStatusStatus) -> SeccompStatus {
    let mut item = SeccompStatus::new(
        &subject.name,
        SeccompStatusSpec {
            pod_uid: subject.uid.clone().unwrap_or_default(),
        },
    );
    item.metadata.namespace = Some(subject.namespace.clone());
    item.metadata.labels = Some(BTreeMap::from([(
        PROFILE_LABEL.to_string(),
        status.profile.as_str().to_string(),
    )]));
    if subject.kind == "Pod" {
        if let Some(uid) = &subject.uid {
            item.metadata.owner_references = Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: subject.name.clone(),
                uid: uid.clone(),
                controller: Some(true),
                block_owner_deletion: None,
            }]);
        }
    } else {
        item.metadata.annotations = Some(BTreeMap::from([(
            KIND_ANNOTATION.to_string(),
            subject.kind.clone(),
        )]));
    }
    item.status = Some(status);
    item
}

/// Counts for the summary line and the exit code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub objects: usize,
    pub confined: usize,
    pub unconfined: usize,
    pub mixed: usize,
    pub not_applicable: usize,
    /// Pods OpenShift's SCC admission would refuse (simulated).
    pub rejected: usize,
    pub violating: usize,
}

impl Summary {
    pub fn of(items: &[SeccompStatus]) -> Summary {
        let mut summary = Summary {
            objects: items.len(),
            ..Default::default()
        };
        for status in items.iter().filter_map(|i| i.status.as_ref()) {
            match status.profile {
                PodProfile::RuntimeDefault | PodProfile::Localhost => summary.confined += 1,
                PodProfile::Unconfined => summary.unconfined += 1,
                PodProfile::Mixed => summary.mixed += 1,
                PodProfile::NotApplicable => summary.not_applicable += 1,
                PodProfile::Rejected => summary.rejected += 1,
            }
            if status.verdict == Some(Verdict::Violating) {
                summary.violating += 1;
            }
        }
        summary
    }

    pub fn line(&self) -> String {
        let rejected = if self.rejected > 0 {
            format!(", {} refused by SCC admission", self.rejected)
        } else {
            String::new()
        };
        let plural = if self.objects == 1 { "" } else { "s" };
        format!(
            "{} object{plural}: {} confined, {} unconfined, {} mixed, {} not applicable{rejected}; {} violating a policy",
            self.objects, self.confined, self.unconfined, self.mixed, self.not_applicable, self.violating
        )
    }
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value
        .map(|v| v.to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// A kubectl-like table; `wide` adds the node and every container's profile and source.
pub fn table(items: &[SeccompStatus], wide: bool) -> String {
    let mut header = vec![
        "NAMESPACE",
        "NAME",
        "KIND",
        "PROFILE",
        "CONFINED",
        "SOURCE",
        "SCC",
        "VERDICT",
    ];
    if wide {
        header.extend(["NODE", "CONTAINERS"]);
    }
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for item in items {
        let status = item.status.clone().unwrap_or_default();
        let kind = item
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(KIND_ANNOTATION))
            .cloned()
            .unwrap_or_else(|| "Pod".into());
        let mut row = vec![
            item.metadata.namespace.clone().unwrap_or_default(),
            item.metadata.name.clone().unwrap_or_default(),
            kind,
            status.profile.as_str().to_string(),
            status.confined.clone(),
            or_dash(status.source.map(|s| {
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            })),
            or_dash(status.scc.clone()),
            or_dash(status.verdict.map(|v| format!("{v:?}"))),
        ];
        if wide {
            row.push(or_dash(status.node.clone()));
            let containers: Vec<String> = status
                .containers
                .iter()
                .map(|c| {
                    let source = serde_json::to_value(c.source)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default();
                    format!("{}={:?}({source})", c.name, c.profile.type_)
                })
                .collect();
            row.push(or_dash(Some(containers.join(","))));
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i + 1 == widths.len() {
                    cell.clone()
                } else {
                    format!("{cell:<w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        api::KubeletSeccompDefault,
        engine::{NodeFacts, SccDefaults},
    };

    fn audit_one(document: Value) -> Vec<SeccompStatus> {
        let sccs = SccDefaults::default();
        let node = NodeFacts {
            os: crate::engine::NodeOs::Linux,
            kubelet_minor: Some(33),
            seccomp_default: KubeletSeccompDefault::False,
        };
        let ctx = AuditContext {
            facts: Facts {
                node: Some(&node),
                unknown_node_seccomp_default: KubeletSeccompDefault::False,
                sccs: &sccs,
            },
            policies: &[],
            namespace_labels: &BTreeMap::new(),
            now: Timestamp::UNIX_EPOCH,
            profile_files: None,
            node_reports: None,
            catalog: None,
        };
        subjects(&document)
            .expect("audited")
            .iter()
            .map(|s| audit(s, &ctx))
            .collect()
    }

    fn template(profile: &str) -> Value {
        json!({ "metadata": { "labels": { "app": "x" } }, "spec": {
            "securityContext": { "seccompProfile": { "type": profile } }, "containers": [{ "name": "c", "image": "i" }] } })
    }

    #[test]
    fn every_workload_kind_yields_its_template() {
        let cases = [
            json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "d" }, "spec": { "template": template("RuntimeDefault") } }),
            json!({ "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": { "name": "d" }, "spec": { "template": template("RuntimeDefault") } }),
            json!({ "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": { "name": "d" }, "spec": { "template": template("RuntimeDefault") } }),
            json!({ "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": { "name": "d" }, "spec": { "template": template("RuntimeDefault") } }),
            json!({ "apiVersion": "v1", "kind": "ReplicationController", "metadata": { "name": "d" }, "spec": { "template": template("RuntimeDefault") } }),
            json!({ "apiVersion": "batch/v1", "kind": "Job", "metadata": { "name": "d" }, "spec": { "template": template("RuntimeDefault") } }),
            json!({ "apiVersion": "batch/v1", "kind": "CronJob", "metadata": { "name": "d" }, "spec": { "jobTemplate": { "spec": { "template": template("RuntimeDefault") } } } }),
            json!({ "apiVersion": "apps.openshift.io/v1", "kind": "DeploymentConfig", "metadata": { "name": "d" }, "spec": { "template": template("RuntimeDefault") } }),
            // Kinds the audit does not know, with a pod template where the built-in ones keep it.
            json!({ "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": { "name": "d" }, "spec": { "template": template("RuntimeDefault") } }),
            json!({ "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet", "metadata": { "name": "d" }, "spec": { "template": template("RuntimeDefault") } }),
        ];
        for case in cases {
            let items = audit_one(case.clone());
            assert_eq!(items.len(), 1, "{case}");
            let item = &items[0];
            assert_eq!(
                item.status.as_ref().expect("status").profile,
                PodProfile::RuntimeDefault,
                "{case}"
            );
            assert_eq!(
                item.metadata.annotations.as_ref().expect("kind")[KIND_ANNOTATION],
                case["kind"].as_str().expect("kind")
            );
            assert_eq!(item.metadata.namespace.as_deref(), Some("default"));
        }
    }

    #[test]
    fn lists_pods_and_unknown_kinds() {
        let list = json!({ "apiVersion": "v1", "kind": "List", "items": [
            { "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p", "namespace": "n", "uid": "u-1" },
              "spec": { "containers": [{ "name": "c", "image": "i" }] } },
            { "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "cm" } }
        ]});
        let items = audit_one(list);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].spec.pod_uid, "u-1");
        assert_eq!(items[0].owner_references()[0].uid, "u-1");
        let pod_list = json!({ "apiVersion": "v1", "kind": "PodList", "items": [
            { "metadata": { "name": "q_with_underscore" }, "spec": { "containers": [{ "name": "c", "image": "i" }] } }
        ]});
        let items = audit_one(pod_list);
        assert_eq!(items[0].metadata.name.as_deref(), Some("q_with_underscore"));
        assert_eq!(
            subjects(&json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "s" } })).err(),
            Some(NotAudited::UnknownKind("v1 Service".into()))
        );
        // A template of something else (no containers), and one whose containers are not a
        // pod's: notes, not errors, and nothing audited.
        assert_eq!(
            subjects(
                &json!({ "apiVersion": "example.com/v1", "kind": "Mailer", "metadata": { "name": "m" },
                "spec": { "template": { "subject": "hello" } } })
            )
            .err(),
            Some(NotAudited::UnknownKind("example.com/v1 Mailer".into()))
        );
        let odd = json!({ "apiVersion": "example.com/v1", "kind": "Runner", "metadata": { "name": "r" },
            "spec": { "template": { "spec": { "containers": ["busybox"] } } } });
        assert!(
            matches!(
                subjects(&odd).err(),
                Some(NotAudited::NotAPodTemplate { ref kind, ref why })
                    if kind == "example.com/v1 Runner" && why.contains("spec.template.spec.containers[0]")
            ),
            "{:?}",
            subjects(&odd).err()
        );
        // In a List it is a note too, naming the item.
        let in_list = json!({ "apiVersion": "v1", "kind": "List", "items": [
            { "apiVersion": "v1", "kind": "Service", "metadata": { "name": "s" } }, odd] });
        let mut skipped = Vec::new();
        assert!(
            subjects_noting(&in_list, &mut skipped)
                .expect("a list")
                .is_empty()
        );
        assert!(
            matches!(skipped.as_slice(), [NotAudited::NotAPodTemplate { kind, .. }]
                if kind == "example.com/v1 Runner (item 1)"),
            "{skipped:?}"
        );
        // Knative's containers may be nameless: still a pod spec, and audited.
        let knative = json!({ "apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": { "name": "k" },
            "spec": { "template": { "spec": { "containers": [{ "image": "i" }] } } } });
        let status = audit_one(knative).remove(0).status.expect("status");
        assert_eq!(status.profile, PodProfile::Unconfined);
        assert!(matches!(
            subjects(&json!({ "metadata": {} })),
            Err(NotAudited::Invalid(_))
        ));
        assert!(matches!(
            subjects(&json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "d" } })),
            Err(NotAudited::Invalid(_))
        ));
    }

    #[test]
    fn an_scc_annotation_counts_only_on_a_stored_pod() {
        let deployment = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "d" },
            "spec": { "template": {
                "metadata": { "annotations": { "openshift.io/scc": "privileged", "team": "a" } },
                "spec": { "containers": [{ "name": "c", "image": "i" }] } } } });
        let subject = subjects(&deployment).expect("subjects").remove(0);
        let annotations = subject.pod.metadata.annotations.expect("annotations");
        assert_eq!(annotations.keys().collect::<Vec<_>>(), ["team"]);
        let status = audit_one(deployment).remove(0).status.expect("status");
        assert_eq!(status.scc, None);
        // A Pod read back from a cluster (it has a UID) was admitted: its annotation stays. One
        // never stored is only its author's word.
        let pod = |uid: Option<&str>| {
            json!({ "apiVersion": "v1", "kind": "Pod",
                "metadata": { "name": "p", "uid": uid, "annotations": { "openshift.io/scc": "restricted-v2" } },
                "spec": { "containers": [{ "name": "c", "image": "i" }] } })
        };
        let stored = audit_one(pod(Some("u-1"))).remove(0).status.expect("status");
        assert_eq!(stored.scc.as_deref(), Some("restricted-v2"));
        let written = audit_one(pod(None)).remove(0).status.expect("status");
        assert_eq!(written.scc, None);
    }

    #[test]
    fn a_field_that_does_not_decode_is_named_by_its_path() {
        let invalid = |document: Value| match subjects(&document) {
            Err(NotAudited::Invalid(why)) => why,
            other => panic!("expected Invalid, got {other:?}"),
        };
        let pod = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p" },
            "spec": { "containers": "abc" } });
        let why = invalid(pod);
        assert!(why.starts_with("spec.containers: invalid type"), "{why}");
        let deployment = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "d" },
            "spec": { "template": { "spec": { "containers": [{ "name": "c", "ports": "80" }] } } } });
        let why = invalid(deployment);
        assert!(
            why.starts_with("spec.template.spec.containers[0].ports: invalid type"),
            "{why}"
        );
        // No containers, or no spec: the API refuses such a pod, so there is no profile to report.
        let pod = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p" },
            "spec": { "containers": [] } });
        assert_eq!(
            invalid(pod),
            "spec.containers: no containers (Kubernetes refuses a pod without one)"
        );
        let pod = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p" } });
        assert_eq!(
            invalid(pod),
            "spec: no pod spec (Kubernetes refuses a pod without one)"
        );
        let cron_job = json!({ "apiVersion": "batch/v1", "kind": "CronJob", "metadata": { "name": "c" },
            "spec": { "jobTemplate": { "spec": { "template": { "spec": { "containers": [] } } } } } });
        assert_eq!(
            invalid(cron_job),
            "spec.jobTemplate.spec.template.spec.containers: no containers (Kubernetes refuses a pod without one)"
        );
        let rollout = json!({ "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": { "name": "r" },
            "spec": { "template": { "spec": { "containers": [] } } } });
        assert_eq!(
            invalid(rollout),
            "spec.template.spec.containers: no containers (Kubernetes refuses a pod without one)"
        );
        let list = json!({ "apiVersion": "v1", "kind": "List", "items": [
            { "apiVersion": "v1", "kind": "Pod", "metadata": { "name": 7 } }
        ]});
        let why = invalid(list);
        assert!(why.starts_with("item 0: metadata.name: invalid type"), "{why}");
    }

    use kube::ResourceExt;

    #[test]
    fn summary_and_table() {
        let mut items = audit_one(
            json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "open" },
            "spec": { "containers": [{ "name": "c", "image": "i" }] } }),
        );
        items.extend(audit_one(json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "web", "namespace": "shop" },
            "spec": { "template": template("RuntimeDefault") } })));
        let summary = Summary::of(&items);
        assert_eq!((summary.objects, summary.confined, summary.unconfined), (2, 1, 1));
        let text = table(&items, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NAMESPACE   NAME   KIND         PROFILE          CONFINED   SOURCE     SCC   VERDICT"
        );
        assert_eq!(
            lines[1],
            "default     open   Pod          Unconfined       0/1        None       -     -"
        );
        assert_eq!(
            lines[2],
            "shop        web    Deployment   RuntimeDefault   1/1        PodField   -     -"
        );
        assert!(
            table(&items, true)
                .lines()
                .nth(1)
                .expect("row")
                .ends_with("c=Unconfined(None)")
        );
    }

    #[test]
    fn the_summary_line_counts_one_object_in_the_singular() {
        let one = Summary {
            objects: 1,
            unconfined: 1,
            ..Default::default()
        };
        assert!(one.line().starts_with("1 object: "), "{}", one.line());
        let two = Summary { objects: 2, ..one };
        assert!(two.line().starts_with("2 objects: "), "{}", two.line());
    }
}
