//! Pseudonymous patient ids: what `audit`'s csv (and the card log of the operations
//! issue) prints instead of a patient id. HMAC-SHA256 of the id under a site secret, so
//! that the same site can link its own rows across runs while nobody without the secret
//! can go back from a row to a patient (a plain hash of an id is reversible by trying ids).

use aws_lc_rs::hmac;

/// The site secret of the pseudonyms (`--id-secret` / `DVT_CDS_ID_SECRET`). Its value
/// is never printed: `Debug` shows only where it came from.
#[derive(Clone)]
pub struct IdSecret {
    key: hmac::Key,
    origin: SecretOrigin,
}

/// Where the secret came from: a random one makes pseudonyms that no later run repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOrigin {
    Given,
    RandomPerRun,
}

impl std::fmt::Debug for IdSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdSecret")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl IdSecret {
    /// A secret given by the site (its UTF-8 bytes are the HMAC key).
    pub fn from_text(text: &str) -> Result<IdSecret, String> {
        if text.is_empty() {
            return Err(
                "--id-secret / DVT_CDS_ID_SECRET is empty: give a secret, or leave it \
                 unset for a random one per run"
                    .to_string(),
            );
        }
        Ok(IdSecret {
            key: hmac::Key::new(hmac::HMAC_SHA256, text.as_bytes()),
            origin: SecretOrigin::Given,
        })
    }

    /// 32 random bytes from the operating system: pseudonyms valid for this run only.
    pub fn random() -> Result<IdSecret, String> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| "no randomness from the operating system for the id secret")?;
        Ok(IdSecret {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
            origin: SecretOrigin::RandomPerRun,
        })
    }

    pub fn origin(&self) -> SecretOrigin {
        self.origin
    }
}

/// The pseudonym of `patient_id`: HMAC-SHA256(secret, id), its first 16 bytes in lower-case
/// hex (32 characters: collisions are negligible for any population).
pub fn pseudonym(secret: &IdSecret, patient_id: &str) -> String {
    let tag = hmac::sign(&secret.key, patient_id.as_bytes());
    tag.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonym_is_the_truncated_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let s = IdSecret::from_text("Jefe").unwrap();
        assert_eq!(
            pseudonym(&s, "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c7"
        );
    }

    #[test]
    fn pseudonym_is_stable_and_depends_on_secret_and_id() {
        let a = IdSecret::from_text("site-a").unwrap();
        let b = IdSecret::from_text("site-b").unwrap();
        let p = pseudonym(&a, "patient-1");
        assert_eq!(
            p,
            pseudonym(&IdSecret::from_text("site-a").unwrap(), "patient-1")
        );
        assert_ne!(p, pseudonym(&b, "patient-1"));
        assert_ne!(p, pseudonym(&a, "patient-2"));
        assert_eq!(p.len(), 32);
        assert!(!p.contains("patient"));
    }

    #[test]
    fn random_secrets_differ_and_empty_secret_is_refused() {
        let r1 = IdSecret::random().unwrap();
        let r2 = IdSecret::random().unwrap();
        assert_eq!(r1.origin(), SecretOrigin::RandomPerRun);
        assert_ne!(pseudonym(&r1, "p"), pseudonym(&r2, "p"));
        assert!(IdSecret::from_text("").unwrap_err().contains("empty"));
        assert!(!format!("{:?}", IdSecret::from_text("hunter2").unwrap()).contains("hunter2"));
    }
}
