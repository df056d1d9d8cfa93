//! `dvt-model.md` §4 rule 4: the LEFt items in pregnancy (Wells is not validated there).

use super::concepts::{Concepts, Evidence, unique_evidence};
use super::wells::WellsStatus;
use crate::mappings::Side;

/// The LEFt items (§4 rule 4), in the card's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftCriterion {
    /// Symptoms in the left leg.
    LeftLeg,
    /// Calf circumference difference of 2 cm or more ("Edema").
    CalfCircumference,
    /// First trimester.
    FirstTrimester,
}

/// One LEFt item (one point each).
#[derive(Debug, Clone, PartialEq)]
pub struct LeftItem {
    pub id: LeftCriterion,
    pub status: WellsStatus,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Left {
    pub items: Vec<LeftItem>,
    pub documented: i32,
}

/// "L": the index presentation's side; its left-sided evidence.
fn left_leg(c: &Concepts, side: Option<Side>) -> LeftItem {
    let (status, evidence) = match side {
        Some(Side::Left | Side::Bilateral) => (
            WellsStatus::Present,
            unique_evidence(
                c.leg_pain
                    .iter()
                    .chain(c.leg_swelling.iter())
                    .filter(|f| matches!(f.side, Some(Side::Left | Side::Bilateral)))
                    .flat_map(|f| f.evidence.clone()),
            ),
        ),
        Some(Side::Right) => (WellsStatus::NotFound, vec![]),
        None => (WellsStatus::NotDocumented, vec![]),
    };
    LeftItem {
        id: LeftCriterion::LeftLeg,
        status,
        evidence,
    }
}

/// §4 rule 4: the LEFt items (left leg, calf circumference, first trimester).
pub(super) fn left(c: &Concepts, side: Option<Side>) -> Left {
    let circumference = LeftItem {
        id: LeftCriterion::CalfCircumference,
        status: WellsStatus::NotDocumented,
        evidence: vec![],
    };
    let (status, evidence) = match &c.first_trimester {
        Some(f) => (WellsStatus::Present, f.evidence.clone()),
        None => (WellsStatus::NotFound, vec![]),
    };
    let trimester = LeftItem {
        id: LeftCriterion::FirstTrimester,
        status,
        evidence,
    };
    let items = vec![left_leg(c, side), circumference, trimester];
    let documented = items
        .iter()
        .filter(|i| i.status == WellsStatus::Present)
        .count() as i32;
    Left { items, documented }
}
