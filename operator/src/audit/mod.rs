//! `seccomp-sentinel audit`: a one-shot report of effective seccomp profiles, for manifests
//! (files, directories, stdin) or a live cluster, with the engine and policy code of the
//! controller. Exit codes: 0 clean, 1 findings (with `--fail-on`), 2 input or connection errors, or a
//! `--fail-on` that cannot be answered.

pub mod report;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{IsTerminal, Read, Write},
    path::{Path, PathBuf},
};

use k8s_openapi::{
    api::core::v1::{Namespace, Pod},
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams},
    config::KubeConfigOptions,
};
use serde_json::Value;

use self::report::{AuditContext, AuditSubject, NotAudited, SubjectAdmission, Summary};
use crate::engine::PodView;
use crate::scc::{self, AdmissionRequest, NamespaceAllocation, OpenShiftVersion, Scc, SccGrant};
use crate::{
    api::{KubeletSeccompDefault, SeccompPolicy, SeccompStatus},
    client::Brief,
    engine::{Facts, NodeFacts, NodeOs, SccDefaults, kubelet_minor},
    lean::{Decoded, cluster::SeccompProfileWire, node::NodeWire, status::StatusWire},
    policy::{self, CompiledPolicy},
    status::StoredStatus,
};

/// Newest Kubernetes minor version this release knows (the default for `--kubernetes-version`).
pub const NEWEST_KUBERNETES: &str = "1.37";

#[derive(clap::Args, Debug, Clone)]
pub struct AuditArgs {
    /// Manifests to audit: a file, a directory (searched recursively for .yaml, .yml, .json) or
    /// `-` for standard input. Repeatable. Without it, the live cluster is audited.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,

    /// Kubeconfig of the live cluster (default: KUBECONFIG or ~/.kube/config). Given with `-f`
    /// (or with --context), the manifests are judged against that cluster: its SCCs (unless
    /// --scc-file), its namespaces, and the SCCs their service accounts may use (asked with
    /// SubjectAccessReviews).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context of the live cluster.
    #[arg(long)]
    pub context: Option<String>,

    /// Namespace to audit (live cluster).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,

    /// Audit every namespace (live cluster; the default when no namespace is given).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,

    /// Label selector for the pods (live cluster).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,

    /// SeccompPolicy manifests to judge by. Repeatable. Live, the cluster's policies are used
    /// when none is given.
    #[arg(long = "policy")]
    pub policies: Vec<PathBuf>,

    /// Whether the kubelets run with `seccompDefault: true`. Live, a node whose node agent
    /// reported its kubelet's setting is judged by that report instead.
    #[arg(long, default_value = "false", value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub kubelet_seccomp_default: bool,

    /// Kubernetes version of the kubelets, as X.Y (default: the live cluster's nodes, or the
    /// newest supported version).
    #[arg(long)]
    pub kubernetes_version: Option<String>,

    /// SecurityContextConstraints manifests (live: read from the cluster). With SCCs known, the
    /// audit of manifests simulates OpenShift's SCC admission for every pod template, and every
    /// pod not admitted yet (no `openshift.io/scc` annotation, or no UID: never stored).
    #[arg(long = "scc-file")]
    pub scc_files: Vec<PathBuf>,

    /// Live cluster: whether pods' `openshift.io/scc` may decide anything (SCC attribution, SCC
    /// exemptions), as the controller's flag: `auto` trusts it on OpenShift only, where SCC
    /// admission writes it. In manifests, a pod template's never counts, nor does that of a pod
    /// never stored (no UID): admission sets it on each pod.
    #[arg(long, default_value = "auto", value_parser = crate::controller::config::parse_trust)]
    pub trust_scc_annotation: crate::controller::config::TrustScc,

    /// SCCs the workloads' service accounts may use in the admission simulation, comma-separated,
    /// or `all`; SCCs also count as usable when their own users or groups lists grant them.
    /// Default: restricted-v2, which OpenShift grants to every authenticated user.
    #[arg(long = "scc-allow", value_delimiter = ',')]
    pub scc_allow: Vec<String>,

    /// OpenShift version whose SCC admission is simulated, 4.11 or newer (default: the newest).
    /// 4.11 and 4.12 write only the pod annotation; their API servers then copy annotations into
    /// fields. Also sets the kubelets' Kubernetes version unless --kubernetes-version is given.
    #[arg(long)]
    pub openshift_version: Option<String>,

    /// Output format.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: OutputFormat,

    /// Exit with 1 when any object is unconfined (or mixed), or violates a policy.
    #[arg(long)]
    pub fail_on: Option<FailOn>,

    /// The time used for conditions and exemption expiry (for reproducible reports).
    #[arg(long, hide = true)]
    pub now: Option<Timestamp>,

    /// Largest input read, per file and from standard input (bytes; e.g. 64Mi, 1Gi).
    #[arg(long, default_value = "64Mi", value_parser = parse_size)]
    pub max_input_bytes: u64,

    /// Live cluster: objects per list request, as kubectl's `--chunk-size` (0: all in one).
    /// Pages keep a large cluster's pods from arriving, and sitting in memory, as one response.
    #[arg(long, default_value_t = 500)]
    pub chunk_size: u32,

    /// A copy of a node's seccomp directory (`/var/lib/kubelet/seccomp`): the Localhost profiles
    /// the pods name are read from it and classified, with the node agent's rules (links must
    /// stay inside it). Without it, a Localhost profile's strength is Unknown.
    #[arg(long)]
    pub profiles_dir: Option<PathBuf>,
}

/// A size such as `4096`, `512Ki`, `64Mi`, `1Gi`.
fn parse_size(value: &str) -> Result<u64, String> {
    let (number, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => value.split_at(i),
        None => (value, ""),
    };
    let factor: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        other => return Err(format!("{other:?} is not a size unit (Ki, Mi, Gi)")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{value:?} is not a size"))
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Wide,
    Json,
    Yaml,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    Unconfined,
    Violation,
    /// Pods OpenShift's SCC admission would refuse (simulated).
    Rejected,
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("{other:?} is not true or false")),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{0}")]
    Input(String),
    #[error("cluster: {0}")]
    Cluster(String),
}

/// One parsed document and where it came from.
struct Document {
    origin: String,
    value: Value,
}

