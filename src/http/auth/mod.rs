//! Client authentication: the EHR's JWT on every CDS Hooks route.
//!
//! Spec: `cds-hooks-2.0.1.md` "Trusting CDS Clients" and "JWT Signing Algorithm";
//! contract.md "Security". Checks, in order: algorithm (ES384, RS384, ES256, RS256 only),
//! issuer on the allowlist, key by `kid` from that issuer's keys (a `jku` only if listed
//! for the issuer; its `kid` is looked up in the issuer's configured keys first, and the
//! `jku` fetched only when they do not hold it), signature, `exp` / `nbf` with leeway,
//! `aud` (as a URL), `iat` and the token's lifetime, `jti` not replayed. A failure names
//! the check for the log; the client only learns "401".
//!
//! - [`keys`]: key sources (file, URL, `jku`), each cached and fetched on its own.
//! - [`claims`]: `aud`, `iat` and lifetime rules (pure).
//! - [`replay`]: the per-issuer `jti` cache.

pub mod claims;
pub mod keys;
pub mod replay;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;

use crate::fhir::ServerBase;
use crate::store::{Claim, ReplayLedger};
use keys::{KeyError, KeySource, Location, OnUnknownKid};
pub use replay::{REPLAY_CACHE_CAP, ReplayCache};

/// Leeway for `exp`, `nbf`, `iat` and the lifetime (clock skew between EHR and service).
pub const LEEWAY_SECS: u64 = 60;
/// Default of `--max-token-lifetime` (CDS Hooks security guidance: tokens live minutes).
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// `--auth-config FILE` (TOML).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    #[serde(default)]
    pub issuer: Vec<IssuerConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    pub iss: String,
    /// JWKS file; a relative path is relative to the config file.
    pub jwks_file: Option<PathBuf>,
    pub jwks_url: Option<String>,
    /// `jku` header values that may be followed for this issuer.
    #[serde(default)]
    pub jku: Vec<String>,
    /// FHIR servers (base URLs) this issuer's calls may name in `fhirServer`; none:
    /// prefetch only (besides `--fhir-server`).
    #[serde(default)]
    pub fhir_servers: Vec<ServerBase>,
}

/// What the command line adds to the auth config.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// `--dev`: `jwks_url` and `jku` may be `http://` (local test servers).
    pub dev: bool,
    /// `--max-token-lifetime`: longest `exp - iat` accepted (plus the leeway).
    pub max_token_lifetime: Duration,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            dev: false,
            max_token_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
        }
    }
}

struct Issuer {
    /// Its `jwks_file` or `jwks_url`.
    keys: Arc<KeySource>,
    /// Its listed `jku`s, each a source of its own.
    jku: Vec<(url::Url, Arc<KeySource>)>,
    fhir_servers: Arc<[ServerBase]>,
}

/// Why a token was refused: for the log only.
#[derive(Debug)]
pub struct AuthFailure {
    pub check: &'static str,
    pub iss: Option<String>,
    pub kid: Option<String>,
    pub jti: Option<String>,
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "check={} iss={} kid={} jti={}",
            self.check,
            self.iss.as_deref().map(clip).unwrap_or("-"),
            self.kid.as_deref().map(clip).unwrap_or("-"),
            self.jti.as_deref().map(clip).unwrap_or("-"),
        )
    }
}

/// Header and claim values are attacker-controlled: keep log lines short.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(100) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    exp: u64,
    aud: serde_json::Value,
    iat: Option<serde_json::Value>,
    jti: Option<String>,
}

/// What a verified token tells us: who called (for the log), and where its calls may
/// query FHIR data.
#[derive(Debug, Clone)]
pub struct Verified {
    pub iss: String,
    pub jti: String,
    /// The issuer's `fhir_servers`.
    pub fhir_servers: Arc<[ServerBase]>,
}

