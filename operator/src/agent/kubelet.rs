//! The kubelet's `seccompDefault`, as the node agent finds it: the kubelet process of this node
//! (through the host's `/proc`), its command line (`--seccomp-default` wins over files), its
//! configuration file (`--config`) and drop-in directory (`--config-dir`, files in lexical order,
//! later ones override), each read through the kubelet's own root (`/proc/<pid>/root`). Read again
//! on every scan, so a kubelet restarted with another setting is noticed without restarting the
//! agent. The kubelet reads those files only when it starts: files changed since then may not be
//! what it runs with, so the agent also reads when the kubelet process started and when its
//! files last changed. The parsing is pure; the reading is the few functions at the end.

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::jiff::Timestamp;

use crate::profile::{change_time, look_up_on_host, on_host, resolve};

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
/// `on` or `y` is true; the YAML parser here reads those words as booleans too. A null
/// (`seccompDefault:` with nothing after it, `~`) sets it back to the default, off: the kubelet
/// merges its drop-ins as JSON merge patches, where null removes what earlier files set.
///
/// A key given twice (a line appended with `echo >>`) is not an error: the kubelet's strict decoding
/// fails on it, and its lenient decoding, which it then uses, keeps the last value.
pub fn seccomp_default_in(text: &str) -> Option<bool> {
    let options = serde_saphyr::options! { duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins };
    let config: serde_json::Value = serde_saphyr::from_str_with_options(text, options).ok()?;
    match config.get("seccompDefault")? {
        serde_json::Value::Null => Some(false),
        value => value.as_bool(),
    }
}

/// Combines the command line with the configuration texts (main file first, then the drop-ins in
/// order): the flag wins, then the last document that sets it, else the kubelet's default (off).
pub fn resolve_setting(
    command_line: &KubeletCommandLine,
    documents: &[(String, String)],
) -> KubeletSeccompDefault {
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
///
/// A process the kubelet forks to run a command (`iptables`, `mount`) has its name and command line
/// until it execs, then ends, and its `/proc/<pid>/root` with it: such a child is never the
/// kubelet, even when listed first (its PID wrapped below the kubelet's).
pub fn find_kubelet(proc_root: &Path, node_name: &str) -> Option<FoundKubelet> {
    // (pid, parent pid, command line) of every process named kubelet.
    let mut candidates = Vec::new();
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
        let parent = fs::read_to_string(entry.path().join("stat"))
            .ok()
            .as_deref()
            .and_then(super::procfs::parse_stat)
            .map(|stat| stat.parent);
        candidates.push((pid, parent, parse_command_line(&cmdline)));
    }
    let pids: Vec<u32> = candidates.iter().map(|(pid, _, _)| *pid).collect();
    let mut kubelets: Vec<FoundKubelet> = candidates
        .into_iter()
        .filter(|(_, parent, _)| parent.is_none_or(|parent| !pids.contains(&parent)))
        .map(|(pid, _, command_line)| (pid, command_line))
        .collect();
    let named = kubelets
        .iter()
        .position(|(_, c)| c.hostname_override.as_deref() == Some(node_name));
    match (named, kubelets.len()) {
        (Some(i), _) => Some(kubelets.swap_remove(i)),
        (None, 1) => kubelets.pop(),
        _ => None,
    }
}

/// A path of the kubelet's, as the agent opens it.
struct KubeletPath {
    /// The path on the node, links followed.
    node: PathBuf,
    /// The same, through the kubelet's `/proc/<pid>/root`.
    on_agent: PathBuf,
    /// The latest change time of a link followed to it.
    links_changed: Option<Timestamp>,
}

impl KubeletPath {
    /// When the file, or a link followed to it, last changed.
    fn changed_at(&self) -> Option<Timestamp> {
        changed_at(&self.on_agent).max(self.links_changed)
    }
}

