//! `dvt-model.md` §2 index presentation: the leg pain or swelling a card is about, its
//! side, and the references a suggested order gives as its reason.

use super::concept::Concept;
use super::concepts::{Concepts, Evidence, Finding, combine_sides, unique_refs};
use crate::mappings::{CodeSet, Side};
use crate::record::{Fact, Kind, Record};

/// §2 index presentation: the hook's Encounter reasonCode counts too.
pub(super) fn add_encounter_reasons(c: &mut Concepts, rec: &Record<'_>, encounter: Option<&str>) {
    let Some(enc_id) = encounter else { return };
    for f in rec
        .facts
        .iter()
        .filter(|f| f.kind == Kind::Encounter && f.id == enc_id)
    {
        for (set, slot, concept) in [
            (CodeSet::LegPain, &mut c.leg_pain, Concept::LegPain),
            (
                CodeSet::LegSwelling,
                &mut c.leg_swelling,
                Concept::LegSwelling,
            ),
        ] {
            if f.reason_codes.contains(set) {
                add_reason(slot, concept, f);
            }
        }
    }
}

/// The Encounter `f` as evidence of `concept`.
fn add_reason(slot: &mut Option<Finding>, concept: Concept, f: &Fact<'_>) {
    let finding = slot.get_or_insert_with(|| Finding {
        concept,
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

/// Side of the index presentation (left and right together: bilateral).
pub(super) fn side(c: &Concepts) -> Option<Side> {
    combine_sides(
        c.leg_pain
            .iter()
            .chain(c.leg_swelling.iter())
            .filter_map(|f| f.side),
    )
}

/// Condition / Observation references of the index presentation (a suggestion's reasons).
pub(super) fn references(c: &Concepts) -> Vec<String> {
    unique_refs(
        c.leg_pain
            .iter()
            .chain(c.leg_swelling.iter())
            .flat_map(|f| f.evidence.iter())
            .map(|e| e.reference.clone())
            .filter(|r| r.starts_with("Condition/") || r.starts_with("Observation/")),
    )
}
