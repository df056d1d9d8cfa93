//! The one error type of the HTTP edge and its one shape: a FHIR `OperationOutcome`
//! whose issue says what to fix. Internal detail (which JWT check failed, a database
//! error) goes to the request's log line, never to the client.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::cds_hooks::Invalid;
use crate::fhir::DataUnavailable;
use crate::record::resource;

#[derive(Debug)]
pub enum ApiError {
    /// 400: the body breaks the spec; one issue per problem.
    Invalid(Vec<Invalid>),
    /// 400: not parseable as JSON.
    MalformedJson(String),
    /// 401: the detail is for the log only.
    Unauthorized(String),
    /// 404: `/cds-services/{id}` with an id we do not have.
    UnknownService(String),
    /// 404: no such endpoint.
    NotFound,
    /// 405, with the methods the path allows.
    MethodNotAllowed(&'static str),
    /// 412: the FHIR data could not be had.
    DataUnavailable(DataUnavailable),
    /// 412: `--deadline` ran out while gathering data.
    DeadlineExceeded(Duration),
    /// 413, with the limit in bytes.
    TooLarge(usize),
    /// 413: the body's parsed form alone would take more than `--max-inflight-body`.
    ParsedTooLarge,
    /// 413: the body's resources took more than the parse allows a body of its size
    /// (`record::resource::allowance_for`).
    OverAllowance,
    /// 415.
    UnsupportedMediaType,
    /// 408: the body did not arrive within `--body-timeout`.
    BodyTimeout(Duration),
    /// 503 with Retry-After: the in-flight body budget (`--max-inflight-body`) is spent.
    Busy,
    /// 503 with Retry-After: the live FHIR data of calls in flight fills
    /// `--fhir-max-inflight-bytes`.
    LiveDataBusy,
    /// 503: not ready (`/readyz`); detail for the log.
    NotReady(String),
    /// 500: our fault; detail for the log.
    Internal(String),
}

/// Internal detail of an error, carried in the response extensions to the request log.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

/// Most issues an OperationOutcome lists; past it one more issue says how many were
/// left out. A body with thousands of problems gets a short answer, not a long one.
pub const MAX_ISSUES: usize = 20;
/// Longest `diagnostics` (characters): messages may quote what the client sent.
const MAX_DIAGNOSTICS: usize = 500;
/// Longest `expression` path (characters).
const MAX_EXPRESSION: usize = 200;
/// Longest error detail in the request's log line (characters): details quote the
/// client's input (JWT claims, JSON paths), and a log line must stay one short line.
pub const MAX_LOG_DETAIL: usize = 300;

/// A FHIR OperationOutcome with one issue per entry of `(code, diagnostics, path)`:
/// the first [`MAX_ISSUES`], then "and M more problems"; long texts clipped.
pub fn operation_outcome(issues: &[(&str, String, Option<&str>)]) -> Value {
    listed_outcome(
        issues.iter().map(|(c, d, p)| (*c, d.clone(), *p)),
        issues.len(),
    )
}

/// [`operation_outcome`] of `total` issues, of which only the first [`MAX_ISSUES`] are
/// taken from `issues` (and formatted).
fn listed_outcome<'a>(
    issues: impl Iterator<Item = (&'a str, String, Option<&'a str>)>,
    total: usize,
) -> Value {
    let mut listed: Vec<Value> = issues
        .take(MAX_ISSUES)
        .map(|(code, diagnostics, path)| {
            let mut issue = json!({"severity": "error", "code": code,
                "diagnostics": clip(&diagnostics, MAX_DIAGNOSTICS)});
            if let Some(p) = path.filter(|p| !p.is_empty()) {
                issue["expression"] = json!([clip(p, MAX_EXPRESSION)]);
            }
            issue
        })
        .collect();
    let more = total.saturating_sub(MAX_ISSUES);
    if more > 0 {
        listed.push(json!({"severity": "error", "code": "invalid", "diagnostics": format!(
            "and {more} more problem(s): only the first {MAX_ISSUES} are listed; fix these and send again"
        )}));
    }
    json!({"resourceType": "OperationOutcome", "issue": listed})
}

