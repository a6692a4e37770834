//! Measuring segment suggestions the way labelers use them: simulated clicks on every nucleus of a tile
//! set (`../shared/docs/interactive-eval.md`), scored as NoC/NoF/mIoU@k and box IoU.
//!
//! Pure Rust with no inference runtime: a model is anything implementing [`InteractiveSegmenter`]; the
//! CLI wraps the SAM engine, and [`classical`] is the baseline every model must beat.
//!
//! Coordinates are image pixels throughout (origin at the top-left corner of the top-left pixel; pixel
//! (x, y) covers [x, x+1) × [y, y+1)).

pub mod classical;
pub mod clicks;
pub mod dataset;
pub mod edt;
pub mod metrics;
pub mod runner;
pub mod segmenter;

pub use clicks::Click;
pub use dataset::{DataError, DataSet, GtInstance, Tile};
pub use metrics::{EvalReport, InstanceResult, Summary};
pub use runner::evaluate;
pub use segmenter::{InteractiveSegmenter, LowRes, Prediction};
