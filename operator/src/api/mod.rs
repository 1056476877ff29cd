//! The seccomp-sentinel API (`seccomp.sentinel.dev/v1alpha1`): plain types, no I/O. The CRDs in
//! `crds/` are generated from these (`seccomp-sentinel crds`).

mod policy;
mod status;

pub use policy::*;
pub use status::*;

pub const GROUP: &str = "seccomp.sentinel.dev";
pub const VERSION: &str = "v1alpha1";

/// Label on every SeccompStatus (and, with `action: Label`, on the pod): the pod's summary profile.
pub const PROFILE_LABEL: &str = "seccomp.sentinel.dev/profile";
/// Label set to "true" on pods that violate a `Label` or `Evict` policy.
pub const VIOLATION_LABEL: &str = "seccomp.sentinel.dev/violation";
/// The labels the operator sets on pods from its verdicts. A pod selector that reads them would
/// make a verdict depend on itself: the label set by one pass changes what the next selects, and
/// the pod is labelled and unlabelled for ever. The CRD refuses them (a CEL rule) and the
/// controller too (for policies stored before that rule).
pub const OUTCOME_LABELS: [&str; 2] = [PROFILE_LABEL, VIOLATION_LABEL];
/// The field manager of the controller's writes.
pub const CONTROLLER_MANAGER: &str = "seccomp-sentinel";

/// All CRDs of the API, in a stable order.
pub fn crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> {
    use kube::CustomResourceExt;
    // A SeccompStatus is a report written whole, in one server-side apply (object, label, owner,
    // spec and status): no status subresource, so the first write of a pod's status carries its
    // content and one field manager owns it.
    let mut status = SeccompStatus::crd();
    for version in &mut status.spec.versions {
        if let Some(subresources) = version.subresources.as_mut() {
            subresources.status = None;
        }
        // Each condition is owned whole by the one that writes it (the controller, or the node
        // agent for `RuntimeVerified`): the managed fields name one key per condition, not one
        // path per condition field, and each writer's apply leaves the other's conditions alone.
        if let Some(conditions) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|s| s.properties.as_mut())
            .and_then(|p| p.get_mut("status"))
            .and_then(|s| s.properties.as_mut())
            .and_then(|p| p.get_mut("conditions"))
            .and_then(|c| c.items.as_mut())
            && let k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(item) =
                conditions
        {
            item.x_kubernetes_map_type = Some("atomic".into());
        }
        if version
            .subresources
            .as_ref()
            .is_some_and(|s| s.scale.is_none() && s.status.is_none())
        {
            version.subresources = None;
        }
    }
    let mut crds = vec![status, SeccompPolicy::crd()];
    for crd in &mut crds {
        tidy_schemas(crd);
    }
    crds
}

