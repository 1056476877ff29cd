use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use seccomp_sentinel::client::{ApiClients, Component};
use seccomp_sentinel::{agent, api, audit, controller, telemetry};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

/// Reports, and can enforce, the effective seccomp profile of every container in a cluster.
#[derive(Parser, Debug)]
#[command(name = "seccomp-sentinel", version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "SENTINEL_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum MetricsAuth {
    TokenReview,
    None,
}

/// Flags of `run` beyond the controller's own.
#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    controller: controller::ControllerConfig,

    /// The kubeconfig of the cluster, as operators built on controller-runtime take it; without
    /// it, KUBECONFIG, ~/.kube/config, or the pod's service account.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,

    /// Where /livez and /readyz are served (`:8081` means every interface, IPv6 and IPv4).
    /// Also `--health-probe-bind-address`, the name operators scaffolded by kubebuilder use.
    #[arg(
        long,
        visible_alias = "health-probe-bind-address",
        env = "SENTINEL_HEALTH_ADDR",
        default_value = ":8081",
        value_parser = parse_addr
    )]
    health_addr: SocketAddr,

    /// Where /metrics is served. Also `--metrics-bind-address`, kubebuilder's name.
    #[arg(
        long,
        visible_alias = "metrics-bind-address",
        env = "SENTINEL_METRICS_ADDR",
        default_value = ":8443",
        value_parser = parse_addr
    )]
    metrics_addr: SocketAddr,

    /// Serve /metrics over HTTPS (the scraper's bearer token is then never in clear on the
    /// network); `--metrics-secure=false` serves plain HTTP, and lets /metrics share the health
    /// port.
    #[arg(
        long,
        env = "SENTINEL_METRICS_SECURE",
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::Set
    )]
    metrics_secure: bool,

    /// A directory with the certificate of /metrics, `tls.crt` and `tls.key` (a mounted
    /// kubernetes.io/tls Secret: OpenShift's service CA, cert-manager); read again when they
    /// change. Without it, or until it has them, a self-signed certificate is served. Also
    /// `--metrics-cert-path`, kubebuilder's name.
    #[arg(
        long,
        visible_alias = "metrics-cert-path",
        env = "SENTINEL_METRICS_CERT_DIR",
        value_parser = clap::builder::TypedValueParser::map(clap::builder::NonEmptyStringValueParser::new(), PathBuf::from)
    )]
    metrics_cert_dir: Option<PathBuf>,

    /// The oldest TLS version /metrics accepts: VersionTLS12 (or 1.2) or VersionTLS13 (or 1.3).
    /// Unset, and with --metrics-tls-cipher-suites unset too, it follows the cluster's TLS
    /// security profile on OpenShift, and is VersionTLS12 elsewhere. Either TLS flag given, the
    /// flags decide and the profile is not followed.
    #[arg(long, env = "SENTINEL_METRICS_TLS_MIN_VERSION", value_enum)]
    metrics_tls_min_version: Option<seccomp_sentinel::serving_cert::TlsMinVersion>,

    /// The TLS 1.2 cipher suites /metrics offers, comma-separated, IANA names as Kubernetes
    /// components take them (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) or OpenSSL's. Only ECDHE suites
    /// with AES-GCM or ChaCha20-Poly1305 are served; TLS 1.3's suites are always on. Unset: every
    /// one of them, or the cluster's TLS profile on OpenShift (see --metrics-tls-min-version).
    #[arg(
        long,
        env = "SENTINEL_METRICS_TLS_CIPHER_SUITES",
        value_delimiter = ',',
        value_parser = seccomp_sentinel::tls_profile::parse_flag_cipher
    )]
    metrics_tls_cipher_suites: Vec<seccomp_sentinel::tls_profile::FlagCipher>,

    /// Who may read /metrics: `token-review` answers only requests whose bearer token the API
    /// server accepts (TokenReview) and whose user may `get` the non-resource URL /metrics
    /// (SubjectAccessReview; see config/rbac/metrics_reader_role.yaml); `none` serves it to
    /// anyone who can reach the port.
    #[arg(
        long,
        env = "SENTINEL_METRICS_AUTH",
        value_enum,
        default_value = "token-review"
    )]
    metrics_auth: MetricsAuth,

    /// Run only while holding a coordination.k8s.io Lease in the operator's namespace
    /// (POD_NAMESPACE), so that of several replicas exactly one writes and acts.
    /// `--leader-elect=false` turns it off again, as in a patch over the shipped manifests.
    // A value is optional, as for Go operators' flags: a bare flag alone would make the
    // `--leader-elect=false` of a kustomize patch a start-up error.
    #[arg(
        long,
        env = "SENTINEL_LEADER_ELECT",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::Set
    )]
    leader_elect: bool,

    /// Name of the Lease.
    #[arg(long, env = "SENTINEL_LEASE_NAME", default_value = "seccomp-sentinel", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    lease_name: String,

    /// Seconds a Lease lasts without renewal; a standby takes over after this.
    // The Lease's leaseDurationSeconds, an int32 the API server wants above 0: anything else
    // passed here and failed only once the Lease was written.
    #[arg(
        long,
        env = "SENTINEL_LEASE_DURATION",
        default_value = "15",
        value_parser = clap::value_parser!(u64).range(1..=i32::MAX as u64)
    )]
    lease_duration: u64,
}

