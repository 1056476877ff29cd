//! `seccomp-sentinel agent`: one per node. Maps the running containers of the node's pods to their
//! host processes through `/proc`, reads the seccomp mode the kernel enforces, and writes it into
//! each pod's SeccompStatus (each container's `status.containers[].runtime`, and the
//! `RuntimeVerified` condition in `status.conditions`) with a field manager of its own, only when something changed. It also
//! reports the node facts it can see as Node annotations, which the controller prefers over its
//! configuration.

pub mod kubelet;
pub mod procfs;

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::Patch,
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;
use tracing::{debug, info, warn};

use self::procfs::{ProcessIndex, SeccompState};
use crate::{
    api::{
        ContainerProfileFile, ProfileFile, ProfileFileState, ProfileType, RuntimeObservation, SeccompMode,
        StartedContent,
    },
    events::Notice,
    lean::{Decoded, node::NodeWire, pod::PodWire, status::StatusWire},
    profile::ProfileRoot,
    status::{self, ConditionMark, RUNTIME_VERIFIED},
};

/// How often the agent reads its Node again even when nothing it sees changed.
const NODE_RECHECK: Duration = Duration::from_secs(300);

/// Field manager of the agent's writes.
pub const AGENT_MANAGER: &str = "seccomp-sentinel-agent";
/// Field manager of the agent's profile file reports (`status.runtime.profileFiles`): apart from the
/// runtime observations, so each is written (and owned) on its own.
pub const AGENT_PROFILES_MANAGER: &str = "seccomp-sentinel-agent-profiles";
/// Where the Security Profiles Operator keeps the profiles its `operator/` link leads to.
pub const SPO_PROFILE_DIR: &str = "/var/lib/security-profiles-operator";
/// Node annotation: the kubelet's `seccompDefault`, as the agent read it from the kubelet's
/// configuration file (`true`/`false`), or `unknown` when the files changed after the kubelet
/// started and the agent never read them as they were then.
pub const KUBELET_DEFAULT_ANNOTATION: &str = "seccomp.sentinel.dev/kubelet-seccomp-default";
/// Node annotation: when the kubelet process whose setting is reported started (RFC 3339, whole
/// seconds), so a restarted agent knows what was read for this start.
pub const KUBELET_STARTED_ANNOTATION: &str = "seccomp.sentinel.dev/kubelet-started";
/// Node annotation: whether the node's kernel supports seccomp (`true`/`false`).
pub const KERNEL_SECCOMP_ANNOTATION: &str = "seccomp.sentinel.dev/kernel-seccomp";
/// Every Node annotation the agent writes.
const NODE_ANNOTATIONS: [&str; 3] = [
    KUBELET_DEFAULT_ANNOTATION,
    KUBELET_STARTED_ANNOTATION,
    KERNEL_SECCOMP_ANNOTATION,
];

#[derive(clap::Args, Debug, Clone)]
pub struct AgentArgs {
    /// The node this agent runs on (from the downward API).
    #[arg(long, env = "NODE_NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub node_name: String,

    /// The host's /proc (mounted read-only; the DaemonSet runs with hostPID).
    #[arg(long, env = "SENTINEL_PROC_ROOT", default_value = "/proc")]
    pub proc_root: PathBuf,

    /// Time between two scans of /proc (e.g. 30s, 2m).
    #[arg(long, env = "SENTINEL_SCAN_INTERVAL", default_value = "30s", value_parser = parse_scan_interval)]
    pub scan_interval: Duration,

    /// The kubelet's configuration file, if mounted, to report its seccompDefault. Without it the
    /// agent finds this node's kubelet process in the proc root and reads its command line,
    /// `--config` file and `--config-dir` drop-ins through `/proc/<pid>/root`.
    #[arg(long, env = "SENTINEL_KUBELET_CONFIG")]
    pub kubelet_config: Option<PathBuf>,

    /// The kubelet's seccomp directory on the node (default: `<kubelet --root-dir>/seccomp`, as
    /// the kubelet's command line says, else `/var/lib/kubelet/seccomp`).
    #[arg(long, env = "SENTINEL_SECCOMP_DIR")]
    pub seccomp_dir: Option<PathBuf>,

    /// Directories on the node that links in the seccomp directory may lead to (repeatable). A
    /// link to anywhere else is refused, not read.
    #[arg(long = "trusted-profile-links", env = "SENTINEL_TRUSTED_PROFILE_LINKS", value_delimiter = ',', default_value = SPO_PROFILE_DIR)]
    pub trusted_profile_links: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("Kubernetes API: {}", crate::client::Brief(.0))]
    Kube(#[from] kube::Error),
    #[error("reading {0}: {1}")]
    Proc(PathBuf, std::io::Error),
}

/// Shortest time between two scans. `0s` made the agent scan /proc without a pause, a core of
/// every node kept busy.
const MIN_SCAN_INTERVAL: Duration = Duration::from_secs(1);

fn parse_scan_interval(value: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(value).map_err(|e| format!("{value:?}: {e}"))?;
    if interval < MIN_SCAN_INTERVAL {
        return Err(format!(
            "{value:?} is shorter than the shortest scan interval, {}",
            humantime::format_duration(MIN_SCAN_INTERVAL)
        ));
    }
    Ok(interval)
}

/// Whether what the kernel enforces agrees with the effective profile. A confined container must
/// have a filter (or strict mode); an unconfined one may have filters of its application's own.
pub fn agrees(effective: ProfileType, mode: SeccompMode) -> bool {
    match effective {
        ProfileType::RuntimeDefault | ProfileType::Localhost => mode != SeccompMode::Disabled,
        ProfileType::Unconfined | ProfileType::NotApplicable => true,
    }
}

/// The agent's runtime findings for a pod, without the observation times: what decides whether
/// they must be written.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Written {
    containers: Vec<Seen>,
    condition: (String, String),
}

/// One container's finding, as the agent writes it into the container's entry of
/// `status.containers` (the name is the entry's key).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
struct Observation {
    name: String,
    runtime: RuntimeObservation,
}

impl Written {
    fn of(observations: &[Observation], condition: &Condition) -> Written {
        Written {
            containers: observations.iter().map(Seen::of).collect(),
            condition: (condition.status.clone(), condition.message.clone()),
        }
    }

    /// What a stored SeccompStatus holds of the agent's findings: its `observations` (read once
    /// with [`stored_observations`]) and the `RuntimeVerified` condition; `None` when the
    /// condition is missing or cannot be read.
    fn stored(status: &StatusWire, observations: &[Observation]) -> Option<Written> {
        let condition: Condition =
            serde_json::from_value(status.conditions_of_type(RUNTIME_VERIFIED).next()?.clone()).ok()?;
        Some(Written::of(observations, &condition))
    }
}

/// The per-container findings a stored SeccompStatus holds (`status.containers[].runtime`), in
/// its order; `None` when it holds none. An entry that does not read as one is no finding.
fn stored_observations(status: &StatusWire) -> Option<Vec<Observation>> {
    let stored: Vec<Observation> = status
        .container_runtimes()
        .filter_map(|(name, runtime)| {
            Some(Observation {
                name: name.to_string(),
                runtime: serde_json::from_value(runtime.clone()).ok()?,
            })
        })
        .collect();
    (!stored.is_empty()).then_some(stored)
}

/// Gives each observation the time of the stored one when that container's finding has not
/// changed, so `observedAt` says since when a finding holds: another container's change (or a
/// container added, e.g. an ephemeral one) rewrites the list, not the times of the others.
fn keep_unchanged_times(observations: &mut [Observation], stored: &[Observation]) {
    for observation in observations {
        let seen = Seen::of(observation);
        let unchanged = stored.iter().find(|s| Seen::of(s) == seen);
        if let Some(unchanged) = unchanged {
            observation.runtime.observed_at = unchanged.runtime.observed_at.clone();
        }
    }
}

