//! Lenient reading of a patient's FHIR R4 resources (`serde_json::Value`) into the facts
//! the model needs (`dvt-model.md` §1): codes, clinically relevant dates, statuses, sides.
//! Pure. Nothing here fails: a malformed entry is skipped and counted, a resource whose
//! status says it is not true is ignored, a future date is ignored and counted.
//!
//! Resources are not parsed through fhir-sdk types: they are strict where real data is
//! sloppy and silently drop malformed choice elements (`fhir-notes.md`).

pub mod quality;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use crate::mappings::{CodeSets, Mappings, Side};

/// A clinically relevant date (§1). Dates without a time compare by calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct When {
    pub t: DateTime<Utc>,
    pub date_only: bool,
}

impl When {
    pub fn date(&self) -> NaiveDate {
        self.t.date_naive()
    }

    pub fn is_future(&self, now: DateTime<Utc>) -> bool {
        if self.date_only {
            self.date() > now.date_naive()
        } else {
            self.t > now
        }
    }

    /// §1: within N x 24 h before now (a date without time: within N calendar days).
    pub fn within_days(&self, now: DateTime<Utc>, days: u32) -> bool {
        if self.is_future(now) {
            return false;
        }
        if self.date_only {
            (now.date_naive() - self.date()).num_days() <= i64::from(days)
        } else {
            now - self.t <= chrono::Duration::days(i64::from(days))
        }
    }
}

/// The common instant form `YYYY-MM-DDThh:mm:ssZ`, hand-parsed (chrono's RFC 3339
/// parser was a large share of reading a record). Anything else: `None`, and the caller
/// falls back to chrono, so the accepted forms are unchanged.
fn parse_utc_seconds(s: &str) -> Option<When> {
    let b = s.as_bytes();
    if b.len() != 20 || b[19] != b'Z' {
        return None;
    }
    for (i, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        if b[i] != sep {
            return None;
        }
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let d = NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    // Leap seconds (ss = 60) go to chrono.
    let t = d.and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
    Some(When {
        t: Utc.from_utc_datetime(&t),
        date_only: false,
    })
}

/// Parse a FHIR date / dateTime / instant. Partial dates (`2026`, `2026-11`) take the
/// first day; a time without a zone is read as UTC. `None` if unreadable.
pub fn parse_when(s: &str) -> Option<When> {
    let s = crate::mappings::trim(s);
    if s.len() >= 11 && s.as_bytes().get(10) == Some(&b'T') {
        if let Some(w) = parse_utc_seconds(s) {
            return Some(w);
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(When {
                t: dt.with_timezone(&Utc),
                date_only: false,
            });
        }
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
        ] {
            if let Ok(ndt) = NaiveDateTime::parse_from_str(s, fmt) {
                return Some(When {
                    t: Utc.from_utc_datetime(&ndt),
                    date_only: false,
                });
            }
        }
        return None;
    }
    // Hand-parsed: chrono's format parser dominates the cost of reading a record.
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let d = match b.len() {
        4 => NaiveDate::from_ymd_opt(year, 1, 1)?,
        7 if b[4] == b'-' => NaiveDate::from_ymd_opt(year, num(5..7)?, 1)?,
        10 if b[4] == b'-' && b[7] == b'-' => {
            NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?)?
        }
        _ => return None,
    };
    Some(When {
        t: Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?),
        date_only: true,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Condition,
    Observation,
    Procedure,
    MedicationRequest,
    MedicationStatement,
    Encounter,
    ServiceRequest,
    DiagnosticReport,
    ImagingStudy,
}

