//! Edits to the instances of one image, as undoable values.
//!
//! Every user action becomes one [`Edit`]: the instances it removes and the ones it adds (a reshaped
//! instance is removed and added again under the same id). The store writes an edit in one transaction,
//! and undo applies its inverse, so what is on screen, what is stored and what undo restores cannot drift.
//!
//! Overlap rule: **one label per pixel, newest paint wins.** Painting or adding an instance carves its
//! pixels out of every other instance on the image; an instance carved to nothing is removed. This matches
//! the nuclei data we label (overlaps resolved to one nucleus) and keeps COCO exports non-overlapping.
//! The one exception is an accepted segment suggestion ([`add_suggestion`]): it takes only unlabeled
//! pixels, because a model's spill-over must not eat a neighbour the user already accepted or fixed.

use crate::labels::{Instance, Provenance, Tool};
use crate::mask::Mask;
use crate::rle::{Rle, RleError};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Edit {
    pub removed: Vec<Instance>,
    pub added: Vec<Instance>,
}

impl Edit {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }

    pub fn inverse(&self) -> Edit {
        Edit {
            removed: self.added.clone(),
            added: self.removed.clone(),
        }
    }

    /// Applies the edit to an image's instance list, keeping the order of untouched instances and putting
    /// new or reshaped ones on top (last drawn, first hit).
    pub fn apply(&self, instances: &mut Vec<Instance>) {
        instances.retain(|i| !self.removed.iter().any(|r| r.id == i.id));
        instances.extend(self.added.iter().cloned());
    }

    /// Ids the store must delete: removed and not added back.
    pub fn deleted_ids(&self) -> impl Iterator<Item = &str> {
        self.removed
            .iter()
            .filter(|r| !self.added.iter().any(|a| a.id == r.id))
            .map(|r| r.id.as_str())
    }
}

/// Undo and redo stacks for one image.
#[derive(Clone, Debug, Default)]
pub struct History {
    undo: Vec<Edit>,
    redo: Vec<Edit>,
}

impl History {
    /// Records a done edit; a new edit forgets what could be redone.
    pub fn record(&mut self, edit: Edit) {
        if !edit.is_empty() {
            self.undo.push(edit);
            self.redo.clear();
        }
    }

    /// The edit that undoes the last one, to be applied by the caller; call [`History::undone`] once it is
    /// stored, so a failed write leaves the history as it was.
    pub fn peek_undo(&self) -> Option<Edit> {
        self.undo.last().map(Edit::inverse)
    }

    pub fn undone(&mut self) {
        if let Some(e) = self.undo.pop() {
            self.redo.push(e);
        }
    }

    pub fn peek_redo(&self) -> Option<Edit> {
        self.redo.last().cloned()
    }

    pub fn redone(&mut self) {
        if let Some(e) = self.redo.pop() {
            self.undo.push(e);
        }
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }
}

/// An instance whose RLE, bbox and area all come from `mask_image`.
pub fn instance_from_mask(
    id: String,
    asset_id: String,
    class_id: String,
    mask_image: &Mask,
    provenance: Provenance,
) -> Instance {
    let rle = Rle::from_mask(mask_image);
    Instance {
        id,
        asset_id,
        class_id,
        bbox: rle.bbox(),
        area: rle.area(),
        mask: rle.compress(),
        provenance,
        status: Default::default(),
    }
}

pub fn decode_mask(instance: &Instance) -> Result<Mask, RleError> {
    Ok(Rle::decompress(&instance.mask)?.to_mask())
}

/// Reshapes `instance` to `mask_image`, keeping id and class and stamping `updated`.
fn reshaped(instance: &Instance, mask_image: &Mask, updated: &str) -> Instance {
    let mut provenance = instance.provenance.clone();
    provenance.updated = updated.to_owned();
    let mut out = instance_from_mask(
        instance.id.clone(),
        instance.asset_id.clone(),
        instance.class_id.clone(),
        mask_image,
        provenance,
    );
    out.status = instance.status;
    out
}

fn boxes_overlap(a: [u32; 4], b: [u32; 4]) -> bool {
    let [ax, ay, aw, ah] = a.map(u64::from);
    let [bx, by, bw, bh] = b.map(u64::from);
    aw > 0 && bw > 0 && ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah
}

/// Carves `paint_image` out of every instance except `keep_id`; only instances whose boxes touch the paint
/// are decoded, so the cost follows the stroke, not the number of instances on the image.
fn carve_others(
    instances: &[Instance],
    keep_id: Option<&str>,
    paint_image: &Mask,
    updated: &str,
    edit: &mut Edit,
) -> Result<(), RleError> {
    let paint_bbox = paint_image.bbox();
    for other in instances.iter().filter(|i| Some(i.id.as_str()) != keep_id) {
        if !boxes_overlap(other.bbox, paint_bbox) {
            continue;
        }
        let mut m = decode_mask(other)?;
        let before = m.area();
        if m.subtract(paint_image).is_err() || m.area() == before {
            continue;
        }
        edit.removed.push(other.clone());
        if !m.is_empty() {
            edit.added.push(reshaped(other, &m, updated));
        }
    }
    Ok(())
}