/// The TLS set-up of /metrics, `None` for plain HTTP; its certificate is watched for rotations
/// from here on.
fn metrics_tls(args: &RunArgs) -> anyhow::Result<Option<seccomp_sentinel::metrics_tls::MetricsTls>> {
    use seccomp_sentinel::serving_cert::{RELOAD_INTERVAL, Served, ServingCert};
    if !args.metrics_secure {
        return Ok(None);
    }
    // Port 0 for both is two ports the system picks.
    if args.health_addr == args.metrics_addr && args.metrics_addr.port() != 0 {
        anyhow::bail!(
            "--metrics-addr {} is the health port too: metrics over HTTPS need a port of their own \
             (the kubelet probes the health port over HTTP), or --metrics-secure=false",
            args.metrics_addr
        );
    }
    let cert = Arc::new(
        // One line, as the other start-up errors.
        ServingCert::load(args.metrics_cert_dir.clone())
            .map_err(|e| anyhow::anyhow!("the certificate of /metrics (--metrics-cert-dir): {e}"))?,
    );
    match (cert.served(), cert.dir()) {
        (Served::FromDirectory, Some(dir)) => {
            info!(dir = %dir.display(), "serving /metrics over HTTPS with the certificate of the directory")
        }
        (_, Some(dir)) => warn!(
            dir = %dir.display(),
            "no tls.crt and tls.key in the directory yet: serving /metrics with a self-signed certificate until they come"
        ),
        (_, None) => info!("serving /metrics over HTTPS with a self-signed certificate"),
    }
    tokio::spawn(cert.clone().watch(RELOAD_INTERVAL));
    let flags = seccomp_sentinel::tls_profile::TlsFlags {
        min_version: args.metrics_tls_min_version,
        cipher_suites: (!args.metrics_tls_cipher_suites.is_empty())
            .then(|| args.metrics_tls_cipher_suites.clone()),
    };
    Ok(Some(seccomp_sentinel::metrics_tls::MetricsTls::new(cert, flags)?))
}

