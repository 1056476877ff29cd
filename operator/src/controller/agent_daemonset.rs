//! The node agent's DaemonSet, created and owned by the operator when `--agent-image` is set (an
//! OLM bundle cannot ship a DaemonSet). Owned by the operator's Deployment, so uninstalling the
//! operator removes it; removed by the operator when the agent is disabled.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::{Context, Error};
use crate::{
    api::CONTROLLER_MANAGER,
    client::{Brief, BriefWatch, RetryDelays, unreachable},
};

pub const AGENT_DAEMONSET: &str = "seccomp-sentinel-agent";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// The DaemonSet of the node agent (the same as `config/agent/daemonset.yaml`).
pub fn agent_daemonset(
    namespace: &str,
    image: &str,
    service_account: &str,
    owner: Option<&Deployment>,
) -> Value {
    let labels =
        json!({ "app.kubernetes.io/name": "seccomp-sentinel", "app.kubernetes.io/component": "agent" });
    let mut metadata = json!({
        "name": AGENT_DAEMONSET, "namespace": namespace,
        "labels": { "app.kubernetes.io/name": "seccomp-sentinel", "app.kubernetes.io/component": "agent", MANAGED_BY: CONTROLLER_MANAGER },
    });
    if let Some(owner) = owner.and_then(|d| d.controller_owner_ref(&())) {
        metadata["ownerReferences"] = json!([owner]);
    }
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": metadata,
        "spec": {
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "serviceAccountName": service_account,
                    "hostPID": true,
                    "nodeSelector": { "kubernetes.io/os": "linux" },
                    "tolerations": [{ "operator": "Exists" }],
                    "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
                    "containers": [{
                        "name": "agent",
                        "image": image,
                        "args": ["agent", "--proc-root=/host/proc"],
                        "env": [{ "name": "NODE_NAME", "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName" } } }],
                        "securityContext": {
                            "runAsUser": 0,
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"], "add": ["SYS_PTRACE", "DAC_READ_SEARCH"] }
                        },
                        "volumeMounts": [{ "name": "proc", "mountPath": "/host/proc", "readOnly": true }],
                        "resources": { "requests": { "cpu": "10m", "memory": "16Mi" }, "limits": { "cpu": "200m", "memory": "64Mi" } }
                    }],
                    "volumes": [{ "name": "proc", "hostPath": { "path": "/proc", "type": "Directory" } }]
                }
            }
        }
    })
}

/// Applies the DaemonSet; returns its generation after the apply.
async fn apply(ctx: &Context, namespace: &str, image: &str) -> Result<Option<i64>, Error> {
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), namespace);
    let owner = deployments.get_opt(&ctx.config.owner_deployment).await?;
    if owner.is_none() {
        warn!(deployment = %ctx.config.owner_deployment, "operator Deployment not found: the agent DaemonSet has no owner");
    }
    let desired = agent_daemonset(
        namespace,
        image,
        &ctx.config.agent_service_account,
        owner.as_ref(),
    );
    let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), namespace);
    ctx.writes.until_ready().await;
    let applied = api
        .patch(
            AGENT_DAEMONSET,
            &crate::client::apply_as(CONTROLLER_MANAGER),
            &Patch::Apply(&desired),
        )
        .await?;
    ctx.metrics.write("daemonset");
    info!(%namespace, %image, "node agent DaemonSet applied");
    Ok(applied.metadata.generation)
}

/// Keeps the agent DaemonSet as configured until the controller stops: applies it (again when
/// someone deletes it), or removes the one it manages when the agent is disabled.
pub(super) fn spawn(ctx: Arc<Context>) {
    let Some(namespace) = ctx.config.operator_namespace.clone() else {
        if ctx.config.agent_image.is_some() {
            warn!("--agent-image needs the operator's namespace (POD_NAMESPACE): no agent DaemonSet");
        }
        return;
    };
    let task_ctx = ctx.clone();
    task_ctx.spawn(async move {
        let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &namespace);
        match ctx.config.agent_image.clone() {
            Some(image) => keep_applied(&ctx, api, &namespace, &image).await,
            None => remove_managed(&api).await,
        }
    });
}

/// The waits before a failed request about the DaemonSet is made again: 1 s, doubling up to a
/// minute.
fn retry_delays() -> RetryDelays {
    RetryDelays::new(Duration::from_secs(1), Duration::from_secs(60))
}