impl Kind {
    fn from_type(t: &str) -> Option<Kind> {
        Some(match t {
            "Condition" => Kind::Condition,
            "Observation" => Kind::Observation,
            "Procedure" => Kind::Procedure,
            "MedicationRequest" => Kind::MedicationRequest,
            "MedicationStatement" => Kind::MedicationStatement,
            "Encounter" => Kind::Encounter,
            "ServiceRequest" => Kind::ServiceRequest,
            "DiagnosticReport" => Kind::DiagnosticReport,
            "ImagingStudy" => Kind::ImagingStudy,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Condition => "Condition",
            Kind::Observation => "Observation",
            Kind::Procedure => "Procedure",
            Kind::MedicationRequest => "MedicationRequest",
            Kind::MedicationStatement => "MedicationStatement",
            Kind::Encounter => "Encounter",
            Kind::ServiceRequest => "ServiceRequest",
            Kind::DiagnosticReport => "DiagnosticReport",
            Kind::ImagingStudy => "ImagingStudy",
        }
    }
}

/// One usable resource, reduced to what the model reads.
#[derive(Debug, Clone)]
pub struct Fact<'a> {
    pub kind: Kind,
    pub id: &'a str,
    /// Code sets of the resource's code element (Encounter: none; see `reason_codes`).
    pub codes: CodeSets,
    /// Code sets of Observation components.
    pub component_codes: CodeSets,
    /// Encounter.reasonCode code sets.
    pub reason_codes: CodeSets,
    pub side: Option<Side>,
    /// Clinically relevant date (§1); `None` if absent, unreadable or in the future.
    pub date: Option<When>,
    /// Encounter.period.end.
    pub end: Option<When>,
    /// Condition: clinically active (§1). Procedure: completed / in-progress. Medication:
    /// active. ServiceRequest: active / completed. Others: true.
    pub active: bool,
    /// Symptom Observation whose value says the symptom is absent (§1).
    pub absent: bool,
    /// Procedure.category is a surgery category (§2 recent-surgery).
    pub surgical_category: bool,
    /// Encounter.class is inpatient (§2 bedridden).
    pub inpatient: bool,
    pub resource: &'a Value,
}

impl Fact<'_> {
    /// `Condition/7` (the card's evidence).
    pub fn reference(&self) -> String {
        reference(self.kind, self.id)
    }
}

/// `Condition/7`, or `Condition (no id)`.
pub fn reference(kind: Kind, id: &str) -> String {
    if id.is_empty() {
        format!("{} (no id)", kind.as_str())
    } else {
        format!("{}/{}", kind.as_str(), id)
    }
}

/// Orders as the [`reference`] strings would, without building them.
pub fn cmp_references(a: (Kind, &str), b: (Kind, &str)) -> std::cmp::Ordering {
    fn bytes(kind: Kind, id: &str) -> impl Iterator<Item = u8> + '_ {
        let sep: &'static [u8] = if id.is_empty() { b" (no id)" } else { b"/" };
        kind.as_str()
            .bytes()
            .chain(sep.iter().copied())
            .chain(id.bytes())
    }
    bytes(a.0, a.1).cmp(bytes(b.0, b.1))
}

/// What the reader could not use, for the card's data-quality notes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataNotes {
    pub malformed: usize,
    pub future_dates: usize,
    pub unreadable_dates: usize,
    pub other_patient: usize,
    pub birth_date_unreadable: bool,
    pub no_patient: bool,
}

/// A patient's record, read leniently.
#[derive(Debug, Clone, Default)]
pub struct Record<'a> {
    pub birth_date: Option<NaiveDate>,
    pub facts: Vec<Fact<'a>>,
    pub notes: DataNotes,
}

/// The top-level elements the model reads (`dvt-model.md` §1), one slot each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum El {
    ResourceType,
    Id,
    Status,
    Code,
    Subject,
    Patient,
    ClinicalStatus,
    VerificationStatus,
    Component,
    ReasonCode,
    Class,
    BodySite,
    Category,
    ValueBoolean,
    ValueCodeableConcept,
    MedicationCodeableConcept,
    MedicationReference,
    Contained,
    ProcedureCode,
    Period,
    OnsetDateTime,
    OnsetPeriod,
    RecordedDate,
    EffectiveDateTime,
    EffectivePeriod,
    EffectiveInstant,
    Issued,
    PerformedDateTime,
    PerformedPeriod,
    AuthoredOn,
    DateAsserted,
    Started,
    BirthDate,
    Entry,
}

