//! Karmada OverridePolicy: per-cluster changes to a template before it reaches a member.
use super::selectors::{labels_of, Selector};
use super::store::{name_of, ns_of};
use serde_json::{json, Value};

fn matches_resource(op: &Value, template: &Value) -> bool {
    let Some(sels) = op.pointer("/spec/resourceSelectors").and_then(Value::as_array) else { return true };
    sels.iter().any(|s| {
        s["apiVersion"] == template["apiVersion"]
            && s["kind"] == template["kind"]
            && s.get("name").and_then(Value::as_str).is_none_or(|n| n == name_of(template))
            && s.get("labelSelector")
                .is_none_or(|l| Selector::from_json(l).is_ok_and(|sel| sel.matches(&labels_of(template))))
    })
}

fn matches_cluster(target: &Value, cluster: &Value) -> bool {
    if target.is_null() {
        return true;
    }
    let name = name_of(cluster);
    if let Some(names) = target.get("clusterNames").and_then(Value::as_array) {
        if !names.is_empty() && !names.iter().any(|n| n == name) {
            return false;
        }
    }
    if target.get("exclude").and_then(Value::as_array).is_some_and(|ex| ex.iter().any(|n| n == name)) {
        return false;
    }
    target.get("labelSelector").is_none_or(|l| Selector::from_json(l).is_ok_and(|s| s.matches(&labels_of(cluster))))
}

