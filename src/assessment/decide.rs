//! `dvt-model.md` §3 (Wells from the record), §4 (decision and modifiers), §5 (D-dimer
//! threshold) and §7 (order hooks).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::HookInput;
use super::concept::Concept;
use super::concepts::{
    self, Concepts, DDimerKind, DDimerResult, Evidence, Finding, combine_sides, unique_refs,
};
use crate::mappings::{CodeSet, CodeSets, Mappings, Side};
use crate::record::quality::{DataQualityCode, DataQualityNote};
use crate::record::{self, DataNotes, Kind};

/// The card category (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    PeWarningSigns,
    Pregnancy,
    DvtLikely,
    DvtUnlikely,
    DvtEvaluation,
    FollowUp,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::PeWarningSigns => "pe-warning-signs",
            Category::Pregnancy => "pregnancy",
            Category::DvtLikely => "dvt-likely",
            Category::DvtUnlikely => "dvt-unlikely",
            Category::DvtEvaluation => "dvt-evaluation",
            Category::FollowUp => "follow-up",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indicator {
    Info,
    Warning,
    Critical,
}

impl Indicator {
    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::Info => "info",
            Indicator::Warning => "warning",
            Indicator::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WellsStatus {
    Present,
    NotFound,
    /// §3: coded evidence that does not meet the definition on its own (a cancer on the
    /// problem list without activity): shown with its evidence, not counted.
    ToConfirm,
    NotDocumented,
}

impl WellsStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WellsStatus::Present => "present",
            WellsStatus::NotFound => "not-found",
            WellsStatus::ToConfirm => "to-confirm",
            WellsStatus::NotDocumented => "not-documented",
        }
    }
}

/// One Wells item (§3). Its label is the card's (it states windows from the mappings).
#[derive(Debug, Clone, PartialEq)]
pub struct WellsItem {
    pub id: &'static str,
    pub points: i32,
    pub status: WellsStatus,
    pub evidence: Vec<Evidence>,
}

/// §3: the Wells score the record supports.
#[derive(Debug, Clone, PartialEq)]
pub struct Wells {
    pub documented: i32,
    pub possible: i32,
    pub items: Vec<WellsItem>,
}

/// §4 rule 1: a Wells PE item (points in tenths, 15 = 1.5).
#[derive(Debug, Clone, PartialEq)]
pub struct WellsPeItem {
    pub id: &'static str,
    pub tenths: i32,
    /// Present, not-found, or not-documented ("PE the most likely diagnosis").
    pub status: WellsStatus,
    pub evidence: Vec<Evidence>,
}

/// §4 rule 1: the partial Wells PE the record supports.
#[derive(Debug, Clone, PartialEq)]
pub struct WellsPe {
    /// Sum of the present items, in tenths.
    pub documented_tenths: i32,
    pub items: Vec<WellsPeItem>,
}

/// §4 rule 4: the LEFt items.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftItem {
    pub label: &'static str,
    pub status: WellsStatus,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Left {
    pub items: Vec<LeftItem>,
    pub documented: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuggestionKind {
    Ultrasound,
    Ctpa,
    DDimer,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub kind: SuggestionKind,
    pub priority: dvt_fhir::DraftPriority,
    pub is_recommended: bool,
}

/// Why a D-dimer cannot be used (§4 rule 1, modifiers; §1 possibly anticoagulated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DDimerBlock {
    Anticoagulated,
    PossiblyAnticoagulated,
    Pregnancy,
    Postpartum,
}

/// Why rule 1 recommends CT pulmonary angiography.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtpaReason {
    /// Documented Wells PE above the threshold.
    WellsPe,
    /// A D-dimer cannot be used.
    DDimerBlocked(DDimerBlock),
    /// A positive D-dimer within the D-dimer window.
    PositiveDDimer,
}

/// §4 rule 1 (NICE NG158 PE pathway): which test comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PePathway {
    /// A VTE is already known: assess for progression or treatment failure; no test.
    KnownVte,
    Ctpa(CtpaReason),
    /// Documented Wells PE at or below the threshold and a usable D-dimer.
    DDimerFirst,
}

/// §7: whether a drafted order fits the pathway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathwayNote {
    /// Ultrasound ordered with Wells ≤ 1, no D-dimer, D-dimer usable.
    DDimerMaySpareScan,
    /// D-dimer ordered with Wells ≥ 2.
    DDimerCannotExclude,
    /// D-dimer ordered while anticoagulated.
    DDimerUnreliable,
}

/// Draft orders of an order hook (§7), by what they order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DraftOrders {
    pub ultrasound: Option<String>,
    pub d_dimer: Option<String>,
    /// The drafted D-dimer's kind when its code says it (§5); `None`: unknown (CPT 85379).
    pub d_dimer_kind: Option<DDimerKind>,
    pub ctpa: Option<String>,
}

/// The D-dimer as judged for this card (§5).
#[derive(Debug, Clone, PartialEq)]
pub struct DDimerJudged {
    pub d: concepts::DDimer,
    pub threshold: f64,
    pub age_adjusted: bool,
    pub result: DDimerResult,
}

/// Everything the card shows.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// `None`: no card.
    pub category: Option<Category>,
    pub indicator: Indicator,
    /// Why there is no card (for tests and logs; never shown).
    pub no_card_reason: Option<&'static str>,
    pub concepts: Concepts,
    pub wells: Wells,
    pub wells_pe: Option<WellsPe>,
    pub pe_pathway: Option<PePathway>,
    pub left: Option<Left>,
    pub d_dimer: Option<DDimerJudged>,
    /// Why a D-dimer cannot be used for this patient, if it cannot.
    pub d_dimer_block: Option<DDimerBlock>,
    /// Whether the D-dimer thresholds the card states are age-adjusted (§5).
    pub age_adjusted: bool,
    pub age: Option<u32>,
    /// Side of the index presentation.
    pub side: Option<Side>,
    /// Condition / Observation references of the index presentation (suggestion reasons).
    pub index_refs: Vec<String>,
    pub drafts: DraftOrders,
    /// The kind of the D-dimer this service suggests (from `[orders.d-dimer]` codings, §5).
    pub suggested_d_dimer_kind: Option<DDimerKind>,
    pub suggestions: Vec<Suggestion>,
    /// §7 pathway notes.
    pub pathway: Vec<PathwayNote>,
    /// Risk factors the record supports (§2), in a fixed order.
    pub risk_factors: Vec<Concept>,
    /// §6 data quality: the call's notes, then the record's, then the assessment's.
    pub data_quality: Vec<DataQualityNote>,
    pub notes: DataNotes,
    pub now: DateTime<Utc>,
}

