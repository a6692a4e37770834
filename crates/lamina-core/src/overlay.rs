//! Composes every instance of an image into one RGBA layer at image resolution.
//!
//! The labeling view draws this with a single `putImageData`, so 500 nuclei cost one canvas, not 500 DOM
//! nodes, and zoom/pan is a CSS transform that redraws nothing.

use crate::labels::{parse_hex_color, Instance, Tool};
use crate::rle::{Rle, RleError};

const FILL_ALPHA: u8 = 80;
const SELECTED_FILL_ALPHA: u8 = 150;
const EDGE_ALPHA: u8 = 235;
/// A pre-label nobody has looked at yet is drawn apart: a faint fill and a dashed outline, so a labeler
/// sees at once what a model proposed and what a person made.
const PRELABEL_FILL_ALPHA: u8 = 28;
/// Dash period along the outline, image pixels (on for the first half).
const PRELABEL_DASH: usize = 4;

/// `colour_of(instance)` gives each instance its class colour as `#rrggbb` (unknown → grey).
pub fn compose_overlay_rgba<'a>(
    width: u32,
    height: u32,
    instances: &[Instance],
    colour_of: impl Fn(&Instance) -> Option<&'a str>,
    selected_id: Option<&str>,
) -> Result<Vec<u8>, RleError> {
    compose_overlay_region_rgba(
        width,
        height,
        instances,
        colour_of,
        selected_id,
        [0, 0, width, height],
    )
}

fn intersects(a: [u32; 4], b: [u32; 4]) -> bool {
    let [ax, ay, aw, ah] = a.map(u64::from);
    let [bx, by, bw, bh] = b.map(u64::from);
    aw > 0
        && bw > 0
        && ah > 0
        && bh > 0
        && ax < bx + bw
        && bx < ax + aw
        && ay < by + bh
        && by < ay + ah
}

/// `region_image` (`[x, y, w, h]`) clipped to a `width` x `height` image.
pub fn clip_region(region_image: [u32; 4], width: u32, height: u32) -> [u32; 4] {
    let [x, y, w, h] = region_image;
    let (x, y) = (x.min(width), y.min(height));
    [x, y, w.min(width - x), h.min(height - y)]
}

