//! A real Kubernetes node next to the local control plane: Debian's containerd and runc, and the
//! kubelet built from the same `k8s.io/kubernetes` module as the control plane, so pods really run
//! and the container runtime really applies their seccomp profiles.
//!
//! Everything a node creates lives under one temporary directory (containerd's root, state and
//! socket, runc's state, the kubelet's root and logs) and one cgroup subtree, and a janitor process
//! tied to the owner's life removes it all, whatever way the owner ends: the processes of the
//! node's containers, the shims, the mounts, the cgroups and the directory. Networking is the
//! host's own: a loopback-only CNI configuration makes the node Ready, pods use `hostNetwork: true`,
//! and the kubelet talks to the API server on 127.0.0.1. The kubelet gets an explicit node IP (the
//! machine's own address) so it never resolves its name.
//!
//! Settings this kind of machine needs (each found by running it): containerd's
//! `restrict_oom_score_adj` (no CAP_SYS_RESOURCE, so runc cannot lower a sandbox's oom_score_adj),
//! `failCgroupV1: false` and a `cgroupRoot` inside the caller's own memory cgroup, created in every
//! v1 hierarchy (cpuset with cpus and mems copied down), and the four kernel tunables the kubelet
//! insists on shown to it with the expected values in a private mount namespace, so the machine's
//! own settings are never changed.

use std::{
    fs,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    Binaries, Component, Result, TestenvError, io_context, spawn_supervised, spawn_with_lifeline, wait_until,
};

const JANITOR: &str = include_str!("node-janitor.sh");

/// The taint of every test node (`NoSchedule`): pods that name a test node, or tolerate this, run
/// there; DaemonSets that tolerate every taint do.
pub const NODE_TAINT: &str = "seccomp.sentinel.dev/test-node";

/// The second taint (`NoSchedule`) of a node one test starts for itself (and stops, or restarts
/// the kubelet of): pods scheduled for the shared test nodes (an operator installed by a test,
/// which tolerates [`NODE_TAINT`]) must not land on it and go with it. Pods that name it, and
/// DaemonSets that tolerate every taint, run there.
pub const OWN_NODE_TAINT: &str = "seccomp.sentinel.dev/own-node";

/// Prefix of every test node's name: the test cluster's guard lets only opted-in namespaces run
/// pods on nodes with this prefix.
pub const NODE_PREFIX: &str = "sentinel-node-";

/// Debian packages a node needs, with the file that shows each is installed.
const PACKAGES: &[(&str, &str)] = &[
    ("containerd", "/usr/bin/containerd"),
    ("containerd", "/usr/bin/ctr"),
    ("runc", "/usr/sbin/runc"),
    ("containernetworking-plugins", "/usr/lib/cni/loopback"),
    ("busybox-static", "/bin/busybox"),
];

/// What a node is asked to be.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The Node's name; must start with [`NODE_PREFIX`].
    pub name: String,
    /// The kubelet's `seccompDefault`.
    pub seccomp_default: bool,
    pub max_pods: u32,
    /// Image archives to import into containerd.
    pub images: Vec<PathBuf>,
    /// One test's own node: tainted with [`OWN_NODE_TAINT`] too.
    pub own: bool,
}

/// Checks that this process can run a node: root, and the Debian packages installed.
pub fn check_prerequisites() -> Result<()> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|uids| uids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0");
    let missing: Vec<&str> = {
        let mut names: Vec<&str> = PACKAGES
            .iter()
            .filter(|(_, file)| !Path::new(file).exists())
            .map(|(package, _)| *package)
            .collect();
        names.dedup();
        names
    };
    if !root || !missing.is_empty() {
        return Err(TestenvError::NodePrerequisites {
            root,
            missing: missing.join(" "),
        });
    }
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        return Err(TestenvError::Unsupported(
            "the test node needs cgroup v1 (or hybrid) hierarchies under /sys/fs/cgroup; this host has \
             cgroup v2 only"
                .into(),
        ));
    }
    Ok(())
}

