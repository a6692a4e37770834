//! A segment suggestion being built from prompts — clicks and a box, in image pixels — before it becomes an
//! instance. The app keeps one [`SuggestSession`] per image while the suggestion tool is in use; the worker
//! turns each [`SegmentRequest`] into a mask.
//!
//! Refinement follows the interactive protocol of SAM and RITM: every request carries all prompts so far,
//! and a prompt added to a non-empty session also feeds back the previous low-res mask. After an undo the
//! remembered mask belongs to the removed prompt, so the next decode starts clean from the prompts alone.

use serde::{Deserialize, Serialize};

use crate::labels::{Prompt, Tool};
use crate::mask::Mask;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PointPrompt {
    pub x_image: f64,
    pub y_image: f64,
    pub positive: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Point,
    /// The box that the new box replaced.
    Box(Option<[f64; 4]>),
}

/// What the worker's `segment` and `profile` requests carry (see [`crate::worker_protocol`]). The app
/// always sends every field; a script talking to the worker may leave out all but one prompt, and the
/// protocol's defaults fill in the rest (no points, no box, no refinement, remember the mask).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRequest {
    /// `[x, y, positive]` in image pixels.
    #[serde(default)]
    pub points: Vec<(f64, f64, bool)>,
    /// `[x0, y0, x1, y1]` in image pixels.
    #[serde(default, rename = "box", skip_serializing_if = "Option::is_none")]
    pub box_image: Option<[f64; 4]>,
    /// Feed the low-res mask the worker remembered from this session's previous decode.
    #[serde(default)]
    pub refine: bool,
    /// Remember this decode's low-res mask for the next refinement (a hover preview must not).
    #[serde(default = "remember_by_default")]
    pub remember: bool,
}

fn remember_by_default() -> bool {
    true
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SuggestSession {
    points: Vec<PointPrompt>,
    box_image: Option<[f64; 4]>,
    steps: Vec<Step>,
    refine_next: bool,
}

impl SuggestSession {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn points(&self) -> &[PointPrompt] {
        &self.points
    }

    pub fn box_image(&self) -> Option<[f64; 4]> {
        self.box_image
    }

    pub fn add_point(&mut self, x_image: f64, y_image: f64, positive: bool) {
        self.refine_next = !self.is_empty();
        self.points.push(PointPrompt {
            x_image,
            y_image,
            positive,
        });
        self.steps.push(Step::Point);
    }

    /// Sets the box from two corners dragged in any direction; a later box replaces the earlier one (SAM
    /// takes one box), and a new box is a fresh question, so it is decoded without the previous mask.
    pub fn set_box(&mut self, a_image: [f64; 2], b_image: [f64; 2]) {
        let normalised = [
            a_image[0].min(b_image[0]),
            a_image[1].min(b_image[1]),
            a_image[0].max(b_image[0]),
            a_image[1].max(b_image[1]),
        ];
        self.steps
            .push(Step::Box(self.box_image.replace(normalised)));
        self.refine_next = false;
    }

    /// Removes the last prompt; false when there was none.
    pub fn undo(&mut self) -> bool {
        match self.steps.pop() {
            Some(Step::Point) => {
                self.points.pop();
            }
            Some(Step::Box(previous)) => self.box_image = previous,
            None => return false,
        }
        self.refine_next = false;
        true
    }

    /// The request for the current prompts.
    pub fn request(&self) -> SegmentRequest {
        SegmentRequest {
            points: self
                .points
                .iter()
                .map(|p| (p.x_image, p.y_image, p.positive))
                .collect(),
            box_image: self.box_image,
            refine: self.refine_next,
            remember: true,
        }
    }

    /// A hover preview: one positive point, on its own, leaving the session's remembered mask alone.
    pub fn hover_request(x_image: f64, y_image: f64) -> SegmentRequest {
        SegmentRequest {
            points: vec![(x_image, y_image, true)],
            box_image: None,
            refine: false,
            remember: false,
        }
    }

    /// The provenance tool: a box anywhere in the session makes it box-to-mask.
    pub fn tool(&self) -> Tool {
        if self.box_image.is_some() {
            Tool::SamBox
        } else {
            Tool::SamClick
        }
    }

    /// The prompts to keep with the accepted instance, so the suggestion can be reproduced.
    pub fn prompts(&self) -> Vec<Prompt> {
        let mut out: Vec<Prompt> = self
            .box_image
            .map(|[x0, y0, x1, y1]| Prompt::Box { x0, y0, x1, y1 })
            .into_iter()
            .collect();
        out.extend(self.points.iter().map(|p| Prompt::Point {
            x: p.x_image,
            y: p.y_image,
            positive: p.positive,
        }));
        out
    }
}

/// A mask drawn on a layer of its own: RGBA pixels of its bounding box only, so a preview on a large image
/// costs its own size, not the image's. Edge pixels are opaque for a crisp outline.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskSprite {
    /// `[x, y, width, height]` in image pixels.
    pub bbox_image: [u32; 4],
    pub rgba: Vec<u8>,
}

