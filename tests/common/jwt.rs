//! Real key pairs and JWTs for the authentication tests: ES384 (fast) and RS384 (RSA
//! 2048, generated once per test binary).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const ISS: &str = "https://ehr.test";
/// Our `--public-url` in auth tests (the JWT audience base).
pub const PUBLIC_URL: &str = "https://cds.test";

pub struct KeyPair {
    pub kid: String,
    pub alg: Algorithm,
    pub private_pem: String,
    pub public_pem: String,
    /// The public JWK (with kid, alg, use).
    pub jwk: Value,
}

pub fn es384(kid: &str) -> KeyPair {
    use p384::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let secret = p384::SecretKey::random(&mut rand::rngs::OsRng);
    let public = secret.public_key();
    let mut jwk: Value = serde_json::from_str(&public.to_jwk_string()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!("ES384");
    jwk["use"] = json!("sig");
    KeyPair {
        kid: kid.to_string(),
        alg: Algorithm::ES384,
        private_pem: secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        public_pem: public.to_public_key_pem(LineEnding::LF).unwrap(),
        jwk,
    }
}

/// RSA 2048 (RS384); generated once per test binary and reused under any kid.
pub fn rs384(kid: &str) -> KeyPair {
    static RSA: OnceLock<(String, String, String, String)> = OnceLock::new();
    let (private_pem, public_pem, n, e) = RSA
        .get_or_init(|| {
            use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
            use rsa::traits::PublicKeyParts;
            let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
            let public = rsa::RsaPublicKey::from(&private);
            (
                private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
                public.to_public_key_pem(LineEnding::LF).unwrap(),
                URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            )
        })
        .clone();
    KeyPair {
        kid: kid.to_string(),
        alg: Algorithm::RS384,
        private_pem,
        public_pem,
        jwk: json!({"kty": "RSA", "n": n, "e": e, "kid": kid, "alg": "RS384", "use": "sig"}),
    }
}

pub fn jwks(keys: &[&KeyPair]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Valid claims for a call to `route` (e.g. `/cds-services`).
pub fn claims(route: &str) -> Value {
    json!({
        "iss": ISS,
        "aud": format!("{PUBLIC_URL}{route}"),
        "exp": now() + 300,
        "iat": now(),
        "jti": uuid::Uuid::new_v4().to_string(),
        "tenant": "test-tenant",
        "sub": "ehr-client",
    })
}

pub fn sign(key: &KeyPair, claims: &Value, jku: Option<&str>) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    header.jku = jku.map(str::to_string);
    let enc = match key.alg {
        Algorithm::ES384 | Algorithm::ES256 => {
            EncodingKey::from_ec_pem(key.private_pem.as_bytes()).unwrap()
        }
        _ => EncodingKey::from_rsa_pem(key.private_pem.as_bytes()).unwrap(),
    };
    jsonwebtoken::encode(&header, claims, &enc).unwrap()
}

/// `alg: none`, no signature.
pub fn unsigned(kid: &str, claims: &Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{h}.{c}.")
}

/// HS384 with the public key (PEM) as the shared secret: the classic key-confusion attack.
pub fn hmac_with_public_key(key: &KeyPair, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS384);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(key.public_pem.as_bytes()),
    )
    .unwrap()
}

/// Write `--auth-config` (and its JWKS file) into `dir`; returns the config path.
pub fn write_auth_config(dir: &Path, keys: &[&KeyPair], jku_allowed: &[&str]) -> PathBuf {
    std::fs::write(dir.join("ehr-jwks.json"), jwks(keys).to_string()).unwrap();
    let jku: Vec<String> = jku_allowed.iter().map(|u| format!("\"{u}\"")).collect();
    let toml = format!(
        "[[issuer]]\niss = \"{ISS}\"\njwks_file = \"ehr-jwks.json\"\njku = [{}]\n",
        jku.join(", ")
    );
    let path = dir.join("auth.toml");
    std::fs::write(&path, toml).unwrap();
    path
}
