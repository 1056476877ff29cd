//! `sentinel-bench-peer` (`make bench-peer`): seccomp-sentinel beside Kyverno's background scan
//! (its `reports-controller` with the restrict-seccomp-strict policy), on one local control plane,
//! on the same pods, in one run. Four scenarios: pods created at a steady rate with both running;
//! N pods existing when both start (cold start); both restarted with nothing changed; both idle
//! (Kyverno rescans every hour). Kyverno's figures are information; the two ratios the project
//! targets (cold start ≥ 10× faster, ≥ 10× less memory) carry a verdict. Every setting of both
//! sides is written to `bench/peer-results-<date>.json` with the results.
use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams},
    runtime::{WatchStreamExt, watcher},
};
use sentinel_devtools::bench::{
    ApiserverMetrics, Measurement, OperatorProcess, at_least, client, cpu_seconds, create_namespace,
    create_pods_at_rate, information, percentile, print, proc_status_bytes, status_json_api, terminate,
};
use sentinel_testenv::{self as testenv, Binaries, ControlPlane};
use serde_json::{Value, json};

#[derive(Parser, Debug)]
struct Args {
    /// Pods of each scenario.
    #[arg(long, env = "N", default_value = "3000")]
    pods: usize,
    /// Pod creation rate of the steady scenario (pods per second).
    #[arg(long, env = "RATE", default_value = "50")]
    rate: u32,
    /// Seconds both stay idle at the end (Kyverno's background scan interval is one hour).
    #[arg(long, env = "IDLE_SECONDS", default_value = "3900")]
    idle_seconds: u64,
    /// The operator's write limit; by default Kyverno's own client limit (300 requests/s).
    #[arg(long, default_value = "300")]
    writes_per_second: u32,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench")]
    out_dir: PathBuf,
    /// The operator binary (a release build).
    #[arg(long, default_value = "target/release/seccomp-sentinel")]
    operator: PathBuf,
    /// Kyverno's reports-controller (`make peer-tools`).
    #[arg(long, default_value = "e2e/bin/reports-controller")]
    peer: PathBuf,
    /// Kyverno's CRDs, copied from the same module (`make peer-tools`).
    #[arg(long, default_value = "e2e/bin/kyverno-crds")]
    peer_crds: PathBuf,
}

/// Kyverno's namespace (its lease and configuration live there).
const KYVERNO_NAMESPACE: &str = "kyverno";
const KYVERNO_POLICY: &str = "restrict-seccomp-strict";
/// Kyverno's settings, passed as flags so that the results record what ran: every one its default
/// for the reports-controller (read from v1.19.1's `cmd/reports-controller` and `cmd/internal`).
const KYVERNO_SETTINGS: &[(&str, &str)] = &[
    ("clientRateLimitQPS", "300"),
    ("clientRateLimitBurst", "300"),
    ("backgroundScanWorkers", "2"),
    ("backgroundScanInterval", "1h"),
    ("aggregationWorkers", "10"),
    ("resyncPeriod", "15m"),
    ("maxBackgroundReports", "10000"),
];

/// Kyverno's reports-controller, run as its Deployment runs it (environment, configuration maps,
/// lease), its metrics on loopback.
struct Kyverno {
    child: Child,
}

impl Kyverno {
    fn start(args: &Args, kubeconfig: &Path, log: &Path) -> anyhow::Result<Self> {
        let [metrics_port] = testenv::free_ports::<1>()?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let child = Command::new(&args.peer)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg("--metricsHost=127.0.0.1")
            .arg(format!("--metricsPort={metrics_port}"))
            .args(
                KYVERNO_SETTINGS
                    .iter()
                    .map(|(flag, value)| format!("--{flag}={value}")),
            )
            .env("KYVERNO_NAMESPACE", KYVERNO_NAMESPACE)
            .env("KYVERNO_POD_NAME", "kyverno-reports-controller-bench")
            .env("KYVERNO_SERVICEACCOUNT_NAME", "kyverno-reports-controller")
            .env("KYVERNO_DEPLOYMENT", "kyverno-reports-controller")
            .env("INIT_CONFIG", "kyverno")
            .env("METRICS_CONFIG", "kyverno-metrics")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} (run `make peer-tools` first)", args.peer.display()))?;
        Ok(Kyverno { child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, once it has ended.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn stop(self) {
        drop(self);
    }
}

impl Drop for Kyverno {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(20));
    }
}

