//! How much each container's profile blocks, from what is known of it: the file on the pod's node
//! (the node agent's report), a Security Profiles Operator `SeccompProfile` naming the path, or
//! the audit's profile directory. Also which profile paths have different content on different
//! nodes. Pure.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::classify;
use crate::api::{
    ProfileClass, ProfileFile, ProfileFileState, ProfileStrength, ProfileType, SeccompStatusStatus,
    StrengthSource,
};

/// A `SeccompProfile` of the Security Profiles Operator, as far as its strength goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogEntry {
    /// `<namespace>/<name>` or `<name>`.
    pub object: String,
    /// `None`: the object does not say (its note says why).
    pub class: Option<ProfileClass>,
    pub note: Option<String>,
}

impl CatalogEntry {
    /// From the object's `spec.defaultAction`, `spec.syscalls[].action` and whether it unions in
    /// a base profile.
    pub fn new<'a>(
        object: String,
        default_action: &str,
        rule_actions: impl IntoIterator<Item = &'a str>,
        base_profile: Option<&str>,
    ) -> Self {
        match classify(default_action, rule_actions) {
            // A base profile's rules may deny what this one allows.
            Ok((ProfileClass::Permissive, _)) if base_profile.is_some() => CatalogEntry {
                object,
                class: None,
                note: Some(format!(
                    "allows everything itself; its base profile {} is not read",
                    base_profile.unwrap_or_default()
                )),
            },
            Ok((class, _)) => CatalogEntry {
                object,
                class: Some(class),
                note: None,
            },
            Err(why) => CatalogEntry {
                object,
                class: None,
                note: Some(why),
            },
        }
    }
}

/// SeccompProfile objects by the `localhostProfile` that uses them.
pub type ProfileCatalog = HashMap<String, CatalogEntry>;

/// The digests each node's agent reported for each profile path, counted per pod (a path is in
/// drift when its nodes disagree).
#[derive(Clone, Debug, Default)]
pub struct ProfileIndex {
    by_path: HashMap<Box<str>, DigestCounts>,
}

/// Pods counted per (node, digest) of one path.
type DigestCounts = HashMap<(Box<str>, Box<str>), u32>;

/// One node's digest of a profile path.
pub type NodeDigest = (String, String);

impl ProfileIndex {
    /// Counts (`add`) or uncounts one pod's reports from `node`; returns the paths whose set of
    /// digests changed.
    pub fn update(&mut self, node: &str, files: &[(Box<str>, ProfileFile)], add: bool) -> Vec<String> {
        let mut changed = Vec::new();
        for (_, file) in files {
            let Some(sha) = file.sha256.as_deref() else {
                continue;
            };
            let before = self.digests(&file.path);
            let counts = self.by_path.entry(file.path.as_str().into()).or_default();
            let key = (Box::<str>::from(node), Box::<str>::from(sha));
            if add {
                *counts.entry(key).or_insert(0) += 1;
            } else if let Some(n) = counts.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&key);
                }
            }
            if counts.is_empty() {
                self.by_path.remove(file.path.as_str());
            }
            if self.digests(&file.path) != before && !changed.contains(&file.path) {
                changed.push(file.path.clone());
            }
        }
        changed
    }

    fn digests(&self, path: &str) -> BTreeSet<NodeDigest> {
        self.by_path
            .get(path)
            .into_iter()
            .flatten()
            .map(|((node, sha), _)| (node.to_string(), sha.to_string()))
            .collect()
    }

    /// The nodes and digests of `path` when not all nodes have the same content.
    pub fn drift(&self, path: &str) -> Option<Vec<NodeDigest>> {
        let digests = self.digests(path);
        let distinct: BTreeSet<&str> = digests.iter().map(|(_, sha)| sha.as_str()).collect();
        (distinct.len() > 1).then(|| digests.into_iter().collect())
    }
}

/// Where profile files come from for one evaluation.
#[derive(Clone, Copy, Debug, Default)]
pub enum FileReports<'a> {
    #[default]
    None,
    /// The node agent's reports in the pod's stored status, by container.
    Node(&'a [(Box<str>, ProfileFile)]),
    /// Files read by the audit, by path.
    Dir(&'a BTreeMap<String, ProfileFile>),
}

/// What is known of Localhost profiles besides the pod itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProfileFacts<'a> {
    pub files: FileReports<'a>,
    pub catalog: Option<&'a ProfileCatalog>,
    pub index: Option<&'a ProfileIndex>,
}

