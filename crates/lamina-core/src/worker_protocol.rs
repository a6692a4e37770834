//! The messages between the app and its Web Worker, as types both sides share: the worker builds its
//! replies from them and the app reads them back into them, so a missing or misspelled field is an error
//! on the spot, never a silent zero.
//!
//! On the wire a request is `{id, kind, ...fields}` and a reply `{id, ok: true, result}` or
//! `{id, ok: false, error, cancelled}`; progress events are `{event: "progress", id, stage, done?}`
//! (`public/worker.js` routes them). Byte buffers (image files, model files, embeddings, a converted PNG)
//! travel beside these fields as transferred `ArrayBuffer`s, not through serde: their field names are the
//! `*_FIELD` constants below.
//!
//! | request      | fields                                    | result          | bytes in the result |
//! | ------------ | ----------------------------------------- | --------------- | ------------------- |
//! | `inspect`    | `bytes`                                   | [`Inspected`]   | `display` (a PNG, when converted) |
//! | `load_model` | `manifest`, `encoder`, `decoder`, `box_decoder?` | [`ModelLoaded`] | |
//! | `encode`     | `bytes`                                   | [`Encoded`]     | `f16` |
//! | `restore`    | `f16`, `width`, `height`                  | [`Restored`]    | |
//! | `segment`    | `handle`, `prompts`: [`SegmentRequest`]   | [`Segmented`]   | |
//! | `profile`    | `handle`, `prompts`, `runs`               | per-node times  | |
//! | `segment_all`| `handle`, `settings`: [`PrelabelSettings`] | [`SegmentedAll`] | |
//! | `prelabel`   | `bytes`, `settings`                       | [`SegmentedAll`] | |
//! | `load_yolo`  | `file_name`, `bytes`                      | [`YoloLoaded`]  | |
//! | `prelabel_yolo` | `bytes`, `settings`                    | [`SegmentedAll`] | |
//! | `drop`       | `handle`                                  | `{}`            | |
//! | `read_predictions` | `truth`, `file_name`, `drop_unmapped`, `bytes` | [`PredictionsRead`] | |
//! | `run_metrics`| `truth`, `predictions`, `split?`, `iou`, `score` | [`MetricsComputed`] | |
//! | `thumbnail`  | `bytes`                                   | [`Thumbnailed`] | `thumb` (a JPEG) |
//!
//! `segment` is latest-wins: a newer one cancels one still waiting, except that a hover preview
//! (`remember: false`) never displaces a waiting click; the cancelled one fails with `cancelled: true`.

use serde::{Deserialize, Serialize};

pub use crate::prelabel::PrelabelSettings;
use crate::rle::CompressedRle;
pub use crate::suggest::SegmentRequest;

/// A request's fields other than its byte buffers, tagged by `kind`. The buffers go beside them under
/// [`BYTES_FIELD`] (inspect, encode), [`F16_FIELD`] (restore), and `encoder`, `decoder`, `box_decoder`
/// (load_model).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Inspect,
    LoadModel {
        /// The model's `manifest.json`, as text.
        manifest: String,
    },
    Encode,
    Restore {
        width: u32,
        height: u32,
    },
    Segment {
        handle: u32,
        prompts: SegmentRequest,
    },
    Profile {
        handle: u32,
        prompts: SegmentRequest,
        runs: u32,
    },
    Drop {
        handle: u32,
    },
    /// Every object of an embedded image, no prompts (automatic mode, `lamina_sam::auto`).
    SegmentAll {
        handle: u32,
        settings: PrelabelSettings,
    },
    /// An image file encoded and segmented whole in one request, its embedding freed after: the batch
    /// path of pre-labeling, which needs no embedding kept or sent back. Bytes under [`BYTES_FIELD`].
    Prelabel {
        settings: PrelabelSettings,
    },
    /// A user's YOLO-seg export (bytes under [`BYTES_FIELD`]), for pre-label runs.
    LoadYolo {
        file_name: String,
    },
    /// An image file through the loaded YOLO-seg model. Bytes under [`BYTES_FIELD`].
    PrelabelYolo {
        settings: PrelabelSettings,
    },
    /// A model's predictions file read against a run's labels (`lamina_runs::predictions`); the file's
    /// bytes go under [`BYTES_FIELD`].
    ReadPredictions {
        /// The run's label bundle, JSON.
        truth: String,
        /// Decides the format: `.zip` (YOLO-seg text files), `.txt` (one), `.json` (COCO results or a bundle).
        file_name: String,
        /// Leave out predictions of classes not in the ontology instead of refusing the file.
        drop_unmapped: bool,
    },
    /// Every metric of a prediction set against a run's labels (`lamina_runs::metrics`).
    RunMetrics {
        /// The run's label bundle, JSON.
        truth: String,
        /// The predictions, JSON (a list of `lamina_runs::run::Prediction`).
        predictions: String,
        /// `train`, `val` or `test`; every image of the run when absent.
        #[serde(default)]
        split: Option<String>,
        iou: f64,
        score: f64,
    },
    /// The catalog's view of an image file (bytes under [`BYTES_FIELD`]): a small JPEG for the grid and
    /// the colour embedding find-similar ranks by.
    Thumbnail,
}

