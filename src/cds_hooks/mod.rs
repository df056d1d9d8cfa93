//! Wire types of CDS Hooks 2.0 (pure: no I/O).
//!
//! - [`Hook`]: the four hooks this service answers.
//! - [`HookRequest`]: a hook call after validation ("parse, don't validate"): what the
//!   rest of the service may rely on.
//! - [`Response`], [`Card`]: what a hook call answers, typed (the JSON rule holds by
//!   construction).

use std::collections::HashMap;
use std::fmt;

use serde::de::MapAccess;

use crate::record::resource::{self, Field, Lenient, Resource, Text};

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
    pub draft_orders: Vec<Box<Resource>>,
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
    /// The prefetch object: a key that is absent, `null`, a Bundle, a resource or an
    /// OperationOutcome each mean something different (contract.md, "Prefetch").
    pub prefetch: Prefetch,
}

/// The prefetch object of a hook call: each key with its value as sent, resources typed
/// ([`Resource`], read straight from the body). A repeated key: the last wins. Hashed:
/// a body of many keys costs linear time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prefetch(HashMap<Text, Prefetched>);

/// One prefetch value.
#[derive(Debug, Clone, PartialEq)]
pub enum Prefetched {
    /// `null`: the data does not exist.
    Null,
    /// Not a JSON object (a string, a number, an array...).
    NotAnObject,
    /// An object, read as a FHIR resource (a Bundle, an OperationOutcome, ...; whether
    /// it has a `resourceType` is for the FHIR layer to judge). Boxed: the other values
    /// stay small.
    Resource(Box<Resource>),
}

impl Prefetch {
    /// Set `key` (replacing its value, if it has one).
    pub fn insert(&mut self, key: &str, value: Prefetched) {
        self.0.insert(key.into(), value);
    }

    pub fn get(&self, key: &str) -> Option<&Prefetched> {
        self.0.get(key)
    }

    /// Take `key`'s value out (the resources move; nothing is copied).
    pub fn take(&mut self, key: &str) -> Option<Prefetched> {
        self.0.remove(key)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Prefetched {
    /// A value of JSON built in code (tests, tools), read as a body's value is.
    pub fn from_value(json: &serde_json::Value) -> Prefetched {
        match json {
            serde_json::Value::Null => Prefetched::Null,
            serde_json::Value::Object(_) => match resource::from_value(json) {
                Field::Value(r) => Prefetched::Resource(Box::new(r)),
                Field::Absent | Field::Invalid => Prefetched::NotAnObject,
            },
            _ => Prefetched::NotAnObject,
        }
    }
}

impl FromIterator<(String, Prefetched)> for Prefetch {
    fn from_iter<I: IntoIterator<Item = (String, Prefetched)>>(iter: I) -> Self {
        let mut p = Prefetch::default();
        for (k, v) in iter {
            p.insert(&k, v);
        }
        p
    }
}

/// The body's `prefetch` object: every key kept, each value read as a resource.
impl<'de> Lenient<'de> for Prefetch {
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        let mut p = Prefetch::default();
        while let Some(key) = map.next_key::<Text>()? {
            if !resource::charge(Self::entry_cost(&key)) {
                // The parse is refused as a whole (`resource::within_allowance`).
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                break;
            }
            let value = match map.next_value::<Field<Prefetched>>()? {
                Field::Value(v) => v,
                Field::Absent | Field::Invalid => Prefetched::NotAnObject,
            };
            p.0.insert(key, value);
        }
        Ok(Some(p))
    }
}

impl Prefetch {
    /// What one key costs the parse's allowance: its string, and its slot in the table
    /// four times over (the table is at most about half full after it doubles, and the
    /// old table is alive while it does): `{"a":null,"b":null,...}` is 9 bytes a key.
    fn entry_cost(key: &str) -> usize {
        crate::json_cost::size_class(key.len())
            + 4 * (std::mem::size_of::<(Text, Prefetched)>() + 1)
    }
}

impl<'de> Lenient<'de> for Prefetched {
    fn from_null() -> Option<Self> {
        Some(Prefetched::Null)
    }
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        // Within the parse's allowance (`resource::within_allowance`), as a Bundle's
        // entries are.
        if !resource::charge_resource() {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            return Ok(None);
        }
        let mut resource = Box::<Resource>::default();
        resource.read_map(&mut map)?;
        Ok(Some(Prefetched::Resource(resource)))
    }
}

mod card;
mod discovery;
mod feedback;
mod json_rule;
mod request;

pub use card::{
    Action, ActionType, Card, Coding, Indicator, Link, LinkType, Response, SelectionBehavior,
    Source, Suggestion,
};
pub use discovery::{
    DiscoveryExtension, DiscoveryService, MAPPINGS_EXTENSION, MappingSetRef, SERVICE_EXTENSION,
    ServiceRef, discovery_document,
};
pub use feedback::{
    AcceptedSuggestion, FeedbackEntry, MAX_FEEDBACK_ENTRIES, Outcome, OverrideReason,
    parse_feedback,
};
pub use json_rule::violations;
pub use request::{NamedHook, RequestBody, RequestError, parse_hook_request};

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
