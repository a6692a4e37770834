//! Reading a model's `golden/` folder (onnxruntime's outputs, see models/fixtures/sam-tiny/README.md) for
//! the parity tests of every committed model.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::path::{Path, PathBuf};

use lamina_sam::engine::{Embedding, Prompts};
use lamina_sam::{ModelFromImage, ModelManifest};
use serde_json::Value;
use tract_onnx::data_resolver::FopenDataResolver;
use tract_onnx::tensor::{load_tensor, proto_from_reader};

pub fn model_dir(relative_to_repo: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative_to_repo)
}

pub fn case(dir: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(dir.join("golden/index.json")).unwrap();
    let index: Value = serde_json::from_str(&text).unwrap();
    index["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no golden case {name}"))
}

/// The tensor `name` among a case's `inputs` or `outputs` (`side`).
pub fn tensor(dir: &Path, case: &Value, side: &str, name: &str) -> Vec<f32> {
    let entry = case[side]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap();
    let path = dir.join("golden").join(entry["file"].as_str().unwrap());
    let proto = proto_from_reader(std::fs::File::open(&path).unwrap()).unwrap();
    let tensor = load_tensor(&FopenDataResolver, &proto, None).unwrap();
    tensor
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

/// The encoder's golden input, stored as an 8-bit image and normalised here as the script did.
pub fn encoder_input(dir: &Path, manifest: &ModelManifest) -> Vec<f32> {
    let c = case(dir, "encoder");
    let file = c["inputs"][0]["file"].as_str().unwrap();
    let resized = image::open(dir.join("golden").join(file))
        .unwrap()
        .to_rgb8();
    let (m, s) = (manifest.pixel_mean, manifest.pixel_std);
    let size = manifest.input_size as usize;
    let mut input = vec![0.0f32; 3 * size * size];
    for (x, y, px) in resized.enumerate_pixels() {
        for ch in 0..3 {
            input[ch * size * size + y as usize * size + x as usize] =
                (f32::from(px[ch]) - m[ch]) / s[ch];
        }
    }
    input
}

pub fn assert_close(what: &str, ours: &[f32], reference: &[f32]) {
    assert_eq!(ours.len(), reference.len(), "{what}: length");
    let worst = ours
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1e-4,
        "{what}: worst relative difference {worst:e} > 1e-4"
    );
}

/// The golden image embedding (every decoder case's input).
pub fn embedding(dir: &Path, shape: [usize; 4], transform: ModelFromImage) -> Embedding {
    Embedding::single(
        tensor(dir, &case(dir, "encoder"), "outputs", "image_embeddings"),
        shape,
        transform,
    )
}

/// The golden decoder inputs turned back into what a user gave, in image pixels.
pub fn prompts_of(dir: &Path, case: &Value, transform: &ModelFromImage) -> Prompts {
    let coords = tensor(dir, case, "inputs", "point_coords");
    let labels = tensor(dir, case, "inputs", "point_labels");
    let mut prompts = Prompts::default();
    let mut corners = Vec::new();
    for (k, label) in labels.iter().enumerate() {
        let p = transform.image_from_model(f64::from(coords[2 * k]), f64::from(coords[2 * k + 1]));
        match *label as i32 {
            1 => prompts.points_image.push((p, true)),
            0 => prompts.points_image.push((p, false)),
            2 | 3 => corners.push(p),
            _ => {} // SAM's padding point: the engine adds it itself.
        }
    }
    if let [a, b] = corners[..] {
        prompts.box_image = Some([a[0], a[1], b[0], b[1]]);
    }
    if tensor(dir, case, "inputs", "has_mask_input")[0] > 0.5 {
        prompts.mask_input_low_res = Some(tensor(dir, case, "inputs", "mask_input"));
    }
    prompts
}
