//! `sentinel-testenv`: runs the local control plane of `e2e/bin` until interrupted, with the
//! seccomp-sentinel CRDs and the OpenShift SecurityContextConstraints API installed, and with
//! `--nodes`, two real nodes (kubelet `seccompDefault` off on `sentinel-node-a`, on on
//! `sentinel-node-b`) with the node agent's DaemonSet and the sample Localhost profiles of
//! `config/samples/profiles` (as `profiles/<name>.json`). Used by `make run` when no cluster is
//! configured.
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use sentinel_testenv::{self as testenv, Binaries, ControlPlane, install, node};

#[derive(Parser, Debug)]
struct Args {
    /// Where to copy the admin kubeconfig of the control plane.
    #[arg(long, default_value = ".testenv/kubeconfig")]
    kubeconfig_out: PathBuf,
    /// Also start the two test nodes (needs root, containerd, runc, containernetworking-plugins,
    /// busybox-static); the operator image is built from this binary.
    #[arg(long, value_name = "OPERATOR_BINARY")]
    nodes: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binaries = Binaries::locate()?;
    eprintln!("sentinel-testenv: starting etcd, kube-apiserver and kube-controller-manager");
    let plane = ControlPlane::start(&binaries)?;
    testenv::install_apis(&binaries, plane.kubeconfig())?;
    let nodes = match &args.nodes {
        Some(operator) => {
            let nodes = node::start_nodes(&plane, &binaries, operator, &[("a", false), ("b", true)])?;
            let handles: Vec<_> = nodes.iter().map(node::Node::handle).collect();
            let samples = testenv::repository_root().join("config/samples/profiles");
            install::place_profiles(&handles, &samples, "profiles")?;
            install::install_agent(
                &binaries,
                plane.kubeconfig(),
                plane.server(),
                plane.data_dir(),
                None,
            )?;
            nodes
        }
        None => Vec::new(),
    };
    if let Some(parent) = args.kubeconfig_out.parent() {
        std::fs::create_dir_all(parent).context("creating the kubeconfig directory")?;
    }
    // Copied beside and renamed: whoever waits for the file never reads half of it.
    let partial = args.kubeconfig_out.with_extension("partial");
    std::fs::copy(plane.kubeconfig(), &partial).context("copying the kubeconfig")?;
    std::fs::rename(&partial, &args.kubeconfig_out).context("placing the kubeconfig")?;
    eprintln!(
        "sentinel-testenv: API server {} ready{}; kubeconfig: {}\n  export KUBECONFIG={}\n  (Ctrl-C stops it)",
        plane.server(),
        if nodes.is_empty() {
            String::new()
        } else {
            format!(
                ", nodes {}",
                nodes.iter().map(|n| n.name()).collect::<Vec<_>>().join(", ")
            )
        },
        args.kubeconfig_out.display(),
        args.kubeconfig_out.display(),
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("sentinel-testenv: stopping");
    let _ = std::fs::remove_file(&args.kubeconfig_out);
    for mut node in nodes {
        node.stop();
    }
    plane.stop();
    Ok(())
}
