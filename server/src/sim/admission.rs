//! What stands between a write and the hub's store on a real Karmada: the CRD schema (enums,
//! answered 422 by the API server) and karmada-webhook's validation (answered 403,
//! `admission webhook "…" denied the request: …`). Only the rules for the fields the simulation
//! models are here; each names the field as Karmada does.
use super::resources::ResourceType;
use super::status::ApiError;
use serde_json::{json, Value};

/// One refused field: its path, and the API server's words (`<field>: <why>`).
pub struct FieldError {
    pub field: String,
    pub text: String,
}

/// The items of the array at `pointer`, with their index (none when it is absent).
fn items<'a>(obj: &'a Value, pointer: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    obj.pointer(pointer).and_then(Value::as_array).into_iter().flatten().enumerate()
}

fn unsupported(field: &str, value: &str, allowed: &[&str]) -> FieldError {
    let list: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
    FieldError {
        field: field.into(),
        text: format!("{field}: Unsupported value: \"{value}\": supported values: {}", list.join(", ")),
    }
}

fn invalid(field: &str, value: &Value, why: &str) -> FieldError {
    let shown = match value {
        Value::String(s) => format!("\"{s}\""),
        Value::Null => "null".into(),
        v => v.to_string(),
    };
    FieldError { field: field.into(), text: format!("{field}: Invalid value: {shown}: {why}") }
}

fn check_enum(out: &mut Vec<FieldError>, obj: &Value, pointer: &str, field: &str, allowed: &[&str]) {
    if let Some(v) = obj.pointer(pointer).and_then(Value::as_str) {
        if !allowed.contains(&v) {
            out.push(unsupported(field, v, allowed));
        }
    }
}

const APP_PURGE: &[&str] = &["Directly", "Gracefully", "Never", "Immediately", "Graciously"];
const CLUSTER_PURGE: &[&str] = &["Directly", "Gracefully"];
const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// The CRD schema's enums for the objects the simulated hub propagates with.
fn schema(res: &ResourceType, obj: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    match res.kind {
        "PropagationPolicy" => {
            let e = &mut out;
            check_enum(e, obj, "/spec/conflictResolution", "spec.conflictResolution", &["Abort", "Overwrite"]);
            let rs = "/spec/placement/replicaScheduling";
            check_enum(
                e,
                obj,
                &format!("{rs}/replicaSchedulingType"),
                "spec.placement.replicaScheduling.replicaSchedulingType",
                &["Duplicated", "Divided"],
            );
            check_enum(
                e,
                obj,
                &format!("{rs}/replicaDivisionPreference"),
                "spec.placement.replicaScheduling.replicaDivisionPreference",
                &["Aggregated", "Weighted"],
            );
            check_enum(
                e,
                obj,
                &format!("{rs}/weightPreference/dynamicWeight"),
                "spec.placement.replicaScheduling.weightPreference.dynamicWeight",
                &["AvailableReplicas"],
            );
            check_enum(
                e,
                obj,
                "/spec/failover/application/purgeMode",
                "spec.failover.application.purgeMode",
                APP_PURGE,
            );
            check_enum(e, obj, "/spec/failover/cluster/purgeMode", "spec.failover.cluster.purgeMode", CLUSTER_PURGE);
            for (i, _) in items(obj, "/spec/placement/clusterTolerations") {
                let p = format!("/spec/placement/clusterTolerations/{i}");
                let f = format!("spec.placement.clusterTolerations[{i}]");
                check_enum(e, obj, &format!("{p}/operator"), &format!("{f}.operator"), &["Exists", "Equal"]);
                check_enum(e, obj, &format!("{p}/effect"), &format!("{f}.effect"), EFFECTS);
            }
            for (i, _) in items(obj, "/spec/placement/spreadConstraints") {
                check_enum(
                    e,
                    obj,
                    &format!("/spec/placement/spreadConstraints/{i}/spreadByField"),
                    &format!("spec.placement.spreadConstraints[{i}].spreadByField"),
                    &["cluster", "region", "zone", "provider"],
                );
            }
            if obj.pointer("/spec/resourceSelectors").and_then(Value::as_array).is_none_or(|s| s.is_empty()) {
                out.push(FieldError {
                    field: "spec.resourceSelectors".into(),
                    text: "spec.resourceSelectors: Required value".into(),
                });
            }
        }
        "OverridePolicy" => {
            for (r, rule) in items(obj, "/spec/overrideRules") {
                let base = format!("spec.overrideRules[{r}].overriders");
                for (i, _) in items(rule, "/overriders/plaintext") {
                    check_enum(
                        &mut out,
                        rule,
                        &format!("/overriders/plaintext/{i}/operator"),
                        &format!("{base}.plaintext[{i}].operator"),
                        &["add", "remove", "replace"],
                    );
                }
                for (kind, ops) in [
                    ("imageOverrider", &["add", "remove", "replace"][..]),
                    ("commandOverrider", &["add", "remove"][..]),
                    ("argsOverrider", &["add", "remove"][..]),
                    ("labelsOverrider", &["add", "remove", "replace"][..]),
                    ("annotationsOverrider", &["add", "remove", "replace"][..]),
                ] {
                    for (i, _) in items(rule, &format!("/overriders/{kind}")) {
                        check_enum(
                            &mut out,
                            rule,
                            &format!("/overriders/{kind}/{i}/operator"),
                            &format!("{base}.{kind}[{i}].operator"),
                            ops,
                        );
                    }
                }
            }
        }
        "ClusterTaintPolicy" => {
            for (i, _) in items(obj, "/spec/taints") {
                check_enum(
                    &mut out,
                    obj,
                    &format!("/spec/taints/{i}/effect"),
                    &format!("spec.taints[{i}].effect"),
                    EFFECTS,
                );
            }
            for list in ["addOnConditions", "removeOnConditions"] {
                for (i, _) in items(obj, &format!("/spec/{list}")) {
                    check_enum(
                        &mut out,
                        obj,
                        &format!("/spec/{list}/{i}/operator"),
                        &format!("spec.{list}[{i}].operator"),
                        &["In", "NotIn"],
                    );
                }
            }
        }
        _ => {}
    }
    out
}

