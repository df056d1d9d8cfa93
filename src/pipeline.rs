//! One hook call, from its JSON body to its CDS Hooks response: read and validate the
//! request from the body's bytes ([`parse_hook_request`]: typed, no JSON tree), gather
//! its FHIR data ([`crate::fhir::gather`]: prefetch, live queries, referenced
//! Medications), then assess and render ([`respond_to`]: the one place where the
//! assessment meets the card).
//!
//! The service's route (`http::handlers::call_service`) and `dvt-cds evaluate --request`
//! both run [`answer`], so the same request gets the same answer, and a request one
//! refuses the other refuses with the same words. I/O only through the [`FhirSource`]
//! it is given (`evaluate` gives one that reads nothing). `evaluate --bundle` and `audit`
//! have their resources already and call [`respond_to`].

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use crate::assessment::{HookInput, assess};
use crate::cds_hooks::{Hook, HookRequest, Invalid, RequestError, Response, parse_hook_request};
use crate::fhir::{DataUnavailable, FhirSettings, FhirSource, Gathered, ServerBase};
use crate::mappings::Mappings;
use crate::record::quality::DataQualityNote;
use crate::record::resource::Resource;
use chrono::{DateTime, Utc};

/// What a hook call runs with besides its body.
pub struct CallEnv<'a> {
    pub mappings: &'a Mappings,
    pub source: &'a dyn FhirSource,
    pub settings: &'a FhirSettings,
    /// The FHIR servers the caller's issuer lists (`fhir_servers`).
    pub client_servers: &'a [ServerBase],
    /// The whole call's budget (`--deadline`).
    pub deadline: tokio::time::Instant,
    /// The request time (`dvt-model.md` §1): live-query windows and the assessment's
    /// windows are measured from it.
    pub now: DateTime<Utc>,
    /// Bytes the body's resources may take once parsed: what the body budget reserved
    /// for its parsed form (`usize::MAX` where nothing is reserved).
    pub body_allowance: usize,
}

/// Why a hook call got no response body.
#[derive(Debug)]
pub enum CallError {
    /// The body is not JSON (400): serde_json's message (line and column, no content).
    NotJson(String),
    /// The body's resources would take more memory than its budget reserved (413).
    TooLarge,
    /// The request breaks the spec (400): every problem found.
    Invalid(Vec<Invalid>),
    /// The FHIR data could not be had (412, or 503 when `busy`).
    Unavailable(DataUnavailable),
    /// The deadline ran out while gathering data (412).
    DeadlineExceeded,
    /// Our fault (500): the assessment panicked.
    Internal(String),
}

/// How gathering ended, for [`Watch::gathered`].
pub enum Gather<'a> {
    Done(&'a Gathered),
    Unavailable(&'a DataUnavailable),
    DeadlineExceeded,
}

/// What the service measures at each step (metrics, the request's log line). The unit
/// type watches nothing.
pub trait Watch: Sync {
    /// The request is valid (its hookInstance can be logged).
    fn validated(&self, _req: &HookRequest) {}
    /// Gathering ended, after `seconds`.
    fn gathered(&self, _seconds: f64, _outcome: Gather<'_>) {}
}

impl Watch for () {}

/// Answer a hook call for the service answering `hook`, from its body's bytes: the
/// response (`{"cards": [...]}`), serialised by the caller.
pub async fn answer(
    env: &CallEnv<'_>,
    hook: Hook,
    body: &[u8],
    watch: &dyn Watch,
) -> Result<Response, CallError> {
    let req = parse_hook_request(hook, body, env.body_allowance).map_err(|e| match e {
        RequestError::NotJson(e) => CallError::NotJson(e.to_string()),
        RequestError::Invalid(list) => CallError::Invalid(list),
        RequestError::TooLarge => CallError::TooLarge,
    })?;
    answer_request(env, req, watch).await
}

/// [`answer`] for a request already validated (`dvt-cds evaluate` picks the hook from
/// the body first).
pub async fn answer_request(
    env: &CallEnv<'_>,
    mut req: HookRequest,
    watch: &dyn Watch,
) -> Result<Response, CallError> {
    // The prefetch's resources move into what is gathered.
    let prefetch = std::mem::take(&mut req.prefetch);
    watch.validated(&req);

    let started = Instant::now();
    let gathered = tokio::time::timeout_at(
        env.deadline,
        crate::fhir::gather(
            env.source,
            env.settings,
            env.client_servers,
            &req,
            prefetch,
            env.deadline,
            env.now,
        ),
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let gathered = match gathered {
        Ok(Ok(g)) => {
            watch.gathered(seconds, Gather::Done(&g));
            g
        }
        Ok(Err(unavailable)) => {
            watch.gathered(seconds, Gather::Unavailable(&unavailable));
            return Err(CallError::Unavailable(unavailable));
        }
        Err(_) => {
            watch.gathered(seconds, Gather::DeadlineExceeded);
            return Err(CallError::DeadlineExceeded);
        }
    };
    respond(env.mappings, req, gathered, env.now)
}

/// The assessment of what was gathered (pure and fast: run inline). A panic there is
/// our bug, not the client's: it becomes [`CallError::Internal`], not a dropped call.
fn respond(
    mappings: &Mappings,
    req: HookRequest,
    gathered: Gathered,
    now: DateTime<Utc>,
) -> Result<Response, CallError> {
    let input = hook_input(req, gathered.data_quality);
    let resources = gathered.resources;
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        respond_to(mappings, &input, &resources, now)
    }))
    .map_err(|_| CallError::Internal("assessment panicked".into()))
}