/// Joins the lines of each paragraph of every description in `crd`: doc comments are wrapped at
/// 100 columns, and `kubectl explain`, which wraps text itself, would keep those breaks too. And
/// an optional enum (an `Option` field) offers no `null`: absent already means none, and
/// `kubectl explain` lists a `null` value as `<no value>`. (Without `nullable`, the API server
/// drops a `null` a client sends, which is absent again.)
fn tidy_schemas(
    crd: &mut k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Array(values)) = map.get_mut("enum")
                    && values.iter().any(serde_json::Value::is_null)
                {
                    values.retain(|v| !v.is_null());
                    map.remove("nullable");
                }
                for (key, value) in map.iter_mut() {
                    match value {
                        serde_json::Value::String(text) if key == "description" => {
                            *text = unwrap_paragraphs(text);
                        }
                        _ => walk(value),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    // A CRD is plain data: it goes to JSON and back unchanged but for the descriptions.
    let Ok(mut value) = serde_json::to_value(&*crd) else {
        return;
    };
    walk(&mut value);
    if let Ok(unwrapped) = serde_json::from_value(value) {
        *crd = unwrapped;
    }
}

/// `text` with the line breaks inside each paragraph (paragraphs end at a blank line) made spaces.
fn unwrap_paragraphs(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The YAML of one CRD as committed under `crds/`.
pub fn crd_yaml(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Result<String, serde_saphyr::SerializeError> {
    let body = serde_saphyr::to_string(crd)?;
    Ok(format!(
        "# Generated by `seccomp-sentinel crds` (make crds); do not edit.\n---\n{body}"
    ))
}

/// File name of a CRD under `crds/`.
pub fn crd_file_name(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_crds_match_the_rust_types() {
        // Found at run time, not compiled in: cargo reuses a build made in another clone.
        let dir = sentinel_testenv::repository_root().join("crds");
        for crd in crds() {
            let path = dir.join(crd_file_name(&crd));
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            let generated = crd_yaml(&crd).expect("serializable CRD");
            assert!(
                committed == generated,
                "{} is stale or missing: run `make crds`",
                path.display()
            );
        }
    }

    /// Every property of both CRDs, with its schema, by path (`.status.containers[].name`).
    fn properties(schema: &serde_json::Value, path: &str, found: &mut Vec<(String, serde_json::Value)>) {
        if let Some(props) = schema["properties"].as_object() {
            for (name, prop) in props {
                let prop_path = format!("{path}.{name}");
                found.push((prop_path.clone(), prop.clone()));
                properties(prop, &prop_path, found);
            }
        }
        if schema["items"].is_object() {
            properties(&schema["items"], &format!("{path}[]"), found);
        }
    }

    /// Every property of both generated CRDs: kind, path and schema.
    fn every_property() -> Vec<(String, String, serde_json::Value)> {
        let mut all = Vec::new();
        for crd in crds() {
            let crd = serde_json::to_value(&crd).expect("json");
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or("?").to_string();
            let mut found = Vec::new();
            properties(
                &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
                "",
                &mut found,
            );
            assert!(found.len() > 50, "{kind}: only {} properties found", found.len());
            all.extend(
                found
                    .into_iter()
                    .map(|(path, schema)| (kind.clone(), path, schema)),
            );
        }
        all
    }

    const FOR_OTHER_READERS: [&str; 4] = ["[`", ".rs`", "See `", "marshal"];

    #[test]
    fn every_field_is_described_for_kubectl_explain() {
        let mut undescribed = Vec::new();
        let mut for_other_readers = Vec::new();
        for (kind, path, schema) in every_property() {
            match schema["description"].as_str() {
                None | Some("") => undescribed.push(format!("{kind}{path}")),
                // Rustdoc links, source file names and a Go type's own doc (`Time is a wrapper
                // around time.Time which supports correct marshaling ...`) mean nothing to a
                // kubectl user.
                Some(text) if FOR_OTHER_READERS.iter().any(|t| text.contains(t)) => {
                    for_other_readers.push(format!("{kind}{path}: {text}"))
                }
                Some(_) => {}
            }
        }
        assert!(
            undescribed.is_empty(),
            "no description (kubectl explain shows <no description>): {undescribed:#?}"
        );
        assert!(
            for_other_readers.is_empty(),
            "descriptions written for Rust or Go readers: {for_other_readers:#?}"
        );
    }

    /// The SeccompStatus CRD's schema, as JSON.
    fn seccomp_status_schema() -> serde_json::Value {
        let crd = serde_json::to_value(&crds()[0]).expect("json");
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    #[test]
    fn descriptions_break_lines_only_between_paragraphs() {
        assert_eq!(
            unwrap_paragraphs("one\ntwo, wrapped\n\nthree\n  four"),
            "one two, wrapped\n\nthree four"
        );
        let wrapped: Vec<String> = every_property()
            .into_iter()
            .filter_map(|(kind, path, schema)| {
                let text = schema["description"].as_str()?.to_string();
                text.replace("\n\n", "")
                    .contains('\n')
                    .then(|| format!("{kind}{path}: {text:?}"))
            })
            .collect();
        // kubectl explain wraps descriptions itself and keeps every break it is given.
        assert!(
            wrapped.is_empty(),
            "descriptions wrapped mid-paragraph: {wrapped:#?}"
        );
    }

    #[test]
    fn an_optional_enum_offers_no_null() {
        let offered: Vec<String> = every_property()
            .into_iter()
            .filter(|(_, _, schema)| {
                schema["enum"]
                    .as_array()
                    .is_some_and(|values| values.iter().any(serde_json::Value::is_null))
            })
            .map(|(kind, path, _)| format!("{kind}{path}"))
            .collect();
        // `kubectl explain` shows it as `<no value>`; absent means none already.
        assert!(offered.is_empty(), "enums offering null: {offered:?}");
        let status = &seccomp_status_schema()["properties"]["status"]["properties"];
        assert_eq!(
            status["verdict"]["enum"],
            serde_json::json!(["Compliant", "Exempt", "Violating"])
        );
        assert_eq!(status["verdict"].get("nullable"), None);
    }

    #[test]
    fn a_field_description_is_not_replaced_by_its_types() {
        let status = &seccomp_status_schema()["properties"]["status"]["properties"];
        // `status.strength` and `status.containers[].strength` share a type but mean different
        // things: the pod's weakest container, and the one container.
        let pod = status["strength"]["description"].as_str().unwrap_or_default();
        let container = status["containers"]["items"]["properties"]["strength"]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(pod.contains("weakest container"), "status.strength: {pod:?}");
        assert!(
            !container.contains("weakest container"),
            "containers[].strength: {container:?}"
        );
    }

    #[test]
    fn every_status_list_is_owned_whole_and_the_agent_has_its_own_parts() {
        let crd = serde_json::to_value(&crds()[0]).expect("json");
        let status = &seccomp_status_schema()["properties"]["status"]["properties"];
        // Owned whole by the controller.
        assert_eq!(status["policies"]["x-kubernetes-list-type"], "atomic");
        // Containers are keyed by name: the controller owns each entry's fields, the agent each
        // entry's `runtime`, whole (as the controller owns `profile`).
        let containers = &status["containers"];
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(
            containers["x-kubernetes-list-map-keys"],
            serde_json::json!(["name"])
        );
        let container = &containers["items"]["properties"];
        for whole in ["runtime", "profile"] {
            assert_eq!(container[whole]["x-kubernetes-map-type"], "atomic", "{whole}");
        }
        for field in [
            "seccompMode",
            "filters",
            "pid",
            "observedAt",
            "agreesWithEffective",
        ] {
            assert!(
                container["runtime"]["properties"].get(field).is_some(),
                "runtime.{field}"
            );
        }
        // Conditions are shared by type, each one owned whole by its writer.
        let conditions = &status["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"])
        );
        assert_eq!(conditions["items"]["x-kubernetes-map-type"], "atomic");
        let runtime = &status["runtime"]["properties"];
        assert!(
            runtime.get("conditions").is_none(),
            "RuntimeVerified is in status.conditions"
        );
        assert!(runtime.get("containers").is_none(), "in containers[].runtime");
        assert_eq!(runtime["profileFiles"]["x-kubernetes-list-type"], "atomic");
        // `status` itself merges field by field, so the agent's `runtime` survives the controller's
        // apply.
        assert!(status.get("runtime").is_some());
        assert!(
            crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
                .get("x-kubernetes-map-type")
                .is_none()
        );
        assert_eq!(crd["spec"]["names"]["categories"], serde_json::json!(["seccomp"]));
        assert_eq!(crd["spec"]["names"]["shortNames"], serde_json::json!(["sst"]));
        assert!(
            crd["spec"]["versions"][0]["subresources"].is_null(),
            "written whole: no status subresource"
        );
    }
}
