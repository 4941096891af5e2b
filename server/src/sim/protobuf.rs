//! Kubernetes' protobuf bodies, read into the JSON the rest of the API server works with: the
//! `k8s\0` envelope (a `runtime.Unknown` holding the type and the raw object) and the objects
//! kubectl's imperative commands create (`create namespace|configmap|secret|deployment`). Field
//! numbers are those of Kubernetes' `generated.proto`; fields the simulation does not model are
//! skipped, as an older server skips newer fields.
use base64::Engine;
use serde_json::{json, Map, Value};

const MAGIC: &[u8] = b"k8s\0";

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at).ok_or("truncated varint")?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let key = varint(buf, &mut at)?;
        let (no, wt) = (key >> 3, key & 7);
        let w = match wt {
            0 => Wire::Varint(varint(buf, &mut at)?),
            2 => {
                let len = varint(buf, &mut at)? as usize;
                let end = at.checked_add(len).filter(|e| *e <= buf.len()).ok_or("truncated field")?;
                let b = &buf[at..end];
                at = end;
                Wire::Bytes(b)
            }
            1 => {
                at += 8;
                continue;
            }
            5 => {
                at += 4;
                continue;
            }
            _ => return Err(format!("unsupported wire type {wt}")),
        };
        out.push((no, w));
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    Msg(&'static [Field]),
    RepeatedStr,
    RepeatedMsg(&'static [Field]),
    MapStr,
    /// Values are bytes, shown base64-encoded as in JSON.
    MapBytes,
    /// Values are `resource.Quantity` messages (field 1: the string).
    MapQuantity,
}

type Field = (u64, &'static str, Kind);

const TYPE_META: &[Field] = &[(1, "apiVersion", Kind::Str), (2, "kind", Kind::Str)];
const OBJECT_META: &[Field] = &[
    (1, "name", Kind::Str),
    (2, "generateName", Kind::Str),
    (3, "namespace", Kind::Str),
    (11, "labels", Kind::MapStr),
    (12, "annotations", Kind::MapStr),
    (14, "finalizers", Kind::RepeatedStr),
];
const NAMESPACE: &[Field] =
    &[(1, "metadata", Kind::Msg(OBJECT_META)), (2, "spec", Kind::Msg(&[(1, "finalizers", Kind::RepeatedStr)]))];
const CONFIG_MAP: &[Field] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "data", Kind::MapStr),
    (3, "binaryData", Kind::MapBytes),
    (4, "immutable", Kind::Bool),
];
const SECRET: &[Field] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "data", Kind::MapBytes),
    (3, "type", Kind::Str),
    (4, "stringData", Kind::MapStr),
    (5, "immutable", Kind::Bool),
];
const SELECTOR_REQUIREMENT: &[Field] =
    &[(1, "key", Kind::Str), (2, "operator", Kind::Str), (3, "values", Kind::RepeatedStr)];
const LABEL_SELECTOR: &[Field] =
    &[(1, "matchLabels", Kind::MapStr), (2, "matchExpressions", Kind::RepeatedMsg(SELECTOR_REQUIREMENT))];
const CONTAINER_PORT: &[Field] =
    &[(1, "name", Kind::Str), (2, "hostPort", Kind::Int), (3, "containerPort", Kind::Int), (4, "protocol", Kind::Str)];
const ENV_VAR: &[Field] = &[(1, "name", Kind::Str), (2, "value", Kind::Str)];
const RESOURCES: &[Field] = &[(1, "limits", Kind::MapQuantity), (2, "requests", Kind::MapQuantity)];
const CONTAINER: &[Field] = &[
    (1, "name", Kind::Str),
    (2, "image", Kind::Str),
    (3, "command", Kind::RepeatedStr),
    (4, "args", Kind::RepeatedStr),
    (5, "workingDir", Kind::Str),
    (6, "ports", Kind::RepeatedMsg(CONTAINER_PORT)),
    (7, "env", Kind::RepeatedMsg(ENV_VAR)),
    (8, "resources", Kind::Msg(RESOURCES)),
    (13, "terminationMessagePath", Kind::Str),
    (14, "imagePullPolicy", Kind::Str),
    (20, "terminationMessagePolicy", Kind::Str),
];
const POD_SPEC: &[Field] = &[
    (2, "containers", Kind::RepeatedMsg(CONTAINER)),
    (3, "restartPolicy", Kind::Str),
    (4, "terminationGracePeriodSeconds", Kind::Int),
    (6, "dnsPolicy", Kind::Str),
    (7, "nodeSelector", Kind::MapStr),
    (8, "serviceAccountName", Kind::Str),
    (19, "schedulerName", Kind::Str),
];
const POD_TEMPLATE: &[Field] = &[(1, "metadata", Kind::Msg(OBJECT_META)), (2, "spec", Kind::Msg(POD_SPEC))];
const DEPLOYMENT_SPEC: &[Field] = &[
    (1, "replicas", Kind::Int),
    (2, "selector", Kind::Msg(LABEL_SELECTOR)),
    (3, "template", Kind::Msg(POD_TEMPLATE)),
    (4, "strategy", Kind::Msg(&[(1, "type", Kind::Str)])),
    (5, "minReadySeconds", Kind::Int),
    (6, "revisionHistoryLimit", Kind::Int),
    (7, "paused", Kind::Bool),
    (9, "progressDeadlineSeconds", Kind::Int),
];
const DEPLOYMENT: &[Field] = &[(1, "metadata", Kind::Msg(OBJECT_META)), (2, "spec", Kind::Msg(DEPLOYMENT_SPEC))];

