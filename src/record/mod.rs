//! Lenient reading of a patient's FHIR R4 resources (`serde_json::Value`) into the facts
//! the model needs (`dvt-model.md` §1): codes, clinically relevant dates, statuses, sides.
//! Pure. Nothing here fails: a malformed entry is skipped and counted, a resource whose
//! status says it is not true is ignored, a future date is ignored and counted.
//!
//! Resources are not parsed through fhir-sdk types: they are strict where real data is
//! sloppy and silently drop malformed choice elements (`fhir-notes.md`).

pub mod quality;
pub mod resource;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use crate::mappings::{CodeSet, CodeSets, Mappings, Side};
use quality::{DataQualityCode, DataQualityNote};

/// A clinically relevant date (§1), as the interval it names: a day, a month (`2026-11`)
/// or a year (`2026`) is every instant from its first to its last, clipped to the
/// resource's `recordedDate` and to now; an instant is a one-point interval. Dates
/// without a time compare by calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When<'a> {
    /// The first instant the date can name.
    pub start: DateTime<Utc>,
    /// The last instant it can name (inclusive), never after now or `recordedDate`.
    pub end: DateTime<Utc>,
    /// No time of day: windows compare calendar days.
    pub date_only: bool,
    /// As written in the resource: the card shows it (§1 partial dates).
    pub written: &'a str,
}

impl Ord for When<'_> {
    /// Most recent end first decides recency; then the start; then the text.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.end, self.start, self.date_only, self.written).cmp(&(
            other.end,
            other.start,
            other.date_only,
            other.written,
        ))
    }
}

impl PartialOrd for When<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<'a> When<'a> {
    /// The first day the date can name (what a window's arithmetic on weeks starts from).
    pub fn date(&self) -> NaiveDate {
        self.start.date_naive()
    }

    /// The last day the date can name.
    pub fn last_date(&self) -> NaiveDate {
        self.end.date_naive()
    }

    /// The whole interval lies after now (§1: future dates are ignored).
    pub fn is_future(&self, now: DateTime<Utc>) -> bool {
        if self.date_only {
            self.date() > now.date_naive()
        } else {
            self.start > now
        }
    }

    /// §1 partial dates: the interval ends no later than `bound` (the resource's
    /// `recordedDate`) and never after now; never before its own start.
    pub fn clipped(mut self, bound: Option<When<'_>>, now: DateTime<Utc>) -> When<'a> {
        let mut end = self.end.min(now);
        if let Some(b) = bound {
            end = end.min(b.end);
        }
        self.end = end.max(self.start);
        self
    }

    /// Is `t` at most `days` before now (a date: calendar days; an instant: N × 24 h)?
    fn age_ok(&self, t: DateTime<Utc>, now: DateTime<Utc>, days: u32) -> bool {
        if self.date_only {
            (now.date_naive() - t.date_naive()).num_days() <= i64::from(days)
        } else {
            now - t <= chrono::Duration::days(i64::from(days))
        }
    }

    /// §1 "≤ N days", for windows that RAISE a card or a risk factor: some part of the
    /// interval lies within N × 24 h before now (a date: N calendar days).
    pub fn within_days(&self, now: DateTime<Utc>, days: u32) -> bool {
        !self.is_future(now) && self.age_ok(self.end.min(now), now, days)
    }

    /// §1 "≤ N days", for windows that SUPPRESS or downgrade (`current-dvt`,
    /// `dvt-imaging`): the whole interval lies within the window.
    pub fn wholly_within_days(&self, now: DateTime<Utc>, days: u32) -> bool {
        !self.is_future(now) && self.age_ok(self.start, now, days)
    }
}

/// The common instant form `YYYY-MM-DDThh:mm:ssZ`, hand-parsed (chrono's RFC 3339
/// parser was a large share of reading a record). Anything else: `None`, and the caller
/// falls back to chrono, so the accepted forms are unchanged.
fn parse_utc_seconds(s: &str) -> Option<When<'_>> {
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
    Some(When::instant(Utc.from_utc_datetime(&t), s))
}

impl<'a> When<'a> {
    fn instant(t: DateTime<Utc>, written: &'a str) -> When<'a> {
        When {
            start: t,
            end: t,
            date_only: false,
            written,
        }
    }

    /// The days `first..=last`, as a date-only interval.
    fn days(first: NaiveDate, last: NaiveDate, written: &'a str) -> Option<When<'a>> {
        Some(When {
            start: Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0)?),
            end: Utc.from_utc_datetime(&last.and_hms_opt(23, 59, 59)?),
            date_only: true,
            written,
        })
    }
}

