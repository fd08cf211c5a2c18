//! Rollouts: the engine (wait, recheck, diagnose, soft/hard), the fleet
//! snapshot, a rollout's view, runbook diagnosis.

pub mod diagnosis;
pub mod engine;
pub mod fleet;
pub mod rollout_view;
