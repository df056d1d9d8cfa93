//! The `jti`s of live tokens, per issuer, so a token is accepted once.
//!
//! Each issuer has its own share of the capacity (issue 10: one issuer filling a shared
//! cache locked every issuer out). Past its share an issuer's new tokens are refused
//! rather than a `jti` forgotten (which would let it be replayed).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Most live `jti`s remembered over all issuers; each of `n` issuers gets `cap / n`.
/// Tokens live minutes, so a well-behaved EHR stays far below (about 100 bytes an entry:
/// ~20 MB at this cap).
pub const REPLAY_CACHE_CAP: usize = 200_000;

#[derive(Debug)]
pub struct ReplayCache {
    issuers: HashMap<String, JtiSet>,
    cap_per_issuer: usize,
}

impl ReplayCache {
    /// `cap` entries shared evenly by `issuers` issuers (at least one each).
    pub fn new(cap: usize, issuers: usize) -> Self {
        ReplayCache {
            issuers: HashMap::new(),
            cap_per_issuer: (cap / issuers.max(1)).max(1),
        }
    }

    pub fn cap_per_issuer(&self) -> usize {
        self.cap_per_issuer
    }

    /// Live entries over all issuers.
    pub fn len(&self) -> usize {
        self.issuers.values().map(|s| s.live.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Accept `(iss, jti)` once until `dead_after` (unix s); `now` is the current time.
    /// `iss` is a verified, configured issuer, so the map has one entry per issuer.
    pub fn check(
        &mut self,
        iss: &str,
        jti: &str,
        dead_after: u64,
        now: u64,
    ) -> Result<(), &'static str> {
        let cap = self.cap_per_issuer;
        if !self.issuers.contains_key(iss) {
            self.issuers.insert(iss.to_string(), JtiSet::default());
        }
        let set = self.issuers.get_mut(iss).expect("inserted above");
        set.check(jti, dead_after, now, cap)
    }
}

/// One issuer's live `jti`s: a map for the lookup and a min-heap by expiry for the
/// clean-up, so each call costs O(log n) however many tokens are live (a linear sweep
/// over 10,000 entries was seen as a slowdown by the JWT fuzzer).
#[derive(Debug, Default)]
struct JtiSet {
    live: HashMap<String, u64>,
    by_expiry: BinaryHeap<Reverse<(u64, String)>>,
}

impl JtiSet {
    fn check(
        &mut self,
        jti: &str,
        dead_after: u64,
        now: u64,
        cap: usize,
    ) -> Result<(), &'static str> {
        self.expire(now);
        if self.live.contains_key(jti) {
            return Err("jti replayed");
        }
        if dead_after < now {
            // Already dead: the exp check refuses it before we get here; nothing to keep.
            return Ok(());
        }
        if self.live.len() >= cap {
            return Err("jti cache full for this issuer (too many live tokens)");
        }
        self.by_expiry.push(Reverse((dead_after, jti.to_string())));
        self.live.insert(jti.to_string(), dead_after);
        Ok(())
    }

    /// Forget every token dead before `now`.
    fn expire(&mut self, now: u64) {
        while let Some(Reverse((dead_after, _))) = self.by_expiry.peek() {
            if *dead_after >= now {
                break;
            }
            if let Some(Reverse((_, jti))) = self.by_expiry.pop() {
                self.live.remove(&jti);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ReplayCache;

    #[test]
    fn a_jti_is_accepted_once_while_its_token_lives() {
        let mut c = ReplayCache::new(10, 1);
        assert_eq!(c.check("ehr", "a", 100, 10), Ok(()));
        assert_eq!(c.check("ehr", "a", 100, 50), Err("jti replayed"));
        // The same jti from another issuer is another token.
        assert_eq!(c.check("other", "a", 100, 50), Ok(()));
        // Still refused at its last live second, forgotten after.
        assert_eq!(c.check("ehr", "a", 100, 100), Err("jti replayed"));
        assert_eq!(c.check("ehr", "a", 200, 101), Ok(()));
    }

    #[test]
    fn dead_entries_are_dropped_in_expiry_order() {
        let mut c = ReplayCache::new(1_000, 1);
        for i in 0..500u64 {
            c.check("ehr", &i.to_string(), 1_000 + (i * 7919) % 500, 0)
                .unwrap();
        }
        assert_eq!(c.len(), 500);
        c.check("ehr", "new", 5_000, 1_250).unwrap();
        // Those dead before 1250 (expiry 1000..=1249) are gone, the rest remain.
        assert_eq!(c.len(), 250 + 1);
        // "0" died at 1000: usable again; "1" (expiry 1000 + 7919 % 500 = 1419) is live.
        assert_eq!(c.check("ehr", "0", 9_999, 1_250), Ok(()));
        assert_eq!(c.check("ehr", "1", 9_999, 1_250), Err("jti replayed"));
    }

    #[test]
    fn a_full_cache_refuses_rather_than_forgets() {
        let mut c = ReplayCache::new(3, 1);
        for jti in ["a", "b", "c"] {
            c.check("ehr", jti, 100, 0).unwrap();
        }
        assert!(c.check("ehr", "d", 100, 0).is_err());
        assert_eq!(c.check("ehr", "a", 100, 0), Err("jti replayed"));
        // Once tokens die there is room again.
        assert_eq!(c.check("ehr", "d", 300, 150), Ok(()));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn one_issuer_filling_its_share_does_not_lock_out_another() {
        // Two issuers share 10 entries: 5 each.
        let mut c = ReplayCache::new(10, 2);
        assert_eq!(c.cap_per_issuer(), 5);
        for i in 0..5 {
            c.check("noisy", &format!("n{i}"), 1_000, 0).unwrap();
        }
        assert!(
            c.check("noisy", "n5", 1_000, 0)
                .unwrap_err()
                .starts_with("jti cache full")
        );
        // The quiet issuer still has its whole share.
        for i in 0..5 {
            assert_eq!(c.check("quiet", &format!("q{i}"), 1_000, 0), Ok(()));
        }
        assert!(c.check("quiet", "q5", 1_000, 0).is_err());
        assert_eq!(c.len(), 10);
    }

    #[test]
    fn many_live_tokens_stay_fast() {
        // 100,000 live tokens, then 100,000 more checks: with a linear sweep per call
        // this is 10^10 steps and would not finish; with the heap it is instant.
        let mut c = ReplayCache::new(1_000_000, 1);
        for i in 0..100_000u64 {
            c.check("ehr", &format!("t{i}"), 10_000, 0).unwrap();
        }
        for i in 0..100_000u64 {
            assert!(c.check("ehr", &format!("t{i}"), 10_000, 1).is_err());
        }
        assert_eq!(c.len(), 100_000);
    }
}
