//! Segment-Anything-family inference on tract, with no browser dependency: the same code runs natively
//! (tests, `lamina bench sam`) and in the Web Worker.
//!
//! Coordinate spaces, named in identifiers:
//! - *image*: pixels of the image the user labels;
//! - *model*: pixels of the model input (`input_size`, 1024 for SAM): the image resized so its longest side
//!   is `input_size`, then padded at the bottom and right; for a model with `windows`, one window of the
//!   image at its own scale (`transform::window_layout`);
//! - *low-res*: the decoder's mask logits grid (`low_res_mask_size`, 256 for SAM), covering the padded model
//!   input;
//! - *input* ([`yolo`]): pixels of a YOLO-seg model's square input, the image letterboxed into it.

pub mod auto;
pub mod engine;
pub mod pooled;
pub use lamina_core::model_manifest as manifest;
pub mod postprocess;
pub mod preprocess;
pub mod transform;
pub mod yolo;

#[cfg(not(target_arch = "wasm32"))]
pub use engine::load_dir;
pub use engine::{
    Candidate, Decoded, Embedding, NodeTime, Prompts, SamEngine, SamError, WindowEmbedding,
};
pub use manifest::{DecoderVariant, ModelManifest};
pub use transform::ModelFromImage;
