//! What the segmentation model and the current image's embedding are doing, as the UI shows it.

#[derive(Clone, Debug, PartialEq)]
pub enum ModelStatus {
    None,
    Loading(String),
    Ready(LoadedModelInfo),
    Failed(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct LoadedModelInfo {
    pub key: String,
    pub id: String,
    pub family: String,
    pub source: String,
    /// Its `manifest.json`, for the workers of a pre-label run, which load the model again (its files
    /// come from the IndexedDB cache).
    pub manifest: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EmbeddingStatus {
    None,
    /// The asset being encoded.
    Encoding(String),
    /// `cached`: restored without running the encoder.
    Ready {
        asset_id: String,
        handle: u32,
        cached: bool,
        encode_ms: f64,
    },
    Failed(String),
}