fn is_gracefully(mode: Option<&str>) -> bool {
    matches!(mode, Some("Gracefully" | "Graciously"))
}

/// karmada-webhook's rules. `allow_no_execute`: its `--allow-no-execute-taint-policy` flag.
fn webhook(res: &ResourceType, obj: &Value, allow_no_execute: bool) -> (&'static str, Vec<FieldError>) {
    let mut out = Vec::new();
    match res.kind {
        "PropagationPolicy" => {
            let app = obj.pointer("/spec/failover/application").filter(|a| !a.is_null());
            let deps = obj.pointer("/spec/propagateDeps").and_then(Value::as_bool).unwrap_or(false);
            if app.is_some() && !deps {
                out.push(invalid(
                    "spec.propagateDeps",
                    &json!(false),
                    "application failover is set, propagateDeps must be true",
                ));
            }
            for (i, c) in items(obj, "/spec/placement/spreadConstraints") {
                let f = format!("spec.placement.spreadConstraints[{i}]");
                let min = c.get("minGroups").and_then(Value::as_i64).unwrap_or(0);
                let max = c.get("maxGroups").and_then(Value::as_i64).unwrap_or(0);
                if c.get("spreadByField").is_some() && c.get("spreadByLabel").is_some() {
                    out.push(invalid(&f, c, "spreadByLabel should not co-exist with spreadByField"));
                }
                if min < 0 {
                    out.push(invalid(&f, c, "minGroups lower than 0 is not allowed"));
                }
                if max < 0 {
                    out.push(invalid(&f, c, "maxGroups lower than 0 is not allowed"));
                }
                if max > 0 && max < min {
                    out.push(invalid(&f, c, "maxGroups lower than minGroups is not allowed"));
                }
            }
            if let Some(app) = app {
                let f = "spec.failover.application";
                let mode = app.get("purgeMode").and_then(Value::as_str);
                let grace = app.get("gracePeriodSeconds").filter(|g| !g.is_null());
                if let Some(t) = app.pointer("/decisionConditions/tolerationSeconds").and_then(Value::as_i64) {
                    if t < 0 {
                        out.push(invalid(
                            &format!("{f}.decisionConditions.tolerationSeconds"),
                            &json!(t),
                            "must be greater than or equal to 0",
                        ));
                    }
                }
                match (is_gracefully(mode), grace) {
                    (false, Some(g)) => out.push(invalid(
                        &format!("{f}.gracePeriodSeconds"),
                        g,
                        "only takes effect when purgeMode is graciously",
                    )),
                    (true, None) => out.push(invalid(
                        &format!("{f}.gracePeriodSeconds"),
                        &Value::Null,
                        "should not be empty when purgeMode is graciously",
                    )),
                    (true, Some(g)) if g.as_i64().unwrap_or(0) <= 0 => {
                        out.push(invalid(&format!("{f}.gracePeriodSeconds"), g, "must be greater than 0"))
                    }
                    _ => {}
                }
            }
            ("propagationpolicy.karmada.io", out)
        }
        "OverridePolicy" => {
            for (r, rule) in items(obj, "/spec/overrideRules") {
                for (i, p) in items(rule, "/overriders/plaintext") {
                    let f = format!("spec.overrideRules[{r}].overriders.plaintext[{i}].value");
                    let has_value = p.get("value").is_some_and(|v| !v.is_null());
                    match p.get("operator").and_then(Value::as_str) {
                        Some("add" | "replace") if !has_value => {
                            out.push(invalid(&f, &Value::Null, "value is required for add or replace operation"))
                        }
                        Some("remove") if has_value => {
                            out.push(invalid(&f, &p["value"], "value is not allowed for remove operation"))
                        }
                        _ => {}
                    }
                }
            }
            ("overridepolicy.karmada.io", out)
        }
        "ClusterTaintPolicy" => {
            if !allow_no_execute {
                for (i, t) in items(obj, "/spec/taints") {
                    if t.get("effect").and_then(Value::as_str) == Some("NoExecute") {
                        out.push(FieldError {
                            field: format!("spec.taints[{i}]"),
                            text: format!(
                                "spec.taints[{i}]: Forbidden: Configuring taint with NoExecute effect is not allowed"
                            ),
                        });
                    }
                }
            }
            ("clustertaintpolicy.karmada.io", out)
        }
        _ => ("", out),
    }
}

