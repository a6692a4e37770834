//! Labels in and out of the tools pathology teams already use, as pure functions over strings and
//! pixels (the CLI reads and writes the files; the app hands over what the user picked).
//!
//! Every importer reads its format into the same [`foreign::ForeignImage`]s: images named as the file
//! names them, instances as the shapes the file holds, classes by name. [`plan`] then matches those
//! images to a project's (by sha256 or by name), maps classes by name, says what it would skip and why,
//! and only then builds Lamina instances: a summary always comes before any change.
//!
//! Coordinates are image pixels with the origin at the top-left corner of the top-left pixel, the
//! convention QuPath, CVAT and Labelbox polygons use (Label Studio's percentages are converted on the
//! way in and out).
//!
//! | format | module | in | out |
//! |---|---|---|---|
//! | QuPath GeoJSON | [`qupath`] | yes | yes |
//! | Labelbox NDJSON | [`labelbox`] | yes | yes |
//! | CVAT for images 1.1 XML | [`cvat`] | yes | – |
//! | COCO 1.0 (CVAT's and others') | [`coco_import`] | yes | `lamina_core::coco` |
//! | Label Studio JSON | [`labelstudio`] | yes | yes |

pub mod coco_import;
pub mod cvat;
pub mod detect;
pub mod foreign;
pub mod labelbox;
pub mod labelstudio;
pub mod ls_rle;
pub mod plan;
pub mod qupath;

/// A file that cannot be read as its format says, with where in it: "line 4", "feature 2",
/// "image 'a.png', polygon 3". The caller names the file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct InteropError {
    pub at: String,
    pub message: String,
}

impl InteropError {
    pub fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        InteropError {
            at: at.into(),
            message: message.into(),
        }
    }
}
