//! What the benchmark needs from a model: prepare an image once, then answer clicks and boxes.

use image::RgbImage;
use lamina_core::mask::Mask;

use crate::clicks::Click;

/// A model's own low-resolution mask logits (SAM: 256x256 over the padded model input), handed back on
/// the next click so the model can refine its previous answer. Opaque to the benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct LowRes(pub Vec<f32>);

#[derive(Clone, Debug)]
pub struct Prediction {
    /// The chosen mask, in image pixels (the size of the image given to `set_image`).
    pub mask_image: Mask,
    /// For the next round, if the model takes a previous mask as input.
    pub low_res: Option<LowRes>,
}

/// An interactive segmenter, driven as a labeler drives it: one image at a time, then prompts.
pub trait InteractiveSegmenter {
    /// Names the model in reports.
    fn id(&self) -> String;

    /// Prepares an image (computes the embedding); called once per tile, outside the timed predictions.
    fn set_image(&mut self, rgb: &RgbImage) -> anyhow::Result<()>;

    /// The mask for all clicks so far (in click order). `prev_low_res` is the previous prediction's
    /// logits for this object; with `multimask_allowed` (the first click) the model may produce
    /// several masks and must return the one it scores best.
    fn predict(
        &mut self,
        clicks: &[Click],
        prev_low_res: Option<&LowRes>,
        multimask_allowed: bool,
    ) -> anyhow::Result<Prediction>;

    /// The mask for a box `[x0, y0, x1, y1]` in continuous image coordinates (x1, y1 exclusive).
    fn predict_box(&mut self, box_xyxy_image: [f64; 4]) -> anyhow::Result<Mask>;
}
