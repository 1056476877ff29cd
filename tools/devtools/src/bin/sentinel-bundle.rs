//! `sentinel-bundle` (`make bundle`): writes the OLM bundle (registry+v1) to `bundle/` from the
//! same sources as the kustomize install: the CSV base of `config/manifests`, the Deployment of
//! `config/manager`, the RBAC of `config/rbac` bound to the manager's service account, the CRDs of
//! `crds/` and the samples of `config/samples`. A bundle cannot hold a DaemonSet: the operator
//! runs the node agent itself (image from `RELATED_IMAGE_AGENT`); its service account and RBAC are OLM permissions
//! of the CSV, bound in the install namespace.
use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser, Debug)]
struct Args {
    /// Repository root.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Output directory.
    #[arg(long, default_value = "bundle")]
    out: PathBuf,
    /// The operator image (by digest for certification).
    #[arg(
        long,
        env = "IMG",
        default_value = "quay.io/seccomp-sentinel/seccomp-sentinel:v0.1.0"
    )]
    image: String,
    /// The node agent's image (default: the operator's; it is the same binary). Given to the
    /// operator as RELATED_IMAGE_AGENT, which disconnected mirroring rewrites.
    #[arg(long, env = "AGENT_IMG")]
    agent_image: Option<String>,
    /// The CSV's createdAt (fixed, so that a regenerated bundle is identical).
    #[arg(long, default_value = "2026-11-28T00:00:00Z")]
    created_at: String,
}

