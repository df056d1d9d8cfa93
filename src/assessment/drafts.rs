//! `dvt-model.md` §7: order hooks. What the draft orders order, the draft ultrasound as
//! leg-vein imaging, and whether a drafted order fits the pathway.

use chrono::{DateTime, Utc};

use super::HookInput;
use super::assess::Assessment;
use super::category::Category;
use super::concept::Concept;
use super::concepts::{Concepts, DDimerKind, Evidence, Finding};
use super::d_dimer::d_dimer_kind;
use crate::mappings::{CodeSet, Mappings};
use crate::record;
use crate::record::resource::{self, ResourceType};

/// Draft orders of an order hook (§7), by what they order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DraftOrders {
    pub ultrasound: Option<String>,
    pub d_dimer: Option<String>,
    /// The drafted D-dimer's kind when its code says it (§5); `None`: unknown (CPT 85379).
    pub d_dimer_kind: Option<DDimerKind>,
    pub ctpa: Option<String>,
}

impl DraftOrders {
    /// §7: a drafted VTE test is an index presentation on its own.
    pub fn any(&self) -> bool {
        self.ultrasound.is_some() || self.d_dimer.is_some() || self.ctpa.is_some()
    }
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

/// §7: what the draft orders of an order hook order.
pub(super) fn read_drafts(m: &Mappings, input: &HookInput) -> DraftOrders {
    let mut d = DraftOrders::default();
    if !input.hook.is_order_hook() {
        return d;
    }
    let mut flat = Vec::new();
    let mut skipped = 0;
    for draft in &input.draft_orders {
        resource::flatten(&**draft, None, &mut skipped, &mut |r, _| flat.push(r));
    }
    for r in flat {
        let rt = r.resource_type().map_or("", ResourceType::as_str);
        let codes = record::concept_codes(m, r.code.get()).0;
        let reference = match r.id() {
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

/// §7: a draft ultrasound counts as dvt-imaging (first in its evidence).
pub(super) fn add_draft_imaging(c: &mut Concepts, drafts: &DraftOrders, now: DateTime<Utc>) {
    let Some(r) = &drafts.ultrasound else { return };
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

/// §7: does a drafted order fit the pathway?
pub(super) fn pathway_notes(a: &Assessment, likely_at: i32) -> Vec<PathwayNote> {
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

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
}
