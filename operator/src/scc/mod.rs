//! OpenShift SecurityContextConstraints, and a simulation of their admission for manifests that
//! have not been admitted yet (`seccomp-sentinel audit -f`). Pure: no Kubernetes I/O.
//!
//! The simulation follows OpenShift's SCC admission plugin step by step: the SCCs the pod's
//! service account (or the requester) may use, ordered by priority, then restrictiveness, then
//! name; for each, the defaults it writes into the pod and every strategy's check; the first that
//! accepts the pod admits it. Kubernetes' own checks of the seccomp fields and annotations follow,
//! and the admitted pod is re-checked without mutation (OpenShift's validating pass). It is tested
//! against OpenShift's own code (`e2e/openshift/oracle`).

mod admission;
mod order;

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

pub use admission::{Admission, AdmissionRequest, Rejection, SccGrant, simulate};

/// `openshift.io/required-scc`: the only SCC a pod may be admitted by.
pub const REQUIRED_SCC_ANNOTATION: &str = "openshift.io/required-scc";
pub const UID_RANGE_ANNOTATION: &str = "openshift.io/sa.scc.uid-range";
pub const MCS_ANNOTATION: &str = "openshift.io/sa.scc.mcs";
pub const SUPPLEMENTAL_GROUPS_ANNOTATION: &str = "openshift.io/sa.scc.supplemental-groups";

/// The SCCs OpenShift creates; its admission plugin refuses every pod while one is missing.
pub const STANDARD_SCCS: [&str; 10] = [
    "anyuid",
    "hostaccess",
    "hostmount-anyuid",
    "hostnetwork",
    "hostnetwork-v2",
    "nonroot",
    "nonroot-v2",
    "privileged",
    "restricted",
    "restricted-v2",
];

/// Every volume type an SCC can name (OpenShift's `FSType` values, `*` excepted).
const ALL_VOLUME_TYPES: [&str; 30] = [
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephFS",
    "cinder",
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "image",
    "iscsi",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageOS",
    "vsphereVolume",
];

