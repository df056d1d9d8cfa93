//! `dvt-cds audit`: the population report a hospital reviews before go-live ("how often
//! would this fire on our patients, and why?"). Every patient of a directory of Bundles
//! or Bulk Data NDJSON files goes through the one pipeline the service uses
//! ([`crate::assessment::respond`]); the report counts what the rendered cards say.
//!
//! - [`input`]: the input directory, Bundle files, living adults.
//! - [`ndjson`]: Bulk Data files grouped by patient through an offset index.
//! - [`report`]: the counts and the text / json / csv output.
//! - [`pseudonym`]: the HMAC pseudonym of a patient id (csv; the card log reuses it).
//!
//! I/O: reads the input files, writes the report to the writer it is given and progress
//! to stderr. Patients are assessed in parallel (`--jobs` threads that take the next
//! patient from a shared counter); each holds one patient at a time, so memory is bounded
//! by the largest patients in flight plus the NDJSON index, not by the population.

pub mod input;
pub mod ndjson;
pub mod pseudonym;
pub mod report;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::assessment::{HookInput, respond};
use crate::cds_hooks::Hook;
use crate::mappings::Mappings;
use input::{InputKind, Inventory, PatientResources, Unreadable, file_name};
use ndjson::BulkIndex;
use pseudonym::{IdSecret, SecretOrigin, pseudonym};
use report::{CSV_HEADER, CardDigest, PatientOutcome, Report, RunInfo, Tally, csv_row};

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    /// A summary for people.
    Text,
    /// The summary as one JSON object.
    Json,
    /// One row per patient (pseudonymous id, category, concepts), no summary.
    Csv,
}

/// Arguments of `dvt-cds audit` (the command line is parsed in `cli`).
#[derive(Debug, Clone)]
pub struct AuditArgs {
    /// A directory of Bundles or of NDJSON files.
    pub dir: PathBuf,
    pub hook: Hook,
    pub now: DateTime<Utc>,
    pub format: AuditFormat,
    /// The pseudonym secret; `None`: a random one for this run.
    pub id_secret: Option<String>,
    pub mappings_dir: Option<PathBuf>,
    /// Worker threads (at least 1).
    pub jobs: usize,
    /// Draw a progress line on stderr (the command line sets it when stderr is a
    /// terminal: a log file must not fill with carriage returns).
    pub progress: bool,
}

/// The hooks a population can be audited under: those that need nothing but the
/// patient's record. Order hooks assess drafted orders, which a population has not.
pub fn population_hook(hook: Hook) -> Result<Hook, String> {
    match hook {
        Hook::PatientView | Hook::EncounterStart => Ok(hook),
        Hook::OrderSelect | Hook::OrderSign => Err(format!(
            "--hook {}: audit runs patient-view or encounter-start only; an order hook \
             assesses the orders being drafted, and a population's records hold none",
            hook.as_str()
        )),
    }
}

/// Where the patients come from.
enum Source {
    Bundles(Vec<PathBuf>),
    Ndjson(BulkIndex),
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Source::Bundles(files) => files.len(),
            Source::Ndjson(index) => index.len(),
        }
    }

    /// The `n`th patient, or why it cannot be read (named by file, or by pseudonym for
    /// NDJSON where a patient spans files).
    fn read(&self, n: usize, secret: &IdSecret) -> Result<PatientResources, Unreadable> {
        match self {
            Source::Bundles(files) => {
                let name = file_name(&files[n]);
                input::read_bundle(&files[n]).map_err(|e| Unreadable::new(name, e))
            }
            Source::Ndjson(index) => index
                .read_patient(n)
                .map_err(|e| Unreadable::new("NDJSON", e))
                .and_then(|p| match p.patient() {
                    Some(_) => Ok(p),
                    None => Err(Unreadable::new(
                        format!("patient {}", pseudonym(secret, &p.patient_id)),
                        format!(
                            "{} resources name this patient but no Patient line has its id",
                            p.resources.len()
                        ),
                    )),
                }),
        }
    }
}

/// What the workers share.
struct Context<'a> {
    mappings: &'a Mappings,
    hook: Hook,
    now: DateTime<Utc>,
    secret: &'a IdSecret,
}

/// The call the service would get for this patient: the hook, the patient, no encounter,
/// no drafted orders, and nothing the FHIR layer failed to read (the files are the whole
/// record).
fn hook_input(hook: Hook, patient_id: &str) -> HookInput {
    HookInput {
        hook,
        // Card uuids derive from it; the patient id stays out of them.
        hook_instance: "dvt-cds-audit".to_string(),
        patient_id: patient_id.to_string(),
        encounter_id: None,
        draft_orders: vec![],
        data_quality: vec![],
    }
}