pub struct Authenticator {
    issuers: HashMap<String, Issuer>,
    /// Every key source once (an issuer's `jwks_url` may also be one of its `jku`s).
    sources: Vec<Arc<KeySource>>,
    /// `(iss, jti)` of live tokens already used (by this process).
    seen: Mutex<ReplayCache>,
    /// The ledger every replica shares (`--store postgres://...`), asked after `seen`.
    shared_replay: Option<Arc<dyn ReplayLedger>>,
    /// Tokens accepted while the shared ledger could not answer (checked by this
    /// process's cache only): the window in which a replay to another replica passes.
    local_only: std::sync::atomic::AtomicU64,
    max_token_lifetime: Duration,
}

impl Authenticator {
    /// Read and check `--auth-config`: every issuer has exactly one key source, files
    /// are readable JWK sets with a usable key, URLs are https (or http with `--dev`).
    /// Errors name the file and the issuer.
    pub fn load(path: &Path, options: &AuthOptions) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--auth-config {}: {e}", path.display()))?;
        let file: AuthFile =
            toml::from_str(&text).map_err(|e| format!("--auth-config {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_config(file, base, options)
            .map_err(|e| format!("--auth-config {}: {e}", path.display()))
    }

    /// Build from a parsed config. JWKS files are read now; nothing is fetched here (see
    /// [`Authenticator::start_background_refresh`]).
    pub fn from_config(file: AuthFile, base: &Path, options: &AuthOptions) -> Result<Self, String> {
        if file.issuer.is_empty() {
            return Err("no [[issuer]]: list at least one trusted EHR".into());
        }
        let http = reqwest::Client::builder()
            .timeout(keys::JWKS_TIMEOUT)
            // A redirect could lead around the jku allowlist.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let mut sources: Vec<Arc<KeySource>> = Vec::new();
        let mut source_for = |location: Location| -> (Arc<KeySource>, bool) {
            if let Some(s) = sources.iter().find(|s| *s.location() == location) {
                return (s.clone(), false);
            }
            let s = Arc::new(KeySource::new(location, http.clone()));
            sources.push(s.clone());
            (s, true)
        };
        let mut issuers = HashMap::new();
        let issuer_count = file.issuer.len();
        for i in file.issuer {
            let keys = match (i.jwks_file, i.jwks_url) {
                (Some(f), None) => {
                    let f = if f.is_relative() { base.join(f) } else { f };
                    let (source, new) = source_for(Location::File(f));
                    if new {
                        source
                            .load_file_now()
                            .map_err(|e| format!("issuer {}: jwks_file {e}", i.iss))?;
                    }
                    source
                }
                (None, Some(u)) => {
                    let u = parse_key_url(&u, options.dev)
                        .map_err(|e| format!("issuer {}: jwks_url {e}", i.iss))?;
                    source_for(Location::Url(u)).0
                }
                _ => {
                    return Err(format!(
                        "issuer {}: give exactly one of jwks_file or jwks_url",
                        i.iss
                    ));
                }
            };
            let mut jku = Vec::new();
            for u in &i.jku {
                let u = parse_key_url(u, options.dev)
                    .map_err(|e| format!("issuer {}: jku {e}", i.iss))?;
                jku.push((u.clone(), source_for(Location::Url(u)).0));
            }
            if issuers
                .insert(
                    i.iss.clone(),
                    Issuer {
                        keys,
                        jku,
                        fhir_servers: i.fhir_servers.into(),
                    },
                )
                .is_some()
            {
                return Err(format!("issuer {} is listed twice", i.iss));
            }
        }
        Ok(Authenticator {
            issuers,
            sources,
            seen: Mutex::new(ReplayCache::new(REPLAY_CACHE_CAP, issuer_count)),
            shared_replay: None,
            local_only: std::sync::atomic::AtomicU64::new(0),
            max_token_lifetime: options.max_token_lifetime,
        })
    }

    /// Keep every key source fresh in the background (needs a Tokio runtime): each
    /// `jwks_url` is fetched now (one that is down is retried with backoff, and logged,
    /// not fatal), files are re-read when they change, a `jku` once a token has needed it.
    pub fn start_background_refresh(&self) {
        let configured: Vec<&Arc<KeySource>> = self.issuers.values().map(|i| &i.keys).collect();
        for s in &self.sources {
            let eager = matches!(s.location(), Location::Url(_))
                && configured.iter().any(|c| Arc::ptr_eq(c, s));
            s.refresh_in_background(eager);
        }
    }

    /// Check every token's `jti` against `ledger` too, so that a token used on one
    /// replica is refused by the others.
    pub fn share_replay(&mut self, ledger: Arc<dyn ReplayLedger>) {
        self.shared_replay = Some(ledger);
    }

    /// `dvt_cds_replay_local_only_total`: tokens the shared ledger could not check (it
    /// was down), accepted on this process's cache alone (README, "Replicas").
    pub fn render_metrics(&self, text: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            text,
            "# HELP dvt_cds_replay_local_only_total Tokens accepted while the shared replay ledger was unreachable (checked by this replica only).\n\
             # TYPE dvt_cds_replay_local_only_total counter\n\
             dvt_cds_replay_local_only_total {}\n",
            self.local_only.load(std::sync::atomic::Ordering::Relaxed),
        );
    }

