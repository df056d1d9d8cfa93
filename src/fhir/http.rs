//! The live FHIR source over HTTP (reqwest, rustls).
//!
//! Two shared `reqwest::Client`s per process, one per [`Route`]: connection pools and
//! TLS sessions are reused across hook calls. Servers the operator listed resolve
//! normally; any other (allowed by `--dev`) goes through [`PublicOnly`], a DNS resolver
//! that drops every address [`egress::classify`] does not call public, so a name cannot
//! rebind to an internal address between check and connect (the check *is* the
//! connect). IP literals never reach a resolver: `gather` judges them before the GET.
//! Neither client uses a proxy (`HTTP(S)_PROXY` could send the traffic elsewhere).
//!
//! They only perform GETs; what a status or body means is decided in `gather`, so fake
//! sources and fake servers exercise the same logic.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use reqwest::redirect;
use tokio::sync::Semaphore;

use super::egress::{self, AddressClass, Route};
use super::{FetchError, FetchFuture, FhirGet, FhirReply, FhirSettings, FhirSource};

/// The live source over HTTP.
#[derive(Clone)]
pub struct HttpFhirSource {
    /// For servers the operator listed.
    listed: reqwest::Client,
    /// For the others: names resolve to public addresses only.
    public_only: reqwest::Client,
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
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("dvt-cds/", env!("CARGO_PKG_VERSION")))
                .redirect(same_origin_redirects())
                .connect_timeout(settings.query_timeout)
                .no_proxy()
        };
        let listed = builder().build().map_err(|e| e.to_string())?;
        let public_only = builder()
            .dns_resolver(PublicOnly)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpFhirSource {
            listed,
            public_only,
            in_flight: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
        })
    }

    async fn fetch(&self, request: FhirGet<'_>) -> Result<FhirReply, FetchError> {
        // Never closed, so `acquire` only waits.
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| FetchError::Transport("the request limiter is closed".into()))?;
        // Not `fhir-sdk`'s client: it sends `fhirVersion=4.3`, which R4 servers refuse
        // (fhir-notes.md).
        let client = match request.route {
            Route::Listed => &self.listed,
            Route::PublicOnly => &self.public_only,
        };
        let mut builder = client
            .get(request.url.clone())
            .header(ACCEPT, "application/fhir+json")
            .timeout(request.timeout);
        // W3C trace context: the FHIR server's spans join the call's trace, as children
        // of this GET's span (`Live::get_json` makes it current). Without an exporter
        // the propagator is the no-op one and nothing is added.
        let mut trace_headers = reqwest::header::HeaderMap::new();
        let context =
            tracing_opentelemetry::OpenTelemetrySpanExt::context(&tracing::Span::current());
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(
                &context,
                &mut opentelemetry_http::HeaderInjector(&mut trace_headers),
            )
        });
        builder = builder.headers(trace_headers);
        if let Some(token) = request.bearer {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| FetchError::InvalidToken)?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        let mut response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        // The buffer is taken from the call's budget before it is allocated: all of it at
        // once when the server says how long the body is (a body larger than what is
        // left is refused unread), else as it grows.
        let mut body: Vec<u8> = Vec::new();
        if let Some(declared) = response.content_length() {
            let declared = usize::try_from(declared).unwrap_or(usize::MAX);
            if !request.budget.take(declared) {
                return Err(FetchError::TooLarge);
            }
            body.reserve_exact(declared);
        }
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            let needed = body.len() + chunk.len();
            if needed > body.capacity() {
                let grown = needed.max(body.capacity().saturating_mul(2));
                if !request.budget.take(grown - body.capacity()) {
                    return Err(FetchError::TooLarge);
                }
                body.reserve_exact(grown - body.len());
            }
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
    let error = error.without_url();
    // The chain of causes, for the log: "error sending request: client error
    // (Connect): dns error: ...". None of them holds the URL's path or query.
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<AddressRefused>() {
            return FetchError::AddressRefused(refused.0);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return FetchError::Refused;
            }
            if io.kind() == std::io::ErrorKind::TimedOut {
                return FetchError::TimedOut;
            }
        }
        detail.push_str(": ");
        detail.push_str(&e.to_string());
        source = e.source();
    }
    FetchError::Transport(detail.chars().take(300).collect())
}

/// The DNS resolver for servers nobody listed: getaddrinfo (tokio's `lookup_host`), then
/// only public addresses are kept. Loopback, link-local (cloud metadata), RFC 1918,
/// CGNAT, ULA and the rest are refused, so neither `localhost` nor a public name that
/// rebinds to an internal address gets a connection.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port (or the scheme's) in.
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let refused = found
                .iter()
                .map(|a| egress::classify(a.ip()))
                .find(|c| !c.is_public());
            let public: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| egress::classify(a.ip()).is_public())
                .collect();
            match (public.is_empty(), refused) {
                (true, Some(class)) => Err(Box::new(AddressRefused(class)) as _),
                _ => Ok(Box::new(public.into_iter()) as Addrs),
            }
        })
    }
}

/// A name resolved only to addresses [`PublicOnly`] refuses (of this class, the first).
#[derive(Debug)]
struct AddressRefused(AddressClass);

impl std::fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused: the name resolves to {}", self.0.describe())
    }
}

impl std::error::Error for AddressRefused {}