/// Assess one patient through the service's pipeline and digest its card.
fn assess(ctx: &Context, p: &PatientResources) -> Result<PatientOutcome, String> {
    let living_adult = p
        .patient()
        .is_some_and(|patient| input::living_adult(patient, ctx.now));
    let call = hook_input(ctx.hook, &p.patient_id);
    // A panic in the assessment is a bug; the rest of the population is still audited.
    let resources = crate::record::resource::from_values(&p.resources);
    let response = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        respond(ctx.mappings, &call, &resources, ctx.now)
    }))
    .map_err(|_| "the assessment failed (a bug in dvt-cds: please report it)".to_string())?;
    Ok(PatientOutcome {
        pseudonym: pseudonym(ctx.secret, &p.patient_id),
        living_adult,
        card: CardDigest::from_response(&response)?,
    })
}

/// Why `audit` stopped without a report.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The directory, the hook, the mapping set or the secret cannot be used.
    #[error("{0}")]
    Refused(String),
    /// The report could not be written (a closed pipe is the reader's choice).
    #[error("writing the report: {0}")]
    Output(#[from] std::io::Error),
}

impl From<String> for AuditError {
    fn from(e: String) -> AuditError {
        AuditError::Refused(e)
    }
}

/// `dvt-cds audit`: the report on `out`. Unreadable inputs are counted in the report
/// (and, with csv, listed on stderr); only an unusable directory, mapping set or
/// secret, or a failing `out`, is an error.
pub fn audit_command(args: &AuditArgs, out: &mut dyn Write) -> Result<(), AuditError> {
    let hook = population_hook(args.hook)?;
    let mappings = match &args.mappings_dir {
        Some(d) => Mappings::load_dir(d),
        None => Mappings::embedded(),
    }
    .map_err(|e| format!("mappings: {e}"))?;
    let secret = match &args.id_secret {
        Some(s) => IdSecret::from_text(s)?,
        None => IdSecret::random()?,
    };
    let inventory = input::discover(&args.dir)?;
    let mut tally = Tally::default();
    let (source, unlinked_lines) = match inventory.kind {
        InputKind::Bundles => (Source::Bundles(inventory.files.clone()), 0),
        InputKind::Ndjson => {
            let mut index = BulkIndex::build(&inventory.files);
            for u in std::mem::take(&mut index.unreadable) {
                tally.unreadable(u);
            }
            let unlinked = index.unlinked_lines;
            (Source::Ndjson(index), unlinked)
        }
    };
    let ctx = Context {
        mappings: &mappings,
        hook,
        now: args.now,
        secret: &secret,
    };
    let csv = args.format == AuditFormat::Csv;
    if csv {
        writeln!(out, "{CSV_HEADER}")?;
    }
    let mut progress = Progress::new(args.progress, source.len());
    let written = run_workers(&ctx, &source, args.jobs.max(1), |result| {
        progress.tick();
        match result {
            Ok(outcome) => {
                tally.add(&outcome);
                if csv {
                    writeln!(out, "{}", csv_row(&outcome))?;
                }
            }
            Err(u) => {
                if csv {
                    eprintln!("dvt-cds audit: unreadable: {}: {}", u.input, u.reason);
                }
                tally.unreadable(u);
            }
        }
        Ok(())
    });
    progress.finish();
    written?;
    tally.unreadable.sort_by(|a, b| a.input.cmp(&b.input));
    let report = Report::new(
        run_info(args, &inventory, &mappings, &secret, unlinked_lines),
        tally,
    );
    let text = match args.format {
        AuditFormat::Text => report.to_text(),
        AuditFormat::Json => report.to_json() + "\n",
        AuditFormat::Csv => {
            eprintln!(
                "dvt-cds audit: {} patients read, {} cards, {} unreadable inputs",
                report.patients_read, report.cards, report.unreadable.count
            );
            String::new()
        }
    };
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn run_info(
    args: &AuditArgs,
    inventory: &Inventory,
    mappings: &Mappings,
    secret: &IdSecret,
    unlinked_lines: u64,
) -> RunInfo {
    RunInfo {
        input: report::InputInfo {
            kind: inventory.kind,
            files: inventory.files.len(),
            skipped_files: inventory.skipped.len(),
            unlinked_lines,
        },
        hook: args.hook.as_str().to_string(),
        now: args.now.to_rfc3339_opts(SecondsFormat::Secs, true),
        mappings: report::MappingsInfo {
            id: mappings.id.clone(),
            version: mappings.version.clone(),
        },
        pseudonyms: match secret.origin() {
            SecretOrigin::Given => "given-secret",
            SecretOrigin::RandomPerRun => "random-per-run",
        }
        .to_string(),
    }
}

/// Assess every patient of `source` on `jobs` threads; `each` gets each result on the
/// calling thread (in completion order). The channel is bounded, so a slow `each` slows
/// the workers instead of piling results up. An error of `each` stops the run.
fn run_workers(
    ctx: &Context,
    source: &Source,
    jobs: usize,
    mut each: impl FnMut(Result<PatientOutcome, Unreadable>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel(jobs * 2);
        for _ in 0..jobs {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= source.len() {
                        return;
                    }
                    let result = source.read(n, ctx.secret).and_then(|p| {
                        assess(ctx, &p).map_err(|e| {
                            Unreadable::new(
                                format!("patient {}", pseudonym(ctx.secret, &p.patient_id)),
                                e,
                            )
                        })
                    });
                    // The receiver is gone only when the output failed: stop.
                    if tx.send(result).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        for result in rx {
            if let Err(e) = each(result) {
                // Dropping the receiver (leaving the loop) stops the workers.
                next.store(usize::MAX / 2, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    })
}

/// A progress line on stderr, redrawn at most every 200 ms.
struct Progress {
    enabled: bool,
    total: usize,
    done: usize,
    started: Instant,
    drawn: Option<Instant>,
}

impl Progress {
    fn new(enabled: bool, total: usize) -> Progress {
        Progress {
            enabled,
            total,
            done: 0,
            started: Instant::now(),
            drawn: None,
        }
    }

    fn tick(&mut self) {
        self.done += 1;
        if !self.enabled
            || self
                .drawn
                .is_some_and(|t| t.elapsed() < Duration::from_millis(200))
        {
            return;
        }
        self.drawn = Some(Instant::now());
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let width = 30;
        let filled = (self.done * width).checked_div(self.total).unwrap_or(width);
        eprint!(
            "\r[{}{}] {}/{} patients, {:.0}/s ",
            "#".repeat(filled),
            " ".repeat(width - filled.min(width)),
            self.done,
            self.total,
            self.done as f64 / secs
        );
    }

    fn finish(&self) {
        if self.enabled && self.drawn.is_some() {
            eprint!("\r{}\r", " ".repeat(70));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn args(dir: &std::path::Path, format: AuditFormat) -> AuditArgs {
        AuditArgs {
            dir: dir.to_path_buf(),
            hook: Hook::PatientView,
            now: now(),
            format,
            id_secret: Some("test-secret".into()),
            mappings_dir: None,
            jobs: 2,
            progress: false,
        }
    }

    fn patient_bundle(id: &str, birth: &str, calf_pain: bool) -> Value {
        let mut entries = vec![json!({"fullUrl": format!("urn:uuid:{id}"), "resource": {
            "resourceType": "Patient", "id": id, "birthDate": birth,
            "name": [{"family": "Doe", "given": ["Jane"]}]}})];
        if calf_pain {
            entries.push(json!({"resource": {"resourceType": "Condition", "id": format!("{id}-pain"),
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M79.662"}]},
                "subject": {"reference": format!("urn:uuid:{id}")},
                "onsetDateTime": "2026-11-29"}}));
        }
        json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    }

    fn run(a: &AuditArgs) -> String {
        let mut out = Vec::new();
        audit_command(a, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn order_hooks_are_refused_with_a_reason() {
        assert_eq!(population_hook(Hook::PatientView), Ok(Hook::PatientView));
        assert_eq!(
            population_hook(Hook::EncounterStart),
            Ok(Hook::EncounterStart)
        );
        for h in [Hook::OrderSelect, Hook::OrderSign] {
            let e = population_hook(h).unwrap_err();
            assert!(e.contains(h.as_str()) && e.contains("patient-view"), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path(), AuditFormat::Text);
        a.hook = Hook::OrderSign;
        assert!(
            audit_command(&a, &mut Vec::new())
                .unwrap_err()
                .to_string()
                .contains("order-sign")
        );
    }

    #[test]
    fn bundles_are_assessed_and_bad_files_are_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let put =
            |name: &str, v: &Value| std::fs::write(dir.path().join(name), v.to_string()).unwrap();
        put("a.json", &patient_bundle("a", "1970-01-01", true));
        put("b.json", &patient_bundle("b", "1980-01-01", false));
        put("child.json", &patient_bundle("c", "2020-01-01", true));
        put(
            "hospitalInformation1.json",
            &json!({"resourceType": "Bundle"}),
        );
        std::fs::write(dir.path().join("broken.json"), "{\"resourceType\": \"Bun").unwrap();
        let j: Value = serde_json::from_str(&run(&args(dir.path(), AuditFormat::Json))).unwrap();
        assert_eq!(j["patientsRead"], 3);
        assert_eq!(j["livingAdults"], 2);
        assert_eq!(j["cards"], 1);
        assert_eq!(j["findings"]["leg-pain"]["patients"], 1);
        assert_eq!(j["unreadable"]["count"], 1);
        assert_eq!(j["unreadable"]["named"][0]["input"], "broken.json");
        assert_eq!(j["input"]["skippedFiles"], 1);
    }

    #[test]
    fn csv_has_one_row_per_patient_and_no_names_or_ids() {
        let dir = tempfile::tempdir().unwrap();
        for (id, pain) in [("patient-a", true), ("patient-b", false)] {
            std::fs::write(
                dir.path().join(format!("{id}.json")),
                patient_bundle(id, "1970-01-01", pain).to_string(),
            )
            .unwrap();
        }
        let csv = run(&args(dir.path(), AuditFormat::Csv));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert_eq!(lines[0], CSV_HEADER);
        assert!(!csv.contains("Doe") && !csv.contains("Jane") && !csv.contains("patient-"));
        let secret = IdSecret::from_text("test-secret").unwrap();
        let a = lines
            .iter()
            .find(|l| l.starts_with(&pseudonym(&secret, "patient-a")))
            .unwrap();
        assert!(a.contains(",yes,") && a.contains("leg-pain"), "{a}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{},yes,none,", pseudonym(&secret, "patient-b"))))
        );
    }

    #[test]
    fn ndjson_gives_the_same_report_as_bundles() {
        let bundles = tempfile::tempdir().unwrap();
        let bulk = tempfile::tempdir().unwrap();
        let (mut patients, mut conditions) = (Vec::new(), Vec::new());
        for (id, birth, pain) in [
            ("a", "1970-01-01", true),
            ("b", "2015-03-03", true),
            ("c", "1990-01-01", false),
        ] {
            let b = patient_bundle(id, birth, pain);
            std::fs::write(bundles.path().join(format!("{id}.json")), b.to_string()).unwrap();
            for e in b["entry"].as_array().unwrap() {
                let mut r = e["resource"].clone();
                if r.get("subject").is_some() {
                    r["subject"]["reference"] = json!(format!("Patient/{id}"));
                }
                match r["resourceType"].as_str() {
                    Some("Patient") => patients.push(r.to_string()),
                    _ => conditions.push(r.to_string()),
                }
            }
        }
        // Conditions first, in reverse order, and a bad line.
        conditions.reverse();
        conditions.push("not json".into());
        std::fs::write(bulk.path().join("Condition.ndjson"), conditions.join("\n")).unwrap();
        std::fs::write(
            bulk.path().join("Patient.ndjson"),
            patients.join("\n") + "\n",
        )
        .unwrap();
        let report = |dir: &std::path::Path| -> Value {
            let mut j: Value = serde_json::from_str(&run(&args(dir, AuditFormat::Json))).unwrap();
            j.as_object_mut().unwrap().remove("input");
            j.as_object_mut().unwrap().remove("unreadable");
            j
        };
        let from_bundles = report(bundles.path());
        assert_eq!(from_bundles["cards"], 1);
        assert_eq!(from_bundles, report(bulk.path()));
        let j: Value = serde_json::from_str(&run(&args(bulk.path(), AuditFormat::Json))).unwrap();
        assert_eq!(
            j["unreadable"]["named"][0]["input"],
            "Condition.ndjson line 3"
        );
    }

    #[test]
    fn an_unusable_directory_or_secret_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(audit_command(&args(dir.path(), AuditFormat::Text), &mut Vec::new()).is_err());
        let mut a = args(dir.path(), AuditFormat::Text);
        a.id_secret = Some(String::new());
        assert!(
            audit_command(&a, &mut Vec::new())
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
    }
}
