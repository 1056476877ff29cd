//! Configuration of `seccomp-sentinel run`.

use std::{
    collections::{BTreeMap, BTreeSet},
    num::NonZeroU32,
    str::FromStr,
};

use clap::builder::NonEmptyStringValueParser;

use crate::lean::node::NodeWire;

use crate::{api::KubeletSeccompDefault, engine::NodeFacts};

/// Flags (and environment variables) of the controller.
#[derive(clap::Args, Debug, Clone)]
pub struct ControllerConfig {
    /// Namespaces to watch, comma-separated; all namespaces when empty.
    #[arg(long, env = "SENTINEL_NAMESPACES", value_delimiter = ',', value_parser = parse_namespace)]
    pub namespaces: Vec<String>,

    /// The kubelets' `seccompDefault`, where the operator cannot see it: true, false or unknown
    /// (treated as false, and said so in every status it affects).
    #[arg(long, env = "SENTINEL_KUBELET_SECCOMP_DEFAULT", default_value = "unknown", value_parser = parse_seccomp_default)]
    pub kubelet_seccomp_default: KubeletSeccompDefault,

    /// Nodes whose kubelets run with `seccompDefault: true`, as a label selector
    /// (`key=value`, `key!=value`, `key`, `!key`, comma-separated, all must match). Other nodes get
    /// --kubelet-seccomp-default.
    #[arg(long, env = "SENTINEL_KUBELET_SECCOMP_DEFAULT_NODES")]
    pub kubelet_seccomp_default_nodes: Option<NodeSelector>,

    /// Upper bound on the controller's writes per second (SeccompStatus objects and statuses).
    #[arg(long, env = "SENTINEL_MAX_WRITES_PER_SECOND", default_value = "50")]
    pub max_writes_per_second: NonZeroU32,

    /// Writes allowed in a burst above the steady rate.
    #[arg(long, env = "SENTINEL_WRITE_BURST", default_value = "100")]
    pub write_burst: NonZeroU32,

    /// Evictions per minute by all SeccompPolicies together, on top of each policy's own
    /// `maxPerMinute` (a policy per team would otherwise multiply the cluster's rate).
    #[arg(long, env = "SENTINEL_MAX_EVICTIONS_PER_MINUTE", default_value = "10")]
    pub max_evictions_per_minute: NonZeroU32,

    /// Pods reconciled at the same time; by default a tenth of --max-writes-per-second, at least 16
    /// and at most 256 (enough writes in flight to keep the write limit while the API server
    /// takes 100 ms a write).
    #[arg(long, env = "SENTINEL_CONCURRENCY")]
    pub concurrency: Option<u16>,

    /// Only SeccompPolicies with these labels (a label selector, as for kubectl -l); all when unset.
    #[arg(long, env = "SENTINEL_POLICY_SELECTOR")]
    pub policy_selector: Option<String>,

    /// Run the node agent: the operator creates (and owns) its DaemonSet with this image in its
    /// own namespace. Unset: RELATED_IMAGE_AGENT when set (OLM), else no agent, and a DaemonSet it
    /// created before is removed. Empty (`--agent-image=`, or `SENTINEL_AGENT_IMAGE` set empty in
    /// an OLM Subscription's config): no agent, RELATED_IMAGE_AGENT notwithstanding.
    #[arg(long, env = "SENTINEL_AGENT_IMAGE")]
    pub agent_image: Option<String>,

