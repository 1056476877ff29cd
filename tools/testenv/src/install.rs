//! The project's own manifests on the test cluster, with only the overrides a test node needs:
//! a local image that is never pulled, the host's network with the API server on loopback (the
//! nodes have no pod network and no kube-proxy), and names and namespaces of their own (the test
//! cluster is shared).

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde_json::json;

use crate::{Binaries, Result, image::OPERATOR_IMAGE, io_context, node::NODE_PODS_LABEL, run_kubectl};

/// Namespace of the node agent's DaemonSet on the test cluster.
pub const AGENT_NAMESPACE: &str = "sentinel-test-agent";

/// Writes a kustomize overlay of the repository directory `base` into a new directory below
/// `parent` (kustomize takes bases by relative path only).
pub fn overlay(parent: &Path, base: &str, kustomization: &str) -> Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix("overlay-")
        .tempdir_in(parent)
        .map_err(io_context("creating an overlay directory"))?
        .keep();
    let relative = relative_path(&dir, &crate::repository_root().join(base));
    fs::write(
        dir.join("kustomization.yaml"),
        format!("resources: [{}]\n{kustomization}", relative.display()),
    )
    .map_err(io_context("writing an overlay"))?;
    Ok(dir)
}

fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for c in &to[common..] {
        path.push(c);
    }
    path
}

/// The port of an `https://127.0.0.1:PORT` API server URL.
pub fn api_server_port(server: &str) -> &str {
    server.rsplit(':').next().unwrap_or_default()
}

/// `images:` of an overlay that runs the operator's local test image.
pub fn image_override() -> String {
    let (image, tag) = OPERATOR_IMAGE
        .rsplit_once(':')
        .unwrap_or((OPERATOR_IMAGE, "latest"));
    format!(
        "images:\n- {{name: quay.io/seccomp-sentinel/seccomp-sentinel, newName: {image}, newTag: {tag}}}\n"
    )
}

/// JSON-patch lines (for a `patches:` entry) that put a workload's pods on the host's network,
/// with the local image never pulled and the API server on loopback.
pub fn host_network_patch(port: &str) -> String {
    format!(
        "    - {{op: add, path: /spec/template/spec/hostNetwork, value: true}}
    - {{op: add, path: /spec/template/spec/containers/0/imagePullPolicy, value: Never}}
{}{}",
        env_patch("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
        env_patch("KUBERNETES_SERVICE_PORT", port)
    )
}

/// A JSON-patch line that lets a workload's pods be scheduled onto the test nodes (their taint).
pub fn node_toleration_patch() -> String {
    format!(
        "    - {{op: add, path: /spec/template/spec/tolerations, value: [{{key: {}, operator: Exists, effect: NoSchedule}}]}}\n",
        crate::node::NODE_TAINT
    )
}

/// A JSON-patch line adding an environment variable to the first container.
pub fn env_patch(name: &str, value: &str) -> String {
    format!(
        "    - {{op: add, path: /spec/template/spec/containers/0/env/-, value: {{name: {name}, value: \"{value}\"}}}}\n"
    )
}

/// Creates `namespace`, its pods allowed on the test nodes.
pub fn node_namespace(binaries: &Binaries, kubeconfig: &Path, work: &Path, namespace: &str) -> Result<()> {
    let object = json!({ "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": namespace, "labels": { NODE_PODS_LABEL: "allowed" } } });
    let file = work.join(format!("namespace-{namespace}.json"));
    fs::write(&file, object.to_string()).map_err(io_context("writing a namespace"))?;
    run_kubectl(
        &binaries.kubectl(),
        kubeconfig,
        &["apply", "--server-side", "-f", &file.display().to_string()],
    )?;
    Ok(())
}

/// Installs the node agent of `config/agent` as a DaemonSet on every test node, in
/// [`AGENT_NAMESPACE`] with the prefix `test-`; `scan_interval` overrides the shipped one.
pub fn install_agent(
    binaries: &Binaries,
    kubeconfig: &Path,
    server: &str,
    work: &Path,
    scan_interval: Option<&str>,
) -> Result<()> {
    node_namespace(binaries, kubeconfig, work, AGENT_NAMESPACE)?;
    let dir = overlay(
        work,
        "config/agent",
        &format!(
            "namespace: {AGENT_NAMESPACE}\nnamePrefix: test-\n{}patches:\n- target: {{kind: DaemonSet}}\n  patch: |\n{}{}",
            image_override(),
            host_network_patch(api_server_port(server)),
            scan_interval
                .map(|i| env_patch("SENTINEL_SCAN_INTERVAL", i))
                .unwrap_or_default(),
        ),
    )?;
    run_kubectl(
        &binaries.kubectl(),
        kubeconfig,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-k",
            &dir.display().to_string(),
        ],
    )?;
    Ok(())
}

/// Copies the seccomp profiles of `from` (`*.json`) into `under/` of each node's seccomp directory.
pub fn place_profiles(nodes: &[crate::node::NodeHandle], from: &Path, under: &str) -> Result<usize> {
    let mut placed = 0;
    for entry in fs::read_dir(from)
        .map_err(io_context(format!("reading {}", from.display())))?
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        for node in nodes {
            let dir = node.seccomp_dir().join(under);
            fs::create_dir_all(&dir).map_err(io_context(format!("creating {}", dir.display())))?;
            let target = dir.join(entry.file_name());
            fs::copy(&path, &target).map_err(io_context(format!("copying {}", path.display())))?;
        }
        placed += 1;
    }
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlays_reach_their_base_by_a_relative_path() {
        assert_eq!(
            relative_path(
                Path::new("/tmp/x/overlay-1"),
                Path::new("/work/main/config/agent")
            ),
            PathBuf::from("../../../work/main/config/agent")
        );
        assert_eq!(
            relative_path(Path::new("/a/b"), Path::new("/a/c")),
            PathBuf::from("../c")
        );
        assert_eq!(api_server_port("https://127.0.0.1:6443"), "6443");
    }
}