/// What the agent's watch shows of a SeccompStatus when a scan starts.
#[derive(Clone, Debug)]
struct StoredView {
    /// The status's UID (its pod's, if the status has none): the key of [`OwnWrites`].
    key: String,
    resource_version: Option<u64>,
}

/// One container's observation, without its time.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    name: String,
    mode: SeccompMode,
    filters: Option<u32>,
    pid: Option<i64>,
    agrees: bool,
}

impl Seen {
    fn of(observation: &Observation) -> Seen {
        let runtime = &observation.runtime;
        Seen {
            name: observation.name.clone(),
            mode: runtime.seccomp_mode,
            filters: runtime.filters,
            pid: runtime.pid,
            agrees: runtime.agrees_with_effective,
        }
    }
}

/// The `RuntimeVerified=True` message. For several containers it is the text earlier releases
/// wrote for any count, so an upgraded agent rewrites only single-container pods' conditions.
fn agreement_message(running: usize) -> String {
    if running == 1 {
        "1 running container matches its effective profile".into()
    } else {
        format!("{running} running containers match their effective profile")
    }
}

/// One pass over the node's pods: what to write for each.
struct PodReport {
    namespace: String,
    name: String,
    pod_uid: String,
    /// In the order of the status's `containers`, so that applying them keeps that order.
    observations: Vec<Observation>,
    condition: Condition,
    /// The status holds these findings already (whoever wrote them, the agent before a restart
    /// included).
    stored: bool,
    /// The status records a mismatch already (its Event was published then).
    stored_mismatch: bool,
}

/// How long a running container may go without a process the agent can find before its
/// `RuntimeVerified` says so: the kubelet reports a container's exit a moment after it happens.
const PROCESS_GRACE: Duration = Duration::from_secs(10);

/// The reason of `RuntimeVerified=Unknown` for running containers without a process the agent
/// can find.
pub const PROCESS_NOT_FOUND: &str = "ProcessNotFound";

/// Running containers (by container ID) whose process the agent has not found, since when. An
/// agent without the host's /proc, or beside a runtime that isolates containers in VMs, finds
/// none: that is said in the status rather than left as no finding at all.
#[derive(Debug, Default)]
struct Unfound {
    since: HashMap<String, std::time::Instant>,
    this_scan: HashSet<String>,
    /// How many pods the last warning counted (0: none given, or all found since).
    warned: usize,
}

impl Unfound {
    /// Records that `id`'s process was not found at `at`; whether it has been missing for
    /// [`PROCESS_GRACE`] since the first scan that missed it.
    fn missing(&mut self, id: &str, at: std::time::Instant) -> bool {
        self.this_scan.insert(id.to_string());
        let since = *self.since.entry(id.to_string()).or_insert(at);
        at.saturating_duration_since(since) >= PROCESS_GRACE
    }

    /// Forgets the containers this scan did not miss; returns the count to warn about, when it
    /// changed: `unseen` pods have containers past their grace now.
    fn end_scan(&mut self, unseen: usize) -> Option<usize> {
        let missed = std::mem::take(&mut self.this_scan);
        self.since.retain(|id, _| missed.contains(id));
        let warn = (unseen > 0 && unseen != self.warned).then_some(unseen);
        self.warned = unseen;
        warn
    }
}

/// The node's processes as one scan finds them.
struct Processes<'a> {
    index: &'a ProcessIndex,
    proc_root: &'a Path,
    unfound: &'a mut Unfound,
    at: std::time::Instant,
}

/// What the agent needs to find containers' processes; said in the status and the log alike.
const PROC_ROOT_NEEDED: &str = "the agent needs the host's /proc (at --proc-root, or hostPID)";

/// The `RuntimeVerified=Unknown` message for running containers without a process.
fn unseen_message(unseen: &[String], running: usize) -> String {
    let mut message = format!(
        "no process of {} in the agent's proc root: {PROC_ROOT_NEEDED}, and cannot see into containers a runtime isolates in a VM (Kata) or a user-space kernel (gVisor)",
        status::first_few(unseen.iter(), ", ")
    );
    if running > 0 {
        message.push_str("; ");
        message.push_str(&agreement_message(running));
    }
    message
}

/// The profile files one pod's Localhost containers name, as read on this node.
struct ProfileReport {
    namespace: String,
    name: String,
    files: Vec<ContainerProfileFile>,
    /// The status reports these files already.
    stored: bool,
}

/// Reads the profile file of every container whose effective profile is Localhost, running or
/// not (a missing file is exactly why a container never starts). Each path is read once a scan.
fn profiles_for(
    key: &(String, String),
    pod: &PodWire,
    status: &StatusWire,
    root: &ProfileRoot,
    cache: &mut HashMap<String, (ProfileFile, Option<Timestamp>)>,
) -> Option<ProfileReport> {
    let started = |container: &str| {
        pod.status
            .as_ref()?
            .all()
            .find(|c| c.name == container)?
            .started_at()
    };
    let reported = status.profile_files();
    let files: Vec<ContainerProfileFile> = status
        .localhost_profiles()
        .into_iter()
        .map(|(container, path)| {
            let (file, changed) = cache
                .entry(path.to_string())
                .or_insert_with(|| root.read_with_change_time(path));
            let started = started(container);
            let reported = reported
                .iter()
                .find(|r| r.name == container && r.file.path == path);
            let started_with = started.and_then(|at| {
                started_content(
                    reported.and_then(|r| r.file.started_with.as_ref()),
                    file,
                    *changed,
                    at,
                )
            });
            let mut file = as_started_with(
                file.clone(),
                *changed,
                started,
                started_with.as_ref().map(|s| s.sha256.as_str()),
            );
            file.started_with = started_with;
            ContainerProfileFile {
                name: container.to_string(),
                file,
            }
        })
        .collect();
    let stored = reported == files;
    (!files.is_empty()).then(|| ProfileReport {
        namespace: key.0.clone(),
        name: key.1.clone(),
        files,
        stored,
    })
}

/// The content a container that started at `started` started with, where it is known: as the
/// status says for that start (whichever agent proved it), else the file read now when it has not
/// changed since before the start's second. Held in the status, not in the agent's memory, so
/// every agent on the node, and an agent restarted, comes to the same answer.
fn started_content(
    reported: Option<&StartedContent>,
    file: &ProfileFile,
    changed: Option<Timestamp>,
    started: Timestamp,
) -> Option<StartedContent> {
    let start = started.as_second();
    if let Some(known) = reported.filter(|r| r.container_started.0.as_second() == start) {
        return Some(known.clone());
    }
    let unchanged_since_before = changed.is_some_and(|c| c.as_second() < start);
    Some(StartedContent {
        container_started: Time(Timestamp::from_second(start).ok()?),
        sha256: file.sha256.clone().filter(|_| unchanged_since_before)?,
        class: file.class,
    })
}

