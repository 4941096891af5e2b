//! Server-side printing (`Accept: application/json;as=Table`), which is what kubectl shows.
use super::resources::ResourceType;
use serde_json::{json, Value};

fn s(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => String::new(),
        Some(x) => x.to_string(),
    }
}

fn age(o: &Value) -> String {
    let Some(created) = o.pointer("/metadata/creationTimestamp").and_then(Value::as_str) else {
        return "<unknown>".into();
    };
    let Ok(t) = created.parse::<jiff::Timestamp>() else { return "<unknown>".into() };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        7200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

fn ready_condition(o: &Value) -> Option<String> {
    o.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == "Ready").map(|c| s(c.get("status")))
}

fn columns(res: &ResourceType, o: &Value) -> (Vec<&'static str>, Vec<Value>) {
    let name = json!(s(o.pointer("/metadata/name")));
    match res.kind {
        "Node" => {
            let ready = if ready_condition(o).as_deref() == Some("True") { "Ready" } else { "NotReady" };
            (
                vec!["Name", "Status", "Roles", "Age", "Version"],
                vec![
                    name,
                    json!(ready),
                    json!("<none>"),
                    json!(age(o)),
                    json!(s(o.pointer("/status/nodeInfo/kubeletVersion"))),
                ],
            )
        }
        "Pod" => {
            let statuses =
                o.pointer("/status/containerStatuses").and_then(Value::as_array).cloned().unwrap_or_default();
            let total = o.pointer("/spec/containers").and_then(Value::as_array).map(|c| c.len()).unwrap_or(0);
            let ready = statuses.iter().filter(|c| c["ready"] == true).count();
            let waiting = statuses.iter().find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str));
            let status = waiting.map(String::from).unwrap_or_else(|| s(o.pointer("/status/phase")));
            (
                vec!["Name", "Ready", "Status", "Restarts", "Age", "Node"],
                vec![
                    name,
                    json!(format!("{ready}/{total}")),
                    json!(status),
                    json!(0),
                    json!(age(o)),
                    json!(s(o.pointer("/spec/nodeName"))),
                ],
            )
        }
        "Deployment" => {
            let want = o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let n = |p: &str| o.pointer(p).and_then(Value::as_i64).unwrap_or(0);
            (
                vec!["Name", "Ready", "Up-to-date", "Available", "Age"],
                vec![
                    name,
                    json!(format!("{}/{want}", n("/status/readyReplicas"))),
                    json!(n("/status/updatedReplicas")),
                    json!(n("/status/availableReplicas")),
                    json!(age(o)),
                ],
            )
        }
        "Service" => {
            let ports = o
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| match p.get("nodePort") {
                            Some(np) => format!("{}:{}/{}", s(p.get("port")), np, s(p.get("protocol")).if_empty("TCP")),
                            None => format!("{}/{}", s(p.get("port")), s(p.get("protocol")).if_empty("TCP")),
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            (
                vec!["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"],
                vec![
                    name,
                    json!(s(o.pointer("/spec/type")).if_empty("ClusterIP")),
                    json!(s(o.pointer("/spec/clusterIP"))),
                    json!("<none>"),
                    json!(ports),
                    json!(age(o)),
                ],
            )
        }
        "Cluster" => (
            vec!["Name", "Version", "Mode", "Ready", "Age"],
            vec![
                name,
                json!(s(o.pointer("/status/kubernetesVersion"))),
                json!(s(o.pointer("/spec/syncMode"))),
                json!(ready_condition(o).unwrap_or_else(|| "Unknown".into())),
                json!(age(o)),
            ],
        ),
        "ResourceBinding" => {
            let scheduled = o
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Scheduled"))
                .map(|c| s(c.get("status")))
                .unwrap_or_default();
            (vec!["Name", "Scheduled", "Age"], vec![name, json!(scheduled), json!(age(o))])
        }
        "PersistentVolumeClaim" => (
            vec!["Name", "Status", "Capacity", "Age"],
            vec![
                name,
                json!(s(o.pointer("/status/phase"))),
                json!(s(o.pointer("/status/capacity/storage"))),
                json!(age(o)),
            ],
        ),
        "Job" => {
            let done = o.pointer("/status/succeeded").and_then(Value::as_i64).unwrap_or(0);
            (vec!["Name", "Completions", "Age"], vec![name, json!(format!("{done}/1")), json!(age(o))])
        }
        "Event" => (
            vec!["Last Seen", "Type", "Reason", "Object", "Message"],
            vec![
                json!(s(o.get("lastTimestamp"))),
                json!(s(o.get("type"))),
                json!(s(o.get("reason"))),
                json!(format!(
                    "{}/{}",
                    s(o.pointer("/involvedObject/kind")).to_lowercase(),
                    s(o.pointer("/involvedObject/name"))
                )),
                json!(s(o.get("message"))),
            ],
        ),
        _ => (vec!["Name", "Age"], vec![name, json!(age(o))]),
    }
}

trait IfEmpty {
    fn if_empty(self, d: &str) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, d: &str) -> String {
        if self.is_empty() {
            d.to_string()
        } else {
            self
        }
    }
}

/// `include_object`: the full object in each row (kubectl asks for it to sort), else metadata.
pub fn table(res: &ResourceType, items: &[Value], rv: u64, include_object: bool) -> Value {
    let probe = items.first().cloned().unwrap_or(json!({}));
    let (names, _) = columns(res, &probe);
    let defs: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "type": "string", "format": if *n == "Name" { "name" } else { "" }, "description": n, "priority": 0}))
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let (_, cells) = columns(res, o);
            let object = if include_object {
                o.clone()
            } else {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv.to_string()}, "columnDefinitions": defs, "rows": rows})
}
