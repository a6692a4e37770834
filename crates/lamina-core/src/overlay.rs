//! Composes every instance of an image into one RGBA layer at image resolution.
//!
//! The labeling view draws this with a single `putImageData`, so 500 nuclei cost one canvas, not 500 DOM
//! nodes, and zoom/pan is a CSS transform that redraws nothing.

use crate::model::{parse_hex_color, Instance};
use crate::rle::{Rle, RleError};

const FILL_ALPHA: u8 = 80;
const SELECTED_FILL_ALPHA: u8 = 150;
const EDGE_ALPHA: u8 = 235;

/// `colour_of(instance)` gives each instance its class colour as `#rrggbb` (unknown → grey).
pub fn compose_overlay_rgba<'a>(
    width: u32,
    height: u32,
    instances: &[Instance],
    colour_of: impl Fn(&Instance) -> Option<&'a str>,
    selected_id: Option<&str>,
) -> Result<Vec<u8>, RleError> {
    let (w, h) = (width as usize, height as usize);
    // label_image[y * w + x] = 1 + index of the instance owning the pixel (0 = none); later instances on top.
    let mut label_image = vec![0u32; w * h];
    for (k, inst) in instances.iter().enumerate() {
        let rle = Rle::decompress(&inst.mask)?;
        if (rle.width as usize, rle.height as usize) != (w, h) {
            continue;
        }
        let mut index_colmajor = 0usize;
        for (run, &count) in rle.counts.iter().enumerate() {
            let count = count as usize;
            if run % 2 == 1 {
                for i in index_colmajor..index_colmajor + count {
                    let (x, y) = (i / h, i % h);
                    label_image[y * w + x] = k as u32 + 1;
                }
            }
            index_colmajor += count;
        }
    }
    let colours: Vec<(u8, u8, u8)> = instances
        .iter()
        .map(|i| {
            colour_of(i)
                .and_then(parse_hex_color)
                .unwrap_or((160, 160, 160))
        })
        .collect();
    let selected = selected_id.and_then(|id| instances.iter().position(|i| i.id == id));
    let mut rgba = vec![0u8; w * h * 4];
    for y in 0..h {
        for x in 0..w {
            let label = label_image[y * w + x];
            if label == 0 {
                continue;
            }
            let other = |nx: usize, ny: usize| label_image[ny * w + nx] != label;
            let edge = x == 0
                || y == 0
                || x + 1 == w
                || y + 1 == h
                || other(x - 1, y)
                || other(x + 1, y)
                || other(x, y - 1)
                || other(x, y + 1);
            let k = label as usize - 1;
            let is_selected = selected == Some(k);
            let (r, g, b) = if edge && is_selected {
                (255, 255, 255)
            } else {
                colours[k]
            };
            let alpha = match (edge, is_selected) {
                (true, _) => EDGE_ALPHA,
                (false, true) => SELECTED_FILL_ALPHA,
                (false, false) => FILL_ALPHA,
            };
            rgba[(y * w + x) * 4..][..4].copy_from_slice(&[r, g, b, alpha]);
        }
    }
    Ok(rgba)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::instance_from_mask;
    use crate::mask::Mask;
    use crate::model::{Provenance, Tool};

    #[test]
    fn fills_and_outlines_in_class_colour_and_leaves_background_clear() {
        let mut m = Mask::new(8, 8);
        m.fill_rect(2.0, 2.0, 6.0, 6.0, true);
        let prov = Provenance {
            tool: Tool::Box,
            prompts: vec![],
            model_id: None,
            author: None,
            created: String::new(),
            updated: String::new(),
        };
        let inst = instance_from_mask("i".into(), "a".into(), "c".into(), &m, prov);
        let rgba = compose_overlay_rgba(8, 8, &[inst], |_| Some("#ff0000"), None).unwrap();
        let px = |x: usize, y: usize| &rgba[(y * 8 + x) * 4..][..4];
        assert_eq!(px(0, 0), [0, 0, 0, 0]);
        assert_eq!(px(2, 2), [255, 0, 0, EDGE_ALPHA]);
        assert_eq!(px(3, 3), [255, 0, 0, FILL_ALPHA]);
    }
}
