//! Localhost seccomp profiles judged by what they block. A profile file is the OCI runtime-spec
//! `linux.seccomp` JSON (what containerd and CRI-O load): a `defaultAction` for every system call
//! no rule names, and `syscalls` rules with their own action. Its class says how much it confines:
//!
//! | class | default action | confines |
//! |---|---|---|
//! | `AllowList` | denies (ERRNO, KILL*, TRAP, TRACE) | everything not listed |
//! | `DenyList` | ALLOW, with rules that deny calls they name in `names` | only what is listed |
//! | `LogOnly` | LOG | nothing by default: calls are recorded, not blocked |
//! | `Permissive` | ALLOW, no rule that denies | nothing |
//!
//! Parsing, classifying and resolving paths are pure; [`ProfileRoot::read`] (`file.rs`) reads one
//! file under a node's seccomp directory without leaving it, and [`strength`] folds what is known
//! into a pod's status.

mod decode;
mod file;
pub mod strength;

/// A file's change time, as the profile reports use it (the node agent's kubelet reading too).
pub(crate) use file::{change_time, look_up_on_host, on_host};

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::api::ProfileClass;

/// The largest profile file read (containerd's default profile is about 20 KiB).
pub const MAX_PROFILE_BYTES: u64 = 1024 * 1024;

/// What a profile file says, as far as its class goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileSummary {
    pub sha256: String,
    /// `None` for a profile that installs no filter ([`NO_FILTER_NOTE`]).
    pub default_action: Option<String>,
    pub syscall_rules: u32,
    pub class: ProfileClass,
    /// Something the class does not show (e.g. a user-space listener decides).
    pub note: Option<String>,
}

/// What a profile with neither a default action nor rules does: runc (under containerd) and
/// containers/common (under CRI-O) read it as "no seccomp", so the container runs unconfined.
pub const NO_FILTER_NOTE: &str = "no defaultAction and no rules: the runtime installs no filter, \
     the container runs unconfined (seccomp disabled)";

pub(crate) use decode::Rule;

/// What a rule reaches, as runtimes read it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// A system call in `names`: every runtime applies the rule.
    Names,
    /// Only Docker's `name`: CRI-O applies it, containerd does not.
    DockerName,
    /// No system call: `names` empty, or only names no architecture has (runc skips the names
    /// libseccomp does not know, a typo or a made-up call, without an error).
    Nothing,
}

impl Rule {
    fn reach(&self) -> Reach {
        if self.names.iter().any(|name| known_system_call(name)) {
            Reach::Names
        } else if self.docker_name.0.as_deref().is_some_and(known_system_call) {
            Reach::DockerName
        } else {
            Reach::Nothing
        }
    }

    /// Whether every runtime applies the rule to some call: only such rules count for a class.
    pub(crate) fn applies(&self) -> bool {
        self.reach() == Reach::Names
    }

    pub(crate) fn action(&self) -> &str {
        &self.action
    }

    fn unknown_names(&self) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .map(String::as_str)
            .filter(|name| !known_system_call(name))
    }
}

/// ARM's private calls, which libseccomp names too; the tables below number them apart.
const ARM_PRIVATE_CALLS: [&str; 5] = ["breakpoint", "cacheflush", "usr26", "usr32", "set_tls"];

/// Whether `name` is a system call of some Linux architecture (libseccomp resolves a name for
/// every architecture; a node runs one of them).
fn known_system_call(name: &str) -> bool {
    use std::str::FromStr;
    macro_rules! on_any_architecture {
        ($($arch:ident),*) => { false $(|| syscalls::$arch::Sysno::from_str(name).is_ok())* };
    }
    on_any_architecture!(
        x86_64,
        x86,
        aarch64,
        arm,
        powerpc,
        powerpc64,
        s390x,
        riscv32,
        riscv64,
        mips,
        mips64,
        loongarch64,
        sparc,
        sparc64
    ) || ARM_PRIVATE_CALLS.contains(&name)
}