    /// Service account of the node agent's pods (with the agent's ClusterRole).
    #[arg(
        long,
        env = "SENTINEL_AGENT_SERVICE_ACCOUNT",
        default_value = "seccomp-sentinel-agent",
        value_parser = NonEmptyStringValueParser::new()
    )]
    pub agent_service_account: String,

    /// The operator's Deployment, owner of the agent DaemonSet.
    #[arg(long, env = "SENTINEL_OWNER_DEPLOYMENT", default_value = "seccomp-sentinel", value_parser = NonEmptyStringValueParser::new())]
    pub owner_deployment: String,

    /// The operator's own namespace, whose pods are never evicted (set from the downward API).
    #[arg(long, env = "POD_NAMESPACE", value_parser = NonEmptyStringValueParser::new())]
    pub operator_namespace: Option<String>,

    /// This replica's name, recorded in Events (set from the downward API).
    #[arg(long, env = "POD_NAME", value_parser = NonEmptyStringValueParser::new())]
    pub instance: Option<String>,

    /// Whether a pod's `openshift.io/scc` annotation may decide anything (SCC attribution,
    /// SCC exemptions): `auto` trusts it on OpenShift only, where SCC admission writes it; on
    /// other clusters anyone who creates a pod can set it.
    #[arg(long, env = "SENTINEL_TRUST_SCC_ANNOTATION", default_value = "auto", value_parser = parse_trust)]
    pub trust_scc_annotation: TrustScc,

    /// Objects per page of the initial lists where the API server cannot stream them (its
    /// WatchList feature off, the default of Kubernetes 1.33); smaller pages: a lower memory peak.
    #[arg(long, env = "SENTINEL_LIST_PAGE_SIZE", default_value = "250")]
    pub list_page_size: u32,
}

/// See [`ControllerConfig::trust_scc_annotation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TrustScc {
    #[default]
    Auto,
    True,
    False,
}

impl TrustScc {
    /// Whether pods' `openshift.io/scc` may decide anything: `auto` trusts it on OpenShift only,
    /// where SCC admission writes it on every pod it admits. `on_openshift` (whether the cluster
    /// serves the SCC and ClusterVersion APIs) is awaited for `auto` alone.
    pub async fn decide<E>(self, on_openshift: impl Future<Output = Result<bool, E>>) -> Result<bool, E> {
        match self {
            TrustScc::True => Ok(true),
            TrustScc::False => Ok(false),
            TrustScc::Auto => on_openshift.await,
        }
    }
}

pub(crate) fn parse_trust(value: &str) -> Result<TrustScc, String> {
    match value.to_ascii_lowercase().as_str() {
        "auto" => Ok(TrustScc::Auto),
        "true" => Ok(TrustScc::True),
        "false" => Ok(TrustScc::False),
        other => Err(format!("{other:?} is not one of auto, true, false")),
    }
}

impl ControllerConfig {
    /// Pods reconciled at the same time: --concurrency, or enough writes in flight to keep up
    /// --max-writes-per-second while an API server under load takes 100 ms per write (at 300
    /// writes/s, 16 in flight reach only 160/s then), never fewer than 16.
    pub fn workers(&self) -> u16 {
        let by_rate = self.max_writes_per_second.get().div_ceil(10);
        self.concurrency
            .unwrap_or_else(|| u16::try_from(by_rate).unwrap_or(u16::MAX).clamp(16, 256))
            .max(1)
    }

    /// Under OLM the agent's image comes as `RELATED_IMAGE_AGENT` (the variable disconnected
    /// mirroring rewrites); an explicit `--agent-image` still wins.
    pub fn apply_related_images(&mut self, related_image_agent: Option<String>) {
        match self.agent_image.as_deref().map(str::trim) {
            // Turned off on purpose. Kept as given, it was a DaemonSet with no image, which the
            // API server refused on every try, and OLM's image was not used either.
            Some("") => self.agent_image = None,
            Some(_) => {}
            None => self.agent_image = related_image_agent.filter(|i| !i.trim().is_empty()),
        }
    }

    /// The facts the operator holds about a node: from the Node object (the node agent's report
    /// included), and `seccompDefault` from configuration where the agent has not reported it.
    pub fn node_facts(&self, node: &NodeWire) -> NodeFacts {
        node.facts(|labels| match &self.kubelet_seccomp_default_nodes {
            Some(selector) if selector.matches(labels) => KubeletSeccompDefault::True,
            _ => self.kubelet_seccomp_default,
        })
    }

    /// What to assume for pods not (yet) on a known node.
    pub fn unknown_node_seccomp_default(&self) -> KubeletSeccompDefault {
        if self.kubelet_seccomp_default_nodes.is_some() {
            KubeletSeccompDefault::Unknown
        } else {
            self.kubelet_seccomp_default
        }
    }

    /// The namespaces to watch, each once (empty entries, as from `SENTINEL_NAMESPACES=`, do not
    /// count); none: the whole cluster.
    pub fn namespace_list(&self) -> BTreeSet<&str> {
        self.namespaces
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .collect()
    }

