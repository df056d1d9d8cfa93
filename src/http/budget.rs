//! A memory budget for request bodies: every call holds, while it runs, permits (in KiB)
//! for its body's bytes as they arrive and for what the body costs once parsed: a
//! feedback body's JSON tree, bounded by [`crate::json_cost`] as it arrives; a hook
//! body's typed resources, [`crate::record::resource::allowance_for`] its length, taken
//! when its parse starts (the parse is held to it). When a call would pass the budget it is
//! refused at once with 503 and `Retry-After` instead of being read further, so a flood
//! of large bodies cannot take the process's memory; a body whose cost alone passes the
//! whole budget could never be served, and gets 413.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// The budget (`--max-inflight-body`).
#[derive(Debug, Clone)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    total_kib: u32,
}

/// Permits held by one call; released when dropped.
#[derive(Debug, Default)]
pub struct BodyPermit {
    held: Option<OwnedSemaphorePermit>,
    kib: u32,
}

impl BodyBudget {
    pub fn new(bytes: usize) -> Self {
        let total_kib = u32::try_from(kib(bytes))
            .unwrap_or(u32::MAX)
            .min(Semaphore::MAX_PERMITS as u32);
        BodyBudget {
            permits: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// The whole budget in KiB.
    pub fn total_kib(&self) -> u32 {
        self.total_kib
    }

    /// KiB of the budget in use now (for metrics).
    pub fn in_use_kib(&self) -> u32 {
        self.total_kib - self.permits.available_permits() as u32
    }

    /// The budget's gauges, in the Prometheus text format: in bytes (Prometheus's base
    /// unit), though the budget counts whole KiB, so both are multiples of 1024.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "# HELP dvt_cds_inflight_body_bytes Bytes held by the bodies of calls in flight (bytes and parsed cost, counted in whole KiB).\n\
             # TYPE dvt_cds_inflight_body_bytes gauge\n\
             dvt_cds_inflight_body_bytes {}\n\
             # HELP dvt_cds_inflight_body_limit_bytes The request-body budget in bytes (--max-inflight-body, rounded up to whole KiB).\n\
             # TYPE dvt_cds_inflight_body_limit_bytes gauge\n\
             dvt_cds_inflight_body_limit_bytes {}\n",
            u64::from(self.in_use_kib()) * 1024,
            u64::from(self.total_kib) * 1024
        );
    }

    /// Make `permit` cover `bytes` (a body and its parsed cost).
    pub fn cover(&self, permit: &mut BodyPermit, bytes: usize) -> Result<(), Refused> {
        let needed = match u32::try_from(kib(bytes)) {
            Ok(n) if n <= self.total_kib => n,
            _ => return Err(Refused::NeverFits),
        };
        if needed <= permit.kib {
            return Ok(());
        }
        let more = needed - permit.kib;
        match self.permits.clone().try_acquire_many_owned(more) {
            Ok(p) => {
                match &mut permit.held {
                    Some(h) => h.merge(p),
                    None => permit.held = Some(p),
                }
                permit.kib = needed;
                Ok(())
            }
            Err(TryAcquireError::NoPermits) | Err(TryAcquireError::Closed) => Err(Refused::Busy),
        }
    }
}

/// Why [`BodyBudget::cover`] said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Calls in flight hold the budget now: retry later (503).
    Busy,
    /// More than the whole budget: never servable (413).
    NeverFits,
}

fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_share_the_budget_and_give_it_back() {
        let budget = BodyBudget::new(10 * 1024);
        let mut a = BodyPermit::default();
        let mut b = BodyPermit::default();
        assert!(budget.cover(&mut a, 6 * 1024).is_ok());
        assert_eq!(budget.in_use_kib(), 6);
        // Growing a call's cover takes only the difference.
        assert!(budget.cover(&mut a, 7 * 1024 - 100).is_ok());
        assert_eq!(budget.in_use_kib(), 7);
        assert!(budget.cover(&mut b, 3 * 1024).is_ok());
        assert_eq!(
            budget.cover(&mut b, 3 * 1024 + 1),
            Err(Refused::Busy),
            "past the budget"
        );
        assert_eq!(budget.in_use_kib(), 10);
        drop(a);
        assert_eq!(budget.in_use_kib(), 3);
        assert!(budget.cover(&mut b, 9 * 1024).is_ok());
        drop(b);
        assert_eq!(budget.in_use_kib(), 0);
    }

    #[test]
    fn gauges_are_in_bytes() {
        let budget = BodyBudget::new(10 * 1024);
        let mut a = BodyPermit::default();
        budget.cover(&mut a, 3000).unwrap();
        let mut text = String::new();
        budget.render_metrics(&mut text);
        assert!(
            text.contains("\ndvt_cds_inflight_body_bytes 3072\n"),
            "{text}"
        );
        assert!(
            text.contains("\ndvt_cds_inflight_body_limit_bytes 10240\n"),
            "{text}"
        );
        assert!(!text.contains("kib"), "{text}");
    }

    #[test]
    fn a_body_larger_than_the_budget_is_refused() {
        let budget = BodyBudget::new(4096);
        let mut p = BodyPermit::default();
        assert_eq!(budget.cover(&mut p, 4097), Err(Refused::NeverFits));
        assert_eq!(budget.cover(&mut p, usize::MAX), Err(Refused::NeverFits));
        assert!(budget.cover(&mut p, 4096).is_ok());
        assert!(budget.cover(&mut p, 0).is_ok());
    }
}
