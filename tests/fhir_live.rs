//! `fhir::gather` over real HTTP: against the Helios FHIR server (hfs) with synthetic
//! patients, and against fake servers for the faults a real server cannot show (a
//! hang, a 401, a non-FHIR body, a `next` link to another origin).

mod fhir_support;

use std::time::{Duration, Instant};

use dvt_cds::assessment::HookInput;
use dvt_cds::cds_hooks::{FhirAuthorization, Hook, HookContext, HookRequest, Prefetch, Prefetched};
use dvt_cds::fhir::{self, DataUnavailable, FhirSettings, Gathered, HttpFhirSource, ServerBase};
use dvt_cds::mappings::Mappings;
use dvt_cds::pipeline;
use dvt_cds::record::resource::{self, Field, Resource, ResourceType};
use fhir_support::synthetic::{self, type_ids};
use fhir_support::{Behaviour, Fake, Hfs, free_port};
use serde_json::{Map, Value, json};
use url::Url;

const TOKEN: &str = "test-access-token-7f3a";

/// A prefetch as a request's body gives it.
fn typed_prefetch(prefetch: &Map<String, Value>) -> Prefetch {
    prefetch
        .iter()
        .map(|(k, v)| (k.clone(), Prefetched::from_value(v)))
        .collect()
}

fn typed(v: &Value) -> Resource {
    match resource::from_value(v) {
        Field::Value(r) => r,
        _ => panic!("not a resource: {v}"),
    }
}

fn request(hook: Hook, server: Url, patient: &str, prefetch: Map<String, Value>) -> HookRequest {
    HookRequest {
        hook,
        hook_instance: "d9c5b0a8-0000-4000-8000-000000000001".into(),
        fhir_server: Some(server),
        fhir_authorization: Some(FhirAuthorization {
            access_token: TOKEN.into(),
            token_type: "Bearer".into(),
            expires_in: Some(300),
            scope: Some("patient/*.read".into()),
            subject: None,
        }),
        context: HookContext {
            user_id: "Practitioner/example".into(),
            patient_id: patient.into(),
            encounter_id: None,
            draft_orders: vec![],
            selections: vec![],
        },
        prefetch: typed_prefetch(&prefetch),
    }
}

async fn gather(
    settings: &FhirSettings,
    req: &HookRequest,
    budget: Duration,
) -> Result<Gathered, DataUnavailable> {
    let source = HttpFhirSource::new(settings);
    let deadline = tokio::time::Instant::now() + budget;
    // The client may query the server its request names (as an issuer listing it).
    let listed: Vec<ServerBase> = req.fhir_server.iter().map(ServerBase::of).collect();
    let prefetch = req.prefetch.clone();
    fhir::gather(
        &source,
        settings,
        &listed,
        req,
        prefetch,
        deadline,
        synthetic::now(),
    )
    .await
}

/// What an EHR would prefetch: each template rendered for the patient, read from hfs.
async fn prefetch_from(
    hfs: &Hfs,
    hook: Hook,
    patient: &str,
    encounter: Option<&str>,
) -> Map<String, Value> {
    let mut prefetch = Map::new();
    for (key, template) in fhir::prefetch_templates(hook) {
        let mut path = template.replace("{{context.patientId}}", patient);
        if let Some(e) = encounter {
            path = path.replace("{{context.encounterId}}", e);
        }
        prefetch.insert(key.to_owned(), hfs.get(&path).await);
    }
    prefetch
}

fn respond_to(req: &HookRequest, resources: &[Box<Resource>]) -> Value {
    let input = HookInput {
        hook: req.hook,
        hook_instance: req.hook_instance.clone(),
        patient_id: req.context.patient_id.clone(),
        encounter_id: req.context.encounter_id.clone(),
        draft_orders: vec![],
        data_quality: vec![],
    };
    serde_json::to_value(pipeline::respond_to(
        &Mappings::embedded().unwrap(),
        &input,
        resources,
        synthetic::now(),
    ))
    .unwrap()
}

async fn loaded_hfs(page_size: u32) -> (Hfs, Vec<synthetic::Patient>) {
    let hfs = Hfs::start(page_size).await;
    let patients = synthetic::patients();
    for p in &patients {
        hfs.load(&p.transaction()).await;
    }
    (hfs, patients)
}

