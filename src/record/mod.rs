//! Lenient reading of a patient's FHIR R4 resources ([`resource::Resource`], typed) into
//! the facts the model needs (`dvt-model.md` §1): codes, clinically relevant dates,
//! statuses, sides, values. Everything the assessment reads of a resource is in its
//! [`Fact`]: no module after this one reads the resource itself.
//! Pure. Nothing here fails: a malformed entry is skipped and counted, a resource whose
//! status says it is not true is ignored, a future date is ignored and counted.
//!
//! Resources are not parsed through fhir-sdk types: they are strict where real data is
//! sloppy and silently drop malformed choice elements (`fhir-notes.md`).

pub mod quality;
pub mod resource;

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::Hasher;

use crate::mappings::{CodeSet, CodeSets, FxHasher, Mappings, Side, UCUM, normalise_icd};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use quality::{DataQualityCode, DataQualityNote};
use resource::{
    CodeableConcept, Coding, Component, Field, Ingredient, Period, Quantity, Resource,
    ResourceType, Text,
};

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
        self.start.naive_utc().date()
    }

    /// The last day the date can name.
    pub fn last_date(&self) -> NaiveDate {
        self.end.naive_utc().date()
    }

    /// The whole interval lies after now (§1: future dates are ignored).
    pub fn is_future(&self, now: DateTime<Utc>) -> bool {
        if self.date_only {
            self.date() > now.naive_utc().date()
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
    /// Integer arithmetic on days and seconds: chrono's subtraction of dates and times was
    /// a tenth of an assessment (it runs for every fact in every window).
    fn age_ok(&self, t: DateTime<Utc>, now: &Now, days: u32) -> bool {
        let days = i64::from(days);
        if self.date_only {
            return now.day - day_number(t) <= days;
        }
        let t_nanos = t.timestamp_subsec_nanos();
        if now.nanos >= NANOS || t_nanos >= NANOS {
            // A leap second: chrono's rules for it.
            return now.at - t <= chrono::Duration::days(days);
        }
        // now - t ≤ N days, the nanoseconds' difference being under a second either way.
        let seconds = now.second - t.timestamp();
        let limit = days * 86_400;
        seconds < limit || (seconds == limit && now.nanos <= t_nanos)
    }

    /// §1 "≤ N days", for windows that RAISE a card or a risk factor: some part of the
    /// interval lies within N × 24 h before now (a date: N calendar days).
    pub fn within_days(&self, now: &Now, days: u32) -> bool {
        !self.is_future(now.at) && self.age_ok(self.end.min(now.at), now, days)
    }

    /// §1 "≤ N days", for windows that SUPPRESS or downgrade (`current-dvt`,
    /// `dvt-imaging`): the whole interval lies within the window.
    pub fn wholly_within_days(&self, now: &Now, days: u32) -> bool {
        !self.is_future(now.at) && self.age_ok(self.start, now, days)
    }
}

/// The last second of a day: a date-only interval ends there.
const LAST_SECOND: NaiveTime = match NaiveTime::from_hms_opt(23, 59, 59) {
    Some(t) => t,
    None => panic!("23:59:59 is a time"),
};

/// A second's nanoseconds: at or past it, chrono is in a leap second.
const NANOS: u32 = 1_000_000_000;

/// The calendar day of an instant in UTC, as a number (`naive_utc`, not `date_naive`:
/// the same day, without adding a zero offset).
fn day_number(t: DateTime<Utc>) -> i64 {
    i64::from(t.naive_utc().date().num_days_from_ce())
}

/// The request time (§1) with the day and the second that date windows count back from,
/// worked out once: every fact is checked against several windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub at: DateTime<Utc>,
    day: i64,
    second: i64,
    nanos: u32,
}

impl Now {
    pub fn new(at: DateTime<Utc>) -> Now {
        Now {
            at,
            day: day_number(at),
            second: at.timestamp(),
            nanos: at.timestamp_subsec_nanos(),
        }
    }
}

