//! The operator's connection to the API server.
//!
//! kube's client speaks HTTP/1.1, so every request in flight holds a TLS connection of its own.
//! A first sync with 30 writes in flight opens about 40, and kube builds its connection pool
//! without a timer, so nothing on the client side closes them once the burst is over: they stayed
//! open until the API server dropped them about 90 s later, with their buffers, and the heap kept
//! most of that memory afterwards (3,000 pods: 4.8 MiB of heap 130 s after the sync, 4.1 MiB with
//! this client; `make bench-peer` measures there). This stack is kube's own pieces (base URI,
//! authentication and its token refresh, impersonation headers, retries of 429/503/504,
//! connect/read/write timeouts, TLS) over a pool that closes a connection idle for
//! [`IDLE_CONNECTION_TIMEOUT`] and reads through a fixed 8 KiB buffer, where hyper's adaptive
//! buffer grew to about 22 KiB per connection on list pages.
//!
//! Configurations this stack does not cover (a proxy, or an exec plugin whose client certificate
//! expires) use kube's default client unchanged.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::{ClientBuilder, ConfigExt, retry::RetryPolicy};
use tower::{BoxError, ServiceBuilder, retry::RetryLayer};

/// A connection left without requests for this long is closed. Between bursts the operator writes
/// at most its rate limit, so a steady flow of writes keeps reusing the same few connections.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// The read buffer of a connection; a larger answer is read through it in pieces.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// The two clients of the operator, over one connection pool.
pub struct ApiClients {
    /// Retries 429/503/504 answers with back-off (kube's policy), unless the config turns it off.
    pub client: kube::Client,
    /// No retries: an eviction refused by a PodDisruptionBudget (429) must be seen at once.
    pub without_retry: kube::Client,
}

/// The part of seccomp-sentinel that makes the requests, the last word of its User-Agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    Controller,
    Agent,
    Audit,
}

impl Component {
    fn as_str(self) -> &'static str {
        match self {
            Component::Controller => "controller",
            Component::Agent => "agent",
            Component::Audit => "audit",
        }
    }
}

/// The User-Agent of `component`'s requests, in the form of Kubernetes' own clients
/// (`kubectl/v1.37.2 (linux/amd64) ...`): `seccomp-sentinel/0.1.0 (linux/amd64) controller`.
pub fn user_agent(component: Component) -> String {
    // Go's names for the architectures, as Kubernetes prints them.
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        other => other,
    };
    format!(
        "seccomp-sentinel/{} ({}/{arch}) {}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        component.as_str()
    )
}

/// Names seccomp-sentinel in every request made with `config`. kube sends no User-Agent, so the
/// API server's audit log showed none for the operator, and it recorded a write that names no
/// field manager under the manager `unknown` (its name comes from the User-Agent's first word).
pub fn identify(config: &mut kube::Config, component: Component) {
    let value = axum::http::HeaderValue::from_str(&user_agent(component))
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("seccomp-sentinel"));
    config
        .headers
        .retain(|(name, _)| name != axum::http::header::USER_AGENT);
    config.headers.push((axum::http::header::USER_AGENT, value));
}

/// A kubeconfig that cannot be used, in a line: kube's own text quotes its path twice
/// (`'"/x"'`).
pub fn kubeconfig_error(e: &kube::config::KubeconfigError) -> String {
    match e {
        kube::config::KubeconfigError::ReadConfig(source, path) => {
            format!("reading {}: {source}", path.display())
        }
        other => other.to_string(),
    }
}

/// The cluster's connection settings as kubectl finds them (KUBECONFIG, ~/.kube/config, or in a
/// pod); `tried` names those places in the error, which gives the kubeconfig's failure: outside a
/// pod that is the one that tells.
pub async fn infer_config(tried: &str) -> Result<kube::Config, String> {
    // kube::Config::infer, with the kubeconfig kept to settle the proxy as kubectl does.
    let from_kubeconfig = async { from_kubeconfig(read_kubeconfig()?, &Default::default()).await };
    let mut config = match from_kubeconfig.await {
        Ok(config) => config,
        // In a pod kube takes no proxy, which stays so.
        Err(why) => kube::Config::incluster().map_err(|_| format!("no cluster found ({tried}): {why}"))?,
    };
    config.apply_debug_overrides();
    Ok(config)
}

