//! What the operator will do to one pod in one pass, as one pure function: [`plan`]. The
//! controller gathers the inputs (from its caches, with the clock and the eviction ledger as they
//! are), executes the plan (one status write, one label write, at most one eviction, Events) and
//! nothing else; each policy judges the pod once per pass.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

use super::{
    CompiledPolicy, EvictionFacts, EvictionLedger, EvictionVerdict, Judgement, OwnerKind, PROFILE_LABEL,
    StatefulRollout, Subject, UNCONFINED, VIOLATION_LABEL, WARMING_UP, desired_labels, eviction_verdict,
    stateful_rollout_verdict,
};
use crate::{
    api::{PolicyAction, PolicyActionMode, PolicyResult, ProfileSource, SeccompStatusStatus, Verdict},
    engine::{self, Facts, NodeFacts, PodView},
    profile::strength::{self, ProfileFacts},
    status::{self, ConditionMark},
};

/// The note of a policy whose eviction of the pod went through.
const EVICTED: &str = "evicted: the workload's template is confined";
/// Planned again this long after an exemption of the pod runs out.
const EXPIRY_MARGIN: Duration = Duration::from_secs(1);
/// The furthest ahead a pass is planned for an exemption's expiry.
const EXPIRY_HORIZON: Duration = Duration::from_secs(3600);

/// What one policy did to one pod in a pass (kept between passes: Events are published, and
/// counters move, only when this changes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub policy: Arc<str>,
    pub verdict: Verdict,
    pub action: PolicyAction,
}

/// The pod being planned for, beyond what the engine looks at.
#[derive(Clone, Copy, Debug)]
pub struct PodFacts<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub namespace_labels: &'a BTreeMap<String, String>,
    /// The controlling owner: kind, UID and a display name (`ReplicaSet web-7d9f`).
    pub owner: Option<(OwnerKind, &'a str, &'a str)>,
    pub created: Option<Timestamp>,
    pub mirror: bool,
    pub terminating: bool,
    pub terminal: bool,
}

/// When to try again an eviction a PodDisruptionBudget refused, after `blocked_before` refusals
/// in a row: 20 s, then twice as long each time up to 160 s. A budget that refuses for good (a
/// single replica under `minAvailable: 1`) so costs a request every few minutes per pod, not
/// three a minute, and one that allows again is still seen within minutes.
pub fn blocked_retry(blocked_before: u8) -> Duration {
    Duration::from_secs(20) * (1u32 << blocked_before.min(3))
}

/// Everything a pass depends on.
#[derive(Clone, Copy)]
pub struct PassInput<'a> {
    pub view: &'a PodView,
    pub pod: PodFacts<'a>,
    pub facts: &'a Facts<'a>,
    /// Valid policies, in name order.
    pub policies: &'a [Arc<CompiledPolicy>],
    /// What each policy did in the last pass; after a restart, what the stored status says.
    pub previous: &'a [Outcome],
    /// The controller-owned conditions of the stored status (for their transition times).
    pub stored_conditions: &'a [ConditionMark],
    /// Every cache has listed once (the warm-up is over): actions may run.
    pub warmed_up: bool,
    pub ledger: &'a EvictionLedger,
    /// The pod template of the pod's workload, as cached (`None`: not known).
    pub template: Option<&'a PodView>,
    /// The first node (by name) a new pod of the workload may start on whose kubelet does not
    /// confine pods that ask for nothing, with its facts. Asked only when an eviction depends on
    /// it: a template confined by the pod's node's `seccompDefault` alone.
    pub replacement_node_without_default: &'a dyn Fn() -> Option<(String, NodeFacts)>,
    /// The rollout of the pod's StatefulSet (`None`: not a StatefulSet's pod, or not known).
    pub rollout: Option<&'a StatefulRollout>,
    /// The pod's workload selects its pods by one of the operator's labels: changing that label
    /// would take the pod from it (and it would start another, whose label would be changed
    /// again), so they are left as they are.
    pub owner_selects_outcome_labels: bool,
    pub operator_namespace: Option<&'a str>,
    /// What is known of the Localhost profiles' content.
    pub profiles: ProfileFacts<'a>,
    pub now: Timestamp,
}

/// Why a violating pod is not labelled: its workload's selector reads the operator's labels.
pub const LABELS_LEFT_ALONE: &str = "NotLabelled: the pod's workload selects its pods by seccomp-sentinel's labels; \
     changing them would take the pod from it, and it would start another";

/// The labels to have on the pod (only the operator's two keys are ever touched).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelChange {
    /// They are as they should be.
    Keep,
    /// Set exactly these of the operator's labels (others of ours go).
    Set(BTreeMap<String, String>),
    /// Remove the operator's labels.
    Remove,
}

/// An eviction the plan asks for; the controller reserves it in the ledger (which checks the
/// limits again, atomically), evicts, and reports the result with [`PodPlan::eviction_result`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvictionCandidate {
    pub policy: Arc<str>,
    pub owner_uid: String,
}

/// A workload whose replacements come back violating: evictions of it stop for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Halt {
    pub policy: Arc<str>,
    pub workload_uid: String,
    pub workload: String,
    pub reason: String,
}

/// An Event to publish on the pod and on the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub policy: Arc<str>,
    pub reason: &'static str,
    pub warning: bool,
    pub action: &'static str,
    pub note: String,
}

/// What the pass does.
#[derive(Clone, Debug)]
pub struct PodPlan {
    /// The SeccompStatus content (with conditions).
    pub status: SeccompStatusStatus,
    pub labels: LabelChange,
    pub eviction: Option<EvictionCandidate>,
    pub halt: Option<Halt>,
    pub outcomes: Vec<Outcome>,
    pub announcements: Vec<Announcement>,
    /// Plan again after this long (pending evictions, warm-up, age limits).
    pub requeue: Option<Duration>,
    /// Before the warm-up ends some action is not decided yet (a label to change, an eviction
    /// to weigh): the status is not written, nothing is announced and the previous outcomes
    /// stand. A restart then neither writes undecided actions over decided ones nor writes them
    /// back a moment later, and a first sync writes each such pod once, with its action, instead
    /// of twice. The warm-up is the caches' first lists, so the wait is seconds.
    pub hold: bool,
    /// The pod carried the violation label before the pass (whatever becomes of a label write).
    marked_before: bool,
    previous: Vec<Outcome>,
    stored_conditions: Vec<ConditionMark>,
    now: Timestamp,
}

/// What happened to a planned eviction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvictionResult {
    Evicted,
    /// The ledger refused it when reserving (a limit reached since planning).
    NotReserved(EvictionVerdict),
    /// A PodDisruptionBudget does not allow it now (429).
    Blocked,
    /// The pod changed or went (404/409): look again.
    PodChanged,
    /// The API server refused it for another reason (500): with its message.
    Refused(String),
}