    pub fn issuer_count(&self) -> usize {
        self.issuers.len()
    }

    /// Each issuer and the FHIR servers it lists (for the startup log).
    pub fn fhir_servers(&self) -> impl Iterator<Item = (&str, &[ServerBase])> {
        self.issuers
            .iter()
            .map(|(iss, i)| (iss.as_str(), &*i.fhir_servers))
    }

    /// Verify `token` for a call to `audience` (public URL + route), the checks in the
    /// order the module doc lists. `fail` gathers what is known of the token so far (its
    /// `kid`, then its `iss` and `jti`) for the log line of whichever check fails.
    pub async fn verify(&self, token: &str, audience: &str) -> Result<Verified, AuthFailure> {
        let mut fail = AuthFailure {
            check: "header",
            iss: None,
            kid: None,
            jti: None,
        };
        // `alg: none` and unknown algorithms do not even parse as a header.
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| fail_with(&mut fail, "header"))?;
        fail.kid = header.kid.clone();
        let kid = check_header(&header).map_err(|check| fail_with(&mut fail, check))?;
        let (iss, jti) = peek_iss_and_jti(token).map_err(|check| fail_with(&mut fail, check))?;
        fail.iss = iss;
        fail.jti = jti;
        let Some(iss) = fail.iss.clone() else {
            return Err(fail_with(&mut fail, "iss missing"));
        };
        let Some(issuer) = self.issuers.get(&iss) else {
            return Err(fail_with(&mut fail, "iss not allowed"));
        };
        let key = issuer
            .signing_key(&header, &kid)
            .await
            .map_err(|check| fail_with(&mut fail, check))?;
        let claims = decode_claims(token, &key, header.alg, &iss)
            .map_err(|check| fail_with(&mut fail, check))?;
        let now = jsonwebtoken::get_current_timestamp();
        self.check_audience_and_times(&claims, audience, now)
            .map_err(|check| fail_with(&mut fail, check))?;
        let Some(jti) = claims.jti.filter(|j| !j.is_empty()) else {
            return Err(fail_with(&mut fail, "jti missing"));
        };
        self.check_replay(&claims.iss, &jti, claims.exp, now)
            .await
            .map_err(|check| fail_with(&mut fail, check))?;
        Ok(Verified {
            iss: claims.iss,
            jti,
            fhir_servers: issuer.fhir_servers.clone(),
        })
    }

    /// The rules of a signed token's claims that `jsonwebtoken` does not apply: `aud`
    /// names the URL called (compared as a URL), and `iat` and the token's lifetime are
    /// within bounds.
    fn check_audience_and_times(
        &self,
        claims: &Claims,
        audience: &str,
        now: u64,
    ) -> Result<(), &'static str> {
        let expected = url::Url::parse(audience).map_err(|_| "aud")?;
        if !claims::audience_matches(&claims.aud, &expected) {
            return Err("aud");
        }
        claims::check_times(
            claims.iat.as_ref(),
            claims.exp,
            now,
            self.max_token_lifetime,
        )
    }

    /// A `jti` is accepted once within its token's lifetime (exp + leeway): first by this
    /// process's cache (which also keeps working while the shared ledger is down), then
    /// by the shared ledger, when there is one. While the ledger cannot answer, the
    /// process's cache alone decides: a token replayed to another replica then passes
    /// (README, "Deployment").
    async fn check_replay(
        &self,
        iss: &str,
        jti: &str,
        exp: u64,
        now: u64,
    ) -> Result<(), &'static str> {
        let dead_after = exp.saturating_add(LEEWAY_SECS);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.check(iss, jti, dead_after, now)?;
        }
        let Some(ledger) = &self.shared_replay else {
            return Ok(());
        };
        match ledger.claim(iss, jti, dead_after).await {
            Ok(Claim::New) => Ok(()),
            Ok(Claim::Replayed) => Err("jti replayed"),
            Err(e) => {
                // The store's health monitor logs the outage once; per call, debug only.
                tracing::debug!(error = %e, "replay ledger unavailable: checked by this process only");
                self.local_only
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
        }
    }
}