/// The first `max` characters of `s`, with "…" when something was cut.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

/// An OperationOutcome of one issue with no path: every error but an invalid body.
fn one_issue(code: &str, diagnostics: impl Into<String>) -> Value {
    operation_outcome(&[(code, diagnostics.into(), None)])
}

/// An invalid body's OperationOutcome: one issue per problem, with its path, coded
/// `required` when its message starts with "required" (a missing field), else
/// `invalid`. Only the listed issues are formatted; the rest are counted.
fn invalid_outcome(list: &[Invalid]) -> Value {
    let issues = list.iter().map(|i| {
        let code = if i.message.starts_with("required") {
            "required"
        } else {
            "invalid"
        };
        (code, i.to_string(), Some(i.path.as_str()))
    });
    listed_outcome(issues, list.len())
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::UnknownService(_) | ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::DataUnavailable(_) | ApiError::DeadlineExceeded(_) => {
                StatusCode::PRECONDITION_FAILED
            }
            ApiError::TooLarge(_) | ApiError::ParsedTooLarge | ApiError::OverAllowance => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotReady(_) | ApiError::Busy | ApiError::LiveDataBusy => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The OperationOutcome answering this error: what the client should do about it.
    fn body(&self) -> Value {
        match self {
            ApiError::Invalid(list) => invalid_outcome(list),
            ApiError::MalformedJson(e) => {
                one_issue("structure", format!("the body is not valid JSON: {e}"))
            }
            ApiError::Unauthorized(_) => one_issue(
                "login",
                "authentication failed: send Authorization: Bearer <JWT> signed by a \
                 registered issuer, with aud set to the URL called (CDS Hooks 2.0, \
                 Trusting CDS Clients)",
            ),
            ApiError::UnknownService(id) => one_issue(
                "not-found",
                format!(
                    "no CDS service \"{}\": GET /cds-services lists the services (dvt-patient-view, \
                     dvt-encounter-start, dvt-order-select, dvt-order-sign)",
                    clip(id, 64)
                ),
            ),
            ApiError::NotFound => one_issue(
                "not-found",
                "no such endpoint: this service answers GET /cds-services, \
                 POST /cds-services/{id} and POST /cds-services/{id}/feedback",
            ),
            ApiError::MethodNotAllowed(allow) => one_issue(
                "not-supported",
                format!("method not allowed here: use {allow}"),
            ),
            ApiError::DataUnavailable(d) => one_issue("incomplete", d.explanation()),
            ApiError::DeadlineExceeded(d) => one_issue(
                "timeout",
                format!(
                    "deadline exceeded: the FHIR data could not be gathered within {} ms; send \
                     the prefetch so the service need not query the FHIR server",
                    d.as_millis()
                ),
            ),
            ApiError::TooLarge(limit) => one_issue(
                "too-costly",
                format!("the body is larger than the limit of {limit} bytes (--max-body)"),
            ),
            ApiError::ParsedTooLarge => one_issue(
                "too-costly",
                "the body's parsed form would take more memory than this service allows for \
                 all calls in flight (--max-inflight-body): send less data, e.g. fewer \
                 prefetch resources (many small JSON objects cost far more than their bytes)",
            ),
            ApiError::OverAllowance => one_issue(
                "too-costly",
                format!(
                    "the body's resources would take more than {} times its size in memory \
                     (plus {} KiB): a body of many tiny resources costs far more than its \
                     bytes; send fewer",
                    resource::ALLOWANCE_PER_BYTE,
                    resource::ALLOWANCE_SLACK >> 10
                ),
            ),
            ApiError::UnsupportedMediaType => one_issue(
                "not-supported",
                "send the body as JSON with Content-Type: application/json",
            ),
            ApiError::BodyTimeout(d) => one_issue(
                "timeout",
                format!(
                    "the request body did not arrive within {} ms (--body-timeout)",
                    d.as_millis()
                ),
            ),
            ApiError::Busy => one_issue(
                "throttled",
                "busy: too many large calls in flight; retry shortly",
            ),
            ApiError::LiveDataBusy => one_issue(
                "throttled",
                "busy: the live FHIR data of the calls in flight fills the service's \
                 budget (--fhir-max-inflight-bytes); retry shortly",
            ),
            ApiError::NotReady(_) => one_issue(
                "transient",
                "not ready: the feedback database cannot be written (the log says why)",
            ),
            ApiError::Internal(_) => one_issue(
                "exception",
                "internal error: the service could not answer this call; it has been logged",
            ),
        }
    }

    /// What the log line says about this error (never a token or patient data).
    fn detail(&self) -> String {
        match self {
            ApiError::Invalid(list) => {
                let paths: Vec<&str> = list
                    .iter()
                    .take(MAX_ISSUES)
                    .map(|i| i.path.as_str())
                    .collect();
                let more = list.len().saturating_sub(MAX_ISSUES);
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!("invalid request: {}{more}", paths.join(", "))
            }
            ApiError::MalformedJson(_) => "malformed JSON".to_string(),
            ApiError::Unauthorized(d) => format!("unauthorized: {d}"),
            ApiError::UnknownService(_) => "unknown service".to_string(),
            ApiError::NotFound => "no such endpoint".to_string(),
            ApiError::MethodNotAllowed(_) => "method not allowed".to_string(),
            ApiError::DataUnavailable(d) => match &d.detail {
                Some(detail) => format!("data unavailable: {}: {} ({detail})", d.query, d.reason),
                None => format!("data unavailable: {}: {}", d.query, d.reason),
            },
            ApiError::DeadlineExceeded(_) => "deadline exceeded".to_string(),
            ApiError::TooLarge(_) => "body too large".to_string(),
            ApiError::ParsedTooLarge => "body too large once parsed".to_string(),
            ApiError::OverAllowance => "body's resources over their allowance".to_string(),
            ApiError::UnsupportedMediaType => "unsupported media type".to_string(),
            ApiError::BodyTimeout(_) => "body timeout".to_string(),
            ApiError::Busy => "busy: in-flight body budget spent".to_string(),
            ApiError::LiveDataBusy => "busy: live-data pool spent".to_string(),
            ApiError::NotReady(d) => format!("not ready: {d}"),
            ApiError::Internal(d) => format!("internal: {d}"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), axum::Json(self.body())).into_response();
        match &self {
            ApiError::Unauthorized(_) => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::MethodNotAllowed(allow) => {
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::Busy | ApiError::LiveDataBusy => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::BodyTimeout(_) => {
                // The rest of the body may still come: do not read it as the next call.
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        resp.extensions_mut()
            .insert(ErrorDetail(clip(&self.detail(), MAX_LOG_DETAIL)));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cds_hooks::Invalid;

    #[test]
    fn many_issues_are_listed_up_to_the_cap_then_counted() {
        let list: Vec<Invalid> = (0..1000)
            .map(|i| Invalid::new(format!("feedback[{i}].card"), "expected a UUID"))
            .collect();
        let body = ApiError::Invalid(list).body();
        let issues = body["issue"].as_array().unwrap();
        assert_eq!(issues.len(), MAX_ISSUES + 1);
        assert_eq!(issues[19]["expression"][0], "feedback[19].card");
        assert!(
            issues[20]["diagnostics"]
                .as_str()
                .unwrap()
                .starts_with("and 980 more problem(s)")
        );
        let few = operation_outcome(&[("invalid", "x".into(), None)]);
        assert_eq!(few["issue"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn client_text_is_clipped_in_the_answer_and_the_log() {
        let long = "é".repeat(100_000);
        let body = operation_outcome(&[("invalid", long.clone(), Some(&long))]);
        let diagnostics = body["issue"][0]["diagnostics"].as_str().unwrap();
        assert_eq!(diagnostics.chars().count(), MAX_DIAGNOSTICS + 1);
        assert!(diagnostics.ends_with('…'));
        let resp = ApiError::Unauthorized(format!("check=kid kid={long}")).into_response();
        let detail = &resp.extensions().get::<ErrorDetail>().unwrap().0;
        assert_eq!(detail.chars().count(), MAX_LOG_DETAIL + 1);
        assert_eq!(clip("short", 10), "short");
    }
}
