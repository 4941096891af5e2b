//! The Dockerfile's images and the Deployments H-MAS renders for them must agree: the images
//! cannot be built here, so what each one expects (user, entrypoint, ports, writable paths,
//! environment, base image) is read from the Dockerfile and checked against the rendered pod.
use app::models::deployment::DeploySpec;
use app::models::policy::PlacementPlan;
use app::models::runtime::{agent_image, RuntimeKind, AGENT_PORT};
use k8s_openapi::api::core::v1::PodSpec;
use server::hub::render::{render, RenderInput, AGENT_UID};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
struct Stage {
    name: String,
    base: String,
    user: Option<String>,
    env: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    expose: Vec<u16>,
    volumes: Vec<String>,
    entrypoint: Vec<String>,
}

fn json_words(s: &str) -> Vec<String> {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not an exec-form JSON array: {s}: {e}"))
}

/// `k=v k2="v 2"` pairs of ENV and LABEL.
fn pairs(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (k, after) = rest.split_once('=').unwrap_or_else(|| panic!("not key=value: {rest}"));
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap();
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((k.trim().to_string(), v));
        rest = next.trim();
    }
    out
}

fn stages() -> Vec<Stage> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let mut out: Vec<Stage> = Vec::new();
    for line in joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (op, arg) = line.split_once(' ').unwrap_or((line, ""));
        let arg = arg.trim();
        if op == "FROM" {
            let words: Vec<&str> = arg.split_whitespace().collect();
            let name = if words.len() == 3 && words[1].eq_ignore_ascii_case("as") { words[2] } else { "" };
            out.push(Stage { name: name.into(), base: words[0].into(), ..Default::default() });
            continue;
        }
        let s = out.last_mut().expect("an instruction before FROM");
        match op {
            "USER" => s.user = Some(arg.into()),
            "ENV" => s.env.extend(pairs(arg)),
            "LABEL" => s.labels.extend(pairs(arg)),
            "EXPOSE" => s.expose.extend(arg.split_whitespace().map(|p| p.parse::<u16>().unwrap())),
            "VOLUME" => s.volumes.extend(json_words(arg)),
            "ENTRYPOINT" => s.entrypoint = json_words(arg),
            _ => {}
        }
    }
    out
}

fn pod(runtime: RuntimeKind, gpus: u32) -> PodSpec {
    let spec = DeploySpec {
        name: "m".into(),
        model: match runtime {
            RuntimeKind::Ollama => "llama3.2:1b".into(),
            RuntimeKind::LlamaCpp => "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M".into(),
            _ => "Qwen/Qwen2.5-1.5B-Instruct".into(),
        },
        runtime,
        replicas: 1,
        gpus_per_replica: gpus,
        clusters: vec!["c".into()],
        agent: true,
        ..Default::default()
    };
    let plan = PlacementPlan { clusters: vec!["c".into()], ..Default::default() };
    let objs = render(&RenderInput {
        name: "m",
        spec: &spec,
        replicas: 1,
        cache_clusters: &[],
        preload: false,
        plan: &plan,
        strategy: None,
        failover: None,
    });
    objs.deployment.spec.unwrap().template.spec.unwrap()
}

#[test]
fn every_base_image_is_pinned_and_every_image_is_labelled() {
    let all = stages();
    assert!(all.len() >= 9, "{all:?}");
    for s in &all {
        let b = &s.base;
        let named_stage = all.iter().any(|o| !o.name.is_empty() && &o.name == b);
        let tag = b.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(
            named_stage
                || (b.contains('@') && b.contains("sha256:"))
                || (!tag.is_empty() && tag != "latest" && !b.ends_with(":server") && !b.ends_with(":server-cuda")),
            "FROM {b} is not pinned to a version or digest"
        );
    }
    for s in all.iter().filter(|s| s.name == "server" || s.name.starts_with("agent-")) {
        for key in ["title", "source", "version", "description"] {
            assert!(s.labels.contains_key(&format!("org.opencontainers.image.{key}")), "{}: no {key} label", s.name);
        }
        assert_eq!(s.labels["org.opencontainers.image.version"], env!("CARGO_PKG_VERSION"), "{}", s.name);
        assert_eq!(s.entrypoint[0], "/usr/local/bin/hmas", "{}", s.name);
    }
}

#[test]
fn the_server_image_runs_unprivileged_without_a_shell() {
    let s = stages().into_iter().find(|s| s.name == "server").unwrap();
    assert!(s.base.starts_with("gcr.io/distroless/"), "no shell in the server image: {}", s.base);
    assert_eq!(s.user.as_deref(), Some("65532:65532"));
    assert_eq!(s.expose, [3000]);
    assert_eq!(s.volumes, ["/var/lib/hmas"]);
    assert_eq!(s.env["HMAS_DATA_DIR"], "/var/lib/hmas");
    assert_eq!(s.env["HMAS_ADDR"], "0.0.0.0:3000");
}