impl Issuer {
    /// The key to check a token's signature with: by `kid` from the issuer's keys, or,
    /// when the header names a `jku`, by [`jku_key`] if the issuer lists that `jku`;
    /// only a key whose type fits the header's algorithm ([`decoding_key`]).
    async fn signing_key(
        &self,
        header: &jsonwebtoken::Header,
        kid: &str,
    ) -> Result<DecodingKey, &'static str> {
        let jwk = match &header.jku {
            None => self.keys.key(kid, OnUnknownKid::Refetch).await,
            Some(jku) => {
                let listed = url::Url::parse(jku)
                    .ok()
                    .and_then(|u| self.jku.iter().find(|(l, _)| *l == u));
                let Some((_, jku_source)) = listed else {
                    return Err("jku not allowed");
                };
                jku_key(&self.keys, jku_source, kid).await
            }
        }
        .map_err(KeyError::check)?;
        decoding_key(&jwk, header.alg)
    }
}

/// The header names an algorithm we accept and a `kid`; returns the `kid`.
fn check_header(header: &jsonwebtoken::Header) -> Result<String, &'static str> {
    if !matches!(
        header.alg,
        Algorithm::ES384 | Algorithm::RS384 | Algorithm::ES256 | Algorithm::RS256
    ) {
        return Err("alg");
    }
    header.kid.clone().ok_or("kid missing")
}

/// The token's `iss` and `jti`, read without checking the signature: only to pick the
/// issuer's keys and to name the token in the log. Nothing read here is trusted; the
/// signed claims are read again by [`decode_claims`].
fn peek_iss_and_jti(token: &str) -> Result<(Option<String>, Option<String>), &'static str> {
    let peek = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(token)
        .map_err(|_| "claims")?;
    let claim = |name: &str| {
        peek.claims
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    Ok((claim("iss"), claim("jti")))
}

/// Check the signature, `exp` and `nbf` (with [`LEEWAY_SECS`]), `iss` and the required
/// claims, and read the claims; each failure named by its check. `aud` is checked
/// afterwards, as a URL ([`claims::audience_matches`]).
fn decode_claims(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
    iss: &str,
) -> Result<Claims, &'static str> {
    let mut v = Validation::new(alg);
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    // `aud` is compared as a URL later (claims::audience_matches).
    v.validate_aud = false;
    v.set_issuer(&[iss]);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    let data = jsonwebtoken::decode::<Claims>(token, key, &v).map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => "signature",
        ErrorKind::ExpiredSignature => "exp",
        ErrorKind::ImmatureSignature => "nbf",
        ErrorKind::InvalidAudience => "aud",
        ErrorKind::InvalidIssuer => "iss",
        ErrorKind::MissingRequiredClaim(_) => "required claim missing",
        ErrorKind::InvalidAlgorithm => "alg does not match key",
        _ => "token",
    })?;
    Ok(data.claims)
}