/// A profile file as it concerns a container: for one that runs (started at `started`, in whole
/// seconds), marked when the file is not what the runtime read when it created the container, as
/// it changed (`changed`: its change time) after the start or is gone. Only a change from the
/// second after the start counts: the start time is cut to the second. Where the content the
/// container started with is known (`started_with`, its SHA-256), the content decides: the same
/// content is what the container runs, whenever written; another is not, however old.
fn as_started_with(
    mut file: ProfileFile,
    changed: Option<Timestamp>,
    started: Option<Timestamp>,
    started_with: Option<&str>,
) -> ProfileFile {
    let Some(started) = started else {
        return file;
    };
    let second = |t: Timestamp| Timestamp::from_second(t.as_second()).unwrap_or(t);
    // Whether the content is the one the container started with, where that is known.
    let same_content = match (started_with, file.sha256.as_deref()) {
        (Some(then), Some(now)) => Some(then == now),
        _ => None,
    };
    let note = match (file.state, changed, same_content) {
        (ProfileFileState::Missing, _, _) => format!(
            "the container has run with it since {}: it was removed after the start, or the agent \
             reads another directory than the kubelet's (--seccomp-dir)",
            second(started)
        ),
        (_, _, Some(true)) => return file,
        (_, Some(changed), _) if changed.as_second() > started.as_second() => format!(
            "changed on the node at {}, after the container started ({}): the container runs \
             the earlier content until it restarts",
            second(changed),
            second(started)
        ),
        // Older than the start, yet another content: the path leads elsewhere since (a
        // directory on it renamed or swapped).
        (_, _, Some(false)) => format!(
            "not the content the container started with ({}): the path leads to another file \
             since; the container runs the earlier content until it restarts",
            second(started)
        ),
        _ => return file,
    };
    file.changed_after_start = true;
    file.message = Some(match file.message.take() {
        Some(message) => format!("{message}; {note}"),
        None => note,
    });
    file
}

/// Why a running container's kernel state is not what its effective profile says. A Localhost
/// profile with neither a default action nor rules is one reason the file explains: the runtime
/// installed no filter (while the file is still what the container started with).
fn mismatch_message(
    container: &str,
    effective: ProfileType,
    mode: SeccompMode,
    file: Option<&ProfileFile>,
) -> String {
    let installs_no_filter = effective == ProfileType::Localhost
        && mode == SeccompMode::Disabled
        && file.is_some_and(|f| {
            f.state == ProfileFileState::Present && !f.changed_after_start && f.default_action.is_none()
        });
    let mut message = format!("{container} is {effective:?} but the kernel shows seccomp {mode:?}");
    if installs_no_filter {
        message.push_str(" (its profile has no defaultAction and no rules: the runtime installed no filter)");
    }
    message
}

fn profile_type(name: &str) -> Option<ProfileType> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

fn report_for(
    key: &(String, String),
    pod: &PodWire,
    status: &StatusWire,
    profile_files: &[ContainerProfileFile],
    processes: &mut Processes<'_>,
    now: &Time,
    previous: &[ConditionMark],
) -> Option<PodReport> {
    let pod_status = pod.status.as_ref()?;
    let listed = status.container_profiles();
    let effective: HashMap<&str, ProfileType> = listed
        .iter()
        .filter_map(|&(name, profile)| Some((name, profile_type(profile)?)))
        .collect();
    let mut observations = Vec::new();
    let mut mismatches = Vec::new();
    let mut unseen = Vec::new();
    for container in pod_status.all() {
        let running = container.running();
        let Some(id) = container.container_id.as_deref().and_then(procfs::container_id) else {
            continue;
        };
        let Some(effective) = effective.get(container.name.as_str()) else {
            continue;
        };
        if !running || *effective == ProfileType::NotApplicable {
            continue;
        }
        let found = processes
            .index
            .main_process(id)
            .and_then(|pid| Some((pid, procfs::seccomp_of(processes.proc_root, pid)?)));
        let Some((pid, SeccompState { mode, filters })) = found else {
            if processes.unfound.missing(id, processes.at) {
                unseen.push(container.name.clone());
            }
            continue;
        };
        let agree = agrees(*effective, mode);
        if !agree {
            let file = profile_files
                .iter()
                .find(|f| f.name == container.name)
                .map(|f| &f.file);
            mismatches.push(mismatch_message(&container.name, *effective, mode, file));
        }
        observations.push(Observation {
            name: container.name.clone(),
            runtime: RuntimeObservation {
                seccomp_mode: mode,
                filters,
                pid: Some(i64::from(pid)),
                observed_at: now.clone(),
                agrees_with_effective: agree,
            },
        });
    }
    if observations.is_empty() && unseen.is_empty() {
        return None;
    }
    let stored_observations = stored_observations(status);
    if let Some(stored) = &stored_observations {
        keep_unchanged_times(&mut observations, stored);
    }
    let condition = if !mismatches.is_empty() {
        status::condition(
            RUNTIME_VERIFIED,
            "False",
            "Mismatch",
            status::first_few(mismatches.iter(), "; "),
            previous,
            now,
        )
    } else if !unseen.is_empty() {
        status::condition(
            RUNTIME_VERIFIED,
            "Unknown",
            PROCESS_NOT_FOUND,
            unseen_message(&unseen, observations.len()),
            previous,
            now,
        )
    } else {
        status::condition(
            RUNTIME_VERIFIED,
            "True",
            "Agrees",
            agreement_message(observations.len()),
            previous,
            now,
        )
    };
    // A container that stopped keeps its last finding: an init container that finished, an
    // ephemeral one that exited, one waiting to restart. What it ran with stays on record, as
    // it does for a pod whose containers all finished (which gets no report at all). The
    // condition speaks of the running ones only.
    if let Some(stored) = &stored_observations {
        let stopped = |name: &str| pod_status.all().any(|c| c.name == name && !c.running());
        // (Only running containers were observed, so none of these is there already.)
        observations.extend(stored.iter().filter(|s| stopped(&s.name)).cloned());
    }
    // The entries are the controller's, in its order: an apply listing them in another order
    // would reorder them (and the controller's next apply back).
    observations.retain(|o| effective.contains_key(o.name.as_str()));
    observations.sort_by_key(|o| listed.iter().position(|(name, _)| *name == o.name));
    let stored = stored_observations.and_then(|o| Written::stored(status, &o));
    Some(PodReport {
        namespace: key.0.clone(),
        name: key.1.clone(),
        pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
        stored: stored.as_ref() == Some(&Written::of(&observations, &condition)),
        stored_mismatch: stored.is_some_and(|w| w.condition.0 == "False"),
        observations,
        condition,
    })
}

/// What the agent has warned about the kubelet's configuration, so each is said once.
#[derive(Debug, Default)]
struct ConfigurationWarnings {
    /// The last change of the kubelet's files, as not what the kubelet runs.
    change: Option<Timestamp>,
    /// Why a file the kubelet read cannot be read.
    unreadable: Option<String>,
}

