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

#[test]
fn a_killed_owner_takes_its_control_plane_with_it() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let kubeconfig = scratch.path().join("kubeconfig");
    let mut owner = Command::new(env!("CARGO_BIN_EXE_sentinel-testenv"))
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sentinel-testenv");
    wait_until("the control plane to be ready", Duration::from_secs(120), || {
        kubeconfig.is_file()
    });

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

    owner.kill().expect("SIGKILL the owner");
    let _ = owner.wait();
    wait_until("every component to stop", Duration::from_secs(30), || {
        processes_mentioning(&needle).is_empty()
    });
    wait_until("the data directory to go", Duration::from_secs(10), || {
        !data_dir.exists()
    });
}