impl Assessment {
    /// §6 `findings`: every §2 concept the record supports, in §2 order.
    pub fn findings(&self) -> Vec<Finding> {
        let c = &self.concepts;
        let mut out: Vec<&Finding> = [
            &c.leg_pain,
            &c.leg_swelling,
            &c.recent_surgery,
            &c.bedridden,
            &c.paralysis_or_cast,
            &c.active_cancer,
            &c.previous_dvt,
            &c.previous_vte,
            &c.current_vte,
            &c.pregnancy,
            &c.postpartum,
            &c.estrogen_use,
            &c.anticoagulated,
            &c.long_haul_travel,
        ]
        .into_iter()
        .flatten()
        .collect();
        out.extend(c.warning_signs.iter());
        out.extend(c.tachycardia.iter());
        let mut out: Vec<Finding> = out.into_iter().cloned().collect();
        if let Some(d) = &c.d_dimer {
            out.push(Finding {
                concept: Concept::DDimer,
                evidence: vec![Evidence {
                    reference: d.reference.clone(),
                    name: None,
                    date: d.date.map(|x| x.to_string()),
                }],
                date: d.date,
                side: None,
            });
        }
        out.extend(c.dvt_imaging.iter().cloned());
        out.extend(c.alternatives.iter().cloned());
        out
    }

    pub fn anticoagulated(&self) -> bool {
        self.concepts.anticoagulated.is_some()
    }

    /// §1: a current medication reference could not be resolved.
    pub fn possibly_anticoagulated(&self) -> Option<&Finding> {
        possibly_anticoagulated(&self.concepts)
    }

    /// §2 `current-dvt`: a known VTE (DVT or PE).
    pub fn current_vte(&self) -> Option<&Finding> {
        current_vte(&self.concepts)
    }
}

/// §5: a D-dimer's kind from its code sets (`None`: the code does not say, e.g. CPT 85379).
fn d_dimer_kind(codes: CodeSets) -> Option<DDimerKind> {
    match (
        codes.contains(CodeSet::DDimerFeu),
        codes.contains(CodeSet::DDimerDdu),
    ) {
        (true, false) => Some(DDimerKind::Feu),
        (false, true) => Some(DDimerKind::Ddu),
        _ => None,
    }
}

/// §5: the kind of the D-dimer this service suggests, from the codings of `[orders.d-dimer]`
/// (a site that suggests a DDU test gets DDU thresholds on its cards).
fn suggested_d_dimer_kind(m: &Mappings) -> Option<DDimerKind> {
    let mut codes = CodeSets::default();
    for c in &m.model.orders.d_dimer.codings {
        codes = codes.union(m.classify(&c.system, &c.code));
    }
    d_dimer_kind(codes)
}

/// §7: what the draft orders of an order hook order.
fn read_drafts(m: &Mappings, input: &HookInput) -> DraftOrders {
    let mut d = DraftOrders::default();
    if !input.hook.is_order_hook() {
        return d;
    }
    let mut flat = Vec::new();
    let mut skipped = 0;
    record::flatten(&input.draft_orders, &mut flat, &mut skipped);
    for r in flat {
        let rt = r.get("resourceType").and_then(Value::as_str).unwrap_or("");
        let codes = record::concept_codes(m, r.get("code")).0;
        let reference = match r.get("id").and_then(Value::as_str) {
            Some(id) => format!("{rt}/{id}"),
            None => format!("{rt} (draft)"),
        };
        if codes.contains(CodeSet::LegVeinUltrasound) && d.ultrasound.is_none() {
            d.ultrasound = Some(reference.clone());
        }
        if (codes.contains(CodeSet::DDimerOrder)
            || codes.contains(CodeSet::DDimerFeu)
            || codes.contains(CodeSet::DDimerDdu))
            && d.d_dimer.is_none()
        {
            d.d_dimer = Some(reference.clone());
            d.d_dimer_kind = d_dimer_kind(codes);
        }
        if codes.contains(CodeSet::Ctpa) && d.ctpa.is_none() {
            d.ctpa = Some(reference);
        }
    }
    d
}

/// §3: the Wells score from the record.
fn wells(c: &Concepts) -> Wells {
    let ev = |f: &Option<Finding>| f.as_ref().map(|f| f.evidence.clone());
    let coded = |id, e: Option<Vec<Evidence>>| match e {
        Some(evidence) => WellsItem {
            id,
            points: 1,
            status: WellsStatus::Present,
            evidence,
        },
        None => WellsItem {
            id,
            points: 1,
            status: WellsStatus::NotFound,
            evidence: vec![],
        },
    };
    let exam = |id| WellsItem {
        id,
        points: 1,
        status: WellsStatus::NotDocumented,
        evidence: vec![],
    };
    let bed_or_surgery = match (ev(&c.bedridden), ev(&c.recent_surgery)) {
        (None, None) => None,
        (a, b) => Some(unique_evidence(a.into_iter().chain(b).flatten())),
    };
    // §3 active-cancer: a cancer on the list without activity is `to-confirm`.
    let cancer = match (&c.active_cancer, cancer_to_confirm(c)) {
        (Some(f), _) => coded("active-cancer", Some(f.evidence.clone())),
        (None, Some(f)) => WellsItem {
            id: "active-cancer",
            points: 1,
            status: WellsStatus::ToConfirm,
            evidence: f.evidence.clone(),
        },
        (None, None) => coded("active-cancer", None),
    };
    let items = vec![
        cancer,
        coded("paralysis-or-cast", ev(&c.paralysis_or_cast)),
        coded("bedridden-or-surgery", bed_or_surgery),
        exam("deep-vein-tenderness"),
        exam("entire-leg-swollen"),
        exam("calf-swelling-3cm"),
        exam("pitting-oedema"),
        exam("collateral-veins"),
        // §3: previous-dvt (DVT only) is the Wells item; PE history is not.
        coded("previous-dvt", ev(previous_dvt(c))),
        // §3: an alternative diagnosis is clinician judgement: never subtracted; coded
        // alternatives are shown as its evidence.
        WellsItem {
            id: "alternative-diagnosis",
            points: -2,
            status: WellsStatus::NotDocumented,
            evidence: unique_evidence(c.alternatives.iter().flat_map(|a| a.evidence.clone())),
        },
    ];
    let documented = items
        .iter()
        .filter(|i| i.status == WellsStatus::Present)
        .map(|i| i.points)
        .sum();
    // §3 possible: what the examination and a check of the record could add.
    let could_add = items
        .iter()
        .filter(|i| {
            i.points > 0
                && matches!(
                    i.status,
                    WellsStatus::NotDocumented | WellsStatus::ToConfirm
                )
        })
        .map(|i| i.points)
        .sum::<i32>();
    Wells {
        documented,
        possible: documented + could_add,
        items,
    }
}

