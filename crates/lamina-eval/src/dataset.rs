//! Reader for the nuclei tile sets (`shared/data/FORMAT.md`): `manifest.json` is the only index, and
//! each item's image and 16-bit instance mask are opened through `item.image` / `item.mask`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageReader, RgbImage};
use lamina_core::mask::Mask;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a tile-set manifest (FORMAT.md): {source}")]
    Manifest {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0} lists no items")]
    NoItems(PathBuf),
    #[error("cannot decode {what} {path}: {source}")]
    Decode {
        what: &'static str,
        path: PathBuf,
        source: image::ImageError,
    },
    #[error("mask {path} is {kind}, expected single-channel 16-bit grayscale instance ids")]
    MaskKind { path: PathBuf, kind: String },
    #[error("mask {path} is {mask_w}x{mask_h} but its image is {image_w}x{image_h}")]
    MaskSize {
        path: PathBuf,
        mask_w: u32,
        mask_h: u32,
        image_w: u32,
        image_h: u32,
    },
}

/// The manifest fields the benchmark needs; the rest is metadata it ignores.
#[derive(Clone, Debug, Deserialize)]
pub struct Item {
    pub id: String,
    pub image: String,
    pub mask: String,
}

#[derive(Deserialize)]
struct Manifest {
    items: Vec<Item>,
}

/// A tile set: its folder, its name (the folder's name) and its items in manifest order.
#[derive(Clone, Debug)]
pub struct DataSet {
    pub dir: PathBuf,
    pub name: String,
    pub items: Vec<Item>,
}

/// One ground-truth nucleus.
#[derive(Clone, Debug)]
pub struct GtInstance {
    /// Its value in the instance mask.
    pub label: u16,
    pub mask: Mask,
    pub area: u64,
    /// `[x0, y0, x1, y1]` in image pixels, x1 and y1 exclusive.
    pub bbox_xyxy: [u32; 4],
    /// A pixel in the first or last row or column.
    pub touches_tile_border: bool,
}

#[derive(Clone, Debug)]
pub struct Tile {
    pub id: String,
    pub rgb: RgbImage,
    /// In label order.
    pub instances: Vec<GtInstance>,
}

fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Read {
        path: path.to_owned(),
        source,
    })
}

fn decode(what: &'static str, path: &Path) -> Result<DynamicImage, DataError> {
    let bytes = read(path)?;
    let err = |source| DataError::Decode {
        what,
        path: path.to_owned(),
        source,
    };
    ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| err(image::ImageError::IoError(e)))?
        .decode()
        .map_err(err)
}

impl DataSet {
    /// Reads `dir/manifest.json`.
    pub fn open(dir: &Path) -> Result<DataSet, DataError> {
        let path = dir.join("manifest.json");
        let text = read(&path)?;
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|source| DataError::Manifest {
                path: path.clone(),
                source,
            })?;
        if manifest.items.is_empty() {
            return Err(DataError::NoItems(path));
        }
        let name = dir
            .canonicalize()
            .unwrap_or_else(|_| dir.to_owned())
            .file_name()
            .map_or_else(|| "data".to_owned(), |n| n.to_string_lossy().into_owned());
        Ok(DataSet {
            dir: dir.to_owned(),
            name,
            items: manifest.items,
        })
    }

    /// Decodes item `index`: its image as RGB and one mask per instance id found in its mask.
    pub fn tile(&self, index: usize) -> Result<Tile, DataError> {
        let item = &self.items[index];
        let image_path = self.dir.join(&item.image);
        let rgb = decode("image", &image_path)?.to_rgb8();
        let mask_path = self.dir.join(&item.mask);
        let labels = match decode("mask", &mask_path)? {
            DynamicImage::ImageLuma16(buf) => buf,
            // 8-bit masks hold the same ids when a tile has under 256 nuclei.
            DynamicImage::ImageLuma8(buf) => DynamicImage::ImageLuma8(buf).to_luma16(),
            other => {
                return Err(DataError::MaskKind {
                    path: mask_path,
                    kind: format!("{:?}", other.color()),
                })
            }
        };
        if labels.dimensions() != rgb.dimensions() {
            return Err(DataError::MaskSize {
                path: mask_path,
                mask_w: labels.width(),
                mask_h: labels.height(),
                image_w: rgb.width(),
                image_h: rgb.height(),
            });
        }
        Ok(Tile {
            id: item.id.clone(),
            instances: instances_from_labels(labels.width(), labels.height(), labels.as_raw()),
            rgb,
        })
    }
}

/// One [`GtInstance`] per non-zero id, in id order. Ids may have several pieces; they are kept as one.
pub fn instances_from_labels(width: u32, height: u32, labels: &[u16]) -> Vec<GtInstance> {
    let mut by_label: BTreeMap<u16, GtInstance> = BTreeMap::new();
    for (i, &label) in labels.iter().enumerate() {
        if label == 0 {
            continue;
        }
        let (x, y) = ((i % width as usize) as u32, (i / width as usize) as u32);
        let inst = by_label.entry(label).or_insert_with(|| GtInstance {
            label,
            mask: Mask::new(width, height),
            area: 0,
            bbox_xyxy: [x, y, x + 1, y + 1],
            touches_tile_border: false,
        });
        inst.mask.data[i] = 1;
        inst.area += 1;
        let b = &mut inst.bbox_xyxy;
        *b = [b[0].min(x), b[1].min(y), b[2].max(x + 1), b[3].max(y + 1)];
        inst.touches_tile_border |= x == 0 || y == 0 || x + 1 == width || y + 1 == height;
    }
    by_label.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_get_area_exclusive_box_and_border_flag() {
        #[rustfmt::skip]
        let labels = [
            0, 0, 0, 0,
            0, 2, 2, 0,
            0, 2, 0, 0,
            1, 0, 0, 0,
        ];
        let inst = instances_from_labels(4, 4, &labels);
        assert_eq!(inst.len(), 2);
        assert_eq!((inst[0].label, inst[0].area), (1, 1));
        assert!(inst[0].touches_tile_border);
        assert_eq!(inst[0].bbox_xyxy, [0, 3, 1, 4]);
        assert_eq!((inst[1].label, inst[1].area), (2, 3));
        assert!(!inst[1].touches_tile_border);
        assert_eq!(inst[1].bbox_xyxy, [1, 1, 3, 3]);
    }

    #[test]
    fn a_missing_manifest_is_named() {
        let err = DataSet::open(Path::new("/nonexistent/set")).unwrap_err();
        assert!(err.to_string().contains("manifest.json"), "{err}");
    }
}
