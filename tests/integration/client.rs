//! The operator's client stack (operator/src/client.rs) against the real API server: the
//! connections a burst of requests opens are closed once they are idle, not kept for the API
//! server to drop.
use std::{sync::atomic::Ordering, time::Duration};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::{
    core::v1::{ConfigMap, ServiceAccount},
    rbac::v1::ClusterRoleBinding,
};
use kube::{
    Api,
    api::{PostParams, WatchParams},
};
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

/// An HTTP proxy on loopback that tunnels each CONNECT and records where to.
struct ConnectProxy {
    address: std::net::SocketAddr,
    targets: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ConnectProxy {
    async fn start() -> ConnectProxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let address = listener.local_addr().expect("proxy address");
        let targets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = targets.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    // The request head: `CONNECT host:port HTTP/1.1`, headers, an empty line.
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                        if inbound.read_exact(&mut byte).await.is_err() {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let mut words = head.split_whitespace();
                    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
                        let _ = inbound
                            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                            .await;
                        return;
                    };
                    seen.lock().expect("targets").push(target.to_string());
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        let _ = inbound.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                        return;
                    };
                    if inbound
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .is_ok()
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        ConnectProxy { address, targets }
    }
}

/// kubectl's `get namespace` and seccomp-sentinel's `audit` (with `audit`'s flags), each given
/// `kubeconfig`: the two programs whose connections are compared.
fn kubectl_and_audit<'a>(
    kubectl: &'a std::path::Path,
    sentinel: &'a std::path::Path,
    audit: &[&'a str],
    kubeconfig: &'a str,
    namespace: &'a str,
) -> [(&'a std::path::Path, Vec<&'a str>); 2] {
    [
        (
            kubectl,
            vec!["--kubeconfig", kubeconfig, "get", "namespace", namespace],
        ),
        (
            sentinel,
            audit
                .iter()
                .copied()
                .chain(["--kubeconfig", kubeconfig])
                .collect(),
        ),
    ]
}

