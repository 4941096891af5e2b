//! One cluster's objects: what etcd and the registry do for a real API server. Every write gets
//! the next resourceVersion and is published to watchers; a short history lets watches resume.
use super::names;
use super::resources::ResourceType;
use super::status::ApiError;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::broadcast;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub rv: u64,
    pub res: &'static ResourceType,
    pub kind: EventType,
    pub object: Value,
}

type Key = (&'static str, &'static str, String, String);

fn key(res: &'static ResourceType, ns: &str, name: &str) -> Key {
    (res.group, res.plural, ns.to_string(), name.to_string())
}

const HISTORY: usize = 4096;

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<WatchEvent>,
}

pub struct ObjectStore {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<WatchEvent>,
}

pub fn now_rfc3339() -> String {
    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap_or_default().to_string()
}

fn new_uid() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Everything but metadata and status: a change here bumps `metadata.generation`.
fn spec_part(v: &Value) -> Value {
    let mut m = v.as_object().cloned().unwrap_or_default();
    m.remove("metadata");
    m.remove("status");
    Value::Object(m)
}

fn meta(v: &mut Value) -> &mut Map<String, Value> {
    if !v.get("metadata").is_some_and(Value::is_object) {
        v["metadata"] = json!({});
    }
    v["metadata"].as_object_mut().expect("metadata object")
}

pub fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

pub fn ns_of(v: &Value) -> &str {
    v.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("")
}

/// What the registry does to some kinds on every write: a Secret's `stringData` becomes `data`.
fn normalize(res: &ResourceType, obj: &mut Value) {
    if res.kind == "Secret" {
        use base64::Engine;
        if let Some(sd) = obj.as_object_mut().and_then(|o| o.remove("stringData")) {
            for (k, v) in sd.as_object().into_iter().flatten() {
                let text = v.as_str().unwrap_or_default();
                obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
            }
        }
        if obj.get("type").is_none() {
            obj["type"] = json!("Opaque");
        }
    }
}

impl Default for ObjectStore {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(4096);
        let s =
            ObjectStore { inner: Mutex::new(Inner { rv: 1, objects: BTreeMap::new(), history: VecDeque::new() }), tx };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let ns_type = ResourceType::of_kind("Namespace").expect("namespaces");
            let _ = s.create(ns_type, "", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        }
        s
    }
}

