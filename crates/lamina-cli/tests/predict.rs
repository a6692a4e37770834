//! `lamina predict` (automatic mode) on real dev tiles, scored with `lamina metrics` against their
//! masks: the default model finds the nuclei, no two instances share a pixel, and the figures stay
//! within a margin of the ones recorded in BENCHMARKS.md ("Automatic mode"), ahead of the classical
//! baseline's.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::path::{Path, PathBuf};
use std::process::Command;

use lamina_core::bundle::parse_bundle;
use lamina_core::rle::Rle;
use serde_json::Value;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nuinsseg-dev")
}

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/nuclei-v3")
}

fn lamina(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_lamina"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Predicts on the first 4 dev tiles with `model` and returns (metrics, the prediction bundle path).
fn predict_and_score(dir: &Path, model: &str) -> (Value, PathBuf) {
    let (data, gt, pred) = (
        data_dir(),
        dir.join("gt.json"),
        dir.join(format!("pred-{}.json", model.len())),
    );
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    lamina(&[
        "--json",
        "import-masks",
        &s(&data),
        "--limit",
        "4",
        "--out",
        &s(&gt),
    ]);
    let report = lamina(&[
        "--json",
        "predict",
        "--model",
        model,
        "--data",
        &s(&data),
        "--limit",
        "4",
        "--out",
        &s(&pred),
    ]);
    assert_eq!(report["images"], 4);
    (
        lamina(&["--json", "metrics", "--gt", &s(&gt), "--pred", &s(&pred)]),
        pred,
    )
}

#[test]
fn the_default_models_automatic_mode_finds_the_nuclei_without_overlaps_and_beats_the_classical_one()
{
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("predict");
    std::fs::create_dir_all(&dir).unwrap();
    let (model, pred) = predict_and_score(&dir, model_dir().to_str().unwrap());
    let (classical, _) = predict_and_score(&dir, "classical");
    // Recorded on these 4 tiles (43 nuclei): F1 0.750, PQ 0.570, AJI 0.538; classical 0.422, 0.290, 0.412.
    // The margin covers float differences between machines, not a worse model.
    let figure = |m: &Value, k: &str| m[k].as_f64().unwrap();
    for (key, recorded) in [("f1", 0.750), ("pq", 0.570), ("aji", 0.538)] {
        let got = figure(&model, key);
        assert!(
            (got - recorded).abs() < 0.03,
            "{key}: {got} against {recorded} recorded"
        );
        assert!(
            got > figure(&classical, key),
            "{key}: model {got}, classical {}",
            figure(&classical, key)
        );
    }

    let bundle = parse_bundle(&std::fs::read_to_string(pred).unwrap()).unwrap();
    for asset in &bundle.assets {
        let mut owners = vec![0u8; (asset.width * asset.height) as usize];
        for i in bundle.instances.iter().filter(|i| i.asset_id == asset.id) {
            assert_eq!(i.provenance.tool, lamina_core::labels::Tool::PreLabel);
            assert_eq!(i.provenance.model_id.as_deref(), Some("nuclei-v3"));
            let mask = Rle::decompress(&i.mask).unwrap().to_mask();
            for (o, &v) in owners.iter_mut().zip(&mask.data) {
                *o += v;
            }
        }
        assert!(
            owners.iter().all(|&o| o <= 1),
            "{}: two pre-labels share a pixel",
            asset.name
        );
    }
}
