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

/// One feedback entry (`path` is `feedback[i]`): every problem goes to `errs`, and the
/// entry is returned only when it has none.
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
    let outcome = parse_outcome(path, e.get("outcome"), errs);
    let accepted_suggestions = parse_accepted_suggestions(path, e.get("acceptedSuggestions"), errs);
    // cds-fb-2: accepted implies acceptedSuggestions (said only when nothing above was
    // wrong, so a bad suggestion id is not also reported as a missing one).
    if outcome == Some(Outcome::Accepted) && accepted_suggestions.is_empty() && errs.len() == before
    {
        errs.push(Invalid::new(
            format!("{path}.acceptedSuggestions"),
            "required when outcome is \"accepted\": the suggestions the user accepted",
        ));
    }
    let override_reason = parse_override_reason(path, e.get("overrideReason"), errs);
    let outcome_timestamp = parse_outcome_timestamp(path, e.get("outcomeTimestamp"), errs);

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

/// `outcome`: `"accepted"` or `"overridden"`.
fn parse_outcome(path: &str, v: Option<&Value>, errs: &mut Vec<Invalid>) -> Option<Outcome> {
    match v.and_then(Value::as_str) {
        Some("accepted") => Some(Outcome::Accepted),
        Some("overridden") => Some(Outcome::Overridden),
        _ => {
            errs.push(Invalid::new(
                format!("{path}.outcome"),
                "expected \"accepted\" or \"overridden\"",
            ));
            None
        }
    }
}

/// `acceptedSuggestions`: absent, null, or an array of `{"id": uuid}`; the ids that
/// parse.
fn parse_accepted_suggestions(
    path: &str,
    v: Option<&Value>,
    errs: &mut Vec<Invalid>,
) -> Vec<AcceptedSuggestion> {
    let mut accepted_suggestions = Vec::new();
    match v {
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
    accepted_suggestions
}

/// `overrideReason`: absent, null, or an object with a reason, a userComment, or both
/// (cds-fb-3).
fn parse_override_reason(
    path: &str,
    v: Option<&Value>,
    errs: &mut Vec<Invalid>,
) -> Option<OverrideReason> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => {
            let reason = parse_reason_coding(path, o.get("reason"), errs);
            let user_comment = parse_user_comment(path, o.get("userComment"), errs);
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
    }
}

/// `overrideReason.reason`: absent, null, or a Coding with a non-empty code, kept as
/// sent.
fn parse_reason_coding(path: &str, v: Option<&Value>, errs: &mut Vec<Invalid>) -> Option<Value> {
    match v {
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
    }
}

/// `overrideReason.userComment`: absent, null, or a non-empty string.
fn parse_user_comment(path: &str, v: Option<&Value>, errs: &mut Vec<Invalid>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => {
            errs.push(Invalid::new(
                format!("{path}.overrideReason.userComment"),
                "expected a non-empty string",
            ));
            None
        }
    }
}

/// `outcomeTimestamp`: an RFC 3339 date-time, kept as sent (see [`FeedbackEntry`]).
fn parse_outcome_timestamp(
    path: &str,
    v: Option<&Value>,
    errs: &mut Vec<Invalid>,
) -> Option<String> {
    match v.and_then(Value::as_str) {
        Some(s) if DateTime::<FixedOffset>::parse_from_rfc3339(s).is_ok() => Some(s.to_string()),
        _ => {
            errs.push(Invalid::new(
                format!("{path}.outcomeTimestamp"),
                "expected an RFC 3339 date-time, e.g. 2021-12-11T10:05:31Z",
            ));
            None
        }
    }
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
    fn a_reason_needs_a_code_and_is_kept_as_sent() {
        let mut errs = Vec::new();
        let coding = json!({"system": "s", "code": "c", "display": "D", "extra": 1});
        let kept = parse_reason_coding("feedback[0]", Some(&coding), &mut errs);
        assert_eq!(kept, Some(coding));
        for bad in [
            json!({"system": "s"}),
            json!({"code": ""}),
            json!({"code": 7}),
            json!("c"),
        ] {
            assert_eq!(
                parse_reason_coding("feedback[0]", Some(&bad), &mut errs),
                None
            );
        }
        assert_eq!(errs.len(), 4);
        assert!(
            errs.iter()
                .all(|i| i.path == "feedback[0].overrideReason.reason")
        );
        // Absent and null are no reason, not an error.
        assert_eq!(parse_reason_coding("f", None, &mut errs), None);
        assert_eq!(
            parse_reason_coding("f", Some(&Value::Null), &mut errs),
            None
        );
        assert_eq!(errs.len(), 4);
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
