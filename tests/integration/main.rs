//! Integration tests against a real control plane (etcd, kube-apiserver, kube-controller-manager
//! built by `make testenv`), or against the cluster named by `SENTINEL_TEST_KUBECONFIG`.
mod support;

mod agent;
mod audit;
mod bundle;
mod client;
mod controller;
mod deploy;
mod faults;
mod monitoring;
mod node;
mod olm;
mod policies;
mod policy_admission;
mod scc_oracle;
mod smoke;
mod strength;