/// §4 rule 1: the partial Wells PE items the record supports.
fn wells_pe(c: &Concepts, m: &Mappings) -> WellsPe {
    let ev = |f: &Option<Finding>| f.as_ref().map(|f| f.evidence.clone()).unwrap_or_default();
    let item = |id, tenths, evidence: Option<Vec<Evidence>>| match evidence {
        Some(evidence) => WellsPeItem {
            id,
            tenths,
            status: WellsStatus::Present,
            evidence,
        },
        None => WellsPeItem {
            id,
            tenths,
            status: WellsStatus::NotFound,
            evidence: vec![],
        },
    };
    let both = (c.leg_pain.is_some() && c.leg_swelling.is_some())
        .then(|| unique_evidence(ev(&c.leg_pain).into_iter().chain(ev(&c.leg_swelling))));
    let hr = c
        .heart_rate
        .as_ref()
        .filter(|v| v.value > m.model.thresholds.pe_heart_rate_above)
        .map(|v| {
            vec![Evidence {
                reference: v.reference.clone(),
                name: None,
                date: v.date.map(|x| x.to_string()),
            }]
        });
    let immobile = (c.surgery_for_pe || c.bedridden.is_some()).then(|| {
        let mut e = ev(&c.bedridden);
        if c.surgery_for_pe {
            e = unique_evidence(e.into_iter().chain(ev(&c.recent_surgery)));
        }
        e
    });
    let haem = c
        .warning_signs
        .iter()
        .find(|f| f.concept == Concept::Haemoptysis)
        .map(|h| h.evidence.clone());
    let items = vec![
        item("dvt-signs", 30, both),
        item("heart-rate", 15, hr),
        item("immobilisation-or-surgery", 15, immobile),
        item(
            "previous-vte",
            15,
            c.previous_vte.as_ref().map(|f| f.evidence.clone()),
        ),
        item("haemoptysis", 10, haem),
        item(
            "active-cancer",
            10,
            c.active_cancer.as_ref().map(|f| f.evidence.clone()),
        ),
        // Clinician judgement: never in coded data.
        WellsPeItem {
            id: "pe-most-likely",
            tenths: 30,
            status: WellsStatus::NotDocumented,
            evidence: vec![],
        },
    ];
    let documented_tenths = items
        .iter()
        .filter(|i| i.status == WellsStatus::Present)
        .map(|i| i.tenths)
        .sum();
    WellsPe {
        documented_tenths,
        items,
    }
}

/// §4, §1: why a D-dimer cannot be used, the strongest reason first.
fn d_dimer_block(c: &Concepts) -> Option<DDimerBlock> {
    if c.anticoagulated.is_some() {
        Some(DDimerBlock::Anticoagulated)
    } else if possibly_anticoagulated(c).is_some() {
        Some(DDimerBlock::PossiblyAnticoagulated)
    } else if c.pregnancy.is_some() {
        Some(DDimerBlock::Pregnancy)
    } else if c.postpartum.is_some() {
        Some(DDimerBlock::Postpartum)
    } else {
        None
    }
}

/// §4 rule 1: which test comes first on the NICE NG158 PE pathway.
fn pe_pathway(
    known_vte: bool,
    wells_pe_above: bool,
    block: Option<DDimerBlock>,
    positive_d_dimer: bool,
) -> PePathway {
    if known_vte {
        PePathway::KnownVte
    } else if wells_pe_above {
        PePathway::Ctpa(CtpaReason::WellsPe)
    } else if let Some(b) = block {
        PePathway::Ctpa(CtpaReason::DDimerBlocked(b))
    } else if positive_d_dimer {
        PePathway::Ctpa(CtpaReason::PositiveDDimer)
    } else {
        PePathway::DDimerFirst
    }
}

/// §4 rule 1 suggestions (`at-most-one`). On the D-dimer-first path CTPA is offered too,
/// not recommended: if the clinician judges PE the most likely diagnosis, Wells PE rises by
/// 3 and CTPA is the test. Drafted orders suppress their own suggestion (§7).
fn pe_suggestions(p: PePathway, drafts: &DraftOrders) -> Vec<Suggestion> {
    use dvt_fhir::DraftPriority::Stat;
    let ctpa = |is_recommended| Suggestion {
        kind: SuggestionKind::Ctpa,
        priority: Stat,
        is_recommended,
    };
    let mut s = match p {
        PePathway::KnownVte => vec![],
        PePathway::Ctpa(_) => vec![ctpa(true)],
        PePathway::DDimerFirst => vec![
            Suggestion {
                kind: SuggestionKind::DDimer,
                priority: Stat,
                is_recommended: true,
            },
            ctpa(false),
        ],
    };
    s.retain(|x| match x.kind {
        SuggestionKind::Ctpa => drafts.ctpa.is_none(),
        SuggestionKind::DDimer => drafts.d_dimer.is_none(),
        SuggestionKind::Ultrasound => true,
    });
    s
}

/// §4 rule 4: the LEFt items (left leg, calf circumference, first trimester).
fn left(c: &Concepts, side: Option<Side>) -> Left {
    let index_ev = unique_evidence(
        c.leg_pain
            .iter()
            .chain(c.leg_swelling.iter())
            .filter(|f| matches!(f.side, Some(Side::Left | Side::Bilateral)))
            .flat_map(|f| f.evidence.clone()),
    );
    let l = match side {
        Some(Side::Left | Side::Bilateral) => LeftItem {
            label: "Left leg symptoms",
            status: WellsStatus::Present,
            evidence: index_ev,
        },
        Some(Side::Right) => LeftItem {
            label: "Left leg symptoms",
            status: WellsStatus::NotFound,
            evidence: vec![],
        },
        None => LeftItem {
            label: "Left leg symptoms",
            status: WellsStatus::NotDocumented,
            evidence: vec![],
        },
    };
    let e = LeftItem {
        label: "Calf circumference difference 2 cm or more",
        status: WellsStatus::NotDocumented,
        evidence: vec![],
    };
    let ft = match &c.first_trimester {
        Some(f) => LeftItem {
            label: "First trimester",
            status: WellsStatus::Present,
            evidence: f.evidence.clone(),
        },
        None => LeftItem {
            label: "First trimester",
            status: WellsStatus::NotFound,
            evidence: vec![],
        },
    };
    let items = vec![l, e, ft];
    let documented = items
        .iter()
        .filter(|i| i.status == WellsStatus::Present)
        .count() as i32;
    Left { items, documented }
}