/// What the assessment needs from the call: its hook, ids and draft orders (moved), and
/// what the FHIR layer could not read. Here, at the edge, so that `cds_hooks` (the wire)
/// and `assessment` (the model) need not know each other.
fn hook_input(req: HookRequest, data_quality: Vec<DataQualityNote>) -> HookInput {
    HookInput {
        hook: req.hook,
        hook_instance: req.hook_instance,
        patient_id: req.context.patient_id,
        encounter_id: req.context.encounter_id,
        draft_orders: req.context.draft_orders,
        data_quality,
    }
}

/// Assess a call's resources and render the card (`dvt-model.md` §6): the response,
/// `{"cards": []}` or one card. Pure; the service, `evaluate` and `audit` all answer
/// through it.
pub fn respond_to(
    mappings: &Mappings,
    input: &HookInput,
    resources: &[Box<Resource>],
    now: DateTime<Utc>,
) -> Response {
    // The assessment's span (a child of the hook call's): its category and card count,
    // the same facts the card log keeps; nothing about the patient beyond them.
    let span = tracing::info_span!(
        "assessment",
        dvt.category = tracing::field::Empty,
        cds.cards = tracing::field::Empty,
    );
    let _entered = span.enter();
    let a = assess(mappings, input, resources, now);
    let response = Response {
        cards: crate::card::render(mappings, input, &a)
            .into_iter()
            .collect(),
    };
    span.record("dvt.category", a.category.map_or("none", |c| c.as_str()));
    span.record("cds.cards", response.cards.len());
    // The response types keep the JSON rule by construction; the card's open JSON (its
    // extension, the draft resources) is checked here in every debug build and test.
    #[cfg(debug_assertions)]
    {
        let v = serde_json::to_value(&response).expect("a response serialises");
        let empty = crate::cds_hooks::violations(&v);
        assert!(empty.is_empty(), "empty values in the card: {empty:?}");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::{FetchError, FetchFuture, FhirGet};
    use serde_json::Value;
    use serde_json::json;
    use std::sync::Mutex;

    struct NoServer;

    impl FhirSource for NoServer {
        fn get<'a>(&'a self, _: FhirGet<'a>) -> FetchFuture<'a> {
            Box::pin(async { Err(FetchError::Refused) })
        }
    }

    /// Records the steps it is told of.
    #[derive(Default)]
    struct Steps(Mutex<Vec<String>>);

    impl Watch for Steps {
        fn validated(&self, req: &HookRequest) {
            self.0
                .lock()
                .unwrap()
                .push(format!("validated {}", req.hook_instance));
        }
        fn gathered(&self, _: f64, outcome: Gather<'_>) {
            let what = match outcome {
                Gather::Done(g) => format!("gathered {}", g.resources.len()),
                Gather::Unavailable(u) => format!("unavailable {}", u.query),
                Gather::DeadlineExceeded => "deadline".into(),
            };
            self.0.lock().unwrap().push(what);
        }
    }

    fn body(prefetch: Value) -> Vec<u8> {
        json!({"hook": "patient-view", "hookInstance": "h1",
               "context": {"userId": "Practitioner/1", "patientId": "p1"},
               "prefetch": prefetch})
        .to_string()
        .into_bytes()
    }

    #[tokio::test]
    async fn each_step_is_watched_and_refusals_stop_early() {
        let mappings = Mappings::embedded().unwrap();
        let settings = FhirSettings::default();
        let env = CallEnv {
            mappings: &mappings,
            source: &NoServer,
            settings: &settings,
            client_servers: &[],
            deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(5),
            now: Utc::now(),
            body_allowance: usize::MAX,
        };
        let mut full = serde_json::Map::new();
        for (key, _) in crate::fhir::prefetch_templates(Hook::PatientView) {
            full.insert(key.into(), Value::Null);
        }
        full.insert(
            "patient".into(),
            json!({"resourceType": "Patient", "id": "p1"}),
        );

        let steps = Steps::default();
        let r = answer(
            &env,
            Hook::PatientView,
            &body(Value::Object(full.clone())),
            &steps,
        )
        .await;
        assert_eq!(r.unwrap(), Response { cards: vec![] });
        assert_eq!(*steps.0.lock().unwrap(), ["validated h1", "gathered 1"]);

        // A key missing and no server to ask: 412, after validation.
        full.remove("conditions");
        let steps = Steps::default();
        let r = answer(&env, Hook::PatientView, &body(Value::Object(full)), &steps).await;
        assert!(matches!(r, Err(CallError::Unavailable(_))), "{r:?}");
        assert_eq!(
            *steps.0.lock().unwrap(),
            ["validated h1", "unavailable conditions (Condition search)"]
        );

        // Invalid: nothing gathered.
        let steps = Steps::default();
        let r = answer(&env, Hook::OrderSign, &body(json!({})), &steps).await;
        assert!(matches!(r, Err(CallError::Invalid(_))), "{r:?}");
        assert!(steps.0.lock().unwrap().is_empty());

        // Not JSON: nothing gathered either.
        let r = answer(&env, Hook::PatientView, b"{\"hook\": ", &steps).await;
        assert!(matches!(r, Err(CallError::NotJson(_))), "{r:?}");
        assert!(steps.0.lock().unwrap().is_empty());
    }
}
