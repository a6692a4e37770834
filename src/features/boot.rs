//! Start-up: open the storage, load the model, and show the last project (the demo on first open).

use std::rc::Rc;

use leptos::prelude::*;

use crate::browser::tabs;
use crate::features::{import, model, navigate, sync};
use crate::state::AppState;
use crate::store::{self, Store, StoreEvent, DB_NAME};
use crate::worker_client;

/// Opens the store, asks for persistent storage, and shows the last project (the demo on first open).
pub async fn boot(state: AppState) {
    let store = Store::open_watched(DB_NAME, move |event| {
        state.error(match event {
            StoreEvent::Blocked => {
                "Lamina is open in another tab with an older version of its data: close or reload that tab, and this one starts"
            }
            StoreEvent::ClosedForUpgrade => {
                "Lamina was updated in another tab: reload this tab to go on. What was saved is kept; changes made here now cannot be stored"
            }
        })
    })
    .await;
    let store = match store {
        Ok(s) => Rc::new(s),
        Err(e) => return state.error(e.to_string()),
    };
    // Opened after waiting for another tab: that notice is over.
    if matches!(state.notice.get_untracked(), Some(crate::state::Notice::Error(t)) if t.starts_with("Lamina is open in another tab"))
    {
        state.notice.set(None);
    }
    store::set_shared(store.clone());
    if !Store::request_persistence().await {
        // The browser's answer, not an error: data stays, but may be evicted under storage pressure.
        web_sys::console::info_1(
            &"persistent storage not granted; the browser may evict data under pressure".into(),
        );
    }
    match store.setting("author").await {
        Ok(Some(author)) => state.author.set(author),
        Ok(None) => {}
        Err(e) => state.fail("Your name could not be read", &e),
    }
    worker_client::on_progress(move |p| {
        state
            .progress
            .set((!p.done).then(|| format!("Model: {}…", p.stage)));
    });
    leptos::task::spawn_local(model::load_initial(state));
    sync::install_page_hooks(state);
    // Another tab changed the project on screen: show what is stored now.
    tabs::on_change_elsewhere(move |project_id| {
        if state.project_id.get_untracked().as_deref() == Some(project_id.as_str()) {
            leptos::task::spawn_local(navigate::refresh_from_storage(state));
        }
    });
    let projects = match store.projects().await {
        Ok(p) => p,
        Err(e) => return state.fail("The projects could not be read", &e),
    };
    if projects.is_empty() {
        import::import_demo(state).await;
        return;
    }
    let last = match store.setting("last_project").await {
        Ok(last) => last,
        Err(e) => {
            state.fail("The last project could not be read", &e);
            None
        }
    };
    let pick = last
        .filter(|id| projects.iter().any(|p| &p.id == id))
        .or_else(|| projects.last().map(|p| p.id.clone()));
    state.projects.set(projects);
    if let Some(id) = pick {
        navigate::open_project(state, id).await;
    }
}
