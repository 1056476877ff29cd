//! Reading a profile file under a node's seccomp directory, from the node agent (through the
//! kubelet's `/proc/<pid>/root`) or the audit CLI (a local directory).

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use k8s_openapi::jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::{Entry, MAX_PROFILE_BYTES, ProfileRoot, Refusal, hex, lexical_path, resolve, summarize};
use crate::api::{ProfileFile, ProfileFileState};

impl ProfileRoot {
    /// Reads the profile `relative` (a `localhostProfile`) and reports what it is. Links are
    /// followed only while the path stays in the seccomp directory or a trusted link target; the
    /// file is opened at its resolved path, not following a link there (one appearing now was
    /// swapped in), and devices, FIFOs and files over [`MAX_PROFILE_BYTES`] are not read.
    pub fn read(&self, relative: &str) -> ProfileFile {
        self.read_with_change_time(relative).0
    }

    /// [`ProfileRoot::read`], with the time the file read last changed (its inode's change time,
    /// which no tool sets back, unlike the modification time `cp -p` and `rsync -t` keep), or a
    /// link followed to it, when later; when it was read.
    pub fn read_with_change_time(&self, relative: &str) -> (ProfileFile, Option<Timestamp>) {
        let report = |state, message: Option<String>| ProfileFile {
            path: relative.to_string(),
            state,
            message,
            ..ProfileFile::default()
        };
        let refused = |why: Refusal| (report(ProfileFileState::Refused, Some(why.to_string())), None);
        let node_path = match lexical_path(&self.seccomp_dir, relative) {
            Ok(path) => path,
            Err(why) => return refused(why),
        };
        // A link pointed elsewhere (`ln -sfn`) changes what the path opens without changing the
        // file: the latest change of a link followed counts as the file's.
        let mut links_changed: Option<Timestamp> = None;
        let mut lookup = |p: &Path| look_up_on_host(&self.host_root, p, &mut links_changed);
        let resolved = match resolve(&node_path, &mut lookup) {
            Ok(resolved) => resolved,
            // A loop of links: the runtime's open fails the same way, so the container cannot start.
            Err(why) => {
                return (
                    report(
                        ProfileFileState::Invalid,
                        Some(format!("{why}: the container runtime cannot open it")),
                    ),
                    None,
                );
            }
        };
        // The directories themselves may be links (a kubelet root moved to a larger disk and
        // linked back): the path resolved is compared with where they lead as well. Links met
        // only here are not on the path opened, so their changes are not the file's.
        let within = |dir: &Path| {
            let mut lookup_only = |p: &Path| look_up_on_host(&self.host_root, p, &mut None);
            resolved.starts_with(dir)
                || resolve(dir, &mut lookup_only).is_ok_and(|real| resolved.starts_with(real))
        };
        let inside = within(&self.seccomp_dir) || self.trusted_link_targets.iter().any(|t| within(t));
        if !inside {
            return refused(Refusal::Escapes);
        }
        match read_bounded(&on_host(&self.host_root, &resolved)) {
            Ok((content, changed)) => {
                let file = match summarize(&content) {
                    Ok(summary) => ProfileFile {
                        path: relative.to_string(),
                        state: ProfileFileState::Present,
                        sha256: Some(summary.sha256),
                        default_action: summary.default_action,
                        syscall_rules: Some(summary.syscall_rules),
                        class: Some(summary.class),
                        message: summary.note,
                        changed_after_start: false,
                        started_with: None,
                    },
                    Err(why) => ProfileFile {
                        sha256: Some(hex(&Sha256::digest(&content))),
                        ..report(ProfileFileState::Invalid, Some(why))
                    },
                };
                (file, changed.max(links_changed))
            }
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => (
                report(ProfileFileState::Missing, Some("no such file on the node".into())),
                None,
            ),
            // What a mount of a file that was not there yet leaves (Docker, kind's extraMounts):
            // the runtime fails to read it ("is a directory"), so the container cannot start.
            Err(ReadError::Directory) => (
                report(
                    ProfileFileState::Invalid,
                    Some("a directory, not a profile file: the container runtime cannot load it".into()),
                ),
                None,
            ),
            Err(ReadError::Refused(why)) => refused(why),
            Err(ReadError::Io(e)) => (report(ProfileFileState::Unreadable, Some(e.to_string())), None),
        }
    }
}

enum ReadError {
    Directory,
    Refused(Refusal),
    Io(std::io::Error),
}