/// Splits a YAML stream into documents (at `---` lines) so one bad document does not hide the
/// others. Each document comes with the number of lines before it, so a syntax error can name its
/// line in the file rather than in the document. What comes before a file's first `---` is a
/// document only if it holds more than blank lines and comments (a licence header is not one), so
/// that documents are numbered as a reader counts them.
fn split_documents(text: &str) -> Vec<(u64, String)> {
    let mut documents = vec![(0, String::new())];
    let mut marked = false;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            if !marked && is_blank_document(&documents[0].1) {
                documents.clear();
            }
            marked = true;
            documents.push((index as u64 + 1, String::new()));
        } else if trimmed == "..." {
            continue;
        } else if let Some((_, current)) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents
}

fn is_blank_document(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#')
    })
}

/// Reads and parses every document of `source`; unparseable documents become errors naming the
/// file and the document's position.
fn read_source(name: &str, text: &str, documents: &mut Vec<Document>, errors: &mut Vec<String>) {
    for (i, (lines_before, chunk)) in split_documents(text).iter().enumerate() {
        if is_blank_document(chunk) {
            continue;
        }
        let origin = format!("{name}, document {}", i + 1);
        match serde_saphyr::from_str::<Value>(chunk) {
            Ok(Value::Null) => {}
            Ok(value) if value.is_object() => documents.push(Document { origin, value }),
            Ok(_) => errors.push(format!("{origin}: not a Kubernetes object")),
            Err(e) => {
                // One line, with the position counted in the file (the default rendering says
                // "error:" again and counts lines from the document's start).
                let message = e.render_with_options(serde_saphyr::render_options! {
                    snippets: serde_saphyr::SnippetMode::Off,
                    line_offset: *lines_before,
                });
                errors.push(format!(
                    "{origin}: {}",
                    without_parser_advice(first_line(&message))
                ))
            }
        }
    }
}

/// [`read_source`] for the fuzz tests, with its documents as plain JSON.
#[cfg(test)]
pub(crate) fn read_source_for_fuzzing(
    name: &str,
    text: &str,
    documents: &mut Vec<Value>,
    errors: &mut Vec<String>,
) {
    let mut read = Vec::new();
    read_source(name, text, &mut read, errors);
    documents.extend(read.into_iter().map(|d| d.value));
}

/// The parser's message without the advice it gives its own callers: a duplicate key is an error
/// for kubectl too, and its author has no parser option to set.
fn without_parser_advice(message: &str) -> String {
    message.replace(", set DuplicateKeyPolicy in Options if acceptable", "")
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Identity of a file or directory (device and inode), to see loops and duplicates.
type FileId = (u64, u64);

fn file_id(metadata: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

/// The manifest files under `path` (itself if it is a file), each once: a directory reached
/// again through a symlink loop is reported, a file reached twice is read once.
fn files_under(
    path: &Path,
    visited_dirs: &mut Vec<FileId>,
    seen_files: &mut Vec<FileId>,
    errors: &mut Vec<String>,
) -> Vec<PathBuf> {
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            errors.push(format!("{}: {e}", path.display()));
            return Vec::new();
        }
    };
    let id = file_id(&metadata);
    if metadata.is_dir() {
        if visited_dirs.contains(&id) {
            errors.push(format!(
                "{}: a directory already read (a symlink loop?): skipped",
                path.display()
            ));
            return Vec::new();
        }
        visited_dirs.push(id);
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
            Err(e) => {
                errors.push(format!("{}: {e}", path.display()));
                return Vec::new();
            }
        };
        entries.sort();
        entries
            .into_iter()
            .flat_map(|p| {
                let manifest = p
                    .extension()
                    .is_some_and(|x| x == "yaml" || x == "yml" || x == "json");
                if p.is_dir() || manifest {
                    files_under(&p, visited_dirs, seen_files, errors)
                } else {
                    Vec::new()
                }
            })
            .collect()
    } else if !metadata.is_file() {
        errors.push(format!(
            "{}: not a regular file (a device, socket or pipe): not read",
            path.display()
        ));
        Vec::new()
    } else if seen_files.contains(&id) {
        Vec::new()
    } else {
        seen_files.push(id);
        vec![path.to_path_buf()]
    }
}

/// Reads at most `limit` bytes of `reader` as UTF-8 text; more is an error naming `name`.
fn read_bounded(name: &str, reader: impl Read, limit: u64) -> Result<String, String> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{name}: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "{name}: larger than {limit} bytes (--max-input-bytes): not read"
        ));
    }
    String::from_utf8(bytes).map_err(|_| format!("{name}: not UTF-8 text"))
}

fn read_inputs(paths: &[PathBuf], limit: u64, errors: &mut Vec<String>) -> Vec<Document> {
    let mut documents = Vec::new();
    let (mut visited_dirs, mut seen_files) = (Vec::new(), Vec::new());
    for path in paths {
        if path.as_os_str() == "-" {
            match read_bounded("<stdin>", std::io::stdin().lock(), limit) {
                Ok(text) => read_source("<stdin>", &text, &mut documents, errors),
                Err(e) => errors.push(e),
            }
            continue;
        }
        if !path.exists() {
            errors.push(format!("{}: no such file or directory", path.display()));
            continue;
        }
        for file in files_under(path, &mut visited_dirs, &mut seen_files, errors) {
            let name = file.display().to_string();
            match std::fs::File::open(&file)
                .map_err(|e| format!("{name}: {e}"))
                .and_then(|f| read_bounded(&name, f, limit))
            {
                Ok(text) => read_source(&name, &text, &mut documents, errors),
                Err(e) => errors.push(e),
            }
        }
    }
    documents
}

/// Compiles the SeccompPolicies among `documents`.
fn policies_from(documents: &[Document], errors: &mut Vec<String>) -> Vec<CompiledPolicy> {
    documents
        .iter()
        .filter(|d| d.value.get("kind").and_then(Value::as_str) == Some("SeccompPolicy"))
        .filter_map(|d| {
            // A field the API does not have is refused as kubectl would refuse it (its default
            // validation is strict): a misspelt `allowedProfiles` would otherwise judge by the
            // default without a word.
            let mut unknown = Vec::new();
            let parsed: Result<SeccompPolicy, _> = serde_ignored::deserialize(d.value.clone(), |path| {
                // The type reads these two itself, without fields of its own.
                let path = field_path(&path);
                if path != "apiVersion" && path != "kind" {
                    unknown.push(path);
                }
            });
            match parsed
                .map_err(|e| e.to_string())
                .and_then(|p| match unknown.as_slice() {
                    [] => Ok(p),
                    [one] => Err(format!("unknown field {one:?}")),
                    many => Err(format!("unknown fields {many:?}")),
                })
                .and_then(|p| policy::compile_policy(&p).map_err(|e| e.to_string()))
            {
                Ok(p) => Some(p),
                Err(e) => {
                    errors.push(format!("{}: invalid SeccompPolicy: {e}", d.origin));
                    None
                }
            }
        })
        .collect()
}

