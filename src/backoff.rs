//! Retry delays shared by everything that talks to another service (bundle
//! servers, decision-log collectors): exponential backoff with jitter.

use std::time::{Duration, SystemTime};

/// A random duration in `[low, high]`; the randomness only spreads retries
/// of many replicas apart, so the clock's nanoseconds are enough.
pub fn between(low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let span = (high - low).as_nanos() as u64;
    let noise = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .unwrap_or(0);
    low + Duration::from_nanos(noise % span.max(1))
}

/// The delay before retry number `failures` (1 for the first retry):
/// `base · 2^failures`, capped at `max`, jittered down to half of that.
pub fn after_failures(failures: u32, base: Duration, max: Duration) -> Duration {
    let backoff = base.saturating_mul(1u32 << failures.min(16)).min(max);
    between(backoff / 2, backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittered_delays_stay_in_range() {
        let (low, high) = (Duration::from_millis(100), Duration::from_millis(200));
        for _ in 0..100 {
            let d = between(low, high);
            assert!(d >= low && d <= high, "{d:?}");
        }
        assert_eq!(between(high, low), high);
    }

    #[test]
    fn backoff_doubles_and_stays_under_the_cap() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(1));
        let first = after_failures(1, base, max);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
        for failures in [5, 16, 40] {
            let d = after_failures(failures, base, max);
            assert!(d >= max / 2 && d <= max, "{d:?}");
        }
    }
}