fn judge_all<'p>(
    policies: &'p [Arc<CompiledPolicy>],
    subject: &Subject<'_>,
    evaluation: &SeccompStatusStatus,
    now: Timestamp,
) -> Vec<(&'p Arc<CompiledPolicy>, Judgement)> {
    policies
        .iter()
        .filter(|p| p.selects(subject))
        .map(|p| (p, p.judge(subject, evaluation, now)))
        .collect()
}

/// Plans one pass over one pod.
pub fn plan(input: &PassInput<'_>) -> PodPlan {
    let pod = &input.pod;
    let mut evaluation = engine::evaluate(input.view, input.facts);
    strength::assess(&mut evaluation, &input.profiles);
    let subject = Subject {
        namespace: pod.namespace,
        labels: pod.labels,
        namespace_labels: pod.namespace_labels,
        scc: input.view.scc.as_deref(),
    };
    let judged = judge_all(input.policies, &subject, &evaluation, input.now);
    let mut requeue: Option<Duration> = None;
    let mut defer = |d: Duration| requeue = Some(requeue.map_or(d, |r: Duration| r.min(d)));
    // An exemption that runs out changes the verdict by itself: plan again just after (at most an
    // hour ahead, so a far date or a clock that jumps costs one pass an hour).
    if let Some(expiry) = judged
        .iter()
        .filter_map(|(p, _)| p.next_expiry(&subject, input.now))
        .min()
    {
        let until = input.now.duration_since(expiry).unsigned_abs();
        defer((until + EXPIRY_MARGIN).min(EXPIRY_HORIZON));
    }

    // Labels, for Label and Evict policies; only once warm.
    let modes: Vec<(PolicyActionMode, Verdict)> = judged.iter().map(|(p, j)| (p.action, j.verdict)).collect();
    let wanted = desired_labels(&modes, evaluation.profile);
    let ours = |labels: &BTreeMap<String, String>| {
        (
            labels.get(PROFILE_LABEL).cloned(),
            labels.get(VIOLATION_LABEL).cloned(),
        )
    };
    let current = ours(pod.labels);
    let target = wanted.as_ref().map(ours).unwrap_or((None, None));
    // Some action waits for the warm-up.
    let mut undecided = false;
    let left_alone = input.owner_selects_outcome_labels;
    let labels = if current == target || left_alone {
        LabelChange::Keep
    } else if !input.warmed_up {
        defer(Duration::from_secs(2));
        undecided = true;
        LabelChange::Keep
    } else {
        match &wanted {
            Some(labels) => LabelChange::Set(labels.clone()),
            None => LabelChange::Remove,
        }
    };
    // The pod carries the violation label, or gets it in this pass.
    let labelled = target.1.is_some() && (current == target || (input.warmed_up && !left_alone));
    let marked_before = current.1.is_some() && current.1 == target.1;

    // The template, judged with the same facts, by the policies that judge the pod.
    let template_view = input.template.map(|template| {
        let mut view = template.clone();
        view.node_name = input.view.node_name.clone();
        view.scc = input.view.scc.clone();
        // What SCC admission would write into a replacement that asks for nothing.
        if view.profile.is_none() {
            view.profile = view
                .scc
                .as_deref()
                .and_then(|s| input.facts.sccs.default_of(s))
                .cloned();
        }
        view
    });
    let template_evaluation = template_view
        .as_ref()
        .map(|view| engine::evaluate(view, input.facts));
    // A template confined only by this node's kubelet default is confined on the nodes that have
    // it: the replacement may start elsewhere. Looked at only when some Evict policy may use it.
    let evicting = judged
        .iter()
        .any(|(p, j)| p.action == PolicyActionMode::Evict && j.verdict == Verdict::Violating);
    let template_elsewhere = match (&template_view, &template_evaluation) {
        (Some(view), Some(here))
            if evicting
                && here
                    .containers
                    .iter()
                    .any(|c| c.source == ProfileSource::KubeletDefault) =>
        {
            // Never the pod's node: that one confines by default. Only the node's facts differ
            // (the view's node name is not judged).
            (input.replacement_node_without_default)().map(|(node, facts)| {
                let on_node = Facts {
                    node: Some(&facts),
                    ..*input.facts
                };
                (node, engine::evaluate(view, &on_node))
            })
        }
        _ => None,
    };
    let template = template_evaluation.as_ref().map(|here| TemplateEvaluation {
        here,
        elsewhere: template_elsewhere.as_ref().map(|(n, e)| (n.as_str(), e)),
    });

    let mut results = Vec::with_capacity(judged.len());
    let mut outcomes = Vec::with_capacity(judged.len());
    let mut eviction: Option<EvictionCandidate> = None;
    let mut halt: Option<Halt> = None;
    for (p, judgement) in &judged {
        let (action, note) = match (p.action, judgement.verdict) {
            (_, Verdict::Compliant | Verdict::Exempt) | (PolicyActionMode::Audit, _) => {
                (PolicyAction::None, None)
            }
            (PolicyActionMode::Label, Verdict::Violating) if labelled => (PolicyAction::Labeled, None),
            (PolicyActionMode::Label, Verdict::Violating) => (
                PolicyAction::None,
                left_alone.then(|| LABELS_LEFT_ALONE.to_string()),
            ),
            (PolicyActionMode::Evict, Verdict::Violating) => match &eviction {
                Some(by) => (
                    PolicyAction::EvictionPending,
                    Some(format!("EvictionPending: evicted for policy {}", by.policy)),
                ),
                None if judgement.weak_profiles_only() => (
                    PolicyAction::EvictionSkipped,
                    Some(format!(
                        "{}: the profile file is the fix; a replacement would run the same one",
                        super::WEAK_PROFILE
                    )),
                ),
                // `kubectl debug` adds ephemeral containers to a running pod; no template has
                // them, so a replacement would always "come back confined", and evicting would
                // end the debugging session (and the state being looked at) within a pass.
                None if judgement.ephemeral_only => (
                    PolicyAction::EvictionSkipped,
                    Some(format!(
                        "{}: only ephemeral containers (kubectl debug) violate; no replacement \
                         would have them, and evicting would only end the debugging",
                        super::EPHEMERAL_ONLY
                    )),
                ),
                None => {
                    let decision = evict_decision(
                        input,
                        p,
                        &subject,
                        template.as_ref(),
                        &judgement.message,
                        &mut halt,
                    );
                    if let Some(retry) = decision.retry {
                        defer(retry);
                    }
                    undecided |= decision.waits_for_warm_up;
                    if decision.evict {
                        eviction = Some(EvictionCandidate {
                            policy: p.name.as_str().into(),
                            owner_uid: pod.owner.map(|o| o.1.to_string()).unwrap_or_default(),
                        });
                    }
                    (decision.action, Some(decision.note))
                }
            },
        };
        results.push(super::result(p, judgement, action, note.as_deref()));
        outcomes.push(Outcome {
            policy: p.name.as_str().into(),
            verdict: judgement.verdict,
            action,
        });
    }
    let mut plan = PodPlan {
        status: evaluation,
        labels,
        eviction,
        halt,
        outcomes,
        announcements: Vec::new(),
        requeue,
        hold: false,
        marked_before,
        previous: input.previous.to_vec(),
        stored_conditions: input.stored_conditions.to_vec(),
        now: input.now,
    };
    plan.finish(results);
    // A pod being deleted is past every action: announcing one (a skip because it is being
    // deleted, a label) on it is noise on each rollout.
    if pod.terminating {
        plan.announcements.clear();
    }
    if undecided {
        plan.hold = true;
        plan.announcements.clear();
        plan.outcomes = input.previous.to_vec();
    }
    plan
}