/// A field's path as kubectl writes it: `spec.exemptions[0].namespace`.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => match field_path(parent) {
            parent if parent.is_empty() => key.clone(),
            parent => format!("{parent}.{key}"),
        },
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => {
            field_path(parent)
        }
    }
}

fn scc_defaults_from(documents: &[Document]) -> SccDefaults {
    let mut sccs = SccDefaults::default();
    for d in documents
        .iter()
        .filter(|d| d.value.get("kind").and_then(Value::as_str) == Some("SecurityContextConstraints"))
    {
        let name = d
            .value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        sccs.insert(name, &string_list(d.value.get("seccompProfiles")));
    }
    sccs
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn namespace_labels_from(documents: &[Document]) -> BTreeMap<String, BTreeMap<String, String>> {
    documents
        .iter()
        .filter(|d| d.value.get("kind").and_then(Value::as_str) == Some("Namespace"))
        .filter_map(|d| {
            let name = d.value.pointer("/metadata/name")?.as_str()?.to_string();
            let labels = d
                .value
                .pointer("/metadata/labels")
                .cloned()
                .and_then(|l| serde_json::from_value(l).ok())
                .unwrap_or_default();
            Some((name, labels))
        })
        .collect()
}

/// Progress on stderr, only when it is a terminal.
struct Progress {
    enabled: bool,
    total: usize,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            enabled: std::io::stderr().is_terminal() && total > 200,
            total,
        }
    }

    fn tick(&self, done: usize) {
        if self.enabled && (done.is_multiple_of(100) || done == self.total) {
            eprint!("\raudited {done}/{}", self.total);
            if done == self.total {
                eprintln!();
            }
        }
    }
}

/// Everything an audit needs besides the objects.
struct Setting {
    policies: Vec<CompiledPolicy>,
    sccs: SccDefaults,
    namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// Node facts by node name (live), and the facts for pods on unknown nodes.
    nodes: BTreeMap<String, NodeFacts>,
    default_node: NodeFacts,
    profiles_dir: Option<PathBuf>,
    /// Live: the stored statuses with the node agent's reports of profile files, by pod
    /// (namespace, name).
    node_reports: BTreeMap<(String, String), StoredStatus>,
    /// Live: the Security Profiles Operator's SeccompProfiles, by `localhostProfile`.
    catalog: Option<crate::profile::strength::ProfileCatalog>,
}

/// The Security Profiles Operator's SeccompProfiles, classified as the controller does; `None`
/// where its API is not served.
async fn profile_catalog(
    client: &Client,
) -> Result<Option<crate::profile::strength::ProfileCatalog>, kube::Error> {
    // Failed discovery is an error (noted by the caller), not "no Security Profiles Operator".
    if !crate::client::discover_kind::<SeccompProfileWire>(client).await? {
        return Ok(None);
    }
    let list = Api::<Decoded<SeccompProfileWire>>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    Ok(Some(
        list.items
            .into_iter()
            .filter_map(|item| match item {
                Decoded::Ok(profile, meta) => Some(profile.catalog_entry(
                    meta.namespace.as_deref().unwrap_or_default(),
                    meta.name.as_deref()?,
                )),
                Decoded::Invalid(_) => None,
            })
            .collect(),
    ))
}

/// The pods' SeccompStatuses that hold the node agent's reports of Localhost profile files, by
/// pod (namespace, name), read as the controller reads them; none where the operator is not
/// installed (no SeccompStatus API).
async fn node_reports(
    statuses: &Api<Decoded<StatusWire>>,
    chunk_size: u32,
) -> Result<BTreeMap<(String, String), StoredStatus>, kube::Error> {
    let reports = list_paged(statuses, ListParams::default(), chunk_size, |item| match item {
        Decoded::Ok(status, meta) => {
            let stored = StoredStatus::from_wire(&status);
            (!stored.profile_files.is_empty())
                .then_some(((meta.namespace.clone()?, meta.name.clone()?), stored))
        }
        Decoded::Invalid(_) => None,
    })
    .await;
    match reports {
        Ok(reports) => Ok(reports.into_iter().collect()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}

/// Context the cluster would not let the live audit read (a user allowed to list pods and no
/// more, say): the report goes on without it, with a note on stderr that says what the report
/// lacks, and an error (exit code 2) where it would make `--fail-on` pass on a guess.
struct Unread<'a> {
    fail_on: Option<FailOn>,
    errors: &'a mut Vec<String>,
}

impl Unread<'_> {
    /// Notes that `what` could not be listed and what the report does without it.
    fn note(&self, what: &str, error: &kube::Error, without: &str) {
        match error {
            // The API server's message only names the user and the resource again.
            kube::Error::Api(status) if status.code == 403 => {
                eprintln!("note: not allowed to list {what}: {without}")
            }
            other => eprintln!("note: cannot list {what} ({}): {without}", Brief(other)),
        }
    }

    /// [`Unread::note`], and an error where `--fail-on violation` was asked for: without `what`
    /// a pod that violates a policy can read as compliant.
    fn note_for_violations(&mut self, what: &str, error: &kube::Error, without: &str, remedy: &str) {
        self.note(what, error, without);
        if self.fail_on == Some(FailOn::Violation) {
            self.errors.push(format!(
                "--fail-on violation cannot be answered without the cluster's {what}: {remedy}"
            ));
        }
    }
}

/// Lists every object of `api` in pages of `chunk_size` (0: one request), keeping what `keep`
/// makes of each as each page arrives.
async fn list_paged<K, T>(
    api: &Api<K>,
    params: ListParams,
    chunk_size: u32,
    mut keep: impl FnMut(K) -> Option<T>,
) -> Result<Vec<T>, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut params = if chunk_size == 0 {
        params
    } else {
        params.limit(chunk_size)
    };
    let mut kept = Vec::new();
    loop {
        let page = api.list(&params).await?;
        kept.extend(page.items.into_iter().filter_map(&mut keep));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(kept),
        }
    }
}

