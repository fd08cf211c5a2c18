//! The checks' contract names, shared by the probe (which runs them), the
//! coordinator (which diagnoses from them) and the catalogues (which name
//! them): one table, so no front end keeps its own copy.

pub const VERSION: &str = "version";
pub const LICENSE: &str = "license";
pub const UPDATE_PERMISSION: &str = "update_permission";
pub const UPDATE_SOURCE: &str = "update_source";
pub const CERTIFICATES: &str = "certificates";
pub const CONNECTIVITY: &str = "connectivity";
pub const SYSTEM_REQUIREMENTS: &str = "system_requirements";

/// Every check, in runbook order (results come back in this order too).
pub const ALL: [&str; 7] = [
    VERSION,
    LICENSE,
    UPDATE_PERMISSION,
    UPDATE_SOURCE,
    CERTIFICATES,
    CONNECTIVITY,
    SYSTEM_REQUIREMENTS,
];

/// The checks of runbook steps 1–6 (all but `version`): each must have run
/// and passed before step 7 (overwrite install) can be recommended.
pub const RUNBOOK_STEPS: &[&str] = ALL.split_at(1).1;
