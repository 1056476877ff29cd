//! The admission of one pod by SCCs: what OpenShift's plugin writes into the pod and checks,
//! strategy by strategy, then Kubernetes' own checks of the seccomp fields and annotations.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, Pod, PodSecurityContext, PodSpec, SELinuxOptions, SeccompProfile,
    SecurityContext, Volume,
};

use super::{
    IdRange, MCS_ANNOTATION, NamespaceAllocation, OpenShiftVersion, REQUIRED_SCC_ANNOTATION,
    SUPPLEMENTAL_GROUPS_ANNOTATION, Scc, UID_RANGE_ANNOTATION, order, parse_block,
};

const POD_SECCOMP: &str = "seccomp.security.alpha.kubernetes.io/pod";
const CONTAINER_SECCOMP_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";
const VALIDATED_SCC: &str = "openshift.io/scc";
const SUBJECT_TYPE: &str = "security.openshift.io/validated-scc-subject-type";

/// Sysctls every SCC allows (Kubernetes' safe set, on a current kernel).
const SAFE_SYSCTLS: [&str; 12] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// Who may use which SCCs, besides the users and groups an SCC lists itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SccGrant {
    All,
    Names(BTreeSet<String>),
}

impl SccGrant {
    fn allows(&self, name: &str) -> bool {
        match self {
            SccGrant::All => true,
            SccGrant::Names(names) => names.contains(name),
        }
    }
}

/// Everything the simulation needs besides the pod.
pub struct AdmissionRequest<'a> {
    /// Every SCC of the cluster.
    pub sccs: &'a [Scc],
    pub grant: &'a SccGrant,
    pub namespace: &'a NamespaceAllocation,
    pub version: OpenShiftVersion,
}

/// A pod as OpenShift would store it, and the SCC that admitted it.
#[derive(Clone, Debug, PartialEq)]
pub struct Admission {
    pub scc: String,
    pub pod: Pod,
}

/// Why OpenShift would refuse the pod, in its own words (one entry per SCC tried).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub message: String,
}

/// Admits `pod` as OpenShift would. `Ok(None)`: SCC admission does not apply (Windows pods).
pub fn simulate(pod: &Pod, request: &AdmissionRequest<'_>) -> Result<Option<Admission>, Rejection> {
    let mut pod = pod.clone();
    let spec = pod.spec.get_or_insert_default();
    if spec.os.as_ref().is_some_and(|os| os.name == "windows") {
        return validate_seccomp(&pod).map(|()| None);
    }
    // The ServiceAccount admission plugin runs first and names the default account.
    if spec
        .service_account_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        spec.service_account_name = Some("default".into());
    }
    spec.security_context.get_or_insert_default();
    let required = annotation(&pod, REQUIRED_SCC_ANNOTATION).map(String::from);
    let providers = providers(request, required.as_deref())?;
    let checker = Checker::new(&pod, request);

    let (admitted_pod, provider) = match choose(&pod, &providers, &checker, true, None) {
        Ok(found) => found,
        Err(errors) => return Err(forbidden(&pod, &errors)),
    };
    let mut admitted_pod = admitted_pod;
    let subject_type = checker.subject_type(provider.scc);
    let annotations = admitted_pod.metadata.annotations.get_or_insert_default();
    annotations.insert(VALIDATED_SCC.into(), provider.scc.name().to_string());
    annotations.insert(SUBJECT_TYPE.into(), subject_type.into());

    if request.version.syncs_annotations() {
        sync_seccomp_annotations(&mut admitted_pod);
    }
    validate_seccomp(&admitted_pod)?;

    // The validating pass: the stored pod must be accepted again, unchanged.
    if let Some(required) = &required
        && required != provider.scc.name()
    {
        return Err(Rejection {
            message: format!(
                "pods {:?} is forbidden: required scc/{required} does not match the suggested scc/{}",
                pod_name(&pod),
                provider.scc.name()
            ),
        });
    }
    let hint = provider.scc.name().to_string();
    if let Err(errors) = choose(&admitted_pod, &providers, &checker, false, Some(&hint)) {
        return Err(forbidden(&admitted_pod, &errors));
    }
    Ok(Some(Admission {
        scc: hint,
        pod: admitted_pod,
    }))
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata
        .name
        .clone()
        .or_else(|| pod.metadata.generate_name.clone())
        .unwrap_or_default()
}

fn forbidden(pod: &Pod, errors: &[String]) -> Rejection {
    let list = if errors.len() == 1 {
        errors[0].clone()
    } else {
        format!("[{}]", errors.join(", "))
    };
    Rejection {
        message: format!(
            "pods {:?} is forbidden: unable to validate against any security context constraint: {list}",
            pod_name(pod)
        ),
    }
}

fn annotation<'p>(pod: &'p Pod, key: &str) -> Option<&'p str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// Whether the pod's service account (or the requester, an authenticated user) may use an SCC.
struct Checker<'a> {
    grant: &'a SccGrant,
    service_account_user: String,
    service_account_groups: [String; 2],
}

impl<'a> Checker<'a> {
    fn new(pod: &Pod, request: &AdmissionRequest<'a>) -> Self {
        let namespace = &request.namespace.name;
        let account = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default();
        Checker {
            grant: request.grant,
            service_account_user: format!("system:serviceaccount:{namespace}:{account}"),
            service_account_groups: [
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
            ],
        }
    }

    fn by_service_account(&self, scc: &Scc) -> bool {
        scc.users.contains(&self.service_account_user)
            || scc.groups.iter().any(|g| self.service_account_groups.contains(g))
            || self.grant.allows(scc.name())
    }

    fn by_requester(&self, scc: &Scc) -> bool {
        scc.groups.iter().any(|g| g == "system:authenticated") || self.grant.allows(scc.name())
    }