/// Every `localhostProfile` the subjects name (fields and legacy annotations), read once each
/// from `dir`.
fn read_profiles(subjects: &[AuditSubject], dir: &Path) -> BTreeMap<String, crate::api::ProfileFile> {
    let root = match dir.canonicalize() {
        Ok(dir) => crate::profile::ProfileRoot {
            host_root: PathBuf::from("/"),
            seccomp_dir: dir,
            trusted_link_targets: Vec::new(),
        },
        Err(_) => return BTreeMap::new(),
    };
    let mut paths = std::collections::BTreeSet::new();
    for subject in subjects {
        let view = PodView::from_pod(&subject.pod);
        // Keyed as they are looked up: cleaned, as the kubelet opens them.
        paths.extend(
            view.localhost_paths()
                .iter()
                .map(|p| crate::profile::clean_localhost_path(p).into_owned()),
        );
    }
    paths
        .into_iter()
        .map(|path| {
            let file = root.read(&path);
            (path, file)
        })
        .collect()
}

fn audit_all(subjects: &[AuditSubject], setting: &Setting, now: Timestamp) -> Vec<SeccompStatus> {
    let profile_files = setting
        .profiles_dir
        .as_deref()
        .map(|dir| read_profiles(subjects, dir));
    let progress = Progress::new(subjects.len());
    subjects
        .iter()
        .enumerate()
        .map(|(i, subject)| {
            let node = subject
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .and_then(|n| setting.nodes.get(n));
            let ctx = AuditContext {
                facts: Facts {
                    node: Some(node.unwrap_or(&setting.default_node)),
                    unknown_node_seccomp_default: setting.default_node.seccomp_default,
                    sccs: &setting.sccs,
                },
                policies: &setting.policies,
                namespace_labels: &setting.namespace_labels,
                now,
                profile_files: profile_files.as_ref(),
                node_reports: setting
                    .node_reports
                    .get(&(subject.namespace.clone(), subject.name.clone()))
                    .map(|stored| {
                        stored.profile_reports_for(
                            subject.pod.metadata.uid.as_deref().unwrap_or_default(),
                            subject.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
                        )
                    }),
                catalog: setting.catalog.as_ref(),
            };
            let item = report::audit(subject, &ctx);
            progress.tick(i + 1);
            item
        })
        .collect()
}

fn seccomp_default(args: &AuditArgs) -> KubeletSeccompDefault {
    if args.kubelet_seccomp_default {
        KubeletSeccompDefault::True
    } else {
        KubeletSeccompDefault::False
    }
}

fn openshift_version(args: &AuditArgs) -> Result<OpenShiftVersion, AuditError> {
    match &args.openshift_version {
        Some(v) => {
            OpenShiftVersion::parse(v).map_err(|e| AuditError::Input(format!("--openshift-version: {e}")))
        }
        None => Ok(OpenShiftVersion::NEWEST),
    }
}

fn version_minor(args: &AuditArgs) -> Result<u32, AuditError> {
    if args.kubernetes_version.is_none() && args.openshift_version.is_some() {
        return Ok(openshift_version(args)?.kubernetes_minor());
    }
    let version = args.kubernetes_version.as_deref().unwrap_or(NEWEST_KUBERNETES);
    kubelet_minor(version)
        .ok_or_else(|| AuditError::Input(format!("--kubernetes-version {version:?} is not X.Y (e.g. 1.33)")))
}