/// Opens without following a last symbolic link and without blocking on a FIFO, then reads at
/// most the limit; with the file's change time.
fn read_bounded(path: &Path) -> Result<(Vec<u8>, Option<Timestamp>), ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => ReadError::Refused(Refusal::NotAFile),
            _ => ReadError::Io(e),
        })?;
    let metadata = file.metadata().map_err(ReadError::Io)?;
    if metadata.is_dir() {
        return Err(ReadError::Directory);
    }
    if !metadata.is_file() {
        return Err(ReadError::Refused(Refusal::NotAFile));
    }
    if metadata.len() > MAX_PROFILE_BYTES {
        return Err(ReadError::Refused(Refusal::TooLarge));
    }
    let mut content = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut content)
        .map_err(ReadError::Io)?;
    if content.len() as u64 > MAX_PROFILE_BYTES {
        return Err(ReadError::Refused(Refusal::TooLarge));
    }
    Ok((content, change_time(&metadata)))
}

/// A path on the node as the agent reaches it, through `host_root` (the node's root as the agent
/// sees it: `/proc/<pid>/root`, or `/`).
pub(crate) fn on_host(host_root: &Path, node_path: &Path) -> PathBuf {
    host_root.join(node_path.strip_prefix("/").unwrap_or(node_path))
}

/// What a path on the node is, as [`resolve`] asks it, read through `host_root` (the node's root
/// as the agent reaches it); the latest change time of a link found goes to `links_changed`.
pub(crate) fn look_up_on_host(
    host_root: &Path,
    node_path: &Path,
    links_changed: &mut Option<Timestamp>,
) -> Entry {
    let agent_path = on_host(host_root, node_path);
    match std::fs::symlink_metadata(&agent_path) {
        Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(&agent_path) {
            Ok(target) => {
                *links_changed = (*links_changed).max(change_time(&m));
                Entry::Link(target)
            }
            Err(_) => Entry::Other,
        },
        Ok(_) => Entry::Other,
        Err(_) => Entry::Missing,
    }
}