const ELEMENTS: usize = El::Entry as usize + 1;

impl El {
    /// Grouped by length: a string match tests its arms one by one, and most keys of
    /// a resource are not read at all (measured: the sequential match was most of the
    /// reading pass).
    fn of(key: &str) -> Option<El> {
        Some(match key.len() {
            2 if key == "id" => El::Id,
            4 if key == "code" => El::Code,
            5 => match key {
                "class" => El::Class,
                "entry" => El::Entry,
                _ => return None,
            },
            6 => match key {
                "status" => El::Status,
                "period" => El::Period,
                "issued" => El::Issued,
                _ => return None,
            },
            7 => match key {
                "subject" => El::Subject,
                "patient" => El::Patient,
                "started" => El::Started,
                _ => return None,
            },
            8 => match key {
                "bodySite" => El::BodySite,
                "category" => El::Category,
                _ => return None,
            },
            9 => match key {
                "component" => El::Component,
                "contained" => El::Contained,
                "birthDate" => El::BirthDate,
                _ => return None,
            },
            10 => match key {
                "reasonCode" => El::ReasonCode,
                "authoredOn" => El::AuthoredOn,
                _ => return None,
            },
            11 if key == "onsetPeriod" => El::OnsetPeriod,
            12 => match key {
                "resourceType" => El::ResourceType,
                "valueBoolean" => El::ValueBoolean,
                "recordedDate" => El::RecordedDate,
                "dateAsserted" => El::DateAsserted,
                _ => return None,
            },
            13 => match key {
                "procedureCode" => El::ProcedureCode,
                "onsetDateTime" => El::OnsetDateTime,
                _ => return None,
            },
            14 if key == "clinicalStatus" => El::ClinicalStatus,
            15 => match key {
                "effectivePeriod" => El::EffectivePeriod,
                "performedPeriod" => El::PerformedPeriod,
                _ => return None,
            },
            16 if key == "effectiveInstant" => El::EffectiveInstant,
            17 => match key {
                "effectiveDateTime" => El::EffectiveDateTime,
                "performedDateTime" => El::PerformedDateTime,
                _ => return None,
            },
            18 if key == "verificationStatus" => El::VerificationStatus,
            19 if key == "medicationReference" => El::MedicationReference,
            20 if key == "valueCodeableConcept" => El::ValueCodeableConcept,
            25 if key == "medicationCodeableConcept" => El::MedicationCodeableConcept,
            _ => return None,
        })
    }
}

/// A resource's elements, found in ONE pass over its JSON object: every later read is an
/// array index, not a search of serde_json's BTreeMap (measured: the searches, three
/// `resourceType` lookups and a second pass for the well-formedness check were most of
/// the reading time).
#[derive(Clone, Copy)]
struct Elements<'a> {
    slots: [Option<&'a Value>; ELEMENTS],
    /// The elements we read have the JSON type FHIR gives them.
    well_formed: bool,
}

