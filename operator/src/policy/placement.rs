//! Where a workload's replacement pod may start. An eviction is safe only if the replacement is
//! confined wherever the scheduler puts it, and a template that sets no profile is confined only
//! on nodes whose kubelet runs with `seccompDefault`. Pure: nodes and templates are arguments.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{api::KubeletSeccompDefault, engine::NodeFacts};

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

/// What of a pod template narrows the nodes its pods may start on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplatePlacement {
    /// `spec.nodeName`: the pods start there and nowhere else.
    pub node_name: Option<String>,
    /// `spec.nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// `spec.tolerations`.
    pub tolerations: Vec<Toleration>,
}

impl TemplatePlacement {
    /// Whether a new pod of the template may start on a node. Required node affinity is not read:
    /// a template is taken to reach more nodes than it does, never fewer.
    pub fn may_start_on(&self, name: &str, node: &NodeFacts, placement: &NodePlacement) -> bool {
        if let Some(pinned) = &self.node_name {
            return pinned == name;
        }
        !node.windows
            && !placement.cordoned
            && placement
                .taints
                .iter()
                .all(|taint| self.tolerations.iter().any(|t| t.tolerates(taint)))
            && self
                .node_selector
                .iter()
                .all(|(key, value)| placement.labels.get(key) == Some(value))
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
            windows: true,
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
