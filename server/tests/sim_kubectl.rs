//! The simulated hub through kubectl, the way an operator would use a real Karmada.
mod common;

use common::sim::{eventually, text, SimProcess};

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - image: nginx
        name: nginx
        resources:
          requests:
            cpu: 500m
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata:
  name: nginx-propagation
spec:
  resourceSelectors:
    - apiVersion: apps/v1
      kind: Deployment
      name: nginx
  placement:
    clusterAffinity:
      clusterNames:
        - gpu-general
        - edge-cpu
    replicaScheduling:
      replicaDivisionPreference: Weighted
      replicaSchedulingType: Divided
      weightPreference:
        staticWeightList:
          - targetCluster:
              clusterNames:
                - gpu-general
            weight: 2
          - targetCluster:
              clusterNames:
                - edge-cpu
            weight: 1
"#;

#[test]
fn kubectl_sees_nodes_and_clusters() {
    let sim = SimProcess::start(&["--join", "--sim-time-scale", "0.01"]);
    let nodes = sim.kubectl("gpu-hpc", &["get", "nodes"]);
    let out = text(&nodes);
    assert!(nodes.status.success(), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains(" Ready ")).count(), 3, "{out}");
    // Client-certificate kubeconfigs work too.
    let out = text(
        &sim.kubectl("gpu-general-cert", &["get", "nodes", "-l", "nvidia.com/gpu.product=NVIDIA-L4", "-o", "name"]),
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    eventually(10, "all three clusters Ready", || {
        let out = text(&sim.kubectl("hub", &["get", "clusters"]));
        (out.lines().filter(|l| l.contains("Push") && l.contains("True")).count() == 3).then_some(())
    });
}

#[test]
fn kubectl_apply_propagates_to_members_and_delete_cleans_up() {
    let sim = SimProcess::start(&["--join", "--sim-time-scale", "0.01"]);
    let out = sim.kubectl_stdin("hub", &["apply", "-f", "-"], APP);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("deployment.apps/nginx created"));

    // Weighted 2:1 over 3 replicas.
    let yaml = eventually(15, "the member copy", || {
        let o = sim.kubectl("gpu-general", &["get", "deploy", "nginx", "-o", "yaml"]);
        o.status.success().then(|| text(&o))
    });
    assert!(yaml.contains("karmada.io/managed: \"true\""), "{yaml}");
    assert!(yaml.contains("replicas: 2"), "{yaml}");
    eventually(15, "edge-cpu's share", || {
        let o = sim.kubectl("edge-cpu", &["get", "deploy", "nginx", "-o", "jsonpath={.spec.replicas}"]);
        (text(&o) == "1").then_some(())
    });
    eventually(15, "the binding scheduled and the hub's status aggregated", || {
        let rb = text(&sim.kubectl(
            "hub",
            &["get", "rb", "nginx-deployment", "-o", "jsonpath={.status.conditions[?(@.type==\"Scheduled\")].status}"],
        ));
        let ready = text(&sim.kubectl("hub", &["get", "deploy", "nginx", "-o", "jsonpath={.status.readyReplicas}"]));
        (rb == "True" && ready == "3").then_some(())
    });

    // Re-applying a change is a patch: the members follow.
    let changed = APP.replace("replicas: 3", "replicas: 6");
    let out = sim.kubectl_stdin("hub", &["apply", "-f", "-"], &changed);
    assert!(text(&out).contains("deployment.apps/nginx configured"), "{}", text(&out));
    eventually(15, "the new split", || {
        let o = sim.kubectl("gpu-general", &["get", "deploy", "nginx", "-o", "jsonpath={.spec.replicas}"]);
        (text(&o) == "4").then_some(())
    });

    // The API server's errors come through kubectl as they would from a real one.
    let bad = sim.kubectl_stdin(
        "hub",
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: Bad_Name\n",
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("The Namespace \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""),
        "{}",
        text(&bad)
    );
    let missing = sim.kubectl("hub", &["get", "deploy", "nope"]);
    assert!(text(&missing).contains("deployments.apps \"nope\" not found"), "{}", text(&missing));

    let out = sim.kubectl("hub", &["delete", "deploy", "nginx"]);
    assert!(out.status.success(), "{}", text(&out));
    for member in ["gpu-general", "edge-cpu"] {
        eventually(15, "member copies removed", || {
            let o = sim.kubectl(member, &["get", "deploy,pods", "-o", "name"]);
            text(&o).trim().is_empty().then_some(())
        });
    }
    assert!(
        text(&sim.kubectl("hub", &["get", "rb", "-o", "name"])).trim().is_empty(),
        "binding gone with its template"
    );
}

#[test]
fn kubectl_imperative_commands_create_scale_and_read_the_webhook() {
    let sim = SimProcess::start(&["--join", "--sim-time-scale", "0.01"]);
    let ok = |args: &[&str]| {
        let o = sim.kubectl("hub", args);
        assert!(o.status.success(), "kubectl {args:?}: {}", text(&o));
        text(&o)
    };
    // kubectl 1.2x and later send these as protobuf; the API server reads them.
    assert!(ok(&["create", "namespace", "demo"]).contains("namespace/demo created"));
    ok(&["-n", "demo", "create", "configmap", "settings", "--from-literal=mode=fast"]);
    ok(&["-n", "demo", "create", "secret", "generic", "token", "--from-literal=value=s3cret"]);
    ok(&["-n", "demo", "create", "deployment", "web", "--image=nginx:1.27", "--replicas=2"]);
    assert_eq!(ok(&["-n", "demo", "get", "configmap", "settings", "-o", "jsonpath={.data.mode}"]), "fast");
    assert_eq!(ok(&["-n", "demo", "get", "secret", "token", "-o", "jsonpath={.data.value}"]), "czNjcmV0");
    assert_eq!(
        ok(&[
            "-n",
            "demo",
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}"
        ]),
        "2 nginx:1.27"
    );
    // `kubectl scale` goes through the scale subresource.
    assert!(ok(&["-n", "demo", "scale", "deployment", "web", "--replicas=0"]).contains("scaled"));
    assert_eq!(ok(&["-n", "demo", "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"]), "0");
    // The Swagger 2.0 document, as `kubectl get --raw` reads it.
    let v2: serde_json::Value = serde_json::from_str(&ok(&["get", "--raw", "/openapi/v2"])).unwrap();
    assert_eq!(v2["swagger"], "2.0");
    assert!(v2["paths"]["/apis/policy.karmada.io/v1alpha1/namespaces/{namespace}/propagationpolicies"].is_object());
    // The webhook's refusal reads as Karmada's.
    let refused = sim.kubectl_stdin(
        "hub",
        &["apply", "-f", "-"],
        r#"
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web-fo, namespace: demo}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: web}]
  failover: {application: {decisionConditions: {tolerationSeconds: 30}, purgeMode: Never}}
"#,
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("admission webhook \"propagationpolicy.karmada.io\" denied the request: spec.propagateDeps: Invalid value: false: application failover is set, propagateDeps must be true"),
        "{}",
        text(&refused)
    );
}
