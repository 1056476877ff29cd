//! Metrics (Prometheus/OpenMetrics) and the health endpoints of `seccomp-sentinel run`.
//!
//! `/livez` is 200 while the process runs; `/readyz` is 200 once the caches have synced (or, for a
//! standby replica, while it waits for the lease) and 503 once shutdown has begun; `/metrics` is
//! the registry below, prefixed `seccomp_sentinel_`.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::api::{PolicyAction, ProfileSource, ProfileType};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabels {
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub policy: String,
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ContainerLabels {
    pub namespace: String,
    pub profile: String,
    pub source: String,
}

/// A gauge family whose whole set of series is replaced at each refresh. Series are set in place
/// and only the ones that went are removed, never cleared first: a scrape in between would see
/// none of them, and that resets the `for:` of every alert on them.
struct GaugeTable<L> {
    family: Family<L, Gauge>,
    series: std::sync::Mutex<std::collections::HashSet<L>>,
}

impl<L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static>
    GaugeTable<L>
{
    fn new() -> Self {
        GaugeTable {
            family: Family::default(),
            series: Default::default(),
        }
    }

    fn replace_all(&self, values: HashMap<L, i64>) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series.retain(|labels| {
            let keep = values.contains_key(labels);
            if !keep {
                self.family.remove(labels);
            }
            keep
        });
        for (labels, value) in values {
            self.family.get_or_create(&labels).set(value);
            series.insert(labels);
        }
    }
}

/// Namespaces past this many share the label value `_other` (bounded cardinality).
pub const MAX_NAMESPACE_LABELS: usize = 500;

pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter,
    pub reconcile_errors: Family<CategoryLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub writes: Family<WriteLabels, Counter>,
    pub actions: Family<ActionLabels, Counter>,
    pub is_leader: Gauge,
    containers: GaugeTable<ContainerLabels>,
    runtime_mismatches: Gauge,
    runtime_unverified: Gauge,
    halted_workloads: GaugeTable<PolicyLabels>,
    undecodable: Family<ResourceLabels, Counter>,
    /// Policies whose `actions_total` series exist (at zero or more).
    known_action_series: std::sync::Mutex<std::collections::BTreeSet<String>>,
    pub ready: AtomicBool,
    pub shutting_down: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("seccomp_sentinel");
        let metrics = Metrics {
            reconciles: Counter::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
            writes: Family::default(),
            actions: Family::default(),
            is_leader: Gauge::default(),
            containers: GaugeTable::new(),
            runtime_mismatches: Gauge::default(),
            runtime_unverified: Gauge::default(),
            halted_workloads: GaugeTable::new(),
            undecodable: Family::default(),
            known_action_series: Default::default(),
            ready: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            registry: Registry::default(),
        };
        // `seccomp_sentinel_build_info{version="..."} 1`: which version each replica runs, in
        // the middle of an upgrade too.
        registry.register(
            "build",
            "The version of seccomp-sentinel this process runs",
            prometheus_client::metrics::info::Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register("reconcile", "Pod reconciles", metrics.reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Failed reconciles by error category",
            metrics.reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            metrics.reconcile_duration.clone(),
        );
        registry.register(
            "writes",
            "API writes by kind (object, status, label, eviction)",
            metrics.writes.clone(),
        );
        registry.register(
            "actions",
            "Policy actions by policy and action",
            metrics.actions.clone(),
        );
        registry.register(
            "is_leader",
            "1 when this replica holds the lease",
            metrics.is_leader.clone(),
        );
        registry.register(
            "containers",
            "Containers by namespace, effective profile and source",
            metrics.containers.family.clone(),
        );
        registry.register(
            "runtime_mismatches",
            "Pods whose node agent found the kernel disagreeing with the effective profile",
            metrics.runtime_mismatches.clone(),
        );
        registry.register(
            "runtime_unverified",
            "Pods with a running container whose process the node agent cannot find (RuntimeVerified=Unknown)",
            metrics.runtime_unverified.clone(),
        );
        registry.register(
            "halted_workloads",
            "Workloads whose evictions a policy's loop guard stopped (their replacements came back unconfined), by policy",
            metrics.halted_workloads.family.clone(),
        );
        registry.register(
            "undecodable_objects",
            "Watched objects skipped because they could not be read, by resource",
            metrics.undecodable.clone(),
        );
        // Every label value known in advance starts at zero, so that `increase()` and `rate()`
        // see the first event (a series born at 1 has no earlier sample to differ from).
        for category in ERROR_CATEGORIES {
            let _ = metrics.reconcile_errors.get_or_create(&CategoryLabels {
                category: category.into(),
            });
        }
        for kind in WRITE_KINDS {
            let _ = metrics.writes.get_or_create(&WriteLabels { kind: kind.into() });
        }
        for resource in WATCHED_RESOURCES {
            let _ = metrics.undecodable.get_or_create(&ResourceLabels {
                resource: resource.into(),
            });
        }
        Metrics { registry, ..metrics }
    }
}