/// A path of the kubelet's, through its `/proc/<pid>/root` (relative paths from its working
/// directory), with symbolic links followed against that root. The kernel would follow a link's
/// absolute target from the agent's own root instead (`/proc/<pid>/root` is no chroot), where a
/// configuration linked to, say, `/etc/kubernetes/kubelet.yaml` is not.
fn through_process(proc_root: &Path, pid: u32, path: &Path) -> KubeletPath {
    let base = proc_root.join(pid.to_string());
    let root = base.join("root");
    let node = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match fs::read_link(base.join("cwd")) {
            Ok(cwd) if cwd.is_absolute() => cwd.join(path),
            // Where the working directory is on the node is not known: through the link.
            _ => {
                let through_cwd = base.join("cwd").join(path);
                return KubeletPath {
                    node: through_cwd.clone(),
                    on_agent: through_cwd,
                    links_changed: None,
                };
            }
        }
    };
    let mut links_changed: Option<Timestamp> = None;
    let mut lookup = |p: &Path| look_up_on_host(&root, p, &mut links_changed);
    // A loop of links stays as it is: reading it fails, as it would for the kubelet.
    let node = resolve(&node, &mut lookup).unwrap_or(node);
    KubeletPath {
        on_agent: on_host(&root, &node),
        node,
        links_changed,
    }
}

/// The drop-ins of a `--config-dir` (as the agent reaches it), as the kubelet reads them: every
/// file named `*.conf` in it and its subdirectories (links to directories not followed), each
/// directory's entries in byte order; with the directories' latest change (a drop-in added or
/// removed).
fn drop_in_files(dir: &Path) -> std::io::Result<(Vec<PathBuf>, Option<Timestamp>)> {
    fn walk(
        dir: &Path,
        relative: &Path,
        files: &mut Vec<PathBuf>,
        changed: &mut Option<Timestamp>,
    ) -> std::io::Result<()> {
        let here = dir.join(relative);
        *changed = (*changed).max(changed_at(&here));
        let mut entries = fs::read_dir(&here)?.collect::<Result<Vec<_>, _>>()?;
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let path = relative.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                walk(dir, &path, files, changed)?;
            } else if entry.file_name().as_encoded_bytes().ends_with(b".conf") {
                files.push(path);
            }
        }
        Ok(())
    }
    let (mut files, mut changed) = (Vec::new(), None);
    walk(dir, Path::new(""), &mut files, &mut changed)?;
    Ok((files, changed))
}

/// A kubelet process: its PID and what its command line says.
pub type FoundKubelet = (u32, KubeletCommandLine);

/// What a kubelet's configuration says now, and when it last changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeletConfiguration {
    /// What the files say, or why one the kubelet read cannot be read now (its start ended
    /// with them all read): then what it runs with is not known.
    pub setting: Result<KubeletSeccompDefault, String>,
    /// The latest change time (ctime: a copy that keeps the modification time still gets a new
    /// one) of the `--config` file (and of the link to it, if it is one), the `--config-dir`
    /// directory (drop-ins added or removed) and its drop-ins; `None` when none of them exists.
    pub last_change: Option<Timestamp>,
}

/// Reads a found kubelet's configuration files, through its root.
pub fn read_configuration(proc_root: &Path, kubelet: &FoundKubelet) -> KubeletConfiguration {
    let (pid, command_line) = (kubelet.0, &kubelet.1);
    let mut documents = Vec::new();
    let mut last_change = None;
    // The first file the kubelet read that cannot be read now.
    let mut unreadable: Option<String> = None;
    let mut read = |name: String, path: &KubeletPath, last_change: &mut Option<Timestamp>| {
        *last_change = (*last_change).max(path.changed_at());
        match fs::read_to_string(&path.on_agent) {
            Ok(text) => documents.push((name, text)),
            Err(e) => {
                unreadable.get_or_insert_with(|| format!("{name}: {e}"));
            }
        }
    };
    if let Some(config) = &command_line.config {
        read(
            config.clone(),
            &through_process(proc_root, pid, Path::new(config)),
            &mut last_change,
        );
    }
    if let Some(dir) = &command_line.config_dir {
        let dir_path = through_process(proc_root, pid, Path::new(dir));
        last_change = last_change.max(dir_path.links_changed);
        match drop_in_files(&dir_path.on_agent) {
            Ok((files, changed)) => {
                last_change = last_change.max(changed);
                for file in files {
                    // The drop-in itself may be a link.
                    let path = through_process(proc_root, pid, &dir_path.node.join(&file));
                    read(format!("{dir}/{}", file.display()), &path, &mut last_change);
                }
            }
            Err(e) => {
                unreadable.get_or_insert_with(|| format!("{dir}: {e}"));
            }
        }
    }
    // The flag wins over every file, read or not.
    let setting = match unreadable {
        Some(why) if command_line.seccomp_default_flag.is_none() => Err(why),
        _ => Ok(resolve_setting(command_line, &documents)),
    };
    KubeletConfiguration { setting, last_change }
}

