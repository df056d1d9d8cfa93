//! The route handlers. Each names the spec section it implements.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State, rejection::PathRejection};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

use super::auth::Verified;
use super::error::ApiError;
use super::{AppState, BodyPermit, Refused, RequestLog};
use crate::cds_hooks::{Card, Hook, HookRequest, discovery_document, parse_feedback};
use crate::json_cost::Expansion;
use crate::pipeline::{self, CallEnv, CallError, Gather, Watch};
use crate::record::resource;
use crate::store::StoreKind;

/// `GET /cds-services`. Spec: "Discovery".
pub async fn list_services(
    State(state): State<AppState>,
    log: axum::Extension<RequestLog>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.authenticate(&headers, "/cds-services", &log).await?;
    Ok(Json(discovery_document(&state.0.mappings)).into_response())
}

/// `POST /cds-services/{id}`. Spec: "Calling a CDS Service", "CDS Service Response".
pub async fn call_service(
    State(state): State<AppState>,
    log: axum::Extension<RequestLog>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    // `permit` holds this call's share of the body budget until the answer is built.
    let (hook, body, mut permit, client) =
        service_call(&state, &log, id, "", &headers, body, ParsedCost::AtParse).await?;
    // The parsed resources' allowance, taken now that the parse starts (it runs at once,
    // without waiting): calls still sending their bodies hold only their bytes, so a
    // burst of large bodies is not refused for memory that only one parse at a time
    // uses. `--max-inflight-body` holds the largest body and its allowance (checked at
    // startup), so this can be busy, never too large.
    let allowance = resource::allowance_for(body.len());
    state
        .0
        .body_budget
        .cover(&mut permit, body.capacity() + allowance)
        .map_err(refused)?;
    let env = CallEnv {
        mappings: &state.0.mappings,
        source: state.0.fhir.as_ref(),
        settings: &state.0.fhir_settings,
        client_servers: client.as_ref().map_or(&[], |c| &c.fhir_servers),
        // The whole call has a budget: EHRs abandon slow calls (contract.md).
        deadline: tokio::time::Instant::from_std(started + state.0.deadline),
        // One "now" for the date windows of the live queries and for the assessment.
        now: state.0.fixed_now.unwrap_or_else(chrono::Utc::now),
        // What the permit holds for the parsed form: the typed resources stay within it.
        body_allowance: allowance,
    };
    let watch = Measured {
        state: &state,
        log: &log,
        hook,
        patient_hash: std::sync::OnceLock::new(),
    };
    let response = pipeline::answer(&env, hook, &body, &watch)
        .await
        .map_err(|e| match e {
            CallError::NotJson(message) => ApiError::MalformedJson(message),
            CallError::TooLarge => ApiError::OverAllowance,
            CallError::Invalid(list) => ApiError::Invalid(list),
            CallError::Unavailable(u) if u.busy => ApiError::LiveDataBusy,
            CallError::Unavailable(u) => ApiError::DataUnavailable(u),
            CallError::DeadlineExceeded => ApiError::DeadlineExceeded(state.0.deadline),
            CallError::Internal(e) => ApiError::Internal(e),
        })?;
    for card in &response.cards {
        state.0.metrics.card(hook.service_id(), card.indicator);
        log_card(&state, hook, card, client.as_ref(), &watch);
    }
    log.set_cards(&response.cards);
    // Serialised here, once, straight from the typed response.
    Ok(Json(response).into_response())
}

/// The card log's entry for `card` (JSON for now: the typed card can give the fields).
fn log_card(
    state: &AppState,
    hook: Hook,
    card: &Card,
    client: Option<&Verified>,
    watch: &Measured<'_>,
) {
    // The card's own extension says its category (§6); render always writes it.
    let category = card.extension["dvt-assessment"]["category"]
        .as_str()
        .unwrap_or("none");
    let patient_hash = watch.patient_hash.get().cloned().flatten();
    let issuer = client.map(|c| c.iss.as_str());
    state.0.card_shown(
        hook,
        card.uuid,
        category,
        card.indicator,
        issuer,
        patient_hash,
    );
}