    /// The one namespace to watch, when exactly one is configured (the Namespace object is then
    /// watched alone).
    pub fn watched_namespace(&self) -> Option<&str> {
        let namespaces = self.namespace_list();
        match namespaces.len() {
            1 => namespaces.first().copied(),
            _ => None,
        }
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            namespaces: Vec::new(),
            kubelet_seccomp_default: KubeletSeccompDefault::Unknown,
            kubelet_seccomp_default_nodes: None,
            max_writes_per_second: NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN),
            write_burst: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            concurrency: None,
            max_evictions_per_minute: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            policy_selector: None,
            agent_image: None,
            agent_service_account: "seccomp-sentinel-agent".into(),
            owner_deployment: "seccomp-sentinel".into(),
            operator_namespace: None,
            instance: None,
            trust_scc_annotation: TrustScc::Auto,
            list_page_size: 250,
        }
    }
}

fn parse_seccomp_default(value: &str) -> Result<KubeletSeccompDefault, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" => Ok(KubeletSeccompDefault::True),
        "false" | "off" => Ok(KubeletSeccompDefault::False),
        "unknown" => Ok(KubeletSeccompDefault::Unknown),
        other => Err(format!("{other:?} is not one of true, false, unknown")),
    }
}

/// An equality-based label selector, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSelector {
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    DoesNotExist(String),
}

impl NodeSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Equals(k, v) => labels.get(k) == Some(v),
            Term::NotEquals(k, v) => labels.get(k) != Some(v),
            Term::Exists(k) => labels.contains_key(k),
            Term::DoesNotExist(k) => !labels.contains_key(k),
        })
    }
}

impl FromStr for NodeSelector {
    type Err = String;