/// Runs the audit and returns the process exit code.
pub async fn run(args: AuditArgs) -> i32 {
    let now = args.now.unwrap_or_else(Timestamp::now);
    let mut errors: Vec<String> = Vec::new();
    let result = if args.files.is_empty() {
        live(&args, now, &mut errors).await
    } else {
        offline(&args, now, &mut errors).await
    };
    let items = match result {
        Ok(items) => items,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    for error in &errors {
        eprintln!("error: {error}");
    }
    if let Err(e) = print(&items, args.output) {
        eprintln!("error: writing the report: {e}");
        return 2;
    }
    let summary = Summary::of(&items);
    eprintln!("{}", summary.line());
    if !errors.is_empty() {
        return 2;
    }
    let failed = match args.fail_on {
        Some(FailOn::Unconfined) => summary.unconfined + summary.mixed > 0,
        Some(FailOn::Violation) => summary.violating > 0,
        Some(FailOn::Rejected) => summary.rejected > 0,
        None => false,
    };
    i32::from(failed)
}

async fn offline(
    args: &AuditArgs,
    now: Timestamp,
    errors: &mut Vec<String>,
) -> Result<Vec<SeccompStatus>, AuditError> {
    let minor = version_minor(args)?;
    let mut documents = read_inputs(&args.files, args.max_input_bytes, errors);
    let policy_documents = read_inputs(&args.policies, args.max_input_bytes, errors);
    let mut scc_documents = read_inputs(&args.scc_files, args.max_input_bytes, errors);
    // Manifests judged against a live cluster: its SCCs, namespaces and SCC grants.
    let cluster = if args.kubeconfig.is_some() || args.context.is_some() {
        let client = client(args).await?;
        let (sccs, namespaces) = cluster_documents(&client, args.scc_files.is_empty()).await?;
        scc_documents.extend(sccs);
        // The input's Namespace objects come first and win.
        documents.extend(namespaces);
        Some(client)
    } else {
        None
    };
    let mut subjects = Vec::new();
    for d in &documents {
        let kind = d.value.get("kind").and_then(Value::as_str);
        if matches!(
            kind,
            Some("SeccompPolicy" | "SecurityContextConstraints" | "Namespace")
        ) {
            continue;
        }
        let mut skipped = Vec::new();
        match report::subjects_noting(&d.value, &mut skipped) {
            Ok(mut found) => subjects.append(&mut found),
            Err(NotAudited::Invalid(why)) => errors.push(format!("{}: {why}", d.origin)),
            Err(note) => skipped.push(note),
        }
        for note in skipped {
            match note {
                NotAudited::UnknownKind(kind) => eprintln!("note: {}: skipped {kind} (no pods)", d.origin),
                NotAudited::NotAPodTemplate { kind, why } => eprintln!(
                    "note: {}: skipped {kind}: its spec.template is not a pod template ({why})",
                    d.origin
                ),
                NotAudited::Invalid(_) => {}
            }
        }
    }
    let mut all_policies = policies_from(&documents, errors);
    all_policies.extend(policies_from(&policy_documents, errors));
    let mut scc_all: Vec<Document> = scc_documents;
    scc_all.extend(documents.iter().map(|d| Document {
        origin: d.origin.clone(),
        value: d.value.clone(),
    }));
    let version = openshift_version(args)?;
    let granted = match &cluster {
        Some(client) => cluster_grants(client, &subjects, &scc_all).await,
        None => BTreeMap::new(),
    };
    simulate_admission(
        &mut subjects,
        &scc_all,
        &documents,
        &args.scc_allow,
        &granted,
        version,
        errors,
    );
    let setting = Setting {
        policies: all_policies,
        sccs: scc_defaults_from(&scc_all),
        namespace_labels: namespace_labels_from(&documents),
        nodes: BTreeMap::new(),
        node_reports: BTreeMap::new(),
        catalog: None,
        default_node: NodeFacts {
            // Not a node read from the cluster: its operating system is not known.
            os: NodeOs::Unknown,
            kubelet_minor: Some(minor),
            seccomp_default: seccomp_default(args),
        },
        profiles_dir: args.profiles_dir.clone(),
    };
    Ok(audit_all(&subjects, &setting, now))
}

/// Runs OpenShift's SCC admission (simulated) over the subjects not admitted yet, when the input
/// or `--scc-file` holds SCCs.
fn simulate_admission(
    subjects: &mut [AuditSubject],
    scc_documents: &[Document],
    documents: &[Document],
    allow: &[String],
    granted: &BTreeMap<(String, String), BTreeSet<String>>,
    version: OpenShiftVersion,
    errors: &mut Vec<String>,
) {
    let mut sccs: Vec<Scc> = Vec::new();
    for d in scc_documents
        .iter()
        .filter(|d| d.value.get("kind").and_then(Value::as_str) == Some("SecurityContextConstraints"))
    {
        match Scc::parse(&d.value) {
            Ok(scc) if sccs.iter().any(|s| s.name() == scc.name()) => {}
            Ok(scc) => sccs.push(scc),
            Err(e) => errors.push(format!("{}: invalid SecurityContextConstraints: {e}", d.origin)),
        }
    }
    if sccs.is_empty() {
        return;
    }
    let missing: Vec<&str> = scc::STANDARD_SCCS
        .iter()
        .copied()
        .filter(|name| !sccs.iter().any(|s| s.name() == *name))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "note: the SCCs given lack {}: OpenShift refuses every pod until they exist; simulated with the SCCs given",
            missing.join(", ")
        );
    }
    let grant = if allow.iter().any(|a| a == "all") {
        SccGrant::All
    } else if allow.is_empty() {
        SccGrant::Names(std::iter::once("restricted-v2".to_string()).collect())
    } else {
        SccGrant::Names(allow.iter().map(|a| a.trim().to_string()).collect())
    };
    let mut namespaces: BTreeMap<String, NamespaceAllocation> = BTreeMap::new();
    for allocation in documents
        .iter()
        .filter(|d| d.value.get("kind").and_then(Value::as_str) == Some("Namespace"))
        .filter_map(|d| NamespaceAllocation::from_object(&d.value))
    {
        namespaces.entry(allocation.name.clone()).or_insert(allocation);
    }
    for subject in subjects.iter_mut() {
        let admitted = subject
            .pod
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(crate::engine::SCC_ANNOTATION));
        if admitted {
            continue;
        }
        let namespace =
            NamespaceAllocation::effective(&subject.namespace, namespaces.get(&subject.namespace));
        let account = (subject.namespace.clone(), service_account(&subject.pod));
        let subject_grant = match (&grant, granted.get(&account)) {
            (SccGrant::Names(names), Some(extra)) => SccGrant::Names(names.union(extra).cloned().collect()),
            (other, _) => other.clone(),
        };
        let request = AdmissionRequest {
            sccs: &sccs,
            grant: &subject_grant,
            namespace: &namespace,
            version,
        };
        match scc::simulate(&subject.pod, &request) {
            Ok(None) => {}
            Ok(Some(admission)) => {
                let written = std::mem::replace(&mut subject.pod, admission.pod);
                subject.admission = SubjectAdmission::Admitted {
                    scc: admission.scc,
                    written: Box::new(written),
                };
            }
            Err(rejection) => subject.admission = SubjectAdmission::Rejected(rejection.message),
        }
    }
}

/// The service account a pod runs as (`default` when it names none, as OpenShift sets).
fn service_account(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// An object read from the cluster as an input document (a list's items carry no `kind`).
fn cluster_document(object: &impl serde::Serialize, kind: &str, origin: String) -> Document {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    value["kind"] = Value::String(kind.into());
    Document { origin, value }
}

/// The cluster's SCCs, as input documents; none where the API is not served.
async fn cluster_sccs(client: &Client) -> Result<Vec<Document>, kube::Error> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("security.openshift.io", "v1", "SecurityContextConstraints"),
        "securitycontextconstraints",
    );
    match Api::<DynamicObject>::all_with(client.clone(), &resource)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .map(|scc| {
                cluster_document(
                    &scc,
                    "SecurityContextConstraints",
                    format!("the cluster's SCC {}", scc.name_any()),
                )
            })
            .collect()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The cluster's SCCs (when `with_sccs`) and Namespaces, as input documents.
async fn cluster_documents(
    client: &Client,
    with_sccs: bool,
) -> Result<(Vec<Document>, Vec<Document>), AuditError> {
    let sccs = if with_sccs {
        cluster_sccs(client)
            .await
            .map_err(|e| AuditError::Cluster(format!("listing SCCs: {}", Brief(&e))))?
    } else {
        Vec::new()
    };
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| AuditError::Cluster(format!("listing namespaces: {}", Brief(&e))))?
        .items
        .into_iter()
        .map(|n| {
            cluster_document(
                &n,
                "Namespace",
                format!("the cluster's namespace {}", n.name_any()),
            )
        })
        .collect();
    Ok((sccs, namespaces))
}