/// The kubeconfig as kubectl reads it: the files `KUBECONFIG` lists, merged in order (the first
/// to set a value wins), where a file that does not exist is skipped, as client-go does; without
/// `KUBECONFIG`, `~/.kube/config`. kube refused the whole list for one missing file, so a shell's
/// `KUBECONFIG=~/.kube/config:~/.kube/lab` without the lab's file failed where kubectl worked.
/// None of the files there: the first one's error. An error names its file.
pub fn read_kubeconfig() -> Result<kube::config::Kubeconfig, String> {
    use kube::config::{Kubeconfig, KubeconfigError};
    let listed: Vec<std::path::PathBuf> = std::env::var_os("KUBECONFIG")
        .map(|list| {
            std::env::split_paths(&list)
                .filter(|path| !path.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if listed.is_empty() {
        let default = std::env::home_dir()
            .map(|home| home.join(".kube").join("config"))
            .ok_or_else(|| kubeconfig_error(&KubeconfigError::FindPath))?;
        return read_kubeconfig_file(&default);
    }
    let mut merged: Option<Kubeconfig> = None;
    let mut first_missing = None;
    for path in listed {
        match Kubeconfig::read_from(&path) {
            Ok(config) => {
                merged = Some(match merged {
                    Some(earlier) => earlier
                        .merge(config)
                        .map_err(|e| kubeconfig_file_error(&path, &e))?,
                    None => config,
                })
            }
            Err(KubeconfigError::ReadConfig(source, path))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                first_missing.get_or_insert(kubeconfig_error(&KubeconfigError::ReadConfig(source, path)));
            }
            Err(e) => return Err(kubeconfig_file_error(&path, &e)),
        }
    }
    merged.ok_or_else(|| first_missing.unwrap_or_else(|| kubeconfig_error(&KubeconfigError::FindPath)))
}

/// The kubeconfig file at `path`; an error names it.
fn read_kubeconfig_file(path: &std::path::Path) -> Result<kube::config::Kubeconfig, String> {
    kube::config::Kubeconfig::read_from(path).map_err(|e| kubeconfig_file_error(path, &e))
}

/// `e`, met reading the kubeconfig file at `path`, in a line that names the file: kube's text for
/// a file it cannot parse names none, as in "failed to parse kubeconfig YAML", so in a
/// `KUBECONFIG` list nothing said which file was broken.
fn kubeconfig_file_error(path: &std::path::Path, e: &kube::config::KubeconfigError) -> String {
    match e {
        kube::config::KubeconfigError::ReadConfig(..) => kubeconfig_error(e),
        other => format!("{}: {}", path.display(), kubeconfig_error(other)),
    }
}

/// The settings of the kubeconfig file at `path` (a `--kubeconfig` flag's), as
/// [`from_kubeconfig`]; an error names the file.
pub async fn config_from_file(
    path: &std::path::Path,
    options: &kube::config::KubeConfigOptions,
) -> Result<kube::Config, String> {
    let kubeconfig = read_kubeconfig_file(path)?;
    from_kubeconfig(kubeconfig, options)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The settings of `kubeconfig`'s cluster (of `options.context`, or the current one), with the
/// proxy kubectl would take to it (see [`proxy_for`]).
pub async fn from_kubeconfig(
    kubeconfig: kube::config::Kubeconfig,
    options: &kube::config::KubeConfigOptions,
) -> Result<kube::Config, String> {
    let proxy_url = cluster_proxy_url(&kubeconfig, options.context.as_deref());
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, options)
        .await
        .map_err(|e| kubeconfig_error(&e))?;
    let environment = ProxyEnvironment::current();
    config.proxy_url = proxy_for(&config.cluster_url, proxy_url.as_deref(), &environment)?;
    if let Some(exec) = &mut config.auth_info.exec {
        // A credential plugin runs with the proxy settings the process started with (its own
        // kubeconfig entries, which come later, still win): it may need them to reach its issuer.
        let given = environment.variables().iter().map(|(name, value)| {
            std::collections::HashMap::from([
                ("name".to_string(), name.clone()),
                ("value".to_string(), value.clone()),
            ])
        });
        exec.env = Some(given.chain(exec.env.take().unwrap_or_default()).collect());
    }
    Ok(config)
}

/// The `proxy-url` of the cluster that `context` (or the current context) names.
fn cluster_proxy_url(kubeconfig: &kube::config::Kubeconfig, context: Option<&str>) -> Option<String> {
    let context = context.or(kubeconfig.current_context.as_deref())?;
    let cluster = &kubeconfig
        .contexts
        .iter()
        .find(|named| named.name == context)?
        .context
        .as_ref()?
        .cluster;
    kubeconfig
        .clusters
        .iter()
        .find(|named| &named.name == cluster)?
        .cluster
        .as_ref()?
        .proxy_url
        .clone()
}

/// The proxy settings the binary takes out of its environment (see [`ProxyEnvironment::keep`]).
pub const PROXY_VARIABLES: [&str; 4] = ["HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"];

static KEPT_PROXY_ENVIRONMENT: std::sync::OnceLock<ProxyEnvironment> = std::sync::OnceLock::new();

/// The proxy settings of a process: those of [`PROXY_VARIABLES`] that are set, as they are. Go
/// reads `HTTPS_PROXY` (else `https_proxy`) and `NO_PROXY` (else `no_proxy`); an empty value
/// counts as unset.
#[derive(Clone, Debug, Default)]
pub struct ProxyEnvironment {
    variables: Vec<(String, String)>,
}

impl ProxyEnvironment {
    pub fn new(variables: Vec<(String, String)>) -> Self {
        ProxyEnvironment { variables }
    }

    /// The settings in this process's environment now.
    pub fn of_process() -> Self {
        Self::new(
            PROXY_VARIABLES
                .iter()
                .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
                .collect(),
        )
    }

    /// The variables that are set, by name.
    pub fn variables(&self) -> &[(String, String)] {
        &self.variables
    }

    fn first_set(&self, names: [&str; 2]) -> Option<&str> {
        names.into_iter().find_map(|name| {
            self.variables
                .iter()
                .find(|(set, value)| set == name && !value.trim().is_empty())
                .map(|(_, value)| value.as_str())
        })
    }

    pub fn https_proxy(&self) -> Option<&str> {
        self.first_set(["HTTPS_PROXY", "https_proxy"])
    }

    pub fn no_proxy(&self) -> Option<&str> {
        self.first_set(["NO_PROXY", "no_proxy"])
    }

    /// The settings kept by [`ProxyEnvironment::keep`], or else those of the environment.
    pub fn current() -> Self {
        KEPT_PROXY_ENVIRONMENT
            .get()
            .cloned()
            .unwrap_or_else(Self::of_process)
    }

    /// Keeps these settings for [`from_kubeconfig`] once the process has taken them out of its
    /// environment (the binary does, before any thread starts). kube reads them while it loads a
    /// kubeconfig, takes `HTTPS_PROXY` for any server, and refuses a `NO_PROXY` that Go reads well
    /// (an empty entry, as in `a,,b`, or `$NO_PROXY,b` with `NO_PROXY` unset), so the kubeconfig
    /// could not be used at all.
    pub fn keep(self) {
        let _ = KEPT_PROXY_ENVIRONMENT.set(self);
    }
}

/// The proxy kubectl (client-go) takes to the API server at `server`: the kubeconfig cluster's
/// `proxy-url` whatever the server; otherwise the environment's HTTPS proxy, except to a
/// `localhost` or loopback server and to a server `NO_PROXY` names (Go's rules: `*` for all, an
/// address or CIDR, `domain` for it and its subdomains, `.domain` or `*.domain` for its subdomains,
/// and `:port` for that port only). kube 5 took `HTTPS_PROXY` for every server, and compares
/// `NO_PROXY` with the proxy's own address, so an audit or `make run` from a shell with a proxy
/// set sent a local cluster's requests to that proxy, or failed, where kubectl connects directly.
pub fn proxy_for(
    server: &axum::http::Uri,
    kubeconfig_proxy: Option<&str>,
    environment: &ProxyEnvironment,
) -> Result<Option<axum::http::Uri>, String> {
    if let Some(proxy) = kubeconfig_proxy.filter(|proxy| !proxy.trim().is_empty()) {
        return proxy
            .parse()
            .map(Some)
            .map_err(|e| format!("the cluster's proxy-url {proxy:?}: {e}"));
    }
    let Some(proxy) = environment.https_proxy() else {
        return Ok(None);
    };
    let host = server.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|address| address.is_loopback());
    if host == "localhost" || loopback {
        return Ok(None);
    }
    if let Some(no_proxy) = environment.no_proxy() {
        let port = server
            .port_u16()
            .unwrap_or(if server.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        let matcher = hyper_util::client::proxy::matcher::Matcher::builder()
            .http("http://proxy.invalid")
            .https("http://proxy.invalid")
            .no(go_no_proxy_for(no_proxy, host, port))
            .build();
        if matcher.intercept(server).is_none() {
            return Ok(None);
        }
    }
    // Go reads a value without a scheme as an HTTP proxy's address.
    let proxy = if proxy.contains("://") {
        proxy.to_string()
    } else {
        format!("http://{proxy}")
    };
    proxy
        .parse()
        .map(Some)
        .map_err(|e| format!("HTTPS_PROXY {proxy:?}: {e}"))
}

/// `no_proxy`, as Go reads it for the server `host`:`port`, in the form of hyper's matcher, which
/// knows no ports, no `*.` prefix, and takes `.domain` for the domain too: an entry for another
/// port is left out, an entry's port taken off, `*.domain` read as `.domain`, and `.domain` left out
/// for the server `domain` itself.
fn go_no_proxy_for(no_proxy: &str, host: &str, port: u16) -> String {
    let mut entries = Vec::new();
    for entry in no_proxy
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
    {
        let entry = entry
            .strip_prefix('*')
            .filter(|rest| rest.starts_with('.'))
            .unwrap_or(entry);
        // A port follows a name, an IPv4 address or a bracketed IPv6 address; a bare IPv6
        // address or network has colons of its own.
        let with_port = entry
            .rsplit_once(':')
            .filter(|(host, _)| !host.contains(':') || host.ends_with(']'))
            .and_then(|(host, entry_port)| Some((host, entry_port.parse::<u16>().ok()?)));
        let entry = match with_port {
            Some((entry_host, entry_port)) if entry_port == port => {
                entry_host.trim_start_matches('[').trim_end_matches(']')
            }
            Some(_) => continue,
            None => entry,
        };
        if entry
            .strip_prefix('.')
            .is_none_or(|domain| !domain.eq_ignore_ascii_case(host))
        {
            entries.push(entry);
        }
    }
    entries.join(",")
}

/// Builds the clients of `component` for `config`.
pub fn connect(mut config: kube::Config, component: Component) -> Result<ApiClients, kube::Error> {
    identify(&mut config, component);
    if !pool_fits(&config) {
        let mut without_retry = config.clone();
        without_retry.default_retry = false;
        return Ok(ApiClients {
            client: kube::Client::try_from(config)?,
            without_retry: kube::Client::try_from(without_retry)?,
        });
    }

    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    let mut tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config.rustls_client_config()?)
        .https_or_http();
    if let Some(name) = &config.tls_server_name {
        let name = rustls_pki_types::ServerName::try_from(name.clone())
            .map_err(|e| kube::Error::RustlsTls(kube::client::RustlsTlsError::InvalidServerName(e)))?;
        tls = tls.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
    }
    let mut connector = hyper_timeout::TimeoutConnector::new(tls.enable_http1().wrap_connector(tcp));
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);

    let http: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Builder::new(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_CONNECTION_TIMEOUT)
            .http1_read_buf_exact_size(READ_BUFFER_BYTES)
            .build(connector);

    let stack = |retry: bool| -> Result<kube::Client, kube::Error> {
        let service = ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .option_layer(retry.then(|| RetryLayer::new(RetryPolicy::server_retry())))
            .option_layer(config.auth_layer()?)
            .layer(config.extra_headers_layer()?)
            .map_err(BoxError::from)
            .service(http.clone());
        Ok(ClientBuilder::new(service, config.default_namespace.clone()).build())
    };
    Ok(ApiClients {
        client: stack(config.default_retry)?,
        without_retry: stack(false)?,
    })
}