#[tokio::test]
#[ignore = "needs the Helios FHIR server: run scripts/test"]
async fn live_queries_return_what_prefetch_gives() {
    let (hfs, patients) = loaded_hfs(50).await;
    let settings = FhirSettings::default();
    for p in &patients {
        let live_req = request(Hook::PatientView, hfs.base(), &p.id, Map::new());
        let live = gather(&settings, &live_req, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(
            live.fetched_keys.len(),
            9,
            "{}: {:?}",
            p.id,
            live.fetched_keys
        );
        assert!(live.notes.is_empty(), "{}: {:?}", p.id, live.notes);
        assert_eq!(type_ids(&live.resources), p.expected(), "{}: live", p.id);
        assert_eq!(
            live.resources.len(),
            p.expected().len(),
            "{}: duplicates",
            p.id
        );

        let pre_req = request(
            Hook::PatientView,
            hfs.base(),
            &p.id,
            prefetch_from(&hfs, Hook::PatientView, &p.id, None).await,
        );
        let pre = gather(&settings, &pre_req, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(
            pre.fetched_keys.is_empty(),
            "{}: {:?}",
            p.id,
            pre.fetched_keys
        );
        assert!(pre.notes.is_empty(), "{}: {:?}", p.id, pre.notes);
        assert_eq!(type_ids(&pre.resources), p.expected(), "{}: prefetch", p.id);

        assert_eq!(
            respond_to(&live_req, &live.resources),
            respond_to(&pre_req, &pre.resources),
            "{}",
            p.id
        );
    }
}

#[tokio::test]
#[ignore = "needs the Helios FHIR server: run scripts/test"]
async fn encounter_start_reads_the_hook_encounter() {
    let (hfs, patients) = loaded_hfs(50).await;
    let p = &patients[1];
    let encounter = p
        .resources
        .iter()
        .find(|(r, _)| r["resourceType"] == "Encounter")
        .map(|(r, _)| r["id"].as_str().unwrap().to_owned())
        .unwrap();
    let mut req = request(Hook::EncounterStart, hfs.base(), &p.id, Map::new());
    req.context.encounter_id = Some(encounter.clone());
    let live = gather(&FhirSettings::default(), &req, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(live.fetched_keys.contains(&"encounter"));
    assert_eq!(type_ids(&live.resources), p.expected());

    let prefetch = prefetch_from(&hfs, Hook::EncounterStart, &p.id, Some(&encounter)).await;
    assert_eq!(prefetch["encounter"]["id"], json!(encounter));
    req.prefetch = typed_prefetch(&prefetch);
    let pre = gather(&FhirSettings::default(), &req, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(pre.fetched_keys.is_empty());
    assert_eq!(type_ids(&pre.resources), p.expected());
}

#[tokio::test]
#[ignore = "needs the Helios FHIR server: run scripts/test"]
async fn paging_reads_every_page_and_honours_the_cap() {
    let (hfs, patients) = loaded_hfs(2).await;
    let p = &patients[0];
    let observations = p.expected_of("Observation");
    assert!(
        observations.len() > 4,
        "the test needs at least 3 pages of 2"
    );
    let only = |g: &Gathered, t: &str| {
        type_ids(&g.resources)
            .into_iter()
            .filter(|(rt, _)| rt == t)
            .collect::<std::collections::BTreeSet<_>>()
    };

    // Every page is read.
    let settings = FhirSettings {
        page_size: Some(2),
        ..FhirSettings::default()
    };
    let req = request(Hook::PatientView, hfs.base(), &p.id, Map::new());
    let all = gather(&settings, &req, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(type_ids(&all.resources), p.expected());
    assert!(all.notes.is_empty(), "{:?}", all.notes);

    // The cap: two pages of two, and a note saying the rest was not read.
    let capped = FhirSettings {
        max_pages: 2,
        ..settings.clone()
    };
    let some = gather(&capped, &req, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(only(&some, "Observation").len(), 4);
    assert!(only(&some, "Observation").is_subset(&observations));
    assert!(
        some.notes
            .iter()
            .any(|n| n.starts_with("observations (Observation search): more than 2 page")),
        "{:?}",
        some.notes
    );

    // A prefetch Bundle with a next link: the rest is read with the token.
    let first_page = hfs
        .get(&format!("Observation?patient={}&_count=2", p.id))
        .await;
    assert!(
        fhir::bundle::next_link(&typed(&first_page)).is_some(),
        "hfs did not page"
    );
    let mut prefetch = Map::new();
    prefetch.insert("observations".into(), first_page);
    let req = request(Hook::PatientView, hfs.base(), &p.id, prefetch);
    let followed = gather(&settings, &req, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(only(&followed, "Observation"), observations);
    assert!(followed.fetched_keys.contains(&"observations"));
}

#[tokio::test]
#[ignore = "needs the Helios FHIR server: run scripts/test"]
async fn stopped_server_is_data_unavailable_quickly() {
    let (mut hfs, patients) = loaded_hfs(50).await;
    let req = request(Hook::PatientView, hfs.base(), &patients[0].id, Map::new());
    hfs.stop();
    let started = Instant::now();
    let err = gather(&FhirSettings::default(), &req, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.reason, fhir::UNREACHABLE);
    assert_eq!(err.detail.as_deref(), Some("connection refused"));
    assert!(!err.to_string().contains(&patients[0].id), "{err}");
}

#[tokio::test]
async fn refused_connection_is_data_unavailable_quickly() {
    let base = Url::parse(&format!("http://127.0.0.1:{}/fhir/", free_port())).unwrap();
    let req = request(Hook::PatientView, base, "p1", Map::new());
    let started = Instant::now();
    let err = gather(&FhirSettings::default(), &req, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The caller learns only that the server could not be reached; the log, why.
    assert_eq!(err.reason, fhir::UNREACHABLE);
    assert_eq!(err.detail.as_deref(), Some("connection refused"));
    assert!(
        err.query.contains(" search)") || err.query.contains(" read)"),
        "{err}"
    );
}

#[tokio::test]
async fn hanging_server_is_data_unavailable_within_the_deadline() {
    let fake = Fake::start(Behaviour::Hang).await;
    let req = request(Hook::PatientView, fake.base(), "p1", Map::new());
    // The call's deadline is shorter than the per-query timeout.
    let settings = FhirSettings {
        query_timeout: Duration::from_secs(10),
        ..FhirSettings::default()
    };
    let started = Instant::now();
    let err = gather(&settings, &req, Duration::from_millis(600))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_millis(900),
        "{took:?}"
    );
    assert!(
        err.reason.contains("600 ms") || err.reason.contains("deadline"),
        "{err}"
    );
    // All nine queries went out at once (concurrency), none answered.
    assert_eq!(fake.connection_count(), 9);

    // The per-query timeout shorter than the deadline.
    let settings = FhirSettings {
        query_timeout: Duration::from_millis(300),
        ..FhirSettings::default()
    };
    let started = Instant::now();
    let err = gather(&settings, &req, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.reason, fhir::UNREACHABLE);
    assert_eq!(err.detail.as_deref(), Some("no answer within 300 ms"));
}

#[tokio::test]
async fn refused_token_is_data_unavailable_naming_the_query() {
    let body = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "security"}]});
    let fake = Fake::start(Behaviour::Answer(
        401,
        "application/fhir+json",
        body.to_string(),
    ))
    .await;
    let mut prefetch = Map::new();
    // Only `procedures` is missing: the error must name it.
    for (key, _) in fhir::prefetch_templates(Hook::PatientView) {
        if key != "procedures" {
            prefetch.insert(
                key.into(),
                json!({"resourceType": "Bundle", "type": "searchset"}),
            );
        }
    }
    prefetch.insert(
        "patient".into(),
        json!({"resourceType": "Patient", "id": "p1"}),
    );
    let req = request(Hook::PatientView, fake.base(), "p1", prefetch);
    let err = gather(&FhirSettings::default(), &req, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.query, "procedures (Procedure search)");
    assert!(
        err.reason.starts_with("HTTP 401 from the FHIR server"),
        "{err}"
    );
    assert!(!err.to_string().contains(TOKEN));
    // The token went to fhirServer, with the Accept R4 servers take.
    let requests = fake.requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    let lower = requests[0].to_lowercase();
    assert!(
        lower.starts_with("get /fhir/procedure?patient=p1&_count=200&date=ge"),
        "{lower}"
    );
    assert!(lower.contains(&format!("authorization: bearer {}", TOKEN.to_lowercase())));
    assert!(
        lower.contains("accept: application/fhir+json\r\n"),
        "{lower}"
    );
}

#[tokio::test]
async fn server_error_and_non_fhir_bodies_are_data_unavailable() {
    let cases = [
        (
            Behaviour::Answer(503, "text/plain", "down for maintenance".into()),
            "HTTP 503 from the FHIR server",
        ),
        (
            Behaviour::Answer(500, "application/fhir+json", "{}".into()),
            "HTTP 500 from the FHIR server",
        ),
        (
            Behaviour::Answer(200, "text/html", "<html><body>Login</body></html>".into()),
            "the response is not a FHIR resource in JSON",
        ),
        (
            Behaviour::Answer(200, "application/json", "{\"ok\": true}".into()),
            "the response is not a FHIR resource in JSON",
        ),
    ];
    for (behaviour, expected) in cases {
        let fake = Fake::start(behaviour).await;
        let req = request(Hook::PatientView, fake.base(), "p1", Map::new());
        let err = gather(&FhirSettings::default(), &req, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.reason, expected);
    }
}

#[tokio::test]
async fn next_link_to_another_origin_is_not_followed() {
    let elsewhere = Fake::start(Behaviour::Answer(200, "application/fhir+json", "{}".into())).await;
    let next = format!("http://{}/fhir/Condition?page=2", elsewhere.addr);
    let page = json!({"resourceType": "Bundle", "type": "searchset",
        "link": [{"relation": "next", "url": next}],
        "entry": [{"resource": {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}}}]});
    let fhir_server = Fake::start(Behaviour::Answer(
        200,
        "application/fhir+json",
        page.to_string(),
    ))
    .await;

    // Live search whose next link points elsewhere.
    let mut prefetch = Map::new();
    for (key, _) in fhir::prefetch_templates(Hook::PatientView) {
        if key != "conditions" {
            prefetch.insert(key.into(), Value::Null);
        }
    }
    let req = request(
        Hook::PatientView,
        fhir_server.base(),
        "p1",
        prefetch.clone(),
    );
    let got = gather(&FhirSettings::default(), &req, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(type_ids(&got.resources).len(), 1);
    assert_eq!(
        got.notes,
        [
            "conditions (Condition search): a next link outside fhirServer (another origin or path) was not followed"
        ]
    );

    // A prefetch Bundle whose next link points elsewhere.
    prefetch.insert("conditions".into(), page.clone());
    let req = request(Hook::PatientView, fhir_server.base(), "p1", prefetch);
    let got = gather(&FhirSettings::default(), &req, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(got.notes.len(), 1);

    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        elsewhere.connection_count(),
        0,
        "the token must not leave fhirServer"
    );
    assert_eq!(fhir_server.connection_count(), 1);
}

/// A patient whose anticoagulant is a MedicationRequest (and a MedicationStatement)
/// naming a Medication on the server (`dvt-model.md` §1 "Medications").
fn on_apixaban_by_reference() -> Value {
    let entry = |r: Value| {
        let url = format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap()
        );
        json!({"resource": r, "request": {"method": "PUT", "url": url}})
    };
    let subject = json!({"reference": "Patient/med-p1"});
    json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        entry(json!({"resourceType": "Patient", "id": "med-p1", "gender": "female", "birthDate": "1958-02-11"})),
        entry(json!({"resourceType": "Condition", "id": "med-p1-calf-pain", "subject": subject,
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M79.661"}]},
            "onsetDateTime": synthetic::now().date_naive().to_string()})),
        entry(json!({"resourceType": "Medication", "id": "apixaban-5",
            "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1364445",
                                 "display": "apixaban 5 MG Oral Tablet"}]}})),
        entry(json!({"resourceType": "MedicationRequest", "id": "med-p1-mr", "status": "active",
            "intent": "order", "subject": subject, "authoredOn": "2026-05-01",
            "medicationReference": {"reference": "Medication/apixaban-5"}})),
        entry(json!({"resourceType": "MedicationStatement", "id": "med-p1-ms", "status": "active",
            "subject": subject, "effectiveDateTime": "2026-05-01",
            "medicationReference": {"reference": "Medication/apixaban-5"}})),
    ]})
}