/// The node facts the agent reports as Node annotations. A kubelet not found (e.g. restarting)
/// keeps the values last reported.
fn node_facts(
    args: &AgentArgs,
    found: Option<&kubelet::FoundKubelet>,
    last: Option<&serde_json::Map<String, serde_json::Value>>,
    warned: &mut ConfigurationWarnings,
) -> serde_json::Map<String, serde_json::Value> {
    let mut annotations = serde_json::Map::new();
    let kernel = std::fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(procfs::parse_status)
        .is_some();
    annotations.insert(KERNEL_SECCOMP_ANNOTATION.into(), json!(kernel.to_string()));
    let configuration = match (&args.kubelet_config, found) {
        (Some(path), _) => kubelet::from_file(path).map(|setting| kubelet::KubeletConfiguration {
            setting: Ok(setting),
            last_change: kubelet::changed_at(path),
        }),
        (None, Some(k)) => Some(kubelet::read_configuration(&args.proc_root, k)),
        (None, None) => None,
    };
    // The start counts for a file given with --kubelet-config only when it is the kubelet's own
    // (a hostPath of it): a copy's change times say nothing of what the kubelet read.
    let start = found
        .filter(|k| {
            args.kubelet_config
                .as_deref()
                .is_none_or(|path| kubelet::is_config_of(&args.proc_root, k, path))
        })
        .and_then(|(pid, _)| kubelet::start_of(&args.proc_root, *pid));
    let last_value = |key: &str| last.and_then(|l| l.get(key)).and_then(|v| v.as_str());
    let reported = reported_kubelet_default(
        configuration.as_ref(),
        start.as_ref(),
        last_value(KUBELET_DEFAULT_ANNOTATION),
        last_value(KUBELET_STARTED_ANNOTATION),
    );
    let read = configuration.as_ref().map(|c| (&c.setting, c.last_change));
    if let Some((Err(why), _)) = read {
        // Said once for each reason.
        if warned.unreadable.as_deref() != Some(why.as_str()) {
            warn!(
                error = %why,
                reported = reported.default.as_deref().unwrap_or_default(),
                "a file the kubelet read its configuration from cannot be read: its seccompDefault \
                 is reported as read before for this kubelet start, else unknown"
            );
            warned.unreadable = Some(why.clone());
        }
    } else {
        warned.unreadable = None;
    }
    if let Some((Ok(setting), last_change)) = read {
        debug!(enabled = setting.enabled, source = %setting.source, "kubelet seccompDefault");
        let unapplied = start.as_ref().is_some_and(|s| s.changed_since(last_change));
        // Said once for each change seen.
        if unapplied && warned.change != last_change {
            warn!(
                source = %setting.source,
                files_say = setting.enabled,
                kubelet_started = start.as_ref().map(|s| s.name.as_str()).unwrap_or_default(),
                reported = reported.default.as_deref().unwrap_or_default(),
                "the kubelet's configuration changed after the kubelet started: it runs with what \
                 the files said then, so that is reported where an agent read it, else unknown, \
                 until the kubelet restarts"
            );
            warned.change = last_change;
        }
    }
    for (key, value) in [
        (KUBELET_DEFAULT_ANNOTATION, reported.default),
        (KUBELET_STARTED_ANNOTATION, reported.started),
    ] {
        if let Some(value) = value {
            annotations.insert(key.into(), json!(value));
        }
    }
    annotations
}

/// The kubelet annotations to report.
#[derive(Debug, PartialEq, Eq)]
struct ReportedKubeletDefault {
    default: Option<String>,
    started: Option<String>,
}

/// What to report of the kubelet's `seccompDefault`, from its configuration as read now, when the
/// kubelet started, and what was reported before (by this agent, or one before it on the node).
/// The kubelet reads its configuration when it starts: files changed since then say what its next
/// start will run with, not what it runs with. Then the value reported for this same start still
/// holds (it was read before the change), and without one the setting is `unknown`. So it is when
/// a file the kubelet read cannot be read now.
fn reported_kubelet_default(
    configuration: Option<&kubelet::KubeletConfiguration>,
    start: Option<&kubelet::KubeletStart>,
    last_default: Option<&str>,
    last_started: Option<&str>,
) -> ReportedKubeletDefault {
    let Some(configuration) = configuration else {
        return ReportedKubeletDefault {
            default: last_default.map(str::to_string),
            started: last_started.map(str::to_string),
        };
    };
    // The files as they are, unless one cannot be read.
    let read = configuration.setting.as_ref().ok().map(|s| s.enabled.to_string());
    let Some(start) = start else {
        // No start to compare with (the kubelet's stat unreadable).
        return ReportedKubeletDefault {
            default: Some(read.unwrap_or_else(|| "unknown".into())),
            started: None,
        };
    };
    let default = if let Some(read) = read.filter(|_| !start.changed_since(configuration.last_change)) {
        read
    } else if last_started == Some(start.name.as_str())
        && let Some(known @ ("true" | "false")) = last_default
    {
        known.to_string()
    } else {
        "unknown".to_string()
    };
    ReportedKubeletDefault {
        default: Some(default),
        started: Some(start.name.clone()),
    }
}

/// Objects of the agent's node, by namespace and name.
type ByName<W> = std::sync::Mutex<HashMap<(String, String), W>>;

struct Agent {
    client: Client,
    args: AgentArgs,
    events: crate::events::Publisher,
    /// The node's pods and their SeccompStatuses, by namespace and name.
    pods: ByName<PodWire>,
    statuses: ByName<StatusWire>,
    /// The agent's own writes of runtime observations.
    written: tokio::sync::Mutex<OwnWrites>,
    /// The agent's own writes of profile files.
    profiles_written: tokio::sync::Mutex<OwnWrites>,
    /// Running containers whose process is not found.
    unfound: std::sync::Mutex<Unfound>,
    /// Scans in a row with a write of runtime observations that failed, and with a profile file
    /// report that failed ([`tell_failed_writes`]).
    failing_scans: std::sync::atomic::AtomicU32,
    failing_profile_scans: std::sync::atomic::AtomicU32,
}

/// Tells the writes of one scan that failed, with the first one's error: a warning at the 1st,
/// 2nd, 4th, 8th, ... scan in a row that has some, a debug line at the others. A cluster that
/// refuses them for good (the agent's role lacks a rule, an admission policy of the cluster)
/// is told why, without a line every scan. `in_a_row` is reset by a scan without failures.
fn tell_failed_writes(
    in_a_row: &std::sync::atomic::AtomicU32,
    failed: usize,
    first: Option<&AgentError>,
    what: &str,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(error) = first else {
        in_a_row.store(0, Relaxed);
        return;
    };
    let scans = in_a_row.fetch_add(1, Relaxed).saturating_add(1);
    if crate::telemetry::worth_a_warning(scans) {
        warn!(failed, scans_in_a_row = scans, error = %error, "{what} not written (retried next pass)");
    } else {
        debug!(failed, scans_in_a_row = scans, error = %error, "{what} not written (retried next pass)");
    }
}

/// The resourceVersion each of the agent's writes produced, by the SeccompStatus's UID. The agent
/// writes what differs from the status its watch shows; until the watch shows its own last write,
/// that view is older than what it wrote, and the write is not made again. A status deleted and
/// made again by the controller has a new UID; the statuses of pods gone from the node are
/// forgotten.
#[derive(Debug, Default)]
struct OwnWrites {
    by_status: HashMap<String, u64>,
}

impl OwnWrites {
    /// Forgets every status not in `live`.
    fn keep_only(&mut self, live: &HashSet<String>) {
        self.by_status.retain(|key, _| live.contains(key));
    }

    /// Whether the watch's view of the status is older than the agent's last write to it.
    fn not_seen_yet(&self, stored: &StoredView) -> bool {
        matches!(
            (self.by_status.get(&stored.key), stored.resource_version),
            (Some(written), Some(seen)) if seen < *written
        )
    }

    fn record(&mut self, stored: &StoredView, written: Option<u64>) {
        match written {
            Some(version) => self.by_status.insert(stored.key.clone(), version),
            None => self.by_status.remove(&stored.key),
        };
    }
}

