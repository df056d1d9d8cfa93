//! The DVT assessment (`dvt-model.md` §1–§5, §7). Pure: plain data in, plain data out.
//!
//! - [`concepts`]: §2 concepts derived from the record.
//! - [`assess`]: §3 Wells, §4 decision and modifiers, §5 D-dimer, §7 order hooks.
//! - [`respond`]: the CDS Hooks response body (rendered by [`crate::card`]).

pub mod concept;
pub mod concepts;
mod decide;

use chrono::{DateTime, Utc};

use crate::cds_hooks::Hook;
use crate::mappings::Mappings;
use crate::record::quality::DataQualityNote;

pub use concept::Concept;
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
    pub draft_orders: Vec<serde_json::Value>,
    /// What the FHIR layer could not read for this call (e.g. paging cut short, §6):
    /// shown on the card before the record's own notes.
    pub data_quality: Vec<DataQualityNote>,
}

/// Evaluate a hook call: the CDS Hooks response body (`{"cards": [...]}`, at most one card).
pub fn respond(
    mappings: &Mappings,
    input: &HookInput,
    resources: &[serde_json::Value],
    now: DateTime<Utc>,
) -> serde_json::Value {
    let a = assess(mappings, input, resources, now);
    match crate::card::render(mappings, input, &a) {
        Some(card) => serde_json::json!({ "cards": [card] }),
        None => serde_json::json!({ "cards": [] }),
    }
}
