//! Lenient reading of a patient's FHIR R4 resources (`serde_json::Value`) into the facts
//! the model needs (`dvt-model.md` §1): codes, clinically relevant dates, statuses, sides.
//! Pure. Nothing here fails: a malformed entry is skipped and counted, a resource whose
//! status says it is not true is ignored, a future date is ignored and counted.
//!
//! Resources are not parsed through fhir-sdk types: they are strict where real data is
//! sloppy and silently drop malformed choice elements (`fhir-notes.md`).

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

/// Parse a FHIR date / dateTime / instant. Partial dates (`2026`, `2026-11`) take the
/// first day; a time without a zone is read as UTC. `None` if unreadable.
pub fn parse_when(s: &str) -> Option<When> {
    let s = s.trim();
    if s.len() >= 11 && s.as_bytes().get(10) == Some(&b'T') {
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
        if self.id.is_empty() {
            format!("{} (no id)", self.kind.as_str())
        } else {
            format!("{}/{}", self.kind.as_str(), self.id)
        }
    }
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

/// The top-level elements of a resource, collected in one pass: a lookup compares key
/// lengths first, which is much cheaper than searching serde_json's BTreeMap for each of
/// the ~15 elements read per resource (measured: most of the reading time).
struct Top<'a> {
    keys: [(&'a str, &'a Value); 40],
    n: usize,
    /// More than 40 elements: look the rest up in the map.
    overflow: Option<&'a Value>,
}

static NULL: Value = Value::Null;

impl<'a> Top<'a> {
    fn new(r: &'a Value) -> Top<'a> {
        let mut t = Top {
            keys: [("", &NULL); 40],
            n: 0,
            overflow: None,
        };
        if let Some(o) = r.as_object() {
            if o.len() > 40 {
                t.overflow = Some(r);
            }
            for (k, v) in o.iter().take(40) {
                t.keys[t.n] = (k.as_str(), v);
                t.n += 1;
            }
        }
        t
    }
    fn get(&self, key: &str) -> Option<&'a Value> {
        match self.overflow {
            Some(r) => r.get(key),
            None => self.keys[..self.n]
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v),
        }
    }
    fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(Value::as_str)
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The codes of a CodeableConcept: code sets and side.
pub fn concept_codes(m: &Mappings, cc: Option<&Value>) -> (CodeSets, Option<Side>) {
    let mut sets = CodeSets::default();
    let mut side = None;
    if let Some(codings) = cc.and_then(|c| c.get("coding")).and_then(Value::as_array) {
        for c in codings {
            let (Some(sys), Some(code)) = (str_at(c, "system"), str_at(c, "code")) else {
                continue;
            };
            let these = m.classify(sys, code);
            sets = sets.union(these);
            // Laterality only matters for codes the model uses.
            if side.is_none() && !these.is_empty() {
                side = m.icd_side(sys, code);
            }
        }
    }
    (sets, side)
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
        .map(str::trim)
}

