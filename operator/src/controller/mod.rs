//! `seccomp-sentinel run`: keeps one SeccompStatus per pod up to date. Thin glue around the pure
//! [`engine`](crate::engine) and [`desired`] modules: watches feed in-memory indexes, the
//! reconciler compares what it wants with what it last saw, and writes only the difference.

mod agent_daemonset;
pub mod config;
pub mod desired;
mod facts;
pub mod pods;
pub mod policies;

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::{
    StreamExt, TryStreamExt,
    channel::mpsc::{self, UnboundedSender},
};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use k8s_openapi::{
    api::core::v1::Pod,
    apimachinery::pkg::apis::meta::v1::{OwnerReference, Time},
};
use kube::{
    Api, Client, Resource,
    api::{Patch, PatchParams},
    runtime::{
        Controller, WatchStreamExt,
        controller::{self, Action},
        events::{Recorder, Reporter},
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use serde_json::json;
use tracing::{debug, info, warn};

pub use config::ControllerConfig;
use desired::StoredStatus;
use pods::LeanPod;

use crate::{
    api::{CONTROLLER_MANAGER, PROFILE_LABEL, SeccompStatus},
    engine::{self, Facts, NodeFacts, PodView, SccDefaults},
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("watch of {0} failed before it was ready: {1}")]
    Watch(&'static str, String),
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
        }
    }
}

/// Counters of what the controller did, for metrics and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub reconciles: AtomicU64,
    pub object_writes: AtomicU64,
    pub status_writes: AtomicU64,
    pub label_writes: AtomicU64,
    pub evictions: AtomicU64,
    pub errors: AtomicU64,
}

type StatusKey = (String, String);
/// Where watches send the pods a change affects.
type Triggers = UnboundedSender<ObjectRef<LeanPod>>;

/// Shared state of the controller: the client, configuration and the in-memory indexes.
pub struct Context {
    client: Client,
    /// Evictions go through a client that does not retry a 429 (a PodDisruptionBudget's "not
    /// now"): kube retries those by default, for minutes.
    eviction_client: Client,
    recorder: Recorder,
    config: ControllerConfig,
    pub policy: policies::PolicyState,
    pub metrics: Arc<crate::telemetry::Metrics>,
    nodes: RwLock<HashMap<String, NodeFacts>>,
    sccs: RwLock<SccDefaults>,
    statuses: RwLock<HashMap<StatusKey, StoredStatus>>,
    failures: Mutex<HashMap<StatusKey, u32>>,
    writes: DefaultDirectRateLimiter,
    /// Background tasks of a run (watches, writers), stopped with the controller.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    pub stats: Stats,
}

