//! OLM on the test control plane, the way OperatorHub installs: OLM's own `olm` and `catalog`
//! operators (built from operator-lifecycle-manager by `e2e/olm/build.sh`) run as processes
//! against the API server, and a file-based catalog, rendered from a bundle directory by the real
//! `opm` and checked by `opm validate`, is served by `opm serve` on loopback for a CatalogSource's
//! `spec.address`. With the bundle's objects embedded in the catalog, OLM needs no bundle image
//! (and no unpack job), which a machine without a registry could not give it.

use std::{
    fs,
    net::{Ipv4Addr, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use crate::{
    Binaries, Component, ControlPlane, Result, TestenvError, apply_and_wait_established, free_ports,
    io_context, spawn_supervised, wait_until,
};

/// The OLM binaries and CRDs `e2e/olm/build.sh` writes.
const TOOLS: [&str; 3] = ["olm", "catalog", "opm"];

fn check_built(binaries: &Binaries) -> Result<()> {
    for tool in TOOLS {
        let path = binaries.path(tool);
        if !path.is_file() {
            return Err(TestenvError::MissingOlmTool(path));
        }
    }
    let crds = binaries.path("olm-crds");
    if !crds.is_dir() {
        return Err(TestenvError::MissingOlmTool(crds));
    }
    Ok(())
}

/// Installs OLM's CRDs (from the operator-framework/api module the OLM build uses).
pub fn install_crds(binaries: &Binaries, kubeconfig: &Path) -> Result<()> {
    check_built(binaries)?;
    apply_and_wait_established(&binaries.kubectl(), kubeconfig, &[&binaries.path("olm-crds")])
}

/// OLM's `olm` and `catalog` operators, watching the whole cluster, with `namespace` as OLM's own
/// (its global catalog namespace). Stopped when dropped.
pub struct Operators {
    components: Vec<Component>,
    pub log_dir: PathBuf,
}

impl Operators {
    pub fn start(plane: &ControlPlane, binaries: &Binaries, namespace: &str) -> Result<Self> {
        check_built(binaries)?;
        let log_dir = plane.data_dir().join(format!("olm-{namespace}"));
        fs::create_dir_all(&log_dir).map_err(io_context("creating OLM's log directory"))?;
        let mut components = Vec::new();
        // No ClusterOperator status (that API is OpenShift's); the rest as OLM's own manifests run it.
        for (name, args) in [
            (
                "olm",
                vec![
                    format!("--namespace={namespace}"),
                    "--writeStatusName=".to_string(),
                    "--writePackageServerStatusName=".to_string(),
                ],
            ),
            (
                "catalog",
                vec![
                    format!("--namespace={namespace}"),
                    format!("--kubeconfig={}", plane.kubeconfig().display()),
                    "--writeStatusName=".to_string(),
                ],
            ),
        ] {
            let mut command = Command::new(binaries.path(name));
            command.args(&args).env("KUBECONFIG", plane.kubeconfig());
            let log = log_dir.join(format!("{name}.log"));
            components.push(spawn_supervised(name, &log, &command, None)?);
        }
        Ok(Operators { components, log_dir })
    }

    /// The end of each operator's log, for a failure message.
    pub fn log_tails(&self) -> String {
        self.components
            .iter()
            .map(|component| {
                let name = &component.name;
                let text = fs::read_to_string(self.log_dir.join(format!("{name}.log"))).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                format!(
                    "--- {name}:\n{}",
                    lines[lines.len().saturating_sub(40)..].join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Operators {
    fn drop(&mut self) {
        for component in self.components.drain(..) {
            component.stop();
        }
    }
}

/// Runs `opm ARGS` and returns its standard output.
fn opm(binaries: &Binaries, args: &[&str]) -> Result<String> {
    let output = Command::new(binaries.path("opm"))
        .args(args)
        .output()
        .map_err(io_context("running opm"))?;
    if !output.status.success() {
        return Err(TestenvError::Command {
            command: format!("opm {}", args.join(" ")),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Writes a file-based catalog of one package with one channel holding the bundle of
/// `bundle_dir` (`opm init` + the channel + `opm render`) into `catalog_dir`, and validates it
/// with `opm validate`.
pub fn render_catalog(
    binaries: &Binaries,
    bundle_dir: &Path,
    package: &str,
    channel: &str,
    catalog_dir: &Path,
) -> Result<()> {
    check_built(binaries)?;
    let package_dir = catalog_dir.join(package);
    fs::create_dir_all(&package_dir).map_err(io_context("creating the catalog directory"))?;
    // JSON documents, one after the other, are a catalog file as opm reads it.
    let head = opm(
        binaries,
        &["init", package, "--default-channel", channel, "-o", "json"],
    )?;
    let bundle = opm(
        binaries,
        &["render", &bundle_dir.display().to_string(), "-o", "json"],
    )?;
    let bundle_name = serde_json::from_str::<serde_json::Value>(&bundle)
        .ok()
        .and_then(|b| b["name"].as_str().map(str::to_string))
        .ok_or_else(|| TestenvError::Command {
            command: "opm render".into(),
            output: format!("no bundle name in:\n{bundle}"),
        })?;
    let channel_entry = serde_json::json!({ "schema": "olm.channel", "package": package, "name": channel,
        "entries": [{ "name": bundle_name }] });
    fs::write(
        package_dir.join("catalog.json"),
        format!("{head}\n{channel_entry}\n{bundle}"),
    )
    .map_err(io_context("writing the catalog"))?;
    opm(binaries, &["validate", &catalog_dir.display().to_string()])?;
    Ok(())
}

/// `opm serve` of a catalog directory, its gRPC API on a free port. Stopped when dropped.
pub struct CatalogServer {
    component: Option<Component>,
    /// `127.0.0.1:PORT`, for a CatalogSource's `spec.address`.
    pub address: String,
}

impl CatalogServer {
    pub fn start(binaries: &Binaries, catalog_dir: &Path, work: &Path) -> Result<Self> {
        check_built(binaries)?;
        let [port, pprof] = free_ports::<2>()?;
        let log = work.join("opm-serve.log");
        let mut command = Command::new(binaries.path("opm"));
        command.args([
            "serve".to_string(),
            catalog_dir.display().to_string(),
            format!("--port={port}"),
            format!("--pprof-addr=127.0.0.1:{pprof}"),
            format!("--termination-log={}", work.join("opm-termination.log").display()),
        ]);
        let mut component = spawn_supervised("opm serve", &log, &command, None)?;
        wait_until(
            "opm serve",
            &log,
            Duration::from_secs(60),
            || TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok(),
            || component.exited().map(|s| format!("exited with {s}")),
        )?;
        Ok(CatalogServer {
            component: Some(component),
            address: format!("127.0.0.1:{port}"),
        })
    }
}

impl Drop for CatalogServer {
    fn drop(&mut self) {
        if let Some(component) = self.component.take() {
            component.stop();
        }
    }
}
