//! `seccomp-sentinel run`: keeps one SeccompStatus per pod up to date and carries out the
//! policies' actions. Thin glue around pure decisions: watches feed the [`state::State`] (one
//! table with one entry per pod, and the facts around the pods), workers take the pods a change
//! affects from the [`queue::WorkQueue`], ask [`crate::policy::plan::plan`] what to do, and
//! [`execute`] does exactly that. See ARCHITECTURE.md for the data flow and its invariants.

mod agent_daemonset;
pub mod config;
mod execute;
mod overwrites;
mod policy_status;
pub mod queue;
pub mod state;
mod status_crd;
mod watches;

use std::{
    future::Future,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use kube::{Api, Client, runtime::watcher};
use tracing::{debug, info};

pub use config::ControllerConfig;
pub use execute::{LABEL_MANAGER, PodLabels, write_pod_labels};
use state::{PodKey, State};

use crate::client::serves_kind;
use crate::lean::{
    Decoded,
    cluster::{
        NamespaceWire, PolicyWire, ReplicaSetKind, ReplicationControllerKind, SccWire, SeccompProfileWire,
        StatefulSetKind, WorkloadWire,
    },
    node::NodeWire,
    pod::PodWire,
    status::StatusWire,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {}", crate::client::Brief(.0))]
    Kube(#[from] kube::Error),
    #[error("watch of {0} failed before it was ready: {1}")]
    Watch(&'static str, String),
    #[error("--policy-selector {selector:?} is not a label selector the API server accepts: {reason}")]
    PolicySelector { selector: String, reason: String },
}

impl Error {
    /// A bounded label for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(status)) if status.code == 409 => "conflict",
            Error::Kube(kube::Error::Api(status)) if status.code == 404 => "not_found",
            Error::Kube(kube::Error::Api(status)) if status.code == 429 => "throttled",
            Error::Kube(kube::Error::Api(status)) if status.code == 422 => "invalid",
            Error::Kube(kube::Error::Api(status)) if status.code >= 500 => "server",
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "transport",
            Error::Watch(..) => "watch",
            Error::PolicySelector { .. } => "api",
        }
    }

    /// The SeccompStatus CRD is not installed or is being deleted
    /// ([`crate::client::crd_unavailable`]): every pod's pass fails alike until it is back.
    pub fn crd_unavailable(&self) -> bool {
        matches!(self, Error::Kube(e) if crate::client::crd_unavailable(e))
    }

    /// The pod's namespace is being deleted ([`crate::client::namespace_terminating`]): whatever
    /// the pass wanted to create there, the namespace's deletion removes the pod anyway.
    pub fn namespace_terminating(&self) -> bool {
        matches!(self, Error::Kube(e) if crate::client::namespace_terminating(e))
    }
}

/// Counters of what the controller did, for metrics and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub reconciles: AtomicU64,
    /// SeccompStatus writes (one server-side apply each: object, label, spec and status).
    pub status_writes: AtomicU64,
    pub label_writes: AtomicU64,
    pub evictions: AtomicU64,
    pub errors: AtomicU64,
    /// Times the watch of SeccompStatuses was closed for a first sync (and listed again after).
    pub first_sync_watch_pauses: AtomicU64,
    /// Watches that list in pages because the API server refused to stream their initial list.
    pub lists_in_pages: AtomicU64,
    /// Watches the API server ended with 410 (expired), listed again without counting an error.
    pub watches_expired: AtomicU64,
    /// Profile paths whose drift between nodes went to the Event publisher (which adds no Event
    /// when an earlier process recorded it).
    pub drift_reports: AtomicU64,
}

/// Whether something last done at `last` (`None`: never) is due again after `interval`; if so,
/// it is done now.
fn due(last: &Mutex<Option<std::time::Instant>>, interval: std::time::Duration) -> bool {
    let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
    let due = last.is_none_or(|t| t.elapsed() >= interval);
    if due {
        *last = Some(std::time::Instant::now());
    }
    due
}

/// Shared state of the controller: clients, configuration, the state and the work queue.
pub struct Context {
    client: Client,
    /// Evictions go through a client that does not retry a 429 (a PodDisruptionBudget's "not
    /// now"): kube retries those by default, for minutes.
    eviction_client: Client,
    config: ControllerConfig,
    pub metrics: Arc<crate::telemetry::Metrics>,
    state: Mutex<State>,
    queue: queue::WorkQueue<PodKey>,
    writes: DefaultDirectRateLimiter,
    /// Serializes the eviction ledger's writes to the policies.
    ledger_writes: tokio::sync::Mutex<()>,
    events: crate::events::Publisher,
    /// `openshift.io/scc` is written by SCC admission here (decided at start).
    trust_scc: AtomicBool,
    /// Background tasks of a run (watches, writers), stopped with the controller.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    pub stats: Stats,
    /// When a failed pass last warned that the SeccompStatus CRD is unavailable: one warning
    /// stands for every pod's while it lasts.
    crd_unavailable_warned: Mutex<Option<std::time::Instant>>,
    /// When a replaced status last warned ([`Context::overwritten`]): at most once a minute.
    overwrite_warned: Mutex<Option<std::time::Instant>>,
    /// The SeccompStatus CRD is being deleted ([`status_crd`]): no status is written.
    status_crd_terminating: AtomicBool,
    /// When this controller started: its clock, in whole seconds ([`Context::clock`]).
    started: std::time::Instant,
}

