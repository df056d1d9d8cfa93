//! The server span of a CDS Hooks call (OpenTelemetry, through `tracing`): a child of the
//! EHR's span when its request carries a W3C `traceparent`, with the outcome the
//! request's log line has (service, hook, status, cards, indicator). Everything below it
//! (FHIR queries, the assessment) is its child.
//!
//! The attributes are the log line's, no more: never the patient id, a token, a URL's
//! query, or a body. Without an exporter (`telemetry`) the span exists for the log only,
//! and the trace-context propagator is the no-op one, so `traceparent` is ignored.

use axum::http::{HeaderMap, HeaderValue, Method};
use opentelemetry::trace::TraceContextExt;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::cds_hooks::Hook;

/// The span of a call to `route`: the CDS Hooks endpoints only. `/metrics`, `/healthz`
/// and `/readyz` are polled every few seconds and would fill a trace store with nothing.
pub(super) fn server_span(
    method: &Method,
    route: &'static str,
    headers: &HeaderMap,
    request_id: &HeaderValue,
) -> Span {
    if !route.starts_with("/cds-services") {
        return Span::none();
    }
    // OpenTelemetry's HTTP convention names a server span "METHOD route".
    let name = format!("{method} {route}");
    let span = tracing::info_span!(
        "request",
        otel.name = name.as_str(),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method.as_str(),
        http.route = route,
        http.response.status_code = Empty,
        request.id = request_id.to_str().unwrap_or("-"),
        cds.service = Empty,
        cds.hook = Empty,
        cds.hook_instance = Empty,
        cds.client = Empty,
        cds.cards = Empty,
        cds.indicator = Empty,
    );
    // Before the span starts: its parent cannot change once it has.
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    let _ = span.set_parent(parent);
    span
}

/// What a call ended with, as its log line says it.
pub(super) struct Outcome<'a> {
    pub status: u16,
    /// The service id, or `-`.
    pub service: &'a str,
    /// Clipped as in the log line.
    pub hook_instance: Option<&'a str>,
    /// The client's issuer (clipped as in the log line).
    pub client: Option<&'a str>,
    pub cards: Option<usize>,
    pub indicator: Option<&'static str>,
}

pub(super) fn record_outcome(span: &Span, o: Outcome<'_>) {
    if span.is_none() {
        return;
    }
    span.record("http.response.status_code", o.status);
    // A 4xx is the caller's to fix (HTTP semantic conventions: not a server error).
    if o.status >= 500 {
        span.record("otel.status_code", "error");
    }
    if let Some(hook) = Hook::from_service_id(o.service) {
        span.record("cds.service", hook.service_id());
        span.record("cds.hook", hook.as_str());
    }
    if let Some(h) = o.hook_instance {
        span.record("cds.hook_instance", h);
    }
    if let Some(c) = o.client {
        span.record("cds.client", c);
    }
    if let Some(n) = o.cards {
        span.record("cds.cards", n);
        span.record("cds.indicator", o.indicator.unwrap_or("none"));
    }
}

/// The span's trace id (32 hex digits) when it is exported, for the log line.
pub(super) fn trace_id(span: &Span) -> Option<String> {
    if span.is_none() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}
