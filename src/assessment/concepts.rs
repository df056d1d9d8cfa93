//! `dvt-model.md` §2: the concepts the record supports, each with its evidence.

use chrono::{DateTime, NaiveDate, Utc};

use super::concept::{ALTERNATIVES, Concept, WARNING_SIGNS};
use crate::mappings::{CodeSet, CodeSets, Mappings, Side, Windows};
use crate::record::quality::{self, DataQualityCode, DataQualityNote};
use crate::record::{Fact, Kind, Now, Qualitative, Record, When, cmp_references, reference};

/// One resource behind a finding (§6: every statement points to the resource it came
/// from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// `Condition/7`.
    pub reference: String,
    /// The matched coding's display, else the code's text, else another coding's
    /// display; a medication: the Medication's name.
    pub name: Option<String>,
    /// The clinically relevant date as written in the resource (§1 partial dates:
    /// `2026-11` stays `2026-11`).
    pub date: Option<String>,
}

impl Evidence {
    /// Evidence known only by its reference (a draft order, a vital sign).
    pub fn of(reference: impl Into<String>) -> Evidence {
        Evidence {
            reference: reference.into(),
            name: None,
            date: None,
        }
    }
}

/// A concept the record supports (§6 `findings`).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub concept: Concept,
    /// Most recent first.
    pub evidence: Vec<Evidence>,
    /// First day of the most recent evidence's date (a partial date: its first day;
    /// the card shows `evidence[0].date`, as written).
    pub date: Option<NaiveDate>,
    pub side: Option<Side>,
}

impl Finding {
    /// The evidence's references, in order.
    pub fn references(&self) -> Vec<String> {
        self.evidence.iter().map(|e| e.reference.clone()).collect()
    }
}

/// Evidence of one concept. References are built only for what survives the dedupe,
/// not for every matching resource (they were the derive step's main allocation).
#[derive(Default)]
struct Collect<'a> {
    items: Vec<Item<'a>>,
}

/// (date, kind, id, side, name) of one piece of evidence.
type Item<'a> = (
    Option<When<'a>>,
    Kind,
    &'a str,
    Option<Side>,
    Option<&'a str>,
);

impl<'a> Collect<'a> {
    fn add(&mut self, f: &Fact<'a>) {
        self.items.push((f.date, f.kind, f.id, f.side, f.name));
    }
    fn extend(&mut self, other: &Collect<'a>) {
        self.items.extend(other.items.iter().copied());
    }
    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    fn finish(mut self, concept: Concept) -> Option<Finding> {
        if self.items.is_empty() {
            return None;
        }
        // Most recent first; undated last; then by reference for determinism.
        self.items.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| cmp_references((a.1, a.2), (b.1, b.2)))
        });
        self.items.dedup_by(|a, b| (a.1, a.2) == (b.1, b.2));
        let date = self.items.iter().find_map(|i| i.0).map(|w| w.date());
        let side = combine_sides(self.items.iter().filter_map(|i| i.3));
        Some(Finding {
            concept,
            evidence: self
                .items
                .iter()
                .map(|i| Evidence {
                    reference: reference(i.1, i.2),
                    name: i.4.map(str::to_string),
                    date: i.0.map(|w| w.written.to_string()),
                })
                .collect(),
            date,
            side,
        })
    }
}

/// References in first-seen order, each once (§6: an evidence list never repeats one).
pub fn unique_refs(refs: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in refs {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// Evidence in first-seen order, each reference once (§6: a list never repeats one).
pub fn unique_evidence(it: impl IntoIterator<Item = Evidence>) -> Vec<Evidence> {
    let mut out: Vec<Evidence> = Vec::new();
    for e in it {
        if !out.iter().any(|o| o.reference == e.reference) {
            out.push(e);
        }
    }
    out
}

/// Left and right together make bilateral.
pub fn combine_sides(sides: impl Iterator<Item = Side>) -> Option<Side> {
    let mut out: Option<Side> = None;
    for s in sides {
        out = Some(match (out, s) {
            (None, s) => s,
            (Some(a), b) if a == b => a,
            _ => Side::Bilateral,
        });
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DDimerKind {
    Feu,
    Ddu,
}

impl DDimerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DDimerKind::Feu => "FEU",
            DDimerKind::Ddu => "DDU",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DDimerResult {
    Positive,
    Negative,
    Uninterpretable,
}

impl DDimerResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DDimerResult::Positive => "positive",
            DDimerResult::Negative => "negative",
            DDimerResult::Uninterpretable => "uninterpretable",
        }
    }
}

/// The latest D-dimer in the window (§2 `d-dimer`, §5 units): the newest readable one,
/// else the newest one (then uninterpretable).
#[derive(Debug, Clone, PartialEq)]
pub struct DDimer {
    pub reference: String,
    pub date: Option<NaiveDate>,
    /// The code's kind (§5); a unit naming the other kind makes the result
    /// uninterpretable (§1).
    pub kind: DDimerKind,
    /// In µg/L when the unit could be read (§5).
    pub value_ugl: Option<f64>,
    /// As recorded.
    pub raw_value: Option<f64>,
    pub raw_unit: Option<String>,
    pub comparator: Option<String>,
}

/// A vital sign read from an Observation or a panel component.
#[derive(Debug, Clone, PartialEq)]
pub struct Vital {
    pub reference: String,
    pub date: Option<NaiveDate>,
    pub value: f64,
}

impl Vital {
    /// The vital as card evidence: the measured value, so the clinician reads the number
    /// the finding rests on ("SpO2 91 %"), and its reference.
    fn evidence(&self, what: &str, unit: &str) -> Evidence {
        Evidence {
            reference: self.reference.clone(),
            name: Some(format!("{what} {} {unit}", self.value)),
            date: None,
        }
    }
}

/// Everything §2 derives from one record.
#[derive(Debug, Clone, Default)]
pub struct Concepts {
    /// §1 Deceased: no card (§4 rule 2).
    pub deceased: bool,
    pub leg_pain: Option<Finding>,
    pub leg_swelling: Option<Finding>,
    pub recent_surgery: Option<Finding>,
    /// Surgery within the Wells PE window (§4 rule 1).
    pub surgery_for_pe: bool,
    pub bedridden: Option<Finding>,
    pub paralysis_or_cast: Option<Finding>,
    /// §2 active-cancer: an active cancer Condition with activity within the window.
    pub active_cancer: Option<Finding>,
    /// An active cancer Condition (or cancer treatment) without the rest of §2
    /// active-cancer: the Wells row is `to-confirm` (§3).
    pub cancer_to_confirm: Option<Finding>,
    /// §2 previous-dvt: the Wells DVT item.
    pub previous_dvt: Option<Finding>,
    /// §2 previous-vte (DVT or PE): rule 7, Wells PE.
    pub previous_vte: Option<Finding>,
    /// §2 current-dvt: a DVT or PE diagnosed now (rule 3).
    pub current_vte: Option<Finding>,
    pub pregnancy: Option<Finding>,
    pub postpartum: Option<Finding>,
    pub first_trimester: Option<Finding>,
    pub estrogen_use: Option<Finding>,
    pub anticoagulated: Option<Finding>,
    /// §1: current medication reference(s) that could not be resolved.
    pub possibly_anticoagulated: Option<Finding>,
    pub long_haul_travel: Option<Finding>,
    /// dyspnoea, chest-pain, cough, haemoptysis, syncope, dizziness, hypoxaemia (in order).
    pub warning_signs: Vec<Finding>,
    pub tachycardia: Option<Finding>,
    pub heart_rate: Option<Vital>,
    pub spo2: Option<Vital>,
    pub d_dimer: Option<DDimer>,
    pub dvt_imaging: Option<Finding>,
    pub alternatives: Vec<Finding>,
    /// §6 data-quality notes of the record and of the concepts, one per code.
    pub data_quality: Vec<DataQualityNote>,
}

/// §1: a window that raises a card or a risk factor (any part of the date inside).
fn within(f: &Fact<'_>, now: &Now, days: u32) -> bool {
    f.date.is_some_and(|d| d.within_days(now, days))
}

/// §1: a window that suppresses or downgrades a card (the whole date inside).
fn wholly_within(f: &Fact<'_>, now: &Now, days: u32) -> bool {
    f.date.is_some_and(|d| d.wholly_within_days(now, days))
}

/// A symptom is present: an active Condition, or an Observation not saying it is absent.
fn symptom_present(f: &Fact<'_>) -> bool {
    match f.kind {
        Kind::Condition => f.active,
        Kind::Observation => !f.absent,
        Kind::Procedure
        | Kind::MedicationRequest
        | Kind::MedicationStatement
        | Kind::Encounter
        | Kind::ServiceRequest
        | Kind::DiagnosticReport
        | Kind::ImagingStudy => false,
    }
}

/// Strip UCUM annotations (`{FEU}`) and return (unit, annotations).
fn split_annotations(unit: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut notes = Vec::new();
    let mut cur = None::<String>;
    for ch in unit.trim().chars() {
        match (ch, cur.as_mut()) {
            ('{', None) => cur = Some(String::new()),
            ('}', Some(_)) => notes.push(cur.take().unwrap_or_default()),
            (c, Some(n)) => n.push(c),
            (c, None) => out.push(c),
        }
    }
    (out, notes)
}

/// §1 units: UCUM is case-sensitive except that `l` and `L` are both the litre; `ug`,
/// `µg`, `mcg` are the microgram. The unit in its one spelling (`ug/mL`), annotations
/// removed.
fn canonical_unit(unit: &str) -> String {
    let (unit, _) = split_annotations(unit);
    let (num, den) = match unit.split_once('/') {
        Some((n, d)) => (n.to_string(), Some(d.to_string())),
        None => (unit.clone(), None),
    };
    let num = match num.as_str() {
        "µg" | "μg" | "mcg" => "ug".to_string(),
        _ => num,
    };
    let den = den.map(|d| match d.as_str() {
        "l" => "L".to_string(),
        "ml" => "mL".to_string(),
        "dl" => "dL".to_string(),
        _ => d,
    });
    match den {
        Some(d) => format!("{num}/{d}"),
        None => num,
    }
}

/// §1 D-dimer units: a trailing ` FEU` / ` DDU` or an annotation `{FEU}` / `{DDU}` says
/// the kind; the rest is read as UCUM. (unit without the kind, the kind it names).
/// `None` when the text names two kinds or an annotation that is not a kind.
fn d_dimer_unit(unit: &str) -> Option<(String, Option<DDimerKind>)> {
    let kind_of = |s: &str| match s.trim().to_ascii_uppercase().as_str() {
        "FEU" => Some(DDimerKind::Feu),
        "DDU" => Some(DDimerKind::Ddu),
        _ => None,
    };
    let mut rest = unit.trim();
    let mut kinds = Vec::new();
    if let Some((head, tail)) = rest.rsplit_once(' ')
        && let Some(k) = kind_of(tail)
    {
        kinds.push(k);
        rest = head.trim_end();
    }
    let (bare, notes) = split_annotations(rest);
    for n in notes {
        kinds.push(kind_of(&n)?);
    }
    kinds.dedup();
    if kinds.len() > 1 {
        return None;
    }
    Some((canonical_unit(&bare), kinds.first().copied()))
}

/// §5 units: ug/L = ng/mL; mg/L = ug/mL = 1000 ug/L; anything else cannot be read. A unit
/// text naming the other kind than the code's (`ng/mL DDU` on a FEU code) is a
/// contradiction: uninterpretable (§1).
fn to_ugl(value: f64, unit: &str, kind: DDimerKind) -> Option<f64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let (unit, named) = d_dimer_unit(unit)?;
    if named.is_some_and(|k| k != kind) {
        return None;
    }
    match unit.as_str() {
        "ug/L" | "ng/mL" => Some(value),
        "mg/L" | "ug/mL" => Some(value * 1000.0),
        _ => None,
    }
}