impl<'a> Elements<'a> {
    fn of(r: &'a Value) -> Elements<'a> {
        let mut e = Elements {
            slots: [None; ELEMENTS],
            well_formed: false,
        };
        let Some(o) = r.as_object() else { return e };
        e.well_formed = true;
        for (k, v) in o {
            let Some(el) = El::of(k) else { continue };
            e.slots[el as usize] = Some(v);
            e.well_formed &= match el {
                El::Code => v
                    .as_object()
                    .is_some_and(|c| c.get("coding").is_none_or(Value::is_array)),
                El::Subject | El::ClinicalStatus | El::VerificationStatus => v.is_object(),
                El::Status | El::Id => v.is_string(),
                El::Component | El::ReasonCode => v.is_array(),
                _ => true,
            };
        }
        e
    }
    fn get(&self, el: El) -> Option<&'a Value> {
        self.slots[el as usize]
    }
    fn str(&self, el: El) -> Option<&'a str> {
        self.get(el).and_then(Value::as_str)
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A Coding's (system, code), read in one pass over its entries.
fn system_code(c: &Value) -> (Option<&str>, Option<&str>) {
    let (mut system, mut code) = (None, None);
    if let Some(o) = c.as_object() {
        for (k, v) in o {
            match k.as_str() {
                "system" => system = v.as_str(),
                "code" => code = v.as_str(),
                _ => {}
            }
        }
    }
    (system, code)
}

/// The codes of a CodeableConcept: code sets and side.
pub fn concept_codes(m: &Mappings, cc: Option<&Value>) -> (CodeSets, Option<Side>) {
    fold_codings(cc, |sys, code| classify_coding(m, sys, code))
}

/// One coding's code sets, and the side its code names; laterality only matters for
/// codes the model uses.
fn classify_coding(m: &Mappings, sys: &str, code: &str) -> Classified {
    let these = m.classify(sys, code);
    let side = if these.is_empty() {
        None
    } else {
        m.icd_side(sys, code)
    };
    (these, side)
}

/// The union of `classify(system, code)` over a CodeableConcept's codings, and the first
/// side any of them names.
fn fold_codings<'a>(
    cc: Option<&'a Value>,
    mut classify: impl FnMut(&'a str, &'a str) -> Classified,
) -> (CodeSets, Option<Side>) {
    let mut sets = CodeSets::default();
    let mut side = None;
    if let Some(codings) = cc.and_then(|c| c.get("coding")).and_then(Value::as_array) {
        for c in codings {
            let (Some(sys), Some(code)) = system_code(c) else {
                continue;
            };
            let (these, this_side) = classify(sys, code);
            sets = sets.union(these);
            side = side.or(this_side);
        }
    }
    (sets, side)
}

/// A coding's code sets, and the side its code names when the model uses it.
type Classified = (CodeSets, Option<Side>);

/// Classifies each distinct (system, code) of a record once: records repeat a few codes
/// (vital-sign panels, repeat prescriptions), and a classification is several hash
/// lookups (measured: the largest share of reading after the element pass).
///
/// The memo's keys come from the request, so it uses std's randomly keyed SipHash, not
/// the mappings' FxHash: FxHash collisions are easy to compute, and a record of many
/// colliding codes would make each insert scan all the others (quadratic time).
struct Coder<'m, 'a> {
    m: &'m Mappings,
    memo: HashMap<(&'a str, &'a str), Classified>,
}

impl<'m, 'a> Coder<'m, 'a> {
    fn new(m: &'m Mappings) -> Self {
        Coder {
            m,
            memo: HashMap::with_capacity(64),
        }
    }

    /// [`concept_codes`], memoised.
    fn codes(&mut self, cc: Option<&'a Value>) -> (CodeSets, Option<Side>) {
        let m = self.m;
        fold_codings(cc, |sys, code| {
            *self
                .memo
                .entry((sys, code))
                .or_insert_with(|| classify_coding(m, sys, code))
        })
    }
}

/// Does any coding of this CodeableConcept have one of these codes (system + code)?
pub fn has_coding(cc: Option<&Value>, list: &[crate::mappings::SimpleCoding]) -> bool {
    cc.and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .is_some_and(|codings| {
            codings
                .iter()
                .any(|c| match (str_at(c, "system"), str_at(c, "code")) {
                    (Some(s), Some(k)) => list.iter().any(|l| l.matches(s, k)),
                    _ => false,
                })
        })
}

fn status_code(cc: Option<&Value>) -> Option<&str> {
    cc.and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find_map(|c| str_at(c, "code")))
        .map(crate::mappings::trim)
}