fn body_site_side(m: &Mappings, t: &Top<'_>) -> Option<Side> {
    let sites = t.get("bodySite")?;
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
/// candidate could not be read.
fn first_date(t: &Top<'_>, paths: &[&[&str]]) -> (Option<When>, bool) {
    let mut unreadable = false;
    for path in paths {
        let mut v = t.get(path[0]);
        for key in &path[1..] {
            v = v.and_then(|x| x.get(*key));
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
fn referenced_patient<'a>(t: &Top<'a>) -> Option<&'a str> {
    let reference = ["subject", "patient"]
        .iter()
        .find_map(|k| t.get(k).and_then(|s| str_at(s, "reference")))?;
    let idx = reference.rfind("Patient/")?;
    let rest = &reference[idx + "Patient/".len()..];
    Some(rest.split('/').next().unwrap_or(rest))
}

/// Is this resource well-formed enough to read? (The elements we read have the JSON
/// type FHIR gives them.)
fn well_formed(r: &Value) -> bool {
    let Some(o) = r.as_object() else { return false };
    // One pass over the entries (cheaper than a lookup per element).
    o.iter().all(|(k, v)| match k.as_str() {
        "code" => v
            .as_object()
            .is_some_and(|c| c.get("coding").is_none_or(Value::is_array)),
        "subject" | "clinicalStatus" | "verificationStatus" => v.is_object(),
        "status" | "id" => v.is_string(),
        "component" | "reasonCode" => v.is_array(),
        _ => true,
    })
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

/// Read a patient's resources (`dvt-model.md` §1).
pub fn read<'a>(
    m: &Mappings,
    patient_id: &str,
    resources: &'a [Value],
    now: DateTime<Utc>,
) -> Record<'a> {
    let mut rec = Record::default();
    let mut all = Vec::with_capacity(resources.len());
    flatten(resources, &mut all, &mut rec.notes.malformed);

    // Medications referenced by MedicationRequest / Statement.
    let mut medications: HashMap<&str, CodeSets> = HashMap::new();
    let mut patient: Option<&Value> = None;
    let mut patients = 0;
    for r in &all {
        match str_at(r, "resourceType") {
            Some("Medication") => {
                if let Some(id) = str_at(r, "id") {
                    medications.insert(id, concept_codes(m, r.get("code")).0);
                }
            }
            Some("Patient") => {
                patients += 1;
                if str_at(r, "id") == Some(patient_id) || patient.is_none() {
                    patient = Some(r);
                }
            }
            _ => {}
        }
    }
    // Only the context's Patient gives the age (another Patient's birthDate must not).
    if let Some(p) = patient
        .filter(|p| str_at(p, "id") == Some(patient_id) || (patient_id.is_empty() && patients == 1))
    {
        match p.get("birthDate").and_then(Value::as_str).map(parse_when) {
            Some(Some(w)) if !w.is_future(now) => rec.birth_date = Some(w.date()),
            Some(_) => rec.notes.birth_date_unreadable = true,
            None => {}
        }
    } else {
        rec.notes.no_patient = true;
    }

    for r in all {
        let Some(rt) = str_at(r, "resourceType") else {
            rec.notes.malformed += 1;
            continue;
        };
        if !well_formed(r) {
            rec.notes.malformed += 1;
            continue;
        }
        let Some(kind) = Kind::from_type(rt) else {
            continue;
        };
        let top = Top::new(r);
        if let Some(pid) = referenced_patient(&top)
            && !patient_id.is_empty()
            && pid != patient_id
        {
            rec.notes.other_patient += 1;
            continue;
        }
        if let Some(f) = read_one(m, kind, r, &top, &medications, &mut rec.notes, now) {
            rec.facts.push(f);
        }
    }
    rec
}

fn read_one<'a>(
    m: &Mappings,
    kind: Kind,
    r: &'a Value,
    t: &Top<'a>,
    medications: &HashMap<&str, CodeSets>,
    notes: &mut DataNotes,
    now: DateTime<Utc>,
) -> Option<Fact<'a>> {
    let status = t.str("status").map(str::trim).unwrap_or("");
    let mut f = Fact {
        kind,
        id: t.str("id").unwrap_or(""),
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
                status_code(t.get("verificationStatus")),
                Some("entered-in-error" | "refuted")
            ) {
                return None;
            }
            // §1 active: active, recurrence, relapse, or no clinicalStatus.
            f.active = match t.get("clinicalStatus") {
                None => true,
                Some(cs) => matches!(
                    status_code(Some(cs)),
                    Some("active" | "recurrence" | "relapse")
                ),
            };
            (f.codes, f.side) = concept_codes(m, t.get("code"));
            first_date(
                t,
                &[
                    &["onsetDateTime"],
                    &["onsetPeriod", "start"],
                    &["recordedDate"],
                ],
            )
        }
        Kind::Observation => {
            if matches!(status, "entered-in-error" | "cancelled") {
                return None;
            }
            (f.codes, f.side) = concept_codes(m, t.get("code"));
            if let Some(comps) = t.get("component").and_then(Value::as_array) {
                for c in comps {
                    f.component_codes = f.component_codes.union(concept_codes(m, c.get("code")).0);
                }
            }
            // §1 symptom Observations: absent when the value says so.
            f.absent = t.get("valueBoolean").and_then(Value::as_bool) == Some(false)
                || has_coding(t.get("valueCodeableConcept"), &m.model.record.absent_values);
            first_date(
                t,
                &[
                    &["effectiveDateTime"],
                    &["effectivePeriod", "start"],
                    &["effectiveInstant"],
                    &["issued"],
                ],
            )
        }
        Kind::Procedure => {
            if matches!(status, "entered-in-error" | "not-done") {
                return None;
            }
            f.active = matches!(status, "completed" | "in-progress");
            (f.codes, f.side) = concept_codes(m, t.get("code"));
            f.surgical_category = match t.get("category") {
                Some(Value::Array(a)) => a
                    .iter()
                    .any(|c| has_coding(Some(c), &m.model.record.surgery_categories)),
                other => has_coding(other, &m.model.record.surgery_categories),
            };
            first_date(
                t,
                &[
                    &["performedDateTime"],
                    &["performedPeriod", "end"],
                    &["performedPeriod", "start"],
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
            f.codes = concept_codes(m, t.get("medicationCodeableConcept")).0;
            if let Some(reference) = r
                .get("medicationReference")
                .and_then(|x| str_at(x, "reference"))
            {
                let id = reference
                    .trim_start_matches('#')
                    .rsplit('/')
                    .next()
                    .unwrap_or("");
                if let Some(sets) = medications.get(id) {
                    f.codes = f.codes.union(*sets);
                } else if let Some(contained) = t.get("contained").and_then(Value::as_array) {
                    for c in contained {
                        if str_at(c, "id") == Some(id) {
                            f.codes = f.codes.union(concept_codes(m, c.get("code")).0);
                        }
                    }
                }
            }
            if kind == Kind::MedicationRequest {
                first_date(t, &[&["authoredOn"]])
            } else {
                first_date(
                    t,
                    &[
                        &["effectiveDateTime"],
                        &["effectivePeriod", "start"],
                        &["dateAsserted"],
                    ],
                )
            }
        }
        Kind::Encounter => {
            if matches!(status, "entered-in-error" | "cancelled" | "planned") {
                return None;
            }
            let class = t.get("class");
            let class_code = class
                .and_then(|c| str_at(c, "code"))
                .or_else(|| class.and_then(|c| status_code(Some(c))))
                .map(str::trim);
            f.inpatient =
                class_code.is_some_and(|c| m.model.record.inpatient_classes.iter().any(|k| k == c));
            if let Some(reasons) = t.get("reasonCode").and_then(Value::as_array) {
                for rc in reasons {
                    let (sets, side) = concept_codes(m, Some(rc));
                    f.reason_codes = f.reason_codes.union(sets);
                    f.side = f.side.or(side);
                }
            }
            let (end, end_bad) = first_date(t, &[&["period", "end"]]);
            f.end = end;
            if end_bad {
                notes.unreadable_dates += 1;
            }
            first_date(t, &[&["period", "start"]])
        }
        Kind::ServiceRequest => {
            if matches!(status, "entered-in-error" | "revoked") {
                return None;
            }
            f.active = matches!(status, "active" | "completed");
            (f.codes, f.side) = concept_codes(m, t.get("code"));
            first_date(t, &[&["authoredOn"]])
        }
        Kind::DiagnosticReport => {
            if matches!(status, "entered-in-error" | "cancelled") {
                return None;
            }
            (f.codes, f.side) = concept_codes(m, t.get("code"));
            first_date(
                t,
                &[
                    &["effectiveDateTime"],
                    &["effectivePeriod", "start"],
                    &["issued"],
                ],
            )
        }
        Kind::ImagingStudy => {
            if matches!(status, "entered-in-error" | "cancelled") {
                return None;
            }
            if let Some(codes) = t.get("procedureCode").and_then(Value::as_array) {
                for c in codes {
                    f.codes = f.codes.union(concept_codes(m, Some(c)).0);
                }
            }
            first_date(t, &[&["started"]])
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
