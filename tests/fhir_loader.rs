//! `docker/load_examples.py` (the compose job that loads the example patients) against
//! a real FHIR server (hfs): every prefetch resource ends up on the server, ids kept.

mod fhir_support;

use std::process::Command;

use fhir_support::Hfs;
use fhir_support::synthetic;
use serde_json::{Value, json};

#[tokio::test]
#[ignore = "needs the Helios FHIR server: run scripts/test"]
async fn loader_puts_every_prefetch_resource_on_the_server() {
    let hfs = Hfs::start(50).await;
    let dir = tempfile::tempdir().unwrap();
    let patients = synthetic::patients();
    for p in &patients[..2] {
        let (patient, rest) = p.resources.split_first().unwrap();
        let searchset = |rt: &str| {
            let entries: Vec<Value> = rest
                .iter()
                .filter(|(r, _)| r["resourceType"] == rt)
                .map(|(r, _)| json!({"resource": r, "search": {"mode": "match"}}))
                .collect();
            json!({"resourceType": "Bundle", "type": "searchset", "entry": entries})
        };
        let request = json!({
            "hook": "patient-view", "hookInstance": "x", "context": {"userId": "Practitioner/1", "patientId": p.id},
            "prefetch": {
                "patient": patient.0,
                "conditions": searchset("Condition"),
                "observations": searchset("Observation"),
                "procedures": searchset("Procedure"),
                "medicationRequests": searchset("MedicationRequest"),
                "medicationStatements": searchset("MedicationStatement"),
                "encounters": searchset("Encounter"),
                "serviceRequests": searchset("ServiceRequest"),
                "diagnosticReports": {"resourceType": "OperationOutcome", "issue": []},
                "somethingElse": null
            }
        });
        std::fs::write(
            dir.path().join(format!("{}.request.json", p.id)),
            request.to_string(),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("ignored.json"), "not json").unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docker/load_examples.py");
    let out = Command::new("python3")
        .arg(script)
        .arg("--base")
        .arg(hfs.base().as_str())
        .arg("--wait")
        .arg("30")
        .arg(dir.path())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 2, "{stdout}");

    for p in &patients[..2] {
        for (r, _) in &p.resources {
            if r["resourceType"] == "DiagnosticReport" {
                continue; // that key held an OperationOutcome
            }
            let path = format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            );
            let got = hfs.get(&path).await;
            assert_eq!(got["id"], r["id"], "{path}");
        }
    }
    // The third patient was in no request: not loaded.
    let third = &patients[2].id;
    let bundle = hfs.get(&format!("Condition?patient={third}")).await;
    assert!(bundle["entry"].as_array().is_none_or(|e| e.is_empty()));
}
