//! What the Dockerfile and docker-compose.yml run by default (no docker engine needed):
//! the image's command, with the image's settings, is the authenticated service, which
//! refuses to start until the operator gives it a public URL; its health check is the
//! binary's own `healthcheck`; and everything in compose that runs `--dev` is in the
//! `dev` profile and published on the host's loopback only.

mod common;

use std::sync::Arc;

use common::*;

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The final stage of the Dockerfile: its `ENV` settings, `ENTRYPOINT`, `CMD` and the
/// `HEALTHCHECK` command, with continuation lines joined.
struct Image {
    env: Vec<(String, String)>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    healthcheck: Vec<String>,
    text: String,
}

fn image() -> Image {
    let dockerfile = read("Dockerfile");
    let joined = dockerfile.replace("\\\n", " ");
    let stage = &joined[joined.rfind("\nFROM ").expect("a FROM")..];
    let exec_form =
        |json: &str| serde_json::from_str::<Vec<String>>(json.trim()).expect("exec form");
    let mut image = Image {
        env: Vec::new(),
        entrypoint: Vec::new(),
        cmd: Vec::new(),
        healthcheck: Vec::new(),
        text: stage.to_string(),
    };
    for line in stage.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("ENV ") {
            for kv in rest.split_whitespace() {
                let (k, v) = kv.split_once('=').expect("ENV KEY=VALUE");
                image.env.push((k.to_string(), v.to_string()));
            }
        } else if let Some(rest) = line.strip_prefix("ENTRYPOINT ") {
            image.entrypoint = exec_form(rest);
        } else if let Some(rest) = line.strip_prefix("CMD ") {
            image.cmd = exec_form(rest);
        } else if line.starts_with("HEALTHCHECK ") {
            let (_, cmd) = line.split_once(" CMD ").expect("HEALTHCHECK ... CMD");
            image.healthcheck = exec_form(cmd);
        }
    }
    image
}

/// The runtime stage is minimal (issue 12): a distroless base with no shell, so the stage
/// runs nothing at build time (a `RUN` would need one), it runs as the non-root user the
/// Kubernetes Deployment names, owns its data volume, and needs no library the base lacks.
#[test]
fn the_image_is_minimal_and_runs_as_the_deployments_user() {
    let image = image();
    let first = image.text.lines().nth(1).unwrap_or_default();
    assert!(
        first.starts_with("FROM gcr.io/distroless/cc-debian12"),
        "{first}"
    );
    assert!(
        !image
            .text
            .lines()
            .any(|l| l.trim_start().starts_with("RUN ")),
        "the runtime stage runs a command (it has no shell):\n{}",
        image.text
    );
    let deployment = read("deploy/kubernetes/base/deployment.yaml");
    let uid = deployment
        .lines()
        .find_map(|l| l.trim().strip_prefix("runAsUser: "))
        .expect("runAsUser");
    let gid = deployment
        .lines()
        .find_map(|l| l.trim().strip_prefix("runAsGroup: "))
        .expect("runAsGroup");
    assert!(
        image.text.contains(&format!("\nUSER {uid}:{gid}\n")),
        "USER {uid}:{gid} in:\n{}",
        image.text
    );
    assert!(
        image.text.contains(&format!(
            "--chown={uid}:{gid} /rootfs/var/lib/dvt-cds /var/lib/dvt-cds"
        )),
        "the data volume is not the user's:\n{}",
        image.text
    );
    assert!(image.text.contains("VOLUME [\"/var/lib/dvt-cds\"]"));
}