fn read_yaml(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn one(path: &Path) -> anyhow::Result<Value> {
    read_yaml(path)?
        .into_iter()
        .next()
        .with_context(|| format!("{} is empty", path.display()))
}

fn write_yaml(path: &Path, value: &Value) -> anyhow::Result<()> {
    fs::write(path, serde_saphyr::to_string(value)?).with_context(|| format!("writing {}", path.display()))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = &args.root;
    let mut csv = one(&root.join("config/manifests/bases/seccomp-sentinel.clusterserviceversion.yaml"))?;
    let version = csv["spec"]["version"]
        .as_str()
        .context("spec.version")?
        .to_string();

    // The Deployment, with the image and without what OLM sets itself.
    let deployment = one(&root.join("config/manager/manager.yaml"))?;
    let mut spec = deployment["spec"].clone();
    let containers = spec["template"]["spec"]["containers"]
        .as_array_mut()
        .context("containers")?;
    let agent_image = args.agent_image.clone().unwrap_or_else(|| args.image.clone());
    for c in containers.iter_mut() {
        c["image"] = json!(args.image);
        // Under OLM the operator runs the node agent itself (a bundle cannot hold a DaemonSet),
        // with the image of RELATED_IMAGE_AGENT.
        let env = c["env"].as_array().cloned().unwrap_or_default();
        let mut env: Vec<Value> = env
            .into_iter()
            .filter(|e| e["name"] != "RELATED_IMAGE_AGENT")
            .collect();
        env.push(json!({ "name": "RELATED_IMAGE_AGENT", "value": agent_image }));
        c["env"] = json!(env);
    }
    let service_account = spec["template"]["spec"]["serviceAccountName"]
        .as_str()
        .context("serviceAccountName")?
        .to_string();
    let cluster_rules = one(&root.join("config/rbac/manager_role.yaml"))?["rules"].clone();
    let namespaced_rules = one(&root.join("config/rbac/namespace_role.yaml"))?["rules"].clone();
    let agent_account = one(&root.join("config/agent/service_account.yaml"))?["metadata"]["name"]
        .as_str()
        .context("the agent's service account name")?
        .to_string();
    let agent_rules = one(&root.join("config/agent/role.yaml"))?["rules"].clone();
    // OLM owns the CRDs: the manager may only read its own SeccompStatus CRD, by name.
    for rule in cluster_rules.as_array().into_iter().flatten() {
        let on_crds = rule["resources"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r == "customresourcedefinitions" || r == "*"));
        if !on_crds {
            continue;
        }
        let read_only = rule["verbs"]
            .as_array()
            .is_some_and(|verbs| verbs.iter().all(|v| v == "list" || v == "watch" || v == "get"));
        let by_name = rule["resourceNames"].as_array().is_some_and(|n| !n.is_empty());
        if !(read_only && by_name) {
            bail!("the manager may only read CRDs named in resourceNames: {rule}");
        }
    }
    csv["spec"]["install"] = json!({
        "strategy": "deployment",
        "spec": {
            "deployments": [{ "name": deployment["metadata"]["name"], "label": deployment["metadata"]["labels"], "spec": spec }],
            // The agent's rules as OLM permissions: OLM creates its service account and binds it
            // in whatever namespace the operator is installed into (a ClusterRoleBinding in the
            // bundle would name one namespace for good).
            "clusterPermissions": [
                { "serviceAccountName": service_account, "rules": cluster_rules },
                { "serviceAccountName": agent_account, "rules": agent_rules },
            ],
            "permissions": [{ "serviceAccountName": service_account, "rules": namespaced_rules }],
        }
    });
    csv["spec"]["relatedImages"] = json!([
        { "name": "seccomp-sentinel", "image": args.image },
        { "name": "agent", "image": agent_image },
    ]);
    // OLM installs the CSV in the namespace of its OperatorGroup; the base's placeholder goes.
    if let Some(meta) = csv["metadata"].as_object_mut() {
        meta.remove("namespace");
    }
    csv["metadata"]["annotations"]["containerImage"] = json!(args.image);
    csv["metadata"]["annotations"]["createdAt"] = json!(args.created_at);

    // Samples → alm-examples.
    let mut examples = Vec::new();
    for name in [
        "policy-audit-all.yaml",
        "policy-label-production.yaml",
        "policy-evict-payments.yaml",
    ] {
        examples.extend(read_yaml(&root.join("config/samples").join(name))?);
    }
    // SeccompStatuses are written by the operator; the example shows what one looks like.
    examples.push(json!({
        "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompStatus",
        "metadata": { "name": "web-6d4f9", "namespace": "shop" },
        "spec": { "podUID": "00000000-0000-0000-0000-000000000000" },
    }));
    csv["metadata"]["annotations"]["alm-examples"] = json!(serde_json::to_string_pretty(&examples)?);

    let manifests = args.out.join("manifests");
    let metadata = args.out.join("metadata");
    if args.out.exists() {
        fs::remove_dir_all(&args.out)?;
    }
    fs::create_dir_all(&manifests)?;
    fs::create_dir_all(&metadata)?;
    let package = csv["metadata"]["name"]
        .as_str()
        .context("metadata.name")?
        .split(".v")
        .next()
        .unwrap_or("")
        .to_string();
    write_yaml(
        &manifests.join(format!("{package}.clusterserviceversion.yaml")),
        &csv,
    )?;
    // CRDs, named <group>_<plural>.yaml.
    for crd in seccomp_sentinel::api::crds() {
        let value = serde_json::to_value(&crd)?;
        let file = format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural);
        write_yaml(&manifests.join(file), &value)?;
    }
    // Who may read /metrics: a ClusterRole to bind to the scraper (OLM creates it as written).
    write_yaml(
        &manifests.join("seccomp-sentinel-metrics-reader_rbac.authorization.k8s.io_v1_clusterrole.yaml"),
        &one(&root.join("config/rbac/metrics_reader_role.yaml"))?,
    )?;
    // The metrics Service travels as a bundle object.
    let service = one(&root.join("config/manager/service.yaml"))?;
    let mut service = service;
    if let Some(meta) = service["metadata"].as_object_mut() {
        meta.remove("namespace");
    }
    write_yaml(
        &manifests.join("seccomp-sentinel-metrics_v1_service.yaml"),
        &service,
    )?;

    let channels = "candidate";
    let annotations = json!({ "annotations": {
        "operators.operatorframework.io.bundle.mediatype.v1": "registry+v1",
        "operators.operatorframework.io.bundle.manifests.v1": "manifests/",
        "operators.operatorframework.io.bundle.metadata.v1": "metadata/",
        "operators.operatorframework.io.bundle.package.v1": package,
        "operators.operatorframework.io.bundle.channels.v1": channels,
        "operators.operatorframework.io.bundle.channel.default.v1": channels,
        "com.redhat.openshift.versions": "v4.20",
    }});
    write_yaml(&metadata.join("annotations.yaml"), &annotations)?;
    let mut dockerfile = String::from(
        "# The OLM bundle image (make bundle); a non-runnable image of manifests.\nFROM scratch\n",
    );
    for (k, v) in annotations["annotations"].as_object().context("annotations")? {
        dockerfile.push_str(&format!("LABEL {k}={}\n", v.as_str().unwrap_or_default()));
    }
    dockerfile.push_str("LABEL com.redhat.delivery.operator.bundle=true\nCOPY bundle/manifests /manifests/\nCOPY bundle/metadata /metadata/\nCOPY LICENSE /licenses/LICENSE\n");
    fs::write(args.root.join("bundle.Dockerfile"), dockerfile)?;
    eprintln!("bundle: {package} v{version} written to {}", args.out.display());
    Ok(())
}