/// (value, unit as recorded, comparator) of the quantity for this code set: the
/// Observation's own `valueQuantity`, or the matching component's (§1 panels).
fn quantity(
    m: &Mappings,
    f: &Fact<'_>,
    set: CodeSet,
) -> Option<(Option<f64>, Option<String>, Option<String>)> {
    let q = f.measure(m, set)?;
    Some((
        q.value,
        q.unit.map(str::to_string),
        q.comparator.map(str::to_string),
    ))
}

/// The Observations (own code or panel component) in the window, newest first.
fn newest_first<'r, 'a>(
    rec: &'r Record<'a>,
    sets: &[CodeSet],
    now: &Now,
    days: u32,
) -> Vec<&'r Fact<'a>> {
    let mut out: Vec<&Fact<'a>> = rec
        .facts
        .iter()
        .filter(|f| {
            f.kind == Kind::Observation
                && sets
                    .iter()
                    .any(|&s| f.codes.contains(s) || f.component_codes.contains(s))
                && within(f, now, days)
        })
        .collect();
    out.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| a.id.cmp(b.id)));
    out
}

/// §1 vital signs: the most recent READABLE Observation in the window (a value in a
/// known unit); each newer unreadable one is noted and never hides an older readable one.
fn latest_vital(
    m: &Mappings,
    rec: &Record<'_>,
    notes: &mut Vec<DataQualityNote>,
    set: CodeSet,
    days: u32,
    now: &Now,
    accepts: &[&str],
) -> Option<Vital> {
    for f in newest_first(rec, &[set], now, days) {
        let Some((value, unit, _)) = quantity(m, f, set) else {
            continue;
        };
        let unit_ok = unit
            .as_deref()
            .is_some_and(|u| accepts.contains(&canonical_unit(u).as_str()));
        match value {
            Some(v) if unit_ok && v.is_finite() => {
                return Some(Vital {
                    reference: f.reference(),
                    date: f.date.map(|d| d.date()),
                    value: v,
                });
            }
            _ => quality::note(notes, DataQualityCode::UnreadableUnit, Some(f.reference())),
        }
    }
    None
}

/// §2 d-dimer: the newest readable result in the window (FEU or DDU code, own value or
/// component); newer unreadable ones are noted. With none readable, the newest one,
/// uninterpretable.
fn latest_d_dimer(
    m: &Mappings,
    rec: &Record<'_>,
    notes: &mut Vec<DataQualityNote>,
    now: &Now,
) -> Option<DDimer> {
    let mut first: Option<DDimer> = None;
    let days = m.model.windows.d_dimer;
    for f in newest_first(rec, &[CodeSet::DDimerFeu, CodeSet::DDimerDdu], now, days) {
        let (kind, set) = if f.codes.contains(CodeSet::DDimerFeu)
            || (!f.codes.contains(CodeSet::DDimerDdu)
                && f.component_codes.contains(CodeSet::DDimerFeu))
        {
            (DDimerKind::Feu, CodeSet::DDimerFeu)
        } else {
            (DDimerKind::Ddu, CodeSet::DDimerDdu)
        };
        let (raw_value, raw_unit, comparator) = quantity(m, f, set).unwrap_or((None, None, None));
        let value_ugl = raw_value
            .zip(raw_unit.as_deref())
            .and_then(|(v, u)| to_ugl(v, u, kind));
        let d = DDimer {
            reference: f.reference(),
            date: f.date.map(|d| d.date()),
            kind,
            value_ugl,
            raw_value,
            raw_unit,
            comparator,
        };
        if d.value_ugl.is_some() {
            return Some(d);
        }
        quality::note(
            notes,
            DataQualityCode::UnreadableUnit,
            Some(d.reference.clone()),
        );
        first.get_or_insert(d);
    }
    first
}

/// §4 rule 4 LEFt "first trimester": a Z3A / first-trimester code whose gestation, carried
/// forward to now from its date (lower bound: Z3A.NN = NN weeks, others 0), is < 14 weeks.
fn still_first_trimester(f: &Fact<'_>, now: DateTime<Utc>) -> bool {
    let Some(d) = f.date else { return false };
    if d.is_future(now) {
        return false;
    }
    let days_since = (now.date_naive() - d.date()).num_days();
    let weeks = f.gestation_weeks.unwrap_or(0);
    weeks * 7 + days_since < 14 * 7
}

/// §2 bedridden: an inpatient stay of ≥ 3 days that ended ≤ 28 days ago or is ongoing
/// (§1 Encounters decide "ongoing" and when a finished one ended).
fn bedridden_stay(m: &Mappings, f: &Fact<'_>, now: &Now) -> bool {
    let Some(period) = f.date else { return false };
    let min_days = i64::from(m.model.thresholds.bedridden_stay_min_days);
    // The longest the stay can have lasted (§1: a raising window takes any part).
    let span = |end: DateTime<Utc>| -> i64 {
        if period.date_only {
            (end.date_naive() - period.start.date_naive()).num_days()
        } else {
            (end - period.start).num_hours() / 24
        }
    };
    if f.ongoing {
        return span(now.at) >= min_days;
    }
    match f.end {
        Some(end) => {
            span(end.end) >= min_days && end.within_days(now, m.model.windows.bedridden_stay_ended)
        }
        None => false,
    }
}

/// What every §2 group reads: the mappings (windows, thresholds) and now.
#[derive(Clone, Copy)]
struct Ctx<'m> {
    m: &'m Mappings,
    now: Now,
}

impl Ctx<'_> {
    fn windows(&self) -> &Windows {
        &self.m.model.windows
    }
    /// §1: any part of the fact's date within `days` (a raising window).
    fn within(&self, f: &Fact<'_>, days: u32) -> bool {
        within(f, &self.now, days)
    }
    /// §1: the whole date within `days` (a suppressing window).
    fn wholly_within(&self, f: &Fact<'_>, days: u32) -> bool {
        wholly_within(f, &self.now, days)
    }
}

/// §1: a leg symptom or warning sign without a usable date cannot be placed in its
/// window: noted (a future one is already noted as such).
fn note_undated_symptom(notes: &mut Vec<DataQualityNote>, f: &Fact<'_>) {
    let codes = f.codes;
    let windowed = codes.contains(CodeSet::LegPain)
        || codes.contains(CodeSet::LegSwelling)
        || WARNING_SIGNS.iter().any(|(s, _)| codes.contains(*s));
    if !windowed || f.date.is_some() || !matches!(f.kind, Kind::Condition | Kind::Observation) {
        return;
    }
    let r = f.reference();
    let future = notes
        .iter()
        .any(|n| n.code == DataQualityCode::FutureDate && n.evidence.contains(&r));
    if !future {
        quality::note(notes, DataQualityCode::UnreadableDate, Some(r));
    }
}

/// §2 leg-pain, leg-swelling, the coded warning signs, long-haul-travel: present
/// symptoms (Conditions, Observations) within their windows.
#[derive(Default)]
struct Symptoms<'a> {
    pain: Collect<'a>,
    swelling: Collect<'a>,
    signs: [Collect<'a>; WARNING_SIGNS.len()],
    travel: Collect<'a>,
}

impl<'a> Symptoms<'a> {
    fn see(&mut self, cx: Ctx<'_>, f: &Fact<'a>) {
        let w = cx.windows();
        if !matches!(f.kind, Kind::Condition | Kind::Observation) || !symptom_present(f) {
            return;
        }
        // §2 leg-pain / leg-swelling: ≤ 14 days, present.
        if cx.within(f, w.index_presentation) {
            if f.codes.contains(CodeSet::LegPain) {
                self.pain.add(f);
            }
            if f.codes.contains(CodeSet::LegSwelling) {
                self.swelling.add(f);
            }
        }
        // §2 warning signs: ≤ 3 days, present.
        if cx.within(f, w.warning_sign) {
            for (col, (set, _)) in self.signs.iter_mut().zip(WARNING_SIGNS) {
                if f.codes.contains(set) {
                    col.add(f);
                }
            }
        }
        // §2 long-haul-travel: a site-mapped code, ≤ 56 days.
        if f.codes.contains(CodeSet::LongHaulTravel) && cx.within(f, w.long_haul_travel) {
            self.travel.add(f);
        }
    }

    fn finish(self, c: &mut Concepts) {
        c.leg_pain = self.pain.finish(Concept::LegPain);
        c.leg_swelling = self.swelling.finish(Concept::LegSwelling);
        for (col, (_, concept)) in self.signs.into_iter().zip(WARNING_SIGNS) {
            c.warning_signs.extend(col.finish(concept));
        }
        c.long_haul_travel = self.travel.finish(Concept::LongHaulTravel);
    }
}