/// Whether this stack serves `config` as well as kube's default one: kube alone handles proxies,
/// and the expiry of client certificates that exec plugins hand out.
fn pool_fits(config: &kube::Config) -> bool {
    config.proxy_url.is_none() && config.auth_info.exec.is_none()
}

/// Server-side apply as `manager`, taking over fields another manager set. Every body the
/// operator applies is built from its own types, so it holds no field the schema lacks:
/// `fieldValidation=Ignore` spares the API server a second, strict parse of each body (YAML,
/// about 6 % of its CPU per status write in a first sync) made only to return warnings that
/// nothing here reads.
pub fn apply_as(manager: &str) -> kube::api::PatchParams {
    kube::api::PatchParams::apply(manager).force().validation_ignore()
}

/// Server-side apply as `manager` that a field another manager set to another value refuses
/// (409 Conflict, naming that manager) instead of taking over.
pub fn apply_unforced(manager: &str) -> kube::api::PatchParams {
    kube::api::PatchParams::apply(manager).validation_ignore()
}

/// A kube error in one short line: an API server's refusal as its code, reason and message. kube's
/// own text appends the whole `Status` in its Debug form (over a kilobyte for one 422), which
/// buried the one sentence that matters in every log line and status message.
pub struct Brief<'a>(pub &'a kube::Error);

