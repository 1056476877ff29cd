//! Where a workload's replacement pod may start. An eviction is safe only if the replacement is
//! confined wherever the scheduler puts it, and a template that sets no profile is confined only
//! on nodes whose kubelet runs with `seccompDefault`. Pure: nodes and templates are arguments.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{
    api::KubeletSeccompDefault,
    engine::{NodeFacts, NodeOs},
};

/// What decides whether the scheduler may start a new pod on a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodePlacement {
    pub labels: BTreeMap<String, String>,
    /// `spec.unschedulable` (cordoned): no new pod of a workload starts there.
    pub cordoned: bool,
    /// Its `NoSchedule` and `NoExecute` taints: only pods tolerating each start there.
    pub taints: Vec<Taint>,
}

/// A node's taint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

/// A pod's toleration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Toleration {
    pub key: String,
    pub operator: String,
    pub value: String,
    pub effect: String,
}

impl Toleration {
    /// Matched as the scheduler matches them: an empty effect or key matches any, `Exists` any
    /// value, `Equal` (the default) the same value. An operator this code does not know (a newer
    /// release's) is taken to tolerate: a template then reaches more nodes, never fewer.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        (self.effect.is_empty() || self.effect == taint.effect)
            && (self.key.is_empty() || self.key == taint.key)
            && match self.operator.as_str() {
                "" | "Equal" => self.value == taint.value,
                _ => true,
            }
    }
}

/// One term of `requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeSelectorTerm {
    pub match_expressions: Vec<NodeSelectorRequirement>,
    pub match_fields: Vec<NodeSelectorRequirement>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NodeSelectorRequirement {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
}

impl NodeSelectorRequirement {
    /// Whether `value` (the label's or field's, if the node has it) satisfies the requirement, as
    /// the scheduler reads it. An operator this code does not know is taken to match.
    fn matches(&self, value: Option<&str>) -> bool {
        let number = |v: &str| v.parse::<i64>().ok();
        let bound = || match self.values.as_slice() {
            [only] => number(only),
            _ => None,
        };
        match self.operator.as_str() {
            "In" => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            "NotIn" => value.is_none_or(|v| self.values.iter().all(|x| x != v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            "Gt" => matches!((value.and_then(number), bound()), (Some(v), Some(b)) if v > b),
            "Lt" => matches!((value.and_then(number), bound()), (Some(v), Some(b)) if v < b),
            _ => true,
        }
    }
}

impl NodeSelectorTerm {
    /// All its requirements hold; a term that requires nothing matches no node. Fields other than
    /// `metadata.name` are not known to the scheduler: such a requirement is taken to match.
    fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        (!self.match_expressions.is_empty() || !self.match_fields.is_empty())
            && self
                .match_expressions
                .iter()
                .all(|r| r.matches(labels.get(&r.key).map(String::as_str)))
            && self
                .match_fields
                .iter()
                .all(|r| r.key != "metadata.name" || r.matches(Some(name)))
    }
}

/// What of a pod template narrows the nodes its pods may start on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplatePlacement {
    /// `spec.nodeName`: the pods start there and nowhere else.
    pub node_name: Option<String>,
    /// `spec.nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// The required node affinity's terms (one must match), if it has any.
    pub required_terms: Option<Vec<NodeSelectorTerm>>,
    /// `spec.tolerations`.
    pub tolerations: Vec<Toleration>,
}

impl TemplatePlacement {
    /// Whether a new pod of the template may start on a node: the filters of the scheduler that
    /// read the node's labels, name, cordon and taints. Where in doubt, it may: a template is
    /// taken to reach more nodes than it does, never fewer.
    pub fn may_start_on(&self, name: &str, node: &NodeFacts, placement: &NodePlacement) -> bool {
        if let Some(pinned) = &self.node_name {
            return pinned == name;
        }
        node.os != NodeOs::Windows
            && !placement.cordoned
            && placement
                .taints
                .iter()
                .all(|taint| self.tolerations.iter().any(|t| t.tolerates(taint)))
            && self
                .node_selector
                .iter()
                .all(|(key, value)| placement.labels.get(key) == Some(value))
            && self
                .required_terms
                .as_ref()
                .is_none_or(|terms| terms.iter().any(|t| t.matches(name, &placement.labels)))
    }
}