/// The common instant form `YYYY-MM-DDThh:mm:ssZ`, hand-parsed (chrono's RFC 3339
/// parser was a large share of reading a record, and of the prefetch's date window).
/// Anything else: `None`, and the caller falls back to chrono, so the accepted forms are
/// unchanged.
pub(crate) fn parse_utc_seconds(s: &str) -> Option<DateTime<Utc>> {
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
    Some(Utc.from_utc_datetime(&t))
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
            start: first.and_time(NaiveTime::MIN).and_utc(),
            end: last.and_time(LAST_SECOND).and_utc(),
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
        if let Some(t) = parse_utc_seconds(s) {
            return Some(When::instant(t, s));
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
    /// The kind of fact a resource of this type gives (§1), if any.
    fn from_type(t: &ResourceType) -> Option<Kind> {
        Some(match t {
            ResourceType::Condition => Kind::Condition,
            ResourceType::Observation => Kind::Observation,
            ResourceType::Procedure => Kind::Procedure,
            ResourceType::MedicationRequest => Kind::MedicationRequest,
            ResourceType::MedicationStatement => Kind::MedicationStatement,
            ResourceType::Encounter => Kind::Encounter,
            ResourceType::ServiceRequest => Kind::ServiceRequest,
            ResourceType::DiagnosticReport => Kind::DiagnosticReport,
            ResourceType::ImagingStudy => Kind::ImagingStudy,
            // Read for what facts refer to (a Medication, the Patient), or not at all.
            ResourceType::Bundle
            | ResourceType::Medication
            | ResourceType::OperationOutcome
            | ResourceType::Patient
            | ResourceType::Other(_) => return None,
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
    /// Observation: its `valueQuantity` (§1 vital signs, §2 d-dimer); see [`Fact::measure`].
    pub value: Measure<'a>,
    /// Observation: its components (§1 panels), read by [`Fact::measure`].
    components: &'a [Component],
    /// Observation: what its coded value says of pregnancy (§2 pregnancy status:
    /// `pregnant-value` positive, `not-pregnant-value` negative).
    pub pregnancy_value: Option<Qualitative>,
    /// Observation: its qualitative result (§2 hCG): `positive-values`, "positive",
    /// "detected"; `absent-values`, "negative", "not detected".
    pub qualitative: Option<Qualitative>,
    /// ServiceRequest, DiagnosticReport, ImagingStudy: a bodySite or reasonCode names an
    /// upper limb (§2 dvt-imaging is of the legs).
    pub upper_limb_site: bool,
    /// Condition with a cancer code: every cancer coding is ICD-10-CM Z85 (history), which
    /// is not active cancer (§2 active-cancer).
    pub cancer_only_z85: bool,
    /// Condition with a first-trimester code: the weeks of gestation a Z3A.NN coding names
    /// (lower bound; Z3A.01, "< 8 weeks": 0); `None` without one (§4 rule 4 LEFt).
    pub gestation_weeks: Option<i64>,
}

impl<'a> Fact<'a> {
    fn new(kind: Kind, id: &'a str) -> Fact<'a> {
        Fact {
            kind,
            id,
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
            value: Measure::default(),
            components: &[],
            pregnancy_value: None,
            qualitative: None,
            upper_limb_site: false,
            cancer_only_z85: false,
            gestation_weeks: None,
        }
    }

    /// `Condition/7` (the card's evidence).
    pub fn reference(&self) -> String {
        reference(self.kind, self.id)
    }

    /// The measure of `set` (§1 panels): the Observation's own value when its code is in
    /// the set, else the value of its first component whose code is; `None` when
    /// neither is.
    pub fn measure(&self, m: &Mappings, set: CodeSet) -> Option<Measure<'a>> {
        if self.codes.contains(set) {
            return Some(self.value);
        }
        self.components
            .iter()
            .find(|c| concept_codes(m, c.code.get()).0.contains(set))
            .map(|c| Measure::of(c.value_quantity.get()))
    }
}

/// A `valueQuantity` as recorded: what §1 vital signs and §2 d-dimer read of it (the
/// unit conversion is theirs). All `None` when the quantity is absent or not an object.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measure<'a> {
    pub value: Option<f64>,
    /// The UCUM code when the system is UCUM (or absent), else the unit text; trimmed.
    pub unit: Option<&'a str>,
    pub comparator: Option<&'a str>,
}

impl<'a> Measure<'a> {
    fn of(q: Option<&'a Quantity>) -> Measure<'a> {
        let Some(q) = q else {
            return Measure::default();
        };
        let code = q.code.as_str().filter(|_| {
            q.system
                .as_str()
                .is_none_or(|s| crate::mappings::trim(s) == UCUM)
        });
        Measure {
            value: q.value.get().copied(),
            unit: code.or(q.unit.as_str()).map(str::trim),
            comparator: q.comparator.as_str(),
        }
    }
}

/// What a qualitative value says of the thing observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualitative {
    Positive,
    Negative,
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

/// The elements whose JSON type the model relies on have it: `code` an object whose
/// `coding` is an array, `subject` / `clinicalStatus` / `verificationStatus` objects,
/// `status` / `id` strings, `component` / `reasonCode` arrays (§1: else the resource is
/// malformed, skipped and counted).
fn well_formed(r: &Resource) -> bool {
    let code = match &r.code {
        Field::Absent => true,
        Field::Invalid => false,
        Field::Value(c) => !c.coding.is_invalid(),
    };
    code && !r.subject.is_invalid()
        && !r.condition.clinical_status.is_invalid()
        && !r.condition.verification_status.is_invalid()
        && !r.status.is_invalid()
        && !r.id.is_invalid()
        && !r.observation.component.is_invalid()
        && !r.event.reason_code.is_invalid()
}

/// A Coding's (system, code), when both are strings.
fn system_code(c: &Coding) -> Option<(&str, &str)> {
    Some((c.system.as_str()?, c.code.as_str()?))
}

/// The codes of a CodeableConcept: code sets and side.
pub fn concept_codes(m: &Mappings, cc: Option<&CodeableConcept>) -> (CodeSets, Option<Side>) {
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

/// The codings of a CodeableConcept (none when there is none).
fn codings(cc: Option<&CodeableConcept>) -> &[Coding] {
    cc.map_or(&[], CodeableConcept::codings)
}

/// The union of `classify(system, code)` over a CodeableConcept's codings, and the first
/// side any of them names.
fn fold_codings<'a>(
    cc: Option<&'a CodeableConcept>,
    mut classify: impl FnMut(&'a str, &'a str) -> Classified,
) -> (CodeSets, Option<Side>) {
    let mut sets = CodeSets::default();
    let mut side = None;
    for (sys, code) in codings(cc).iter().filter_map(system_code) {
        let (these, this_side) = classify(sys, code);
        sets = sets.union(these);
        side = side.or(this_side);
    }
    (sets, side)
}

/// A coding's code sets, and the side its code names when the model uses it.
type Classified = (CodeSets, Option<Side>);

/// Classifies codings against the mappings, remembering recent classifications in a
/// fixed table of [`Coder::SLOTS`] slots, each holding the last (system, code) whose hash
/// chose it. A record repeats its codes (vitals panels, encounter types, one problem
/// coded again at each visit), and a classification is several lookups in the mappings'
/// tables (the system, the code, each ICD-10-CM root length, the ranges, the side): the
/// assessment bench spent a third of its time there. A slot is overwritten, never
/// chained, so no input can make a lookup cost more than one hash, one comparison and the
/// classification itself (a keyed-hash map that grows with the request was slower: 162
/// µs against 116 µs without it).
struct Coder<'m, 'a> {
    m: &'m Mappings,
    recent: Box<[Cell<Option<Remembered<'a>>>]>,
}

/// One slot of [`Coder`]'s table.
#[derive(Clone, Copy)]
struct Remembered<'a> {
    system: &'a str,
    code: &'a str,
    classified: Classified,
}

impl<'m, 'a> Coder<'m, 'a> {
    /// A power of two: the slot is the hash's top bits.
    const SLOTS: usize = 256;

    fn new(m: &'m Mappings) -> Self {
        Coder {
            m,
            recent: vec![Cell::new(None); Self::SLOTS].into_boxed_slice(),
        }
    }

    /// The slot of a (system, code) pair: from the code's first and last bytes and length,
    /// and its system's last bytes and length (where the systems the model uses differ).
    fn slot(sys: &str, code: &str) -> usize {
        let mut h = FxHasher::default();
        h.write_u64(ends(code.as_bytes()));
        h.write_u64(ends(sys.as_bytes()));
        h.write_u64((code.len() as u64) << 32 | sys.len() as u64);
        (h.finish() >> (u64::BITS - Self::SLOTS.trailing_zeros())) as usize
    }

    fn classify(&self, sys: &'a str, code: &'a str) -> Classified {
        let slot = &self.recent[Self::slot(sys, code)];
        if let Some(r) = slot.get()
            && resource::same_text(r.code, code)
            && resource::same_text(r.system, sys)
        {
            return r.classified;
        }
        let classified = classify_coding(self.m, sys, code);
        slot.set(Some(Remembered {
            system: sys,
            code,
            classified,
        }));
        classified
    }

    /// [`concept_codes`].
    fn codes(&self, cc: Option<&'a CodeableConcept>) -> (CodeSets, Option<Side>) {
        fold_codings(cc, |sys, code| self.classify(sys, code))
    }

    /// What the card calls a CodeableConcept (v2 Evidence.name): the display of a coding
    /// the model matched, else its text, else any coding's display.
    fn name(&self, cc: Option<&'a CodeableConcept>) -> Option<&'a str> {
        let cc = cc?;
        for c in cc.codings() {
            // The display first: a coding without one needs no classification.
            if let Some(d) = c.display.as_str()
                && let Some((s, k)) = system_code(c)
                && !self.classify(s, k).0.is_empty()
            {
                return Some(d);
            }
        }
        cc.text.as_str().or_else(|| displays(Some(cc)).next())
    }
}

/// A word from a text's first and last bytes (up to eight of each), for [`Coder::slot`].
fn ends(b: &[u8]) -> u64 {
    if let (Some(first), Some(last)) = (b.first_chunk::<8>(), b.last_chunk::<8>()) {
        u64::from_le_bytes(*first) ^ u64::from_le_bytes(*last).rotate_left(29)
    } else if let (Some(first), Some(last)) = (b.first_chunk::<4>(), b.last_chunk::<4>()) {
        u64::from(u32::from_le_bytes(*first)) | u64::from(u32::from_le_bytes(*last)) << 32
    } else {
        b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x))
    }
}

/// Does any coding of this CodeableConcept have one of these codes (system + code)?
pub fn has_coding(cc: Option<&CodeableConcept>, list: &[crate::mappings::SimpleCoding]) -> bool {
    codings(cc)
        .iter()
        .filter_map(system_code)
        .any(|(s, k)| list.iter().any(|l| l.matches(s, k)))
}

/// The first code of a status CodeableConcept's codings, trimmed.
fn status_code(codings: &[Coding]) -> Option<&str> {
    codings
        .iter()
        .find_map(|c| c.code.as_str())
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

/// The sides a laterality qualifier or sided structure names, from codings.
fn coded_side(m: &Mappings, codings: &[Coding]) -> Option<Side> {
    codings
        .iter()
        .filter_map(system_code)
        .find_map(|(s, k)| m.body_site_side(s, k).or_else(|| m.icd_side(s, k)))
}

fn body_sites(m: &Mappings, r: &Resource) -> BodySites {
    let mut out = BodySites::default();
    for site in r.body_site.all() {
        let mut leg = false;
        let mut named = false;
        for (s, k) in site.codings().iter().filter_map(system_code) {
            if m.classify(s, k).contains(CodeSet::LegSite) {
                leg = true;
            } else if m.body_site_side(s, k).is_none() {
                // A laterality qualifier alone names no site.
                named = true;
            }
        }
        out.leg |= leg;
        out.other |= named && !leg;
        // §2 laterality: a sided structure or qualifier in the codings, or the
        // bodySite's laterality extension.
        let ext_side = site
            .extension
            .items()
            .iter()
            .filter(|x| {
                x.url
                    .as_str()
                    .is_some_and(|u| u.to_ascii_lowercase().contains("laterality"))
            })
            .find_map(|x| {
                let value = x.value_codeable_concept.get()?;
                coded_side(m, value.coding.items())
            });
        out.side = out.side.or(coded_side(m, site.codings())).or(ext_side);
    }
    out
}

/// A date candidate that is not there (a period's start or end when the period is not
/// an object).
static ABSENT: Field<Text> = Field::Absent;

fn period_start(p: &Field<Period>) -> &Field<Text> {
    p.get().map_or(&ABSENT, |p| &p.start)
}

fn period_end(p: &Field<Period>) -> &Field<Text> {
    p.get().map_or(&ABSENT, |p| &p.end)
}

/// A date and whether a present candidate could not be read (§1 unreadable dates).
type Dated<'a> = (Option<When<'a>>, bool);

/// Reads the first readable candidate date (§1 order); also says whether a present
/// candidate could not be read (not a string, or not a date).
fn first_date<'a>(candidates: &[&'a Field<Text>]) -> Dated<'a> {
    let mut unreadable = false;
    for c in candidates {
        match c {
            Field::Absent => {}
            Field::Invalid => unreadable = true,
            Field::Value(s) => match parse_when(s) {
                Some(w) => return (Some(w), unreadable),
                None => unreadable = true,
            },
        }
    }
    (None, unreadable)
}