    fn usable(&self, scc: &Scc) -> bool {
        self.by_service_account(scc) || self.by_requester(scc)
    }

    fn subject_type(&self, scc: &Scc) -> &'static str {
        if self.by_service_account(scc) {
            "serviceaccount"
        } else {
            "user"
        }
    }
}

/// The SCCs to try, in order, with the namespace's allocations resolved.
fn providers<'s>(
    request: &AdmissionRequest<'s>,
    required: Option<&str>,
) -> Result<Vec<Provider<'s>>, Rejection> {
    let mut sccs: Vec<&Scc> = match required {
        Some(name) => match request.sccs.iter().find(|s| s.name() == name) {
            Some(scc) => vec![scc],
            None => {
                return Err(Rejection {
                    message: format!(
                        "failed to retrieve the required SCC {name:?}: securitycontextconstraints.security.openshift.io {name:?} not found"
                    ),
                });
            }
        },
        None => request.sccs.iter().collect(),
    };
    if sccs.is_empty() {
        return Err(Rejection {
            message: "no SecurityContextConstraints found in cluster".into(),
        });
    }
    sccs.sort_by(|a, b| order::admission_order(a, b));
    let namespace = request.namespace;
    for key in [UID_RANGE_ANNOTATION, MCS_ANNOTATION] {
        if !namespace.annotations.contains_key(key) {
            return Err(Rejection {
                message: format!(
                    "error fetching namespace {:?}: unable to find annotation {key}",
                    namespace.name
                ),
            });
        }
    }
    let mut providers = Vec::new();
    let mut errors = Vec::new();
    for scc in sccs {
        match Provider::new(scc, namespace, request.version) {
            Ok(p) => providers.push(p),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(Rejection {
            message: errors.join(", "),
        });
    }
    Ok(providers)
}

/// The first SCC that accepts the pod (without changing it, unless `mutate`), or every SCC's
/// reasons.
fn choose<'p, 's>(
    pod: &Pod,
    providers: &'p [Provider<'s>],
    checker: &Checker<'_>,
    mutate: bool,
    hint: Option<&str>,
) -> Result<(Pod, &'p Provider<'s>), Vec<String>> {
    let mut ordered: Vec<&Provider<'s>> = providers.iter().collect();
    if let Some(hint) = hint {
        // Stable: the hinted SCC first, the others in their order.
        ordered.sort_by_key(|p| p.scc.name() != hint);
    }
    let mut errors = Vec::new();
    let mut denied_restricted = false;
    let mut restricted = None;
    let mut restricted_v2 = false;
    for provider in ordered {
        match provider.scc.name() {
            "restricted" => restricted = Some(provider),
            "restricted-v2" => restricted_v2 = true,
            _ => {}
        }
        if !checker.usable(provider.scc) {
            if provider.scc.name() == "restricted" {
                denied_restricted = true;
            }
            errors.push(format!(
                "provider {:?}: Forbidden: not usable by user or serviceaccount",
                provider.scc.name()
            ));
            continue;
        }
        let mut copy = pod.clone();
        let found = provider.assign(&mut copy);
        if !found.is_empty() {
            errors.extend(found);
            continue;
        }
        if mutate || copy == *pod {
            return Ok((copy, provider));
        }
    }
    if restricted_v2
        && denied_restricted
        && let Some(restricted) = restricted
        && restricted.assign(&mut pod.clone()).is_empty()
    {
        errors.push(
            "no access to scc/restricted: Forbidden: the pod fails to validate against the `restricted-v2` security context constraint, but would validate successfully against the `restricted` security context constraint".into(),
        );
    }
    Err(errors)
}

enum UserStrategy {
    MustRunAs(i64),
    Range(i64, i64),
    NonRoot,
    Any,
}

/// One SCC ready to judge pods of one namespace.
struct Provider<'s> {
    scc: &'s Scc,
    user: UserStrategy,
    /// `MustRunAs` SELinux options (with the namespace's level), `None` for RunAsAny.
    selinux: Option<super::SeLinuxOptions>,
    fs_group: Option<Vec<IdRange>>,
    supplemental_groups: Option<Vec<IdRange>>,
    version: OpenShiftVersion,
}

fn namespace_blocks(namespace: &NamespaceAllocation, scc: &str) -> Result<Vec<(i64, i64)>, String> {
    let text = namespace
        .annotations
        .get(SUPPLEMENTAL_GROUPS_ANNOTATION)
        .or_else(|| namespace.annotations.get(UID_RANGE_ANNOTATION))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            format!(
                "unable to find pre-allocated group annotation for namespace {} while trying to configure SCC {scc}",
                namespace.name
            )
        })?;
    text.split(',').map(parse_block).collect()
}