/// The two sides, started and stopped together.
struct Both {
    operator: OperatorProcess,
    kyverno: Kyverno,
    started: Instant,
}

impl Both {
    fn start(args: &Args, kubeconfig: &Path, ns: &str, log: &Path) -> anyhow::Result<Self> {
        let started = Instant::now();
        let kyverno = Kyverno::start(args, kubeconfig, log)?;
        let operator = OperatorProcess::start(
            &args.operator,
            kubeconfig,
            ns,
            args.writes_per_second,
            args.writes_per_second,
            // As a user would run it at that limit: the operator's own default for it.
            None,
        )?;
        Ok(Both {
            operator,
            kyverno,
            started,
        })
    }

    /// (operator, Kyverno): (VmRSS, VmHWM) in bytes.
    fn memory(&self) -> anyhow::Result<((u64, u64), (u64, u64))> {
        let kyverno = self.kyverno.pid();
        Ok((
            self.operator.memory()?,
            (
                proc_status_bytes(kyverno, "VmRSS")?,
                proc_status_bytes(kyverno, "VmHWM")?,
            ),
        ))
    }

    /// (operator, Kyverno) CPU seconds used since start.
    fn cpu(&self) -> (f64, f64) {
        (
            cpu_seconds(self.operator.pid()).unwrap_or(f64::NAN),
            cpu_seconds(self.kyverno.pid()).unwrap_or(f64::NAN),
        )
    }

    fn stop(self) {
        self.operator.stop();
        self.kyverno.stop();
    }
}

/// First sightings of complete reports, by pod name, with the pod UID they describe.
#[derive(Default)]
struct Sightings {
    seen: Mutex<HashMap<String, (String, Instant)>>,
}

impl Sightings {
    /// The time each expected pod (name → UID) was first reported, once all were; an error naming
    /// how many were missing after `limit`.
    async fn wait_all(
        &self,
        side: &str,
        expected: &HashMap<String, String>,
        limit: Duration,
    ) -> anyhow::Result<HashMap<String, Instant>> {
        let deadline = Instant::now() + limit;
        loop {
            let found: HashMap<String, Instant> = {
                let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                expected
                    .iter()
                    .filter_map(|(name, uid)| {
                        seen.get(name)
                            .filter(|(seen_uid, _)| seen_uid == uid)
                            .map(|(_, at)| (name.clone(), *at))
                    })
                    .collect()
            };
            if found.len() == expected.len() {
                return Ok(found);
            }
            if Instant::now() > deadline {
                bail!(
                    "{side}: {} of {} pods reported after {limit:?}",
                    found.len(),
                    expected.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Watches `api` for complete reports (`reads` gives the pod name and UID one describes) and
/// records when each was first seen.
fn observe(
    api: Api<DynamicObject>,
    reads: fn(&DynamicObject) -> Option<(String, String)>,
) -> (Arc<Sightings>, tokio::task::JoinHandle<()>) {
    let sightings = Arc::new(Sightings::default());
    let recorder = sightings.clone();
    let task = tokio::spawn(async move {
        let events = watcher(api, watcher::Config::default()).default_backoff();
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            let object = match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
                _ => continue,
            };
            if let Some((name, uid)) = reads(&object) {
                recorder
                    .seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(name)
                    .or_insert_with(|| (uid, Instant::now()));
            }
        }
    });
    (sightings, task)
}

/// A SeccompStatus that carries the policy's verdict: (pod name, pod UID).
fn operator_report(status: &DynamicObject) -> Option<(String, String)> {
    let verdict = status.data.pointer("/status/verdict")?;
    if verdict.as_str().is_none_or(str::is_empty) {
        return None;
    }
    let owner = status
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.kind == "Pod")?;
    Some((owner.name.clone(), owner.uid.clone()))
}

/// A PolicyReport of one pod that holds a result of the policy: (pod name, pod UID).
fn kyverno_report(report: &DynamicObject) -> Option<(String, String)> {
    let scope = report.data.get("scope")?;
    if scope.get("kind")?.as_str()? != "Pod" {
        return None;
    }
    let results = report.data.get("results")?.as_array()?;
    if !results
        .iter()
        .any(|r| r.get("policy").and_then(Value::as_str) == Some(KYVERNO_POLICY))
    {
        return None;
    }
    Some((
        scope.get("name")?.as_str()?.to_string(),
        scope.get("uid")?.as_str()?.to_string(),
    ))
}

fn policy_reports(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", "PolicyReport"),
            "policyreports",
        ),
    )
}

