//! A rollout member's state: the one table of its words, so the engine, the
//! store, the admin API, the report, the dashboard and the metrics cannot
//! drift apart (a contract: stored rows, transition history, JSON, metric
//! labels and selectors all carry these words).
//!
//! Three encodings, each kept as it was before the enum existed:
//! - storage: the `members.state` column (`pending`, `completed`,
//!   `straggler`) plus its `hard` flag;
//! - the transition word of history, events and metrics (`pending`,
//!   `completed`, `straggler_soft`, `straggler_hard`);
//! - a straggler's severity word (`soft`, `hard`) in JSON, the report, the
//!   dashboard and the `straggler` selector key.

/// One agent's place in one rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MemberState {
    /// Behind the target, still within the rollout's grace.
    #[default]
    Pending,
    /// The target version was observed.
    Completed,
    /// Behind after the grace; hard once its rechecks are spent.
    Straggler { hard: bool },
    /// Behind, with its upgrade installed and Windows waiting for a restart
    /// (RebootPending, RebootRequired, PendingFileRenameOperations): not a
    /// runbook cause, counted apart.
    AwaitingRestart,
}

/// A stored `members.state` value that names no state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownState(pub String);

impl std::fmt::Display for UnknownState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown member state {:?}", self.0)
    }
}

impl std::error::Error for UnknownState {}

impl MemberState {
    pub const ALL: [MemberState; 5] = [
        MemberState::Pending,
        MemberState::Completed,
        MemberState::Straggler { hard: false },
        MemberState::Straggler { hard: true },
        MemberState::AwaitingRestart,
    ];

    /// The `members.state` column's word (soft and hard share one).
    pub fn storage(self) -> &'static str {
        match self {
            MemberState::Pending => "pending",
            MemberState::Completed => "completed",
            MemberState::Straggler { .. } => "straggler",
            MemberState::AwaitingRestart => "awaiting_restart",
        }
    }

    /// The `members.hard` column.
    pub fn hard_flag(self) -> bool {
        matches!(self, MemberState::Straggler { hard: true })
    }

    /// Reads the two columns back. The flag means something only for a
    /// straggler: a pending or completed row's flag is ignored, as it was
    /// when the state was a string.
    pub fn from_storage(state: &str, hard: bool) -> Result<MemberState, UnknownState> {
        match state {
            "pending" => Ok(MemberState::Pending),
            "completed" => Ok(MemberState::Completed),
            "straggler" => Ok(MemberState::Straggler { hard }),
            "awaiting_restart" => Ok(MemberState::AwaitingRestart),
            other => Err(UnknownState(other.to_string())),
        }
    }

    /// The word in transitions, history, events and metric labels.
    pub fn word(self) -> &'static str {
        match self {
            MemberState::Pending => "pending",
            MemberState::Completed => "completed",
            MemberState::Straggler { hard: false } => "straggler_soft",
            MemberState::Straggler { hard: true } => "straggler_hard",
            MemberState::AwaitingRestart => "awaiting_restart",
        }
    }

    pub fn from_word(word: &str) -> Option<MemberState> {
        MemberState::ALL.into_iter().find(|state| state.word() == word)
    }

    /// A straggler's `soft` or `hard`; `None` for other states.
    pub fn severity(self) -> Option<&'static str> {
        match self {
            MemberState::Straggler { hard } => Some(severity_word(hard)),
            _ => None,
        }
    }

    pub fn is_straggler(self) -> bool {
        matches!(self, MemberState::Straggler { .. })
    }

    pub fn is_completed(self) -> bool {
        self == MemberState::Completed
    }
}

/// A straggler's severity as JSON, the report and the dashboard write it.
pub fn severity_word(hard: bool) -> &'static str {
    if hard { "hard" } else { "soft" }
}

/// Parses a severity word: `Some(true)` for `hard`, `Some(false)` for `soft`.
pub fn severity_from_word(word: &str) -> Option<bool> {
    match word {
        "soft" => Some(false),
        "hard" => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_round_trips_every_state() {
        for state in MemberState::ALL {
            assert_eq!(MemberState::from_storage(state.storage(), state.hard_flag()), Ok(state));
        }
        assert_eq!(
            MemberState::ALL.map(|state| (state.storage(), state.hard_flag())),
            [
                ("pending", false),
                ("completed", false),
                ("straggler", false),
                ("straggler", true),
                ("awaiting_restart", false)
            ]
        );
    }

    #[test]
    fn unknown_storage_is_an_error_not_a_default() {
        assert_eq!(MemberState::from_storage("", false), Err(UnknownState(String::new())));
        assert!(MemberState::from_storage("straggler_soft", false).is_err());
        assert_eq!(MemberState::from_storage("pending", true), Ok(MemberState::Pending));
    }

    #[test]
    fn words_round_trip_every_state() {
        for state in MemberState::ALL {
            assert_eq!(MemberState::from_word(state.word()), Some(state));
        }
        assert_eq!(
            MemberState::ALL.map(MemberState::word),
            [
                "pending",
                "completed",
                "straggler_soft",
                "straggler_hard",
                "awaiting_restart"
            ]
        );
        assert_eq!(MemberState::from_word("straggler"), None);
        assert_eq!(MemberState::from_word(""), None);
    }

    #[test]
    fn severity_round_trips() {
        for hard in [false, true] {
            assert_eq!(severity_from_word(severity_word(hard)), Some(hard));
            assert_eq!(MemberState::Straggler { hard }.severity(), Some(severity_word(hard)));
        }
        assert_eq!(severity_word(true), "hard");
        assert_eq!(severity_word(false), "soft");
        assert_eq!(MemberState::Pending.severity(), None);
        assert_eq!(MemberState::Completed.severity(), None);
        assert_eq!(severity_from_word("straggler_hard"), None);
    }
}
