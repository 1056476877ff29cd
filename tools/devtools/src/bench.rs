//! What the benchmarks share (`sentinel-bench`, `sentinel-bench-peer`): results and their
//! verdicts, the bench's pods, clients, and readings of processes from /proc.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::{
    Api, Client,
    api::PostParams,
    config::{KubeConfigOptions, Kubeconfig},
};
use sentinel_testenv::ControlPlane;
use serde_json::json;

#[derive(serde::Serialize)]
pub struct Measurement {
    pub id: &'static str,
    pub what: String,
    pub measured: f64,
    pub unit: &'static str,
    pub target: String,
    /// measured ÷ target for "at most" targets, target ÷ measured for "at least" ones: ≤ 1 passes.
    pub ratio: f64,
    pub verdict: &'static str,
}

pub fn at_most(id: &'static str, what: &str, measured: f64, unit: &'static str, target: f64) -> Measurement {
    let ratio = if target == 0.0 {
        if measured == 0.0 { 0.0 } else { f64::INFINITY }
    } else {
        measured / target
    };
    Measurement {
        id,
        what: what.into(),
        measured,
        unit,
        target: format!("<= {target}"),
        ratio,
        verdict: if measured <= target { "PASS" } else { "FAIL" },
    }
}

pub fn at_least(id: &'static str, what: &str, measured: f64, unit: &'static str, target: f64) -> Measurement {
    Measurement {
        id,
        what: what.into(),
        measured,
        unit,
        target: format!(">= {target}"),
        ratio: target / measured.max(f64::MIN_POSITIVE),
        verdict: if measured >= target { "PASS" } else { "FAIL" },
    }
}

/// A figure reported for information, with no target.
pub fn information(id: &'static str, what: &str, measured: f64, unit: &'static str) -> Measurement {
    Measurement {
        id,
        what: what.into(),
        measured,
        unit,
        target: "-".into(),
        ratio: measured,
        verdict: "INFO",
    }
}

pub fn print(m: &Measurement) {
    println!(
        "{:<3} {:<58} measured {:>14.3} {:<10} target {:<10} ratio {:>7.3}  {}",
        m.id, m.what, m.measured, m.unit, m.target, m.ratio, m.verdict
    );
}

pub async fn client(kubeconfig: &std::path::Path) -> anyhow::Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let mut config = seccomp_sentinel::client::from_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(anyhow::Error::msg)?;
    config.default_retry = true;
    Ok(Client::try_from(config)?)
}

/// The pod shapes of [`pod`]: pod `i` has shape `i % POD_SHAPES`.
pub const POD_SHAPES: usize = 3;

pub fn pod(name: &str, i: usize) -> Pod {
    // A realistic mix: a third confined at pod level, a third with one unconfined sidecar, a third
    // with nothing set; two containers each.
    let pod_profile = match i % POD_SHAPES {
        0 => json!({ "seccompProfile": { "type": "RuntimeDefault" } }),
        _ => json!({}),
    };
    let sidecar = match i % POD_SHAPES {
        1 => json!({ "seccompProfile": { "type": "Unconfined" } }),
        _ => json!({}),
    };
    serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "app": format!("app-{}", i % 50) } },
        "spec": {
            "securityContext": pod_profile,
            "containers": [
                { "name": "app", "image": "registry.example/app:1", "env": [{ "name": "MODE", "value": "production" }],
                  "resources": { "requests": { "cpu": "100m", "memory": "64Mi" } } },
                { "name": "proxy", "image": "registry.example/proxy:1", "securityContext": sidecar }
            ]
        }
    }))
    .expect("pod")
}

pub async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), name);
    for _ in 0..300 {
        if accounts.get_opt("default").await?.is_some() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("namespace {name} has no default service account")
}

