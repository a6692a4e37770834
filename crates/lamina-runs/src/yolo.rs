//! The YOLO segmentation dataset of a run zip, in the layout ultralytics' trainers read: `data.yaml`,
//! `images/<split>/`, `labels/<split>/<stem>.txt` with one normalised polygon per instance.

use std::collections::HashSet;
use std::path::Path;

use lamina_core::bundle::Bundle;
use lamina_core::labels::Instance;
use lamina_core::polygon::{mask_to_rings, signed_area, simplify_ring};
use lamina_core::rle::Rle;

use crate::split::Split;
use crate::RunError;

/// Douglas–Peucker tolerance of the exported rings, in image pixels.
pub const YOLO_TOLERANCE: f64 = 0.5;

/// A file name without its last extension.
pub fn stem(name: &str) -> String {
    Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_owned())
}

/// A name that is safe as one path component in a zip: the last component of the asset's name, with
/// characters other than letters, digits, '.', '-', '_' and ' ' replaced by '_'.
fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() {
        "image".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The file name of each asset in the zip (bundle order): its own name made safe, and made unique by
/// `-2`, `-3`, ... before the extension when two images share a stem (labels pair with images by stem).
pub fn yolo_file_names(bundle: &Bundle) -> Vec<String> {
    let mut used: HashSet<String> = HashSet::new();
    bundle
        .assets
        .iter()
        .map(|a| {
            let name = safe_name(&a.name);
            let (base, ext) = match name.rfind('.') {
                Some(dot) if dot > 0 => (name[..dot].to_owned(), name[dot..].to_owned()),
                _ => (name.clone(), String::new()),
            };
            let mut candidate = name;
            let mut n = 2;
            while !used.insert(stem(&candidate).to_lowercase()) {
                candidate = format!("{base}-{n}{ext}");
                n += 1;
            }
            candidate
        })
        .collect()
}

/// `data.yaml`: the split folders and the class names in ontology order (quoted, so any name is valid
/// YAML).
pub fn data_yaml(bundle: &Bundle) -> String {
    let mut out = String::from(
        "# Written by Lamina (docs/model-runs.md). Train with: yolo segment train data=data.yaml\n",
    );
    out.push_str("path: .\n");
    for split in Split::ALL {
        out.push_str(&format!("{}: images/{}\n", split.as_str(), split.as_str()));
    }
    out.push_str("names:\n");
    for (i, c) in bundle.ontology.classes.iter().enumerate() {
        let quoted = serde_json::to_string(&c.name).unwrap_or_else(|_| "\"\"".into());
        out.push_str(&format!("  {i}: {quoted}\n"));
    }
    out
}

/// What the polygon form lost, for the export summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct YoloLoss {
    /// Instances in several pieces, written as their largest piece.
    pub multi_piece: usize,
    /// Instances with holes, written filled.
    pub with_holes: usize,
}

/// The label file of one image: one line per instance (bundle order), `<class> x1 y1 ... xn yn`.
pub fn label_text(
    bundle: &Bundle,
    instances: &[&Instance],
    width: u32,
    height: u32,
    loss: &mut YoloLoss,
) -> Result<String, RunError> {
    let class_index = crate::class_indices(&bundle.ontology);
    let mut out = String::new();
    for inst in instances {
        let Some(&class) = class_index.get(inst.class_id.as_str()) else {
            return Err(RunError::Bundle(format!(
                "instance {}: class {:?} is not in the ontology",
                inst.id, inst.class_id
            )));
        };
        let rle = Rle::decompress(&inst.mask)
            .map_err(|e| RunError::Bundle(format!("instance {}: mask: {e}", inst.id)))?;
        let rings = mask_to_rings(&rle.to_mask());
        let outers: Vec<&Vec<[f64; 2]>> = rings
            .iter()
            .filter(|r| !r.is_hole)
            .map(|r| &r.points)
            .collect();
        if outers.len() > 1 {
            loss.multi_piece += 1;
        }
        if rings.iter().any(|r| r.is_hole) {
            loss.with_holes += 1;
        }
        let Some(largest) = outers
            .into_iter()
            .max_by(|a, b| signed_area(a).abs().total_cmp(&signed_area(b).abs()))
        else {
            continue;
        };
        let simplified = simplify_ring(largest, YOLO_TOLERANCE);
        let ring = if simplified.len() >= 3 {
            &simplified
        } else {
            largest
        };
        out.push_str(&class.to_string());
        for p in ring {
            out.push_str(&format!(
                " {:.6} {:.6}",
                p[0] / f64::from(width),
                p[1] / f64::from(height)
            ));
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lamina_core::bundle::BundleProject;
    use lamina_core::labels::{Asset, LabelStatus, Ontology};

    fn bundle_with(names: &[&str]) -> Bundle {
        let mut b = Bundle::new(
            BundleProject {
                id: "p".into(),
                name: "p".into(),
            },
            Ontology::pannuke(),
        );
        for (i, n) in names.iter().enumerate() {
            b.assets.push(Asset {
                id: format!("a{i}"),
                name: (*n).to_owned(),
                sha256: "0".repeat(64),
                width: 8,
                height: 8,
                metadata: Default::default(),
                uri: None,
                status: LabelStatus::Submitted,
                stage: Default::default(),
            });
        }
        b
    }

    #[test]
    fn file_names_are_safe_and_unique_by_stem() {
        let b = bundle_with(&["a.png", "a.jpg", "../../etc/passwd", "x/y:z.png", ".hidden"]);
        assert_eq!(
            yolo_file_names(&b),
            vec!["a.png", "a-2.jpg", "passwd", "y_z.png", "hidden"]
        );
    }

    #[test]
    fn data_yaml_lists_classes_in_order() {
        let y = data_yaml(&bundle_with(&[]));
        assert!(y.contains("train: images/train\n"));
        assert!(y.contains("  0: \"Neoplastic\"\n"));
    }
}
