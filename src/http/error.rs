//! The one error type of the HTTP edge and its one shape: a FHIR `OperationOutcome`
//! whose issue says what to fix. Internal detail (which JWT check failed, a database
//! error) goes to the request's log line, never to the client.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::cds_hooks::Invalid;
use crate::fhir::DataUnavailable;

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
    /// 415.
    UnsupportedMediaType,
    /// 408: the body did not arrive within `--body-timeout`.
    BodyTimeout(Duration),
    /// 503 with Retry-After: the in-flight body budget (`--max-inflight-body`) is spent.
    Busy,
    /// 503: not ready (`/readyz`); detail for the log.
    NotReady(String),
    /// 500: our fault; detail for the log.
    Internal(String),
}

/// Internal detail of an error, carried in the response extensions to the request log.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

/// A FHIR OperationOutcome with one issue per entry of `(code, diagnostics, path)`.
pub fn operation_outcome(issues: &[(&str, String, Option<&str>)]) -> Value {
    let issues: Vec<Value> = issues
        .iter()
        .map(|(code, diagnostics, path)| {
            let mut issue = json!({"severity": "error", "code": code, "diagnostics": diagnostics});
            if let Some(p) = path.filter(|p| !p.is_empty()) {
                issue["expression"] = json!([p]);
            }
            issue
        })
        .collect();
    json!({"resourceType": "OperationOutcome", "issue": issues})
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
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotReady(_) | ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> Value {
        match self {
            ApiError::Invalid(list) => {
                let issues: Vec<(&str, String, Option<&str>)> = list
                    .iter()
                    .map(|i| {
                        let code = if i.message.starts_with("required") {
                            "required"
                        } else {
                            "invalid"
                        };
                        (code, i.to_string(), Some(i.path.as_str()))
                    })
                    .collect();
                operation_outcome(&issues)
            }
            ApiError::MalformedJson(e) => operation_outcome(&[(
                "structure",
                format!("the body is not valid JSON: {e}"),
                None,
            )]),
            ApiError::Unauthorized(_) => operation_outcome(&[(
                "login",
                "authentication failed: send Authorization: Bearer <JWT> signed by a \
                 registered issuer, with aud set to the URL called (CDS Hooks 2.0, \
                 Trusting CDS Clients)"
                    .to_string(),
                None,
            )]),
            ApiError::UnknownService(id) => operation_outcome(&[(
                "not-found",
                format!(
                    "no CDS service \"{}\": GET /cds-services lists the services (dvt-patient-view, \
                     dvt-encounter-start, dvt-order-select, dvt-order-sign)",
                    truncate(id, 64)
                ),
                None,
            )]),
            ApiError::NotFound => operation_outcome(&[(
                "not-found",
                "no such endpoint: this service answers GET /cds-services, \
                 POST /cds-services/{id} and POST /cds-services/{id}/feedback"
                    .to_string(),
                None,
            )]),
            ApiError::MethodNotAllowed(allow) => operation_outcome(&[(
                "not-supported",
                format!("method not allowed here: use {allow}"),
                None,
            )]),
            ApiError::DataUnavailable(d) => operation_outcome(&[(
                "incomplete",
                format!(
                    "the FHIR data this service needs is not available: {} ({}). Send it in \
                     prefetch, or send fhirServer and fhirAuthorization so the service can \
                     query it",
                    d.query, d.reason
                ),
                None,
            )]),
            ApiError::DeadlineExceeded(d) => operation_outcome(&[(
                "timeout",
                format!(
                    "deadline exceeded: the FHIR data could not be gathered within {} ms; send \
                     the prefetch so the service need not query the FHIR server",
                    d.as_millis()
                ),
                None,
            )]),
            ApiError::TooLarge(limit) => operation_outcome(&[(
                "too-costly",
                format!("the body is larger than the limit of {limit} bytes (--max-body)"),
                None,
            )]),
            ApiError::UnsupportedMediaType => operation_outcome(&[(
                "not-supported",
                "send the body as JSON with Content-Type: application/json".to_string(),
                None,
            )]),
            ApiError::BodyTimeout(d) => operation_outcome(&[(
                "timeout",
                format!(
                    "the request body did not arrive within {} ms (--body-timeout)",
                    d.as_millis()
                ),
                None,
            )]),
            ApiError::Busy => operation_outcome(&[(
                "throttled",
                "busy: too many large calls in flight; retry shortly".to_string(),
                None,
            )]),
            ApiError::NotReady(_) => operation_outcome(&[(
                "transient",
                "not ready: the feedback database cannot be written (the log says why)".to_string(),
                None,
            )]),
            ApiError::Internal(_) => operation_outcome(&[(
                "exception",
                "internal error: the service could not answer this call; it has been logged"
                    .to_string(),
                None,
            )]),
        }
    }

    /// What the log line says about this error (never a token or patient data).
    fn detail(&self) -> String {
        match self {
            ApiError::Invalid(list) => {
                let paths: Vec<&str> = list.iter().map(|i| i.path.as_str()).collect();
                format!("invalid request: {}", paths.join(", "))
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
            ApiError::UnsupportedMediaType => "unsupported media type".to_string(),
            ApiError::BodyTimeout(_) => "body timeout".to_string(),
            ApiError::Busy => "busy: in-flight body budget spent".to_string(),
            ApiError::NotReady(d) => format!("not ready: {d}"),
            ApiError::Internal(d) => format!("internal: {d}"),
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
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
            ApiError::Busy => {
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
        resp.extensions_mut().insert(ErrorDetail(self.detail()));
        resp
    }
}