impl<'s> Provider<'s> {
    fn new(scc: &'s Scc, namespace: &NamespaceAllocation, version: OpenShiftVersion) -> Result<Self, String> {
        let name = scc.name();
        let creating = |e: String| {
            format!(
                "error creating provider for SCC {name} in namespace {}: {e}",
                namespace.name
            )
        };
        let run_as = &scc.run_as_user;
        let user = match run_as.type_.as_str() {
            "MustRunAs" => UserStrategy::MustRunAs(
                run_as
                    .uid
                    .ok_or_else(|| creating("MustRunAs requires a UID".into()))?,
            ),
            "MustRunAsRange" => match (run_as.uid_range_min, run_as.uid_range_max) {
                (None, None) => {
                    let text = namespace
                        .annotations
                        .get(UID_RANGE_ANNOTATION)
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| {
                            format!(
                                "unable to find pre-allocated uid annotation for namespace {} while trying to configure SCC {name}",
                                namespace.name
                            )
                        })?;
                    let (min, max) = parse_block(text)?;
                    UserStrategy::Range(min, max)
                }
                (Some(min), Some(max)) => UserStrategy::Range(min, max),
                (None, _) => return Err(creating("MustRunAsRange requires a UIDRangeMin".into())),
                (_, None) => return Err(creating("MustRunAsRange requires a UIDRangeMax".into())),
            },
            "MustRunAsNonRoot" => UserStrategy::NonRoot,
            "RunAsAny" => UserStrategy::Any,
            other => return Err(creating(format!("Unrecognized RunAsUser strategy type {other}"))),
        };
        let selinux = match scc.se_linux_context.type_.as_str() {
            "MustRunAs" => {
                let mut options = scc.se_linux_context.se_linux_options.clone().unwrap_or_default();
                if options.level.is_empty() {
                    options.level = namespace
                        .annotations
                        .get(MCS_ANNOTATION)
                        .filter(|l| !l.is_empty())
                        .cloned()
                        .ok_or_else(|| {
                            format!(
                                "unable to find pre-allocated mcs annotation for namespace {} while trying to configure SCC {name}",
                                namespace.name
                            )
                        })?;
                }
                Some(options)
            }
            "RunAsAny" => None,
            other => {
                return Err(creating(format!(
                    "Unrecognized SELinuxContext strategy type {other}"
                )));
            }
        };
        let groups = |strategy: &super::GroupStrategy,
                      single: bool,
                      what: &str|
         -> Result<Option<Vec<IdRange>>, String> {
            match strategy.type_.as_str() {
                "RunAsAny" => Ok(None),
                "MustRunAs" if !strategy.ranges.is_empty() => Ok(Some(strategy.ranges.clone())),
                "MustRunAs" => {
                    let blocks = namespace_blocks(namespace, name)?;
                    Ok(Some(if single {
                        vec![IdRange {
                            min: blocks[0].0,
                            max: blocks[0].0,
                        }]
                    } else {
                        blocks
                            .iter()
                            .map(|(min, max)| IdRange { min: *min, max: *max })
                            .collect()
                    }))
                }
                other => Err(creating(format!("Unrecognized {what} strategy type {other}"))),
            }
        };
        Ok(Provider {
            scc,
            user,
            selinux,
            fs_group: groups(&scc.fs_group, true, "FSGroup")?,
            supplemental_groups: groups(&scc.supplemental_groups, false, "SupplementalGroups")?,
            version,
        })
    }

    fn path(&self) -> String {
        format!("provider {}: ", self.scc.name())
    }

    /// Writes the SCC's defaults into `pod` and returns every check that fails.
    fn assign(&self, pod: &mut Pod) -> Vec<String> {
        let mut errors = Vec::new();
        let spec_path = format!("{}.spec", self.path());
        self.create_pod_context(pod);
        self.validate_pod(pod, &format!("{spec_path}.securityContext"), &mut errors);
        let host_ports = host_port_errors(pod, &spec_path);
        let visited: Vec<(&'static str, usize, String, Option<SecurityContext>)> = containers(pod)
            .iter()
            .map(|c| (c.list, c.index, c.name.to_string(), c.context.cloned()))
            .collect();
        for (list, index, name, mut context) in visited {
            self.create_container_context(pod, &name, &mut context);
            if let Some(slot) = pod.spec.as_mut().and_then(|spec| context_slot(spec, list, index)) {
                slot.clone_from(&context);
            }
            let path = format!("{spec_path}.{list}[{index}]");
            self.validate_container(pod, context.as_ref(), &name, &path, &host_ports, &mut errors);
        }
        errors
    }

    fn create_pod_context(&self, pod: &mut Pod) {
        let generated_seccomp = self.seccomp_generate(pod);
        let spec = pod.spec.get_or_insert_default();
        let context = spec.security_context.get_or_insert_default();
        if context.supplemental_groups.is_none()
            && let Some(ranges) = &self.supplemental_groups
        {
            context.supplemental_groups = Some(vec![ranges[0].min]);
        }
        if context.fs_group.is_none()
            && let Some(ranges) = &self.fs_group
        {
            context.fs_group = Some(ranges[0].min);
        }
        if context.se_linux_options.is_none() {
            context.se_linux_options = self.selinux.as_ref().map(to_k8s_selinux);
        }
        if !generated_seccomp.is_empty() {
            if self.version.writes_fields() {
                context.seccomp_profile = field_for_annotation(&generated_seccomp);
            }
            pod.metadata
                .annotations
                .get_or_insert_default()
                .insert(POD_SECCOMP.into(), generated_seccomp);
        }
    }

    fn validate_pod(&self, pod: &Pod, path: &str, errors: &mut Vec<String>) {
        let spec = pod.spec.as_ref();
        let context = spec.and_then(|s| s.security_context.as_ref());
        let fs_groups: Vec<i64> = context.and_then(|c| c.fs_group).into_iter().collect();
        validate_groups(
            self.fs_group.as_deref(),
            &fs_groups,
            &format!("{path}.fsGroup"),
            errors,
        );
        let supplemental = context
            .and_then(|c| c.supplemental_groups.clone())
            .unwrap_or_default();
        validate_groups(
            self.supplemental_groups.as_deref(),
            &supplemental,
            &format!("{path}.supplementalGroups"),
            errors,
        );
        let pod_profile = annotation(pod, POD_SECCOMP)
            .filter(|a| !a.is_empty())
            .map(String::from)
            .or_else(|| {
                context
                    .and_then(|c| c.seccomp_profile.as_ref())
                    .map(annotation_for_field)
            })
            .unwrap_or_default();
        self.validate_seccomp_profile(
            &format!("pod.metadata.annotations[{POD_SECCOMP}]"),
            &pod_profile,
            errors,
        );
        self.validate_selinux(
            context.and_then(|c| c.se_linux_options.as_ref()),
            &format!("{path}.seLinuxOptions"),
            errors,
        );
        let spec_flag = |f: fn(&PodSpec) -> Option<bool>| spec.and_then(f).unwrap_or(false);
        let scc = self.scc;
        if !scc.allow_host_network && spec_flag(|s| s.host_network) {
            errors.push(format!(
                "{path}.hostNetwork: Invalid value: true: Host network is not allowed to be used"
            ));
        }
        if !scc.allow_host_pid && spec_flag(|s| s.host_pid) {
            errors.push(format!(
                "{path}.hostPID: Invalid value: true: Host PID is not allowed to be used"
            ));
        }
        if !scc.allow_host_ipc && spec_flag(|s| s.host_ipc) {
            errors.push(format!(
                "{path}.hostIPC: Invalid value: true: Host IPC is not allowed to be used"
            ));
        }
        if scc.user_namespace_level == "RequirePodLevel" && spec.and_then(|s| s.host_users) != Some(false) {
            errors.push(format!(
                "{path}.hostUsers: Invalid value: null: Host Users must be set to false"
            ));
        }
        for (i, sysctl) in context
            .and_then(|c| c.sysctls.as_ref())
            .into_iter()
            .flatten()
            .enumerate()
        {
            let name = sysctl.name.as_str();
            let at = format!("pod.spec.securityContext.sysctls[{i}]");
            if matches_pattern(&scc.forbidden_sysctls, name) {
                errors.push(format!("{at}: Forbidden: sysctl {name:?} is not allowed"));
            } else if !SAFE_SYSCTLS.contains(&name) && !matches_pattern(&scc.allowed_unsafe_sysctls, name) {
                errors.push(format!("{at}: Forbidden: unsafe sysctl {name:?} is not allowed"));
            }
        }
        let volumes = spec
            .and_then(|s| s.volumes.as_ref())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let allowed = scc.volumes.as_deref().unwrap_or_default();
        let allows_all = allowed.iter().any(|v| v == "*");
        if !allows_all {
            for (i, volume) in volumes.iter().enumerate() {
                let at = format!("spec.volumes[{i}]");
                match volume_type(volume) {
                    None => errors.push(format!(
                        "{at}: Invalid value: \"\": unknown volume type for volume"
                    )),
                    Some(kind) => {
                        let permitted = allowed.iter().any(|v| v == kind)
                            || (kind == "projected"
                                && allowed.iter().any(|v| v == "secret")
                                && only_service_account_token_sources(volume));
                        if !permitted {
                            errors.push(format!(
                                "{at}: Invalid value: {kind:?}: {kind} volumes are not allowed to be used"
                            ));
                        }
                    }
                }
            }
        }
        let allows_flex = allows_all || allowed.iter().any(|v| v == "flexVolume");
        if !scc.allowed_flex_volumes.is_empty() && allows_flex {
            for (i, volume) in volumes.iter().enumerate() {
                if let Some(flex) = &volume.flex_volume
                    && !scc.allowed_flex_volumes.iter().any(|f| f.driver == flex.driver)
                {
                    errors.push(format!(
                        "{path}.volumes[{i}].driver: Invalid value: {:?}: Flexvolume driver is not allowed to be used",
                        flex.driver
                    ));
                }
            }
        }
    }

    fn create_container_context(
        &self,
        pod: &Pod,
        container_name: &str,
        context: &mut Option<SecurityContext>,
    ) {
        let pod_context = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
        let pod_value = |f: fn(&PodSecurityContext) -> Option<i64>| pod_context.and_then(f);
        let mut c = context.clone().unwrap_or_default();
        let effective_user = c.run_as_user.or(pod_value(|p| p.run_as_user));
        if effective_user.is_none() {
            let generated = match self.user {
                UserStrategy::MustRunAs(uid) => Some(uid),
                UserStrategy::Range(min, _) => Some(min),
                UserStrategy::NonRoot | UserStrategy::Any => None,
            };
            if generated.is_some() {
                c.run_as_user = generated;
            }
        }
        let effective_selinux = c
            .se_linux_options
            .clone()
            .or_else(|| pod_context.and_then(|p| p.se_linux_options.clone()));
        if effective_selinux.is_none()
            && let Some(options) = &self.selinux
        {
            c.se_linux_options = Some(to_k8s_selinux(options));
        }
        if c.run_as_non_root
            .or(pod_context.and_then(|p| p.run_as_non_root))
            .is_none()
        {
            let user = c.run_as_user.or(pod_value(|p| p.run_as_user));
            let non_root = match user {
                None => matches!(self.user, UserStrategy::NonRoot),
                Some(uid) => uid > 0,
            };
            if non_root {
                c.run_as_non_root = Some(true);
            }
        }
        c.capabilities = self.generate_capabilities(c.capabilities.as_ref());
        if self.scc.read_only_root_filesystem && c.read_only_root_filesystem.is_none() {
            c.read_only_root_filesystem = Some(true);
        }
        let privileged = c.privileged == Some(true);
        let adds_sys_admin = c
            .capabilities
            .as_ref()
            .and_then(|caps| caps.add.as_ref())
            .is_some_and(|add| add.iter().any(|a| a == "CAP_SYS_ADMIN"));
        if self.version.writes_fields()
            && let Some(value) = annotation(pod, &format!("{CONTAINER_SECCOMP_PREFIX}{container_name}"))
        {
            c.seccomp_profile = field_for_annotation(value);
        }
        if let Some(default) = self.scc.default_allow_privilege_escalation
            && c.allow_privilege_escalation.is_none()
            && !privileged
            && !adds_sys_admin
        {
            c.allow_privilege_escalation = Some(default);
        }
        if self.scc.allow_privilege_escalation == Some(false) && c.allow_privilege_escalation.is_none() {
            c.allow_privilege_escalation = Some(false);
        }
        // Go's accessors create a container context only when they set something.
        if context.is_some() || c != SecurityContext::default() {
            *context = Some(c);
        }
    }

    fn generate_capabilities(&self, current: Option<&Capabilities>) -> Option<Capabilities> {
        let set = |list: Option<&Vec<String>>| -> BTreeSet<String> {
            list.into_iter().flatten().cloned().collect()
        };
        let container_add = set(current.and_then(|c| c.add.as_ref()));
        let container_drop = set(current.and_then(|c| c.drop.as_ref()));
        let default_add: BTreeSet<String> = self
            .scc
            .default_add_capabilities
            .iter()
            .filter(|c| !container_drop.contains(*c))
            .cloned()
            .collect();
        let add: BTreeSet<String> = default_add.union(&container_add).cloned().collect();
        let drop: BTreeSet<String> = self
            .scc
            .required_drop_capabilities
            .iter()
            .cloned()
            .chain(container_drop.iter().cloned())
            .collect();
        if add.len() == container_add.len() && drop.len() == container_drop.len() {
            return current.cloned();
        }
        let list = |s: BTreeSet<String>| (!s.is_empty()).then(|| s.into_iter().collect());
        Some(Capabilities {
            add: list(add),
            drop: list(drop),
        })
    }

    fn validate_container(
        &self,
        pod: &Pod,
        c: Option<&SecurityContext>,
        name: &str,
        path: &str,
        host_port_errors: &[String],
        errors: &mut Vec<String>,
    ) {
        let scc = self.scc;
        let spec = pod.spec.as_ref();
        let pod_context = spec.and_then(|s| s.security_context.as_ref());
        let run_as_user = c
            .and_then(|c| c.run_as_user)
            .or(pod_context.and_then(|p| p.run_as_user));
        let run_as_non_root = c
            .and_then(|c| c.run_as_non_root)
            .or(pod_context.and_then(|p| p.run_as_non_root));
        match self.user {
            UserStrategy::MustRunAs(uid) => match run_as_user {
                None => errors.push(format!("{path}.runAsUser: Required value")),
                Some(u) if u != uid => {
                    errors.push(format!("{path}.runAsUser: Invalid value: {u}: must be: {uid}"))
                }
                Some(_) => {}
            },
            UserStrategy::Range(min, max) => match run_as_user {
                None => errors.push(format!("{path}.runAsUser: Required value")),
                Some(u) if u < min || u > max => errors.push(format!(
                    "{path}.runAsUser: Invalid value: {u}: must be in the ranges: [{min}, {max}]"
                )),
                Some(_) => {}
            },
            UserStrategy::NonRoot => {
                if run_as_non_root.is_none() && run_as_user.is_none() {
                    errors.push(format!("{path}.runAsNonRoot: Required value: must be true"));
                } else if run_as_non_root == Some(false) {
                    errors.push(format!("{path}.runAsNonRoot: Invalid value: false: must be true"));
                } else if run_as_user == Some(0) {
                    errors.push(format!(
                        "{path}.runAsUser: Invalid value: 0: running with the root UID is forbidden"
                    ));
                }
            }
            UserStrategy::Any => {}
        }
        let selinux = c
            .and_then(|c| c.se_linux_options.as_ref())
            .or(pod_context.and_then(|p| p.se_linux_options.as_ref()));
        self.validate_selinux(selinux, &format!("{path}.seLinuxOptions"), errors);
        let profile = profile_for_container(pod, c, name);
        self.validate_seccomp_profile(
            &format!("pod.metadata.annotations[{CONTAINER_SECCOMP_PREFIX}{name}]"),
            &profile,
            errors,
        );
        if !scc.allow_privileged_container && c.and_then(|c| c.privileged) == Some(true) {
            errors.push(format!(
                "{path}.privileged: Invalid value: true: Privileged containers are not allowed"
            ));
        }
        self.validate_capabilities(c.and_then(|c| c.capabilities.as_ref()), path, errors);
        let flag = |f: fn(&PodSpec) -> Option<bool>| spec.and_then(f).unwrap_or(false);
        if !scc.allow_host_network && flag(|s| s.host_network) {
            errors.push(format!(
                "{path}.hostNetwork: Invalid value: true: Host network is not allowed to be used"
            ));
        }
        if !scc.allow_host_ports {
            errors.extend(host_port_errors.iter().cloned());
        }
        if !scc.allow_host_pid && flag(|s| s.host_pid) {
            errors.push(format!(
                "{path}.hostPID: Invalid value: true: Host PID is not allowed to be used"
            ));
        }
        if !scc.allow_host_ipc && flag(|s| s.host_ipc) {
            errors.push(format!(
                "{path}.hostIPC: Invalid value: true: Host IPC is not allowed to be used"
            ));
        }
        if scc.read_only_root_filesystem {
            match c.and_then(|c| c.read_only_root_filesystem) {
                None => errors.push(format!(
                    "{path}.readOnlyRootFilesystem: Invalid value: null: ReadOnlyRootFilesystem may not be nil and must be set to true"
                )),
                Some(false) => errors.push(format!(
                    "{path}.readOnlyRootFilesystem: Invalid value: false: ReadOnlyRootFilesystem must be set to true"
                )),
                Some(true) => {}
            }
        }
        if scc.allow_privilege_escalation == Some(false) {
            match c.and_then(|c| c.allow_privilege_escalation) {
                None => errors.push(format!(
                    "{path}.allowPrivilegeEscalation: Invalid value: null: Allowing privilege escalation for containers is not allowed"
                )),
                Some(true) => errors.push(format!(
                    "{path}.allowPrivilegeEscalation: Invalid value: true: Allowing privilege escalation for containers is not allowed"
                )),
                Some(false) => {}
            }
        }
    }

    fn validate_capabilities(&self, caps: Option<&Capabilities>, path: &str, errors: &mut Vec<String>) {
        let scc = self.scc;
        let Some(caps) = caps else {
            if !scc.default_add_capabilities.is_empty() || !scc.required_drop_capabilities.is_empty() {
                errors.push(format!(
                    "{path}.capabilities: Invalid value: null: required capabilities are not set on the securityContext"
                ));
            }
            return;
        };
        if scc.allowed_capabilities.iter().any(|c| c == "*") {
            return;
        }
        for add in caps.add.iter().flatten() {
            if !scc.default_add_capabilities.contains(add) && !scc.allowed_capabilities.contains(add) {
                errors.push(format!(
                    "{path}.capabilities.add: Invalid value: {add:?}: capability may not be added"
                ));
            }
        }
        let drops: Vec<&String> = caps.drop.iter().flatten().collect();
        for required in &scc.required_drop_capabilities {
            if !drops.contains(&required) {
                errors.push(format!(
                    "{path}.capabilities.drop: Invalid value: {drops:?}: {required} is required to be dropped but was not found"
                ));
            }
        }
    }

    fn validate_selinux(&self, options: Option<&SELinuxOptions>, path: &str, errors: &mut Vec<String>) {
        let Some(expected) = &self.selinux else {
            return;
        };
        let Some(actual) = options else {
            errors.push(format!("{path}: Required value"));
            return;
        };
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        if !equal_levels(&expected.level, &text(&actual.level)) {
            errors.push(format!(
                "{path}.level: Invalid value: {:?}: must be {}",
                text(&actual.level),
                expected.level
            ));
        }
        for (field, want, got) in [
            ("role", &expected.role, text(&actual.role)),
            ("type", &expected.type_, text(&actual.type_)),
            ("user", &expected.user, text(&actual.user)),
        ] {
            if *want != got {
                errors.push(format!("{path}.{field}: Invalid value: {got:?}: must be {want}"));
            }
        }
    }

    /// The profile OpenShift writes into a pod that names none at pod level: the pod's own
    /// annotation, else its field, else the first `seccompProfiles` entry that is not `*`.
    fn seccomp_generate(&self, pod: &Pod) -> String {
        if let Some(value) = annotation(pod, POD_SECCOMP).filter(|v| !v.is_empty()) {
            return value.to_string();
        }
        if let Some(field) = pod_seccomp_field(pod) {
            return annotation_for_field(field);
        }
        self.allowed_profiles().next().cloned().unwrap_or_default()
    }

    fn allowed_profiles(&self) -> impl Iterator<Item = &String> {
        self.scc.seccomp_profiles.iter().filter(|p| p.as_str() != "*")
    }

    fn validate_seccomp_profile(&self, path: &str, profile: &str, errors: &mut Vec<String>) {
        let any = self.scc.seccomp_profiles.iter().any(|p| p == "*");
        let allowed: Vec<&String> = self.allowed_profiles().collect();
        if !any && allowed.is_empty() && !profile.is_empty() {
            errors.push(format!("{path}: Forbidden: seccomp may not be set"));
            return;
        }
        if (allowed.is_empty() && profile.is_empty()) || any {
            return;
        }
        let runtime_default_allowed = allowed
            .iter()
            .any(|p| *p == "runtime/default" || *p == "docker/default");
        let is_runtime_default = profile == "runtime/default" || profile == "docker/default";
        if allowed.iter().any(|p| *p == profile) || (runtime_default_allowed && is_runtime_default) {
            return;
        }
        let listed: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
        errors.push(format!(
            "{path}: Forbidden: {profile} is not an allowed seccomp profile. Valid values are [{}]",
            listed.join(" ")
        ));
    }
}

