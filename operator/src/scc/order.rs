//! The order in which OpenShift tries SCCs: higher priority first, then the more restrictive
//! (fewer points), then by name.

use std::cmp::Ordering;

use super::Scc;

const PRIVILEGED: i64 = 1_600_000;
const HOST_PORTS: i64 = 800_000;
const HOST_NETWORK: i64 = 400_000;
const HOST_VOLUME: i64 = 200_000;
const NON_TRIVIAL_VOLUME: i64 = 100_000;
const RUN_AS_ANY: i64 = 40_000;
const RUN_AS_NON_ROOT: i64 = 30_000;
const RUN_AS_RANGE: i64 = 20_000;
const RUN_AS_USER: i64 = 10_000;
const CAP_BASE: i64 = 5000;
const CAP_DEFAULT_ADD_EACH: i64 = 300;
const CAP_ALLOW_ALL: i64 = 4000;
const CAP_ALLOW_EACH: i64 = 10;
const CAP_DROP_ALL: i64 = -3000;
const CAP_DROP_EACH: i64 = -50;

/// Points of a strategy type; the SELinux types share the user strategy's table, as in OpenShift
/// (SELinux `MustRunAs` counts as a fixed user, `RunAsAny` as any user).
fn strategy_points(type_: &str) -> i64 {
    match type_ {
        "RunAsAny" => RUN_AS_ANY,
        "MustRunAsNonRoot" => RUN_AS_NON_ROOT,
        "MustRunAsRange" => RUN_AS_RANGE,
        "MustRunAs" => RUN_AS_USER,
        _ => 0,
    }
}

fn volume_points(scc: &Scc) -> i64 {
    let volumes = scc.volumes.as_deref().unwrap_or_default();
    if volumes.iter().any(|v| v == "hostPath" || v == "*") {
        return HOST_VOLUME;
    }
    let trivial = [
        "secret",
        "configMap",
        "emptyDir",
        "downwardAPI",
        "projected",
        "none",
    ];
    if volumes.iter().any(|v| !trivial.contains(&v.as_str())) {
        NON_TRIVIAL_VOLUME
    } else {
        0
    }
}

fn capability_points(scc: &Scc) -> i64 {
    let has = |name: &str, list: &[String]| list.iter().any(|c| c.to_ascii_uppercase() == name);
    let mut points = CAP_BASE + CAP_DEFAULT_ADD_EACH * scc.default_add_capabilities.len() as i64;
    if has("*", &scc.allowed_capabilities) || has("ALL", &scc.allowed_capabilities) {
        points += CAP_ALLOW_ALL;
    } else {
        points += CAP_ALLOW_EACH * scc.allowed_capabilities.len() as i64;
    }
    if has("ALL", &scc.required_drop_capabilities) {
        points += CAP_DROP_ALL;
    } else {
        points += CAP_DROP_EACH * scc.required_drop_capabilities.len() as i64;
    }
    points.clamp(0, 9999)
}

/// How permissive an SCC is: the lower, the more restrictive.
pub fn points(scc: &Scc) -> i64 {
    let mut total = 0;
    if scc.allow_privileged_container {
        total += PRIVILEGED;
    }
    total += volume_points(scc);
    if scc.allow_host_network {
        total += HOST_NETWORK;
    }
    if scc.allow_host_ports {
        total += HOST_PORTS;
    }
    total += capability_points(scc);
    total += strategy_points(&scc.se_linux_context.type_);
    total += strategy_points(&scc.run_as_user.type_);
    total
}

/// OpenShift's admission order.
pub fn admission_order(a: &Scc, b: &Scc) -> Ordering {
    let priority = |s: &Scc| s.priority.unwrap_or(0);
    priority(b)
        .cmp(&priority(a))
        .then_with(|| points(a).cmp(&points(b)))
        .then_with(|| a.name().cmp(b.name()))
}