/// Applies every matching OverridePolicy in the template's namespace, in name order.
pub fn apply_all(obj: &mut Value, template: &Value, cluster: &Value, policies: &[Value]) {
    let mut ops: Vec<&Value> =
        policies.iter().filter(|p| ns_of(p) == ns_of(template) && matches_resource(p, template)).collect();
    ops.sort_by_key(|p| name_of(p).to_string());
    for op in ops {
        let mut rules: Vec<(Value, Value)> = op
            .pointer("/spec/overrideRules")
            .and_then(Value::as_array)
            .map(|rs| {
                rs.iter()
                    .map(|r| {
                        (
                            r.get("targetCluster").cloned().unwrap_or(Value::Null),
                            r.get("overriders").cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(o) = op.pointer("/spec/overriders") {
            rules.push((op.pointer("/spec/targetCluster").cloned().unwrap_or(Value::Null), o.clone()));
        }
        for (target, overriders) in rules {
            if matches_cluster(&target, cluster) {
                apply_overriders(obj, &overriders);
            }
        }
    }
}

fn containers_mut(obj: &mut Value) -> Vec<&mut Value> {
    let path = if obj["kind"] == "Pod" { "/spec/containers" } else { "/spec/template/spec/containers" };
    obj.pointer_mut(path).and_then(Value::as_array_mut).map(|a| a.iter_mut().collect()).unwrap_or_default()
}

pub fn apply_overriders(obj: &mut Value, o: &Value) {
    for p in o.get("plaintext").and_then(Value::as_array).into_iter().flatten() {
        let op = p.get("operator").and_then(Value::as_str).unwrap_or("replace");
        let path = p.get("path").and_then(Value::as_str).unwrap_or("");
        let value = p.get("value").cloned().unwrap_or(Value::Null);
        plaintext(obj, op, path, value);
    }
    for io in o.get("imageOverrider").and_then(Value::as_array).into_iter().flatten() {
        let component = io.get("component").and_then(Value::as_str).unwrap_or("");
        let operator = io.get("operator").and_then(Value::as_str).unwrap_or("replace");
        let value = io.get("value").and_then(Value::as_str).unwrap_or("");
        for c in containers_mut(obj) {
            if let Some(img) = c.get("image").and_then(Value::as_str) {
                c["image"] = json!(override_image(img, component, operator, value));
            }
        }
    }
    for (key, field) in [("commandOverrider", "command"), ("argsOverrider", "args")] {
        for co in o.get(key).and_then(Value::as_array).into_iter().flatten() {
            let name = co.get("containerName").and_then(Value::as_str).unwrap_or("");
            let operator = co.get("operator").and_then(Value::as_str).unwrap_or("add");
            let values: Vec<Value> = co.get("value").and_then(Value::as_array).cloned().unwrap_or_default();
            for c in containers_mut(obj).into_iter().filter(|c| c["name"] == name) {
                let mut cur = c.get(field).and_then(Value::as_array).cloned().unwrap_or_default();
                match operator {
                    "remove" => cur.retain(|v| !values.contains(v)),
                    _ => cur.extend(values.iter().cloned()),
                }
                c[field] = json!(cur);
            }
        }
    }
    for (key, field) in [("labelsOverrider", "labels"), ("annotationsOverrider", "annotations")] {
        for lo in o.get(key).and_then(Value::as_array).into_iter().flatten() {
            let operator = lo.get("operator").and_then(Value::as_str).unwrap_or("add");
            for (k, v) in lo.get("value").and_then(Value::as_object).into_iter().flatten() {
                let m = &mut obj["metadata"][field];
                if !m.is_object() {
                    *m = json!({});
                }
                let map = m.as_object_mut().expect("object");
                match operator {
                    "remove" => {
                        map.remove(k);
                    }
                    "replace" if !map.contains_key(k) => {}
                    _ => {
                        map.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
}

fn plaintext(obj: &mut Value, op: &str, path: &str, value: Value) {
    let Some((parent, last)) = path.rsplit_once('/') else { return };
    let last = last.replace("~1", "/").replace("~0", "~");
    let Some(p) = obj.pointer_mut(parent) else { return };
    match (op, p) {
        ("remove", Value::Object(m)) => {
            m.remove(&last);
        }
        ("remove", Value::Array(a)) => {
            if let Ok(i) = last.parse::<usize>() {
                if i < a.len() {
                    a.remove(i);
                }
            }
        }
        (_, Value::Object(m)) => {
            m.insert(last, value);
        }
        ("add", Value::Array(a)) if last == "-" => a.push(value),
        (_, Value::Array(a)) => {
            if let Ok(i) = last.parse::<usize>() {
                if op == "add" && i <= a.len() {
                    a.insert(i, value);
                } else if i < a.len() {
                    a[i] = value;
                }
            }
        }
        _ => {}
    }
}

/// `registry/repository:tag` with one component changed.
pub fn override_image(image: &str, component: &str, operator: &str, value: &str) -> String {
    let (rest, tag) = match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), Some(t.to_string())),
        _ => (image.to_string(), None),
    };
    let (registry, repo) = match rest.split_once('/') {
        Some((r, p)) if r.contains('.') || r.contains(':') || r == "localhost" => (Some(r.to_string()), p.to_string()),
        _ => (None, rest.clone()),
    };
    let (mut registry, mut repo, mut tag) = (registry, repo, tag);
    match (component, operator) {
        ("Registry", "remove") => registry = None,
        ("Registry", "add") => registry = Some(format!("{}{value}", registry.unwrap_or_default())),
        ("Registry", _) => registry = Some(value.to_string()),
        ("Repository", "remove") => repo = String::new(),
        ("Repository", "add") => repo = format!("{repo}{value}"),
        ("Repository", _) => repo = value.to_string(),
        ("Tag", "remove") => tag = None,
        ("Tag", _) => tag = Some(value.to_string()),
        _ => {}
    }
    let mut out = String::new();
    if let Some(r) = registry {
        out.push_str(&r);
        out.push('/');
    }
    out.push_str(&repo);
    if let Some(t) = tag {
        out.push(':');
        out.push_str(&t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images() {
        assert_eq!(
            override_image("ollama/ollama:0.5", "Registry", "replace", "mirror.local"),
            "mirror.local/ollama/ollama:0.5"
        );
        assert_eq!(
            override_image("ghcr.io/ggml-org/llama.cpp:server", "Tag", "replace", "server-cuda"),
            "ghcr.io/ggml-org/llama.cpp:server-cuda"
        );
        assert_eq!(override_image("localhost:5000/a/b:1", "Registry", "remove", ""), "a/b:1");
    }

    #[test]
    fn overriders() {
        let mut d = json!({"kind": "Deployment", "metadata": {"labels": {"a": "1"}}, "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "vllm/vllm-openai:v1", "args": ["--model", "m"]}]}}}});
        apply_overriders(
            &mut d,
            &json!({
                "plaintext": [{"path": "/spec/replicas", "operator": "add", "value": 3}],
                "imageOverrider": [{"component": "Tag", "operator": "replace", "value": "v2"}],
                "argsOverrider": [{"containerName": "main", "operator": "add", "value": ["--dtype", "half"]}],
                "labelsOverrider": [{"operator": "add", "value": {"zone": "a"}}, {"operator": "remove", "value": {"a": ""}}],
            }),
        );
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "vllm/vllm-openai:v2");
        assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["args"], json!(["--model", "m", "--dtype", "half"]));
        assert_eq!(d["metadata"]["labels"], json!({"zone": "a"}));
    }
}
