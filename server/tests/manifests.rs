//! The Kubernetes manifests for running H-MAS next to a Karmada hub (deploy/kubernetes): each
//! overlay renders with kustomize, every object survives a round trip through its typed schema
//! (a misspelt field would be dropped), the objects refer to each other correctly and to what
//! the server image expects, and the example applies to a (simulated) cluster where H-MAS's pod
//! comes up Ready.
mod common;

use common::sim::{eventually, kubectl, text, SimProcess};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn render(overlay: &str) -> Vec<Value> {
    let dir = format!("{ROOT}/deploy/kubernetes/{overlay}");
    let o = kubectl(Path::new("/nonexistent/kubeconfig"), &["kustomize", &dir], None);
    assert!(o.status.success(), "kubectl kustomize {overlay}: {}", text(&o));
    serde_yaml::Deserializer::from_slice(&o.stdout)
        .map(|d| serde_json::to_value(serde_yaml::Value::deserialize(d).unwrap()).unwrap())
        // An empty document (kustomize v2 ends with one) is nothing.
        .filter(|v: &Value| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()))
        .collect()
}

use serde::Deserialize;

/// Deserialises into the typed object and back: anything the schema does not know is lost, and
/// the difference names it.
fn round_trip<K: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) {
    let typed: K = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{} {}: {e}", doc["kind"], doc["metadata"]["name"]));
    let back = serde_json::to_value(&typed).unwrap();
    let mut missing = Vec::new();
    diff("", doc, &back, &mut missing);
    assert!(missing.is_empty(), "{} {}: fields not in the schema: {missing:?}", doc["kind"], doc["metadata"]["name"]);
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => diff(&format!("{path}.{k}"), v, w, out),
                    // Empty objects and nulls drop out on serialisation; they carry nothing.
                    None if v.is_null() || v.as_object().is_some_and(|o| o.is_empty()) => {}
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), v, w, out);
            }
        }
        (Value::Number(x), Value::String(y)) if x.to_string() == *y => {}
        _ if a == b => {}
        _ => out.push(format!("{path}: {a} became {b}")),
    }
}