fn validate_groups(ranges: Option<&[IdRange]>, groups: &[i64], path: &str, errors: &mut Vec<String>) {
    let Some(ranges) = ranges else {
        return;
    };
    if groups.is_empty() && !ranges.is_empty() {
        errors.push(format!(
            "{path}: Invalid value: []: unable to validate empty groups against required ranges"
        ));
    }
    for group in groups {
        if !ranges.iter().any(|r| *group >= r.min && *group <= r.max) {
            errors.push(format!(
                "{path}: Invalid value: {groups:?}: {group} is not an allowed group"
            ));
        }
    }
}

fn equal_levels(expected: &str, actual: &str) -> bool {
    if expected == actual {
        return true;
    }
    let (Some((es, ec)), Some((as_, ac))) = (expected.split_once(':'), actual.split_once(':')) else {
        return false;
    };
    if es != as_ {
        return false;
    }
    let mut e: Vec<&str> = ec.split(',').collect();
    let mut a: Vec<&str> = ac.split(',').collect();
    e.sort_unstable();
    a.sort_unstable();
    e == a
}

fn to_k8s_selinux(options: &super::SeLinuxOptions) -> SELinuxOptions {
    let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
    SELinuxOptions {
        user: text(&options.user),
        role: text(&options.role),
        type_: text(&options.type_),
        level: text(&options.level),
    }
}