fn map_entry(b: &[u8]) -> Result<(String, &[u8]), String> {
    let mut key = String::new();
    let mut value: &[u8] = &[];
    for (no, w) in fields(b)? {
        match (no, w) {
            (1, Wire::Bytes(k)) => key = String::from_utf8(k.to_vec()).map_err(|e| e.to_string())?,
            (2, Wire::Bytes(v)) => value = v,
            _ => {}
        }
    }
    Ok((key, value))
}

fn text(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|e| format!("invalid UTF-8: {e}"))
}

fn message(buf: &[u8], schema: &[Field]) -> Result<Value, String> {
    let mut out = Map::new();
    for (no, w) in fields(buf)? {
        let Some((_, name, kind)) = schema.iter().find(|(n, _, _)| *n == no) else { continue };
        let name = name.to_string();
        match (kind, w) {
            (Kind::Str, Wire::Bytes(b)) => {
                out.insert(name, json!(text(b)?));
            }
            (Kind::Int, Wire::Varint(v)) => {
                out.insert(name, json!(v as i64));
            }
            (Kind::Bool, Wire::Varint(v)) => {
                out.insert(name, json!(v != 0));
            }
            (Kind::Msg(s), Wire::Bytes(b)) => {
                out.insert(name, message(b, s)?);
            }
            (Kind::RepeatedStr, Wire::Bytes(b)) => {
                let list = out.entry(name).or_insert_with(|| json!([]));
                list.as_array_mut().ok_or("repeated field")?.push(json!(text(b)?));
            }
            (Kind::RepeatedMsg(s), Wire::Bytes(b)) => {
                let item = message(b, s)?;
                let list = out.entry(name).or_insert_with(|| json!([]));
                list.as_array_mut().ok_or("repeated field")?.push(item);
            }
            (Kind::MapStr | Kind::MapBytes | Kind::MapQuantity, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b)?;
                let v = match kind {
                    Kind::MapStr => json!(text(v)?),
                    Kind::MapBytes => json!(base64::engine::general_purpose::STANDARD.encode(v)),
                    _ => message(v, &[(1, "string", Kind::Str)])?.get("string").cloned().unwrap_or(json!("")),
                };
                let map = out.entry(name).or_insert_with(|| json!({}));
                map.as_object_mut().ok_or("map field")?.insert(k, v);
            }
            _ => return Err(format!("field {no} has an unexpected wire type")),
        }
    }
    Ok(Value::Object(out))
}

/// The JSON form of a protobuf request body. `Err`: not a body this server can read.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body.strip_prefix(MAGIC).ok_or("not a Kubernetes protobuf body (no k8s\\0 prefix)")?;
    let mut type_meta = Value::Null;
    let mut raw: &[u8] = &[];
    for (no, w) in fields(envelope)? {
        match (no, w) {
            (1, Wire::Bytes(b)) => type_meta = message(b, TYPE_META)?,
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let kind = type_meta.get("kind").and_then(Value::as_str).unwrap_or("");
    let schema = match kind {
        "Namespace" => NAMESPACE,
        "ConfigMap" => CONFIG_MAP,
        "Secret" => SECRET,
        "Deployment" => DEPLOYMENT,
        other => return Err(format!("no protobuf decoding for kind {other:?}")),
    };
    let mut obj = message(raw, schema)?;
    obj["apiVersion"] = type_meta["apiVersion"].clone();
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(no: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(no << 3 | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn a_namespace_in_its_envelope() {
        let meta = [field(1, b"demo"), field(11, &[field(1, b"team"), field(2, b"ml")].concat())].concat();
        let raw = field(1, &meta);
        let type_meta = [field(1, b"v1"), field(2, b"Namespace")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "labels": {"team": "ml"}}})
        );
        assert!(decode(b"{}").is_err());
        let odd = [MAGIC.to_vec(), field(1, &[field(1, b"v1"), field(2, b"Pod")].concat())].concat();
        assert!(decode(&odd).unwrap_err().contains("Pod"));
    }
}