/// How an action treats a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    Allow,
    Log,
    Deny,
    /// Decided by a user-space listener (`SCMP_ACT_NOTIFY`).
    Delegate,
}

fn effect(action: &str) -> Option<Effect> {
    Some(match action {
        "SCMP_ACT_ALLOW" => Effect::Allow,
        "SCMP_ACT_LOG" => Effect::Log,
        // Without a tracer attached, a TRACE'd call fails with ENOSYS.
        "SCMP_ACT_ERRNO"
        | "SCMP_ACT_KILL"
        | "SCMP_ACT_KILL_THREAD"
        | "SCMP_ACT_KILL_PROCESS"
        | "SCMP_ACT_TRAP"
        | "SCMP_ACT_TRACE" => Effect::Deny,
        "SCMP_ACT_NOTIFY" => Effect::Delegate,
        _ => return None,
    })
}

/// The class of a profile from its default action and its rules' actions.
pub fn classify<'a>(
    default_action: &str,
    rule_actions: impl IntoIterator<Item = &'a str>,
) -> Result<(ProfileClass, Option<String>), String> {
    let default =
        effect(default_action).ok_or_else(|| format!("unknown defaultAction {default_action:?}"))?;
    let mut denies = false;
    let mut delegates = false;
    for action in rule_actions {
        match effect(action).ok_or_else(|| format!("unknown rule action {action:?}"))? {
            Effect::Deny => denies = true,
            Effect::Delegate => delegates = true,
            Effect::Allow | Effect::Log => {}
        }
    }
    let delegated =
        delegates.then(|| "some calls are decided by a user-space listener (SCMP_ACT_NOTIFY)".to_string());
    Ok(match default {
        Effect::Deny => (ProfileClass::AllowList, delegated),
        Effect::Log => (ProfileClass::LogOnly, delegated),
        Effect::Allow if denies => (ProfileClass::DenyList, delegated),
        Effect::Allow => (ProfileClass::Permissive, delegated),
        Effect::Delegate => (
            ProfileClass::Delegated,
            Some("every call not listed is decided by a user-space listener (SCMP_ACT_NOTIFY)".into()),
        ),
    })
}

/// Parses and classifies the content of a profile file.
pub fn summarize(content: &[u8]) -> Result<ProfileSummary, String> {
    let sha256 = hex(&Sha256::digest(content));
    let profile = decode::decode(content).map_err(|e| format!("not a seccomp profile: {e}"))?;
    let rules = &profile.syscalls;
    if profile.default_action.is_empty() && rules.is_empty() {
        return Ok(ProfileSummary {
            sha256,
            default_action: None,
            syscall_rules: 0,
            class: ProfileClass::Permissive,
            note: Some(NO_FILTER_NOTE.to_string()),
        });
    }
    refusal_by_runtime(&profile)?;
    // The class never counts on what some runtime may not apply (a "deny list" of rules that
    // reach no call there denies nothing).
    let reaches: Vec<Reach> = rules.iter().map(Rule::reach).collect();
    let (class, note) = classify(
        &profile.default_action,
        rules
            .iter()
            .zip(&reaches)
            .filter(|(_, reach)| **reach == Reach::Names)
            .map(|(rule, _)| rule.action()),
    )?;
    let notes: Vec<String> = note
        .into_iter()
        .chain(notes_on_left_out_rules(rules, &reaches))
        .chain(notes_on_runc(&profile))
        .collect();
    Ok(ProfileSummary {
        sha256,
        syscall_rules: u32::try_from(rules.len()).unwrap_or(u32::MAX),
        class,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        default_action: Some(profile.default_action),
    })
}

/// The architectures runc knows (1.3; Debian 12's 1.1.5 lacks `SCMP_ARCH_RISCV64`); it refuses
/// a profile that names another.
const ARCHITECTURES: [&str; 17] = [
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
];

