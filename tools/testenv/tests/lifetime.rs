//! The local control plane never outlives its owner, even one killed with SIGKILL.
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|cmd| String::from_utf8_lossy(&cmd).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Kills the owner when a test fails before it does, so a failure leaves nothing running. Its
/// output goes to a file, shown when it does not get ready.
struct Owner {
    child: std::process::Child,
    log: PathBuf,
}

impl Owner {
    /// Starts `sentinel-testenv --kubeconfig-out <kubeconfig>` with `extra` arguments.
    fn start(scratch: &Path, kubeconfig: &Path, extra: &[&std::ffi::OsStr]) -> Owner {
        let log = scratch.join("owner.log");
        let output = std::fs::File::create(&log).expect("owner log");
        let child = Command::new(env!("CARGO_BIN_EXE_sentinel-testenv"))
            .arg("--kubeconfig-out")
            .arg(kubeconfig)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(output)
            .spawn()
            .expect("start sentinel-testenv");
        Owner { child, log }
    }

    /// Waits for the kubeconfig the owner writes once it is ready; fails at once, with what the
    /// owner printed, if it exits first.
    fn wait_ready(&mut self, kubeconfig: &Path, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !kubeconfig.is_file() {
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= deadline {
                let printed = std::fs::read_to_string(&self.log).unwrap_or_default();
                let state = match exited {
                    Some(status) => format!("exited ({status}) before it was ready"),
                    None => format!("was not ready within {timeout:?}"),
                };
                panic!("sentinel-testenv {state}; it printed:\n{printed}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn a_killed_owner_takes_its_control_plane_with_it() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let kubeconfig = scratch.path().join("kubeconfig");
    let mut owner = Owner::start(scratch.path(), &kubeconfig, &[]);
    owner.wait_ready(&kubeconfig, Duration::from_secs(120));

    // The data directory is where the kubeconfig's CA lives.
    let text = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
    let ca = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority: "))
        .expect("certificate-authority in the kubeconfig");
    let data_dir: PathBuf = Path::new(ca).parent().expect("data dir").to_path_buf();
    let needle = data_dir.display().to_string();
    let running = processes_mentioning(&needle);
    assert!(
        running.len() >= 3,
        "etcd, kube-apiserver and kube-controller-manager run: {running:?}"
    );

    owner.kill();
    wait_until("every component to stop", Duration::from_secs(30), || {
        processes_mentioning(&needle).is_empty()
    });
    wait_until("the data directory to go", Duration::from_secs(10), || {
        !data_dir.exists()
    });
}

fn node_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/tmp")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("snode-"))
        })
        .collect();
    dirs.sort();
    dirs
}

/// Processes in a cgroup whose path names a test node (the containers).
fn container_processes() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|c| c.contains("/sentinel-node-") && c.contains("kubepods"))
        })
        .collect()
}

fn mounts_under(dirs: &[PathBuf]) -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| dirs.iter().any(|d| m.starts_with(&d.display().to_string())))
        .map(String::from)
        .collect()
}

fn node_cgroups() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let mut stack = vec![(hierarchy.path(), 0)];
        while let Some((dir, depth)) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if !path.is_dir() {
                    continue;
                }
                if path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("sentinel-node-"))
                {
                    found.push(path);
                } else if depth < 3 {
                    stack.push((path, depth + 1));
                }
            }
        }
    }
    found
}

/// An owner started with two nodes, and what existed before it: its nodes' directories are the
/// new ones. The node tests take turns (`NODE_TESTS`), so each sees only its own nodes.
struct WithNodes {
    owner: Owner,
    kubeconfig: PathBuf,
    dirs: Vec<PathBuf>,
    cgroups_before: Vec<PathBuf>,
    _turn: std::sync::MutexGuard<'static, ()>,
}

static NODE_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl WithNodes {
    fn start(scratch: &Path) -> WithNodes {
        sentinel_testenv::node::check_prerequisites().unwrap_or_else(|e| panic!("{e}"));
        let turn = NODE_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let kubeconfig = scratch.join("kubeconfig");
        let before = node_dirs();
        let cgroups_before = node_cgroups();
        // Any executable will do for the operator image here: no operator runs in these tests.
        let operator = Path::new(env!("CARGO_BIN_EXE_sentinel-testenv"));
        let mut owner = Owner::start(scratch, &kubeconfig, &["--nodes".as_ref(), operator.as_os_str()]);
        owner.wait_ready(&kubeconfig, Duration::from_secs(180));
        let dirs: Vec<PathBuf> = node_dirs().into_iter().filter(|d| !before.contains(d)).collect();
        assert_eq!(dirs.len(), 2, "two node directories: {dirs:?}");
        WithNodes {
            owner,
            kubeconfig,
            dirs,
            cgroups_before,
            _turn: turn,
        }
    }

    /// The cgroups of test nodes that did not exist before the owner started.
    fn new_cgroups(&self) -> Vec<PathBuf> {
        node_cgroups()
            .into_iter()
            .filter(|c| !self.cgroups_before.contains(c))
            .collect()
    }
}