pub fn mask_sprite(mask: &Mask, rgb: (u8, u8, u8), fill_alpha: u8) -> Option<MaskSprite> {
    if mask.is_empty() {
        return None;
    }
    let [bx, by, bw, bh] = mask.bbox();
    let (r, g, b) = rgb;
    let inside = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && (x as u32) < mask.width
            && (y as u32) < mask.height
            && mask.get(x as u32, y as u32)
    };
    let mut rgba = vec![0u8; bw as usize * bh as usize * 4];
    for y in by..by + bh {
        for x in bx..bx + bw {
            if !mask.get(x, y) {
                continue;
            }
            let (xi, yi) = (i64::from(x), i64::from(y));
            let edge = !(inside(xi - 1, yi)
                && inside(xi + 1, yi)
                && inside(xi, yi - 1)
                && inside(xi, yi + 1));
            let alpha = if edge { 255 } else { fill_alpha };
            let at = (((y - by) * bw + (x - bx)) * 4) as usize;
            rgba[at..at + 4].copy_from_slice(&[r, g, b, alpha]);
        }
    }
    Some(MaskSprite {
        bbox_image: [bx, by, bw, bh],
        rgba,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_click_decodes_clean_and_later_clicks_refine_the_previous_mask() {
        let mut s = SuggestSession::default();
        s.add_point(10.0, 12.0, true);
        let first = s.request();
        assert_eq!(first.points, vec![(10.0, 12.0, true)]);
        assert!(!first.refine && first.remember);
        s.add_point(3.0, 4.0, false);
        let second = s.request();
        assert_eq!(second.points, vec![(10.0, 12.0, true), (3.0, 4.0, false)]);
        assert!(second.refine);
        assert_eq!(s.tool(), Tool::SamClick);
    }

    #[test]
    fn undo_removes_the_last_prompt_and_forgets_the_mask_it_made() {
        let mut s = SuggestSession::default();
        s.add_point(1.0, 1.0, true);
        s.set_box([20.0, 30.0], [5.0, 6.0]);
        s.add_point(9.0, 9.0, false);
        assert_eq!(
            s.box_image(),
            Some([5.0, 6.0, 20.0, 30.0]),
            "corners in any order"
        );
        assert_eq!(s.tool(), Tool::SamBox);
        assert!(s.undo());
        assert_eq!(s.points().len(), 1);
        assert!(
            !s.request().refine,
            "the remembered mask came from the removed click"
        );
        assert!(s.undo());
        assert_eq!(s.box_image(), None);
        assert_eq!(s.tool(), Tool::SamClick);
        assert!(s.undo());
        assert!(s.is_empty());
        assert!(!s.undo(), "nothing left to undo");
    }

    #[test]
    fn a_second_box_replaces_the_first_and_undo_brings_it_back() {
        let mut s = SuggestSession::default();
        s.set_box([0.0, 0.0], [10.0, 10.0]);
        s.set_box([5.0, 5.0], [15.0, 15.0]);
        assert_eq!(s.box_image(), Some([5.0, 5.0, 15.0, 15.0]));
        assert!(!s.request().refine, "a new box is a fresh question");
        s.undo();
        assert_eq!(s.box_image(), Some([0.0, 0.0, 10.0, 10.0]));
    }

    #[test]
    fn prompts_keep_the_box_and_every_click_in_image_pixels() {
        let mut s = SuggestSession::default();
        s.set_box([1.0, 2.0], [3.0, 4.0]);
        s.add_point(2.0, 3.0, false);
        assert_eq!(
            s.prompts(),
            vec![
                Prompt::Box {
                    x0: 1.0,
                    y0: 2.0,
                    x1: 3.0,
                    y1: 4.0
                },
                Prompt::Point {
                    x: 2.0,
                    y: 3.0,
                    positive: false
                }
            ]
        );
    }

    #[test]
    fn the_request_serialises_as_the_worker_expects() {
        let r = SuggestSession::hover_request(5.5, 6.5);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"points":[[5.5,6.5,true]],"refine":false,"remember":false}"#
        );
    }

    #[test]
    fn a_sprite_covers_the_mask_bbox_with_an_opaque_outline() {
        let mut m = Mask::new(20, 10);
        m.fill_rect(4.0, 2.0, 9.0, 7.0, true); // 5x5 square at (4, 2)
        let s = mask_sprite(&m, (10, 20, 30), 90).unwrap();
        assert_eq!(s.bbox_image, [4, 2, 5, 5]);
        assert_eq!(s.rgba.len(), 5 * 5 * 4);
        let alpha = |x: usize, y: usize| s.rgba[(y * 5 + x) * 4 + 3];
        assert_eq!(alpha(0, 0), 255, "corner is edge");
        assert_eq!(alpha(2, 2), 90, "centre is fill");
        assert_eq!(&s.rgba[0..3], &[10, 20, 30]);
        assert!(mask_sprite(&Mask::new(3, 3), (0, 0, 0), 1).is_none());
    }
}