/// Parse a FHIR date / dateTime / instant. A partial date (`2026`, `2026-11`) names the
/// interval of its days (§1); a time without a zone is read as UTC. `None` if unreadable.
pub fn parse_when(s: &str) -> Option<When<'_>> {
    let s = crate::mappings::trim(s);
    if s.len() >= 11 && s.as_bytes().get(10) == Some(&b'T') {
        if let Some(w) = parse_utc_seconds(s) {
            return Some(w);
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(When::instant(dt.with_timezone(&Utc), s));
        }
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
        ] {
            if let Ok(ndt) = NaiveDateTime::parse_from_str(s, fmt) {
                return Some(When::instant(Utc.from_utc_datetime(&ndt), s));
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
    let last_of_month = |y: i32, mo: u32| -> Option<NaiveDate> {
        let (ny, nm) = if mo == 12 { (y + 1, 1) } else { (y, mo + 1) };
        NaiveDate::from_ymd_opt(ny, nm, 1)?.pred_opt()
    };
    match b.len() {
        4 => When::days(
            NaiveDate::from_ymd_opt(year, 1, 1)?,
            NaiveDate::from_ymd_opt(year, 12, 31)?,
            s,
        ),
        7 if b[4] == b'-' => {
            let mo = num(5..7)?;
            When::days(
                NaiveDate::from_ymd_opt(year, mo, 1)?,
                last_of_month(year, mo)?,
                s,
            )
        }
        10 if b[4] == b'-' && b[7] == b'-' => {
            let d = NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?)?;
            When::days(d, d, s)
        }
        _ => None,
    }
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
    /// Code sets of the resource's code element (Encounter: none; see `reason_codes`;
    /// medications: of the medication, coded or resolved, or by name).
    pub codes: CodeSets,
    /// Code sets of Observation components.
    pub component_codes: CodeSets,
    /// Encounter.reasonCode code sets.
    pub reason_codes: CodeSets,
    pub side: Option<Side>,
    /// Clinically relevant date (§1); `None` if absent, unreadable or in the future.
    /// Encounter: its period, start to end (to now while ongoing).
    pub date: Option<When<'a>>,
    /// Condition: `onset[x]` is present but gives no date (Age, String, Range): the
    /// date above is then `recordedDate`, which §2 active-cancer does not take as onset.
    pub onset_unusable: bool,
    /// Encounter: when it ended (§1 Encounters); `None` while ongoing.
    pub end: Option<When<'a>>,
    /// Encounter: ongoing (§1 Encounters).
    pub ongoing: bool,
    /// Condition: clinically active and not abated (§1). Procedure: completed /
    /// in-progress. Medication: current (active). ServiceRequest: active / completed.
    /// Others: true.
    pub active: bool,
    /// Symptom Observation whose value says the symptom is absent (§1).
    pub absent: bool,
    /// Procedure.category is a surgery category (§2 recent-surgery).
    pub surgical_category: bool,
    /// Encounter.class is inpatient (§2 bedridden).
    pub inpatient: bool,
    /// A current medication whose `medicationReference` could not be resolved (§1).
    pub unresolved_medication: bool,
    /// What the card calls the evidence: the matched coding's display, else the code's
    /// text, else another coding's display (a medication: the Medication's name).
    pub name: Option<&'a str>,
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

/// What the reader skipped without a resource to point to (counts for the card).
/// Notes about a resource (future or unreadable dates, unresolved medications, ...)
/// are [`Record::quality`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataNotes {
    pub malformed: usize,
    pub other_patient: usize,
    pub birth_date_unreadable: bool,
    pub no_patient: bool,
}