/// §2 recent-surgery, bedridden, paralysis-or-cast.
#[derive(Default)]
struct Immobility<'a> {
    surgery: Collect<'a>,
    /// Surgery within the Wells PE window (§4 rule 1).
    surgery_for_pe: bool,
    bedridden: Collect<'a>,
    paralysis: Collect<'a>,
}

impl<'a> Immobility<'a> {
    fn see(&mut self, cx: Ctx<'_>, f: &Fact<'a>) {
        let w = cx.windows();
        match f.kind {
            // §2 bedridden / paralysis-or-cast: active Condition.
            Kind::Condition => {
                if f.active && f.codes.contains(CodeSet::Bedridden) {
                    self.bedridden.add(f);
                }
                if f.active && f.codes.contains(CodeSet::Paralysis) {
                    self.paralysis.add(f);
                }
            }
            Kind::Procedure => {
                // §2 recent-surgery: completed / in-progress, code or category, ≤ 84 days.
                if f.active
                    && (f.codes.contains(CodeSet::Surgery) || f.surgical_category)
                    && cx.within(f, w.recent_surgery)
                {
                    self.surgery.add(f);
                    self.surgery_for_pe |= cx.within(f, w.pe_surgery);
                }
                // §2 paralysis-or-cast: leg cast ≤ 84 days.
                if f.active && f.codes.contains(CodeSet::LegCast) && cx.within(f, w.leg_cast) {
                    self.paralysis.add(f);
                }
            }
            // §2 bedridden: inpatient stay ≥ 3 days, ended ≤ 28 days ago or ongoing.
            Kind::Encounter => {
                if f.inpatient && bedridden_stay(cx.m, f, &cx.now) {
                    self.bedridden.add(f);
                }
            }
            Kind::Observation
            | Kind::MedicationRequest
            | Kind::MedicationStatement
            | Kind::ServiceRequest
            | Kind::DiagnosticReport
            | Kind::ImagingStudy => {}
        }
    }

    fn finish(self, c: &mut Concepts) {
        c.recent_surgery = self.surgery.finish(Concept::RecentSurgery);
        c.surgery_for_pe = self.surgery_for_pe;
        c.bedridden = self.bedridden.finish(Concept::Bedridden);
        c.paralysis_or_cast = self.paralysis.finish(Concept::ParalysisOrCast);
    }
}

/// §2 active-cancer: the cancer Conditions, and what shows activity.
#[derive(Default)]
struct Cancer<'a> {
    cancers: Collect<'a>,
    /// A cancer Condition that is active cancer without more (metastatic,
    /// haematological, or onset within the window).
    active_alone: bool,
    activity: Collect<'a>,
}

impl<'a> Cancer<'a> {
    fn see(&mut self, cx: Ctx<'_>, f: &Fact<'a>) {
        let window = cx.windows().cancer_activity;
        let treatment = |codes: CodeSets| {
            codes.contains(CodeSet::CancerTreatment) || codes.contains(CodeSet::PalliativeCare)
        };
        let activity = match f.kind {
            Kind::Condition => {
                self.see_condition(cx, f);
                // Treatment (Z51.0, Z51.1x) or palliative care ≤ 183 days.
                treatment(f.codes)
            }
            // Cancer treatment or palliative care ≤ 183 days.
            Kind::Procedure => f.active && treatment(f.codes),
            // An antineoplastic prescribed ≤ 183 days ago (stopped or completed still
            // says it was given).
            Kind::MedicationRequest | Kind::MedicationStatement => {
                f.codes.contains(CodeSet::Antineoplastic)
            }
            // Encounter reason cancer treatment / palliative care.
            Kind::Encounter => treatment(f.reason_codes),
            Kind::Observation
            | Kind::ServiceRequest
            | Kind::DiagnosticReport
            | Kind::ImagingStudy => false,
        };
        if activity && cx.within(f, window) {
            self.activity.add(f);
        }
    }

    /// An active cancer Condition (never Z85, C44 BCC/SCC, D37–D49: excluded by the
    /// data); metastatic or haematological counts without more; else onset ≤ 183 days
    /// (recordedDate only when onset is absent).
    fn see_condition(&mut self, cx: Ctx<'_>, f: &Fact<'a>) {
        let metastatic = f.codes.contains(CodeSet::MetastaticCancer)
            || f.codes.contains(CodeSet::HaematologicalCancer);
        if f.active && (metastatic || (f.codes.contains(CodeSet::Cancer) && !f.cancer_only_z85)) {
            self.cancers.add(f);
            if metastatic || (!f.onset_unusable && cx.within(f, cx.windows().cancer_activity)) {
                self.active_alone = true;
            }
        }
    }

    /// A cancer Condition with activity; else to confirm (§3), with its evidence.
    /// Treatment without a cancer Condition is to confirm too.
    fn finish(mut self, c: &mut Concepts) {
        let active = !self.cancers.is_empty() && (self.active_alone || !self.activity.is_empty());
        self.cancers.extend(&self.activity);
        let finding = self.cancers.finish(Concept::ActiveCancer);
        if active {
            c.active_cancer = finding;
        } else {
            c.cancer_to_confirm = finding;
        }
    }
}

/// §2 previous-dvt, previous-vte, current-dvt (Conditions).
#[derive(Default)]
struct Vte<'a> {
    previous_dvt: Collect<'a>,
    previous_pe: Collect<'a>,
    current: Collect<'a>,
}

impl<'a> Vte<'a> {
    fn see(&mut self, cx: Ctx<'_>, f: &Fact<'a>) {
        if f.kind != Kind::Condition {
            return;
        }
        let codes = f.codes;
        let recent = cx.wholly_within(f, cx.windows().current_dvt);
        // §2 previous-dvt / previous-vte: DVT or PE recorded > 90 days ago or not active
        // (any part of a partial date older: it raises a risk factor); chronic DVT is
        // always history; the history codes.
        let dvt = codes.contains(CodeSet::Dvt) || codes.contains(CodeSet::DvtChronic);
        let old = !f.active || !recent;
        if (dvt && (old || codes.contains(CodeSet::DvtChronic)))
            || codes.contains(CodeSet::DvtHistory)
        {
            self.previous_dvt.add(f);
        }
        if (codes.contains(CodeSet::Pe) && old) || codes.contains(CodeSet::PeHistory) {
            self.previous_pe.add(f);
        }
        // §2 current-dvt: an active acute DVT or PE (never chronic I82.5-) whose whole
        // date lies within 90 days (it suppresses the card).
        let acute = (codes.contains(CodeSet::Dvt) && !codes.contains(CodeSet::DvtChronic))
            || codes.contains(CodeSet::Pe);
        if f.active && acute && recent {
            self.current.add(f);
        }
    }

    fn finish(self, c: &mut Concepts) {
        // §2 previous-vte: previous-dvt, or PE the same way.
        let mut previous_vte = Collect::default();
        previous_vte.extend(&self.previous_dvt);
        previous_vte.extend(&self.previous_pe);
        c.previous_dvt = self.previous_dvt.finish(Concept::PreviousDvt);
        c.previous_vte = previous_vte.finish(Concept::PreviousVte);
        c.current_vte = self.current.finish(Concept::CurrentDvt);
    }
}

/// §2 pregnancy, postpartum, and §4 rule 4 first trimester.
#[derive(Default)]
struct Pregnancy<'a> {
    /// Evidence of pregnancy within its window.
    evidence: Vec<&'a Fact<'a>>,
    /// What ends a pregnancy: a later delivery, loss, postpartum evidence or negative test.
    ends: Vec<When<'a>>,
    postpartum: Collect<'a>,
    first_trimester: Collect<'a>,
}

impl<'a> Pregnancy<'a> {
    fn see(&mut self, cx: Ctx<'_>, f: &'a Fact<'a>) {
        let w = cx.windows();
        match f.kind {
            Kind::Condition => {
                // §2 pregnancy: active Condition, evidence ≤ 294 days.
                if f.active
                    && f.codes.contains(CodeSet::Pregnancy)
                    && cx.within(f, w.pregnancy_evidence)
                {
                    self.evidence.push(f);
                }
                if f.codes.contains(CodeSet::PregnancyLoss) {
                    self.ends.extend(f.date);
                }
                if f.codes.contains(CodeSet::FirstTrimester) && still_first_trimester(f, cx.now.at)
                {
                    self.first_trimester.add(f);
                }
                // §2 postpartum: Condition ≤ 42 days (it also ends a pregnancy).
                if f.codes.contains(CodeSet::Postpartum) {
                    self.postpartum(cx, f);
                }
            }
            Kind::Observation => self.see_observation(cx, f),
            // §2 postpartum: a delivery ≤ 42 days; it ends a pregnancy.
            Kind::Procedure => {
                if f.active && f.codes.contains(CodeSet::Delivery) {
                    self.postpartum(cx, f);
                }
            }
            Kind::MedicationRequest
            | Kind::MedicationStatement
            | Kind::Encounter
            | Kind::ServiceRequest
            | Kind::DiagnosticReport
            | Kind::ImagingStudy => {}
        }
    }

    /// A delivery or postpartum evidence: it ends a pregnancy; postpartum ≤ 42 days.
    fn postpartum(&mut self, cx: Ctx<'_>, f: &'a Fact<'a>) {
        self.ends.extend(f.date);
        if cx.within(f, cx.windows().postpartum) {
            self.postpartum.add(f);
        }
    }

    /// §2 pregnancy: the pregnancy-status Observation (pregnant / not pregnant) and a
    /// qualitative hCG (positive / negative).
    fn see_observation(&mut self, cx: Ctx<'_>, f: &'a Fact<'a>) {
        let Some(d) = f.date else { return };
        let in_window = cx.within(f, cx.windows().pregnancy_evidence);
        let mut read = |value: Option<Qualitative>| match value {
            Some(Qualitative::Positive) if in_window => self.evidence.push(f),
            Some(Qualitative::Negative) => self.ends.push(d),
            Some(Qualitative::Positive) | None => {}
        };
        if f.codes.contains(CodeSet::PregnancyStatus) {
            read(f.pregnancy_value);
        }
        if f.codes.contains(CodeSet::Hcg) {
            read(f.qualitative);
        }
    }