/// §5: judge a D-dimer against the (age-adjusted) threshold.
fn judge(m: &Mappings, d: &concepts::DDimer, age: Option<u32>, age_adjusted: bool) -> DDimerJudged {
    let t = match d.kind {
        DDimerKind::Feu => &m.model.thresholds.d_dimer_feu,
        DDimerKind::Ddu => &m.model.thresholds.d_dimer_ddu,
    };
    let threshold = t.threshold(age, age_adjusted);
    let result = match d.value_ugl {
        None => DDimerResult::Uninterpretable,
        // A comparator bounds the value: judge only when the bound decides it.
        Some(v) => match d.comparator.as_deref().map(str::trim) {
            None | Some("") => {
                if v >= threshold {
                    DDimerResult::Positive
                } else {
                    DDimerResult::Negative
                }
            }
            Some("<") if v <= threshold => DDimerResult::Negative,
            Some("<=") if v < threshold => DDimerResult::Negative,
            Some(">" | ">=") if v >= threshold => DDimerResult::Positive,
            _ => DDimerResult::Uninterpretable,
        },
    };
    DDimerJudged {
        d: d.clone(),
        threshold,
        age_adjusted,
        result,
    }
}

/// Evidence in first-seen order, each reference once (§6: a list never repeats one).
fn unique_evidence(it: impl IntoIterator<Item = Evidence>) -> Vec<Evidence> {
    let mut out: Vec<Evidence> = Vec::new();
    for e in it {
        if !out.iter().any(|o| o.reference == e.reference) {
            out.push(e);
        }
    }
    out
}
fn cancer_to_confirm(c: &Concepts) -> Option<&Finding> {
    c.cancer_to_confirm.as_ref()
}
fn previous_dvt(c: &Concepts) -> &Option<Finding> {
    &c.previous_dvt
}
fn possibly_anticoagulated(c: &Concepts) -> Option<&Finding> {
    c.possibly_anticoagulated.as_ref()
}
fn current_vte(c: &Concepts) -> Option<&Finding> {
    c.current_vte.as_ref()
}

/// §4 rules 6–8 (Wells ≤ 1 from the record, not pregnant).
fn low_wells_category(c: &Concepts, d_dimer: Option<DDimerResult>) -> Category {
    // §4 rule 7 risk factors: the article's, and Wells's active cancer and previous VTE.
    let risk = c.recent_surgery.is_some()
        || c.bedridden.is_some()
        || c.paralysis_or_cast.is_some()
        || c.long_haul_travel.is_some()
        || c.active_cancer.is_some()
        || c.previous_vte.is_some();
    // §4 rule 6: a negative D-dimer is not used on (possible) anticoagulation: unreliable.
    let usable = c.anticoagulated.is_none() && possibly_anticoagulated(c).is_none();
    if d_dimer == Some(DDimerResult::Negative) && usable {
        Category::DvtUnlikely
    } else if risk {
        Category::DvtEvaluation
    } else {
        Category::FollowUp
    }
}

/// §4 rules 4–8 suggestions, before the modifiers.
fn dvt_suggestions(
    category: Category,
    anticoagulated: bool,
    positive_d_dimer: bool,
) -> Vec<Suggestion> {
    use SuggestionKind::{DDimer, Ultrasound};
    use dvt_fhir::DraftPriority::{Routine, Urgent};
    let ultrasound = Suggestion {
        kind: Ultrasound,
        priority: Urgent,
        is_recommended: true,
    };
    match category {
        Category::PeWarningSigns | Category::DvtUnlikely => vec![],
        Category::Pregnancy | Category::DvtLikely => vec![ultrasound],
        // §4 rule 7; modifier anticoagulated: the ultrasound replaces the D-dimer.
        Category::DvtEvaluation if positive_d_dimer || anticoagulated => vec![ultrasound],
        Category::DvtEvaluation => vec![Suggestion {
            kind: DDimer,
            priority: Urgent,
            is_recommended: true,
        }],
        Category::FollowUp => vec![Suggestion {
            kind: DDimer,
            priority: Routine,
            is_recommended: false,
        }],
    }
}

/// §7: does a drafted order fit the pathway?
fn pathway_notes(a: &Assessment, likely_at: i32) -> Vec<PathwayNote> {
    let mut out = Vec::new();
    let low = a.wells.documented < likely_at;
    if a.drafts.ultrasound.is_some()
        && low
        && a.d_dimer.is_none()
        && a.d_dimer_block.is_none()
        && matches!(
            a.category,
            Some(Category::DvtEvaluation | Category::FollowUp)
        )
    {
        out.push(PathwayNote::DDimerMaySpareScan);
    }
    if a.drafts.d_dimer.is_some() && !low {
        out.push(PathwayNote::DDimerCannotExclude);
    }
    if a.drafts.d_dimer.is_some() && a.anticoagulated() {
        out.push(PathwayNote::DDimerUnreliable);
    }
    out
}