/// Runs `program args` with `environment` set and no other proxy setting; its exit status and
/// standard error.
async fn run_with(program: &std::path::Path, args: &[&str], environment: &[(&str, &str)]) -> (bool, String) {
    let mut command = tokio::process::Command::new(program);
    command.args(args);
    for name in ["HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "KUBECONFIG"] {
        command.env_remove(name);
    }
    command.envs(environment.iter().copied());
    let output = command.output().await.expect("run the program");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// The proxy is taken where kubectl takes it: never to a loopback API server from `HTTPS_PROXY`
/// (Go's rule), always from the kubeconfig cluster's `proxy-url`. kube took `HTTPS_PROXY` for every
/// server and then refused it ("requires the disabled feature kube/http-proxy"), so the audit and
/// `make run` failed from any shell with a proxy set, where kubectl worked.
#[tokio::test]
async fn a_proxy_is_taken_where_kubectl_takes_it() {
    let ctx = support::context("proxy").await;
    let sentinel = std::path::Path::new(env!("CARGO_BIN_EXE_seccomp-sentinel"));
    let kubectl = ctx.cluster.kubectl.clone();
    let kubeconfig = ctx.cluster.kubeconfig().display().to_string();
    let audit = ["audit", "-n", ctx.ns.as_str(), "-o", "json"];
    let with_kubeconfig: Vec<&str> = audit
        .iter()
        .copied()
        .chain(["--kubeconfig", &kubeconfig])
        .collect();

    // A proxy in the environment that nothing answers at: the API server is on loopback, so
    // kubectl goes straight to it, and so does the audit, given the kubeconfig either way.
    // A NO_PROXY with empty entries or names Go does not know is no error either (kube refused
    // it: "failed to parse NO_PROXY/no_proxy env var").
    let nowhere = format!("http://127.0.0.1:{}", support::free_port());
    for environment in [
        vec![("HTTPS_PROXY", nowhere.as_str())],
        vec![("https_proxy", nowhere.as_str())],
        vec![("HTTPS_PROXY", nowhere.as_str()), ("NO_PROXY", ",<local>,,")],
    ] {
        let (kubectl_ok, kubectl_err) = run_with(
            &kubectl,
            &["--kubeconfig", &kubeconfig, "get", "namespace", &ctx.ns],
            &environment,
        )
        .await;
        assert!(kubectl_ok, "kubectl with {environment:?}: {kubectl_err}");
        let (flag_ok, flag_err) = run_with(sentinel, &with_kubeconfig, &environment).await;
        assert!(flag_ok, "audit --kubeconfig with {environment:?}: {flag_err}");
        let mut inferred_environment = environment.clone();
        inferred_environment.push(("KUBECONFIG", kubeconfig.as_str()));
        let (inferred_ok, inferred_err) = run_with(sentinel, &audit, &inferred_environment).await;
        assert!(
            inferred_ok,
            "audit with KUBECONFIG and {environment:?}: {inferred_err}"
        );
    }

    // A credential plugin still runs with the proxy settings the process was given: it may need
    // them to reach its issuer.
    let account = format!("proxy-{}", ctx.ns);
    let bindings: Api<ClusterRoleBinding> = Api::all(ctx.client.clone());
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({ "metadata": { "name": "auditor" } }))
                .expect("account"),
        )
        .await
        .expect("create the service account");
    bindings
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": { "name": account },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
                "subjects": [{ "kind": "ServiceAccount", "name": "auditor", "namespace": ctx.ns }],
            }))
            .expect("binding"),
        )
        .await
        .expect("bind the service account");
    let token = ctx.cluster.service_account_token(&ctx.ns, "auditor").await;
    let seen_path = std::env::temp_dir().join(format!("{}-plugin-saw", ctx.ns));
    let credential = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": { "token": token },
    });
    let script = format!(
        "printf '%s|%s' \"$HTTPS_PROXY\" \"$NO_PROXY\" > {}; printf '%s' '{credential}'",
        seen_path.display()
    );
    let with_token = ctx.cluster.kubeconfig_with_token("unused");
    let with_plugin = with_token.replace(
        "    token: unused\n",
        &format!(
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [\"-c\", {}]\n      interactiveMode: Never\n",
            serde_json::Value::String(script)
        ),
    );
    assert_ne!(
        with_plugin, with_token,
        "the kubeconfig's token line was replaced"
    );
    let plugin_path = std::env::temp_dir().join(format!("{}-plugin-kubeconfig", ctx.ns));
    std::fs::write(&plugin_path, with_plugin).expect("write the plugin's kubeconfig");
    let plugin_kubeconfig = plugin_path.display().to_string();
    let environment = [("HTTPS_PROXY", nowhere.as_str()), ("NO_PROXY", ",example.com")];
    for (program, args) in kubectl_and_audit(&kubectl, sentinel, &audit, &plugin_kubeconfig, &ctx.ns) {
        let _ = std::fs::remove_file(&seen_path);
        let (ok, stderr) = run_with(program, &args, &environment).await;
        assert!(ok, "{} with a credential plugin: {stderr}", program.display());
        let seen = std::fs::read_to_string(&seen_path).unwrap_or_default();
        assert_eq!(
            seen,
            format!("{nowhere}|,example.com"),
            "the proxy settings {} gave its credential plugin",
            program.display()
        );
    }
    let _ = bindings.delete(&account, &Default::default()).await;
    let _ = std::fs::remove_file(&plugin_path);
    let _ = std::fs::remove_file(&seen_path);

    // The cluster's proxy-url is taken whatever the server: both go through the proxy.
    let proxy = ConnectProxy::start().await;
    let server_line = std::fs::read_to_string(&kubeconfig)
        .expect("kubeconfig")
        .lines()
        .find(|line| line.trim_start().starts_with("server: "))
        .expect("the kubeconfig names its server")
        .to_string();
    let indent = &server_line[..server_line.len() - server_line.trim_start().len()];
    let proxied = std::fs::read_to_string(&kubeconfig).expect("kubeconfig").replace(
        &server_line,
        &format!("{server_line}\n{indent}proxy-url: http://{}", proxy.address),
    );
    let proxied_path = std::env::temp_dir().join(format!("{}-proxied-kubeconfig", ctx.ns));
    std::fs::write(&proxied_path, proxied).expect("write the proxied kubeconfig");
    let proxied_path = proxied_path.display().to_string();
    let server = server_line
        .trim_start()
        .trim_start_matches("server: https://")
        .to_string();
    for (program, args) in kubectl_and_audit(&kubectl, sentinel, &audit, &proxied_path, &ctx.ns) {
        let before = proxy.targets.lock().expect("targets").len();
        let (ok, stderr) = run_with(program, &args, &[]).await;
        assert!(
            ok,
            "{} through the kubeconfig's proxy: {stderr}",
            program.display()
        );
        let targets = proxy.targets.lock().expect("targets").clone();
        assert!(
            targets[before..].contains(&server),
            "{} made no CONNECT to {server} through the proxy: {targets:?}",
            program.display()
        );
    }
    let _ = std::fs::remove_file(&proxied_path);
}

