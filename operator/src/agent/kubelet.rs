//! The kubelet's `seccompDefault`, as the node agent finds it: the kubelet process of this node
//! (through the host's `/proc`), its command line (`--seccomp-default` wins over files), its
//! configuration file (`--config`) and drop-in directory (`--config-dir`, files in lexical order,
//! later ones override), each read through the kubelet's own root (`/proc/<pid>/root`). Read again
//! on every scan, so a kubelet restarted with another setting is noticed without restarting the
//! agent. The parsing is pure; the reading is the few functions at the end.

use std::{
    fs,
    path::{Path, PathBuf},
};

/// Where the agent's answer came from, for logs and the Node annotation's companion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeletSeccompDefault {
    pub enabled: bool,
    pub source: String,
}

/// What the kubelet's command line says about its configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeletCommandLine {
    pub hostname_override: Option<String>,
    pub config: Option<String>,
    pub config_dir: Option<String>,
    /// `--seccomp-default` (deprecated, still honoured; flags beat the configuration file).
    pub seccomp_default_flag: Option<bool>,
    /// `--root-dir`: the kubelet's state directory, whose `seccomp/` holds the Localhost profiles.
    pub root_dir: Option<String>,
}

/// Parses a NUL-separated `/proc/<pid>/cmdline`.
pub fn parse_command_line(cmdline: &[u8]) -> KubeletCommandLine {
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let mut parsed = KubeletCommandLine::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            i += 1;
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        // A value in the next argument, for flags that take one.
        let mut value = || {
            inline.clone().or_else(|| {
                let next = args.get(i + 1).cloned();
                if next.is_some() {
                    i += 1;
                }
                next
            })
        };
        match name {
            "hostname-override" => parsed.hostname_override = value(),
            "config" => parsed.config = value(),
            "config-dir" => parsed.config_dir = value(),
            "root-dir" => parsed.root_dir = value(),
            // A boolean flag: `--seccomp-default` alone means true; a value is read as Go's
            // strconv.ParseBool reads it (a value it refuses stops the kubelet at start).
            "seccomp-default" => {
                parsed.seccomp_default_flag = match inline.as_deref() {
                    None => Some(true),
                    Some(value) => go_flag_bool(value),
                }
            }
            _ => {}
        }
        i += 1;
    }
    parsed
}

/// A boolean flag's value as Go's `strconv.ParseBool` reads it.
fn go_flag_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `seccompDefault` of one configuration document (YAML or JSON), if it sets it. The kubelet
/// turns YAML into JSON with YAML 1.1's rules (sigs.k8s.io/yaml), under which an unquoted `yes`,
/// `on` or `y` is true; the YAML parser here reads those words as booleans too.
pub fn seccomp_default_in(text: &str) -> Option<bool> {
    let config: serde_json::Value = serde_saphyr::from_str(text).ok()?;
    config.get("seccompDefault").and_then(serde_json::Value::as_bool)
}

/// Combines the command line with the configuration texts (main file first, then the drop-ins in
/// order): the flag wins, then the last document that sets it, else the kubelet's default (off).
pub fn resolve(command_line: &KubeletCommandLine, documents: &[(String, String)]) -> KubeletSeccompDefault {
    if let Some(flag) = command_line.seccomp_default_flag {
        return KubeletSeccompDefault {
            enabled: flag,
            source: "kubelet flag --seccomp-default".into(),
        };
    }
    documents
        .iter()
        .rev()
        .find_map(|(name, text)| {
            seccomp_default_in(text).map(|enabled| KubeletSeccompDefault {
                enabled,
                source: name.clone(),
            })
        })
        .unwrap_or(KubeletSeccompDefault {
            enabled: false,
            source: "kubelet default (not set)".into(),
        })
}

/// The kubelet of `node_name` among the processes of `proc_root`: the one whose
/// `--hostname-override` names the node, else the only kubelet there is.
pub fn find_kubelet(proc_root: &Path, node_name: &str) -> Option<FoundKubelet> {
    let mut kubelets = Vec::new();
    for entry in fs::read_dir(proc_root).ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim() != "kubelet" {
            continue;
        }
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        kubelets.push((pid, parse_command_line(&cmdline)));
    }
    let named = kubelets
        .iter()
        .position(|(_, c)| c.hostname_override.as_deref() == Some(node_name));
    match (named, kubelets.len()) {
        (Some(i), _) => Some(kubelets.swap_remove(i)),
        (None, 1) => kubelets.pop(),
        _ => None,
    }
}

