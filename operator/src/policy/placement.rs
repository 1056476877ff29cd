//! Where a workload's replacement pod may start. An eviction is safe only if the replacement is
//! confined wherever the scheduler puts it, and a template that sets no profile is confined only
//! on nodes whose kubelet runs with `seccompDefault`. Pure: nodes and templates are arguments.

use std::collections::BTreeMap;

use crate::{api::KubeletSeccompDefault, engine::NodeFacts};

/// What decides whether the scheduler may start a new pod on a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodePlacement {
    pub labels: BTreeMap<String, String>,
    /// `spec.unschedulable` (cordoned): no new pod of a workload starts there.
    pub cordoned: bool,
    /// Carries a `NoSchedule` or `NoExecute` taint: only pods tolerating it start there.
    pub tainted: bool,
}

/// What of a pod template narrows the nodes its pods may start on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplatePlacement {
    /// `spec.nodeName`: the pods start there and nowhere else.
    pub node_name: Option<String>,
    /// `spec.nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// The template tolerates some taint. Tolerations are not matched one by one: such a template
    /// is taken to reach every tainted node, which can only hold back an eviction.
    pub tolerates: bool,
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
            && (self.tolerates || !placement.tainted)
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
            tainted: true,
            ..pool("app")
        };
        let any = TemplatePlacement::default();
        let app_pool = TemplatePlacement {
            node_selector: BTreeMap::from([("pool".to_string(), "app".to_string())]),
            ..TemplatePlacement::default()
        };
        let tolerating = TemplatePlacement {
            tolerates: true,
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
                "tainted, some toleration",
                vec![("a", &hardened, &app), ("b", &plain, &tainted)],
                &tolerating,
                Some("b"),
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