impl Context {
    pub fn new(
        client: Client,
        eviction_client: Client,
        config: ControllerConfig,
        metrics: Arc<crate::telemetry::Metrics>,
    ) -> Self {
        let quota = Quota::per_second(config.max_writes_per_second).allow_burst(config.write_burst);
        Context {
            events: crate::events::Publisher::new(
                client.clone(),
                crate::api::CONTROLLER_MANAGER,
                config.instance.clone(),
            ),
            client,
            eviction_client,
            config,
            metrics,
            state: Mutex::default(),
            queue: queue::WorkQueue::default(),
            writes: RateLimiter::direct(quota),
            ledger_writes: tokio::sync::Mutex::new(()),
            trust_scc: AtomicBool::new(false),
            tasks: Mutex::default(),
            stats: Stats::default(),
            crd_unavailable_warned: Mutex::default(),
            overwrite_warned: Mutex::default(),
            status_crd_terminating: AtomicBool::new(false),
            started: std::time::Instant::now(),
        }
    }

    /// Whole seconds since this controller started, from 1 (kept in each pod's entry; 136
    /// years fit).
    fn clock(&self) -> u32 {
        u32::try_from(self.started.elapsed().as_secs())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// Counts one SeccompStatus write (an apply or a delete), for the tests' stats and the metrics.
    fn status_written(&self) {
        self.stats
            .status_writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.metrics.write("status");
    }

    /// Whether a failed pass should warn that the CRD is unavailable: at most once in `interval`.
    fn warn_crd_unavailable(&self, interval: std::time::Duration) -> bool {
        due(&self.crd_unavailable_warned, interval)
    }

    /// Someone else replaced this controller's write of `key`'s SeccompStatus under its field
    /// manager, `in_a_row` times in a row ([`overwrites`]). Counted as an error; a warning at
    /// most once a minute for all pods alike, as a misconfiguration replaces many at once.
    fn overwritten(&self, key: &PodKey, in_a_row: u8) {
        self.metrics.error("overwritten");
        let put_back_in = overwrites::Overwrites::delay(in_a_row);
        if put_back_in.is_some() && due(&self.overwrite_warned, std::time::Duration::from_secs(60)) {
            tracing::warn!(
                pod = %key,
                in_a_row,
                ?put_back_in,
                "another writer keeps replacing SeccompStatuses this operator writes, under its field manager: \
                 is another seccomp-sentinel with other SeccompPolicies (--policy-selector) and a lease of its \
                 own watching the same namespaces? Give each its own --namespaces. Each such status is put back \
                 less and less often, up to every 5 minutes (this warning: at most once a minute)"
            );
        } else {
            tracing::debug!(pod = %key, in_a_row, ?put_back_in, "SeccompStatus replaced by another writer");
        }
    }

    /// The state, locked (never across an await).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// No pod queued and none in a pass (a delayed requeue may be waiting).
    pub fn is_idle(&self) -> bool {
        self.queue.is_idle()
    }

    fn trust_scc(&self) -> bool {
        self.trust_scc.load(Ordering::Acquire)
    }

    /// Spawns a background task that ends when the controller stops.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(handle);
    }

    fn stop_tasks(&self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
    }

    /// What to watch of a namespaced kind: each of `--namespaces`, else the whole cluster. One
    /// watch per namespace, not one of the cluster filtered here: a shard given several
    /// namespaces is then sent their objects only (and needs no cluster-wide role for them).
    fn all_or_namespaces<K>(&self) -> Vec<Api<K>>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        let namespaces = self.config.namespace_list();
        if namespaces.is_empty() {
            vec![Api::all(self.client.clone())]
        } else {
            namespaces
                .into_iter()
                .map(|ns| Api::namespaced(self.client.clone(), ns))
                .collect()
        }
    }
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    eviction_client: Client,
    config: ControllerConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let metrics = Arc::new(crate::telemetry::Metrics::default());
    run_with(
        Arc::new(Context::new(client, eviction_client, config, metrics)),
        shutdown,
    )
    .await
}