/// A running node: containerd, and a kubelet registered with the control plane.
pub struct Node {
    config: NodeConfig,
    dir: PathBuf,
    kubeconfig: PathBuf,
    binaries: Binaries,
    node_ip: Ipv4Addr,
    cgroup_root: String,
    kubelet_port: u16,
    healthz_port: u16,
    containerd: Option<Component>,
    kubelet: Option<Component>,
    janitor: Option<Component>,
    /// Drop-ins of the kubelet's `--config-dir` (path in it, content), with its `--config` an
    /// absolute link to the file; `None`: the plain file alone.
    drop_ins: Option<Vec<(String, String)>>,
    /// Lines appended to the kubelet's configuration file (empty: none).
    appended: String,
}

impl Node {
    /// Starts containerd and the kubelet, imports the images and waits until the Node is Ready.
    pub fn start(binaries: &Binaries, kubeconfig: &Path, config: NodeConfig) -> Result<Node> {
        check_prerequisites()?;
        for tool in ["kubelet", "crictl"] {
            let path = binaries.path(tool);
            if !path.is_file() {
                return Err(TestenvError::MissingBinary(path));
            }
        }
        if !config.name.starts_with(NODE_PREFIX) {
            return Err(TestenvError::Unsupported(format!(
                "test node names start with {NODE_PREFIX}: {}",
                config.name
            )));
        }
        sweep_abandoned_nodes();
        // Short: containerd's socket paths must stay under the 108 bytes of a unix socket name.
        let dir = tempfile::Builder::new()
            .prefix("snode-")
            .tempdir_in("/tmp")
            .map_err(io_context("creating the node's directory"))?
            .keep();
        let [kubelet_port, healthz_port] = crate::free_ports()?;
        let cgroup_root = format!("{}/{}", own_memory_cgroup(), config.name);
        let mut node = Node {
            node_ip: machine_address()?,
            config,
            dir,
            kubeconfig: kubeconfig.to_path_buf(),
            binaries: binaries.clone(),
            cgroup_root,
            kubelet_port,
            healthz_port,
            containerd: None,
            kubelet: None,
            janitor: None,
            drop_ins: None,
            appended: String::new(),
        };
        // The janitor first: from here on, whatever happens, it cleans up.
        node.janitor = Some(node.start_janitor()?);
        let started = Instant::now();
        node.start_containerd()?;
        node.import_images()?;
        node.create_cgroups()?;
        node.start_kubelet()?;
        node.wait_ready()?;
        eprintln!(
            "testenv: node {} Ready in {:.1}s (seccompDefault {})",
            node.config.name,
            started.elapsed().as_secs_f64(),
            node.config.seccomp_default
        );
        Ok(node)
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn seccomp_default(&self) -> bool {
        self.config.seccomp_default
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The kubelet's configuration file.
    pub fn kubelet_config(&self) -> PathBuf {
        self.dir.join("kubelet-config.yaml")
    }

    fn socket(&self) -> PathBuf {
        socket_of(&self.dir)
    }

    /// What tests need of a running node, cheap to clone and share.
    pub fn handle(&self) -> NodeHandle {
        NodeHandle {
            name: self.config.name.clone(),
            dir: self.dir.clone(),
            crictl: self.binaries.path("crictl"),
        }
    }

    /// Runs crictl against this node's containerd and returns its standard output.
    pub fn crictl(&self, args: &[&str]) -> Result<String> {
        self.handle().crictl(args)
    }

    /// The janitor waits for its lifeline to close (or a signal), then removes what the node left.
    fn start_janitor(&self) -> Result<Component> {
        let hierarchies = v1_hierarchies().join(" ");
        // Recorded first, so a later node can finish the job if this janitor is killed too.
        fs::write(
            self.dir.join(JANITOR_ARGS),
            format!("{}\n{hierarchies}\n", self.cgroup_root),
        )
        .map_err(io_context("recording the janitor's arguments"))?;
        let mut command = janitor_command(&self.dir, &self.cgroup_root, &hierarchies);
        spawn_with_lifeline("node-janitor", &mut command)
    }

    fn start_containerd(&mut self) -> Result<()> {
        let d = |p: &str| self.dir.join(p).display().to_string();
        for sub in ["containerd", "cni", "pod-logs", "kubelet/seccomp", "fake-sysctl"] {
            fs::create_dir_all(self.dir.join(sub)).map_err(io_context(format!("creating {sub}")))?;
        }
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[debug]
  address = "{debug}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  enable_selinux = false
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{runc}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
"#,
            root = d("containerd/root"),
            state = d("containerd/state"),
            socket = self.socket().display(),
            debug = d("containerd/debug.sock"),
            opt = d("containerd/opt"),
            runc = d("containerd/runc"),
            cni = d("cni"),
            pause = crate::image::PAUSE_IMAGE,
        );
        let config_path = self.dir.join("containerd/config.toml");
        fs::write(&config_path, config).map_err(io_context("writing containerd's configuration"))?;
        // Only loopback: the node becomes Ready, and pods use the host's network.
        fs::write(
            self.dir.join("cni/10-loopback.conflist"),
            r#"{"cniVersion": "0.4.0", "name": "loopback-only", "plugins": [{"type": "loopback"}]}"#,
        )
        .map_err(io_context("writing the CNI configuration"))?;
        let log = self.dir.join("containerd.log");
        let mut command = Command::new("containerd");
        command.arg("--config").arg(&config_path);
        let mut component = spawn_supervised("containerd", &log, &command, None)?;
        let socket = self.socket();
        let ready = wait_until(
            "containerd",
            &log,
            Duration::from_secs(30),
            || socket.exists(),
            || {
                component
                    .exited()
                    .map(|status| format!("containerd exited with {status}"))
            },
        );
        self.containerd = Some(component);
        ready?;
        Ok(())
    }

    fn import_images(&self) -> Result<()> {
        for archive in &self.config.images {
            let output = Command::new("ctr")
                .arg("--address")
                .arg(self.socket())
                .args(["--namespace", "k8s.io", "images", "import"])
                .arg(archive)
                .output()
                .map_err(io_context("running ctr"))?;
            if !output.status.success() {
                return Err(TestenvError::Command {
                    command: format!("ctr images import {}", archive.display()),
                    output: String::from_utf8_lossy(&output.stderr).into_owned(),
                });
            }
        }
        Ok(())
    }

    /// The kubelet's cgroup root, in every v1 hierarchy (the kubelet refuses one that is missing in
    /// any). Parents that do not exist are created too; the janitor removes what is under the root.
    fn create_cgroups(&self) -> Result<()> {
        let mut created = String::new();
        for hierarchy in v1_hierarchies() {
            let base = PathBuf::from("/sys/fs/cgroup").join(&hierarchy);
            create_missing_dirs(&base, &self.cgroup_root, |dir| {
                created.push_str(&format!("{}\n", dir.display()));
                // Recorded at once: the janitor removes these even if the next step fails.
                fs::write(self.dir.join("cgroups-created"), &created)
                    .map_err(io_context("recording the cgroups created"))
            })?;
            if hierarchy == "cpuset" {
                fill_empty_cpusets(&base, &self.cgroup_root)?;
            }
        }
        Ok(())
    }

    fn write_kubelet_config(&self) -> Result<()> {
        let d = |p: &str| self.dir.join(p).display().to_string();
        let socket = format!("unix://{}", self.socket().display());
        let config = format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: {socket}
imageServiceEndpoint: {socket}
cgroupDriver: cgroupfs
cgroupsPerQOS: true
cgroupRoot: {cgroup_root}
enforceNodeAllocatable: []
failCgroupV1: false
failSwapOn: false
seccompDefault: {seccomp_default}
protectKernelDefaults: true
address: 127.0.0.1
port: {port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz}
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
podLogsDir: {logs}
resolvConf: /etc/resolv.conf
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 1Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
registerNode: true
# Only pods that tolerate this are scheduled here (or name the node): the scheduler passes over the
# test nodes for every other pod at once, instead of retrying to bind it. A test's own node has a
# second taint, so that nothing meant for the shared nodes lands on it.
registerWithTaints:
- {{key: {NODE_TAINT}, value: \"true\", effect: NoSchedule}}{own_taint}
maxPods: {max_pods}
shutdownGracePeriod: 0s
",
            cgroup_root = self.cgroup_root,
            seccomp_default = self.config.seccomp_default,
            port = self.kubelet_port,
            healthz = self.healthz_port,
            logs = d("pod-logs"),
            max_pods = self.config.max_pods,
            own_taint = if self.config.own {
                format!("\n- {{key: {OWN_NODE_TAINT}, value: \"true\", effect: NoSchedule}}")
            } else {
                String::new()
            },
        );
        let config = config + &self.appended;
        // Whatever an earlier start laid out (a link, drop-ins) goes first.
        let _ = fs::remove_file(self.kubelet_config());
        let _ = fs::remove_dir_all(self.drop_in_dir());
        let Some(drop_ins) = &self.drop_ins else {
            return fs::write(self.kubelet_config(), config)
                .map_err(io_context("writing the kubelet configuration"));
        };
        let target = self.dir.join("kubelet-config.target.yaml");
        fs::write(&target, config).map_err(io_context("writing the kubelet configuration"))?;
        std::os::unix::fs::symlink(&target, self.kubelet_config())
            .map_err(io_context("linking the kubelet configuration"))?;
        let dir = self.drop_in_dir();
        for (path, content) in drop_ins {
            let file = dir.join(path);
            if let Some(parent) = file.parent() {
                fs::create_dir_all(parent).map_err(io_context("creating the drop-in directory"))?;
            }
            fs::write(file, content).map_err(io_context("writing a kubelet drop-in"))?;
        }
        Ok(())
    }

    /// The kubelet's `--config-dir`, when it has one.
    fn drop_in_dir(&self) -> PathBuf {
        self.dir.join("kubelet.conf.d")
    }

    fn start_kubelet(&mut self) -> Result<()> {
        self.write_kubelet_config()?;
        let kubelet_root = self.dir.join("kubelet");
        // A shared bind mount: the volumes the kubelet mounts in its own mount namespace reach
        // containerd in the host's.
        if !is_mount_point(&kubelet_root) {
            for args in [&["--bind"][..], &["--make-shared"][..]] {
                let status = Command::new("mount")
                    .args(args)
                    .args(if args[0] == "--bind" {
                        vec![kubelet_root.clone(), kubelet_root.clone()]
                    } else {
                        vec![kubelet_root.clone()]
                    })
                    .status()
                    .map_err(io_context("running mount"))?;
                if !status.success() {
                    return Err(TestenvError::Command {
                        command: format!("mount {}", args.join(" ")),
                        output: format!("exit status {status}"),
                    });
                }
            }
        }
        let fakes = self.dir.join("fake-sysctl");
        for (file, value) in KERNEL_DEFAULTS {
            fs::write(fakes.join(file.replace('/', "_")), format!("{value}\n"))
                .map_err(io_context("writing a kernel tunable"))?;
        }
        let binds: Vec<String> = KERNEL_DEFAULTS
            .iter()
            .map(|(file, _)| {
                format!(
                    "mount --bind {}/{} /proc/sys/{file}",
                    fakes.display(),
                    file.replace('/', "_")
                )
            })
            .collect();
        // In a private mount namespace: /proc first made private, so these binds stay there.
        let script = format!(
            "set -e; mount --make-rprivate /proc; {}; exec \"$@\"",
            binds.join("; ")
        );
        let log = self.dir.join("kubelet.log");
        let mut command = Command::new("unshare");
        command
            .args([
                "--mount",
                "--propagation",
                "unchanged",
                "bash",
                "-c",
                &script,
                "kubelet",
            ])
            .arg(self.binaries.path("kubelet"))
            .arg(format!("--config={}", self.kubelet_config().display()))
            .args(
                self.drop_ins
                    .as_ref()
                    .map(|_| format!("--config-dir={}", self.drop_in_dir().display())),
            )
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!("--root-dir={}", kubelet_root.display()))
            .arg(format!("--cert-dir={}", self.dir.join("kubelet-pki").display()))
            .arg(format!("--hostname-override={}", self.config.name))
            .arg(format!("--node-ip={}", self.node_ip))
            .arg("--node-labels=seccomp.sentinel.dev/test-node=true")
            .arg("--v=1");
        self.kubelet = Some(spawn_supervised("kubelet", &log, &command, None)?);
        Ok(())
    }

    fn wait_ready(&mut self) -> Result<()> {
        let log = self.dir.join("kubelet.log");
        let query = "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}";
        let (kubectl, kubeconfig, name) = (
            self.binaries.kubectl(),
            self.kubeconfig.clone(),
            self.config.name.clone(),
        );
        let kubelet = &mut self.kubelet;
        wait_until(
            &format!("node {name} (Ready)"),
            &log,
            Duration::from_secs(90),
            || {
                crate::run_kubectl(&kubectl, &kubeconfig, &["get", "node", &name, "-o", query])
                    .is_ok_and(|out| out.trim() == "True")
            },
            || {
                kubelet
                    .as_mut()
                    .and_then(Component::exited)
                    .map(|status| format!("the kubelet exited with {status}"))
            },
        )?;
        // The kubelet registers with the not-ready taint, which the node lifecycle controller
        // would lift; that controller is off here (it would also evict the pods of hand-made Nodes).
        let taints = crate::run_kubectl(
            &kubectl,
            &kubeconfig,
            &["get", "node", &name, "-o", "jsonpath={.spec.taints}"],
        )?;
        if taints.contains("node.kubernetes.io/not-ready") {
            crate::run_kubectl(
                &kubectl,
                &kubeconfig,
                &["taint", "node", &name, "node.kubernetes.io/not-ready:NoSchedule-"],
            )?;
        }
        Ok(())
    }

    /// Restarts the kubelet with another `seccompDefault` (running containers keep theirs) and
    /// waits until the node is Ready again.
    pub fn restart_kubelet(&mut self, seccomp_default: bool) -> Result<()> {
        if let Some(kubelet) = self.kubelet.take() {
            kubelet.stop();
        }
        self.config.seccomp_default = seccomp_default;
        self.start_kubelet()?;
        self.wait_ready()
    }

    /// [`Node::restart_kubelet`], laid out as some installers do: the `--config` file (which says
    /// `seccomp_default`, and what [`Node::seccomp_default`] then tells) an absolute symbolic link
    /// to the real file, and a `--config-dir` holding `drop_ins` (path in the directory,
    /// content), which the kubelet reads after it.
    pub fn restart_kubelet_with_drop_ins(
        &mut self,
        seccomp_default: bool,
        drop_ins: &[(&str, &str)],
    ) -> Result<()> {
        self.drop_ins = Some(
            drop_ins
                .iter()
                .map(|(path, content)| (path.to_string(), content.to_string()))
                .collect(),
        );
        self.appended.clear();
        self.restart_kubelet(seccomp_default)
    }

    /// [`Node::restart_kubelet`] with `lines` appended to its configuration file (which says
    /// `seccomp_default` before them), as `echo ... >> config.yaml` does, and no drop-ins.
    pub fn restart_kubelet_appending(&mut self, seccomp_default: bool, lines: &str) -> Result<()> {
        self.drop_ins = None;
        self.appended = lines.to_string();
        self.restart_kubelet(seccomp_default)
    }

    /// Stops the kubelet, removes every pod sandbox, stops containerd, and lets the janitor remove
    /// the rest. Safe to call more than once.
    pub fn stop(&mut self) {
        if let Some(kubelet) = self.kubelet.take() {
            kubelet.stop();
            // The Node object goes too (the pod garbage collector then removes its pods).
            let _ = crate::run_kubectl(
                &self.binaries.kubectl(),
                &self.kubeconfig,
                &[
                    "delete",
                    "node",
                    &self.config.name,
                    "--wait=false",
                    "--request-timeout=5s",
                ],
            );
        }
        if self.containerd.is_some() {
            let _ = self.crictl(&["rmp", "--all", "--force"]);
        }
        if let Some(containerd) = self.containerd.take() {
            containerd.stop();
        }
        if let Some(janitor) = self.janitor.take() {
            janitor.stop();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

fn socket_of(dir: &Path) -> PathBuf {
    dir.join("containerd/containerd.sock")
}

/// A running node as tests use it: its name, its files and crictl.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    pub name: String,
    dir: PathBuf,
    crictl: PathBuf,
}

impl NodeHandle {
    /// The kubelet's seccomp profile directory: `localhostProfile` paths are relative to it.
    pub fn seccomp_dir(&self) -> PathBuf {
        self.dir.join("kubelet/seccomp")
    }

    /// The log of one container (`kubectl logs` cannot reach a kubelet that serves on loopback).
    pub fn container_log(&self, namespace: &str, pod: &str, uid: &str, container: &str) -> PathBuf {
        self.dir
            .join("pod-logs")
            .join(format!("{namespace}_{pod}_{uid}"))
            .join(container)
            .join("0.log")
    }

    /// Runs crictl against this node's containerd and returns its standard output.
    pub fn crictl(&self, args: &[&str]) -> Result<String> {
        let endpoint = format!("unix://{}", socket_of(&self.dir).display());
        let config = self.dir.join("crictl.yaml");
        if !config.exists() {
            fs::write(
                &config,
                format!("runtime-endpoint: {endpoint}\nimage-endpoint: {endpoint}\ntimeout: 20\n"),
            )
            .map_err(io_context("writing crictl's configuration"))?;
        }
        let output = Command::new(&self.crictl)
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .map_err(io_context("running crictl"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(TestenvError::Command {
                command: format!("crictl {}", args.join(" ")),
                output: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
        }
    }
}

/// The kernel tunables the kubelet's `protectKernelDefaults` checks, with the values it expects.
const KERNEL_DEFAULTS: &[(&str, &str)] = &[
    ("vm/overcommit_memory", "1"),
    ("vm/panic_on_oom", "0"),
    ("kernel/panic", "10"),
    ("kernel/panic_on_oops", "1"),
];

const JANITOR_ARGS: &str = "janitor-args";
const JANITOR_NAME: &str = "sentinel-node-janitor";

fn janitor_command(dir: &Path, cgroup_root: &str, hierarchies: &str) -> Command {
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(JANITOR)
        .arg(JANITOR_NAME)
        .arg(dir)
        .arg(cgroup_root)
        .arg(hierarchies);
    command
}

/// Nodes whose janitor died with everything else (a SIGKILL of the whole process group, a lost
/// sandbox) leave their directory, mounts and cgroups behind. The next node start cleans them, by
/// running their janitor's clean-up at once, so a leftover never outlives the next test run.
pub fn sweep_abandoned_nodes() {
    sweep_abandoned_nodes_older_than(Duration::from_secs(30));
}

/// [`sweep_abandoned_nodes`], for directories last changed at least `age` ago.
pub fn sweep_abandoned_nodes_older_than(min_age: Duration) {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    let janitors = janitor_dirs();
    for entry in entries.flatten() {
        let dir = entry.path();
        let is_node_dir = dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("snode-"));
        if !is_node_dir || janitors.contains(&dir) {
            continue;
        }
        // A node being set up right now writes its arguments a moment before its janitor starts.
        let young = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < min_age);
        if young {
            continue;
        }
        let Ok(args) = fs::read_to_string(dir.join(JANITOR_ARGS)) else {
            continue;
        };
        let mut lines = args.lines();
        let (Some(cgroup_root), Some(hierarchies)) = (lines.next(), lines.next()) else {
            continue;
        };
        eprintln!("testenv: cleaning up abandoned node directory {}", dir.display());
        let _ = janitor_command(&dir, cgroup_root, hierarchies)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The node directories that a live janitor looks after.
pub fn janitor_dirs() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
        .filter_map(|cmdline| {
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let at = args.iter().position(|a| *a == JANITOR_NAME.as_bytes())?;
            let dir = args.get(at + 1)?;
            Some(PathBuf::from(String::from_utf8_lossy(dir).into_owned()))
        })
        .collect()
}

/// The directories from `base` down to `base` + `path` (slash-separated), `base` excluded.
fn dirs_down<'a>(base: &Path, path: &'a str) -> impl Iterator<Item = PathBuf> + 'a {
    path.split('/')
        .filter(|c| !c.is_empty())
        .scan(base.to_path_buf(), |current, component| {
            current.push(component);
            Some(current.clone())
        })
}

/// Creates the directories of `path` below `base` that are missing, calling `created` for each
/// one this call made. Nodes started side by side share the parents of their cgroup roots, so a
/// directory that another node creates at the same moment is not an error (and not this node's
/// to remove): there is no check before the create for that reason.
fn create_missing_dirs(base: &Path, path: &str, mut created: impl FnMut(&Path) -> Result<()>) -> Result<()> {
    for dir in dirs_down(base, path) {
        match fs::create_dir(&dir) {
            Ok(()) => created(&dir)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(io_context(format!("creating {}", dir.display()))(e)),
        }
    }
    Ok(())
}

/// A new v1 cpuset cgroup starts with no cpus and no mems, and no process can join it: each
/// cgroup on the way to the root gets its parent's, whoever created it (another node's start may
/// have created a parent and not filled it yet).
fn fill_empty_cpusets(base: &Path, path: &str) -> Result<()> {
    for dir in dirs_down(base, path) {
        let parent = dir.parent().unwrap_or(base);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = fs::read_to_string(dir.join(file)).unwrap_or_default();
            if !own.trim().is_empty() {
                continue;
            }
            let value = fs::read_to_string(parent.join(file)).unwrap_or_default();
            fs::write(dir.join(file), value.trim())
                .map_err(io_context(format!("copying {file} into {}", dir.display())))?;
        }
    }
    Ok(())
}

/// The v1 hierarchies mounted under /sys/fs/cgroup (named ones like `systemd` included, `unified`
/// too: the kubelet looks at all of them).
fn v1_hierarchies() -> Vec<String> {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut names: Vec<String> = mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            let name = point.strip_prefix("/sys/fs/cgroup/")?;
            (kind == "cgroup" || kind == "cgroup2").then(|| name.to_string())
        })
        .filter(|name| !name.contains('/'))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// This process's memory cgroup (v1): the node's cgroups go below it, so the node's containers are
/// accounted where the process that started them is.
fn own_memory_cgroup() -> String {
    let text = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    text.lines()
        .find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then(|| path.trim_end_matches('/').to_string())
        })
        .unwrap_or_default()
}

