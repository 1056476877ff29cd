//! Test helper: installs a seccomp filter on itself (refusing only acct(2)) when run with
//! `filter`, or none with `plain`, prints "ready", and waits until its standard input closes.
//! The node agent's tests read its `/proc/<pid>/status`.
use std::{collections::BTreeMap, io::Read};

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    if mode == "filter" {
        let arch = TargetArch::try_from(std::env::consts::ARCH).expect("a supported architecture");
        // acct(2), which nothing here uses: refused; everything else allowed.
        let acct: i64 = if cfg!(target_arch = "aarch64") { 89 } else { 163 };
        let rules = BTreeMap::from([(acct, Vec::new())]);
        let filter =
            SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(1), arch).expect("filter");
        let program: BpfProgram = filter.try_into().expect("compiled filter");
        seccompiler::apply_filter(&program).expect("seccomp filter applied");
    }
    println!("ready");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