#[test]
fn each_wrapper_image_matches_the_deployment_rendered_for_it() {
    let all = stages();
    for runtime in RuntimeKind::ALL {
        for gpus in [0, 1] {
            if gpus == 0 && !runtime.preset().cpu_capable {
                continue;
            }
            let image = agent_image(runtime, gpus);
            let flavour = image.rsplit_once(&format!("{}-", env!("CARGO_PKG_VERSION"))).unwrap().1;
            let stage = all
                .iter()
                .find(|s| s.name == format!("agent-{flavour}"))
                .unwrap_or_else(|| panic!("no Dockerfile stage agent-{flavour} for {image}"));
            let what = format!("{} ({gpus} GPU): stage {}", runtime.as_str(), stage.name);
            let preset = runtime.preset();
            // The runtime in the image is the one the official-image deployments run.
            let official = if gpus > 0 { preset.gpu_image.unwrap_or(preset.image) } else { preset.image };
            assert_eq!(stage.base, official, "{what}");
            assert_eq!(stage.env["HMAS_RUNTIME"], runtime.as_str(), "{what}");
            assert_eq!(stage.entrypoint, ["/usr/local/bin/hmas", "agent"], "{what}");

            let pod = pod(runtime, gpus);
            let c = &pod.containers[0];
            assert_eq!(c.image.as_deref(), Some(image.as_str()), "{what}");
            assert_eq!(c.command.as_deref(), Some(&stage.entrypoint[..]), "{what}: the image's entrypoint");
            let args = c.args.clone().unwrap();
            assert_eq!(args[0], "--", "{what}");
            assert_eq!(args[1..=preset.entrypoint.len()], *preset.entrypoint, "{what}: the runtime command");
            // User: the image's, enforced by the pod.
            let (uid, gid) = stage.user.as_deref().unwrap().split_once(':').unwrap();
            let sc = pod.security_context.as_ref().unwrap();
            assert_eq!(
                (sc.run_as_user, sc.run_as_group),
                (Some(uid.parse().unwrap()), Some(gid.parse().unwrap())),
                "{what}"
            );
            assert_eq!(sc.run_as_user, Some(AGENT_UID));
            assert_eq!(sc.run_as_non_root, Some(true));
            // A read-only root: every path the image declares writable is a mounted volume.
            let csc = c.security_context.as_ref().unwrap();
            assert_eq!(csc.read_only_root_filesystem, Some(true), "{what}");
            assert_eq!(csc.allow_privilege_escalation, Some(false), "{what}");
            let mounts: Vec<&str> = c.volume_mounts.as_ref().unwrap().iter().map(|m| m.mount_path.as_str()).collect();
            for v in &stage.volumes {
                assert!(mounts.contains(&v.as_str()), "{what}: {v} is written but not mounted ({mounts:?})");
            }
            // Ports: what the image exposes is what the pod names.
            let ports: Vec<u16> = c.ports.as_ref().unwrap().iter().map(|p| p.container_port as u16).collect();
            let mut exposed = stage.expose.clone();
            exposed.sort();
            let mut declared = ports.clone();
            declared.sort();
            assert_eq!(exposed, declared, "{what}");
            assert!(ports.contains(&preset.port) && ports.contains(&AGENT_PORT), "{what}");
            // Probes reach the agent.
            for (probe, path) in
                [(&c.readiness_probe, "/readyz"), (&c.liveness_probe, "/healthz"), (&c.startup_probe, "/healthz")]
            {
                let g = probe.as_ref().unwrap().http_get.as_ref().unwrap();
                assert_eq!(
                    (g.path.as_deref(), &g.port),
                    (Some(path), &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("agent".into())),
                    "{what}"
                );
            }
            // Environment the pod sets agrees with the image's defaults.
            let env: BTreeMap<String, String> =
                c.env.as_ref().unwrap().iter().filter_map(|e| Some((e.name.clone(), e.value.clone()?))).collect();
            for (k, v) in &stage.env {
                if let Some(pv) = env.get(k) {
                    assert_eq!(pv, v, "{what}: {k}");
                }
            }
            assert!(
                c.env.as_ref().unwrap().iter().any(|e| e.name == "HMAS_POD_NAME" && e.value_from.is_some()),
                "{what}"
            );
            assert_eq!(pod.service_account_name.as_deref(), Some("hmas-agent"), "{what}");
            assert_eq!(pod.readiness_gates.as_ref().unwrap()[0].condition_type, "hmas.io/model-ready", "{what}");
        }
    }
}