/// A patient's record, read leniently.
#[derive(Debug, Clone, Default)]
pub struct Record<'a> {
    pub birth_date: Option<NaiveDate>,
    /// §1 Deceased: `deceasedBoolean` true or `deceasedDateTime` ≤ now.
    pub deceased: bool,
    pub facts: Vec<Fact<'a>>,
    pub notes: DataNotes,
    /// §6 data-quality notes, one per code, evidence in first-seen order.
    pub quality: Vec<DataQualityNote>,
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
    OnsetAge,
    OnsetString,
    OnsetRange,
    AbatementDateTime,
    AbatementPeriod,
    AbatementAge,
    AbatementRange,
    AbatementString,
    AbatementBoolean,
    DeceasedBoolean,
    DeceasedDateTime,
    Interpretation,
    DataAbsentReason,
    ValueString,
    Ingredient,
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
                "onsetAge" => El::OnsetAge,
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
                "onsetRange" => El::OnsetRange,
                "ingredient" => El::Ingredient,
                _ => return None,
            },
            11 => match key {
                "onsetPeriod" => El::OnsetPeriod,
                "onsetString" => El::OnsetString,
                "valueString" => El::ValueString,
                _ => return None,
            },
            12 => match key {
                "resourceType" => El::ResourceType,
                "valueBoolean" => El::ValueBoolean,
                "recordedDate" => El::RecordedDate,
                "dateAsserted" => El::DateAsserted,
                "abatementAge" => El::AbatementAge,
                _ => return None,
            },
            13 => match key {
                "procedureCode" => El::ProcedureCode,
                "onsetDateTime" => El::OnsetDateTime,
                _ => return None,
            },
            14 => match key {
                "clinicalStatus" => El::ClinicalStatus,
                "abatementRange" => El::AbatementRange,
                "interpretation" => El::Interpretation,
                _ => return None,
            },
            15 => match key {
                "effectivePeriod" => El::EffectivePeriod,
                "performedPeriod" => El::PerformedPeriod,
                "abatementPeriod" => El::AbatementPeriod,
                "abatementString" => El::AbatementString,
                "deceasedBoolean" => El::DeceasedBoolean,
                _ => return None,
            },
            16 => match key {
                "effectiveInstant" => El::EffectiveInstant,
                "abatementBoolean" => El::AbatementBoolean,
                "deceasedDateTime" => El::DeceasedDateTime,
                "dataAbsentReason" => El::DataAbsentReason,
                _ => return None,
            },
            17 => match key {
                "effectiveDateTime" => El::EffectiveDateTime,
                "performedDateTime" => El::PerformedDateTime,
                "abatementDateTime" => El::AbatementDateTime,
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

    fn classify(&mut self, sys: &'a str, code: &'a str) -> Classified {
        let m = self.m;
        *self
            .memo
            .entry((sys, code))
            .or_insert_with(|| classify_coding(m, sys, code))
    }

    /// [`concept_codes`], memoised.
    fn codes(&mut self, cc: Option<&'a Value>) -> (CodeSets, Option<Side>) {
        fold_codings(cc, |sys, code| self.classify(sys, code))
    }

    /// What the card calls a CodeableConcept (v2 Evidence.name): the display of a coding
    /// the model matched, else its text, else any coding's display.
    fn name(&mut self, cc: Option<&'a Value>) -> Option<&'a str> {
        let cc = cc?;
        if let Some(codings) = cc.get("coding").and_then(Value::as_array) {
            for c in codings {
                if let (Some(s), Some(k)) = system_code(c)
                    && !self.classify(s, k).0.is_empty()
                    && let Some(d) = str_at(c, "display")
                {
                    return Some(d);
                }
            }
        }
        str_at(cc, "text").or_else(|| displays(Some(cc)).next())
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

/// What a resource's `bodySite` says (§1 generic finding + body site, §2 laterality).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct BodySites {
    /// A bodySite names a leg structure (the `leg-site` code set).
    leg: bool,
    /// A bodySite names a site that is not a leg (a coded site outside `leg-site`).
    other: bool,
    side: Option<Side>,
}

/// The sides a laterality qualifier or sided structure names, from a CodeableConcept's
/// codings.
fn coded_side(m: &Mappings, cc: &Value) -> Option<Side> {
    let codings = cc.get("coding").and_then(Value::as_array)?;
    codings.iter().find_map(|c| {
        let (Some(s), Some(k)) = system_code(c) else {
            return None;
        };
        m.body_site_side(s, k).or_else(|| m.icd_side(s, k))
    })
}

fn body_sites(m: &Mappings, coder: &mut Coder<'_, '_>, t: &Elements<'_>) -> BodySites {
    let mut out = BodySites::default();
    let Some(sites) = t.get(El::BodySite) else {
        return out;
    };
    let list: &[Value] = match sites {
        Value::Array(a) => a,
        other => std::slice::from_ref(other),
    };
    for site in list {
        let mut leg = false;
        let mut named = false;
        if let Some(codings) = site.get("coding").and_then(Value::as_array) {
            for c in codings {
                let (Some(s), Some(k)) = system_code(c) else {
                    continue;
                };
                if coder.m.classify(s, k).contains(CodeSet::LegSite) {
                    leg = true;
                } else if m.body_site_side(s, k).is_none() {
                    // A laterality qualifier alone names no site.
                    named = true;
                }
            }
        }
        out.leg |= leg;
        out.other |= named && !leg;
        // §2 laterality: a sided structure or qualifier in the codings, or the
        // bodySite's laterality extension.
        let ext_side = site
            .get("extension")
            .and_then(Value::as_array)
            .and_then(|exts| {
                exts.iter()
                    .filter(|x| {
                        str_at(x, "url")
                            .is_some_and(|u| u.to_ascii_lowercase().contains("laterality"))
                    })
                    .find_map(|x| x.get("valueCodeableConcept").and_then(|v| coded_side(m, v)))
            });
        out.side = out.side.or(coded_side(m, site)).or(ext_side);
    }
    out
}

/// Reads the first readable candidate date (§1 order); also says whether a present
/// candidate could not be read. A candidate is an element, or a key inside it.
fn first_date<'a>(t: &Elements<'a>, paths: &[(El, Option<&str>)]) -> (Option<When<'a>>, bool) {
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

/// One resource of the request: its JSON, its elements, and the Bundle entry's
/// `fullUrl` when it came in a Bundle (a `medicationReference` may name it).
type Entry<'a> = (&'a Value, Elements<'a>, Option<&'a str>);

/// Like [`flatten`], reading each resource's elements in the same pass.
fn collect<'a>(
    r: &'a Value,
    full_url: Option<&'a str>,
    out: &mut Vec<Entry<'a>>,
    malformed: &mut usize,
) {
    let e = Elements::of(r);
    if e.str(El::ResourceType) != Some("Bundle") {
        out.push((r, e, full_url));
        return;
    }
    if let Some(entries) = e.get(El::Entry).and_then(Value::as_array) {
        for entry in entries {
            match entry.get("resource") {
                Some(res) => collect(res, str_at(entry, "fullUrl"), out, malformed),
                None => *malformed += 1,
            }
        }
    }
}

