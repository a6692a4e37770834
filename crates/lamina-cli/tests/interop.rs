//! Round trips through other tools' formats with the `lamina` binary on real tiles of
//! shared/data/nuinsseg-dev: Lamina → format → Lamina keeps every label's pixels and class.
//! (The exports are also read by independent readers: tests/reference/check_interop.py.)
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nuinsseg-dev")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn lamina(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lamina"))
        .args(args)
        .output()
        .unwrap()
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn import_tiles(dir: &Path, limit: &str) -> PathBuf {
    let bundle = dir.join("bundle.json");
    ok_json(&lamina(&[
        "--json",
        "import-masks",
        s(&data_dir()),
        "--limit",
        limit,
        "--out",
        s(&bundle),
    ]));
    bundle
}

/// Per image name: the sorted (class, mask counts) of its labels.
fn labels_by_image(bundle: &Path) -> BTreeMap<String, Vec<(String, String)>> {
    let b: Value = serde_json::from_str(&std::fs::read_to_string(bundle).unwrap()).unwrap();
    let names: BTreeMap<&str, &str> = b["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a["name"].as_str().unwrap()))
        .collect();
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for i in b["instances"].as_array().unwrap() {
        let name = names[i["asset_id"].as_str().unwrap()].to_owned();
        out.entry(name).or_default().push((
            i["class_id"].as_str().unwrap().to_owned(),
            i["mask"]["counts"].as_str().unwrap().to_owned(),
        ));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Exports with `export_args` (the out path appended), imports `import_from` back onto the bundle
/// replacing its labels, and checks every label came back with the same pixels and class.
fn round_trip(name: &str, export_args: &[&str], out_name: &str, format: &str) {
    let dir = scratch(name);
    let bundle = import_tiles(&dir, "4");
    let exported = dir.join(out_name);
    let mut args = vec!["--json", "export"];
    args.extend_from_slice(export_args);
    args.extend_from_slice(&[s(&bundle), "--out", s(&exported)]);
    let report = ok_json(&lamina(&args));
    assert!(report["labels"].as_u64().unwrap() > 30, "{report}");
    let back = dir.join("back.json");
    let report = ok_json(&lamina(&[
        "--json",
        "import",
        s(&exported),
        "--format",
        format,
        "--onto",
        s(&bundle),
        "--out",
        s(&back),
        "--existing",
        "replace",
    ]));
    assert_eq!(report["skipped"], serde_json::json!([]), "{report}");
    let (before, after) = (labels_by_image(&bundle), labels_by_image(&back));
    assert_eq!(before.len(), 4);
    assert_eq!(before, after, "{format}: labels changed on the way through");
}

#[test]
fn qupath_geojson_round_trip_keeps_every_pixel() {
    round_trip("geojson", &["geojson"], "qupath", "qupath");
}

#[test]
fn labelbox_masks_round_trip_keeps_every_pixel() {
    round_trip("ndjson", &["ndjson"], "labels.ndjson", "labelbox");
}

#[test]
fn label_studio_brush_round_trip_keeps_every_pixel() {
    round_trip("labelstudio", &["labelstudio"], "tasks.json", "labelstudio");
}

#[test]
fn images_with_labels_are_left_alone_unless_asked_and_a_dry_run_writes_nothing() {
    let dir = scratch("existing");
    let bundle = import_tiles(&dir, "2");
    let geojson = dir.join("qupath");
    ok_json(&lamina(&[
        "--json",
        "export",
        "geojson",
        s(&bundle),
        "--out",
        s(&geojson),
    ]));

    let dry = dir.join("dry.json");
    let report = ok_json(&lamina(&[
        "--json",
        "import",
        s(&geojson),
        "--onto",
        s(&bundle),
        "--out",
        s(&dry),
        "--dry-run",
    ]));
    assert!(!dry.exists(), "a dry run wrote the bundle");
    assert_eq!(report["images"], 2);
    assert_eq!(report["already_labeled"], 2);

    let back = dir.join("back.json");
    let report = ok_json(&lamina(&[
        "--json",
        "import",
        s(&geojson),
        "--onto",
        s(&bundle),
        "--out",
        s(&back),
    ]));
    assert_eq!(
        report["left_alone"].as_array().unwrap().len(),
        2,
        "{report}"
    );
    assert_eq!(labels_by_image(&bundle), labels_by_image(&back));

    // Added beside their own: every label twice.
    let added = dir.join("added.json");
    ok_json(&lamina(&[
        "--json",
        "import",
        s(&geojson),
        "--onto",
        s(&bundle),
        "--out",
        s(&added),
        "--existing",
        "add",
    ]));
    for (image, labels) in labels_by_image(&added) {
        assert_eq!(labels.len(), 2 * labels_by_image(&bundle)[&image].len());
    }
}

#[test]
fn a_file_of_no_known_format_or_a_broken_one_is_refused_by_name() {
    let dir = scratch("bad");
    let bundle = import_tiles(&dir, "1");
    let junk = dir.join("notes.txt");
    std::fs::write(&junk, "hello").unwrap();
    let out = lamina(&[
        "import",
        s(&junk),
        "--onto",
        s(&bundle),
        "--out",
        s(&dir.join("x.json")),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("notes.txt: not a QuPath"));

    let broken = dir.join("tile.geojson");
    std::fs::write(&broken, r#"{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [4, "x"]]]}}]}"#).unwrap();
    let out = lamina(&[
        "import",
        s(&broken),
        "--onto",
        s(&bundle),
        "--out",
        s(&dir.join("x.json")),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tile.geojson (QuPath) not imported") && err.contains("feature 1"),
        "{err}"
    );
    assert!(!dir.join("x.json").exists());
}