    /// Keys and values are checked as Kubernetes checks labels: a term that is not one of the four
    /// forms (`zone in (a,b)`, `size>3`, `a=b=c`) would otherwise read as a key or value no label
    /// can have, and the selector would match no node without a word.
    fn from_str(text: &str) -> Result<Self, String> {
        const FORMS: &str = "terms are key=value, key!=value, key or !key, comma-separated";
        let terms = text
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|text| {
                let term = if let Some((k, v)) = text.split_once("!=") {
                    Term::NotEquals(k.trim().into(), v.trim().into())
                } else if let Some((k, v)) = text.split_once("==").or_else(|| text.split_once('=')) {
                    Term::Equals(k.trim().into(), v.trim().into())
                } else if let Some(k) = text.strip_prefix('!') {
                    Term::DoesNotExist(k.trim().into())
                } else {
                    Term::Exists(text.into())
                };
                let (key, value) = match &term {
                    Term::Equals(k, v) | Term::NotEquals(k, v) => (k, Some(v)),
                    Term::Exists(k) | Term::DoesNotExist(k) => (k, None),
                };
                if !crate::policy::label_key_ok(key) {
                    Err(format!(
                        "{text:?}: {key:?} is not a label key ({}); {FORMS}",
                        crate::api::LABEL_KEY_MESSAGE
                    ))
                } else if let Some(value) = value.filter(|v| !crate::policy::label_value_ok(v)) {
                    Err(format!(
                        "{text:?}: {value:?} is not a label value ({}); {FORMS}",
                        crate::api::LABEL_VALUE_MESSAGE
                    ))
                } else {
                    Ok(term)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if terms.is_empty() {
            return Err(format!("empty node selector: {FORMS}"));
        }
        Ok(NodeSelector { terms })
    }
}

/// One entry of `--namespaces`: a namespace's name, or nothing (`SENTINEL_NAMESPACES=`, a
/// trailing comma). A name no namespace can have would be watched without a word, and nothing
/// found in it.
pub(crate) fn parse_namespace(value: &str) -> Result<String, String> {
    let name = value.trim();
    if name.is_empty() || crate::policy::dns_label(name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{name:?} is not a namespace name: at most 63 lowercase letters, digits and '-', \
             starting and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn workers_keep_up_with_the_write_limit() {
        let with = |rate: u32, concurrency: Option<u16>| ControllerConfig {
            max_writes_per_second: NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN),
            concurrency,
            ..ControllerConfig::default()
        };
        assert_eq!(with(50, None).workers(), 16);
        assert_eq!(with(300, None).workers(), 30);
        assert_eq!(with(1_000_000, None).workers(), 256);
        assert_eq!(with(300, Some(8)).workers(), 8);
        assert_eq!(with(300, Some(0)).workers(), 1);
    }

    #[test]
    fn the_agent_image_comes_from_related_image_agent_unless_given() {
        let mut config = ControllerConfig::default();
        config.apply_related_images(Some("registry.example/agent@sha256:ab".into()));
        assert_eq!(
            config.agent_image.as_deref(),
            Some("registry.example/agent@sha256:ab")
        );
        config.apply_related_images(Some("registry.example/other:1".into()));
        assert_eq!(
            config.agent_image.as_deref(),
            Some("registry.example/agent@sha256:ab")
        );
        let mut empty = ControllerConfig::default();
        empty.apply_related_images(Some(" ".into()));
        assert_eq!(empty.agent_image, None);
        // An empty --agent-image turns the agent off, under OLM too.
        let mut off = ControllerConfig {
            agent_image: Some(String::new()),
            ..ControllerConfig::default()
        };
        off.apply_related_images(Some("registry.example/agent@sha256:ab".into()));
        assert_eq!(off.agent_image, None);
    }

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn node_selectors() {
        let selector: NodeSelector = "pool=hardened, kubernetes.io/os!=windows,seccomp,!legacy"
            .parse()
            .expect("valid");
        assert!(selector.matches(&labels(&[("pool", "hardened"), ("seccomp", "")])));
        assert!(!selector.matches(&labels(&[("pool", "hardened")])));
        assert!(!selector.matches(&labels(&[("pool", "hardened"), ("seccomp", ""), ("legacy", "1")])));
        assert!(!selector.matches(&labels(&[
            ("pool", "hardened"),
            ("seccomp", ""),
            ("kubernetes.io/os", "windows")
        ])));
        assert!("".parse::<NodeSelector>().is_err());
        assert!("=x".parse::<NodeSelector>().is_err());
    }

    /// These read as keys or values no label can have, and matched no node without a word.
    #[test]
    fn node_selectors_other_than_the_four_forms_are_refused() {
        for text in [
            "zone in (a,b)",
            "zone notin (a)",
            "size>3",
            "a=b=c",
            "pool=hard ened",
            "!!legacy",
            "-pool=x",
            "pool=-x",
            "example.com/",
        ] {
            let refused = text.parse::<NodeSelector>().err();
            assert!(
                refused
                    .as_deref()
                    .is_some_and(|e| e.contains("key=value, key!=value")),
                "{text}: {refused:?}"
            );
        }
        assert!(
            "pool=".parse::<NodeSelector>().is_ok(),
            "an empty value is a value"
        );
        assert!("node-role.kubernetes.io/worker".parse::<NodeSelector>().is_ok());
    }

    #[test]
    fn namespaces_are_names_or_nothing() {
        assert_eq!(parse_namespace(" team-a ").as_deref(), Ok("team-a"));
        assert_eq!(parse_namespace("").as_deref(), Ok(""));
        for name in ["Team-a", "team_a", "-a", "a-", &"a".repeat(64), "a.b"] {
            let refused = parse_namespace(name).err();
            assert!(
                refused
                    .as_deref()
                    .is_some_and(|e| e.contains("is not a namespace name")),
                "{name}: {refused:?}"
            );
        }
    }

    #[test]
    fn node_facts_from_nodes_and_configuration() {
        let node: NodeWire = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "n", "labels": { "pool": "hardened", "kubernetes.io/os": "linux" } },
            "status": { "nodeInfo": {
                "kubeletVersion": "v1.24.9", "operatingSystem": "linux", "architecture": "amd64",
                "bootID": "", "containerRuntimeVersion": "containerd://1.7.0", "kernelVersion": "",
                "kubeProxyVersion": "", "machineID": "", "osImage": "", "systemUUID": ""
            }}
        }))
        .expect("node");
        let mut config = ControllerConfig::default();
        assert_eq!(
            config.node_facts(&node),
            NodeFacts {
                os: crate::engine::NodeOs::Linux,
                kubelet_minor: Some(24),
                seccomp_default: KubeletSeccompDefault::Unknown
            }
        );
        config.kubelet_seccomp_default = KubeletSeccompDefault::False;
        config.kubelet_seccomp_default_nodes = Some("pool=hardened".parse().expect("selector"));
        assert_eq!(
            config.node_facts(&node).seccomp_default,
            KubeletSeccompDefault::True
        );
        assert_eq!(
            config.unknown_node_seccomp_default(),
            KubeletSeccompDefault::Unknown
        );
        // The kubelet's report of its OS decides: a label saying otherwise (set by hand) does not.
        let mut mislabelled = node.clone();
        mislabelled.metadata.meta.labels = labels(&[("kubernetes.io/os", "windows")]);
        let facts = config.node_facts(&mislabelled);
        assert_eq!(facts.os, crate::engine::NodeOs::Linux);
        assert_eq!(facts.seccomp_default, KubeletSeccompDefault::False);
        let mut windows = mislabelled.clone();
        if let Some(info) = windows.status.as_mut().and_then(|s| s.node_info.as_mut()) {
            info.operating_system = "windows".into();
        }
        assert_eq!(config.node_facts(&windows).os, crate::engine::NodeOs::Windows);
        // Before the kubelet reports, the label stands in; a Node that says neither is not known.
        let mut unreported = mislabelled.clone();
        unreported.status = None;
        assert_eq!(config.node_facts(&unreported).os, crate::engine::NodeOs::Windows);
        let mut bare = unreported.clone();
        bare.metadata.meta.labels = labels(&[]);
        assert_eq!(config.node_facts(&bare).os, crate::engine::NodeOs::Unknown);
        // A node agent's report wins over configuration; the same annotation from anyone else
        // does not count.
        let annotated_with = |manager: &str, value: &str| -> NodeWire {
            serde_json::from_value(serde_json::json!({
                "metadata": { "name": "n", "labels": { "pool": "hardened" },
                    "annotations": { crate::agent::KUBELET_DEFAULT_ANNOTATION: value },
                    "managedFields": [{ "manager": manager, "operation": "Apply",
                        "fieldsV1": { "f:metadata": { "f:annotations": { format!("f:{}", crate::agent::KUBELET_DEFAULT_ANNOTATION): {} } } } }] }
            }))
            .expect("node")
        };
        let annotated = |manager: &str| annotated_with(manager, "false");
        assert_eq!(
            config
                .node_facts(&annotated(crate::agent::AGENT_MANAGER))
                .seccomp_default,
            KubeletSeccompDefault::False
        );
        // The agent cannot tell what the kubelet started with: not what the pool is said to have.
        assert_eq!(
            config
                .node_facts(&annotated_with(crate::agent::AGENT_MANAGER, "unknown"))
                .seccomp_default,
            KubeletSeccompDefault::Unknown
        );
        assert_eq!(
            config
                .node_facts(&annotated_with(crate::agent::AGENT_MANAGER, "maybe"))
                .seccomp_default,
            KubeletSeccompDefault::True,
            "a value the agent never writes: the configuration decides"
        );
        assert_eq!(
            config.node_facts(&annotated("kubectl-annotate")).seccomp_default,
            KubeletSeccompDefault::True,
            "not the agent's: the configuration (the hardened pool) decides"
        );
    }

    #[test]
    fn namespace_lists() {
        let config = |namespaces: &[&str]| ControllerConfig {
            namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        };
        assert!(config(&[]).namespace_list().is_empty() && config(&[""]).namespace_list().is_empty());
        assert_eq!(config(&[""]).watched_namespace(), None);
        assert_eq!(config(&["a", ""]).watched_namespace(), Some("a"));
        assert_eq!(
            config(&["b", "a", "b"]).namespace_list(),
            BTreeSet::from(["a", "b"])
        );
        assert_eq!(config(&["a", "a"]).watched_namespace(), Some("a"));
        assert_eq!(config(&["a", "b"]).watched_namespace(), None);
    }

    #[test]
    fn seccomp_default_values() {
        assert_eq!(parse_seccomp_default("On"), Ok(KubeletSeccompDefault::True));
        assert_eq!(parse_seccomp_default("false"), Ok(KubeletSeccompDefault::False));
        assert!(parse_seccomp_default("maybe").is_err());
    }
}