/// Keeps `map` as the watch of `api` says (objects that cannot be read are skipped), and kicks a
/// scan on every change.
fn spawn_watch<W>(
    api: Api<Decoded<W>>,
    config: watcher::Config,
    map: Arc<Agent>,
    select: fn(&Agent) -> &ByName<W>,
    kick: tokio::sync::mpsc::Sender<()>,
) where
    W: crate::lean::WatchedKind
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    Decoded<W>:
        kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + serde::de::DeserializeOwned,
{
    tokio::spawn(async move {
        let stream = watcher(api, config).backoff(crate::client::RetryDelays::for_watches());
        let mut stream = std::pin::pin!(stream);
        let mut listed: Option<HashMap<(String, String), W>> = None;
        while let Some(event) = stream.next().await {
            let key_of = |d: &Decoded<W>| {
                let meta = d.meta();
                (
                    meta.namespace.clone().unwrap_or_default(),
                    meta.name.clone().unwrap_or_default(),
                )
            };
            {
                let mut current = select(&map).lock().unwrap_or_else(|e| e.into_inner());
                match event {
                    Ok(watcher::Event::Init) => listed = Some(HashMap::new()),
                    Ok(watcher::Event::InitApply(d)) => {
                        let key = key_of(&d);
                        if let Ok(object) = d.into_result() {
                            listed.get_or_insert_with(HashMap::new).insert(key, object);
                        }
                    }
                    Ok(watcher::Event::InitDone) => *current = listed.take().unwrap_or_default(),
                    Ok(watcher::Event::Apply(d)) => {
                        let key = key_of(&d);
                        match d.into_result() {
                            Ok(object) => {
                                current.insert(key, object);
                            }
                            Err(invalid) => {
                                debug!(error = %invalid.error, "an object that cannot be read is skipped")
                            }
                        }
                    }
                    Ok(watcher::Event::Delete(d)) => {
                        current.remove(&key_of(&d));
                    }
                    Err(e) if crate::client::watch_expired(&e) => {
                        info!(resource = W::PLURAL, "watch expired (410): listing again");
                        continue;
                    }
                    Err(e) => {
                        warn!(error = %crate::client::BriefWatch(&e), resource = W::PLURAL, "watch failed; retrying");
                        continue;
                    }
                }
            }
            let _ = kick.try_send(());
        }
    });
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    client: Client,
    args: AgentArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let agent = Arc::new(Agent {
        events: crate::events::Publisher::new(client.clone(), AGENT_MANAGER, Some(args.node_name.clone())),
        client: client.clone(),
        args,
        pods: Default::default(),
        statuses: Default::default(),
        written: Default::default(),
        profiles_written: Default::default(),
        unfound: Default::default(),
        failing_scans: Default::default(),
        failing_profile_scans: Default::default(),
    });
    // Any change of a pod or status on this node triggers a scan; otherwise every interval.
    let (kick_tx, mut kick_rx) = tokio::sync::mpsc::channel::<()>(1);
    spawn_watch(
        Api::<Decoded<PodWire>>::all(client.clone()),
        watcher::Config::default().fields(&format!("spec.nodeName={}", agent.args.node_name)),
        agent.clone(),
        |a| &a.pods,
        kick_tx.clone(),
    );
    spawn_watch(
        Api::<Decoded<StatusWire>>::all(client.clone()),
        watcher::Config::default().fields(&format!("status.node={}", agent.args.node_name)),
        agent.clone(),
        |a| &a.statuses,
        kick_tx,
    );
    info!(node = %agent.args.node_name, proc_root = %agent.args.proc_root.display(), "agent started");
    let mut shutdown = std::pin::pin!(shutdown);
    // The node facts are read again on every pass (a kubelet may be restarted with another
    // seccompDefault) and written when they differ from what was last reported.
    // What an agent before this one reported counts as reported: a kubelet setting read before
    // the kubelet's files changed still holds for the same kubelet start. Nothing is reported
    // before that is known (an API server not answering yet would otherwise cost that reading).
    let mut reported = None;
    let mut seeded = false;
    let mut warned = ConfigurationWarnings::default();
    // The Node is read again now and then, so annotations someone removed come back.
    let mut verified = tokio::time::Instant::now();
    let mut annotation_failures: u32 = 0;
    let mut seed_failures: u32 = 0;
    loop {
        // One look for the kubelet a pass: its settings and its seccomp directory both come from it.
        let kubelet = kubelet::find_kubelet(&agent.args.proc_root, &agent.args.node_name);
        if !seeded {
            match reported_before(&agent).await {
                Ok(before) => (reported, seeded) = (before, true),
                // Tried again every pass: a warning at the 1st, 2nd, 4th, ... failure in a row.
                Err(e) => {
                    seed_failures = seed_failures.saturating_add(1);
                    if crate::telemetry::worth_a_warning(seed_failures) {
                        warn!(
                            error = %crate::client::Brief(&e),
                            failures_in_a_row = seed_failures,
                            "could not read the node's earlier reports"
                        );
                    } else {
                        debug!(error = %crate::client::Brief(&e), failures_in_a_row = seed_failures, "could not read the node's earlier reports");
                    }
                }
            }
        }
        let facts = node_facts(&agent.args, kubelet.as_ref(), reported.as_ref(), &mut warned);
        if seeded && (reported.as_ref() != Some(&facts) || verified.elapsed() >= NODE_RECHECK) {
            match report_node(&agent, &facts).await {
                Ok(()) => {
                    reported = Some(facts);
                    verified = tokio::time::Instant::now();
                    annotation_failures = 0;
                }
                // Tried again every pass: a warning at the 1st, 2nd, 4th, ... failure in a row.
                Err(e) => {
                    annotation_failures = annotation_failures.saturating_add(1);
                    if crate::telemetry::worth_a_warning(annotation_failures) {
                        warn!(error = %e, failures_in_a_row = annotation_failures, "could not annotate the node");
                    } else {
                        debug!(error = %e, failures_in_a_row = annotation_failures, "could not annotate the node");
                    }
                }
            }
        }
        if let Err(e) = scan(&agent, kubelet.as_ref()).await {
            warn!(error = %e, "scan failed");
        }
        // Coalesce bursts of changes: wait a moment after a kick.
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(agent.args.scan_interval) => {}
            Some(()) = kick_rx.recv() => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    info!("agent stopped");
    Ok(())
}

async fn scan(agent: &Agent, kubelet: Option<&kubelet::FoundKubelet>) -> Result<(), AgentError> {
    let proc_root = &agent.args.proc_root;
    let index = ProcessIndex::scan(proc_root).map_err(|e| AgentError::Proc(proc_root.clone(), e))?;
    let now = Time(Timestamp::now());
    let profile_root = kubelet::profile_root(
        proc_root,
        kubelet,
        agent.args.seccomp_dir.as_deref(),
        &agent.args.trusted_profile_links,
    );
    if profile_root.is_none() {
        debug!("no kubelet found and no --seccomp-dir: profile files are not read this pass");
    }
    let mut read_profiles = HashMap::new();
    // What to write, decided without holding the maps across a write.
    let mut profile_reports: Vec<(StoredView, ProfileReport)> = Vec::new();
    // The statuses of the node's pods: what was written for any other is forgotten.
    let mut live: HashSet<String> = HashSet::new();
    let reports: Vec<(StoredView, PodReport)> = {
        let pods = agent.pods.lock().unwrap_or_else(|e| e.into_inner());
        let statuses = agent.statuses.lock().unwrap_or_else(|e| e.into_inner());
        let mut unfound = agent.unfound.lock().unwrap_or_else(|e| e.into_inner());
        let mut processes = Processes {
            index: &index,
            proc_root,
            unfound: &mut unfound,
            at: std::time::Instant::now(),
        };
        let reports: Vec<(StoredView, PodReport)> = pods
            .iter()
            .filter_map(|(key, pod)| {
                let status = statuses.get(key)?;
                let uid = pod.metadata.uid.clone()?;
                // A status for another pod of the same name (recreated) is not ours to complete yet.
                if status.pod_uid() != Some(uid.as_str()) {
                    return None;
                }
                let stored = StoredView {
                    key: status.metadata.uid.clone().unwrap_or_else(|| uid.clone()),
                    resource_version: status.metadata.resource_version_number(),
                };
                live.insert(stored.key.clone());
                let profile_report = profile_root
                    .as_ref()
                    .and_then(|root| profiles_for(key, pod, status, root, &mut read_profiles));
                let previous = ConditionMark::read_all(status.status.as_ref());
                let profile_files = profile_report.as_ref().map_or(&[][..], |r| &r.files[..]);
                let report = report_for(key, pod, status, profile_files, &mut processes, &now, &previous);
                if let Some(profile_report) = profile_report {
                    profile_reports.push((stored.clone(), profile_report));
                }
                let report = report?;
                Some((stored, report))
            })
            .collect();
        let unseen = reports
            .iter()
            .filter(|(_, r)| r.condition.reason == PROCESS_NOT_FOUND)
            .count();
        if let Some(pods) = unfound.end_scan(unseen) {
            warn!(
                pods,
                "running containers without a process in the proc root: {PROC_ROOT_NEEDED}"
            );
        }
        reports
    };
    write_profile_reports(agent, profile_reports, &live).await;
    let mut written = agent.written.lock().await;
    written.keep_only(&live);
    let (mut failed, mut first_error) = (0, None);
    for (stored, report) in reports {
        if report.stored || written.not_seen_yet(&stored) {
            continue;
        }
        // One pod's failed write does not hold the others back; it is tried again next pass.
        let version = match write(agent, &report).await {
            Ok(version) => version,
            Err(e) => {
                failed += 1;
                debug!(pod = %format!("{}/{}", report.namespace, report.name), error = %e, "could not write the runtime observations");
                first_error.get_or_insert(e);
                continue;
            }
        };
        written.record(&stored, version);
        if report.condition.status == "False" && !report.stored_mismatch {
            let reference = k8s_openapi::api::core::v1::ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(report.name.clone()),
                namespace: Some(report.namespace.clone()),
                uid: Some(report.pod_uid.clone()),
                ..Default::default()
            };
            agent
                .events
                .publish(Notice {
                    regarding: reference,
                    warning: true,
                    reason: "SeccompMismatch",
                    action: "Verify",
                    note: &report.condition.message,
                })
                .await;
        }
    }
    tell_failed_writes(
        &agent.failing_scans,
        failed,
        first_error.as_ref(),
        "runtime observations",
    );
    debug!(containers = index.containers(), "scan complete");
    Ok(())
}