/// An image's thumbnail (JPEG bytes under [`THUMB_FIELD`]) and its find-similar embedding
/// (`lamina_core::similar::colour_histogram` of the image at most 256 px wide).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thumbnailed {
    pub embedding: Vec<f32>,
    pub width: u32,
    pub height: u32,
}

/// The field of a `thumbnail` result holding the JPEG.
pub const THUMB_FIELD: &str = "thumb";

/// A predictions file read: the predictions (JSON list of `lamina_runs::run::Prediction`) and what the
/// import found (JSON of `lamina_runs::predictions::ImportSummary`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionsRead {
    pub predictions: String,
    pub summary: String,
    pub count: usize,
    pub ms: f64,
}

/// Metrics computed: the JSON of a `lamina_runs::metrics::Report`, and the time it took in the worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsComputed {
    pub report: String,
    pub ms: f64,
}

/// The field of `inspect` and `encode` requests holding the image file's bytes.
pub const BYTES_FIELD: &str = "bytes";

/// The field of an `inspect` result holding the converted PNG, when the browser cannot show the original.
pub const DISPLAY_FIELD: &str = "display";
/// The field of an `encode` result holding the embedding as little-endian f16 bytes, for the cache.
pub const F16_FIELD: &str = "f16";

/// What the worker learnt about an image file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inspected {
    pub width: u32,
    pub height: u32,
    /// Type of the blob to store and show (PNG for converted TIFFs).
    pub mime: String,
    /// Type of the file as given.
    pub source_mime: String,
    /// Hex sha256 of the file as given.
    pub sha256: String,
}

/// A model the worker loaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelLoaded {
    /// Cache key of its embeddings: id, encoder hash and window layout.
    pub key: String,
    pub id: String,
    pub family: String,
    /// The decoder variant in use: `low_res` or `orig_size`.
    pub variant: String,
    pub box_decoder: bool,
    /// Parsing, optimising and warming up the graphs, and of that the warm-up: decodes run at load so
    /// that the user's first clicks run on optimised code (a benchmark compares the rest).
    pub load_ms: f64,
    #[serde(default)]
    pub warm_up_ms: f64,
}

/// The first step of an encode done window by window (worker-internal, between wasm and worker.js).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncodeStarted {
    pub session: u32,
    pub windows: u32,
}

/// An image encoded: its handle in the worker; the embedding itself comes as `f16` bytes beside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Encoded {
    pub handle: u32,
    pub encode_ms: f64,
    pub windows: u32,
    /// Embedding shape `[1, channels, height, width]` of one window.
    pub shape: [usize; 4],
}

/// A cached embedding brought back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Restored {
    pub handle: u32,
}

/// A mask decoded from prompts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segmented {
    /// The chosen mask cut to `bbox` (its size is the bbox's; 0 × 0 when the mask is empty): on a large
    /// image the answer stays the object's size.
    pub rle: CompressedRle,
    pub area: u64,
    /// `[x, y, w, h]` in image pixels: where `rle` lies on the image.
    pub bbox: [u32; 4],
    /// The model's predicted IoU of the chosen mask.
    pub iou: f32,
    pub stability: f32,
    /// Index of the chosen candidate, and every candidate's predicted IoU.
    pub best: u32,
    pub ious: Vec<f32>,
    pub decode_ms: f64,
}