/// Whether `path` is the kubelet's own `--config` file (the same file, through its root), not a
/// copy of it.
pub fn is_config_of(proc_root: &Path, kubelet: &FoundKubelet, path: &Path) -> bool {
    let Some(config) = &kubelet.1.config else {
        return false;
    };
    let identity = |p: &Path| fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let own = identity(&through_process(proc_root, kubelet.0, Path::new(config)).on_agent);
    own.is_some() && own == identity(path)
}

/// The change time of a path and, when it is a link, of the link itself (a link pointed
/// elsewhere changes what is read without changing either file).
pub fn changed_at(path: &Path) -> Option<Timestamp> {
    let link = fs::symlink_metadata(path).ok().and_then(|m| change_time(&m));
    let target = fs::metadata(path).ok().and_then(|m| change_time(&m));
    link.max(target)
}

/// When a kubelet process started, as `/proc` tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeletStart {
    /// To within some 20 ms: now, less the time since boot (`/proc/uptime`, in hundredths of a
    /// second), plus the process's start since boot (`starttime` of its `stat`, in clock ticks).
    pub at: Timestamp,
    /// The same start from the boot time in whole seconds (`btime` of `/proc/stat`), as RFC 3339:
    /// the same text on every read and for every agent, so it names this start of the kubelet.
    pub name: String,
}

/// A change of the configuration this long after the kubelet process started may be one it read:
/// it reads its files in its first moments, after the process started (from the `exec` of a
/// wrapper, even). Later changes are not what it runs with.
pub const READ_MARGIN: Duration = Duration::from_secs(1);

impl KubeletStart {
    /// From the `starttime` of the process (clock ticks since boot), the host's clock ticks per
    /// second, its time since boot and boot time (whole seconds since the epoch), and now.
    pub fn from_parts(
        started_ticks: u64,
        ticks_per_second: u64,
        uptime: Duration,
        boot_time: u64,
        now: Timestamp,
    ) -> Option<KubeletStart> {
        let ticks_per_second = ticks_per_second.max(1);
        let since_boot = Duration::from_secs(started_ticks / ticks_per_second)
            + Duration::from_secs(started_ticks % ticks_per_second) / u32::try_from(ticks_per_second).ok()?;
        // Both are rounded down: a process just started can look a little younger than 0 s.
        let age = uptime.saturating_sub(since_boot);
        let started_at = boot_time.checked_add(started_ticks / ticks_per_second)?;
        let name = Timestamp::from_second(i64::try_from(started_at).ok()?)
            .ok()?
            .to_string();
        Some(KubeletStart {
            at: now.checked_sub(age).ok()?,
            name,
        })
    }

    /// Whether the configuration changed after the kubelet read it (see [`READ_MARGIN`]).
    pub fn changed_since(&self, last_change: Option<Timestamp>) -> bool {
        let read_by = self.at.checked_add(READ_MARGIN);
        last_change.is_some_and(|changed| read_by.is_ok_and(|read_by| changed > read_by))
    }
}