/// The id of a reference in the common form `Patient/<id>` (one segment, not
/// `_history`), read at once; `None` for any other form, which its reader then walks
/// (both readers of a patient reference take this path first).
pub(crate) fn plain_patient_id(reference: &str) -> Option<&str> {
    reference
        .strip_prefix("Patient/")
        .filter(|id| !id.as_bytes().contains(&b'/') && *id != "_history")
}

/// The patient id a `subject` / `patient` reference names, if it names one.
fn referenced_patient(r: &Resource) -> Option<&str> {
    const PATIENT: &[u8] = b"Patient/";
    let reference = [&r.subject, &r.patient]
        .iter()
        .find_map(|f| f.get().and_then(|s| s.reference.as_str()))?;
    if let Some(id) = plain_patient_id(reference) {
        return Some(id);
    }
    // A byte search: `str::rfind` builds a two-way searcher per call (measured).
    let idx = reference
        .as_bytes()
        .windows(PATIENT.len())
        .rposition(|w| w == PATIENT)?;
    let rest = &reference[idx + PATIENT.len()..];
    // Up to a `/_history/...` (a byte loop: `split` builds a searcher per call).
    Some(
        rest.bytes()
            .position(|b| b == b'/')
            .map_or(rest, |end| &rest[..end]),
    )
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
    coder: &Coder<'_, 'a>,
    code: Option<&'a CodeableConcept>,
    ingredients: &'a [Ingredient],
) -> Med<'a> {
    let mut codes = coder.codes(code).0;
    for i in ingredients {
        codes = codes.union(coder.codes(i.item_codeable_concept.get()).0);
    }
    let text = code.and_then(|c| c.text.as_str());
    if codes.is_empty() {
        for t in text.into_iter().chain(displays(code)) {
            codes = codes.union(name_sets(coder.m, t));
        }
    }
    let name = text.or_else(|| coder.name(code));
    Med { codes, name }
}

/// The displays of a CodeableConcept's codings.
fn displays(cc: Option<&CodeableConcept>) -> impl Iterator<Item = &str> {
    codings(cc).iter().filter_map(|c| c.display.as_str())
}

/// Read a patient's resources (`dvt-model.md` §1).
pub fn read<'a>(
    m: &Mappings,
    patient_id: &str,
    resources: &'a [Box<Resource>],
    now: DateTime<Utc>,
) -> Record<'a> {
    let mut rec = Record::default();
    let mut all: Vec<(&'a Resource, Option<&'a str>)> = Vec::with_capacity(resources.len());
    for r in resources {
        resource::flatten(&**r, None, &mut rec.notes.malformed, &mut |r, url| {
            all.push((r, url))
        });
    }

    let coder = Coder::new(m);
    let (meds, patient) = medications_and_patient(&coder, patient_id, &all);
    read_patient(&mut rec, patient, now);

    rec.facts.reserve(all.len());
    for &(r, _) in &all {
        let Some(rt) = r.resource_type() else {
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
        if let Some(pid) = referenced_patient(r)
            && !patient_id.is_empty()
            && pid != patient_id
        {
            rec.notes.other_patient += 1;
            continue;
        }
        // Read where it is kept: a fact is a few hundred bytes, and moving each one out
        // of its reader and into the list took 4 % of an assessment's instructions and
        // more of its time.
        let at = rec.facts.len();
        rec.facts.push(Fact::new(kind, r.id().unwrap_or("")));
        if read_one(&coder, r, &mut rec.facts[at], &meds, &mut rec.quality, now).is_none() {
            rec.facts.pop();
        }
    }
    rec
}

/// The Medications (referenced by MedicationRequest / Statement), and the context's
/// Patient: the one with its id, or the only one when the context names none (another
/// Patient's birthDate must not give the age).
fn medications_and_patient<'a>(
    coder: &Coder<'_, 'a>,
    patient_id: &str,
    all: &[(&'a Resource, Option<&'a str>)],
) -> (Meds<'a>, Option<&'a Resource>) {
    let mut meds = Meds::default();
    let mut patient: Option<&'a Resource> = None;
    let mut patients = 0;
    for &(r, full_url) in all {
        match r.resource_type() {
            Some(ResourceType::Medication) => {
                let med = medication(coder, r.code.get(), r.medication.ingredient.items());
                if let Some(id) = r.id() {
                    meds.by_id.insert(crate::mappings::trim(id), med);
                }
                if let Some(url) = full_url {
                    meds.by_url.insert(crate::mappings::trim(url), med);
                }
            }
            Some(ResourceType::Patient) => {
                patients += 1;
                if r.id() == Some(patient_id) || patient.is_none() {
                    patient = Some(r);
                }
            }
            _ => {}
        }
    }
    let patient =
        patient.filter(|p| p.id() == Some(patient_id) || (patient_id.is_empty() && patients == 1));
    (meds, patient)
}