fn matches_pattern(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

/// The annotation spelling of a seccomp field ("" for a Localhost field without a path or an
/// unknown type).
fn annotation_for_field(field: &SeccompProfile) -> String {
    match field.type_.as_str() {
        "Unconfined" => "unconfined".into(),
        "RuntimeDefault" => "runtime/default".into(),
        "Localhost" => field
            .localhost_profile
            .as_ref()
            .map(|p| format!("localhost/{p}"))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The field for an annotation value; `None` for `localhost/` without a path and for values that
/// are not profiles.
fn field_for_annotation(value: &str) -> Option<SeccompProfile> {
    let profile = |type_: &str, path: Option<String>| SeccompProfile {
        type_: type_.into(),
        localhost_profile: path,
    };
    match value {
        "unconfined" => Some(profile("Unconfined", None)),
        "runtime/default" | "docker/default" => Some(profile("RuntimeDefault", None)),
        _ => value
            .strip_prefix("localhost/")
            .filter(|p| !p.is_empty())
            .map(|p| profile("Localhost", Some(p.to_string()))),
    }
}

/// The profile OpenShift checks for a container: its field, its annotation, the pod's field, the
/// pod's annotation.
fn profile_for_container(pod: &Pod, context: Option<&SecurityContext>, name: &str) -> String {
    if let Some(field) = context.and_then(|c| c.seccomp_profile.as_ref()) {
        return annotation_for_field(field);
    }
    if let Some(value) = annotation(pod, &format!("{CONTAINER_SECCOMP_PREFIX}{name}")) {
        return value.to_string();
    }
    if let Some(field) = pod_seccomp_field(pod) {
        return annotation_for_field(field);
    }
    annotation(pod, POD_SECCOMP).unwrap_or_default().to_string()
}

/// One container of a pod, as OpenShift visits them: init containers, containers, ephemeral
/// containers.
struct ContainerRef<'p> {
    list: &'static str,
    index: usize,
    name: &'p str,
    context: Option<&'p SecurityContext>,
    ports: Option<&'p Vec<ContainerPort>>,
}

fn containers<'p>(pod: &'p Pod) -> Vec<ContainerRef<'p>> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let of = |list: &'static str, containers: &'p [Container]| {
        containers.iter().enumerate().map(move |(index, c)| ContainerRef {
            list,
            index,
            name: &c.name,
            context: c.security_context.as_ref(),
            ports: c.ports.as_ref(),
        })
    };
    let init = of(
        "initContainers",
        spec.init_containers.as_deref().unwrap_or_default(),
    );
    let regular = of("containers", &spec.containers);
    let ephemeral = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(index, c)| ContainerRef {
            list: "ephemeralContainers",
            index,
            name: &c.name,
            context: c.security_context.as_ref(),
            ports: c.ports.as_ref(),
        });
    init.chain(regular).chain(ephemeral).collect()
}