fn body_site_side(m: &Mappings, t: &Elements<'_>) -> Option<Side> {
    let sites = t.get(El::BodySite)?;
    let list: Vec<&Value> = match sites {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    for site in list {
        if let Some(codings) = site.get("coding").and_then(Value::as_array) {
            for c in codings {
                if let (Some(s), Some(k)) = (str_at(c, "system"), str_at(c, "code"))
                    && let Some(side) = m.body_site_side(s, k).or_else(|| m.icd_side(s, k))
                {
                    return Some(side);
                }
            }
        }
    }
    None
}

/// Reads the first readable candidate date (§1 order); also says whether a present
/// candidate could not be read. A candidate is an element, or a key inside it.
fn first_date(t: &Elements<'_>, paths: &[(El, Option<&str>)]) -> (Option<When>, bool) {
    let mut unreadable = false;
    for &(el, key) in paths {
        let mut v = t.get(el);
        if let Some(key) = key {
            v = v.and_then(|x| x.get(key));
        }
        if let Some(v) = v {
            match v.as_str().and_then(parse_when) {
                Some(w) => return (Some(w), unreadable),
                None => unreadable = true,
            }
        }
    }
    (None, unreadable)
}

/// The patient id a `subject` / `patient` reference names, if it names one.
fn referenced_patient<'a>(t: &Elements<'a>) -> Option<&'a str> {
    const PATIENT: &[u8] = b"Patient/";
    let reference = [El::Subject, El::Patient]
        .iter()
        .find_map(|&k| t.get(k).and_then(|s| str_at(s, "reference")))?;
    // A byte search: `str::rfind` builds a two-way searcher per call (measured).
    let idx = reference
        .as_bytes()
        .windows(PATIENT.len())
        .rposition(|w| w == PATIENT)?;
    let rest = &reference[idx + PATIENT.len()..];
    Some(rest.split('/').next().unwrap_or(rest))
}

/// Flatten resources: Bundles (any type, nested once) give their entries' resources.
pub fn flatten<'a>(resources: &'a [Value], out: &mut Vec<&'a Value>, malformed: &mut usize) {
    for r in resources {
        if str_at(r, "resourceType") == Some("Bundle") {
            if let Some(entries) = r.get("entry").and_then(Value::as_array) {
                for e in entries {
                    match e.get("resource") {
                        Some(res) if str_at(res, "resourceType") == Some("Bundle") => {
                            flatten(std::slice::from_ref(res), out, malformed)
                        }
                        Some(res) => out.push(res),
                        None => *malformed += 1,
                    }
                }
            }
        } else {
            out.push(r);
        }
    }
}

/// Like [`flatten`], reading each resource's elements in the same pass.
fn collect<'a>(r: &'a Value, out: &mut Vec<(&'a Value, Elements<'a>)>, malformed: &mut usize) {
    let e = Elements::of(r);
    if e.str(El::ResourceType) != Some("Bundle") {
        out.push((r, e));
        return;
    }
    if let Some(entries) = e.get(El::Entry).and_then(Value::as_array) {
        for entry in entries {
            match entry.get("resource") {
                Some(res) => collect(res, out, malformed),
                None => *malformed += 1,
            }
        }
    }
}

