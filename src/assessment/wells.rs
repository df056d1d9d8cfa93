//! `dvt-model.md` §3: the Wells score for DVT (2003) from the record: what the coded data
//! supports, and what the examination could add.

use super::concepts::{Concepts, Evidence, Finding, unique_evidence};

/// The status of a score item (Wells, Wells PE, LEFt).
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

/// The items of the Wells score for DVT (§3), in the card's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WellsCriterion {
    ActiveCancer,
    ParalysisOrCast,
    BedriddenOrSurgery,
    DeepVeinTenderness,
    EntireLegSwollen,
    CalfSwelling3cm,
    PittingOedema,
    CollateralVeins,
    PreviousDvt,
    AlternativeDiagnosis,
}

impl WellsCriterion {
    /// The item's id in the card extension (`wells.items[].id`).
    pub fn as_str(self) -> &'static str {
        match self {
            WellsCriterion::ActiveCancer => "active-cancer",
            WellsCriterion::ParalysisOrCast => "paralysis-or-cast",
            WellsCriterion::BedriddenOrSurgery => "bedridden-or-surgery",
            WellsCriterion::DeepVeinTenderness => "deep-vein-tenderness",
            WellsCriterion::EntireLegSwollen => "entire-leg-swollen",
            WellsCriterion::CalfSwelling3cm => "calf-swelling-3cm",
            WellsCriterion::PittingOedema => "pitting-oedema",
            WellsCriterion::CollateralVeins => "collateral-veins",
            WellsCriterion::PreviousDvt => "previous-dvt",
            WellsCriterion::AlternativeDiagnosis => "alternative-diagnosis",
        }
    }
}

/// One Wells item (§3). Its label is the card's (it states windows from the mappings).
#[derive(Debug, Clone, PartialEq)]
pub struct WellsItem {
    pub id: WellsCriterion,
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

/// A one-point item read from coded data: present with its evidence, or not found.
fn coded(id: WellsCriterion, evidence: Option<Vec<Evidence>>) -> WellsItem {
    let (status, evidence) = match evidence {
        Some(e) => (WellsStatus::Present, e),
        None => (WellsStatus::NotFound, vec![]),
    };
    WellsItem {
        id,
        points: 1,
        status,
        evidence,
    }
}

/// A one-point examination item: never in coded data.
fn exam(id: WellsCriterion) -> WellsItem {
    WellsItem {
        id,
        points: 1,
        status: WellsStatus::NotDocumented,
        evidence: vec![],
    }
}

fn evidence_of(f: &Option<Finding>) -> Option<Vec<Evidence>> {
    f.as_ref().map(|f| f.evidence.clone())
}

/// §3 active-cancer: a cancer on the list without activity is `to-confirm`.
fn cancer(c: &Concepts) -> WellsItem {
    match (&c.active_cancer, &c.cancer_to_confirm) {
        (Some(f), _) => coded(WellsCriterion::ActiveCancer, Some(f.evidence.clone())),
        (None, Some(f)) => WellsItem {
            id: WellsCriterion::ActiveCancer,
            points: 1,
            status: WellsStatus::ToConfirm,
            evidence: f.evidence.clone(),
        },
        (None, None) => coded(WellsCriterion::ActiveCancer, None),
    }
}

/// §3: the Wells score from the record.
pub(super) fn wells(c: &Concepts) -> Wells {
    use WellsCriterion::*;
    let bed_or_surgery = match (evidence_of(&c.bedridden), evidence_of(&c.recent_surgery)) {
        (None, None) => None,
        (a, b) => Some(unique_evidence(a.into_iter().chain(b).flatten())),
    };
    let items = vec![
        cancer(c),
        coded(ParalysisOrCast, evidence_of(&c.paralysis_or_cast)),
        coded(BedriddenOrSurgery, bed_or_surgery),
        exam(DeepVeinTenderness),
        exam(EntireLegSwollen),
        exam(CalfSwelling3cm),
        exam(PittingOedema),
        exam(CollateralVeins),
        // §3: previous-dvt (DVT only) is the Wells item; PE history is not.
        coded(PreviousDvt, evidence_of(&c.previous_dvt)),
        // §3: an alternative diagnosis is clinician judgement: never subtracted; coded
        // alternatives are shown as its evidence.
        WellsItem {
            id: AlternativeDiagnosis,
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn item(a: &crate::assessment::Assessment, id: WellsCriterion) -> &WellsItem {
        a.wells.items.iter().find(|i| i.id == id).unwrap()
    }

    #[test]
    fn wells_possible_counts_exam_items_only() {
        let a = run(vec![patient(40), pain(), procedure("s", 10)]);
        assert_eq!(a.wells.documented, 1);
        // 1 documented + 5 exam items; the not-found coded items add nothing.
        assert_eq!(a.wells.possible, 6);
        let prev = item(&a, WellsCriterion::PreviousDvt);
        assert_eq!(prev.status, WellsStatus::NotFound);
    }

    #[test]
    fn a_pe_history_is_not_the_wells_dvt_item() {
        let a = run(vec![patient(40), pain(), cond("pe", ICD, "Z86.711", 400)]);
        let prev = item(&a, WellsCriterion::PreviousDvt);
        assert_eq!(prev.status, WellsStatus::NotFound);
        assert_eq!(a.wells.documented, 0);
        let a = run(vec![patient(40), pain(), cond("d", ICD, "Z86.718", 400)]);
        let prev = item(&a, WellsCriterion::PreviousDvt);
        assert_eq!(prev.status, WellsStatus::Present);
    }

    #[test]
    fn cancer_without_activity_is_to_confirm_and_not_counted() {
        let a = run(vec![patient(40), pain(), cond("ca", ICD, "C50.911", 400)]);
        let item = item(&a, WellsCriterion::ActiveCancer);
        assert_eq!(item.status, WellsStatus::ToConfirm);
        assert_eq!(item.evidence[0].reference, "Condition/ca");
        assert_eq!(a.wells.documented, 0);
        // 5 exam items + the cancer to confirm.
        assert_eq!(a.wells.possible, 6);
        // Not a rule 7 risk factor either.
        assert_eq!(a.category, Some(Category::FollowUp));
    }
}