/// The values of `category` on `reconcile_errors_total` (`controller::Error::category`).
pub const ERROR_CATEGORIES: [&str; 9] = [
    "conflict",
    "not_found",
    "throttled",
    "invalid",
    "server",
    "api",
    "transport",
    "watch",
    // Not a failed request: a status this operator wrote, replaced under its field manager by
    // another writer (`controller::overwrites`).
    "overwritten",
];
/// The values of `kind` on `writes_total`.
pub const WRITE_KINDS: [&str; 6] = [
    "status",
    "label",
    "eviction",
    "ledger",
    "policy_status",
    "daemonset",
];
/// The values of `resource` on `undecodable_objects_total`: every resource the operator watches.
pub const WATCHED_RESOURCES: [&str; 10] = [
    "pods",
    "seccompstatuses",
    "seccomppolicies",
    "namespaces",
    "nodes",
    "replicasets",
    "statefulsets",
    "replicationcontrollers",
    "securitycontextconstraints",
    "seccompprofiles",
];
/// The actions counted per policy on `actions_total`.
const COUNTED_ACTIONS: [PolicyAction; 6] = [
    PolicyAction::WouldEvict,
    PolicyAction::Labeled,
    PolicyAction::EvictionSkipped,
    PolicyAction::EvictionBlocked,
    PolicyAction::EvictionPending,
    PolicyAction::Evicted,
];

/// Whether the `failures_in_a_row`-th failure in a row of something retried is logged as a
/// warning (the others go to debug): the 1st, 2nd, 4th, 8th, ... A write the cluster refuses for
/// good (an object-count quota, an admission policy, a role missing a rule) fails at every retry:
/// a warning each time, for ever, would bury every other line.
pub fn worth_a_warning(failures_in_a_row: u32) -> bool {
    failures_in_a_row.is_power_of_two()
}

fn label<T: serde::Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

impl Metrics {
    pub fn error(&self, category: &str) {
        self.reconcile_errors
            .get_or_create(&CategoryLabels {
                category: category.into(),
            })
            .inc();
    }

    pub fn write(&self, kind: &str) {
        self.writes
            .get_or_create(&WriteLabels { kind: kind.into() })
            .inc();
    }

    pub fn action(&self, policy: &str, action: PolicyAction) {
        self.actions
            .get_or_create(&ActionLabels {
                policy: policy.into(),
                action: label(action),
            })
            .inc();
    }