/// The Patient's birth date and death (§1 Deceased, §4 rule 2).
fn read_patient(rec: &mut Record<'_>, patient: Option<&Resource>, now: DateTime<Utc>) {
    if let Some(p) = patient {
        match p.person.birth_date.as_str().map(parse_when) {
            Some(Some(w)) if !w.is_future(now) => rec.birth_date = Some(w.date()),
            Some(_) => rec.notes.birth_date_unreadable = true,
            None => {}
        }
        // §1 Deceased: deceasedBoolean true, or deceasedDateTime ≤ now.
        rec.deceased = deceased_at(
            p.person.deceased_boolean.get().copied(),
            p.person.deceased_date_time.as_str(),
            now,
        );
    } else {
        rec.notes.no_patient = true;
    }
    if rec.birth_date.is_none() {
        // §4 rule 2 / §5: unknown age counts as adult, fixed thresholds; say so.
        let r = patient.map(|p| format!("Patient/{}", p.id().unwrap_or("")));
        quality::note(&mut rec.quality, DataQualityCode::UnknownAge, r);
    }
}

/// §1 Active Condition: an `abatement[x]` in the past ends it. A dated abatement
/// counts once any part of it is not in the future; an undated one (Age, Range, String,
/// `abatementBoolean` true) says it has abated.
fn abated(r: &Resource, now: DateTime<Utc>) -> bool {
    let dated = first_date(&[
        &r.condition.abatement_date_time,
        period_start(&r.condition.abatement_period),
        period_end(&r.condition.abatement_period),
    ])
    .0;
    if let Some(w) = dated {
        return !w.is_future(now);
    }
    r.condition.abatement_age.is_present()
        || r.condition.abatement_range.is_present()
        || r.condition.abatement_string.is_present()
        || r.condition.abatement_boolean.get() == Some(&true)
}

/// §1 Symptom Observations: the value says the symptom is absent.
fn says_absent(m: &Mappings, r: &Resource) -> bool {
    let rules = &m.model.record;
    if r.observation.value_boolean.get() == Some(&false)
        || has_coding(
            r.observation.value_codeable_concept.get(),
            &rules.absent_values,
        )
        || r.observation.data_absent_reason.is_present()
    {
        return true;
    }
    if let Some(s) = r.observation.value_string.as_str() {
        let s = s.trim().trim_end_matches(['.', '!']).trim();
        if rules.absent_words.iter().any(|w| w.eq_ignore_ascii_case(s)) {
            return true;
        }
    }
    // interpretation NEG (v3 ObservationInterpretation), in any of its codings.
    r.observation.interpretation.all().iter().any(|cc| {
        cc.codings()
            .iter()
            .any(|c| c.code.as_str().is_some_and(|k| k.trim() == "NEG"))
    })
}

/// §2 pregnancy: what a pregnancy-status Observation's coded value says.
fn pregnancy_value(m: &Mappings, r: &Resource) -> Option<Qualitative> {
    let value = r.observation.value_codeable_concept.get();
    let rules = &m.model.record;
    if has_coding(value, std::slice::from_ref(&rules.pregnant_value)) {
        Some(Qualitative::Positive)
    } else if has_coding(value, std::slice::from_ref(&rules.not_pregnant_value)) {
        Some(Qualitative::Negative)
    } else {
        None
    }
}

/// A qualitative test's value: positive (`positive-values`, or the text "positive" /
/// "detected"), negative (`absent-values`, or "negative" / "not detected"), or neither.
fn qualitative(m: &Mappings, r: &Resource) -> Option<Qualitative> {
    let value = r.observation.value_codeable_concept.get();
    let rules = &m.model.record;
    if has_coding(value, &rules.positive_values) {
        return Some(Qualitative::Positive);
    }
    if has_coding(value, &rules.absent_values) {
        return Some(Qualitative::Negative);
    }
    let s = r.observation.value_string.as_str()?.trim();
    if s.eq_ignore_ascii_case("positive") || s.eq_ignore_ascii_case("detected") {
        Some(Qualitative::Positive)
    } else if s.eq_ignore_ascii_case("negative") || s.eq_ignore_ascii_case("not detected") {
        Some(Qualitative::Negative)
    } else {
        None
    }
}

/// Does this code name a cancer only through Z85 (history)? The data excludes Z85 from
/// the cancer set; this keeps the rule when a site's data does not (§2 active-cancer).
fn only_z85<'a>(coder: &Coder<'_, 'a>, code: Option<&'a CodeableConcept>) -> bool {
    let m = coder.m;
    let mut any_other = false;
    for (s, k) in codings(code).iter().filter_map(system_code) {
        if !coder.classify(s, k).0.contains(CodeSet::Cancer) {
            continue;
        }
        let mut buf = [0u8; 16];
        let z85 = m.is_icd10cm(s)
            && normalise_icd(k, &mut buf).is_some_and(|n| n >= 3 && &buf[..3] == b"Z85");
        if !z85 {
            any_other = true;
        }
    }
    !any_other
}

/// §4 rule 4 LEFt "first trimester": the weeks of gestation the last Z3A.NN coding names
/// (a lower bound: Z3A.01 is "less than 8 weeks", 0).
fn gestation_weeks(m: &Mappings, code: Option<&CodeableConcept>) -> Option<i64> {
    let mut weeks = None;
    for (s, k) in codings(code).iter().filter_map(system_code) {
        let mut buf = [0u8; 16];
        if m.is_icd10cm(s)
            && let Some(n) = normalise_icd(k, &mut buf)
            && n == 5
            && &buf[..3] == b"Z3A"
            && let Ok(nn) = std::str::from_utf8(&buf[3..5]).unwrap_or("").parse::<i64>()
        {
            weeks = Some(if nn == 1 { 0 } else { nn });
        }
    }
    weeks
}

/// §1 Conditions: status, codes, onset (else recordedDate). `None`: not true.
fn read_condition<'a>(
    coder: &Coder<'_, 'a>,
    r: &'a Resource,
    f: &mut Fact<'a>,
    bound: &mut Option<When<'a>>,
    now: DateTime<Utc>,
) -> Option<Dated<'a>> {
    // §1: verificationStatus entered-in-error / refuted are not true.
    let verification = r
        .condition
        .verification_status
        .get()
        .map_or(&[][..], |c| c.codings());
    if matches!(
        status_code(verification),
        Some("entered-in-error" | "refuted")
    ) {
        return None;
    }
    let code = r.code.get();
    (f.codes, f.side) = coder.codes(code);
    if f.codes.is_empty() {
        // Nothing in the model reads it: its dates are not read either.
        return None;
    }
    // §1 active: active, recurrence, relapse, or no clinicalStatus; an abatement in the
    // past ends it.
    f.active = match &r.condition.clinical_status {
        Field::Absent => true,
        // Not an object: the resource is malformed and never read.
        Field::Invalid => false,
        Field::Value(cs) => matches!(
            status_code(cs.codings()),
            Some("active" | "recurrence" | "relapse")
        ),
    } && !abated(r, now);
    if f.codes.contains(CodeSet::Cancer) {
        f.cancer_only_z85 = only_z85(coder, code);
    }
    if f.codes.contains(CodeSet::FirstTrimester) {
        f.gestation_weeks = gestation_weeks(coder.m, code);
    }
    *bound = first_date(&[&r.condition.recorded_date]).0;
    let onset = first_date(&[
        &r.condition.onset_date_time,
        period_start(&r.condition.onset_period),
    ]);
    f.onset_unusable = onset.0.is_none()
        && (r.condition.onset_date_time.is_present()
            || r.condition.onset_period.is_present()
            || r.condition.onset_age.is_present()
            || r.condition.onset_string.is_present()
            || r.condition.onset_range.is_present());
    Some(match onset {
        (Some(w), bad) => (Some(w), bad),
        // §1: onset Age is ignored; recordedDate then.
        (None, bad) => (*bound, bad),
    })
}

