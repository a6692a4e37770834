//! What the suggestion tool draws: the preview or working mask on its own canvas layer (image pixels, so
//! the stage's CSS transform places it like the others), its prompts, the encoding overlay, and the panel
//! with the tool's status.

use lamina_core::labels::parse_hex_color;
use lamina_core::suggest::mask_sprite;
use leptos::prelude::*;
use wasm_bindgen::Clamped;
use web_sys::{HtmlCanvasElement, ImageData};

use crate::browser::now_ms;
use crate::state::model::EmbeddingStatus;
use crate::state::{AppState, ToolKind};

const PREVIEW_FILL_ALPHA: u8 = 70;
const WORKING_FILL_ALPHA: u8 = 130;
/// Prompt markers keep this radius on screen whatever the zoom.
const POINT_RADIUS_SCREEN_PX: f64 = 5.0;

/// Redraws the layer; tracks the session, both masks, `scale` (the zoom, which sizes the prompt markers;
/// a memo, so panning redraws nothing) and the class colour.
pub fn draw_suggestions(
    canvas: &HtmlCanvasElement,
    state: &AppState,
    scale: Memo<f64>,
    w: u32,
    h: u32,
) {
    let s = state.suggest;
    let session = s.session.get();
    let working = s.working.get();
    let preview = s.preview.get();
    let scale = scale.get();
    let colour = state
        .ontology()
        .class(&state.class_id.get())
        .and_then(|c| parse_hex_color(&c.color))
        .unwrap_or((0, 229, 255));
    if canvas.width() != w || canvas.height() != h {
        canvas.set_width(w);
        canvas.set_height(h);
    }
    let Some(ctx) = super::context_2d(canvas) else {
        return;
    };
    ctx.clear_rect(0.0, 0.0, f64::from(w), f64::from(h));
    let shown = match (&working, &preview) {
        (Some(m), _) => Some((m, WORKING_FILL_ALPHA)),
        (None, Some(m)) => Some((m, PREVIEW_FILL_ALPHA)),
        (None, None) => None,
    };
    if let Some(sprite) = shown.and_then(|(m, alpha)| mask_sprite(&m.mask_image, colour, alpha)) {
        let [x, y, bw, bh] = sprite.bbox_image;
        if let Ok(data) = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&sprite.rgba), bw, bh)
        {
            let _ = ctx.put_image_data(&data, f64::from(x), f64::from(y));
        }
    }
    let line = 1.5 / scale;
    if let Some([x0, y0, x1, y1]) = session.box_image() {
        ctx.set_stroke_style_str("#ffffff");
        ctx.set_line_width(line);
        ctx.stroke_rect(x0, y0, x1 - x0, y1 - y0);
    }
    for p in session.points() {
        ctx.begin_path();
        let _ = ctx.arc(
            p.x_image,
            p.y_image,
            POINT_RADIUS_SCREEN_PX / scale,
            0.0,
            std::f64::consts::TAU,
        );
        ctx.set_fill_style_str(if p.positive { "#19c37d" } else { "#ef4444" });
        ctx.fill();
        ctx.set_stroke_style_str("#ffffff");
        ctx.set_line_width(line);
        ctx.stroke();
    }
    // The mask of an answer is now on the canvas: that ends the latency the user waited for.
    if let Some(event_ms) = s.drawn_for.try_update_value(Option::take).flatten() {
        let drawn_at_ms = now_ms();
        s.timing.update(|t| {
            t.seq += 1;
            t.last_ms = drawn_at_ms - event_ms;
            t.drawn_at_ms = drawn_at_ms;
        });
    }
}

/// "Encoding…" over the image while its embedding is computed; suggestions work once it is gone.
#[component]
pub fn EncodingOverlay(state: AppState) -> impl IntoView {
    let encoding = move || {
        let current = state.current_record().map(|r| r.asset.id);
        matches!(state.embedding.get(), EmbeddingStatus::Encoding(id) if current.as_ref() == Some(&id))
    };
    view! {
        <Show when=encoding>
            <div class="encoding" data-testid="encoding-overlay">
                <span>"Preparing suggestions: encoding this image on your device…"</span>
                <div class="bar"><div></div></div>
            </div>
        </Show>
    }
}

/// Tool help, quick-commit and the last suggestion's latency (shown only with the suggestion tool).
#[component]
pub fn SuggestPanel(state: AppState) -> impl IntoView {
    let s = state.suggest;
    let status = move || {
        let t = s.timing.get();
        let iou = s
            .working
            .get()
            .or_else(|| s.preview.get())
            .map(|m| format!(" · predicted IoU {:.2}", m.iou))
            .unwrap_or_default();
        if t.seq == 0 {
            "no suggestion yet".to_string()
        } else {
            format!(
                "suggestion in {:.0} ms (model {:.0} ms){iou}",
                t.last_ms, t.decode_ms
            )
        }
    };
    let prompts = move || {
        s.session.with(|session| {
            let include = session.points().iter().filter(|p| p.positive).count();
            let exclude = session.points().len() - include;
            let n = include + exclude + usize::from(session.box_image().is_some());
            let mut parts = Vec::new();
            if session.box_image().is_some() {
                parts.push("a box".to_string());
            }
            if include > 0 {
                parts.push(format!("{include} include"));
            }
            if exclude > 0 {
                parts.push(format!("{exclude} exclude"));
            }
            match n {
                0 => "no prompts".to_string(),
                1 => format!("1 prompt: {}", parts.join(", ")),
                _ => format!("{n} prompts: {}", parts.join(", ")),
            }
        })
    };
    view! {
        <Show when=move || state.tool.get() == ToolKind::Suggest>
            <div class="suggest-panel">
                <p class="hint">"Hover to preview · click to add · Alt/right-click to exclude · drag a box · Enter accept · Esc cancel · Ctrl+Z last prompt"</p>
                <label>
                    <input type="checkbox" data-testid="quick-commit"
                        prop:checked=move || s.quick_commit.get()
                        on:change=move |ev| s.quick_commit.set(event_target_checked(&ev))/>
                    " Accept on click"
                </label>
                <p class="model-status" data-testid="suggest-prompts">{prompts}</p>
                <p class="model-status" data-testid="suggest-status"
                    data-seq=move || s.timing.get().seq.to_string()
                    data-ms=move || format!("{:.2}", s.timing.get().last_ms)
                    data-drawn-at=move || format!("{:.2}", s.timing.get().drawn_at_ms)
                    data-queued=move || format!("{:.2}", s.timing.get().queued_ms)
                    data-round-trip=move || format!("{:.2}", s.timing.get().round_trip_ms)
                    data-decode=move || format!("{:.2}", s.timing.get().decode_ms)
                >{status}</p>
            </div>
        </Show>
    }
}
