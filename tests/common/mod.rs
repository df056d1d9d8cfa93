//! Black-box helpers: start the real `dvt-cds` binary on a free port and talk HTTP to it.
//! Shared by `tests/api_*.rs` and `tests/conformance.rs` (each uses part of it).
#![allow(dead_code)]

pub mod jwt;

/// Calf pain (ICD-10-CM M79.662, left lower leg), active and confirmed, onset 2026-11-29
/// (2 days before the population tests' now, 2026-12-01T12:00:00Z): the complaint the
/// Synthea population tests add to copies of each record. `id` names the Condition (its
/// fullUrl is `urn:uuid:{id}`), `subject` is the Patient reference as the Bundle writes it.
pub fn calf_pain_entry(id: &str, subject: &str) -> Value {
    json!({"fullUrl": format!("urn:uuid:{id}"), "resource": {
        "resourceType": "Condition",
        "id": id,
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active"}]},
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": "confirmed"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                             "code": "M79.662", "display": "Pain in left lower leg"}]},
        "subject": {"reference": subject},
        "onsetDateTime": "2026-11-29T12:00:00Z",
        "recordedDate": "2026-11-29T12:00:00Z"}})
}

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_dvt-cds");

/// A running `dvt-cds serve`. Killed on drop.
pub struct TestApp {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    stderr: Arc<Mutex<String>>,
    /// Every line printed on stdout so far.
    stdout: Arc<Mutex<Vec<String>>>,
    /// Keeps the feedback database (and other files) alive as long as the app.
    pub dir: Arc<tempfile::TempDir>,
}

/// A command for the binary with no `DVT_CDS_*` or `OTEL_*` variables inherited from
/// the caller (a developer's own OpenTelemetry settings would send the tests' traces to
/// their collector).
pub fn command() -> Command {
    command_of(BIN)
}

/// [`command`] for another build of the binary (e.g. an older one, to compare).
pub fn command_of(bin: &str) -> Command {
    let mut c = Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("DVT_CDS_") || k.starts_with("OTEL_") {
            c.env_remove(k);
        }
    }
    c
}

/// Run a subcommand to completion.
pub fn run(args: &[&str]) -> Output {
    command().args(args).output().expect("run dvt-cds")
}

impl TestApp {
    /// `dvt-cds serve --listen 127.0.0.1:0 --feedback-db <temp> <args>`.
    pub fn spawn(args: &[&str]) -> TestApp {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        Self::spawn_in(dir, args)
    }

    /// Dev mode (no authentication).
    pub fn dev() -> TestApp {
        Self::spawn(&["--dev"])
    }

    /// Start in `dir` (e.g. to restart on the same feedback database).
    pub fn spawn_in(dir: Arc<tempfile::TempDir>, args: &[&str]) -> TestApp {
        Self::spawn_bin_in(BIN, dir, args)
    }

    /// [`TestApp::spawn`] with these environment variables set.
    pub fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> TestApp {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut c = command();
        c.args(["serve", "--listen", "127.0.0.1:0", "--feedback-db"])
            .arg(dir.path().join("feedback.sqlite3"))
            .args(args)
            .envs(env.iter().copied());
        Self::launch(c, dir)
    }

    /// [`TestApp::spawn_in`] for another build of the binary.
    pub fn spawn_bin_in(bin: &str, dir: Arc<tempfile::TempDir>, args: &[&str]) -> TestApp {
        let db = dir.path().join("feedback.sqlite3");
        let mut c = command_of(bin);
        c.args(["serve", "--listen", "127.0.0.1:0", "--feedback-db"])
            .arg(&db)
            .args(args);
        Self::launch(c, dir)
    }

    /// `dvt-cds serve --listen 127.0.0.1:0 --store <store> <args>` (a shared store:
    /// several apps on one database are replicas).
    pub fn spawn_on_store(dir: Arc<tempfile::TempDir>, store: &str, args: &[&str]) -> TestApp {
        let mut c = command();
        c.args(["serve", "--listen", "127.0.0.1:0", "--store", store])
            .args(args);
        Self::launch(c, dir)
    }