/// Writes the profile reports that differ from what was last written for the status.
async fn write_profile_reports(
    agent: &Agent,
    reports: Vec<(StoredView, ProfileReport)>,
    live: &HashSet<String>,
) {
    let mut written = agent.profiles_written.lock().await;
    written.keep_only(live);
    let (mut failed, mut first_error) = (0, None);
    for (stored, report) in &reports {
        if report.stored || written.not_seen_yet(stored) {
            continue;
        }
        let status = json!({ "runtime": { "profileFiles": report.files } });
        match apply_status(
            agent,
            &report.namespace,
            &report.name,
            AGENT_PROFILES_MANAGER,
            status,
        )
        .await
        {
            Ok(version) => written.record(stored, version),
            Err(e) => {
                failed += 1;
                debug!(pod = %format!("{}/{}", report.namespace, report.name), error = %e, "could not report the profile files");
                first_error.get_or_insert(e);
            }
        }
    }
    tell_failed_writes(
        &agent.failing_profile_scans,
        failed,
        first_error.as_ref(),
        "profile file reports",
    );
}

/// The runtime fields of one pod's SeccompStatus, under the agent's own field manager; returns
/// the resourceVersion written.
async fn write(agent: &Agent, report: &PodReport) -> Result<Option<u64>, AgentError> {
    // `RuntimeVerified` goes beside the controller's conditions: each condition is owned whole by
    // its writer, so this apply touches no other.
    let status = json!({ "conditions": [report.condition], "containers": report.observations });
    apply_status(agent, &report.namespace, &report.name, AGENT_MANAGER, status).await
}

