//! The DVT assessment (`dvt-model.md` §1–§5, §7). Pure: plain data in, plain data out.
//!
//! # Layout
//!
//! One file per clinical noun; each rule's unit tests sit beside it.
//! - [`concept`]: the names of the §2 concepts ([`Concept`]).
//! - [`concepts`]: §2, every concept derived from the record, with its evidence; the §5
//!   D-dimer units.
//! - `index`: the §2 index presentation (leg pain or swelling, the hook's Encounter
//!   reason), its side and references.
//! - `wells`: §3, the Wells score for DVT from the record.
//! - `wells_pe`: §4 rule 1, the partial Wells PE and the NICE PE pathway.
//! - `left`: §4 rule 4, the LEFt items in pregnancy.
//! - `d_dimer`: §5, the threshold and the judged result; why a D-dimer cannot be used.
//! - `category`: §4, rules 1–8 in order, why there is no card, the indicator.
//! - `suggestions`: §4, the suggested tests and the modifiers.
//! - `drafts`: §7, order hooks: the draft orders, and whether they fit the pathway.
//! - `assess`: the [`Assessment`] and [`assess`], the sequence of the steps above.
//!
//! The card is rendered from the [`Assessment`] by [`crate::card`], which the
//! [`crate::pipeline`] calls: this module knows nothing of cards.

mod assess;
mod category;
pub mod concept;
pub mod concepts;
mod d_dimer;
mod drafts;
#[cfg(test)]
mod fixtures;
mod index;
mod left;
mod suggestions;
mod wells;
mod wells_pe;

use crate::cds_hooks::Hook;
use crate::record::quality::DataQualityNote;
use crate::record::resource::Resource;

pub use assess::{Assessment, assess};
pub use category::{Category, Indicator, NoCard};
pub use concept::Concept;
pub use concepts::{Concepts, DDimer, DDimerKind, DDimerResult, Finding};
pub use d_dimer::{DDimerBlock, DDimerJudged};
pub use drafts::{DraftOrders, PathwayNote};
pub use left::{Left, LeftCriterion, LeftItem};
pub use suggestions::{Suggestion, SuggestionKind};
pub use wells::{Wells, WellsCriterion, WellsItem, WellsStatus};
pub use wells_pe::{CtpaReason, PePathway, WellsPe, WellsPeCriterion, WellsPeItem};

/// What the assessment needs to know about the call itself.
#[derive(Debug, Clone)]
pub struct HookInput {
    pub hook: Hook,
    pub hook_instance: String,
    pub patient_id: String,
    pub encounter_id: Option<String>,
    /// Resources of `context.draftOrders` (order hooks, §7).
    pub draft_orders: Vec<Box<Resource>>,
    /// What the FHIR layer could not read for this call (e.g. paging cut short, §6):
    /// shown on the card before the record's own notes.
    pub data_quality: Vec<DataQualityNote>,
}