/// Assess one hook call (§1–§5, §7).
pub fn assess(
    m: &Mappings,
    input: &HookInput,
    resources: &[Value],
    now: DateTime<Utc>,
) -> Assessment {
    let rec = record::read(m, &input.patient_id, resources, now);
    let mut c = concepts::derive(m, &rec, now);

    // §2 index presentation: the hook's Encounter reasonCode counts too.
    if let Some(enc_id) = input.encounter_id.as_deref() {
        for f in rec
            .facts
            .iter()
            .filter(|f| f.kind == Kind::Encounter && f.id == enc_id)
        {
            for (set, slot, name) in [
                (CodeSet::LegPain, &mut c.leg_pain, Concept::LegPain),
                (
                    CodeSet::LegSwelling,
                    &mut c.leg_swelling,
                    Concept::LegSwelling,
                ),
            ] {
                if f.reason_codes.contains(set) {
                    let finding = slot.get_or_insert_with(|| Finding {
                        concept: name,
                        evidence: vec![],
                        date: f.date.map(|d| d.date()),
                        side: None,
                    });
                    // The hook's Encounter may also come in a search Bundle: once only.
                    let r = f.reference();
                    if !finding.evidence.iter().any(|e| e.reference == r) {
                        finding.evidence.push(Evidence {
                            reference: r,
                            name: f.name.map(str::to_string),
                            date: f.date.map(|d| d.date().to_string()),
                        });
                    }
                    finding.side = combine_sides(finding.side.into_iter().chain(f.side));
                }
            }
        }
    }
    let drafts = read_drafts(m, input);
    // §7: a draft ultrasound counts as dvt-imaging.
    if let Some(r) = &drafts.ultrasound {
        let f = c.dvt_imaging.get_or_insert_with(|| Finding {
            concept: Concept::DvtImaging,
            evidence: vec![],
            date: Some(now.date_naive()),
            side: None,
        });
        if !f.evidence.iter().any(|e| &e.reference == r) {
            f.evidence.insert(0, Evidence::of(r.clone()));
        }
    }
    let order_index =
        drafts.ultrasound.is_some() || drafts.d_dimer.is_some() || drafts.ctpa.is_some();
    let index = c.leg_pain.is_some() || c.leg_swelling.is_some() || order_index;

    let age = rec.birth_date.and_then(|b| crate::record::age_at(b, now));
    let side = combine_sides(
        c.leg_pain
            .iter()
            .chain(c.leg_swelling.iter())
            .filter_map(|f| f.side),
    );
    let index_refs = unique_refs(
        c.leg_pain
            .iter()
            .chain(c.leg_swelling.iter())
            .flat_map(|f| f.evidence.iter())
            .map(|e| e.reference.clone())
            .filter(|r| r.starts_with("Condition/") || r.starts_with("Observation/")),
    );
    let w = wells(&c);
    let mut risk_factors = Vec::new();
    for (f, name) in [
        (&c.recent_surgery, Concept::RecentSurgery),
        (&c.bedridden, Concept::Bedridden),
        (&c.paralysis_or_cast, Concept::ParalysisOrCast),
        (&c.long_haul_travel, Concept::LongHaulTravel),
        (&c.active_cancer, Concept::ActiveCancer),
        (&c.previous_vte, Concept::PreviousVte),
        (&c.pregnancy, Concept::Pregnancy),
        (&c.postpartum, Concept::Postpartum),
        (&c.estrogen_use, Concept::EstrogenUse),
    ] {
        if f.is_some() {
            risk_factors.push(name);
        }
    }
    // §6 data quality: the call's notes, the record's, then an unknown age (§4 rule 2, §5).
    let mut data_quality: Vec<DataQualityNote> = input.data_quality.clone();
    data_quality.extend(c.data_quality.iter().cloned());
    if age.is_none()
        && !data_quality
            .iter()
            .any(|n| n.code == DataQualityCode::UnknownAge)
    {
        data_quality.push(DataQualityNote {
            code: DataQualityCode::UnknownAge,
            evidence: vec![],
        });
    }

    let mut a = Assessment {
        category: None,
        indicator: Indicator::Info,
        no_card_reason: None,
        wells_pe: None,
        pe_pathway: None,
        left: None,
        d_dimer: None,
        d_dimer_block: d_dimer_block(&c),
        age_adjusted: false,
        age,
        side,
        index_refs,
        drafts,
        suggested_d_dimer_kind: suggested_d_dimer_kind(m),
        suggestions: vec![],
        pathway: vec![],
        risk_factors,
        data_quality,
        notes: rec.notes.clone(),
        now,
        wells: w,
        concepts: c,
    };

    // §1, §4: a deceased patient gets no card; this check comes before every rule.
    if a.concepts.deceased {
        a.no_card_reason = Some("deceased");
        return a;
    }
    // §4: nothing fires without an index presentation.
    if !index {
        a.no_card_reason = Some("no index presentation");
        return a;
    }
    let c = &a.concepts;
    let t = &m.model.thresholds;
    let likely_at = t.wells_likely_at_least;
    let pregnant = c.pregnancy.is_some() || c.postpartum.is_some();
    let category = if !c.warning_signs.is_empty() {
        // §4 rule 1: any age, even anticoagulated or with a known VTE.
        Category::PeWarningSigns
    } else if age.is_some_and(|x| x < t.adult_age) {
        // §4 rule 2: out of scope (unknown age counts as adult).
        a.no_card_reason = Some("age under 18");
        return a;
    } else if current_vte(c).is_some() {
        // §4 rule 3: a current DVT or PE: already diagnosed.
        a.no_card_reason = Some("VTE already diagnosed");
        return a;
    } else if pregnant {
        Category::Pregnancy // §4 rule 4
    } else if a.wells.documented >= likely_at {
        Category::DvtLikely // §4 rule 5
    } else {
        Category::DvtUnlikely // placeholder: rules 6-8 below
    };

    // §5: age-adjusted thresholds for Wells DVT ≤ 1 and for a documented Wells PE ≤ 4;
    // not in pregnancy.
    let wells_pe = (category == Category::PeWarningSigns).then(|| wells_pe(c, m));
    let pe_above = wells_pe
        .as_ref()
        .is_some_and(|p| f64::from(p.documented_tenths) > t.wells_pe_likely_above * 10.0);
    let age_adjusted = !pregnant
        && match category {
            Category::PeWarningSigns => !pe_above,
            _ => a.wells.documented < likely_at,
        };
    a.age_adjusted = age_adjusted;
    a.d_dimer = c.d_dimer.as_ref().map(|d| judge(m, d, age, age_adjusted));
    let dd_result = a.d_dimer.as_ref().map(|d| d.result);
    let positive_dd = dd_result == Some(DDimerResult::Positive);

    let category = if category == Category::DvtUnlikely {
        low_wells_category(c, dd_result)
    } else {
        category
    };
    a.category = Some(category);
    // §4: every indicator stays as the rule set it (anticoagulated too: a clot on
    // anticoagulation is a prophylaxis or treatment failure, still urgent).
    a.indicator = match category {
        Category::PeWarningSigns => Indicator::Critical,
        Category::Pregnancy | Category::DvtLikely | Category::DvtEvaluation => Indicator::Warning,
        Category::DvtUnlikely | Category::FollowUp => Indicator::Info,
    };
    if category == Category::Pregnancy {
        a.left = c.pregnancy.is_some().then(|| left(c, a.side));
    }

    let imaging = c.dvt_imaging.is_some();
    let mut s = match &wells_pe {
        Some(_) => {
            let p = pe_pathway(
                current_vte(c).is_some(),
                pe_above,
                a.d_dimer_block,
                positive_dd,
            );
            a.pe_pathway = Some(p);
            pe_suggestions(p, &a.drafts)
        }
        None => dvt_suggestions(category, a.anticoagulated(), positive_dd),
    };
    a.wells_pe = wells_pe;
    // §4 modifiers: no D-dimer when it cannot be used (anticoagulated, possibly
    // anticoagulated, pregnant) or is already drafted (§7); no ultrasound when leg-vein
    // imaging is ordered or done within the window.
    let dd_blocked = a.d_dimer_block.is_some();
    s.retain(|x| match x.kind {
        SuggestionKind::DDimer => !dd_blocked && a.drafts.d_dimer.is_none(),
        SuggestionKind::Ultrasound => !imaging,
        SuggestionKind::Ctpa => a.drafts.ctpa.is_none(),
    });
    a.suggestions = s;
    a.pathway = pathway_notes(&a, likely_at);
    a
}

#[cfg(test)]
mod tests {
    //! Table-driven tests of the spec v2 decisions (§3, §4, §5, §7) on small records.
    use super::*;
    use crate::cds_hooks::Hook;
    use serde_json::json;

    const ICD: &str = "http://hl7.org/fhir/sid/icd-10-cm";
    const SCT: &str = "http://snomed.info/sct";
    const LOINC: &str = "http://loinc.org";
    const CPT: &str = "http://www.ama-assn.org/go/cpt";
    const RX: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