    fn finish(self, c: &mut Concepts) {
        // §2 pregnancy: evidence with nothing ending it on or after its date.
        let mut pregnancy = Collect::default();
        for f in self.evidence {
            if let Some(d) = f.date
                && !self.ends.iter().any(|e| e.start >= d.start)
            {
                pregnancy.add(f);
            }
        }
        c.pregnancy = pregnancy.finish(Concept::Pregnancy);
        c.postpartum = self.postpartum.finish(Concept::Postpartum);
        c.first_trimester = self.first_trimester.finish(Concept::FirstTrimester);
    }
}

/// §2 estrogen-use, anticoagulated; §1 possibly anticoagulated.
#[derive(Default)]
struct Medications<'a> {
    estrogen: Collect<'a>,
    anticoagulated: Collect<'a>,
    possibly_anticoagulated: Collect<'a>,
}

impl<'a> Medications<'a> {
    fn see(&mut self, f: &Fact<'a>) {
        // Active Conditions (Z79.3, Z79.890, Z79.01) and current medications.
        let medication = matches!(f.kind, Kind::MedicationRequest | Kind::MedicationStatement);
        if !(medication || f.kind == Kind::Condition) {
            return;
        }
        if f.active && f.codes.contains(CodeSet::Estrogen) {
            self.estrogen.add(f);
        }
        if f.active && f.codes.contains(CodeSet::Anticoagulant) {
            self.anticoagulated.add(f);
        }
        // §1: a current medication that could not be resolved.
        if medication && f.unresolved_medication && !f.codes.contains(CodeSet::Anticoagulant) {
            self.possibly_anticoagulated.add(f);
        }
    }

    fn finish(self, c: &mut Concepts) {
        c.estrogen_use = self.estrogen.finish(Concept::EstrogenUse);
        c.anticoagulated = self.anticoagulated.finish(Concept::Anticoagulated);
        c.possibly_anticoagulated = self
            .possibly_anticoagulated
            .finish(Concept::PossiblyAnticoagulated);
    }
}

/// §2 alternatives (Conditions, active or ≤ 30 days) and dvt-imaging.
#[derive(Default)]
struct Alternatives<'a> {
    alternatives: [Collect<'a>; ALTERNATIVES.len()],
}

impl<'a> Alternatives<'a> {
    fn see(&mut self, cx: Ctx<'_>, f: &Fact<'a>) {
        if f.kind != Kind::Condition || !(f.active || cx.within(f, cx.windows().alternative)) {
            return;
        }
        for (col, (set, _)) in self.alternatives.iter_mut().zip(ALTERNATIVES) {
            if f.codes.contains(set) {
                col.add(f);
            }
        }
    }

    fn finish(self, c: &mut Concepts) {
        for (col, (_, concept)) in self.alternatives.into_iter().zip(ALTERNATIVES) {
            c.alternatives.extend(col.finish(concept));
        }
    }
}

/// §2 dvt-imaging: ServiceRequest (active / completed), DiagnosticReport or ImagingStudy
/// with a leg-vein ultrasound code, not of an upper limb, wholly ≤ 7 days (it suppresses
/// a suggestion).
fn is_dvt_imaging(cx: Ctx<'_>, f: &Fact<'_>) -> bool {
    matches!(
        f.kind,
        Kind::ServiceRequest | Kind::DiagnosticReport | Kind::ImagingStudy
    ) && f.active
        && f.codes.contains(CodeSet::LegVeinUltrasound)
        && cx.wholly_within(f, cx.windows().dvt_imaging)
        && !f.upper_limb_site
}

/// §2 hypoxaemia (an active R09.02 Condition ≤ 3 days, or the latest readable SpO2 ≤ 1
/// day below 95 %), tachycardia (the latest readable heart rate ≤ 1 day, ≥ 100 /min), and
/// the d-dimer: the measurements, read once the facts are seen.
#[derive(Default)]
struct Measurements<'a> {
    hypoxaemia: Collect<'a>,
}

impl<'a> Measurements<'a> {
    fn see(&mut self, cx: Ctx<'_>, f: &Fact<'a>) {
        if f.kind == Kind::Condition
            && f.active
            && f.codes.contains(CodeSet::Hypoxaemia)
            && cx.within(f, cx.windows().warning_sign)
        {
            self.hypoxaemia.add(f);
        }
    }

    fn finish(self, cx: Ctx<'_>, rec: &Record<'_>, c: &mut Concepts) {
        let (m, now) = (cx.m, &cx.now);
        let days = cx.windows().vital_sign;
        let t = &m.model.thresholds;
        let mut dq = std::mem::take(&mut c.data_quality);
        c.spo2 = latest_vital(m, rec, &mut dq, CodeSet::Spo2, days, now, &["%"]);
        let mut hypoxaemia = self.hypoxaemia.finish(Concept::Hypoxaemia);
        if let Some(v) = c.spo2.as_ref().filter(|v| v.value < t.spo2_below) {
            let h = hypoxaemia.get_or_insert_with(|| Finding {
                concept: Concept::Hypoxaemia,
                evidence: vec![],
                date: v.date,
                side: None,
            });
            h.evidence.insert(0, v.evidence("SpO2", "%"));
            h.date = h.date.max(v.date);
        }
        c.warning_signs.extend(hypoxaemia);
        let hr = ["/min", "beats/min"];
        c.heart_rate = latest_vital(m, rec, &mut dq, CodeSet::HeartRate, days, now, &hr);
        if let Some(v) = c
            .heart_rate
            .as_ref()
            .filter(|v| v.value >= t.heart_rate_at_least)
        {
            c.tachycardia = Some(Finding {
                concept: Concept::Tachycardia,
                evidence: vec![v.evidence("Heart rate", "/min")],
                date: v.date,
                side: None,
            });
        }
        c.d_dimer = latest_d_dimer(m, rec, &mut dq, now);
        c.data_quality = dq;
    }
}

/// Derive every §2 concept from the record: one pass over the facts, each §2 group
/// seeing every fact, then each group's findings; the measurements last (§1: the newest
/// readable value).
pub fn derive(m: &Mappings, rec: &Record<'_>, now: DateTime<Utc>) -> Concepts {
    let cx = Ctx {
        m,
        now: Now::new(now),
    };
    let mut c = Concepts {
        deceased: rec.deceased,
        data_quality: rec.quality.clone(),
        ..Concepts::default()
    };
    let mut symptoms = Symptoms::default();
    let mut immobility = Immobility::default();
    let mut cancer = Cancer::default();
    let mut vte = Vte::default();
    let mut pregnancy = Pregnancy::default();
    let mut medications = Medications::default();
    let mut alternatives = Alternatives::default();
    let mut imaging = Collect::default();
    let mut measurements = Measurements::default();
    for f in &rec.facts {
        note_undated_symptom(&mut c.data_quality, f);
        symptoms.see(cx, f);
        immobility.see(cx, f);
        cancer.see(cx, f);
        vte.see(cx, f);
        pregnancy.see(cx, f);
        medications.see(f);
        alternatives.see(cx, f);
        if is_dvt_imaging(cx, f) {
            imaging.add(f);
        }
        measurements.see(cx, f);
    }
    symptoms.finish(&mut c);
    immobility.finish(&mut c);
    cancer.finish(&mut c);
    vte.finish(&mut c);
    pregnancy.finish(&mut c);
    medications.finish(&mut c);
    alternatives.finish(&mut c);
    c.dvt_imaging = imaging.finish(Concept::DvtImaging);
    measurements.finish(cx, rec, &mut c);
    c
}

#[cfg(test)]
mod tests {
    //! Table-driven checks of every v2 line of `dvt-model.md` §1 and §2 (§8) that lives
    //! here, each window tested on both sides of its edge.

    use serde_json::{Value, json};

    use super::*;
    use crate::mappings::{CPT, ICD10CM as ICD, LOINC, RXNORM, SNOMED};

    use crate::test_support::{day, now, shipped as m};

    fn patient() -> Value {
        json!({"resourceType": "Patient", "id": "p", "birthDate": "1980-05-01"})
    }

    fn cc(system: &str, code: &str) -> Value {
        json!({"coding": [{"system": system, "code": code}]})
    }

    fn cond(id: &str, system: &str, code: &str, onset: &str) -> Value {
        json!({"resourceType": "Condition", "id": id, "code": cc(system, code),
               "onsetDateTime": onset, "subject": {"reference": "Patient/p"}})
    }

    fn obs(id: &str, system: &str, code: &str, when: &str) -> Value {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": cc(system, code), "effectiveDateTime": when})
    }

    fn procedure(id: &str, system: &str, code: &str, when: &str) -> Value {
        json!({"resourceType": "Procedure", "id": id, "status": "completed",
               "code": cc(system, code), "performedDateTime": when})
    }

    fn with(mut v: Value, key: &str, value: Value) -> Value {
        v[key] = value;
        v
    }

    fn derive_all(resources: Vec<Value>) -> Concepts {
        let mut all = vec![patient()];
        all.extend(resources);
        let all = crate::record::resource::from_values(&all);
        let rec = crate::record::read(m(), "p", &all, now());
        derive(m(), &rec, now())
    }

    fn refs(f: &Option<Finding>) -> Vec<String> {
        f.as_ref().map(Finding::references).unwrap_or_default()
    }

    fn note(c: &Concepts, code: DataQualityCode) -> Vec<String> {
        c.data_quality
            .iter()
            .find(|n| n.code == code)
            .map(|n| n.evidence.clone())
            .unwrap_or_default()
    }

    type Check = fn(&Concepts) -> bool;

