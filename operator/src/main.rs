use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use seccomp_sentinel::{agent, api, audit, controller};
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

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller: keep one SeccompStatus per pod up to date. Connects like kubectl
    /// (KUBECONFIG, ~/.kube/config, or the in-cluster service account).
    Run(controller::ControllerConfig),
    /// One-shot report of effective seccomp profiles for manifests or a live cluster. Exit codes:
    /// 0 clean, 1 findings (with --fail-on), 2 input or connection errors.
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Crds { out_dir } => print_crds(out_dir),
        Command::Agent(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?
            .block_on(async {
                let client = kube::Client::try_default()
                    .await
                    .context("connecting to the cluster")?;
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

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("SENTINEL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn run(config: controller::ControllerConfig) -> anyhow::Result<()> {
    let kube_config = kube::Config::infer()
        .await
        .context("finding the cluster (KUBECONFIG, ~/.kube/config or in-cluster)")?;
    let client = kube::Client::try_from(kube_config.clone()).context("connecting to the cluster")?;
    // Evictions must see a PodDisruptionBudget's 429 at once, not after kube's default retries.
    let mut no_retry = kube_config;
    no_retry.default_retry = false;
    let eviction_client = kube::Client::try_from(no_retry).context("connecting to the cluster")?;
    controller::run(client, eviction_client, config, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
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