/// The API server reads `--policy-selector` (the policies' watch sends it); one it refuses would
/// keep that watch failing for good, so that no policy ever acted, with nothing but a warning
/// now and then. It is asked once at start instead, and a refusal stops the start. Any other
/// failure (the API server not there yet, the CRD not installed) is left to the watch, which
/// retries.
pub async fn check_policy_selector(client: &Client, selector: &str) -> Result<(), Error> {
    let policies = Api::<Decoded<PolicyWire>>::all(client.clone());
    let params = kube::api::ListParams::default().labels(selector).limit(1);
    match policies.list_metadata(&params).await {
        Err(kube::Error::Api(status)) if status.code == 400 => Err(Error::PolicySelector {
            selector: selector.to_string(),
            reason: status.message,
        }),
        _ => Ok(()),
    }
}

/// How often a cluster without SeccompProfiles is asked again.
const SPO_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

fn spawn_seccomp_profiles(ctx: &Arc<Context>, page: watcher::Config) -> tokio::sync::oneshot::Receiver<()> {
    watches::spawn(
        ctx,
        vec![Api::<Decoded<SeccompProfileWire>>::all(ctx.client.clone())],
        page,
        watches::SeccompProfiles::default(),
    )
}

/// [`run`] with a context the caller keeps (to read its [`Stats`]).
pub async fn run_with(
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut workers = Vec::new();
    // Shutdown is honoured at every stage, the initial lists included.
    let started = tokio::select! {
        started = start(ctx.clone(), &mut workers) => started.map(|()| true),
        _ = &mut shutdown => Ok(false),
    };
    if let Ok(true) = started {
        shutdown.await;
    }
    // Workers finish the pass they are in; nothing new starts.
    ctx.queue.close();
    for worker in workers {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), worker).await;
    }
    ctx.stop_tasks();
    started.map(|_| info!("controller stopped"))
}

/// Whether the watch of SeccompStatuses is worth closing during the first sync: when most
/// statuses are still to be written, their watch events would cost the API server more than
/// listing them all once afterwards.
fn first_sync_is_large(to_write: usize, stored: usize) -> bool {
    to_write >= FIRST_SYNC_PAUSE_ABOVE && to_write >= stored
}

/// Below this many statuses to write, the watch's events cost less than a second list.
pub const FIRST_SYNC_PAUSE_ABOVE: usize = 256;