impl ProfileFacts<'_> {
    fn file(&self, container: &str, path: &str) -> Option<(&ProfileFile, StrengthSource)> {
        match self.files {
            FileReports::None => None,
            FileReports::Node(reports) => reports
                .iter()
                .find(|(c, f)| &**c == container && f.path == path)
                .map(|(_, f)| (f, StrengthSource::Node)),
            FileReports::Dir(files) => files
                .get(super::clean_localhost_path(path).as_ref())
                .map(|f| (f, StrengthSource::ProfilesDir)),
        }
    }
}

const SHOWN: usize = 3;

/// Sets every container's `strength` (and for Localhost its source and warnings) and the pod's
/// weakest.
pub fn assess(status: &mut SeccompStatusStatus, facts: &ProfileFacts<'_>) {
    for container in &mut status.containers {
        let (strength, source) = match container.profile.type_ {
            ProfileType::NotApplicable => (None, None),
            ProfileType::Unconfined => (Some(ProfileStrength::Unconfined), None),
            // The runtimes' default profiles deny every call they do not list.
            ProfileType::RuntimeDefault => (Some(ProfileStrength::AllowList), None),
            ProfileType::Localhost => {
                let path = container.profile.localhost_profile.clone().unwrap_or_default();
                let (strength, source, warning) = localhost(&container.name, &path, facts);
                if let Some(warning) = warning {
                    container.warnings.push(warning);
                }
                if let Some(drift) = facts.index.and_then(|i| i.drift(&path)) {
                    let shown: Vec<String> = drift
                        .iter()
                        .take(SHOWN)
                        .map(|(node, sha)| format!("{} on {node}", super::short_digest(sha)))
                        .collect();
                    let more = drift.len().saturating_sub(SHOWN);
                    let mut warning = format!("{path} differs between nodes: {}", shown.join(", "));
                    if more > 0 {
                        warning.push_str(&format!(" and {more} more"));
                    }
                    container.warnings.push(warning);
                }
                (Some(strength), source)
            }
        };
        container.strength = strength;
        container.strength_source = source;
    }
    status.strength = status.containers.iter().filter_map(|c| c.strength).min();
}

fn localhost(
    container: &str,
    path: &str,
    facts: &ProfileFacts<'_>,
) -> (ProfileStrength, Option<StrengthSource>, Option<String>) {
    // The engine warns already; the kubelet refuses the container.
    if path.is_empty() {
        return (ProfileStrength::Invalid, None, None);
    }
    let mut warning = None;
    if let Some((file, source)) = facts.file(container, path) {
        // The class of the content the running container started with, where the agent read it.
        let started = file.started_with.as_ref().and_then(|s| {
            let class = s.class?;
            let note = format!(
                "the content it started with is {class:?} (sha256 {})",
                super::short_digest(&s.sha256)
            );
            Some((class, note))
        });
        // What the file says now is not what the running container enforces; what it started
        // with is, when the agent read that.
        if file.changed_after_start {
            let why = file
                .message
                .as_deref()
                .unwrap_or("it changed after the container started");
            let warning = format!("{path} is not what the container runs: {why}");
            return match started {
                Some((class, started)) => (class.into(), Some(source), Some(format!("{warning}; {started}"))),
                None => (ProfileStrength::Unknown, Some(source), Some(warning)),
            };
        }
        let message = file
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        match (file.state, file.class, started) {
            // The file's note says what the class leaves out (rules no runtime applies, a
            // listener deciding).
            (ProfileFileState::Present, Some(class), _) => {
                return (class.into(), Some(source), file.message.clone());
            }
            (ProfileFileState::Missing, _, _) => return (ProfileStrength::Missing, Some(source), None),
            // Not usable or not readable now (a directory, a FIFO, a loop of links in its place):
            // the content read before the start is still what runs.
            (state, _, Some((class, started))) => {
                let now = match state {
                    ProfileFileState::Invalid => "not usable",
                    _ => "not read",
                };
                return (
                    class.into(),
                    Some(source),
                    Some(format!("profile file {now} ({state:?}){message}; {started}")),
                );
            }
            (ProfileFileState::Invalid, _, None) => {
                return (ProfileStrength::Invalid, Some(source), file.message.clone());
            }
            (state, _, None) => warning = Some(format!("profile file not read ({state:?}){message}")),
        }
    }
    match facts
        .catalog
        .and_then(|c| c.get(super::clean_localhost_path(path).as_ref()))
    {
        Some(CatalogEntry {
            class: Some(class), ..
        }) => ((*class).into(), Some(StrengthSource::SeccompProfile), warning),
        Some(CatalogEntry {
            object,
            class: None,
            note,
        }) => (
            ProfileStrength::Unknown,
            Some(StrengthSource::SeccompProfile),
            Some(format!(
                "SeccompProfile {object}: {}",
                note.as_deref().unwrap_or("its strength is not known")
            )),
        ),
        None => (ProfileStrength::Unknown, None, warning),
    }
}