/// The key for a token with a listed `jku`: a `kid` the issuer's configured keys hold
/// verifies with them, no fetch (an offline site can trust the CDS Hooks sandbox from a
/// saved JWKS); otherwise the `jku` is fetched.
async fn jku_key(configured: &KeySource, jku: &KeySource, kid: &str) -> Result<Jwk, KeyError> {
    if let Ok(k) = configured.key(kid, OnUnknownKid::Fail).await {
        return Ok(k);
    }
    jku.key(kid, OnUnknownKid::Refetch).await
}

fn fail_with(fail: &mut AuthFailure, check: &'static str) -> AuthFailure {
    AuthFailure {
        check,
        iss: fail.iss.take(),
        kid: fail.kid.take(),
        jti: fail.jti.take(),
    }
}

/// A `jwks_url` or `jku`: https, or http with `--dev` (local test servers).
fn parse_key_url(s: &str, dev: bool) -> Result<url::Url, String> {
    match url::Url::parse(s) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Ok(u),
        Ok(u) if u.scheme() == "http" && u.host().is_some() => {
            if dev {
                Ok(u)
            } else {
                Err(format!(
                    "\"{s}\": must be https (http:// is accepted only with --dev)"
                ))
            }
        }
        _ => Err(format!("\"{s}\": expected an absolute https URL")),
    }
}

