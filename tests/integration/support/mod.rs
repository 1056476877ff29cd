//! Shared set-up of the integration tests: one real control plane per test binary (or the cluster
//! of `SENTINEL_TEST_KUBECONFIG`), and one fresh namespace per test.
#![allow(dead_code)] // each test module uses a different part of this

use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::{
    Api, Client, Config,
    api::PostParams,
    config::{KubeConfigOptions, Kubeconfig},
};
use sentinel_testenv::{self as testenv, Binaries, ControlPlane};

pub mod https;
pub mod nodes;

pub const TEST_LABEL: &str = "seccomp.sentinel.dev/test";

pub struct TestCluster {
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    plane: Option<ControlPlane>,
}

static CLUSTER: OnceLock<Result<TestCluster, String>> = OnceLock::new();

/// The cluster of this test binary, started on first use. The operator's logs at `info` (or as
/// `SENTINEL_TEST_LOG` says, e.g. `seccomp_sentinel=debug`) are shown with a failing test's output.
pub fn cluster() -> &'static TestCluster {
    let filter = std::env::var("SENTINEL_TEST_LOG").unwrap_or_else(|_| "seccomp_sentinel=info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
    match CLUSTER.get_or_init(|| start_cluster().map_err(|e| format!("{e:#}"))) {
        Ok(cluster) => cluster,
        Err(e) => panic!("no test cluster: {e}"),
    }
}

fn start_cluster() -> anyhow::Result<TestCluster> {
    if let Some(kubeconfig) = std::env::var_os("SENTINEL_TEST_KUBECONFIG") {
        let kubeconfig = PathBuf::from(kubeconfig);
        let kubectl = std::env::var_os("SENTINEL_TEST_KUBECTL")
            .map(PathBuf::from)
            .or_else(|| Binaries::locate().ok().map(|b| b.kubectl()))
            .unwrap_or_else(|| PathBuf::from("kubectl"));
        let binaries = Binaries::locate().ok();
        testenv::install_apis_with(&kubectl, binaries.as_ref(), &kubeconfig)?;
        return Ok(TestCluster {
            kubeconfig,
            kubectl,
            plane: None,
        });
    }
    let binaries = Binaries::locate()?;
    let plane = ControlPlane::start(&binaries)?;
    testenv::install_apis(&binaries, plane.kubeconfig())?;
    Ok(TestCluster {
        kubeconfig: plane.kubeconfig().to_path_buf(),
        kubectl: binaries.kubectl(),
        plane: Some(plane),
    })
}

/// Stops the nodes, then the control plane, when the test binary exits normally. (If it is killed
/// instead, the supervisors and the nodes' janitors notice and clean up.)
#[dtor::dtor(unsafe)]
fn stop_cluster() {
    nodes::stop();
    if let Some(Ok(TestCluster {
        plane: Some(plane), ..
    })) = CLUSTER.get()
    {
        plane.stop();
    }
}

impl TestCluster {
    pub async fn client(&self) -> Client {
        self.clients().await.client
    }

    /// A client whose requests are not retried on 429/503 (kube retries them by default), for
    /// calls whose refusal the test wants to see, such as an eviction blocked by a budget.
    pub async fn client_without_retry(&self) -> Client {
        self.clients().await.without_retry
    }

    /// The operator's own client stack, so that every test also runs it.
    async fn clients(&self) -> seccomp_sentinel::client::ApiClients {
        seccomp_sentinel::client::connect(
            self.config().await,
            seccomp_sentinel::client::Component::Controller,
        )
        .expect("kube client")
    }

    /// The connection settings of the admin kubeconfig.
    pub async fn config(&self) -> Config {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("readable kubeconfig");
        // As the operator reads it: a proxy in the environment is not taken to the loopback
        // API server (kube's own loading took HTTPS_PROXY for it).
        seccomp_sentinel::client::from_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("usable kubeconfig")
    }

    /// Runs the real kubectl against the test cluster; panics with its output on failure.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.try_kubectl(args).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_kubectl(&self, args: &[&str]) -> Result<String, testenv::TestenvError> {
        testenv::run_kubectl(&self.kubectl, &self.kubeconfig, args)
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The local control plane (none for an existing cluster).
    pub fn plane(&self) -> Option<&ControlPlane> {
        self.plane.as_ref()
    }

