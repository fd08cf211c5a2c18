//! The fuzz targets (`rollcall_tests::fuzz_targets`) as property tests: each
//! parser of outside input runs over the shared seed corpus
//! (`tests/fuzz/corpus/`), hostile shapes, random bytes and random
//! mutations of the seeds, and must never panic. Long campaigns run the same
//! targets under libFuzzer: see docs/SECURITY.md.

use std::path::PathBuf;

use proptest::prelude::*;
use prost::Message;
use rollcall_tests::fuzz_targets;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("product_state", fuzz_targets::product_state),
    ("policy", fuzz_targets::policy),
    ("agent_config", fuzz_targets::agent_config),
    ("agent_message", fuzz_targets::agent_message),
    ("selector", fuzz_targets::selector),
];

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    if target == "agent_message" {
        let report = rollcall_common::proto::AgentMessage {
            body: Some(rollcall_common::proto::agent_message::Body::Report(
                rollcall_common::proto::Report {
                    seq: 1,
                    checks: vec![rollcall_common::proto::CheckResult {
                        name: "license".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )),
        };
        seeds.push(report.encode_to_vec());
    }
    seeds
}

fn hostile() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        vec![0xff, 0xfe, 0x00, 0x80],
        format!("a = {}1{}", "[".repeat(50_000), "]".repeat(50_000)).into_bytes(),
        format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000)).into_bytes(),
        format!("{}x = 1", "[a.".repeat(10_000)).into_bytes(),
        "x".repeat(2 * 1024 * 1024).into_bytes(),
        b"version = \"\\u0000\"\nrole = \"root\"\n".to_vec(),
        vec![0x0a; 100_000],
    ]
}

#[test]
fn seeds_and_hostile_inputs_never_panic() {
    for (name, target) in TARGETS {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "no seed corpus for {name}");
        for input in seeds.iter().chain(hostile().iter()) {
            target(input);
        }
    }
}

fn mutate(seed: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for &(position, byte, op) in edits {
        let at = if data.is_empty() {
            0
        } else {
            position % (data.len() + 1)
        };
        match op % 3 {
            0 if at < data.len() => data[at] = byte,
            1 => data.insert(at, byte),
            _ if at < data.len() => {
                data.remove(at);
            }
            _ => data.push(byte),
        }
    }
    data
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for (_, target) in TARGETS {
            target(&data);
        }
    }

    #[test]
    fn mutated_seeds_never_panic(
        which in 0usize..64,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..16),
    ) {
        for (name, target) in TARGETS {
            let seeds = corpus(name);
            let seed = &seeds[which % seeds.len()];
            target(&mutate(seed, &edits));
        }
    }
}
