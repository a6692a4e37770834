//! The deterministic click simulator of the protocol (`interactive-eval.md`, as RITM's `Clicker`): the
//! first click at the interior-most pixel of the instance, each next one at the interior-most pixel of
//! the larger error region.

use lamina_core::mask::{Mask, MaskError};

use crate::edt::interior_most;

/// A simulated click on one pixel (image pixels, integer indices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Click {
    pub x_image: u32,
    pub y_image: u32,
    /// True: "this pixel belongs to the object"; false: "it does not".
    pub positive: bool,
}

impl Click {
    /// The clicked pixel's centre in continuous image coordinates, as a pointer on that pixel gives it.
    pub fn centre_image(&self) -> [f64; 2] {
        [f64::from(self.x_image) + 0.5, f64::from(self.y_image) + 0.5]
    }
}

/// The first click: positive, at the argmax of the distance transform of `gt` (padded by 1 px of
/// background), ties to the smallest row then column. `None` for an empty instance.
pub fn first_click(gt: &Mask) -> Option<Click> {
    interior_most(gt).map(|(x, y, _)| Click {
        x_image: x,
        y_image: y,
        positive: true,
    })
}

/// The correction click after a prediction: in FN = G ∧ ¬P (positive) or FP = ¬G ∧ P (negative),
/// whichever has the larger interior distance. On a tie the click is negative, as in RITM
/// (`is_positive = fn_max_dist > fp_max_dist`). `None` when the prediction equals the instance.
pub fn next_click(gt: &Mask, pred: &Mask) -> Result<Option<Click>, MaskError> {
    let mut fn_mask = gt.clone();
    fn_mask.subtract(pred)?;
    let mut fp_mask = pred.clone();
    fp_mask.subtract(gt)?;
    let fn_best = interior_most(&fn_mask);
    let fp_best = interior_most(&fp_mask);
    let click = |(x, y, _): (u32, u32, f64), positive| Click {
        x_image: x,
        y_image: y,
        positive,
    };
    Ok(match (fn_best, fp_best) {
        (None, None) => None,
        (Some(f), None) => Some(click(f, true)),
        (None, Some(p)) => Some(click(p, false)),
        (Some(f), Some(p)) => Some(if f.2 > p.2 {
            click(f, true)
        } else {
            click(p, false)
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(w: u32, h: u32, x0: u32, y0: u32, x1: u32, y1: u32) -> Mask {
        let mut m = Mask::new(w, h);
        for y in y0..y1 {
            for x in x0..x1 {
                m.set(x, y, true);
            }
        }
        m
    }

    #[test]
    fn first_click_is_the_centre_of_a_disk() {
        let mut m = Mask::new(41, 41);
        m.paint_disc(20.5, 20.5, 9.0, true);
        assert_eq!(
            first_click(&m),
            Some(Click {
                x_image: 20,
                y_image: 20,
                positive: true
            })
        );
    }

    #[test]
    fn first_click_ties_go_to_smallest_row_then_column() {
        // A 6x2 bar: every pixel is at distance 1; the top-left one wins.
        let m = rect(10, 10, 2, 4, 8, 6);
        let c = first_click(&m).unwrap();
        assert_eq!((c.x_image, c.y_image, c.positive), (2, 4, true));
        assert_eq!(first_click(&Mask::new(4, 4)), None);
    }

    #[test]
    fn correction_goes_to_the_larger_error_region() {
        let gt = rect(40, 40, 5, 5, 25, 25);
        // The prediction covers the left 5 columns of G (FN: a 15-wide block) and spills 3 px to
        // the left of G (FP: a 3-wide strip): the FN block is deeper, so the click is positive in it.
        let pred = rect(40, 40, 2, 5, 10, 25);
        let c = next_click(&gt, &pred).unwrap().unwrap();
        assert!(c.positive);
        assert!(gt.get(c.x_image, c.y_image) && !pred.get(c.x_image, c.y_image));
        // FN block x 10..25, y 5..25 (15x20): interior-most at distance 8 -> x 17, y 12 (first of ties).
        assert_eq!((c.x_image, c.y_image), (17, 12));
    }

    #[test]
    fn correction_is_negative_when_the_false_positive_is_larger() {
        let gt = rect(40, 40, 5, 5, 10, 10);
        // Covers G entirely plus a big block to the right.
        let pred = rect(40, 40, 5, 5, 30, 20);
        let c = next_click(&gt, &pred).unwrap().unwrap();
        assert!(!c.positive);
        assert!(!gt.get(c.x_image, c.y_image) && pred.get(c.x_image, c.y_image));
    }

    #[test]
    fn equal_depths_give_a_negative_click_and_a_perfect_mask_gives_none() {
        let gt = rect(20, 20, 0, 0, 3, 3);
        // FN: the 3x3 G; FP: another 3x3 block. Same depth -> negative (RITM's rule).
        let pred = rect(20, 20, 10, 10, 13, 13);
        assert!(!next_click(&gt, &pred).unwrap().unwrap().positive);
        assert_eq!(next_click(&gt, &gt).unwrap(), None);
    }

    #[test]
    fn the_centre_of_a_clicked_pixel_is_half_a_pixel_in() {
        let c = Click {
            x_image: 3,
            y_image: 7,
            positive: true,
        };
        assert_eq!(c.centre_image(), [3.5, 7.5]);
    }
}
