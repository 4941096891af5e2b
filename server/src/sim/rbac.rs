//! Authentication by bearer token and authorization by ClusterRoleBindings, as far as H-MAS and
//! its operators need: static admin tokens from the kubeconfig, and ServiceAccount tokens that the
//! token controller writes into `kubernetes.io/service-account-token` Secrets.
use super::resources::ResourceType;
use super::status::ApiError;
use super::store::ObjectStore;
use base64::Engine;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq)]
pub enum Identity {
    /// A static token from the cluster's kubeconfig: cluster-admin.
    Admin(String),
    ServiceAccount {
        namespace: String,
        name: String,
    },
}

impl Identity {
    pub fn username(&self) -> String {
        match self {
            Identity::Admin(n) => n.clone(),
            Identity::ServiceAccount { namespace, name } => format!("system:serviceaccount:{namespace}:{name}"),
        }
    }
}

#[derive(Default)]
pub struct Tokens {
    pub static_tokens: HashMap<String, Identity>,
    /// Client certificates (DER) this cluster trusts, and who they are.
    pub cert_identities: HashMap<Vec<u8>, Identity>,
}

impl Tokens {
    /// A bearer token wins over a client certificate, as in kube-apiserver's authenticator chain
    /// (either one proves the caller).
    pub fn authenticate(
        &self,
        store: &ObjectStore,
        header: Option<&str>,
        cert: Option<&[u8]>,
    ) -> Result<Identity, ApiError> {
        let token = match header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim) {
            Some(t) => t,
            None => return cert.and_then(|c| self.cert_identities.get(c).cloned()).ok_or_else(ApiError::unauthorized),
        };
        if let Some(id) = self.static_tokens.get(token) {
            return Ok(id.clone());
        }
        let secrets = ResourceType::of_kind("Secret").expect("secrets");
        let (all, _) = store.list(secrets, None);
        all.iter()
            .filter(|s| s.get("type").and_then(Value::as_str) == Some("kubernetes.io/service-account-token"))
            .find(|s| {
                s.pointer("/data/token")
                    .and_then(Value::as_str)
                    .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
                    .is_some_and(|t| t == token.as_bytes())
            })
            .map(|s| Identity::ServiceAccount {
                namespace: s["metadata"]["namespace"].as_str().unwrap_or("").to_string(),
                name: s
                    .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            })
            .ok_or_else(ApiError::unauthorized)
    }
}

fn list_has(v: &Value, key: &str, want: &str) -> bool {
    v.get(key).and_then(Value::as_array).is_some_and(|a| a.iter().any(|x| x == "*" || x == want))
}

pub fn authorize(
    store: &ObjectStore,
    who: &Identity,
    verb: &str,
    res: &ResourceType,
    ns: Option<&str>,
) -> Result<(), ApiError> {
    let allowed = match who {
        Identity::Admin(_) => true,
        Identity::ServiceAccount { namespace, name } => {
            let kind = |k: &str| ResourceType::of_kind(k).expect("rbac kinds");
            let binds_me = |b: &&Value| {
                b.get("subjects").and_then(Value::as_array).is_some_and(|subs| {
                    subs.iter().any(|s| {
                        s["kind"] == "ServiceAccount"
                            && s["name"] == name.as_str()
                            && s["namespace"] == namespace.as_str()
                    })
                })
            };
            // ClusterRoleBindings grant everywhere; RoleBindings only in their own namespace,
            // to a Role there or to a ClusterRole.
            let (cluster_bindings, _) = store.list(kind("ClusterRoleBinding"), None);
            let mut roles: Vec<Value> = cluster_bindings
                .iter()
                .filter(binds_me)
                .filter_map(|b| b.pointer("/roleRef/name").and_then(Value::as_str))
                .filter_map(|role| store.try_get(kind("ClusterRole"), "", role))
                .collect();
            if let Some(ns) = ns.filter(|n| !n.is_empty()) {
                let (bindings, _) = store.list(kind("RoleBinding"), Some(ns));
                for b in bindings.iter().filter(binds_me) {
                    let role = b.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or("");
                    let found = match b.pointer("/roleRef/kind").and_then(Value::as_str) {
                        Some("Role") => store.try_get(kind("Role"), ns, role),
                        _ => store.try_get(kind("ClusterRole"), "", role),
                    };
                    roles.extend(found);
                }
            }
            roles.iter().any(|role| {
                role.get("rules").and_then(Value::as_array).is_some_and(|rules| {
                    rules.iter().any(|r| {
                        list_has(r, "apiGroups", res.group)
                            && list_has(r, "resources", res.plural)
                            && list_has(r, "verbs", verb)
                    })
                })
            })
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(&who.username(), verb, res, ns))
    }
}
