//! A real, local Kubernetes control plane for the integration tests and `make run`.
//!
//! `make testenv` builds etcd, kube-apiserver, kube-controller-manager and kubectl from the pinned
//! upstream Go modules into `e2e/bin/` (see `e2e/testenv/`). [`ControlPlane::start`] runs them on
//! free loopback ports with freshly generated certificates and keys in a temporary directory, and
//! writes an admin kubeconfig. Every component is started through a small supervisor that stops it
//! as soon as the owning process goes away, however it goes away, so no process outlives a test run.
//!
//! [`node::Node`] adds a real node (containerd, runc and the kubelet) and [`image`] builds the
//! images it runs, without a registry or a container engine.
//!
//! Blocking (std) code on purpose: it runs before and after any async runtime exists.

pub mod image;
pub mod install;
pub mod node;
pub mod olm;

use std::{
    collections::BTreeSet,
    fs,
    hash::{BuildHasher, RandomState},
    io::{Read, Write},
    net::{Ipv4Addr, TcpListener, TcpStream},
    ops::RangeInclusive,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::Mutex,
    thread,
    time::{Duration, Instant},
};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

const SUPERVISOR: &str = include_str!("supervise.sh");

/// Controllers the tests rely on: garbage collection, workloads, disruption budgets, namespaces and
/// service accounts. Node lifecycle and friends stay off: most tests' nodes are hand-made Node
/// objects without kubelets, which those controllers would taint and whose pods they would evict.
const CONTROLLERS: &[&str] = &[
    "garbage-collector-controller",
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    "job-controller",
    "cronjob-controller",
    "replicationcontroller-controller",
    "disruption-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    // Removes the pods of a test node that is gone.
    "pod-garbage-collector-controller",
];

const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Audit the operator's and the agent's service accounts (namespace seccomp-sentinel), and
/// lists of pods by anyone (how the audit command pages them).
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  userGroups: [\"system:serviceaccounts:seccomp-sentinel\"]
- level: Metadata
  verbs: [list]
  resources: [{group: \"\", resources: [pods]}]
- level: None
";

#[derive(Debug, thiserror::Error)]
pub enum TestenvError {
    #[error(
        "control-plane binary {0} is missing: run `make testenv` to build etcd, kube-apiserver, \
         kube-controller-manager and kubectl into e2e/bin (or set SENTINEL_TEST_KUBECONFIG to test \
         against an existing cluster)"
    )]
    MissingBinary(PathBuf),
    #[error(
        "OLM tool {0} is missing: run `make bundle-validate` (e2e/olm/build.sh builds OLM's operators \
         and opm from the pinned modules of e2e/olm/go.mod and copies OLM's CRDs)"
    )]
    MissingOlmTool(PathBuf),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("generating certificates: {0}")]
    Certificates(#[from] rcgen::Error),
    #[error(
        "the test node cannot start here: {}{}",
        if *root { "" } else { "it must run as root (CI does); " },
        if missing.is_empty() { String::new() } else {
            format!("missing Debian packages: {missing} (`make node-prereqs` installs them as root: \
                     apt-get install containerd runc containernetworking-plugins busybox-static)")
        }
    )]
    NodePrerequisites { root: bool, missing: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
    #[error("{component} did not become ready within {timeout:?}; the end of {log}:\n{tail}")]
    NotReady {
        component: String,
        timeout: Duration,
        log: PathBuf,
        tail: String,
    },
    #[error("`kubectl {args}` failed: {output}")]
    Kubectl { args: String, output: String },
}

pub type Result<T, E = TestenvError> = std::result::Result<T, E>;

pub(crate) fn io_context(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestenvError {
    let context = context.into();
    move |source| TestenvError::Io { context, source }
}

/// Where the upstream binaries live: `$SENTINEL_TESTENV_BIN`, or `e2e/bin` of this repository.
/// `$SENTINEL_KUBERNETES_BIN` names another Kubernetes release's directory (such as
/// `e2e/bin/kubernetes-1.33`, the oldest supported): its kube-apiserver, kube-controller-manager,
/// kube-scheduler, kubelet and kubectl are used instead, with every other binary (etcd, crictl,
/// the reference tools) still from the first.
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
    kubernetes: Option<PathBuf>,
}

/// The binaries of one Kubernetes release.
const KUBERNETES_BINARIES: [&str; 5] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kubectl",
];