/// The machine's own IPv4 address (global scope, not loopback), given to the kubelet as its node
/// IP: the kubelet refuses a loopback one, and without one it would look its name up in DNS.
/// Nothing in the tests connects to it.
fn machine_address() -> Result<Ipv4Addr> {
    let output = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .map_err(io_context("running ip (package iproute2)"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| {
            let cidr = line.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
            cidr.split('/').next()?.parse::<Ipv4Addr>().ok()
        })
        .ok_or_else(|| {
            TestenvError::Unsupported(
                "the test node needs an IPv4 address on a network interface of this machine (the kubelet \
                 refuses a loopback node IP)"
                    .into(),
            )
        })
}

fn is_mount_point(path: &Path) -> bool {
    let target = path.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|line| line.split_whitespace().nth(4) == Some(target.as_str()))
}

/// Starts the cluster's scheduler (DaemonSets and pods without `nodeName` need one).
pub(crate) fn scheduler_command(binaries: &Binaries, kubeconfig: &Path, port: u16) -> Command {
    let mut command = Command::new(binaries.path("kube-scheduler"));
    let kc = kubeconfig.display().to_string();
    command
        .arg(format!("--kubeconfig={kc}"))
        .arg(format!("--authentication-kubeconfig={kc}"))
        .arg(format!("--authorization-kubeconfig={kc}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={port}"))
        .arg("--leader-elect=false")
        .arg("--profiling=false")
        .arg("--v=1")
        .stdin(Stdio::null());
    command
}