/// The inode's change time.
pub(crate) fn change_time(metadata: &std::fs::Metadata) -> Option<Timestamp> {
    use std::os::unix::fs::MetadataExt;
    i32::try_from(metadata.ctime_nsec())
        .ok()
        .and_then(|nanos| Timestamp::new(metadata.ctime(), nanos).ok())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    const ALLOW_LIST: &str =
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#;

    /// A node root with its seccomp directory, and the root the agent would use.
    fn node() -> (tempfile::TempDir, ProfileRoot) {
        node_with(
            &["var/lib/kubelet/seccomp/profiles", "var/lib/spo"],
            &["/var/lib/spo"],
        )
    }

    /// A node root with these directories, and the root the agent would use with the kubelet's
    /// default seccomp directory and these trusted link targets.
    fn node_with(dirs: &[&str], trusted: &[&str]) -> (tempfile::TempDir, ProfileRoot) {
        let host = tempfile::tempdir().expect("tempdir");
        for dir in dirs {
            std::fs::create_dir_all(host.path().join(dir)).expect("dirs");
        }
        let root = ProfileRoot {
            host_root: host.path().to_path_buf(),
            seccomp_dir: PathBuf::from("/var/lib/kubelet/seccomp"),
            trusted_link_targets: trusted.iter().map(PathBuf::from).collect(),
        };
        (host, root)
    }

    fn put(host: &tempfile::TempDir, path: &str, content: &str) {
        std::fs::write(host.path().join(path), content).expect("write");
    }

    #[test]
    fn a_present_profile_is_classified_with_its_digest() {
        let (host, root) = node();
        put(&host, "var/lib/kubelet/seccomp/profiles/a.json", ALLOW_LIST);
        let file = root.read("profiles/a.json");
        assert_eq!(file.state, ProfileFileState::Present);
        assert_eq!(file.class, Some(crate::api::ProfileClass::AllowList));
        assert_eq!(file.sha256.as_deref().map(str::len), Some(64));
        assert_eq!(file.path, "profiles/a.json");
    }

    #[test]
    fn missing_invalid_and_oversized_files_say_so() {
        let (host, root) = node();
        assert_eq!(root.read("profiles/none.json").state, ProfileFileState::Missing);
        put(&host, "var/lib/kubelet/seccomp/bad.json", "{ nope");
        let bad = root.read("bad.json");
        assert_eq!(bad.state, ProfileFileState::Invalid);
        assert!(bad.sha256.is_some(), "an invalid file still has a digest");
        let big = "x".repeat(usize::try_from(MAX_PROFILE_BYTES).expect("fits") + 1);
        put(&host, "var/lib/kubelet/seccomp/big.json", &big);
        assert_eq!(root.read("big.json").state, ProfileFileState::Refused);
    }

    #[test]
    fn a_directory_is_a_profile_the_runtime_cannot_load() {
        let (host, root) = node();
        put(&host, "var/lib/kubelet/seccomp/profiles/a.json", ALLOW_LIST);
        let directory = root.read("profiles");
        assert_eq!(directory.state, ProfileFileState::Invalid);
        assert!(
            directory
                .message
                .as_deref()
                .is_some_and(|m| m.contains("a directory")),
            "{directory:?}"
        );
        assert!(directory.sha256.is_none(), "nothing is read");
    }

    #[test]
    fn a_link_pointed_at_an_older_file_changes_the_change_time() {
        use std::os::unix::fs::MetadataExt;
        let (host, root) = node();
        put(&host, "var/lib/kubelet/seccomp/profiles/v2.json", ALLOW_LIST);
        let seccomp = host.path().join("var/lib/kubelet/seccomp");
        // Inode times come from a clock that ticks every few milliseconds.
        std::thread::sleep(std::time::Duration::from_millis(50));
        symlink("profiles/v2.json", seccomp.join("current.json")).expect("link");
        let link = std::fs::symlink_metadata(seccomp.join("current.json")).expect("link");
        let target = std::fs::metadata(seccomp.join("profiles/v2.json")).expect("file");
        assert!(
            (link.ctime(), link.ctime_nsec()) > (target.ctime(), target.ctime_nsec()),
            "the link is newer than its target"
        );
        let (file, changed) = root.read_with_change_time("current.json");
        assert_eq!(file.state, ProfileFileState::Present);
        assert_eq!(changed, change_time(&link), "the link's change, not the file's");
        let (_, direct) = root.read_with_change_time("profiles/v2.json");
        assert_eq!(direct, change_time(&target));
    }

    #[test]
    fn links_leaving_the_directory_are_refused_but_trusted_targets_are_read() {
        let (host, root) = node();
        put(&host, "var/lib/spo/p.json", ALLOW_LIST);
        put(&host, "secret", ALLOW_LIST);
        let seccomp = host.path().join("var/lib/kubelet/seccomp");
        // Absolute targets are the node's paths, not the agent's.
        symlink("/var/lib/spo", seccomp.join("operator")).expect("link");
        symlink("/secret", seccomp.join("escape.json")).expect("link");
        symlink("../../../../secret", seccomp.join("up.json")).expect("link");
        assert_eq!(root.read("operator/p.json").state, ProfileFileState::Present);
        for escaping in ["escape.json", "up.json"] {
            let file = root.read(escaping);
            assert_eq!(file.state, ProfileFileState::Refused, "{escaping}");
            assert!(file.sha256.is_none(), "nothing of {escaping} is read");
        }
        assert_eq!(root.read("../secret").state, ProfileFileState::Refused);
    }

    #[test]
    fn a_kubelet_root_behind_a_link_holds_its_profiles() {
        let (host, root) = node_with(
            &["data/kubelet/seccomp", "var/lib", "data/spo"],
            &["/var/lib/spo"],
        );
        let path = |p: &str| host.path().join(p);
        // The kubelet's root and the trusted directory moved elsewhere, linked back.
        symlink("/data/kubelet", path("var/lib/kubelet")).expect("link");
        symlink("/data/spo", path("var/lib/spo")).expect("link");
        put(&host, "data/kubelet/seccomp/a.json", ALLOW_LIST);
        put(&host, "data/spo/p.json", ALLOW_LIST);
        put(&host, "secret", ALLOW_LIST);
        symlink("/var/lib/spo", path("data/kubelet/seccomp/operator")).expect("link");
        symlink("/secret", path("data/kubelet/seccomp/escape.json")).expect("link");
        assert_eq!(root.read("a.json").state, ProfileFileState::Present);
        assert_eq!(root.read("operator/p.json").state, ProfileFileState::Present);
        assert_eq!(root.read("escape.json").state, ProfileFileState::Refused);
    }

    #[test]
    fn a_trusted_directory_not_on_the_path_does_not_change_the_change_time() {
        // The first trusted directory is a link made later, which the profile does not go through.
        let (host, root) = node_with(
            &["var/lib/kubelet/seccomp", "var/lib/shared", "data/first"],
            &["/var/lib/first", "/var/lib/shared"],
        );
        let path = |p: &str| host.path().join(p);
        put(&host, "var/lib/shared/p.json", ALLOW_LIST);
        symlink("/var/lib/shared/p.json", path("var/lib/kubelet/seccomp/p.json")).expect("link");
        let profile_link = std::fs::symlink_metadata(path("var/lib/kubelet/seccomp/p.json")).expect("link");
        std::thread::sleep(std::time::Duration::from_millis(50));
        symlink("/data/first", path("var/lib/first")).expect("link");
        let (file, changed) = root.read_with_change_time("p.json");
        assert_eq!(file.state, ProfileFileState::Present);
        assert_eq!(
            changed,
            change_time(&profile_link),
            "the profile's own link, not /var/lib/first"
        );
    }

    #[test]
    fn a_fifo_is_not_opened_for_reading() {
        let (host, root) = node();
        let fifo = host.path().join("var/lib/kubelet/seccomp/fifo.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success(), "mkfifo");
        assert_eq!(root.read("fifo.json").state, ProfileFileState::Refused);
    }
}