impl std::fmt::Display for Brief<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            kube::Error::Api(status) => write_status(f, status),
            other => {
                other.fmt(f)?;
                // hyper's text stops at "client error (Connect)"; why is further down the chain
                // ("Connection refused (os error 111)", a certificate the client rejects).
                let text = other.to_string();
                match root_cause(other) {
                    Some(cause) if !text.contains(&cause) => write!(f, ": {cause}"),
                    _ => Ok(()),
                }
            }
        }
    }
}

/// The text of the innermost source of `error`, if it has one.
fn root_cause(error: &dyn std::error::Error) -> Option<String> {
    let mut cause = error.source()?;
    while let Some(next) = cause.source() {
        cause = next;
    }
    Some(cause.to_string())
}

/// [`Brief`] for the errors of a watch.
pub struct BriefWatch<'a>(pub &'a kube::runtime::watcher::Error);

impl std::fmt::Display for BriefWatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use kube::runtime::watcher::Error as WatchError;
        match self.0 {
            WatchError::InitialListFailed(e) => write!(f, "initial list failed: {}", Brief(e)),
            WatchError::WatchStartFailed(e) => write!(f, "watch could not start: {}", Brief(e)),
            WatchError::WatchFailed(e) => write!(f, "watch failed: {}", Brief(e)),
            WatchError::WatchError(status) => {
                f.write_str("watch ended by the API server: ")?;
                write_status(f, status)
            }
            other => other.fmt(f),
        }
    }
}

/// The waits between failed attempts, of watches and of every request the operator and the agent
/// make again: from `first`, doubling up to `limit`, each with up to half of it taken off at
/// random (so that many watches, or the agents of many nodes, do not come back in step), and
/// starting over once two minutes have passed without a failure. As a watch's back-off it differs
/// from kube's default, which starts over at every event that is not an error: a watch that lists
/// in pages (the node agent's; the operator's where the API server does not stream lists) emits
/// one at the start of each attempt, so against an API server that was away each such watch tried
/// again about every second for as long as it was away.
pub struct RetryDelays {
    first: Duration,
    limit: Duration,
    next: Duration,
    last_failure: Option<std::time::Instant>,
}

impl RetryDelays {
    /// Attempts this far apart start again from `first`.
    const QUIET: Duration = Duration::from_secs(120);

    pub fn new(first: Duration, limit: Duration) -> Self {
        RetryDelays {
            first,
            limit,
            next: first,
            last_failure: None,
        }
    }

    /// The back-off of every watch: from 0.8 s up to 30 s.
    pub fn for_watches() -> Self {
        Self::new(Duration::from_millis(800), Duration::from_secs(30))
    }

    /// How long to wait after a failure now.
    pub fn after_failure(&mut self) -> Duration {
        let now = std::time::Instant::now();
        if self
            .last_failure
            .is_some_and(|last| now.duration_since(last) >= Self::QUIET)
        {
            self.next = self.first;
        }
        self.last_failure = Some(now);
        let delay = self.next;
        self.next = (self.next * 2).min(self.limit);
        delay - delay.mul_f64(random_fraction() / 2.0)
    }
}

impl Iterator for RetryDelays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.after_failure())
    }
}

impl kube::runtime::utils::Backoff for RetryDelays {
    /// Not on every event: see the type's documentation.
    fn reset(&mut self) {}
}