impl Binaries {
    pub fn locate() -> Result<Self> {
        let dir = std::env::var_os("SENTINEL_TESTENV_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| repository_root().join("e2e/bin"));
        let kubernetes = std::env::var_os("SENTINEL_KUBERNETES_BIN")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        Self::with_kubernetes(dir, kubernetes)
    }

    pub fn in_dir(dir: PathBuf) -> Result<Self> {
        Self::with_kubernetes(dir, None)
    }

    /// The binaries of `dir`, those of a Kubernetes release from `kubernetes` where given.
    fn with_kubernetes(dir: PathBuf, kubernetes: Option<PathBuf>) -> Result<Self> {
        let binaries = Binaries { dir, kubernetes };
        for name in ["etcd", "kube-apiserver", "kube-controller-manager", "kubectl"] {
            let path = binaries.path(name);
            if !path.is_file() {
                return Err(TestenvError::MissingBinary(path));
            }
        }
        Ok(binaries)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        match &self.kubernetes {
            Some(release) if KUBERNETES_BINARIES.contains(&name) => release.join(name),
            _ => self.dir.join(name),
        }
    }

    pub fn kubectl(&self) -> PathBuf {
        self.path("kubectl")
    }
}

/// The repository the tools run in (where `crds/`, `config/` and `e2e/` are), found at run time:
/// `SENTINEL_REPOSITORY_ROOT`, else the package directory cargo runs tests in, else the working
/// directory, else where this crate was built. Not compiled in first: clones at different paths
/// share one build cache (`.ci/run`), and cargo keeps a build made in another clone whose sources
/// are the same, path and all.
pub fn repository_root() -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let from_env = |name: &str| std::env::var_os(name).map(PathBuf::from);
        from_env("SENTINEL_REPOSITORY_ROOT")
            .or_else(|| from_env("CARGO_MANIFEST_DIR").and_then(|dir| find_repository_root(&dir)))
            .or_else(|| {
                std::env::current_dir()
                    .ok()
                    .and_then(|dir| find_repository_root(&dir))
            })
            .unwrap_or_else(|| {
                let built_in = Path::new(env!("CARGO_MANIFEST_DIR"));
                built_in.ancestors().nth(2).unwrap_or(built_in).to_path_buf()
            })
    })
    .clone()
}

/// The nearest directory at or above `start` that holds this repository (its CRDs and the test
/// control plane's module).
pub fn find_repository_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("e2e/testenv/go.mod").is_file() && dir.join("crds").is_dir())
        .map(Path::to_path_buf)
}

/// A child process tied to this one by a pipe on its standard input (its lifeline): closing the
/// pipe, or this process ending however it ends, tells it to stop.
pub(crate) struct Component {
    name: String,
    child: Child,
    lifeline: Option<ChildStdin>,
}

impl Component {
    /// Closes the lifeline and waits until the process has stopped what it ran.
    pub(crate) fn stop(mut self) {
        drop(self.lifeline.take());
        let _ = self.child.wait();
    }

    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// Runs `command` under the supervisor (`supervise.sh`), its output appended to `log`; with
/// `cleanup`, the supervisor removes that directory after the command stopped.
pub(crate) fn spawn_supervised(
    name: &str,
    log: &Path,
    command: &Command,
    cleanup: Option<&Path>,
) -> Result<Component> {
    let cleanup = cleanup.map(|p| p.display().to_string()).unwrap_or_default();
    let mut supervisor = Command::new("bash");
    supervisor
        .arg("-c")
        .arg(SUPERVISOR)
        .arg("sentinel-supervise")
        .arg(log)
        .arg(cleanup)
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => supervisor.env(key, value),
            None => supervisor.env_remove(key),
        };
    }
    spawn_with_lifeline(name, &mut supervisor)
}

/// Starts `command` with a lifeline on its standard input.
pub(crate) fn spawn_with_lifeline(name: &str, command: &mut Command) -> Result<Component> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io_context(format!("starting {name}")))?;
    let lifeline = child.stdin.take();
    Ok(Component {
        name: name.to_string(),
        child,
        lifeline,
    })
}

/// Polls `ready` every 200 ms until it holds; fails with the end of `log` when `failed` names a
/// reason (the process exited) or after `timeout`.
pub(crate) fn wait_until(
    what: &str,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
    mut failed: impl FnMut() -> Option<String>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let why = loop {
        if ready() {
            return Ok(());
        }
        if let Some(why) = failed() {
            break why;
        }
        if Instant::now() >= deadline {
            break "timed out".to_string();
        }
        thread::sleep(Duration::from_millis(200));
    };
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    Err(TestenvError::NotReady {
        component: what.to_string(),
        timeout,
        log: log.to_path_buf(),
        tail: format!("({why})\n{tail}"),
    })
}