/// The SCCs each (namespace, service account) of the subjects may `use`, asked of the cluster
/// with SubjectAccessReviews. When the cluster will not answer, a note says so and the audit goes
/// on with `--scc-allow` alone.
async fn cluster_grants(
    client: &Client,
    subjects: &[AuditSubject],
    scc_documents: &[Document],
) -> BTreeMap<(String, String), BTreeSet<String>> {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    };
    let scc_names: BTreeSet<String> = scc_documents
        .iter()
        .filter(|d| d.value.get("kind").and_then(Value::as_str) == Some("SecurityContextConstraints"))
        .filter_map(|d| d.value.pointer("/metadata/name")?.as_str().map(String::from))
        .collect();
    let accounts: BTreeSet<(String, String)> = subjects
        .iter()
        .map(|s| (s.namespace.clone(), service_account(&s.pod)))
        .collect();
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let mut granted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (namespace, account) in accounts {
        for scc in &scc_names {
            let review = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user: Some(format!("system:serviceaccount:{namespace}:{account}")),
                    groups: Some(vec![
                        "system:serviceaccounts".into(),
                        format!("system:serviceaccounts:{namespace}"),
                        "system:authenticated".into(),
                    ]),
                    resource_attributes: Some(ResourceAttributes {
                        group: Some("security.openshift.io".into()),
                        resource: Some("securitycontextconstraints".into()),
                        verb: Some("use".into()),
                        name: Some(scc.clone()),
                        namespace: Some(namespace.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            match api.create(&kube::api::PostParams::default(), &review).await {
                Ok(answer) if answer.status.as_ref().is_some_and(|s| s.allowed) => {
                    granted
                        .entry((namespace.clone(), account.clone()))
                        .or_default()
                        .insert(scc.clone());
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!(
                        "note: cannot ask the cluster which SCCs service accounts may use ({e}): only --scc-allow counts"
                    );
                    return BTreeMap::new();
                }
            }
        }
    }
    granted
}

async fn client(args: &AuditArgs) -> Result<Client, AuditError> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let mut config = match &args.kubeconfig {
        Some(path) => crate::client::config_from_file(path, &options).await,
        None => match &args.context {
            Some(_) => {
                async { crate::client::from_kubeconfig(crate::client::read_kubeconfig()?, &options).await }
                    .await
            }
            None => {
                crate::client::infer_config("--kubeconfig, KUBECONFIG, ~/.kube/config, or in a pod").await
            }
        },
    }
    .map_err(AuditError::Cluster)?;
    crate::client::identify(&mut config, crate::client::Component::Audit);
    Client::try_from(config).map_err(|e| AuditError::Cluster(e.to_string()))
}

async fn live(
    args: &AuditArgs,
    now: Timestamp,
    errors: &mut Vec<String>,
) -> Result<Vec<SeccompStatus>, AuditError> {
    let client = client(args).await?;
    let cluster = |e: kube::Error| AuditError::Cluster(Brief(&e).to_string());
    let mut params = ListParams::default();
    if let Some(selector) = &args.selector {
        params = params.labels(selector);
    }
    let pods_api: Api<Pod> = match (&args.namespace, args.all_namespaces) {
        (Some(ns), false) => Api::namespaced(client.clone(), ns),
        _ => Api::all(client.clone()),
    };
    // Only what the audit reads is kept of each pod: managed fields are often a third of it.
    let mut pods = list_paged(&pods_api, params, args.chunk_size, |mut pod: Pod| {
        pod.metadata.managed_fields = None;
        Some(pod)
    })
    .await
    .map_err(cluster)?;
    let statuses_api: Api<Decoded<StatusWire>> = match (&args.namespace, args.all_namespaces) {
        (Some(ns), false) => Api::namespaced(client.clone(), ns),
        _ => Api::all(client.clone()),
    };
    let mut unread = Unread {
        fail_on: args.fail_on,
        errors,
    };
    let node_reports = node_reports(&statuses_api, args.chunk_size)
        .await
        .unwrap_or_else(|e| {
            unread.note(
                "SeccompStatuses",
                &e,
                "Localhost profiles are graded without the node agent's reports of their files",
            );
            BTreeMap::new()
        });
    let catalog = profile_catalog(&client).await.unwrap_or_else(|e| {
        unread.note(
            "SeccompProfiles",
            &e,
            "Localhost profiles are graded without the Security Profiles Operator's profiles",
        );
        None
    });
    // As in the controller: outside OpenShift anyone who creates a pod can write
    // `openshift.io/scc`, so by default it decides nothing there (no attribution, no exemption).
    let on_openshift = async {
        Ok(
            crate::client::discover(&client, "security.openshift.io/v1", "securitycontextconstraints")
                .await?
                && crate::client::discover(&client, "config.openshift.io/v1", "clusterversions").await?,
        )
    };
    // An API server that could not be asked is not taken for one off OpenShift in silence.
    let trust_scc = args
        .trust_scc_annotation
        .decide(on_openshift)
        .await
        .unwrap_or_else(|e| {
            unread.note(
                "the API groups (discovery)",
                &e,
                "`openshift.io/scc` is not trusted, as off OpenShift (--trust-scc-annotation=true trusts it)",
            );
            false
        });
    if !trust_scc {
        for pod in &mut pods {
            report::drop_scc_annotation(&mut pod.metadata);
        }
    }

    let policies = if args.policies.is_empty() {
        match Api::<SeccompPolicy>::all(client.clone())
            .list(&ListParams::default())
            .await
        {
            Ok(list) => list
                .items
                .iter()
                .filter_map(|p| match policy::compile_policy(p) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        eprintln!("note: policy {} is invalid and ignored: {e}", p.name_any());
                        None
                    }
                })
                .collect(),
            Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
            Err(e) => {
                unread.note_for_violations(
                    "SeccompPolicies",
                    &e,
                    "no policy is judged",
                    "give them with --policy FILE",
                );
                Vec::new()
            }
        }
    } else {
        let documents = read_inputs(&args.policies, args.max_input_bytes, unread.errors);
        policies_from(&documents, unread.errors)
    };

    let sccs = if args.scc_files.is_empty() {
        // Not an OpenShift cluster (no SCC API): no SCC attribution.
        let documents = cluster_sccs(&client).await.unwrap_or_else(|e| {
            unread.note(
                "SecurityContextConstraints",
                &e,
                "no profile is attributed to an SCC's default; give them with --scc-file FILE",
            );
            Vec::new()
        });
        scc_defaults_from(&documents)
    } else {
        scc_defaults_from(&read_inputs(&args.scc_files, args.max_input_bytes, unread.errors))
    };

    let namespace_labels = match Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list
            .items
            .into_iter()
            .map(|n| (n.name_any(), n.metadata.labels.unwrap_or_default()))
            .collect(),
        Err(e) => {
            // Only a namespace selector reads them; each namespace's name label is known anyway.
            let selecting: Vec<&str> = policies
                .iter()
                .filter(|p| p.uses_namespace_labels)
                .map(|p| p.name.as_str())
                .collect();
            if !selecting.is_empty() {
                unread.note_for_violations(
                    "namespaces",
                    &e,
                    &format!(
                        "the namespace selectors of {} see each namespace's kubernetes.io/metadata.name label and no other",
                        selecting.join(", ")
                    ),
                    "run it as a user allowed to list namespaces",
                );
            }
            BTreeMap::new()
        }
    };
    let default = seccomp_default(args);
    // Each node as the controller sees it: the node agent's report of the kubelet's
    // seccompDefault beats --kubelet-seccomp-default, which decides for nodes without one.
    let nodes: BTreeMap<String, NodeFacts> = match Api::<Decoded<NodeWire>>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|node| match node {
                Decoded::Ok(node, meta) => Some((meta.name?, node)),
                Decoded::Invalid(_) => None,
            })
            .map(|(name, node)| {
                let mut facts = node.facts(|_| default);
                if let Some(v) = &args.kubernetes_version {
                    facts.kubelet_minor = kubelet_minor(v);
                }
                (name, facts)
            })
            .collect(),
        Err(e) => {
            unread.note(
                "nodes",
                &e,
                &format!(
                    "every node is judged by the cluster's version and --kubelet-seccomp-default={}",
                    args.kubelet_seccomp_default
                ),
            );
            BTreeMap::new()
        }
    };
    let cluster_minor = match &args.kubernetes_version {
        Some(_) => version_minor(args)?,
        None => client
            .apiserver_version()
            .await
            .ok()
            .and_then(|v| v.minor.trim_end_matches('+').parse().ok())
            .unwrap_or(version_minor(args)?),
    };
    let subjects: Vec<AuditSubject> = pods
        .into_iter()
        .map(|pod| AuditSubject {
            kind: "Pod".into(),
            name: pod.name_any(),
            namespace: pod.namespace().unwrap_or_default(),
            uid: pod.uid(),
            pod,
            admission: report::SubjectAdmission::NotSimulated,
        })
        .collect();
    let setting = Setting {
        policies,
        sccs,
        namespace_labels,
        nodes,
        node_reports,
        catalog,
        default_node: NodeFacts {
            // Not a node read from the cluster: its operating system is not known.
            os: NodeOs::Unknown,
            kubelet_minor: Some(cluster_minor),
            seccomp_default: default,
        },
        profiles_dir: args.profiles_dir.clone(),
    };
    Ok(audit_all(&subjects, &setting, now))
}

