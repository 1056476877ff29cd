//! The operator's client stack (operator/src/client.rs) against the real API server: the
//! connections a burst of requests opens are closed once they are idle, not kept for the API
//! server to drop.
use std::{sync::atomic::Ordering, time::Duration};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, api::WatchParams};
use seccomp_sentinel::client::IDLE_CONNECTION_TIMEOUT;

use crate::support::{self, Relay, wait_for_explained};

#[tokio::test]
async fn connections_of_a_burst_are_closed_once_idle() {
    let mut config = support::cluster().config().await;
    let authority = config
        .cluster_url
        .authority()
        .expect("the API server URL has a host and port")
        .to_string();
    let relay = Relay::start(authority).await;
    // Same host (the certificate is checked against it), the relay's port.
    config.cluster_url = format!("https://{}", relay.address).parse().expect("relay URL");
    let client = seccomp_sentinel::client::connect(config, seccomp_sentinel::client::Component::Controller)
        .expect("the operator's client")
        .client;

    // A burst: eight requests in flight at once, each held for two seconds by the API server
    // (a watch that times out), so each needs a connection of its own.
    const BURST: usize = 8;
    let config_maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let watches = (0..BURST).map(|_| {
        let config_maps = config_maps.clone();
        async move {
            let events = config_maps
                .watch(&WatchParams::default().timeout(2), "0")
                .await
                .expect("start a watch");
            events
                .boxed()
                .try_collect::<Vec<_>>()
                .await
                .expect("watch events")
        }
    });
    futures::future::join_all(watches).await;
    let opened = relay.opened.load(Ordering::SeqCst);
    assert!(
        opened >= BURST,
        "{BURST} requests in flight at once opened only {opened} connections"
    );

    // Left idle, the pool closes them all; kube's default pool kept them until the API server
    // dropped them, about 90 s later.
    let open = relay.open.clone();
    wait_for_explained(
        "the burst's connections to close once idle",
        IDLE_CONNECTION_TIMEOUT + Duration::from_secs(15),
        || async { (open.load(Ordering::SeqCst) == 0).then_some(()) },
        || format!("{} of {opened} still open", relay.open.load(Ordering::SeqCst)),
    )
    .await;
}