    /// A token of the service account `namespace/account`, from the TokenRequest API, valid
    /// for an hour.
    pub async fn service_account_token(&self, namespace: &str, account: &str) -> String {
        use k8s_openapi::api::authentication::v1::TokenRequest;
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client().await, namespace);
        let request: TokenRequest = serde_json::from_value(
            serde_json::json!({ "spec": { "audiences": [], "expirationSeconds": 3600 } }),
        )
        .expect("token request");
        accounts
            .create_token_request(account, &PostParams::default(), &request)
            .await
            .expect("token")
            .status
            .expect("token status")
            .token
    }

    /// A kubeconfig (YAML) for this cluster that authenticates with `token` alone.
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        kubeconfig_with_token(&self.kubeconfig, token)
    }

    /// The audit log of the local control plane (none for an existing cluster).
    pub fn audit_log(&self) -> Option<PathBuf> {
        self.plane.as_ref().map(ControlPlane::audit_log)
    }
}

/// A kubeconfig (YAML) for the control plane of `admin` (a kubeconfig of the test environment)
/// that authenticates with `token` alone.
pub fn kubeconfig_with_token(admin: &Path, token: &str) -> String {
    let admin = std::fs::read_to_string(admin).expect("kubeconfig");
    let clusters = admin.split("users:").next().expect("clusters part");
    format!(
        "{clusters}users:\n- name: token\n  user:\n    token: {token}\ncontexts:\n- name: token\n  context:\n    cluster: sentinel-testenv\n    user: token\ncurrent-context: token\n"
    )
}

/// One test's view of the cluster: a client and a namespace of its own, deleted when dropped.
pub struct TestContext {
    pub client: Client,
    pub ns: String,
    pub cluster: &'static TestCluster,
}

/// Creates a namespace named after the test and waits until pods can be created in it (its
/// `default` service account exists).
pub async fn context(test_name: &str) -> TestContext {
    let cluster = cluster();
    let client = cluster.client().await;
    let ns = unique_name(test_name);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": { "name": ns, "labels": { TEST_LABEL: "true" } }
    }))
    .expect("namespace");
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create test namespace");
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    wait_for(
        &format!("service account default in {ns}"),
        Duration::from_secs(60),
        || async { accounts.get_opt("default").await.ok().flatten() },
    )
    .await;
    TestContext { client, ns, cluster }
}

impl TestContext {
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.cluster.kubectl(args)
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// `seccomp-sentinel audit -o json` of this test's namespace on the live cluster, with `extra`
    /// flags; it must succeed.
    pub fn live_audit(&self, extra: &[&str]) -> serde_json::Value {
        let kubeconfig = self.cluster.kubeconfig().display().to_string();
        let audit = std::process::Command::new(env!("CARGO_BIN_EXE_seccomp-sentinel"))
            .args(["audit", "--kubeconfig", &kubeconfig, "-n", &self.ns, "-o", "json"])
            .args(extra)
            .env_remove("KUBECONFIG")
            .output()
            .expect("run seccomp-sentinel audit");
        assert!(
            audit.status.success(),
            "{}",
            String::from_utf8_lossy(&audit.stderr)
        );
        serde_json::from_slice(&audit.stdout).expect("audit json")
    }
}

impl Drop for TestContext {
    fn drop(&mut self) {
        // Blocking is fine here; namespace deletion finishes in the background.
        let _ = self
            .cluster
            .try_kubectl(&["delete", "namespace", &self.ns, "--wait=false"]);
    }
}

/// A DNS-1123 label unique within this cluster: the test's name and a random-enough suffix.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    format!(
        "{}-{:x}{:x}",
        prefix.trim_matches('-'),
        std::process::id() ^ nanos,
        n
    )
}

/// Polls `probe` every 200 ms until it returns `Some`, or panics after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_for_explained(what, timeout, probe, String::new).await
}

/// [`wait_for`], whose panic adds what `explain` says at that moment (the state around).
pub async fn wait_for_explained<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut probe: F,
    explain: impl FnOnce() -> String,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}\n{}", explain());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The controller, running in this test process against the test cluster, watching one namespace.
pub struct Operator {
    pub ctx: std::sync::Arc<seccomp_sentinel::controller::Context>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), seccomp_sentinel::controller::Error>>,
}

impl Operator {
    pub async fn start(client: Client, config: seccomp_sentinel::controller::ControllerConfig) -> Operator {
        let eviction_client = cluster().client_without_retry().await;
        let metrics = std::sync::Arc::new(seccomp_sentinel::telemetry::Metrics::default());
        let ctx = std::sync::Arc::new(seccomp_sentinel::controller::Context::new(
            client,
            eviction_client,
            config,
            metrics,
        ));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(seccomp_sentinel::controller::run_with(ctx.clone(), async move {
            let _ = rx.await;
        }));
        Operator {
            ctx,
            shutdown: Some(tx),
            task,
        }
    }

    /// The controller of `ctx`'s namespace, with the kubelets' seccompDefault known to be off.
    pub async fn for_namespace(ctx: &TestContext) -> Operator {
        Operator::start(ctx.client.clone(), namespace_config(ctx)).await
    }

    pub fn writes(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        self.ctx.stats.status_writes.load(Relaxed)
    }

