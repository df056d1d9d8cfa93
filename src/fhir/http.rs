//! The live FHIR source over HTTP (reqwest, rustls).
//!
//! One shared `reqwest::Client` per process: connection pools and TLS sessions are
//! reused across hook calls. It only performs GETs; what a status or body means is
//! decided in `gather`, so fake sources and fake servers exercise the same logic.

use std::sync::Arc;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use reqwest::redirect;
use tokio::sync::Semaphore;

use super::{FetchError, FetchFuture, FhirGet, FhirReply, FhirSettings, FhirSource};

/// The live source over HTTP.
#[derive(Clone)]
pub struct HttpFhirSource {
    client: reqwest::Client,
    /// Requests in flight over all calls (`--fhir-max-concurrent`). Waiting for a permit
    /// counts against the call's deadline: `gather` bounds the whole GET with it.
    in_flight: Arc<Semaphore>,
}

impl HttpFhirSource {
    /// Build the source. Panics only if the TLS backend cannot start (a broken build),
    /// never on request data; use [`HttpFhirSource::try_new`] to handle that.
    pub fn new(settings: &FhirSettings) -> Self {
        Self::try_new(settings).expect("the HTTP client (rustls) could not be built")
    }

    pub fn try_new(settings: &FhirSettings) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("dvt-cds/", env!("CARGO_PKG_VERSION")))
            .redirect(same_origin_redirects())
            .connect_timeout(settings.query_timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpFhirSource {
            client,
            in_flight: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
        })
    }

    async fn fetch(&self, request: FhirGet<'_>) -> Result<FhirReply, FetchError> {
        // Never closed, so `acquire` only waits.
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| FetchError::Other("the request limiter is closed".into()))?;
        // Not `fhir-sdk`'s client: it sends `fhirVersion=4.3`, which R4 servers refuse
        // (fhir-notes.md).
        let mut builder = self
            .client
            .get(request.url.clone())
            .header(ACCEPT, "application/fhir+json")
            .timeout(request.timeout);
        if let Some(token) = request.bearer {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                FetchError::Other("the access token is not a valid header value".into())
            })?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        let mut response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let mut body: Vec<u8> = Vec::new();
        let mut taken = 0;
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            // The buffer's growth is taken from the call's budget before it is filled.
            body.reserve(chunk.len());
            if !request.budget.take(body.capacity() - taken) {
                return Err(FetchError::TooLarge);
            }
            taken = body.capacity();
            body.extend_from_slice(&chunk);
        }
        Ok(FhirReply { status, body })
    }
}

impl FhirSource for HttpFhirSource {
    fn get<'a>(&'a self, request: FhirGet<'a>) -> FetchFuture<'a> {
        Box::pin(self.fetch(request))
    }
}

/// Follow redirects only within the origin of the first URL: the bearer token must go
/// nowhere but `fhirServer`. A redirect elsewhere stops and surfaces as a 3xx status.
fn same_origin_redirects() -> redirect::Policy {
    redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > 5 || !same {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// A transport error, described without its URL (which holds the patient id).
fn classify(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        return FetchError::TimedOut;
    }
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return FetchError::Refused;
            }
            if io.kind() == std::io::ErrorKind::TimedOut {
                return FetchError::TimedOut;
            }
        }
        source = e.source();
    }
    if error.is_connect() {
        return FetchError::Other("could not connect to the FHIR server".into());
    }
    FetchError::Other(error.without_url().to_string())
}