/// The argument comparisons runc knows.
const OPERATORS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// Why the runtime refuses a decoded profile that installs a filter, in the order runc checks:
/// the architectures, the default action, every rule's action (whatever it names), and the
/// comparisons of the rules that name some call (runc converts them once per name).
fn refusal_by_runtime(profile: &decode::Profile) -> Result<(), String> {
    if let Some(arch) = profile
        .architectures
        .iter()
        .find(|arch| !ARCHITECTURES.contains(&arch.as_str()))
    {
        return Err(format!("unknown architecture {arch:?}"));
    }
    if profile.default_action.is_empty() {
        return Err("not a seccomp profile: no defaultAction".to_string());
    }
    classify(&profile.default_action, profile.syscalls.iter().map(Rule::action))?;
    let operator = profile
        .syscalls
        .iter()
        .filter(|rule| !rule.names.is_empty())
        .flat_map(|rule| &rule.args)
        .find(|arg| !OPERATORS.contains(&arg.op.as_str()));
    if let Some(arg) = operator {
        return Err(format!("unknown argument operator {:?}", arg.op));
    }
    refusal_by_libseccomp(profile)
}

/// What libseccomp refuses as runc builds the filter: the default action, then each call of each
/// rule, where runc refuses an empty name, skips a rule whose action is the default's and a
/// name libseccomp does not know, and lets libseccomp refuse an argument past the sixth and an
/// errno it cannot return.
fn refusal_by_libseccomp(profile: &decode::Profile) -> Result<(), String> {
    let default = filter_action(&profile.default_action, profile.default_errno_ret);
    if let Some(code) = default.errno_out_of_range() {
        return Err(format!(
            "defaultErrnoRet {code}: libseccomp returns errno values below {MAX_ERRNO} only"
        ));
    }
    for rule in &profile.syscalls {
        let action = filter_action(&rule.action, rule.errno_ret);
        for name in &rule.names {
            if name.is_empty() {
                return Err("a rule names an empty system call".to_string());
            }
            if action == default || !known_system_call(name) {
                continue;
            }
            if let Some(arg) = rule.args.iter().find(|arg| arg.index > 5) {
                return Err(format!(
                    "{name}: argument index {}, where system calls have arguments 0 to 5",
                    arg.index
                ));
            }
            if let Some(code) = action.errno_out_of_range() {
                return Err(format!(
                    "{name}: errnoRet {code}: libseccomp returns errno values below {MAX_ERRNO} only"
                ));
            }
        }
    }
    Ok(())
}

/// libseccomp's bound on an errno a filter returns.
const MAX_ERRNO: u16 = 4096;

/// An action as runc hands it to libseccomp: KILL is KILL_THREAD, and ERRNO and TRACE carry their
/// errno (EPERM unless set; Go's `int16` conversion keeps its low 16 bits).
#[derive(Clone, Copy, PartialEq, Eq)]
enum FilterAction<'a> {
    Errno(u16),
    Trace(u16),
    Other(&'a str),
}

impl FilterAction<'_> {
    /// The errno of an ERRNO action that libseccomp cannot return.
    fn errno_out_of_range(self) -> Option<u16> {
        match self {
            FilterAction::Errno(code) if code >= MAX_ERRNO => Some(code),
            _ => None,
        }
    }
}

fn filter_action(action: &str, errno: Option<u64>) -> FilterAction<'_> {
    const EPERM: u16 = 1;
    let code = errno.map_or(EPERM, |errno| (errno & 0xFFFF) as u16);
    match action {
        "SCMP_ACT_ERRNO" => FilterAction::Errno(code),
        "SCMP_ACT_TRACE" => FilterAction::Trace(code),
        "SCMP_ACT_KILL" => FilterAction::Other("SCMP_ACT_KILL_THREAD"),
        other => FilterAction::Other(other),
    }
}