/// §1 Observations: codes (a symptom question: its value's), absence, components,
/// values. `None`: not true.
fn read_observation<'a>(
    coder: &Coder<'_, 'a>,
    r: &'a Resource,
    f: &mut Fact<'a>,
    named: &mut Option<&'a CodeableConcept>,
    status: &str,
) -> Option<Dated<'a>> {
    if matches!(status, "entered-in-error" | "cancelled") {
        return None;
    }
    let m = coder.m;
    (f.codes, f.side) = coder.codes(r.code.get());
    if f.codes.contains(CodeSet::SymptomQuestion) {
        // §1: an Observation whose VALUE is a symptom concept is that symptom,
        // present (LOINC 75325-1 Symptom, 8661-1 Chief complaint).
        let value = r.observation.value_codeable_concept.get();
        (f.codes, f.side) = coder.codes(value);
        *named = value;
    } else {
        f.absent = says_absent(m, r);
    }
    f.components = r.observation.component.items();
    for c in f.components {
        f.component_codes = f.component_codes.union(coder.codes(c.code.get()).0);
    }
    if f.codes.is_empty() && f.component_codes.is_empty() {
        // Nothing in the model reads it: its value and dates are not read either.
        return None;
    }
    f.value = Measure::of(r.observation.value_quantity.get());
    f.pregnancy_value = pregnancy_value(m, r);
    f.qualitative = qualitative(m, r);
    Some(first_date(&[
        &r.observation.effective_date_time,
        period_start(&r.observation.effective_period),
        &r.observation.effective_instant,
        &r.observation.issued,
    ]))
}

/// §1 Medications: status, the medication (coded, contained, referenced or named), and
/// the date. `None`: never given.
fn read_medication<'a>(
    coder: &Coder<'_, 'a>,
    r: &'a Resource,
    f: &mut Fact<'a>,
    meds: &Meds<'a>,
    status: &str,
) -> Option<Dated<'a>> {
    // §1: entered-in-error / cancelled / not-taken were never given; stopped and
    // completed are not current use but still say a treatment was given
    // (§2 active-cancer treatment).
    if matches!(status, "entered-in-error" | "cancelled" | "not-taken") {
        return None;
    }
    // §2 "active MedicationRequest or MedicationStatement": current use.
    f.active = status == "active";
    let mut med = match r.medication.medication_codeable_concept.get() {
        Some(cc) => medication(coder, Some(cc), &[]),
        None => Med::default(),
    };
    // Present in any JSON type: a reference to resolve (§1: never a silent "not found").
    if r.medication.medication_reference.is_present() {
        let reference = r.medication.medication_reference.get();
        let resolved = match reference
            .and_then(|mr| mr.reference.as_str())
            .map(crate::mappings::trim)
        {
            Some(id) if id.starts_with('#') => r
                .medication
                .contained
                .items()
                .iter()
                .find(|c| c.id() == Some(&id[1..]))
                .map(|c| medication(coder, c.code.get(), c.medication.ingredient.items())),
            Some(reference) => meds.resolve(reference),
            None => None,
        };
        match resolved {
            Some(x) => {
                med.codes = med.codes.union(x.codes);
                med.name = med.name.or(x.name);
            }
            None => {
                // The reference's display may still name the drug; the reference stays
                // unresolved all the same (§1: never a silent "not found").
                if let Some(d) = reference.and_then(|mr| mr.display.as_str()) {
                    med.codes = med.codes.union(name_sets(coder.m, d));
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
    Some(if f.kind == Kind::MedicationRequest {
        first_date(&[&r.medication.authored_on])
    } else {
        first_date(&[
            &r.observation.effective_date_time,
            period_start(&r.observation.effective_period),
            &r.medication.date_asserted,
        ])
    })
}

/// §1 Encounters: class, reasons, period; ongoing or ended. `None`: never happened.
fn read_encounter<'a>(
    coder: &Coder<'_, 'a>,
    r: &'a Resource,
    f: &mut Fact<'a>,
    named: &mut Option<&'a CodeableConcept>,
    status: &str,
    quality: &mut Vec<DataQualityNote>,
    now: DateTime<Utc>,
) -> Option<Dated<'a>> {
    if matches!(status, "entered-in-error" | "cancelled" | "planned") {
        return None;
    }
    let class = r.event.class.get();
    let class_code = class
        .and_then(|c| c.code.as_str())
        .or_else(|| class.and_then(|c| status_code(c.coding.items())))
        .map(crate::mappings::trim);
    let inpatient = &coder.m.model.record.inpatient_classes;
    f.inpatient = class_code.is_some_and(|c| inpatient.iter().any(|k| k == c));
    for rc in r.event.reason_code.items() {
        let (sets, side) = coder.codes(Some(rc));
        if named.is_none() && !sets.is_empty() {
            *named = Some(rc);
        }
        f.reason_codes = f.reason_codes.union(sets);
        f.side = f.side.or(side);
    }
    let (start, start_bad) = first_date(&[period_start(&r.event.period)]);
    let (end, end_bad) = first_date(&[period_end(&r.event.period)]);
    let start = start.filter(|s| !s.is_future(now));
    // §1 Encounters: only in-progress / arrived / triaged / onleave (or no status and no
    // end) is ongoing; an end in the past ends any encounter.
    let may_be_ongoing = matches!(status, "in-progress" | "arrived" | "triaged" | "onleave")
        || (status.is_empty() && end.is_none());
    match end {
        Some(e) if !e.is_future(now) => f.end = Some(e),
        _ if may_be_ongoing => f.ongoing = true,
        _ => {
            // Finished (or not ongoing) without a usable end: it ended at its last known
            // date, and the card says so.
            f.end = start;
            quality::note(
                quality,
                DataQualityCode::EncounterWithoutEnd,
                Some(f.reference()),
            );
        }
    }
    // The period as the interval of its date: start to end (to now while ongoing).
    let date = start.or(f.end).map(|s| When {
        end: if f.ongoing {
            now
        } else {
            f.end.map_or(s.end, |e| e.end.max(s.start))
        },
        ..s
    });
    Some((date, start_bad || end_bad))
}

/// §2 dvt-imaging is of the legs: does a bodySite or reasonCode name an upper limb?
fn names_upper_limb<'a>(coder: &Coder<'_, 'a>, r: &'a Resource) -> bool {
    r.body_site
        .all()
        .iter()
        .chain(r.event.reason_code.items())
        .any(|cc| coder.codes(Some(cc)).0.contains(CodeSet::UpperLimbSite))
}

/// §1 Procedures: completed / in-progress; code or surgery category. `None`: not done.
fn read_procedure<'a>(
    coder: &Coder<'_, 'a>,
    r: &'a Resource,
    f: &mut Fact<'a>,
    status: &str,
) -> Option<Dated<'a>> {
    if matches!(status, "entered-in-error" | "not-done") {
        return None;
    }
    f.active = matches!(status, "completed" | "in-progress");
    (f.codes, f.side) = coder.codes(r.code.get());
    let surgery = &coder.m.model.record.surgery_categories;
    f.surgical_category = r
        .category
        .all()
        .iter()
        .any(|c| has_coding(Some(c), surgery));
    Some(first_date(&[
        &r.event.performed_date_time,
        period_end(&r.event.performed_period),
        period_start(&r.event.performed_period),
    ]))
}

