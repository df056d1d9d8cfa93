//! Feedback (`POST /cds-services/{id}/feedback`). Spec: `cds-hooks-2.0.1.md` "Feedback";
//! invariants cds-fb-1..3 of the 3.0 logical model.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Invalid;
use super::request::kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Accepted,
    Overridden,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Overridden => "overridden",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptedSuggestion {
    pub id: uuid::Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OverrideReason {
    /// A Coding, kept as sent (its display may be absent in feedback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_comment: Option<String>,
}

/// One validated feedback entry. Serialises back to the wire shape in a fixed field
/// order, which makes it usable as the key for de-duplication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackEntry {
    pub card: uuid::Uuid,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_suggestions: Vec<AcceptedSuggestion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<OverrideReason>,
    /// As sent (RFC 3339), so a resubmission is recognised byte for byte.
    pub outcome_timestamp: String,
}

/// Most feedback entries one call may carry. A user acts on one card at a time; the
/// spec's examples send one. The limit is checked before any entry is read, so a body of
/// thousands of entries costs no per-entry work (and no thousands of issues).
pub const MAX_FEEDBACK_ENTRIES: usize = 100;

/// Parse and validate a feedback body: `{"feedback": [ ... ]}` with 1 to
/// [`MAX_FEEDBACK_ENTRIES`] entries.
pub fn parse_feedback(body: &Value) -> Result<Vec<FeedbackEntry>, Vec<Invalid>> {
    let Some(obj) = body.as_object() else {
        return Err(vec![Invalid::new(
            "",
            format!(
                "expected a JSON object {{\"feedback\": [...]}}, got {}",
                kind(body)
            ),
        )]);
    };
    let items = match obj.get("feedback") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => {
            return Err(vec![Invalid::new(
                "feedback",
                "expected at least one feedback entry",
            )]);
        }
        None => {
            return Err(vec![Invalid::new(
                "feedback",
                "required: expected an array of feedback entries",
            )]);
        }
        Some(v) => {
            return Err(vec![Invalid::new(
                "feedback",
                format!("expected an array of feedback entries, got {}", kind(v)),
            )]);
        }
    };
    if items.len() > MAX_FEEDBACK_ENTRIES {
        return Err(vec![Invalid::new(
            "feedback",
            format!(
                "at most {MAX_FEEDBACK_ENTRIES} feedback entries per call, got {}: send them in \
                 several calls",
                items.len()
            ),
        )]);
    }
    let mut errs = Vec::new();
    let mut entries = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("feedback[{i}]");
        match item {
            Value::Object(e) => {
                if let Some(entry) = parse_entry(&path, e, &mut errs) {
                    entries.push(entry);
                }
            }
            v => errs.push(Invalid::new(
                path,
                format!("expected an object, got {}", kind(v)),
            )),
        }
    }
    if errs.is_empty() {
        Ok(entries)
    } else {
        Err(errs)
    }
}

fn parse_entry(
    path: &str,
    e: &Map<String, Value>,
    errs: &mut Vec<Invalid>,
) -> Option<FeedbackEntry> {
    let before = errs.len();
    let card = uuid_field(
        e.get("card"),
        &format!("{path}.card"),
        "the card.uuid of a card we sent",
        errs,
    );

    let outcome = match e.get("outcome").and_then(Value::as_str) {
        Some("accepted") => Some(Outcome::Accepted),
        Some("overridden") => Some(Outcome::Overridden),
        _ => {
            errs.push(Invalid::new(
                format!("{path}.outcome"),
                "expected \"accepted\" or \"overridden\"",
            ));
            None
        }
    };

    let mut accepted_suggestions = Vec::new();
    match e.get("acceptedSuggestions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (j, s) in items.iter().enumerate() {
                let p = format!("{path}.acceptedSuggestions[{j}].id");
                if let Some(id) = uuid_field(
                    s.get("id"),
                    &p,
                    "the suggestion.uuid that was accepted",
                    errs,
                ) {
                    accepted_suggestions.push(AcceptedSuggestion { id });
                }
            }
        }
        Some(v) => errs.push(Invalid::new(
            format!("{path}.acceptedSuggestions"),
            format!("expected an array of {{\"id\": uuid}}, got {}", kind(v)),
        )),
    }
    // cds-fb-2: accepted implies acceptedSuggestions.
    if outcome == Some(Outcome::Accepted) && accepted_suggestions.is_empty() && errs.len() == before
    {
        errs.push(Invalid::new(
            format!("{path}.acceptedSuggestions"),
            "required when outcome is \"accepted\": the suggestions the user accepted",
        ));
    }

    let override_reason = match e.get("overrideReason") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => {
            let reason = match o.get("reason") {
                None | Some(Value::Null) => None,
                Some(r @ Value::Object(c))
                    if c.get("code")
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty()) =>
                {
                    Some(r.clone())
                }
                Some(_) => {
                    errs.push(Invalid::new(
                        format!("{path}.overrideReason.reason"),
                        "expected a Coding with a code (one of the card's overrideReasons)",
                    ));
                    None
                }
            };
            let user_comment = match o.get("userComment") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(_) => {
                    errs.push(Invalid::new(
                        format!("{path}.overrideReason.userComment"),
                        "expected a non-empty string",
                    ));
                    None
                }
            };
            // cds-fb-3: a reason, a userComment, or both.
            if reason.is_none() && user_comment.is_none() {
                errs.push(Invalid::new(
                    format!("{path}.overrideReason"),
                    "expected reason (a Coding) and/or userComment",
                ));
            }
            Some(OverrideReason {
                reason,
                user_comment,
            })
        }
        Some(v) => {
            errs.push(Invalid::new(
                format!("{path}.overrideReason"),
                format!("expected an object, got {}", kind(v)),
            ));
            None
        }
    };

    let outcome_timestamp = match e.get("outcomeTimestamp").and_then(Value::as_str) {
        Some(s) if DateTime::<FixedOffset>::parse_from_rfc3339(s).is_ok() => Some(s.to_string()),
        _ => {
            errs.push(Invalid::new(
                format!("{path}.outcomeTimestamp"),
                "expected an RFC 3339 date-time, e.g. 2021-12-11T10:05:31Z",
            ));
            None
        }
    };

    if errs.len() != before {
        return None;
    }
    Some(FeedbackEntry {
        card: card?,
        outcome: outcome?,
        accepted_suggestions,
        override_reason,
        outcome_timestamp: outcome_timestamp?,
    })
}