/// Disabled: removes the DaemonSet this operator created, if any. A request that fails (an API
/// server away when the operator starts) is made again until the API server answers: before, one
/// failed read left the agent running for good.
async fn remove_managed(api: &Api<DaemonSet>) {
    let mut delays = retry_delays();
    loop {
        let outcome = match api.get_opt(AGENT_DAEMONSET).await {
            Ok(Some(ds)) if ds.labels().get(MANAGED_BY).map(String::as_str) == Some(CONTROLLER_MANAGER) => {
                match api.delete(AGENT_DAEMONSET, &DeleteParams::background()).await {
                    Ok(_) => {
                        info!("node agent disabled: DaemonSet deleted");
                        Ok(())
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => return,
            Err(e) if !unreachable(&e) => {
                warn!(error = %Brief(&e), "could not remove the agent DaemonSet");
                return;
            }
            Err(e) => {
                let delay = delays.after_failure();
                warn!(error = %Brief(&e), retry_in = ?delay, "could not remove the agent DaemonSet");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Keeps the DaemonSet as configured: applies it, again when someone deletes or changes it, and
/// again after a failed apply (with back-off), which before waited for the next change of the
/// DaemonSet, so an apply that failed at start left the cluster without the agent.
async fn keep_applied(ctx: &Context, api: Api<DaemonSet>, namespace: &str, image: &str) {
    let config = watcher::Config::default().fields(&format!("metadata.name={AGENT_DAEMONSET}"));
    let mut events = watcher(api, config)
        .backoff(crate::client::RetryDelays::for_watches())
        .boxed();
    let mut applied = false;
    // The spec's generation after the last apply: another one means someone changed it.
    let mut applied_generation: Option<i64> = None;
    let mut delays = retry_delays();
    // When a failed apply is made again.
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let event = tokio::select! {
            event = events.next() => match event {
                Some(event) => Some(event),
                None => return,
            },
            () = sleep_until(retry_at), if retry_at.is_some() => None,
        };
        let missing = match event {
            // A failed apply's time to try again.
            None => true,
            Some(Ok(watcher::Event::InitDone)) => !applied,
            Some(Ok(watcher::Event::Delete(_))) => true,
            Some(Ok(watcher::Event::Apply(ds) | watcher::Event::InitApply(ds))) => {
                applied && ds.metadata.generation != applied_generation
            }
            Some(Ok(_)) => false,
            Some(Err(e)) if crate::client::watch_expired(&e) => {
                info!("agent DaemonSet watch expired (410): listing again");
                false
            }
            Some(Err(e)) => {
                warn!(error = %BriefWatch(&e), "agent DaemonSet watch failed; retrying");
                false
            }
        };
        if !missing {
            continue;
        }
        match apply(ctx, namespace, image).await {
            Ok(generation) => {
                applied = true;
                applied_generation = generation;
                retry_at = None;
                delays = retry_delays();
            }
            Err(e) => {
                let delay = delays.after_failure();
                warn!(error = %e, retry_in = ?delay, "could not apply the agent DaemonSet");
                retry_at = Some(tokio::time::Instant::now() + delay);
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemonset_matches_the_kustomize_one() {
        let ds = agent_daemonset("ops", "registry.example/sentinel:1", "agent-sa", None);
        let spec = &ds["spec"]["template"]["spec"];
        assert_eq!(spec["hostPID"], true);
        assert_eq!(spec["serviceAccountName"], "agent-sa");
        assert_eq!(spec["containers"][0]["image"], "registry.example/sentinel:1");
        assert_eq!(spec["containers"][0]["volumeMounts"][0]["readOnly"], true);
        assert!(ds["metadata"].get("ownerReferences").is_none());
        let kustomize: Value = serde_saphyr::from_str(include_str!("../../../config/agent/daemonset.yaml"))
            .expect("daemonset yaml");
        let shipped = &kustomize["spec"]["template"]["spec"];
        for key in [
            "hostPID",
            "tolerations",
            "nodeSelector",
            "securityContext",
            "volumes",
        ] {
            assert_eq!(spec[key], shipped[key], "{key}");
        }
        for key in ["args", "securityContext", "volumeMounts", "resources", "env"] {
            assert_eq!(
                spec["containers"][0][key], shipped["containers"][0][key],
                "container {key}"
            );
        }
    }
}
