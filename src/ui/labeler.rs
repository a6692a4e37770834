//! The labeling view: the image and two canvas layers at image resolution (all instances; the stroke or
//! shape being drawn), placed by one CSS transform, so zoom and pan redraw nothing.

use lamina_core::edit::instance_at;
use lamina_core::labels::{Instance, Ontology};
use lamina_core::labels::{Prompt, Tool};
use lamina_core::mask::Mask;
use lamina_core::overlay::{changed_region, clip_region, compose_overlay_region_rgba};
use lamina_core::review::IssueCategory;
use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::{Clamped, JsValue};
use web_sys::{HtmlCanvasElement, ImageData, PointerEvent, WheelEvent};

use crate::editing::builders::{add_new, finish_polygon, finish_stroke};
use crate::features::suggest;
use crate::state::review::DraftIssue;
use crate::state::{AppState, ScreenFromImage, ToolKind};
use crate::ui::suggest_layer::{draw_suggestions, EncodingOverlay};

/// A pointer gesture in progress, in image pixels (screen pixels for panning).
#[derive(Clone, Debug)]
enum Drag {
    Stroke {
        points_image: Vec<[f64; 2]>,
    },
    Box {
        start_image: [f64; 2],
        end_image: [f64; 2],
    },
    Pan {
        last_screen: [f64; 2],
    },
    /// The suggestion tool: a click, or a box once the pointer moved far enough.
    Suggest {
        start_image: [f64; 2],
        end_image: [f64; 2],
        start_screen: [f64; 2],
        moved_screen: f64,
        positive: bool,
    },
}

/// Screen distance a press must travel before the suggestion tool treats it as a box, not a click.
const BOX_DRAG_SCREEN_PX: f64 = 4.0;

/// What the instance layer shows, so the next redraw can be limited to what changed.
struct ShownLayer {
    canvas: HtmlCanvasElement,
    size: (u32, u32),
    instances: Vec<Instance>,
    selected: Option<String>,
    ontology: Ontology,
}

/// Screen distance under which a click closes the polygon on its first vertex.
const CLOSE_POLYGON_SCREEN_PX: f64 = 8.0;

fn class_colour(state: &AppState) -> String {
    let id = state.class_id.get_untracked();
    state
        .ontology_now()
        .class(&id)
        .map(|c| c.color.clone())
        .unwrap_or_else(|| "#00e5ff".into())
}

fn draw_draft(canvas: &HtmlCanvasElement, state: &AppState, drag: Option<&Drag>) {
    let Some(ctx) = super::context_2d(canvas) else {
        return;
    };
    ctx.clear_rect(
        0.0,
        0.0,
        f64::from(canvas.width()),
        f64::from(canvas.height()),
    );
    let colour = class_colour(state);
    ctx.set_stroke_style_str(&colour);
    ctx.set_fill_style_str(&colour);
    match drag {
        Some(Drag::Stroke { points_image }) => {
            let erasing = state.tool.get_untracked() == ToolKind::Eraser;
            ctx.set_stroke_style_str(if erasing {
                "rgba(255,255,255,0.7)"
            } else {
                &colour
            });
            ctx.set_global_alpha(0.6);
            ctx.set_line_width(state.brush_radius.get_untracked() * 2.0);
            ctx.set_line_cap("round");
            ctx.set_line_join("round");
            ctx.begin_path();
            for (i, p) in points_image.iter().enumerate() {
                if i == 0 {
                    ctx.move_to(p[0], p[1]);
                }
                ctx.line_to(p[0] + 0.01, p[1]);
            }
            ctx.stroke();
        }
        Some(Drag::Box {
            start_image,
            end_image,
        })
        | Some(Drag::Suggest {
            start_image,
            end_image,
            ..
        }) => {
            ctx.set_global_alpha(1.0);
            ctx.set_line_width(1.0);
            ctx.stroke_rect(
                start_image[0],
                start_image[1],
                end_image[0] - start_image[0],
                end_image[1] - start_image[1],
            );
        }
        _ => {}
    }
    let polygon = state.polygon_image.get_untracked();
    if !polygon.is_empty() {
        ctx.set_global_alpha(1.0);
        ctx.set_line_width(1.0);
        ctx.begin_path();
        for p in &polygon {
            ctx.line_to(p[0], p[1]);
        }
        ctx.stroke();
        for p in &polygon {
            ctx.fill_rect(p[0] - 1.0, p[1] - 1.0, 2.0, 2.0);
        }
    }
    ctx.set_global_alpha(1.0);
}

