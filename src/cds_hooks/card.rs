//! The CDS Service Response (spec "CDS Service Response", "Card Attributes"): what a
//! hook call answers, typed. Serialised once, at the edge (the HTTP handler, the
//! `evaluate` command).
//!
//! The JSON rule (contract.md; spec "Use of JSON", requirement 3: no `null`, `""`, `[]`
//! or `{}`, except `{"cards": []}`) holds by construction: every text, list or optional
//! field is skipped when empty (a required text left empty is then missing, as the
//! service's former pruning of the rendered JSON left it). [`super::violations`] checks it in the tests.
//!
//! Fields are declared in the alphabetical order of their JSON names: serde writes a
//! struct's fields in declaration order, and so the bytes are those of the cards the
//! service built as `serde_json::Value` maps (sorted keys) before these types existed.

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// The response body: `{"cards": [...]}`. `cards` is always written, even empty (the
/// one empty value the spec asks for).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    pub cards: Vec<Card>,
}

/// Spec "Card Attributes".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    /// GitHub-flavoured Markdown.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// `{"dvt-assessment": {...}}`: the machine-readable twin of the detail. Kept as JSON
    /// because the spec leaves a card's extension open (any object a service defines);
    /// `card::render` builds it and writes no empty value into it.
    #[serde(skip_serializing_if = "is_empty_object")]
    pub extension: Value,
    pub indicator: Indicator,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub override_reasons: Vec<Coding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection_behavior: Option<SelectionBehavior>,
    #[serde(skip_serializing_if = "Source::is_empty")]
    pub source: Source,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
    /// Fewer than 140 characters.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub summary: String,
    pub uuid: Uuid,
}

/// `indicator`: how urgent the card is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Indicator {
    Info,
    Warning,
    Critical,
}

impl Indicator {
    /// The wire value (also the metrics' label).
    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::Info => "info",
            Indicator::Warning => "warning",
            Indicator::Critical => "critical",
        }
    }
}

/// Spec "Source".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub label: String,
    #[serde(skip_serializing_if = "Coding::is_empty")]
    pub topic: Coding,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url: String,
}

/// A FHIR Coding as CDS Hooks carries it (`source.topic`, `overrideReasons`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coding {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub code: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub display: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub system: String,
}

impl Source {
    /// Nothing to write (it would be `{}`).
    pub fn is_empty(&self) -> bool {
        self.label.is_empty() && self.topic.is_empty() && self.url.is_empty()
    }
}

impl Coding {
    /// Nothing to write (it would be `{}`).
    pub fn is_empty(&self) -> bool {
        self.code.is_empty() && self.display.is_empty() && self.system.is_empty()
    }
}

/// `selectionBehavior` of a card with suggestions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelectionBehavior {
    AtMostOne,
    Any,
}

/// Spec "Suggestion".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    pub is_recommended: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub label: String,
    pub uuid: Uuid,
}

/// Spec "Action".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The FHIR resource to create (a draft ServiceRequest from `dvt_fhir`): kept as
    /// JSON because a FHIR resource is open-ended data this crate only passes on.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub resource: Value,
    #[serde(rename = "type")]
    pub kind: ActionType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionType {
    Create,
    Update,
    Delete,
}

/// Spec "Link".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub label: String,
    #[serde(rename = "type")]
    pub kind: LinkType,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkType {
    Absolute,
    Smart,
}

fn is_empty_object(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bare() -> Card {
        Card {
            detail: String::new(),
            extension: json!({}),
            indicator: Indicator::Info,
            links: vec![],
            override_reasons: vec![],
            selection_behavior: None,
            source: Source {
                label: "dvt-cds".into(),
                topic: Coding {
                    code: String::new(),
                    display: String::new(),
                    system: String::new(),
                },
                url: String::new(),
            },
            suggestions: vec![],
            summary: "s".into(),
            uuid: Uuid::nil(),
        }
    }

    #[test]
    fn empty_values_are_not_written() {
        let v = serde_json::to_value(Response {
            cards: vec![bare()],
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"cards": [{"indicator": "info", "source": {"label": "dvt-cds"},
                "summary": "s", "uuid": "00000000-0000-0000-0000-000000000000"}]})
        );
        assert!(super::super::violations(&v).is_empty(), "{v}");
    }

    #[test]
    fn an_empty_response_keeps_its_cards_array() {
        let text = serde_json::to_string(&Response { cards: vec![] }).unwrap();
        assert_eq!(text, r#"{"cards":[]}"#);
    }

    #[test]
    fn wire_names_and_key_order_are_the_specs() {
        let mut card = bare();
        card.indicator = Indicator::Critical;
        card.selection_behavior = Some(SelectionBehavior::AtMostOne);
        card.links = vec![Link {
            label: "l".into(),
            kind: LinkType::Absolute,
            url: "https://x".into(),
        }];
        card.override_reasons = vec![Coding {
            code: "c".into(),
            display: String::new(),
            system: "s".into(),
        }];
        card.suggestions = vec![Suggestion {
            actions: vec![Action {
                description: "d".into(),
                resource: json!({"resourceType": "ServiceRequest"}),
                kind: ActionType::Create,
            }],
            is_recommended: false,
            label: "x".into(),
            uuid: Uuid::nil(),
        }];
        let text = serde_json::to_string(&card).unwrap();
        // The same bytes as the card built as a sorted `Value` map.
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(text, serde_json::to_string(&value).unwrap());
        assert!(text.contains(r#""indicator":"critical""#), "{text}");
        assert!(
            text.contains(r#""selectionBehavior":"at-most-one""#),
            "{text}"
        );
        assert!(text.contains(r#""type":"absolute""#), "{text}");
        assert!(text.contains(r#""type":"create""#), "{text}");
        assert!(text.contains(r#""isRecommended":false"#), "{text}");
        assert!(!text.contains("display"), "{text}");
    }
}