    /// Start `c` (a `serve` command) and wait for its listening line.
    fn launch(mut c: Command, dir: Arc<tempfile::TempDir>) -> TestApp {
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dvt-cds");

        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });

        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(base) = line.strip_prefix("dvt-cds listening on ") {
                    let _ = tx.send(base.trim().to_string());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "dvt-cds did not print its listening line; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        TestApp {
            child,
            base,
            stderr,
            stdout,
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The lines printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// `http://127.0.0.1:PORT` of the `--admin-listen` listener, from its
    /// `dvt-cds admin listening on` line (printed right after the service's line).
    pub fn admin_base(&self) -> String {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self.stdout_lines().iter().find_map(|l| {
                l.strip_prefix("dvt-cds admin listening on ")
                    .map(|b| b.trim().to_string())
            });
            if let Some(base) = found {
                return base;
            }
            assert!(
                Instant::now() < until,
                "no admin listening line: {:?}",
                self.stdout_lines()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Peak resident memory of the process so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> u64 {
        self.status_kib("VmHWM:") * 1024
    }

    /// Resident memory of the process now (`VmRSS`), in bytes.
    pub fn rss(&self) -> u64 {
        self.status_kib("VmRSS:") * 1024
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
    }

    /// Everything logged so far (stderr).
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait for a log line containing `needle` (logs are written after the response).
    pub fn wait_for_log(&self, needle: &str) -> String {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let logs = self.logs();
            if logs.contains(needle) || Instant::now() > until {
                return logs;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait for exit (10 s at most).
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
        self.wait_for_exit(Duration::from_secs(10))
    }

    /// Wait for the process to exit (panics after `within`).
    pub fn wait_for_exit(&mut self, within: Duration) -> ExitStatus {
        let until = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < until,
                "dvt-cds did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (no chance to clean up) and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A valid hook request for `hook` with every prefetch key the service asks for
/// (a Patient, an Encounter, empty searchset Bundles).
pub fn hook_request(hook: &str) -> Value {
    let h = dvt_cds::cds_hooks::Hook::from_wire(hook).expect("known hook");
    let mut prefetch = serde_json::Map::new();
    for (key, template) in dvt_cds::fhir::prefetch_templates(h) {
        let value = if template.starts_with("Patient/") {
            json!({"resourceType": "Patient", "id": "example-patient", "gender": "female", "birthDate": "1970-01-01"})
        } else if template.starts_with("Encounter/") {
            json!({"resourceType": "Encounter", "id": "example-encounter", "status": "in-progress",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                   "subject": {"reference": "Patient/example-patient"}})
        } else {
            json!({"resourceType": "Bundle", "type": "searchset", "total": 0})
        };
        prefetch.insert(key.to_string(), value);
    }
    let mut context = json!({"userId": "Practitioner/example", "patientId": "example-patient"});
    if hook == "encounter-start" {
        context["encounterId"] = json!("example-encounter");
    }
    if hook == "order-select" || hook == "order-sign" {
        context["draftOrders"] = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "ServiceRequest", "id": "draft-1", "status": "draft",
                "intent": "order", "subject": {"reference": "Patient/example-patient"},
                "code": {"text": "Full blood count"}}}]});
    }
    if hook == "order-select" {
        context["selections"] = json!(["ServiceRequest/draft-1"]);
    }
    json!({
        "hook": hook,
        "hookInstance": uuid::Uuid::new_v4().to_string(),
        "context": context,
        "prefetch": prefetch,
    })
}

/// The service id answering `hook`.
pub fn service_of(hook: &str) -> &'static str {
    dvt_cds::cds_hooks::Hook::from_wire(hook)
        .expect("known hook")
        .service_id()
}

/// Assert `body` is an OperationOutcome with at least one error issue; return the
/// issues' text (diagnostics and expressions) for further checks.
pub fn assert_operation_outcome(body: &Value) -> String {
    assert_eq!(
        body["resourceType"], "OperationOutcome",
        "not an OperationOutcome: {body}"
    );
    let issues = body["issue"].as_array().expect("issue array");
    assert!(!issues.is_empty(), "no issue: {body}");
    for i in issues {
        assert_eq!(i["severity"], "error", "{body}");
        assert!(i["code"].as_str().is_some_and(|c| !c.is_empty()), "{body}");
        assert!(
            i["diagnostics"].as_str().is_some_and(|c| !c.is_empty()),
            "{body}"
        );
    }
    serde_json::to_string(issues).unwrap()
}

/// POST JSON; returns status, headers and the body as JSON (Null when empty).
pub async fn post_json(
    url: &str,
    body: &Value,
    bearer: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = client().post(url).json(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    send(req).await
}

pub async fn get(url: &str, bearer: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = client().get(url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    send(req).await
}

pub async fn send(req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, headers, body)
}