/// A Medication, reduced to what matching needs (§1 Medications).
#[derive(Debug, Clone, Copy, Default)]
struct Med<'a> {
    codes: CodeSets,
    name: Option<&'a str>,
}

/// The Medications of the request, by id and by `fullUrl` (§1: contained, in the
/// prefetch, from a `_include`, or read live: the FHIR layer puts them all in the list).
#[derive(Default)]
struct Meds<'a> {
    by_id: HashMap<&'a str, Med<'a>>,
    by_url: HashMap<&'a str, Med<'a>>,
}

impl<'a> Meds<'a> {
    /// `Medication/7`, `https://x/fhir/Medication/7[/_history/2]`, or a `fullUrl`
    /// (`urn:uuid:...`).
    fn resolve(&self, reference: &str) -> Option<Med<'a>> {
        let reference = crate::mappings::trim(reference);
        if let Some(m) = self.by_url.get(reference) {
            return Some(*m);
        }
        // A Bundle's entries reach us without their fullUrl when the FHIR layer has
        // flattened them; `urn:uuid:X` then names the Medication whose id is X (the
        // convention of Synthea and most transaction Bundles: a UUID does not collide).
        if let Some(uuid) = reference.strip_prefix("urn:uuid:") {
            return self.by_id.get(uuid).copied();
        }
        let path = reference
            .split_once("/_history/")
            .map_or(reference, |(p, _)| p);
        let (rest, id) = path.rsplit_once('/')?;
        if rest == "Medication" || rest.ends_with("/Medication") {
            self.by_id.get(id).copied()
        } else {
            None
        }
    }
}

/// The medication concepts a text (code.text, a display) names by the generic and brand
/// names of `[medication-names]` (§1: case-insensitive whole words).
fn name_sets(m: &Mappings, text: &str) -> CodeSets {
    m.medication_name_sets(text)
}