/// `KUBECONFIG` lists files to merge; one that does not exist is skipped, as kubectl does. kube
/// refused the whole list for it ("reading …: No such file or directory"), so the audit and
/// `make run` failed where kubectl worked. A file that cannot be parsed is named in the error.
#[tokio::test]
async fn a_kubeconfig_list_with_a_missing_file_is_read_as_kubectl_reads_it() {
    let ctx = support::context("kubeconfig-list").await;
    let sentinel = std::path::Path::new(env!("CARGO_BIN_EXE_seccomp-sentinel"));
    let kubectl = ctx.cluster.kubectl.clone();
    let real = ctx.cluster.kubeconfig().display().to_string();
    let missing = std::env::temp_dir()
        .join(format!("{}-no-such-kubeconfig", ctx.ns))
        .display()
        .to_string();
    let audit = ["audit", "-n", ctx.ns.as_str(), "-o", "json"];
    for list in [format!("{missing}:{real}"), format!("{real}:{missing}")] {
        let environment = [("KUBECONFIG", list.as_str())];
        let (kubectl_ok, kubectl_err) =
            run_with(&kubectl, &["get", "namespace", &ctx.ns], &environment).await;
        assert!(kubectl_ok, "kubectl with KUBECONFIG={list}: {kubectl_err}");
        let (audit_ok, audit_err) = run_with(sentinel, &audit, &environment).await;
        assert!(audit_ok, "audit with KUBECONFIG={list}: {audit_err}");
        let (context_ok, context_err) = run_with(
            sentinel,
            &[&audit[..], &["--context", "sentinel-testenv"]].concat(),
            &environment,
        )
        .await;
        assert!(
            context_ok,
            "audit --context with KUBECONFIG={list}: {context_err}"
        );
    }
    // None of them there: the error names the first.
    let list = format!("{missing}:{missing}-too");
    let (audit_ok, audit_err) = run_with(sentinel, &audit, &[("KUBECONFIG", list.as_str())]).await;
    assert!(!audit_ok, "audit with KUBECONFIG={list} succeeded");
    assert!(
        audit_err.contains(&format!("reading {missing}: No such file or directory")),
        "{audit_err}"
    );
    // A file that is no kubeconfig: the error names it, as kubectl's does (kube's named none).
    let broken = std::env::temp_dir().join(format!("{}-broken-kubeconfig", ctx.ns));
    std::fs::write(&broken, "clusters: [").expect("write the broken kubeconfig");
    let broken = broken.display().to_string();
    let list = format!("{real}:{broken}");
    for (args, environment) in [
        (audit.to_vec(), vec![("KUBECONFIG", list.as_str())]),
        ([&audit[..], &["--kubeconfig", &broken]].concat(), vec![]),
    ] {
        let (ok, stderr) = run_with(sentinel, &args, &environment).await;
        assert!(!ok, "audit {args:?} with {environment:?} succeeded");
        assert!(
            stderr.contains(&format!("{broken}: failed to parse kubeconfig YAML")),
            "{stderr}"
        );
    }
    let (kubectl_ok, kubectl_err) = run_with(
        &kubectl,
        &["get", "namespace", &ctx.ns],
        &[("KUBECONFIG", list.as_str())],
    )
    .await;
    assert!(
        !kubectl_ok && kubectl_err.contains(&broken),
        "kubectl: {kubectl_err}"
    );
    let _ = std::fs::remove_file(&broken);
}