/// The workload's template, evaluated as a replacement of the pod would run.
struct TemplateEvaluation<'t> {
    /// On the pod's node.
    here: &'t SeccompStatusStatus,
    /// On the first node a replacement may start on whose kubelet does not confine by default,
    /// where that changes anything.
    elsewhere: Option<(&'t str, &'t SeccompStatusStatus)>,
}

struct EvictDecision {
    action: PolicyAction,
    note: String,
    retry: Option<Duration>,
    evict: bool,
    /// Nothing is decided before the warm-up ends.
    waits_for_warm_up: bool,
}

fn evict_decision(
    input: &PassInput<'_>,
    p: &CompiledPolicy,
    subject: &Subject<'_>,
    template: Option<&TemplateEvaluation<'_>>,
    // What the pod was judged for (the message the decision's note is joined to).
    pod_judged: &str,
    halt: &mut Option<Halt>,
) -> EvictDecision {
    let pod = &input.pod;
    // The pod this policy evicted is on its way out: it stays Evicted, with the message its
    // eviction wrote, instead of turning into a skip for being deleted (a Warning and a write).
    if pod.terminating
        && input
            .previous
            .iter()
            .any(|o| *o.policy == *p.name && o.action == PolicyAction::Evicted)
    {
        return EvictDecision {
            action: PolicyAction::Evicted,
            note: EVICTED.into(),
            retry: None,
            evict: false,
            waits_for_warm_up: false,
        };
    }
    let owner_uid = pod.owner.map(|o| o.1);
    // Loop guard: a pod of a workload created after one of its pods was evicted, and still
    // violating, means evicting does not help.
    if let (Some((_, uid, owner_name)), Some(created), false) = (pod.owner, pod.created, pod.terminating)
        && input.ledger.halted(uid).is_none()
        && input.ledger.is_replacement(uid, pod.uid, created)
    {
        *halt = Some(Halt {
            policy: p.name.as_str().into(),
            workload_uid: uid.to_string(),
            workload: format!("{}/{owner_name}", pod.namespace),
            reason: format!(
                "the replacement pods of {owner_name} are not confined either; evictions of it stopped"
            ),
        });
    }
    let facts = EvictionFacts {
        policy: &p.name,
        namespace: pod.namespace,
        operator_namespace: input.operator_namespace,
        owner: pod.owner.map_or(OwnerKind::None, |o| o.0),
        owner_uid,
        mirror: pod.mirror,
        terminating: pod.terminating,
        terminal: pod.terminal,
        created: pod.created,
        warmed_up: input.warmed_up,
        // Counted when the eviction is reserved, not in every pass.
        workload_down: None,
    };
    if let Some(halted) = halt.as_ref() {
        return EvictDecision {
            action: PolicyAction::EvictionSkipped,
            note: format!("ReplacementUnconfined: {}", halted.reason),
            retry: None,
            evict: false,
            waits_for_warm_up: false,
        };
    }
    // Whether what the workload would do next still counts: not for pods never evicted, nor
    // before the warm-up, which decides nothing.
    let open = |verdict: &EvictionVerdict| match verdict {
        EvictionVerdict::Skip { .. } => false,
        EvictionVerdict::Later { reason, .. } => *reason != WARMING_UP,
        EvictionVerdict::Proceed => true,
    };
    let verdict = eviction_verdict(&facts, &p.eviction, input.ledger, input.now);
    // A StatefulSet replacing its pods itself, or holding them at an earlier revision, decides.
    let verdict = match input.rollout {
        Some(rollout) if open(&verdict) => {
            stateful_rollout_verdict(rollout, pod.labels, pod.name).unwrap_or(verdict)
        }
        _ => verdict,
    };
    // Evicting cannot help while the template is unconfined: that is said at once, rather than
    // after an age limit or a cooldown runs out (one state, one Event, not a wait that ends in a
    // skip). The template is judged only where the verdict may use it.
    let template = template.filter(|_| open(&verdict));
    let template_judged = template.map(|t| p.judge(subject, t.here, input.now));
    if let Some(j) = template_judged.as_ref()
        && j.verdict == Verdict::Violating
    {
        // Said as what it is: a template confined by a profile the policy does not allow is
        // not "unconfined".
        let what = if j.reason == UNCONFINED {
            "TemplateUnconfined: the template itself is unconfined"
        } else {
            "TemplateViolates: the template itself violates the policy"
        };
        return EvictDecision {
            action: PolicyAction::EvictionSkipped,
            // The template's own reasons, unless they are the pod's (already in the message).
            note: if j.message == pod_judged {
                format!("{what}: fix the workload")
            } else {
                format!("{what}: fix the workload ({})", j.message)
            },
            retry: None,
            evict: false,
            waits_for_warm_up: false,
        };
    }
    // Confined here by the kubelet's default, and not on a node the replacement may start on.
    if let Some((node, _)) = template
        .and_then(|t| t.elsewhere)
        .filter(|(_, elsewhere)| p.judge(subject, elsewhere, input.now).verdict == Verdict::Violating)
    {
        return EvictDecision {
            action: PolicyAction::EvictionSkipped,
            note: format!(
                "TemplateUnconfined: the template is confined only by the kubelet's seccomp \
                 default, which the kubelet of node {node} does not set, and a replacement may \
                 start there: set a profile in the template"
            ),
            retry: None,
            evict: false,
            waits_for_warm_up: false,
        };
    }
    match verdict {
        EvictionVerdict::Skip { reason, message } => EvictDecision {
            action: PolicyAction::EvictionSkipped,
            note: format!("{reason}: {message}"),
            retry: None,
            evict: false,
            waits_for_warm_up: false,
        },
        EvictionVerdict::Later {
            reason,
            message,
            retry_after,
        } => EvictDecision {
            action: PolicyAction::EvictionPending,
            note: format!("{reason}: {message}"),
            retry: Some(retry_after),
            evict: false,
            waits_for_warm_up: reason == WARMING_UP,
        },
        EvictionVerdict::Proceed => match template_judged {
            None => EvictDecision {
                action: PolicyAction::EvictionPending,
                note: "WorkloadUnknown: the pod's workload is not (yet) known".into(),
                retry: Some(Duration::from_secs(15)),
                evict: false,
                waits_for_warm_up: false,
            },
            // Violating templates were answered above.
            Some(_) if p.eviction.dry_run => EvictDecision {
                action: PolicyAction::WouldEvict,
                note: "dry run: the pod would be evicted and come back confined".into(),
                retry: None,
                evict: false,
                waits_for_warm_up: false,
            },
            Some(_) => EvictDecision {
                action: PolicyAction::EvictionPending,
                note: "EvictionPending: evicting; the workload's template is confined".into(),
                retry: None,
                evict: true,
                waits_for_warm_up: false,
            },
        },
    }
}

