//! Lamina's browser app (Leptos, client-side rendered). The thin glue around `lamina-core`: storage
//! (IndexedDB), the worker client, imports and exports, and the UI.

pub mod export;
pub mod import;
pub mod model;
pub mod state;
pub mod store;
pub mod suggest;
pub mod sync;
mod ui;
pub mod worker_client;

pub use ui::App;

/// Mounts the app on `<body>`.
pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