/// A number in [0, 1) that differs from call to call and process to process (the standard
/// library's randomly keyed hasher: no random number crate for the one use).
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    // 53 bits make an f64 in [0, 1) exactly.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A watch the API server ended with 410 Gone/Expired ("too old resource version": etcd
/// compacted, or the resource's watch cache started again, as when a CRD's schema changes). The
/// watcher lists again by design: worth an info line, not a warning.
pub fn watch_expired(error: &kube::runtime::watcher::Error) -> bool {
    matches!(error, kube::runtime::watcher::Error::WatchError(status) if status.code == 410)
}

/// A watch its client may not make (403 on its list or watch): no retry will change that.
pub fn watch_forbidden(error: &kube::runtime::watcher::Error) -> bool {
    use kube::runtime::watcher::Error as WatchError;
    matches!(
        error,
        WatchError::InitialListFailed(kube::Error::Api(status))
            | WatchError::WatchStartFailed(kube::Error::Api(status))
            | WatchError::WatchFailed(kube::Error::Api(status))
            if status.code == 403
    )
}

/// The object `name` of `api` as a watch of it alone sees it: `Some` when it is listed or changes,
/// `None` when it is deleted or a list (at start, or again after an expired watch) finds none.
/// Errors pass through; the stream goes on after them with the watches' back-off.
pub fn watch_one<K>(
    api: kube::Api<K>,
    name: &str,
) -> impl futures::Stream<Item = Result<Option<K>, kube::runtime::watcher::Error>> + Send
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    // Whether the list under way has shown the object (one deleted while the watch was down).
    let mut listed = false;
    watcher(api, config)
        .backoff(RetryDelays::for_watches())
        .filter_map(move |event| {
            let seen = match event {
                Ok(watcher::Event::Init) => {
                    listed = false;
                    None
                }
                Ok(watcher::Event::InitApply(object)) => {
                    listed = true;
                    Some(Ok(Some(object)))
                }
                Ok(watcher::Event::InitDone) => (!listed).then_some(Ok(None)),
                Ok(watcher::Event::Apply(object)) => Some(Ok(Some(object))),
                Ok(watcher::Event::Delete(_)) => Some(Ok(None)),
                Err(error) => Some(Err(error)),
            };
            std::future::ready(seen)
        })
}

/// The resource's CRD is not installed, or is being deleted: the API server has no such resource
/// (its 404 then is a plain-text "page not found", not a `Status`; kube makes one up, with the
/// reason "Failed to parse error data"), or refuses to create any while the CRD terminates.
pub fn crd_unavailable(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if is_not_served(status)
        || (status.code == 403 && status.message.contains("while custom resource definition is terminating")))
}

/// The namespace is being deleted: the API server creates nothing more in it (a create, an
/// eviction, an Event), and says so in a cause of its 403 rather than only in the message.
pub fn namespace_terminating(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 403
        && status.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")))
}

/// A patch whose body names a UID met another object of the name: the UID is immutable, so the
/// API server answers 422 with a cause on `metadata.uid`. (With no object of the name, a patch is
/// a 404.)
pub fn uid_mismatch(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 422
        && status.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.field == "metadata.uid")))
}

/// The API server could not be reached, or could not answer now: no connection, a timeout, a
/// server error (5xx) or throttling (429). Anything else is an answer.
pub fn unreachable(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        _ => true,
    }
}

/// A refusal the API server will give again (an admission policy or webhook that denies, RBAC, a
/// request it finds invalid): a 4xx other than not found, conflict, gone, timeout, throttling or
/// an expired token. Its message, cut to a few hundred characters.
pub fn refusal(error: &kube::Error) -> Option<String> {
    const PASSING: [u16; 6] = [401, 404, 408, 409, 410, 429];
    const LIMIT: usize = 500;
    let kube::Error::Api(status) = error else {
        return None;
    };
    if !(400..500).contains(&status.code) || PASSING.contains(&status.code) {
        return None;
    }
    let text = if status.message.is_empty() {
        &status.reason
    } else {
        &status.message
    };
    Some(crate::status::cut(text, LIMIT))
}

fn is_not_served(status: &kube::core::Status) -> bool {
    status.code == 404 && status.reason == "Failed to parse error data"
}

fn write_status(f: &mut std::fmt::Formatter<'_>, status: &kube::core::Status) -> std::fmt::Result {
    if is_not_served(status) {
        return f.write_str("404: the API server does not serve this resource (is its CRD installed?)");
    }
    write!(f, "{}", status.code)?;
    if !status.reason.is_empty() {
        write!(f, " {}", status.reason)?;
    }
    if !status.message.is_empty() {
        write!(f, ": {}", status.message)?;
    }
    Ok(())
}

/// Whether the API server serves the resource of watched kind `K` (false when discovery fails).
pub async fn serves_kind<K: crate::lean::WatchedKind>(client: &kube::Client) -> bool {
    discover_kind::<K>(client).await.unwrap_or(false)
}

/// [`discover`] for watched kind `K`.
pub async fn discover_kind<K: crate::lean::WatchedKind>(client: &kube::Client) -> Result<bool, kube::Error> {
    let group_version = if K::GROUP.is_empty() {
        K::VERSION.to_string()
    } else {
        format!("{}/{}", K::GROUP, K::VERSION)
    };
    discover(client, &group_version, K::PLURAL).await
}

/// Whether the API server serves `plural` in `group_version`, as it answers: `Ok(false)` for a
/// group version it does not serve (404) or one without that resource; an error when it could
/// not be asked (unreachable, starting, overloaded).
pub async fn discover(client: &kube::Client, group_version: &str, plural: &str) -> Result<bool, kube::Error> {
    match client.list_api_group_resources(group_version).await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == plural)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// [`discover`], asked again until the API server answers. What the operator decides from it