fn uuid_field(
    v: Option<&Value>,
    path: &str,
    what: &str,
    errs: &mut Vec<Invalid>,
) -> Option<uuid::Uuid> {
    let parsed = v
        .and_then(Value::as_str)
        .map(|s| s.strip_prefix("urn:uuid:").unwrap_or(s))
        .and_then(|s| uuid::Uuid::parse_str(s).ok());
    if parsed.is_none() {
        errs.push(Invalid::new(path, format!("expected a UUID: {what}")));
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_examples_parse() {
        let accepted = json!({"feedback": [{"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
            "outcome": "accepted", "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
            "outcomeTimestamp": "2021-12-11T10:05:31Z"}]});
        assert_eq!(
            parse_feedback(&accepted).unwrap()[0].outcome,
            Outcome::Accepted
        );
        let overridden = json!({"feedback": [{"card": "9368d37b-283f-44a0-93ea-547cebab93ed",
            "outcome": "overridden", "overrideReason": {"reason": {"code": "d7ecf885",
            "system": "https://example.com/cds-hooks/override-reason-system"},
            "userComment": "A comment entered by the clinician."},
            "outcomeTimestamp": "2020-12-11T00:00:00Z"}]});
        assert!(
            parse_feedback(&overridden).unwrap()[0]
                .override_reason
                .is_some()
        );
    }

    #[test]
    fn more_than_the_limit_is_one_issue() {
        let entry = json!({"card": "9368d37b-283f-44a0-93ea-547cebab93ed", "outcome": "overridden",
            "overrideReason": {"userComment": "x"}, "outcomeTimestamp": "2020-12-11T00:00:00Z"});
        let at_limit = json!({"feedback": vec![entry.clone(); MAX_FEEDBACK_ENTRIES]});
        assert_eq!(
            parse_feedback(&at_limit).unwrap().len(),
            MAX_FEEDBACK_ENTRIES
        );
        // Past it, even invalid entries are not read: one issue names the limit.
        let past = json!({"feedback": vec![json!({}); MAX_FEEDBACK_ENTRIES + 1]});
        let errs = parse_feedback(&past).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, "feedback");
        assert!(
            errs[0].message.contains("at most 100"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn each_rule_names_its_field() {
        let bad = json!({"feedback": [
            {"card": "nope", "outcome": "overridden", "outcomeTimestamp": "2020-12-11T00:00:00Z"},
            {"card": "9368d37b-283f-44a0-93ea-547cebab93ed", "outcome": "ignored", "outcomeTimestamp": "2020-12-11T00:00:00Z"},
            {"card": "9368d37b-283f-44a0-93ea-547cebab93ed", "outcome": "accepted", "outcomeTimestamp": "2020-12-11T00:00:00Z"},
            {"card": "9368d37b-283f-44a0-93ea-547cebab93ed", "outcome": "overridden", "overrideReason": {}, "outcomeTimestamp": "2020-12-11T00:00:00Z"},
            {"card": "9368d37b-283f-44a0-93ea-547cebab93ed", "outcome": "overridden", "outcomeTimestamp": "yesterday"}
        ]});
        let paths: Vec<String> = parse_feedback(&bad)
            .unwrap_err()
            .into_iter()
            .map(|i| i.path)
            .collect();
        assert_eq!(
            paths,
            [
                "feedback[0].card",
                "feedback[1].outcome",
                "feedback[2].acceptedSuggestions",
                "feedback[3].overrideReason",
                "feedback[4].outcomeTimestamp",
            ]
        );
    }
}