/// `:port` is every interface, of both IP families (as for Go operators): the IPv6 wildcard,
/// which `telemetry::Listeners` binds for IPv4 too. The IPv4 wildcard it was left the probes of an
/// IPv6 cluster, which connect to the pod's IPv6 address, refused.
fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    let full = if value.starts_with(':') {
        format!("[::]{value}")
    } else {
        value.to_string()
    };
    full.parse().map_err(|e| format!("{value:?}: {e}"))
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller: keep one SeccompStatus per pod up to date. Connects like kubectl
    /// (KUBECONFIG, ~/.kube/config, or the in-cluster service account).
    Run(RunArgs),
    /// One-shot report of effective seccomp profiles for manifests or a live cluster. Exit codes:
    /// 0 clean, 1 findings (with --fail-on), 2 input or connection errors, or a --fail-on that
    /// cannot be answered.
    Audit(audit::AuditArgs),
    /// Node agent (one per node): reads the seccomp mode the kernel enforces for each running
    /// container from /proc and records it in the pod's SeccompStatus.
    Agent(agent::AgentArgs),
    /// Print the CustomResourceDefinitions of seccomp-sentinel as YAML, or write them to a directory.
    Crds {
        /// Write one file per CRD into this directory instead of printing them.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

/// Takes the proxy settings out of the environment, where kube would read them its own way, and
/// keeps them to decide the proxy as kubectl does (`client::ProxyEnvironment`).
fn take_proxy_environment() {
    let taken = seccomp_sentinel::client::ProxyEnvironment::of_process();
    for (name, _) in taken.variables() {
        // SAFETY: called first thing in main, while the process has one thread.
        unsafe { std::env::remove_var(name) };
    }
    taken.keep();
}

fn main() -> anyhow::Result<()> {
    take_proxy_environment();
    let cli = Cli::parse();
    let default_filter = match cli.command {
        Command::Audit(_) => AUDIT_LOG_FILTER,
        _ => DEFAULT_LOG_FILTER,
    };
    init_logging(cli.log_format, default_filter);
    match cli.command {
        Command::Crds { out_dir } => print_crds(out_dir),
        Command::Agent(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?
            .block_on(async {
                info!(
                    version = env!("CARGO_PKG_VERSION"),
                    "seccomp-sentinel node agent starting"
                );
                let config = seccomp_sentinel::client::infer_config("in a pod, or KUBECONFIG")
                    .await
                    .map_err(anyhow::Error::msg)?;
                let client = seccomp_sentinel::client::connect(config, Component::Agent)
                    .context("connecting to the cluster")?
                    .client;
                agent::run(client, args, shutdown_signal())
                    .await
                    .map_err(anyhow::Error::from)
            }),
        Command::Audit(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let code = runtime.block_on(audit::run(args));
            std::process::exit(code);
        }
        Command::Run(config) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?
            .block_on(run(config)),
    }
}

/// Sets up leader election (None: stopped meanwhile), asking again while the API server cannot be
/// reached or answer (a control-plane upgrade that restarts it with the operator): exiting made
/// the pod crash-loop, and the restart back-off (up to 5 minutes) kept the operator down after
/// the API server was back. Any other answer (RBAC, a namespace that does not exist) stays a
/// start-up error.
async fn lease_manager(
    builder: impl Fn() -> kube_lease_manager::LeaseManagerBuilder,
    stop: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<Option<kube_lease_manager::LeaseManager>> {
    use kube_lease_manager::LeaseManagerError;
    use std::time::Duration;
    let mut delays =
        seccomp_sentinel::client::RetryDelays::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        let built = tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            built = builder().build() => built,
        };
        match built {
            Ok(manager) => return Ok(Some(manager)),
            Err(LeaseManagerError::KubeError(e)) if seccomp_sentinel::client::unreachable(&e) => {
                let delay = delays.after_failure();
                warn!(
                    error = %seccomp_sentinel::client::Brief(&e),
                    retry_in = ?delay,
                    "cannot set up leader election yet: trying again"
                );
                tokio::select! {
                    _ = stop.cancelled() => return Ok(None),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            // The API server's answer in one line (kube's text repeats the whole Status three
            // times over, in its Debug form).
            Err(LeaseManagerError::KubeError(e)) => {
                anyhow::bail!(
                    "setting up leader election: {}",
                    seccomp_sentinel::client::Brief(&e)
                )
            }
            Err(e) => return Err(anyhow::Error::from(e).context("setting up leader election")),
        }
    }
}

/// The default log filter. kube's client logs a whole response body at WARN when it cannot decode
/// it; the operator decodes every watched object leniently, and keeps that logger at ERROR so no
/// object's content (environment values among it) can reach the logs that way.
const DEFAULT_LOG_FILTER: &str = "info,kube_client::client=error";

/// The audit's default: it reports what it could not read itself (a note, an error, its exit
/// code), so kube's client, which logs every 5xx answer as an ERROR line, is silent.
const AUDIT_LOG_FILTER: &str = "warn,kube_client=off";

fn init_logging(format: LogFormat, default_filter: &str) {
    use std::io::IsTerminal;
    // A SENTINEL_LOG that is no filter is said, not dropped silently (it is set to see more);
    // an empty one (a manifest's `value: ""`) counts as unset, where it left errors alone.
    let (filter, refused) = match std::env::var("SENTINEL_LOG") {
        Ok(value) if !value.trim().is_empty() => match EnvFilter::try_new(&value) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new(default_filter), Some((value, e))),
        },
        _ => (EnvFilter::new(default_filter), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a terminal: log collectors get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    if let Some((value, error)) = refused {
        tracing::warn!(value, %error, default = default_filter, "SENTINEL_LOG is not a log filter: the default is used");
    }
}

async fn run(mut args: RunArgs) -> anyhow::Result<()> {
    info!(
        version = env!("CARGO_PKG_VERSION"),
        "seccomp-sentinel controller starting"
    );
    args.controller
        .apply_related_images(std::env::var("RELATED_IMAGE_AGENT").ok());
    // Before the cluster: a certificate that cannot be used is a mistake to show at once.
    let metrics_tls = metrics_tls(&args)?;
    let kube_config = match &args.kubeconfig {
        Some(path) => seccomp_sentinel::client::config_from_file(path, &Default::default())
            .await
            .map_err(anyhow::Error::msg)?,
        None => seccomp_sentinel::client::infer_config("KUBECONFIG, ~/.kube/config, or in a pod")
            .await
            .map_err(anyhow::Error::msg)?,
    };
    // Evictions must see a PodDisruptionBudget's 429 at once, not after kube's default retries.
    let ApiClients {
        client,
        without_retry: eviction_client,
    } = seccomp_sentinel::client::connect(kube_config, Component::Controller)
        .context("connecting to the cluster")?;
    // Before the lease: a standby with a selector the API server refuses would fail only when
    // it came to lead.
    if let Some(selector) = &args.controller.policy_selector {
        controller::check_policy_selector(&client, selector).await?;
    }

    spawn_heap_trimmer();
    let stop = tokio_util::sync::CancellationToken::new();
    let signal_stop = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signal_stop.cancel();
    });
    let metrics = Arc::new(telemetry::Metrics::default());
    let server_metrics = metrics.clone();
    // Bound before anything starts: a port already taken is a start-up error, not a silent
    // operator without probes or metrics.
    let listeners = telemetry::Listeners::bind(
        args.health_addr,
        args.metrics_addr,
        metrics_tls.as_ref().map(|tls| tls.configs()),
    )
    .await?;
    if let Some(tls) = metrics_tls {
        tokio::spawn(tls.follow_cluster(client.clone()));
    }
    let (health, metrics_addr) = listeners.addresses();
    info!(?health, metrics = ?metrics_addr, metrics_secure = args.metrics_secure, "serving health probes and metrics");
    let authorizer = (args.metrics_auth == MetricsAuth::TokenReview).then(|| {
        Arc::new(seccomp_sentinel::metrics_auth::MetricsAuthorizer::new(
            client.clone(),
        ))
    });
    let server_stop = stop.clone().cancelled_owned();
    let server_error_stop = stop.clone();
    let server = tokio::spawn(async move {
        let served = telemetry::serve(server_metrics, listeners, authorizer, server_stop).await;
        if let Err(e) = &served {
            error!(error = %e, "the health and metrics server failed: stopping");
            server_error_stop.cancel();
        }
        served
    });

    let context = Arc::new(controller::Context::new(
        client.clone(),
        eviction_client,
        args.controller.clone(),
        metrics.clone(),
    ));
    if !args.leader_elect {
        metrics.is_leader.set(1);
        controller::run_with(context, stop.clone().cancelled_owned()).await?;
    } else {
        let namespace = args
            .controller
            .operator_namespace
            .clone()
            .context("--leader-elect needs the operator's namespace (POD_NAMESPACE)")?;
        let identity = args
            .controller
            .instance
            .clone()
            .unwrap_or_else(|| format!("seccomp-sentinel-{}", std::process::id()));
        // Shutdown is honoured at every stage: setting up the lease talks to the API server too.
        let builder = || {
            kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &args.lease_name)
                .with_namespace(&namespace)
                .with_identity(&identity)
                .with_duration(args.lease_duration)
                .with_grace(args.lease_duration.div_ceil(3).max(1))
        };
        let started = lease_manager(builder, &stop).await?;
        let Some(manager) = started else {
            metrics
                .shutting_down
                .store(true, std::sync::atomic::Ordering::Release);
            let _ = server.await;
            return Ok(());
        };
        let watched = tokio::select! {
            _ = stop.cancelled() => None,
            watched = manager.watch() => Some(watched),
        };
        let Some((mut leading, lease_task)) = watched else {
            metrics
                .shutting_down
                .store(true, std::sync::atomic::Ordering::Release);
            let _ = server.await;
            return Ok(());
        };
        // A standby is healthy and ready to take over.
        metrics.ready.store(true, std::sync::atomic::Ordering::Release);
        tracing::info!(lease = %args.lease_name, %identity, "waiting for the lease");
        let acquired = tokio::select! {
            _ = stop.cancelled() => false,
            result = leading.wait_for(|leader| *leader) => result.is_ok(),
        };
        if acquired {
            tracing::info!(%identity, "leading");
            metrics.ready.store(false, std::sync::atomic::Ordering::Release);
            metrics.is_leader.set(1);
            // Losing the lease stops the controller like a signal does.
            let lost = stop.child_token();
            let lost_trigger = lost.clone();
            let mut watch_leading = leading.clone();
            let lost_watch = tokio::spawn(async move {
                if watch_leading.wait_for(|leader| !*leader).await.is_ok() {
                    tracing::warn!("lost the lease; stopping");
                    lost_trigger.cancel();
                }
            });
            let result = controller::run_with(context, lost.cancelled_owned()).await;
            // Every receiver must go for the manager to release the lease.
            lost_watch.abort();
            let _ = lost_watch.await;
            result?;
            metrics.is_leader.set(0);
        }
        metrics
            .shutting_down
            .store(true, std::sync::atomic::Ordering::Release);
        // Dropping the receiver makes the manager release the lease.
        drop(leading);
        match tokio::time::timeout(std::time::Duration::from_secs(10), lease_task).await {
            Ok(Ok(Ok(_))) => tracing::info!("lease released"),
            other => tracing::warn!(?other, "lease release did not complete"),
        }
    }
    metrics
        .shutting_down
        .store(true, std::sync::atomic::Ordering::Release);
    stop.cancel();
    let _ = server.await;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
/// glibc keeps the memory freed after the initial lists (whole pages of decoded objects) in its
/// heap, so a restarted operator would hold its start-up peak for good. Handing free pages back
/// every few seconds makes the resident size follow what is live; it costs a walk of the heap.
fn spawn_heap_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(async {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // SAFETY: malloc_trim has no preconditions; it only returns free memory to the system.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    });
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown requested");
}

fn print_crds(out_dir: Option<PathBuf>) -> anyhow::Result<()> {
    if let Some(dir) = &out_dir {
        // As controller-gen's output directories: made when missing.
        std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    }
    for crd in api::crds() {
        let yaml = api::crd_yaml(&crd).context("serializing a CRD")?;
        match &out_dir {
            Some(dir) => {
                let path = dir.join(api::crd_file_name(&crd));
                std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
            }
            None => print!("{yaml}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// `--help` is for users: no Rust item names (`Type::method`) or rustdoc links in any flag's text.
    #[test]
    fn flag_help_names_no_rust_items() {
        super::Cli::command().debug_assert();
        let mut commands = vec![super::Cli::command()];
        while let Some(command) = commands.pop() {
            for arg in command.get_arguments() {
                for text in [arg.get_help(), arg.get_long_help()].into_iter().flatten() {
                    let text = text.to_string();
                    assert!(
                        !text.contains("::") && !text.contains("[`"),
                        "{} --{}: {text}",
                        command.get_name(),
                        arg.get_id()
                    );
                }
            }
            commands.extend(command.get_subcommands().cloned());
        }
    }

    fn run_args(flags: &[&str]) -> Result<super::RunArgs, clap::Error> {
        use clap::Parser;
        let cli = super::Cli::try_parse_from(["seccomp-sentinel", "run"].iter().chain(flags))?;
        match cli.command {
            super::Command::Run(run) => Ok(run),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn leader_elect(flags: &[&str]) -> Result<bool, clap::Error> {
        run_args(flags).map(|run| run.leader_elect)
    }

    /// A Lease lasts at least a second, and no longer than its int32 field can say.
    #[test]
    fn lease_durations_the_api_server_cannot_store_are_refused() {
        assert_eq!(run_args(&[]).expect("the default").lease_duration, 15);
        assert_eq!(
            run_args(&["--lease-duration=1"])
                .expect("one second")
                .lease_duration,
            1
        );
        assert!(run_args(&["--lease-duration=2147483647"]).is_ok());
        for refused in ["--lease-duration=0", "--lease-duration=2147483648"] {
            assert!(run_args(&[refused]).is_err(), "{refused}");
        }
    }

    /// The flag names of operators scaffolded by kubebuilder, as a patch over their manifests
    /// writes them, set the same addresses.
    #[test]
    fn kubebuilders_address_flags_are_understood() {
        let run = run_args(&[
            "--metrics-bind-address=127.0.0.1:9090",
            "--health-probe-bind-address=:9091",
        ])
        .expect("kubebuilder's names");
        assert_eq!(run.metrics_addr.to_string(), "127.0.0.1:9090");
        assert_eq!(run.health_addr.to_string(), "[::]:9091");
    }

    /// HTTPS metrics by default; kubebuilder's `--metrics-secure=false` and `--metrics-cert-path`
    /// mean what they mean there; an empty directory is refused, not taken for the current one.
    #[test]
    fn metrics_are_secure_unless_turned_off() {
        let run = run_args(&[]).expect("defaults");
        assert!(run.metrics_secure);
        assert_eq!(run.metrics_addr.to_string(), "[::]:8443");
        assert_eq!(run.metrics_cert_dir, None);
        let run =
            run_args(&["--metrics-secure=false", "--metrics-cert-path=/certs"]).expect("kubebuilder's names");
        assert!(!run.metrics_secure);
        assert_eq!(run.metrics_cert_dir, Some(std::path::PathBuf::from("/certs")));
        assert!(run_args(&["--metrics-secure"]).expect("bare").metrics_secure);
        assert!(run_args(&["--metrics-cert-dir="]).is_err());
        use seccomp_sentinel::{serving_cert::TlsMinVersion, tls_profile::FlagCipher};
        let defaults = run_args(&[]).expect("defaults");
        assert_eq!(defaults.metrics_tls_min_version, None, "left to the cluster");
        assert!(
            defaults.metrics_tls_cipher_suites.is_empty(),
            "left to the cluster"
        );
        for (flag, version) in [
            ("--metrics-tls-min-version=VersionTLS13", TlsMinVersion::Tls13),
            ("--metrics-tls-min-version=1.3", TlsMinVersion::Tls13),
            ("--metrics-tls-min-version=VersionTLS12", TlsMinVersion::Tls12),
        ] {
            assert_eq!(
                run_args(&[flag]).expect(flag).metrics_tls_min_version,
                Some(version)
            );
        }
        assert!(run_args(&["--metrics-tls-min-version=VersionTLS11"]).is_err());
        let suites = run_args(&[
            "--metrics-tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256",
        ])
        .expect("IANA names")
        .metrics_tls_cipher_suites;
        assert_eq!(
            suites,
            vec![
                FlagCipher::Tls12(rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
                FlagCipher::Tls13
            ]
        );
        let refused = run_args(&["--metrics-tls-cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA"])
            .expect_err("CBC is not served");
        assert!(refused.to_string().contains("not served here"), "{refused}");
        assert!(run_args(&["--metrics-tls-cipher-suites="]).is_err());
    }

    /// The shipped manifests pass `--leader-elect`; a patch turning it off writes
    /// `--leader-elect=false`, as for any Go operator, and must not stop the start.
    #[test]
    fn leader_election_is_turned_on_and_off_as_go_operators_flags_are() {
        assert!(
            std::env::var_os("SENTINEL_LEADER_ELECT").is_none(),
            "unset SENTINEL_LEADER_ELECT"
        );
        assert!(!leader_elect(&[]).expect("no flag"));
        assert!(leader_elect(&["--leader-elect"]).expect("bare flag"));
        assert!(leader_elect(&["--leader-elect=true"]).expect("=true"));
        assert!(!leader_elect(&["--leader-elect=false"]).expect("=false"));
        assert!(leader_elect(&["--leader-elect", "--lease-name=x"]).expect("a flag after it"));
        let refused = leader_elect(&["--leader-elect=maybe"]).expect_err("not a boolean");
        assert!(refused.to_string().contains("maybe"), "{refused}");
    }
}