/// Adds `new_instance` on top, carving its pixels out of the others.
pub fn add_instance(instances: &[Instance], new_instance: Instance) -> Result<Edit, RleError> {
    let m = decode_mask(&new_instance)?;
    let mut edit = Edit::default();
    carve_others(
        instances,
        None,
        &m,
        &new_instance.provenance.updated,
        &mut edit,
    )?;
    edit.added.push(new_instance);
    Ok(edit)
}

/// Adds an accepted segment suggestion, which yields to what is already labeled: it takes only unlabeled
/// pixels. A model's mask often spills over a neighbour the user has accepted or fixed by hand, and a
/// suggestion must not eat that work; the brush (a deliberate act) still paints over others. `None` when
/// nothing is left, i.e. the suggestion lies entirely on existing labels.
pub fn add_suggestion(
    instances: &[Instance],
    mut new_instance: Instance,
) -> Result<Option<Edit>, RleError> {
    let mut m = decode_mask(&new_instance)?;
    for other in instances {
        if boxes_overlap(other.bbox, new_instance.bbox) {
            // A mask of another size cannot overlap this image's pixels.
            let _ = m.subtract(&decode_mask(other)?);
        }
    }
    if m.is_empty() {
        return Ok(None);
    }
    let rle = Rle::from_mask(&m);
    new_instance.bbox = rle.bbox();
    new_instance.area = rle.area();
    new_instance.mask = rle.compress();
    Ok(Some(Edit {
        removed: Vec::new(),
        added: vec![new_instance],
    }))
}

/// Paints `stroke_image` into the instance `target_id` (brush on a selected instance).
pub fn paint_into(
    instances: &[Instance],
    target_id: &str,
    stroke_image: &Mask,
    updated: &str,
) -> Result<Edit, RleError> {
    let Some(target) = instances.iter().find(|i| i.id == target_id) else {
        return Ok(Edit::default());
    };
    let mut m = decode_mask(target)?;
    if m.union_with(stroke_image).is_err() {
        return Ok(Edit::default());
    }
    let mut edit = Edit::default();
    carve_others(instances, Some(target_id), stroke_image, updated, &mut edit)?;
    edit.removed.push(target.clone());
    edit.added.push(by_hand(reshaped(target, &m, updated)));
    Ok(edit)
}

/// A pending pre-label a person reshapes on purpose (brush or eraser on it, selected) is theirs from
/// then on; one merely carved by paint elsewhere stays pending.
fn by_hand(mut instance: Instance) -> Instance {
    if instance.provenance.tool == Tool::PreLabel {
        instance.provenance.tool = Tool::PreLabelAccepted;
    }
    instance
}

/// Erases `stroke_image` from `only_id` if given (a selected instance), else from every instance it
/// touches.
pub fn erase(
    instances: &[Instance],
    only_id: Option<&str>,
    stroke_image: &Mask,
    updated: &str,
) -> Result<Edit, RleError> {
    let mut edit = Edit::default();
    let targets: Vec<Instance> = instances
        .iter()
        .filter(|i| only_id.is_none_or(|id| i.id == id))
        .cloned()
        .collect();
    // Erasing is carving with nothing kept.
    carve_others(&targets, None, stroke_image, updated, &mut edit)?;
    if only_id.is_some() {
        edit.added = edit.added.into_iter().map(by_hand).collect();
    }
    Ok(edit)
}