/// Label that lets a namespace's pods run on the test nodes (see `node-guard.yaml`).
pub const NODE_PODS_LABEL: &str = "seccomp.sentinel.dev/test-node-pods";
const GUARD: &str = include_str!("node-guard.yaml");

/// Starts test nodes next to `plane`: builds the images (the operator's from `operator_binary`),
/// installs the guard, starts the scheduler, then the nodes side by side.
pub fn start_nodes(
    plane: &crate::ControlPlane,
    binaries: &Binaries,
    operator_binary: &Path,
    nodes: &[(&str, bool)],
) -> Result<Vec<Node>> {
    start(plane, binaries, operator_binary, nodes, false)
}

/// Starts one test's own node (see [`OWN_NODE_TAINT`]), as [`start_nodes`] does.
pub fn start_own_node(
    plane: &crate::ControlPlane,
    binaries: &Binaries,
    operator_binary: &Path,
    name: &str,
    seccomp_default: bool,
) -> Result<Node> {
    let mut started = start(plane, binaries, operator_binary, &[(name, seccomp_default)], true)?;
    started
        .pop()
        .ok_or_else(|| TestenvError::Unsupported(format!("node {name} was not started")))
}

fn start(
    plane: &crate::ControlPlane,
    binaries: &Binaries,
    operator_binary: &Path,
    nodes: &[(&str, bool)],
    own: bool,
) -> Result<Vec<Node>> {
    check_prerequisites()?;
    let images_dir = plane.data_dir().join("images");
    let images = crate::image::build_test_images(&images_dir, operator_binary)?;
    let guard = plane.data_dir().join("node-guard.yaml");
    fs::write(&guard, GUARD).map_err(io_context("writing the node guard"))?;
    crate::run_kubectl(
        &binaries.kubectl(),
        plane.kubeconfig(),
        &["apply", "--server-side", "-f", &guard.display().to_string()],
    )?;
    // An admission policy takes effect a moment after it is created: wait until it refuses what
    // it must (a pod for a test node in a namespace that is not allowed), tried as a dry run.
    let probe = plane.data_dir().join("node-guard-probe.json");
    fs::write(
        &probe,
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"guard-probe","namespace":"default"}},"spec":{{"nodeName":"{NODE_PREFIX}probe","containers":[{{"name":"c","image":"localhost/x:1"}}]}}}}"#
        ),
    )
    .map_err(io_context("writing the guard probe"))?;
    let probe = probe.display().to_string();
    wait_until(
        "the node guard to take effect",
        &plane.data_dir().join("kube-apiserver.log"),
        Duration::from_secs(60),
        || {
            crate::run_kubectl(
                &binaries.kubectl(),
                plane.kubeconfig(),
                &["create", "--dry-run=server", "-f", &probe],
            )
            .is_err_and(|e| e.to_string().contains("test cluster guard"))
        },
        || None,
    )?;
    plane.start_scheduler(binaries)?;
    let started: Vec<Result<Node>> = std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|(name, seccomp_default)| {
                let config = NodeConfig {
                    name: format!("{NODE_PREFIX}{name}"),
                    seccomp_default: *seccomp_default,
                    max_pods: 110,
                    images: images.clone(),
                    own,
                };
                scope.spawn(move || Node::start(binaries, plane.kubeconfig(), config))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(TestenvError::Unsupported("a node start panicked".into())))
            })
            .collect()
    });
    started.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;

    /// Two nodes start side by side and both create their cgroup roots' shared parent: neither
    /// fails, and each directory is reported as created by exactly one of them.
    #[test]
    fn nodes_started_together_share_their_cgroup_parents() {
        const STARTERS: usize = 8;
        for round in 0..40 {
            let base = tempfile::tempdir().expect("a temporary directory");
            let barrier = Arc::new(Barrier::new(STARTERS));
            let starters: Vec<_> = (0..STARTERS)
                .map(|i| {
                    let base = base.path().to_path_buf();
                    let barrier = Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        let mut mine = Vec::new();
                        barrier.wait();
                        create_missing_dirs(&base, &format!("/shared/parent/node-{i}"), |dir| {
                            mine.push(dir.to_path_buf());
                            Ok(())
                        })
                        .map(|()| mine)
                        .map_err(|e| e.to_string())
                    })
                })
                .collect();
            let mut created = Vec::new();
            for starter in starters {
                match starter.join().expect("a starter thread") {
                    Ok(mine) => created.extend(mine),
                    Err(e) => panic!("round {round}: a node's cgroups failed: {e}"),
                }
            }
            created.sort();
            let mut expected = vec![base.path().join("shared"), base.path().join("shared/parent")];
            expected.extend((0..STARTERS).map(|i| base.path().join(format!("shared/parent/node-{i}"))));
            expected.sort();
            assert_eq!(created, expected, "round {round}: each directory is created once");
        }
    }
}