/// The same pixels as [`compose_overlay_rgba`], for `region_image` (`[x, y, w, h]`, clipped to the image)
/// only: RGBA rows of the region. After an edit the view redraws the edit's bounding box, so accepting a
/// label costs the label's size, not the image's or the number of labels already on it.
pub fn compose_overlay_region_rgba<'a>(
    width: u32,
    height: u32,
    instances: &[Instance],
    colour_of: impl Fn(&Instance) -> Option<&'a str>,
    selected_id: Option<&str>,
    region_image: [u32; 4],
) -> Result<Vec<u8>, RleError> {
    let (w, h) = (width as usize, height as usize);
    let [rx, ry, rw, rh] = clip_region(region_image, width, height).map(|v| v as usize);
    // Labels over the region grown by one pixel, so outlines at its border see their neighbours.
    let (ex, ey) = (rx.saturating_sub(1), ry.saturating_sub(1));
    let (ew, eh) = ((rx + rw + 1).min(w) - ex, (ry + rh + 1).min(h) - ey);
    // labels[(y - ey) * ew + (x - ex)] = 1 + index of the instance owning the pixel (0 = none); later on top.
    let mut labels = vec![0u32; ew * eh];
    let grown = [ex, ey, ew, eh].map(|v| v as u32);
    for (k, inst) in instances.iter().enumerate() {
        if !intersects(inst.bbox, grown) {
            continue;
        }
        let rle = Rle::decompress(&inst.mask)?;
        if (rle.width as usize, rle.height as usize) != (w, h) {
            continue;
        }
        let mut start = 0usize;
        for (run, &count) in rle.counts.iter().enumerate() {
            let end = start + count as usize;
            if run % 2 == 1 {
                // Column-major: a run may span several columns; visit only those in the grown region.
                let (first_col, last_col) = (start / h, (end - 1) / h);
                for x in first_col.max(ex)..=last_col.min(ex + ew - 1) {
                    let y0 = start.max(x * h) - x * h;
                    let y1 = end.min((x + 1) * h) - x * h;
                    for y in y0.max(ey)..y1.min(ey + eh) {
                        labels[(y - ey) * ew + (x - ex)] = k as u32 + 1;
                    }
                }
            }
            start = end;
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
    let pending: Vec<bool> = instances
        .iter()
        .map(|i| i.provenance.tool == Tool::PreLabel)
        .collect();
    let selected = selected_id.and_then(|id| instances.iter().position(|i| i.id == id));
    let label_at = |x: usize, y: usize| labels[(y - ey) * ew + (x - ex)];
    let mut rgba = vec![0u8; rw * rh * 4];
    for y in ry..ry + rh {
        for x in rx..rx + rw {
            let label = label_at(x, y);
            if label == 0 {
                continue;
            }
            let other = |nx: usize, ny: usize| label_at(nx, ny) != label;
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
            let alpha = match (edge, is_selected, pending[k]) {
                (true, true, _) => EDGE_ALPHA,
                (true, false, true) if (x + y) % PRELABEL_DASH >= PRELABEL_DASH / 2 => 0,
                (true, _, _) => EDGE_ALPHA,
                (false, true, _) => SELECTED_FILL_ALPHA,
                (false, false, true) => PRELABEL_FILL_ALPHA,
                (false, false, false) => FILL_ALPHA,
            };
            if alpha == 0 {
                continue;
            }
            rgba[((y - ry) * rw + (x - rx)) * 4..][..4].copy_from_slice(&[r, g, b, alpha]);
        }
    }
    Ok(rgba)
}

/// The image area (`[x, y, w, h]`) whose pixels differ between two states of an image's labels: the boxes
/// of instances added, removed, reshaped or re-classed, and of the selection before and after. `None`
/// when nothing shown changed.
pub fn changed_region(
    before: &[Instance],
    after: &[Instance],
    selected_before: Option<&str>,
    selected_after: Option<&str>,
) -> Option<[u32; 4]> {
    let find = |list: &[Instance], id: &str| list.iter().position(|i| i.id == id);
    let mut boxes: Vec<[u32; 4]> = Vec::new();
    // Edits keep the relative order of the instances they do not touch, so an unchanged instance needs no
    // redraw unless a changed one overlaps it, and the changed one's box covers that.
    for inst in after {
        match find(before, &inst.id) {
            Some(j) if before[j] == *inst => {}
            Some(j) => boxes.extend([before[j].bbox, inst.bbox]),
            None => boxes.push(inst.bbox),
        }
    }
    boxes.extend(
        before
            .iter()
            .filter(|i| find(after, &i.id).is_none())
            .map(|i| i.bbox),
    );
    if selected_before != selected_after {
        for id in [selected_before, selected_after].into_iter().flatten() {
            boxes.extend(
                before
                    .iter()
                    .chain(after)
                    .filter(|i| i.id == id)
                    .map(|i| i.bbox),
            );
        }
    }
    boxes
        .into_iter()
        .filter(|b| b[2] > 0 && b[3] > 0)
        .reduce(|a, b| {
            let (x0, y0) = (a[0].min(b[0]), a[1].min(b[1]));
            let (x1, y1) = (
                (a[0] + a[2]).max(b[0] + b[2]),
                (a[1] + a[3]).max(b[1] + b[3]),
            );
            [x0, y0, x1 - x0, y1 - y0]
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::instance_from_mask;
    use crate::labels::{Provenance, Tool};
    use crate::mask::Mask;

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
            score: None,
        };
        let inst = instance_from_mask("i".into(), "a".into(), "c".into(), &m, prov);
        let rgba = compose_overlay_rgba(8, 8, &[inst], |_| Some("#ff0000"), None).unwrap();
        let px = |x: usize, y: usize| &rgba[(y * 8 + x) * 4..][..4];
        assert_eq!(px(0, 0), [0, 0, 0, 0]);
        assert_eq!(px(2, 2), [255, 0, 0, EDGE_ALPHA]);
        assert_eq!(px(3, 3), [255, 0, 0, FILL_ALPHA]);
    }

    #[test]
    fn a_pending_pre_label_is_faint_with_a_dashed_outline_until_accepted() {
        let mut m = Mask::new(12, 12);
        m.fill_rect(2.0, 2.0, 10.0, 10.0, true);
        let mut pre = inst("p", &m, "c");
        pre.provenance.tool = Tool::PreLabel;
        let rgba = compose_overlay_rgba(12, 12, &[pre.clone()], |_| Some("#00ff00"), None).unwrap();
        let alpha = |x: usize, y: usize| rgba[(y * 12 + x) * 4 + 3];
        assert_eq!(alpha(5, 5), PRELABEL_FILL_ALPHA);
        let top_edge: Vec<u8> = (2..10).map(|x| alpha(x, 2)).collect();
        assert!(
            top_edge.contains(&EDGE_ALPHA) && top_edge.contains(&0),
            "{top_edge:?}"
        );
        pre.provenance.tool = Tool::PreLabelAccepted;
        let rgba = compose_overlay_rgba(12, 12, &[pre], |_| Some("#00ff00"), None).unwrap();
        let alpha = |x: usize, y: usize| rgba[(y * 12 + x) * 4 + 3];
        assert_eq!(alpha(5, 5), FILL_ALPHA);
        assert!((2..10).all(|x| alpha(x, 2) == EDGE_ALPHA));
    }

    fn inst(id: &str, m: &Mask, class: &str) -> Instance {
        let prov = Provenance {
            tool: Tool::Brush,
            prompts: vec![],
            model_id: None,
            author: None,
            created: String::new(),
            updated: String::new(),
            score: None,
        };
        instance_from_mask(id.into(), "a".into(), class.into(), m, prov)
    }

    proptest::proptest! {
        #[test]
        fn a_region_is_exactly_the_crop_of_the_whole_layer(
            rects in proptest::collection::vec((0u32..20, 0u32..14, 1u32..9, 1u32..9), 1..8),
            region in (0u32..22, 0u32..16, 0u32..24, 0u32..18),
            selected in 0usize..8,
        ) {
            let (w, h) = (20u32, 14u32);
            let instances: Vec<Instance> = rects
                .iter()
                .enumerate()
                .map(|(k, &(x, y, rw, rh))| {
                    let mut m = Mask::new(w, h);
                    m.fill_rect(f64::from(x), f64::from(y), f64::from(x + rw), f64::from(y + rh), true);
                    inst(&format!("i{k}"), &m, if k % 2 == 0 { "#ff0000" } else { "#00ff00" })
                })
                .collect();
            let colour = |i: &Instance| Some(if i.id.ends_with(|c: char| c.to_digit(10).is_some_and(|d| d % 2 == 0)) { "#ff0000" } else { "#00ff00" });
            let sel = instances.get(selected).map(|i| i.id.clone());
            let whole = compose_overlay_rgba(w, h, &instances, colour, sel.as_deref()).unwrap();
            let part = compose_overlay_region_rgba(w, h, &instances, colour, sel.as_deref(), [region.0, region.1, region.2, region.3]).unwrap();
            let (rx, ry) = (region.0.min(w) as usize, region.1.min(h) as usize);
            let (rw, rh) = ((region.2 as usize).min(w as usize - rx), (region.3 as usize).min(h as usize - ry));
            proptest::prop_assert_eq!(part.len(), rw * rh * 4);
            for y in 0..rh {
                for x in 0..rw {
                    let a = &part[(y * rw + x) * 4..][..4];
                    let b = &whole[((ry + y) * w as usize + rx + x) * 4..][..4];
                    proptest::prop_assert_eq!(a, b, "pixel ({}, {})", rx + x, ry + y);
                }
            }
        }
    }

    #[test]
    fn the_changed_region_covers_what_an_edit_touched_and_nothing_else() {
        let rect = |x: f64, y: f64| {
            let mut m = Mask::new(64, 64);
            m.fill_rect(x, y, x + 4.0, y + 4.0, true);
            m
        };
        let a = inst("a", &rect(0.0, 0.0), "c");
        let b = inst("b", &rect(20.0, 20.0), "c");
        let c = inst("c", &rect(40.0, 8.0), "c");
        let before = vec![a.clone(), b.clone()];
        assert_eq!(changed_region(&before, &before, None, None), None);
        let added = vec![a.clone(), b.clone(), c.clone()];
        assert_eq!(
            changed_region(&before, &added, None, None),
            Some([40, 8, 4, 4])
        );
        assert_eq!(
            changed_region(&added, &before, None, None),
            Some([40, 8, 4, 4])
        );
        assert_eq!(
            changed_region(&before, &before, Some("a"), Some("b")),
            Some([0, 0, 24, 24])
        );
        let mut moved = b.clone();
        moved.bbox = [30, 30, 4, 4];
        assert_eq!(
            changed_region(&before, &[a.clone(), moved], None, None),
            Some([20, 20, 14, 14])
        );
    }
}
