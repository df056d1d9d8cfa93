//! One hook call assessed (`dvt-model.md` §1–§5, §7): the [`Assessment`] the card is
//! rendered from, and [`assess`], the sequence of steps that fills it.

use chrono::{DateTime, Utc};

use super::HookInput;
use super::category::{self, Category, Indicator, NoCard};
use super::concept::Concept;
use super::concepts::{self, Concepts, DDimerKind, DDimerResult, Evidence, Finding};
use super::d_dimer::{self, DDimerBlock, DDimerJudged};
use super::drafts::{self, DraftOrders, PathwayNote};
use super::index;
use super::left::{self, Left};
use super::suggestions::{self, Suggestion};
use super::wells::{self, Wells};
use super::wells_pe::{self, PePathway, WellsPe};
use crate::mappings::{Mappings, Side};
use crate::record::quality::{DataQualityCode, DataQualityNote};
use crate::record::resource::Resource;
use crate::record::{self, DataNotes, Record};

/// Everything the card shows.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// `None`: no card.
    pub category: Option<Category>,
    pub indicator: Indicator,
    /// Why there is no card (for tests and logs; never shown).
    pub no_card_reason: Option<NoCard>,
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
        self.concepts.possibly_anticoagulated.as_ref()
    }

    /// §2 `current-dvt`: a known VTE (DVT or PE).
    pub fn current_vte(&self) -> Option<&Finding> {
        self.concepts.current_vte.as_ref()
    }

    /// §4: leg symptoms, or (§7) a drafted VTE test.
    pub fn has_index_presentation(&self) -> bool {
        self.concepts.leg_pain.is_some()
            || self.concepts.leg_swelling.is_some()
            || self.drafts.any()
    }

    /// §5: the judged D-dimer is positive.
    pub fn positive_d_dimer(&self) -> bool {
        self.d_dimer
            .as_ref()
            .is_some_and(|d| d.result == DDimerResult::Positive)
    }

    /// Everything known before the §4 rules: no category yet.
    fn new(
        m: &Mappings,
        input: &HookInput,
        rec: &Record<'_>,
        c: Concepts,
        drafts: DraftOrders,
        now: DateTime<Utc>,
    ) -> Assessment {
        let age = rec.birth_date.and_then(|b| record::age_at(b, now));
        Assessment {
            category: None,
            indicator: Indicator::Info,
            no_card_reason: None,
            wells: wells::wells(&c),
            wells_pe: None,
            pe_pathway: None,
            left: None,
            d_dimer: None,
            d_dimer_block: d_dimer::d_dimer_block(&c),
            age_adjusted: false,
            age,
            side: index::side(&c),
            index_refs: index::references(&c),
            drafts,
            suggested_d_dimer_kind: d_dimer::suggested_d_dimer_kind(m),
            suggestions: vec![],
            pathway: vec![],
            risk_factors: risk_factors(&c),
            data_quality: data_quality(input, &c, age),
            notes: rec.notes.clone(),
            now,
            concepts: c,
        }
    }
}

/// §2 risk factors the record supports, in the card's order.
fn risk_factors(c: &Concepts) -> Vec<Concept> {
    [
        (&c.recent_surgery, Concept::RecentSurgery),
        (&c.bedridden, Concept::Bedridden),
        (&c.paralysis_or_cast, Concept::ParalysisOrCast),
        (&c.long_haul_travel, Concept::LongHaulTravel),
        (&c.active_cancer, Concept::ActiveCancer),
        (&c.previous_vte, Concept::PreviousVte),
        (&c.pregnancy, Concept::Pregnancy),
        (&c.postpartum, Concept::Postpartum),
        (&c.estrogen_use, Concept::EstrogenUse),
    ]
    .into_iter()
    .filter(|(f, _)| f.is_some())
    .map(|(_, name)| name)
    .collect()
}

/// §6 data quality: the call's notes, the record's, then an unknown age (§4 rule 2, §5).
fn data_quality(input: &HookInput, c: &Concepts, age: Option<u32>) -> Vec<DataQualityNote> {
    let mut out: Vec<DataQualityNote> = input.data_quality.clone();
    out.extend(c.data_quality.iter().cloned());
    if age.is_none() && !out.iter().any(|n| n.code == DataQualityCode::UnknownAge) {
        out.push(DataQualityNote {
            code: DataQualityCode::UnknownAge,
            evidence: vec![],
        });
    }
    out
}

/// Assess one hook call (§1–§5, §7).
pub fn assess(
    m: &Mappings,
    input: &HookInput,
    resources: &[Box<Resource>],
    now: DateTime<Utc>,
) -> Assessment {
    let rec = record::read(m, &input.patient_id, resources, now);
    let mut c = concepts::derive(m, &rec, now);
    index::add_encounter_reasons(&mut c, &rec, input.encounter_id.as_deref());
    let drafts = drafts::read_drafts(m, input);
    drafts::add_draft_imaging(&mut c, &drafts, now);
    let mut a = Assessment::new(m, input, &rec, c, drafts, now);
    match category::rules_1_to_5(m, &a) {
        Ok(early) => decide(m, &mut a, early),
        Err(reason) => a.no_card_reason = Some(reason),
    }
    a
}

/// §4 once rules 1–5 have not ruled the card out: the Wells PE and PE pathway (rule 1),
/// the D-dimer judged at its threshold (§5), rules 6–8, the indicator, LEFt (rule 4), the
/// suggestions with their modifiers, and the §7 notes.
fn decide(m: &Mappings, a: &mut Assessment, early: Option<Category>) {
    let likely_at = m.model.thresholds.wells_likely_at_least;
    let pe = (early == Some(Category::PeWarningSigns)).then(|| wells_pe::wells_pe(&a.concepts, m));
    let pe_above = pe.as_ref().is_some_and(|p| p.above_threshold(m));
    // §5: age-adjusted thresholds for Wells DVT ≤ 1 and for a documented Wells PE ≤ 4;
    // not in pregnancy.
    let pregnant = a.concepts.pregnancy.is_some() || a.concepts.postpartum.is_some();
    a.age_adjusted = !pregnant
        && if pe.is_some() {
            !pe_above
        } else {
            a.wells.documented < likely_at
        };
    a.d_dimer = a
        .concepts
        .d_dimer
        .as_ref()
        .map(|d| d_dimer::judge(m, d, a.age, a.age_adjusted));
    let category = early.unwrap_or_else(|| {
        category::low_wells_category(&a.concepts, a.d_dimer.as_ref().map(|d| d.result))
    });
    a.category = Some(category);
    a.indicator = category::indicator(category);
    if category == Category::Pregnancy && a.concepts.pregnancy.is_some() {
        a.left = Some(left::left(&a.concepts, a.side));
    }
    if pe.is_some() {
        a.pe_pathway = Some(wells_pe::pe_pathway(
            a.current_vte().is_some(),
            pe_above,
            a.d_dimer_block,
            a.positive_d_dimer(),
        ));
    }
    a.wells_pe = pe;
    a.suggestions = suggestions::suggest(a, category);
    a.pathway = drafts::pathway_notes(a, likely_at);
}