    use crate::test_support::{day, now, shipped as m};
    fn patient(age: i32) -> Value {
        json!({"resourceType": "Patient", "id": "p", "birthDate": format!("{}-06-01", 2026 - age)})
    }
    fn cond(id: &str, system: &str, code: &str, days: i64) -> Value {
        json!({"resourceType": "Condition", "id": id,
               "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
               "code": {"coding": [{"system": system, "code": code}]},
               "subject": {"reference": "Patient/p"}, "onsetDateTime": day(days)})
    }
    fn obs_qty(id: &str, code: &str, value: f64, unit: &str, days: i64) -> Value {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": {"coding": [{"system": LOINC, "code": code}]},
               "subject": {"reference": "Patient/p"}, "effectiveDateTime": day(days),
               "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
    }
    fn procedure(id: &str, days: i64) -> Value {
        json!({"resourceType": "Procedure", "id": id, "status": "completed",
               "code": {"coding": [{"system": SCT, "code": "10002003"}]},
               "subject": {"reference": "Patient/p"}, "performedDateTime": day(days)})
    }
    fn anticoagulant() -> Value {
        json!({"resourceType": "MedicationRequest", "id": "ac", "status": "active", "intent": "order",
               "medicationCodeableConcept": {"coding": [{"system": RX, "code": "1037045"}]},
               "subject": {"reference": "Patient/p"}, "authoredOn": day(20)})
    }
    fn draft(id: &str, system: &str, code: &str) -> Value {
        json!({"resourceType": "ServiceRequest", "id": id, "status": "draft", "intent": "proposal",
               "code": {"coding": [{"system": system, "code": code}]},
               "subject": {"reference": "Patient/p"}})
    }
    fn pain() -> Value {
        cond("pain", ICD, "M79.662", 2)
    }
    fn swelling() -> Value {
        cond("sw", ICD, "R22.42", 2)
    }
    fn heart_rate(v: f64) -> Value {
        obs_qty("hr", "8867-4", v, "/min", 0)
    }
    fn sob() -> Value {
        cond("sob", ICD, "R06.02", 1)
    }
    fn input(hook: Hook, drafts: Vec<Value>) -> HookInput {
        HookInput {
            hook,
            hook_instance: "t".into(),
            patient_id: "p".into(),
            encounter_id: None,
            draft_orders: drafts,
            data_quality: vec![],
        }
    }
    fn run(resources: Vec<Value>) -> Assessment {
        assess(m(), &input(Hook::PatientView, vec![]), &resources, now())
    }
    fn run_order(resources: Vec<Value>, drafts: Vec<Value>) -> Assessment {
        assess(m(), &input(Hook::OrderSign, drafts), &resources, now())
    }
    fn kinds(a: &Assessment) -> Vec<(SuggestionKind, bool)> {
        a.suggestions
            .iter()
            .map(|s| (s.kind, s.is_recommended))
            .collect()
    }

    use SuggestionKind::{Ctpa, DDimer, Ultrasound};

    #[test]
    fn rule1_ctpa_or_d_dimer_by_wells_pe_and_d_dimer_use() {
        // (name, resources, drafts, pathway, suggestions (kind, recommended))
        type Case = (
            &'static str,
            Vec<Value>,
            Vec<Value>,
            PePathway,
            Vec<(SuggestionKind, bool)>,
        );
        let cases: Vec<Case> = vec![
            (
                "Wells PE 4 (signs 3 + haemoptysis 1): D-dimer first",
                vec![patient(40), pain(), swelling(), cond("h", ICD, "R04.2", 1)],
                vec![],
                PePathway::DDimerFirst,
                vec![(DDimer, true), (Ctpa, false)],
            ),
            (
                "Wells PE 4.5 (signs 3 + heart rate 1.5): CTPA",
                vec![patient(40), pain(), swelling(), heart_rate(110.0), sob()],
                vec![],
                PePathway::Ctpa(CtpaReason::WellsPe),
                vec![(Ctpa, true)],
            ),
            (
                "heart rate exactly 100 is not > 100: Wells PE 3, D-dimer",
                vec![patient(40), pain(), swelling(), heart_rate(100.0), sob()],
                vec![],
                PePathway::DDimerFirst,
                vec![(DDimer, true), (Ctpa, false)],
            ),
            (
                "anticoagulated: CTPA, no D-dimer",
                vec![patient(40), pain(), sob(), anticoagulant()],
                vec![],
                PePathway::Ctpa(CtpaReason::DDimerBlocked(DDimerBlock::Anticoagulated)),
                vec![(Ctpa, true)],
            ),
            (
                "pregnant: CTPA, no D-dimer",
                vec![patient(30), pain(), sob(), cond("preg", ICD, "Z33.1", 40)],
                vec![],
                PePathway::Ctpa(CtpaReason::DDimerBlocked(DDimerBlock::Pregnancy)),
                vec![(Ctpa, true)],
            ),
            (
                "postpartum: CTPA, no D-dimer",
                vec![patient(30), pain(), sob(), cond("pp", ICD, "O80", 10)],
                vec![],
                PePathway::Ctpa(CtpaReason::DDimerBlocked(DDimerBlock::Postpartum)),
                vec![(Ctpa, true)],
            ),
            (
                "positive D-dimer within 3 days: CTPA",
                vec![
                    patient(40),
                    pain(),
                    sob(),
                    obs_qty("dd", "48065-7", 900.0, "ug/L", 1),
                ],
                vec![],
                PePathway::Ctpa(CtpaReason::PositiveDDimer),
                vec![(Ctpa, true)],
            ),
            (
                "negative D-dimer: still D-dimer first (the clinician may repeat or go on)",
                vec![
                    patient(40),
                    pain(),
                    sob(),
                    obs_qty("dd", "48065-7", 300.0, "ug/L", 1),
                ],
                vec![],
                PePathway::DDimerFirst,
                vec![(DDimer, true), (Ctpa, false)],
            ),
            (
                "drafted CTPA suppresses the CTPA suggestion",
                vec![patient(40), pain(), swelling(), heart_rate(120.0), sob()],
                vec![draft("ct", CPT, "71275")],
                PePathway::Ctpa(CtpaReason::WellsPe),
                vec![],
            ),
            (
                "drafted D-dimer suppresses the D-dimer suggestion only",
                vec![patient(40), pain(), sob()],
                vec![draft("dd", CPT, "85379")],
                PePathway::DDimerFirst,
                vec![(Ctpa, false)],
            ),
            (
                "known VTE: neither test",
                vec![patient(40), pain(), sob(), cond("dvt", ICD, "I82.402", 10)],
                vec![],
                PePathway::KnownVte,
                vec![],
            ),
        ];
        for (name, resources, drafts, pathway, want) in cases {
            let a = if drafts.is_empty() {
                run(resources)
            } else {
                run_order(resources, drafts)
            };
            assert_eq!(a.category, Some(Category::PeWarningSigns), "{name}");
            assert_eq!(a.indicator, Indicator::Critical, "{name}");
            assert_eq!(a.pe_pathway, Some(pathway), "{name}");
            assert_eq!(kinds(&a), want, "{name}");
            assert!(
                a.suggestions
                    .iter()
                    .all(|s| s.priority == dvt_fhir::DraftPriority::Stat),
                "{name}"
            );
        }
    }

