//! What one source address may cost the coordinator before it has proved who
//! it is: connections still in the TLS handshake or without a client
//! certificate, and enrolment attempts.
//!
//! Keyed by address, IPv6 by its /64 (one host usually holds a whole /64, so
//! rotating through it must not buy more slots). Both maps are bounded: the
//! slot map by the connections in flight (an entry goes when its count drops
//! to zero), the enrolment map by [`MAX_ENROLL_SOURCES`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::edge::rate::TokenBucket;

/// Source addresses whose enrolment budget is tracked at once. Beyond it,
/// idle (refilled) budgets are forgotten first; if none is idle the
/// enrolment is refused, which only an attacker holding this many addresses
/// busy at once can cause.
pub const MAX_ENROLL_SOURCES: usize = 65_536;

/// A source address as the limits see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceKey(u128);

impl SourceKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => SourceKey(u128::from(u32::from(v4))),
            // Mark IPv6 keys so they never meet an IPv4 key.
            IpAddr::V6(v6) => SourceKey((u128::from(v6) & !((1u128 << 64) - 1)) | 1),
        }
    }
}

/// The limits, shared by the accept loop and the enrolment handler.
#[derive(Debug)]
pub struct SourceLimits {
    max_unauthenticated: usize,
    max_handshakes: usize,
    unauthenticated: Mutex<HashMap<SourceKey, SourceEntry>>,
    enroll_per_minute: f64,
    enroll_burst: f64,
    enroll: Mutex<HashMap<SourceKey, TokenBucket>>,
}

/// One source's unauthenticated connections, and the handshake slots it
/// may hold at once (so a few addresses that stall their handshakes cannot
/// hold every slot of the listener).
#[derive(Debug)]
struct SourceEntry {
    connections: usize,
    handshakes: Arc<Semaphore>,
}

/// One unauthenticated connection counted against its source; released
/// when dropped (the connection closed, or it presented a certificate).
#[derive(Debug)]
pub struct SourceSlot {
    limits: Arc<SourceLimits>,
    key: SourceKey,
    /// The source's handshake slots, taken by [`SourceSlot::handshake`].
    handshakes: Arc<Semaphore>,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let Ok(mut counts) = self.limits.unauthenticated.lock() else {
            return;
        };
        if let Some(entry) = counts.get_mut(&self.key) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

impl SourceSlot {
    /// Waits for one of the source's handshake slots.
    pub async fn handshake(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.handshakes.clone().acquire_owned().await.ok()
    }
}

impl SourceLimits {
    /// `max_handshakes`: handshakes one source may have in progress at once.
    pub fn new(
        max_unauthenticated: usize,
        max_handshakes: usize,
        enroll_per_minute: f64,
        enroll_burst: f64,
    ) -> Arc<Self> {
        Arc::new(SourceLimits {
            max_unauthenticated,
            max_handshakes: max_handshakes.max(1),
            unauthenticated: Mutex::new(HashMap::new()),
            enroll_per_minute,
            enroll_burst,
            enroll: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more unauthenticated connection from `ip`, or `None`
    /// when that source already holds its share.
    pub fn try_unauthenticated(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let key = SourceKey::of(ip);
        let mut counts = self.unauthenticated.lock().ok()?;
        let entry = counts.entry(key).or_insert_with(|| SourceEntry {
            connections: 0,
            handshakes: Arc::new(Semaphore::new(self.max_handshakes)),
        });
        if entry.connections >= self.max_unauthenticated {
            return None;
        }
        entry.connections += 1;
        Some(SourceSlot {
            limits: self.clone(),
            key,
            handshakes: entry.handshakes.clone(),
        })
    }

    /// Unauthenticated connections `ip` holds now.
    pub fn unauthenticated_of(&self, ip: IpAddr) -> usize {
        self.unauthenticated
            .lock()
            .map(|counts| counts.get(&SourceKey::of(ip)).map_or(0, |entry| entry.connections))
            .unwrap_or(0)
    }

    /// Takes one enrolment attempt from `ip`'s budget; false when it is spent.
    pub fn try_enroll(&self, ip: IpAddr) -> bool {
        let key = SourceKey::of(ip);
        let Ok(mut buckets) = self.enroll.lock() else {
            return false;
        };
        if !buckets.contains_key(&key) && buckets.len() >= MAX_ENROLL_SOURCES {
            buckets.retain(|_, bucket| !bucket.is_full_at(tokio::time::Instant::now()));
            if buckets.len() >= MAX_ENROLL_SOURCES {
                return false;
            }
        }
        buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(self.enroll_per_minute / 60.0, self.enroll_burst))
            .try_take()
    }

    /// How long until `ip` may try to enrol again, roughly (for the error).
    pub fn enroll_retry_after(&self) -> Duration {
        Duration::from_secs_f64((60.0 / self.enroll_per_minute).clamp(1.0, 3600.0))
    }
}

/// Handshakes one source address may have in progress at once: an eighth
/// of the listener's, so only an attacker with more than eight addresses
/// (IPv6: /64s) stalling handshakes can hold every slot.
pub fn handshakes_per_source(max_pending_handshakes: usize) -> usize {
    (max_pending_handshakes / 8).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_holds_at_most_its_share_and_gets_it_back() {
        let limits = SourceLimits::new(2, 1, 60.0, 5.0);
        let attacker: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let first = limits.try_unauthenticated(attacker).unwrap();
        let _second = limits.try_unauthenticated(attacker).unwrap();
        assert!(limits.try_unauthenticated(attacker).is_none());
        assert!(
            limits.try_unauthenticated(other).is_some(),
            "other sources keep their share"
        );
        drop(first);
        assert_eq!(limits.unauthenticated_of(attacker), 1);
        assert!(limits.try_unauthenticated(attacker).is_some());
    }

    #[test]
    fn one_ipv6_prefix_is_one_source_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(SourceKey::of(a), SourceKey::of(b));
        assert_ne!(SourceKey::of(a), SourceKey::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(SourceKey::of(mapped), SourceKey::of(v4));
    }

    #[tokio::test(start_paused = true)]
    async fn enrolments_per_source_are_rate_limited() {
        let limits = SourceLimits::new(2, 1, 60.0, 3.0);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert!((0..3).all(|_| limits.try_enroll(ip)));
        assert!(!limits.try_enroll(ip));
        assert!(limits.try_enroll("192.0.2.9".parse().unwrap()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limits.try_enroll(ip), "one per second refills");
        assert!(!limits.try_enroll(ip));
    }
}
