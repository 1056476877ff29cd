//! Whether the SeccompStatus CRD is being deleted (an uninstall, a mistaken `kubectl delete crd`).
//! The API server then deletes every SeccompStatus and waits, up to a minute at a time, until it
//! lists none. Before Kubernetes 1.34 it still lets a server-side apply create one meanwhile: an
//! operator putting back each status it saw deleted held the CRD's deletion back a minute per
//! round. While the CRD is being deleted, the controller writes no status; once it is established
//! again, the pods without a status are passed at once (a relist of the statuses, which finds
//! none missing that it knew of, would not).

use std::sync::{Arc, atomic::Ordering};

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, CustomResourceExt};
use tracing::{debug, info, warn};

use super::Context;
use crate::api::SeccompStatus;

/// Watches the SeccompStatus CRD alone (RBAC grants it by name). Where the
/// operator may not read it (an install whose role predates the rule), it says so once and goes
/// on as before: statuses written whenever their pods need them.
pub(super) fn spawn(ctx: &Arc<Context>) {
    let api = Api::<CustomResourceDefinition>::all(ctx.client.clone());
    let task_ctx = ctx.clone();
    ctx.spawn(async move {
        let ctx = task_ctx;
        let stream = crate::client::watch_one(api, SeccompStatus::crd_name());
        let mut stream = std::pin::pin!(stream);
        // Whether statuses could be written at the last event (`None` before the first).
        let mut was_live: Option<bool> = None;
        while let Some(event) = stream.next().await {
            // (being deleted, served)
            let (terminating, live) = match event {
                Ok(Some(crd)) => (being_deleted(&crd), served(&crd)),
                Ok(None) => (false, false),
                Err(error) if crate::client::watch_forbidden(&error) => {
                    warn!(crd = SeccompStatus::crd_name(), "cannot watch the SeccompStatus CRD (its role lacks `list` and `watch` on it): a deletion of the CRD is not noticed, and statuses are written while it goes");
                    return;
                }
                Err(error) => {
                    debug!(error = %crate::client::BriefWatch(&error), "watch of the SeccompStatus CRD; retrying");
                    continue;
                }
            };
            let was_terminating = ctx.status_crd_terminating.swap(terminating, Ordering::AcqRel);
            if terminating && !was_terminating {
                info!("the SeccompStatus CRD is being deleted: no status is written until it is installed again");
            }
            // Installed again: the pods passed over meanwhile get their statuses.
            if live && was_live == Some(false) {
                let missing = ctx.state().pods_without_status_afresh();
                info!(pods = missing.len(), "the SeccompStatus CRD is installed again: writing the statuses");
                ctx.queue.add_all(missing);
            }
            was_live = Some(live);
        }
    });
}

fn being_deleted(crd: &CustomResourceDefinition) -> bool {
    crd.metadata.deletion_timestamp.is_some()
}

/// Established (the API server's handler for it answers) and not being deleted.
fn served(crd: &CustomResourceDefinition) -> bool {
    !being_deleted(crd)
        && crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Established" && c.status == "True"))
}