/// A medication CodeableConcept (or Medication.code, with its ingredients): its code
/// sets, RxNorm at every term type as the data lists them; by name only when no coding
/// matched (§1). And the name the card shows.
fn medication<'a>(
    m: &Mappings,
    coder: &mut Coder<'_, 'a>,
    code: Option<&'a Value>,
    ingredients: Option<&'a Value>,
) -> Med<'a> {
    let mut codes = coder.codes(code).0;
    if let Some(list) = ingredients.and_then(Value::as_array) {
        for i in list {
            codes = codes.union(coder.codes(i.get("itemCodeableConcept")).0);
        }
    }
    let text = code.and_then(|c| str_at(c, "text"));
    if codes.is_empty() {
        for t in text.into_iter().chain(displays(code)) {
            codes = codes.union(name_sets(m, t));
        }
    }
    let name = text.or_else(|| coder.name(code));
    Med { codes, name }
}

/// The displays of a CodeableConcept's codings.
fn displays(cc: Option<&Value>) -> impl Iterator<Item = &str> {
    cc.and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| str_at(c, "display"))
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
        collect(r, None, &mut all, &mut rec.notes.malformed);
    }

    let mut coder = Coder::new(m);
    // Medications referenced by MedicationRequest / Statement.
    let mut meds = Meds::default();
    let mut patient: Option<&Elements<'_>> = None;
    let mut patients = 0;
    for (_, e, full_url) in &all {
        match e.str(El::ResourceType) {
            Some("Medication") => {
                let med = medication(m, &mut coder, e.get(El::Code), e.get(El::Ingredient));
                if let Some(id) = e.str(El::Id) {
                    meds.by_id.insert(crate::mappings::trim(id), med);
                }
                if let Some(url) = full_url {
                    meds.by_url.insert(crate::mappings::trim(url), med);
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
    let patient = patient
        .filter(|p| p.str(El::Id) == Some(patient_id) || (patient_id.is_empty() && patients == 1));
    if let Some(p) = patient {
        match p.str(El::BirthDate).map(parse_when) {
            Some(Some(w)) if !w.is_future(now) => rec.birth_date = Some(w.date()),
            Some(_) => rec.notes.birth_date_unreadable = true,
            None => {}
        }
        // §1 Deceased: deceasedBoolean true, or deceasedDateTime ≤ now.
        rec.deceased = deceased_at(
            p.get(El::DeceasedBoolean).and_then(Value::as_bool),
            p.str(El::DeceasedDateTime),
            now,
        );
    } else {
        rec.notes.no_patient = true;
    }
    if rec.birth_date.is_none() {
        // §4 rule 2 / §5: unknown age counts as adult, fixed thresholds; say so.
        let r = patient.map(|p| format!("Patient/{}", p.str(El::Id).unwrap_or("")));
        quality::note(&mut rec.quality, DataQualityCode::UnknownAge, r);
    }

    rec.facts.reserve(all.len());
    for (r, e, _) in &all {
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
        if let Some(f) = read_one(m, &mut coder, kind, r, e, &meds, &mut rec.quality, now) {
            rec.facts.push(f);
        }
    }
    rec
}

/// §1 Active Condition: an `abatement[x]` in the past ends it. A dated abatement
/// counts once any part of it is not in the future; an undated one (Age, Range, String,
/// `abatementBoolean` true) says it has abated.
fn abated(t: &Elements<'_>, now: DateTime<Utc>) -> bool {
    let dated = first_date(
        t,
        &[
            (El::AbatementDateTime, None),
            (El::AbatementPeriod, Some("start")),
            (El::AbatementPeriod, Some("end")),
        ],
    )
    .0;
    if let Some(w) = dated {
        return !w.is_future(now);
    }
    t.get(El::AbatementAge).is_some()
        || t.get(El::AbatementRange).is_some()
        || t.get(El::AbatementString).is_some()
        || t.get(El::AbatementBoolean).and_then(Value::as_bool) == Some(true)
}

/// §1 Symptom Observations: the value says the symptom is absent.
fn says_absent(m: &Mappings, t: &Elements<'_>) -> bool {
    let rules = &m.model.record;
    if t.get(El::ValueBoolean).and_then(Value::as_bool) == Some(false)
        || has_coding(t.get(El::ValueCodeableConcept), &rules.absent_values)
        || t.get(El::DataAbsentReason).is_some()
    {
        return true;
    }
    if let Some(s) = t.str(El::ValueString) {
        let s = s.trim().trim_end_matches(['.', '!']).trim();
        if rules.absent_words.iter().any(|w| w.eq_ignore_ascii_case(s)) {
            return true;
        }
    }
    // interpretation NEG (v3 ObservationInterpretation), in any of its codings.
    let interp: &[Value] = match t.get(El::Interpretation) {
        Some(Value::Array(a)) => a,
        Some(other) => std::slice::from_ref(other),
        None => &[],
    };
    interp.iter().any(|cc| {
        cc.get("coding")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| str_at(c, "code").is_some_and(|k| k.trim() == "NEG"))
            })
    })
}

