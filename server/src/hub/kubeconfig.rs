//! Kubeconfigs operators upload: which contexts they hold, and the access one of them grants,
//! with errors that say what is wrong with the file. Only inline credentials are accepted: a
//! server cannot read the operator's files or run their login plugins.
use app::models::cluster::KubeconfigContext;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

/// What H-MAS keeps (sealed) to reach a member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAccess {
    pub server: String,
    /// PEM; empty to trust the system roots.
    #[serde(default)]
    pub ca_pem: String,
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub client_cert_pem: String,
    #[serde(default)]
    pub client_key_pem: String,
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping()?.get(Value::from(key))
}

fn get_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    get(v, key)?.as_str()
}

fn named<'a>(doc: &'a Value, list: &str, name: &str, inner: &str) -> Option<&'a Value> {
    get(doc, list)?.as_sequence()?.iter().find(|e| get_str(e, "name") == Some(name)).and_then(|e| get(e, inner))
}

fn parse(yaml: &str) -> Result<Value, String> {
    let doc: Value = serde_yaml::from_str(yaml).map_err(|e| format!("is not valid YAML: {e}"))?;
    if !doc.is_mapping() || get(&doc, "contexts").is_none() && get(&doc, "clusters").is_none() {
        return Err("is not a kubeconfig: no clusters or contexts".into());
    }
    Ok(doc)
}

fn b64(field: &str, v: &str) -> Result<String, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.split_whitespace().collect::<String>())
        .map_err(|_| format!("{field} is not valid base64"))?;
    String::from_utf8(bytes).map_err(|_| format!("{field} does not decode to PEM text"))
}

fn auth_kind(user: &Value) -> &'static str {
    if get(user, "token").is_some() {
        "token"
    } else if get(user, "client-certificate-data").is_some() {
        "client certificate"
    } else if get(user, "exec").is_some() {
        "exec plugin (not supported)"
    } else if get(user, "auth-provider").is_some() {
        "auth provider (not supported)"
    } else {
        "none"
    }
}

pub fn contexts(yaml: &str) -> Result<Vec<KubeconfigContext>, String> {
    let doc = parse(yaml)?;
    let current = get_str(&doc, "current-context").unwrap_or("");
    let list = get(&doc, "contexts").and_then(Value::as_sequence).ok_or("has no contexts")?;
    Ok(list
        .iter()
        .filter_map(|c| {
            let name = get_str(c, "name")?.to_string();
            let ctx = get(c, "context")?;
            let server = get_str(ctx, "cluster")
                .and_then(|cl| named(&doc, "clusters", cl, "cluster"))
                .and_then(|cl| get_str(cl, "server"))
                .unwrap_or("")
                .to_string();
            let auth = get_str(ctx, "user")
                .and_then(|u| named(&doc, "users", u, "user"))
                .map(auth_kind)
                .unwrap_or("none")
                .to_string();
            Some(KubeconfigContext { current: name == current, name, server, auth })
        })
        .collect())
}

/// The access granted by `context` (default: the current context).
pub fn access(yaml: &str, context: Option<&str>) -> Result<MemberAccess, String> {
    let doc = parse(yaml)?;
    let ctx_name = match context.filter(|c| !c.is_empty()) {
        Some(c) => c.to_string(),
        None => get_str(&doc, "current-context")
            .filter(|c| !c.is_empty())
            .ok_or("has no current-context: choose a context")?
            .to_string(),
    };
    let ctx = named(&doc, "contexts", &ctx_name, "context").ok_or_else(|| {
        let names: Vec<String> = contexts(yaml).unwrap_or_default().into_iter().map(|c| c.name).collect();
        format!("has no context \"{ctx_name}\" (it has: {})", names.join(", "))
    })?;
    let cluster_name = get_str(ctx, "cluster").ok_or_else(|| format!("context \"{ctx_name}\" names no cluster"))?;
    let cluster =
        named(&doc, "clusters", cluster_name, "cluster").ok_or_else(|| format!("has no cluster \"{cluster_name}\""))?;
    let server = get_str(cluster, "server")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("cluster \"{cluster_name}\" has no server"))?;
    // The member's token goes with every request: never over plain HTTP.
    if !server.to_ascii_lowercase().starts_with("https://") {
        let shown = app::models::validate::shown(server);
        return Err(format!(
            "cluster \"{cluster_name}\" has server \"{shown}\", which is not an https:// URL (its credentials would travel in clear)"
        ));
    }
    if let Some(path) = get_str(cluster, "certificate-authority") {
        return Err(format!("cluster \"{cluster_name}\" refers to the file {path}; export the kubeconfig with the data inline (kubectl config view --raw --flatten)"));
    }
    let ca_pem = match get_str(cluster, "certificate-authority-data") {
        Some(d) => b64("certificate-authority-data", d)?,
        None => String::new(),
    };
    let user_name = get_str(ctx, "user").ok_or_else(|| format!("context \"{ctx_name}\" names no user"))?;
    let user = named(&doc, "users", user_name, "user").ok_or_else(|| format!("has no user \"{user_name}\""))?;
    for (key, what) in [("client-certificate", "file"), ("client-key", "file"), ("tokenFile", "file")] {
        if let Some(path) = get_str(user, key) {
            return Err(format!("user \"{user_name}\" refers to the {what} {path}; export the kubeconfig with the data inline (kubectl config view --raw --flatten)"));
        }
    }
    if get(user, "exec").is_some() || get(user, "auth-provider").is_some() {
        return Err(format!("user \"{user_name}\" signs in through a plugin, which H-MAS cannot run; use a ServiceAccount token or a client certificate"));
    }
    let token = get_str(user, "token").unwrap_or("").trim().to_string();
    let (client_cert_pem, client_key_pem) =
        match (get_str(user, "client-certificate-data"), get_str(user, "client-key-data")) {
            (Some(c), Some(k)) => (b64("client-certificate-data", c)?, b64("client-key-data", k)?),
            (Some(_), None) | (None, Some(_)) => {
                return Err(format!("user \"{user_name}\" has only half of a client certificate and key"))
            }
            (None, None) => (String::new(), String::new()),
        };
    if token.is_empty() && client_cert_pem.is_empty() {
        return Err(format!("user \"{user_name}\" has neither a token nor a client certificate"));
    }
    Ok(MemberAccess { server: server.to_string(), ca_pem, token, client_cert_pem, client_key_pem })
}

