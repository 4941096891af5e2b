//! The write semantics of the API server: JSON merge patch, strategic merge patch (for built-in
//! types; lists of containers, ports, env, volumes … merge by their key), and server-side apply
//! with per-manager field ownership recorded in `metadata.managedFields`.
use serde_json::{Map, Value};

/// RFC 7386.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// The merge key of the lists that strategic merge patch merges element-wise, by field name.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers" | "initContainers" | "volumes" | "env" | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        "ports" => "__port",
        "tolerations" => "key",
        "conditions" => "type",
        _ => return None,
    })
}

/// Strategic merge patch, enough of it for what kubectl sends: element-wise list merge by key,
/// `$patch: delete` on elements, and the `$setElementOrder`/`$retainKeys` directives ignored.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if k.starts_with("$setElementOrder") || k == "$retainKeys" {
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (merge_key(k), v, t.get_mut(k)) {
            (Some(key), Value::Array(items), Some(Value::Array(existing))) => merge_list(existing, items, key),
            _ => strategic_merge(t.entry(k.clone()).or_insert(Value::Null), v),
        }
    }
}

fn element_key(v: &Value, key: &str) -> Option<String> {
    if key == "__port" {
        // Container ports merge by containerPort, Service ports by port.
        return v.get("containerPort").or_else(|| v.get("port")).map(|x| x.to_string());
    }
    v.get(key).map(|x| x.to_string())
}

fn merge_list(existing: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        let Some(k) = element_key(item, key) else {
            existing.push(item.clone());
            continue;
        };
        let pos = existing.iter().position(|e| element_key(e, key).as_deref() == Some(k.as_str()));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (Some(i), false) => strategic_merge(&mut existing[i], item),
            (None, false) => existing.push(item.clone()),
            (None, true) => {}
        }
    }
}

/// The field set of an applied configuration in `FieldsV1` form (`{"f:spec":{"f:replicas":{}}}`).
/// Lists are owned whole.
pub fn fields_of(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind"))
                .map(|(k, child)| (format!("f:{k}"), fields_of(child)))
                .collect(),
        ),
        _ => Value::Object(Map::new()),
    }
}

/// Removes from `target` what `before` owned and `after` no longer does.
fn prune(target: &mut Value, before: &Value, after: &Value) {
    let (Some(t), Some(b)) = (target.as_object_mut(), before.as_object()) else { return };
    for (fk, bchild) in b {
        let Some(k) = fk.strip_prefix("f:") else { continue };
        match after.get(fk) {
            None => {
                t.remove(k);
            }
            Some(achild) => {
                if let Some(tc) = t.get_mut(k) {
                    prune(tc, bchild, achild);
                }
            }
        }
    }
}

/// Objects merge key by key; anything else is replaced.
fn overlay(target: &mut Value, applied: &Value) {
    match (target.as_object_mut(), applied) {
        (Some(t), Value::Object(a)) => {
            for (k, v) in a {
                match t.get_mut(k) {
                    Some(tv) if tv.is_object() && v.is_object() => overlay(tv, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        _ => *target = applied.clone(),
    }
}

/// Server-side apply of `applied` by `manager` onto `current` (None: the object is new).
pub fn apply(current: Option<&Value>, applied: &Value, manager: &str, now: &str) -> Value {
    let mut obj = current.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let mut managed: Vec<Value> =
        obj.pointer("/metadata/managedFields").and_then(Value::as_array).cloned().unwrap_or_default();
    let mine = managed.iter().position(|m| {
        m.get("manager").and_then(Value::as_str) == Some(manager)
            && m.get("operation").and_then(Value::as_str) == Some("Apply")
    });
    let new_fields = fields_of(applied);
    if let Some(i) = mine {
        let before = managed[i].get("fieldsV1").cloned().unwrap_or(Value::Null);
        prune(&mut obj, &before, &new_fields);
        managed.remove(i);
    }
    let mut applied = applied.clone();
    if let Some(m) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    overlay(&mut obj, &applied);
    managed.push(serde_json::json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": applied.get("apiVersion").cloned().unwrap_or(Value::Null),
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": new_fields,
    }));
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("managedFields".into(), Value::Array(managed));
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
        merge_patch(&mut t, &json!({"list": [1, 2]}));
        merge_patch(&mut t, &json!({"list": [3]}));
        assert_eq!(t["list"], json!([3]));
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut t = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]}});
        strategic_merge(
            &mut t,
            &json!({"$setElementOrder/containers": [{"name": "a"}], "spec": {"containers": [
                {"name": "a", "image": "x:2"}, {"name": "b", "$patch": "delete"}, {"name": "c", "image": "z"}]}}),
        );
        assert_eq!(t, json!({"spec": {"containers": [{"name": "a", "image": "x:2"}, {"name": "c", "image": "z"}]}}));
    }

    #[test]
    fn apply_owns_and_prunes_its_fields() {
        let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"x": "1"}});
        let o = apply(None, &first, "hmas", "t0");
        assert_eq!(o["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:labels"]["f:b"], json!({}));
        // Someone else adds a label; the applier drops label b.
        let mut o2 = o.clone();
        o2["metadata"]["labels"]["other"] = json!("kept");
        let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"x": "2"}});
        let o3 = apply(Some(&o2), &second, "hmas", "t1");
        assert_eq!(o3["metadata"]["labels"], json!({"a": "1", "other": "kept"}));
        assert_eq!(o3["data"], json!({"x": "2"}));
        assert_eq!(o3["metadata"]["managedFields"].as_array().unwrap().len(), 1);
    }
}