/// Both observers of one namespace: (operator, Kyverno).
struct Observers {
    operator: Arc<Sightings>,
    kyverno: Arc<Sightings>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Observers {
    fn start(client: &Client, ns: &str) -> Self {
        let (operator, a) = observe(status_json_api(client, ns), operator_report);
        let (kyverno, b) = observe(policy_reports(client, ns), kyverno_report);
        Observers {
            operator,
            kyverno,
            tasks: [a, b],
        }
    }

    /// Waits until both sides reported every expected pod; (operator, Kyverno) first sightings.
    async fn wait_all(
        self,
        expected: &HashMap<String, String>,
        limit: Duration,
    ) -> anyhow::Result<(HashMap<String, Instant>, HashMap<String, Instant>)> {
        let operator = self
            .operator
            .wait_all("seccomp-sentinel", expected, limit)
            .await?;
        let kyverno = self.kyverno.wait_all("Kyverno", expected, limit).await?;
        for task in self.tasks {
            task.abort();
        }
        Ok((operator, kyverno))
    }
}

/// Requests that changed something (create, update, patch, apply, delete), by resource, from two
/// readings of the API server's counters.
fn writes_by_resource(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    let mut writes = BTreeMap::new();
    for (key, n) in after {
        let Some((verb, resource)) = key.split_once(' ') else {
            continue;
        };
        if !matches!(
            verb,
            "POST" | "PUT" | "PATCH" | "APPLY" | "DELETE" | "DELETECOLLECTION"
        ) {
            continue;
        }
        let d = n.saturating_sub(before.get(key).copied().unwrap_or(0));
        if d > 0 {
            *writes.entry(resource.to_string()).or_insert(0) += d;
        }
    }
    writes
}

/// The resources each side writes: (operator, Kyverno). Events are counted apart, by component.
fn side_writes(writes: &BTreeMap<String, u64>) -> (u64, u64) {
    let sum = |prefixes: &[&str]| -> u64 {
        writes
            .iter()
            .filter(|(r, _)| prefixes.iter().any(|p| r.split('/').next() == Some(*p)))
            .map(|(_, n)| n)
            .sum()
    };
    (
        sum(&["seccompstatuses", "seccomppolicies"]),
        sum(&[
            "ephemeralreports",
            "clusterephemeralreports",
            "policyreports",
            "clusterpolicyreports",
            "clusterpolicies",
        ]),
    )
}

/// Events of `ns` by reporting component (with their count).
async fn events_by_component(client: &Client, ns: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for event in Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?
        .items
    {
        let component = event
            .reporting_component
            .filter(|c| !c.is_empty())
            .or_else(|| event.source.and_then(|s| s.component))
            .unwrap_or_else(|| "unknown".into());
        *by.entry(component).or_insert(0) += u64::from(event.count.unwrap_or(1).max(1) as u32);
    }
    Ok(by)
}

/// Waits until Kyverno holds its leader lease (it scans only then), then a few seconds for its
/// informers.
async fn kyverno_leading(client: &Client, kyverno: &mut Kyverno, log: &Path) -> anyhow::Result<()> {
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), KYVERNO_NAMESPACE);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(lease) = leases.get_opt("kyverno-reports-controller").await?
            && lease
                .spec
                .and_then(|s| s.holder_identity)
                .is_some_and(|h| !h.is_empty())
        {
            tokio::time::sleep(Duration::from_secs(5)).await;
            return Ok(());
        }
        if let Some(status) = kyverno.exited() {
            bail!(
                "Kyverno's reports-controller ended ({status}); its log is {}",
                log.display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "Kyverno's reports-controller took no lease in 120 s; its log is {}",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The pods of `ns`, name → UID.
async fn pod_uids(client: &Client, ns: &str) -> anyhow::Result<HashMap<String, String>> {
    Ok(Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
        .collect())
}

async fn delete_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces.delete(name, &DeleteParams::background()).await?;
    let deadline = Instant::now() + Duration::from_secs(900);
    while namespaces.get_opt(name).await?.is_some() {
        if Instant::now() > deadline {
            bail!("namespace {name} still there after 15 minutes");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

/// Sets up Kyverno's side: its CRDs, namespace, configuration maps, and policy; and the
/// operator's equivalent policy.
fn install(plane: &ControlPlane, binaries: &Binaries, args: &Args) -> anyhow::Result<()> {
    let crds = args.peer_crds.canonicalize().with_context(|| {
        format!(
            "Kyverno's CRDs are not in {} (run `make peer-tools`)",
            args.peer_crds.display()
        )
    })?;
    testenv::apply_and_wait_established(&binaries.kubectl(), plane.kubeconfig(), &[&crds])?;
    plane.kubectl(&["create", "namespace", KYVERNO_NAMESPACE])?;
    for map in ["kyverno", "kyverno-metrics"] {
        plane.kubectl(&["-n", KYVERNO_NAMESPACE, "create", "configmap", map])?;
    }
    let root = testenv::repository_root();
    for manifest in [
        root.join("bench/peer/restrict-seccomp-strict.yaml"),
        root.join("config/samples/policy-audit-all.yaml"),
    ] {
        plane.kubectl(&["apply", "-f", &manifest.display().to_string()])?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let n = args.pods;
    let mut results: Vec<Measurement> = Vec::new();
    let mut details = serde_json::Map::new();
    let push = |results: &mut Vec<Measurement>, m: Measurement| {
        print(&m);
        results.push(m);
    };

    eprintln!("bench-peer: starting the local control plane");
    let binaries = Binaries::locate()?;
    let plane = ControlPlane::start(&binaries)?;
    testenv::install_apis(&binaries, plane.kubeconfig())?;
    let kubernetes = plane.server_version()?;
    install(&plane, &binaries, &args)?;
    let kubeconfig = plane.kubeconfig().to_path_buf();
    let client = client(&kubeconfig).await?;
    std::fs::create_dir_all(&args.out_dir)?;
    // Outside the control plane's directory, which goes with it.
    let log = std::env::temp_dir().join("sentinel-bench-peer-kyverno.log");
    std::fs::write(&log, "")?;
    eprintln!("bench-peer: Kyverno's log: {}", log.display());

    // 1. Steady: both running, pods created at a fixed rate; create call → report, per pod.
    let ns = "peer-steady";
    create_namespace(&client, ns).await?;
    let mut both = Both::start(&args, &kubeconfig, ns, &log)?;
    kyverno_leading(&client, &mut both.kyverno, &log).await?;
    let observers = Observers::start(&client, ns);
    let counts_before = ApiserverMetrics::read(&plane)?.request_counts();
    let cpu_before = both.cpu();
    let creation = Instant::now();
    let created = create_pods_at_rate(&client, ns, "p", n, args.rate).await?;
    let expected = pod_uids(&client, ns).await?;
    let limit = Duration::from_secs(1800);
    let (operator_seen, kyverno_seen) = observers.wait_all(&expected, limit).await?;
    let latencies = |seen: &HashMap<String, Instant>| {
        let mut l: Vec<f64> = seen
            .iter()
            .filter_map(|(name, at)| Some(at.duration_since(*created.get(name)?).as_secs_f64()))
            .collect();
        l.sort_by(f64::total_cmp);
        let last = seen
            .values()
            .max()
            .map_or(f64::NAN, |t| t.duration_since(creation).as_secs_f64());
        (percentile(&l, 50.0), percentile(&l, 99.0), last)
    };
    let (o50, o99, olast) = latencies(&operator_seen);
    let (k50, k99, klast) = latencies(&kyverno_seen);
    let creation_took = n as f64 / f64::from(args.rate);
    for (side, p50, p99, last) in [
        ("seccomp-sentinel", o50, o99, olast),
        ("Kyverno", k50, k99, klast),
    ] {
        push(
            &mut results,
            information(
                "S1",
                &format!(
                    "{side}: steady {}/s, create → report p50 {p50:.2}s, p99 {p99:.2}s; all {n} reported {last:.1}s after creation began ({creation_took:.0}s of creation)",
                    args.rate
                ),
                p99,
                "seconds",
            ),
        );
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let ((o_rss, o_hwm), (k_rss, k_hwm)) = both.memory()?;
    let writes = writes_by_resource(&counts_before, &ApiserverMetrics::read(&plane)?.request_counts());
    let (o_writes, k_writes) = side_writes(&writes);
    let events = events_by_component(&client, ns).await?;
    let cpu_after = both.cpu();
    push(
        &mut results,
        information(
            "S1",
            &format!(
                "steady: RSS seccomp-sentinel {:.1} MiB (peak {:.1}), Kyverno {:.1} MiB (peak {:.1})",
                mib(o_rss),
                mib(o_hwm),
                mib(k_rss),
                mib(k_hwm)
            ),
            k_rss as f64 / o_rss.max(1) as f64,
            "ratio",
        ),
    );
    push(
        &mut results,
        information(
            "S1",
            &format!(
                "steady: writes seccomp-sentinel {o_writes}, Kyverno {k_writes}; events {events:?}; CPU {:.1}s and {:.1}s",
                cpu_after.0 - cpu_before.0,
                cpu_after.1 - cpu_before.1
            ),
            k_writes as f64 / o_writes.max(1) as f64,
            "ratio",
        ),
    );
    details.insert("steadyWrites".into(), json!(writes));
    both.stop();
    delete_namespace(&client, ns).await?;

    // 2. Cold start: n pods exist, then both start at the same moment.
    let ns = "peer-cold";
    create_namespace(&client, ns).await?;
    sentinel_devtools::bench::create_pods(&client, ns, 0..n).await?;
    let expected = pod_uids(&client, ns).await?;
    // The control plane takes in the new pods before both start (see sentinel-bench's settle).
    tokio::time::sleep(Duration::from_secs(30)).await;
    let observers = Observers::start(&client, ns);
    let counts_before = ApiserverMetrics::read(&plane)?.request_counts();
    let both = Both::start(&args, &kubeconfig, ns, &log)?;
    let (operator_seen, kyverno_seen) = observers.wait_all(&expected, limit).await?;
    let after_start = |seen: &HashMap<String, Instant>| {
        seen.values()
            .max()
            .map_or(f64::NAN, |t| t.duration_since(both.started).as_secs_f64())
    };
    let (o_cold, k_cold) = (after_start(&operator_seen), after_start(&kyverno_seen));
    push(
        &mut results,
        information(
            "C1",
            &format!("Kyverno: cold start, all {n} existing pods reported after start"),
            k_cold,
            "seconds",
        ),
    );
    push(
        &mut results,
        information(
            "C1",
            &format!("seccomp-sentinel: cold start, all {n} existing pods reported after start"),
            o_cold,
            "seconds",
        ),
    );
    push(
        &mut results,
        at_least(
            "C1",
            &format!(
                "cold start at {n} pods: Kyverno's time ÷ seccomp-sentinel's ({k_cold:.1}s ÷ {o_cold:.1}s)"
            ),
            k_cold / o_cold,
            "ratio",
            10.0,
        ),
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    let writes = writes_by_resource(&counts_before, &ApiserverMetrics::read(&plane)?.request_counts());
    let (o_writes, k_writes) = side_writes(&writes);
    push(
        &mut results,
        information(
            "C1",
            &format!(
                "cold start: writes seccomp-sentinel {o_writes}, Kyverno {k_writes}; events {:?}",
                events_by_component(&client, ns).await?
            ),
            k_writes as f64 / o_writes.max(1) as f64,
            "ratio",
        ),
    );
    details.insert("coldStartWrites".into(), json!(writes));
    let ((o_rss, _), (k_rss, _)) = both.memory()?;
    push(
        &mut results,
        at_least(
            "C1",
            &format!(
                "memory at {n} pods after the cold start: Kyverno's RSS ÷ seccomp-sentinel's ({:.1} MiB ÷ {:.1} MiB)",
                mib(k_rss),
                mib(o_rss)
            ),
            k_rss as f64 / o_rss.max(1) as f64,
            "ratio",
            10.0,
        ),
    );
    both.stop();

    // 3. Restart with nothing changed: writes and memory 90 s after.
    let counts_before = ApiserverMetrics::read(&plane)?.request_counts();
    let events_before = events_by_component(&client, ns).await?;
    let both = Both::start(&args, &kubeconfig, ns, &log)?;
    tokio::time::sleep(Duration::from_secs(90)).await;
    let writes = writes_by_resource(&counts_before, &ApiserverMetrics::read(&plane)?.request_counts());
    let (o_writes, k_writes) = side_writes(&writes);
    let ((o_rss, o_hwm), (k_rss, k_hwm)) = both.memory()?;
    push(
        &mut results,
        information(
            "R1",
            &format!(
                "restart, nothing changed, 90 s: writes seccomp-sentinel {o_writes}, Kyverno {k_writes}; events before {events_before:?}, after {:?}",
                events_by_component(&client, ns).await?
            ),
            k_writes as f64,
            "writes",
        ),
    );
    push(
        &mut results,
        information(
            "R1",
            &format!(
                "restart, 90 s after: RSS seccomp-sentinel {:.1} MiB (peak {:.1}), Kyverno {:.1} MiB (peak {:.1})",
                mib(o_rss),
                mib(o_hwm),
                mib(k_rss),
                mib(k_hwm)
            ),
            k_rss as f64 / o_rss.max(1) as f64,
            "ratio",
        ),
    );
    details.insert("restartWrites".into(), json!(writes));

    // 4. Idle: nothing changes; Kyverno rescans on its interval.
    let counts_before = ApiserverMetrics::read(&plane)?.request_counts();
    let cpu_before = both.cpu();
    eprintln!("bench-peer: idle for {} s", args.idle_seconds);
    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    let writes = writes_by_resource(&counts_before, &ApiserverMetrics::read(&plane)?.request_counts());
    let (o_writes, k_writes) = side_writes(&writes);
    let cpu_after = both.cpu();
    let ((o_rss, _), (k_rss, _)) = both.memory()?;
    push(
        &mut results,
        information(
            "I1",
            &format!(
                "idle {} s: writes seccomp-sentinel {o_writes}, Kyverno {k_writes}; CPU {:.1}s and {:.1}s; RSS {:.1} and {:.1} MiB",
                args.idle_seconds,
                cpu_after.0 - cpu_before.0,
                cpu_after.1 - cpu_before.1,
                mib(o_rss),
                mib(k_rss)
            ),
            k_writes as f64,
            "writes",
        ),
    );
    details.insert("idleWrites".into(), json!(writes));
    both.stop();
    plane.stop();

    let date = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%d")
        .to_string();
    let path = args.out_dir.join(format!("peer-results-{date}.json"));
    // The operator runs with its own default number of workers for its write limit.
    let operator_workers = seccomp_sentinel::controller::ControllerConfig {
        max_writes_per_second: std::num::NonZeroU32::new(args.writes_per_second)
            .unwrap_or(std::num::NonZeroU32::MIN),
        concurrency: None,
        ..Default::default()
    }
    .workers();
    let report = json!({
        "date": date,
        "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
                      "kubernetes": format!("{kubernetes} (e2e/testenv)") },
        "settings": {
            "pods": n, "steadyRate": args.rate, "idleSeconds": args.idle_seconds,
            "seccompSentinel": { "maxWritesPerSecond": args.writes_per_second, "writeBurst": args.writes_per_second,
                                  "workers": operator_workers, "policy": "config/samples/policy-audit-all.yaml", "mallocArenaMax": 1 },
            "kyverno": { "version": "v1.19.1", "binary": "reports-controller", "policy": "bench/peer/restrict-seccomp-strict.yaml",
                         "flags": KYVERNO_SETTINGS.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>() },
            "bothRunAtOnce": true,
        },
        "writesByResource": details,
        "durationSeconds": started.elapsed().as_secs(),
        "results": results,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    eprintln!(
        "bench-peer: wrote {} ({}s)",
        path.display(),
        started.elapsed().as_secs()
    );
    Ok(())
}