fn medication_ids(resources: &[Box<Resource>]) -> Vec<&str> {
    resources
        .iter()
        .filter(|r| r.resource_type() == Some(&ResourceType::Medication))
        .filter_map(|r| r.id())
        .collect()
}

#[tokio::test]
#[ignore = "needs the Helios FHIR server: run scripts/test"]
async fn referenced_medications_are_included_or_read_live() {
    let hfs = Hfs::start(50).await;
    hfs.load(&on_apixaban_by_reference()).await;
    let settings = FhirSettings::default();

    // Live searches: the Medication comes with them (`_include`), no read needed.
    let live_req = request(Hook::PatientView, hfs.base(), "med-p1", Map::new());
    let live = gather(&settings, &live_req, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(medication_ids(&live.resources), ["apixaban-5"]);
    assert_eq!(live.medication_reads, fhir::MedicationReads::default());

    // The templates' prefetch holds it too (search.mode include).
    let prefetch = prefetch_from(&hfs, Hook::PatientView, "med-p1", None).await;
    let included = &prefetch["medicationRequests"]["entry"];
    assert!(
        included
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["search"]["mode"] == "include" && e["resource"]["id"] == "apixaban-5"),
        "{included}"
    );

    // An EHR that prefetches without the `_include`: the Medication is read live.
    let mut prefetch = prefetch;
    prefetch.insert(
        "medicationRequests".into(),
        hfs.get("MedicationRequest?patient=med-p1&_count=200").await,
    );
    prefetch.insert(
        "medicationStatements".into(),
        hfs.get("MedicationStatement?patient=med-p1&_count=200")
            .await,
    );
    let pre_req = request(Hook::PatientView, hfs.base(), "med-p1", prefetch);
    let pre = gather(&settings, &pre_req, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(pre.fetched_keys.is_empty(), "{:?}", pre.fetched_keys);
    assert_eq!(medication_ids(&pre.resources), ["apixaban-5"]);
    assert_eq!(
        pre.medication_reads,
        fhir::MedicationReads {
            read: 1,
            failed: 0,
            skipped: 0
        }
    );
    // Either way the assessment sees the same record: calf pain in a patient on
    // apixaban, who is anticoagulated (§2) only through the referenced Medication.
    let card = respond_to(&pre_req, &pre.resources);
    assert_eq!(respond_to(&live_req, &live.resources), card);
    assert_eq!(
        card["cards"][0]["extension"]["dvt-assessment"]["anticoagulated"], true,
        "{card}"
    );
    let unread: Vec<Box<Resource>> = pre
        .resources
        .iter()
        .filter(|r| r.resource_type() != Some(&ResourceType::Medication))
        .cloned()
        .collect();
    assert_ne!(
        respond_to(&pre_req, &unread),
        card,
        "the Medication must matter"
    );
}

/// A full prefetch whose one MedicationRequest names `Medication/m1`, not included.
fn prefetch_with_unresolved_reference() -> Map<String, Value> {
    let mut prefetch = Map::new();
    for (key, _) in fhir::prefetch_templates(Hook::PatientView) {
        prefetch.insert(
            key.into(),
            json!({"resourceType": "Bundle", "type": "searchset"}),
        );
    }
    prefetch.insert(
        "patient".into(),
        json!({"resourceType": "Patient", "id": "p1"}),
    );
    prefetch.insert(
        "medicationRequests".into(),
        json!({"resourceType": "Bundle", "type": "searchset", "entry": [{"resource":
            {"resourceType": "MedicationRequest", "id": "mr1", "status": "active", "intent": "order",
             "subject": {"reference": "Patient/p1"},
             "medicationReference": {"reference": "Medication/m1"}}}]}),
    );
    prefetch
}

#[tokio::test]
async fn a_failing_or_hanging_medication_read_leaves_the_reference_unresolved() {
    let unresolved = fhir::MedicationReads {
        read: 0,
        failed: 1,
        skipped: 0,
    };
    let fake = Fake::start(Behaviour::Answer(
        500,
        "application/fhir+json",
        json!({"resourceType": "OperationOutcome"}).to_string(),
    ))
    .await;
    let req = request(
        Hook::PatientView,
        fake.base(),
        "p1",
        prefetch_with_unresolved_reference(),
    );
    let got = gather(&FhirSettings::default(), &req, Duration::from_secs(5))
        .await
        .expect("a failed Medication read is not an error of the call");
    assert_eq!(got.medication_reads, unresolved);
    assert!(medication_ids(&got.resources).is_empty());
    let requests = fake.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].starts_with("GET /fhir/Medication/m1 "),
        "{}",
        requests[0]
    );

    // A server that never answers: the gathering ends by its deadline (600 ms after
    // the HTTP client is built), with an answer.
    let fake = Fake::start(Behaviour::Hang).await;
    let req = request(
        Hook::PatientView,
        fake.base(),
        "p1",
        prefetch_with_unresolved_reference(),
    );
    let settings = FhirSettings {
        query_timeout: Duration::from_secs(10),
        ..FhirSettings::default()
    };
    let started = Instant::now();
    let got = gather(&settings, &req, Duration::from_millis(600))
        .await
        .expect("a hanging Medication read is not an error of the call");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(got.medication_reads, unresolved);
}