fn check_schemas(docs: &[Value]) {
    for d in docs {
        match d["kind"].as_str().unwrap_or_else(|| panic!("no kind: {d}")) {
            "Namespace" => round_trip::<Namespace>(d),
            "ServiceAccount" => round_trip::<ServiceAccount>(d),
            "Role" => round_trip::<Role>(d),
            "RoleBinding" => round_trip::<RoleBinding>(d),
            "PersistentVolumeClaim" => round_trip::<PersistentVolumeClaim>(d),
            "Deployment" => round_trip::<Deployment>(d),
            "Service" => round_trip::<Service>(d),
            "NetworkPolicy" => round_trip::<NetworkPolicy>(d),
            "PodDisruptionBudget" => round_trip::<PodDisruptionBudget>(d),
            "Secret" => {
                // Base64 may be wrapped over lines, as the API server's decoder accepts.
                let mut d = d.clone();
                for v in d["data"].as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
                    *v = Value::from(v.as_str().unwrap().split_whitespace().collect::<String>());
                }
                round_trip::<Secret>(&d)
            }
            k => panic!("unexpected kind {k}"),
        }
    }
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector.as_object().unwrap().iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// What every overlay must hold together.
fn check_references(docs: &[Value], expect_secrets: bool, replicas: u32) {
    let d = find(docs, "Deployment", "hmas").expect("the hmas Deployment");
    assert!(
        docs.iter().all(|o| o["kind"] == "Namespace" || o["metadata"]["namespace"] == "hmas-system"),
        "one namespace"
    );
    let pod = &d["spec"]["template"];
    let c = &pod["spec"]["containers"][0];
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(c["image"], format!("ghcr.io/hmas-io/hmas:{version}"), "the image of this release");
    assert_eq!(d["spec"]["replicas"], replicas);
    assert!(labels_match(&d["spec"]["selector"]["matchLabels"], &pod["metadata"]["labels"]));
    if replicas == 1 {
        // SQLite: never two processes on the volume, not even during an update.
        assert_eq!(d["spec"]["strategy"]["type"], "Recreate", "never two writers");
    } else {
        // PostgreSQL: never fewer than the replicas during an update or a drain, spread over nodes.
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
        let pdb = find(docs, "PodDisruptionBudget", "hmas").expect("a PodDisruptionBudget");
        assert!(labels_match(&pdb["spec"]["selector"]["matchLabels"], &pod["metadata"]["labels"]));
        assert_eq!(pdb["spec"]["minAvailable"], replicas - 1);
        let spread = &pod["spec"]["topologySpreadConstraints"][0];
        assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
        assert!(labels_match(&spread["labelSelector"]["matchLabels"], &pod["metadata"]["labels"]));
        assert!(d
            .pointer("/spec/template/spec/volumes")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.get("persistentVolumeClaim").is_none()));
    }

    // Service → pods and a named port that exists.
    let svc = find(docs, "Service", "hmas").unwrap();
    assert!(labels_match(&svc["spec"]["selector"], &pod["metadata"]["labels"]));
    let ports: Vec<&Value> = c["ports"].as_array().unwrap().iter().collect();
    let named = |n: &Value| ports.iter().any(|p| &p["name"] == n || &p["containerPort"] == n);
    assert!(named(&svc["spec"]["ports"][0]["targetPort"]));
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert!(named(&c[probe]["httpGet"]["port"]), "{probe} port");
    }
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");

    // Environment: the data directory is a mounted volume; Secrets exist with the keys used.
    let env: BTreeMap<String, &Value> =
        c["env"].as_array().unwrap().iter().map(|e| (e["name"].as_str().unwrap().to_string(), e)).collect();
    let mounts: Vec<&str> =
        c["volumeMounts"].as_array().unwrap().iter().map(|m| m["mountPath"].as_str().unwrap()).collect();
    assert!(mounts.contains(&env["HMAS_DATA_DIR"]["value"].as_str().unwrap()));
    assert!(env["HMAS_HUB_KUBECONFIG"]["value"].as_str().unwrap().starts_with("/etc/hmas/hub/"));
    assert!(env.contains_key("HMAS_MASTER_KEY") && env.contains_key("HMAS_ADMIN_PASSWORD"));
    for e in env.values() {
        if let Some(r) = e.pointer("/valueFrom/secretKeyRef") {
            assert!(e.get("value").is_none(), "secrets never inline: {e}");
            if expect_secrets {
                let s = find(docs, "Secret", r["name"].as_str().unwrap()).unwrap_or_else(|| panic!("no Secret {r}"));
                let key = r["key"].as_str().unwrap();
                assert!(s["data"].get(key).is_some() || s["stringData"].get(key).is_some(), "{key} in {}", r["name"]);
            }
        }
    }
    for v in pod["spec"]["volumes"].as_array().unwrap() {
        if let Some(claim) = v.pointer("/persistentVolumeClaim/claimName").and_then(Value::as_str) {
            assert!(find(docs, "PersistentVolumeClaim", claim).is_some(), "no PVC {claim}");
        }
        if let (Some(s), true) = (v.pointer("/secret/secretName").and_then(Value::as_str), expect_secrets) {
            assert!(find(docs, "Secret", s).is_some(), "no Secret {s}");
        }
        let name = v["name"].as_str().unwrap();
        assert!(c["volumeMounts"].as_array().unwrap().iter().any(|m| m["name"] == name), "volume {name} unused");
    }

    // Locked down: the user of the server image, read-only root, no token, no privileges.
    let image_user = std::fs::read_to_string(format!("{ROOT}/Dockerfile"))
        .unwrap()
        .split("AS server")
        .nth(1)
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("USER ")).map(|u| u.trim().to_string()))
        .unwrap();
    let psc = &pod["spec"]["securityContext"];
    assert_eq!(format!("{}:{}", psc["runAsUser"], psc["runAsGroup"]), image_user);
    assert_eq!(psc["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    assert!(mounts.contains(&"/tmp"));
    assert!(c["resources"]["requests"]["cpu"].is_string() && c["resources"]["limits"]["memory"].is_string());

    // RBAC binds the pod's account; the NetworkPolicy selects the pod and lets the port in.
    let sa = pod["spec"]["serviceAccountName"].as_str().unwrap();
    assert!(find(docs, "ServiceAccount", sa).is_some());
    let rb = find(docs, "RoleBinding", "hmas").unwrap();
    assert_eq!(rb["subjects"][0]["name"], sa);
    assert!(find(docs, "Role", rb["roleRef"]["name"].as_str().unwrap()).is_some());
    let np = find(docs, "NetworkPolicy", "hmas").unwrap();
    assert!(labels_match(&np["spec"]["podSelector"]["matchLabels"], &pod["metadata"]["labels"]));
    assert_eq!(np["spec"]["ingress"][0]["ports"][0]["port"], c["ports"][0]["containerPort"]);
}

#[test]
fn every_overlay_renders_and_holds_together() {
    let base = render("base");
    check_schemas(&base);
    check_references(&base, false, 1);
    assert!(find(&base, "Secret", "hmas-secrets").is_none(), "no secret in the base");

    let pg = render("postgres");
    check_schemas(&pg);
    check_references(&pg, false, 2);
    assert!(find(&pg, "PersistentVolumeClaim", "hmas-data").is_none());
    let c = &find(&pg, "Deployment", "hmas").unwrap()["spec"]["template"]["spec"]["containers"][0];
    assert!(c["env"].as_array().unwrap().iter().any(|e| e["name"] == "HMAS_DATABASE_URL"
        && e.pointer("/valueFrom/secretKeyRef/key") == Some(&Value::from("database-url"))));

    let example = render("example");
    check_schemas(&example);
    check_references(&example, true, 1);
}

#[test]
fn the_example_applies_and_its_pod_becomes_ready() {
    let sim = SimProcess::start(&[]);
    let yaml = {
        let dir = format!("{ROOT}/deploy/kubernetes/example");
        let o = kubectl(Path::new("/nonexistent/kubeconfig"), &["kustomize", &dir], None);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    // The namespace first (as `kubectl apply` to a fresh cluster needs), then the server's dry run.
    let ns_doc = yaml.split("\n---\n").find(|d| d.contains("kind: Namespace")).unwrap();
    let ns = sim.kubectl_stdin("edge-cpu", &["apply", "-f", "-"], ns_doc);
    assert!(ns.status.success(), "{}", text(&ns));
    let dry = sim.kubectl_stdin("edge-cpu", &["apply", "--dry-run=server", "-f", "-"], &yaml);
    assert!(dry.status.success(), "{}", text(&dry));
    let none = sim.kubectl("edge-cpu", &["-n", "hmas-system", "get", "deploy", "-o", "name"]);
    assert!(
        text(&none).trim().is_empty() || text(&none).contains("No resources"),
        "a dry run creates nothing: {}",
        text(&none)
    );
    let applied = sim.kubectl_stdin("edge-cpu", &["apply", "-f", "-"], &yaml);
    assert!(applied.status.success(), "{}", text(&applied));
    let out = text(&applied);
    for obj in [
        "deployment.apps/hmas",
        "service/hmas",
        "networkpolicy.networking.k8s.io/hmas",
        "persistentvolumeclaim/hmas-data",
        "secret/hmas-secrets",
        "role.rbac.authorization.k8s.io/hmas",
    ] {
        assert!(out.contains(obj), "{obj} in {out}");
    }
    eventually(30, "the hmas pod to be Ready", || {
        let o = sim.kubectl(
            "edge-cpu",
            &[
                "-n",
                "hmas-system",
                "get",
                "pods",
                "-l",
                "app.kubernetes.io/name=hmas",
                "-o",
                "jsonpath={.items[0].status.conditions[?(@.type==\"Ready\")].status}",
            ],
        );
        (text(&o).trim() == "True").then_some(())
    });
    let pvc =
        sim.kubectl("edge-cpu", &["-n", "hmas-system", "get", "pvc", "hmas-data", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(text(&pvc).trim(), "Bound");
}