/// The security context of one container, to write.
fn context_slot<'p>(
    spec: &'p mut PodSpec,
    list: &str,
    index: usize,
) -> Option<&'p mut Option<SecurityContext>> {
    match list {
        "initContainers" => spec
            .init_containers
            .as_mut()?
            .get_mut(index)
            .map(|c| &mut c.security_context),
        "containers" => spec.containers.get_mut(index).map(|c| &mut c.security_context),
        _ => spec
            .ephemeral_containers
            .as_mut()?
            .get_mut(index)
            .map(|c| &mut c.security_context),
    }
}

/// Host ports of every container, as OpenShift reports them (under each container it checks).
fn host_port_errors(pod: &Pod, spec_path: &str) -> Vec<String> {
    let mut errors = Vec::new();
    for c in containers(pod) {
        for port in c.ports.into_iter().flatten() {
            if let Some(host_port) = port.host_port.filter(|p| *p > 0) {
                errors.push(format!(
                    "{spec_path}.{}[{}].hostPort: Invalid value: {host_port}: Host ports are not allowed to be used",
                    c.list, c.index
                ));
            }
        }
    }
    errors
}

/// The pod-level seccomp field.
fn pod_seccomp_field(pod: &Pod) -> Option<&SeccompProfile> {
    pod.spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|c| c.seccomp_profile.as_ref())
}

