//! Edits built from what the user did with a tool (a stroke, a polygon, a re-class, a delete), then
//! committed through [`super::commit`].

use lamina_core::edit::{add_instance, erase, paint_into, Edit};
use lamina_core::labels::{Prompt, Tool};
use lamina_core::mask::Mask;
use lamina_core::polygon::rasterize_polygon;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{commit, new_instance};
use crate::browser::now;
use crate::state::AppState;

/// A new instance of the current class from `mask_image`, added on top and selected.
pub fn add_new(state: AppState, mask_image: Mask, tool: Tool, prompts: Vec<Prompt>) {
    if mask_image.is_empty() {
        return;
    }
    let Some(inst) = new_instance(state, &mask_image, tool, prompts, None) else {
        return;
    };
    let new_id = inst.id.clone();
    match add_instance(&state.instances.get_untracked(), inst) {
        Ok(edit) => spawn_local(async move {
            commit(state, edit).await;
            state.selected.set(Some(new_id));
        }),
        Err(e) => state.error(format!("A stored mask is damaged: {e}")),
    }
}

/// Closes the polygon being drawn into an instance.
pub fn finish_polygon(state: AppState) {
    let points = state.polygon_image.get_untracked();
    state.polygon_image.set(Vec::new());
    let Some(record) = state.current_record_now() else {
        return;
    };
    if points.len() < 3 {
        return;
    }
    let mask = rasterize_polygon(&points, record.asset.width, record.asset.height);
    add_new(state, mask, Tool::Polygon, vec![Prompt::Polygon { points }]);
}

/// A brush or eraser stroke through `points_image` (image pixels): paints into the selected instance or
/// a new one, or erases from the selected one (or from all).
pub fn finish_stroke(state: AppState, points_image: &[[f64; 2]], erasing: bool) {
    let Some(record) = state.current_record_now() else {
        return;
    };
    let radius = state.brush_radius.get_untracked();
    let mut stroke = Mask::new(record.asset.width, record.asset.height);
    match points_image {
        [] => return,
        [p] => stroke.paint_disc(p[0], p[1], radius, true),
        _ => {
            for pair in points_image.windows(2) {
                stroke.paint_stroke(pair[0], pair[1], radius, true);
            }
        }
    }
    let instances = state.instances.get_untracked();
    let selected = state.selected.get_untracked();
    let t = now();
    let edit = if erasing {
        erase(&instances, selected.as_deref(), &stroke, &t)
    } else if let Some(id) = selected.filter(|id| instances.iter().any(|i| &i.id == id)) {
        paint_into(&instances, &id, &stroke, &t)
    } else {
        return add_new(state, stroke, Tool::Brush, Vec::new());
    };
    match edit {
        Ok(edit) => spawn_local(commit(state, edit)),
        Err(e) => state.error(format!("A stored mask is damaged: {e}")),
    }
}

/// The selected instance of the current image, if any.
fn selected_instance(state: AppState) -> Option<lamina_core::labels::Instance> {
    let id = state.selected.get_untracked()?;
    state
        .instances
        .with_untracked(|l| l.iter().find(|i| i.id == id).cloned())
}

/// Re-classes the selected instance (one undoable edit).
pub fn reclass_selected(state: AppState, class_id: String) {
    let Some(inst) = selected_instance(state) else {
        return;
    };
    if inst.class_id == class_id {
        return;
    }
    // Re-classing a pre-label is a person's judgement of it: it is theirs from then on.
    let mut changed = lamina_core::prelabel::accepted(&inst, None, &now());
    changed.class_id = class_id;
    changed.provenance.updated = now();
    spawn_local(commit(
        state,
        Edit {
            removed: vec![inst],
            added: vec![changed],
        },
    ));
}

pub fn delete_selected(state: AppState) {
    let Some(inst) = selected_instance(state) else {
        return;
    };
    spawn_local(commit(
        state,
        Edit {
            removed: vec![inst],
            added: vec![],
        },
    ));
}

/// Picks class `index` (0-based, keys 1-9): the class for new labels, and for the selection.
pub fn pick_class(state: AppState, index: usize) {
    if let Some(class) = state.ontology_now().classes.get(index) {
        state.class_id.set(class.id.clone());
        reclass_selected(state, class.id.clone());
    }
}