impl PodPlan {
    /// Completes the status (verdict, action, conditions) and the Events from the results.
    fn finish(&mut self, results: Vec<PolicyResult>) {
        self.status.verdict = results.iter().map(|r| r.verdict).max();
        self.status.action = results.iter().map(|r| r.action).max();
        self.status.policies = results;
        let now = Time(self.now);
        self.status =
            status::with_conditions(std::mem::take(&mut self.status), &self.stored_conditions, &now);
        self.announcements = self
            .outcomes
            .iter()
            .filter(|o| !self.previous.contains(o))
            .filter_map(|o| {
                let (reason, warning) = match o.action {
                    PolicyAction::None => return None,
                    // A planned eviction is announced with its result.
                    PolicyAction::EvictionPending
                        if self.eviction.as_ref().is_some_and(|e| e.policy == o.policy) =>
                    {
                        return None;
                    }
                    PolicyAction::Labeled => ("Labeled", false),
                    PolicyAction::WouldEvict => ("WouldEvict", false),
                    PolicyAction::Evicted => ("Evicted", false),
                    PolicyAction::EvictionPending => ("EvictionPending", false),
                    PolicyAction::EvictionBlocked => ("EvictionBlocked", true),
                    PolicyAction::EvictionSkipped => ("EvictionSkipped", true),
                };
                let note = self
                    .status
                    .policies
                    .iter()
                    .find(|r| *r.name == *o.policy)
                    .map(|r| r.message.clone())
                    .unwrap_or_default();
                Some(Announcement {
                    policy: o.policy.clone(),
                    reason,
                    warning,
                    action: if o.action == PolicyAction::Labeled {
                        "Label"
                    } else {
                        "Evict"
                    },
                    note,
                })
            })
            .collect();
        if let Some(halt) = &self.halt {
            self.announcements.push(Announcement {
                policy: halt.policy.clone(),
                reason: "EvictionHalted",
                warning: true,
                action: "Evict",
                note: halt.reason.clone(),
            });
        }
    }

    /// The policies whose eviction of this pod a disruption budget blocks now but did not in the
    /// outcomes this plan started from: each such episode counts once. (Compared with the start
    /// of the plan, not with the pod's outcomes when the pass ends: the watch may have put the
    /// pass's own write there meanwhile.)
    pub fn newly_blocked(&self) -> Vec<Arc<str>> {
        let blocked = |o: &&Outcome| o.action == PolicyAction::EvictionBlocked;
        self.outcomes
            .iter()
            .filter(blocked)
            .filter(|o| !self.previous.iter().filter(blocked).any(|p| p.policy == o.policy))
            .map(|o| o.policy.clone())
            .collect()
    }

    /// The plan once its eviction has been tried: the policy's action and message, the
    /// Events and when to look again follow the result. `blocked_before`: how many attempts in
    /// a row a PodDisruptionBudget refused before this one.
    pub fn eviction_result(&mut self, result: &EvictionResult, blocked_before: u8) {
        let Some(candidate) = self.eviction.take() else {
            return;
        };
        let (action, note, retry) = match result {
            EvictionResult::Evicted => (PolicyAction::Evicted, EVICTED.to_string(), None),
            EvictionResult::NotReserved(EvictionVerdict::Later {
                reason,
                message,
                retry_after,
            }) => (
                PolicyAction::EvictionPending,
                format!("{reason}: {message}"),
                Some(*retry_after),
            ),
            EvictionResult::NotReserved(EvictionVerdict::Skip { reason, message }) => (
                PolicyAction::EvictionSkipped,
                format!("{reason}: {message}"),
                None,
            ),
            EvictionResult::NotReserved(EvictionVerdict::Proceed) => (
                PolicyAction::EvictionPending,
                "EvictionPending: looking again".into(),
                Some(Duration::from_secs(2)),
            ),
            EvictionResult::Blocked => (
                PolicyAction::EvictionBlocked,
                "DisruptionBudget: a PodDisruptionBudget does not allow the eviction now".into(),
                Some(blocked_retry(blocked_before)),
            ),
            EvictionResult::PodChanged => (
                PolicyAction::EvictionPending,
                "PodChanged: looking again".into(),
                Some(Duration::from_secs(2)),
            ),
            EvictionResult::Refused(message) => (
                PolicyAction::EvictionBlocked,
                format!("EvictionRefused: {message}"),
                Some(Duration::from_secs(60)),
            ),
        };
        // The other Evict policies that found the pod violating follow the one that acted.
        for (outcome, result) in self.outcomes.iter_mut().zip(self.status.policies.iter_mut()) {
            if outcome.action != PolicyAction::EvictionPending {
                continue;
            }
            let judgement_message = result.message.split("; ").next().unwrap_or_default().to_string();
            if outcome.policy == candidate.policy {
                outcome.action = action;
                result.action = action;
                result.message = join(&judgement_message, &note);
            } else if action == PolicyAction::Evicted {
                outcome.action = PolicyAction::Evicted;
                result.action = PolicyAction::Evicted;
                result.message = join(
                    &judgement_message,
                    &format!("evicted for policy {}", candidate.policy),
                );
            }
        }
        if let Some(retry) = retry {
            self.plan_again_within(retry);
        }
        let results = std::mem::take(&mut self.status.policies);
        self.finish(results);
    }