pub async fn create_pods(client: &Client, ns: &str, range: std::ops::Range<usize>) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    stream::iter(range)
        .map(|i| {
            let pods = pods.clone();
            async move {
                pods.create(&PostParams::default(), &pod(&format!("p{i:05}"), i))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// User + system CPU seconds a process has used, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command (which may hold spaces) start at field 3 (state).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks =
        |i: usize| -> anyhow::Result<f64> { Ok(fields.get(i).context("stat field")?.parse::<f64>()?) };
    // utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// A memory field (in kB) of `/proc/<pid>/status`, in bytes.
pub fn proc_status_bytes(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(kib * 1024)
}

/// A running `seccomp-sentinel run` (stopped with SIGTERM, as the kubelet stops it).
pub struct OperatorProcess {
    child: Child,
}

impl OperatorProcess {
    /// `operator run` on one namespace, with a given write rate and burst
    /// (`--max-writes-per-second`, `--write-burst`), as `config/manager` runs it.
    pub fn start(
        operator: &Path,
        kubeconfig: &Path,
        ns: &str,
        rate: u32,
        burst: u32,
        concurrency: Option<u16>,
    ) -> anyhow::Result<Self> {
        // Probes and metrics on free loopback ports, so that several can run at once.
        let [health, metrics] = sentinel_testenv::free_ports::<2>()?;
        let child = Command::new(operator)
            .args(["run", "--namespaces", ns, "--kubelet-seccomp-default=false"])
            .arg(format!("--health-addr=127.0.0.1:{health}"))
            .arg(format!("--metrics-addr=127.0.0.1:{metrics}"))
            .arg(format!("--max-writes-per-second={rate}"))
            .arg(format!("--write-burst={burst}"))
            .args(concurrency.map(|n| format!("--concurrency={n}")))
            .env("KUBECONFIG", kubeconfig)
            // SENTINEL_BENCH_LOG lets a bench run show the operator's own log.
            .env(
                "SENTINEL_LOG",
                std::env::var("SENTINEL_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            // As config/manager/manager.yaml runs it.
            .env("MALLOC_ARENA_MAX", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (run `cargo build --release` first)",
                    operator.display()
                )
            })?;
        Ok(OperatorProcess { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (VmRSS, VmHWM) in bytes.
    pub fn memory(&self) -> anyhow::Result<(u64, u64)> {
        Ok((
            proc_status_bytes(self.child.id(), "VmRSS")?,
            proc_status_bytes(self.child.id(), "VmHWM")?,
        ))
    }

    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for OperatorProcess {
    /// Also on an early return or a panic of the bench, so that no operator outlives it.
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(30));
    }
}

/// Stops a child as the kubelet stops a container: SIGTERM, then SIGKILL after `grace`.
pub fn terminate(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Creates `count` pods named `<prefix><i:05>` at `rate` per second (one create call each, not
/// waiting for the previous one); returns when each create call was made, by pod name.
pub async fn create_pods_at_rate(
    client: &Client,
    ns: &str,
    prefix: &str,
    count: usize,
    rate: u32,
) -> anyhow::Result<std::collections::HashMap<String, std::time::Instant>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut created = std::collections::HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    let mut inflight = Vec::new();
    for i in 0..count {
        tick.tick().await;
        let name = format!("{prefix}{i:05}");
        created.insert(name.clone(), std::time::Instant::now());
        let pods = pods.clone();
        inflight.push(tokio::spawn(async move {
            pods.create(&PostParams::default(), &pod(&name, i))
                .await
                .map(|_| ())
        }));
    }
    for task in inflight {
        task.await??;
    }
    Ok(created)
}

/// The SeccompStatuses of `ns` as plain JSON objects (written and read as the API has them).
pub fn status_json_api(client: &Client, ns: &str) -> Api<kube::api::DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("seccomp.sentinel.dev", "v1alpha1", "SeccompStatus"),
            "seccompstatuses",
        ),
    )
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The value of one series in Prometheus text, named with its labels as exposed (sorted).
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// What kube-apiserver's Go runtime and watch cache say of themselves at one moment.
#[derive(Clone, Copy, Debug)]
pub struct ApiserverRuntime {
    /// CPU its garbage collector has used since the start (Go's own estimate).
    pub gc_cpu_seconds: f64,
    /// Heap found live by the last garbage collection.
    pub live_heap_bytes: f64,
    /// Events of SeccompStatuses its watch cache can keep: the capacity doubles, up to 102,400,
    /// whenever the cache is full and its oldest event is under 75 s old.
    pub status_watch_cache_capacity: f64,
}

/// One reading of kube-apiserver's `/metrics` (one request), so that what it has counted and what
/// its runtime says come from the same moment and cost one fetch of some megabytes.
pub struct ApiserverMetrics {
    text: String,
}

impl ApiserverMetrics {
    pub fn read(plane: &ControlPlane) -> anyhow::Result<Self> {
        Ok(Self {
            text: plane.kubectl(&["get", "--raw", "/metrics"])?,
        })
    }

    /// Every request the API server has counted, by `verb resource[/subresource]`.
    pub fn request_counts(&self) -> RequestCounts {
        let mut counts = RequestCounts::new();
        for line in self
            .text
            .lines()
            .filter(|l| l.starts_with("apiserver_request_total{"))
        {
            let label = |name: &str| {
                line.split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("")
            };
            let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            let subresource = label("subresource");
            let key = if subresource.is_empty() {
                format!("{} {}", label("verb"), label("resource"))
            } else {
                format!("{} {}/{subresource}", label("verb"), label("resource"))
            };
            *counts.entry(key).or_insert(0) += value as u64;
        }
        counts
    }

    /// Figures an API server does not expose (another release, another Go) are NaN: they only
    /// explain a measurement, so they never stop one.
    pub fn runtime(&self) -> ApiserverRuntime {
        let value = |series: &str| metric_value(&self.text, series).unwrap_or(f64::NAN);
        ApiserverRuntime {
            gc_cpu_seconds: value("go_cpu_classes_gc_total_cpu_seconds_total"),
            live_heap_bytes: value("go_gc_heap_live_bytes"),
            // Absent until the API server first serves SeccompStatuses.
            status_watch_cache_capacity: metric_value(
                &self.text,
                "watch_cache_capacity{group=\"seccomp.sentinel.dev\",resource=\"seccompstatuses\"}",
            )
            .unwrap_or(0.0),
        }
    }
}

/// Requests by `verb resource[/subresource]`, as [`ApiserverMetrics::request_counts`] gives them.
pub type RequestCounts = std::collections::BTreeMap<String, u64>;

/// Requests with one of `verbs` on `resource` (all its subresources) among `counts`.
pub fn requests_on(counts: &RequestCounts, resource: &str, verbs: &[&str]) -> u64 {
    counts
        .iter()
        .filter(|(key, _)| {
            key.split_once(' ').is_some_and(|(verb, target)| {
                verbs.contains(&verb) && target.split('/').next() == Some(resource)
            })
        })
        .map(|(_, n)| n)
        .sum()
}

/// The requests counted between two readings of [`ApiserverMetrics::request_counts`], as one line.
pub fn describe_requests(before: &RequestCounts, after: &RequestCounts) -> String {
    after
        .iter()
        .filter_map(|(key, n)| {
            let d = n - before.get(key).copied().unwrap_or(0).min(*n);
            (d > 0).then(|| format!("{key} {d}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::{RequestCounts, metric_value, requests_on};

    #[test]
    fn a_series_is_found_by_its_whole_name_and_labels() {
        let text = "\
# HELP go_gc_heap_live_bytes Heap memory occupied by live objects.
# TYPE go_gc_heap_live_bytes gauge
go_gc_heap_live_bytes 3.85875968e+08
go_gc_heap_live_bytes_extra 1
watch_cache_capacity{group=\"\",resource=\"pods\"} 1600
watch_cache_capacity{group=\"seccomp.sentinel.dev\",resource=\"seccompstatuses\"} 25600
";
        assert_eq!(metric_value(text, "go_gc_heap_live_bytes"), Some(385_875_968.0));
        assert_eq!(
            metric_value(
                text,
                "watch_cache_capacity{group=\"seccomp.sentinel.dev\",resource=\"seccompstatuses\"}"
            ),
            Some(25_600.0)
        );
        assert_eq!(metric_value(text, "go_gc_heap_live"), None);
        assert_eq!(metric_value(text, "etcd_mvcc_db_total_size_in_bytes"), None);
    }

    #[test]
    fn requests_on_a_resource_count_its_subresources_and_only_the_verbs_asked() {
        let counts: RequestCounts = [
            ("APPLY seccompstatuses", 10),
            ("PATCH seccompstatuses/status", 2),
            ("GET seccompstatuses", 7),
            ("APPLY seccompstatusesx", 100),
            ("PATCH pods", 1000),
        ]
        .into_iter()
        .map(|(key, n)| (key.to_string(), n))
        .collect();
        assert_eq!(requests_on(&counts, "seccompstatuses", &["PATCH", "APPLY"]), 12);
        assert_eq!(requests_on(&counts, "seccompstatuses", &["GET"]), 7);
    }
}