fn volume_type(v: &Volume) -> Option<&'static str> {
    let kinds: [(bool, &'static str); 31] = [
        (v.host_path.is_some(), "hostPath"),
        (v.empty_dir.is_some(), "emptyDir"),
        (v.gce_persistent_disk.is_some(), "gcePersistentDisk"),
        (v.aws_elastic_block_store.is_some(), "awsElasticBlockStore"),
        (v.git_repo.is_some(), "gitRepo"),
        (v.secret.is_some(), "secret"),
        (v.nfs.is_some(), "nfs"),
        (v.iscsi.is_some(), "iscsi"),
        (v.glusterfs.is_some(), "glusterfs"),
        (v.persistent_volume_claim.is_some(), "persistentVolumeClaim"),
        (v.rbd.is_some(), "rbd"),
        (v.flex_volume.is_some(), "flexVolume"),
        (v.cinder.is_some(), "cinder"),
        (v.cephfs.is_some(), "cephFS"),
        (v.flocker.is_some(), "flocker"),
        (v.downward_api.is_some(), "downwardAPI"),
        (v.fc.is_some(), "fc"),
        (v.azure_file.is_some(), "azureFile"),
        (v.config_map.is_some(), "configMap"),
        (v.vsphere_volume.is_some(), "vsphereVolume"),
        (v.quobyte.is_some(), "quobyte"),
        (v.azure_disk.is_some(), "azureDisk"),
        (v.photon_persistent_disk.is_some(), "photonPersistentDisk"),
        (v.projected.is_some(), "projected"),
        (v.portworx_volume.is_some(), "portworxVolume"),
        (v.scale_io.is_some(), "scaleIO"),
        (v.storageos.is_some(), "storageOS"),
        (v.csi.is_some(), "csi"),
        (v.ephemeral.is_some(), "ephemeral"),
        (v.image.is_some(), "image"),
        (false, ""),
    ];
    kinds.iter().find(|(present, _)| *present).map(|(_, kind)| *kind)
}