    pub fn evictions(&self) -> u64 {
        self.ctx
            .stats
            .evictions
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn label_writes(&self) -> u64 {
        self.ctx
            .stats
            .label_writes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn reconciles(&self) -> u64 {
        self.ctx
            .stats
            .reconciles
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(30), &mut self.task).await;
        match result {
            Ok(Ok(Ok(()))) => {}
            other => panic!("operator did not stop cleanly: {other:?}"),
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Label that ties a test's SeccompPolicies to the operator of that test (policies are
/// cluster-scoped; tests run in parallel).
pub const POLICY_LABEL: &str = "seccomp.sentinel.dev/test-namespace";

pub fn namespace_config(ctx: &TestContext) -> seccomp_sentinel::controller::ControllerConfig {
    seccomp_sentinel::controller::ControllerConfig {
        namespaces: vec![ctx.ns.clone()],
        policy_selector: Some(format!("{POLICY_LABEL}={}", ctx.ns)),
        kubelet_seccomp_default: seccomp_sentinel::api::KubeletSeccompDefault::False,
        ..Default::default()
    }
}

/// A ValidatingAdmissionPolicy of the API server, bound to the test's namespace only, that
/// refuses the requests of `resource_rules` for which `expression` is false, with `message`:
/// what a cluster's own admission rules (or a policy engine's webhook) do to the operator's
/// writes. Deleted with [`AdmissionRule::remove`]. The API server takes it in within a moment:
/// wait for a request it refuses before relying on it.
pub struct AdmissionRule {
    name: String,
}

impl AdmissionRule {
    pub async fn create(
        ctx: &TestContext,
        suffix: &str,
        resource_rules: serde_json::Value,
        expression: &str,
        message: &str,
    ) -> AdmissionRule {
        use k8s_openapi::api::admissionregistration::v1::{
            ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
        };
        let name = format!("{}-{suffix}", ctx.ns);
        let only_here = serde_json::json!({ "matchLabels": { "kubernetes.io/metadata.name": ctx.ns } });
        let policy: ValidatingAdmissionPolicy = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name },
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": { "namespaceSelector": only_here, "resourceRules": resource_rules },
                "validations": [{ "expression": expression, "message": message }]
            }
        }))
        .expect("admission policy");
        let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name },
            "spec": { "policyName": name, "validationActions": ["Deny"], "matchResources": { "namespaceSelector": only_here } }
        }))
        .expect("binding");
        Api::<ValidatingAdmissionPolicy>::all(ctx.client.clone())
            .create(&PostParams::default(), &policy)
            .await
            .expect("create the admission policy");
        Api::<ValidatingAdmissionPolicyBinding>::all(ctx.client.clone())
            .create(&PostParams::default(), &binding)
            .await
            .expect("create its binding");
        AdmissionRule { name }
    }

    pub async fn remove(self, ctx: &TestContext) {
        use k8s_openapi::api::admissionregistration::v1::{
            ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
        };
        let params = kube::api::DeleteParams::default();
        let _ = Api::<ValidatingAdmissionPolicyBinding>::all(ctx.client.clone())
            .delete(&self.name, &params)
            .await;
        let _ = Api::<ValidatingAdmissionPolicy>::all(ctx.client.clone())
            .delete(&self.name, &params)
            .await;
    }
}

/// A loopback TCP relay in front of the API server that counts the connections open through it.
pub struct Relay {
    pub address: std::net::SocketAddr,
    pub open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub opened: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Relay {
    /// A relay on a port of its own to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Relay {
        Self::start_at("127.0.0.1:0", upstream).await
    }

    /// A relay listening on `address`.
    pub async fn start_at(address: &str, upstream: String) -> Relay {
        use std::sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        };
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .expect("bind the relay");
        let address = listener.local_addr().expect("relay address");
        let open = Arc::new(AtomicUsize::new(0));
        let opened = Arc::new(AtomicUsize::new(0));
        let (open_count, opened_count) = (open.clone(), opened.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let open = open_count.clone();
                opened_count.fetch_add(1, Ordering::SeqCst);
                open.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Relay {
            address,
            open,
            opened,
        }
    }
}

/// One plain-HTTP GET of `host:port`, with a bearer token if given: the status code and the whole
/// response.
pub async fn plain_get(host: &str, port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n{authorization}\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, response))
}

/// A loopback port that nothing listens on (for now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port()
}

/// A kubeconfig file, written to `path`, for the API server at `server` (plain HTTP) with no
/// credentials.
pub fn write_plain_kubeconfig(path: &std::path::Path, server: &str) {
    std::fs::write(
        path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{server}\"}}}}]\n\
             users: [{{name: u, user: {{}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\n\
             current-context: c\n"
        ),
    )
    .expect("write kubeconfig");
}
