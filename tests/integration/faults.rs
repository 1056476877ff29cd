//! Faults, injected with real processes: objects the client cannot decode, an API server that
//! goes away while the watch misses changes (and etcd compacted meanwhile, so the watch must list
//! again), an operator killed mid first sync, a leader killed right after evicting, shutdown
//! while the first list hangs, a write whose answer is lost, a write made while the status watch
//! lists again, the CRDs deleted and installed again, secrets that must never reach the logs, an
//! operator whose clock runs ahead of the API server's, a node agent that cannot read its Node at
//! first, and the trust boundaries (someone else's fields in a status, an `openshift.io/scc` set by a pod's
//! creator).
use std::{
    collections::BTreeMap,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use seccomp_sentinel::api::{PolicyAction, SeccompPolicy, SeccompStatus};
use serde_json::json;

use crate::{
    policies::{adopted_pod, create_policy, delete_policy, evict_quickly, pod_json, policy_result},
    support::{self, Operator, POLICY_LABEL, TestContext, unique_name, wait_for, wait_for_explained},
};

const TIMEOUT: Duration = Duration::from_secs(120);

/// The connection settings of `kubeconfig` (another API server's; the test cluster's own are
/// `TestCluster::config`).
async fn config_for(kubeconfig: &Path) -> kube::Config {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    seccomp_sentinel::client::from_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config")
}

async fn client_for(kubeconfig: &Path) -> Client {
    Client::try_from(config_for(kubeconfig).await).expect("client")
}

fn pod(name: &str, profile: Option<&str>) -> Pod {
    let mut spec = json!({ "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] });
    if let Some(profile) = profile {
        spec["securityContext"] = json!({ "seccompProfile": { "type": profile } });
    }
    serde_json::from_value(json!({ "metadata": { "name": name }, "spec": spec })).expect("pod")
}

async fn create_pods(ctx: &TestContext, names: impl IntoIterator<Item = String>, profile: Option<&str>) {
    let pods: Api<Pod> = ctx.api();
    for name in names {
        pods.create(&PostParams::default(), &pod(&name, profile))
            .await
            .expect("create pod");
    }
}

/// Every pod of the namespace has a SeccompStatus of its current UID with the profile its spec
/// asks for (RuntimeDefault, else Unconfined), and no status is left for a pod that is gone.
async fn all_correct(ctx: &TestContext) -> Option<usize> {
    // Read untyped: some tests plant values the typed client cannot decode.
    let resource = |group: &str, version: &str, kind: &str, plural: &str| {
        kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(group, version, kind),
            plural,
        )
    };
    let pods: Api<kube::api::DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ctx.ns, &resource("", "v1", "Pod", "pods"));
    let statuses: Api<kube::api::DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &ctx.ns,
        &resource(
            "seccomp.sentinel.dev",
            "v1alpha1",
            "SeccompStatus",
            "seccompstatuses",
        ),
    );
    let pods = pods.list(&ListParams::default()).await.ok()?.items;
    let statuses: BTreeMap<String, kube::api::DynamicObject> = statuses
        .list(&ListParams::default())
        .await
        .ok()?
        .items
        .into_iter()
        .map(|s| (s.name_any(), s))
        .collect();
    for p in &pods {
        let wanted = if p.data["spec"]["securityContext"]["seccompProfile"].is_object() {
            "RuntimeDefault"
        } else {
            "Unconfined"
        };
        let s = statuses.get(&p.name_any())?;
        let right_pod = s
            .owner_references()
            .iter()
            .any(|o| o.kind == "Pod" && Some(&o.uid) == p.uid().as_ref());
        if !right_pod || s.data["status"]["profile"] != wanted {
            return None;
        }
    }
    (statuses.len() == pods.len()).then_some(pods.len())
}

/// `metadata.generation` of every status: a SeccompStatus has no status subresource, so each
/// write of new content moves it; 1 means written exactly once.
async fn generations(ctx: &TestContext) -> BTreeMap<String, i64> {
    let statuses: Api<SeccompStatus> = ctx.api();
    statuses
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|s| (s.name_any(), s.metadata.generation.unwrap_or_default()))
        .collect()
}

/// Every status was written exactly once (its generation is still 1).
async fn assert_written_once(ctx: &TestContext) {
    let rewritten: Vec<(String, i64)> = generations(ctx)
        .await
        .into_iter()
        .filter(|(_, g)| *g != 1)
        .collect();
    assert!(rewritten.is_empty(), "written more than once: {rewritten:?}");
}

