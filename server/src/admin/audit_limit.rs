//! How often reads and refusals reach the audit log (issue 24 point 9):
//! every admin call is audited, but a read (`agent.list`, `status`, …) or a
//! refused call is written at most once per [`WINDOW`] per caller, call and
//! kind, and all of them together at most [`GLOBAL_PER_SEC`] a second
//! (burst [`GLOBAL_BURST`]), so a flood of calls (a script polling, a
//! stolen viewer certificate hammering calls it may not make) cannot fill
//! the log. Each written entry says how many like it were suppressed since
//! the last one; every suppression also counts in
//! `rollcall_audit_suppressed_total{kind}`. A state-changing call that is
//! allowed is never limited: each one is written.
//!
//! Memory is bounded: at most [`MAX_KEYS`] callers × calls are tracked;
//! when full, windows that ended are forgotten first, and if none has, the
//! entry is suppressed (and counted) rather than remembered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::edge::rate::TokenBucket;

/// One entry per caller, call and kind at most this often.
pub const WINDOW: Duration = Duration::from_secs(60);
/// All rate-limited entries together, sustained and burst.
pub const GLOBAL_PER_SEC: f64 = 5.0;
pub const GLOBAL_BURST: f64 = 200.0;
/// Callers × calls tracked at most.
pub const MAX_KEYS: usize = 10_000;

/// What is limited: an authorized read, or a refused call of any kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Read,
    Refused,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Refused => "refused",
        }
    }
}

/// The limiter's answer for one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Write it, noting this many like it suppressed since the last one.
    Write {
        suppressed_before: u64,
    },
    Suppress,
}

#[derive(Debug)]
struct Slot {
    written_at: Instant,
    suppressed: u64,
}

#[derive(Debug)]
struct State {
    slots: HashMap<(String, String, Kind), Slot>,
    global: TokenBucket,
}

#[derive(Debug)]
pub struct AuditLimiter {
    state: Mutex<State>,
}

impl Default for AuditLimiter {
    fn default() -> Self {
        AuditLimiter {
            state: Mutex::new(State {
                slots: HashMap::new(),
                global: TokenBucket::new(GLOBAL_PER_SEC, GLOBAL_BURST),
            }),
        }
    }
}

impl AuditLimiter {
    /// Whether an entry of `kind` by `actor` for `action` is written now.
    pub fn check(&self, actor: &str, action: &str, kind: Kind, now: Instant) -> Verdict {
        let Ok(mut state) = self.state.lock() else {
            return Verdict::Suppress;
        };
        let State { slots, global } = &mut *state;
        let key = (actor.to_string(), action.to_string(), kind);
        if let Some(slot) = slots.get_mut(&key) {
            if now.saturating_duration_since(slot.written_at) < WINDOW || !global.has(1.0, now) {
                slot.suppressed = slot.suppressed.saturating_add(1);
                return Verdict::Suppress;
            }
            global.take(1.0);
            let suppressed_before = std::mem::take(&mut slot.suppressed);
            slot.written_at = now;
            return Verdict::Write { suppressed_before };
        }
        if slots.len() >= MAX_KEYS {
            slots.retain(|_, slot| now.saturating_duration_since(slot.written_at) < WINDOW);
            if slots.len() >= MAX_KEYS {
                return Verdict::Suppress;
            }
        }
        if !global.has(1.0, now) {
            // Remembered, so the next entry written for it tells of this one.
            slots.insert(
                key,
                Slot {
                    written_at: now.checked_sub(WINDOW).unwrap_or(now),
                    suppressed: 1,
                },
            );
            return Verdict::Suppress;
        }
        global.take(1.0);
        slots.insert(
            key,
            Slot {
                written_at: now,
                suppressed: 0,
            },
        );
        Verdict::Write { suppressed_before: 0 }
    }
}

/// The result column with the suppressed count, e.g. `ok (37 more like it
/// since the last entry were not written)`.
pub fn with_suppressed(result: String, suppressed_before: u64) -> String {
    if suppressed_before == 0 {
        result
    } else {
        format!("{result} ({suppressed_before} more like it since the last entry were not written)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_entry_per_window_and_the_next_one_counts_the_rest() {
        let limiter = AuditLimiter::default();
        let start = Instant::now();
        assert_eq!(
            limiter.check("eve", "token.list", Kind::Refused, start),
            Verdict::Write { suppressed_before: 0 }
        );
        for _ in 0..500 {
            assert_eq!(
                limiter.check("eve", "token.list", Kind::Refused, start),
                Verdict::Suppress
            );
        }
        // Another call, kind or caller has its own window.
        assert!(matches!(
            limiter.check("eve", "token.list", Kind::Read, start),
            Verdict::Write { .. }
        ));
        assert!(matches!(
            limiter.check("bob", "token.list", Kind::Refused, start),
            Verdict::Write { .. }
        ));
        assert_eq!(
            limiter.check("eve", "token.list", Kind::Refused, start + WINDOW),
            Verdict::Write { suppressed_before: 500 }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn all_entries_together_stay_within_the_global_rate() {
        let limiter = AuditLimiter::default();
        let now = Instant::now();
        let written = (0..1000)
            .filter(|call| {
                matches!(
                    limiter.check(&format!("agent:{call}"), "agent.list", Kind::Refused, now),
                    Verdict::Write { .. }
                )
            })
            .count();
        assert_eq!(written, GLOBAL_BURST as usize);
        // A caller suppressed by the global bound is told of later.
        let later = now + WINDOW;
        assert_eq!(
            limiter.check("agent:999", "agent.list", Kind::Refused, later),
            Verdict::Write { suppressed_before: 1 }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_callers_tracked_are_bounded() {
        let limiter = AuditLimiter::default();
        let now = Instant::now();
        for call in 0..MAX_KEYS + 50 {
            limiter.check(&format!("agent:{call}"), "status", Kind::Refused, now);
        }
        assert!(limiter.state.lock().unwrap().slots.len() <= MAX_KEYS);
    }
}
