//! The shape limits on what agents send (see the module above). They are
//! shared with the probe, which bounds its reports to them before sending
//! (`rollcall_common::limits::bound_report`).

pub use rollcall_common::limits::{
    MAX_BUNDLE_BYTES, MAX_BUNDLE_CHUNK, MAX_CHECKS, MAX_EVIDENCE, MAX_HOSTNAME, MAX_LABEL_KEY, MAX_LABEL_VALUE,
    MAX_LABELS, MAX_SHORT, MAX_TEXT,
};