fn yaml_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

impl MemberAccess {
    /// A kubeconfig for this access alone, for the kube client.
    pub fn to_kubeconfig(&self, name: &str) -> String {
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut cluster = format!("    server: {}\n", yaml_quote(&self.server));
        if !self.ca_pem.is_empty() {
            cluster.push_str(&format!("    certificate-authority-data: {}\n", enc(&self.ca_pem)));
        }
        let mut user = String::new();
        if !self.token.is_empty() {
            user.push_str(&format!("    token: {}\n", yaml_quote(&self.token)));
        } else {
            user.push_str(&format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                enc(&self.client_cert_pem),
                enc(&self.client_key_pem)
            ));
        }
        let n = yaml_quote(name);
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: {n}\n  cluster:\n{cluster}users:\n- name: {n}\n  user:\n{user}contexts:\n- name: {n}\n  context:\n    cluster: {n}\n    user: {n}\ncurrent-context: {n}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_contexts() -> String {
        let ca = base64::engine::general_purpose::STANDARD
            .encode("-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n");
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters:\n- name: ca\n  cluster:\n    server: https://a:6443\n    certificate-authority-data: {ca}\n- name: cb\n  cluster:\n    server: https://b:6443\ncontexts:\n- name: a\n  context: {{cluster: ca, user: ua}}\n- name: b\n  context: {{cluster: cb, user: ub}}\nusers:\n- name: ua\n  user:\n    token: tok-a\n- name: ub\n  user:\n    client-certificate-data: {c}\n    client-key-data: {k}\n",
            c = base64::engine::general_purpose::STANDARD.encode("CERT"),
            k = base64::engine::general_purpose::STANDARD.encode("KEY"),
        )
    }

    #[test]
    fn lists_contexts_and_picks_one() {
        let y = two_contexts();
        let cs = contexts(&y).unwrap();
        assert_eq!(cs.len(), 2);
        assert!(cs[1].current && cs[1].auth == "client certificate" && cs[0].auth == "token");
        let a = access(&y, Some("a")).unwrap();
        assert_eq!((a.server.as_str(), a.token.as_str()), ("https://a:6443", "tok-a"));
        assert!(a.ca_pem.contains("BEGIN CERTIFICATE"));
        let b = access(&y, None).unwrap();
        assert_eq!((b.client_cert_pem.as_str(), b.client_key_pem.as_str()), ("CERT", "KEY"));
        // Round trip through the kubeconfig H-MAS writes for itself.
        assert_eq!(access(&a.to_kubeconfig("x"), None).unwrap(), a);
        assert_eq!(access(&b.to_kubeconfig("x"), None).unwrap(), b);
    }

    #[test]
    fn clear_errors() {
        assert!(access("{{{", None).unwrap_err().contains("not valid YAML"));
        assert!(access("a: 1", None).unwrap_err().contains("not a kubeconfig"));
        assert!(access(&two_contexts(), Some("zz")).unwrap_err().contains("no context \"zz\" (it has: a, b)"));
        let bad64 = two_contexts().replace("certificate-authority-data: ", "certificate-authority-data: not*base64");
        assert!(access(&bad64, Some("a")).unwrap_err().contains("certificate-authority-data is not valid base64"));
        let plain = two_contexts().replace("server: https://b:6443", "server: http://b:8080");
        assert!(access(&plain, None).unwrap_err().contains("https://"), "plain HTTP is refused");
        let no_server = two_contexts().replace("server: https://a:6443", "insecure: true");
        assert!(access(&no_server, Some("a")).unwrap_err().contains("has no server"));
        let exec = two_contexts().replace("token: tok-a", "exec: {command: aws}");
        assert!(access(&exec, Some("a")).unwrap_err().contains("plugin"));
        let file = two_contexts().replace("token: tok-a", "client-certificate: /home/me/cert.pem");
        assert!(access(&file, Some("a")).unwrap_err().contains("/home/me/cert.pem"));
    }
}