/// The `ProfilesEnforcing` condition's status, reason and message, for pods with a Localhost
/// container (others have none: RuntimeDefault is an allow list, and unconfined containers are
/// the `Confined` condition's business).
pub fn enforcing_condition(status: &SeccompStatusStatus) -> Option<(&'static str, &'static str, String)> {
    if !status
        .containers
        .iter()
        .any(|c| c.profile.type_ == ProfileType::Localhost)
    {
        return None;
    }
    let confined = || {
        status
            .containers
            .iter()
            .filter(|c| c.confined)
            // Not assessed is not known.
            .map(|c| (c.name.as_str(), c.strength.unwrap_or(ProfileStrength::Unknown)))
    };
    let named = |wanted: &dyn Fn(ProfileStrength) -> bool| -> Vec<String> {
        confined()
            .filter(|(_, s)| wanted(*s))
            .map(|(name, s)| format!("{name} ({})", s.as_str()))
            .collect()
    };
    let list = |names: Vec<String>| {
        let more = names.len().saturating_sub(5);
        let mut text = names.into_iter().take(5).collect::<Vec<_>>().join(", ");
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        text
    };
    let broken = named(&|s| matches!(s, ProfileStrength::Missing | ProfileStrength::Invalid));
    if !broken.is_empty() {
        return Some((
            "False",
            "ProfileUnusable",
            format!("cannot start with: {}", list(broken)),
        ));
    }
    let weak = named(&|s| {
        matches!(
            s,
            ProfileStrength::Permissive | ProfileStrength::LogOnly | ProfileStrength::Delegated
        )
    });
    if !weak.is_empty() {
        return Some((
            "False",
            "NotEnforcing",
            format!("blocks nothing by itself: {}", list(weak)),
        ));
    }
    let unknown = named(&|s| s == ProfileStrength::Unknown);
    if !unknown.is_empty() {
        return Some((
            "Unknown",
            "StrengthUnknown",
            format!("not known: {}", list(unknown)),
        ));
    }
    Some(("True", "Enforcing", String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ContainerSeccomp;

    fn container(name: &str, type_: ProfileType, localhost: Option<&str>) -> ContainerSeccomp {
        ContainerSeccomp::with_profile(name, type_, localhost)
    }

    fn file(path: &str, state: ProfileFileState, class: Option<ProfileClass>, sha: &str) -> ProfileFile {
        ProfileFile {
            path: path.into(),
            state,
            class,
            sha256: (!sha.is_empty()).then(|| sha.to_string()),
            ..ProfileFile::default()
        }
    }

    fn status(containers: Vec<ContainerSeccomp>) -> SeccompStatusStatus {
        SeccompStatusStatus {
            containers,
            ..Default::default()
        }
    }

    #[test]
    fn the_node_report_decides_then_the_catalog_then_unknown() {
        let reports: Vec<(Box<str>, ProfileFile)> = vec![(
            "app".into(),
            file(
                "a.json",
                ProfileFileState::Present,
                Some(ProfileClass::LogOnly),
                "aa",
            ),
        )];
        let catalog = ProfileCatalog::from([(
            "operator/b.json".to_string(),
            CatalogEntry::new("b".into(), "SCMP_ACT_ERRNO", [], None),
        )]);
        let mut s = status(vec![
            container("app", ProfileType::Localhost, Some("a.json")),
            container("spo", ProfileType::Localhost, Some("operator/b.json")),
            container("other", ProfileType::Localhost, Some("c.json")),
            container("rd", ProfileType::RuntimeDefault, None),
        ]);
        assess(
            &mut s,
            &ProfileFacts {
                files: FileReports::Node(&reports),
                catalog: Some(&catalog),
                index: None,
            },
        );
        let strengths: Vec<_> = s
            .containers
            .iter()
            .map(|c| (c.strength, c.strength_source))
            .collect();
        assert_eq!(
            strengths,
            [
                (Some(ProfileStrength::LogOnly), Some(StrengthSource::Node)),
                (
                    Some(ProfileStrength::AllowList),
                    Some(StrengthSource::SeccompProfile)
                ),
                (Some(ProfileStrength::Unknown), None),
                (Some(ProfileStrength::AllowList), None),
            ]
        );
        assert_eq!(s.strength, Some(ProfileStrength::LogOnly), "the weakest");
        let (status, reason, message) = enforcing_condition(&s).expect("a Localhost pod");
        assert_eq!((status, reason), ("False", "NotEnforcing"));
        assert!(message.contains("app (LogOnly)"), "{message}");
    }

    /// A pod of one container `app` using `a.json`, assessed with the node agent's report `file`.
    fn assessed_with(file: ProfileFile) -> SeccompStatusStatus {
        let reports: Vec<(Box<str>, ProfileFile)> = vec![("app".into(), file)];
        let mut s = status(vec![container("app", ProfileType::Localhost, Some("a.json"))]);
        assess(
            &mut s,
            &ProfileFacts {
                files: FileReports::Node(&reports),
                ..ProfileFacts::default()
            },
        );
        s
    }

    #[test]
    fn the_note_of_a_present_file_is_the_containers_warning() {
        let mut noted = file(
            "a.json",
            ProfileFileState::Present,
            Some(ProfileClass::Permissive),
            "aa",
        );
        noted.message = Some("1 rule names no system call and applies to none".into());
        let s = assessed_with(noted);
        let app = &s.containers[0];
        assert_eq!(app.strength, Some(ProfileStrength::Permissive));
        assert_eq!(app.warnings, ["1 rule names no system call and applies to none"]);
    }

    /// The node agent marks a file that changed or went after the container started: what it
    /// says now is not what runs, whatever its class or state.
    #[test]
    fn a_file_changed_after_the_start_says_nothing_of_the_running_container() {
        for (state, class) in [
            (ProfileFileState::Present, Some(ProfileClass::AllowList)),
            (ProfileFileState::Missing, None),
        ] {
            let mut changed = file("a.json", state, class, "aa");
            changed.changed_after_start = true;
            changed.message = Some("changed on the node at T".into());
            let s = assessed_with(changed);
            let app = &s.containers[0];
            assert_eq!(
                (app.strength, app.strength_source),
                (Some(ProfileStrength::Unknown), Some(StrengthSource::Node)),
                "{state:?}"
            );
            assert_eq!(
                app.warnings,
                ["a.json is not what the container runs: changed on the node at T"]
            );
            let (status, reason, _) = enforcing_condition(&s).expect("a Localhost pod");
            assert_eq!((status, reason), ("Unknown", "StrengthUnknown"), "{state:?}");
        }
    }

    /// The agent's record of a container that started with a `DenyList` content.
    fn started_deny_list() -> crate::api::StartedContent {
        crate::api::StartedContent {
            container_started: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
            sha256: "0123456789abcdef".into(),
            class: Some(ProfileClass::DenyList),
        }
    }

    /// Where the agent read the content the container started with, its class is what runs.
    #[test]
    fn a_file_changed_after_the_start_leaves_the_class_the_container_started_with() {
        let mut changed = file(
            "a.json",
            ProfileFileState::Present,
            Some(ProfileClass::Permissive),
            "bb",
        );
        changed.changed_after_start = true;
        changed.message = Some("changed on the node at T".into());
        changed.started_with = Some(started_deny_list());
        let s = assessed_with(changed.clone());
        let app = &s.containers[0];
        assert_eq!(
            (app.strength, app.strength_source),
            (Some(ProfileStrength::DenyList), Some(StrengthSource::Node))
        );
        assert_eq!(
            app.warnings,
            [
                "a.json is not what the container runs: changed on the node at T; the content it \
                 started with is DenyList (sha256 0123456789ab)"
            ]
        );
        // A content that was not a profile has no class: not known.
        if let Some(started) = changed.started_with.as_mut() {
            started.class = None;
        }
        let s = assessed_with(changed);
        assert_eq!(s.containers[0].strength, Some(ProfileStrength::Unknown));
    }

    /// A file the agent can no longer read or use (a FIFO or a directory in its place, grown too
    /// large) says nothing new of the running container: the content it started with, read
    /// before, is still what runs.
    #[test]
    fn a_file_unusable_since_the_start_leaves_the_class_the_container_started_with() {
        for (state, now) in [
            (ProfileFileState::Refused, "not read"),
            (ProfileFileState::Unreadable, "not read"),
            (ProfileFileState::Invalid, "not usable"),
        ] {
            let mut unusable = file("a.json", state, None, "aa");
            unusable.sha256 = None;
            unusable.message = Some("not a regular file".into());
            unusable.started_with = Some(started_deny_list());
            let s = assessed_with(unusable.clone());
            let app = &s.containers[0];
            assert_eq!(
                (app.strength, app.strength_source),
                (Some(ProfileStrength::DenyList), Some(StrengthSource::Node)),
                "{state:?}"
            );
            assert_eq!(
                app.warnings,
                [format!(
                    "profile file {now} ({state:?}): not a regular file; the content it started \
                     with is DenyList (sha256 0123456789ab)"
                )]
            );
            let (status, reason, _) = enforcing_condition(&s).expect("a Localhost pod");
            assert_eq!((status, reason), ("True", "Enforcing"), "{state:?}");
            // Never read before: not known, or for an invalid file, one the container cannot
            // start with.
            unusable.started_with = None;
            let s = assessed_with(unusable);
            let expected = match state {
                ProfileFileState::Invalid => ProfileStrength::Invalid,
                _ => ProfileStrength::Unknown,
            };
            assert_eq!(s.containers[0].strength, Some(expected), "{state:?}");
        }
    }

    #[test]
    fn the_condition_orders_unusable_weak_unknown_and_enforcing() {
        let assessed = |file_state: ProfileFileState, class: Option<ProfileClass>| {
            let s = assessed_with(file("a.json", file_state, class, "aa"));
            enforcing_condition(&s).map(|(status, reason, _)| (status, reason))
        };
        assert_eq!(
            assessed(ProfileFileState::Missing, None),
            Some(("False", "ProfileUnusable"))
        );
        assert_eq!(
            assessed(ProfileFileState::Invalid, None),
            Some(("False", "ProfileUnusable"))
        );
        assert_eq!(
            assessed(ProfileFileState::Present, Some(ProfileClass::Permissive)),
            Some(("False", "NotEnforcing"))
        );
        assert_eq!(
            assessed(ProfileFileState::Refused, None),
            Some(("Unknown", "StrengthUnknown"))
        );
        assert_eq!(
            assessed(ProfileFileState::Present, Some(ProfileClass::DenyList)),
            Some(("True", "Enforcing"))
        );
        let mut plain = status(vec![container("rd", ProfileType::RuntimeDefault, None)]);
        assess(&mut plain, &ProfileFacts::default());
        assert_eq!(
            enforcing_condition(&plain),
            None,
            "no Localhost container, no condition"
        );
    }

    #[test]
    fn a_base_profile_leaves_a_permissive_seccomp_profile_unknown() {
        let entry = CatalogEntry::new("ns/p".into(), "SCMP_ACT_ALLOW", [], Some("runc-v1.2.0"));
        assert_eq!(entry.class, None);
        assert!(entry.note.is_some_and(|n| n.contains("runc-v1.2.0")));
        let broken = CatalogEntry::new("ns/q".into(), "SCMP_ACT_SOMETHING", [], None);
        assert_eq!(broken.class, None);
    }

    #[test]
    fn different_digests_on_different_nodes_are_drift_until_they_agree() {
        let mut index = ProfileIndex::default();
        let report = |sha: &str| -> Vec<(Box<str>, ProfileFile)> {
            vec![(
                "app".into(),
                file(
                    "a.json",
                    ProfileFileState::Present,
                    Some(ProfileClass::AllowList),
                    sha,
                ),
            )]
        };
        assert_eq!(index.update("n1", &report("aa"), true), ["a.json"]);
        assert!(
            index.update("n1", &report("aa"), true).is_empty(),
            "a second pod, same digest"
        );
        assert_eq!(index.drift("a.json"), None);
        assert_eq!(index.update("n2", &report("bb"), true), ["a.json"]);
        let drift = index.drift("a.json").expect("drift");
        assert_eq!(drift, [("n1".into(), "aa".into()), ("n2".into(), "bb".into())]);
        let mut s = status(vec![container("app", ProfileType::Localhost, Some("a.json"))]);
        assess(
            &mut s,
            &ProfileFacts {
                index: Some(&index),
                ..ProfileFacts::default()
            },
        );
        assert!(
            s.containers[0]
                .warnings
                .iter()
                .any(|w| w.contains("differs between nodes")),
            "{:?}",
            s.containers[0].warnings
        );
        // The pod on n2 goes: the nodes agree again.
        assert_eq!(index.update("n2", &report("bb"), false), ["a.json"]);
        assert_eq!(index.drift("a.json"), None);
    }
}
