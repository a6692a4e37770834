//! The comparison view's layers: truth or predictions of one image painted at image resolution, each
//! instance coloured by what became of it (matched, missed, false positive), so the app draws a layer
//! with one `putImageData` and toggles or fades it with CSS.

use lamina_core::rle::{CompressedRle, Rle, RleError};

use crate::metrics::Outcome;

/// `#rrggbb` of each outcome, also used by the app's legend.
pub fn outcome_colour(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Matched => "#2ecc71",
        Outcome::Missed => "#ff9f1c",
        Outcome::FalsePositive => "#ff3df2",
        Outcome::BelowScore => "#9a9a9a",
    }
}

fn rgb(hex: &str) -> [u8; 3] {
    lamina_core::labels::parse_hex_color(hex)
        .map(|(r, g, b)| [r, g, b])
        .unwrap_or([128, 128, 128])
}

/// RGBA rows (`width`×`height`) with each mask's edge opaque and, when `fill`, its inside translucent.
/// Truth is drawn filled and predictions as outlines, so both read on one image.
pub fn outcome_layer_rgba(
    width: u32,
    height: u32,
    masks: &[(&CompressedRle, Outcome)],
    fill: bool,
) -> Result<Vec<u8>, RleError> {
    let (w, h) = (width as usize, height as usize);
    let mut out = vec![0u8; w * h * 4];
    for (mask, outcome) in masks {
        let m = Rle::decompress(mask)?.to_mask();
        if (m.width, m.height) != (width, height) {
            continue;
        }
        let [r, g, b] = rgb(outcome_colour(*outcome));
        let [bx, by, bw, bh] = m.bbox();
        for y in by..by + bh {
            for x in bx..bx + bw {
                if !m.get(x, y) {
                    continue;
                }
                let edge = x == 0
                    || y == 0
                    || x + 1 == width
                    || y + 1 == height
                    || !m.get(x - 1, y)
                    || !m.get(x + 1, y)
                    || !m.get(x, y - 1)
                    || !m.get(x, y + 1);
                let alpha = if edge {
                    240
                } else if fill {
                    70
                } else {
                    continue;
                };
                let i = (y as usize * w + x as usize) * 4;
                out[i..i + 4].copy_from_slice(&[r, g, b, alpha]);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lamina_core::mask::Mask;

    #[test]
    fn outlines_are_opaque_and_insides_only_when_filled() {
        let mut m = Mask::new(6, 6);
        m.fill_rect(1.0, 1.0, 5.0, 5.0, true);
        let rle = Rle::from_mask(&m).compress();
        let filled = outcome_layer_rgba(6, 6, &[(&rle, Outcome::Missed)], true).unwrap();
        let at = |buf: &[u8], x: usize, y: usize| buf[(y * 6 + x) * 4 + 3];
        assert_eq!(at(&filled, 1, 1), 240);
        assert_eq!(at(&filled, 2, 2), 70);
        assert_eq!(at(&filled, 0, 0), 0);
        assert_eq!(&filled[(6 + 1) * 4..(6 + 1) * 4 + 3], &[255, 159, 28]);
        let outline = outcome_layer_rgba(6, 6, &[(&rle, Outcome::Matched)], false).unwrap();
        assert_eq!(at(&outline, 2, 2), 0);
        assert_eq!(at(&outline, 4, 4), 240);
    }
}