/// With nodes: a SIGKILL of the owner also takes the kubelets, containerd, the shims, the running
/// containers, their mounts, cgroups and the nodes' directories. Needs root and the node packages
/// (`make node-prereqs`), like the node tests.
#[test]
fn a_killed_owner_takes_its_nodes_and_their_containers_with_it() {
    let binaries = sentinel_testenv::Binaries::locate().expect("binaries");
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut run = WithNodes::start(scratch.path());
    let (kubeconfig, dirs) = (run.kubeconfig.clone(), run.dirs.clone());
    let kubectl = |args: &[&str]| {
        sentinel_testenv::run_kubectl(&binaries.kubectl(), &kubeconfig, args)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    kubectl(&["create", "namespace", "lifetime"]);
    kubectl(&[
        "label",
        "namespace",
        "lifetime",
        "seccomp.sentinel.dev/test-node-pods=allowed",
    ]);
    let pod = serde_json::json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "sleeper", "namespace": "lifetime" },
        "spec": { "nodeName": "sentinel-node-a", "hostNetwork": true, "containers": [{ "name": "c",
            "image": sentinel_testenv::image::BUSYBOX_IMAGE, "imagePullPolicy": "Never", "command": ["sleep", "3600"] }] } });
    let file = scratch.path().join("pod.json");
    std::fs::write(&file, pod.to_string()).expect("pod");
    kubectl(&["apply", "-f", &file.display().to_string()]);
    kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/sleeper",
        "-n",
        "lifetime",
        "--timeout=120s",
    ]);
    let text = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
    let plane_dir = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority: "))
        .and_then(|ca| Path::new(ca).parent().map(Path::to_path_buf))
        .expect("the control plane's directory");
    assert!(!container_processes().is_empty(), "the pod's container runs");
    assert!(
        !mounts_under(&dirs).is_empty(),
        "the container's root filesystem is mounted"
    );
    assert!(!run.new_cgroups().is_empty(), "the nodes' cgroups exist");

    run.owner.kill();
    let mut needles: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    needles.push(plane_dir.display().to_string());
    wait_until(
        "every node process, container, mount, cgroup and directory to go",
        Duration::from_secs(60),
        || {
            needles.iter().all(|n| processes_mentioning(n).is_empty())
                && container_processes().is_empty()
                && mounts_under(&dirs).is_empty()
                && run.new_cgroups().is_empty()
                && dirs.iter().all(|d| !d.exists())
        },
    );
}

/// A run killed together with its janitors (a lost sandbox, a SIGKILL of everything) leaves its
/// nodes' directories, mounts and cgroups; the next node start sweeps them, so they cannot fail a
/// later run. The sweep is called directly here, with a short minimum age.
#[test]
fn nodes_abandoned_with_their_janitors_are_swept_later() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut run = WithNodes::start(scratch.path());
    let dirs = run.dirs.clone();
    // The janitors die first, then the owner: nothing is left to clean up.
    let janitors: Vec<u32> = dirs
        .iter()
        .flat_map(|d| processes_mentioning(&d.display().to_string()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("sentinel-node-janitor"))
        })
        .collect();
    assert_eq!(janitors.len(), 2, "one janitor per node: {janitors:?}");
    for pid in &janitors {
        let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
    }
    wait_until("the janitors to die", Duration::from_secs(10), || {
        sentinel_testenv::node::janitor_dirs()
            .iter()
            .all(|d| !dirs.contains(d))
    });
    run.owner.kill();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        dirs.iter().all(|d| d.exists()) && !run.new_cgroups().is_empty(),
        "with no janitor, the node directories and cgroups stay"
    );

    sentinel_testenv::node::sweep_abandoned_nodes_older_than(Duration::from_secs(1));
    let needles: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    assert!(
        needles.iter().all(|n| processes_mentioning(n).is_empty()),
        "no node process is left"
    );
    assert!(mounts_under(&dirs).is_empty(), "no mount is left");
    assert!(
        run.new_cgroups().is_empty(),
        "no cgroup is left: {:?}",
        run.new_cgroups()
    );
    assert!(dirs.iter().all(|d| !d.exists()), "the directories are gone");
}