#[allow(clippy::too_many_arguments)]
fn read_one<'a>(
    m: &Mappings,
    coder: &mut Coder<'_, 'a>,
    kind: Kind,
    r: &'a Value,
    t: &Elements<'a>,
    meds: &Meds<'a>,
    quality: &mut Vec<DataQualityNote>,
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
        onset_unusable: false,
        end: None,
        ongoing: false,
        active: true,
        absent: false,
        surgical_category: false,
        inpatient: false,
        unresolved_medication: false,
        name: None,
        resource: r,
    };
    // The CodeableConcept whose matched coding names the evidence.
    let mut named: Option<&'a Value> = t.get(El::Code);
    // §1 partial dates end no later than recordedDate.
    let mut bound: Option<When<'a>> = None;
    let (date, unreadable) = match kind {
        Kind::Condition => {
            // §1: verificationStatus entered-in-error / refuted are not true.
            if matches!(
                status_code(t.get(El::VerificationStatus)),
                Some("entered-in-error" | "refuted")
            ) {
                return None;
            }
            // §1 active: active, recurrence, relapse, or no clinicalStatus; an
            // abatement in the past ends it.
            f.active = match t.get(El::ClinicalStatus) {
                None => true,
                Some(cs) => matches!(
                    status_code(Some(cs)),
                    Some("active" | "recurrence" | "relapse")
                ),
            } && !abated(t, now);
            (f.codes, f.side) = coder.codes(t.get(El::Code));
            bound = first_date(t, &[(El::RecordedDate, None)]).0;
            let onset = first_date(
                t,
                &[(El::OnsetDateTime, None), (El::OnsetPeriod, Some("start"))],
            );
            f.onset_unusable = onset.0.is_none()
                && [
                    El::OnsetDateTime,
                    El::OnsetPeriod,
                    El::OnsetAge,
                    El::OnsetString,
                    El::OnsetRange,
                ]
                .iter()
                .any(|&el| t.get(el).is_some());
            match onset {
                (Some(w), bad) => (Some(w), bad),
                // §1: onset Age is ignored; recordedDate then.
                (None, bad) => (bound, bad),
            }
        }
        Kind::Observation => {
            if matches!(status, "entered-in-error" | "cancelled") {
                return None;
            }
            (f.codes, f.side) = coder.codes(t.get(El::Code));
            if f.codes.contains(CodeSet::SymptomQuestion) {
                // §1: an Observation whose VALUE is a symptom concept is that symptom,
                // present (LOINC 75325-1 Symptom, 8661-1 Chief complaint).
                let value = t.get(El::ValueCodeableConcept);
                let (sets, side) = coder.codes(value);
                f.codes = sets;
                f.side = side;
                named = value;
            } else {
                f.absent = says_absent(m, t);
            }
            if let Some(comps) = t.get(El::Component).and_then(Value::as_array) {
                for c in comps {
                    f.component_codes = f.component_codes.union(coder.codes(c.get("code")).0);
                }
            }
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
            // §1: entered-in-error / cancelled / not-taken were never given; stopped and
            // completed are not current use but still say a treatment was given
            // (§2 active-cancer treatment).
            if matches!(status, "entered-in-error" | "cancelled" | "not-taken") {
                return None;
            }
            // §2 "active MedicationRequest or MedicationStatement": current use.
            f.active = status == "active";
            let cc = t.get(El::MedicationCodeableConcept);
            let mut med = if cc.is_some() {
                medication(m, coder, cc, None)
            } else {
                Med::default()
            };
            if let Some(mr) = t.get(El::MedicationReference) {
                let resolved = match str_at(mr, "reference").map(crate::mappings::trim) {
                    Some(id) if id.starts_with('#') => t
                        .get(El::Contained)
                        .and_then(Value::as_array)
                        .and_then(|cs| cs.iter().find(|c| str_at(c, "id") == Some(&id[1..])))
                        .map(|c| medication(m, coder, c.get("code"), c.get("ingredient"))),
                    Some(reference) => meds.resolve(reference),
                    None => None,
                };
                match resolved {
                    Some(x) => {
                        med.codes = med.codes.union(x.codes);
                        med.name = med.name.or(x.name);
                    }
                    None => {
                        // The reference's display may still name the drug; the
                        // reference stays unresolved all the same (§1: never a silent
                        // "not found").
                        if let Some(d) = str_at(mr, "display") {
                            med.codes = med.codes.union(name_sets(m, d));
                            med.name = med.name.or(Some(d));
                        }
                        if f.active {
                            f.unresolved_medication = true;
                        }
                    }
                }
            }
            f.codes = med.codes;
            f.name = med.name;
            named = None;
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
                    if named.is_none() && !sets.is_empty() {
                        named = Some(rc);
                    }
                    f.reason_codes = f.reason_codes.union(sets);
                    f.side = f.side.or(side);
                }
            }
            let (start, start_bad) = first_date(t, &[(El::Period, Some("start"))]);
            let (end, end_bad) = first_date(t, &[(El::Period, Some("end"))]);
            let start = start.filter(|s| !s.is_future(now));
            // §1 Encounters: only in-progress / arrived / triaged / onleave (or no status
            // and no end) is ongoing; an end in the past ends any encounter.
            let may_be_ongoing =
                matches!(status, "in-progress" | "arrived" | "triaged" | "onleave")
                    || (status.is_empty() && end.is_none());
            match end {
                Some(e) if !e.is_future(now) => f.end = Some(e),
                _ if may_be_ongoing => f.ongoing = true,
                _ => {
                    // Finished (or not ongoing) without a usable end: it ended at its
                    // last known date, and the card says so.
                    f.end = start;
                    quality::note(
                        quality,
                        DataQualityCode::EncounterWithoutEnd,
                        Some(f.reference()),
                    );
                }
            }
            // The period as the interval of its date: start to end (to now while
            // ongoing).
            let date = start.or(f.end).map(|s| When {
                end: if f.ongoing {
                    now
                } else {
                    f.end.map_or(s.end, |e| e.end.max(s.start))
                },
                ..s
            });
            (date, start_bad || end_bad)
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
            named = None;
            first_date(t, &[(El::Started, None)])
        }
    };
    if matches!(kind, Kind::Condition | Kind::Observation) && !f.codes.is_empty() {
        apply_body_site(coder, t, &mut f);
    } else if f.side.is_none() && !f.codes.is_empty() {
        f.side = body_sites(m, coder, t).side;
    }
    let relevant = !f.codes.is_empty()
        || !f.component_codes.is_empty()
        || !f.reason_codes.is_empty()
        || f.inpatient
        || f.surgical_category
        || f.unresolved_medication;
    if !relevant {
        // Nothing in the model reads it.
        return None;
    }
    if f.unresolved_medication {
        quality::note(
            quality,
            DataQualityCode::UnresolvedMedication,
            Some(f.reference()),
        );
    }
    if f.name.is_none() {
        f.name = coder.name(named);
    }
    if unreadable {
        quality::note(
            quality,
            DataQualityCode::UnreadableDate,
            Some(f.reference()),
        );
    }
    // §1: future dates are ignored (and noted); partial dates end by recordedDate
    // and now.
    f.date = match date {
        Some(w) if w.is_future(now) => {
            quality::note(quality, DataQualityCode::FutureDate, Some(f.reference()));
            None
        }
        Some(w) => Some(w.clipped(bound.filter(|b| !b.is_future(now)), now)),
        None => None,
    };
    Some(f)
}