/// A running etcd + kube-apiserver + kube-controller-manager. Stopped by [`ControlPlane::stop`], on
/// drop, or, if this process dies first, by the supervisors.
pub struct ControlPlane {
    dir: PathBuf,
    kubeconfig: PathBuf,
    server: String,
    kubectl: PathBuf,
    keep_dir: bool,
    etcd_url: String,
    components: Mutex<Vec<Component>>,
}

/// See [`ControlPlane::second_apiserver`]. Stopped when dropped.
pub struct SecondApiServer {
    binary: PathBuf,
    kubectl: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    kubeconfig: PathBuf,
    component: Option<Component>,
}

impl SecondApiServer {
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Starts it (again, on the same port) and waits until it is ready.
    pub fn start(&mut self) -> Result<()> {
        if self.component.is_some() {
            return Ok(());
        }
        let mut command = Command::new(&self.binary);
        command.args(&self.args);
        let mut component = spawn_supervised("kube-apiserver (second)", &self.log, &command, None)?;
        let (kubectl, kubeconfig) = (self.kubectl.clone(), self.kubeconfig.clone());
        let ready = wait_until(
            "the second kube-apiserver",
            &self.log,
            READY_TIMEOUT,
            || {
                Command::new(&kubectl)
                    .arg(format!("--kubeconfig={}", kubeconfig.display()))
                    .args(["get", "--raw", "/readyz"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            },
            || component.exited().map(|status| format!("exited with {status}")),
        );
        self.component = Some(component);
        ready
    }

    /// Stops it (its clients see their connections go).
    pub fn stop(&mut self) {
        if let Some(component) = self.component.take() {
            component.stop();
        }
    }

    /// The process ID of the API server itself (under its supervisor), for SIGSTOP/SIGCONT.
    pub fn pid(&self) -> Option<u32> {
        let port_flag = self
            .args
            .iter()
            .find(|a| a.starts_with("--secure-port="))?
            .clone();
        let entries = fs::read_dir("/proc").ok()?;
        entries.flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_apiserver = args.first().is_some_and(|a| a.ends_with(b"kube-apiserver"));
            (is_apiserver && args.contains(&port_flag.as_bytes())).then_some(pid)
        })
    }
}

