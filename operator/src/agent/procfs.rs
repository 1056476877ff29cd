//! Reading what the kernel enforces: container IDs → host processes (through `/proc/*/cgroup`) →
//! `Seccomp` and `Seccomp_filters` of `/proc/<pid>/status`. No Kubernetes here; the proc root is
//! a parameter so tests can use fixture trees.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
};

use crate::api::SeccompMode;

/// A container ID from `status.containerStatuses[].containerID` (`containerd://<id>`,
/// `cri-o://<id>`, `docker://<id>`): the runtime-independent hexadecimal ID.
pub fn container_id(status_id: &str) -> Option<&str> {
    let id = status_id.split_once("://").map_or(status_id, |(_, id)| id);
    (id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// The seccomp state of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeccompState {
    pub mode: SeccompMode,
    /// `Seccomp_filters` (Linux 5.9+).
    pub filters: Option<u32>,
}

/// Parses the `Seccomp` and `Seccomp_filters` lines of a `/proc/<pid>/status` text. `None` when the
/// kernel was built without seccomp (no `Seccomp` line).
pub fn parse_status(text: &str) -> Option<SeccompState> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
            .map(str::trim)
    };
    let mode = match field("Seccomp")? {
        "0" => SeccompMode::Disabled,
        "1" => SeccompMode::Strict,
        "2" => SeccompMode::Filter,
        _ => return None,
    };
    let filters = field("Seccomp_filters").and_then(|v| v.parse().ok());
    Some(SeccompState { mode, filters })
}

/// The container ID a process belongs to, from its `/proc/<pid>/cgroup` text (cgroup v1 or v2,
/// systemd or cgroupfs driver), if it is a container's process. Runtime helpers (CRI-O's conmon)
/// are not: their scope is `crio-conmon-<id>.scope`.
pub fn container_of(cgroup_text: &str) -> Option<String> {
    for line in cgroup_text.lines() {
        // v2: "0::<path>"; v1: "<id>:<controllers>:<path>".
        let Some(path) = line.splitn(3, ':').nth(2) else {
            continue;
        };
        for component in path.split('/').rev() {
            if component.starts_with("crio-conmon-") {
                return None;
            }
            // "<id>", "crio-<id>", "cri-containerd-<id>.scope", "crio-<id>.scope".
            let unit = component.strip_suffix(".scope").unwrap_or(component);
            let candidate = unit.rsplit_once('-').map_or(unit, |(_, id)| id);
            if candidate.len() == 64 && candidate.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Some(candidate.to_string());
            }
        }
    }
    None
}

/// When a process started (`starttime`, clock ticks since boot) and its parent, from a
/// `/proc/<pid>/stat` text. The command name may hold spaces and parentheses: the fields follow
/// its last `)`.
pub fn parse_stat(text: &str) -> Option<ProcessStart> {
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    // After the name: state, ppid, ... and starttime, the 20th.
    let parent = fields.nth(1)?.parse().ok()?;
    let started = fields.nth(17)?.parse().ok()?;
    Some(ProcessStart { started, parent })
}

/// The fields of `/proc/<pid>/stat` that order a container's processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessStart {
    pub started: u64,
    pub parent: u32,
}

/// Processes found in a proc tree, by container ID, with each container's main process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessIndex {
    main_by_container: HashMap<String, u32>,
}

impl ProcessIndex {
    /// Scans `<proc_root>/<pid>/cgroup` of every process. Unreadable entries (processes that exit
    /// meanwhile, permissions) are skipped.
    pub fn scan(proc_root: &Path) -> std::io::Result<ProcessIndex> {
        let mut by_container: HashMap<String, Vec<u32>> = HashMap::new();
        for entry in fs::read_dir(proc_root)?.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(cgroup) = fs::read_to_string(entry.path().join("cgroup")) else {
                continue;
            };
            if let Some(id) = container_of(&cgroup) {
                by_container.entry(id).or_default().push(pid);
            }
        }
        let main_by_container = by_container
            .into_iter()
            .filter_map(|(id, mut pids)| Some((id, main_of(proc_root, &mut pids)?)))
            .collect();
        Ok(ProcessIndex { main_by_container })
    }

    /// The container's main process (its init: later processes are its descendants or `exec`s).
    pub fn main_process(&self, container_id: &str) -> Option<u32> {
        self.main_by_container
            .iter()
            .find(|(id, _)| id.starts_with(container_id) || container_id.starts_with(id.as_str()))
            .map(|(_, pid)| *pid)
    }

    pub fn containers(&self) -> usize {
        self.main_by_container.len()
    }
}

/// The first process of a container: the earliest started, and within one clock tick the one
/// whose parent is outside the container (the runtime's shim). Not the lowest PID: PIDs wrap
/// (at 32,768 on many nodes), so a process started after the wrap can have a lower PID than the
/// init, and it may have filters of its own (a browser's sandboxed renderers, sshd's children).
fn main_of(proc_root: &Path, pids: &mut [u32]) -> Option<u32> {
    if let [only] = pids {
        return Some(*only);
    }
    pids.sort_unstable();
    pids.iter()
        .filter_map(|&pid| {
            let stat = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok();
            // A process that has gone since its cgroup was read is no candidate.
            let start = stat.as_deref().and_then(parse_stat)?;
            Some((start.started, pids.binary_search(&start.parent).is_ok(), pid))
        })
        .min()
        .map(|(_, _, pid)| pid)
}

