//! Jittered exponential backoff for reconnects (gRPC connection-backoff:
//! multiplier 1.6, jitter 0.2), so a coordinator restart does not bring
//! every agent back in the same second.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

const MULTIPLIER: f64 = 1.6;
const JITTER: f64 = 0.2;

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            current: initial,
        }
    }

    /// The next wait: the current step with jitter; the step then grows.
    pub fn next_delay(&mut self) -> Duration {
        let jitter = rand::rng().random_range(-JITTER..=JITTER);
        let delay = self.current.mul_f64(1.0 + jitter);
        self.current = self.current.mul_f64(MULTIPLIER).min(self.max);
        delay.min(self.max)
    }

    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let first = backoff.next_delay();
        assert!(first >= Duration::from_millis(800) && first <= Duration::from_millis(1200));
        for _ in 0..20 {
            assert!(backoff.next_delay() <= Duration::from_secs(10));
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(1200));
    }
}