/// The topmost instance under an image pixel (last drawn wins), for selection.
pub fn instance_at(instances: &[Instance], x_image: f64, y_image: f64) -> Option<&Instance> {
    if x_image < 0.0 || y_image < 0.0 {
        return None;
    }
    let (x, y) = (x_image.floor() as u32, y_image.floor() as u32);
    instances.iter().rev().find(|i| {
        let [bx, by, bw, bh] = i.bbox;
        x >= bx
            && y >= by
            && x < bx + bw
            && y < by + bh
            && decode_mask(i).is_ok_and(|m| m.get(x, y))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Tool;

    fn prov() -> Provenance {
        Provenance {
            tool: Tool::Brush,
            prompts: vec![],
            model_id: None,
            author: None,
            created: "t0".into(),
            updated: "t0".into(),
            score: None,
        }
    }

    fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Mask {
        let mut m = Mask::new(32, 32);
        m.fill_rect(x0, y0, x1, y1, true);
        m
    }

    fn inst(id: &str, m: &Mask) -> Instance {
        instance_from_mask(id.into(), "a".into(), "c".into(), m, prov())
    }

    #[test]
    fn brushing_or_erasing_a_selected_pre_label_makes_it_a_persons_label() {
        let mut pre = inst("pre", &rect(0.0, 0.0, 10.0, 10.0));
        pre.provenance.tool = Tool::PreLabel;
        let mut other = inst("other", &rect(20.0, 20.0, 30.0, 30.0));
        other.provenance.tool = Tool::PreLabel;
        let list = vec![pre, other];
        let painted = paint_into(&list, "pre", &rect(10.0, 0.0, 12.0, 10.0), "t1").unwrap();
        assert_eq!(painted.added[0].provenance.tool, Tool::PreLabelAccepted);
        let erased = erase(&list, Some("pre"), &rect(0.0, 0.0, 2.0, 10.0), "t1").unwrap();
        assert_eq!(erased.added[0].provenance.tool, Tool::PreLabelAccepted);
        // Paint elsewhere that merely clips a pre-label leaves it for the labeler to judge.
        let carved = add_instance(&list, inst("new", &rect(25.0, 25.0, 32.0, 32.0))).unwrap();
        let other_after = carved.added.iter().find(|i| i.id == "other").unwrap();
        assert_eq!(other_after.provenance.tool, Tool::PreLabel);
    }

    #[test]
    fn newest_paint_wins_and_carves_the_overlapped_instance() {
        let old = inst("old", &rect(0.0, 0.0, 10.0, 10.0));
        let new = inst("new", &rect(5.0, 0.0, 15.0, 10.0));
        let mut list = vec![old.clone()];
        let edit = add_instance(&list, new).unwrap();
        edit.apply(&mut list);
        let old_after = list.iter().find(|i| i.id == "old").unwrap();
        assert_eq!(old_after.area, 50);
        assert_eq!(old_after.bbox, [0, 0, 5, 10]);
        assert_eq!(list.last().unwrap().id, "new");
    }

    #[test]
    fn an_instance_carved_to_nothing_is_removed_and_undo_brings_it_back() {
        let small = inst("small", &rect(2.0, 2.0, 4.0, 4.0));
        let big = inst("big", &rect(0.0, 0.0, 10.0, 10.0));
        let mut list = vec![small.clone()];
        let mut history = History::default();
        let edit = add_instance(&list, big).unwrap();
        edit.apply(&mut list);
        history.record(edit);
        assert_eq!(
            list.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["big"]
        );
        let undo = history.peek_undo().unwrap();
        undo.apply(&mut list);
        history.undone();
        assert_eq!(list, vec![small]);
        let redo = history.peek_redo().unwrap();
        redo.apply(&mut list);
        history.redone();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].id, "big");
    }

    #[test]
    fn an_accepted_suggestion_takes_only_unlabeled_pixels() {
        let accepted = inst("accepted", &rect(0.0, 0.0, 10.0, 10.0));
        let spill = inst("spill", &rect(5.0, 0.0, 15.0, 10.0));
        let mut list = vec![accepted.clone()];
        let edit = add_suggestion(&list, spill).unwrap().unwrap();
        assert!(edit.removed.is_empty(), "the neighbour is not touched");
        edit.apply(&mut list);
        assert_eq!(list[0], accepted);
        assert_eq!((list[1].area, list[1].bbox), (50, [10, 0, 5, 10]));
        let inside = inst("inside", &rect(2.0, 2.0, 4.0, 4.0));
        assert_eq!(add_suggestion(&list, inside).unwrap(), None);
    }

    #[test]
    fn erasing_without_selection_touches_every_instance_under_the_stroke() {
        let a = inst("a", &rect(0.0, 0.0, 4.0, 4.0));
        let b = inst("b", &rect(4.0, 0.0, 8.0, 4.0));
        let c = inst("c", &rect(20.0, 20.0, 24.0, 24.0));
        let mut list = vec![a, b, c.clone()];
        let edit = erase(&list, None, &rect(2.0, 0.0, 6.0, 4.0), "t1").unwrap();
        assert_eq!(edit.deleted_ids().count(), 0);
        edit.apply(&mut list);
        let area = |id: &str| list.iter().find(|i| i.id == id).unwrap().area;
        assert_eq!((area("a"), area("b"), area("c")), (8, 8, 16));
        assert!(
            list.contains(&c),
            "an instance away from the stroke is not rewritten"
        );
    }

    #[test]
    fn brush_on_selected_instance_grows_it_and_keeps_its_id_and_class() {
        let a = inst("a", &rect(0.0, 0.0, 4.0, 4.0));
        let mut list = vec![a];
        let edit = paint_into(&list, "a", &rect(4.0, 0.0, 6.0, 4.0), "t1").unwrap();
        edit.apply(&mut list);
        assert_eq!(list.len(), 1);
        assert_eq!(
            (
                list[0].id.as_str(),
                list[0].area,
                list[0].provenance.updated.as_str()
            ),
            ("a", 24, "t1")
        );
    }

    #[test]
    fn hit_test_returns_topmost() {
        let a = inst("a", &rect(0.0, 0.0, 10.0, 10.0));
        let b = inst("b", &rect(20.0, 20.0, 30.0, 30.0));
        let list = vec![a, b];
        assert_eq!(
            instance_at(&list, 5.5, 5.5).map(|i| i.id.as_str()),
            Some("a")
        );
        assert_eq!(
            instance_at(&list, 25.0, 21.0).map(|i| i.id.as_str()),
            Some("b")
        );
        assert!(instance_at(&list, 15.0, 15.0).is_none());
    }
}