    /// Keeps an `actions_total` series, at zero until it counts, for every action of every policy
    /// in `policies`, and drops the series of policies no longer there.
    pub fn known_policies<'a>(&self, policies: impl Iterator<Item = &'a str>) {
        let known: std::collections::BTreeSet<&str> = policies.collect();
        let mut known_series = self.known_action_series.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<String> = known_series
            .iter()
            .filter(|p| !known.contains(p.as_str()))
            .cloned()
            .collect();
        for policy in gone {
            for action in COUNTED_ACTIONS {
                self.actions.remove(&ActionLabels {
                    policy: policy.clone(),
                    action: label(action),
                });
            }
            known_series.remove(&policy);
        }
        for policy in known {
            if known_series.insert(policy.to_string()) {
                for action in COUNTED_ACTIONS {
                    let _ = self.actions.get_or_create(&ActionLabels {
                        policy: policy.to_string(),
                        action: label(action),
                    });
                }
            }
        }
    }

    /// An object skipped by a watch because it could not be read.
    pub fn undecodable(&self, resource: &str) {
        self.undecodable
            .get_or_create(&ResourceLabels {
                resource: resource.into(),
            })
            .inc();
    }

    /// Sets the container gauges from every pod's (namespace, effective profile and source of
    /// each container).
    pub fn set_containers<'a>(
        &self,
        pods: impl Iterator<Item = (&'a str, &'a [(ProfileType, ProfileSource)])> + Clone,
    ) {
        let mut namespaces: BTreeMap<&str, usize> = BTreeMap::new();
        for (ns, _) in pods.clone() {
            *namespaces.entry(ns).or_default() += 1;
        }
        // The namespaces with most pods keep their name.
        let mut by_size: Vec<(&str, usize)> = namespaces.into_iter().collect();
        by_size.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let named: std::collections::HashSet<&str> = by_size
            .iter()
            .take(MAX_NAMESPACE_LABELS)
            .map(|(n, _)| *n)
            .collect();
        let mut counts: HashMap<ContainerLabels, i64> = HashMap::new();
        for (ns, containers) in pods {
            let namespace = if named.contains(ns) {
                ns.to_string()
            } else {
                "_other".to_string()
            };
            for (profile, source) in containers {
                let labels = ContainerLabels {
                    namespace: namespace.clone(),
                    profile: label(profile),
                    source: label(source),
                };
                *counts.entry(labels).or_default() += 1;
            }
        }
        self.containers.replace_all(counts);
    }

    /// Sets the counts of pods whose node agent finds the kernel disagreeing with the effective
    /// profile, and of pods with a running container whose process it cannot find.
    pub fn set_runtime_findings(&self, mismatches: usize, unverified: usize) {
        self.runtime_mismatches.set(mismatches as i64);
        self.runtime_unverified.set(unverified as i64);
    }

    /// Sets the halted-workload gauge of each policy with halts; policies without any have no
    /// series.
    pub fn set_halted<'a>(&self, halted: impl Iterator<Item = (&'a str, usize)>) {
        self.halted_workloads.replace_all(
            halted
                .filter(|(_, count)| *count > 0)
                .map(|(policy, count)| {
                    let labels = PolicyLabels {
                        policy: policy.into(),
                    };
                    (labels, i64::try_from(count).unwrap_or(i64::MAX))
                })
                .collect(),
        );
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// A port the operator could not listen on: fatal at start-up (without it there are no probes,
/// or no metrics, and nothing would say why).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address} for {purpose}: {source}")]
pub struct BindError {
    pub address: SocketAddr,
    pub purpose: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// The sockets of the health and metrics endpoints, bound before anything else starts.
pub struct Listeners {
    health: tokio::net::TcpListener,
    metrics: MetricsPort,
}

/// Where /metrics is served.
enum MetricsPort {
    /// On the health port, over plain HTTP.
    Shared,
    Plain(tokio::net::TcpListener),
    Tls(tokio::net::TcpListener, MetricsTlsConfig),
}

/// The TLS set-up of the metrics port, the newest one sent (the cluster's TLS profile can change
/// it while the operator runs); each handshake takes the one current then.
pub type MetricsTlsConfig = tokio::sync::watch::Receiver<Arc<rustls::ServerConfig>>;

impl Listeners {
    /// Binds both. One address for both is one port for plain metrics; HTTPS metrics get their
    /// own (the kubelet probes the health port over HTTP), which port 0 for both gives them.
    pub async fn bind(
        health: SocketAddr,
        metrics: SocketAddr,
        metrics_tls: Option<MetricsTlsConfig>,
    ) -> Result<Listeners, BindError> {
        let listen = |address: SocketAddr, purpose: &'static str| async move {
            bind_listener(address).await.map_err(|source| BindError {
                address,
                purpose,
                source,
            })
        };
        if health == metrics && metrics_tls.is_none() {
            return Ok(Listeners {
                health: listen(health, "health probes and metrics").await?,
                metrics: MetricsPort::Shared,
            });
        }
        let health = listen(health, "health probes (/livez, /readyz)").await?;
        let metrics_listener = listen(metrics, "metrics (/metrics)").await?;
        Ok(Listeners {
            health,
            metrics: match metrics_tls {
                None => MetricsPort::Plain(metrics_listener),
                Some(tls) => MetricsPort::Tls(metrics_listener, tls),
            },
        })
    }

    /// The addresses actually bound (port 0 picks one).
    pub fn addresses(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        let health = self.health.local_addr().ok();
        let metrics = match &self.metrics {
            MetricsPort::Plain(m) | MetricsPort::Tls(m, _) => m.local_addr().ok(),
            MetricsPort::Shared => health,
        };
        (health, metrics)
    }
}

/// Listens on `address`. The IPv6 wildcard (`[::]`, what `:port` means) takes IPv4 connections
/// too, whatever the host's `net.ipv6.bindv6only`, as Go's `:port` does; on a host without IPv6 it
/// is the IPv4 wildcard.
async fn bind_listener(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    if address.ip() != std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED) {
        return tokio::net::TcpListener::bind(address).await;
    }
    let both_families = || -> std::io::Result<std::net::TcpListener> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
        socket.set_only_v6(false)?;
        // As the standard library's listeners: a restart may bind while old connections linger.
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&address.into())?;
        socket.listen(1024)?;
        Ok(socket.into())
    };
    match both_families() {
        Ok(listener) => tokio::net::TcpListener::from_std(listener),
        Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            tokio::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, address.port())).await
        }
        Err(e) => Err(e),
    }
}

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a plain-HTTP request to the HTTPS port gets (instead of TLS alert bytes that clients
/// show as garbage).
const PLAIN_HTTP_TO_HTTPS: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nthis port serves HTTPS: use https://\n";

/// A listener whose connections are TLS. Handshakes run beside the accept loop, so a client that
/// stalls in one holds up no other, and each has `HANDSHAKE_TIMEOUT`.
struct TlsListener {
    handshaken:
        tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    fn new(tcp: tokio::net::TcpListener, tls: MetricsTlsConfig) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (sender, handshaken) = tokio::sync::mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(error = %e, "cannot accept a metrics connection");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.borrow().clone());
                let sender = sender.clone();
                tokio::spawn(async move {
                    let handshake = async {
                        let mut first = [0u8; 1];
                        // Closed before saying anything: nothing to answer.
                        if stream.peek(&mut first).await.ok()? == 0 {
                            return None;
                        }
                        // Every TLS connection opens with a handshake record (content type 22).
                        if first[0] != 0x16 {
                            use tokio::io::AsyncWriteExt;
                            let mut stream = stream;
                            let _ = stream.write_all(PLAIN_HTTP_TO_HTTPS).await;
                            let _ = stream.shutdown().await;
                            return None;
                        }
                        match acceptor.accept(stream).await {
                            Ok(tls) => Some(tls),
                            Err(e) => {
                                // The scraper reports it too ("unknown authority", ...); here it
                                // helps to find which client it was.
                                tracing::debug!(%peer, error = %e, "a TLS handshake on the metrics port failed");
                                None
                            }
                        }
                    };
                    if let Ok(Some(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        let _ = sender.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener {
            handshaken,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(connection) => connection,
            // The accept loop runs until this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Serves `/livez` and `/readyz`, and `/metrics`, on the bound listeners until `shutdown`. With
/// an authorizer, `/metrics` answers only requests whose bearer token may `get /metrics`.
pub async fn serve(
    metrics: Arc<Metrics>,
    listeners: Listeners,
    authorizer: Option<Arc<crate::metrics_auth::MetricsAuthorizer>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let health_routes = {
        let m = metrics.clone();
        Router::new().route("/livez", get(|| async { "ok" })).route(
            "/readyz",
            get(move || {
                let m = m.clone();
                async move {
                    if m.ready.load(Ordering::Acquire) && !m.shutting_down.load(Ordering::Acquire) {
                        (StatusCode::OK, "ready").into_response()
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
                    }
                }
            }),
        )
    };
    let metrics_routes = {
        let m = metrics.clone();
        Router::new().route(
            "/metrics",
            get(move |headers: axum::http::HeaderMap| {
                let m = m.clone();
                let authorizer = authorizer.clone();
                async move {
                    use crate::metrics_auth::Decision;
                    if let Some(authorizer) = authorizer {
                        let header = headers
                            .get(axum::http::header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok());
                        match authorizer.decide(header).await {
                            Ok(Decision::Allowed) => {}
                            Ok(Decision::Unauthenticated) => {
                                return (
                                    StatusCode::UNAUTHORIZED,
                                    [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                                    "a bearer token that may get /metrics is required\n",
                                )
                                    .into_response();
                            }
                            Ok(Decision::Forbidden) => {
                                return (StatusCode::FORBIDDEN, "this token may not get /metrics\n").into_response();
                            }
                            Err(e) => {
                                tracing::warn!(error = %crate::client::Brief(&e), "cannot check a metrics token with the API server");
                                return (StatusCode::SERVICE_UNAVAILABLE, "cannot check the token now\n")
                                    .into_response();
                            }
                        }
                    }
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.encode(),
                    )
                        .into_response()
                }
            }),
        )
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let Listeners {
        health: health_listener,
        metrics,
    } = listeners;
    match metrics {
        MetricsPort::Shared => {
            axum::serve(health_listener, health_routes.merge(metrics_routes))
                .with_graceful_shutdown(stopped(rx))
                .await
        }
        MetricsPort::Plain(metrics_listener) => {
            serve_apart(
                health_listener,
                health_routes,
                metrics_listener,
                metrics_routes,
                rx,
            )
            .await
        }
        MetricsPort::Tls(metrics_listener, tls) => {
            let metrics_listener = TlsListener::new(metrics_listener, tls)?;
            serve_apart(
                health_listener,
                health_routes,
                metrics_listener,
                metrics_routes,
                rx,
            )
            .await
        }
    }
}

/// Resolves once `stop` says the server stops.
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Health and metrics on two listeners, until `stop` says so.
async fn serve_apart<L>(
    health: tokio::net::TcpListener,
    health_routes: Router,
    metrics: L,
    metrics_routes: Router,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let (a, b) = tokio::join!(
        axum::serve(health, health_routes).with_graceful_shutdown(stopped(stop.clone())),
        axum::serve(metrics, metrics_routes).with_graceful_shutdown(stopped(stop)),
    );
    a.and(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halted_workloads_have_a_series_per_policy_while_there_are_any() {
        let m = Metrics::default();
        m.set_halted([("payments", 2), ("shop", 1), ("audit", 0)].into_iter());
        let text = m.encode();
        assert!(
            text.contains(r#"seccomp_sentinel_halted_workloads{policy="payments"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"seccomp_sentinel_halted_workloads{policy="shop"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"policy="audit""#), "{text}");
        m.set_halted([("payments", 3)].into_iter());
        let text = m.encode();
        assert!(
            text.contains(r#"seccomp_sentinel_halted_workloads{policy="payments"} 3"#),
            "{text}"
        );
        assert!(!text.contains(r#"halted_workloads{policy="shop"}"#), "{text}");
        m.set_halted(std::iter::empty());
        assert!(!m.encode().contains("seccomp_sentinel_halted_workloads{"));
    }

    #[test]
    fn a_scrape_while_the_gauges_are_refreshed_always_sees_their_series() {
        let m = Metrics::default();
        let unconfined = [(ProfileType::Unconfined, ProfileSource::None)];
        let refresh = || {
            m.set_containers([("shop", &unconfined[..])].into_iter());
            m.set_halted([("payments", 1)].into_iter());
        };
        refresh();
        let expected = [
            r#"seccomp_sentinel_containers{namespace="shop",profile="Unconfined",source="None"} 1"#,
            r#"seccomp_sentinel_halted_workloads{policy="payments"} 1"#,
        ];
        let missed = std::thread::scope(|scope| {
            let refresher = scope.spawn(|| (0..20_000).for_each(|_| refresh()));
            let mut missed = 0;
            while !refresher.is_finished() {
                let text = m.encode();
                missed += expected.iter().filter(|series| !text.contains(*series)).count();
            }
            missed
        });
        // A scrape without the series resets the `for:` of the alerts on them.
        assert_eq!(missed, 0, "series missing from scrapes");
    }

    #[test]
    fn counters_start_at_zero_for_every_known_label_value() {
        let m = Metrics::default();
        let text = m.encode();
        for category in ERROR_CATEGORIES {
            assert!(
                text.contains(&format!(
                    r#"seccomp_sentinel_reconcile_errors_total{{category="{category}"}} 0"#
                )),
                "{text}"
            );
        }
        assert!(
            text.contains(r#"seccomp_sentinel_writes_total{kind="eviction"} 0"#),
            "{text}"
        );
        assert!(!text.contains("policy=\"audit\""), "{text}");
        m.known_policies(["audit", "evict"].into_iter());
        let text = m.encode();
        assert!(
            text.contains(r#"seccomp_sentinel_actions_total{policy="evict",action="EvictionBlocked"} 0"#),
            "{text}"
        );
        m.action("evict", PolicyAction::Evicted);
        m.known_policies(["evict"].into_iter());
        let text = m.encode();
        assert!(
            !text.contains("policy=\"audit\""),
            "a deleted policy's series go: {text}"
        );
        assert!(
            text.contains(r#"seccomp_sentinel_actions_total{policy="evict",action="Evicted"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn metrics_are_openmetrics_with_bounded_labels() {
        let m = Metrics::default();
        m.reconciles.inc();
        m.error("conflict");
        m.write("status");
        m.undecodable("pods");
        m.action("evict-all", PolicyAction::EvictionBlocked);
        let a = [
            (ProfileType::Unconfined, ProfileSource::None),
            (ProfileType::RuntimeDefault, ProfileSource::PodField),
        ];
        let b = [(ProfileType::Unconfined, ProfileSource::None)];
        let pods = [("shop", &a[..]), ("shop", &b[..])];
        m.set_containers(pods.iter().copied());
        m.set_runtime_findings(1, 0);
        let text = m.encode();
        assert!(
            text.contains(&format!(
                "seccomp_sentinel_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        assert!(text.contains("seccomp_sentinel_reconcile_total 1"), "{text}");
        assert!(
            text.contains(r#"seccomp_sentinel_reconcile_errors_total{category="conflict"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"seccomp_sentinel_actions_total{policy="evict-all",action="EvictionBlocked"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"seccomp_sentinel_undecodable_objects_total{resource="pods"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"seccomp_sentinel_containers{namespace="shop",profile="Unconfined",source="None"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains("seccomp_sentinel_runtime_mismatches 1"), "{text}");
        assert!(text.contains("seccomp_sentinel_runtime_unverified 0"), "{text}");
        m.set_runtime_findings(1, 3);
        assert!(m.encode().contains("seccomp_sentinel_runtime_unverified 3"));
        assert!(text.trim_end().ends_with("# EOF"));
        m.set_containers(pods[1..].iter().copied());
        assert!(m.encode().contains(
            r#"seccomp_sentinel_containers{namespace="shop",profile="Unconfined",source="None"} 1"#
        ));
    }

    #[test]
    fn namespaces_past_the_limit_share_a_label() {
        let m = Metrics::default();
        let containers = [(ProfileType::RuntimeDefault, ProfileSource::PodField)];
        let names: Vec<String> = (0..(MAX_NAMESPACE_LABELS + 10))
            .map(|i| format!("ns{i:04}"))
            .collect();
        m.set_containers(names.iter().map(|n| (n.as_str(), &containers[..])));
        let text = m.encode();
        let series = text
            .lines()
            .filter(|l| l.starts_with("seccomp_sentinel_containers{"))
            .count();
        assert_eq!(series, MAX_NAMESPACE_LABELS + 1);
        assert!(text.contains(r#"namespace="_other""#));
    }
}