/// Read a patient's resources (`dvt-model.md` §1).
pub fn read<'a>(
    m: &Mappings,
    patient_id: &str,
    resources: &'a [Value],
    now: DateTime<Utc>,
) -> Record<'a> {
    let mut rec = Record::default();
    let mut all = Vec::with_capacity(resources.len());
    for r in resources {
        collect(r, &mut all, &mut rec.notes.malformed);
    }

    let mut coder = Coder::new(m);
    // Medications referenced by MedicationRequest / Statement.
    let mut medications: HashMap<&str, CodeSets> = HashMap::new();
    let mut patient: Option<&Elements<'_>> = None;
    let mut patients = 0;
    for (_, e) in &all {
        match e.str(El::ResourceType) {
            Some("Medication") => {
                if let Some(id) = e.str(El::Id) {
                    medications.insert(id, coder.codes(e.get(El::Code)).0);
                }
            }
            Some("Patient") => {
                patients += 1;
                if e.str(El::Id) == Some(patient_id) || patient.is_none() {
                    patient = Some(e);
                }
            }
            _ => {}
        }
    }
    // Only the context's Patient gives the age (another Patient's birthDate must not).
    if let Some(p) = patient
        .filter(|p| p.str(El::Id) == Some(patient_id) || (patient_id.is_empty() && patients == 1))
    {
        match p.str(El::BirthDate).map(parse_when) {
            Some(Some(w)) if !w.is_future(now) => rec.birth_date = Some(w.date()),
            Some(_) => rec.notes.birth_date_unreadable = true,
            None => {}
        }
    } else {
        rec.notes.no_patient = true;
    }

    rec.facts.reserve(all.len());
    for (r, e) in &all {
        let Some(rt) = e.str(El::ResourceType) else {
            rec.notes.malformed += 1;
            continue;
        };
        if !e.well_formed {
            rec.notes.malformed += 1;
            continue;
        }
        let Some(kind) = Kind::from_type(rt) else {
            continue;
        };
        if let Some(pid) = referenced_patient(e)
            && !patient_id.is_empty()
            && pid != patient_id
        {
            rec.notes.other_patient += 1;
            continue;
        }
        if let Some(f) = read_one(m, &mut coder, kind, r, e, &medications, &mut rec.notes, now) {
            rec.facts.push(f);
        }
    }
    rec
}