fn joined(errs: &[FieldError]) -> String {
    match errs {
        [one] => one.text.clone(),
        many => format!("[{}]", many.iter().map(|e| e.text.as_str()).collect::<Vec<_>>().join(", ")),
    }
}

/// Schema first (the API server), then the webhook, as a real hub answers a create or update.
pub fn admit(res: &ResourceType, obj: &Value, allow_no_execute: bool) -> Result<(), ApiError> {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let errs = schema(res, obj);
    if !errs.is_empty() {
        return Err(refusal(res, name, &errs));
    }
    let (hook, errs) = webhook(res, obj, allow_no_execute);
    if !errs.is_empty() {
        return Err(ApiError::denied(hook, &joined(&errs)));
    }
    Ok(())
}

/// The API server's 422 for refused fields, each a cause with the reason its wording names.
pub fn refusal(res: &ResourceType, name: &str, errs: &[FieldError]) -> ApiError {
    let causes: Vec<Value> = errs
        .iter()
        .map(|e| {
            let message = e.text.strip_prefix(&format!("{}: ", e.field)).unwrap_or(&e.text).to_string();
            let reason = if message.starts_with("Unsupported") {
                "FieldValueNotSupported"
            } else if message.starts_with("Required") {
                "FieldValueRequired"
            } else {
                "FieldValueInvalid"
            };
            json!({"reason": reason, "message": message, "field": e.field})
        })
        .collect();
    ApiError::invalid_causes(res, name, &joined(errs), causes)
}

/// The node ports a Service asks for, with their index in `spec.ports`.
pub fn node_ports(svc: &Value) -> Vec<(usize, i64)> {
    items(svc, "/spec/ports").filter_map(|(i, p)| p.get("nodePort").and_then(Value::as_i64).map(|n| (i, n))).collect()
}

/// The API server's own check of a Service's node ports: in range, and not taken by another
/// Service of the cluster (`others`: every Service there, this one included).
pub fn check_node_ports(svc: &Value, others: &[Value]) -> Result<(), FieldError> {
    let me = (super::store::ns_of(svc), super::store::name_of(svc));
    for (i, port) in node_ports(svc) {
        let field = format!("spec.ports[{i}].nodePort");
        if !(30000..=32767).contains(&port) {
            let why = "provided port is not in the valid range. The range of valid ports is 30000-32767";
            return Err(invalid(&field, &json!(port), why));
        }
        let taken = others.iter().any(|o| {
            (super::store::ns_of(o), super::store::name_of(o)) != me && node_ports(o).iter().any(|(_, p)| *p == port)
        });
        if taken {
            return Err(invalid(&field, &json!(port), "provided port is already allocated"));
        }
    }
    Ok(())
}