    /// The plan once the API server refused its label write (`why`: an admission policy or
    /// webhook, RBAC): the Label policies that found the pod violating did not label it, unless
    /// it carried the violation label already. Their action is `None` with `LabelRefused` and the
    /// API server's message; a Warning Event says so when that is new; the pod is looked at
    /// again in a minute. The status is written all the same: what the pod runs is known.
    pub fn labels_refused(&mut self, why: &str) {
        if self.marked_before {
            return;
        }
        let note = format!("{LABEL_REFUSED}: {why}");
        let mut refused = Vec::new();
        for (outcome, result) in self.outcomes.iter_mut().zip(self.status.policies.iter_mut()) {
            if outcome.action == PolicyAction::Labeled {
                outcome.action = PolicyAction::None;
                result.action = PolicyAction::None;
                result.message = join(&result.message, &note);
                if !self.previous.contains(outcome) {
                    refused.push(outcome.policy.clone());
                }
            }
        }
        self.plan_again_within(Duration::from_secs(60));
        let results = std::mem::take(&mut self.status.policies);
        self.finish(results);
        self.announcements
            .extend(refused.into_iter().map(|policy| Announcement {
                policy,
                reason: LABEL_REFUSED,
                warning: true,
                action: "Label",
                note: note.clone(),
            }));
    }

    /// Plans the pod again after `delay` at the latest.
    fn plan_again_within(&mut self, delay: Duration) {
        self.requeue = Some(self.requeue.map_or(delay, |r| r.min(delay)));
    }
}

/// Why a Label policy did not label a violating pod: the API server refused the write.
pub const LABEL_REFUSED: &str = "LabelRefused";

fn join(judgement: &str, note: &str) -> String {
    if judgement.is_empty() {
        note.to_string()
    } else {
        format!("{judgement}; {note}")
    }
}

#[cfg(test)]
mod tests {
    //! "What will the operator do to this pod?" for representative pods, with no I/O.
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::*;
    use crate::{
        api::{KubeletSeccompDefault, ProfileClass, ProfileFile, ProfileFileState, SeccompPolicy},
        engine::{NodeFacts, SccDefaults},
        policy::compile_policy,
        profile::strength::FileReports,
    };

    fn policy(name: &str, spec: serde_json::Value) -> Arc<CompiledPolicy> {
        let object: SeccompPolicy = serde_json::from_value(json!({
            "apiVersion": "seccomp.sentinel.dev/v1alpha1", "kind": "SeccompPolicy",
            "metadata": { "name": name, "generation": 1 }, "spec": spec
        }))
        .expect("policy");
        Arc::new(compile_policy(&object).expect("valid"))
    }

    fn evict() -> Arc<CompiledPolicy> {
        policy(
            "evict",
            json!({ "action": "Evict", "eviction": { "minUnconfinedAge": "0s", "workloadCooldown": "1s" } }),
        )
    }