/// §1 ServiceRequests: active / completed (§2 dvt-imaging). `None`: not true.
fn read_service_request<'a>(
    coder: &Coder<'_, 'a>,
    r: &'a Resource,
    f: &mut Fact<'a>,
    status: &str,
) -> Option<Dated<'a>> {
    if matches!(status, "entered-in-error" | "revoked") {
        return None;
    }
    f.active = matches!(status, "active" | "completed");
    (f.codes, f.side) = coder.codes(r.code.get());
    f.upper_limb_site = names_upper_limb(coder, r);
    Some(first_date(&[&r.medication.authored_on]))
}

/// §1 DiagnosticReports (§2 dvt-imaging). `None`: not true.
fn read_report<'a>(
    coder: &Coder<'_, 'a>,
    r: &'a Resource,
    f: &mut Fact<'a>,
    status: &str,
) -> Option<Dated<'a>> {
    if matches!(status, "entered-in-error" | "cancelled") {
        return None;
    }
    (f.codes, f.side) = coder.codes(r.code.get());
    f.upper_limb_site = names_upper_limb(coder, r);
    Some(first_date(&[
        &r.observation.effective_date_time,
        period_start(&r.observation.effective_period),
        &r.observation.issued,
    ]))
}

/// §1 ImagingStudies: their procedure codes (§2 dvt-imaging). `None`: not true.
fn read_imaging_study<'a>(
    coder: &Coder<'_, 'a>,
    r: &'a Resource,
    f: &mut Fact<'a>,
    status: &str,
) -> Option<Dated<'a>> {
    if matches!(status, "entered-in-error" | "cancelled") {
        return None;
    }
    for c in r.event.procedure_code.items() {
        f.codes = f.codes.union(coder.codes(Some(c)).0);
    }
    f.upper_limb_site = names_upper_limb(coder, r);
    Some(first_date(&[&r.medication.started]))
}