/// What a hook call's steps leave in the metrics, the request's log line and the card
/// log.
struct Measured<'a> {
    state: &'a AppState,
    log: &'a RequestLog,
    hook: Hook,
    /// The card log's keyed hash of the call's patient (never the id itself).
    patient_hash: std::sync::OnceLock<Option<String>>,
}

impl Watch for Measured<'_> {
    fn validated(&self, req: &HookRequest) {
        self.log.set_hook_instance(&req.hook_instance);
        let hash = self.state.0.card_log.patient_hash(&req.context.patient_id);
        let _ = self.patient_hash.set(hash);
    }

    fn gathered(&self, seconds: f64, outcome: Gather<'_>) {
        let metrics = &self.state.0.metrics;
        let service = self.hook.service_id();
        metrics.fhir_gather(service, seconds);
        match outcome {
            Gather::Done(g) => {
                for key in &g.fetched_keys {
                    metrics.fhir_live_query(key);
                }
                metrics.fhir_medication_reads(&g.medication_reads);
            }
            Gather::Unavailable(_) => metrics.fhir_failure(service, "unavailable"),
            Gather::DeadlineExceeded => metrics.fhir_failure(service, "deadline"),
        }
    }
}

/// `POST /cds-services/{id}/feedback`. Spec: "Feedback".
pub async fn record_feedback(
    State(state): State<AppState>,
    log: axum::Extension<RequestLog>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (hook, body, _permit, _client) = service_call(
        &state,
        &log,
        id,
        "/feedback",
        &headers,
        body,
        ParsedCost::Tree(Box::default()),
    )
    .await?;
    // A feedback body is small and read whole (its budget covered a tree's cost).
    // serde_json's message gives line and column, never the content.
    let body: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let entries = parse_feedback(&body).map_err(ApiError::Invalid)?;
    for e in &entries {
        state
            .0
            .metrics
            .feedback(hook.service_id(), e.outcome.as_str());
    }
    // Committed before we answer 200 (the store's contract).
    let stored = state
        .0
        .store
        .record(hook.service_id(), entries)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    log.set_stored(stored);
    // The spec defines no response body; an empty 200 breaks nothing.
    Ok(StatusCode::OK.into_response())
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: this process is ready to answer calls. With SQLite that includes its
/// own database file taking a write (see `Store::check`); a shared PostgreSQL is left
/// out: its outage would take every replica out at once, while cards still flow without
/// it. `/healthz/store` reports it.
pub async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    match state.0.store.kind() {
        StoreKind::Sqlite => state
            .0
            .store
            .check()
            .await
            .map_err(|e| ApiError::NotReady(e.to_string()))?,
        StoreKind::Postgres => {}
    }
    Ok(Json(json!({"status": "ready"})).into_response())
}

/// `GET /healthz/store`: the store takes writes (`503` when not, with the reason).
pub async fn store_health(State(state): State<AppState>) -> Result<Response, ApiError> {
    let kind = state.0.store.kind().as_str();
    state
        .0
        .store
        .check()
        .await
        .map_err(|e| ApiError::NotReady(format!("{kind} store: {e}")))?;
    Ok(Json(json!({"status": "ok", "store": kind})).into_response())
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let mut text = state.0.metrics.render();
            state.0.body_budget.render_metrics(&mut text);
            crate::store::render_metrics(state.0.store.as_ref(), &mut text).await;
            state.0.card_log.render_metrics(&mut text);
            if let Some(auth) = &state.0.auth {
                auth.render_metrics(&mut text);
            }
            state.0.fhir_settings.pool.render_metrics(&mut text);
            super::metrics::render_build_info(&mut text, &state.0.mappings);
            super::process::render_metrics(&mut text);
            text
        },
    )
        .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub async fn method_not_allowed(uri: axum::http::Uri) -> ApiError {
    let path = uri.path();
    let allow = if path.starts_with("/cds-services/") {
        "POST"
    } else {
        "GET"
    };
    ApiError::MethodNotAllowed(allow)
}

