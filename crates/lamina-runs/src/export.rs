//! The run zip (`docs/model-runs.md`, "The run zip") and reading prediction files out of a zip.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

use lamina_core::bundle::Bundle;
use lamina_core::coco::{bundle_to_coco, CocoOptions};
use lamina_core::labels::{Asset, Instance};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::run::{split_of, RunInfo};
use crate::split::Split;
use crate::yolo::{data_yaml, label_text, yolo_file_names, YoloLoss};
use crate::RunError;

/// Writes a run zip: everything but the images on `new`, then each image as it is read.
pub struct RunZipWriter {
    zip: ZipWriter<Cursor<Vec<u8>>>,
    /// Asset id → (split, file name in `yolo/images/<split>/`).
    places: BTreeMap<String, (Split, String)>,
    pub loss: YoloLoss,
    pub images_written: usize,
}

fn zip_error(e: zip::result::ZipError) -> RunError {
    RunError::Zip(e.to_string())
}

fn io_error(e: std::io::Error) -> RunError {
    RunError::Zip(e.to_string())
}

impl RunZipWriter {
    /// Start a zip with `run.json`, `bundle.json`, COCO per split (the ids of the whole bundle's COCO
    /// export), `yolo/data.yaml` and every label file.
    pub fn new(info: &RunInfo, bundle: &Bundle) -> Result<RunZipWriter, RunError> {
        let mut w = RunZipWriter {
            zip: ZipWriter::new(Cursor::new(Vec::new())),
            places: BTreeMap::new(),
            loss: YoloLoss::default(),
            images_written: 0,
        };
        // A plain struct with string keys: serializing cannot fail.
        w.text(
            "run.json",
            &serde_json::to_string_pretty(info).unwrap_or_default(),
        )?;
        w.text("bundle.json", &bundle.to_json_pretty())?;
        let coco = bundle_to_coco(bundle, &CocoOptions::default())
            .map_err(|e| RunError::Bundle(e.to_string()))?;
        let names = yolo_file_names(bundle);
        for split in Split::ALL {
            let image_ids: std::collections::BTreeSet<u64> = bundle
                .assets
                .iter()
                .zip(&coco.images)
                .filter(|(a, _)| split_of(a) == Some(split))
                .map(|(_, im)| im.id)
                .collect();
            let mut part = coco.clone();
            part.images.retain(|im| image_ids.contains(&im.id));
            part.annotations
                .retain(|an| image_ids.contains(&an.image_id));
            w.text(&format!("coco/{}.json", split.as_str()), &part.to_json())?;
        }
        w.text("yolo/data.yaml", &data_yaml(bundle))?;
        let mut by_asset: BTreeMap<&str, Vec<&Instance>> = BTreeMap::new();
        for inst in &bundle.instances {
            by_asset
                .entry(inst.asset_id.as_str())
                .or_default()
                .push(inst);
        }
        for (asset, name) in bundle.assets.iter().zip(names) {
            let Some(split) = split_of(asset) else {
                return Err(RunError::Bundle(format!(
                    "image {:?} has no split in the run's bundle",
                    asset.name
                )));
            };
            let instances = by_asset
                .get(asset.id.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let text = label_text(bundle, instances, asset.width, asset.height, &mut w.loss)?;
            let label = format!(
                "yolo/labels/{}/{}.txt",
                split.as_str(),
                crate::yolo::stem(&name)
            );
            w.text(&label, &text)?;
            w.places.insert(asset.id.clone(), (split, name));
        }
        Ok(w)
    }

    fn text(&mut self, path: &str, text: &str) -> Result<(), RunError> {
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        self.zip.start_file(path, options).map_err(zip_error)?;
        self.zip.write_all(text.as_bytes()).map_err(io_error)
    }

    /// Add an image's file (stored: PNG and JPEG do not compress further).
    pub fn add_image(&mut self, asset: &Asset, bytes: &[u8]) -> Result<(), RunError> {
        let Some((split, name)) = self.places.get(&asset.id) else {
            return Err(RunError::Bundle(format!(
                "image {:?} is not in the run",
                asset.name
            )));
        };
        let path = format!("yolo/images/{}/{name}", split.as_str());
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(bytes.len() as u64 >= u64::from(u32::MAX));
        self.zip.start_file(path, options).map_err(zip_error)?;
        self.zip.write_all(bytes).map_err(io_error)?;
        self.images_written += 1;
        Ok(())
    }

    pub fn finish(self) -> Result<Vec<u8>, RunError> {
        Ok(self.zip.finish().map_err(zip_error)?.into_inner())
    }
}

/// Limits on a zip of predictions: more than this is refused rather than unpacked.
pub const MAX_ZIP_ENTRIES: usize = 100_000;
pub const MAX_ZIP_TEXT_BYTES: u64 = 512 * 1024 * 1024;

/// The `.txt` files of a zip of YOLO-seg predictions, as (path in the zip, text). A path that would
/// escape the folder it is unpacked in, or a zip over the limits, is refused as a whole.
pub fn read_zip_texts(bytes: &[u8]) -> Result<Vec<(String, String)>, RunError> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(zip_error)?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(RunError::Zip(format!(
            "the zip has {} entries, more than {MAX_ZIP_ENTRIES}",
            archive.len()
        )));
    }
    let mut out = Vec::new();
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(zip_error)?;
        let raw_name = file.name().to_owned();
        let Some(path) = file.enclosed_name() else {
            return Err(RunError::Zip(format!(
                "zip entry {raw_name:?} points outside the folder it would be unpacked in; nothing was imported"
            )));
        };
        if file.is_dir() || !raw_name.to_ascii_lowercase().ends_with(".txt") {
            continue;
        }
        total += file.size();
        if total > MAX_ZIP_TEXT_BYTES {
            return Err(RunError::Zip(format!(
                "the zip's text files unpack to more than {} MB",
                MAX_ZIP_TEXT_BYTES / 1024 / 1024
            )));
        }
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| RunError::Zip(format!("{raw_name}: {e}")))?;
        out.push((path.to_string_lossy().into_owned(), text));
    }
    Ok(out)
}