/// Read resource `r` into `f`, its fact (§1, §2): `None` when it is not usable or nothing
/// in the model reads it.
fn read_one<'a>(
    coder: &Coder<'_, 'a>,
    r: &'a Resource,
    f: &mut Fact<'a>,
    meds: &Meds<'a>,
    quality: &mut Vec<DataQualityNote>,
    now: DateTime<Utc>,
) -> Option<()> {
    let status = r.status.as_str().map(crate::mappings::trim).unwrap_or("");
    let kind = f.kind;
    // The CodeableConcept whose matched coding names the evidence.
    let mut named: Option<&'a CodeableConcept> = r.code.get();
    // §1 partial dates end no later than recordedDate.
    let mut bound: Option<When<'a>> = None;
    let (date, unreadable) = match kind {
        Kind::Condition => read_condition(coder, r, f, &mut bound, now)?,
        Kind::Observation => read_observation(coder, r, f, &mut named, status)?,
        Kind::MedicationRequest | Kind::MedicationStatement => {
            named = None;
            read_medication(coder, r, f, meds, status)?
        }
        Kind::Encounter => read_encounter(coder, r, f, &mut named, status, quality, now)?,
        Kind::Procedure => read_procedure(coder, r, f, status)?,
        Kind::ServiceRequest => read_service_request(coder, r, f, status)?,
        Kind::DiagnosticReport => read_report(coder, r, f, status)?,
        Kind::ImagingStudy => {
            named = None;
            read_imaging_study(coder, r, f, status)?
        }
    };
    let m = coder.m;
    if matches!(kind, Kind::Condition | Kind::Observation) && !f.codes.is_empty() {
        apply_body_site(m, r, f);
    } else if f.side.is_none() && !f.codes.is_empty() {
        f.side = body_sites(m, r).side;
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
    Some(())
}

/// §1 generic finding + body site, §2 leg-swelling: a generic pain or swelling on a leg
/// site is leg pain or leg swelling; R60.0 / 80068009 count unless a bodySite names
/// another site; M79.89 only with a leg site. The side from the bodySite when the code
/// names none.
fn apply_body_site(m: &Mappings, r: &Resource, f: &mut Fact<'_>) {
    let sites = body_sites(m, r);
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

    proptest::proptest! {
        #[test]
        fn fast_instants_are_chronos_instants(
            s in "[0-9]{4}-[0-2][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9]Z"
        ) {
            let chrono = DateTime::parse_from_rfc3339(&s).ok().map(|d| d.with_timezone(&Utc));
            let fast = parse_utc_seconds(&s);
            // What the fast form reads, chrono reads the same; only leap seconds are left
            // to chrono.
            proptest::prop_assert!(fast.is_none_or(|t| Some(t) == chrono), "{s}");
            proptest::prop_assert!(fast.is_some() || chrono.is_none() || &s[17..19] == "60", "{s}");
        }
    }

    /// `age_ok`'s integer arithmetic against chrono's subtraction, the rule it replaces.
    fn age_ok_by_chrono(w: &When<'_>, t: DateTime<Utc>, now: DateTime<Utc>, days: u32) -> bool {
        if w.date_only {
            (now.date_naive() - t.date_naive()).num_days() <= i64::from(days)
        } else {
            now - t <= chrono::Duration::days(i64::from(days))
        }
    }

    proptest::proptest! {
        #[test]
        fn age_ok_agrees_with_chronos_subtraction(
            now_s in -62_000_000_000i64..250_000_000_000,
            back in -200_000_000i64..200_000_000,
            now_ns in 0u32..2_000_000_000,
            t_ns in 0u32..2_000_000_000,
            days in 0u32..2_500,
            date_only: bool,
            near_edge: bool,
        ) {
            // Near the edge: t exactly N days (± a second) before now.
            let back = if near_edge { i64::from(days) * 86_400 + back % 2 } else { back };
            let at = |s: i64, ns: u32| {
                // Leap nanoseconds only on a minute's last second, as chrono allows.
                let ns = if ns >= 1_000_000_000 && s.rem_euclid(60) != 59 { ns - 1_000_000_000 } else { ns };
                DateTime::<Utc>::from_timestamp(s, ns).unwrap()
            };
            let (now, t) = (at(now_s, now_ns), at(now_s - back, t_ns));
            let w = When { start: t, end: t, date_only, written: "" };
            proptest::prop_assert_eq!(w.age_ok(t, &Now::new(now), days), age_ok_by_chrono(&w, t, now, days));
        }
    }

    #[test]
    fn age_ok_at_the_edge_of_a_window_to_the_nanosecond() {
        let now = DateTime::<Utc>::from_timestamp(1_795_000_000, 500).unwrap();
        for (back_s, t_ns, date_only) in [
            (3 * 86_400, 500, false),
            (3 * 86_400, 499, false),
            (3 * 86_400, 501, false),
            (3 * 86_400 + 1, 500, false),
            (3 * 86_400 - 1, 0, false),
            (3 * 86_400 + 43_000, 0, true),
            (4 * 86_400, 0, true),
        ] {
            let t = DateTime::<Utc>::from_timestamp(1_795_000_000 - back_s, t_ns).unwrap();
            let w = When {
                start: t,
                end: t,
                date_only,
                written: "",
            };
            assert_eq!(
                w.age_ok(t, &Now::new(now), 3),
                age_ok_by_chrono(&w, t, now, 3),
                "{back_s} {t_ns} {date_only}"
            );
        }
    }

    #[test]
    fn the_coders_table_classifies_as_the_mappings_do_when_slots_are_reused() {
        let m = crate::test_support::shipped();
        let systems = [
            crate::mappings::ICD10CM,
            crate::mappings::SNOMED,
            crate::mappings::LOINC,
        ];
        // Ten times the table's slots of distinct codes, many of them mapped, read twice
        // in a shuffled order: every slot is overwritten many times.
        let codes: Vec<(String, &str)> = (0..Coder::SLOTS * 10)
            .map(|i| {
                let sys = systems[i % systems.len()];
                let code = match i % 4 {
                    0 => format!("M79.66{}", i % 10),
                    1 => format!("I80.{}", i % 300),
                    2 => format!("{}", 22_298_006 + i),
                    _ => "85353-1".to_string(),
                };
                (code, sys)
            })
            .collect();
        let coder = Coder::new(m);
        let mut hits = 0;
        for round in 0..2 {
            for (i, (code, sys)) in codes.iter().enumerate() {
                let (code, sys) = if round == 1 && i % 2 == 1 {
                    let (c, s) = &codes[codes.len() - i];
                    (c, *s)
                } else {
                    (code, *sys)
                };
                let direct = classify_coding(m, sys, code);
                hits += usize::from(!direct.0.is_empty());
                assert_eq!(coder.classify(sys, code), direct, "{sys} {code}");
            }
        }
        assert!(hits > 100, "the codes must include mapped ones: {hits}");
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

    fn typed(v: serde_json::Value) -> Resource {
        match resource::from_value(&v) {
            Field::Value(r) => r,
            Field::Absent | Field::Invalid => panic!("not a resource"),
        }
    }

    #[test]
    fn elements_of_the_wrong_type_make_a_resource_malformed_and_the_patient_is_found() {
        let r = typed(serde_json::json!({"resourceType": "Condition", "id": "c1",
            "subject": {"reference": "https://x.org/fhir/Patient/p1/_history/2"}}));
        assert!(well_formed(&r));
        assert_eq!(referenced_patient(&r), Some("p1"));
        for bad in [
            serde_json::json!({"status": 3}),
            serde_json::json!({"id": null}),
            serde_json::json!({"code": "calf pain"}),
            serde_json::json!({"code": {"coding": {"code": "x"}}}),
            serde_json::json!({"subject": "Patient/p1"}),
            serde_json::json!({"clinicalStatus": []}),
            serde_json::json!({"verificationStatus": "confirmed"}),
            serde_json::json!({"component": {}}),
            serde_json::json!({"reasonCode": {"text": "x"}}),
        ] {
            assert!(!well_formed(&typed(bad.clone())), "{bad}");
        }
        // Elements the model does not check may be of any type.
        assert!(well_formed(&typed(
            serde_json::json!({"bodySite": 1, "category": "x", "patient": 2})
        )));
        let no_patient = typed(serde_json::json!({"subject": {"reference": "Group/g"}}));
        assert_eq!(referenced_patient(&no_patient), None);
        // The subject names no patient: the `patient` element does.
        let both = typed(serde_json::json!({"subject": {"display": "x"},
            "patient": {"reference": "Patient/p2"}}));
        assert_eq!(referenced_patient(&both), Some("p2"));
    }

    proptest::proptest! {
        #[test]
        fn the_referenced_patient_is_read_as_rfind_reads_it(
            parts in proptest::collection::vec(
                proptest::sample::select(vec!["Patient", "p1", "_history", "", "x", "Patient/"]),
                0..6,
            ),
        ) {
            let reference = parts.join("/");
            let by_rfind = reference
                .rfind("Patient/")
                .map(|at| reference[at + 8..].split('/').next().unwrap_or(""));
            let r = typed(serde_json::json!({"subject": {"reference": reference}}));
            proptest::prop_assert_eq!(referenced_patient(&r), by_rfind, "{:?}", reference);
        }
    }

    const LOINC: &str = "http://loinc.org";
    const SCT: &str = "http://snomed.info/sct";
    const ICD: &str = "http://hl7.org/fhir/sid/icd-10-cm";

    fn cc(system: &str, code: &str) -> serde_json::Value {
        serde_json::json!({"coding": [{"system": system, "code": code}]})
    }

    /// The facts of these resources, for patient `p` (the resources are leaked: the
    /// facts borrow them, and a test is short-lived).
    fn facts_with(m: &Mappings, resources: &[serde_json::Value]) -> Vec<Fact<'static>> {
        let typed: &'static [Box<Resource>] = resource::from_values(resources).leak();
        read(m, "p", typed, now()).facts
    }

    /// [`facts_with`] the shipped mappings.
    fn facts(resources: &[serde_json::Value]) -> Vec<Fact<'static>> {
        facts_with(crate::test_support::shipped(), resources)
    }

    fn obs(code: &str, more: serde_json::Value) -> serde_json::Value {
        let mut o = serde_json::json!({"resourceType": "Observation", "id": "o",
            "status": "final", "code": cc(LOINC, code), "effectiveDateTime": "2026-11-20"});
        for (k, v) in more.as_object().unwrap() {
            o[k] = v.clone();
        }
        o
    }

    #[test]
    fn measures_are_the_own_value_or_the_first_matching_component() {
        let m = crate::test_support::shipped();
        let f = &facts(&[obs(
            "59408-5",
            serde_json::json!({"valueQuantity":
            {"value": 93, "unit": "percent", "system": "http://unitsofmeasure.org", "code": " % "}}),
        )])[0];
        let own = Measure {
            value: Some(93.0),
            unit: Some("%"),
            comparator: None,
        };
        assert_eq!(f.measure(m, CodeSet::Spo2), Some(own));
        assert_eq!(f.measure(m, CodeSet::HeartRate), None);
        // Another system than UCUM: the unit text; no quantity: nothing measured.
        let f = &facts(&[obs(
            "48065-7",
            serde_json::json!({"valueQuantity":
            {"value": 0.4, "comparator": "<", "unit": "mg/L FEU", "system": "http://x.org", "code": "mgl"}}),
        )])[0];
        let want = Measure {
            value: Some(0.4),
            unit: Some("mg/L FEU"),
            comparator: Some("<"),
        };
        assert_eq!(f.measure(m, CodeSet::DDimerFeu), Some(want));
        for q in [
            serde_json::json!({}),
            serde_json::json!({"valueQuantity": "93 %"}),
        ] {
            let f = &facts(&[obs("59408-5", q)])[0];
            assert_eq!(f.measure(m, CodeSet::Spo2), Some(Measure::default()));
        }
        // A panel: the first component whose code is in the set.
        let panel = obs(
            "85353-1",
            serde_json::json!({"component": [
                {"code": cc(LOINC, "8480-6"), "valueQuantity": {"value": 120, "unit": "mm[Hg]"}},
                {"code": cc(LOINC, "8867-4"), "valueQuantity": {"value": 108, "code": "/min"}},
                {"code": cc(LOINC, "8867-4"), "valueQuantity": {"value": 50, "code": "/min"}},
                {"code": cc(LOINC, "59408-5")}
            ]}),
        );
        let f = &facts(&[panel])[0];
        assert!(f.component_codes.contains(CodeSet::HeartRate));
        let hr = Measure {
            value: Some(108.0),
            unit: Some("/min"),
            comparator: None,
        };
        assert_eq!(f.measure(m, CodeSet::HeartRate), Some(hr));
        assert_eq!(f.measure(m, CodeSet::Spo2), Some(Measure::default()));
        assert_eq!(f.measure(m, CodeSet::DDimerFeu), None);
    }

    #[test]
    fn coded_and_text_values_say_positive_or_negative() {
        let value = |code: &str, v: serde_json::Value| {
            let f = &facts(&[obs(code, v)])[0];
            (f.pregnancy_value, f.qualitative)
        };
        use Qualitative::{Negative, Positive};
        let coded = |code| serde_json::json!({"valueCodeableConcept": cc(SCT, code)});
        let text = |s| serde_json::json!({"valueString": s});
        assert_eq!(value("82810-3", coded("77386006")), (Some(Positive), None));
        assert_eq!(value("82810-3", coded("60001007")), (Some(Negative), None));
        assert_eq!(value("82810-3", coded("1")), (None, None));
        assert_eq!(value("2106-3", coded("10828004")), (None, Some(Positive)));
        assert_eq!(value("2106-3", coded("260385009")), (None, Some(Negative)));
        assert_eq!(value("2106-3", text(" Detected ")), (None, Some(Positive)));
        assert_eq!(
            value("2106-3", text("not detected")),
            (None, Some(Negative))
        );
        assert_eq!(value("2106-3", text("equivocal")), (None, None));
        assert_eq!(
            value("2106-3", serde_json::json!({"valueString": 1})),
            (None, None)
        );
    }

    #[test]
    fn an_upper_limb_body_site_or_reason_is_noted_on_imaging() {
        let us = |more: serde_json::Value| {
            let mut r = serde_json::json!({"resourceType": "ServiceRequest", "id": "s",
                "status": "active", "code": cc("http://www.ama-assn.org/go/cpt", "93971"),
                "authoredOn": "2026-11-19"});
            for (k, v) in more.as_object().unwrap() {
                r[k] = v.clone();
            }
            facts(&[r])[0].upper_limb_site
        };
        assert!(!us(serde_json::json!({})));
        assert!(us(serde_json::json!({"bodySite": [cc(SCT, "53120007")]})));
        assert!(us(serde_json::json!({"bodySite": cc(SCT, "53120007")})));
        assert!(us(serde_json::json!({"reasonCode": [cc(SCT, "53120007")]})));
        assert!(!us(serde_json::json!({"bodySite": [cc(SCT, "30021000")]})));
    }

    #[test]
    fn conditions_carry_z85_only_cancer_and_z3a_weeks() {
        let cond = |codings: &[(&str, &str)]| {
            let coding: Vec<_> = codings
                .iter()
                .map(|(s, c)| serde_json::json!({"system": s, "code": c}))
                .collect();
            serde_json::json!({"resourceType": "Condition", "id": "c",
                "code": {"coding": coding}, "onsetDateTime": "2026-11-01"})
        };
        let f = |m: &Mappings, codings: &[(&str, &str)]| {
            let f = facts_with(m, &[cond(codings)]).pop().unwrap();
            (f.cancer_only_z85, f.gestation_weeks)
        };
        let shipped = crate::test_support::shipped();
        assert_eq!(f(shipped, &[(ICD, "C50.911")]), (false, None));
        assert_eq!(f(shipped, &[(ICD, "Z3A.10")]), (false, Some(10)));
        assert_eq!(f(shipped, &[(ICD, "Z3A.01")]), (false, Some(0)));
        // The last Z3A coding names the weeks; another first-trimester code none.
        assert_eq!(
            f(shipped, &[(ICD, "Z3A.08"), (ICD, "Z3A.11")]),
            (false, Some(11))
        );
        assert_eq!(f(shipped, &[(ICD, "O09.01")]), (false, None));
        // A site whose cancer set keeps Z85: Z85 alone is history, with another
        // cancer code it is not.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        let mut files = vec![(
            "model.toml".to_string(),
            std::fs::read_to_string(root.join("model.toml")).unwrap(),
        )];
        for e in std::fs::read_dir(root.join("valuesets")).unwrap() {
            let p = e.unwrap().path();
            let name = format!("valuesets/{}", p.file_name().unwrap().to_string_lossy());
            let mut text = std::fs::read_to_string(&p).unwrap();
            if name == "valuesets/cancer.json" {
                // Included, and no longer excluded (the shipped set excludes Z85 and
                // below; the exclusion becomes a second one of D49).
                text = text
                    .replacen(
                        "\"code\": \"C00.0\",",
                        "\"code\": \"Z85.3\"}, {\"code\": \"C00.0\",",
                        1,
                    )
                    .replacen("\"value\": \"Z85\"", "\"value\": \"D49\"", 1);
            }
            files.push((name, text));
        }
        let site = Mappings::from_files("site", &files).expect("edited set loads");
        assert_eq!(f(&site, &[(ICD, "Z85.3")]), (true, None));
        assert_eq!(f(&site, &[(ICD, "Z85.3"), (ICD, "C50.911")]), (false, None));
    }

    #[test]
    fn malformed_resources_and_values_are_counted_once_each() {
        let rec_of = |v: Vec<serde_json::Value>| {
            let typed: &'static [Box<Resource>] = resource::from_values(&v).leak();
            read(crate::test_support::shipped(), "p", typed, now()).notes
        };
        let notes = rec_of(vec![
            serde_json::json!("not a resource"),
            serde_json::json!({"id": "no type"}),
            serde_json::json!({"resourceType": "Condition", "code": "pain"}),
            serde_json::json!({"resourceType": "Medication", "status": 1}),
            serde_json::json!({"resourceType": "Bundle", "entry": [
                {"resource": {"resourceType": "Condition", "id": 7}}, {"fullUrl": "x"}, 3]}),
            serde_json::json!({"resourceType": "Condition", "subject": {"reference": "Patient/q"}}),
        ]);
        assert_eq!(notes.malformed, 7);
        assert_eq!(notes.other_patient, 1);
        assert!(notes.no_patient);
    }

    #[test]
    fn window_edges_by_calendar_day_and_by_instant() {
        let d14 = parse_when("2026-11-06").unwrap();
        let d15 = parse_when("2026-11-05").unwrap();
        assert!(d14.within_days(&Now::new(now()), 14));
        assert!(!d15.within_days(&Now::new(now()), 14));
        let t = parse_when("2026-11-06T12:00:00Z").unwrap();
        assert!(t.within_days(&Now::new(now()), 14));
        let t = parse_when("2026-11-06T11:59:59Z").unwrap();
        assert!(!t.within_days(&Now::new(now()), 14));
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
        assert!(w.within_days(&Now::new(now()), 14));
        assert!(!w.wholly_within_days(&Now::new(now()), 14));
        assert!(w.wholly_within_days(&Now::new(now()), 19));
        assert!(!w.wholly_within_days(&Now::new(now()), 18));
        let w = parse_when("2026-10").unwrap().clipped(None, now());
        assert!(!w.within_days(&Now::new(now()), 19));
        assert!(w.within_days(&Now::new(now()), 20));
        // An instant: both agree.
        let t = parse_when("2026-11-06T12:00:00Z").unwrap();
        assert!(t.within_days(&Now::new(now()), 14) && t.wholly_within_days(&Now::new(now()), 14));
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