/// What a hook call and a feedback call share, in the order the errors must come:
/// unknown path shape (404), authentication against the route's own audience (401),
/// unknown service (404), then the JSON body (415 / 413 past `--max-body` or when its
/// parsed form alone would pass `--max-inflight-body` / 503 when the in-flight body
/// budget is spent / 408 when it does not arrive within `--body-timeout`); the caller
/// parses it (400 when it is not JSON). Also returns the verified client (`None` in dev
/// mode without auth).
async fn service_call(
    state: &AppState,
    log: &RequestLog,
    id: Result<Path<String>, PathRejection>,
    route_suffix: &str,
    headers: &HeaderMap,
    body: Body,
    cost: ParsedCost,
) -> Result<(Hook, Vec<u8>, BodyPermit, Option<Verified>), ApiError> {
    let Path(id) = id.map_err(|_| ApiError::NotFound)?;
    let client = state
        .authenticate(headers, &format!("/cds-services/{id}{route_suffix}"), log)
        .await?;
    let hook = Hook::from_service_id(&id).ok_or(ApiError::UnknownService(id))?;
    log.set_service(hook.service_id());
    let mut permit = BodyPermit::default();
    let body = tokio::time::timeout(
        state.0.body_timeout,
        read_body(headers, body, state.0.max_body, cost, |read| {
            state.0.body_budget.cover(&mut permit, read)
        }),
    )
    .await
    .map_err(|_| ApiError::BodyTimeout(state.0.body_timeout))??;
    Ok((hook, body, permit, client))
}

/// What a body will cost once parsed, counted as its bytes arrive.
enum ParsedCost {
    /// A hook call's body, read into typed resources: nothing while it arrives; its
    /// allowance ([`resource::allowance_for`] its length) is taken when its parse starts.
    AtParse,
    /// A feedback body, read into a JSON tree: the tree's bound, from the bytes.
    Tree(Box<Expansion>),
}

impl ParsedCost {
    fn feed(&mut self, chunk: &[u8]) {
        match self {
            ParsedCost::AtParse => {}
            ParsedCost::Tree(tree) => tree.feed(chunk),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            ParsedCost::AtParse => 0,
            ParsedCost::Tree(tree) => tree.bytes(),
        }
    }
}

/// The answer to a body the budget could not take.
fn refused(r: Refused) -> ApiError {
    match r {
        Refused::Busy => ApiError::Busy,
        Refused::NeverFits => ApiError::ParsedTooLarge,
    }
}

/// The bytes of a JSON body: 415 unless it says JSON, 413 past
/// `max_body` (without reading further), `reserve(bytes)` (the body budget) asked for
/// the body's buffer plus its parsed cost as each chunk arrives, so its refusal (503, or
/// 413 when it could never fit) comes before the parse.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max_body: usize,
    mut cost: ParsedCost,
    mut reserve: impl FnMut(usize) -> Result<(), Refused>,
) -> Result<Vec<u8>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !(mime == "application/json"
        || (mime.starts_with("application/") && mime.ends_with("+json")))
    {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(ApiError::TooLarge(max_body));
    }
    if let Some(n) = declared {
        reserve(n as usize).map_err(refused)?;
    }
    // Sized from Content-Length so a typical body is not regrown; at most 1 MiB up
    // front, so that a client cannot make us reserve `max_body` by only claiming it.
    let mut bytes = Vec::with_capacity(declared.map_or(0, |n| n.min(1 << 20) as usize));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::MalformedJson("the body could not be read".into()))?;
        if bytes.len() + chunk.len() > max_body {
            return Err(ApiError::TooLarge(max_body));
        }
        cost.feed(&chunk);
        // The buffer as it will be (std's Vec grows to at least twice its capacity) and
        // the parsed form so far.
        let needed = bytes.len() + chunk.len();
        let buffer = if needed > bytes.capacity() {
            needed.max(2 * bytes.capacity())
        } else {
            bytes.capacity()
        };
        if let Err(r) = reserve(buffer + cost.bytes()) {
            if r == Refused::NeverFits {
                // Read the rest (at most `max_body`, dropped as it comes) so the client,
                // still sending, reads the 413 rather than a reset connection.
                drop(bytes);
                let mut read = needed;
                while let Some(Ok(chunk)) = stream.next().await {
                    read += chunk.len();
                    if read > max_body {
                        break;
                    }
                }
            }
            return Err(refused(r));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
