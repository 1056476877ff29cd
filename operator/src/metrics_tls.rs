//! The TLS set-up of the HTTPS metrics port while the operator runs: as the TLS flags fix it or,
//! where they fix nothing, as the OpenShift cluster's TLS security profile says
//! (`apiservers.config.openshift.io/cluster`). A changed profile is served from the next
//! handshake on, without a restart. Elsewhere, and until the profile is read, the default is
//! served: OpenShift's own default, "Intermediate".

use std::sync::Arc;

use futures::StreamExt;
use kube::{
    Api,
    api::{ApiResource, DynamicObject},
};
use tracing::{debug, info, warn};

use crate::{
    serving_cert::{ServingCert, ServingCertError},
    telemetry::MetricsTlsConfig,
    tls_profile::{OpenShiftTlsProfile, Resolved, TlsFlags, TlsPolicy},
};

/// The object OpenShift keeps its cluster-wide TLS security profile in.
const APISERVER_CONFIG: &str = "cluster";

pub struct MetricsTls {
    cert: Arc<ServingCert>,
    flags: TlsFlags,
    configs: tokio::sync::watch::Sender<Arc<rustls::ServerConfig>>,
}

impl MetricsTls {
    /// Serves what the flags fix, or the default until the cluster says otherwise.
    pub fn new(cert: Arc<ServingCert>, flags: TlsFlags) -> Result<MetricsTls, ServingCertError> {
        let fixed = flags.fixed();
        let policy = fixed.clone().unwrap_or_else(TlsPolicy::intermediate);
        let config = Arc::new(cert.clone().server_config(&policy)?);
        match fixed {
            Some(_) => {
                info!(tls = %policy.describe(), "/metrics: TLS as the flags set it (the cluster's TLS profile is not followed)")
            }
            None => {
                debug!(tls = %policy.describe(), "/metrics: TLS defaults until the cluster's TLS profile is read")
            }
        }
        Ok(MetricsTls {
            cert,
            flags,
            configs: tokio::sync::watch::channel(config).0,
        })
    }

    /// What the metrics port serves with, now and as it changes.
    pub fn configs(&self) -> MetricsTlsConfig {
        self.configs.subscribe()
    }

    /// Follows the cluster's TLS profile for as long as the operator runs, where the flags leave
    /// it to the cluster and the cluster has one (OpenShift); returns at once otherwise.
    pub async fn follow_cluster(self, client: kube::Client) {
        if self.flags.fixed().is_some() {
            return;
        }
        if !crate::client::discover_patiently(&client, "config.openshift.io/v1", "apiservers").await {
            debug!("no apiservers.config.openshift.io: /metrics keeps the default TLS set-up");
            return;
        }
        let resource = ApiResource {
            group: "config.openshift.io".into(),
            version: "v1".into(),
            api_version: "config.openshift.io/v1".into(),
            kind: "APIServer".into(),
            plural: "apiservers".into(),
        };
        let api = Api::<DynamicObject>::all_with(client, &resource);
        let stream = crate::client::watch_one(api, APISERVER_CONFIG);
        let mut stream = std::pin::pin!(stream);
        let mut served: Option<Resolved> = None;
        while let Some(event) = stream.next().await {
            let object = match event {
                Ok(object) => object,
                Err(error) if crate::client::watch_forbidden(&error) => {
                    let now = served
                        .as_ref()
                        .map_or_else(|| TlsPolicy::intermediate().describe(), |s| s.policy.describe());
                    warn!(tls = %now, "cannot read apiservers.config.openshift.io/{APISERVER_CONFIG} (the operator's role lacks `get`, `list` and `watch` on it): /metrics does not follow the cluster's TLS profile");
                    return;
                }
                Err(error) => {
                    debug!(error = %crate::client::BriefWatch(&error), "watch of the cluster's TLS profile; retrying");
                    continue;
                }
            };
            let profile = match object.as_ref().map(profile_of).transpose() {
                Ok(profile) => profile.flatten(),
                Err(e) => {
                    warn!(error = %e, "the cluster's TLS profile cannot be read: /metrics keeps its TLS set-up");
                    continue;
                }
            };
            let resolved = crate::tls_profile::from_openshift(profile.as_ref());
            if served.as_ref() == Some(&resolved) {
                continue;
            }
            match self.cert.clone().server_config(&resolved.policy) {
                Ok(config) => {
                    self.configs.send_replace(Arc::new(config));
                    info!(profile = %resolved.profile, tls = %resolved.policy.describe(), "/metrics follows the cluster's TLS profile");
                    for note in &resolved.notes {
                        warn!(profile = %resolved.profile, "the cluster's TLS profile: {note}");
                    }
                    served = Some(resolved);
                }
                Err(e) => {
                    warn!(profile = %resolved.profile, error = %e, "cannot serve the cluster's TLS profile: /metrics keeps its TLS set-up")
                }
            }
        }
    }
}

/// `spec.tlsSecurityProfile` of the APIServer config, `None` when it has none.
fn profile_of(object: &DynamicObject) -> Result<Option<OpenShiftTlsProfile>, serde_json::Error> {
    match object.data.pointer("/spec/tlsSecurityProfile") {
        None => Ok(None),
        Some(value) => serde_json::from_value(value.clone()),
    }
}
