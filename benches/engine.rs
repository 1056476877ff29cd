//! Criterion benchmark of the pure engine (target P5: at least 1,000,000 evaluations per second
//! per core) on a realistic mix of pod shapes.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use seccomp_sentinel::{
    api::KubeletSeccompDefault,
    engine::{self, Facts, NodeFacts, PodView, SccDefaults},
};
use serde_json::json;

fn mix() -> Vec<PodView> {
    (0..300)
        .map(|i| {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": { "name": format!("p{i}"), "annotations": if i % 10 == 0 { json!({ "openshift.io/scc": "restricted-v2" }) } else { json!({}) } },
                "spec": {
                    "securityContext": if i % 3 == 0 { json!({ "seccompProfile": { "type": "RuntimeDefault" } }) } else { json!({}) },
                    "initContainers": if i % 4 == 0 { json!([{ "name": "init", "image": "i" }]) } else { json!([]) },
                    "containers": [
                        { "name": "app", "image": "i", "securityContext": if i % 7 == 0 { json!({ "privileged": true }) } else { json!({}) } },
                        { "name": "proxy", "image": "i", "securityContext": if i % 3 == 1 { json!({ "seccompProfile": { "type": "Unconfined" } }) } else { json!({}) } }
                    ]
                }
            }))
            .expect("pod");
            PodView::from_pod(&pod)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let views = mix();
    let mut sccs = SccDefaults::default();
    sccs.insert("restricted-v2", &["runtime/default".to_string()]);
    let node = NodeFacts {
        os: seccomp_sentinel::engine::NodeOs::Linux,
        kubelet_minor: Some(33),
        seccomp_default: KubeletSeccompDefault::False,
    };
    let facts = Facts {
        node: Some(&node),
        unknown_node_seccomp_default: KubeletSeccompDefault::False,
        sccs: &sccs,
    };
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(views.len() as u64));
    group.bench_function("evaluate 300 pods", |b| {
        b.iter(|| {
            for view in &views {
                std::hint::black_box(engine::evaluate(std::hint::black_box(view), &facts));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