/// Starts the watches and, as their first lists arrive, the workers (their handles go into
/// `workers` as they start, so that a shutdown during the lists still waits for them), then the
/// writers of policy statuses and the agent's DaemonSet.
async fn start(ctx: Arc<Context>, workers: &mut Vec<tokio::task::JoinHandle<()>>) -> Result<(), Error> {
    let client = ctx.client.clone();
    // OpenShift's SCC admission writes `openshift.io/scc`; elsewhere anyone creating a pod can.
    let scc_served =
        crate::client::discover_patiently(&client, "security.openshift.io/v1", "securitycontextconstraints")
            .await;
    let on_openshift = async {
        Ok::<_, std::convert::Infallible>(
            scc_served
                && crate::client::discover_patiently(&client, "config.openshift.io/v1", "clusterversions")
                    .await,
        )
    };
    let Ok(trust) = ctx.config.trust_scc_annotation.decide(on_openshift).await;
    ctx.trust_scc.store(trust, Ordering::Release);
    info!(
        scc_api = scc_served,
        trust_scc_annotation = trust,
        "cluster checked"
    );

    // Initial lists are streamed: objects arrive one by one as watch events served from the API
    // server's cache, so no page of whole Pods is ever decoded at once and etcd is not read (a
    // paged list is, page by page). Where the API server refuses (its WatchList feature off, as
    // Kubernetes 1.33 ships it), the watch lists in pages of --list-page-size instead.
    let page = watcher::Config::default()
        .page_size(ctx.config.list_page_size)
        .streaming_lists();
    status_crd::spawn(&ctx);
    let (close_status_watch, pause_status_watch) = tokio::sync::oneshot::channel();
    let pods_listed = watches::spawn(
        &ctx,
        ctx.all_or_namespaces::<Decoded<PodWire>>(),
        page.clone(),
        watches::Pods {
            ctx: ctx.clone(),
            listed_once: false,
        },
    );
    let mut ready = vec![
        (
            "seccompstatuses",
            watches::spawn_with_pause(
                &ctx,
                ctx.all_or_namespaces::<Decoded<StatusWire>>(),
                page.clone(),
                watches::Statuses::new(ctx.clone()),
                Some(pause_status_watch),
            ),
        ),
        (
            "nodes",
            watches::spawn(
                &ctx,
                vec![Api::<Decoded<NodeWire>>::all(client.clone())],
                page.clone(),
                watches::Nodes { ctx: ctx.clone() },
            ),
        ),
        (
            "namespaces",
            watches::spawn(
                &ctx,
                vec![Api::<Decoded<NamespaceWire>>::all(client.clone())],
                match ctx.config.watched_namespace() {
                    Some(ns) => page.clone().fields(&format!("metadata.name={ns}")),
                    None => page.clone(),
                },
                watches::Namespaces,
            ),
        ),
        (
            "seccomppolicies",
            watches::spawn(
                &ctx,
                vec![Api::<Decoded<PolicyWire>>::all(client.clone())],
                match &ctx.config.policy_selector {
                    Some(selector) => page.clone().labels(selector),
                    None => page.clone(),
                },
                watches::Policies,
            ),
        ),
        (
            "replicasets",
            watches::spawn(
                &ctx,
                ctx.all_or_namespaces::<Decoded<WorkloadWire<ReplicaSetKind>>>(),
                page.clone(),
                watches::Workloads::new(),
            ),
        ),
        (
            "statefulsets",
            watches::spawn(
                &ctx,
                ctx.all_or_namespaces::<Decoded<WorkloadWire<StatefulSetKind>>>(),
                page.clone(),
                watches::Workloads::new(),
            ),
        ),
        (
            "replicationcontrollers",
            watches::spawn(
                &ctx,
                ctx.all_or_namespaces::<Decoded<WorkloadWire<ReplicationControllerKind>>>(),
                page.clone(),
                watches::Workloads::new(),
            ),
        ),
    ];
    if scc_served {
        info!("watching SecurityContextConstraints");
        ready.push((
            "securitycontextconstraints",
            watches::spawn(
                &ctx,
                vec![Api::<Decoded<SccWire>>::all(client.clone())],
                page.clone(),
                watches::Sccs,
            ),
        ));
    }
    // The Security Profiles Operator's SeccompProfiles tell Localhost profiles' strength without
    // node access; it may be installed later, so it is looked for again now and then.
    if serves_kind::<SeccompProfileWire>(&client).await {
        info!("watching SeccompProfiles (Security Profiles Operator)");
        ready.push(("seccompprofiles", spawn_seccomp_profiles(&ctx, page.clone())));
    } else {
        let task_ctx = ctx.clone();
        let page = page.clone();
        ctx.spawn(async move {
            loop {
                tokio::time::sleep(SPO_RECHECK).await;
                if serves_kind::<SeccompProfileWire>(&task_ctx.client).await {
                    info!("SeccompProfiles appeared: watching them");
                    drop(spawn_seccomp_profiles(&task_ctx, page));
                    break;
                }
            }
        });
    }
    // Passes wait until every other watch has listed once, so the first pass of a pod already
    // has every fact and knows its stored status. A pass needs no other pod, so pods are passed
    // as their list streams in: a first sync writes while the longest list is still arriving.
    // Actions wait for the whole list (warm-up).
    for (what, ready) in ready {
        ready
            .await
            .map_err(|_| Error::Watch(what, "watch task ended".into()))?;
        debug!(watch = what, "initial list complete");
    }
    workers.extend((0..ctx.config.workers()).map(|_| tokio::spawn(execute::worker(ctx.clone()))));
    pods_listed
        .await
        .map_err(|_| Error::Watch("pods", "watch task ended".into()))?;
    {
        let mut state = ctx.state();
        state.listed = true;
        let (to_write, stored) = state.statuses_to_write();
        let close = first_sync_is_large(to_write, stored);
        if close {
            ctx.stats.first_sync_watch_pauses.fetch_add(1, Ordering::Relaxed);
            info!(
                to_write,
                stored, "first sync: the watch of SeccompStatuses is closed until it is written"
            );
        }
        let _ = close_status_watch.send(close);
        info!(
            namespaces = ?ctx.config.namespaces,
            pods = state.pods.values().filter(|e| e.has_pod()).count(),
            nodes = state.nodes.len(),
            policies = state.policies.len(),
            "indexes ready; reconciling pods"
        );
        info!("every cache has listed: policy actions enabled");
    }
    ctx.metrics.ready.store(true, Ordering::Release);
    policy_status::spawn(ctx.clone());
    agent_daemonset::spawn(ctx.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_watch_is_closed_only_when_most_statuses_are_still_to_write() {
        assert!(first_sync_is_large(3000, 0), "a fresh install");
        assert!(first_sync_is_large(300, 300));
        assert!(!first_sync_is_large(3000, 3001), "most are stored");
        assert!(!first_sync_is_large(0, 10_000), "a restart with nothing changed");
        assert!(
            !first_sync_is_large(FIRST_SYNC_PAUSE_ABOVE - 1, 0),
            "a small cluster"
        );
    }
}