impl Context {
    pub fn new(
        client: Client,
        eviction_client: Client,
        config: ControllerConfig,
        metrics: Arc<crate::telemetry::Metrics>,
    ) -> Self {
        let quota = Quota::per_second(config.max_writes_per_second).allow_burst(config.write_burst);
        let reporter = Reporter {
            controller: CONTROLLER_MANAGER.into(),
            instance: config.instance.clone(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            eviction_client,
            config,
            policy: policies::PolicyState::default(),
            metrics,
            nodes: RwLock::default(),
            sccs: RwLock::default(),
            statuses: RwLock::default(),
            failures: Mutex::default(),
            writes: RateLimiter::direct(quota),
            tasks: Mutex::default(),
            stats: Stats::default(),
        }
    }

    fn evaluate(&self, view: &PodView) -> crate::api::SeccompStatusStatus {
        let nodes = self.nodes.read().unwrap_or_else(|e| e.into_inner());
        let sccs = self.sccs.read().unwrap_or_else(|e| e.into_inner());
        let facts = Facts {
            node: view.node_name.as_ref().and_then(|n| nodes.get(n)),
            unknown_node_seccomp_default: self.config.unknown_node_seccomp_default(),
            sccs: &sccs,
        };
        engine::evaluate(view, &facts)
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

    fn stored(&self, key: &StatusKey) -> Option<StoredStatus> {
        self.statuses
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Records a status this controller has just written.
    fn remember(&self, key: StatusKey, status: StoredStatus) {
        self.statuses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, status);
    }

    fn status_api(&self, namespace: &str) -> Api<SeccompStatus> {
        Api::namespaced(self.client.clone(), namespace)
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

/// [`run`] with a context the caller keeps (to read its [`Stats`]).
pub async fn run_with(
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let client = ctx.client.clone();
    let pods_api: Api<Pod> = match ctx.config.watched_namespace() {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (pod_store, pod_writer) = reflector::store::<LeanPod>();
    let (listed_tx, listed_rx) = tokio::sync::watch::channel(false);
    let watch_ctx = ctx.clone();
    let pod_stream = watcher(pods_api, watcher::Config::default().any_semantic())
        .default_backoff()
        .map_ok(pods::lean_event)
        .try_filter(move |event| {
            let keep = match event {
                watcher::Event::Apply(p) | watcher::Event::Delete(p) | watcher::Event::InitApply(p) => {
                    watch_ctx.config.watches(p.namespace())
                }
                _ => true,
            };
            futures::future::ready(keep)
        })
        .reflect(pod_writer)
        .inspect_ok(move |event| {
            if matches!(event, watcher::Event::InitDone) {
                let _ = listed_tx.send(true);
            }
        })
        .applied_objects()
        .predicate_filter(|p: &LeanPod| Some(p.fingerprint), Default::default());

    // Secondary watches feed the indexes and name the pods whose evaluation they change. Writes
    // wait until all of them have listed once, so the first pass already has every fact.
    let (trigger_tx, trigger_rx) = mpsc::unbounded::<ObjectRef<LeanPod>>();
    let watches = [
        (
            "nodes",
            facts::spawn_node_watch(ctx.clone(), pod_store.clone(), trigger_tx.clone()),
        ),
        (
            "seccompstatuses",
            facts::spawn_status_watch(ctx.clone(), pod_store.clone(), trigger_tx.clone()),
        ),
        (
            "seccomppolicies",
            policies::spawn_policy_watch(ctx.clone(), pod_store.clone(), trigger_tx.clone()),
        ),
        (
            "namespaces",
            policies::spawn_namespace_watch(ctx.clone(), pod_store.clone(), trigger_tx.clone()),
        ),
        (
            "securitycontextconstraints",
            facts::spawn_scc_watch(ctx.clone(), pod_store.clone(), trigger_tx).await,
        ),
    ];
    for (what, ready) in watches {
        ready
            .await
            .map_err(|_| Error::Watch(what, "watch task ended".into()))?;
        debug!(watch = what, "initial list complete");
    }
    info!(
        namespaces = ?ctx.config.namespaces,
        nodes = ctx.nodes.read().map(|n| n.len()).unwrap_or(0),
        sccs = ctx.sccs.read().map(|s| s.len()).unwrap_or(0),
        statuses = ctx.statuses.read().map(|s| s.len()).unwrap_or(0),
        "indexes ready; reconciling pods"
    );

    policies::spawn_warm_up(ctx.clone(), pod_store.clone(), listed_rx);
    policies::spawn_status_writer(ctx.clone(), pod_store.clone());
    agent_daemonset::spawn(ctx.clone());
    let controller_config = controller::Config::default().concurrency(ctx.config.concurrency);
    Controller::for_stream(pod_stream, pod_store)
        .with_config(controller_config)
        .reconcile_on(trigger_rx)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                debug!(error = %e, "reconcile request failed");
            }
        })
        .await;
    ctx.stop_tasks();
    info!("controller stopped");
    Ok(())
}

async fn reconcile(pod: Arc<LeanPod>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.stats.reconciles.fetch_add(1, Ordering::Relaxed);
    ctx.metrics.reconciles.inc();
    let started = std::time::Instant::now();
    let result = reconcile_pod(&pod, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_pod(pod: &LeanPod, ctx: &Arc<Context>) -> Result<Action, Error> {
    let (name, namespace) = (pod.name(), pod.namespace());
    let Some(uid) = pod.uid() else {
        return Ok(Action::await_change());
    };
    let key: StatusKey = (namespace.to_string(), name.to_string());
    let stored = ctx.stored(&key);
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let previous = stored
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();

    // Detection first; then what the policies say and do about it.
    let mut evaluation = ctx.evaluate(&pod.view);
    ctx.metrics.pod(
        namespace,
        name,
        evaluation
            .containers
            .iter()
            .map(|c| (c.profile.type_, c.source))
            .collect(),
        stored.as_ref().is_some_and(|s| s.runtime_mismatch),
    );
    let pass = policies::pass(ctx, pod, &evaluation).await?;
    evaluation.verdict = pass.results.iter().map(|r| r.verdict).max();
    evaluation.action = pass.results.iter().map(|r| r.action).max();
    evaluation.policies = pass.results;
    let desired = desired::with_conditions(evaluation, previous, &now);
    let plan = desired::plan(stored.as_ref(), uid, &desired);
    let next = pass.requeue.map_or_else(Action::await_change, Action::requeue);

    let api = ctx.status_api(namespace);
    let params = PatchParams::apply(CONTROLLER_MANAGER).force();
    let api_version = SeccompStatus::api_version(&());
    let kind = SeccompStatus::kind(&());
    if plan.object {
        let owner = OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: name.into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: None,
        };
        let object = json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {
                "name": name, "namespace": namespace,
                "labels": { PROFILE_LABEL: desired.profile.as_str() },
                "ownerReferences": [owner],
            },
            "spec": { "podUID": uid },
        });
        ctx.writes.until_ready().await;
        api.patch(name, &params, &Patch::Apply(&object)).await?;
        ctx.stats.object_writes.fetch_add(1, Ordering::Relaxed);
        ctx.metrics.write("object");
    }
    if plan.status {
        let body = json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": { "name": name, "namespace": namespace },
            "status": desired,
        });
        ctx.writes.until_ready().await;
        let written = api.patch_status(name, &params, &Patch::Apply(&body)).await?;
        ctx.stats.status_writes.fetch_add(1, Ordering::Relaxed);
        ctx.metrics.write("status");
        ctx.remember(key.clone(), StoredStatus::from_object(&written));
        debug!(pod = %format!("{namespace}/{name}"), profile = desired.profile.as_str(), ?plan, "SeccompStatus written");
    }
    ctx.policy.reconciled(&key);
    ctx.failures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&key);
    Ok(next)
}

fn error_policy(pod: Arc<LeanPod>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.stats.errors.fetch_add(1, Ordering::Relaxed);
    ctx.metrics.error(error.category());
    let key: StatusKey = (pod.namespace().to_string(), pod.name().to_string());
    let attempts = {
        let mut failures = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    // 0.5 s, 1 s, 2 s, ... up to 5 minutes.
    let delay = Duration::from_millis(500)
        .saturating_mul(1u32 << attempts.min(10))
        .min(Duration::from_secs(300));
    warn!(
        pod = %format!("{}/{}", pod.namespace(), pod.name()),
        error = %error, category = error.category(), attempts, retry_in = ?delay,
        "reconcile failed"
    );
    Action::requeue(delay)
}

/// Pods of the store that satisfy `affected`, as reconcile requests.
fn pods_where(pods: &Store<LeanPod>, affected: impl Fn(&LeanPod) -> bool) -> Vec<ObjectRef<LeanPod>> {
    pods.state()
        .iter()
        .filter(|p| affected(p))
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}