impl ObjectStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<WatchEvent> {
        self.tx.subscribe()
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Events after `rv`, or None when the history no longer reaches back that far.
    pub fn events_since(&self, rv: u64) -> Option<Vec<WatchEvent>> {
        let g = self.lock();
        if rv + 1 < g.history.front().map(|e| e.rv).unwrap_or(g.rv + 1) && rv < g.rv {
            return None;
        }
        Some(g.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    fn publish(&self, g: &mut Inner, res: &'static ResourceType, kind: EventType, object: Value) {
        let ev = WatchEvent { rv: g.rv, res, kind, object };
        if g.history.len() == HISTORY {
            g.history.pop_front();
        }
        g.history.push_back(ev.clone());
        let _ = self.tx.send(ev);
    }

    pub fn get(&self, res: &'static ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.lock().objects.get(&key(res, ns, name)).cloned().ok_or_else(|| ApiError::not_found(res, name))
    }

    pub fn try_get(&self, res: &'static ResourceType, ns: &str, name: &str) -> Option<Value> {
        self.lock().objects.get(&key(res, ns, name)).cloned()
    }

    /// All objects of a type, in one namespace or all; with the list's resourceVersion.
    pub fn list(&self, res: &'static ResourceType, ns: Option<&str>) -> (Vec<Value>, u64) {
        let g = self.lock();
        let items = g
            .objects
            .iter()
            .filter(|((grp, plural, n, _), _)| {
                *grp == res.group && *plural == res.plural && ns.is_none_or(|ns| ns == n)
            })
            .map(|(_, v)| v.clone())
            .collect();
        (items, g.rv)
    }

    pub fn create(&self, res: &'static ResourceType, ns: &str, mut obj: Value) -> Result<Value, ApiError> {
        normalize(res, &mut obj);
        let mut g = self.lock();
        let m = meta(&mut obj);
        if m.get("name").and_then(Value::as_str).unwrap_or("").is_empty() {
            match m.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => {
                    let suffix: String = {
                        use rand::Rng;
                        let mut r = rand::thread_rng();
                        (0..5).map(|_| b"bcdfghjklmnpqrstvwxz2456789"[r.gen_range(0..27)] as char).collect()
                    };
                    m.insert("name".into(), json!(format!("{prefix}{suffix}")));
                }
                _ => return Err(ApiError::required(res, "metadata.name")),
            }
        }
        let name = m["name"].as_str().unwrap_or("").to_string();
        if let Some(why) = names::check(res.name_rule, &name) {
            return Err(ApiError::invalid(res, &name, "metadata.name", &name, &why));
        }
        if res.namespaced {
            if ns.is_empty() {
                return Err(ApiError::bad_request("the namespace of the object is required"));
            }
            let given = m.get("namespace").and_then(Value::as_str).unwrap_or(ns);
            if given != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            let ns_type = ResourceType::of_kind("Namespace").expect("namespaces");
            if !g.objects.contains_key(&key(ns_type, "", ns)) {
                return Err(ApiError::not_found(ns_type, ns));
            }
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        let k = key(res, if res.namespaced { ns } else { "" }, &name);
        if g.objects.contains_key(&k) {
            return Err(ApiError::already_exists(res, &name));
        }
        g.rv += 1;
        let rv = g.rv;
        m.insert("uid".into(), json!(new_uid()));
        m.insert("resourceVersion".into(), json!(rv.to_string()));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
        m.insert("generation".into(), json!(1));
        m.remove("deletionTimestamp");
        obj["apiVersion"] = json!(res.api_version());
        obj["kind"] = json!(res.kind);
        g.objects.insert(k, obj.clone());
        self.publish(&mut g, res, EventType::Added, obj.clone());
        Ok(obj)
    }

    /// Replaces an object. A non-empty `metadata.resourceVersion` must be current (optimistic
    /// concurrency). `status_only` writes the status subresource; otherwise status is kept.
    pub fn update(
        &self,
        res: &'static ResourceType,
        ns: &str,
        name: &str,
        mut obj: Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        normalize(res, &mut obj);
        let mut g = self.lock();
        let k = key(res, ns, name);
        let Some(old) = g.objects.get(&k).cloned() else { return Err(ApiError::not_found(res, name)) };
        let given_name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(name);
        if given_name != name {
            return Err(ApiError::bad_request("the name of the object does not match the name on the URL"));
        }
        let given_rv = obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
        if !given_rv.is_empty() && given_rv != old["metadata"]["resourceVersion"].as_str().unwrap_or("") {
            return Err(ApiError::conflict(res, name));
        }
        let mut new = if status_only {
            let mut n = old.clone();
            n["status"] = obj.get("status").cloned().unwrap_or(Value::Null);
            n
        } else {
            match old.get("status") {
                Some(s) => obj["status"] = s.clone(),
                None => {
                    if let Some(o) = obj.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            obj
        };
        // Fields the server owns cannot be changed by clients.
        let old_meta = old["metadata"].clone();
        let m = meta(&mut new);
        for f in ["uid", "creationTimestamp", "namespace", "name", "deletionTimestamp"] {
            match old_meta.get(f) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
        let mut generation = old_meta.get("generation").and_then(Value::as_i64).unwrap_or(1);
        if spec_part(&new) != spec_part(&old) {
            generation += 1;
        }
        if let Some(labels) = new.pointer("/metadata/labels").and_then(Value::as_object) {
            for (lk, lv) in labels {
                let v = lv.as_str().unwrap_or("");
                if !names::valid_label_key(lk) || !names::valid_label_value(v) {
                    return Err(ApiError::invalid(res, name, "metadata.labels", v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
                }
            }
        }
        g.rv += 1;
        let rv = g.rv;
        let m = meta(&mut new);
        m.insert("generation".into(), json!(generation));
        m.insert("resourceVersion".into(), json!(rv.to_string()));
        new["apiVersion"] = json!(res.api_version());
        new["kind"] = json!(res.kind);
        // A deleted object waits for its finalizers; the last one removed lets it go.
        let finalizers_left =
            new.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
        if new.pointer("/metadata/deletionTimestamp").is_some() && !finalizers_left {
            g.objects.remove(&k);
            self.publish(&mut g, res, EventType::Deleted, new.clone());
            drop(g);
            self.collect_garbage(&new);
            return Ok(new);
        }
        g.objects.insert(k, new.clone());
        self.publish(&mut g, res, EventType::Modified, new.clone());
        Ok(new)
    }

    /// Read-modify-write for controllers: no resourceVersion check, the closure sees the latest.
    pub fn mutate(
        &self,
        res: &'static ResourceType,
        ns: &str,
        name: &str,
        status_only: bool,
        f: impl FnOnce(&mut Value),
    ) -> Result<Value, ApiError> {
        let mut obj = self.get(res, ns, name)?;
        let before = obj.clone();
        f(&mut obj);
        if obj == before {
            return Ok(obj);
        }
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        self.update(res, ns, name, obj, status_only)
    }

    /// Deletes, or marks for deletion while finalizers remain. Dependents (by ownerReferences)
    /// and a namespace's contents go too.
    pub fn delete(&self, res: &'static ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        let mut g = self.lock();
        let k = key(res, ns, name);
        let Some(mut obj) = g.objects.get(&k).cloned() else { return Err(ApiError::not_found(res, name)) };
        let has_finalizers =
            obj.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
        g.rv += 1;
        let rv = g.rv;
        meta(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        if has_finalizers {
            if obj.pointer("/metadata/deletionTimestamp").is_none() {
                meta(&mut obj).insert("deletionTimestamp".into(), json!(now_rfc3339()));
            }
            g.objects.insert(k, obj.clone());
            self.publish(&mut g, res, EventType::Modified, obj.clone());
            return Ok(obj);
        }
        g.objects.remove(&k);
        self.publish(&mut g, res, EventType::Deleted, obj.clone());
        drop(g);
        self.collect_garbage(&obj);
        if res.kind == "Namespace" {
            self.delete_namespace_contents(name);
        }
        Ok(obj)
    }

    fn collect_garbage(&self, owner: &Value) {
        let Some(uid) = owner.pointer("/metadata/uid").and_then(Value::as_str) else { return };
        let dependents: Vec<(&'static ResourceType, String, String)> = {
            let g = self.lock();
            g.objects
                .values()
                .filter(|o| {
                    o.pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|refs| refs.iter().any(|r| r.get("uid").and_then(Value::as_str) == Some(uid)))
                })
                .filter_map(|o| {
                    let r = ResourceType::by_kind(o["apiVersion"].as_str()?, o["kind"].as_str()?)?;
                    Some((r, ns_of(o).to_string(), name_of(o).to_string()))
                })
                .collect()
        };
        for (r, ns, name) in dependents {
            let _ = self.delete(r, &ns, &name);
        }
    }

    fn delete_namespace_contents(&self, ns: &str) {
        let keys: Vec<(&'static ResourceType, String)> = {
            let g = self.lock();
            g.objects
                .iter()
                .filter(|((_, _, n, _), _)| n == ns)
                .filter_map(|(_, o)| {
                    Some((
                        ResourceType::by_kind(o["apiVersion"].as_str()?, o["kind"].as_str()?)?,
                        name_of(o).to_string(),
                    ))
                })
                .collect()
        };
        for (r, name) in keys {
            // Finalizers do not hold a namespace's contents in the simulation.
            let _ = self.mutate(r, ns, &name, false, |o| {
                if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("finalizers");
                }
            });
            let _ = self.delete(r, ns, &name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm() -> &'static ResourceType {
        ResourceType::of_kind("ConfigMap").unwrap()
    }

    #[test]
    fn create_get_update_conflict_delete() {
        let s = ObjectStore::default();
        let o = s.create(cm(), "default", json!({"metadata": {"name": "a"}, "data": {"k": "v"}})).unwrap();
        assert_eq!(o["kind"], "ConfigMap");
        assert_eq!(o["metadata"]["namespace"], "default");
        let rv = o["metadata"]["resourceVersion"].as_str().unwrap().to_string();
        assert_eq!(s.create(cm(), "default", json!({"metadata": {"name": "a"}})).unwrap_err().reason, "AlreadyExists");
        assert_eq!(s.create(cm(), "nope", json!({"metadata": {"name": "a"}})).unwrap_err().code, 404);
        assert_eq!(s.create(cm(), "default", json!({"metadata": {"name": "Bad_Name"}})).unwrap_err().code, 422);

        let mut changed = o.clone();
        changed["data"]["k"] = json!("w");
        let u = s.update(cm(), "default", "a", changed.clone(), false).unwrap();
        assert_eq!(u["metadata"]["generation"], 2);
        assert_ne!(u["metadata"]["resourceVersion"].as_str().unwrap(), rv);
        // Same write again with the stale version: conflict.
        assert_eq!(s.update(cm(), "default", "a", changed, false).unwrap_err().reason, "Conflict");
        s.delete(cm(), "default", "a").unwrap();
        assert_eq!(s.get(cm(), "default", "a").unwrap_err().code, 404);
    }

    #[test]
    fn finalizers_hold_deletion_and_owners_cascade() {
        let s = ObjectStore::default();
        let owner = s.create(cm(), "default", json!({"metadata": {"name": "owner", "finalizers": ["x"]}})).unwrap();
        let uid = owner["metadata"]["uid"].clone();
        s.create(cm(), "default", json!({"metadata": {"name": "dep", "ownerReferences": [{"uid": uid, "kind": "ConfigMap", "name": "owner", "apiVersion": "v1"}]}})).unwrap();
        let d = s.delete(cm(), "default", "owner").unwrap();
        assert!(d["metadata"]["deletionTimestamp"].is_string());
        assert!(s.try_get(cm(), "default", "owner").is_some());
        s.mutate(cm(), "default", "owner", false, |o| o["metadata"]["finalizers"] = json!([])).unwrap();
        assert!(s.try_get(cm(), "default", "owner").is_none());
        assert!(s.try_get(cm(), "default", "dep").is_none(), "dependent collected");
    }

    #[test]
    fn history_resumes_watches() {
        let s = ObjectStore::default();
        let start = s.resource_version();
        s.create(cm(), "default", json!({"metadata": {"name": "a"}})).unwrap();
        s.delete(cm(), "default", "a").unwrap();
        let evs = s.events_since(start).unwrap();
        assert_eq!(evs.iter().map(|e| e.kind).collect::<Vec<_>>(), [EventType::Added, EventType::Deleted]);
    }
}