#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IdRange {
    #[serde(default)]
    pub min: i64,
    #[serde(default)]
    pub max: i64,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RunAsUserStrategy {
    #[serde(default, rename = "type")]
    pub type_: String,
    pub uid: Option<i64>,
    pub uid_range_min: Option<i64>,
    pub uid_range_max: Option<i64>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SeLinuxOptions {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub role: String,
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub level: String,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SeLinuxStrategy {
    #[serde(default, rename = "type")]
    pub type_: String,
    pub se_linux_options: Option<SeLinuxOptions>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GroupStrategy {
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ranges: Vec<IdRange>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct FlexVolume {
    #[serde(default)]
    pub driver: String,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SccMetadata {
    #[serde(default)]
    pub name: String,
}

/// One SecurityContextConstraints object, with OpenShift's defaults applied (see [`Scc::parse`]).
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Scc {
    #[serde(default)]
    pub metadata: SccMetadata,
    pub priority: Option<i32>,
    #[serde(default)]
    pub allow_privileged_container: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub default_add_capabilities: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub required_drop_capabilities: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub allowed_capabilities: Vec<String>,
    #[serde(default)]
    pub allow_host_dir_volume_plugin: bool,
    /// `None` (absent) and `Some([])` default differently.
    pub volumes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub allowed_flex_volumes: Vec<FlexVolume>,
    #[serde(default)]
    pub allow_host_network: bool,
    #[serde(default)]
    pub allow_host_ports: bool,
    #[serde(default, rename = "allowHostPID")]
    pub allow_host_pid: bool,
    #[serde(default, rename = "allowHostIPC")]
    pub allow_host_ipc: bool,
    pub default_allow_privilege_escalation: Option<bool>,
    pub allow_privilege_escalation: Option<bool>,
    #[serde(default)]
    pub se_linux_context: SeLinuxStrategy,
    #[serde(default)]
    pub run_as_user: RunAsUserStrategy,
    #[serde(default)]
    pub supplemental_groups: GroupStrategy,
    #[serde(default)]
    pub fs_group: GroupStrategy,
    #[serde(default)]
    pub read_only_root_filesystem: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub users: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub groups: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub seccomp_profiles: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub allowed_unsafe_sysctls: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub forbidden_sysctls: Vec<String>,
    #[serde(default)]
    pub user_namespace_level: String,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl Scc {
    /// Reads an SCC object and applies the defaults OpenShift's API server stores it with (group
    /// strategies RunAsAny, the volume list from `allowHostDirVolumePlugin`, privilege escalation
    /// allowed).
    pub fn parse(object: &Value) -> Result<Scc, String> {
        let mut scc: Scc = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
        if scc.metadata.name.is_empty() {
            return Err("an SCC without metadata.name".into());
        }
        scc.apply_defaults();
        Ok(scc)
    }

    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    fn apply_defaults(&mut self) {
        if self.fs_group.type_.is_empty() {
            self.fs_group.type_ = "RunAsAny".into();
        }
        if self.supplemental_groups.type_.is_empty() {
            self.supplemental_groups.type_ = "RunAsAny".into();
        }
        let mut volumes: BTreeSet<String> = match &self.volumes {
            None => BTreeSet::from(["*".to_string()]),
            Some(v) if v.is_empty() && self.allow_host_dir_volume_plugin => {
                BTreeSet::from(["hostPath".to_string()])
            }
            Some(v) if v.is_empty() => BTreeSet::from(["none".to_string()]),
            Some(v) => v.iter().cloned().collect(),
        };
        if self.allow_host_dir_volume_plugin {
            if !volumes.contains("*") {
                volumes.insert("hostPath".into());
            }
        } else {
            let all = volumes.remove("*");
            volumes.remove("hostPath");
            if all {
                volumes.extend(
                    ALL_VOLUME_TYPES
                        .iter()
                        .filter(|v| **v != "hostPath")
                        .map(|v| v.to_string()),
                );
            }
        }
        self.volumes = Some(volumes.into_iter().collect());
        if self.allow_privilege_escalation.is_none() {
            self.allow_privilege_escalation = Some(true);
        }
    }
}

/// What OpenShift allocated to a namespace (its `openshift.io/sa.scc.*` annotations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceAllocation {
    pub name: String,
    pub annotations: BTreeMap<String, String>,
}

/// The allocation the audit assumes for namespaces it has no object for: a block OpenShift
/// could have given (OpenShift allocates 10,000 IDs from 1,000,000,000 upwards).
pub const DEFAULT_UID_RANGE: &str = "1000680000/10000";
pub const DEFAULT_MCS: &str = "s0:c26,c15";

impl NamespaceAllocation {
    pub fn from_object(object: &Value) -> Option<NamespaceAllocation> {
        let name = object.pointer("/metadata/name")?.as_str()?.to_string();
        let annotations = object
            .pointer("/metadata/annotations")
            .cloned()
            .and_then(|a| serde_json::from_value(a).ok())
            .unwrap_or_default();
        Some(NamespaceAllocation { name, annotations })
    }

    /// The allocation of `name` as the simulation uses it: what `written` (a Namespace object of the
    /// input) says, and the assumed blocks for what it does not say (OpenShift writes them when it
    /// creates the namespace, so manifests rarely carry them).
    pub fn effective(name: &str, written: Option<&NamespaceAllocation>) -> NamespaceAllocation {
        let mut allocation = NamespaceAllocation::assumed(name);
        if let Some(written) = written {
            allocation.annotations.extend(written.annotations.clone());
        }
        allocation
    }

    /// A namespace as OpenShift would have annotated it, with the documented default blocks.
    pub fn assumed(name: &str) -> NamespaceAllocation {
        NamespaceAllocation {
            name: name.to_string(),
            annotations: BTreeMap::from([
                (UID_RANGE_ANNOTATION.to_string(), DEFAULT_UID_RANGE.to_string()),
                (MCS_ANNOTATION.to_string(), DEFAULT_MCS.to_string()),
                (
                    SUPPLEMENTAL_GROUPS_ANNOTATION.to_string(),
                    DEFAULT_UID_RANGE.to_string(),
                ),
            ]),
        }
    }
}

/// An inclusive block of IDs, written `<start>/<size>` or `<start>-<end>`.
fn parse_block(text: &str) -> Result<(i64, i64), String> {
    let number = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map(i64::from)
            .map_err(|_| format!("{s:?} is not an ID"))
    };
    if let Some((start, size)) = text.split_once('/') {
        let (start, size) = (number(start)?, number(size)?);
        if size == 0 {
            return Err(format!("block {text:?} is empty"));
        }
        let end = start + size - 1;
        if end > i64::from(u32::MAX) {
            return Err(format!("block {text:?} ends past the largest ID"));
        }
        return Ok((start, end));
    }
    if let Some((start, end)) = text.split_once('-') {
        let (start, end) = (number(start)?, number(end)?);
        if end < start {
            return Err(format!("block {text:?} ends before it starts"));
        }
        return Ok((start, end));
    }
    Err(format!(
        "block {text:?} is neither <start>/<size> nor <start>-<end>"
    ))
}

/// The OpenShift minor version whose admission is simulated (4.11 up to the newest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpenShiftVersion(pub u32);

impl OpenShiftVersion {
    pub const NEWEST: OpenShiftVersion = OpenShiftVersion(21);
    pub const OLDEST: OpenShiftVersion = OpenShiftVersion(11);

    pub fn parse(text: &str) -> Result<OpenShiftVersion, String> {
        let minor = text
            .trim_start_matches('v')
            .strip_prefix("4.")
            .and_then(|m| m.split('.').next())
            .and_then(|m| m.parse::<u32>().ok())
            .ok_or_else(|| format!("{text:?} is not an OpenShift version 4.X"))?;
        if minor < Self::OLDEST.0 {
            return Err(format!(
                "OpenShift {text} is older than 4.11, the first with the -v2 SCCs and seccomp defaulting"
            ));
        }
        Ok(OpenShiftVersion(minor))
    }

    /// OpenShift 4.13 and newer convert seccomp annotations into fields; 4.11 and 4.12 write only
    /// the pod annotation and leave container annotations alone.
    pub fn writes_fields(self) -> bool {
        self.0 >= 13
    }

    /// The API servers of 4.11 to 4.13 (Kubernetes 1.24 to 1.26) still copy seccomp annotations
    /// into missing fields and fields into missing annotations.
    pub fn syncs_annotations(self) -> bool {
        self.0 <= 13
    }

    /// The Kubernetes minor version of this OpenShift release (4.11 is 1.24).
    pub fn kubernetes_minor(self) -> u32 {
        self.0 + 13
    }
}

#[cfg(test)]
mod tests;
