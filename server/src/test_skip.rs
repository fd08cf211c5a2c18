//! How a test says it could not run here: `SKIPPED <test>: <reason>
//! (<enable>)`, on the process's stderr. The helper lives in
//! `rollcall_common::test_skip` (common's tests use it too); this path
//! stays for the server's tests and the end-to-end ones.

pub use rollcall_common::test_skip::{current_test, skip, skip_part};