/// A projected volume with only what the ServiceAccount plugin injects (the token, the cluster
/// CA bundles, the namespace): allowed wherever secrets are.
fn only_service_account_token_sources(volume: &Volume) -> bool {
    let Some(projected) = &volume.projected else {
        return false;
    };
    projected.sources.iter().flatten().all(|s| {
        if s.service_account_token.is_none() && s.config_map.is_none() && s.downward_api.is_none() {
            return false;
        }
        if let Some(token) = &s.service_account_token
            && (token.path != "token" || token.audience.as_deref().is_some_and(|a| !a.is_empty()))
        {
            return false;
        }
        if let Some(config_map) = &s.config_map {
            let items = config_map.items.as_deref().unwrap_or_default();
            let single = |key: &str| items.len() == 1 && items[0].key == key && items[0].path == key;
            let ok = match config_map.name.as_str() {
                "kube-root-ca.crt" => single("ca.crt"),
                "openshift-service-ca.crt" => single("service-ca.crt"),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
        if let Some(downward) = &s.downward_api {
            for item in downward.items.iter().flatten() {
                let field = item.field_ref.as_ref();
                if item.path != "namespace"
                    || field.is_none_or(|f| {
                        f.api_version.as_deref() != Some("v1") || f.field_path != "metadata.namespace"
                    })
                {
                    return false;
                }
            }
        }
        true
    })
}

/// Kubernetes 1.24 to 1.26 copy a seccomp annotation into a missing field, and a field into a
/// missing annotation, on create.
fn sync_seccomp_annotations(pod: &mut Pod) {
    let visited: Vec<(&'static str, usize, String)> = containers(pod)
        .iter()
        .map(|c| (c.list, c.index, c.name.to_string()))
        .collect();
    let annotations = pod.metadata.annotations.get_or_insert_default();
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    let context = spec.security_context.get_or_insert_default();
    sync_one(annotations, POD_SECCOMP.to_string(), &mut context.seccomp_profile);
    for (list, index, name) in visited {
        let key = format!("{CONTAINER_SECCOMP_PREFIX}{name}");
        let Some(context) = context_slot(spec, list, index) else {
            continue;
        };
        let has_field = context.as_ref().is_some_and(|c| c.seccomp_profile.is_some());
        if has_field || annotations.contains_key(&key) {
            let c = context.get_or_insert_default();
            sync_one(annotations, key, &mut c.seccomp_profile);
        }
    }
}

fn sync_one(annotations: &mut BTreeMap<String, String>, key: String, field: &mut Option<SeccompProfile>) {
    match (annotations.get(&key), field.as_ref()) {
        (None, Some(f)) => {
            let value = annotation_for_field(f);
            if !value.is_empty() {
                annotations.insert(key, value);
            }
        }
        (Some(value), None) => *field = field_for_annotation(value),
        _ => {}
    }
}

/// Kubernetes' own checks on create that concern the simulation: seccomp fields and annotations,
/// and no ephemeral containers (they are added later, through their subresource).
fn validate_seccomp(pod: &Pod) -> Result<(), Rejection> {
    let mut errors = Vec::new();
    if pod
        .spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_ref())
        .is_some_and(|e| !e.is_empty())
    {
        errors.push("spec.ephemeralContainers: Forbidden: cannot be set on create".to_string());
    }
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    for (key, value) in &annotations {
        if (key == POD_SECCOMP || key.starts_with(CONTAINER_SECCOMP_PREFIX)) && !valid_annotation(value) {
            errors.push(format!(
                "metadata.annotations[{key}]: Invalid value: {value:?}: must be a valid seccomp profile"
            ));
        }
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let windows = spec.os.as_ref().is_some_and(|os| os.name == "windows");
    let pod_field = spec
        .security_context
        .as_ref()
        .and_then(|c| c.seccomp_profile.as_ref());
    let mut check = |path: String, field: Option<&SeccompProfile>, annotation_key: &str| {
        let Some(field) = field else {
            return;
        };
        if windows {
            errors.push(format!("{path}: Forbidden: cannot be set for a windows pod"));
        }
        match field.type_.as_str() {
            "Localhost" => match &field.localhost_profile {
                None => errors.push(format!(
                    "{path}.localhostProfile: Required value: must be set when seccomp type is Localhost"
                )),
                Some(p) if !valid_local_path(p) => errors.push(format!(
                    "{path}.localhostProfile: Invalid value: {p:?}: must be a relative path without '..'"
                )),
                Some(_) => {}
            },
            "RuntimeDefault" | "Unconfined" => {
                if field.localhost_profile.is_some() {
                    errors.push(format!(
                        "{path}.localhostProfile: Invalid value: can only be set when seccomp type is Localhost"
                    ));
                }
            }
            "" => errors.push(format!(
                "{path}.type: Required value: type is required when seccompProfile is set"
            )),
            other => errors.push(format!("{path}.type: Unsupported value: {other:?}")),
        }
        if let Some(value) = annotations.get(annotation_key)
            && !annotation_matches_field(value, field)
        {
            errors.push(format!(
                "{path}: Forbidden: seccomp type in annotation and field must match"
            ));
        }
    };
    check(
        "spec.securityContext.seccompProfile".into(),
        pod_field,
        POD_SECCOMP,
    );
    for c in containers(pod) {
        check(
            format!("spec.{}[{}].securityContext.seccompProfile", c.list, c.index),
            c.context.and_then(|c| c.seccomp_profile.as_ref()),
            &format!("{CONTAINER_SECCOMP_PREFIX}{}", c.name),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Rejection {
            message: format!("Pod {:?} is invalid: [{}]", pod_name(pod), errors.join(", ")),
        })
    }
}

fn valid_local_path(path: &str) -> bool {
    !path.starts_with('/') && !path.split('/').any(|part| part == "..")
}

fn valid_annotation(value: &str) -> bool {
    matches!(value, "runtime/default" | "docker/default" | "unconfined")
        || value.strip_prefix("localhost/").is_some_and(valid_local_path)
}

fn annotation_matches_field(value: &str, field: &SeccompProfile) -> bool {
    match field.type_.as_str() {
        "Unconfined" => value == "unconfined",
        "RuntimeDefault" => value == "runtime/default" || value == "docker/default",
        "Localhost" => value
            .strip_prefix("localhost/")
            .is_some_and(|p| field.localhost_profile.as_deref() == Some(p)),
        _ => true,
    }
}
