//! Lamina's pure core. Nothing here knows about the browser: it builds and tests natively, and the app,
//! the worker and the `lamina` CLI all call the same code.
//!
//! Coordinate spaces are named: unless a name says otherwise, coordinates are **image pixels** with the
//! origin at the top-left corner of the top-left pixel (pixel (x, y) covers [x, x+1) x [y, y+1)).

pub mod bundle;
pub mod coco;
pub mod edit;
pub mod image_header;
pub mod manifest;
pub mod mask;
pub mod model;
pub mod model_manifest;
pub mod overlay;
pub mod polygon;
pub mod rle;
pub mod suggest;
