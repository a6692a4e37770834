//! Fuzz targets for every parser that reads what a teammate, a server or a file picker hands Lamina.
//!
//! Each target takes arbitrary bytes and must neither panic nor allocate without bound; when the parser
//! accepts the input, the target also checks what a user relies on (a parsed value survives a round trip,
//! a mask decodes to the size it claims, every device computes the same heads). A broken invariant is a
//! panic, which libFuzzer reports as a crash.
//!
//! `fuzz/` (cargo-fuzz, nightly) runs them; `tests/corpora.rs` replays `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` on stable, which is what CI does.

mod interop;
mod targets;

pub use interop::interop;

pub use targets::{
    bundle, fragment, image_header, ledger, listing, manifest, model_manifest, rle, TARGETS,
};