#[test]
fn the_image_runs_the_authenticated_service_and_waits_for_a_public_url() {
    let image = image();
    assert_eq!(image.entrypoint, ["dvt-cds"]);
    assert_eq!(image.cmd.first().map(String::as_str), Some("serve"));
    assert!(
        !image.cmd.iter().any(|a| a.contains("dev")),
        "{:?}",
        image.cmd
    );
    assert!(
        !image.env.iter().any(|(k, _)| k == "DVT_CDS_DEV"),
        "{:?}",
        image.env
    );
    let setting = |k: &str| {
        image
            .env
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("the image sets no {k}"))
    };
    assert_eq!(setting("DVT_CDS_AUTH_CONFIG"), "/etc/dvt-cds/auth.toml");
    assert_eq!(setting("DVT_CDS_LISTEN"), "0.0.0.0:8080");

    // The image's command and settings, with the operator's auth config mounted but no
    // DVT_CDS_PUBLIC_URL: it refuses (before binding anything) and says what to pass.
    let dir = tempfile::tempdir().unwrap();
    let config = jwt::write_auth_config(dir.path(), &[&jwt::es384("k")], &[]);
    let out = command()
        .args(&image.cmd)
        .envs(image.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("DVT_CDS_AUTH_CONFIG", &config)
        .env("DVT_CDS_FEEDBACK_DB", dir.path().join("f.sqlite3"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DVT_CDS_PUBLIC_URL") && err.contains("0.0.0.0:8080"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
}

/// The health check is the binary (no curl in the image), and it passes against a
/// running service.
#[test]
fn the_image_health_check_is_the_healthcheck_subcommand() {
    let image = image();
    assert_eq!(image.healthcheck, ["dvt-cds", "healthcheck"]);
    assert!(!image.text.contains("curl"), "{}", image.text);

    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = TestApp::spawn_in(dir, &["--dev"]);
    let out = command()
        .args(&image.healthcheck[1..])
        .env("DVT_CDS_LISTEN", format!("0.0.0.0:{}", app.port()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// One compose service: its name, whether it is in the `dev` profile, whether its
/// command runs `--dev`, and its published ports.
#[derive(Debug, Default)]
struct Service {
    name: String,
    dev_profile: bool,
    runs_dev: bool,
    ports: Vec<String>,
}

/// The services of docker-compose.yml, read line by line (two-space indentation).
fn compose_services() -> Vec<Service> {
    let compose = read("docker-compose.yml");
    let mut services: Vec<Service> = Vec::new();
    let mut in_services = false;
    let mut in_ports = false;
    for line in compose.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if indent == 0 {
            in_services = text == "services:";
            continue;
        }
        if !in_services {
            continue;
        }
        if indent == 2 {
            services.push(Service {
                name: text.trim_end_matches(':').to_string(),
                ..Service::default()
            });
            in_ports = false;
            continue;
        }
        let service = services.last_mut().expect("a service");
        if indent == 4 {
            in_ports = text == "ports:";
            if text.starts_with("profiles:") {
                service.dev_profile = text.contains("dev");
            }
            if text.starts_with("command:") {
                service.runs_dev = text.contains("\"--dev\"");
            }
        } else if in_ports && let Some(port) = text.strip_prefix("- ") {
            service.ports.push(port.trim_matches('"').to_string());
        }
    }
    services
}

#[test]
fn compose_runs_dev_only_in_the_dev_profile_and_on_loopback() {
    let services = compose_services();
    let default = services
        .iter()
        .find(|s| s.name == "dvt-cds")
        .expect("a dvt-cds service");
    assert!(!default.dev_profile && !default.runs_dev, "{default:?}");
    let dev = services
        .iter()
        .find(|s| s.runs_dev)
        .expect("a --dev service");
    assert!(dev.name.ends_with("-dev"), "{dev:?}");
    for s in &services {
        assert!(
            !s.runs_dev || s.dev_profile,
            "runs --dev outside the dev profile: {s:?}"
        );
        if s.dev_profile {
            assert!(!s.ports.is_empty() || s.name == "load-examples", "{s:?}");
            for p in &s.ports {
                assert!(p.starts_with("127.0.0.1:"), "{} publishes {p}", s.name);
            }
        }
    }
}