/// Prints the report: a table, or a `List` of SeccompStatus objects.
fn print(items: &[SeccompStatus], format: OutputFormat) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Table => out.write_all(report::table(items, false).as_bytes()),
        OutputFormat::Wide => out.write_all(report::table(items, true).as_bytes()),
        OutputFormat::Json | OutputFormat::Yaml => {
            let list =
                serde_json::json!({ "apiVersion": "v1", "kind": "List", "metadata": {}, "items": items });
            let text = if format == OutputFormat::Json {
                serde_json::to_string_pretty(&list)
                    .map(|t| t + "\n")
                    .map_err(std::io::Error::other)?
            } else {
                serde_saphyr::to_string(&list).map_err(std::io::Error::other)?
            };
            out.write_all(text.as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_split_and_bad_ones_reported_alone() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\nkind: [unclosed\n--- \n# only a comment\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\n...\n";
        let (mut documents, mut errors) = (Vec::new(), Vec::new());
        read_source("f.yaml", text, &mut documents, &mut errors);
        let names: Vec<&str> = documents
            .iter()
            .filter_map(|d| d.value.pointer("/metadata/name")?.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        // The unclosed bracket is on the file's fifth line, the document's first.
        assert!(errors[0].starts_with("f.yaml, document 2: "), "{errors:?}");
        assert!(errors[0].contains("line 5"), "{errors:?}");
        assert!(!errors[0].contains("error:"), "{errors:?}");
        assert_eq!(documents[1].origin, "f.yaml, document 4");
    }

    #[test]
    fn documents_are_numbered_from_the_first_one_a_reader_sees() {
        // A file opening with `---`, or with comments and then `---`: its first document is the
        // one after that line.
        for text in [
            "---\nkind: [unclosed\n",
            "# Copyright the authors\n\n---\nkind: [unclosed\n",
        ] {
            let (mut documents, mut errors) = (Vec::new(), Vec::new());
            read_source("f.yaml", text, &mut documents, &mut errors);
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].starts_with("f.yaml, document 1: "), "{errors:?}");
        }
        // After that, a document of comments alone is a document.
        let text = "---\n# nothing yet\n---\n- a list\n";
        let (mut documents, mut errors) = (Vec::new(), Vec::new());
        read_source("f.yaml", text, &mut documents, &mut errors);
        assert_eq!(errors, ["f.yaml, document 2: not a Kubernetes object"]);
        // Content before the first `---` is the first document, and an empty document between
        // two `---` lines counts.
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n---\n- a list\n";
        let (mut documents, mut errors) = (Vec::new(), Vec::new());
        read_source("f.yaml", text, &mut documents, &mut errors);
        assert_eq!(documents[0].origin, "f.yaml, document 1");
        assert_eq!(errors, ["f.yaml, document 3: not a Kubernetes object"]);
    }

    #[test]
    fn a_duplicate_key_is_named_without_the_parsers_advice() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, name: b}\n";
        let (mut documents, mut errors) = (Vec::new(), Vec::new());
        read_source("f.yaml", text, &mut documents, &mut errors);
        assert!(documents.is_empty());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("f.yaml, document 1: duplicate mapping key: name at line 3"),
            "{errors:?}"
        );
    }

    /// Refused as the policy is decoded (a wrong type, an unknown enum value, a missing field), in
    /// the decoder's words rather than the API server's schema errors.
    const DECODE_REFUSED: [&str; 4] = [
        "rate-as-text.yaml",
        "selector-as-string.yaml",
        "unknown-action.yaml",
        "exemption-without-reason.yaml",
    ];

    /// The policies of `tests/policies/invalid/`, which the API server refuses (each with the words
    /// of its `# expect:` line; `tests/integration/policy_admission.rs`), are refused by the audit
    /// too, in the same words: a CI gate is never judged by a policy that cannot be applied. Those
    /// of `tests/policies/valid/`, which it admits, the audit reads.
    #[test]
    fn the_audit_refuses_the_policies_the_api_server_refuses_and_reads_the_others() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policies/invalid");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("the invalid policies")
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        assert!(files.len() >= 20, "{} policies", files.len());
        let mut accepted = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable");
            let expected = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .expect("an '# expect: ' first line");
            let (mut documents, mut errors) = (Vec::new(), Vec::new());
            let name = file.display().to_string();
            read_source(&name, &text, &mut documents, &mut errors);
            let compiled = policies_from(&documents, &mut errors);
            let file_name = file.file_name().unwrap_or_default().to_string_lossy();
            let same_words = !DECODE_REFUSED.contains(&file_name.as_ref());
            if !compiled.is_empty()
                || errors.is_empty()
                || (same_words && !errors.iter().any(|e| e.contains(expected)))
            {
                accepted.push(format!("{name}: expected {expected:?}, got {errors:?}"));
            }
        }
        assert!(accepted.is_empty(), "{}", accepted.join("\n"));

        // And the policies at the edges of every rule, which the API server admits, are read.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policies/valid");
        let mut read = 0;
        for file in std::fs::read_dir(&dir).expect("the valid policies").flatten() {
            let text = std::fs::read_to_string(file.path()).expect("readable");
            let (mut documents, mut errors) = (Vec::new(), Vec::new());
            let name = file.path().display().to_string();
            read_source(&name, &text, &mut documents, &mut errors);
            assert_eq!(
                policies_from(&documents, &mut errors).len(),
                1,
                "{name}: {errors:?}"
            );
            assert!(errors.is_empty(), "{name}: {errors:?}");
            read += 1;
        }
        assert!(read >= 3, "{read} valid policies");
    }

    #[test]
    fn a_misspelt_policy_field_is_an_error_not_a_default() {
        let text = "apiVersion: seccomp.sentinel.dev/v1alpha1\nkind: SeccompPolicy\nmetadata: {name: p}\n\
                    spec:\n  allowedProfile: [RuntimeDefault]\n  exemptions:\n  - {reason: r, namespace: [a]}\n";
        let (mut documents, mut errors) = (Vec::new(), Vec::new());
        read_source("p.yaml", text, &mut documents, &mut errors);
        assert!(policies_from(&documents, &mut errors).is_empty());
        assert_eq!(
            errors,
            vec![
                r#"p.yaml, document 1: invalid SeccompPolicy: unknown fields ["spec.allowedProfile", "spec.exemptions[0].namespace"]"#
                    .to_string()
            ]
        );
        // Every shipped sample reads without one.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for sample in [
            "policy-label-production.yaml",
            "policy-evict-payments.yaml",
            "policy-audit-all.yaml",
        ] {
            let (mut documents, mut errors) = (Vec::new(), Vec::new());
            let text = std::fs::read_to_string(root.join("config/samples").join(sample)).expect("sample");
            read_source(sample, &text, &mut documents, &mut errors);
            assert_eq!(
                policies_from(&documents, &mut errors).len(),
                1,
                "{sample}: {errors:?}"
            );
            assert!(errors.is_empty(), "{sample}: {errors:?}");
        }
    }

    #[test]
    fn json_documents_and_scalars() {
        let (mut documents, mut errors) = (Vec::new(), Vec::new());
        read_source(
            "x.json",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"}}"#,
            &mut documents,
            &mut errors,
        );
        read_source("s.yaml", "just a string\n", &mut documents, &mut errors);
        assert_eq!(documents.len(), 1);
        assert_eq!(
            errors,
            vec!["s.yaml, document 1: not a Kubernetes object".to_string()]
        );
    }

    #[test]
    fn kubernetes_versions() {
        let mut args = <AuditArgsForTest as clap::Parser>::parse_from(["t"]).args;
        assert_eq!(version_minor(&args).ok(), Some(37));
        args.kubernetes_version = Some("1.24".into());
        assert_eq!(version_minor(&args).ok(), Some(24));
        args.kubernetes_version = Some("twenty".into());
        assert!(version_minor(&args).is_err());
    }

    #[derive(clap::Parser)]
    struct AuditArgsForTest {
        #[command(flatten)]
        args: AuditArgs,
    }

    #[test]
    fn inputs_are_bounded_devices_refused_and_loops_and_duplicates_read_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let pod =
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i}]}\n";
        std::fs::write(root.join("pod.yaml"), pod).expect("write");
        std::fs::write(root.join("big.yaml"), "x".repeat(2048)).expect("write");
        std::fs::create_dir(root.join("sub")).expect("dir");
        // A loop back to the top, and a second name for the same file.
        std::os::unix::fs::symlink(root, root.join("sub/loop")).expect("symlink");
        std::os::unix::fs::symlink(root.join("pod.yaml"), root.join("sub/again.yaml")).expect("symlink");
        std::os::unix::fs::symlink("/dev/zero", root.join("sub/zero.yaml")).expect("symlink");
        let mut errors = Vec::new();
        let documents = read_inputs(&[root.to_path_buf()], 1024, &mut errors);
        assert_eq!(documents.len(), 1, "the pod once: {errors:?}");
        let text = errors.join("\n");
        assert!(text.contains("big.yaml: larger than 1024 bytes"), "{text}");
        assert!(text.contains("zero.yaml: not a regular file"), "{text}");
        assert!(text.contains("symlink loop"), "{text}");
        assert_eq!(errors.len(), 3, "{text}");
        // A device named on the command line is refused too.
        let mut errors = Vec::new();
        assert!(read_inputs(&[PathBuf::from("/dev/zero")], 1024, &mut errors).is_empty());
        assert!(errors[0].contains("/dev/zero: not a regular file"), "{errors:?}");
        assert_eq!(parse_size("64Mi"), Ok(64 << 20));
        assert!(parse_size("12 parsecs").is_err() && parse_size("0").is_err());
    }
}