#[allow(clippy::too_many_arguments)]
fn read_one<'a>(
    m: &Mappings,
    coder: &mut Coder<'_, 'a>,
    kind: Kind,
    r: &'a Value,
    t: &Elements<'a>,
    medications: &HashMap<&str, CodeSets>,
    notes: &mut DataNotes,
    now: DateTime<Utc>,
) -> Option<Fact<'a>> {
    let status = t.str(El::Status).map(crate::mappings::trim).unwrap_or("");
    let mut f = Fact {
        kind,
        id: t.str(El::Id).unwrap_or(""),
        codes: CodeSets::default(),
        component_codes: CodeSets::default(),
        reason_codes: CodeSets::default(),
        side: None,
        date: None,
        end: None,
        active: true,
        absent: false,
        surgical_category: false,
        inpatient: false,
        resource: r,
    };
    let (date, unreadable) = match kind {
        Kind::Condition => {
            // §1: verificationStatus entered-in-error / refuted are not true.
            if matches!(
                status_code(t.get(El::VerificationStatus)),
                Some("entered-in-error" | "refuted")
            ) {
                return None;
            }
            // §1 active: active, recurrence, relapse, or no clinicalStatus.
            f.active = match t.get(El::ClinicalStatus) {
                None => true,
                Some(cs) => matches!(
                    status_code(Some(cs)),
                    Some("active" | "recurrence" | "relapse")
                ),
            };
            (f.codes, f.side) = coder.codes(t.get(El::Code));
            first_date(
                t,
                &[
                    (El::OnsetDateTime, None),
                    (El::OnsetPeriod, Some("start")),
                    (El::RecordedDate, None),
                ],
            )
        }
        Kind::Observation => {
            if matches!(status, "entered-in-error" | "cancelled") {
                return None;
            }
            (f.codes, f.side) = coder.codes(t.get(El::Code));
            if let Some(comps) = t.get(El::Component).and_then(Value::as_array) {
                for c in comps {
                    f.component_codes = f.component_codes.union(coder.codes(c.get("code")).0);
                }
            }
            // §1 symptom Observations: absent when the value says so.
            f.absent = t.get(El::ValueBoolean).and_then(Value::as_bool) == Some(false)
                || has_coding(
                    t.get(El::ValueCodeableConcept),
                    &m.model.record.absent_values,
                );
            first_date(
                t,
                &[
                    (El::EffectiveDateTime, None),
                    (El::EffectivePeriod, Some("start")),
                    (El::EffectiveInstant, None),
                    (El::Issued, None),
                ],
            )
        }
        Kind::Procedure => {
            if matches!(status, "entered-in-error" | "not-done") {
                return None;
            }
            f.active = matches!(status, "completed" | "in-progress");
            (f.codes, f.side) = coder.codes(t.get(El::Code));
            f.surgical_category = match t.get(El::Category) {
                Some(Value::Array(a)) => a
                    .iter()
                    .any(|c| has_coding(Some(c), &m.model.record.surgery_categories)),
                other => has_coding(other, &m.model.record.surgery_categories),
            };
            first_date(
                t,
                &[
                    (El::PerformedDateTime, None),
                    (El::PerformedPeriod, Some("end")),
                    (El::PerformedPeriod, Some("start")),
                ],
            )
        }
        Kind::MedicationRequest | Kind::MedicationStatement => {
            if kind == Kind::MedicationRequest
                && matches!(
                    status,
                    "entered-in-error" | "cancelled" | "stopped" | "completed"
                )
            {
                return None;
            }
            if kind == Kind::MedicationStatement
                && matches!(
                    status,
                    "entered-in-error" | "stopped" | "completed" | "not-taken"
                )
            {
                return None;
            }
            // §2 "active MedicationRequest or MedicationStatement": current use.
            f.active = status == "active";
            f.codes = coder.codes(t.get(El::MedicationCodeableConcept)).0;
            if let Some(reference) = t
                .get(El::MedicationReference)
                .and_then(|x| str_at(x, "reference"))
            {
                let id = reference
                    .trim_start_matches('#')
                    .rsplit('/')
                    .next()
                    .unwrap_or("");
                if let Some(sets) = medications.get(id) {
                    f.codes = f.codes.union(*sets);
                } else if let Some(contained) = t.get(El::Contained).and_then(Value::as_array) {
                    for c in contained {
                        if str_at(c, "id") == Some(id) {
                            f.codes = f.codes.union(coder.codes(c.get("code")).0);
                        }
                    }
                }
            }
            if kind == Kind::MedicationRequest {
                first_date(t, &[(El::AuthoredOn, None)])
            } else {
                first_date(
                    t,
                    &[
                        (El::EffectiveDateTime, None),
                        (El::EffectivePeriod, Some("start")),
                        (El::DateAsserted, None),
                    ],
                )
            }
        }
        Kind::Encounter => {
            if matches!(status, "entered-in-error" | "cancelled" | "planned") {
                return None;
            }
            let class = t.get(El::Class);
            let class_code = class
                .and_then(|c| str_at(c, "code"))
                .or_else(|| class.and_then(|c| status_code(Some(c))))
                .map(crate::mappings::trim);
            f.inpatient =
                class_code.is_some_and(|c| m.model.record.inpatient_classes.iter().any(|k| k == c));
            if let Some(reasons) = t.get(El::ReasonCode).and_then(Value::as_array) {
                for rc in reasons {
                    let (sets, side) = coder.codes(Some(rc));
                    f.reason_codes = f.reason_codes.union(sets);
                    f.side = f.side.or(side);
                }
            }
            let (end, end_bad) = first_date(t, &[(El::Period, Some("end"))]);
            f.end = end;
            if end_bad {
                notes.unreadable_dates += 1;
            }
            first_date(t, &[(El::Period, Some("start"))])
        }
        Kind::ServiceRequest => {
            if matches!(status, "entered-in-error" | "revoked") {
                return None;
            }
            f.active = matches!(status, "active" | "completed");
            (f.codes, f.side) = coder.codes(t.get(El::Code));
            first_date(t, &[(El::AuthoredOn, None)])
        }
        Kind::DiagnosticReport => {
            if matches!(status, "entered-in-error" | "cancelled") {
                return None;
            }
            (f.codes, f.side) = coder.codes(t.get(El::Code));
            first_date(
                t,
                &[
                    (El::EffectiveDateTime, None),
                    (El::EffectivePeriod, Some("start")),
                    (El::Issued, None),
                ],
            )
        }
        Kind::ImagingStudy => {
            if matches!(status, "entered-in-error" | "cancelled") {
                return None;
            }
            if let Some(codes) = t.get(El::ProcedureCode).and_then(Value::as_array) {
                for c in codes {
                    f.codes = f.codes.union(coder.codes(Some(c)).0);
                }
            }
            first_date(t, &[(El::Started, None)])
        }
    };
    let relevant = !f.codes.is_empty()
        || !f.component_codes.is_empty()
        || !f.reason_codes.is_empty()
        || f.inpatient
        || f.surgical_category;
    if !relevant {
        // Nothing in the model reads it.
        return None;
    }
    if f.side.is_none() {
        f.side = body_site_side(m, t);
    }
    if unreadable {
        notes.unreadable_dates += 1;
    }
    // §1: future dates are ignored (and counted).
    f.date = match date {
        Some(w) if w.is_future(now) => {
            notes.future_dates += 1;
            None
        }
        other => other,
    };
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-20T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn fast_instant_parse_agrees_with_chrono() {
        for s in [
            "2026-11-20T08:00:00Z",
            "2024-02-29T23:59:59Z",
            "2026-02-29T08:00:00Z",
            "2026-11-20T24:00:00Z",
            "2026-11-20T08:00:60Z",
            "2026-1a-20T08:00:00Z",
        ] {
            let chrono = DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|d| d.with_timezone(&Utc));
            assert_eq!(parse_when(s).map(|w| w.t), chrono, "{s}");
        }
        assert!(parse_utc_seconds("2026-11-20T08:00:00Z").is_some());
        assert!(parse_utc_seconds("2026-11-20T08:00:00+01:00").is_none());
    }

    #[test]
    fn reference_order_is_the_order_of_the_reference_strings() {
        let refs = [
            (Kind::Condition, "a"),
            (Kind::Condition, ""),
            (Kind::Condition, "a/b"),
            (Kind::Condition, "A"),
            (Kind::Observation, "1"),
            (Kind::MedicationRequest, "x"),
            (Kind::MedicationStatement, ""),
        ];
        for a in refs {
            for b in refs {
                assert_eq!(
                    cmp_references(a, b),
                    reference(a.0, a.1).cmp(&reference(b.0, b.1)),
                    "{a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn one_pass_elements_check_types_and_find_the_patient() {
        let r = serde_json::json!({"resourceType": "Condition", "id": "c1",
            "subject": {"reference": "https://x.org/fhir/Patient/p1/_history/2"}});
        let e = Elements::of(&r);
        assert!(e.well_formed);
        assert_eq!(e.str(El::Id), Some("c1"));
        assert_eq!(referenced_patient(&e), Some("p1"));
        let bad = serde_json::json!({"resourceType": "Condition", "status": 3});
        assert!(!Elements::of(&bad).well_formed);
        let no_patient = serde_json::json!({"subject": {"reference": "Group/g"}});
        assert_eq!(referenced_patient(&Elements::of(&no_patient)), None);
    }

    #[test]
    fn window_edges_by_calendar_day_and_by_instant() {
        let d14 = parse_when("2026-11-06").unwrap();
        let d15 = parse_when("2026-11-05").unwrap();
        assert!(d14.within_days(now(), 14));
        assert!(!d15.within_days(now(), 14));
        let t = parse_when("2026-11-06T12:00:00Z").unwrap();
        assert!(t.within_days(now(), 14));
        let t = parse_when("2026-11-06T11:59:59Z").unwrap();
        assert!(!t.within_days(now(), 14));
        assert!(parse_when("2026-11-21").unwrap().is_future(now()));
        assert!(!parse_when("2026-11-20").unwrap().is_future(now()));
        assert!(
            parse_when("2026-11-20T12:00:01+00:00")
                .unwrap()
                .is_future(now())
        );
        assert!(parse_when("2026-13-01").is_none());
        assert!(parse_when("yesterday").is_none());
        assert!(parse_when("2026-11").unwrap().date_only);
    }
}
