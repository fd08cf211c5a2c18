//! Shared by the integration tests and the fuzzers: the fuzz targets, one
//! per parser of outside input. `tests/fuzz/` runs them under libFuzzer
//! (`cargo fuzz`, nightly); the test suite runs the same functions as
//! property tests over a seed corpus and random mutations, so CI exercises
//! them on stable.

pub mod fuzz_targets;