/// Pins a draft issue at a point of the image (on the instance there, if any); outside the image, nothing.
fn pin_issue(state: AppState, point_image: [f64; 2]) {
    let Some(record) = state.current_record_now() else {
        return;
    };
    let [x, y] = point_image;
    if !(0.0..=f64::from(record.asset.width)).contains(&x)
        || !(0.0..=f64::from(record.asset.height)).contains(&y)
    {
        return state.error("pin the issue on the image");
    }
    let instance_id = state
        .instances
        .with_untracked(|list| instance_at(list, x, y).map(|i| i.id.clone()));
    let category = if instance_id.is_some() {
        IssueCategory::BadBoundary
    } else {
        IssueCategory::MissedNucleus
    };
    state.review.drafts.update(|d| {
        d.push(DraftIssue {
            id: crate::browser::new_id(),
            pinned_at: crate::browser::now(),
            point_image,
            instance_id,
            category,
            comment: String::new(),
        })
    });
}

#[component]
pub fn Labeler(state: AppState) -> impl IntoView {
    let viewport = NodeRef::<html::Div>::new();
    let overlay = NodeRef::<html::Canvas>::new();
    let draft = NodeRef::<html::Canvas>::new();
    let suggest_canvas = NodeRef::<html::Canvas>::new();
    let drag: StoredValue<Option<Drag>> = StoredValue::new(None);

    let size = move || {
        state
            .current_record()
            .map(|r| (r.asset.width, r.asset.height))
    };
    let fit_view = move || {
        if let (Some(vp), Some((w, h))) = (
            viewport.get_untracked(),
            size().filter(|&(w, h)| w > 0 && h > 0),
        ) {
            let rect = vp.get_bounding_client_rect();
            state.view.set(ScreenFromImage::fit(
                rect.width(),
                rect.height(),
                f64::from(w),
                f64::from(h),
            ));
        }
    };

    // Refit when another image opens, or when its size becomes known (a synced batch's image is fetched
    // after its record is shown).
    Effect::new(move |prev: Option<Option<(String, u32, u32)>>| {
        let id = state
            .current_record()
            .map(|r| (r.asset.id, r.asset.width, r.asset.height));
        if prev.as_ref() != Some(&id) {
            fit_view();
            suggest::cancel(state);
        }
        id
    });

    // Redraw the instance layer when labels, selection or class colours change: only the area an edit
    // touched, unless the image, its canvas or the colours changed.
    Effect::new(move |prev: Option<Option<ShownLayer>>| {
        let instances = state.instances.get();
        let selected = state.selected.get();
        let ontology = state.ontology();
        let (Some(canvas), Some((w, h))) = (overlay.get(), size()) else {
            return None;
        };
        let mut full = true;
        if canvas.width() != w || canvas.height() != h {
            canvas.set_width(w);
            canvas.set_height(h);
        } else if let Some(Some(p)) = &prev {
            let same_canvas = JsValue::from(&p.canvas) == JsValue::from(&canvas);
            full = !same_canvas || p.ontology != ontology || p.size != (w, h);
        }
        let region = if full {
            Some([0, 0, w, h])
        } else {
            prev.as_ref().and_then(Option::as_ref).and_then(|p| {
                changed_region(
                    &p.instances,
                    &instances,
                    p.selected.as_deref(),
                    selected.as_deref(),
                )
            })
        };
        let colour = |i: &lamina_core::labels::Instance| {
            ontology.class(&i.class_id).map(|c| c.color.as_str())
        };
        if let (Some(ctx), Some(region)) = (super::context_2d(&canvas), region) {
            match compose_overlay_region_rgba(w, h, &instances, colour, selected.as_deref(), region)
            {
                Ok(rgba) => {
                    let [x, y, rw, rh] = clip_region(region, w, h);
                    if rw > 0 && rh > 0 {
                        if let Ok(data) =
                            ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), rw, rh)
                        {
                            let _ = ctx.put_image_data(&data, f64::from(x), f64::from(y));
                        }
                    }
                }
                Err(e) => state.error(format!("a stored mask is damaged: {e}")),
            }
        }
        Some(ShownLayer {
            canvas,
            size: (w, h),
            instances,
            selected,
            ontology,
        })
    });

    // The draft layer follows the image size and the polygon being drawn.
    Effect::new(move |_| {
        state.polygon_image.track();
        let (Some(canvas), Some((w, h))) = (draft.get(), size()) else {
            return;
        };
        if canvas.width() != w || canvas.height() != h {
            canvas.set_width(w);
            canvas.set_height(h);
        }
        drag.with_value(|d| draw_draft(&canvas, &state, d.as_ref()));
    });

    // Leaving the suggestion tool drops its session.
    Effect::new(move |_| {
        if state.tool.get() != ToolKind::Suggest {
            suggest::cancel(state);
        }
    });

    // The suggestion layer: preview or working mask, its prompts, and the latency of what was drawn.
    let scale = Memo::new(move |_| state.view.get().scale);
    Effect::new(move |_| {
        let (Some(canvas), Some((w, h))) = (suggest_canvas.get(), size()) else {
            return;
        };
        draw_suggestions(&canvas, &state, scale, w, h);
    });

    let screen_of = move |ev: &PointerEvent| -> [f64; 2] {
        let rect = viewport
            .get_untracked()
            .map(|v| v.get_bounding_client_rect());
        let (left, top) = rect.map(|r| (r.left(), r.top())).unwrap_or((0.0, 0.0));
        [
            f64::from(ev.client_x()) - left,
            f64::from(ev.client_y()) - top,
        ]
    };
    let image_of = move |ev: &PointerEvent| {
        let s = screen_of(ev);
        state.view.get_untracked().image_from_screen(s[0], s[1])
    };
    let redraw_draft = move || {
        if let Some(canvas) = draft.get_untracked() {
            drag.with_value(|d| draw_draft(&canvas, &state, d.as_ref()));
        }
    };

    let on_down = move |ev: PointerEvent| {
        if state.current_record_now().is_none() {
            return;
        }
        if let Some(vp) = viewport.get_untracked() {
            let _ = vp.set_pointer_capture(ev.pointer_id());
        }
        let p = image_of(&ev);
        if state.review.pin_mode.get_untracked() && ev.button() == 0 {
            pin_issue(state, p);
            return;
        }
        let panning = ev.button() == 1 || state.tool.get_untracked() == ToolKind::Pan;
        let new_drag = if panning {
            Some(Drag::Pan {
                last_screen: screen_of(&ev),
            })
        } else {
            match state.tool.get_untracked() {
                ToolKind::Brush | ToolKind::Eraser => Some(Drag::Stroke {
                    points_image: vec![p],
                }),
                ToolKind::Box => Some(Drag::Box {
                    start_image: p,
                    end_image: p,
                }),
                ToolKind::Select => {
                    let hit = state
                        .instances
                        .with_untracked(|list| instance_at(list, p[0], p[1]).map(|i| i.id.clone()));
                    state.selected.set(hit);
                    None
                }
                ToolKind::Polygon => {
                    let points = state.polygon_image.get_untracked();
                    let scale = state.view.get_untracked().scale;
                    let closes = points.len() >= 3
                        && points.first().is_some_and(|f| {
                            ((f[0] - p[0]).hypot(f[1] - p[1])) * scale < CLOSE_POLYGON_SCREEN_PX
                        });
                    if closes {
                        finish_polygon(state);
                    } else {
                        state.polygon_image.update(|pts| pts.push(p));
                    }
                    None
                }
                ToolKind::Suggest => Some(Drag::Suggest {
                    start_image: p,
                    end_image: p,
                    start_screen: screen_of(&ev),
                    moved_screen: 0.0,
                    positive: ev.button() != 2 && !ev.alt_key(),
                }),
                ToolKind::Pan => None,
            }
        };
        drag.set_value(new_drag);
        redraw_draft();
    };

    let on_move = move |ev: PointerEvent| {
        let p = image_of(&ev);
        let s = screen_of(&ev);
        let mut pan_by = None;
        drag.update_value(|d| match d {
            Some(Drag::Stroke { points_image }) => points_image.push(p),
            Some(Drag::Box { end_image, .. }) => *end_image = p,
            Some(Drag::Pan { last_screen }) => {
                pan_by = Some([s[0] - last_screen[0], s[1] - last_screen[1]]);
                *last_screen = s;
            }
            Some(Drag::Suggest {
                start_screen,
                end_image,
                moved_screen,
                ..
            }) => {
                *moved_screen =
                    moved_screen.max((s[0] - start_screen[0]).hypot(s[1] - start_screen[1]));
                if *moved_screen >= BOX_DRAG_SCREEN_PX {
                    *end_image = p;
                }
            }
            None => {}
        });
        if drag.with_value(Option::is_none) && state.tool.get_untracked() == ToolKind::Suggest {
            suggest::hover(state, p, ev.time_stamp());
        }
        if let Some([dx, dy]) = pan_by {
            state.view.update(|v| {
                v.tx += dx;
                v.ty += dy;
            });
        } else if drag.with_value(Option::is_some) {
            redraw_draft();
        }
    };

    let on_up = move |ev: PointerEvent| {
        let finished = drag.try_update_value(Option::take).flatten();
        match finished {
            Some(Drag::Stroke { points_image }) => finish_stroke(
                state,
                &points_image,
                state.tool.get_untracked() == ToolKind::Eraser,
            ),
            Some(Drag::Box {
                start_image,
                end_image,
            }) => {
                if let Some(record) = state.current_record_now() {
                    let mut m = Mask::new(record.asset.width, record.asset.height);
                    m.fill_rect(
                        start_image[0],
                        start_image[1],
                        end_image[0],
                        end_image[1],
                        true,
                    );
                    let prompt = Prompt::Box {
                        x0: start_image[0],
                        y0: start_image[1],
                        x1: end_image[0],
                        y1: end_image[1],
                    };
                    add_new(state, m, Tool::Box, vec![prompt]);
                }
            }
            Some(Drag::Suggest {
                start_image,
                end_image,
                moved_screen,
                positive,
                ..
            }) => {
                if moved_screen < BOX_DRAG_SCREEN_PX {
                    suggest::click(state, start_image, positive, ev.time_stamp());
                } else {
                    suggest::drag_box(state, start_image, end_image, ev.time_stamp());
                }
            }
            Some(Drag::Pan { .. }) | None => {}
        }
        redraw_draft();
    };

    let on_wheel = move |ev: WheelEvent| {
        ev.prevent_default();
        let rect = viewport
            .get_untracked()
            .map(|v| v.get_bounding_client_rect());
        let (left, top) = rect.map(|r| (r.left(), r.top())).unwrap_or((0.0, 0.0));
        let (sx, sy) = (
            f64::from(ev.client_x()) - left,
            f64::from(ev.client_y()) - top,
        );
        state
            .view
            .update(|v| *v = v.zoomed_at(sx, sy, ev.delta_y()));
    };

    let stage_style = move || {
        let v = state.view.get();
        let (w, h) = size().unwrap_or((0, 0));
        format!(
            "width:{w}px;height:{h}px;transform:translate({}px,{}px) scale({});",
            v.tx, v.ty, v.scale
        )
    };
    let cursor = move || match state.tool.get() {
        ToolKind::Pan => "grab",
        ToolKind::Select => "default",
        _ => "crosshair",
    };

    view! {
        <div
            class="viewport"
            data-testid="viewport"
            node_ref=viewport
            style:cursor=cursor
            on:pointerdown=on_down
            on:pointermove=on_move
            on:pointerup=on_up
            on:pointercancel=on_up
            on:pointerleave=move |_| suggest::leave(state)
            on:wheel=on_wheel
            on:contextmenu=|ev| ev.prevent_default()
            on:dblclick=move |_| {
                if state.tool.get_untracked() == ToolKind::Polygon {
                    finish_polygon(state)
                }
            }
        >
            <Show
                when=move || state.image_url.get().is_some()
                fallback=|| view! {
                    <div class="empty">
                        <p>"Drop images or a folder here, or use "<b>"Add images"</b>" above."</p>
                        <p>"PNG, JPEG and TIFF; nothing leaves this device."</p>
                    </div>
                }
            >
                <div class="stage" style=stage_style>
                    <img src=move || state.image_url.get().unwrap_or_default() draggable="false" alt="" data-testid="image"/>
                    <canvas node_ref=overlay data-testid="overlay"></canvas>
                    <canvas node_ref=suggest_canvas class="suggest" data-testid="suggest-layer"></canvas>
                    <canvas node_ref=draft class="draft"></canvas>
                    <crate::ui::review::Pins state=state/>
                </div>
                <EncodingOverlay state=state/>
            </Show>
        </div>
    }
}