/// Reads the seccomp state of `pid` under `proc_root`.
pub fn seccomp_of(proc_root: &Path, pid: u32) -> Option<SeccompState> {
    let path: PathBuf = proc_root.join(pid.to_string()).join("status");
    fs::read_to_string(path).ok().as_deref().and_then(parse_status)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f2a9c1e0b7d4e6f8a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7";
    const OTHER: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn container_ids_of_every_runtime() {
        assert_eq!(container_id(&format!("containerd://{ID}")), Some(ID));
        assert_eq!(container_id(&format!("cri-o://{ID}")), Some(ID));
        assert_eq!(container_id(&format!("docker://{ID}")), Some(ID));
        assert_eq!(container_id("containerd://"), None);
        assert_eq!(container_id("containerd://not-hex-at-all"), None);
    }

    #[test]
    fn status_lines() {
        let text = "Name:\tnginx\nSeccomp:\t2\nSeccomp_filters:\t1\nSpeculation_Store_Bypass:\tthread force mitigated\n";
        assert_eq!(
            parse_status(text),
            Some(SeccompState {
                mode: SeccompMode::Filter,
                filters: Some(1)
            })
        );
        assert_eq!(
            parse_status("Seccomp:\t0\n"),
            Some(SeccompState {
                mode: SeccompMode::Disabled,
                filters: None
            })
        );
        assert_eq!(
            parse_status("Seccomp:\t1\nSeccomp_filters:\t0\n").map(|s| s.mode),
            Some(SeccompMode::Strict)
        );
        assert_eq!(parse_status("Name:\tx\n"), None, "a kernel without seccomp");
        assert_eq!(parse_status("Seccomp:\t7\n"), None);
    }

    /// The cgroup files of containerd and CRI-O, cgroup v1 and v2, systemd and cgroupfs drivers.
    fn layouts() -> Vec<(&'static str, String)> {
        let uid = "kubepods-burstable-pod3c9d7a1e_2b4f_4c6d_8e0f_1a2b3c4d5e6f.slice";
        vec![
            (
                "containerd, v2, systemd",
                format!("0::/kubepods.slice/kubepods-burstable.slice/{uid}/cri-containerd-{ID}.scope\n"),
            ),
            (
                "containerd, v2, cgroupfs",
                format!("0::/kubepods/burstable/pod3c9d7a1e-2b4f-4c6d-8e0f-1a2b3c4d5e6f/{ID}\n"),
            ),
            (
                "containerd, v1, systemd",
                format!(
                    "12:pids:/kubepods.slice/kubepods-burstable.slice/{uid}/cri-containerd-{ID}.scope\n\
                     11:memory:/kubepods.slice/kubepods-burstable.slice/{uid}/cri-containerd-{ID}.scope\n\
                     1:name=systemd:/kubepods.slice/kubepods-burstable.slice/{uid}/cri-containerd-{ID}.scope\n"
                ),
            ),
            (
                "containerd, v1, cgroupfs",
                format!(
                    "12:pids:/kubepods/besteffort/pod3c9d7a1e-2b4f-4c6d-8e0f-1a2b3c4d5e6f/{ID}\n3:cpu,cpuacct:/kubepods/besteffort/pod3c9d7a1e-2b4f-4c6d-8e0f-1a2b3c4d5e6f/{ID}\n"
                ),
            ),
            (
                "cri-o, v2, systemd",
                format!(
                    "0::/kubepods.slice/kubepods-pod3c9d7a1e_2b4f_4c6d_8e0f_1a2b3c4d5e6f.slice/crio-{ID}.scope\n"
                ),
            ),
            (
                "cri-o, v2, systemd, sub-cgroup",
                format!("0::/kubepods.slice/{uid}/crio-{ID}.scope/container\n"),
            ),
            (
                "cri-o, v2, cgroupfs",
                format!("0::/kubepods/burstable/pod3c9d7a1e-2b4f-4c6d-8e0f-1a2b3c4d5e6f/crio-{ID}\n"),
            ),
            (
                "cri-o, v1, systemd",
                format!(
                    "10:memory:/kubepods.slice/{uid}/crio-{ID}.scope\n1:name=systemd:/kubepods.slice/{uid}/crio-{ID}.scope\n"
                ),
            ),
            (
                "cri-o, v1, cgroupfs",
                format!("10:memory:/kubepods/burstable/pod3c9d7a1e-2b4f-4c6d-8e0f-1a2b3c4d5e6f/crio-{ID}\n"),
            ),
        ]
    }

    #[test]
    fn containers_are_found_in_every_cgroup_layout() {
        for (layout, text) in layouts() {
            assert_eq!(container_of(&text).as_deref(), Some(ID), "{layout}");
        }
    }

    #[test]
    fn runtime_helpers_and_host_processes_are_not_containers() {
        let conmon = format!("0::/kubepods.slice/kubepods-pod1.slice/crio-conmon-{ID}.scope\n");
        assert_eq!(container_of(&conmon), None);
        assert_eq!(container_of("0::/system.slice/containerd.service\n"), None);
        assert_eq!(
            container_of("0::/user.slice/user-0.slice/session-1.scope\n"),
            None
        );
        assert_eq!(container_of("0::/\n"), None);
        assert_eq!(container_of(""), None);
    }

    fn write_process(root: &Path, pid: u32, parent: u32, started: u64, cgroup: &str, seccomp: &str) {
        let dir = root.join(pid.to_string());
        fs::create_dir_all(&dir).expect("dir");
        fs::write(dir.join("cgroup"), cgroup).expect("cgroup");
        fs::write(
            dir.join("status"),
            format!("Name:\tp{pid}\nSeccomp:\t{seccomp}\nSeccomp_filters:\t1\n"),
        )
        .expect("status");
        fs::write(
            dir.join("stat"),
            format!("{pid} (p{pid}) S {parent} {pid} {pid} 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 {started} 1000 100\n"),
        )
        .expect("stat");
    }

    #[test]
    fn stat_lines() {
        let text =
            "4100 (sleep) S 900 4100 4100 0 -1 4194560 110 0 0 0 0 0 0 0 20 0 1 0 73125 1531904 32 rest\n";
        assert_eq!(
            parse_stat(text),
            Some(ProcessStart {
                started: 73125,
                parent: 900
            })
        );
        // A command name with spaces and a closing parenthesis of its own.
        let odd = "77 (a) b (c) R 12 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 999 0 0\n";
        assert_eq!(
            parse_stat(odd),
            Some(ProcessStart {
                started: 999,
                parent: 12
            })
        );
        assert_eq!(parse_stat("77 (cut short) S 12 77"), None);
        assert_eq!(parse_stat(""), None);
    }

    /// After the PIDs wrapped, a process the init started later has the lower PID: the main
    /// process is still the init, by start time; within one clock tick, by its parent being
    /// outside the container.
    #[test]
    fn the_main_process_is_the_first_started_not_the_lowest_pid() {
        let (_, cgroup) = layouts().remove(0);
        let root = tempfile::tempdir().expect("tempdir");
        write_process(root.path(), 30100, 900, 5000, &cgroup, "0");
        write_process(root.path(), 300, 30100, 9000, &cgroup, "2");
        write_process(root.path(), 301, 300, 9001, &cgroup, "2");
        let index = ProcessIndex::scan(root.path()).expect("scan");
        assert_eq!(index.main_process(ID), Some(30100));

        let same_tick = tempfile::tempdir().expect("tempdir");
        write_process(same_tick.path(), 30100, 900, 5000, &cgroup, "0");
        write_process(same_tick.path(), 400, 30100, 5000, &cgroup, "2");
        let index = ProcessIndex::scan(same_tick.path()).expect("scan");
        assert_eq!(index.main_process(ID), Some(30100));

        // One process whose stat cannot be read (gone meanwhile) is no candidate.
        let gone = tempfile::tempdir().expect("tempdir");
        write_process(gone.path(), 30100, 900, 5000, &cgroup, "0");
        write_process(gone.path(), 300, 30100, 9000, &cgroup, "2");
        fs::remove_file(gone.path().join("30100").join("stat")).expect("remove");
        let index = ProcessIndex::scan(gone.path()).expect("scan");
        assert_eq!(index.main_process(ID), Some(300));
    }

    /// A fixture proc tree: the sandbox (pause) process has its own cgroup and is never taken
    /// for a container; the main process is the container's first process.
    #[test]
    fn a_fixture_tree_maps_containers_to_their_main_process() {
        for (layout, cgroup) in layouts() {
            let root = tempfile::tempdir().expect("tempdir");
            let write = |pid: u32, parent: u32, started: u64, cgroup: &str, seccomp: &str| {
                write_process(root.path(), pid, parent, started, cgroup, seccomp);
            };
            write(4100, 900, 5000, &cgroup, "2"); // the container's init, started by the shim
            write(4200, 4100, 5100, &cgroup, "2"); // a process it started
            write(4000, 900, 4900, &cgroup.replace(ID, OTHER), "2"); // the pod's sandbox
            write(1, 0, 1, "0::/init.scope\n", "0");
            fs::create_dir_all(root.path().join("self")).expect("not a pid");
            let index = ProcessIndex::scan(root.path()).expect("scan");
            assert_eq!(index.main_process(ID), Some(4100), "{layout}");
            assert_eq!(index.main_process(OTHER), Some(4000), "{layout}");
            assert_eq!(
                index.main_process(&ID[..12]),
                Some(4100),
                "short IDs as crictl prints them: {layout}"
            );
            assert_eq!(
                seccomp_of(root.path(), 4100).map(|s| s.mode),
                Some(SeccompMode::Filter)
            );
            assert_eq!(index.containers(), 2);
        }
    }
}
