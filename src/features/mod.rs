//! What the user does with the app, each feature a module over the layers below (editing, state,
//! storage, the worker, the browser helpers): start-up, moving between projects and images, importing,
//! exporting, the segmentation model and its suggestions, review mode, and the pull half of team sync.

pub mod batch_images;
pub mod boot;
pub mod catalog;
pub mod export;
pub mod import;
pub mod interop;
pub mod model;
pub mod navigate;
pub mod prelabel;
pub mod review;
pub mod review_pull;
pub mod runs;
pub mod suggest;
pub mod sync;