    fn view(security_context: serde_json::Value) -> PodView {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": "web-1", "namespace": "shop" },
            "spec": { "nodeName": "n1", "securityContext": security_context,
                      "containers": [{ "name": "app", "image": "app" }] }
        }))
        .expect("pod");
        PodView::from_pod(&pod)
    }

    fn localhost(path: &str) -> serde_json::Value {
        json!({ "seccompProfile": { "type": "Localhost", "localhostProfile": path } })
    }

    struct World {
        node: NodeFacts,
        sccs: SccDefaults,
        labels: BTreeMap<String, String>,
        namespace_labels: BTreeMap<String, String>,
        ledger: EvictionLedger,
        previous: Vec<Outcome>,
        terminating: bool,
        /// What the cluster's other nodes say to the template (see `PassInput`).
        node_without_default: Option<(String, NodeFacts)>,
        /// How often a plan asked for it.
        asked_for_nodes: std::cell::Cell<u32>,
        owner_selects_outcome_labels: bool,
    }

    impl World {
        fn new() -> World {
            World {
                node: NodeFacts {
                    os: crate::engine::NodeOs::Linux,
                    kubelet_minor: Some(36),
                    seccomp_default: KubeletSeccompDefault::False,
                },
                sccs: SccDefaults::default(),
                labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
                namespace_labels: BTreeMap::new(),
                ledger: EvictionLedger::default(),
                previous: Vec::new(),
                terminating: false,
                node_without_default: None,
                asked_for_nodes: std::cell::Cell::new(0),
                owner_selects_outcome_labels: false,
            }
        }

        fn plan(
            &self,
            pod: &PodView,
            owner: Option<OwnerKind>,
            template: Option<&PodView>,
            policies: &[Arc<CompiledPolicy>],
            warmed_up: bool,
            profiles: ProfileFacts<'_>,
        ) -> PodPlan {
            let facts = Facts {
                node: Some(&self.node),
                unknown_node_seccomp_default: KubeletSeccompDefault::False,
                sccs: &self.sccs,
            };
            let now = Timestamp::from_second(1_800_000_000).expect("time");
            plan(&PassInput {
                view: pod,
                pod: PodFacts {
                    namespace: "shop",
                    name: "web-1",
                    uid: "pod-uid",
                    labels: &self.labels,
                    namespace_labels: &self.namespace_labels,
                    owner: owner.map(|kind| (kind, "rs-uid", "ReplicaSet web")),
                    created: Some(now - Duration::from_secs(3600)),
                    mirror: false,
                    terminating: self.terminating,
                    terminal: false,
                },
                facts: &facts,
                policies,
                previous: &self.previous,
                stored_conditions: &[],
                warmed_up,
                ledger: &self.ledger,
                template,
                replacement_node_without_default: &|| {
                    self.asked_for_nodes.set(self.asked_for_nodes.get() + 1);
                    self.node_without_default.clone()
                },
                rollout: None,
                owner_selects_outcome_labels: self.owner_selects_outcome_labels,
                operator_namespace: Some("seccomp-sentinel"),
                profiles,
                now,
            })
        }

        /// `pod`, of a ReplicaSet whose template is `template`, under the `evict()` policy.
        fn plan_evict(&self, pod: &PodView, template: &PodView, warmed_up: bool) -> PodPlan {
            self.plan(
                pod,
                Some(OwnerKind::ReplicaSet),
                Some(template),
                &[evict()],
                warmed_up,
                ProfileFacts::default(),
            )
        }
    }

    fn only_result(plan: &PodPlan) -> &PolicyResult {
        assert_eq!(plan.status.policies.len(), 1, "{:?}", plan.status.policies);
        &plan.status.policies[0]
    }

    #[test]
    fn an_unconfined_workload_pod_with_a_confined_template_is_labelled_and_evicted() {
        let world = World::new();
        let pod = view(json!({}));
        let template = view(json!({ "seccompProfile": { "type": "RuntimeDefault" } }));
        let plan = world.plan_evict(&pod, &template, true);
        assert_eq!(
            plan.eviction,
            Some(EvictionCandidate {
                policy: "evict".into(),
                owner_uid: "rs-uid".into()
            })
        );
        let LabelChange::Set(labels) = &plan.labels else {
            panic!("labels: {:?}", plan.labels)
        };
        assert_eq!(labels.get(VIOLATION_LABEL).map(String::as_str), Some("true"));
        assert_eq!(only_result(&plan).action, PolicyAction::EvictionPending);
        assert!(
            plan.announcements.is_empty(),
            "announced with the eviction's result"
        );
    }

    #[test]
    fn a_template_confined_by_the_kubelet_default_alone_is_confined_where_every_node_has_it() {
        let mut world = World::new();
        world.node.seccomp_default = KubeletSeccompDefault::True;
        // Explicitly unconfined, on a node whose kubelet confines pods that ask for nothing; the
        // template (edited since, or stripped by a webhook) asks for nothing.
        let pod = view(json!({ "seccompProfile": { "type": "Unconfined" } }));
        let asks_nothing = view(json!({}));
        // Every node the replacement may start on has the default: evicted.
        let plan = world.plan_evict(&pod, &asks_nothing, true);
        assert!(plan.eviction.is_some(), "{:?}", only_result(&plan));
        assert_eq!(world.asked_for_nodes.get(), 1);
        // One has not: a replacement started there would be unconfined.
        world.node_without_default = Some((
            "plain-node".into(),
            NodeFacts {
                seccomp_default: KubeletSeccompDefault::False,
                ..world.node.clone()
            },
        ));
        let plan = world.plan_evict(&pod, &asks_nothing, true);
        assert_eq!(plan.eviction, None);
        let result = only_result(&plan);
        assert_eq!(result.action, PolicyAction::EvictionSkipped);
        assert!(
            result.message.contains("TemplateUnconfined")
                && result.message.contains("plain-node")
                && result.message.contains("set a profile in the template"),
            "{}",
            result.message
        );
        // A template that names its profile is confined wherever it starts, and the nodes are not
        // looked at; nor are they for a pod no Evict policy judges violating.
        let asked = world.asked_for_nodes.get();
        let names_it = view(json!({ "seccompProfile": { "type": "RuntimeDefault" } }));
        assert!(world.plan_evict(&pod, &names_it, true).eviction.is_some());
        assert!(
            world
                .plan_evict(&names_it, &asks_nothing, true)
                .eviction
                .is_none()
        );
        assert_eq!(world.asked_for_nodes.get(), asked);
        // The pod's own node is the one without the default: the template is unconfined here.
        world.node.seccomp_default = KubeletSeccompDefault::False;
        let plan = world.plan_evict(&pod, &asks_nothing, true);
        assert!(
            only_result(&plan)
                .message
                .contains("TemplateUnconfined: the template itself is unconfined"),
            "{}",
            only_result(&plan).message
        );
    }

    /// A pod of `web` whose `app` container has `app_context`, debugged with `kubectl debug
    /// --profile=sysadmin` (a privileged ephemeral container).
    fn debugged(app_context: serde_json::Value) -> PodView {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": "web-1", "namespace": "shop" },
            "spec": { "nodeName": "n1",
                      "containers": [{ "name": "app", "image": "app", "securityContext": app_context }],
                      "ephemeralContainers": [{ "name": "debugger-x7k2", "image": "busybox",
                                                "securityContext": { "privileged": true } }] }
        }))
        .expect("pod");
        PodView::from_pod(&pod)
    }

    #[test]
    fn a_pod_that_only_its_debug_container_makes_violate_is_labelled_not_evicted() {
        let world = World::new();
        let confined = json!({ "seccompProfile": { "type": "RuntimeDefault" } });
        let template = view(confined.clone());
        let plan = world.plan_evict(&debugged(confined), &template, true);
        assert_eq!(plan.eviction, None);
        let result = only_result(&plan);
        assert_eq!(
            (result.verdict, result.action),
            (Verdict::Violating, PolicyAction::EvictionSkipped)
        );
        assert!(
            result
                .message
                .contains("EphemeralContainers: only ephemeral containers"),
            "{}",
            result.message
        );
        let LabelChange::Set(labels) = &plan.labels else {
            panic!("labels: {:?}", plan.labels)
        };
        assert_eq!(labels.get(VIOLATION_LABEL).map(String::as_str), Some("true"));

        // Its own container unconfined as well: the template is the fix, as without the debugger.
        let plan = world.plan_evict(&debugged(json!({})), &template, true);
        assert_eq!(plan.eviction.map(|e| e.owner_uid), Some("rs-uid".to_string()));
    }

    #[test]
    fn a_blocked_eviction_counts_once_per_episode() {
        let mut world = World::new();
        let pod = view(json!({}));
        let template = view(json!({ "seccompProfile": { "type": "RuntimeDefault" } }));
        let blocked_pass = |world: &World| {
            let mut plan = world.plan_evict(&pod, &template, true);
            plan.eviction_result(&EvictionResult::Blocked, 0);
            plan
        };
        let first = blocked_pass(&world);
        assert_eq!(only_result(&first).action, PolicyAction::EvictionBlocked);
        assert_eq!(first.newly_blocked(), vec![Arc::<str>::from("evict")]);
        assert_eq!(first.requeue, Some(Duration::from_secs(20)));
        // Blocked in the outcomes the next pass starts from: the same episode.
        world.previous = first.outcomes.clone();
        assert!(blocked_pass(&world).newly_blocked().is_empty());
        // Refused again and again: looked at less often, up to every 160 s.
        let mut again = world.plan_evict(&pod, &template, true);
        again.eviction_result(&EvictionResult::Blocked, 2);
        assert_eq!(again.requeue, Some(Duration::from_secs(80)));
        let retries: Vec<u64> = (0..6).map(|n| blocked_retry(n).as_secs()).collect();
        assert_eq!(retries, [20, 40, 80, 160, 160, 160]);
        assert_eq!(blocked_retry(u8::MAX).as_secs(), 160);
    }

    #[test]
    fn before_warm_up_nothing_is_done_and_the_pod_is_planned_again() {
        let world = World::new();
        let pod = view(json!({}));
        let template = view(json!({ "seccompProfile": { "type": "RuntimeDefault" } }));
        let plan = world.plan_evict(&pod, &template, false);
        assert_eq!(plan.eviction, None);
        assert_eq!(plan.labels, LabelChange::Keep);
        assert!(plan.requeue.is_some());
        assert_eq!(
            only_result(&plan).verdict,
            Verdict::Violating,
            "the verdict is known already"
        );
    }

    #[test]
    fn before_warm_up_an_undecided_action_holds_the_status_back() {
        let mut world = World::new();
        let pod = view(json!({}));
        let unconfined_template = view(json!({}));
        let plan = |world: &World, warmed_up: bool| world.plan_evict(&pod, &unconfined_template, warmed_up);
        // A pod seen for the first time: its status waits for the decided action, so that it is
        // written once, not once undecided and again a moment later.
        let first = plan(&world, false);
        assert!(first.hold);
        assert!(
            first.outcomes.is_empty(),
            "nothing recorded: {:?}",
            first.outcomes
        );
        assert!(first.announcements.is_empty(), "{:?}", first.announcements);
        assert!(first.requeue.is_some(), "planned again");
        // Reporting never waits: a violation whose action is decided (an audit) is written.
        let audit = [policy("audit", json!({}))];
        let reported = world.plan(&pod, None, None, &audit, false, ProfileFacts::default());
        assert!(!reported.hold);
        assert_eq!(only_result(&reported).verdict, Verdict::Violating);
        // After a restart: the stored status and its outcome stand until the warm-up ends.
        let skipped = Outcome {
            policy: "evict".into(),
            verdict: Verdict::Violating,
            action: PolicyAction::EvictionSkipped,
        };
        world.previous = vec![skipped.clone()];
        let held = plan(&world, false);
        assert!(held.hold);
        assert_eq!(held.outcomes, vec![skipped.clone()]);
        assert!(held.announcements.is_empty(), "{:?}", held.announcements);
        assert!(held.requeue.is_some(), "planned again");
        // Once warm: decided as before, so nothing changed and nothing to announce.
        let warm = plan(&world, true);
        assert!(!warm.hold);
        assert_eq!(warm.outcomes, vec![skipped]);
        assert!(warm.announcements.is_empty(), "{:?}", warm.announcements);
    }

    #[test]
    fn a_pod_that_carries_its_labels_is_labeled_before_warm_up() {
        let mut world = World::new();
        let pod = view(json!({}));
        let label = [policy("label", json!({ "action": "Label" }))];
        // Not labelled yet: the label waits for the warm-up, and so does the stored status.
        let waiting = world.plan(&pod, None, None, &label, false, ProfileFacts::default());
        assert_eq!(waiting.labels, LabelChange::Keep);
        assert!(waiting.hold);
        // Labelled (by this operator before a restart): nothing undecided.
        world.labels.insert(PROFILE_LABEL.into(), "Unconfined".into());
        world.labels.insert(VIOLATION_LABEL.into(), "true".into());
        let labelled = world.plan(&pod, None, None, &label, false, ProfileFacts::default());
        assert_eq!(labelled.labels, LabelChange::Keep);
        assert!(!labelled.hold);
        assert_eq!(only_result(&labelled).action, PolicyAction::Labeled);
    }

    #[test]
    fn a_label_the_api_server_refuses_is_reported_not_claimed() {
        let mut world = World::new();
        let pod = view(json!({}));
        let label = [policy("label", json!({ "action": "Label" }))];
        let mut plan = world.plan(&pod, None, None, &label, true, ProfileFacts::default());
        assert!(matches!(plan.labels, LabelChange::Set(_)));
        plan.labels_refused("denied by policy");
        let result = only_result(&plan);
        assert_eq!(
            (result.verdict, result.action),
            (Verdict::Violating, PolicyAction::None)
        );
        assert!(
            result.message.ends_with("; LabelRefused: denied by policy"),
            "{}",
            result.message
        );
        assert_eq!(plan.outcomes[0].action, PolicyAction::None);
        let reasons: Vec<(&str, bool)> = plan.announcements.iter().map(|a| (a.reason, a.warning)).collect();
        assert_eq!(reasons, [(LABEL_REFUSED, true)]);
        assert!(plan.requeue.is_some_and(|r| r <= Duration::from_secs(60)));
        assert!(!plan.hold, "the status is written all the same");
        // Refused again in the next pass: nothing new to announce.
        world.previous = plan.outcomes.clone();
        let mut again = world.plan(&pod, None, None, &label, true, ProfileFacts::default());
        again.labels_refused("denied by policy");
        assert!(again.announcements.is_empty(), "{:?}", again.announcements);
        // A pod marked already (only its profile label to change) stays labelled.
        world.previous.clear();
        world.labels.insert(PROFILE_LABEL.into(), "Mixed".into());
        world.labels.insert(VIOLATION_LABEL.into(), "true".into());
        let mut marked = world.plan(&pod, None, None, &label, true, ProfileFacts::default());
        assert!(matches!(marked.labels, LabelChange::Set(_)));
        marked.labels_refused("denied by policy");
        assert_eq!(only_result(&marked).action, PolicyAction::Labeled);
    }

    #[test]
    fn the_labels_of_a_pod_whose_workload_selects_by_them_are_left_alone() {
        let mut world = World::new();
        world.owner_selects_outcome_labels = true;
        // Its template says RuntimeDefault; the pod runs unconfined.
        world.labels.insert(PROFILE_LABEL.into(), "RuntimeDefault".into());
        let pod = view(json!({}));
        let label = [policy("label", json!({ "action": "Label" }))];
        let plan_of = |world: &World| {
            world.plan(
                &pod,
                Some(OwnerKind::ReplicaSet),
                None,
                &label,
                true,
                ProfileFacts::default(),
            )
        };
        let plan = plan_of(&world);
        assert_eq!(plan.labels, LabelChange::Keep);
        let result = only_result(&plan);
        assert_eq!(
            (result.verdict, result.action),
            (Verdict::Violating, PolicyAction::None)
        );
        assert!(result.message.contains(LABELS_LEFT_ALONE), "{}", result.message);
        // Without such a selector, the same pod is relabelled.
        world.owner_selects_outcome_labels = false;
        let plan = plan_of(&world);
        assert!(matches!(plan.labels, LabelChange::Set(_)), "{:?}", plan.labels);
        assert_eq!(only_result(&plan).action, PolicyAction::Labeled);
    }

    #[test]
    fn a_pod_is_planned_again_when_its_exemption_runs_out() {
        let world = World::new();
        let pod = view(json!({}));
        // World's clock: 1,800,000,000 s = 2027-01-15T08:00:00Z.
        let exempt_until = |expires: &str| {
            policy(
                "audit",
                json!({ "exemptions": [{ "reason": "migration", "namespaces": ["shop"], "expires": expires }] }),
            )
        };
        let plan = |expires: &str| {
            world.plan(
                &pod,
                None,
                None,
                &[exempt_until(expires)],
                true,
                ProfileFacts::default(),
            )
        };
        let soon = plan("2027-01-15T08:00:30Z");
        assert_eq!(only_result(&soon).verdict, Verdict::Exempt);
        assert_eq!(soon.requeue, Some(Duration::from_secs(31)));
        assert_eq!(plan("2027-12-31T00:00:00Z").requeue, Some(EXPIRY_HORIZON));
        let expired = plan("2027-01-15T07:00:00Z");
        assert_eq!(only_result(&expired).verdict, Verdict::Violating);
        assert_eq!(expired.requeue, None, "nothing left to wait for");
    }

    #[test]
    fn an_evicted_pod_stays_evicted_while_it_terminates_and_nothing_is_announced() {
        let mut world = World::new();
        let pod = view(json!({}));
        let template = view(json!({ "seccompProfile": { "type": "RuntimeDefault" } }));
        let mut evicting = world.plan_evict(&pod, &template, true);
        evicting.eviction_result(&EvictionResult::Evicted, 0);
        assert_eq!(only_result(&evicting).action, PolicyAction::Evicted);
        assert_eq!(evicting.announcements.len(), 1, "{:?}", evicting.announcements);

        // The next pass sees the pod being deleted: the stored result stands (no write), no
        // Warning that it "is already being deleted".
        world.previous = evicting.outcomes.clone();
        world.terminating = true;
        let leaving = world.plan_evict(&pod, &template, true);
        assert_eq!(leaving.status.policies, evicting.status.policies);
        assert_eq!(leaving.status.action, Some(PolicyAction::Evicted));
        assert!(leaving.eviction.is_none());
        assert!(leaving.announcements.is_empty(), "{:?}", leaving.announcements);

        // A pod deleted by someone else (a rollout) is skipped, quietly.
        world.previous = Vec::new();
        let rolled = world.plan_evict(&pod, &template, true);
        let result = only_result(&rolled);
        assert_eq!(result.action, PolicyAction::EvictionSkipped);
        assert!(result.message.contains("Terminating: "), "{}", result.message);
        assert!(rolled.announcements.is_empty(), "{:?}", rolled.announcements);
    }

    #[test]
    fn an_unconfined_template_is_said_at_once_not_after_the_age_limit() {
        let world = World::new();
        // The pod is an hour old; this policy evicts at two.
        let patient = policy(
            "evict",
            json!({ "action": "Evict", "eviction": { "minUnconfinedAge": "2h" } }),
        );
        let pod = view(json!({}));
        let plan_with = |template: &PodView| {
            world.plan(
                &pod,
                Some(OwnerKind::ReplicaSet),
                Some(template),
                std::slice::from_ref(&patient),
                true,
                ProfileFacts::default(),
            )
        };
        let unconfined = plan_with(&view(json!({})));
        let result = only_result(&unconfined);
        assert_eq!(result.action, PolicyAction::EvictionSkipped, "{result:?}");
        assert!(
            result.message.contains("TemplateUnconfined"),
            "{}",
            result.message
        );
        assert_eq!(unconfined.requeue, None, "nothing to wait for");
        // Where evicting would help, the age limit holds.
        let confined = plan_with(&view(json!({ "seccompProfile": { "type": "RuntimeDefault" } })));
        let result = only_result(&confined);
        assert_eq!(result.action, PolicyAction::EvictionPending, "{result:?}");
        assert!(result.message.contains("TooYoung"), "{}", result.message);
    }

    #[test]
    fn no_eviction_when_it_cannot_help() {
        let world = World::new();
        let pod = view(json!({}));
        let unconfined_template = view(json!({}));
        let skipped = |plan: &PodPlan, why: &str| {
            assert_eq!(plan.eviction, None);
            let result = only_result(plan);
            assert_eq!(result.action, PolicyAction::EvictionSkipped, "{result:?}");
            assert!(result.message.contains(why), "{}", result.message);
        };
        let plan = world.plan_evict(&pod, &unconfined_template, true);
        skipped(&plan, "the template itself is unconfined");
        // The template fails for the pod's own reason: said once, not again in brackets.
        let message = &only_result(&plan).message;
        assert_eq!(message.matches("not allowed: app").count(), 1, "{message}");
        let plan = world.plan(&pod, None, None, &[evict()], true, ProfileFacts::default());
        skipped(&plan, "BarePod");
        // A template that is confined, by a profile the policy does not allow, is not called
        // unconfined.
        let localhost_only = policy(
            "evict",
            json!({ "action": "Evict", "allowedProfiles": ["Localhost"], "eviction": { "minUnconfinedAge": "0s" } }),
        );
        let runtime_default = view(json!({ "seccompProfile": { "type": "RuntimeDefault" } }));
        let plan = world.plan(
            &runtime_default,
            Some(OwnerKind::ReplicaSet),
            Some(&runtime_default),
            &[localhost_only],
            true,
            ProfileFacts::default(),
        );
        skipped(
            &plan,
            "TemplateViolates: the template itself violates the policy: fix the workload",
        );
        assert!(!only_result(&plan).message.contains("unconfined"), "{plan:?}");
        // A weak Localhost profile: the template asks for the same file.
        let weak = view(localhost("log.json"));
        let reports: Vec<(Box<str>, ProfileFile)> = vec![(
            "app".into(),
            ProfileFile {
                path: "log.json".into(),
                state: ProfileFileState::Present,
                class: Some(ProfileClass::LogOnly),
                sha256: Some("ab".into()),
                ..ProfileFile::default()
            },
        )];
        let strong = policy(
            "evict",
            json!({ "action": "Evict", "minimumProfileStrength": "DenyList",
                    "eviction": { "minUnconfinedAge": "0s" } }),
        );
        let plan = world.plan(
            &weak,
            Some(OwnerKind::ReplicaSet),
            Some(&weak),
            &[strong],
            true,
            ProfileFacts {
                files: FileReports::Node(&reports),
                ..ProfileFacts::default()
            },
        );
        skipped(&plan, "WeakProfile");
        assert_eq!(only_result(&plan).verdict, Verdict::Violating);
    }

    #[test]
    fn an_audit_policy_only_reports() {
        let world = World::new();
        let pod = view(json!({}));
        let audit = policy("audit", json!({}));
        let plan = world.plan(
            &pod,
            Some(OwnerKind::ReplicaSet),
            None,
            &[audit],
            true,
            ProfileFacts::default(),
        );
        assert_eq!(plan.eviction, None);
        assert_eq!(plan.labels, LabelChange::Keep);
        assert!(plan.announcements.is_empty());
        let result = only_result(&plan);
        assert_eq!(
            (result.verdict, result.action),
            (Verdict::Violating, PolicyAction::None)
        );
        assert_eq!(plan.status.verdict, Some(Verdict::Violating));
    }
}
