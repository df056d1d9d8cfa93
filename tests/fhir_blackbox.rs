//! Black-box: the real `dvt-cds serve` binary against the Helios FHIR server (hfs) and
//! fake servers. A hook call gives the same cards whether the data came as prefetch or
//! from live queries, and a FHIR server that is down, hangs or refuses the token gives
//! 412 within `--deadline` (contract.md, "Prefetch: every case").

mod fhir_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fhir_support::synthetic;
use fhir_support::{Behaviour, Fake, Hfs};
use serde_json::{Map, Value, json};
use url::Url;

/// A running `dvt-cds serve --dev`, killed on drop.
struct Service {
    child: Child,
    base: Url,
    _dir: tempfile::TempDir,
}

impl Service {
    fn start(deadline: &str) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_dvt-cds"))
            .args([
                "serve",
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--deadline",
                deadline,
            ])
            .arg("--feedback-db")
            .arg(dir.path().join("feedback.sqlite3"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dvt-cds");
        // common.md: exactly one line `dvt-cds listening on http://127.0.0.1:PORT`.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("dvt-cds did not print its listening line");
            }
        };
        let url = line
            .trim()
            .strip_prefix("dvt-cds listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        Service {
            child,
            base: Url::parse(url).unwrap(),
            _dir: dir,
        }
    }

    async fn call(&self, body: &Value) -> (u16, Value) {
        let url = self.base.join("cds-services/dvt-patient-view").unwrap();
        let r = reqwest::Client::new()
            .post(url)
            .json(body)
            .send()
            .await
            .expect("POST hook call");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hook_call(
    server: &Url,
    patient: &str,
    instance: &str,
    prefetch: Option<Map<String, Value>>,
) -> Value {
    let mut body = json!({
        "hook": "patient-view",
        "hookInstance": instance,
        "fhirServer": server.as_str(),
        "context": {"userId": "Practitioner/example", "patientId": patient}
    });
    if let Some(p) = prefetch {
        body["prefetch"] = Value::Object(p);
    }
    body
}

/// Cards without their uuids (the uuid depends on the hookInstance).
fn cards(response: &Value) -> Value {
    let mut r = response.clone();
    if let Some(cards) = r.get_mut("cards").and_then(Value::as_array_mut) {
        for c in cards {
            if let Some(o) = c.as_object_mut() {
                o.remove("uuid");
            }
        }
    }
    r
}

#[tokio::test]
#[ignore = "needs the Helios FHIR server: run scripts/test"]
async fn patient_view_cards_are_equal_with_and_without_prefetch() {
    let hfs = Hfs::start(50).await;
    let service = Service::start("5s");
    for (n, p) in synthetic::patients().iter().enumerate() {
        hfs.load(&p.transaction()).await;
        let mut prefetch = Map::new();
        for (key, template) in
            dvt_cds::fhir::prefetch_templates(dvt_cds::cds_hooks::Hook::PatientView)
        {
            prefetch.insert(
                key.into(),
                hfs.get(&template.replace("{{context.patientId}}", &p.id))
                    .await,
            );
        }
        let instance = |k: usize| format!("d9c5b0a8-0000-4000-8000-{:012}", n * 10 + k);
        let (s1, live) = service
            .call(&hook_call(&hfs.base(), &p.id, &instance(1), None))
            .await;
        let (s2, pre) = service
            .call(&hook_call(&hfs.base(), &p.id, &instance(2), Some(prefetch)))
            .await;
        assert_eq!((s1, s2), (200, 200), "{}: {live} {pre}", p.id);
        assert!(live["cards"].is_array(), "{live}");
        assert_eq!(cards(&live), cards(&pre), "{}", p.id);
    }
}

#[tokio::test]
#[ignore = "needs the Helios FHIR server: run scripts/test"]
async fn stopped_fhir_server_gives_412() {
    let mut hfs = Hfs::start(50).await;
    let base = hfs.base();
    hfs.stop();
    let service = Service::start("2s");
    let (status, body) = service
        .call(&hook_call(
            &base,
            "dvt-p1",
            "d9c5b0a8-0000-4000-8000-000000000101",
            None,
        ))
        .await;
    assert_eq!(status, 412, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
}

#[tokio::test]
#[ignore = "needs the Helios FHIR server: run scripts/test"]
async fn hanging_fhir_server_gives_412_within_the_deadline() {
    let fake = Fake::start(Behaviour::Hang).await;
    let service = Service::start("1s");
    let started = Instant::now();
    let (status, body) = service
        .call(&hook_call(
            &fake.base(),
            "p1",
            "d9c5b0a8-0000-4000-8000-000000000102",
            None,
        ))
        .await;
    let took = started.elapsed();
    assert_eq!(status, 412, "{body}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
#[ignore = "needs the Helios FHIR server: run scripts/test"]
async fn refused_token_gives_412() {
    let fake = Fake::start(Behaviour::Answer(
        401,
        "application/fhir+json",
        "{\"resourceType\":\"OperationOutcome\"}".into(),
    ))
    .await;
    let service = Service::start("2s");
    let (status, body) = service
        .call(&hook_call(
            &fake.base(),
            "p1",
            "d9c5b0a8-0000-4000-8000-000000000103",
            None,
        ))
        .await;
    assert_eq!(status, 412, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
}

impl Service {
    /// The service's `GET /metrics` text.
    async fn metrics(&self) -> String {
        reqwest::get(self.base.join("metrics").unwrap())
            .await
            .expect("GET /metrics")
            .text()
            .await
            .unwrap()
    }
}

/// A full prefetch for `patient` whose MedicationRequest names `Medication/{medication}`
/// without including it (an EHR that ignores `_include`).
fn prefetch_naming_a_medication(patient: &str, medication: &str) -> Map<String, Value> {
    let mut prefetch = Map::new();
    for (key, _) in dvt_cds::fhir::prefetch_templates(dvt_cds::cds_hooks::Hook::PatientView) {
        prefetch.insert(
            key.into(),
            json!({"resourceType": "Bundle", "type": "searchset"}),
        );
    }
    prefetch.insert(
        "patient".into(),
        json!({"resourceType": "Patient", "id": patient, "birthDate": "1958-02-11"}),
    );
    // Right calf pain today (the service's clock is the real one).
    prefetch.insert(
        "conditions".into(),
        json!({"resourceType": "Bundle", "type": "searchset", "entry": [{"resource":
            {"resourceType": "Condition", "id": "calf-pain", "subject": {"reference": format!("Patient/{patient}")},
             "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M79.661"}]},
             "onsetDateTime": chrono::Utc::now().date_naive().to_string()}}]}),
    );
    prefetch.insert(
        "medicationRequests".into(),
        json!({"resourceType": "Bundle", "type": "searchset", "entry": [{"resource":
            {"resourceType": "MedicationRequest", "id": "mr1", "status": "active", "intent": "order",
             "subject": {"reference": format!("Patient/{patient}")},
             "medicationReference": {"reference": format!("Medication/{medication}")}}}]}),
    );
    prefetch
}

#[tokio::test]
#[ignore = "needs the Helios FHIR server: run scripts/test"]
async fn a_referenced_medication_is_read_from_the_fhir_server() {
    let hfs = Hfs::start(50).await;
    hfs.load(
        &json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": {"resourceType": "Medication", "id": "apixaban-5",
            "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                 "code": "1364445", "display": "apixaban 5 MG Oral Tablet"}]}},
        "request": {"method": "PUT", "url": "Medication/apixaban-5"}}]}),
    )
    .await;
    let service = Service::start("2s");
    let (status, body) = service
        .call(&hook_call(
            &hfs.base(),
            "p1",
            "d9c5b0a8-0000-4000-8000-000000000104",
            Some(prefetch_naming_a_medication("p1", "apixaban-5")),
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    // Anticoagulated only through the Medication read from the server.
    assert_eq!(
        body["cards"][0]["extension"]["dvt-assessment"]["anticoagulated"], true,
        "{body}"
    );
    let metrics = service.metrics().await;
    assert!(
        metrics.contains("dvt_cds_fhir_medication_reads_total{outcome=\"read\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_hanging_medication_read_still_answers_within_the_deadline() {
    let fake = Fake::start(Behaviour::Hang).await;
    let service = Service::start("800ms");
    let started = Instant::now();
    let (status, body) = service
        .call(&hook_call(
            &fake.base(),
            "p1",
            "d9c5b0a8-0000-4000-8000-000000000105",
            Some(prefetch_naming_a_medication("p1", "m1")),
        ))
        .await;
    let took = started.elapsed();
    // Answered (the reference unresolved), not 412: the read is not the call's data.
    assert_eq!(status, 200, "{body}");
    assert_ne!(
        body["cards"][0]["extension"]["dvt-assessment"]["anticoagulated"], true,
        "{body}"
    );
    assert!(took < Duration::from_millis(1300), "{took:?}");
    assert_eq!(fake.connection_count(), 1);
    let metrics = service.metrics().await;
    assert!(
        metrics.contains("dvt_cds_fhir_medication_reads_total{outcome=\"failed\"} 1"),
        "{metrics}"
    );
}