/// The first node (by name) where a replacement of the template may start and whose kubelet does
/// not confine pods that ask for nothing, if any.
pub fn node_without_seccomp_default<'a>(
    nodes: impl IntoIterator<Item = (&'a str, &'a NodeFacts, &'a NodePlacement)>,
    template: &TemplatePlacement,
) -> Option<(&'a str, &'a NodeFacts)> {
    nodes
        .into_iter()
        .filter(|(name, facts, placement)| {
            facts.seccomp_default != KubeletSeccompDefault::True
                && template.may_start_on(name, facts, placement)
        })
        .min_by_key(|(name, _, _)| *name)
        .map(|(name, facts, _)| (name, facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(default: KubeletSeccompDefault) -> NodeFacts {
        NodeFacts {
            seccomp_default: default,
            ..NodeFacts::default()
        }
    }

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect: effect.into(),
        }
    }

    fn toleration(key: &str, operator: &str, value: &str, effect: &str) -> Toleration {
        Toleration {
            key: key.into(),
            operator: operator.into(),
            value: value.into(),
            effect: effect.into(),
        }
    }

    #[test]
    fn tolerations_match_taints_as_the_scheduler_matches_them() {
        let db = taint("dedicated", "db", "NoSchedule");
        let cases = [
            (toleration("dedicated", "Equal", "db", "NoSchedule"), true),
            (toleration("dedicated", "", "db", ""), true),
            (toleration("dedicated", "Equal", "web", "NoSchedule"), false),
            (toleration("dedicated", "Exists", "", "NoSchedule"), true),
            (toleration("dedicated", "Exists", "", "NoExecute"), false),
            (toleration("other", "Exists", "", ""), false),
            // An empty key with Exists tolerates every taint.
            (toleration("", "Exists", "", ""), true),
            // An operator of a later release: taken to tolerate.
            (toleration("dedicated", "Gt", "1", ""), true),
        ];
        for (t, expected) in cases {
            assert_eq!(t.tolerates(&db), expected, "{t:?}");
        }
    }

    fn requirement(key: &str, operator: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn required_node_affinity_is_read_as_the_scheduler_reads_it() {
        let labels = BTreeMap::from([
            ("zone".to_string(), "a".to_string()),
            ("cores".to_string(), "8".to_string()),
        ]);
        let expressions = |r: Vec<NodeSelectorRequirement>| NodeSelectorTerm {
            match_expressions: r,
            match_fields: Vec::new(),
        };
        let cases = [
            (expressions(vec![requirement("zone", "In", &["a", "b"])]), true),
            (expressions(vec![requirement("zone", "In", &["b"])]), false),
            (expressions(vec![requirement("pool", "In", &["b"])]), false),
            (expressions(vec![requirement("zone", "NotIn", &["b"])]), true),
            (expressions(vec![requirement("pool", "NotIn", &["b"])]), true),
            (expressions(vec![requirement("zone", "Exists", &[])]), true),
            (expressions(vec![requirement("zone", "DoesNotExist", &[])]), false),
            (expressions(vec![requirement("cores", "Gt", &["4"])]), true),
            (expressions(vec![requirement("cores", "Lt", &["4"])]), false),
            (expressions(vec![requirement("zone", "Gt", &["4"])]), false),
            (expressions(vec![requirement("zone", "Unknown", &[])]), true),
            // Every requirement of a term must hold.
            (
                expressions(vec![
                    requirement("zone", "In", &["a"]),
                    requirement("cores", "Lt", &["4"]),
                ]),
                false,
            ),
            // A term that requires nothing matches no node.
            (expressions(Vec::new()), false),
            (
                NodeSelectorTerm {
                    match_expressions: Vec::new(),
                    match_fields: vec![requirement("metadata.name", "In", &["n1"])],
                },
                true,
            ),
            (
                NodeSelectorTerm {
                    match_expressions: Vec::new(),
                    match_fields: vec![requirement("metadata.name", "NotIn", &["n1"])],
                },
                false,
            ),
        ];
        for (term, expected) in cases {
            assert_eq!(term.matches("n1", &labels), expected, "{term:?}");
        }
        // One of the terms must match.
        let template = TemplatePlacement {
            required_terms: Some(vec![
                expressions(vec![requirement("zone", "In", &["b"])]),
                expressions(vec![requirement("zone", "In", &["a"])]),
            ]),
            ..TemplatePlacement::default()
        };
        let placement = NodePlacement {
            labels,
            ..NodePlacement::default()
        };
        assert!(template.may_start_on("n1", &NodeFacts::default(), &placement));
        let elsewhere = TemplatePlacement {
            required_terms: Some(vec![expressions(vec![requirement("zone", "In", &["b"])])]),
            ..TemplatePlacement::default()
        };
        assert!(!elsewhere.may_start_on("n1", &NodeFacts::default(), &placement));
    }

    #[test]
    fn the_replacement_may_start_on_any_node_the_template_reaches() {
        use KubeletSeccompDefault::{False, True, Unknown};
        let pool = |pool: &str| NodePlacement {
            labels: BTreeMap::from([("pool".to_string(), pool.to_string())]),
            ..NodePlacement::default()
        };
        let hardened = node(True);
        let plain = node(False);
        let unknown = node(Unknown);
        let windows = NodeFacts {
            os: NodeOs::Windows,
            ..node(False)
        };
        let (app, batch) = (pool("app"), pool("batch"));
        let cordoned = NodePlacement {
            cordoned: true,
            ..pool("app")
        };
        let tainted = NodePlacement {
            taints: vec![taint("dedicated", "db", "NoSchedule")],
            ..pool("app")
        };
        let any = TemplatePlacement::default();
        let app_pool = TemplatePlacement {
            node_selector: BTreeMap::from([("pool".to_string(), "app".to_string())]),
            ..TemplatePlacement::default()
        };
        let tolerating = TemplatePlacement {
            tolerations: vec![toleration("dedicated", "Exists", "", "")],
            ..app_pool.clone()
        };
        let tolerating_other = TemplatePlacement {
            tolerations: vec![toleration("gpu", "Exists", "", "")],
            ..app_pool.clone()
        };
        let pinned = TemplatePlacement {
            node_name: Some("a-hardened".into()),
            ..TemplatePlacement::default()
        };
        type Case<'a> = (
            &'a str,
            Vec<(&'a str, &'a NodeFacts, &'a NodePlacement)>,
            &'a TemplatePlacement,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "every node hardened",
                vec![("a", &hardened, &app), ("b", &hardened, &batch)],
                &any,
                None,
            ),
            (
                "one plain node",
                vec![("a", &hardened, &app), ("b", &plain, &batch)],
                &any,
                Some("b"),
            ),
            (
                "unknown counts as off",
                vec![("a", &hardened, &app), ("b", &unknown, &app)],
                &any,
                Some("b"),
            ),
            (
                "the first by name",
                vec![("c", &plain, &app), ("b", &plain, &app)],
                &any,
                Some("b"),
            ),
            (
                "outside the selector",
                vec![("a", &hardened, &app), ("b", &plain, &batch)],
                &app_pool,
                None,
            ),
            (
                "inside the selector",
                vec![("a", &hardened, &app), ("b", &plain, &app)],
                &app_pool,
                Some("b"),
            ),
            (
                "cordoned",
                vec![("a", &hardened, &app), ("b", &plain, &cordoned)],
                &any,
                None,
            ),
            (
                "tainted, not tolerated",
                vec![("a", &hardened, &app), ("b", &plain, &tainted)],
                &app_pool,
                None,
            ),
            (
                "tainted, tolerated",
                vec![("a", &hardened, &app), ("b", &plain, &tainted)],
                &tolerating,
                Some("b"),
            ),
            (
                "tainted, another taint tolerated",
                vec![("a", &hardened, &app), ("b", &plain, &tainted)],
                &tolerating_other,
                None,
            ),
            (
                "windows",
                vec![("a", &hardened, &app), ("b", &windows, &app)],
                &any,
                None,
            ),
            (
                "pinned to a hardened node",
                vec![("a-hardened", &hardened, &app), ("b", &plain, &app)],
                &pinned,
                None,
            ),
        ];
        for (case, nodes, template, expected) in cases {
            assert_eq!(
                node_without_seccomp_default(nodes, template).map(|(name, _)| name),
                expected,
                "{case}"
            );
        }
    }
}