/// What keeps a profile from starting under some runc versions only, or under runc but perhaps
/// not under another runtime: said in the note, the class stays.
fn notes_on_runc(profile: &decode::Profile) -> Vec<String> {
    let mut notes = Vec::new();
    if !profile.flags.is_empty() {
        notes.push(format!(
            "sets flags ({}): runc before 1.2 refuses any flag, so the container cannot start \
             there; later runc takes those the kernel supports",
            profile.flags.join(", ")
        ));
    }
    if profile.default_action == "SCMP_ACT_NOTIFY" {
        notes.push(
            "runc refuses SCMP_ACT_NOTIFY as the default action: the container cannot start \
             where runc runs it"
                .to_string(),
        );
    }
    let notifies = profile
        .syscalls
        .iter()
        .filter(|rule| rule.action == "SCMP_ACT_NOTIFY" && rule.applies());
    if profile.listener_path.is_empty() && notifies.clone().next().is_some() {
        notes.push(
            "SCMP_ACT_NOTIFY rules without a listenerPath: runc refuses them, the container \
             cannot start where runc runs it"
                .to_string(),
        );
    }
    if notifies.flat_map(|rule| &rule.names).any(|name| name == "write") {
        notes.push("runc refuses SCMP_ACT_NOTIFY for write".to_string());
    }
    notes
}

/// What the class leaves out of `rules` (each with its reach) and why, for the file's note.
fn notes_on_left_out_rules(rules: &[Rule], reaches: &[Reach]) -> Vec<String> {
    let count = |wanted: Reach| reaches.iter().filter(|reach| **reach == wanted).count();
    let (docker_named, unnamed) = (count(Reach::DockerName), count(Reach::Nothing));
    let mut unknown: Vec<&str> = rules.iter().flat_map(Rule::unknown_names).collect();
    unknown.sort_unstable();
    unknown.dedup();
    let docker = (docker_named > 0).then(|| {
        let (rules, them) = match docker_named {
            1 => ("1 rule names its call".to_string(), "it"),
            n => (format!("{n} rules name their calls"), "them"),
        };
        format!(
            "{rules} only in Docker's `name` field, which containerd ignores (CRI-O applies \
             it): the class counts without {them}; list calls in `names`"
        )
    });
    let unknown = (!unknown.is_empty()).then(|| {
        format!(
            "not system calls of any architecture, which the runtime skips: {}",
            crate::status::summarize_names(&unknown)
        )
    });
    let unnamed = (unnamed > 0).then(|| match unnamed {
        1 => "1 rule names no system call and applies to none".to_string(),
        n => format!("{n} rules name no system call and apply to none"),
    });
    docker.into_iter().chain(unknown).chain(unnamed).collect()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first 12 characters of a hex digest, as messages show it.
pub(crate) fn short_digest(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

/// Why a profile path is not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the path is empty")]
    Empty,
    #[error("the path must be relative and descending (no '..', not absolute)")]
    NotDescending,
    #[error("the path leads outside the profile directory")]
    Escapes,
    #[error("not a regular file")]
    NotAFile,
    #[error("larger than {MAX_PROFILE_BYTES} bytes")]
    TooLarge,
}

/// The path of `relative` under `root`, checked lexically (what the API server also checks of a
/// `localhostProfile`: relative, no `..`).
pub fn lexical_path(root: &Path, relative: &str) -> Result<PathBuf, Refusal> {
    if relative.is_empty() {
        return Err(Refusal::Empty);
    }
    let path = Path::new(relative);
    if !path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Refusal::NotDescending);
    }
    Ok(root.join(path))
}

/// A `localhostProfile` as the kubelet opens it: it joins the path to its seccomp directory with
/// Go's `filepath.Join`, which cleans it, so `./profiles//app.json` is the file
/// `profiles/app.json`. Empty and `.` segments go (the API server refuses `..`). Policies match,
/// and the audit's profile directory and SeccompProfile objects are looked up, by this form; a
/// path with nothing left (`.`) stays as it is.
pub fn clean_localhost_path(path: &str) -> std::borrow::Cow<'_, str> {
    let cleaned: Vec<&str> = path
        .split('/')
        .filter(|segment| !segment.is_empty() && *segment != ".")
        .collect();
    let cleaned = cleaned.join("/");
    if cleaned == path || cleaned.is_empty() {
        std::borrow::Cow::Borrowed(path)
    } else {
        std::borrow::Cow::Owned(cleaned)
    }
}

