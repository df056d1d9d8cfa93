//! Wire types of CDS Hooks 2.0 (pure: no I/O).
//!
//! - [`Hook`]: the four hooks this service answers.
//! - [`HookRequest`]: a hook call after validation ("parse, don't validate"): what the
//!   rest of the service may rely on.

use std::fmt;

/// The hooks dvt-cds answers. Spec: `../shared/cds-hooks/spec/hook-*.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    PatientView,
    EncounterStart,
    OrderSelect,
    OrderSign,
}

impl Hook {
    pub const ALL: [Hook; 4] = [
        Hook::PatientView,
        Hook::EncounterStart,
        Hook::OrderSelect,
        Hook::OrderSign,
    ];

    /// The hook name on the wire (`hook` field).
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::PatientView => "patient-view",
            Hook::EncounterStart => "encounter-start",
            Hook::OrderSelect => "order-select",
            Hook::OrderSign => "order-sign",
        }
    }

    /// The id of the dvt-cds service that answers this hook.
    pub fn service_id(self) -> &'static str {
        match self {
            Hook::PatientView => "dvt-patient-view",
            Hook::EncounterStart => "dvt-encounter-start",
            Hook::OrderSelect => "dvt-order-select",
            Hook::OrderSign => "dvt-order-sign",
        }
    }

    pub fn from_wire(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.as_str() == name)
    }

    pub fn from_service_id(id: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.service_id() == id)
    }

    /// Order hooks carry `context.draftOrders` (dvt-model.md §7).
    pub fn is_order_hook(self) -> bool {
        matches!(self, Hook::OrderSelect | Hook::OrderSign)
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `fhirAuthorization` of a hook request. The access token is a secret: it is never
/// logged and goes nowhere but `fhirServer` (`Debug` redacts it).
#[derive(Clone)]
pub struct FhirAuthorization {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: Option<i64>,
    pub scope: Option<String>,
    pub subject: Option<String>,
}

impl fmt::Debug for FhirAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FhirAuthorization")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// The context fields dvt-cds uses. Which are required depends on the hook.
#[derive(Debug, Clone)]
pub struct HookContext {
    pub user_id: String,
    pub patient_id: String,
    /// Required for encounter-start; optional for the others.
    pub encounter_id: Option<String>,
    /// The resources of `context.draftOrders` (order-select, order-sign), read leniently:
    /// a Bundle with or without `type`, its entries' `resource`s.
    pub draft_orders: Vec<serde_json::Value>,
    /// order-select: the ids of the orders just selected (informational).
    pub selections: Vec<String>,
}

/// A validated hook call.
#[derive(Debug, Clone)]
pub struct HookRequest {
    pub hook: Hook,
    pub hook_instance: String,
    pub fhir_server: Option<url::Url>,
    pub fhir_authorization: Option<FhirAuthorization>,
    pub context: HookContext,
    /// Raw prefetch object: a key that is absent, `null`, a Bundle, a resource or an
    /// OperationOutcome each mean something different (contract.md, "Prefetch").
    pub prefetch: serde_json::Map<String, serde_json::Value>,
}

mod discovery;
mod feedback;
mod json_rule;
mod request;

pub use discovery::{DiscoveryService, MAPPINGS_EXTENSION, MappingSetRef, discovery_document};
pub use feedback::{
    AcceptedSuggestion, FeedbackEntry, MAX_FEEDBACK_ENTRIES, Outcome, OverrideReason,
    parse_feedback,
};
pub use json_rule::{prune_empty, violations};
pub use request::{parse_hook_request, parse_hook_request_owned};

/// One thing wrong with a client's JSON: where (a JSON path such as
/// `context.patientId`) and what was expected. Becomes one OperationOutcome issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Dotted path from the body root (`feedback[0].outcome`); empty for the body itself.
    pub path: String,
    /// What is wrong and what is expected instead.
    pub message: String,
}

impl Invalid {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl HookRequest {
    /// What the assessment needs from the call.
    pub fn hook_input(&self) -> crate::assessment::HookInput {
        crate::assessment::HookInput {
            hook: self.hook,
            hook_instance: self.hook_instance.clone(),
            patient_id: self.context.patient_id.clone(),
            encounter_id: self.context.encounter_id.clone(),
            draft_orders: crate::record::resource::from_values(&self.context.draft_orders),
            data_quality: Vec::new(),
        }
    }
}