    /// Each case: what it shows, the resources, what must hold.
    fn run(cases: Vec<(&str, Vec<Value>, Check)>) {
        let mut failed = Vec::new();
        for (name, resources, check) in cases {
            let c = derive_all(resources);
            if !check(&c) {
                failed.push(format!("{name}: {c:#?}"));
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n\n"));
    }

    #[test]
    fn partial_dates_raise_when_any_part_is_in_the_window_and_suppress_only_when_whole() {
        run(vec![
            // §1: a complaint with onset 2026-11 is recent on 2026-11-20.
            (
                "pain onset this month",
                vec![cond("a", ICD, "M79.662", "2026-11")],
                |c| c.leg_pain.is_some(),
            ),
            (
                "pain onset last year's month",
                vec![cond("a", ICD, "M79.662", "2025-11")],
                |c| c.leg_pain.is_none(),
            ),
            // Onset 2019 recorded today is not recent: the interval ends by recordedDate.
            (
                "onset 2019 recorded today",
                vec![with(
                    cond("a", ICD, "M79.662", "2019"),
                    "recordedDate",
                    json!(day(0)),
                )],
                |c| c.leg_pain.is_none(),
            ),
            // Onset 2026 recorded 2026-01-10: the interval ends 2026-01-10, not recent.
            (
                "onset this year recorded in January",
                vec![with(
                    cond("a", ICD, "M79.662", "2026"),
                    "recordedDate",
                    json!("2026-01-10"),
                )],
                |c| c.leg_pain.is_none(),
            ),
            (
                "onset this year, no recordedDate",
                vec![cond("a", ICD, "M79.662", "2026")],
                |c| c.leg_pain.is_some(),
            ),
            // The card shows the date as written.
            (
                "date as written",
                vec![cond("a", ICD, "M79.662", "2026-11")],
                |c| c.leg_pain.as_ref().unwrap().evidence[0].date.as_deref() == Some("2026-11"),
            ),
            // current-dvt suppresses: the whole interval must be within 90 days.
            (
                "DVT onset 2026 (partly older than 90 d)",
                vec![cond("d", ICD, "I82.402", "2026")],
                |c| c.current_vte.is_none() && c.previous_dvt.is_some(),
            ),
            (
                "DVT onset 2026-11 (wholly within 90 d)",
                vec![cond("d", ICD, "I82.402", "2026-11")],
                |c| c.current_vte.is_some() && c.previous_dvt.is_none(),
            ),
            // dvt-imaging suppresses: the whole interval within 7 days.
            (
                "ultrasound 2026-11 (partly older than 7 d)",
                vec![
                    json!({"resourceType": "ServiceRequest", "id": "u", "status": "active",
                    "code": cc(CPT, "93971"), "authoredOn": "2026-11"}),
                ],
                |c| c.dvt_imaging.is_none(),
            ),
            (
                "ultrasound on a day within 7 d",
                vec![
                    json!({"resourceType": "ServiceRequest", "id": "u", "status": "active",
                    "code": cc(CPT, "93971"), "authoredOn": day(7)}),
                ],
                |c| c.dvt_imaging.is_some(),
            ),
            (
                "ultrasound of an upper limb",
                vec![
                    json!({"resourceType": "ServiceRequest", "id": "u", "status": "active",
                    "code": cc(CPT, "93971"), "authoredOn": day(1),
                    "bodySite": [cc(SNOMED, "53120007")]}),
                ],
                |c| c.dvt_imaging.is_none(),
            ),
            // A whole interval in the future is ignored and noted.
            (
                "future year",
                vec![cond("a", ICD, "M79.662", "2027")],
                |c| c.leg_pain.is_none() && note(c, DataQualityCode::FutureDate) == ["Condition/a"],
            ),
            (
                "future day",
                vec![cond("a", ICD, "M79.662", "2026-11-21")],
                |c| c.leg_pain.is_none() && note(c, DataQualityCode::FutureDate) == ["Condition/a"],
            ),
            (
                "unreadable date",
                vec![cond("a", ICD, "M79.662", "last week")],
                |c| {
                    c.leg_pain.is_none()
                        && note(c, DataQualityCode::UnreadableDate) == ["Condition/a"]
                },
            ),
        ]);
    }

    #[test]
    fn clinically_relevant_date_per_resource_type() {
        run(vec![
            // Procedure: performedPeriod.end, else start.
            (
                "procedure period ends within 84 d",
                vec![
                    json!({"resourceType": "Procedure", "id": "s", "status": "completed",
                    "code": cc(CPT, "27447"),
                    "performedPeriod": {"start": day(90), "end": day(84)}}),
                ],
                |c| c.recent_surgery.is_some(),
            ),
            (
                "procedure period ends 85 d ago",
                vec![
                    json!({"resourceType": "Procedure", "id": "s", "status": "completed",
                    "code": cc(CPT, "27447"),
                    "performedPeriod": {"start": day(90), "end": day(85)}}),
                ],
                |c| c.recent_surgery.is_none(),
            ),
            // Observation: effectiveInstant, else issued.
            (
                "observation instant",
                vec![
                    json!({"resourceType": "Observation", "id": "o", "status": "final",
                    "code": cc(SNOMED, "300954003"), "effectiveInstant": "2026-11-19T08:00:00Z"}),
                ],
                |c| c.leg_pain.is_some(),
            ),
            (
                "observation issued",
                vec![
                    json!({"resourceType": "Observation", "id": "o", "status": "final",
                    "code": cc(SNOMED, "300954003"), "issued": "2026-11-19T08:00:00Z"}),
                ],
                |c| c.leg_pain.is_some(),
            ),
            // DiagnosticReport: effective, else issued.
            (
                "report issued",
                vec![
                    json!({"resourceType": "DiagnosticReport", "id": "r", "status": "final",
                    "code": cc(CPT, "93971"), "issued": "2026-11-19T08:00:00Z"}),
                ],
                |c| c.dvt_imaging.is_some(),
            ),
            // Condition: onset Age is ignored, recordedDate then.
            (
                "onsetAge, recordedDate within 14 d",
                vec![
                    json!({"resourceType": "Condition", "id": "a", "code": cc(ICD, "M79.662"),
                    "onsetAge": {"value": 40}, "recordedDate": day(2)}),
                ],
                |c| c.leg_pain.is_some(),
            ),
        ]);
    }

    #[test]
    fn abatement_and_status_end_a_condition() {
        run(vec![
            (
                "abated yesterday",
                vec![with(
                    cond("d", ICD, "I82.402", &day(30)),
                    "abatementDateTime",
                    json!(day(1)),
                )],
                |c| c.current_vte.is_none() && c.previous_dvt.is_some(),
            ),
            (
                "abatement in the future",
                vec![with(
                    cond("d", ICD, "I82.402", &day(30)),
                    "abatementDateTime",
                    json!("2027-01-01"),
                )],
                |c| c.current_vte.is_some(),
            ),
            (
                "abatement string",
                vec![with(
                    cond("d", ICD, "I82.402", &day(30)),
                    "abatementString",
                    json!("resolved"),
                )],
                |c| c.current_vte.is_none(),
            ),
            (
                "resolved",
                vec![with(
                    cond("d", ICD, "I82.402", &day(30)),
                    "clinicalStatus",
                    cc(
                        "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "resolved",
                    ),
                )],
                |c| c.current_vte.is_none() && c.previous_dvt.is_some(),
            ),
        ]);
    }

    fn stay(id: &str, status: Option<&str>, start: &str, end: Option<&str>) -> Value {
        let mut e = json!({"resourceType": "Encounter", "id": id,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "period": {"start": start}});
        if let Some(s) = status {
            e["status"] = json!(s);
        }
        if let Some(end) = end {
            e["period"]["end"] = json!(end);
        }
        e
    }

    #[test]
    fn encounter_status_decides_ongoing() {
        run(vec![
            (
                "in-progress 5 days",
                vec![stay("e", Some("in-progress"), &day(5), None)],
                |c| c.bedridden.is_some(),
            ),
            (
                "arrived 5 days",
                vec![stay("e", Some("arrived"), &day(5), None)],
                |c| c.bedridden.is_some(),
            ),
            (
                "no status, no end",
                vec![stay("e", None, &day(5), None)],
                |c| c.bedridden.is_some(),
            ),
            // Finished without an end: ended at its start (a zero-day stay), noted.
            (
                "finished without end",
                vec![stay("e", Some("finished"), &day(5), None)],
                |c| {
                    c.bedridden.is_none()
                        && note(c, DataQualityCode::EncounterWithoutEnd) == ["Encounter/e"]
                },
            ),
            (
                "finished with a future end",
                vec![stay("e", Some("finished"), &day(5), Some("2026-12-30"))],
                |c| {
                    c.bedridden.is_none()
                        && !note(c, DataQualityCode::EncounterWithoutEnd).is_empty()
                },
            ),
            (
                "cancelled",
                vec![stay("e", Some("cancelled"), &day(10), None)],
                |c| c.bedridden.is_none(),
            ),
            (
                "finished 3 days, ended 28 d ago",
                vec![stay("e", Some("finished"), &day(31), Some(&day(28)))],
                |c| c.bedridden.is_some(),
            ),
            (
                "finished 3 days, ended 29 d ago",
                vec![stay("e", Some("finished"), &day(32), Some(&day(29)))],
                |c| c.bedridden.is_none(),
            ),
            (
                "finished 2 days",
                vec![stay("e", Some("finished"), &day(12), Some(&day(10)))],
                |c| c.bedridden.is_none(),
            ),
        ]);
    }

    #[test]
    fn deceased_patient() {
        for (p, dead) in [
            (
                json!({"resourceType": "Patient", "id": "p", "deceasedBoolean": true}),
                true,
            ),
            (
                json!({"resourceType": "Patient", "id": "p", "deceasedBoolean": false}),
                false,
            ),
            (
                json!({"resourceType": "Patient", "id": "p", "deceasedDateTime": day(3)}),
                true,
            ),
            (
                json!({"resourceType": "Patient", "id": "p", "deceasedDateTime": "2027-02-01"}),
                false,
            ),
            (json!({"resourceType": "Patient", "id": "p"}), false),
        ] {
            let all = crate::record::resource::from_values(std::slice::from_ref(&p));
            let rec = crate::record::read(m(), "p", &all, now());
            let c = derive(m(), &rec, now());
            assert_eq!(c.deceased, dead, "{p}");
            // No birthDate: unknown age, noted.
            assert_eq!(note(&c, DataQualityCode::UnknownAge), ["Patient/p"]);
        }
    }

    fn med_request(id: &str, medication: (&str, Value)) -> Value {
        let mut r = json!({"resourceType": "MedicationRequest", "id": id, "status": "active",
            "intent": "order", "authoredOn": day(10), "subject": {"reference": "Patient/p"}});
        r[medication.0] = medication.1;
        r
    }

    fn medication(id: &str, code: Value) -> Value {
        json!({"resourceType": "Medication", "id": id, "code": code})
    }

    #[test]
    fn medications_by_code_reference_and_name() {
        run(vec![
            (
                "RxNorm IN",
                vec![med_request(
                    "m",
                    ("medicationCodeableConcept", cc(RXNORM, "1364430")),
                )],
                |c| c.anticoagulated.is_some(),
            ),
            (
                "RxNorm SCD",
                vec![med_request(
                    "m",
                    ("medicationCodeableConcept", cc(RXNORM, "1364445")),
                )],
                |c| c.anticoagulated.is_some(),
            ),
            (
                "text only",
                vec![med_request(
                    "m",
                    (
                        "medicationCodeableConcept",
                        json!({"text": "Eliquis 5 mg twice daily"}),
                    ),
                )],
                |c| {
                    c.anticoagulated.as_ref().unwrap().evidence[0]
                        .name
                        .as_deref()
                        == Some("Eliquis 5 mg twice daily")
                },
            ),
            (
                "display only",
                vec![med_request(
                    "m",
                    (
                        "medicationCodeableConcept",
                        json!({"coding": [{"display": "warfarin sodium 5 MG"}]}),
                    ),
                )],
                |c| c.anticoagulated.is_some(),
            ),
            (
                "contained #id",
                vec![with(
                    med_request("m", ("medicationReference", json!({"reference": "#med1"}))),
                    "contained",
                    json!([{"resourceType": "Medication", "id": "med1", "code": cc(RXNORM, "1364430")}]),
                )],
                |c| c.anticoagulated.is_some() && c.possibly_anticoagulated.is_none(),
            ),
            (
                "Medication/id in the list",
                vec![
                    med_request(
                        "m",
                        ("medicationReference", json!({"reference": "Medication/a1"})),
                    ),
                    medication(
                        "a1",
                        json!({"text": "apixaban", "coding": [{"system": RXNORM, "code": "1364430", "display": "apixaban"}]}),
                    ),
                ],
                |c| {
                    c.anticoagulated.as_ref().unwrap().evidence[0]
                        .name
                        .as_deref()
                        == Some("apixaban")
                        && c.data_quality
                            .iter()
                            .all(|n| n.code != DataQualityCode::UnresolvedMedication)
                },
            ),
            (
                "full URL reference",
                vec![
                    med_request(
                        "m",
                        (
                            "medicationReference",
                            json!({"reference": "https://ehr.example/fhir/Medication/a1/_history/3"}),
                        ),
                    ),
                    medication("a1", cc(RXNORM, "1364430")),
                ],
                |c| c.anticoagulated.is_some(),
            ),
            (
                "urn:uuid fullUrl in a Bundle",
                vec![
                    json!({"resourceType": "Bundle", "type": "searchset", "entry": [
                        {"fullUrl": "urn:uuid:0f3e", "resource": {"resourceType": "Medication", "code": cc(RXNORM, "1364430")}},
                        {"resource": med_request("m", ("medicationReference", json!({"reference": "urn:uuid:0f3e"})))},
                    ]}),
                ],
                |c| c.anticoagulated.is_some(),
            ),
            (
                "unresolved current reference",
                vec![med_request(
                    "m",
                    (
                        "medicationReference",
                        json!({"reference": "Medication/gone"}),
                    ),
                )],
                |c| {
                    c.anticoagulated.is_none()
                        && refs(&c.possibly_anticoagulated) == ["MedicationRequest/m"]
                        && note(c, DataQualityCode::UnresolvedMedication) == ["MedicationRequest/m"]
                },
            ),
            (
                "unresolved reference whose display names an anticoagulant",
                vec![med_request(
                    "m",
                    (
                        "medicationReference",
                        json!({"reference": "Medication/gone", "display": "Xarelto 20 mg"}),
                    ),
                )],
                |c| {
                    c.anticoagulated.is_some()
                        && c.possibly_anticoagulated.is_none()
                        && note(c, DataQualityCode::UnresolvedMedication) == ["MedicationRequest/m"]
                },
            ),
            (
                "unresolved but completed: not current",
                vec![with(
                    med_request(
                        "m",
                        (
                            "medicationReference",
                            json!({"reference": "Medication/gone"}),
                        ),
                    ),
                    "status",
                    json!("completed"),
                )],
                |c| c.possibly_anticoagulated.is_none() && c.data_quality.is_empty(),
            ),
            (
                "MedicationStatement",
                vec![
                    json!({"resourceType": "MedicationStatement", "id": "s", "status": "active",
                    "medicationCodeableConcept": cc(RXNORM, "11289"), "effectiveDateTime": day(40)}),
                ],
                |c| c.anticoagulated.is_some(),
            ),
            (
                "code with surrounding whitespace",
                vec![med_request(
                    "m",
                    ("medicationCodeableConcept", cc(RXNORM, " 1364430 ")),
                )],
                |c| c.anticoagulated.is_some(),
            ),
        ]);
    }

    /// §1: a branded drug (SBD) matches: by its code where the data lists it, else by the
    /// brand name in its display (the shipped data leaves SBD codes out, README 1).
    #[test]
    fn rxnorm_branded_drug_matches() {
        run(vec![(
            "RxNorm SBD with its display",
            vec![med_request(
                "m",
                (
                    "medicationCodeableConcept",
                    json!({"coding": [{"system": RXNORM, "code": "1364447",
                        "display": "apixaban 5 MG Oral Tablet [Eliquis]"}]}),
                ),
            )],
            |c| c.anticoagulated.is_some(),
        )]);
    }

    #[test]
    fn symptom_observation_negative_answers() {
        let absent = |value: (&str, Value)| {
            vec![with(
                obs("o", SNOMED, "300954003", &day(1)),
                value.0,
                value.1,
            )]
        };
        run(vec![
            (
                "valueBoolean false",
                absent(("valueBoolean", json!(false))),
                |c| c.leg_pain.is_none(),
            ),
            (
                "valueBoolean true",
                absent(("valueBoolean", json!(true))),
                |c| c.leg_pain.is_some(),
            ),
            (
                "SNOMED 2667000",
                absent(("valueCodeableConcept", cc(SNOMED, "2667000"))),
                |c| c.leg_pain.is_none(),
            ),
            (
                "SNOMED 260385009",
                absent(("valueCodeableConcept", cc(SNOMED, "260385009"))),
                |c| c.leg_pain.is_none(),
            ),
            (
                "SNOMED 373067005",
                absent(("valueCodeableConcept", cc(SNOMED, "373067005"))),
                |c| c.leg_pain.is_none(),
            ),
            (
                "SNOMED 410594000",
                absent(("valueCodeableConcept", cc(SNOMED, "410594000"))),
                |c| c.leg_pain.is_none(),
            ),
            (
                "LOINC LA32-8",
                absent(("valueCodeableConcept", cc(LOINC, "LA32-8"))),
                |c| c.leg_pain.is_none(),
            ),
            (
                "LOINC LA6577-6",
                absent(("valueCodeableConcept", cc(LOINC, "LA6577-6"))),
                |c| c.leg_pain.is_none(),
            ),
            (
                "LOINC LA33-6 (Yes)",
                absent(("valueCodeableConcept", cc(LOINC, "LA33-6"))),
                |c| c.leg_pain.is_some(),
            ),
            ("string no", absent(("valueString", json!("no"))), |c| {
                c.leg_pain.is_none()
            }),
            ("string None", absent(("valueString", json!("None"))), |c| {
                c.leg_pain.is_none()
            }),
            (
                "string NEGATIVE",
                absent(("valueString", json!("NEGATIVE"))),
                |c| c.leg_pain.is_none(),
            ),
            (
                "string absent",
                absent(("valueString", json!(" absent "))),
                |c| c.leg_pain.is_none(),
            ),
            (
                "string Denies.",
                absent(("valueString", json!("Denies."))),
                |c| c.leg_pain.is_none(),
            ),
            (
                "string severe",
                absent(("valueString", json!("severe"))),
                |c| c.leg_pain.is_some(),
            ),
            (
                "interpretation NEG",
                absent((
                    "interpretation",
                    json!([cc(
                        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "NEG"
                    )]),
                )),
                |c| c.leg_pain.is_none(),
            ),
            (
                "dataAbsentReason",
                absent((
                    "dataAbsentReason",
                    cc(
                        "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                        "unknown",
                    ),
                )),
                |c| c.leg_pain.is_none(),
            ),
            // §1: the symptom as the VALUE of a Symptom / Chief complaint Observation.
            (
                "75325-1 with value 300954003",
                vec![with(
                    obs("o", LOINC, "75325-1", &day(1)),
                    "valueCodeableConcept",
                    cc(SNOMED, "300954003"),
                )],
                |c| c.leg_pain.is_some(),
            ),
            (
                "8661-1 with value dyspnoea",
                vec![with(
                    obs("o", LOINC, "8661-1", &day(1)),
                    "valueCodeableConcept",
                    cc(SNOMED, "267036007"),
                )],
                |c| {
                    c.warning_signs
                        .iter()
                        .any(|f| f.concept == Concept::Dyspnoea)
                },
            ),
        ]);
    }

    #[test]
    fn generic_findings_and_body_sites() {
        let site = |code: &str| json!([cc(SNOMED, code)]);
        run(vec![
            (
                "pain + right lower leg",
                vec![with(
                    cond("a", SNOMED, "22253000", &day(1)),
                    "bodySite",
                    site("32696007"),
                )],
                |c| {
                    c.leg_pain
                        .as_ref()
                        .is_some_and(|f| f.side == Some(Side::Right))
                },
            ),
            (
                "swelling + left lower leg",
                vec![with(
                    cond("a", SNOMED, "65124004", &day(1)),
                    "bodySite",
                    site("48979004"),
                )],
                |c| {
                    c.leg_swelling
                        .as_ref()
                        .is_some_and(|f| f.side == Some(Side::Left))
                },
            ),
            (
                "oedema + left lower leg (Observation, single bodySite)",
                vec![with(
                    obs("a", SNOMED, "267038008", &day(1)),
                    "bodySite",
                    cc(SNOMED, "48979004"),
                )],
                |c| c.leg_swelling.is_some(),
            ),
            (
                "pain + arm",
                vec![with(
                    cond("a", SNOMED, "22253000", &day(1)),
                    "bodySite",
                    site("53120007"),
                )],
                |c| c.leg_pain.is_none(),
            ),
            (
                "pain without site",
                vec![cond("a", SNOMED, "22253000", &day(1))],
                |c| c.leg_pain.is_none(),
            ),
            (
                "R60.0 without site",
                vec![cond("a", ICD, "R60.0", &day(1))],
                |c| c.leg_swelling.is_some(),
            ),
            (
                "80068009 without site",
                vec![cond("a", SNOMED, "80068009", &day(1))],
                |c| c.leg_swelling.is_some(),
            ),
            (
                "R60.0 on an arm",
                vec![with(
                    cond("a", ICD, "R60.0", &day(1)),
                    "bodySite",
                    site("53120007"),
                )],
                |c| c.leg_swelling.is_none(),
            ),
            (
                "R60.0 with only a laterality qualifier",
                vec![with(
                    cond("a", ICD, "R60.0", &day(1)),
                    "bodySite",
                    site("7771000"),
                )],
                |c| {
                    c.leg_swelling
                        .as_ref()
                        .is_some_and(|f| f.side == Some(Side::Left))
                },
            ),
            (
                "M79.89 without site",
                vec![cond("a", ICD, "M79.89", &day(1))],
                |c| c.leg_swelling.is_none(),
            ),
            (
                "M79.89 on a leg",
                vec![with(
                    cond("a", ICD, "M79.89", &day(1)),
                    "bodySite",
                    site("32696007"),
                )],
                |c| c.leg_swelling.is_some(),
            ),
            (
                "449614009",
                vec![cond("a", SNOMED, "449614009", &day(1))],
                |c| c.leg_swelling.is_some(),
            ),
            (
                "449615005",
                vec![cond("a", SNOMED, "449615005", &day(1))],
                |c| c.leg_swelling.is_some(),
            ),
            (
                "laterality qualifier 51440002 in the codings",
                vec![with(
                    cond("a", SNOMED, "300954003", &day(1)),
                    "bodySite",
                    json!([{"coding": [{"system": SNOMED, "code": "53840002"}, {"system": SNOMED, "code": "51440002"}]}]),
                )],
                |c| {
                    c.leg_pain
                        .as_ref()
                        .is_some_and(|f| f.side == Some(Side::Bilateral))
                },
            ),
            (
                "laterality extension",
                vec![with(
                    cond("a", SNOMED, "300954003", &day(1)),
                    "bodySite",
                    json!([{"coding": [{"system": SNOMED, "code": "53840002"}],
                        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/bodySite-laterality",
                            "valueCodeableConcept": cc(SNOMED, "24028007")}]}]),
                )],
                |c| {
                    c.leg_pain
                        .as_ref()
                        .is_some_and(|f| f.side == Some(Side::Right))
                },
            ),
        ]);
    }

