//! A token bucket: the building block of the per-agent budgets
//! ([`crate::agents::budget`]).

use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate_per_sec: f64, burst: f64) -> Self {
        TokenBucket {
            rate_per_sec,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Adds what the time since the last call earned, up to the burst.
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.burst);
    }

    /// Whether `amount` tokens are there now (refilling first).
    pub fn has(&mut self, amount: f64, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= amount
    }

    /// Takes `amount` tokens; call after [`TokenBucket::has`] said yes, so
    /// two buckets can be charged together or not at all.
    pub fn take(&mut self, amount: f64) {
        self.tokens -= amount;
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self) -> bool {
        if self.has(1.0, Instant::now()) {
            self.take(1.0);
            true
        } else {
            false
        }
    }

    /// Whether the bucket has refilled to its burst by `now`: forgetting it
    /// then grants nothing a new bucket would not.
    pub fn is_full_at(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.rate_per_sec >= self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn refills_at_the_rate() {
        let mut bucket = TokenBucket::new(2.0, 3.0);
        assert!(bucket.try_take() && bucket.try_take() && bucket.try_take());
        assert!(!bucket.try_take());
        tokio::time::advance(std::time::Duration::from_millis(500)).await;
        assert!(bucket.try_take());
        assert!(!bucket.try_take());
    }

    #[tokio::test(start_paused = true)]
    async fn is_full_once_the_burst_has_refilled() {
        let mut bucket = TokenBucket::new(10.0, 100.0);
        assert!(bucket.is_full_at(Instant::now()));
        assert!(bucket.has(60.0, Instant::now()));
        bucket.take(60.0);
        assert!(!bucket.is_full_at(Instant::now()));
        tokio::time::advance(std::time::Duration::from_secs(6)).await;
        assert!(bucket.is_full_at(Instant::now()));
    }
}