/// One object found by automatic mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoundInstance {
    /// In image pixels.
    pub rle: CompressedRle,
    pub area: u64,
    /// `[x, y, w, h]` in image pixels.
    pub bbox: [u32; 4],
    /// The model's score (SAM-family: predicted IoU; YOLO-seg: class score).
    pub score: f32,
    /// Index into the model's classes (SAM-family models have one).
    #[serde(default)]
    pub class: u32,
}

/// A user's YOLO-seg export loaded into a worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct YoloLoaded {
    /// Class names by index, from the file's metadata (`class 0`, ... without it).
    pub classes: Vec<String>,
    /// Its square input side, pixels.
    pub input: u32,
    pub load_ms: f64,
}

/// Every object of an image, none sharing a pixel, best first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentedAll {
    pub instances: Vec<FoundInstance>,
    /// Seeds decoded (each a click the model answered).
    pub seeds: u32,
    /// Time in the worker: encode (for `prelabel`) and every decode.
    pub ms: f64,
}

/// A failed request, as the worker answers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub error: String,
    /// A newer request superseded this one: not an error to show.
    #[serde(default)]
    pub cancelled: bool,
}

/// A progress event of a long request (loading a model, encoding window by window).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub id: u32,
    pub stage: String,
    #[serde(default)]
    pub done: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_missing_a_field_is_refused_not_defaulted() {
        let full = r#"{"handle": 3, "encode_ms": 81.5, "windows": 9, "shape": [1, 64, 16, 16]}"#;
        let e: Encoded = serde_json::from_str(full).unwrap();
        assert_eq!((e.handle, e.windows, e.shape), (3, 9, [1, 64, 16, 16]));
        let missing = r#"{"encode_ms": 81.5, "windows": 9, "shape": [1, 64, 16, 16]}"#;
        let err = serde_json::from_str::<Encoded>(missing).unwrap_err();
        assert!(err.to_string().contains("missing field `handle`"), "{err}");
    }

    #[test]
    fn a_segment_request_from_a_script_gets_the_protocols_defaults() {
        let r: SegmentRequest = serde_json::from_str(r#"{"points": [[10, 20, true]]}"#).unwrap();
        assert_eq!(r.points, vec![(10.0, 20.0, true)]);
        assert!(r.box_image.is_none() && !r.refine && r.remember);
        let b: SegmentRequest = serde_json::from_str(r#"{"box": [1, 2, 3, 4]}"#).unwrap();
        assert_eq!(b.box_image, Some([1.0, 2.0, 3.0, 4.0]));
    }

    #[test]
    fn a_misspelled_prompt_field_is_an_error() {
        let err =
            serde_json::from_str::<SegmentRequest>(r#"{"point": [[1, 2, true]]}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `point`"), "{err}");
    }

    #[test]
    fn requests_carry_their_kind_and_fields() {
        let r = Request::Segment {
            handle: 4,
            prompts: SegmentRequest {
                points: vec![(1.0, 2.0, true)],
                box_image: None,
                refine: false,
                remember: false,
            },
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["kind"], "segment");
        assert_eq!(json["handle"], 4);
        assert_eq!(json["prompts"]["remember"], false);
        let back: Request = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        let load = serde_json::to_value(Request::LoadModel {
            manifest: "{}".into(),
        })
        .unwrap();
        assert_eq!(load["kind"], "load_model");
        assert!(serde_json::from_str::<Request>(r#"{"kind": "restore", "width": 1}"#).is_err());
    }

    #[test]
    fn cancelled_is_a_flag_not_a_message() {
        let f: Failure =
            serde_json::from_str(r#"{"error": "superseded", "cancelled": true}"#).unwrap();
        assert!(f.cancelled);
        let f: Failure = serde_json::from_str(r#"{"error": "no model is loaded"}"#).unwrap();
        assert!(!f.cancelled);
    }
}
