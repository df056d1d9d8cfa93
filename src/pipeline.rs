//! One hook call, from its JSON body to its CDS Hooks response: validate the request
//! ([`parse_hook_request_owned`]), gather its FHIR data ([`crate::fhir::gather_owned`]:
//! prefetch, live queries, referenced Medications), then assess and render
//! ([`crate::assessment::respond`]).
//!
//! The service's route (`http::handlers::call_service`) and `dvt-cds evaluate --request`
//! both run [`answer`], so the same request gets the same answer, and a request one
//! refuses the other refuses with the same words. I/O only through the [`FhirSource`]
//! it is given (`evaluate` gives one that reads nothing).

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::cds_hooks::{Hook, HookRequest, Invalid, parse_hook_request_owned, prune_empty};
use crate::fhir::{DataUnavailable, FhirSettings, FhirSource, Gathered, ServerBase};
use crate::mappings::Mappings;

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
}

/// Why a hook call got no response body.
#[derive(Debug)]
pub enum CallError {
    /// The request breaks the spec (400): every problem found.
    Invalid(Vec<Invalid>),
    /// The FHIR data could not be had (412, or 503 when `busy`).
    Unavailable(DataUnavailable),
    /// The deadline ran out while gathering data (412).
    DeadlineExceeded,
    /// Our fault (500): the assessment panicked or answered no cards array.
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

/// Answer a hook call for the service answering `hook`: the response body
/// (`{"cards": [...]}`, empty values removed as the CDS Hooks JSON rule asks).
pub async fn answer(
    env: &CallEnv<'_>,
    hook: Hook,
    body: Value,
    watch: &dyn Watch,
) -> Result<Value, CallError> {
    let mut req = parse_hook_request_owned(hook, body).map_err(CallError::Invalid)?;
    let prefetch = std::mem::take(&mut req.prefetch);
    watch.validated(&req);

    let started = Instant::now();
    let gathered = tokio::time::timeout_at(
        env.deadline,
        crate::fhir::gather_owned(
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
    respond(env.mappings, &req, gathered, env.now)
}

/// The assessment of what was gathered (pure and fast: run inline). A panic there is
/// our bug, not the client's: it becomes [`CallError::Internal`], not a dropped call.
fn respond(
    mappings: &Mappings,
    req: &HookRequest,
    gathered: Gathered,
    now: DateTime<Utc>,
) -> Result<Value, CallError> {
    let mut input = req.hook_input();
    input.data_quality = gathered.data_quality;
    let resources = crate::record::resource::from_values(&gathered.resources);
    drop(gathered.resources);
    let mut response = std::panic::catch_unwind(AssertUnwindSafe(|| {
        crate::assessment::respond(mappings, &input, &resources, now)
    }))
    .map_err(|_| CallError::Internal("assessment panicked".into()))?;
    if !response.get("cards").is_some_and(Value::is_array) {
        return Err(CallError::Internal(
            "assessment returned no cards array".into(),
        ));
    }
    let pruned = prune_empty(&mut response);
    if !pruned.is_empty() {
        tracing::warn!(paths = ?pruned, "response had empty values (JSON rule): removed");
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::{FetchError, FetchFuture, FhirGet};
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

    fn body(prefetch: Value) -> Value {
        json!({"hook": "patient-view", "hookInstance": "h1",
               "context": {"userId": "Practitioner/1", "patientId": "p1"},
               "prefetch": prefetch})
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
            body(Value::Object(full.clone())),
            &steps,
        )
        .await;
        assert_eq!(r.unwrap(), json!({"cards": []}));
        assert_eq!(*steps.0.lock().unwrap(), ["validated h1", "gathered 1"]);

        // A key missing and no server to ask: 412, after validation.
        full.remove("conditions");
        let steps = Steps::default();
        let r = answer(&env, Hook::PatientView, body(Value::Object(full)), &steps).await;
        assert!(matches!(r, Err(CallError::Unavailable(_))), "{r:?}");
        assert_eq!(
            *steps.0.lock().unwrap(),
            ["validated h1", "unavailable conditions (Condition search)"]
        );

        // Invalid: nothing gathered.
        let steps = Steps::default();
        let r = answer(&env, Hook::OrderSign, body(json!({})), &steps).await;
        assert!(matches!(r, Err(CallError::Invalid(_))), "{r:?}");
        assert!(steps.0.lock().unwrap().is_empty());
    }
}
