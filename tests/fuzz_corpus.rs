//! Every fuzz target starts from committed seeds (fuzz/corpus/<target>/,
//! written by fuzz/corpus/make.py): valid samples, so the fuzzer begins past
//! the outer format instead of rediscovering it. Small: a few KB a target.

use std::path::Path;

/// The catalog records each backend reads back are fuzzed.
const REQUIRED: [&str; 3] = ["simple_crypto_record", "kmip_record", "pkcs11_record"];

#[test]
fn every_fuzz_target_has_a_small_seed_corpus() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
    let targets: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|bin| {
            let line = bin.lines().find(|l| l.trim_start().starts_with("name"))?;
            line.split('"').nth(1)
        })
        .collect();
    for required in REQUIRED {
        assert!(targets.contains(&required), "no fuzz target {required}");
    }
    for target in &targets {
        assert!(
            fuzz.join("fuzz_targets")
                .join(format!("{target}.rs"))
                .is_file(),
            "{target} has no source"
        );
        let dir = fuzz.join("corpus").join(target);
        let seeds: Vec<u64> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{target}: no seeds in {}: {e}", dir.display()))
            .map(|e| e.unwrap().metadata().unwrap().len())
            .collect();
        assert!(!seeds.is_empty(), "{target}: empty corpus");
        let total: u64 = seeds.iter().sum();
        assert!(total <= 8 << 10, "{target}: {total} bytes of seeds");
    }
}