impl Drop for SecondApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A POST to etcd's JSON gateway on loopback; returns the response body.
fn etcd_post(port: u16, path: &str, body: &str) -> Result<String> {
    etcd_request(
        port,
        path,
        &format!(
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// etcd's answer to a read of the one key `key`, parsed (with the store's revision in its
/// header; keys and values in it are base64).
fn etcd_range(port: u16, key: &str) -> Result<serde_json::Value> {
    use base64::Engine as _;
    let request = serde_json::json!({ "key": base64::engine::general_purpose::STANDARD.encode(key) });
    let response = etcd_post(port, "/v3/kv/range", &request.to_string())?;
    serde_json::from_str(&response).map_err(|_| TestenvError::Command {
        command: format!("etcd /v3/kv/range {key:?}"),
        output: response,
    })
}

fn etcd_get(port: u16, path: &str) -> Result<String> {
    etcd_request(
        port,
        path,
        &format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"),
    )
}

fn etcd_request(port: u16, path: &str, request: &str) -> Result<String> {
    let mut stream =
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(io_context("connecting to etcd"))?;
    // A defragmentation rewrites the whole file.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    stream
        .write_all(request.as_bytes())
        .map_err(io_context("writing to etcd"))?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.contains(" 200 ") => Ok(body.to_string()),
        _ => Err(TestenvError::Command {
            command: format!("etcd {path}"),
            output: response,
        }),
    }
}

impl ControlPlane {
    pub fn start(binaries: &Binaries) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sentinel-testenv-")
            .tempdir()
            .map_err(io_context("creating the control plane's temporary directory"))?
            .keep();
        let keep_dir = std::env::var_os("SENTINEL_TESTENV_KEEP").is_some();
        let mut plane = ControlPlane {
            kubeconfig: dir.join("admin.kubeconfig"),
            server: String::new(),
            kubectl: binaries.kubectl(),
            dir,
            keep_dir,
            etcd_url: String::new(),
            components: Mutex::new(Vec::new()),
        };
        plane.boot(binaries)?;
        Ok(plane)
    }

    fn boot(&mut self, binaries: &Binaries) -> Result<()> {
        let dir = self.dir.clone();
        let pki = Pki::generate()?;
        pki.write(&dir)?;

        let [etcd_port, peer_port, apiserver_port] = free_ports()?;
        self.server = format!("https://127.0.0.1:{apiserver_port}");
        write_kubeconfig(&self.kubeconfig, &self.server, &dir)?;

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd_args = vec![
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
            // Test data is thrown away: skip fsync, which dominates write latency on CI disks.
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
            "--quota-backend-bytes=8589934592".into(),
        ];
        // The etcd supervisor is the last to stop, so it removes the directory.
        let cleanup = if self.keep_dir { None } else { Some(dir.as_path()) };
        self.spawn("etcd", &binaries.path("etcd"), &etcd_args, cleanup)?;
        self.wait_ready("etcd", || etcd_healthy(etcd_port))?;

        self.etcd_url = etcd_url.clone();
        // The requests of the seccomp-sentinel service accounts are audited, so tests can compare
        // what the operator does with the RBAC it ships.
        fs::write(dir.join("audit-policy.yaml"), AUDIT_POLICY)
            .map_err(io_context("writing the audit policy"))?;
        let apiserver_args = self.apiserver_args(apiserver_port, "");
        let file = |name: &str| dir.join(name).display().to_string();
        self.spawn(
            "kube-apiserver",
            &binaries.path("kube-apiserver"),
            &apiserver_args,
            None,
        )?;
        self.wait_ready("kube-apiserver", || {
            self.kubectl_quiet(&["get", "--raw", "/readyz"])
        })?;

        let kcm_port = free_ports::<1>()?[0];
        let kcm_args = vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            format!("--authentication-kubeconfig={}", self.kubeconfig.display()),
            format!("--authorization-kubeconfig={}", self.kubeconfig.display()),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={kcm_port}"),
            format!("--cert-dir={}", file("kcm-certs")),
            format!("--controllers={}", CONTROLLERS.join(",")),
            format!("--service-account-private-key-file={}", file("sa.key")),
            format!("--root-ca-file={}", file("ca.crt")),
            "--use-service-account-credentials=false".into(),
            "--leader-elect=false".into(),
            "--profiling=false".into(),
            "--v=1".into(),
        ];
        self.spawn(
            "kube-controller-manager",
            &binaries.path("kube-controller-manager"),
            &kcm_args,
            None,
        )?;
        // The service-account controller creating `default` proves the controller manager works.
        self.wait_ready("kube-controller-manager", || {
            self.kubectl_quiet(&["get", "serviceaccount", "default", "-n", "default"])
        })?;
        Ok(())
    }

    /// The API server's flags, on `port`; `suffix` keeps the files of a second one apart.
    fn apiserver_args(&self, port: u16, suffix: &str) -> Vec<String> {
        let file = |name: &str| self.dir.join(name).display().to_string();
        vec![
            format!("--audit-policy-file={}", file("audit-policy.yaml")),
            format!("--audit-log-path={}", file(&format!("audit{suffix}.log"))),
            "--audit-log-format=json".into(),
            format!("--etcd-servers={}", self.etcd_url),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            // Nothing here reads the `kubernetes` Service's endpoints (pods on the test nodes reach
            // the API server at 127.0.0.1 directly), and from 1.37 the reconciler that writes them
            // refuses a loopback address.
            "--endpoint-reconciler-type=none".into(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", file(&format!("apiserver-certs{suffix}"))),
            format!("--tls-cert-file={}", file("apiserver.crt")),
            format!("--tls-private-key-file={}", file("apiserver.key")),
            format!("--client-ca-file={}", file("ca.crt")),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", file("sa.pub")),
            format!("--service-account-signing-key-file={}", file("sa.key")),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--authorization-mode=RBAC".into(),
            // Privileged containers are part of what the operator must judge.
            "--allow-privileged=true".into(),
            // Never a DNS lookup of a node name (logs and exec do not work on the test nodes anyway:
            // their kubelets serve on loopback).
            "--kubelet-preferred-address-types=InternalIP".into(),
            "--profiling=false".into(),
            "--v=1".into(),
        ]
    }

    /// A second API server on the same etcd, on a port of its own (chosen once: a restart keeps
    /// it), for tests that take an API server away from a client and bring it back.
    pub fn second_apiserver(&self, binaries: &Binaries) -> Result<SecondApiServer> {
        self.second_apiserver_with(binaries, &[])
    }

    /// [`ControlPlane::second_apiserver`] with flags of its own (e.g. feature gates set as an
    /// older release ships them).
    pub fn second_apiserver_with(&self, binaries: &Binaries, extra_args: &[&str]) -> Result<SecondApiServer> {
        let [port] = free_ports()?;
        let kubeconfig = self.dir.join(format!("second-{port}.kubeconfig"));
        write_kubeconfig(&kubeconfig, &format!("https://127.0.0.1:{port}"), &self.dir)?;
        let mut args = self.apiserver_args(port, &format!("-{port}"));
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let mut second = SecondApiServer {
            binary: binaries.path("kube-apiserver"),
            kubectl: binaries.kubectl(),
            args,
            log: self.dir.join(format!("kube-apiserver-{port}.log")),
            kubeconfig,
            component: None,
        };
        second.start()?;
        Ok(second)
    }

    fn etcd_port(&self) -> Result<u16> {
        self.etcd_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| TestenvError::Unsupported("no etcd URL".into()))
    }

    /// Compacts etcd's history up to its current revision: a watch that resumes from before it
    /// gets 410 Gone and must list again.
    pub fn compact_etcd(&self) -> Result<i64> {
        let port = self.etcd_port()?;
        // etcd's JSON gateway: the current revision, then a compaction to it.
        let range = etcd_range(port, "\0")?;
        let revision = range["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse::<i64>().ok())
            .ok_or_else(|| TestenvError::Command {
                command: "etcd /v3/kv/range: no revision".into(),
                output: range.to_string(),
            })?;
        etcd_post(
            port,
            "/v3/kv/compaction",
            &format!(r#"{{"revision":"{revision}","physical":true}}"#),
        )?;
        Ok(revision)
    }

    /// Rewrites etcd's database file without the pages that compactions freed.
    pub fn defragment_etcd(&self) -> Result<()> {
        etcd_post(self.etcd_port()?, "/v3/maintenance/defragment", "{}").map(|_| ())
    }

    /// etcd's own metrics (Prometheus text format).
    pub fn etcd_metrics(&self) -> Result<String> {
        etcd_get(self.etcd_port()?, "/metrics")
    }

    /// The bytes etcd holds under `key` (an object as the API server encodes it for storage,
    /// e.g. `/registry/<group>/<resource>/<namespace>/<name>`), or None when there is no such key.
    pub fn etcd_value(&self, key: &str) -> Result<Option<Vec<u8>>> {
        use base64::Engine as _;
        let range = etcd_range(self.etcd_port()?, key)?;
        let Some(value) = range["kvs"][0]["value"].as_str() else {
            return Ok(None);
        };
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .map(Some)
            .map_err(|_| TestenvError::Command {
                command: format!("etcd /v3/kv/range {key}: the value is not base64"),
                output: range.to_string(),
            })
    }

    fn spawn(
        &self,
        name: &'static str,
        binary: &Path,
        args: &[String],
        cleanup: Option<&Path>,
    ) -> Result<()> {
        let mut command = Command::new(binary);
        command.args(args);
        let component = spawn_supervised(name, &self.log_path(name), &command, cleanup)?;
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(component);
        Ok(())
    }

    fn wait_ready(&self, component: &'static str, ready: impl FnMut() -> bool) -> Result<()> {
        wait_until(component, &self.log_path(component), READY_TIMEOUT, ready, || {
            self.exited(component)
                .map(|status| format!("exited with {status}"))
        })
    }

    fn exited(&self, component: &str) -> Option<std::process::ExitStatus> {
        let mut components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        components.iter_mut().find(|c| c.name == component)?.exited()
    }

    fn log_path(&self, component: &str) -> PathBuf {
        self.dir.join(format!("{component}.log"))
    }

    /// Starts kube-scheduler (once): pods without `nodeName`, DaemonSet pods among them, need one
    /// when a node runs them. Stopped with the control plane.
    pub fn start_scheduler(&self, binaries: &Binaries) -> Result<()> {
        let running = self
            .components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|c| c.name == "kube-scheduler");
        if running {
            return Ok(());
        }
        let [port] = free_ports()?;
        let command = node::scheduler_command(binaries, &self.kubeconfig, port);
        let component = spawn_supervised("kube-scheduler", &self.log_path("kube-scheduler"), &command, None)?;
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(component);
        Ok(())
    }

    fn kubectl_quiet(&self, args: &[&str]) -> bool {
        Command::new(&self.kubectl)
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Runs kubectl against this control plane and returns its standard output.
    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        run_kubectl(&self.kubectl, &self.kubeconfig, args)
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's release, as its `/version` reports it (e.g. `v1.37.2`).
    pub fn server_version(&self) -> Result<String> {
        let body = self.kubectl(&["get", "--raw", "/version"])?;
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["gitVersion"].as_str().map(str::to_string))
            .ok_or_else(|| TestenvError::Command {
                command: "kubectl get --raw /version".into(),
                output: body,
            })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// The API server's audit log (JSON lines) of the seccomp-sentinel service accounts.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// Stops the controller manager, the API server and etcd, in that order, and removes the data
    /// directory. Safe to call more than once.
    pub fn stop(&self) {
        let mut components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(c) = components.pop() {
            c.stop();
        }
        if !self.keep_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `kubectl --kubeconfig=KUBECONFIG ARGS...` and returns its standard output.
pub fn run_kubectl(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new(kubectl)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .output()
        .map_err(io_context(format!("running {}", kubectl.display())))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(TestenvError::Kubectl {
            args: args.join(" "),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

/// Applies every manifest in `paths` (files or directories) with server-side apply, then waits for
/// every CustomResourceDefinition among them to be Established.
pub fn apply_and_wait_established(kubectl: &Path, kubeconfig: &Path, paths: &[&Path]) -> Result<()> {
    for path in paths {
        let file = path.display().to_string();
        let applied = run_kubectl(
            kubectl,
            kubeconfig,
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=sentinel-testenv",
                "-f",
                &file,
                "-o",
                "name",
            ],
        )?;
        let crds: Vec<&str> = applied
            .lines()
            .filter(|l| l.starts_with("customresourcedefinition.apiextensions.k8s.io/"))
            .collect();
        if !crds.is_empty() {
            let mut args = vec!["wait", "--for=condition=Established", "--timeout=60s"];
            args.extend(crds);
            // A CRD created a moment ago may have no conditions yet, which `kubectl wait` reports
            // as an error instead of waiting: try again for a few seconds.
            let mut attempts = 0;
            loop {
                match run_kubectl(kubectl, kubeconfig, &args) {
                    Ok(_) => break,
                    Err(TestenvError::Kubectl { output, .. })
                        if output.contains("accessor error") && attempts < 40 =>
                    {
                        attempts += 1;
                        std::thread::sleep(std::time::Duration::from_millis(250));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

/// The lowest port `free_ports` hands out: above the registered services most machines run.
const FIRST_TEST_PORT: u16 = 10_000;

/// Picks `N` loopback ports that are free now and returns their numbers, never one this process
/// handed out before. They come from outside the kernel's ephemeral range: a port released there
/// is the next one an outgoing connection may take, and the kubelet of a test node once lost its
/// port to one in the seconds between the pick and its bind ("bind: address already in use").
/// Each pick starts at a random place, so parallel test processes rarely meet.
pub fn free_ports<const N: usize>() -> Result<[u16; N]> {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let ephemeral = ephemeral_ports();
    let candidates = ports_outside(ephemeral.clone());
    if candidates.len() < 1_000 {
        // The ephemeral range covers (almost) every port: let the kernel pick.
        return kernel_picked_ports();
    }
    let start = RandomState::new().hash_one(()) as usize;
    let mut ports = [0u16; N];
    let mut held = Vec::with_capacity(N);
    let mut tried = 0;
    for slot in &mut ports {
        loop {
            if tried == candidates.len() {
                return Err(TestenvError::Unsupported(format!(
                    "no free loopback port outside the ephemeral range {ephemeral:?}"
                )));
            }
            let port = candidates[(start + tried) % candidates.len()];
            tried += 1;
            if handed_out.contains(&port) {
                continue;
            }
            // Held until all are chosen, so the N ports differ from one another.
            if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                held.push(listener);
                handed_out.insert(port);
                *slot = port;
                break;
            }
        }
    }
    Ok(ports)
}

/// The kernel's range for the local ports of outgoing connections, from procfs; Linux's default
/// when it cannot be read.
fn ephemeral_ports() -> RangeInclusive<u16> {
    let configured = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some(bounds.next()??..=bounds.next()??)
        });
    configured.unwrap_or(32_768..=60_999)
}

fn ports_outside(ephemeral: RangeInclusive<u16>) -> Vec<u16> {
    (FIRST_TEST_PORT..=u16::MAX)
        .filter(|port| !ephemeral.contains(port))
        .collect()
}

fn kernel_picked_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(io_context("finding free loopback ports"))?;
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener
            .local_addr()
            .map_err(io_context("reading a bound port"))?
            .port();
    }
    Ok(ports)
}

fn etcd_healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.contains("\"health\":\"true\"")
}

/// Certificates and keys of one control plane: a CA, the API server's serving certificate, an
/// admin client certificate (group system:masters) and the service-account signing key.
struct Pki {
    ca_cert: String,
    apiserver_cert: String,
    apiserver_key: String,
    admin_cert: String,
    admin_key: String,
    sa_key: String,
    sa_pub: String,
}

impl Pki {
    fn generate() -> Result<Self> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "seccomp-sentinel testenv CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let apiserver_key = KeyPair::generate()?;
        let mut apiserver_params = CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "10.0.0.1".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            "kubernetes.default.svc.cluster.local".to_string(),
        ])?;
        apiserver_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        apiserver_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let apiserver_cert = apiserver_params.signed_by(&apiserver_key, &issuer)?;

        let admin_key = KeyPair::generate()?;
        let mut admin_params = CertificateParams::new(Vec::<String>::new())?;
        admin_params
            .distinguished_name
            .push(DnType::CommonName, "sentinel-admin");
        admin_params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        admin_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_cert = admin_params.signed_by(&admin_key, &issuer)?;

        let sa_key = KeyPair::generate()?;
        Ok(Pki {
            ca_cert: ca_cert.pem(),
            apiserver_cert: apiserver_cert.pem(),
            apiserver_key: apiserver_key.serialize_pem(),
            admin_cert: admin_cert.pem(),
            admin_key: admin_key.serialize_pem(),
            sa_pub: sa_key.public_key_pem(),
            sa_key: sa_key.serialize_pem(),
        })
    }

    fn write(&self, dir: &Path) -> Result<()> {
        for (name, pem) in [
            ("ca.crt", &self.ca_cert),
            ("apiserver.crt", &self.apiserver_cert),
            ("apiserver.key", &self.apiserver_key),
            ("admin.crt", &self.admin_cert),
            ("admin.key", &self.admin_key),
            ("sa.key", &self.sa_key),
            ("sa.pub", &self.sa_pub),
        ] {
            fs::write(dir.join(name), pem).map_err(io_context(format!("writing {name}")))?;
        }
        Ok(())
    }
}

fn write_kubeconfig(path: &Path, server: &str, dir: &Path) -> Result<()> {
    let file = |name: &str| dir.join(name).display().to_string();
    let kubeconfig = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: sentinel-testenv
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: sentinel-admin
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: sentinel-testenv
  context:
    cluster: sentinel-testenv
    user: sentinel-admin
current-context: sentinel-testenv
",
        ca = file("ca.crt"),
        cert = file("admin.crt"),
        key = file("admin.key"),
    );
    fs::write(path, kubeconfig).map_err(io_context("writing the admin kubeconfig"))
}

/// Installs what every test cluster needs: the seccomp-sentinel CRDs from `crds/`, and, where the
/// cluster does not already serve them, the OpenShift SecurityContextConstraints API with the
/// default SCCs of `e2e/openshift/sccs.yaml` and the Security Profiles Operator's SeccompProfile API.
pub fn install_apis(binaries: &Binaries, kubeconfig: &Path) -> Result<()> {
    install_apis_with(&binaries.kubectl(), Some(binaries), kubeconfig)
}

/// [`install_apis`] with any kubectl, for clusters that were not started here (the SCC CRD then
/// still comes from `e2e/bin`, unless the cluster is OpenShift and serves it already).
pub fn install_apis_with(kubectl: &Path, binaries: Option<&Binaries>, kubeconfig: &Path) -> Result<()> {
    let root = repository_root();
    let mut paths: Vec<PathBuf> = Vec::new();
    let crds = root.join("crds");
    let has_manifests = fs::read_dir(&crds)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| entry.path().extension().is_some_and(|ext| ext == "yaml"));
    if has_manifests {
        // The CRD files, not the kustomization beside them.
        let mut files: Vec<PathBuf> = fs::read_dir(&crds)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
            .collect();
        files.sort();
        paths.extend(files);
    }
    let serves_scc = run_kubectl(
        kubectl,
        kubeconfig,
        &["api-resources", "--api-group=security.openshift.io", "-o", "name"],
    )
    .map(|out| out.lines().any(|l| l.starts_with("securitycontextconstraints")))
    .unwrap_or(false);
    if !serves_scc {
        let bin_dir = binaries
            .map(|b| b.dir.clone())
            .unwrap_or_else(|| repository_root().join("e2e/bin"));
        let scc_crd = bin_dir.join("crds/securitycontextconstraints.crd.yaml");
        if !scc_crd.is_file() {
            return Err(TestenvError::MissingBinary(scc_crd));
        }
        paths.push(scc_crd);
    }
    // The Security Profiles Operator's SeccompProfile API, which the operator reads profile
    // classes from, unless the cluster has it installed already.
    let serves_spo = run_kubectl(
        kubectl,
        kubeconfig,
        &[
            "api-resources",
            "--api-group=security-profiles-operator.x-k8s.io",
            "-o",
            "name",
        ],
    )
    .map(|out| out.lines().any(|l| l.starts_with("seccompprofiles")))
    .unwrap_or(false);
    if !serves_spo {
        let bin_dir = binaries
            .map(|b| b.dir.clone())
            .unwrap_or_else(|| repository_root().join("e2e/bin"));
        let spo_crd = bin_dir.join("crds/seccompprofiles.crd.yaml");
        if !spo_crd.is_file() {
            return Err(TestenvError::MissingBinary(spo_crd));
        }
        paths.push(spo_crd);
    }
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    apply_and_wait_established(kubectl, kubeconfig, &refs)?;
    if !serves_scc {
        apply_and_wait_established(kubectl, kubeconfig, &[&root.join("e2e/openshift/sccs.yaml")])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_say_how_to_build_them() {
        let empty = tempfile::tempdir().expect("tempdir");
        let err = Binaries::in_dir(empty.path().to_path_buf()).expect_err("no binaries there");
        let message = err.to_string();
        assert!(message.contains("make testenv"), "{message}");
        assert!(message.contains("etcd"), "{message}");
    }

    #[test]
    fn the_repository_is_the_one_the_tools_run_in() {
        // A clone somewhere else, entered from a directory inside it.
        let clone = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(clone.path().join("e2e/testenv")).expect("mkdir");
        fs::create_dir_all(clone.path().join("crds")).expect("mkdir");
        fs::write(clone.path().join("e2e/testenv/go.mod"), "module x\n").expect("write");
        let inside = clone.path().join("tools/testenv/src");
        fs::create_dir_all(&inside).expect("mkdir");
        assert_eq!(find_repository_root(&inside).as_deref(), Some(clone.path()));
        assert_eq!(find_repository_root(Path::new("/")), None);
        // cargo runs this test in this checkout's tools/testenv: its repository, whatever path the
        // cached build was compiled at.
        let running_in = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo"));
        assert_eq!(repository_root(), running_in.ancestors().nth(2).expect("root"));
    }

    #[test]
    fn free_ports_are_distinct_and_outside_the_ephemeral_range() {
        let mut seen = BTreeSet::new();
        let ephemeral = ephemeral_ports();
        for _ in 0..20 {
            for port in free_ports::<3>().expect("ports") {
                assert!(seen.insert(port), "{port} handed out twice");
                assert!(
                    !ephemeral.contains(&port),
                    "{port} is in the ephemeral range {ephemeral:?}, where a connection may take it"
                );
            }
        }
    }

    #[test]
    fn ports_outside_skip_the_ephemeral_range() {
        let ports = ports_outside(32_768..=60_999);
        assert_eq!(ports.first(), Some(&FIRST_TEST_PORT));
        assert!(ports.contains(&32_767) && ports.contains(&61_000));
        assert!(!ports.contains(&32_768) && !ports.contains(&60_999));
        assert!(ports_outside(1_024..=65_535).is_empty());
    }

    #[test]
    fn certificates_chain_to_the_ca() {
        let pki = Pki::generate().expect("pki");
        for pem in [&pki.ca_cert, &pki.apiserver_cert, &pki.admin_cert] {
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        }
        assert!(pki.sa_pub.contains("PUBLIC KEY"));
        assert!(pki.sa_key.contains("PRIVATE KEY"));
        assert_ne!(pki.apiserver_key, pki.admin_key);
    }
}
