//! End-to-end tests of the `lamina` binary on real tiles of shared/data/nuinsseg-dev.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nuinsseg-dev")
}

/// A fresh scratch folder per test, so tests can run in parallel.
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

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn import3(dir: &Path) -> PathBuf {
    let bundle = dir.join("bundle.json");
    let out = lamina(&[
        "--json",
        "import-masks",
        data_dir().to_str().unwrap(),
        "--limit",
        "3",
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout_json(&out);
    assert_eq!(report["ok"], true);
    assert_eq!(report["assets"], 3);
    assert_eq!(report["project"], "nuinsseg-dev");
    bundle
}

#[test]
fn import_validate_and_export_both_coco_forms() {
    let dir = scratch("roundtrip");
    let bundle_path = import3(&dir);
    let bundle: Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle_path).unwrap()).unwrap();
    let instances = bundle["instances"].as_array().unwrap();
    // The first three dev tiles hold 8 + 13 + 13 nuclei (manifest n_nuclei).
    assert_eq!(instances.len(), 34);
    assert_eq!(instances[0]["id"], "nuinsseg_human_bladder_01_x0y0/1");
    assert_eq!(instances[0]["class_id"], "nucleus");
    assert_eq!(instances[0]["provenance"]["author"], "NuInsSeg");
    // Manifest: instance 1 has area 452 and bbox_xyxy [38, 14, 63, 37].
    assert_eq!(instances[0]["area"], 452);
    assert_eq!(instances[0]["bbox"], serde_json::json!([38, 14, 25, 23]));
    let asset = &bundle["assets"][0];
    assert_eq!(asset["metadata"]["organ"], "bladder");
    assert_eq!(asset["uri"], "images/nuinsseg_human_bladder_01_x0y0.png");

    let out = lamina(&[
        "--json",
        "bundle",
        "validate",
        bundle_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out),
        serde_json::json!({"ok": true, "assets": 3, "instances": 34, "classes": 6, "review_events": 0,
            "stages": {"to_label": 0, "in_review": 3, "rework": 0, "done": 0, "skipped": 0}})
    );
    let human = lamina(&["bundle", "validate", bundle_path.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&human.stdout).starts_with("OK"));

    let rle_path = dir.join("coco_rle.json");
    let out = lamina(&[
        "export",
        "coco",
        bundle_path.to_str().unwrap(),
        "--out",
        rle_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let coco: Value = serde_json::from_str(&std::fs::read_to_string(&rle_path).unwrap()).unwrap();
    let anns = coco["annotations"].as_array().unwrap();
    assert_eq!(anns.len(), 34);
    assert_eq!(anns[0]["segmentation"], instances[0]["mask"]);
    assert_eq!(anns[0]["iscrowd"], 0);
    assert_eq!(coco["categories"][5]["name"], "Nucleus (unclassified)");

    let poly_path = dir.join("coco_poly.json");
    let out = lamina(&[
        "--json",
        "export",
        "coco",
        bundle_path.to_str().unwrap(),
        "--out",
        poly_path.to_str().unwrap(),
        "--polygons",
        "--tolerance",
        "1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["segmentation"], "polygons");
    let coco: Value = serde_json::from_str(&std::fs::read_to_string(&poly_path).unwrap()).unwrap();
    let seg = &coco["annotations"][0]["segmentation"];
    assert!(
        seg.is_array() && seg[0].as_array().unwrap().len() >= 8,
        "{seg}"
    );
}

#[test]
fn import_is_deterministic() {
    let a = lamina(&["import-masks", data_dir().to_str().unwrap(), "--limit", "2"]);
    let b = lamina(&["import-masks", data_dir().to_str().unwrap(), "--limit", "2"]);
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout);
    assert!(stderr(&a).contains("Imported 2 tiles"));
}

#[test]
fn malformed_json_bundle_is_rejected() {
    let dir = scratch("malformed");
    let path = dir.join("bad.json");
    std::fs::write(&path, "{\"format\": \"lamina.bundle\", ").unwrap();
    let out = lamina(&["bundle", "validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not valid JSON"), "{}", stderr(&out));
    let out = lamina(&["--json", "bundle", "validate", path.to_str().unwrap()]);
    assert_eq!(stdout_json(&out)["ok"], false);
}

#[test]
fn bad_reference_is_named_by_validate_and_export() {
    let dir = scratch("badref");
    let bundle_path = import3(&dir);
    let mut bundle: Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle_path).unwrap()).unwrap();
    bundle["instances"][2]["class_id"] = "ghost".into();
    bundle["instances"][5]["asset_id"] = "no_such_tile".into();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, bundle.to_string()).unwrap();

    let out = lamina(&["--json", "bundle", "validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let problems = stdout_json(&out)["problems"].as_array().unwrap().clone();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].as_str().unwrap().contains("instances[2]")
            && problems[0].as_str().unwrap().contains("\"ghost\"")
    );
    assert!(problems[1].as_str().unwrap().contains("\"no_such_tile\""));

    let out = lamina(&[
        "export",
        "coco",
        bad.to_str().unwrap(),
        "--out",
        dir.join("x.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ghost"), "{}", stderr(&out));
    assert!(
        !dir.join("x.json").exists(),
        "no export from an invalid bundle"
    );
}

#[test]
fn missing_dir_and_bad_sets_are_reported() {
    let out = lamina(&["--json", "import-masks", "/no/such/dir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/no/such/dir"));
    assert_eq!(stdout_json(&out)["ok"], false);

    // A set whose first mask is the wrong size and whose second image is missing.
    let dir = scratch("badset");
    std::fs::create_dir_all(dir.join("images")).unwrap();
    std::fs::copy(
        data_dir().join("images/nuinsseg_human_bladder_01_x0y0.png"),
        dir.join("images/a.png"),
    )
    .unwrap();
    image::ImageBuffer::<image::Luma<u16>, _>::from_pixel(10, 10, image::Luma([1u16]))
        .save(dir.join("small.png"))
        .unwrap();
    let manifest = serde_json::json!({"set": "t", "items": [
        {"id": "a", "image": "images/a.png", "mask": "small.png"},
        {"id": "b", "image": "images/b.png", "mask": "small.png"},
    ]});
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    let out = lamina(&["import-masks", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("2 problem(s)"), "{err}");
    assert!(
        err.contains("items[0] (a)") && err.contains("10x10 but its image is 256x256"),
        "{err}"
    );
    assert!(
        err.contains("items[1] (b)") && err.contains("images/b.png"),
        "{err}"
    );

    std::fs::write(dir.join("manifest.json"), "{\"items\": 3}").unwrap();
    let out = lamina(&["import-masks", dir.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("no \"items\" list"),
        "{}",
        stderr(&out)
    );

    let out = lamina(&[
        "import-masks",
        data_dir().to_str().unwrap(),
        "--class-id",
        "ghost",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nucleus"), "{}", stderr(&out));
}

#[test]
fn metrics_of_the_labels_against_themselves_are_perfect_and_run_export_splits() {
    let dir = scratch("metrics-self");
    let bundle = import3(&dir);
    let b = bundle.to_str().unwrap();
    // The labels as their own predictions (a bundle): every figure is 1 (COCO's precision carries eps).
    let out = lamina(&["--json", "metrics", "--gt", b, "--pred", b]);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = stdout_json(&out);
    for key in [
        "precision",
        "recall",
        "f1",
        "mean_iou",
        "dice",
        "pq",
        "aji",
        "bpq",
    ] {
        assert_eq!(m[key], 1.0, "{key}");
    }
    assert!((m["map"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(m["n_gt"], m["n_pred"]);

    let zip = dir.join("run.zip");
    let out = lamina(&[
        "--json",
        "run",
        "export",
        b,
        "--out",
        zip.to_str().unwrap(),
        "--split",
        "1,1,1",
        "--seed",
        "4",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = stdout_json(&out);
    assert_eq!(
        r["counts"],
        serde_json::json!({"train": 1, "val": 1, "test": 1})
    );
    assert!(std::fs::metadata(&zip).unwrap().len() > 1000);
}

#[test]
fn metrics_refuses_bad_thresholds_and_unknown_splits_clearly() {
    let dir = scratch("metrics-bad");
    let bundle = import3(&dir);
    let b = bundle.to_str().unwrap();
    for (args, says) in [
        (vec!["--iou", "1.5"], "--iou"),
        (vec!["--score=-1"], "--score"),
        (vec!["--split", "holdout"], "train, val or test"),
    ] {
        let mut all = vec!["metrics", "--gt", b, "--pred", b];
        all.extend(args);
        let out = lamina(&all);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
    let out = lamina(&[
        "run",
        "export",
        b,
        "--out",
        dir.join("x.zip").to_str().unwrap(),
        "--split",
        "80,20",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("three numbers"), "{}", stderr(&out));
}

/// Review stages on the command line: imported tiles wait in review; approving one (an event added as a
/// reviewer's device would) makes `--stage done` export exactly that image, in COCO and as a bundle.
#[test]
fn export_can_be_limited_to_a_review_stage() {
    let dir = scratch("stage");
    let bundle = import3(&dir);
    let out = lamina(&["--json", "bundle", "validate", bundle.to_str().unwrap()]);
    let report = stdout_json(&out);
    assert_eq!(report["stages"]["in_review"], 3, "{report}");
    assert_eq!(report["stages"]["done"], 0);

    let mut b =
        lamina_core::bundle::parse_bundle(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    let second = b.assets[1].id.clone();
    let own: Vec<_> = b
        .instances
        .iter()
        .filter(|i| i.asset_id == second)
        .cloned()
        .collect();
    b.review.push(lamina_core::review::ReviewEvent {
        id: "ok-1".into(),
        asset_id: second.clone(),
        author: "reviewer".into(),
        at: "2026-12-02T10:00:00Z".into(),
        kind: lamina_core::review::EventKind::Approve {
            labels: lamina_core::review::labels_digest(&own),
            replaces: vec![],
        },
    });
    let reviewed = dir.join("reviewed.json");
    std::fs::write(&reviewed, b.to_json_pretty()).unwrap();

    let coco = dir.join("done.coco.json");
    let out = lamina(&[
        "--json",
        "export",
        "coco",
        reviewed.to_str().unwrap(),
        "--stage",
        "done",
        "--out",
        coco.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&coco).unwrap()).unwrap();
    assert_eq!(written["images"].as_array().unwrap().len(), 1);
    assert_eq!(written["images"][0]["file_name"], b.assets[1].name.as_str());
    assert_eq!(written["annotations"].as_array().unwrap().len(), own.len());

    let subset = dir.join("done.json");
    let out = lamina(&[
        "--json",
        "export",
        "bundle",
        reviewed.to_str().unwrap(),
        "--stage",
        "done",
        "--out",
        subset.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["assets"], 1);
    let out = lamina(&["--json", "bundle", "validate", subset.to_str().unwrap()]);
    assert_eq!(stdout_json(&out)["stages"]["done"], 1);

    let out = lamina(&[
        "export",
        "coco",
        reviewed.to_str().unwrap(),
        "--stage",
        "finished",
        "--out",
        coco.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown stage \"finished\""),
        "{}",
        stderr(&out)
    );
}