/// holds for the life of the process (whether it runs on OpenShift), so an API server that is away
/// when the operator starts (a control-plane upgrade restarting both) must not pass for one that
/// lacks the resource. A refusal (401, 403: discovery is normally open to every user) is taken
/// for "not served", with a warning.
pub async fn discover_patiently(client: &kube::Client, group_version: &str, plural: &str) -> bool {
    const WARNING_EVERY: Duration = Duration::from_secs(30);
    let mut delays = RetryDelays::new(Duration::from_secs(1), Duration::from_secs(30));
    let mut last_warning: Option<std::time::Instant> = None;
    loop {
        match discover(client, group_version, plural).await {
            Ok(served) => {
                if last_warning.is_some() {
                    tracing::info!(
                        group_version,
                        resource = plural,
                        served,
                        "the API server answered"
                    );
                }
                return served;
            }
            Err(e) if !unreachable(&e) => {
                tracing::warn!(
                    group_version,
                    resource = plural,
                    error = %Brief(&e),
                    "discovery refused: taken as not served"
                );
                return false;
            }
            Err(e) => {
                if last_warning.is_none_or(|t| t.elapsed() >= WARNING_EVERY) {
                    tracing::warn!(
                        group_version,
                        resource = plural,
                        error = %Brief(&e),
                        "cannot ask the API server whether it serves this resource: asking again"
                    );
                    last_warning = Some(std::time::Instant::now());
                }
                tokio::time::sleep(delays.after_failure()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_watch_is_told_from_other_watch_errors() {
        use kube::runtime::watcher::Error as WatchError;
        let ended = |code: u16| {
            WatchError::WatchError(
                kube::core::Status {
                    code,
                    message: "too old resource version: 484 (486)".into(),
                    ..kube::core::Status::default()
                }
                .into(),
            )
        };
        assert!(watch_expired(&ended(410)));
        assert!(!watch_expired(&ended(500)));
        assert!(!watch_expired(&WatchError::NoResourceVersion));
    }

    #[test]
    fn a_forbidden_watch_is_told_from_other_watch_errors() {
        use kube::runtime::watcher::Error as WatchError;
        let api = |code: u16| {
            kube::Error::Api(Box::new(
                kube::core::Status::failure("customresourcedefinitions is forbidden", "Forbidden")
                    .with_code(code),
            ))
        };
        assert!(watch_forbidden(&WatchError::InitialListFailed(api(403))));
        assert!(watch_forbidden(&WatchError::WatchStartFailed(api(403))));
        assert!(!watch_forbidden(&WatchError::InitialListFailed(api(404))));
        assert!(!watch_forbidden(&WatchError::WatchStartFailed(api(500))));
        assert!(!watch_forbidden(&WatchError::NoResourceVersion));
    }

    #[test]
    fn refusals_are_told_from_what_passes() {
        let error = |code: u16, message: String| {
            kube::Error::Api(
                kube::core::Status {
                    code,
                    message,
                    ..kube::core::Status::default()
                }
                .into(),
            )
        };
        assert_eq!(refusal(&error(403, "denied".into())).as_deref(), Some("denied"));
        assert_eq!(refusal(&error(422, "invalid".into())).as_deref(), Some("invalid"));
        for passing in [401, 404, 409, 410, 429, 500, 503] {
            assert_eq!(refusal(&error(passing, "x".into())), None, "{passing}");
        }
        let long = refusal(&error(400, "w".repeat(2_000))).unwrap_or_default();
        assert_eq!(long.chars().count(), 501, "cut, with an ellipsis");
    }

    fn config(url: &str) -> kube::Config {
        kube::Config::new(url.parse().expect("a valid URL"))
    }

    #[test]
    fn applies_take_over_and_skip_the_strict_parse() {
        let params = apply_as("some-manager");
        assert_eq!(params.field_manager.as_deref(), Some("some-manager"));
        assert!(params.force);
        assert!(matches!(
            params.field_validation,
            Some(kube::api::ValidationDirective::Ignore)
        ));
    }

    fn proxy(
        server: &str,
        kubeconfig_proxy: Option<&str>,
        https_proxy: &str,
        no_proxy: &str,
    ) -> Option<String> {
        let set =
            |name: &str, value: &str| (!value.is_empty()).then(|| (name.to_string(), value.to_string()));
        let environment = ProxyEnvironment::new(
            [set("HTTPS_PROXY", https_proxy), set("NO_PROXY", no_proxy)]
                .into_iter()
                .flatten()
                .collect(),
        );
        proxy_for(
            &server.parse().expect("a server URL"),
            kubeconfig_proxy,
            &environment,
        )
        .expect("a proxy decided")
        .map(|uri| uri.to_string())
    }

    /// The proxy kubectl would take: Go's ProxyFromEnvironment for HTTPS_PROXY and NO_PROXY
    /// (golang.org/x/net/http/httpproxy), the kubeconfig's proxy-url whatever the server.
    #[test]
    fn the_proxy_is_the_one_kubectl_takes() {
        const PROXY: &str = "http://10.0.0.5:3128";
        const TAKEN: Option<&str> = Some("http://10.0.0.5:3128/");
        let remote = "https://api.example.com:6443";
        assert_eq!(proxy(remote, None, "", ""), None);
        assert_eq!(proxy(remote, None, PROXY, "").as_deref(), TAKEN);
        // A loopback or localhost server: never through HTTPS_PROXY.
        for local in [
            "https://127.0.0.1:6443",
            "https://127.3.4.5",
            "https://[::1]:6443",
            "https://localhost:6443",
        ] {
            assert_eq!(proxy(local, None, PROXY, ""), None, "{local}");
        }
        // The kubeconfig's proxy-url: whatever the server and NO_PROXY.
        let explicit = Some("socks5://127.0.0.1:1080");
        assert_eq!(
            proxy("https://127.0.0.1:6443", explicit, PROXY, "*").as_deref(),
            Some("socks5://127.0.0.1:1080/")
        );
        assert_eq!(
            proxy(remote, Some(""), PROXY, "").as_deref(),
            TAKEN,
            "empty counts as unset"
        );
        // NO_PROXY names the server, in Go's forms.
        for excluded in [
            "*",
            "example.com",
            ".example.com",
            "*.example.com",
            "API.EXAMPLE.COM",
            "other.org, api.example.com",
            "api.example.com:6443",
            ",,api.example.com,",
        ] {
            assert_eq!(proxy(remote, None, PROXY, excluded), None, "NO_PROXY={excluded}");
        }
        assert_eq!(
            proxy("https://example.com", None, PROXY, ".example.com,*.example.com").as_deref(),
            TAKEN,
            "a domain's subdomains only"
        );
        for kept in [
            "api.example.com:443",
            "ample.com",
            "other.example.com",
            "10.0.0.0/8",
            "<local>",
            ",",
        ] {
            assert_eq!(
                proxy(remote, None, PROXY, kept).as_deref(),
                TAKEN,
                "NO_PROXY={kept}"
            );
        }
        // Addresses and networks; kube compared NO_PROXY with the proxy's address, and so went
        // straight to a remote server when the proxy's own network was listed.
        let by_address = "https://10.1.2.3:6443";
        for excluded in ["10.1.2.3", "10.0.0.0/8", "10.1.2.3:6443"] {
            assert_eq!(
                proxy(by_address, None, PROXY, excluded),
                None,
                "NO_PROXY={excluded}"
            );
        }
        assert_eq!(
            proxy(by_address, None, PROXY, "10.1.2.4,192.168.0.0/16").as_deref(),
            TAKEN
        );
        assert_eq!(
            proxy("https://[fd00::7]:6443", None, PROXY, "fd00::/8"),
            None,
            "an IPv6 network"
        );
        assert_eq!(
            proxy("https://[fd00::7]:6443", None, PROXY, "[fd00::7]:6443"),
            None
        );
        // A proxy without a scheme is an HTTP proxy, as Go reads it.
        assert_eq!(
            proxy(remote, None, "proxy.corp:3128", "").as_deref(),
            Some("http://proxy.corp:3128/")
        );
        // HTTPS_PROXY before https_proxy, an empty one skipped.
        let environment = ProxyEnvironment::new(vec![
            ("HTTPS_PROXY".into(), "".into()),
            ("https_proxy".into(), "http://lower:1".into()),
        ]);
        assert_eq!(environment.https_proxy(), Some("http://lower:1"));
    }

    #[test]
    fn proxies_and_exec_plugins_keep_kube_default_client() {
        assert!(pool_fits(&config("https://127.0.0.1:6443")));
        let mut proxied = config("https://127.0.0.1:6443");
        proxied.proxy_url = Some("http://127.0.0.1:3128".parse().expect("a valid URL"));
        assert!(!pool_fits(&proxied));
        let mut exec = config("https://127.0.0.1:6443");
        exec.auth_info.exec = Some(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "credential-helper",
            }))
            .expect("an exec config"),
        );
        assert!(!pool_fits(&exec));
    }

    #[test]
    fn api_errors_are_told_in_one_short_line() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure",
            "code": 422,
            "reason": "Invalid",
            "message": "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
            "details": {"group": "meta.k8s.io", "kind": "ListOptions",
                        "causes": [{"reason": "FieldValueForbidden", "field": "sendInitialEvents"}]},
        }))
        .expect("a Status");
        let error = kube::Error::Api(Box::new(status));
        let brief = Brief(&error).to_string();
        assert_eq!(
            brief,
            "422 Invalid: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"
        );
        assert!(
            error.to_string().len() > 2 * brief.len(),
            "kube's own text: {error}"
        );
        let watch = kube::runtime::watcher::Error::WatchStartFailed(error);
        assert_eq!(
            BriefWatch(&watch).to_string(),
            format!("watch could not start: {brief}")
        );
        let other = kube::runtime::watcher::Error::NoResourceVersion;
        assert_eq!(BriefWatch(&other).to_string(), other.to_string());
    }

    #[test]
    fn a_resource_the_api_server_does_not_serve_is_told_so() {
        // What kube makes of the plain-text answer for a path no API serves (a CRD not installed).
        let status =
            kube::core::Status::failure("404 page not found", "Failed to parse error data").with_code(404);
        let error = kube::Error::Api(Box::new(status));
        assert!(crd_unavailable(&error));
        assert_eq!(
            Brief(&error).to_string(),
            "404: the API server does not serve this resource (is its CRD installed?)"
        );
        // An object that is not there is another 404.
        let missing = kube::core::Status::failure("pods \"web\" not found", "NotFound").with_code(404);
        let error = kube::Error::Api(Box::new(missing));
        assert!(!crd_unavailable(&error));
        assert_eq!(Brief(&error).to_string(), "404 NotFound: pods \"web\" not found");
        // While the CRD is deleted, creating is refused first.
        let terminating = kube::core::Status::failure(
            "seccompstatuses.seccomp.sentinel.dev \"p\" is forbidden: create not allowed while custom resource definition is terminating",
            "Forbidden",
        )
        .with_code(403);
        assert!(crd_unavailable(&kube::Error::Api(Box::new(terminating))));
        let forbidden =
            kube::core::Status::failure("pods is forbidden: User cannot list", "Forbidden").with_code(403);
        assert!(!crd_unavailable(&kube::Error::Api(Box::new(forbidden))));
    }

    #[test]
    fn a_create_refused_in_a_namespace_being_deleted_is_told_from_other_refusals() {
        // The body kube-apiserver 1.37 answers a create in a terminating namespace with.
        let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
            "message":"seccompstatuses.seccomp.sentinel.dev \"p\" is forbidden: unable to create new content in namespace ns because it is being terminated",
            "reason":"Forbidden","details":{"name":"p","group":"seccomp.sentinel.dev","kind":"seccompstatuses",
            "causes":[{"reason":"NamespaceTerminating","message":"namespace ns is being terminated","field":"metadata.namespace"}]},"code":403}"#;
        let status: kube::core::Status = serde_json::from_str(body).expect("a Status");
        assert!(namespace_terminating(&kube::Error::Api(Box::new(status.clone()))));
        // The same words without the cause (a webhook's message) are another refusal.
        let without_cause = kube::core::Status {
            details: None,
            ..status.clone()
        };
        assert!(!namespace_terminating(&kube::Error::Api(Box::new(without_cause))));
        let not_forbidden = kube::core::Status { code: 409, ..status };
        assert!(!namespace_terminating(&kube::Error::Api(Box::new(not_forbidden))));
        let forbidden =
            kube::core::Status::failure("pods is forbidden: User cannot list", "Forbidden").with_code(403);
        assert!(!namespace_terminating(&kube::Error::Api(Box::new(forbidden))));
    }

    #[test]
    fn every_request_names_the_part_of_seccomp_sentinel_that_sends_it() {
        let mut config = kube::Config::new("https://127.0.0.1:6443".parse().expect("url"));
        config.headers.push((
            axum::http::header::USER_AGENT,
            axum::http::HeaderValue::from_static("other/1"),
        ));
        identify(&mut config, Component::Agent);
        let agents: Vec<&str> = config
            .headers
            .iter()
            .filter(|(name, _)| name == axum::http::header::USER_AGENT)
            .filter_map(|(_, value)| value.to_str().ok())
            .collect();
        assert_eq!(agents, [user_agent(Component::Agent).as_str()]);
        // The API server names a write without a field manager after the first word.
        let agent = user_agent(Component::Agent);
        assert_eq!(agent.split('/').next(), Some("seccomp-sentinel"));
        assert!(agent.contains(env!("CARGO_PKG_VERSION")), "{agent}");
        assert!(agent.ends_with(" agent"), "{agent}");
        if cfg!(target_arch = "x86_64") {
            assert!(agent.contains(" (linux/amd64) "), "{agent}");
        }
        assert!(user_agent(Component::Controller).ends_with(" controller"));
        assert!(user_agent(Component::Audit).ends_with(" audit"));
    }

    #[test]
    fn a_transport_error_says_why() {
        let refused = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        let error = kube::Error::Service(Box::new(std::io::Error::other(ErrorWithSource {
            text: "client error (Connect)",
            source: refused,
        })));
        let text = Brief(&error).to_string();
        assert!(text.starts_with("ServiceError: client error (Connect)"), "{text}");
        assert!(text.ends_with(": Connection refused (os error 111)"), "{text}");
        // An error without a source is as kube says it; an API answer as before.
        let plain = kube::Error::LinesCodecMaxLineLengthExceeded;
        assert_eq!(Brief(&plain).to_string(), plain.to_string());
    }

    #[derive(Debug)]
    struct ErrorWithSource {
        text: &'static str,
        source: std::io::Error,
    }

    impl std::fmt::Display for ErrorWithSource {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.text)
        }
    }

    impl std::error::Error for ErrorWithSource {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn a_watch_backs_off_longer_and_longer_whatever_events_come_between() {
        use kube::runtime::utils::Backoff;
        let mut backoff = RetryDelays::for_watches();
        let first = backoff.first;
        let mut ceiling = first;
        for _ in 0..10 {
            // The watcher's `Init` at each new attempt: no longer a fresh start.
            backoff.reset();
            let delay = backoff.next().expect("a delay");
            assert!(
                delay <= ceiling && delay >= ceiling / 2,
                "{delay:?} for {ceiling:?}"
            );
            ceiling = (ceiling * 2).min(backoff.limit);
        }
        assert_eq!(ceiling, backoff.limit);
        // Two minutes without a failure: from the start again.
        backoff.last_failure = std::time::Instant::now().checked_sub(RetryDelays::QUIET);
        let delay = backoff.next().expect("a delay");
        assert!(delay <= first, "{delay:?}");
        assert!((0..100).all(|_| (0.0..1.0).contains(&random_fraction())));
    }
}
