//! Labels as another tool's file holds them, before they are matched to a project's images.

use std::collections::BTreeMap;

use lamina_core::mask::Mask;
use lamina_core::polygon::rasterize_polygon;
use lamina_core::rle::Rle;

/// One instance's geometry as the file gives it, in image pixels (pixel (x, y) covers [x, x+1) × [y, y+1)).
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// Polygons with holes: each polygon is its outer ring followed by its holes (rings need not be
    /// closed or oriented); several polygons are the parts of one instance (a MultiPolygon). A pixel is
    /// inside a polygon when its centre is (even–odd over its rings); parts are unioned.
    Polygons(Vec<Vec<Vec<[f64; 2]>>>),
    /// A bitmap over a box of the image: `inside` is row-major, `width × height`, and its first pixel
    /// is the image pixel (`left`, `top`). Pixels outside the image are dropped.
    Patch {
        left: i64,
        top: i64,
        width: u32,
        height: u32,
        inside: Vec<bool>,
    },
    /// A COCO RLE over the whole image.
    Rle(Rle),
}

impl Shape {
    /// An axis-aligned box from corner (`x0`, `y0`) to corner (`x1`, `y1`).
    pub fn rectangle(x0: f64, y0: f64, x1: f64, y1: f64) -> Shape {
        Shape::Polygons(vec![vec![vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]]])
    }

    /// The shape as a mask of a `width × height` image. Fails only when the shape carries its own size
    /// and it is not the image's.
    pub fn to_mask(&self, width: u32, height: u32) -> Result<Mask, String> {
        match self {
            Shape::Polygons(polygons) => {
                let mut out = Mask::new(width, height);
                for rings in polygons {
                    let mut part = Mask::new(width, height);
                    for ring in rings {
                        let filled = rasterize_polygon(ring, width, height);
                        for (p, f) in part.data.iter_mut().zip(&filled.data) {
                            *p ^= *f;
                        }
                    }
                    for (o, p) in out.data.iter_mut().zip(&part.data) {
                        *o |= *p;
                    }
                }
                Ok(out)
            }
            Shape::Patch {
                left,
                top,
                width: patch_width,
                height: patch_height,
                inside,
            } => {
                if inside.len() as u64 != u64::from(*patch_width) * u64::from(*patch_height) {
                    return Err(format!(
                        "a {patch_width}×{patch_height} mask needs {} pixels, it has {}",
                        u64::from(*patch_width) * u64::from(*patch_height),
                        inside.len()
                    ));
                }
                let mut out = Mask::new(width, height);
                for (i, _) in inside.iter().enumerate().filter(|(_, &v)| v) {
                    let x = left + (i as u64 % u64::from(*patch_width)) as i64;
                    let y = top + (i as u64 / u64::from(*patch_width)) as i64;
                    if (0..i64::from(width)).contains(&x) && (0..i64::from(height)).contains(&y) {
                        out.set(x as u32, y as u32, true);
                    }
                }
                Ok(out)
            }
            Shape::Rle(rle) => {
                if (rle.width, rle.height) != (width, height) {
                    return Err(format!(
                        "its mask is {}×{} but the image is {width}×{height}",
                        rle.width, rle.height
                    ));
                }
                Ok(rle.to_mask())
            }
        }
    }
}

/// One instance of a foreign file.
#[derive(Clone, Debug, PartialEq)]
pub struct ForeignInstance {
    /// The class as the file names it; `None` when the file gives none (QuPath's unclassified objects).
    pub class_name: Option<String>,
    pub shape: Shape,
    /// Where it is in the file, for messages: "feature 3", "line 12", "image 'a.png', mask 2".
    pub at: String,
    /// A model's confidence, when the file is predictions.
    pub score: Option<f64>,
}

/// One image's labels in a foreign file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ForeignImage {
    /// The image as the file names it: a file name, a path or a URL (matching uses its last part).
    pub name: String,
    pub sha256: Option<String>,
    /// The size the file says the image has, checked against the project's image when given.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub instances: Vec<ForeignInstance>,
}

impl ForeignImage {
    pub fn named(name: impl Into<String>) -> Self {
        ForeignImage {
            name: name.into(),
            ..Default::default()
        }
    }
}

/// Everything read from one foreign file (or one set of files, for per-image formats).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ForeignLabels {
    pub images: Vec<ForeignImage>,
    /// Colours the file gives its classes, by class name (used when the import adds a class).
    pub class_colors: BTreeMap<String, [u8; 3]>,
    /// What the reader left out and why ("feature 4: a Point, not an area"), for the summary.
    pub skipped: Vec<String>,
}

impl ForeignLabels {
    /// The image of that name, added if it is not there yet (formats list instances, not images).
    pub fn image_mut(&mut self, name: &str) -> &mut ForeignImage {
        let index = match self.images.iter().position(|i| i.name == name) {
            Some(i) => i,
            None => {
                self.images.push(ForeignImage::named(name));
                self.images.len() - 1
            }
        };
        &mut self.images[index]
    }

    pub fn instance_count(&self) -> usize {
        self.images.iter().map(|i| i.instances.len()).sum()
    }
}

/// `#rrggbb` for a colour.
pub fn hex_color([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_polygon_with_a_hole_fills_the_ring_between() {
        // A 6×6 square with a 2×2 hole in the middle: 36 − 4 pixels.
        let outer = vec![[1.0, 1.0], [7.0, 1.0], [7.0, 7.0], [1.0, 7.0]];
        let hole = vec![[3.0, 3.0], [5.0, 3.0], [5.0, 5.0], [3.0, 5.0]];
        let mask = Shape::Polygons(vec![vec![outer, hole]])
            .to_mask(10, 10)
            .unwrap();
        assert_eq!(mask.area(), 32);
        assert!(!mask.get(3, 3));
        assert!(mask.get(1, 1));
    }

    #[test]
    fn a_patch_is_placed_at_its_corner_and_clipped_to_the_image() {
        let shape = Shape::Patch {
            left: 8,
            top: -1,
            width: 3,
            height: 2,
            inside: vec![true; 6],
        };
        let mask = shape.to_mask(10, 10).unwrap();
        // Columns 8 and 9 of row 0 are inside the image; row −1 and column 10 are not.
        assert_eq!(mask.area(), 2);
        assert!(mask.get(8, 0) && mask.get(9, 0));
    }

    #[test]
    fn a_patch_with_the_wrong_pixel_count_is_refused() {
        let shape = Shape::Patch {
            left: 0,
            top: 0,
            width: 3,
            height: 2,
            inside: vec![true; 5],
        };
        assert!(shape
            .to_mask(10, 10)
            .unwrap_err()
            .contains("needs 6 pixels"));
    }
}