/// Applies `status` fields of one SeccompStatus as `manager`. The agent may not create
/// SeccompStatuses (no `create` in its RBAC): a status that is gone (404) is done with. A refusal
/// (403: the agent's role, an admission policy) is an error to tell: the agent watches only the
/// statuses of its own node's pods, so it is never one it should not have tried. Returns the
/// resourceVersion written, if there was a write.
async fn apply_status(
    agent: &Agent,
    namespace: &str,
    name: &str,
    manager: &str,
    status: serde_json::Value,
) -> Result<Option<u64>, AgentError> {
    let body = json!({
        "apiVersion": format!("{}/{}", crate::api::GROUP, crate::api::VERSION), "kind": "SeccompStatus",
        "metadata": { "name": name, "namespace": namespace },
        "status": status,
    });
    let api: Api<Decoded<StatusWire>> = Api::namespaced(agent.client.clone(), namespace);
    match api
        .patch(name, &crate::client::apply_as(manager), &Patch::Apply(&body))
        .await
    {
        Ok(written) => {
            debug!(pod = %format!("{namespace}/{name}"), manager, "written");
            Ok(written.resource_version_number())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What the agent's field manager wrote among a Node's annotations (a value someone else set
/// does not count as reported).
fn agent_reports(node: &NodeWire) -> serde_json::Map<String, serde_json::Value> {
    NODE_ANNOTATIONS
        .into_iter()
        .filter(|key| node.annotation_owners(key).contains(&AGENT_MANAGER))
        .filter_map(|key| {
            let value = node.metadata.meta.annotations.get(key)?;
            Some((key.to_string(), json!(value)))
        })
        .collect()
}

/// [`agent_reports`] of this agent's Node, as the API server has it now (`None`: a Node the
/// agent cannot decode holds nothing it reported).
async fn reported_before(
    agent: &Agent,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, kube::Error> {
    let nodes: Api<Decoded<NodeWire>> = Api::all(agent.client.clone());
    Ok(match nodes.get(&agent.args.node_name).await? {
        Decoded::Ok(node, _) => Some(agent_reports(&node)),
        _ => None,
    })
}

/// Annotates the node with the facts the agent can see, writing only what differs (what it no
/// longer reports goes).
async fn report_node(
    agent: &Agent,
    annotations: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), AgentError> {
    if reported_before(agent).await?.as_ref() == Some(annotations) {
        return Ok(());
    }
    let nodes: Api<Decoded<NodeWire>> = Api::all(agent.client.clone());
    let patch = json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": agent.args.node_name, "annotations": annotations } });
    nodes
        .patch(
            &agent.args.node_name,
            &crate::client::apply_as(AGENT_MANAGER),
            &Patch::Apply(&patch),
        )
        .await?;
    info!(node = %agent.args.node_name, ?annotations, "node facts reported");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_names_a_profile_that_installs_no_filter() {
        let no_filter = ProfileFile {
            path: "p.json".into(),
            state: ProfileFileState::Present,
            class: Some(crate::api::ProfileClass::Permissive),
            ..ProfileFile::default()
        };
        let hint = "the runtime installed no filter";
        let message = |file: &ProfileFile| {
            mismatch_message("app", ProfileType::Localhost, SeccompMode::Disabled, Some(file))
        };
        assert_eq!(
            message(&no_filter),
            "app is Localhost but the kernel shows seccomp Disabled (its profile has no \
             defaultAction and no rules: the runtime installed no filter)"
        );
        // A file with a default action, or one changed since the start, explains nothing.
        let with_default = ProfileFile {
            default_action: Some("SCMP_ACT_ALLOW".into()),
            ..no_filter.clone()
        };
        assert!(!message(&with_default).contains(hint));
        let changed = ProfileFile {
            changed_after_start: true,
            ..no_filter.clone()
        };
        assert!(!message(&changed).contains(hint));
        assert_eq!(
            mismatch_message("app", ProfileType::RuntimeDefault, SeccompMode::Disabled, None),
            "app is RuntimeDefault but the kernel shows seccomp Disabled"
        );
    }

    #[test]
    fn scans_are_at_least_a_second_apart() {
        assert_eq!(parse_scan_interval("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_scan_interval("1s"), Ok(Duration::from_secs(1)));
        for refused in ["0s", "0", "500ms", "soon"] {
            assert!(parse_scan_interval(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn agreement() {
        use ProfileType::*;
        use SeccompMode::*;
        assert!(agrees(RuntimeDefault, Filter));
        assert!(agrees(Localhost, Filter));
        assert!(
            !agrees(RuntimeDefault, Disabled),
            "declared confined, runs without a filter"
        );
        assert!(!agrees(Localhost, Disabled));
        assert!(agrees(Unconfined, Disabled));
        assert!(
            agrees(Unconfined, Filter),
            "applications may install filters of their own"
        );
        assert!(agrees(RuntimeDefault, Strict));
    }

    fn view(key: &str, resource_version: u64) -> StoredView {
        StoredView {
            key: key.into(),
            resource_version: Some(resource_version),
        }
    }

    #[test]
    fn own_writes_wait_for_the_watch_and_forget_statuses_gone_from_the_node() {
        let mut writes = OwnWrites::default();
        writes.record(&view("s1", 10), Some(12));
        // The watch still shows the status before the write: not written again.
        assert!(writes.not_seen_yet(&view("s1", 10)));
        // It shows the write, or something later: compared as it is.
        assert!(!writes.not_seen_yet(&view("s1", 12)));
        assert!(!writes.not_seen_yet(&view("s1", 15)));
        // The same pod's status deleted and made again: a new UID, nothing held back.
        assert!(!writes.not_seen_yet(&view("s1-remade", 11)));
        // A node running short-lived pods (Jobs): one status each, then the pod is gone.
        for job in 0..500 {
            let key = format!("job-{job}");
            writes.record(&view(&key, 1), Some(2));
            writes.keep_only(&HashSet::from([key, "long-lived".to_string()]));
        }
        assert_eq!(writes.by_status.len(), 1, "only the last Job's status is kept");
    }

    #[test]
    fn the_findings_a_status_holds_are_read_back_without_their_times() {
        let status: StatusWire = serde_json::from_value(json!({
            "metadata": { "name": "web", "uid": "s1", "resourceVersion": "7" },
            "status": {
                "conditions": [
                    { "type": "Confined", "status": "True", "reason": "AllConfined", "message": "",
                      "lastTransitionTime": "2026-12-01T00:00:00Z" },
                    { "type": "RuntimeVerified", "status": "False", "reason": "Mismatch",
                      "message": "side is RuntimeDefault but the kernel shows seccomp Disabled",
                      "lastTransitionTime": "2026-12-01T00:00:00Z" }],
                "containers": [
                    { "name": "app", "kind": "Container", "profile": { "type": "Localhost", "localhostProfile": "a.json" } },
                    { "name": "side", "kind": "Container", "profile": { "type": "RuntimeDefault" },
                      "runtime": { "seccompMode": "Disabled", "filters": 0, "pid": 42,
                                   "observedAt": "2026-12-01T00:00:00Z", "agreesWithEffective": false } }],
                "runtime": {
                    "profileFiles": [{ "name": "app", "path": "a.json", "state": "Missing" }] } }
        }))
        .expect("status");
        let observations = stored_observations(&status).expect("observations");
        let stored = Written::stored(&status, &observations).expect("findings");
        assert_eq!(
            stored.containers,
            vec![Seen {
                name: "side".into(),
                mode: SeccompMode::Disabled,
                filters: Some(0),
                pid: Some(42),
                agrees: false
            }]
        );
        assert_eq!(stored.condition.0, "False");
        let files = status.profile_files();
        assert_eq!(files[0].name, "app");
        // A status the agent has not written to yet holds nothing of it.
        let fresh: StatusWire =
            serde_json::from_value(json!({ "status": { "conditions": [] } })).expect("status");
        assert_eq!(stored_observations(&fresh), None);
        assert_eq!(
            Written::stored(&fresh, &observations),
            None,
            "no RuntimeVerified condition"
        );
        assert!(fresh.profile_files().is_empty());
    }

    #[test]
    fn a_finding_that_did_not_change_keeps_its_time() {
        let observation = |name: &str, mode, pid, at: i64| Observation {
            name: name.into(),
            runtime: RuntimeObservation {
                seccomp_mode: mode,
                filters: Some(1),
                pid: Some(pid),
                observed_at: Time(k8s_openapi::jiff::Timestamp::from_second(at).expect("time")),
                agrees_with_effective: true,
            },
        };
        let stored = [
            observation("app", SeccompMode::Filter, 10, 100),
            observation("side", SeccompMode::Filter, 11, 100),
        ];
        // "side" restarted (a new process), "debug" was added; "app" is as it was.
        let mut now = [
            observation("app", SeccompMode::Filter, 10, 200),
            observation("side", SeccompMode::Filter, 12, 200),
            observation("debug", SeccompMode::Filter, 13, 200),
        ];
        keep_unchanged_times(&mut now, &stored);
        let times: Vec<i64> = now.iter().map(|o| o.runtime.observed_at.0.as_second()).collect();
        assert_eq!(times, [100, 200, 200]);
    }

    #[test]
    fn a_profile_file_is_marked_when_it_is_not_what_a_running_container_started_with() {
        let at = |s: i64, nanos: i32| Timestamp::new(s, nanos).expect("time");
        let present = ProfileFile {
            path: "p.json".into(),
            state: ProfileFileState::Present,
            message: Some("a note on its class".into()),
            ..ProfileFile::default()
        };
        let started = Some(at(1_000, 0));
        // Not running: the file is what the container would start with.
        assert_eq!(
            as_started_with(present.clone(), Some(at(2_000, 0)), None, None),
            present
        );
        // Changed before the start, or within its second (the start is cut to the second).
        assert_eq!(
            as_started_with(present.clone(), Some(at(999, 0)), started, None),
            present
        );
        assert_eq!(
            as_started_with(present.clone(), Some(at(1_000, 900_000_000)), started, None),
            present
        );
        let changed = as_started_with(present.clone(), Some(at(1_001, 5)), started, None);
        assert!(changed.changed_after_start);
        assert_eq!(
            changed.message.as_deref(),
            Some(
                "a note on its class; changed on the node at 1970-01-01T00:16:41Z, after the \
                 container started (1970-01-01T00:16:40Z): the container runs the earlier content \
                 until it restarts"
            )
        );
        // Gone while the container runs: it started with something.
        let missing = ProfileFile {
            path: "p.json".into(),
            state: ProfileFileState::Missing,
            message: Some("no such file on the node".into()),
            ..ProfileFile::default()
        };
        let gone = as_started_with(missing.clone(), None, started, None);
        assert!(gone.changed_after_start);
        assert!(
            gone.message.as_deref().is_some_and(
                |m| m.starts_with("no such file on the node; the container has run with it since")
            ),
            "{gone:?}"
        );
        assert_eq!(
            as_started_with(missing.clone(), None, None, None),
            missing,
            "it never started"
        );
    }

    #[test]
    fn the_content_a_container_started_with_decides_once_known() {
        let at = |s: i64| Timestamp::new(s, 0).expect("time");
        let file = |sha: &str| ProfileFile {
            path: "p.json".into(),
            state: ProfileFileState::Present,
            sha256: Some(sha.into()),
            ..ProfileFile::default()
        };
        let started = at(1_000);
        // Read unchanged since before the start: that content is what runs.
        let known = started_content(None, &file("aaa"), Some(at(900)), started).expect("proved");
        assert_eq!(known.sha256, "aaa");
        assert_eq!(known.container_started.0, started);
        // A change within the start's second or after it proves nothing.
        assert_eq!(
            started_content(None, &file("aaa"), Some(at(1_000)), started),
            None
        );
        assert_eq!(started_content(None, &file("aaa"), None, started), None);
        // Once in the status, it holds for that start whatever the file is now ...
        let later = started_content(Some(&known), &file("bbb"), Some(at(800)), started);
        assert_eq!(later.as_ref(), Some(&known));
        // ... and not for another start.
        let restarted = started_content(Some(&known), &file("bbb"), Some(at(1_500)), at(2_000));
        assert_eq!(restarted.map(|k| k.sha256).as_deref(), Some("bbb"));

        // Written again later with the same content: what runs. With another: not.
        let same = as_started_with(file("aaa"), Some(at(1_500)), Some(started), Some("aaa"));
        assert_eq!(same, file("aaa"));
        let other = as_started_with(file("bbb"), Some(at(1_600)), Some(started), Some("aaa"));
        assert!(other.changed_after_start);
        // Another content behind an old change time (a directory on the path swapped).
        let swapped = as_started_with(file("ccc"), Some(at(800)), Some(started), Some("aaa"));
        assert!(swapped.changed_after_start);
        assert!(
            swapped
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with("not the content the container started with")),
            "{swapped:?}"
        );
        // Not known: times decide, as before.
        assert!(as_started_with(file("aaa"), Some(at(1_500)), Some(started), None).changed_after_start);
    }

    #[test]
    fn the_agreement_message_counts_in_words() {
        assert_eq!(
            agreement_message(1),
            "1 running container matches its effective profile"
        );
        assert_eq!(
            agreement_message(3),
            "3 running containers match their effective profile"
        );
    }

    #[test]
    fn a_container_counts_as_unfound_after_the_grace_of_missing_scans_in_a_row() {
        let start = std::time::Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut unfound = Unfound::default();
        // Missing from the first scan on: unfound once the grace has passed since that scan.
        assert!(!unfound.missing("a", at(0)));
        assert_eq!(unfound.end_scan(0), None);
        assert!(!unfound.missing("a", at(9)));
        assert_eq!(unfound.end_scan(0), None);
        assert!(unfound.missing("a", at(10)));
        assert_eq!(unfound.end_scan(1), Some(1), "warned once");
        assert!(unfound.missing("a", at(20)));
        assert_eq!(unfound.end_scan(1), None, "not again for the same count");
        // Found in one scan (not missed): the grace starts again.
        assert_eq!(unfound.end_scan(0), None);
        assert!(!unfound.missing("a", at(30)));
        assert!(!unfound.missing("b", at(30)));
        assert_eq!(unfound.end_scan(0), None);
        assert!(unfound.missing("a", at(40)) && unfound.missing("b", at(40)));
        assert_eq!(unfound.end_scan(2), Some(2), "a new count is warned about");
    }

    #[test]
    fn the_unfound_message_names_the_containers_and_counts_the_others() {
        assert_eq!(
            unseen_message(&["a".into(), "b".into()], 0),
            "no process of a, b in the agent's proc root: the agent needs the host's /proc (at \
             --proc-root, or hostPID), and cannot see into containers a runtime isolates in a VM \
             (Kata) or a user-space kernel (gVisor)"
        );
        assert!(
            unseen_message(&["a".into()], 2)
                .ends_with("; 2 running containers match their effective profile")
        );
        // The first few, whatever the pod.
        let many: Vec<String> = (0..2_000).map(|i| format!("c{i}")).collect();
        assert!(unseen_message(&many, 0).starts_with("no process of c0, c1, c2, c3, c4 and 1995 more in"));
        let mismatches: Vec<String> = (0..2_000)
            .map(|i| format!("c{i} runs without a filter"))
            .collect();
        assert_eq!(
            status::first_few(mismatches[..2].iter(), "; "),
            "c0 runs without a filter; c1 runs without a filter"
        );
        assert!(
            status::first_few(mismatches.iter(), "; ").ends_with("c4 runs without a filter and 1995 more")
        );
    }

    #[test]
    fn kubelet_configuration_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let on = dir.path().join("on.yaml");
        std::fs::write(
            &on,
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nseccompDefault: true\n",
        )
        .expect("write");
        let absent = dir.path().join("absent.yaml");
        std::fs::write(
            &absent,
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n",
        )
        .expect("write");
        let enabled = |path: &Path| kubelet::from_file(path).map(|found| found.enabled);
        assert_eq!(enabled(&on), Some(true));
        assert_eq!(enabled(&absent), Some(false));
        assert_eq!(enabled(&dir.path().join("missing.yaml")), None);
    }

    #[test]
    fn the_kubelet_setting_reported_is_the_one_the_kubelet_started_with() {
        let start = kubelet::KubeletStart {
            at: Timestamp::from_second(1_800_000_000).expect("time"),
            name: "2027-01-15T08:00:00Z".into(),
        };
        let configuration = |enabled: bool, changed_after: i64| kubelet::KubeletConfiguration {
            setting: Ok(kubelet::KubeletSeccompDefault {
                enabled,
                source: "/etc/kubelet.yaml".into(),
            }),
            last_change: Timestamp::from_second(1_800_000_000 + changed_after).ok(),
        };
        let report = |c: Option<&kubelet::KubeletConfiguration>,
                      start: Option<&kubelet::KubeletStart>,
                      last: Option<&str>,
                      last_started: Option<&str>| {
            let r = reported_kubelet_default(c, start, last, last_started);
            (r.default, r.started)
        };
        let this_start = Some("2027-01-15T08:00:00Z".to_string());
        let s = |v: &str| Some(v.to_string());
        // Unchanged since the start: the files say it.
        assert_eq!(
            report(Some(&configuration(true, -60)), Some(&start), None, None),
            (s("true"), this_start.clone())
        );
        assert_eq!(
            report(
                Some(&configuration(false, -60)),
                Some(&start),
                s("true").as_deref(),
                Some("2027-01-14T00:00:00Z")
            ),
            (s("false"), this_start.clone()),
            "a kubelet restarted since reads its files again"
        );
        // Changed after the start: what was read for this start, else unknown.
        assert_eq!(
            report(
                Some(&configuration(true, 60)),
                Some(&start),
                Some("false"),
                this_start.as_deref()
            ),
            (s("false"), this_start.clone())
        );
        for (last, last_started) in [
            (None, None),
            (Some("false"), Some("2027-01-14T00:00:00Z")),
            (Some("false"), None),
            (Some("unknown"), this_start.as_deref()),
            (Some("yes"), this_start.as_deref()),
        ] {
            assert_eq!(
                report(Some(&configuration(true, 60)), Some(&start), last, last_started),
                (s("unknown"), this_start.clone()),
                "{last:?} for {last_started:?}"
            );
        }
        // No start to compare with: the files. No kubelet found: what was reported stays.
        assert_eq!(
            report(
                Some(&configuration(true, 60)),
                None,
                Some("false"),
                this_start.as_deref()
            ),
            (s("true"), None)
        );
        assert_eq!(
            report(None, None, Some("false"), this_start.as_deref()),
            (s("false"), this_start.clone())
        );
        assert_eq!(report(None, None, None, None), (None, None));
        // A file the kubelet read that cannot be read now: what was read for this start, else
        // unknown; never the kubelet's default of false.
        let unreadable = kubelet::KubeletConfiguration {
            setting: Err("/etc/kubelet.yaml: No such file or directory".into()),
            last_change: None,
        };
        assert_eq!(
            report(
                Some(&unreadable),
                Some(&start),
                Some("true"),
                this_start.as_deref()
            ),
            (s("true"), this_start.clone())
        );
        for (last, last_started) in [(None, None), (Some("true"), Some("2027-01-14T00:00:00Z"))] {
            assert_eq!(
                report(Some(&unreadable), Some(&start), last, last_started),
                (s("unknown"), this_start.clone()),
                "{last:?} for {last_started:?}"
            );
        }
        assert_eq!(
            report(Some(&unreadable), None, Some("true"), this_start.as_deref()),
            (s("unknown"), None)
        );
    }
}
