//! `lamina eval noc` end to end on a few real dev tiles: the figures exist, are in range, count every
//! instance of those tiles, and (for the classical baseline) are the same on every run.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data_dir() -> PathBuf {
    repo_root().join("../shared/data/nuinsseg-dev")
}

fn lamina(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lamina"))
        .args(args)
        .output()
        .unwrap()
}

/// `lamina --json eval noc` on a set, run from the repo root (where the default model lives), with the
/// default model unless one is named.
fn eval_on(data: &Path, model: Option<&str>, limit: u64) -> Value {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lamina"));
    command
        .current_dir(repo_root())
        .args(["--json", "eval", "noc", "--data", data.to_str().unwrap()])
        .args(["--limit", &limit.to_string()]);
    if let Some(model) = model {
        command.args(["--model", model]);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn eval_json(model: &str, limit: u64) -> Value {
    eval_on(&data_dir(), Some(model), limit)
}

/// Instances of the first `n` tiles, as the manifest counts them.
fn manifest_instances(n: usize) -> u64 {
    let text = std::fs::read_to_string(data_dir().join("manifest.json")).unwrap();
    let m: Value = serde_json::from_str(&text).unwrap();
    m["items"].as_array().unwrap()[..n]
        .iter()
        .map(|i| i["instances"].as_array().unwrap().len() as u64)
        .sum()
}

fn assert_figures(r: &Value, n_instances: u64) {
    assert_eq!(r["ok"], true);
    assert_eq!(r["n_instances"], n_instances);
    for key in ["noc85", "noc90"] {
        let v = r[key].as_f64().unwrap();
        assert!((1.0..=20.0).contains(&v), "{key} = {v}");
    }
    for key in ["nof85", "nof90"] {
        assert!(r[key].as_u64().unwrap() <= n_instances, "{key}");
    }
    assert!(r["nof85"].as_u64() <= r["nof90"].as_u64());
    assert!(r["noc85"].as_f64() <= r["noc90"].as_f64());
    for key in ["miou1", "miou3", "miou5", "box_iou", "box_iou_loose"] {
        let v = r[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    assert!(r["ms_per_prediction"].as_f64().unwrap() > 0.0);
    assert_eq!(r["data"], "nuinsseg-dev");
    let by_size: u64 = ["area_lt_200", "area_200_600", "area_gt_600"]
        .iter()
        .map(|k| r["by_size"][k]["n_instances"].as_u64().unwrap())
        .sum();
    assert_eq!(by_size, n_instances);
    let by_border: u64 = ["touching", "not_touching"]
        .iter()
        .map(|k| r["by_border"][k]["n_instances"].as_u64().unwrap())
        .sum();
    assert_eq!(by_border, n_instances);
}

#[test]
fn classical_baseline_on_three_tiles_is_complete_and_deterministic() {
    let first = eval_json("classical", 3);
    assert_figures(&first, manifest_instances(3));
    assert_eq!(first["model"], "classical-hed-otsu-watershed");
    let second = eval_json("classical", 3);
    for key in [
        "noc85",
        "noc90",
        "nof85",
        "nof90",
        "miou1",
        "miou3",
        "miou5",
        "box_iou",
        "box_iou_loose",
        "by_size",
        "by_border",
    ] {
        assert_eq!(first[key], second[key], "{key} differs between runs");
    }
}

#[test]
fn sam_fixture_runs_through_the_browser_engine() {
    let model = repo_root().join("models/fixtures/sam-tiny");
    let r = eval_json(model.to_str().unwrap(), 2);
    assert_figures(&r, manifest_instances(2));
    assert_eq!(r["model"], "sam-tiny-random");
}

#[test]
fn bad_input_is_named() {
    let data = data_dir();
    let out = lamina(&[
        "eval",
        "noc",
        "--data",
        "/nonexistent",
        "--model",
        "classical",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifest.json"));

    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("eval-bad");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("manifest.json"), "{\"items\": 3}").unwrap();
    let out = lamina(&[
        "eval",
        "noc",
        "--data",
        tmp.to_str().unwrap(),
        "--model",
        "classical",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a tile-set manifest"));

    // A missing image, then a mask whose size differs from its image.
    let image = data.join("images/nuinsseg_human_bladder_01_x0y0.png");
    let mask = data.join("masks/nuinsseg_human_bladder_01_x0y0.png");
    let manifest = |image: &str, mask: &str| {
        format!("{{\"items\": [{{\"id\": \"t\", \"image\": \"{image}\", \"mask\": \"{mask}\"}}]}}")
    };
    std::fs::write(
        tmp.join("manifest.json"),
        manifest("images/missing.png", mask.to_str().unwrap()),
    )
    .unwrap();
    let out = lamina(&[
        "eval",
        "noc",
        "--data",
        tmp.to_str().unwrap(),
        "--model",
        "classical",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.png"));

    let small = tmp.join("small.png");
    image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::new(8, 8)
        .save(&small)
        .unwrap();
    std::fs::write(
        tmp.join("manifest.json"),
        manifest(image.to_str().unwrap(), small.to_str().unwrap()),
    )
    .unwrap();
    let out = lamina(&[
        "--json",
        "eval",
        "noc",
        "--data",
        tmp.to_str().unwrap(),
        "--model",
        "classical",
    ]);
    assert!(!out.status.success());
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["ok"], false);
    assert!(err["error"].as_str().unwrap().contains("8x8"), "{err}");
}

/// The shipped default model, run the way a user runs it (from the repo root, no `--model`), reproduces
/// the check figures its model card states for the first dev tiles. The engine is deterministic, so the
/// margin only absorbs float differences between machines; a changed model, engine or simulator fails it.
#[test]
fn the_default_model_reproduces_its_model_card_on_dev_tiles() {
    let card: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("models/nuclei-v3/eval.json")).unwrap(),
    )
    .unwrap();
    let check = &card["ci_check"];
    let r = eval_on(&data_dir(), None, check["limit"].as_u64().unwrap());
    assert_eq!(
        r["model"], card["model"],
        "the default is the shipped model"
    );
    assert_eq!(r["n_instances"], check["figures"]["n_instances"]);
    for (key, margin) in [
        ("noc85", 0.3),
        ("noc90", 0.3),
        ("miou1", 0.02),
        ("miou3", 0.02),
        ("miou5", 0.02),
        ("box_iou", 0.02),
        ("box_iou_loose", 0.02),
    ] {
        let (got, want) = (
            r[key].as_f64().unwrap(),
            check["figures"][key].as_f64().unwrap(),
        );
        assert!(
            (got - want).abs() <= margin,
            "{key}: {got} vs the card's {want} (margin {margin})"
        );
    }
}

/// The first four dev tiles (one organ) as one 2 x 2 image with its instance mask, in the set format,
/// with a 32 px strip of SAM's mean colour (the model's zero padding) between the tiles: a nucleus cut at
/// a tile's edge then has the surroundings it has on its own tile, not unrelated tissue. Returns the
/// set's folder.
fn mosaic_of_first_four_tiles(name: &str) -> PathBuf {
    const GAP: u32 = 32;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(dir.join("images")).unwrap();
    std::fs::create_dir_all(dir.join("masks")).unwrap();
    let text = std::fs::read_to_string(data_dir().join("manifest.json")).unwrap();
    let m: Value = serde_json::from_str(&text).unwrap();
    let side = 2 * 256 + GAP;
    let mut rgb = image::RgbImage::from_pixel(side, side, image::Rgb([124, 116, 104]));
    let mut labels = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::new(side, side);
    let mut next_id = 0u16;
    for (k, item) in m["items"].as_array().unwrap()[..4].iter().enumerate() {
        let (x0, y0) = ((k as u32 % 2) * (256 + GAP), (k as u32 / 2) * (256 + GAP));
        let tile = image::open(data_dir().join(item["image"].as_str().unwrap()))
            .unwrap()
            .to_rgb8();
        let mask = image::open(data_dir().join(item["mask"].as_str().unwrap()))
            .unwrap()
            .into_luma16();
        image::imageops::replace(&mut rgb, &tile, x0.into(), y0.into());
        let mut top = next_id;
        for (x, y, v) in mask.enumerate_pixels() {
            if v[0] > 0 {
                labels.put_pixel(x0 + x, y0 + y, image::Luma([next_id + v[0]]));
                top = top.max(next_id + v[0]);
            }
        }
        next_id = top;
    }
    rgb.save(dir.join("images/m.png")).unwrap();
    labels.save(dir.join("masks/m.png")).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        r#"{"items":[{"id":"m","image":"images/m.png","mask":"masks/m.png"}]}"#,
    )
    .unwrap();
    dir
}

#[test]
fn a_bigger_image_gets_the_suggestions_its_tiles_get() {
    // nuclei-v3 was trained on 256 px tiles; its manifest's `windows` make the engine see a 544 px image
    // through 256 px windows at the same pixel scale. The same nuclei must then score as they do on
    // their own tiles, and clearly better than with SAM's whole-image resize (nuclei shrunk to half).
    let model = repo_root().join("models/nuclei-v3");
    let mosaic = mosaic_of_first_four_tiles("mosaic-first-four");
    let tiles = eval_on(&data_dir(), model.to_str(), 4);
    let windows = eval_on(&mosaic, model.to_str(), 1);
    assert_eq!(windows["n_instances"], tiles["n_instances"]);
    let miou1 = |r: &Value| r["miou1"].as_f64().unwrap();
    let noc85 = |r: &Value| r["noc85"].as_f64().unwrap();
    assert!(
        (miou1(&windows) - miou1(&tiles)).abs() <= 0.02,
        "mIoU@1 {} on the 512 px image vs {} on its tiles",
        miou1(&windows),
        miou1(&tiles)
    );
    assert!(
        (noc85(&windows) - noc85(&tiles)).abs() <= 0.4,
        "NoC@85 {} on the 512 px image vs {} on its tiles",
        noc85(&windows),
        noc85(&tiles)
    );

    // The same model without `windows`: the whole image resized to 256.
    let resized_model = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nuclei-v3-no-windows");
    std::fs::create_dir_all(&resized_model).unwrap();
    for entry in std::fs::read_dir(&model).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "onnx") {
            std::fs::copy(&path, resized_model.join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("manifest.json")).unwrap())
            .unwrap();
    manifest.as_object_mut().unwrap().remove("windows").unwrap();
    std::fs::write(
        resized_model.join("manifest.json"),
        serde_json::to_string(&manifest).unwrap(),
    )
    .unwrap();
    // Measured 2026-11-30: tiles 5.05 / 0.694, windows 5.19 / 0.694, resized 9.28 / 0.559 (NoC@85 / mIoU@1).
    let resized = eval_on(&mosaic, resized_model.to_str(), 1);
    assert!(
        noc85(&resized) > noc85(&windows) + 2.0,
        "NoC@85 {} with the whole image resized vs {} through windows",
        noc85(&resized),
        noc85(&windows)
    );
    assert!(
        miou1(&resized) < miou1(&windows) - 0.1,
        "mIoU@1 {} with the whole image resized vs {} through windows",
        miou1(&resized),
        miou1(&windows)
    );
}