/// What the API server fills in on a NodePort Service: a free node port for each port without
/// one, keeping what `current` (the stored object) had. Only numbers: no listener.
pub fn allocate_node_ports(svc: &mut Value, current: Option<&Value>, others: &[Value]) {
    let node_port_type = matches!(svc.pointer("/spec/type").and_then(Value::as_str), Some("NodePort" | "LoadBalancer"));
    if !node_port_type {
        return;
    }
    let mut used: Vec<i64> = others.iter().flat_map(|o| node_ports(o).into_iter().map(|(_, p)| p)).collect();
    let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else { return };
    for p in ports.iter_mut().filter(|p| p.get("nodePort").is_none()) {
        let kept = current.and_then(|c| {
            c.pointer("/spec/ports")?.as_array()?.iter().find(|x| x["port"] == p["port"])?.get("nodePort")?.as_i64()
        });
        let port = kept.unwrap_or_else(|| {
            use rand::Rng;
            let mut r = rand::thread_rng();
            loop {
                let n: i64 = r.gen_range(30000..=32767);
                if !used.contains(&n) {
                    break n;
                }
            }
        });
        used.push(port);
        p["nodePort"] = json!(port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pp(spec: Value) -> Value {
        json!({"metadata": {"name": "web-fo"}, "spec": spec})
    }

    fn rt(kind: &str) -> &'static ResourceType {
        ResourceType::of_kind(kind).unwrap()
    }

    #[test]
    fn application_failover_needs_propagate_deps_as_the_webhook_says() {
        let sel = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}]);
        let fo = json!({"application": {"decisionConditions": {"tolerationSeconds": 30}, "purgeMode": "Never"}});
        let e =
            admit(rt("PropagationPolicy"), &pp(json!({"resourceSelectors": sel, "failover": fo})), false).unwrap_err();
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
        assert_eq!(
            e.message,
            "admission webhook \"propagationpolicy.karmada.io\" denied the request: spec.propagateDeps: Invalid value: false: application failover is set, propagateDeps must be true"
        );
        admit(
            rt("PropagationPolicy"),
            &pp(json!({"resourceSelectors": sel, "failover": fo, "propagateDeps": true})),
            false,
        )
        .unwrap();
    }

    #[test]
    fn enums_are_the_schemas() {
        let sel = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}]);
        let fo = json!({"application": {"decisionConditions": {"tolerationSeconds": 30}, "purgeMode": "Bogus"}});
        let e = admit(
            rt("PropagationPolicy"),
            &pp(json!({"resourceSelectors": sel, "failover": fo, "propagateDeps": true})),
            true,
        )
        .unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "PropagationPolicy.policy.karmada.io \"web-fo\" is invalid: spec.failover.application.purgeMode: Unsupported value: \"Bogus\": supported values: \"Directly\", \"Gracefully\", \"Never\", \"Immediately\", \"Graciously\""
        );
        let op = json!({"metadata": {"name": "web-op"}, "spec": {"overrideRules": [{"overriders": {"plaintext": [{"path": "/x", "operator": "badop", "value": 1}]}}]}});
        let e = admit(rt("OverridePolicy"), &op, true).unwrap_err();
        assert!(e.message.ends_with("spec.overrideRules[0].overriders.plaintext[0].operator: Unsupported value: \"badop\": supported values: \"add\", \"remove\", \"replace\""), "{}", e.message);
        let cluster = json!({"cluster": {"purgeMode": "Never"}});
        assert_eq!(
            admit(rt("PropagationPolicy"), &pp(json!({"resourceSelectors": sel, "failover": cluster})), true)
                .unwrap_err()
                .code,
            422
        );
    }

    #[test]
    fn no_execute_taint_policies_need_the_webhook_flag() {
        let ctp = json!({"metadata": {"name": "not-ready-noexecute"}, "spec": {
            "addOnConditions": [{"conditionType": "Ready", "operator": "NotIn", "statusValues": ["True"]}],
            "taints": [{"key": "cluster.karmada.io/not-ready", "effect": "NoExecute"}]}});
        let e = admit(rt("ClusterTaintPolicy"), &ctp, false).unwrap_err();
        assert_eq!(e.code, 403);
        assert!(e
            .message
            .ends_with("spec.taints[0]: Forbidden: Configuring taint with NoExecute effect is not allowed"));
        admit(rt("ClusterTaintPolicy"), &ctp, true).unwrap();
    }
}