/// After a watch gap long enough for etcd to be compacted, the operator lists again (410 Gone)
/// and puts right every change it missed: pods created, deleted, and recreated under the same
/// name with a new UID and another profile. The operator watches two namespaces, each with its
/// own watches that list again on their own: neither relist takes the other namespace's pods
/// for gone (a policy over both counts them all).
#[tokio::test]
async fn changes_during_a_watch_gap_are_reconciled_after_the_relist() {
    let ctx = support::context("fault-relist").await;
    let other = support::context("fault-relist-b").await;
    let plane = ctx.cluster.plane().expect("the local control plane");
    let binaries = sentinel_testenv::Binaries::locate().expect("binaries");
    let mut second = plane.second_apiserver(&binaries).expect("a second API server");
    let policies: Api<SeccompPolicy> = Api::all(ctx.client.clone());
    create_from_json(
        &policies,
        json!({
            "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompPolicy",
            "metadata": { "name": ctx.ns, "labels": { POLICY_LABEL: ctx.ns } },
            "spec": { "namespaceSelector": { "matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "In", "values": [ctx.ns, other.ns] }] } },
        }),
    )
    .await;
    let matched = || async {
        let status = policies.get(&ctx.ns).await.ok()?.status?;
        Some(status.matched_pods)
    };
    let mut config = support::namespace_config(&ctx);
    config.namespaces.push(other.ns.clone());
    let operator = Operator::start(client_for(second.kubeconfig()).await, config).await;
    create_pods(&ctx, (0..30).map(|i| format!("p{i:02}")), None).await;
    create_pods(&other, (0..10).map(|i| format!("o{i:02}")), None).await;
    wait_for("every status", TIMEOUT, || all_correct(&ctx)).await;
    wait_for("every status of the other namespace", TIMEOUT, || {
        all_correct(&other)
    })
    .await;
    wait_for("the policy to count both namespaces", TIMEOUT, || async {
        (matched().await? == 40).then_some(())
    })
    .await;

    // The operator's API server goes; the cluster changes through the other one.
    second.stop();
    let pods: Api<Pod> = ctx.api();
    for i in 0..15 {
        pods.delete(&format!("p{i:02}"), &DeleteParams::default().grace_period(0))
            .await
            .expect("delete");
    }
    wait_for("the deleted pods to be gone", TIMEOUT, || async {
        (pods.list(&ListParams::default()).await.ok()?.items.len() == 15).then_some(())
    })
    .await;
    // Five come back under the same names, with new UIDs and another profile; twenty are new.
    create_pods(&ctx, (0..5).map(|i| format!("p{i:02}")), Some("RuntimeDefault")).await;
    create_pods(&ctx, (0..20).map(|i| format!("new{i:02}")), None).await;
    let other_pods: Api<Pod> = other.api();
    for i in 0..5 {
        other_pods
            .delete(&format!("o{i:02}"), &DeleteParams::default().grace_period(0))
            .await
            .expect("delete");
    }
    let revision = plane.compact_etcd().expect("compaction");
    assert!(revision > 0);
    second.start().expect("the API server back");

    let reconciled = Instant::now();
    let count = wait_for("every change made during the gap", TIMEOUT, || all_correct(&ctx)).await;
    assert_eq!(count, 40);
    let other_count = wait_for("the other namespace's changes", TIMEOUT, || all_correct(&other)).await;
    assert_eq!(other_count, 5);
    let statuses_correct = reconciled.elapsed();
    wait_for(
        "the policy to count the pods of both namespaces",
        TIMEOUT,
        || async { (matched().await? == 45).then_some(()) },
    )
    .await;
    // The watches resumed from before the compaction were refused with 410 (expired) and listed
    // again: that is how a watch is meant to recover, not an error to warn about or count.
    let stats = &operator.ctx.stats;
    assert!(
        stats.watches_expired.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no watch expired: the scenario did not happen"
    );
    eprintln!(
        "relist: {count} + {other_count} pods correct {:.1}s after the API server came back, \
         the policy's count {:.1}s after",
        statuses_correct.as_secs_f64(),
        reconciled.elapsed().as_secs_f64()
    );
    operator.stop().await;
}

/// A new file name in the local control plane's data directory.
fn data_file(ctx: &TestContext, prefix: &str, extension: &str) -> std::path::PathBuf {
    ctx.cluster
        .plane()
        .expect("the local control plane")
        .data_dir()
        .join(format!("{}.{extension}", unique_name(prefix)))
}

/// The operator's own process, with a log of its own.
struct Process {
    child: Child,
    log: std::path::PathBuf,
}

impl Process {
    fn start(ctx: &TestContext, kubeconfig: &Path, extra: &[&str], env: &[(&str, &str)]) -> Process {
        let log = data_file(ctx, "operator", "log");
        let file = std::fs::File::create(&log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_seccomp-sentinel"))
            .args(["run", "--namespaces", &ctx.ns, "--kubelet-seccomp-default=false"])
            .args(["--health-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0"])
            .args(
                // This test's policies, unless `extra` says which.
                (!extra.iter().any(|a| a.starts_with("--policy-selector")))
                    .then(|| format!("--policy-selector={POLICY_LABEL}={}", ctx.ns)),
            )
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start the operator");
        Process { child, log }
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
    }

    fn wait_exit(&mut self, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.child.try_wait().ok().flatten().is_some() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill -9` in the middle of the first sync: the next start writes what is missing and nothing
/// twice (each status written once: generation 1).
#[tokio::test]
async fn an_operator_killed_mid_first_sync_converges_without_rewriting() {
    let ctx = support::context("fault-kill9").await;
    create_pods(&ctx, (0..60).map(|i| format!("p{i:02}")), None).await;
    let kubeconfig = ctx.cluster.kubeconfig().to_path_buf();
    // Slow writes, so the kill lands mid-sync.
    let slow = ["--max-writes-per-second=10", "--write-burst=1"];
    let mut first = Process::start(&ctx, &kubeconfig, &slow, &[]);
    wait_for("some statuses written", TIMEOUT, || async {
        let written = generations(&ctx).await.len();
        (written >= 10).then_some(written)
    })
    .await;
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10)).expect("killed");
    let partial = generations(&ctx).await.len();
    assert!(partial < 60, "killed mid-sync: {partial} of 60 written");
    let restarted = Instant::now();
    let _second = Process::start(&ctx, &kubeconfig, &[], &[]);
    wait_for("every status after the restart", TIMEOUT, || all_correct(&ctx)).await;
    eprintln!(
        "kill -9 mid first sync ({partial} of 60 written): all 60 correct {:.1}s after the restart",
        restarted.elapsed().as_secs_f64()
    );
    assert_written_once(&ctx).await;
}

/// The operator's API server restarts mid-sync: it converges, nothing written twice.
#[tokio::test]
async fn an_api_server_restart_mid_sync_converges() {
    let ctx = support::context("fault-apirestart").await;
    let plane = ctx.cluster.plane().expect("the local control plane");
    let binaries = sentinel_testenv::Binaries::locate().expect("binaries");
    let mut second = plane.second_apiserver(&binaries).expect("a second API server");
    create_pods(&ctx, (0..60).map(|i| format!("p{i:02}")), None).await;
    let mut config = support::namespace_config(&ctx);
    config.max_writes_per_second = std::num::NonZeroU32::new(10).expect("rate");
    config.write_burst = std::num::NonZeroU32::MIN;
    let operator = Operator::start(client_for(second.kubeconfig()).await, config).await;
    wait_for("some statuses written", TIMEOUT, || async {
        (generations(&ctx).await.len() >= 10).then_some(())
    })
    .await;
    second.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    second.start().expect("the API server back");
    let back = Instant::now();
    wait_for("every status after the API server's restart", TIMEOUT, || {
        all_correct(&ctx)
    })
    .await;
    eprintln!(
        "API server restart: converged {:.1}s after it came back",
        back.elapsed().as_secs_f64()
    );
    assert_written_once(&ctx).await;
    operator.stop().await;
}

/// Passes every request to the API server but throws the answer away, as a broken connection
/// would (or turns it into a 500, as an API server shutting down mid-request may, when
/// `as_server_error`), for the first `remaining` PATCHes whose path ends with `path`; and, while
/// `watches_down`, refuses every watch of SeccompStatuses (so the operator cannot learn of the
/// write from its watch either, as when the API server itself went away).
#[derive(Clone)]
struct LoseAnswers {
    path: String,
    remaining: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    watches_down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Status watches cut while down: refused, or (a streamed initial list) closed at its end.
    watches_cut: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    as_server_error: bool,
}

/// The API server's answer to a request, as a [`Fault`] gets it.
type Answer<RB> = futures::future::BoxFuture<'static, Result<http::Response<RB>, tower::BoxError>>;

/// A fault injected between the operator's client and the API server: it sees every request and
/// may change it, refuse it, or pass it on (`forward`) and then delay, change or drop the answer.
trait Fault: Clone + Send + 'static {
    fn call<B, RB: Send + 'static>(
        &self,
        request: http::Request<B>,
        forward: impl FnOnce(http::Request<B>) -> Answer<RB>,
    ) -> Answer<EndAfterInitialEvents<RB>>;
}

/// The client's service with a [`Fault`] in front.
#[derive(Clone)]
struct Injected<S, F> {
    inner: S,
    fault: F,
}

impl<S, F, B, RB> tower::Service<http::Request<B>> for Injected<S, F>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    S::Error: Into<tower::BoxError>,
    F: Fault,
    RB: Send + 'static,
{
    type Response = http::Response<EndAfterInitialEvents<RB>>;
    type Error = tower::BoxError;
    type Future = Answer<EndAfterInitialEvents<RB>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let inner = &mut self.inner;
        self.fault.call(request, |request| {
            let answer = inner.call(request);
            Box::pin(async move { answer.await.map_err(Into::into) })
        })
    }
}

impl Fault for LoseAnswers {
    fn call<B, RB: Send + 'static>(
        &self,
        request: http::Request<B>,
        forward: impl FnOnce(http::Request<B>) -> Answer<RB>,
    ) -> Answer<EndAfterInitialEvents<RB>> {
        use std::sync::atomic::Ordering::SeqCst;
        let lose = request.method() == http::Method::PATCH
            && request.uri().path().ends_with(&self.path)
            && self
                .remaining
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_ok();
        let query = request.uri().query().unwrap_or_default();
        let status_watch = request.uri().path().ends_with("/seccompstatuses") && query.contains("watch=true");
        let streamed_list = query.contains("sendInitialEvents=true");
        let down = status_watch && self.watches_down.load(SeqCst);
        if down && !streamed_list {
            self.watches_cut.fetch_add(1, SeqCst);
            return Box::pin(async { Err("connection refused (status watches are down on purpose)".into()) });
        }
        let answer = forward(request);
        let as_server_error = self.as_server_error;
        let cut = down.then(|| self.watches_cut.clone());
        Box::pin(async move {
            // A streamed initial list is let through up to its end, then closed: the watch that
            // would follow it on the same connection is down too.
            let mut answer = answer.await?.map(|body| EndAfterInitialEvents::new(body, cut));
            if lose && as_server_error {
                *answer.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                return Ok(answer);
            }
            if lose {
                drop(answer);
                return Err("connection reset by peer (the answer was lost on purpose)".into());
            }
            Ok(answer)
        })
    }
}

/// A watch answer that ends after the event marking the end of a streamed initial list (when
/// given a count of such ends), or the answer unchanged.
struct EndAfterInitialEvents<B> {
    inner: B,
    cut: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
    ended: bool,
    /// The bytes of the line being read since the last newline.
    line: Vec<u8>,
}

impl<B> EndAfterInitialEvents<B> {
    fn new(inner: B, cut: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>) -> Self {
        Self {
            inner,
            cut,
            ended: false,
            line: Vec::new(),
        }
    }
}

impl<B> http_body::Body for EndAfterInitialEvents<B>
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
{
    type Data = bytes::Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        if self.ended {
            return Poll::Ready(None);
        }
        let frame = match std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if self.cut.is_none() {
            return Poll::Ready(Some(Ok(frame)));
        }
        let Ok(data) = frame.into_data() else {
            return Poll::Ready(None);
        };
        // The marker event is one JSON line: keep the bytes up to the newline that ends it.
        let mut start = 0;
        for (i, byte) in data.iter().enumerate() {
            if *byte != b'\n' {
                continue;
            }
            self.line.extend_from_slice(&data[start..i]);
            start = i + 1;
            let marker = String::from_utf8_lossy(&self.line).contains("k8s.io/initial-events-end");
            self.line.clear();
            if marker {
                self.ended = true;
                if let Some(ends) = &self.cut {
                    ends.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                return Poll::Ready(Some(Ok(http_body::Frame::data(data.slice(..=i)))));
            }
        }
        self.line.extend_from_slice(&data[start..]);
        Poll::Ready(Some(Ok(http_body::Frame::data(data))))
    }
}

/// The operator never reads a whole list of pods in one answer: the initial list is streamed
/// where the API server can (its WatchList feature, on by default since Kubernetes 1.34), and
/// read in pages of `--list-page-size` where it refuses (WatchList off, as 1.33 ships it). A list
/// at resourceVersion=0 would be answered whole whatever its page size. Both API servers set the
/// feature explicitly, so the test means the same on every Kubernetes release it runs on.
#[tokio::test]
async fn initial_lists_come_streamed_or_in_pages() {
    let streamed_ctx = support::context("fault-lists-streamed").await;
    let plane = streamed_ctx.cluster.plane().expect("the local control plane");
    let binaries = sentinel_testenv::Binaries::locate().expect("binaries");
    let with_watch_list = plane
        .second_apiserver_with(&binaries, &["--feature-gates=WatchList=true"])
        .expect("an API server with WatchList on");
    let without_watch_list = plane
        .second_apiserver_with(&binaries, &["--feature-gates=WatchList=false"])
        .expect("an API server with WatchList off");
    let paged_ctx = support::context("fault-lists-paged").await;
    for (ctx, kubeconfig, streamed) in [
        (&streamed_ctx, with_watch_list.kubeconfig(), true),
        (&paged_ctx, without_watch_list.kubeconfig(), false),
    ] {
        create_pods(ctx, (0..25).map(|i| format!("p{i:02}")), None).await;
        let config = config_for(kubeconfig).await;
        // Every request passes on; the query of each one for pods is recorded.
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let record = seen.clone();
        let layer = tower::util::MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
            if request.uri().path().ends_with("/pods") {
                let query = request.uri().query().unwrap_or_default().to_string();
                record.lock().unwrap_or_else(|e| e.into_inner()).push(query);
            }
            request
        });
        let client = kube::client::ClientBuilder::try_from(config)
            .expect("client builder")
            .with_layer(&layer)
            .build();
        let mut operator_config = support::namespace_config(ctx);
        operator_config.list_page_size = 10;
        let operator = Operator::start(client, operator_config).await;
        wait_for("every status", TIMEOUT, || all_correct(ctx)).await;
        let requests = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let lists: Vec<&String> = requests.iter().filter(|q| !q.contains("watch=true")).collect();
        let refused = operator
            .ctx
            .stats
            .lists_in_pages
            .load(std::sync::atomic::Ordering::Relaxed);
        if streamed {
            assert!(
                requests
                    .iter()
                    .any(|q| q.contains("watch=true") && q.contains("sendInitialEvents=true")),
                "a streaming list: {requests:?}"
            );
            assert!(lists.is_empty(), "no list of pods: {lists:?}");
            assert_eq!(refused, 0);
        } else {
            assert!(
                lists.len() >= 3 && lists.iter().all(|q| q.contains("limit=10")),
                "25 pods in pages of 10: {requests:?}"
            );
            assert!(
                lists.iter().all(|q| !q.contains("resourceVersion=0")),
                "pages, not one answer from the cache: {lists:?}"
            );
            assert!(refused > 0, "the refusal was seen");
        }
        operator.stop().await;
    }
}

/// A status write the API server stored but whose answer never arrived (or came back as a 500)
/// is not made again: the retry reads the status back first (a second write would carry new
/// transition times, so the status would be written twice).
#[tokio::test]
async fn a_stored_write_whose_answer_was_lost_is_not_made_again() {
    lost_answer(false).await;
}

#[tokio::test]
async fn a_stored_write_answered_with_a_server_error_is_not_made_again() {
    lost_answer(true).await;
}

async fn lost_answer(as_server_error: bool) {
    let ctx = support::context("fault-lost-answer").await;
    let config = ctx.cluster.config().await;
    let remaining = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(2));
    let watches_down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watches_cut = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let layer = tower::layer::layer_fn(|inner| Injected {
        inner,
        fault: LoseAnswers {
            path: "/seccompstatuses/lost-answer".into(),
            remaining: remaining.clone(),
            watches_down: watches_down.clone(),
            watches_cut: watches_cut.clone(),
            as_server_error,
        },
    });
    let client = kube::client::ClientBuilder::try_from(config)
        .expect("client builder")
        .with_layer(&layer)
        .build();
    let operator = Operator::start(client, support::namespace_config(&ctx)).await;
    ctx.api::<Pod>()
        .create(
            &PostParams::default(),
            &pod("lost-answer", Some("RuntimeDefault")),
        )
        .await
        .expect("create pod");
    wait_for("the first write", TIMEOUT, || async {
        (remaining.load(std::sync::atomic::Ordering::SeqCst) < 2).then_some(())
    })
    .await;
    // Time for the retries (0.5 s, then 1 s) that a second write would come from, with the
    // status watch still down.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        watches_cut.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the status watch was down: refused, or its streamed list closed at its end"
    );
    watches_down.store(false, std::sync::atomic::Ordering::SeqCst);
    wait_for("the status", TIMEOUT, || all_correct(&ctx)).await;
    assert_eq!(
        remaining.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the first write's answer was lost, and no second write was made"
    );
    assert_written_once(&ctx).await;
    operator.stop().await;
}

/// Refuses the first `remaining` requests of `method` to one object's `path`, as an API server
/// not answering yet would; everything else passes.
#[derive(Clone)]
struct RefuseRequests {
    method: http::Method,
    path: String,
    remaining: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Fault for RefuseRequests {
    fn call<B, RB: Send + 'static>(
        &self,
        request: http::Request<B>,
        forward: impl FnOnce(http::Request<B>) -> Answer<RB>,
    ) -> Answer<EndAfterInitialEvents<RB>> {
        use std::sync::atomic::Ordering::SeqCst;
        let refuse = request.method() == self.method
            && request.uri().path() == self.path
            && self
                .remaining
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if refuse {
            return Box::pin(async { Err("connection refused (on purpose)".into()) });
        }
        let answer = forward(request);
        Box::pin(async move { Ok(answer.await?.map(|body| EndAfterInitialEvents::new(body, None))) })
    }
}

/// The admin's client, with the first `remaining` requests of `method` to `path` refused.
async fn client_refusing(
    ctx: &TestContext,
    method: http::Method,
    path: &str,
    remaining: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Client {
    let fault = RefuseRequests {
        method,
        path: path.to_string(),
        remaining: remaining.clone(),
    };
    let layer = tower::layer::layer_fn(move |inner| Injected {
        inner,
        fault: fault.clone(),
    });
    kube::client::ClientBuilder::try_from(ctx.cluster.config().await)
        .expect("client builder")
        .with_layer(&layer)
        .build()
}

/// The node agent's DaemonSet is kept by the operator through requests that fail: one that
/// cannot be created at first is created on a later try, and a disabled agent's DaemonSet goes
/// even when the first reads of it fail. Before, a failed apply waited for a change of the
/// DaemonSet that never came (no agent at all), and a failed read left a disabled agent running.
#[tokio::test]
async fn the_agent_daemonset_is_kept_through_failed_requests() {
    use k8s_openapi::api::apps::v1::DaemonSet;
    const AGENT: &str = "seccomp-sentinel-agent";
    let ctx = support::context("fault-agent-ds").await;
    let path = format!("/apis/apps/v1/namespaces/{}/daemonsets/{AGENT}", ctx.ns);
    let daemonsets: Api<DaemonSet> = ctx.api();
    let mut config = support::namespace_config(&ctx);
    config.operator_namespace = Some(ctx.ns.clone());

    // Enabled: the first two applies (server-side apply: PATCH) fail.
    let applies = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(2));
    config.agent_image = Some("registry.invalid/seccomp-sentinel:v9".into());
    let client = client_refusing(&ctx, http::Method::PATCH, &path, &applies).await;
    let operator = Operator::start(client, config.clone()).await;
    wait_for("the DaemonSet, on a later try", TIMEOUT, || async {
        daemonsets.get_opt(AGENT).await.ok()?.map(|_| ())
    })
    .await;
    assert_eq!(
        applies.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "both refused first"
    );
    operator.stop().await;

    // Disabled: the first two reads fail.
    let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(2));
    config.agent_image = None;
    let client = client_refusing(&ctx, http::Method::GET, &path, &reads).await;
    let operator = Operator::start(client, config).await;
    wait_for("the DaemonSet to go", TIMEOUT, || async {
        daemonsets
            .get_opt(AGENT)
            .await
            .ok()?
            .is_none_or(|d| d.metadata.deletion_timestamp.is_some())
            .then_some(())
    })
    .await;
    assert_eq!(
        reads.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "both refused first"
    );
    operator.stop().await;
}

/// A node agent started while it cannot read its Node yet (an API server restarting with the
/// node) reports nothing until it has read what the agent before it reported: the kubelet's files
/// changed after the kubelet started, and that agent's reading of them, made before the change,
/// is the only one that says what the kubelet runs with.
#[tokio::test]
async fn an_agent_that_cannot_read_its_node_at_first_keeps_the_kubelet_setting_read_before() {
    use seccomp_sentinel::agent::{
        AGENT_MANAGER, KERNEL_SECCOMP_ANNOTATION, KUBELET_DEFAULT_ANNOTATION, KUBELET_STARTED_ANNOTATION,
    };
    let ctx = support::context("fault-agent-node").await;
    let node_name = unique_name("edited-kubelet");
    let nodes = crate::agent::create_node_without_kubelet(&ctx.client, &node_name).await;
    let (root, start) = crate::agent::kubelet_edited_after_its_start(&node_name);
    // What the agent before this one reported for that start, from before the edit.
    let before = json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": node_name,
        "annotations": { KUBELET_DEFAULT_ANNOTATION: "false", KUBELET_STARTED_ANNOTATION: start.name } } });
    nodes
        .patch(
            &node_name,
            &PatchParams::apply(AGENT_MANAGER).force(),
            &Patch::Apply(&before),
        )
        .await
        .expect("the earlier agent's report");

    let remaining = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(3));
    let layer = tower::layer::layer_fn(|inner| Injected {
        inner,
        fault: RefuseRequests {
            method: http::Method::GET,
            path: format!("/api/v1/nodes/{node_name}"),
            remaining: remaining.clone(),
        },
    });
    let client = kube::client::ClientBuilder::try_from(ctx.cluster.config().await)
        .expect("client builder")
        .with_layer(&layer)
        .build();
    let running = crate::agent::InProcessAgent::start(
        client,
        crate::agent::agent_args(&node_name, root.path(), Duration::from_millis(300)),
    );
    // The agent's first report adds the kernel's fact.
    let reported = wait_for("the new agent's report", TIMEOUT, || async {
        let node = nodes.get(&node_name).await.ok()?;
        node.annotations()
            .contains_key(KERNEL_SECCOMP_ANNOTATION)
            .then_some(node)
    })
    .await;
    assert_eq!(
        remaining.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the node reads were refused first"
    );
    assert_eq!(
        reported
            .annotations()
            .get(KUBELET_DEFAULT_ANNOTATION)
            .map(String::as_str),
        Some("false"),
        "what was read before the edit, not unknown"
    );
    assert_eq!(
        reported.annotations().get(KUBELET_STARTED_ANNOTATION),
        Some(&start.name)
    );
    running.stop().await;
    nodes
        .delete(&node_name, &DeleteParams::default())
        .await
        .expect("delete node");
}

/// Where [`HoldRelist`] is in its one relist of SeccompStatuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RelistPhase {
    /// Requests pass (status watches end after a second, so a new one comes often).
    Passing,
    /// The next resumed status watch asks for a resourceVersion long compacted: the API server
    /// answers 410 Gone, so the operator lists again.
    Expire,
    /// The 410 went out; the relist is awaited.
    Expired,
    /// The API server answered the relist; the answer is held until `release`.
    Held,
    /// The answer went on; the answer to the watch that follows it is held for
    /// [`RELIST_WATCH_DELAY`].
    Released,
    /// That watch's answer went on too.
    Done,
}

const RELIST_WATCH_DELAY: Duration = Duration::from_secs(5);

/// Makes the operator list its SeccompStatuses again, and holds that list's answer after the API
/// server gave it (so the list predates the writes made meanwhile) until `release`; then holds
/// the answer of the watch that follows it, so the controller cannot learn of those writes from
/// its watch first. From the release on, counts the writes (PATCH) and reads (GET) of statuses
/// whose name starts with `counted`.
#[derive(Clone)]
struct HoldRelist {
    phase: std::sync::Arc<std::sync::Mutex<RelistPhase>>,
    release: std::sync::Arc<tokio::sync::Notify>,
    counted: &'static str,
    writes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    reads: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn relist_phase(phase: &std::sync::Mutex<RelistPhase>) -> RelistPhase {
    *phase.lock().unwrap_or_else(|e| e.into_inner())
}

fn set_relist_phase(phase: &std::sync::Mutex<RelistPhase>, to: RelistPhase) {
    *phase.lock().unwrap_or_else(|e| e.into_inner()) = to;
}

/// `uri` with its query parameter `name` set to `value`.
fn with_query_parameter(uri: &http::Uri, name: &str, value: &str) -> http::Uri {
    let mut pairs: Vec<String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(name))
        .map(str::to_string)
        .collect();
    pairs.push(format!("{name}={value}"));
    format!("{}?{}", uri.path(), pairs.join("&"))
        .parse()
        .expect("a URI")
}

impl Fault for HoldRelist {
    fn call<B, RB: Send + 'static>(
        &self,
        mut request: http::Request<B>,
        forward: impl FnOnce(http::Request<B>) -> Answer<RB>,
    ) -> Answer<EndAfterInitialEvents<RB>> {
        use std::sync::atomic::Ordering::SeqCst;
        let path = request.uri().path().to_string();
        let phase = relist_phase(&self.phase);
        if matches!(phase, RelistPhase::Released | RelistPhase::Done)
            && path.contains(&format!("/seccompstatuses/{}", self.counted))
        {
            match *request.method() {
                http::Method::PATCH => self.writes.fetch_add(1, SeqCst),
                http::Method::GET => self.reads.fetch_add(1, SeqCst),
                _ => 0,
            };
        }
        let query = request.uri().query().unwrap_or_default().to_string();
        let status_watch = path.ends_with("/seccompstatuses") && query.contains("watch=true");
        let streamed = query.contains("sendInitialEvents=true");
        let relist = path.ends_with("/seccompstatuses") && (!status_watch || streamed);
        let resumed_watch = status_watch && !streamed;
        enum Hold {
            None,
            UntilReleased(std::sync::Arc<tokio::sync::Notify>),
            For(Duration),
        }
        let mut hold = Hold::None;
        match phase {
            RelistPhase::Expire if resumed_watch => {
                *request.uri_mut() = with_query_parameter(request.uri(), "resourceVersion", "1");
                set_relist_phase(&self.phase, RelistPhase::Expired);
            }
            RelistPhase::Expired if relist => hold = Hold::UntilReleased(self.release.clone()),
            RelistPhase::Released if resumed_watch => hold = Hold::For(RELIST_WATCH_DELAY),
            RelistPhase::Passing if status_watch => {
                *request.uri_mut() = with_query_parameter(request.uri(), "timeoutSeconds", "1");
            }
            _ => {}
        }
        // A streamed relist ends at its end: the events after it come on the watch that follows.
        let cut = (matches!(hold, Hold::UntilReleased(_)) && streamed)
            .then(|| std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)));
        let phase = self.phase.clone();
        let answer = forward(request);
        Box::pin(async move {
            let answer = answer.await?.map(|body| EndAfterInitialEvents::new(body, cut));
            match hold {
                Hold::None => {}
                Hold::UntilReleased(release) => {
                    set_relist_phase(&phase, RelistPhase::Held);
                    release.notified().await;
                    set_relist_phase(&phase, RelistPhase::Released);
                }
                Hold::For(delay) => {
                    tokio::time::sleep(delay).await;
                    set_relist_phase(&phase, RelistPhase::Done);
                }
            }
            Ok(answer)
        })
    }
}

/// A status the controller writes while its watch lists the statuses again is not written a
/// second time when the list, taken before the write, comes without it: the controller reads it
/// back instead (a second write would carry new transition times).
#[tokio::test]
async fn a_status_written_while_its_watch_relists_is_not_written_again() {
    use std::sync::atomic::Ordering::SeqCst;
    let ctx = support::context("fault-relist-race").await;
    let config = ctx.cluster.config().await;
    let phase = std::sync::Arc::new(std::sync::Mutex::new(RelistPhase::Passing));
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let writes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let layer = tower::layer::layer_fn(|inner| Injected {
        inner,
        fault: HoldRelist {
            phase: phase.clone(),
            release: release.clone(),
            counted: "during-",
            writes: writes.clone(),
            reads: reads.clone(),
        },
    });
    let client = kube::client::ClientBuilder::try_from(config)
        .expect("client builder")
        .with_layer(&layer)
        .build();
    create_pods(&ctx, (0..3).map(|i| format!("before-{i}")), None).await;
    let operator = Operator::start(client, support::namespace_config(&ctx)).await;
    wait_for("the first statuses", TIMEOUT, || all_correct(&ctx)).await;

    set_relist_phase(&phase, RelistPhase::Expire);
    wait_for("the relist's answer held", TIMEOUT, || async {
        (relist_phase(&phase) == RelistPhase::Held).then_some(())
    })
    .await;
    create_pods(
        &ctx,
        (0..3).map(|i| format!("during-{i}")),
        Some("RuntimeDefault"),
    )
    .await;
    wait_for("the statuses written during the relist", TIMEOUT, || {
        all_correct(&ctx)
    })
    .await;
    // The API server may show a write before the operator has its answer: release the list once
    // the operator holds all six (the counter and the record are updated with no await between).
    wait_for("the answers of the six writes", TIMEOUT, || async {
        (operator.writes() == 6).then_some(())
    })
    .await;
    release.notify_one();
    // A read back is a pass of its own, and a loaded machine may run it after the watch resumed.
    wait_for_explained(
        "each status the list did not hold read back",
        TIMEOUT,
        || async { (reads.load(SeqCst) >= 3).then_some(()) },
        || format!("{} reads", reads.load(SeqCst)),
    )
    .await;
    wait_for("the watch after the relist", TIMEOUT, || async {
        (relist_phase(&phase) == RelistPhase::Done && operator.ctx.is_idle()).then_some(())
    })
    .await;
    wait_for("every status after the relist", TIMEOUT, || all_correct(&ctx)).await;
    assert_eq!(writes.load(SeqCst), 0, "written once, not again after the relist");
    assert_eq!(reads.load(SeqCst), 3, "each read back once");
    assert_eq!(operator.writes(), 6, "no status written again");
    assert_written_once(&ctx).await;
    operator.stop().await;
}

/// SIGTERM is honoured at once even while the first list hangs (its API server is stopped with
/// SIGSTOP: connections open, nothing answers).
#[tokio::test]
async fn shutdown_is_honoured_while_the_first_list_hangs() {
    let ctx = support::context("fault-sigterm").await;
    let plane = ctx.cluster.plane().expect("the local control plane");
    let binaries = sentinel_testenv::Binaries::locate().expect("binaries");
    let second = plane.second_apiserver(&binaries).expect("a second API server");
    let pid = second.pid().expect("the second API server's pid").to_string();
    let _ = Command::new("kill").args(["-STOP", &pid]).status();
    let mut operator = Process::start(
        &ctx,
        second.kubeconfig(),
        &["--leader-elect"],
        &[("POD_NAMESPACE", &ctx.ns)],
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        operator.child.try_wait().ok().flatten().is_none(),
        "still waiting on its API server"
    );
    operator.signal("TERM");
    let stopped = operator.wait_exit(Duration::from_secs(5));
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    let took = stopped.unwrap_or_else(|| panic!("did not stop within 5 s of SIGTERM:\n{}", operator.log()));
    eprintln!(
        "SIGTERM while the API server hangs: stopped in {:.2}s",
        took.as_secs_f64()
    );
}

/// Objects the API server accepts with times the client's time type cannot hold (after
/// 9999-12-30T22:00Z): a Node taint, a pod condition, a SeccompStatus condition and a policy
/// status condition. The operator starts, is ready, and reports every pod, those pods included;
/// such a time in a policy's exemption is refused at admission.
#[tokio::test]
async fn times_the_client_cannot_hold_stop_nothing() {
    let ctx = support::context("fault-poison").await;
    let poison = "9999-12-31T23:59:59Z";
    // Written with kubectl: the typed client cannot even read these back.
    let node_name = unique_name("poison-node");
    apply_json(
        &ctx,
        json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": node_name }, "spec": { "unschedulable": true,
        "taints": [{ "key": "example.com/poison", "effect": "NoSchedule", "timeAdded": poison }] } }),
    );
    let pods: Api<Pod> = ctx.api();
    pods.create(&PostParams::default(), &pod("far-condition", None))
        .await
        .expect("pod");
    let condition = json!({ "status": { "conditions": [{ "type": "Ready", "status": "False", "lastTransitionTime": poison }] } });
    patch_status_json(&ctx, "pod", "far-condition", condition);
    // A SeccompStatus of its own with such a time, as someone else could write it.
    apply_json(
        &ctx,
        json!({ "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompStatus",
        "metadata": { "name": "far-condition", "namespace": ctx.ns }, "spec": {},
        "status": { "profile": "Unconfined", "conditions": [{ "type": "Confined", "status": "False", "reason": "X", "message": "", "lastTransitionTime": poison }] } }),
    );
    let policy = create_policy(&ctx, "far", json!({})).await;
    let policies: Api<SeccompPolicy> = Api::all(ctx.client.clone());
    let status = json!({ "status": { "conditions": [{ "type": "Ready", "status": "True", "reason": "X", "message": "", "lastTransitionTime": poison }] } });
    ctx.kubectl(&[
        "patch",
        "seccomppolicy",
        &policy,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
    // Refused at admission in a policy's spec.
    let far_exemption: SeccompPolicy = serde_json::from_value(json!({
        "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompPolicy",
        "metadata": { "name": format!("{}-far-exemption", ctx.ns), "labels": { POLICY_LABEL: ctx.ns } },
        "spec": { "exemptions": [{ "reason": "r", "namespaces": [ctx.ns], "expires": poison }] } }))
    .expect("policy");
    let refused = policies.create(&PostParams::default(), &far_exemption).await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("expires must be before 9999-12-30")),
        "{refused:?}"
    );
    pods.create(&PostParams::default(), &pod("plain", Some("RuntimeDefault")))
        .await
        .expect("pod");

    let operator = Operator::for_namespace(&ctx).await;
    wait_for("every pod reported", TIMEOUT, || all_correct(&ctx)).await;
    assert!(
        operator
            .ctx
            .metrics
            .ready
            .load(std::sync::atomic::Ordering::Acquire),
        "ready"
    );
    // The policy's status is the controller's again (typed reads work once the far time is gone).
    let policy_ready = wait_for("the policy's own status", TIMEOUT, || async {
        let p = policies.get(&policy).await.ok()?;
        p.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready" && c.reason == "Valid")
    })
    .await;
    assert_eq!(policy_ready.status, "True");
    operator.stop().await;
    delete_policy(&ctx, &policy).await;
    ctx.kubectl(&["delete", "node", &node_name, "--wait=false"]);
}

/// Creates or updates an object from JSON with kubectl (for objects the typed client rejects).
fn apply_json(ctx: &TestContext, object: serde_json::Value) {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), object.to_string()).expect("write");
    ctx.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=someone-else",
        "-f",
        &file.path().display().to_string(),
    ]);
}

/// A merge patch of the status of `kind/name` in the test's namespace, with kubectl.
fn patch_status_json(ctx: &TestContext, kind: &str, name: &str, patch: serde_json::Value) {
    ctx.kubectl(&[
        "patch",
        kind,
        name,
        "-n",
        &ctx.ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
}

/// No environment value of any pod appears in the operator's logs, whatever the objects (the
/// poisoned ones included), at the shipped log level and at debug.
#[tokio::test]
async fn no_environment_value_ever_reaches_the_logs() {
    let ctx = support::context("fault-secrets").await;
    let secret = format!("s3cr3t-{}", unique_name("v"));
    let pods: Api<Pod> = ctx.api();
    for i in 0..5 {
        let with_env: Pod = serde_json::from_value(json!({ "metadata": { "name": format!("env{i}") }, "spec": {
            "containers": [{ "name": "app", "image": "registry.invalid/app:1", "env": [{ "name": "TOKEN", "value": secret }] }] } }))
        .expect("pod");
        pods.create(&PostParams::default(), &with_env).await.expect("pod");
    }
    let condition = json!({ "status": { "conditions": [{ "type": "Ready", "status": "False", "lastTransitionTime": "9999-12-31T23:59:59Z", "message": secret }] } });
    patch_status_json(&ctx, "pod", "env0", condition);
    let kubeconfig = ctx.cluster.kubeconfig().to_path_buf();
    for level in ["info", "debug"] {
        let mut operator = Process::start(&ctx, &kubeconfig, &[], &[("SENTINEL_LOG", level)]);
        wait_for("every status", TIMEOUT, || all_correct(&ctx)).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        operator.signal("TERM");
        operator.wait_exit(Duration::from_secs(10));
        let log = operator.log();
        assert!(!log.is_empty(), "the operator logged something at {level}");
        assert!(
            !log.contains(&secret),
            "an environment value in the {level} log:\n{log}"
        );
        assert!(!log.contains("\u{1b}["), "no terminal colours in a log file");
    }
}

/// Leader election between two processes: the leader evicts up to the rate and is killed; the
/// standby, taking over, reads the ledger from the policy and evicts no more within the minute.
#[tokio::test]
async fn the_eviction_rate_holds_across_a_leader_failover() {
    let ctx = support::context("fault-failover").await;
    let workloads: Vec<String> = (0..5).map(|i| format!("w{i}")).collect();
    for app in &workloads {
        adopted_pod(&ctx, app, None, Some("RuntimeDefault"), json!({})).await;
    }
    let kubeconfig = ctx.cluster.kubeconfig().to_path_buf();
    let lease = [
        "--leader-elect",
        "--lease-name",
        "failover",
        "--lease-duration",
        "4",
    ];
    // The operator's own namespace (the Lease's) is never evicted from: another one.
    let operator_ns = format!("{}-op", ctx.ns);
    ctx.kubectl(&["create", "namespace", &operator_ns]);
    let env = ("POD_NAMESPACE", operator_ns.as_str());
    let mut leader = Process::start(&ctx, &kubeconfig, &lease, &[("POD_NAME", "a"), env]);
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(ctx.client.clone(), &operator_ns);
    wait_for("a to lead", TIMEOUT, || async {
        let holder = leases.get_opt("failover").await.ok()??.spec?.holder_identity?;
        (holder == "a").then_some(())
    })
    .await;
    let _standby = Process::start(&ctx, &kubeconfig, &lease, &[("POD_NAME", "b"), env]);
    let policy = create_policy(
        &ctx,
        "evict",
        json!({ "action": "Evict", "eviction": { "minUnconfinedAge": "0s", "maxPerMinute": 2, "workloadCooldown": "1s" } }),
    )
    .await;
    let evicted = || async {
        let mut count = 0;
        for app in &workloads {
            let pods = crate::policies::pods_of(&ctx, app).await;
            if pods.iter().all(|p| p.name_any() != format!("{app}-old")) {
                count += 1;
            }
        }
        count
    };
    let started = Instant::now();
    while evicted().await < 2 {
        assert!(
            started.elapsed() < TIMEOUT,
            "the leader's two evictions did not come:\n{}",
            leader.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    leader.signal("KILL");
    leader.wait_exit(Duration::from_secs(10));
    let killed = Instant::now();
    wait_for("b to lead", TIMEOUT, || async {
        let holder = leases.get_opt("failover").await.ok()??.spec?.holder_identity?;
        (holder == "b").then_some(())
    })
    .await;
    eprintln!(
        "leader killed after 2 evictions: b leads {:.1}s later (lease 4 s)",
        killed.elapsed().as_secs_f64()
    );
    // Until the first minute is over, no more evictions.
    while started.elapsed() < Duration::from_secs(50) {
        assert_eq!(evicted().await, 2, "the new leader exceeded the rate");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let policies: Api<SeccompPolicy> = Api::all(ctx.client.clone());
    let ledger = policies
        .get(&policy)
        .await
        .expect("policy")
        .status
        .and_then(|s| s.evictions)
        .expect("ledger");
    assert_eq!(ledger.recent.len(), 2, "{ledger:?}");
    delete_policy(&ctx, &policy).await;
    ctx.kubectl(&["delete", "namespace", &operator_ns, "--wait=false"]);
}

/// libfaketime's library (Debian's `libfaketime`, installed by `make node-prereqs`).
fn libfaketime() -> std::path::PathBuf {
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|dir| dir.path().join("faketime/libfaketimeMT.so.1"))
        .find(|lib| lib.exists())
        .unwrap_or_else(|| {
            panic!("libfaketime is missing: run `make node-prereqs` as root (apt-get install libfaketime)")
        })
}

/// The operator's clock runs 10 s ahead of the API server's (a node whose time drifted). It
/// evicts a pod whose replacement comes back unconfined (the SCC trick of the loop guard's
/// test): the replacement is created a moment after the eviction by the API server's clock, so
/// "10 s before it" by the operator's. The loop guard told replacements by their creation time
/// alone, missed it, and evicted every replacement in turn, one per `workloadCooldown`.
#[tokio::test]
async fn the_loop_guard_holds_when_the_operators_clock_runs_ahead() {
    let ctx = support::context("fault-skew").await;
    crate::policies::adopted_pod_whose_replacements_come_back_unconfined(&ctx, "legacy").await;
    let kubeconfig = ctx.cluster.kubeconfig().to_path_buf();
    let lib = libfaketime();
    let skewed = [
        ("LD_PRELOAD", lib.to_str().expect("a UTF-8 path")),
        ("FAKETIME", "+10s"),
        // Timers run on the monotonic clock: only the wall clock is ahead.
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    let operator = Process::start(&ctx, &kubeconfig, &["--trust-scc-annotation=true"], &skewed);
    let policy = create_policy(&ctx, "evict", evict_quickly(json!({}))).await;

    wait_for("the first eviction", TIMEOUT, || async {
        let pods = crate::policies::pods_of(&ctx, "legacy").await;
        (pods.len() == 1 && pods[0].name_any() != "legacy-old").then_some(())
    })
    .await;
    let replacement = crate::policies::pods_of(&ctx, "legacy").await.remove(0);
    let statuses: Api<SeccompStatus> = ctx.api();
    let halted = wait_for_explained(
        "the replacement to be taken for one",
        TIMEOUT,
        || async {
            let status = statuses.get_opt(&replacement.name_any()).await.ok()??.status?;
            status
                .policies
                .into_iter()
                .find(|r| r.name == policy && r.message.contains("ReplacementUnconfined"))
        },
        || {
            let pods = ctx.kubectl(&["get", "pods", "-n", &ctx.ns, "-l", "app=legacy", "-o", "name"]);
            let log = operator.log();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            format!(
                "the pods of the workload now: {pods}\nthe operator's last log lines:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        },
    )
    .await;
    assert_eq!(halted.action, PolicyAction::EvictionSkipped, "{}", halted.message);
    let ledger = || async {
        Api::<SeccompPolicy>::all(ctx.client.clone())
            .get(&policy)
            .await
            .expect("policy")
            .status
            .and_then(|s| s.evictions)
            .expect("ledger")
    };
    // The operator's clock was ahead: its ledger says so (else this test shows nothing).
    let evicted_at: k8s_openapi::jiff::Timestamp = ledger().await.recent[0].at.parse().expect("a time");
    let created = replacement.creation_timestamp().expect("created").0;
    assert!(
        evicted_at.as_second() > created.as_second() + 5,
        "evicted at {evicted_at} (operator's clock), replacement created at {created}"
    );
    // Well past the 1 s cooldown: the replacement is still there.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pods = crate::policies::pods_of(&ctx, "legacy").await;
    assert_eq!(
        pods.iter().map(|p| p.uid()).collect::<Vec<_>>(),
        vec![replacement.uid()],
        "the replacement was evicted"
    );
    let ledger = ledger().await;
    assert_eq!(ledger.recent.len(), 1, "{ledger:?}");
    delete_policy(&ctx, &policy).await;
}

/// A pod skipped because its workload's template was unconfined is evicted once the template is
/// fixed (the template is watched; the pod is looked at again).
#[tokio::test]
async fn a_workload_fixed_later_gets_its_pods_evicted() {
    let ctx = support::context("fault-fixed").await;
    adopted_pod(&ctx, "web", None, None, json!({})).await;
    let operator = Operator::for_namespace(&ctx).await;
    let policy = create_policy(&ctx, "evict", evict_quickly(json!({}))).await;
    let skipped = policy_result(&ctx, "web-old", &policy, |r| {
        r.action == PolicyAction::EvictionSkipped
    })
    .await;
    assert!(
        skipped.message.contains("TemplateUnconfined"),
        "{}",
        skipped.message
    );
    let fixed = pod_json("", "web", Some("RuntimeDefault"), json!({}));
    let patch = json!({ "spec": { "template": { "spec": fixed["spec"].clone() } } });
    ctx.api::<k8s_openapi::api::apps::v1::ReplicaSet>()
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("fix the template");
    wait_for("the eviction", TIMEOUT, || async {
        (operator.evictions() == 1).then_some(())
    })
    .await;
    delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

/// A field of the controller's part written by another field manager (server-side apply cannot
/// remove what another manager owns) is removed; the node agent's condition stays.
#[tokio::test]
async fn fields_written_by_someone_else_are_removed() {
    let ctx = support::context("fault-foreign").await;
    let operator = Operator::for_namespace(&ctx).await;
    let pods: Api<Pod> = ctx.api();
    pods.create(&PostParams::default(), &pod("web", None))
        .await
        .expect("pod");
    wait_for("the status", TIMEOUT, || all_correct(&ctx)).await;
    let statuses: Api<SeccompStatus> = ctx.api();
    // `status` of "web", applied as `manager`.
    let apply_as = |manager: &'static str, status: serde_json::Value| {
        let body = json!({ "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompStatus",
            "metadata": { "name": "web" }, "status": status });
        let statuses = statuses.clone();
        async move {
            statuses
                .patch("web", &PatchParams::apply(manager).force(), &Patch::Apply(&body))
                .await
                .expect(manager)
        }
    };
    // The node agent's verdict and finding, as the agent writes them (its field manager, its
    // own condition, its container's `runtime`).
    apply_as(
        "seccomp-sentinel-agent",
        json!({ "conditions": [{ "type": "RuntimeVerified", "status": "True", "reason": "Agrees",
            "message": "1 running container matches its effective profile", "lastTransitionTime": "2026-12-01T00:00:00Z" }],
            "containers": [{ "name": "app", "runtime": { "seccompMode": "Disabled", "pid": 7,
                "observedAt": "2026-12-01T00:00:00Z", "agreesWithEffective": true } }] }),
    )
    .await;
    apply_as(
        "someone-else",
        json!({ "verdict": "Compliant", "policies": [{ "name": "forged", "verdict": "Compliant", "action": "None" }],
            "containers": [{ "name": "app", "warnings": ["forged"] }] }),
    )
    .await;
    let cleaned = wait_for("the forged fields removed", TIMEOUT, || async {
        let s = statuses.get("web").await.ok()?.status?;
        let app = s.containers.iter().find(|c| c.name == "app")?;
        (s.verdict.is_none() && s.policies.is_empty() && app.warnings.is_empty()).then_some(s)
    })
    .await;
    assert_eq!(
        cleaned.runtime_of("app").map(|r| (r.seccomp_mode, r.pid)),
        Some((seccomp_sentinel::api::SeccompMode::Disabled, Some(7))),
        "the agent's finding is kept: {:?}",
        cleaned.containers
    );
    assert_eq!(cleaned.profile, seccomp_sentinel::api::PodProfile::Unconfined);
    assert_eq!(
        cleaned.runtime_verified().map(|c| c.reason.as_str()),
        Some("Agrees"),
        "{:?}",
        cleaned.conditions
    );
    assert!(cleaned.conditions.iter().any(|c| c.type_ == "Confined"));
    operator.stop().await;
}

/// Two operators over one namespace that read different SeccompPolicies, each with a lease of its
/// own (the README says to give each its own namespaces), write one pod's status with different
/// `policies` under the same field manager, and the one whose policy labels takes the labels
/// off that the other put on. Each put back its own at once, for ever: about 50 writes a second
/// each, for one pod. Now a pod whose status is replaced again and again is held, less and less
/// often let through, both operators say why, and the one left alone puts everything right.
#[tokio::test]
async fn two_operators_that_keep_replacing_one_status_back_off() {
    use seccomp_sentinel::api::VIOLATION_LABEL;
    let ctx = support::context("fault-two-writers").await;
    create_pods(&ctx, ["web".to_string()], None).await;
    let policies: Api<SeccompPolicy> = Api::all(ctx.client.clone());
    for (team, action) in [("a", "Label"), ("b", "Audit")] {
        let policy: SeccompPolicy = serde_json::from_value(json!({
            "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompPolicy",
            "metadata": { "name": format!("{}-{team}", ctx.ns), "labels": { POLICY_LABEL: ctx.ns, "team": team } },
            "spec": { "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ctx.ns } },
                      "action": action },
        }))
        .expect("policy");
        policies
            .create(&PostParams::default(), &policy)
            .await
            .expect("create policy");
    }
    let kubeconfig = ctx.cluster.kubeconfig().to_path_buf();
    let selector = |team: &str| format!("--policy-selector={POLICY_LABEL}={},team={team}", ctx.ns);
    let (selector_a, selector_b) = (selector("a"), selector("b"));
    let a = Process::start(&ctx, &kubeconfig, &[&selector_a], &[]);
    let b = Process::start(&ctx, &kubeconfig, &[&selector_b], &[]);
    let logs =
        |a: &Process, b: &Process| format!("first operator:\n{}\nsecond operator:\n{}", a.log(), b.log());
    const WARNING: &str = "another writer keeps replacing SeccompStatuses this operator writes";
    wait_for_explained(
        "both operators to say that their status is replaced",
        TIMEOUT,
        || async { (a.log().contains(WARNING) && b.log().contains(WARNING)).then_some(()) },
        || logs(&a, &b),
    )
    .await;
    let generation = || async { generations(&ctx).await.get("web").copied().unwrap_or_default() };
    let pods: Api<Pod> = ctx.api();
    let labelled = || async {
        let pod = pods.get("web").await.expect("pod");
        pod.labels().contains_key(VIOLATION_LABEL)
    };
    let before = generation().await;
    let (mut label_flips, mut was_labelled) = (0, labelled().await);
    let window = Instant::now();
    while window.elapsed() < Duration::from_secs(20) {
        let now_labelled = labelled().await;
        label_flips += usize::from(now_labelled != was_labelled);
        was_labelled = now_labelled;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let written = generation().await - before;
    eprintln!(
        "in 20 s the status was written {written} times, and the labels were seen to change {label_flips} times"
    );
    // Each puts it back 2, 4, 8, 16 s after the other replaced it: a handful of writes. Each
    // one's write rate alone allows 1,000 in these 20 s.
    assert!(
        written <= 10 && label_flips <= 10,
        "in 20 s the status was written {written} times and the labels changed {label_flips} times:\n{}",
        logs(&a, &b)
    );
    // Never without a status: one operator's results or the other's.
    let statuses: Api<SeccompStatus> = ctx.api();
    let status = statuses
        .get("web")
        .await
        .expect("status")
        .status
        .expect("status written");
    let judged: Vec<&str> = status.policies.iter().map(|p| p.name.as_str()).collect();
    assert!(
        judged == [format!("{}-a", ctx.ns)] || judged == [format!("{}-b", ctx.ns)],
        "{judged:?}"
    );
    // The other operator goes: the one left puts its status and its labels back, and they agree.
    drop(b);
    let policy_a = format!("{}-a", ctx.ns);
    wait_for_explained(
        "the operator left alone to put its status and the pod's labels back",
        TIMEOUT,
        || async {
            let status = statuses.get("web").await.ok()?.status?;
            let labelled_by_a = status
                .policies
                .iter()
                .any(|p| p.name == policy_a && p.action == PolicyAction::Labeled);
            (status.policies.len() == 1 && labelled_by_a && labelled().await).then_some(())
        },
        || a.log(),
    )
    .await;
    for team in ["a", "b"] {
        let _ = policies
            .delete(&format!("{}-{team}", ctx.ns), &DeleteParams::default())
            .await;
    }
}

/// On a cluster without SCC admission, `openshift.io/scc` is whatever the pod's creator wrote:
/// by default (`auto`, not OpenShift) it decides nothing, so it cannot buy an SCC exemption.
#[tokio::test]
async fn a_self_set_scc_annotation_buys_no_exemption() {
    let ctx = support::context("fault-scc").await;
    let pods: Api<Pod> = ctx.api();
    let mut sneaky = pod("sneaky", None);
    sneaky.metadata.annotations = Some([("openshift.io/scc".to_string(), "privileged".to_string())].into());
    pods.create(&PostParams::default(), &sneaky).await.expect("pod");
    let policy = create_policy(
        &ctx,
        "scc",
        json!({ "exemptions": [{ "reason": "privileged SCC workloads are reviewed elsewhere", "sccs": ["privileged"] }] }),
    )
    .await;
    let mut config = support::namespace_config(&ctx);
    config.trust_scc_annotation = seccomp_sentinel::controller::config::TrustScc::Auto;
    let operator = Operator::start(ctx.client.clone(), config).await;
    let result = policy_result(&ctx, "sneaky", &policy, |_| true).await;
    assert_eq!(
        result.verdict,
        seccomp_sentinel::api::Verdict::Violating,
        "{result:?}"
    );
    let status = ctx
        .api::<SeccompStatus>()
        .get("sneaky")
        .await
        .expect("status")
        .status
        .expect("status");
    assert_eq!(status.scc, None, "not reported as admitted by an SCC");
    delete_policy(&ctx, &policy).await;
    operator.stop().await;
}

/// A metrics or health port already taken stops the operator at start-up with a message that
/// names it, instead of leaving it running without /metrics or probes.
#[tokio::test]
async fn a_port_already_taken_is_a_start_up_error() {
    let ctx = support::context("fault-port-taken").await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to occupy");
    let port = taken.local_addr().expect("address").port();
    for (flag, other, purpose) in [
        (
            "--metrics-addr",
            "--health-addr=127.0.0.1:0",
            "metrics (/metrics)",
        ),
        ("--health-addr", "--metrics-addr=127.0.0.1:0", "health probes"),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_seccomp-sentinel"))
            .args(["run", "--namespaces", &ctx.ns])
            .arg(format!("{flag}=127.0.0.1:{port}"))
            .arg(other)
            .env("KUBECONFIG", ctx.cluster.kubeconfig())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the operator");
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{flag}: the operator kept running with its port taken");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let output = child.wait_with_output().expect("the operator's output");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flag}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot listen on 127.0.0.1:{port} for {purpose}")),
            "{flag}: {stderr}"
        );
    }
    drop(taken);
}

/// `run --kubeconfig PATH`, as an operator built on controller-runtime is run by hand, reads that
/// file (it was "unexpected argument"), before KUBECONFIG; one it cannot read is named.
#[tokio::test]
async fn run_takes_the_kubeconfig_flag() {
    let ctx = support::context("fault-kubeconfig-flag").await;
    let health = support::free_port();
    let log = data_file(&ctx, "kubeconfig-flag", "log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_seccomp-sentinel"))
        .args([
            "run",
            "--namespaces",
            &ctx.ns,
            "--metrics-auth=none",
            "--kubeconfig",
        ])
        .arg(ctx.cluster.kubeconfig())
        .arg(format!("--health-addr=127.0.0.1:{health}"))
        .arg("--metrics-addr=127.0.0.1:0")
        .env("KUBECONFIG", "/nowhere/config")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start the operator");
    let statuses: Api<SeccompStatus> = ctx.api();
    create_pods(&ctx, ["web".to_string()], None).await;
    wait_for_explained(
        "the status of a pod, written by the operator given --kubeconfig",
        TIMEOUT,
        || async { statuses.get_opt("web").await.ok().flatten().map(|_| ()) },
        || std::fs::read_to_string(&log).unwrap_or_default(),
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let (code, stderr) = without_a_cluster(&["run", "--kubeconfig", "/nowhere/given"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("Error: reading /nowhere/given: No such file or directory"),
        "{stderr}"
    );
}

/// `:port`, the form of the shipped manifests, listens on IPv6 as on IPv4: in an IPv6 cluster the
/// kubelet probes the pod's IPv6 address, which the operator refused (it listened on 0.0.0.0), so
/// its liveness probe failed for good.
#[tokio::test]
async fn the_health_and_metrics_ports_answer_on_ipv6_and_ipv4() {
    if let Err(e) = std::net::TcpListener::bind("[::1]:0") {
        panic!("this test needs the IPv6 loopback address ::1 (sysctl net.ipv6.conf.lo.disable_ipv6=0): {e}");
    }
    let ctx = support::context("fault-dual-stack").await;
    let (health, metrics) = (support::free_port(), support::free_port());
    let log = data_file(&ctx, "dual-stack", "log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_seccomp-sentinel"))
        .args(["run", "--namespaces", &ctx.ns, "--metrics-auth=none"])
        .arg(format!("--health-addr=:{health}"))
        .arg(format!("--metrics-addr=:{metrics}"))
        .env("KUBECONFIG", ctx.cluster.kubeconfig())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start the operator");
    for host in ["127.0.0.1", "::1"] {
        wait_for_explained(
            &format!("an answer to GET /livez at {host} port {health}"),
            Duration::from_secs(30),
            || async move {
                support::plain_get(host, health, "/livez", None)
                    .await
                    .filter(|(code, _)| *code == 200)
            },
            || std::fs::read_to_string(&log).unwrap_or_default(),
        )
        .await;
        // /metrics over HTTPS, the shipped default.
        wait_for_explained(
            &format!("an answer to GET /metrics at {host} port {metrics}"),
            Duration::from_secs(30),
            || async move {
                support::https::get(host, metrics, "/metrics", None, &support::https::Trust::Anything)
                    .await
                    .ok()
                    .filter(|answer| answer.code == 200)
            },
            || std::fs::read_to_string(&log).unwrap_or_default(),
        )
        .await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// An API server that cannot be reached when the operator starts (a control-plane upgrade that
/// restarts both) is waited for. Before, discovery that failed read as "SecurityContextConstraints
/// are not served": the operator ran as off OpenShift for its whole life, with no SCC watch, so a
/// pod's SCC default was reported as its own choice (and an `sccs` exemption could not match).
#[tokio::test]
async fn an_api_server_away_at_start_is_not_taken_for_a_cluster_without_sccs() {
    let log = operator_started_before_its_api_server("fault-away-at-start", &[], &[]).await;
    assert!(
        log.contains("cannot ask the API server whether it serves this resource")
            && log.contains("scc_api=true"),
        "{log}"
    );
}

/// With leader election (as `config/manager` runs it), the Lease is set up once the API server
/// answers. Before, the operator exited at once ("setting up leader election: ... Connection
/// refused"): in a pod, a crash loop whose restart back-off (up to 5 minutes) kept it down after
/// the API server was back.
#[tokio::test]
async fn a_leader_elected_operator_waits_for_its_api_server() {
    let log = operator_started_before_its_api_server(
        "fault-lease-away",
        &["--leader-elect", "--lease-name=away", "--lease-duration=4"],
        &[("POD_NAMESPACE", "")],
    )
    .await;
    assert!(
        log.contains("cannot set up leader election yet: trying again"),
        "{log}"
    );
}

/// A Lease the API server refuses (a namespace that does not exist, a name it cannot have) stops
/// the start with its answer in one line. kube's text gave it three times over, each time with the
/// whole Status in its Debug form.
#[tokio::test]
async fn a_lease_the_api_server_refuses_is_one_line_at_start() {
    let ctx = support::context("fault-lease-refused").await;
    let kubeconfig = ctx.cluster.kubeconfig().to_path_buf();
    let missing = format!("{}-missing", ctx.ns);
    for (env, says) in [
        (
            vec![("POD_NAMESPACE", missing.as_str())],
            format!("Error: setting up leader election: 404 NotFound: namespaces \"{missing}\" not found"),
        ),
        (
            vec![("POD_NAMESPACE", ctx.ns.as_str()), ("SENTINEL_LEASE_NAME", "Lease_Name")],
            "Error: setting up leader election: 422 Invalid: Lease.coordination.k8s.io \"Lease_Name\" is invalid".to_string(),
        ),
    ] {
        let mut env = env;
        env.push(("RUST_BACKTRACE", "0"));
        let mut operator = Process::start(&ctx, &kubeconfig, &["--leader-elect"], &env);
        assert!(operator.wait_exit(TIMEOUT).is_some(), "{env:?}: still running\n{}", operator.log());
        let log = operator.log();
        assert!(log.contains(&says), "{env:?}: {log}");
        assert!(!log.contains("Caused by") && !log.contains("Status {"), "{env:?}: {log}");
    }
}

/// Starts the real operator (with `extra` flags and `env`; a `POD_NAMESPACE` given empty is the
/// test's namespace) 3 s before its API server can be reached, and waits for an SCC's default to
/// be reported as such on a pod; returns the operator's log.
async fn operator_started_before_its_api_server(name: &str, extra: &[&str], env: &[(&str, &str)]) -> String {
    use seccomp_sentinel::api::ProfileSource;
    let ctx = support::context(name).await;
    let pods: Api<Pod> = ctx.api();
    let restricted: Pod = serde_json::from_value(json!({
        "metadata": { "name": "restricted", "annotations": { "openshift.io/scc": "restricted-v2" } },
        "spec": { "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
                  "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] } }))
    .expect("pod");
    pods.create(&PostParams::default(), &restricted)
        .await
        .expect("create pod");

    // A kubeconfig for a port on the API server's host that nothing listens on yet.
    let port = support::free_port();
    let mut kubeconfig = Kubeconfig::read_from(ctx.cluster.kubeconfig()).expect("kubeconfig");
    let cluster = kubeconfig.clusters[0].cluster.as_mut().expect("cluster");
    let upstream = cluster
        .server
        .as_deref()
        .and_then(|s| s.strip_prefix("https://"))
        .expect("an https server")
        .trim_end_matches('/')
        .to_string();
    cluster.server = Some(format!("https://127.0.0.1:{port}"));
    let path = data_file(&ctx, "away", "kubeconfig");
    std::fs::write(&path, serde_json::to_string(&kubeconfig).expect("json")).expect("write kubeconfig");
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|&(key, value)| match (key, value) {
            ("POD_NAMESPACE", "") => (key, ctx.ns.as_str()),
            other => other,
        })
        .collect();
    let mut args = vec!["--trust-scc-annotation=true"];
    args.extend_from_slice(extra);
    let operator = Process::start(&ctx, &path, &args, &env);
    // Long enough for its first requests to find no API server.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The API server comes back.
    let _relay = support::Relay::start_at(&format!("127.0.0.1:{port}"), upstream).await;
    let statuses: Api<SeccompStatus> = ctx.api();
    let source = || async {
        let status = statuses.get_opt("restricted").await.ok().flatten()?.status?;
        status.containers.first().map(|c| c.source)
    };
    wait_for_explained(
        "the status",
        TIMEOUT,
        || async { source().await.map(|_| ()) },
        || operator.log(),
    )
    .await;
    wait_for_explained(
        "the SCC's default to be reported as such",
        Duration::from_secs(15),
        || async { (source().await == Some(ProfileSource::SccDefault)).then_some(()) },
        || operator.log(),
    )
    .await;
    operator.log()
}

/// A node agent whose API server is away tries again less and less often, and says so less and
/// less often: every node's agent does the same at once when a control plane goes down. Before,
/// kube's default back-off started over at the `Init` event a paged list emits at each attempt,
/// so each watch tried again about every second (and warned each time), as did the read of the
/// node's earlier reports: about 200 warnings a minute from one agent.
#[test]
fn an_agent_without_its_api_server_backs_off() {
    let port = support::free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    support::write_plain_kubeconfig(&kubeconfig, &format!("http://127.0.0.1:{port}"));
    let log = dir.path().join("agent.log");
    let mut agent = Command::new(env!("CARGO_BIN_EXE_seccomp-sentinel"))
        .args(["agent", "--node-name", "away", "--proc-root", "/proc"])
        .env("KUBECONFIG", &kubeconfig)
        .env("SENTINEL_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start the agent");
    std::thread::sleep(Duration::from_secs(15));
    let _ = agent.kill();
    let _ = agent.wait();
    let log = std::fs::read_to_string(&log).expect("the agent's log");
    let count = |text: &str| log.lines().filter(|l| l.contains(text)).count();
    // Tries at about 0, 0.8, 2.4, 5.6 and 12 s (less with the jitter): at most 5 in 15 s; it was
    // about 13.
    let pod_watch_failures = count("resource=\"pods\"");
    assert!(
        (2..=6).contains(&pod_watch_failures),
        "{pod_watch_failures} failed attempts to list pods in 15 s:\n{log}"
    );
    // The 1st, 2nd, 4th and 8th failure in a row.
    let seed_warnings = count("could not read the node's earlier reports");
    assert!(
        (1..=4).contains(&seed_warnings),
        "{seed_warnings} warnings in 15 s:\n{log}"
    );
}

/// Runs the real binary with `args` and `env` where no cluster can be found (a kubeconfig that
/// does not exist, not in a pod); its exit code and standard error.
fn without_a_cluster(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_seccomp-sentinel"))
        .args(args)
        .env("KUBECONFIG", "/nowhere/config")
        .env("RUST_BACKTRACE", "0")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .envs(env.iter().copied())
        .output()
        .expect("run seccomp-sentinel");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// No cluster to be found: the controller and the node agent stop with one line that names the
/// kubeconfig they tried. kube's own text, in a chain of three causes, quoted the path twice
/// (`failed to read kubeconfig from '"/nowhere/config"'`).
#[test]
fn without_a_cluster_the_error_names_the_kubeconfig_tried() {
    for (args, tried) in [
        (&["run"][..], "KUBECONFIG, ~/.kube/config, or in a pod"),
        (&["agent", "--node-name", "n"][..], "in a pod, or KUBECONFIG"),
    ] {
        let (code, stderr) = without_a_cluster(args, &[]);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "Error: no cluster found ({tried}): reading /nowhere/config: No such file or directory"
            )),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("Caused by"), "{args:?}: {stderr}");
    }
}

/// Metrics over HTTPS that cannot be served stop the start, before the cluster is looked for, with
/// a message that says what to change: a certificate directory whose key is another certificate's,
/// and the health port given for metrics too (the kubelet probes it over plain HTTP).
#[test]
fn metrics_over_https_that_cannot_be_served_are_start_up_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = support::https::issue("a CA", "localhost");
    let other = support::https::issue("another CA", "localhost");
    std::fs::write(dir.path().join("tls.crt"), &cert.cert).expect("write");
    std::fs::write(dir.path().join("tls.key"), &other.key).expect("write");
    let cert_dir = format!("--metrics-cert-dir={}", dir.path().display());
    let (code, stderr) = without_a_cluster(&["run", &cert_dir], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Error: the certificate of /metrics (--metrics-cert-dir): {0}/tls.key does not go with {0}/tls.crt",
            dir.path().display()
        )),
        "{stderr}"
    );

    let (code, stderr) = without_a_cluster(
        &[
            "run",
            "--health-addr=127.0.0.1:18181",
            "--metrics-addr=127.0.0.1:18181",
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("metrics over HTTPS need a port of their own"),
        "{stderr}"
    );
    // Plain metrics may share it: the start goes on, to the missing cluster.
    let (code, stderr) = without_a_cluster(
        &[
            "run",
            "--health-addr=127.0.0.1:18181",
            "--metrics-addr=127.0.0.1:18181",
            "--metrics-secure=false",
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("Error: no cluster found"), "{stderr}");
}

/// SENTINEL_LOG as a user sets it: one that is no filter is a warning that names it (it was dropped
/// without a word), and an empty one, as a manifest's `value: ""`, is the default filter (it
/// silenced every line but errors, the start line too).
#[test]
fn the_log_filter_of_the_environment_is_read_or_refused_aloud() {
    const STARTING: &str = "seccomp-sentinel controller starting";
    for (filter, starts, warns) in [
        ("", true, false),
        ("  ", true, false),
        ("info,kube=bar=baz", true, true),
        ("kube=trace,[", true, true),
        ("info", true, false),
        ("warn", false, false),
    ] {
        let (_, stderr) = without_a_cluster(
            &["run", "--health-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0"],
            &[("SENTINEL_LOG", filter)],
        );
        assert_eq!(
            stderr.contains(STARTING),
            starts,
            "SENTINEL_LOG={filter:?}: {stderr}"
        );
        let warning = format!("SENTINEL_LOG is not a log filter: the default is used value={filter:?}");
        assert_eq!(
            stderr.contains(&warning),
            warns,
            "SENTINEL_LOG={filter:?}: {stderr}"
        );
        assert!(
            stderr.contains("Error: no cluster found"),
            "SENTINEL_LOG={filter:?}: {stderr}"
        );
    }
}

/// A name set empty in the environment (a manifest's `value: ""`) is a start-up error that names
/// its flag. Taken as given, an empty lease name or node name had the operator or the agent try
/// requests the client refuses to build, again and again, with a warning each time.
#[test]
fn names_set_empty_in_the_environment_are_start_up_errors() {
    for (command, variable, flag) in [
        ("run", "SENTINEL_LEASE_NAME", "--lease-name"),
        ("run", "POD_NAMESPACE", "--operator-namespace"),
        ("run", "POD_NAME", "--instance"),
        ("run", "SENTINEL_OWNER_DEPLOYMENT", "--owner-deployment"),
        ("run", "SENTINEL_AGENT_SERVICE_ACCOUNT", "--agent-service-account"),
        ("agent", "NODE_NAME", "--node-name"),
    ] {
        let (code, stderr) = without_a_cluster(&[command], &[(variable, "")]);
        assert_eq!(code, Some(2), "{variable}=\"\": {stderr}");
        assert!(
            stderr.contains(&format!("a value is required for '{flag} ")),
            "{variable}=\"\": {stderr}"
        );
    }
}

/// The API server reads `--policy-selector`. One it refuses kept the policies' watch failing for
/// good: the operator ran, wrote statuses without any policy, and only warned now and then. It is
/// now a start-up error that quotes the API server, and a set-based selector it accepts still
/// selects the policies it names.
#[tokio::test]
async fn a_policy_selector_the_api_server_refuses_is_a_start_up_error() {
    let ctx = support::context("fault-bad-selector").await;
    let kubeconfig = ctx.cluster.kubeconfig().to_path_buf();
    for (selector, says) in [
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("team in (a", "is not a label selector the API server accepts"),
        ("team_in_(a)", "is not a label selector the API server accepts"),
    ] {
        let flag = format!("--policy-selector={selector}");
        let mut operator = Process::start(&ctx, &kubeconfig, &[&flag], &[]);
        let exited = operator.wait_exit(TIMEOUT);
        let log = operator.log();
        assert!(exited.is_some(), "{selector}: the operator kept running:\n{log}");
        let status = operator.child.wait().expect("exit status");
        assert!(!status.success(), "{selector}: {log}");
        assert!(
            log.contains(&format!("--policy-selector {selector:?}")) && log.contains(says),
            "{selector}: {log}"
        );
    }

    create_pods(&ctx, ["web".to_string()], None).await;
    let policies: Api<SeccompPolicy> = Api::all(ctx.client.clone());
    let name = format!("{}-set-based", ctx.ns);
    let policy: SeccompPolicy = serde_json::from_value(json!({
        "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompPolicy",
        "metadata": { "name": name, "labels": { POLICY_LABEL: ctx.ns } },
        "spec": { "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ctx.ns } } },
    }))
    .expect("policy");
    policies
        .create(&PostParams::default(), &policy)
        .await
        .expect("create policy");
    let flag = format!("--policy-selector={POLICY_LABEL} in ({}, other),!legacy", ctx.ns);
    let operator = Process::start(&ctx, &kubeconfig, &[&flag], &[]);
    let statuses: Api<SeccompStatus> = ctx.api();
    wait_for_explained(
        "the set-based selector's policy to judge the pod",
        TIMEOUT,
        || async {
            let status = statuses.get_opt("web").await.ok().flatten()?.status?;
            status.policies.iter().any(|p| p.name == name).then_some(())
        },
        || operator.log(),
    )
    .await;
}

/// Every request of the operator names it in its User-Agent, as Kubernetes' own clients do, so
/// the API server's audit log and anything reading it can tell its requests apart. kube sends no
/// User-Agent: the operator's requests were logged with none.
#[tokio::test]
async fn the_operators_requests_carry_its_user_agent() {
    use k8s_openapi::api::{core::v1::ServiceAccount, rbac::v1::ClusterRoleBinding};
    let ctx = support::context("fault-user-agent").await;
    let Some(audit_log) = ctx.cluster.audit_log() else {
        panic!(
            "this test reads the local control plane's audit log; an existing cluster \
             (SENTINEL_TEST_KUBECONFIG) keeps none: run it on the control plane `make test` starts"
        );
    };
    // The control plane audits the service accounts of the namespace seccomp-sentinel.
    const AUDITED: &str = "seccomp-sentinel";
    let _ = ctx.cluster.try_kubectl(&["create", "namespace", AUDITED]);
    let account = format!("ua-{}", ctx.ns);
    create_from_json(
        &Api::<ServiceAccount>::namespaced(ctx.client.clone(), AUDITED),
        json!({ "metadata": { "name": account } }),
    )
    .await;
    let bindings: Api<ClusterRoleBinding> = Api::all(ctx.client.clone());
    create_from_json(
        &bindings,
        json!({
            "metadata": { "name": account },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
            "subjects": [{ "kind": "ServiceAccount", "name": account, "namespace": AUDITED }],
        }),
    )
    .await;
    let token = ctx.cluster.service_account_token(AUDITED, &account).await;
    let kubeconfig = data_file(&ctx, "user-agent", "kubeconfig");
    std::fs::write(&kubeconfig, ctx.cluster.kubeconfig_with_token(&token)).expect("write kubeconfig");
    create_pods(&ctx, ["web".to_string()], None).await;
    let operator = Process::start(&ctx, &kubeconfig, &["--metrics-auth=none"], &[]);
    let statuses: Api<SeccompStatus> = ctx.api();
    wait_for_explained(
        "the status",
        TIMEOUT,
        || async { statuses.get_opt("web").await.ok().flatten().map(|_| ()) },
        || operator.log(),
    )
    .await;
    drop(operator);
    let _ = bindings.delete(&account, &DeleteParams::default()).await;

    let user = format!("system:serviceaccount:{AUDITED}:{account}");
    let agents: BTreeMap<String, usize> = std::fs::read_to_string(&audit_log)
        .expect("the audit log")
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["user"]["username"] == user.as_str())
        .fold(BTreeMap::new(), |mut agents, event| {
            let agent = event["userAgent"].as_str().unwrap_or("(none)").to_string();
            *agents.entry(agent).or_default() += 1;
            agents
        });
    let expected = seccomp_sentinel::client::user_agent(seccomp_sentinel::client::Component::Controller);
    assert!(
        expected.starts_with("seccomp-sentinel/") && expected.ends_with(" controller"),
        "{expected}"
    );
    assert_eq!(
        agents.keys().collect::<Vec<_>>(),
        [&expected],
        "the User-Agents of the operator's requests, with their counts: {agents:?}"
    );
}

/// An operator given several namespaces watches each of them, not the whole cluster: it is sent
/// their objects only, and runs with rights in those namespaces alone. Before, it watched pods,
/// statuses and workloads across the cluster and dropped the rest; under such rights every one
/// of those watches was refused and no pod got a status.
#[tokio::test]
async fn an_operator_of_several_namespaces_needs_rights_in_those_alone() {
    use k8s_openapi::api::{
        core::v1::ServiceAccount,
        rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding},
    };
    let a = support::context("fault-shard-a").await;
    let b = support::context("fault-shard-b").await;
    let unlisted = support::context("fault-shard-c").await;
    for ctx in [&a, &b, &unlisted] {
        create_pods(ctx, ["web".to_string()], None).await;
    }
    create_from_json(
        &a.api::<ServiceAccount>(),
        json!({ "metadata": { "name": "shard" } }),
    )
    .await;
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| json!({ "apiGroups": groups, "resources": resources, "verbs": verbs });
    let watch = ["list", "watch"];
    // Cluster-wide: the cluster-scoped kinds, and nothing of pods, statuses or workloads.
    let cluster_rules = json!([
        rule(&[""], &["nodes", "namespaces"], &watch),
        rule(&["apiextensions.k8s.io"], &["customresourcedefinitions"], &watch),
        rule(&["seccomp.sentinel.dev"], &["seccomppolicies"], &watch),
        rule(&["seccomp.sentinel.dev"], &["seccomppolicies/status"], &["patch"]),
        rule(
            &["security.openshift.io"],
            &["securitycontextconstraints"],
            &watch
        ),
        rule(
            &["security-profiles-operator.x-k8s.io"],
            &["seccompprofiles"],
            &watch
        ),
        rule(&["events.k8s.io"], &["events"], &["create"]),
    ]);
    // In the operator's namespaces only (bound there by RoleBindings).
    let namespaced_rules = json!([
        rule(&[""], &["pods"], &["list", "watch", "patch"]),
        rule(&[""], &["pods/eviction"], &["create"]),
        rule(&["apps"], &["replicasets", "statefulsets"], &watch),
        rule(&[""], &["replicationcontrollers"], &watch),
        rule(
            &["seccomp.sentinel.dev"],
            &["seccompstatuses"],
            &["list", "watch", "create", "patch", "delete"]
        ),
    ]);
    let roles: Api<ClusterRole> = Api::all(a.client.clone());
    let cluster_role = format!("{}-cluster", a.ns);
    let namespaced_role = format!("{}-namespaced", a.ns);
    for (name, rules) in [
        (&cluster_role, cluster_rules),
        (&namespaced_role, namespaced_rules),
    ] {
        create_from_json(&roles, json!({ "metadata": { "name": name }, "rules": rules })).await;
    }
    let binding = |name: &str, role: &str| {
        json!({
            "metadata": { "name": name },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
            "subjects": [{ "kind": "ServiceAccount", "name": "shard", "namespace": a.ns }],
        })
    };
    let cluster_bindings: Api<ClusterRoleBinding> = Api::all(a.client.clone());
    create_from_json(&cluster_bindings, binding(&cluster_role, &cluster_role)).await;
    for ctx in [&a, &b] {
        create_from_json(&ctx.api::<RoleBinding>(), binding("shard", &namespaced_role)).await;
    }

    let token = a.cluster.service_account_token(&a.ns, "shard").await;
    let kubeconfig = data_file(&a, "shard", "kubeconfig");
    std::fs::write(&kubeconfig, a.cluster.kubeconfig_with_token(&token)).expect("write kubeconfig");
    let operator = Process::start(
        &a,
        &kubeconfig,
        &["--namespaces", &b.ns, "--metrics-auth=none"],
        &[],
    );
    for ctx in [&a, &b] {
        let statuses: Api<SeccompStatus> = ctx.api();
        wait_for_explained(
            &format!("a status in {}", ctx.ns),
            TIMEOUT,
            || async { statuses.get_opt("web").await.ok().flatten().map(|_| ()) },
            || operator.log(),
        )
        .await;
    }
    let log = operator.log();
    assert!(!log.contains("watch error"), "a watch was refused:\n{log}");
    let statuses: Api<SeccompStatus> = unlisted.api();
    assert!(
        statuses.get_opt("web").await.expect("read").is_none(),
        "a status outside the operator's namespaces"
    );
    drop(operator);
    let _ = cluster_bindings
        .delete(&cluster_role, &DeleteParams::default())
        .await;
    for name in [&cluster_role, &namespaced_role] {
        let _ = roles.delete(name, &DeleteParams::default()).await;
    }
}

/// Creates the object `json` describes.
async fn create_from_json<K>(api: &Api<K>, json: serde_json::Value)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    let object: K = serde_json::from_value(json).expect("object");
    api.create(&PostParams::default(), &object).await.expect("create");
}

/// Watches the CRD `name` (from before this returns) until it is deleted; the task's result is
/// every reason its `Terminating` condition had meanwhile.
async fn crd_deletion_reasons(client: Client, name: &str) -> tokio::task::JoinHandle<Vec<String>> {
    use futures::StreamExt;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::runtime::{WatchStreamExt, watcher};
    let api = Api::<CustomResourceDefinition>::all(client);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let (listed, ready) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut listed = Some(listed);
        let mut reasons: Vec<String> = Vec::new();
        let stream = watcher(api, config).default_backoff();
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::InitDone) => {
                    if let Some(listed) = listed.take() {
                        let _ = listed.send(());
                    }
                }
                Ok(watcher::Event::Apply(crd) | watcher::Event::InitApply(crd)) => {
                    terminating_reasons(crd, &mut reasons);
                }
                Ok(watcher::Event::Delete(crd)) => {
                    terminating_reasons(crd, &mut reasons);
                    return reasons;
                }
                _ => {}
            }
        }
        reasons
    });
    ready.await.expect("the CRD listed");
    task
}

fn terminating_reasons(
    crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    reasons: &mut Vec<String>,
) {
    let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
    for c in conditions.into_iter().filter(|c| c.type_ == "Terminating") {
        let reason = c.reason.unwrap_or_default();
        if reasons.last() != Some(&reason) {
            reasons.push(reason);
        }
    }
}

/// The CRDs deleted while the operator runs (an uninstall stopped half-way, a mistaken `kubectl
/// delete`), on a control plane of the test's own: one warning that names the cause stands for
/// every pod's failing pass, and once the CRDs are installed again every status comes back.
/// Pods created while the CRD is gone make sure passes fail: the statuses' deletions alone may
/// not reach the operator (on a busy machine the API server closed the watch first).
#[tokio::test]
async fn crds_deleted_while_running_are_one_warning_and_installed_again_every_status_returns() {
    let ctx = support::context("fault-crds").await;
    let binaries = sentinel_testenv::Binaries::locate().expect("binaries");
    let plane = sentinel_testenv::ControlPlane::start(&binaries).expect("a control plane of the test's own");
    sentinel_testenv::install_apis(&binaries, plane.kubeconfig()).expect("the CRDs");
    plane
        .kubectl(&["create", "namespace", &ctx.ns])
        .expect("namespace");
    let client = client_for(plane.kubeconfig()).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ctx.ns);
    for i in 0..12 {
        pods.create(&PostParams::default(), &pod(&format!("p{i:02}"), None))
            .await
            .expect("create pod");
    }
    let statuses: Api<SeccompStatus> = Api::namespaced(client.clone(), &ctx.ns);
    let written = |count: usize| {
        let statuses = statuses.clone();
        async move {
            let listed = statuses.list(&ListParams::default()).await.ok()?.items;
            (listed.len() == count).then_some(())
        }
    };
    let operator = Process::start(&ctx, plane.kubeconfig(), &[], &[]);
    wait_for("every status", TIMEOUT, || written(12)).await;

    let deletion = crd_deletion_reasons(client, "seccompstatuses.seccomp.sentinel.dev").await;
    plane
        .kubectl(&["delete", "crd", "seccompstatuses.seccomp.sentinel.dev"])
        .expect("the CRD deleted");
    let reasons = tokio::time::timeout(TIMEOUT, deletion)
        .await
        .expect("the CRD's deletion seen")
        .expect("the CRD watch");
    // Before Kubernetes 1.34 an apply may create a status while the CRD is being deleted; the
    // API server, finding one left, says InstanceDeletionCheck and tries again a minute later.
    assert!(
        reasons.contains(&"InstanceDeletionInProgress".to_string())
            && !reasons.contains(&"InstanceDeletionCheck".to_string()),
        "the statuses went in one round: {reasons:?}\n{}",
        operator.log()
    );
    assert!(
        operator.log().contains("the SeccompStatus CRD is being deleted"),
        "{}",
        operator.log()
    );
    for i in 0..12 {
        pods.create(&PostParams::default(), &pod(&format!("q{i:02}"), None))
            .await
            .expect("create pod");
    }
    // Each pod's pass fails and is tried again at 0.5, 1, 2, 4 and 8 s: over a hundred failures.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let log = operator.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("reconcile failed"))
        .collect();
    assert!(
        (1..=2).contains(&warnings.len()),
        "one warning for all pods (at most one per 30 s): {warnings:#?}"
    );
    assert!(
        warnings[0].contains("until the SeccompStatus CRD is installed again"),
        "the cause, named: {}",
        warnings[0]
    );

    sentinel_testenv::install_apis(&binaries, plane.kubeconfig()).expect("the CRDs again");
    wait_for_explained("every status, back", TIMEOUT, || written(24), || operator.log()).await;
}

/// Two operators sharded by `--namespaces` that share a policy count different pods. Each forced
/// its counts over the other's every two seconds, for ever (found on `make run`). Now the first
/// to write keeps the status; the other leaves it, says so once, and writes nothing more.
#[tokio::test]
async fn shards_sharing_a_policy_leave_its_status_to_one_instead_of_rewriting_it() {
    let ctx = support::context("fault-shards").await;
    let other_ns = format!("{}-b", ctx.ns);
    ctx.kubectl(&["create", "namespace", &other_ns]);
    create_pods(&ctx, ["a1".to_string(), "a2".to_string()], None).await;
    Api::<Pod>::namespaced(ctx.client.clone(), &other_ns)
        .create(&PostParams::default(), &pod("b1", None))
        .await
        .expect("create pod");
    let kubeconfig = ctx.cluster.kubeconfig().to_path_buf();
    let first = Process::start(&ctx, &kubeconfig, &[], &[]);
    let name = format!("{}-shared", ctx.ns);
    let policy: SeccompPolicy = serde_json::from_value(json!({
        "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompPolicy",
        "metadata": { "name": name, "labels": { POLICY_LABEL: ctx.ns } },
        "spec": { "namespaceSelector": { "matchExpressions": [{ "key": "kubernetes.io/metadata.name",
            "operator": "In", "values": [ctx.ns, other_ns] }] } },
    }))
    .expect("policy");
    let policies: Api<SeccompPolicy> = Api::all(ctx.client.clone());
    policies
        .create(&PostParams::default(), &policy)
        .await
        .expect("create policy");
    let matched = || async {
        let p = policies.get(&name).await.ok()?;
        Some((p.status?.matched_pods, p.metadata.resource_version?))
    };
    wait_for_explained(
        "the first shard's count",
        TIMEOUT,
        || async { matched().await.filter(|(n, _)| *n == 2) },
        || first.log(),
    )
    .await;
    // Its --namespaces are this namespace and the other one: it counts 3 pods.
    let second = Process::start(&ctx, &kubeconfig, &["--namespaces", &other_ns], &[]);
    wait_for_explained(
        "the second shard to leave the status",
        TIMEOUT,
        || async { second.log().contains("keeps this policy's status").then_some(()) },
        || second.log(),
    )
    .await;
    let (count, version) = matched().await.expect("the policy's status");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        matched().await,
        Some((count, version.clone())),
        "the status was written again (it had {count} pods at resourceVersion {version})"
    );
    assert_eq!(count, 2, "the first shard's count stands");
    let warnings = second.log().matches("keeps this policy's status").count();
    assert_eq!(warnings, 1, "said once:\n{}", second.log());
    drop(first);
    drop(second);
    delete_policy(&ctx, &name).await;
    ctx.kubectl(&["delete", "namespace", &other_ns, "--wait=false"]);
}

/// A status the cluster refuses for good (here a ValidatingAdmissionPolicy refusing every
/// SeccompStatus of the namespace; elsewhere an object-count quota, or a webhook requiring labels
/// on every object) fails at every try, a minute apart once the backoff is at its longest. Each
/// pod's failures are warnings less and less often (the 1st, 2nd, 4th, ...), the rest debug lines.
/// Before, every try was a warning: one a minute for each such pod, for ever. The pod carries one
/// Warning Event that says why it has no status (before, only the operator's log said so).
#[tokio::test]
async fn a_status_the_cluster_refuses_for_good_is_warned_about_less_and_less() {
    let ctx = support::context("fault-refused").await;
    let rules = json!([{ "apiGroups": ["seccomp.sentinel.dev"], "apiVersions": ["*"], "operations": ["CREATE"],
        "resources": ["seccompstatuses"] }]);
    let refusing = support::AdmissionRule::create(
        &ctx,
        "no-statuses",
        rules,
        "false",
        "no reports in this namespace",
    )
    .await;
    let statuses: Api<SeccompStatus> = ctx.api();
    let probe: SeccompStatus = serde_json::from_value(json!({
        "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompStatus",
        "metadata": { "name": "probe" }, "spec": {} }))
    .expect("status");
    wait_for("the admission policy to refuse statuses", TIMEOUT, || async {
        match statuses.create(&PostParams::default(), &probe).await {
            Ok(_) => {
                let _ = statuses.delete("probe", &DeleteParams::default()).await;
                None
            }
            Err(_) => Some(()),
        }
    })
    .await;
    create_pods(&ctx, ["refused".to_string()], None).await;
    let kubeconfig = ctx.cluster.kubeconfig().to_path_buf();
    let operator = Process::start(
        &ctx,
        &kubeconfig,
        &[],
        &[("SENTINEL_LOG", "info,seccomp_sentinel=debug")],
    );
    // Tries at about 0, 1, 3, 7 and 15 s (0.5 s doubled from the 2nd on): five in 20 s.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let log = operator.log();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("reconcile failed") && l.contains("refused"))
        .collect();
    let warned = failed.iter().filter(|l| l.contains("WARN")).count();
    assert!(failed.len() >= 5, "{failed:#?}");
    assert_eq!(warned, 3, "the 1st, 2nd and 4th: {failed:#?}");
    assert!(
        failed[0].contains("no reports in this namespace"),
        "{}",
        failed[0]
    );
    // The pod says why it has no status, once for all those tries.
    let told = ctx.kubectl(&[
        "get",
        "events",
        "-n",
        &ctx.ns,
        "--field-selector",
        "reason=StatusRefused,involvedObject.name=refused",
        "-o",
        "jsonpath={range .items[*]}{.type}: {.message}{\"\\n\"}{end}",
    ]);
    let told: Vec<&str> = told.lines().collect();
    assert_eq!(told.len(), 1, "one Event on the pod: {told:#?}");
    assert!(
        told[0].starts_with("Warning: the API server refused the pod's SeccompStatus")
            && told[0].contains("no reports in this namespace"),
        "{}",
        told[0]
    );
    refusing.remove(&ctx).await;
}
