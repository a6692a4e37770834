//! An element's size as the browser lays it out, reported by a `ResizeObserver` after layout: reading
//! `clientWidth` while the page is being built forces a layout of everything pending (half a second with
//! 10,000 images in the page), the observer never does.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Element, ResizeObserver, ResizeObserverEntry};

/// Watches one element; stops when dropped.
pub struct SizeWatch {
    observer: ResizeObserver,
    _callback: Closure<dyn FnMut(js_sys::Array)>,
}

impl SizeWatch {
    /// Calls `on_size(width, height)` in CSS px with the element's content box, once it is laid out and
    /// after every change.
    pub fn new(
        element: &Element,
        mut on_size: impl FnMut(f64, f64) + 'static,
    ) -> Option<SizeWatch> {
        let callback = Closure::<dyn FnMut(js_sys::Array)>::new(move |entries: js_sys::Array| {
            if let Some(entry) = entries
                .iter()
                .last()
                .and_then(|e| e.dyn_into::<ResizeObserverEntry>().ok())
            {
                let rect = entry.content_rect();
                on_size(rect.width(), rect.height());
            }
        });
        let observer = ResizeObserver::new(callback.as_ref().unchecked_ref()).ok()?;
        observer.observe(element);
        Some(SizeWatch {
            observer,
            _callback: callback,
        })
    }
}

impl Drop for SizeWatch {
    fn drop(&mut self) {
        self.observer.disconnect();
    }
}