/// §1 generic finding + body site, §2 leg-swelling: a generic pain or swelling on a leg
/// site is leg pain or leg swelling; R60.0 / 80068009 count unless a bodySite names
/// another site; M79.89 only with a leg site. The side from the bodySite when the code
/// names none.
fn apply_body_site(coder: &mut Coder<'_, '_>, t: &Elements<'_>, f: &mut Fact<'_>) {
    let m = coder.m;
    let sites = body_sites(m, coder, t);
    if sites.leg {
        if f.codes.contains(CodeSet::GenericPain) {
            f.codes.insert(CodeSet::LegPain);
        }
        if f.codes.contains(CodeSet::GenericSwelling)
            || f.codes.contains(CodeSet::LegSiteOnlySwelling)
        {
            f.codes.insert(CodeSet::LegSwelling);
        }
    }
    if f.codes.contains(CodeSet::LegSwellingUnsited) && !sites.other {
        f.codes.insert(CodeSet::LegSwelling);
    }
    f.side = f.side.or(sites.side);
}

/// §1 Deceased: `deceasedBoolean` true, or a readable `deceasedDateTime` at or before now.
/// One rule for the assessment (rule 2) and the audit's living-adult count.
pub fn deceased_at(boolean: Option<bool>, date_time: Option<&str>, now: DateTime<Utc>) -> bool {
    boolean == Some(true)
        || date_time
            .and_then(parse_when)
            .is_some_and(|w| !w.is_future(now))
}