/// Where the profile files of a node are, as the agent sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileRoot {
    /// The node's root directory as the agent reaches it (`/proc/<kubelet pid>/root`, or `/`).
    pub host_root: PathBuf,
    /// The kubelet's seccomp directory on the node (absolute, e.g. `/var/lib/kubelet/seccomp`).
    pub seccomp_dir: PathBuf,
    /// Directories on the node that links in the seccomp directory may lead to (the Security
    /// Profiles Operator links `operator/` to `/var/lib/security-profiles-operator`).
    pub trusted_link_targets: Vec<PathBuf>,
}

/// What a path on the node is, for [`resolve`].
pub enum Entry {
    Missing,
    Link(PathBuf),
    Other,
}

/// The most symbolic links followed for one path (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Resolves `path` (absolute, on the node) the way the container runtime will, following
/// symbolic links against the node's root, with `lookup` telling what each prefix is. Pure.
pub fn resolve(path: &Path, lookup: &mut dyn FnMut(&Path) -> Entry) -> Result<PathBuf, String> {
    let mut pending: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&name);
        match lookup(&candidate) {
            Entry::Link(target) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err("too many levels of symbolic links".into());
                }
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            Entry::Missing | Entry::Other => resolved = candidate,
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn classes_follow_the_default_action_and_the_rules() {
        let class = |default: &str, rules: &[&str]| classify(default, rules.iter().copied()).map(|c| c.0);
        assert_eq!(
            class("SCMP_ACT_ERRNO", &["SCMP_ACT_ALLOW"]),
            Ok(ProfileClass::AllowList)
        );
        assert_eq!(class("SCMP_ACT_KILL_PROCESS", &[]), Ok(ProfileClass::AllowList));
        // No tracer: a traced call fails, so TRACE confines like ERRNO.
        assert_eq!(
            class("SCMP_ACT_TRACE", &["SCMP_ACT_ALLOW"]),
            Ok(ProfileClass::AllowList)
        );
        assert_eq!(
            class("SCMP_ACT_ALLOW", &["SCMP_ACT_ERRNO"]),
            Ok(ProfileClass::DenyList)
        );
        assert_eq!(
            class("SCMP_ACT_ALLOW", &["SCMP_ACT_LOG"]),
            Ok(ProfileClass::Permissive)
        );
        assert_eq!(class("SCMP_ACT_ALLOW", &[]), Ok(ProfileClass::Permissive));
        assert_eq!(
            class("SCMP_ACT_LOG", &["SCMP_ACT_ERRNO"]),
            Ok(ProfileClass::LogOnly)
        );
        assert_eq!(class("SCMP_ACT_NOTIFY", &[]), Ok(ProfileClass::Delegated));
        let (class, note) = classify("SCMP_ACT_ERRNO", ["SCMP_ACT_NOTIFY"]).expect("known");
        assert_eq!(class, ProfileClass::AllowList);
        assert!(note.is_some_and(|n| n.contains("user-space listener")));
        assert!(class_err("SCMP_ACT_MAYBE", &[]).contains("defaultAction"));
        assert!(class_err("SCMP_ACT_ALLOW", &["SCMP_ACT_SOMETIMES"]).contains("rule action"));
    }

    fn class_err(default: &str, rules: &[&str]) -> String {
        classify(default, rules.iter().copied()).expect_err("unknown action")
    }

    #[test]
    fn profile_files_are_summarized_or_rejected() {
        let summary =
            summarize(br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#)
                .expect("valid");
        assert_eq!(summary.class, ProfileClass::AllowList);
        assert_eq!(summary.syscall_rules, 1);
        assert_eq!(summary.default_action.as_deref(), Some("SCMP_ACT_ERRNO"));
        assert_eq!(summary.sha256.len(), 64);
        assert!(
            summarize(b"not json")
                .expect_err("garbage")
                .contains("not a seccomp profile")
        );
        assert!(summarize(b"").is_err(), "empty: the runtime fails to decode it");
        // With rules, an empty default action is refused by the runtime.
        assert!(
            summarize(br#"{"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#)
                .expect_err("rules without a default")
                .contains("no defaultAction")
        );
    }

    /// Neither a default action nor rules: the runtime installs no filter at all.
    #[test]
    fn a_profile_without_default_action_or_rules_installs_no_filter() {
        for content in [
            &b"{}"[..],
            b"null",
            br#"{"defaultAction":""}"#,
            br#"{"syscalls":[]}"#,
            br#"{"architectures":["SCMP_ARCH_X86_64"]}"#,
        ] {
            let summary = summarize(content).expect("a profile the runtime accepts");
            let shown = String::from_utf8_lossy(content);
            assert_eq!(summary.class, ProfileClass::Permissive, "{shown}");
            assert_eq!(summary.default_action, None, "{shown}");
            assert_eq!(summary.note.as_deref(), Some(NO_FILTER_NOTE), "{shown}");
        }
    }

    /// Rules as runtimes read them: the class and the note (every fragment in it; none: no note).
    #[test]
    fn rules_count_only_for_the_calls_every_runtime_applies_them_to() {
        let allow_with =
            |rules: &str| format!(r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{rules}]}}"#);
        let deny = |field: &str, names: &str| format!(r#"{{"{field}":{names},"action":"SCMP_ACT_ERRNO"}}"#);
        let cases = [
            // containerd loads these and mkdir stays allowed (strength::each_profile_class_…
            // checks it on a node): none is a deny list.
            (
                allow_with(&deny("names", "[]")),
                ProfileClass::Permissive,
                vec!["1 rule names no system call"],
            ),
            (
                allow_with(&format!("{},{}", deny("name", r#""mkdir""#), deny("name", r#""mkdirat""#))),
                ProfileClass::Permissive,
                vec!["2 rules name their calls only in Docker's `name` field"],
            ),
            (
                allow_with(&deny("names", r#"["mkdri","mkdiratt"]"#)),
                ProfileClass::Permissive,
                vec!["which the runtime skips: mkdiratt, mkdri"],
            ),
            // One rule that names a call in `names` makes it a deny list again; what is left out
            // is still named.
            (
                allow_with(&format!("{},{}", deny("name", r#""mkdir""#), deny("names", r#"["ptrace"]"#))),
                ProfileClass::DenyList,
                vec!["1 rule names its call", "counts without it;"],
            ),
            (
                allow_with(&deny("names", r#"["mkdri","ptrace"]"#)),
                ProfileClass::DenyList,
                vec!["mkdri"],
            ),
            (allow_with(&deny("names", r#"["mkdir"]"#)), ProfileClass::DenyList, vec![]),
            // A deny-by-default profile with such rules still denies every other call.
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"read","action":"SCMP_ACT_ALLOW"}]}"#.to_string(),
                ProfileClass::AllowList,
                vec!["Docker's `name` field"],
            ),
        ];
        for (profile, class, note) in cases {
            let summary = summarize(profile.as_bytes()).expect("valid");
            assert_eq!(summary.class, class, "{profile}");
            assert_eq!(
                summary.syscall_rules as usize,
                profile.matches(r#""action""#).count()
            );
            match summary.note.as_deref() {
                Some(text) => assert!(
                    !note.is_empty() && note.iter().all(|f| text.contains(f)),
                    "{profile}: {text}"
                ),
                None => assert!(note.is_empty(), "{profile}: no note"),
            }
        }
        // An unknown action is refused by the runtime whatever the rule names.
        assert!(
            summarize(
                br#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[],"action":"SCMP_ACT_NO"}]}"#
            )
            .is_err()
        );
    }

    /// What runc refuses (checked against containerd 1.6 and runc 1.1 on a node by
    /// `strength::profiles_are_read_as_the_runtime_decodes_and_checks_them`), and what only some
    /// runc versions refuse, said in the note.
    #[test]
    fn profiles_are_checked_as_runc_checks_them() {
        let allow = |extra: &str, rules: &str| {
            format!(r#"{{"defaultAction":"SCMP_ACT_ALLOW",{extra}"syscalls":[{rules}]}}"#)
        };
        let deny_mkdir = r#"{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}"#;
        let refused = |profile: String| summarize(profile.as_bytes()).expect_err(&profile);
        assert!(
            refused(allow(
                r#""architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_NOPE"],"#,
                deny_mkdir
            ))
            .contains(r#"unknown architecture "SCMP_ARCH_NOPE""#)
        );
        assert!(
            refused(allow(
                "",
                r#"{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":[{"op":"SCMP_CMP_NOPE"}]}"#
            ))
            .contains(r#"unknown argument operator "SCMP_CMP_NOPE""#)
        );
        // runc converts comparisons once per name: a rule naming nothing is never looked at.
        let summary = summarize(
            allow(
                "",
                &format!(r#"{{"names":[],"action":"SCMP_ACT_ERRNO","args":[{{"op":"x"}}]}},{deny_mkdir}"#),
            )
            .as_bytes(),
        )
        .expect("runc skips the rule");
        assert_eq!(summary.class, ProfileClass::DenyList);
        let every_known = allow(
            r#""architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_RISCV64"],"#,
            r#"{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":7,"op":"SCMP_CMP_MASKED_EQ"}]}"#,
        );
        assert_eq!(summarize(every_known.as_bytes()).map(|s| s.note), Ok(None));

        // As libseccomp builds the filter: an empty name, an argument past the sixth, an errno of
        // 4096 or more (its low 16 bits, as runc converts it) are refused...
        let deny = |extra: &str| format!(r#"{{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"{extra}}}"#);
        assert!(
            refused(allow("", r#"{"names":["","mkdir"],"action":"SCMP_ACT_ERRNO"}"#))
                .contains("empty system call")
        );
        assert!(
            refused(allow("", &deny(r#","args":[{"index":6,"op":"SCMP_CMP_EQ"}]"#)))
                .contains("argument index 6")
        );
        assert!(refused(allow("", &deny(r#","errnoRet":70000"#))).contains("errnoRet 4464"));
        assert!(
            refused(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":4096}"#.to_string())
                .contains("defaultErrnoRet 4096")
        );
        // ... but not in a rule whose action is the default's (runc skips it), nor for a name
        // libseccomp does not know, and two checks of one argument are fine.
        for rules in [
            format!(
                r#"{{"names":["mkdir"],"action":"SCMP_ACT_ALLOW","args":[{{"index":7,"op":"SCMP_CMP_EQ"}}]}},{deny_mkdir}"#
            ),
            format!(
                r#"{{"names":["mkdri"],"action":"SCMP_ACT_ERRNO","args":[{{"index":9,"op":"SCMP_CMP_EQ"}}]}},{deny_mkdir}"#
            ),
            deny(r#","errnoRet":65537"#),
            deny(
                r#","args":[{"index":1,"value":1,"op":"SCMP_CMP_GE"},{"index":1,"value":9,"op":"SCMP_CMP_LE"}]"#,
            ),
        ] {
            let summary = summarize(allow("", &rules).as_bytes()).expect(&rules);
            assert_eq!(summary.class, ProfileClass::DenyList, "{rules}");
        }
        let kill_as_default = r#"{"defaultAction":"SCMP_ACT_KILL_THREAD","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_KILL","args":[{"index":8,"op":"SCMP_CMP_EQ"}]}]}"#;
        assert!(
            summarize(kill_as_default.as_bytes()).is_ok(),
            "KILL is KILL_THREAD: the rule is skipped"
        );

        let note = |profile: String| {
            let summary = summarize(profile.as_bytes()).expect(&profile);
            (summary.class, summary.note.unwrap_or_default())
        };
        let (class, text) = note(allow(r#""flags":["SECCOMP_FILTER_FLAG_LOG"],"#, deny_mkdir));
        assert_eq!(class, ProfileClass::DenyList);
        assert!(
            text.contains("SECCOMP_FILTER_FLAG_LOG") && text.contains("runc before 1.2"),
            "{text}"
        );
        let (class, text) = note(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#.to_string());
        assert_eq!(class, ProfileClass::Delegated);
        assert!(
            text.contains("runc refuses SCMP_ACT_NOTIFY as the default action"),
            "{text}"
        );
        let notify = |names: &str| format!(r#"{{"names":{names},"action":"SCMP_ACT_NOTIFY"}}"#);
        let (_, text) = note(allow("", &notify(r#"["mkdir","write"]"#)));
        assert!(
            text.contains("without a listenerPath") && text.contains("for write"),
            "{text}"
        );
        let (_, text) = note(allow(
            r#""listenerPath":"/run/agent.sock","#,
            &notify(r#"["mkdir"]"#),
        ));
        assert!(
            !text.contains("listenerPath") && !text.contains("write"),
            "{text}"
        );
        // A NOTIFY rule naming no call puts no listener in the filter.
        let (_, text) = note(allow("", &notify(r#"["mkdri"]"#)));
        assert!(!text.contains("listenerPath"), "{text}");
    }

    #[test]
    fn names_of_every_architecture_are_system_calls() {
        // mkdir is not aarch64's, _llseek and set_tls are 32-bit ARM's.
        for name in [
            "mkdir",
            "mkdirat",
            "_llseek",
            "set_tls",
            "breakpoint",
            "s390_runtime_instr",
            "file_getattr",
        ] {
            assert!(known_system_call(name), "{name}");
        }
        assert!(!known_system_call("mkdri"));
        assert!(!known_system_call(""));
    }

    #[test]
    fn only_relative_descending_paths_are_looked_up() {
        let root = Path::new("/var/lib/kubelet/seccomp");
        assert_eq!(
            lexical_path(root, "profiles/a.json"),
            Ok(PathBuf::from("/var/lib/kubelet/seccomp/profiles/a.json"))
        );
        assert_eq!(lexical_path(root, ""), Err(Refusal::Empty));
        assert_eq!(lexical_path(root, "../etc/shadow"), Err(Refusal::NotDescending));
        assert_eq!(lexical_path(root, "a/../../b"), Err(Refusal::NotDescending));
        assert_eq!(lexical_path(root, "/etc/shadow"), Err(Refusal::NotDescending));
    }

    fn lookup<'a>(links: &'a HashMap<&'a str, &'a str>) -> impl FnMut(&Path) -> Entry + 'a {
        move |p: &Path| match links.get(p.to_str().unwrap_or_default()) {
            Some(target) => Entry::Link(PathBuf::from(target)),
            None => Entry::Other,
        }
    }

    #[test]
    fn links_are_resolved_against_the_node_root() {
        let links = HashMap::from([
            ("/s/operator", "/var/lib/spo"),
            ("/s/up", "../etc"),
            ("/s/loop", "/s/loop"),
        ]);
        let resolve_with = |p: &str| resolve(Path::new(p), &mut lookup(&links));
        assert_eq!(
            resolve_with("/s/operator/a.json"),
            Ok(PathBuf::from("/var/lib/spo/a.json"))
        );
        assert_eq!(resolve_with("/s/up/shadow"), Ok(PathBuf::from("/etc/shadow")));
        assert_eq!(resolve_with("/s/plain.json"), Ok(PathBuf::from("/s/plain.json")));
        assert!(
            resolve_with("/s/loop/x")
                .expect_err("a loop")
                .contains("symbolic links")
        );
    }

    #[test]
    fn a_localhost_path_is_cleaned_as_the_kubelet_joins_it() {
        for (spelled, opened) in [
            ("profiles/app.json", "profiles/app.json"),
            ("./profiles//app.json", "profiles/app.json"),
            ("profiles/./app.json", "profiles/app.json"),
            ("profiles/app.json/", "profiles/app.json"),
            ("app.json", "app.json"),
            (".", "."),
            ("", ""),
        ] {
            assert_eq!(clean_localhost_path(spelled), opened, "{spelled:?}");
        }
        assert!(matches!(
            clean_localhost_path("operator/ns/p.json"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