    fn quantity_obs(id: &str, code: &str, when: &str, value: f64, unit: &str) -> Value {
        with(
            obs(id, LOINC, code, when),
            "valueQuantity",
            json!({"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}),
        )
    }

    #[test]
    fn newest_readable_vital_wins_and_unreadable_ones_are_noted() {
        let t = |h: i64| (now() - chrono::Duration::hours(h)).to_rfc3339();
        run(vec![
            (
                "newer unreadable SpO2 never hides an older readable one",
                vec![
                    quantity_obs("old", "59408-5", &t(5), 91.0, "%"),
                    quantity_obs("new", "59408-5", &t(1), 0.9, "percent"),
                ],
                |c| {
                    c.spo2
                        .as_ref()
                        .is_some_and(|v| v.reference == "Observation/old")
                        && c.warning_signs.iter().any(|f| {
                            f.concept == Concept::Hypoxaemia
                                && f.evidence[0].name.as_deref() == Some("SpO2 91 %")
                        })
                        && note(c, DataQualityCode::UnreadableUnit) == ["Observation/new"]
                },
            ),
            (
                "heart rate {beats}/min in a panel component",
                vec![with(
                    obs("vs", LOINC, "85353-1", &t(2)),
                    "component",
                    json!([
                        {"code": cc(LOINC, "8867-4"), "valueQuantity": {"value": 120, "code": "{beats}/min", "system": "http://unitsofmeasure.org"}}
                    ]),
                )],
                |c| {
                    c.tachycardia.as_ref().is_some_and(|f| {
                        f.evidence[0].name.as_deref() == Some("Heart rate 120 /min")
                            && f.evidence[0].reference == "Observation/vs"
                    })
                },
            ),
            (
                "heart rate unit BPM is not UCUM",
                vec![quantity_obs("h", "8867-4", &t(2), 120.0, "BPM")],
                |c| {
                    c.tachycardia.is_none()
                        && note(c, DataQualityCode::UnreadableUnit) == ["Observation/h"]
                },
            ),
            (
                "coded hypoxaemia R09.02 within 3 d",
                vec![cond("h", ICD, "R09.02", &day(3))],
                |c| {
                    c.warning_signs
                        .iter()
                        .any(|f| f.concept == Concept::Hypoxaemia)
                },
            ),
            (
                "coded hypoxaemia R09.02 4 d ago",
                vec![cond("h", ICD, "R09.02", &day(4))],
                |c| {
                    c.warning_signs
                        .iter()
                        .all(|f| f.concept != Concept::Hypoxaemia)
                },
            ),
        ]);
    }

    #[test]
    fn d_dimer_unit_spellings() {
        // (unit, code, expected µg/L for a value of 1)
        let cases: &[(&str, &str, Option<f64>)] = &[
            ("ug/L", "48065-7", Some(1.0)),
            ("ng/mL", "48065-7", Some(1.0)),
            ("ng/ml", "48065-7", Some(1.0)),
            ("mg/L", "48065-7", Some(1000.0)),
            ("mg/l", "48065-7", Some(1000.0)),
            ("ug/mL", "48065-7", Some(1000.0)),
            ("ug/ml", "48065-7", Some(1000.0)),
            ("µg/L", "48065-7", Some(1.0)),
            ("mcg/mL", "48065-7", Some(1000.0)),
            ("ng/mL FEU", "48065-7", Some(1.0)),
            ("ug/mL{FEU}", "48065-7", Some(1000.0)),
            ("ng/mL DDU", "48066-5", Some(1.0)),
            ("ng/mL{DDU}", "48066-5", Some(1.0)),
            // Contradictions and unknown units: uninterpretable.
            ("ng/mL DDU", "48065-7", None),
            ("ng/mL{FEU}", "48066-5", None),
            ("NG/ML", "48065-7", None),
            ("mg/dL", "48065-7", None),
            ("ug/L{FEU}{DDU}", "48065-7", None),
        ];
        for &(unit, code, want) in cases {
            let c = derive_all(vec![quantity_obs("dd", code, &day(1), 1.0, unit)]);
            let d = c.d_dimer.clone().expect("a D-dimer");
            assert_eq!(d.value_ugl, want, "{unit} on {code}");
            assert_eq!(
                note(&c, DataQualityCode::UnreadableUnit).is_empty(),
                want.is_some(),
                "{unit} on {code}"
            );
        }
        // The newest readable one is used; a newer unreadable one is noted.
        let c = derive_all(vec![
            quantity_obs("old", "48065-7", &day(2), 700.0, "ng/mL"),
            quantity_obs("new", "48065-7", &day(1), 1.0, "mmol/L"),
        ]);
        assert_eq!(c.d_dimer.as_ref().unwrap().reference, "Observation/old");
        assert_eq!(
            note(&c, DataQualityCode::UnreadableUnit),
            ["Observation/new"]
        );
    }

    #[test]
    fn active_cancer_needs_activity_within_183_days() {
        let old_cancer = || cond("ca", ICD, "C50.911", &day(400));
        run(vec![
            ("old cancer alone: to confirm", vec![old_cancer()], |c| {
                c.active_cancer.is_none() && refs(&c.cancer_to_confirm) == ["Condition/ca"]
            }),
            (
                "onset 183 d",
                vec![cond("ca", ICD, "C50.911", &day(183))],
                |c| c.active_cancer.is_some(),
            ),
            (
                "onset 184 d",
                vec![cond("ca", ICD, "C50.911", &day(184))],
                |c| c.active_cancer.is_none() && c.cancer_to_confirm.is_some(),
            ),
            (
                "recordedDate counts only when onset is absent",
                vec![
                    json!({"resourceType": "Condition", "id": "ca", "code": cc(ICD, "C50.911"),
                    "onsetString": "years ago", "recordedDate": day(10)}),
                ],
                |c| c.active_cancer.is_none() && c.cancer_to_confirm.is_some(),
            ),
            (
                "no onset: recordedDate 10 d",
                vec![
                    json!({"resourceType": "Condition", "id": "ca", "code": cc(ICD, "C50.911"),
                    "recordedDate": day(10)}),
                ],
                |c| c.active_cancer.is_some(),
            ),
            (
                "metastatic counts without more",
                vec![cond("ca", ICD, "C78.00", &day(900))],
                |c| c.active_cancer.is_some(),
            ),
            (
                "haematological counts without more",
                vec![cond("ca", ICD, "C91.10", &day(900))],
                |c| c.active_cancer.is_some(),
            ),
            (
                "Z85 history never",
                vec![cond("ca", ICD, "Z85.3", &day(10))],
                |c| c.active_cancer.is_none() && c.cancer_to_confirm.is_none(),
            ),
            (
                "C44 squamous never",
                vec![cond("ca", ICD, "C44.92", &day(10))],
                |c| c.active_cancer.is_none() && c.cancer_to_confirm.is_none(),
            ),
            (
                "D48 uncertain never",
                vec![cond("ca", ICD, "D48.5", &day(10))],
                |c| c.active_cancer.is_none() && c.cancer_to_confirm.is_none(),
            ),
            (
                "chemo procedure 183 d",
                vec![old_cancer(), procedure("t", SNOMED, "367336001", &day(183))],
                |c| refs(&c.active_cancer) == ["Procedure/t", "Condition/ca"],
            ),
            (
                "chemo procedure 184 d",
                vec![old_cancer(), procedure("t", SNOMED, "367336001", &day(184))],
                |c| c.active_cancer.is_none(),
            ),
            (
                "radiotherapy CPT",
                vec![old_cancer(), procedure("t", CPT, "77300", &day(20))],
                |c| c.active_cancer.is_some(),
            ),
            (
                "Z51.12 Condition",
                vec![old_cancer(), cond("z", ICD, "Z51.12", &day(20))],
                |c| c.active_cancer.is_some(),
            ),
            (
                "Z51.11 Encounter reason",
                vec![
                    old_cancer(),
                    json!({"resourceType": "Encounter", "id": "e", "status": "finished",
                    "class": {"code": "AMB"}, "reasonCode": [cc(ICD, "Z51.11")],
                    "period": {"start": day(30), "end": day(30)}}),
                ],
                |c| c.active_cancer.is_some(),
            ),
            (
                "palliative care 183 d",
                vec![old_cancer(), cond("z", ICD, "Z51.5", &day(183))],
                |c| c.active_cancer.is_some(),
            ),
            (
                "palliative care 184 d",
                vec![old_cancer(), cond("z", ICD, "Z51.5", &day(184))],
                |c| c.active_cancer.is_none(),
            ),
            (
                "antineoplastic MedicationRequest (completed)",
                vec![
                    old_cancer(),
                    with(
                        med_request("t", ("medicationCodeableConcept", cc(RXNORM, "4179"))),
                        "status",
                        json!("completed"),
                    ),
                ],
                |c| c.active_cancer.is_some(),
            ),
            (
                "treatment without a cancer Condition: to confirm",
                vec![cond("z", ICD, "Z51.11", &day(20))],
                |c| c.active_cancer.is_none() && refs(&c.cancer_to_confirm) == ["Condition/z"],
            ),
        ]);
    }

    #[test]
    fn previous_and_current_vte() {
        run(vec![
            (
                "DVT 90 d: current",
                vec![cond("d", ICD, "I82.402", &day(90))],
                |c| c.current_vte.is_some() && c.previous_dvt.is_none() && c.previous_vte.is_none(),
            ),
            (
                "DVT 91 d: previous",
                vec![cond("d", ICD, "I82.402", &day(91))],
                |c| c.current_vte.is_none() && c.previous_dvt.is_some() && c.previous_vte.is_some(),
            ),
            (
                "chronic DVT recent: history only",
                vec![cond("d", ICD, "I82.502", &day(5))],
                |c| c.current_vte.is_none() && c.previous_dvt.is_some(),
            ),
            (
                "I80.1 femoral DVT recent: current",
                vec![cond("d", ICD, "I80.12", &day(5))],
                |c| c.current_vte.is_some(),
            ),
            (
                "PE recent: current, not previous DVT",
                vec![cond("p", ICD, "I26.99", &day(5))],
                |c| c.current_vte.is_some() && c.previous_dvt.is_none(),
            ),
            (
                "PE old: previous VTE only",
                vec![cond("p", ICD, "I26.99", &day(400))],
                |c| c.previous_vte.is_some() && c.previous_dvt.is_none() && c.current_vte.is_none(),
            ),
            ("Z86.718", vec![cond("h", ICD, "Z86.718", &day(5))], |c| {
                c.previous_dvt.is_some() && c.previous_vte.is_some()
            }),
            ("Z86.711", vec![cond("h", ICD, "Z86.711", &day(5))], |c| {
                c.previous_dvt.is_none() && c.previous_vte.is_some()
            }),
            (
                "SNOMED 128053003 recent",
                vec![cond("d", SNOMED, "128053003", &day(5))],
                |c| c.current_vte.is_some(),
            ),
            (
                "superficial I80.0 is not DVT",
                vec![cond("d", ICD, "I80.02", &day(5))],
                |c| c.current_vte.is_none() && c.previous_dvt.is_none(),
            ),
        ]);
    }

    fn status_obs(id: &str, when: &str, value: &str) -> Value {
        with(
            obs(id, LOINC, "82810-3", when),
            "valueCodeableConcept",
            cc(SNOMED, value),
        )
    }

    #[test]
    fn pregnancy_and_postpartum_windows() {
        run(vec![
            (
                "pregnant 294 d",
                vec![status_obs("s", &day(294), "77386006")],
                |c| c.pregnancy.is_some(),
            ),
            (
                "pregnant 295 d",
                vec![status_obs("s", &day(295), "77386006")],
                |c| c.pregnancy.is_none(),
            ),
            (
                "later not-pregnant ends it",
                vec![
                    status_obs("s", &day(50), "77386006"),
                    status_obs("n", &day(10), "60001007"),
                ],
                |c| c.pregnancy.is_none(),
            ),
            (
                "earlier not-pregnant does not",
                vec![
                    status_obs("s", &day(10), "77386006"),
                    status_obs("n", &day(50), "60001007"),
                ],
                |c| c.pregnancy.is_some(),
            ),
            (
                "positive hCG",
                vec![with(
                    obs("h", LOINC, "2106-3", &day(20)),
                    "valueCodeableConcept",
                    cc(SNOMED, "10828004"),
                )],
                |c| c.pregnancy.is_some(),
            ),
            (
                "negative hCG after a positive one",
                vec![
                    with(
                        obs("h", LOINC, "2106-3", &day(20)),
                        "valueCodeableConcept",
                        cc(SNOMED, "10828004"),
                    ),
                    with(
                        obs("n", LOINC, "2106-3", &day(5)),
                        "valueCodeableConcept",
                        cc(LOINC, "LA6577-6"),
                    ),
                ],
                |c| c.pregnancy.is_none(),
            ),
            (
                "active pregnancy Condition ended by a later loss",
                vec![
                    cond("p", SNOMED, "72892002", &day(60)),
                    cond("l", ICD, "O03.9", &day(10)),
                ],
                |c| c.pregnancy.is_none(),
            ),
            (
                "active pregnancy Condition",
                vec![cond("p", SNOMED, "72892002", &day(60))],
                |c| c.pregnancy.is_some(),
            ),
            (
                "ended by a later Synthea birth (386216000)",
                vec![
                    cond("p", SNOMED, "72892002", &day(60)),
                    procedure("b", SNOMED, "386216000", &day(10)),
                ],
                |c| c.pregnancy.is_none() && c.postpartum.is_some(),
            ),
            (
                "delivery 42 d",
                vec![procedure("b", SNOMED, "386216000", &day(42))],
                |c| c.postpartum.is_some(),
            ),
            (
                "delivery 43 d",
                vec![procedure("b", SNOMED, "386216000", &day(43))],
                |c| c.postpartum.is_none(),
            ),
            (
                "episiotomy 85548006",
                vec![procedure("b", SNOMED, "85548006", &day(3))],
                |c| c.postpartum.is_some(),
            ),
            (
                "CPT 59400",
                vec![procedure("b", CPT, "59400", &day(3))],
                |c| c.postpartum.is_some(),
            ),
            (
                "CPT 59425 is not a birth",
                vec![procedure("b", CPT, "59425", &day(3))],
                |c| c.postpartum.is_none(),
            ),
            ("O80 Condition", vec![cond("o", ICD, "O80", &day(3))], |c| {
                c.postpartum.is_some()
            }),
            (
                "Z37.0 Condition",
                vec![cond("o", ICD, "Z37.0", &day(3))],
                |c| c.postpartum.is_some(),
            ),
            (
                "Z39.2 Condition 43 d",
                vec![cond("o", ICD, "Z39.2", &day(43))],
                |c| c.postpartum.is_none(),
            ),
        ]);
    }

    #[test]
    fn rows_of_section_2() {
        run(vec![
            (
                "CPT knee replacement 84 d",
                vec![procedure("s", CPT, "27447", &day(84))],
                |c| c.recent_surgery.is_some(),
            ),
            (
                "CPT knee replacement 85 d",
                vec![procedure("s", CPT, "27447", &day(85))],
                |c| c.recent_surgery.is_none(),
            ),
            (
                "cough R05 exact",
                vec![cond("c", ICD, "R05", &day(1))],
                |c| c.warning_signs.iter().any(|f| f.concept == Concept::Cough),
            ),
            (
                "chronic cough R05.3",
                vec![cond("c", ICD, "R05.3", &day(1))],
                |c| c.warning_signs.is_empty(),
            ),
            (
                "pleuritic chest pain R07.81",
                vec![cond("c", ICD, "R07.81", &day(1))],
                |c| {
                    c.warning_signs
                        .iter()
                        .any(|f| f.concept == Concept::ChestPain)
                },
            ),
            (
                "exertional dyspnoea 60845006",
                vec![cond("c", SNOMED, "60845006", &day(1))],
                |c| {
                    c.warning_signs
                        .iter()
                        .any(|f| f.concept == Concept::Dyspnoea)
                },
            ),
            (
                "ICD-10-CM without its dot",
                vec![cond("a", ICD, "M79662", &day(1))],
                |c| c.leg_pain.is_some(),
            ),
            (
                "code with whitespace",
                vec![cond("a", ICD, " M79.662 ", &day(1))],
                |c| c.leg_pain.is_some(),
            ),
            (
                "evidence name: matched coding's display",
                vec![
                    json!({"resourceType": "Condition", "id": "a", "onsetDateTime": day(1),
                    "code": {"text": "calf pain", "coding": [
                        {"system": "http://local", "code": "x", "display": "local"},
                        {"system": ICD, "code": "M79.662", "display": "Pain in left lower leg"}]}}),
                ],
                |c| {
                    c.leg_pain.as_ref().unwrap().evidence[0].name.as_deref()
                        == Some("Pain in left lower leg")
                },
            ),
            (
                "evidence name: text when the matched coding has no display",
                vec![
                    json!({"resourceType": "Condition", "id": "a", "onsetDateTime": day(1),
                    "code": {"text": "calf pain", "coding": [{"system": ICD, "code": "M79.662"}]}}),
                ],
                |c| c.leg_pain.as_ref().unwrap().evidence[0].name.as_deref() == Some("calf pain"),
            ),
        ]);
    }
}