/// Whole years from `birth` to `now` (§4 rule 2, §5 age-adjusted thresholds).
pub fn age_at(birth: NaiveDate, now: DateTime<Utc>) -> Option<u32> {
    use chrono::Datelike;
    let today = now.date_naive();
    let mut years = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
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
            assert_eq!(parse_when(s).map(|w| w.start), chrono, "{s}");
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

    #[test]
    fn partial_dates_are_intervals_clipped_by_recorded_date_and_now() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // (written, first day, last day before clipping)
        for (s, first, last) in [
            ("2026", "2026-01-01", "2026-12-31"),
            ("2024-02", "2024-02-01", "2024-02-29"),
            ("2026-12", "2026-12-01", "2026-12-31"),
            ("2026-11-05", "2026-11-05", "2026-11-05"),
        ] {
            let w = parse_when(s).unwrap();
            assert_eq!((w.date(), w.last_date()), (day(first), day(last)), "{s}");
            assert_eq!(w.written, s);
        }
        assert!(parse_when("2026-13").is_none());
        // Never after now; never after recordedDate; never before its own start.
        let w = parse_when("2026").unwrap().clipped(None, now());
        assert_eq!(w.end, now());
        let rec = parse_when("2026-03-02").unwrap();
        let w = parse_when("2026").unwrap().clipped(Some(rec), now());
        assert_eq!(w.last_date(), day("2026-03-02"));
        let w = parse_when("2026-11")
            .unwrap()
            .clipped(Some(parse_when("2020").unwrap()), now());
        assert_eq!(w.end, w.start);
        // A month partly in the future is not a future date; a later year is.
        assert!(!parse_when("2026-11").unwrap().is_future(now()));
        assert!(parse_when("2027").unwrap().is_future(now()));
    }

    #[test]
    fn raising_windows_take_any_part_suppressing_windows_the_whole() {
        // Now 2026-11-20; 14 days reach back to 2026-11-06.
        let w = parse_when("2026-11").unwrap().clipped(None, now());
        assert!(w.within_days(now(), 14));
        assert!(!w.wholly_within_days(now(), 14));
        assert!(w.wholly_within_days(now(), 19));
        assert!(!w.wholly_within_days(now(), 18));
        let w = parse_when("2026-10").unwrap().clipped(None, now());
        assert!(!w.within_days(now(), 19));
        assert!(w.within_days(now(), 20));
        // An instant: both agree.
        let t = parse_when("2026-11-06T12:00:00Z").unwrap();
        assert!(t.within_days(now(), 14) && t.wholly_within_days(now(), 14));
    }

    #[test]
    fn medication_references_resolve_by_id_path_and_full_url() {
        let mut meds = Meds::default();
        let med = Med {
            codes: CodeSets::default(),
            name: Some("x"),
        };
        meds.by_id.insert("a1", med);
        meds.by_url.insert("urn:uuid:0f3e", med);
        for r in [
            "Medication/a1",
            " Medication/a1 ",
            "https://ehr.example/fhir/Medication/a1",
            "https://ehr.example/fhir/Medication/a1/_history/2",
            "urn:uuid:0f3e",
        ] {
            assert!(meds.resolve(r).is_some(), "{r}");
        }
        meds.by_id.insert("0f3e-11", med);
        assert!(
            meds.resolve("urn:uuid:0f3e-11").is_some(),
            "flattened Bundle: by id"
        );
        for r in ["Medication/a2", "Substance/a1", "a1", "urn:uuid:other", ""] {
            assert!(meds.resolve(r).is_none(), "{r}");
        }
    }
}
