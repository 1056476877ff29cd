//! Every invalid policy of `tests/policies/invalid/` is rejected by the real API server with a
//! message a person understands; every sample in `config/samples/` is accepted.
use std::path::{Path, PathBuf};

use crate::support;

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn invalid_policies_are_rejected_at_admission() {
    let cluster = support::cluster();
    let dir = sentinel_testenv::repository_root().join("tests/policies/invalid");
    let files = yaml_files(&dir);
    assert!(files.len() >= 20, "the corpus holds {} policies", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks an '# expect: ' first line", file.display()));
        let path = file.display().to_string();
        match cluster.try_kubectl(&["create", "--dry-run=server", "-f", &path]) {
            Ok(out) => failures.push(format!("{path}: accepted ({})", out.trim())),
            Err(e) if e.to_string().contains(expected) => {}
            Err(e) => failures.push(format!("{path}: rejected without {expected:?}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sample_policies_are_accepted() {
    let cluster = support::cluster();
    let dir = sentinel_testenv::repository_root().join("config/samples");
    let policies: Vec<PathBuf> = yaml_files(&dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("policy-"))
        })
        .collect();
    assert!(policies.len() >= 3);
    for file in policies {
        let path = file.display().to_string();
        let out = cluster.kubectl(&["create", "--dry-run=server", "-f", &path, "-o", "name"]);
        assert!(
            out.contains("seccomppolicy.seccomp.sentinel.dev/"),
            "{path}: {out}"
        );
    }
}
