//! Lamina's pure core. Nothing here knows about the browser: it builds and tests natively, and the app,
//! the worker and the `lamina` CLI all call the same code.
//!
//! Coordinate spaces are named: unless a name says otherwise, coordinates are **image pixels** with the
//! origin at the top-left corner of the top-left pixel (pixel (x, y) covers [x, x+1) x [y, y+1)).
//!
//! Three words that could be confused are kept apart by module names: [`labels`] is the label data
//! (projects, images, instances, classes); [`model_manifest`] describes a segmentation *model*'s files;
//! [`image_list`] reads a CSV or JSON list of image URLs (a team's batch manifest is `lamina-sync`'s).

pub mod bundle;
pub mod catalog;
pub mod coco;
pub mod edit;
pub mod grid;
pub mod image_header;
pub mod image_list;
pub mod labels;
pub mod mask;
pub mod model_manifest;
pub mod overlay;
pub mod polygon;
pub mod prelabel;
pub mod review;
pub mod rle;
pub mod shortcuts;
pub mod similar;
pub mod suggest;
pub mod valid_polygons;
pub mod view;
pub mod worker_protocol;