    #[test]
    fn wells_pe_items_and_total() {
        let a = run(vec![
            patient(40),
            pain(),
            swelling(),
            heart_rate(101.0),
            procedure("s", 20),
            cond("h", ICD, "R04.2", 1),
            cond("ca", ICD, "C78.00", 30),
        ]);
        let pe = a.wells_pe.as_ref().unwrap();
        let present: Vec<(&str, i32)> = pe
            .items
            .iter()
            .filter(|i| i.status == WellsStatus::Present)
            .map(|i| (i.id, i.tenths))
            .collect();
        assert_eq!(
            present,
            vec![
                ("dvt-signs", 30),
                ("heart-rate", 15),
                ("immobilisation-or-surgery", 15),
                ("haemoptysis", 10),
                ("active-cancer", 10),
            ]
        );
        assert_eq!(pe.documented_tenths, 80);
        let judged = pe.items.iter().find(|i| i.id == "pe-most-likely").unwrap();
        assert_eq!(judged.status, WellsStatus::NotDocumented);
        // Surgery 30 days ago is outside the Wells PE 28 days: the item needs bed rest.
        let a = run(vec![patient(40), pain(), sob(), procedure("s", 30)]);
        let pe = a.wells_pe.unwrap();
        assert_eq!(pe.documented_tenths, 0);
    }

    #[test]
    fn rules_2_3_and_6_to_8() {
        type Case = (
            &'static str,
            Vec<Value>,
            Option<Category>,
            Vec<(SuggestionKind, bool)>,
        );
        let cases: Vec<Case> = vec![
            ("child: no card", vec![patient(12), pain()], None, vec![]),
            (
                "current DVT: no card",
                vec![patient(40), pain(), cond("dvt", ICD, "I82.402", 10)],
                None,
                vec![],
            ),
            (
                "current PE: no card (rule 3 covers any VTE)",
                vec![patient(40), pain(), cond("pe", ICD, "I26.99", 10)],
                None,
                vec![],
            ),
            (
                "negative D-dimer, Wells 0: dvt-unlikely",
                vec![
                    patient(40),
                    pain(),
                    obs_qty("dd", "48065-7", 300.0, "ug/L", 1),
                ],
                Some(Category::DvtUnlikely),
                vec![],
            ),
            (
                "negative D-dimer but anticoagulated: not dvt-unlikely",
                vec![
                    patient(40),
                    pain(),
                    anticoagulant(),
                    obs_qty("dd", "48065-7", 300.0, "ug/L", 1),
                ],
                Some(Category::FollowUp),
                vec![],
            ),
            (
                "rule 7 from active cancer (metastatic)",
                vec![patient(40), pain(), cond("ca", ICD, "C78.00", 400)],
                Some(Category::DvtEvaluation),
                vec![(DDimer, true)],
            ),
            (
                "rule 7 from a PE history (previous VTE)",
                vec![patient(40), pain(), cond("pe", ICD, "Z86.711", 400)],
                Some(Category::DvtEvaluation),
                vec![(DDimer, true)],
            ),
            (
                "rule 7 anticoagulated: ultrasound replaces the D-dimer, warning kept",
                vec![patient(40), pain(), procedure("s", 10), anticoagulant()],
                Some(Category::DvtEvaluation),
                vec![(Ultrasound, true)],
            ),
            (
                "rule 7 positive D-dimer: ultrasound",
                vec![
                    patient(40),
                    pain(),
                    procedure("s", 10),
                    obs_qty("dd", "48065-7", 900.0, "ug/L", 1),
                ],
                Some(Category::DvtEvaluation),
                vec![(Ultrasound, true)],
            ),
            (
                "rule 5 anticoagulated stays a warning with the ultrasound",
                vec![
                    patient(40),
                    pain(),
                    procedure("s", 10),
                    cond("ca", ICD, "C78.00", 30),
                    anticoagulant(),
                ],
                Some(Category::DvtLikely),
                vec![(Ultrasound, true)],
            ),
            (
                "rule 5 with a prior positive D-dimer: ultrasound stays",
                vec![
                    patient(40),
                    pain(),
                    procedure("s", 10),
                    cond("ca", ICD, "C78.00", 30),
                    obs_qty("dd", "48065-7", 900.0, "ug/L", 1),
                ],
                Some(Category::DvtLikely),
                vec![(Ultrasound, true)],
            ),
            (
                "rule 8: D-dimer not recommended",
                vec![patient(40), pain()],
                Some(Category::FollowUp),
                vec![(DDimer, false)],
            ),
            (
                "rule 8 anticoagulated: no D-dimer",
                vec![patient(40), pain(), anticoagulant()],
                Some(Category::FollowUp),
                vec![],
            ),
        ];
        for (name, resources, category, want) in cases {
            let a = run(resources);
            assert_eq!(a.category, category, "{name}");
            assert_eq!(kinds(&a), want, "{name}");
            if category == Some(Category::DvtEvaluation) || category == Some(Category::DvtLikely) {
                assert_eq!(a.indicator, Indicator::Warning, "{name}");
            }
        }
    }

    #[test]
    fn wells_possible_counts_exam_items_only() {
        let a = run(vec![patient(40), pain(), procedure("s", 10)]);
        assert_eq!(a.wells.documented, 1);
        // 1 documented + 5 exam items; the not-found coded items add nothing.
        assert_eq!(a.wells.possible, 6);
        let prev = a
            .wells
            .items
            .iter()
            .find(|i| i.id == "previous-dvt")
            .unwrap();
        assert_eq!(prev.status, WellsStatus::NotFound);
    }

    #[test]
    fn a_pe_history_is_not_the_wells_dvt_item() {
        let a = run(vec![patient(40), pain(), cond("pe", ICD, "Z86.711", 400)]);
        let prev = a
            .wells
            .items
            .iter()
            .find(|i| i.id == "previous-dvt")
            .unwrap();
        assert_eq!(prev.status, WellsStatus::NotFound);
        assert_eq!(a.wells.documented, 0);
        let a = run(vec![patient(40), pain(), cond("d", ICD, "Z86.718", 400)]);
        let prev = a
            .wells
            .items
            .iter()
            .find(|i| i.id == "previous-dvt")
            .unwrap();
        assert_eq!(prev.status, WellsStatus::Present);
    }

