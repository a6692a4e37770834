//! Lamina's browser app (Leptos, client-side rendered): the thin glue around `lamina-core`.
//!
//! Layers, bottom to top; a module imports only from its own layer or below (`scripts/check-layers.py`
//! enforces it, and that no two modules import each other in a circle):
//! 1. [`error`], [`browser`]: the one error type, and helpers over browser APIs;
//! 2. [`store`] (IndexedDB) and [`worker_client`] (the Web Worker);
//! 3. [`state`]: the signals and read accessors;
//! 4. [`editing`]: changing labels and projects, and pushing changes to the team's endpoint;
//! 5. [`features`]: start-up, navigation, import, export, the model and suggestions, pulling from sync;
//! 6. `ui`: the components.

pub mod browser;
pub mod editing;
pub mod error;
pub mod features;
pub mod state;
pub mod store;
mod ui;
pub mod worker_client;

pub use ui::App;

/// Mounts the app on `<body>`.
pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
