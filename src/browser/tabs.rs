//! Other tabs of the app in the same browser: one of them at a time pushes (a Web Lock), and each tells
//! the others when it changed a project (a BroadcastChannel), so no tab edits from a stale picture.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

#[wasm_bindgen(inline_js = r#"
export function with_lock(name, run) {
  if (!globalThis.navigator || !navigator.locks) return run().then(() => true);
  return navigator.locks.request(name, { ifAvailable: true }, async (lock) => {
    if (!lock) return false;
    await run();
    return true;
  });
}
"#)]
extern "C" {
    fn with_lock(name: &str, run: &js_sys::Function) -> js_sys::Promise;
}

/// Runs `work` holding the browser-wide lock `name`, unless another tab holds it: then `None` at once
/// (that tab is doing the same work). Browsers without Web Locks run it.
pub async fn exclusively<T: 'static>(
    name: &str,
    work: impl Future<Output = T> + 'static,
) -> Option<T> {
    let out: Rc<RefCell<Option<T>>> = Rc::default();
    let slot = out.clone();
    let run = Closure::once(move || {
        future_to_promise(async move {
            let value = work.await;
            *slot.borrow_mut() = Some(value);
            Ok(JsValue::UNDEFINED)
        })
    });
    let held = JsFuture::from(with_lock(name, run.as_ref().unchecked_ref())).await;
    drop(run);
    match held {
        Ok(v) if v.is_truthy() => out.borrow_mut().take(),
        _ => None,
    }
}

const CHANNEL: &str = "lamina-changes";

thread_local! {
    /// This tab's id: a tab's own channel objects hear its messages too, and must ignore them.
    static TAB: String = super::new_id();
}

/// Tells the other tabs that this one changed project `project_id` in storage.
pub fn announce_change(project_id: &str) {
    if let Ok(channel) = web_sys::BroadcastChannel::new(CHANNEL) {
        let message = TAB.with(|tab| format!("{tab} {project_id}"));
        let _ = channel.post_message(&JsValue::from_str(&message));
        channel.close();
    }
}

/// Calls `on_change` with the project id whenever another tab announces a change (for the page's life).
pub fn on_change_elsewhere(on_change: impl Fn(String) + 'static) {
    let Ok(channel) = web_sys::BroadcastChannel::new(CHANNEL) else {
        return;
    };
    let handler = Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
        let Some(message) = e.data().as_string() else {
            return;
        };
        let from_elsewhere = TAB.with(|tab| {
            message
                .split_once(' ')
                .filter(|(sender, _)| sender != tab)
                .map(|(_, project)| project.to_owned())
        });
        if let Some(project_id) = from_elsewhere {
            on_change(project_id);
        }
    });
    channel.set_onmessage(Some(handler.as_ref().unchecked_ref()));
    handler.forget();
    // The channel lives as long as the page: dropping it here would stop the messages.
    std::mem::forget(channel);
}