/// Seconds since boot from a `/proc/uptime` text (`"12345.67 23456.78"`).
pub fn parse_uptime(text: &str) -> Option<Duration> {
    let seconds: f64 = text.split_whitespace().next()?.parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

/// The boot time (seconds since the epoch) from a `/proc/stat` text (its `btime` line).
pub fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// When the kubelet process `pid` started, from the host's `/proc`.
pub fn start_of(proc_root: &Path, pid: u32) -> Option<KubeletStart> {
    let stat = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let started = super::procfs::parse_stat(&stat)?.started;
    let uptime = parse_uptime(&fs::read_to_string(proc_root.join("uptime")).ok()?)?;
    let boot_time = parse_boot_time(&fs::read_to_string(proc_root.join("stat")).ok()?)?;
    KubeletStart::from_parts(
        started,
        rustix::param::clock_ticks_per_second(),
        uptime,
        boot_time,
        Timestamp::now(),
    )
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

    /// What the files of the kubelet of `node_name` say, or `None` when no kubelet is found.
    fn discover(proc_root: &Path, node_name: &str) -> Option<KubeletSeccompDefault> {
        let configuration = read_configuration(proc_root, &find_kubelet(proc_root, node_name)?);
        Some(configuration.setting.expect("readable"))
    }

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
            // Null: back to the default.
            ("", Some(false)),
            ("~", Some(false)),
            ("null", Some(false)),
        ] {
            let text = format!("kind: KubeletConfiguration\nseccompDefault: {value}\n");
            assert_eq!(seccomp_default_in(&text), expected, "{value}");
        }
        assert_eq!(seccomp_default_in(r#"{"seccompDefault": true}"#), Some(true));
        assert_eq!(seccomp_default_in("kind: KubeletConfiguration\n"), None);
        // Keys given twice: the last one counts, whichever key it is.
        assert_eq!(
            seccomp_default_in("seccompDefault: false\nmaxPods: 10\nseccompDefault: true\n"),
            Some(true)
        );
        assert_eq!(
            seccomp_default_in("seccompDefault: true\nmaxPods: 10\nmaxPods: 20\n"),
            Some(true)
        );
    }

    #[test]
    fn flags_beat_files_and_later_drop_ins_beat_earlier_ones() {
        let on = "kind: KubeletConfiguration\nseccompDefault: true\n".to_string();
        let off = "seccompDefault: false\n".to_string();
        let silent = "kind: KubeletConfiguration\nmaxPods: 20\n".to_string();
        let none = KubeletCommandLine::default();
        assert!(resolve_setting(&none, &[("main".into(), on.clone())]).enabled);
        let later = resolve_setting(
            &none,
            &[("main".into(), on.clone()), ("10-off.conf".into(), off.clone())],
        );
        assert_eq!((later.enabled, later.source.as_str()), (false, "10-off.conf"));
        // A drop-in that sets it to null takes it back to the default.
        let reset = resolve_setting(
            &none,
            &[
                ("main".into(), on.clone()),
                ("30-reset.conf".into(), "seccompDefault:\n".into()),
            ],
        );
        assert_eq!((reset.enabled, reset.source.as_str()), (false, "30-reset.conf"));
        // A drop-in that does not set it leaves the main file's value.
        assert!(
            resolve_setting(
                &none,
                &[("main".into(), on.clone()), ("20.conf".into(), silent.clone())]
            )
            .enabled
        );
        assert!(
            !resolve_setting(&none, &[("main".into(), silent)]).enabled,
            "the kubelet's default is off"
        );
        assert!(!resolve_setting(&none, &[("main".into(), "{not yaml".into())]).enabled);
        let flag = KubeletCommandLine {
            seccomp_default_flag: Some(false),
            ..Default::default()
        };
        assert!(!resolve_setting(&flag, &[("main".into(), on)]).enabled);
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
        // Its start: 40,050 ticks after a boot at 1,800,000,000 s (clock ticks are 100 a second
        // on Linux).
        let stat = format!("11 (kubelet) S 1{}", " 0".repeat(17) + " 40050 0 0");
        fs::write(mine.join("stat"), stat).expect("stat");
        fs::write(root.path().join("uptime"), "1000.25 10.00\n").expect("uptime");
        fs::write(root.path().join("stat"), "cpu 1\nbtime 1800000000\n").expect("stat");
        assert_eq!(
            start_of(root.path(), 11).map(|s| s.name),
            Some("2027-01-15T08:06:40Z".to_string())
        );
        assert_eq!(start_of(root.path(), 10), None, "no stat");
        // A file given to the agent is the kubelet's own only when it is the same file.
        let found = find_kubelet(root.path(), "node-a").expect("kubelet");
        assert!(is_config_of(
            root.path(),
            &found,
            &mine.join("root/etc/kubelet.yaml")
        ));
        let copy = root.path().join("copy.yaml");
        fs::copy(mine.join("root/etc/kubelet.yaml"), &copy).expect("copy");
        assert!(!is_config_of(root.path(), &found, &copy), "a copy");
        fs::remove_dir_all(other).expect("remove");
        assert!(
            discover(root.path(), "node-c").expect("the only kubelet").enabled,
            "a single kubelet is this node's"
        );
    }

    #[test]
    fn a_child_the_kubelet_forked_is_not_the_kubelet() {
        let process = |root: &Path, pid: u32, parent: u32, args: &[&str]| {
            let dir = root.join(pid.to_string());
            fs::create_dir_all(&dir).expect("dir");
            fs::write(dir.join("comm"), "kubelet\n").expect("comm");
            fs::write(dir.join("cmdline"), cmdline(args)).expect("cmdline");
            let stat = format!("{pid} (kubelet) S {parent}{}", " 0".repeat(17) + " 40050 0 0");
            fs::write(dir.join("stat"), stat).expect("stat");
        };
        // A prepared tree lists in the file system's order, not by PID: the named case holds
        // whatever the order (tests/integration/agent.rs has the real /proc, child first); without
        // --hostname-override, the kubelet and its child must still make one kubelet.
        for args in [
            &["kubelet", "--hostname-override=node-a"][..],
            &["kubelet", "--config=/etc/kubelet.yaml"][..],
        ] {
            let root = tempfile::tempdir().expect("tempdir");
            process(root.path(), 300, 1, args);
            // The child's PID wrapped below its parent's.
            process(root.path(), 20, 300, args);
            let found = find_kubelet(root.path(), "node-a").map(|(pid, _)| pid);
            assert_eq!(found, Some(300), "{args:?}");
        }
    }

    #[test]
    fn a_kubelet_start_from_proc() {
        let boot = Timestamp::from_second(1_800_000_000).expect("time");
        // Up 1,000.25 s; the process started 400.5 s after boot (40,050 ticks at 100 a second).
        let now = boot + Duration::from_millis(1_000_250);
        let start =
            KubeletStart::from_parts(40_050, 100, Duration::from_millis(1_000_250), 1_800_000_000, now)
                .expect("start");
        assert_eq!(start.at, boot + Duration::from_millis(400_500));
        assert_eq!(
            start.name, "2027-01-15T08:06:40Z",
            "boot time + 400 s, whole seconds"
        );
        // Another read, a moment later, names the same start.
        let later = KubeletStart::from_parts(
            40_050,
            100,
            Duration::from_millis(1_030_000),
            1_800_000_000,
            now + Duration::from_millis(29_750),
        )
        .expect("start");
        assert_eq!(later, start);
        // Rounding can make a process just started look younger than the clock: it started now.
        let fresh = KubeletStart::from_parts(100_001, 100, Duration::from_secs(1_000), 1_800_000_000, now)
            .expect("start");
        assert_eq!(fresh.at, now);
        // A boot time no clock can hold is no start (it overflowed before).
        assert_eq!(
            KubeletStart::from_parts(100, 1, Duration::from_secs(1_000), u64::MAX, now),
            None
        );

        assert!(!start.changed_since(None), "no file: nothing changed");
        assert!(!start.changed_since(Some(start.at - Duration::from_secs(60))));
        assert!(
            !start.changed_since(Some(start.at + Duration::from_millis(900))),
            "a change in the kubelet's first moments may be one it read"
        );
        assert!(start.changed_since(Some(start.at + Duration::from_millis(1_100))));

        assert_eq!(
            parse_uptime("1000.25 3999.10\n"),
            Some(Duration::from_millis(1_000_250))
        );
        assert_eq!(parse_uptime("x"), None);
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1800000000\nprocesses 9\n"),
            Some(1_800_000_000)
        );
        assert_eq!(parse_boot_time("cpu 1\n"), None);
    }

    #[test]
    fn the_configuration_changes_that_count_are_those_of_every_file_the_kubelet_read() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("7");
        fs::create_dir_all(dir.join("root/etc/kubelet.conf.d")).expect("dir");
        fs::write(dir.join("root/etc/kubelet.yaml"), "seccompDefault: false\n").expect("config");
        fs::write(
            dir.join("root/etc/kubelet.conf.d/10-a.conf"),
            "seccompDefault: true\n",
        )
        .expect("drop-in");
        let kubelet: FoundKubelet = (
            7,
            KubeletCommandLine {
                config: Some("/etc/kubelet.yaml".into()),
                config_dir: Some("/etc/kubelet.conf.d".into()),
                ..Default::default()
            },
        );
        let read = || read_configuration(root.path(), &kubelet);
        let first = read();
        assert!(first.setting.expect("read").enabled, "the drop-in wins");
        let mut last = first.last_change.expect("changed at");
        // Change times have the kernel's coarse clock: let it move before each change.
        let tick = || std::thread::sleep(Duration::from_millis(30));
        let changes: [(&str, &dyn Fn()); 4] = [
            ("the main file rewritten", &|| {
                fs::write(dir.join("root/etc/kubelet.yaml"), "seccompDefault: true\n").expect("write")
            }),
            ("a drop-in rewritten", &|| {
                fs::write(
                    dir.join("root/etc/kubelet.conf.d/10-a.conf"),
                    "seccompDefault: false\n",
                )
                .expect("write")
            }),
            ("a drop-in added", &|| {
                fs::write(dir.join("root/etc/kubelet.conf.d/20-b.conf"), "{}\n").expect("write")
            }),
            ("a drop-in removed", &|| {
                fs::remove_file(dir.join("root/etc/kubelet.conf.d/20-b.conf")).expect("remove")
            }),
        ];
        for (what, change) in changes {
            tick();
            change();
            let now = read().last_change.expect("changed at");
            assert!(now > last, "{what}: {now:?} after {last:?}");
            last = now;
        }
        tick();
        assert_eq!(read().last_change, Some(last), "reading changes nothing");
        // The main file as a link, pointed elsewhere: a change, though no file was written.
        fs::write(dir.join("root/etc/other.yaml"), "seccompDefault: false\n").expect("write");
        fs::rename(dir.join("root/etc/kubelet.yaml"), dir.join("root/etc/first.yaml")).expect("rename");
        std::os::unix::fs::symlink("first.yaml", dir.join("root/etc/kubelet.yaml")).expect("link");
        let linked = read().last_change.expect("changed at");
        tick();
        fs::remove_file(dir.join("root/etc/kubelet.yaml")).expect("remove");
        std::os::unix::fs::symlink("other.yaml", dir.join("root/etc/kubelet.yaml")).expect("link");
        assert!(
            read().last_change.expect("changed at") > linked,
            "the link pointed elsewhere"
        );
    }

    #[test]
    fn links_are_followed_in_the_kubelets_root_and_drop_ins_in_subdirectories_count() {
        let root = tempfile::tempdir().expect("tempdir");
        let kubelet_root = root.path().join("7/root");
        let node = |path: &str| kubelet_root.join(path);
        fs::create_dir_all(node("etc/kubernetes/conf.d/late")).expect("dirs");
        fs::create_dir_all(node("opt/config")).expect("dirs");
        // An absolute link: followed from the agent's root, it leads nowhere (or to the agent's
        // own file of that name).
        fs::write(node("opt/config/kubelet.yaml"), "seccompDefault: true\n").expect("config");
        std::os::unix::fs::symlink("/opt/config/kubelet.yaml", node("etc/kubernetes/kubelet.yaml"))
            .expect("link");
        let kubelet = |config_dir: Option<&str>| -> FoundKubelet {
            (
                7,
                KubeletCommandLine {
                    config: Some("/etc/kubernetes/kubelet.yaml".into()),
                    config_dir: config_dir.map(str::to_string),
                    ..Default::default()
                },
            )
        };
        let read = |k: &FoundKubelet| read_configuration(root.path(), k).setting;
        assert_eq!(
            read(&kubelet(None)),
            Ok(KubeletSeccompDefault {
                enabled: true,
                source: "/etc/kubernetes/kubelet.yaml".into()
            })
        );
        // Drop-ins: `20.conf` sorts before `late/`, whose own drop-in comes last; files not named
        // `*.conf` are not read; a drop-in may be a link too.
        fs::write(node("etc/kubernetes/conf.d/20.conf"), "seccompDefault: false\n").expect("drop-in");
        fs::write(node("etc/kubernetes/conf.d/90.yaml"), "seccompDefault: true\n").expect("other");
        let with_drop_ins = kubelet(Some("/etc/kubernetes/conf.d"));
        let source = |k: &FoundKubelet| read(k).map(|s| (s.enabled, s.source));
        assert_eq!(
            source(&with_drop_ins),
            Ok((false, "/etc/kubernetes/conf.d/20.conf".into()))
        );
        fs::write(node("opt/config/on.conf"), "seccompDefault: true\n").expect("config");
        std::os::unix::fs::symlink("/opt/config/on.conf", node("etc/kubernetes/conf.d/late/30.conf"))
            .expect("link");
        assert_eq!(
            source(&with_drop_ins),
            Ok((true, "/etc/kubernetes/conf.d/late/30.conf".into()))
        );
        // A file the kubelet read that is not there now: not known, unless a flag decides.
        fs::remove_file(node("opt/config/on.conf")).expect("remove");
        let unreadable = read(&with_drop_ins).expect_err("a drop-in gone");
        assert!(
            unreadable.starts_with("/etc/kubernetes/conf.d/late/30.conf: "),
            "{unreadable}"
        );
        let mut flagged = with_drop_ins.clone();
        flagged.1.seccomp_default_flag = Some(true);
        assert_eq!(
            source(&flagged),
            Ok((true, "kubelet flag --seccomp-default".into()))
        );
        fs::remove_file(node("opt/config/kubelet.yaml")).expect("remove");
        assert!(read(&kubelet(None)).is_err(), "the main file gone");
        assert!(
            read(&kubelet(Some("/etc/kubernetes/missing.d"))).is_err(),
            "the drop-in directory gone"
        );
    }
}