/// The verifying key, only if the JWK's type (and its `alg`, when given) fits the
/// token's algorithm: an RSA or EC public key is never used as an HMAC secret.
fn decoding_key(jwk: &Jwk, alg: Algorithm) -> Result<DecodingKey, &'static str> {
    let fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::RS384) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        _ => false,
    };
    if !fits {
        return Err("key type does not match alg");
    }
    if let Some(ka) = jwk.common.key_algorithm {
        let same = matches!(
            (ka, alg),
            (KeyAlgorithm::RS256, Algorithm::RS256)
                | (KeyAlgorithm::RS384, Algorithm::RS384)
                | (KeyAlgorithm::ES256, Algorithm::ES256)
                | (KeyAlgorithm::ES384, Algorithm::ES384)
        );
        if !same {
            return Err("key alg does not match alg");
        }
    }
    DecodingKey::from_jwk(jwk).map_err(|_| "key unusable")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SANDBOX: &str = "https://sandbox.cds-hooks.org";
    const SANDBOX_JKU: &str = "https://sandbox.cds-hooks.org/.well-known/jwks.json";

    struct Key {
        kid: String,
        pem: String,
        jwk: serde_json::Value,
    }

    fn es384(kid: &str) -> Key {
        use p384::pkcs8::{EncodePrivateKey, LineEnding};
        let secret = p384::SecretKey::random(&mut rand::rngs::OsRng);
        let mut jwk: serde_json::Value =
            serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
        jwk["kid"] = json!(kid);
        Key {
            kid: kid.into(),
            pem: secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            jwk,
        }
    }

    fn sign(key: &Key, claims: &serde_json::Value, jku: Option<&str>) -> String {
        let mut h = jsonwebtoken::Header::new(Algorithm::ES384);
        h.kid = Some(key.kid.clone());
        h.jku = jku.map(str::to_string);
        let enc = jsonwebtoken::EncodingKey::from_ec_pem(key.pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&h, claims, &enc).unwrap()
    }

    fn claims(iss: &str, aud: &str) -> serde_json::Value {
        let now = jsonwebtoken::get_current_timestamp();
        json!({"iss": iss, "aud": aud, "iat": now, "exp": now + 301,
            "jti": uuid::Uuid::new_v4().to_string()})
    }

    /// An authenticator from TOML, with `files` written beside it.
    fn auth(
        toml_text: &str,
        files: &[(&str, serde_json::Value)],
        dev: bool,
    ) -> Result<Authenticator, String> {
        let dir = tempfile::tempdir().unwrap();
        for (name, v) in files {
            std::fs::write(dir.path().join(name), v.to_string()).unwrap();
        }
        let file: AuthFile = toml::from_str(toml_text).unwrap();
        let options = AuthOptions {
            dev,
            ..AuthOptions::default()
        };
        Authenticator::from_config(file, dir.path(), &options)
    }

    #[test]
    fn only_the_four_asymmetric_algorithms_with_a_kid_pass_the_header_check() {
        let header = |alg, kid: Option<&str>| jsonwebtoken::Header {
            kid: kid.map(str::to_string),
            ..jsonwebtoken::Header::new(alg)
        };
        for alg in [
            Algorithm::ES384,
            Algorithm::RS384,
            Algorithm::ES256,
            Algorithm::RS256,
        ] {
            assert_eq!(check_header(&header(alg, Some("k1"))), Ok("k1".to_string()));
            assert_eq!(check_header(&header(alg, None)), Err("kid missing"));
        }
        // An HMAC token would use a public key as its secret; the other asymmetric
        // algorithms are not among CDS Hooks' four.
        for alg in [
            Algorithm::HS256,
            Algorithm::HS384,
            Algorithm::HS512,
            Algorithm::PS256,
            Algorithm::RS512,
            Algorithm::EdDSA,
        ] {
            assert_eq!(check_header(&header(alg, Some("k1"))), Err("alg"));
            assert_eq!(check_header(&header(alg, None)), Err("alg"), "alg first");
        }
    }

    #[test]
    fn key_urls_must_be_https_outside_dev() {
        let cfg = "[[issuer]]\niss = \"https://ehr.test\"\njwks_url = \"http://ehr.test/jwks\"\n";
        let err = auth(cfg, &[], false).err().unwrap();
        assert!(
            err.contains("https://ehr.test")
                && err.contains("http://ehr.test/jwks")
                && err.contains("https"),
            "{err}"
        );
        assert!(auth(cfg, &[], true).is_ok());
        let cfg = "[[issuer]]\niss = \"https://ehr.test\"\njwks_url = \"https://ehr.test/jwks\"\njku = [\"http://ehr.test/jku\"]\n";
        let err = auth(cfg, &[], false).err().unwrap();
        assert!(
            err.contains("jku") && err.contains("http://ehr.test/jku"),
            "{err}"
        );
        let cfg = "[[issuer]]\niss = \"https://ehr.test\"\njwks_url = \"ftp://ehr.test/jwks\"\n";
        assert!(auth(cfg, &[], true).is_err());
    }

    /// The CDS Hooks sandbox signs with a `jku` header; with its key saved in the
    /// issuer's `jwks_file` and the `jku` listed, a token verifies with no fetch: the
    /// sandbox host is not even resolvable here, and the call is fast.
    #[tokio::test]
    async fn a_listed_jku_whose_kid_is_configured_verifies_without_a_fetch() {
        let key = es384("sandbox-like");
        let cfg = format!(
            "[[issuer]]\niss = \"{SANDBOX}\"\njwks_file = \"sandbox.json\"\njku = [\"{SANDBOX_JKU}\"]\n"
        );
        let a = auth(&cfg, &[("sandbox.json", json!({"keys": [key.jwk]}))], false).unwrap();
        let aud_typed = "http://localhost:8080/cds-services/dvt-patient-view";
        let ours = "http://127.0.0.1:8080/cds-services/dvt-patient-view";
        let token = sign(&key, &claims(SANDBOX, aud_typed), Some(SANDBOX_JKU));
        let started = std::time::Instant::now();
        let v = a.verify(&token, ours).await.expect("verifies");
        assert_eq!(v.iss, SANDBOX);
        assert!(started.elapsed() < Duration::from_millis(500));
        // An unlisted jku is refused even with a known kid.
        let token = sign(
            &key,
            &claims(SANDBOX, aud_typed),
            Some("https://evil.test/jwks.json"),
        );
        assert_eq!(
            a.verify(&token, ours).await.unwrap_err().check,
            "jku not allowed"
        );
    }

    #[tokio::test]
    async fn a_listed_jku_with_an_unknown_kid_is_fetched() {
        let configured = es384("configured");
        let rotated = es384("rotated");
        let body = json!({"keys": [rotated.jwk]}).to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let jku = format!("http://{}/jwks", listener.local_addr().unwrap());
        let app =
            axum::Router::new().route("/jwks", axum::routing::get(move || async move { body }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let cfg = format!(
            "[[issuer]]\niss = \"https://ehr.test\"\njwks_file = \"k.json\"\njku = [\"{jku}\"]\n"
        );
        let a = auth(&cfg, &[("k.json", json!({"keys": [configured.jwk]}))], true).unwrap();
        let aud = "https://cds.test/cds-services";
        let token = sign(&rotated, &claims("https://ehr.test", aud), Some(&jku));
        assert!(a.verify(&token, aud).await.is_ok());
        // The jku's keys serve only tokens that name it.
        let token = sign(&rotated, &claims("https://ehr.test", aud), None);
        assert_eq!(
            a.verify(&token, aud).await.unwrap_err().check,
            "kid unknown"
        );
    }

    /// The README's sandbox entry lists the same URL as `jwks_url` and `jku`: one source,
    /// fetched once for both kinds of token.
    #[tokio::test]
    async fn a_jku_equal_to_the_jwks_url_shares_its_cache() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let key = es384("k");
        let body = json!({"keys": [key.jwk]}).to_string();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                h.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                async move { body }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let cfg = format!(
            "[[issuer]]\niss = \"https://ehr.test\"\njwks_url = \"{url}\"\njku = [\"{url}\"]\n"
        );
        let a = auth(&cfg, &[], true).unwrap();
        assert_eq!(a.sources.len(), 1);
        let aud = "https://cds.test/cds-services";
        for jku in [Some(url.as_str()), None, Some(url.as_str())] {
            let token = sign(&key, &claims("https://ehr.test", aud), jku);
            assert!(a.verify(&token, aud).await.is_ok());
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn iat_and_lifetime_are_checked_after_the_signature() {
        let key = es384("k");
        let cfg = "[[issuer]]\niss = \"https://ehr.test\"\njwks_file = \"k.json\"\n";
        let a = auth(cfg, &[("k.json", json!({"keys": [key.jwk]}))], false).unwrap();
        let aud = "https://cds.test/cds-services";
        let now = jsonwebtoken::get_current_timestamp();
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut c = claims("https://ehr.test", aud);
            f(&mut c);
            sign(&key, &c, None)
        };
        let cases: [(&str, String); 4] = [
            (
                "iat missing",
                with(&|c| {
                    c.as_object_mut().unwrap().remove("iat");
                }),
            ),
            (
                "iat not a number",
                with(&|c| c["iat"] = json!(now.to_string())),
            ),
            (
                "iat in the future",
                with(&|c| {
                    c["iat"] = json!(now + 3600);
                    c["exp"] = json!(now + 3900);
                }),
            ),
            (
                "token lifetime too long (exp - iat)",
                with(&|c| c["exp"] = json!(now + 10 * 365 * 86_400)),
            ),
        ];
        for (check, token) in &cases {
            assert_eq!(a.verify(token, aud).await.unwrap_err().check, *check);
        }
        assert!(a.verify(&with(&|_| {}), aud).await.is_ok());
    }
}