/// A path of the kubelet's, as seen through its `/proc/<pid>/root` (relative paths from its
/// working directory).
fn through_process(proc_root: &Path, pid: u32, path: &str) -> PathBuf {
    let base = proc_root.join(pid.to_string());
    match path.strip_prefix('/') {
        Some(absolute) => base.join("root").join(absolute),
        None => base.join("cwd").join(path),
    }
}

/// A kubelet process: its PID and what its command line says.
pub type FoundKubelet = (u32, KubeletCommandLine);

/// Reads what the kubelet of `node_name` runs with, or `None` when no kubelet is found.
pub fn discover(proc_root: &Path, node_name: &str) -> Option<KubeletSeccompDefault> {
    Some(seccomp_default_of(
        proc_root,
        &find_kubelet(proc_root, node_name)?,
    ))
}

/// What a found kubelet runs with.
pub fn seccomp_default_of(proc_root: &Path, kubelet: &FoundKubelet) -> KubeletSeccompDefault {
    let (pid, command_line) = (kubelet.0, &kubelet.1);
    let mut documents = Vec::new();
    if let Some(config) = &command_line.config {
        let text = fs::read_to_string(through_process(proc_root, pid, config)).unwrap_or_default();
        documents.push((config.clone(), text));
    }
    if let Some(dir) = &command_line.config_dir {
        let mut files: Vec<PathBuf> = fs::read_dir(through_process(proc_root, pid, dir))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        files.sort();
        for file in files {
            let text = fs::read_to_string(&file).unwrap_or_default();
            let name = format!(
                "{dir}/{}",
                file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
            );
            documents.push((name, text));
        }
    }
    resolve(command_line, &documents)
}

/// The kubelet's default `--root-dir`.
pub const DEFAULT_ROOT_DIR: &str = "/var/lib/kubelet";

/// Where this node's Localhost profiles are: the kubelet's `<root-dir>/seccomp`, seen through the
/// kubelet's own root (`/proc/<pid>/root`), unless `seccomp_dir` says where it is on the node.
/// Without a kubelet in sight, the node's root is reached through PID 1.
pub fn profile_root(
    proc_root: &Path,
    kubelet: Option<&FoundKubelet>,
    seccomp_dir: Option<&Path>,
    trusted_link_targets: &[PathBuf],
) -> Option<crate::profile::ProfileRoot> {
    let host_root = match kubelet {
        Some((pid, _)) => proc_root.join(pid.to_string()).join("root"),
        None => proc_root.join("1").join("root"),
    };
    let seccomp_dir = match (seccomp_dir, kubelet) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some((_, command_line))) => {
            let root = command_line.root_dir.as_deref().unwrap_or(DEFAULT_ROOT_DIR);
            Path::new("/").join(root).join("seccomp")
        }
        (None, None) => return None,
    };
    Some(crate::profile::ProfileRoot {
        host_root,
        seccomp_dir,
        trusted_link_targets: trusted_link_targets.to_vec(),
    })
}

