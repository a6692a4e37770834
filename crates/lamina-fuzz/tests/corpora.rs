//! Replays every committed fuzz input (the seeds, the corpora `cargo fuzz` grew from them, and the inputs
//! that once crashed)
//! through the targets on stable Rust: what the fuzzer proved once stays proven in CI, in seconds.

use std::path::{Path, PathBuf};

use lamina_fuzz::TARGETS;

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_committed_fuzz_input_passes_its_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for (name, target) in TARGETS {
        let seeds = inputs(&fuzz.join("seeds").join(name));
        let corpus = inputs(&fuzz.join("corpus").join(name));
        // A target without inputs would pass this test without checking anything.
        assert!(
            seeds.len() >= 3,
            "fuzz/seeds/{name} has {} inputs; run fuzz/seed.py",
            seeds.len()
        );
        let regressions = inputs(&fuzz.join("regressions").join(name));
        for file in seeds.iter().chain(&corpus).chain(&regressions) {
            let Ok(bytes) = std::fs::read(file) else {
                panic!("cannot read {}", file.display());
            };
            let outcome = std::panic::catch_unwind(|| target(&bytes));
            assert!(
                outcome.is_ok(),
                "{name} fails on {} (reproduce: cargo +nightly fuzz run {name} {})",
                file.display(),
                file.display()
            );
        }
        eprintln!(
            "{name}: {} corpus inputs, {} regressions",
            corpus.len(),
            regressions.len()
        );
    }
}

/// The seeds reach the checks behind the parsers (a seed every parser refuses would leave the fuzzer
/// mutating garbage): each format's seeds are accepted as they are.
#[test]
fn the_seeds_are_accepted_by_their_parsers() {
    use lamina_core::bundle::parse_bundle;
    use lamina_core::model_manifest::sha256_hex;
    use lamina_sync::{layout::fragment_key, Fragment};

    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let read = |target: &str, seed: &str| {
        let path = seeds.join(target).join(format!("seed-{seed}"));
        match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => panic!("{}: {e} (run fuzz/seed.py)", path.display()),
        }
    };
    for (seed, labeler) in [
        ("labels.json", "alice"),
        ("two-images.json", "bob"),
        ("v1.json", "carol"),
    ] {
        let bytes = read("fragment", seed);
        let key = fragment_key("fuzz", labeler, "2026-01-01T00:00:00Z", &sha256_hex(&bytes));
        let parsed = Fragment::parse(&key, "fuzz", &bytes);
        assert!(parsed.is_ok(), "fragment seed {seed}: {parsed:?}");
    }
    for seed in ["v1.json", "v2.json", "empty.json"] {
        let bytes = read("bundle", seed);
        let parsed = parse_bundle(&String::from_utf8_lossy(&bytes));
        assert!(parsed.is_ok(), "bundle seed {seed}: {parsed:?}");
    }
    for seed in [
        "qupath-tile_b.geojson",
        "labelbox-prelabels.ndjson",
        "cvat-annotations.xml",
        "coco-instances.json",
        "labelstudio-export.json",
    ] {
        let bytes = read("interop", seed);
        let format = lamina_interop::detect::Format::ALL[usize::from(bytes[0])];
        let text = String::from_utf8_lossy(&bytes[1..]);
        let labels =
            lamina_interop::detect::read(format, "tile_b.geojson", &text, &Default::default());
        assert!(
            labels.as_ref().is_ok_and(|l| l.instance_count() > 0),
            "interop seed {seed}: {labels:?}"
        );
    }
}
