//! The DVT assessment (`dvt-model.md` §1–§5, §7). Pure: plain data in, plain data out.
//!
//! - [`concepts`]: §2 concepts derived from the record.
//! - [`assess`]: §3 Wells, §4 decision and modifiers, §5 D-dimer, §7 order hooks.
//!
//! The card is rendered from the [`Assessment`] by [`crate::card`], which the
//! [`crate::pipeline`] calls: this module knows nothing of cards.

pub mod concepts;
mod decide;

use crate::cds_hooks::Hook;
use crate::record::quality::DataQualityNote;
use crate::record::resource::Resource;

pub use concepts::{Concepts, DDimer, DDimerKind, DDimerResult, Finding};
pub use decide::{
    Assessment, Category, CtpaReason, DDimerBlock, DraftOrders, Indicator, Left, LeftItem,
    PathwayNote, PePathway, Suggestion, SuggestionKind, Wells, WellsItem, WellsPe, WellsPeItem,
    WellsStatus, assess,
};

/// What the assessment needs to know about the call itself.
#[derive(Debug, Clone)]
pub struct HookInput {
    pub hook: Hook,
    pub hook_instance: String,
    pub patient_id: String,
    pub encounter_id: Option<String>,
    /// Resources of `context.draftOrders` (order hooks, §7).
    pub draft_orders: Vec<Resource>,
    /// What the FHIR layer could not read for this call (e.g. paging cut short, §6):
    /// shown on the card before the record's own notes.
    pub data_quality: Vec<DataQualityNote>,
}
