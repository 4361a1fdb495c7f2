//! `deploy/kubernetes/`: the Deployment's replicas, probes, user and grace period, its
//! Secret references against `secret.example.yaml`, and the Service and
//! PodDisruptionBudget selecting its pods.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{SHARED, dockerfile, image_args, listen_ports, load, strings, text};

fn subset(labels: &Value, of: &Value) -> bool {
    let labels = labels.as_object().expect("labels");
    !labels.is_empty() && labels.iter().all(|(k, v)| of.get(k) == Some(v))
}

/// A probe's or Service's port (number or container port name) as a number.
fn resolve_port(container: &Value, port: &Value) -> u16 {
    let ports = container["ports"].as_array().expect("container ports");
    let found = match port {
        Value::Number(n) => ports
            .iter()
            .find(|p| p["containerPort"].as_u64() == n.as_u64()),
        Value::String(name) => ports.iter().find(|p| p["name"] == name.as_str()),
        _ => None,
    };
    found
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("{port} is no container port")) as u16
}

pub(super) fn container() -> Value {
    load("deploy/kubernetes/deployment.yaml")["spec"]["template"]["spec"]["containers"][0].clone()
}

/// The container's `serve` arguments: its `args`, else the image's command.
pub(super) fn container_args(c: &Value) -> Vec<String> {
    let args = strings(&c["args"]);
    if args.is_empty() { image_args() } else { args }
}

#[test]
fn the_kubernetes_deployment_runs_three_replicas_probed_on_ready_and_health() {
    let d = load("deploy/kubernetes/deployment.yaml");
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["spec"]["replicas"], 3);
    let pod = &d["spec"]["template"];
    assert!(subset(
        &d["spec"]["selector"]["matchLabels"],
        &pod["metadata"]["labels"]
    ));
    let c = container();
    let image = text(&c, "/image");
    assert!(
        image.rsplit('/').next().unwrap().contains(':'),
        "a tagged image, not {image}"
    );
    let (main, mcp) = listen_ports(&container_args(&c));
    let declared: BTreeSet<u16> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].as_u64().unwrap() as u16)
        .collect();
    assert_eq!(declared, BTreeSet::from([main, mcp]));
    for (probe, path) in [
        ("readinessProbe", "/ready"),
        ("livenessProbe", "/health"),
        ("startupProbe", ""),
    ] {
        let Some(get) = c.get(probe).map(|p| &p["httpGet"]) else {
            assert!(path.is_empty(), "no {probe}");
            continue;
        };
        let want = if path.is_empty() {
            text(get, "/path")
        } else {
            path
        };
        assert!(["/ready", "/health"].contains(&want));
        assert_eq!(text(get, "/path"), want, "{probe}");
        assert!(
            [main, mcp].contains(&resolve_port(&c, &get["port"])),
            "{probe} on a port the hub serves"
        );
    }
    let spec = &pod["spec"];
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    let uid = spec["securityContext"]["runAsUser"]
        .as_u64()
        .expect("runAsUser");
    let image_uid = dockerfile()
        .iter()
        .rfind(|(k, _)| k == "USER")
        .unwrap()
        .1
        .split(':')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        uid.to_string(),
        image_uid,
        "the pod runs as the image's user"
    );
    let grace = spec["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    let pause: u64 = strings(&c["lifecycle"]["preStop"]["exec"]["command"])
        .get(1)
        .map_or(0, |s| s.parse().unwrap());
    assert!(
        grace >= pause + 10,
        "{grace} s leave too little time to drain after a {pause} s pause"
    );
}

#[test]
fn the_deployment_reads_every_shared_secret_from_the_example_secret() {
    let secret = load("deploy/kubernetes/secret.example.yaml");
    assert_eq!(secret["kind"], "Secret");
    let keys: BTreeSet<String> = secret["stringData"]
        .as_object()
        .expect("stringData")
        .keys()
        .cloned()
        .collect();
    let env = container()["env"].as_array().expect("env").clone();
    let mut from_secret = BTreeSet::new();
    for e in &env {
        let name = text(e, "/name");
        if let Some(r) = e.pointer("/valueFrom/secretKeyRef") {
            assert_eq!(
                r["name"], secret["metadata"]["name"],
                "{name} names the Secret"
            );
            assert!(
                keys.iter().any(|k| k == text(r, "/key")),
                "{name}: the Secret has no key {}",
                r["key"]
            );
            from_secret.insert(name);
        } else {
            assert!(
                !SHARED.contains(&name),
                "{name} is a secret: read it from the Secret"
            );
        }
    }
    assert_eq!(from_secret, BTreeSet::from(SHARED));
}

#[test]
fn the_service_and_the_disruption_budget_select_the_deployment_pods() {
    let d = load("deploy/kubernetes/deployment.yaml");
    let labels = &d["spec"]["template"]["metadata"]["labels"];
    let c = container();
    let s = load("deploy/kubernetes/service.yaml");
    assert_eq!(s["kind"], "Service");
    assert!(s["spec"].get("type").is_none_or(|t| t == "ClusterIP"));
    assert!(
        s["spec"].get("sessionAffinity").is_none_or(|a| a == "None"),
        "no session affinity"
    );
    assert!(subset(&s["spec"]["selector"], labels));
    let mut ports = BTreeSet::new();
    for p in s["spec"]["ports"].as_array().expect("ports") {
        let port = p["port"].as_u64().unwrap() as u16;
        assert_eq!(
            resolve_port(&c, &p["targetPort"]),
            port,
            "service port {port} reaches the same container port"
        );
        ports.insert(port);
    }
    let (main, mcp) = listen_ports(&container_args(&c));
    assert_eq!(ports, BTreeSet::from([main, mcp]));

    let pdb = load("deploy/kubernetes/pdb.yaml");
    assert_eq!(pdb["kind"], "PodDisruptionBudget");
    assert!(subset(&pdb["spec"]["selector"]["matchLabels"], labels));
    let replicas = d["spec"]["replicas"].as_u64().unwrap();
    let ok = pdb["spec"]["maxUnavailable"] == 1
        || pdb["spec"]["minAvailable"]
            .as_u64()
            .is_some_and(|m| m >= 1 && m < replicas);
    assert!(ok, "the budget lets one pod go at a time: {}", pdb["spec"]);
}