/// Reads an explicitly given configuration file (`--kubelet-config`); absent means off.
pub fn from_file(path: &Path) -> Option<KubeletSeccompDefault> {
    let text = fs::read_to_string(path).ok()?;
    Some(KubeletSeccompDefault {
        enabled: seccomp_default_in(&text).unwrap_or(false),
        source: path.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmdline(args: &[&str]) -> Vec<u8> {
        args.iter()
            .flat_map(|a| a.bytes().chain(std::iter::once(0)))
            .collect()
    }

    #[test]
    fn command_lines() {
        let parsed = parse_command_line(&cmdline(&[
            "/usr/bin/kubelet",
            "--config=/var/lib/kubelet/config.yaml",
            "--hostname-override",
            "worker-1",
            "--config-dir=/etc/kubernetes/kubelet.conf.d",
            "--root-dir",
            "/data/kubelet",
            "--v=2",
        ]));
        assert_eq!(parsed.root_dir.as_deref(), Some("/data/kubelet"));
        assert_eq!(parsed.config.as_deref(), Some("/var/lib/kubelet/config.yaml"));
        assert_eq!(parsed.hostname_override.as_deref(), Some("worker-1"));
        assert_eq!(
            parsed.config_dir.as_deref(),
            Some("/etc/kubernetes/kubelet.conf.d")
        );
        assert_eq!(parsed.seccomp_default_flag, None);
        assert_eq!(
            parse_command_line(&cmdline(&["kubelet", "--seccomp-default"])).seccomp_default_flag,
            Some(true)
        );
        assert_eq!(
            parse_command_line(&cmdline(&["kubelet", "--seccomp-default=false"])).seccomp_default_flag,
            Some(false)
        );
        assert_eq!(parse_command_line(b""), KubeletCommandLine::default());
        // Go's ParseBool: 1 and t are true; a value it refuses stops the kubelet.
        for (value, expected) in [
            ("1", Some(true)),
            ("t", Some(true)),
            ("0", Some(false)),
            ("F", Some(false)),
            ("yes", None),
        ] {
            let flag = format!("--seccomp-default={value}");
            assert_eq!(
                parse_command_line(&cmdline(&["kubelet", &flag])).seccomp_default_flag,
                expected,
                "{flag}"
            );
        }
    }

    #[test]
    fn configuration_booleans_are_read_as_the_kubelet_reads_them() {
        for (value, expected) in [
            ("true", Some(true)),
            ("yes", Some(true)),
            ("on", Some(true)),
            ("Y", Some(true)),
            ("off", Some(false)),
            ("no", Some(false)),
            ("false", Some(false)),
            ("maybe", None),
            ("1", None),
            // Quoted, a string: the kubelet refuses the file and does not run.
            ("\"yes\"", None),
        ] {
            let text = format!("kind: KubeletConfiguration\nseccompDefault: {value}\n");
            assert_eq!(seccomp_default_in(&text), expected, "{value}");
        }
        assert_eq!(seccomp_default_in(r#"{"seccompDefault": true}"#), Some(true));
    }

    #[test]
    fn flags_beat_files_and_later_drop_ins_beat_earlier_ones() {
        let on = "kind: KubeletConfiguration\nseccompDefault: true\n".to_string();
        let off = "seccompDefault: false\n".to_string();
        let silent = "kind: KubeletConfiguration\nmaxPods: 20\n".to_string();
        let none = KubeletCommandLine::default();
        assert!(resolve(&none, &[("main".into(), on.clone())]).enabled);
        let later = resolve(
            &none,
            &[("main".into(), on.clone()), ("10-off.conf".into(), off.clone())],
        );
        assert_eq!((later.enabled, later.source.as_str()), (false, "10-off.conf"));
        // A drop-in that does not set it leaves the main file's value.
        assert!(
            resolve(
                &none,
                &[("main".into(), on.clone()), ("20.conf".into(), silent.clone())]
            )
            .enabled
        );
        assert!(
            !resolve(&none, &[("main".into(), silent)]).enabled,
            "the kubelet's default is off"
        );
        assert!(!resolve(&none, &[("main".into(), "{not yaml".into())]).enabled);
        let flag = KubeletCommandLine {
            seccomp_default_flag: Some(false),
            ..Default::default()
        };
        assert!(!resolve(&flag, &[("main".into(), on)]).enabled);
    }

    #[test]
    fn the_kubelet_of_this_node_is_found_through_proc() {
        let root = tempfile::tempdir().expect("tempdir");
        let process = |pid: u32, comm: &str, args: &[&str]| {
            let dir = root.path().join(pid.to_string());
            fs::create_dir_all(dir.join("root/etc")).expect("dir");
            fs::write(dir.join("comm"), format!("{comm}\n")).expect("comm");
            fs::write(dir.join("cmdline"), cmdline(args)).expect("cmdline");
            dir
        };
        let other = process(
            10,
            "kubelet",
            &[
                "kubelet",
                "--hostname-override=node-b",
                "--config=/etc/kubelet.yaml",
            ],
        );
        fs::write(other.join("root/etc/kubelet.yaml"), "seccompDefault: false\n").expect("config");
        let mine = process(
            11,
            "kubelet",
            &[
                "kubelet",
                "--hostname-override=node-a",
                "--config=/etc/kubelet.yaml",
            ],
        );
        fs::write(mine.join("root/etc/kubelet.yaml"), "seccompDefault: true\n").expect("config");
        process(12, "bash", &["bash", "-c", "kubelet"]);
        let found = discover(root.path(), "node-a").expect("kubelet");
        assert_eq!(
            (found.enabled, found.source.as_str()),
            (true, "/etc/kubelet.yaml")
        );
        assert!(!discover(root.path(), "node-b").expect("kubelet").enabled);
        assert_eq!(
            discover(root.path(), "node-c"),
            None,
            "two kubelets, none named node-c"
        );
        fs::remove_dir_all(other).expect("remove");
        assert!(
            discover(root.path(), "node-c").expect("the only kubelet").enabled,
            "a single kubelet is this node's"
        );
    }
}