    #[test]
    fn d_dimer_kind_of_drafts_and_suggestions() {
        let cases = [
            (CPT, "85379", None),
            (LOINC, "48065-7", Some(DDimerKind::Feu)),
            (LOINC, "48066-5", Some(DDimerKind::Ddu)),
        ];
        for (system, code, kind) in cases {
            let a = run_order(vec![patient(40), pain()], vec![draft("dd", system, code)]);
            assert_eq!(a.drafts.d_dimer_kind, kind, "{code}");
        }
        // The shipped D-dimer order is coded LOINC 48065-7: FEU.
        assert_eq!(suggested_d_dimer_kind(m()), Some(DDimerKind::Feu));
    }

    #[test]
    fn order_fit_notes() {
        type Case = (&'static str, Vec<Value>, Vec<Value>, Vec<PathwayNote>);
        let cases: Vec<Case> = vec![
            (
                "ultrasound, Wells 0, no D-dimer",
                vec![patient(40), pain()],
                vec![draft("us", CPT, "93971")],
                vec![PathwayNote::DDimerMaySpareScan],
            ),
            (
                "ultrasound while anticoagulated: no note",
                vec![patient(40), pain(), anticoagulant()],
                vec![draft("us", CPT, "93971")],
                vec![],
            ),
            (
                "ultrasound with a D-dimer in the window: no note",
                vec![
                    patient(40),
                    pain(),
                    procedure("s", 10),
                    obs_qty("dd", "48065-7", 900.0, "ug/L", 1),
                ],
                vec![draft("us", CPT, "93971")],
                vec![],
            ),
            (
                "D-dimer with Wells 2",
                vec![
                    patient(40),
                    pain(),
                    procedure("s", 10),
                    cond("ca", ICD, "C78.00", 30),
                ],
                vec![draft("dd", CPT, "85379")],
                vec![PathwayNote::DDimerCannotExclude],
            ),
            (
                "D-dimer while anticoagulated",
                vec![patient(40), pain(), anticoagulant()],
                vec![draft("dd", CPT, "85379")],
                vec![PathwayNote::DDimerUnreliable],
            ),
        ];
        for (name, resources, drafts, want) in cases {
            let a = run_order(resources, drafts);
            assert_eq!(a.pathway, want, "{name}");
        }
    }

    #[test]
    fn unknown_age_is_a_data_quality_note_and_fixed_thresholds() {
        let a = run(vec![
            json!({"resourceType": "Patient", "id": "p"}),
            pain(),
            procedure("s", 10),
            obs_qty("dd", "48065-7", 600.0, "ug/L", 1),
        ]);
        assert!(
            a.data_quality
                .iter()
                .any(|n| n.code == DataQualityCode::UnknownAge)
        );
        let dd = a.d_dimer.unwrap();
        assert_eq!(dd.threshold, 500.0);
        assert_eq!(dd.result, DDimerResult::Positive);
    }

    fn unresolved_medication() -> Value {
        json!({"resourceType": "MedicationRequest", "id": "um", "status": "active", "intent": "order",
               "medicationReference": {"reference": "Medication/not-sent"},
               "subject": {"reference": "Patient/p"}, "authoredOn": day(20)})
    }

    #[test]
    fn deceased_gets_no_card_before_every_rule() {
        for extra in [
            json!({"deceasedBoolean": true}),
            json!({"deceasedDateTime": day(1)}),
        ] {
            let mut p = patient(40);
            for (k, v) in extra.as_object().unwrap() {
                p[k] = v.clone();
            }
            // Warning signs would be rule 1 (before age and everything else).
            let a = run(vec![p, pain(), sob()]);
            assert_eq!(a.category, None, "{extra}");
            assert_eq!(a.no_card_reason, Some("deceased"));
        }
    }

    #[test]
    fn possibly_anticoagulated_blocks_d_dimers_and_rule_6() {
        type Case = (
            &'static str,
            Vec<Value>,
            Option<Category>,
            Vec<(SuggestionKind, bool)>,
        );
        let cases: Vec<Case> = vec![
            (
                "negative D-dimer: not dvt-unlikely (rule 8 without a D-dimer)",
                vec![
                    patient(40),
                    pain(),
                    unresolved_medication(),
                    obs_qty("dd", "48065-7", 300.0, "ug/L", 1),
                ],
                Some(Category::FollowUp),
                vec![],
            ),
            (
                "rule 7: no D-dimer, and no ultrasound in its place",
                vec![
                    patient(40),
                    pain(),
                    procedure("s", 10),
                    unresolved_medication(),
                ],
                Some(Category::DvtEvaluation),
                vec![],
            ),
            (
                "rule 1: CTPA",
                vec![patient(40), pain(), sob(), unresolved_medication()],
                Some(Category::PeWarningSigns),
                vec![(Ctpa, true)],
            ),
        ];
        for (name, resources, category, want) in cases {
            let a = run(resources);
            assert_eq!(a.category, category, "{name}");
            assert_eq!(
                a.d_dimer_block,
                Some(DDimerBlock::PossiblyAnticoagulated),
                "{name}"
            );
            assert!(
                !a.anticoagulated(),
                "{name}: not the anticoagulated modifier"
            );
            assert_eq!(kinds(&a), want, "{name}");
            assert!(
                a.data_quality
                    .iter()
                    .any(|n| n.code == DataQualityCode::UnresolvedMedication),
                "{name}"
            );
        }
    }

    #[test]
    fn cancer_without_activity_is_to_confirm_and_not_counted() {
        let a = run(vec![patient(40), pain(), cond("ca", ICD, "C50.911", 400)]);
        let item = a
            .wells
            .items
            .iter()
            .find(|i| i.id == "active-cancer")
            .unwrap();
        assert_eq!(item.status, WellsStatus::ToConfirm);
        assert_eq!(item.evidence[0].reference, "Condition/ca");
        assert_eq!(a.wells.documented, 0);
        // 5 exam items + the cancer to confirm.
        assert_eq!(a.wells.possible, 6);
        // Not a rule 7 risk factor either.
        assert_eq!(a.category, Some(Category::FollowUp));
    }

    #[test]
    fn pe_pathway_precedence() {
        use DDimerBlock::*;
        let cases = [
            (
                (true, true, Some(Anticoagulated), true),
                PePathway::KnownVte,
            ),
            (
                (false, true, Some(Anticoagulated), true),
                PePathway::Ctpa(CtpaReason::WellsPe),
            ),
            (
                (false, false, Some(PossiblyAnticoagulated), false),
                PePathway::Ctpa(CtpaReason::DDimerBlocked(PossiblyAnticoagulated)),
            ),
            (
                (false, false, None, true),
                PePathway::Ctpa(CtpaReason::PositiveDDimer),
            ),
            ((false, false, None, false), PePathway::DDimerFirst),
        ];
        for ((known, above, block, positive), want) in cases {
            assert_eq!(pe_pathway(known, above, block, positive), want);
        }
    }
}
