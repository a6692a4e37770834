//! Pre-labels: instances a model proposed for an image, kept apart until a person accepts, edits or
//! deletes them.
//!
//! A pending pre-label is an instance whose provenance tool is [`Tool::PreLabel`]; accepting it (or
//! reshaping or re-classing it by hand) makes it [`Tool::PreLabelAccepted`], a label like any other. A
//! new pre-label run of an image replaces that image's pending pre-labels and never touches a label a
//! person made: its instances take only the pixels nobody labeled ([`prelabel_edit`]).
//!
//! The run itself ([`PrelabelJob`]) is stored as it goes, so a reload resumes it where it stopped.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::edit::{decode_mask, Edit};
use crate::labels::{Instance, Ontology, Timestamp, Tool};
use crate::review::Stage;
use crate::rle::{Rle, RleError};

/// The knobs of a run a user sets: what the model must be sure of, when two masks are the same object,
/// and the smallest instance kept.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrelabelSettings {
    /// Lowest score kept (SAM-family models: predicted IoU).
    pub min_score: f32,
    /// Two masks overlapping by more than this IoU are one object; the better one is kept.
    pub nms_iou: f64,
    /// Smallest instance, image pixels.
    pub min_area: u64,
}

impl PrelabelSettings {
    /// Measured on nuinsseg-dev for Lamina's nuclei models (BENCHMARKS.md, "Automatic mode"); SAM's
    /// own automatic-mask defaults for other SAM-family models.
    pub fn for_family(family: &str) -> PrelabelSettings {
        if family == NUCLEI_FAMILY {
            PrelabelSettings {
                min_score: 0.4,
                nms_iou: 0.5,
                min_area: 20,
            }
        } else if family == YOLO_FAMILY {
            // ultralytics' own `predict` defaults (conf 0.25, iou 0.7).
            PrelabelSettings {
                min_score: 0.25,
                nms_iou: 0.7,
                min_area: 20,
            }
        } else {
            PrelabelSettings {
                min_score: 0.88,
                nms_iou: 0.7,
                min_area: 20,
            }
        }
    }

    /// A setting out of range, worded for the form that holds it.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(format!(
                "the score threshold must be between 0 and 1, not {}",
                self.min_score
            ));
        }
        if !(self.nms_iou > 0.0 && self.nms_iou <= 1.0) {
            return Err(format!(
                "the NMS IoU must be above 0 and at most 1, not {}",
                self.nms_iou
            ));
        }
        Ok(())
    }
}

/// The family of Lamina's own nuclei models (`manifest.json`).
pub const NUCLEI_FAMILY: &str = "lamina-nuclei";
/// A user's instance-segmentation ONNX in the ultralytics YOLOv8/YOLO11-seg export contract.
pub const YOLO_FAMILY: &str = "yolo-seg";

/// The classes a SAM-family model's automatic mode predicts: one, since it finds objects, not kinds.
pub fn model_classes(family: &str) -> Vec<String> {
    if family == NUCLEI_FAMILY {
        vec!["nucleus".into()]
    } else {
        vec!["object".into()]
    }
}

/// Where one model class goes in the project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappedTo {
    /// Instances of it become this project class (by id).
    Class(String),
    /// Instances of it are left out.
    Ignored,
}

/// Model class → project class or ignored. A run starts only once every model class has a choice.
pub type ClassMapping = BTreeMap<String, MappedTo>;

/// The model classes that still need a choice (none made, or a class the ontology no longer has),
/// in the model's order. Empty: the run may start.
pub fn unmapped(
    model_classes: &[String],
    mapping: &ClassMapping,
    ontology: &Ontology,
) -> Vec<String> {
    model_classes
        .iter()
        .filter(|c| match mapping.get(*c) {
            None => true,
            Some(MappedTo::Ignored) => false,
            Some(MappedTo::Class(id)) => ontology.class(id).is_none(),
        })
        .cloned()
        .collect()
}

/// A pre-label not yet accepted, edited or deleted.
pub fn is_pending(instance: &Instance) -> bool {
    instance.provenance.tool == Tool::PreLabel
}

pub fn pending_count(instances: &[Instance]) -> usize {
    instances.iter().filter(|i| is_pending(i)).count()
}

/// The image's new pre-labels (`found`, pending, in the image's pixels) in place of its old pending ones.
/// Labels a person made (every instance not pending) keep all their pixels: a found instance loses the
/// pixels they hold, and one left with fewer than `min_area` pixels is dropped.
pub fn prelabel_edit(
    existing: &[Instance],
    found: Vec<Instance>,
    min_area: u64,
) -> Result<Edit, RleError> {
    let removed: Vec<Instance> = existing.iter().filter(|i| is_pending(i)).cloned().collect();
    let kept: Vec<&Instance> = existing.iter().filter(|i| !is_pending(i)).collect();
    let mut added = Vec::with_capacity(found.len());
    for mut instance in found {
        let touching: Vec<&&Instance> = kept
            .iter()
            .filter(|k| boxes_overlap(k.bbox, instance.bbox))
            .collect();
        if !touching.is_empty() {
            let mut m = decode_mask(&instance)?;
            for k in touching {
                // A label of another image size cannot share pixels with this one.
                let _ = m.subtract(&decode_mask(k)?);
            }
            let rle = Rle::from_mask(&m);
            instance.bbox = rle.bbox();
            instance.area = rle.area();
            instance.mask = rle.compress();
        }
        if instance.area >= min_area.max(1) {
            added.push(instance);
        }
    }
    Ok(Edit { removed, added })
}

fn boxes_overlap(a: [u32; 4], b: [u32; 4]) -> bool {
    let [ax, ay, aw, ah] = a.map(u64::from);
    let [bx, by, bw, bh] = b.map(u64::from);
    aw > 0 && bw > 0 && ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah
}

/// `instance` as a person's label: accepted by `author` at `now`, keeping the model id and score.
pub fn accepted(instance: &Instance, author: Option<&str>, now: &str) -> Instance {
    let mut out = instance.clone();
    if is_pending(instance) {
        out.provenance.tool = Tool::PreLabelAccepted;
        out.provenance.author = author.map(str::to_owned);
        out.provenance.updated = now.to_owned();
    }
    out
}

/// Accepts every pending pre-label of the image (ids kept, so undo and sync see a reshape, not a swap).
pub fn accept_all(instances: &[Instance], author: Option<&str>, now: &str) -> Edit {
    let removed: Vec<Instance> = instances
        .iter()
        .filter(|i| is_pending(i))
        .cloned()
        .collect();
    let added = removed.iter().map(|i| accepted(i, author, now)).collect();
    Edit { removed, added }
}

/// Deletes every pending pre-label of the image; labels a person made stay.
pub fn delete_all(instances: &[Instance]) -> Edit {
    Edit {
        removed: instances
            .iter()
            .filter(|i| is_pending(i))
            .cloned()
            .collect(),
        added: Vec::new(),
    }
}

/// How many workers a batch run uses: one per core the browser reports, at most one per
/// `worker_budget_mb` of half the device memory it reports (`navigator.deviceMemory`, GB, itself capped
/// at 8 by browsers), and at most [`MAX_POOL`]. Browsers that report neither get two.
pub fn pool_size(
    hardware_concurrency: Option<u32>,
    device_memory_gb: Option<f64>,
    worker_budget_mb: f64,
) -> usize {
    let cores = hardware_concurrency.filter(|&n| n > 0).unwrap_or(2) as usize;
    let by_memory = device_memory_gb
        .filter(|gb| gb.is_finite() && *gb > 0.0)
        .map_or(usize::MAX, |gb| {
            ((gb * 1024.0 / 2.0) / worker_budget_mb.max(1.0)).floor() as usize
        });
    cores.min(by_memory).clamp(1, MAX_POOL)
}

/// Beyond this, more workers mostly add memory: each holds the model and an image's embedding.
pub const MAX_POOL: usize = 8;

/// A pre-label run over a selection of one project's images, stored after each image so that a reload
/// resumes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrelabelJob {
    pub id: String,
    pub project_id: String,
    /// The model's cache key (id, encoder hash, windows; [`yolo_key`] for a YOLO-seg file): resuming
    /// needs the same model.
    pub model_key: String,
    pub model_id: String,
    /// The model's class names, in its index order.
    #[serde(default)]
    pub classes: Vec<String>,
    pub settings: PrelabelSettings,
    pub mapping: ClassMapping,
    /// Where the images go once pre-labeled: To label, or straight to review.
    pub to_stage: Stage,
    /// The selection, in run order.
    pub asset_ids: Vec<String>,
    /// Images finished (pre-labels stored, skipped or failed), in the order they finished: a pool of
    /// workers finishes them out of order.
    #[serde(default)]
    pub finished: BTreeSet<String>,
    /// Image id → why it has no pre-labels (failed or skipped).
    #[serde(default)]
    pub failed: BTreeMap<String, String>,
    /// Pre-labels stored so far.
    #[serde(default)]
    pub instances: usize,
    pub started: Timestamp,
}

impl PrelabelJob {
    pub fn is_finished(&self) -> bool {
        self.asset_ids.iter().all(|id| self.finished.contains(id))
    }

    /// The images still to run, in order (one a reload cut short runs again: storing an image's
    /// pre-labels replaces its earlier ones, so running it twice changes nothing).
    pub fn remaining(&self) -> Vec<String> {
        self.asset_ids
            .iter()
            .filter(|id| !self.finished.contains(*id))
            .cloned()
            .collect()
    }

    pub fn done(&self) -> usize {
        self.finished.len()
    }

    /// The project class of each model class (by index), `None` where ignored or unmapped.
    pub fn targets(&self) -> Vec<Option<String>> {
        self.classes
            .iter()
            .map(|c| match self.mapping.get(c) {
                Some(MappedTo::Class(id)) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    /// The SHA-256 of the YOLO-seg file the run uses, if it uses one.
    pub fn yolo_sha256(&self) -> Option<&str> {
        self.model_key.strip_prefix(YOLO_KEY_PREFIX)
    }
}

const YOLO_KEY_PREFIX: &str = "yolo-seg:";

/// The model key of a user's YOLO-seg file: its SHA-256, which is also its key in the model cache.
pub fn yolo_key(sha256: &str) -> String {
    format!("{YOLO_KEY_PREFIX}{sha256}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::instance_from_mask;
    use crate::labels::{ClassDef, Provenance};
    use crate::mask::Mask;

    fn inst(id: &str, rect: [f64; 4], tool: Tool) -> Instance {
        let mut m = Mask::new(20, 20);
        m.fill_rect(rect[0], rect[1], rect[2], rect[3], true);
        let provenance = Provenance {
            tool,
            prompts: vec![],
            model_id: (tool == Tool::PreLabel).then(|| "nuclei-v3".into()),
            author: None,
            created: "t0".into(),
            updated: "t0".into(),
            score: (tool == Tool::PreLabel).then_some(0.9),
        };
        instance_from_mask(id.into(), "a".into(), "c".into(), &m, provenance)
    }

    #[test]
    fn a_new_run_replaces_pending_pre_labels_and_never_takes_a_persons_pixels() {
        let person = inst("person", [0.0, 0.0, 10.0, 10.0], Tool::Brush);
        let accepted = inst("accepted", [10.0, 10.0, 20.0, 20.0], Tool::PreLabelAccepted);
        let old = inst("old", [12.0, 0.0, 20.0, 8.0], Tool::PreLabel);
        let existing = vec![person.clone(), accepted.clone(), old.clone()];
        let found = vec![
            // Half on the person's label: keeps only its own half.
            inst("half", [5.0, 0.0, 15.0, 5.0], Tool::PreLabel),
            // Wholly inside the accepted one: nothing left, dropped.
            inst("inside", [12.0, 12.0, 16.0, 16.0], Tool::PreLabel),
            // Where the old pre-label was: fine, that one goes.
            inst("again", [12.0, 0.0, 20.0, 8.0], Tool::PreLabel),
        ];
        let edit = prelabel_edit(&existing, found, 4).unwrap();
        assert_eq!(edit.removed, vec![old]);
        let ids: Vec<&str> = edit.added.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["half", "again"]);
        assert_eq!(edit.added[0].bbox, [10, 0, 5, 5]);
        assert_eq!(edit.added[0].area, 25);
        let mut after = existing.clone();
        edit.apply(&mut after);
        assert!(after.contains(&person) && after.contains(&accepted));
    }

    #[test]
    fn a_found_instance_cut_below_the_minimum_area_is_dropped() {
        let person = inst("person", [0.0, 0.0, 10.0, 10.0], Tool::Polygon);
        let sliver = inst("sliver", [8.0, 0.0, 11.0, 3.0], Tool::PreLabel); // 3 px left of it
        let edit = prelabel_edit(&[person], vec![sliver], 4).unwrap();
        assert!(edit.added.is_empty());
    }

    #[test]
    fn accept_all_keeps_ids_model_and_score_and_delete_all_spares_people() {
        let list = vec![
            inst("p1", [0.0, 0.0, 5.0, 5.0], Tool::PreLabel),
            inst("h", [6.0, 6.0, 9.0, 9.0], Tool::SamClick),
            inst("p2", [10.0, 10.0, 15.0, 15.0], Tool::PreLabel),
        ];
        assert_eq!(pending_count(&list), 2);
        let edit = accept_all(&list, Some("ana"), "t1");
        let mut after = list.clone();
        edit.apply(&mut after);
        assert_eq!(pending_count(&after), 0);
        let p1 = after.iter().find(|i| i.id == "p1").unwrap();
        assert_eq!(p1.provenance.tool, Tool::PreLabelAccepted);
        assert_eq!(p1.provenance.model_id.as_deref(), Some("nuclei-v3"));
        assert_eq!(
            (p1.provenance.score, p1.provenance.author.as_deref()),
            (Some(0.9), Some("ana"))
        );
        let mut after = list.clone();
        delete_all(&list).apply(&mut after);
        let ids: Vec<&str> = after.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["h"]);
    }

    #[test]
    fn every_model_class_needs_a_choice_of_a_class_that_exists() {
        let ontology = Ontology {
            classes: vec![ClassDef {
                id: "neo".into(),
                name: "Neoplastic".into(),
                color: "#ff0000".into(),
            }],
        };
        let classes = vec!["nucleus".to_string(), "debris".to_string()];
        let mut mapping = ClassMapping::new();
        assert_eq!(unmapped(&classes, &mapping, &ontology), classes);
        mapping.insert("nucleus".into(), MappedTo::Class("gone".into()));
        mapping.insert("debris".into(), MappedTo::Ignored);
        assert_eq!(unmapped(&classes, &mapping, &ontology), ["nucleus"]);
        mapping.insert("nucleus".into(), MappedTo::Class("neo".into()));
        assert!(unmapped(&classes, &mapping, &ontology).is_empty());
    }

    #[test]
    fn the_pool_follows_cores_then_memory() {
        assert_eq!(pool_size(Some(2), Some(8.0), 600.0), 2);
        assert_eq!(pool_size(Some(16), Some(8.0), 600.0), 6);
        assert_eq!(pool_size(Some(16), Some(0.5), 600.0), 1);
        assert_eq!(pool_size(Some(64), None, 600.0), MAX_POOL);
        assert_eq!(pool_size(None, None, 600.0), 2);
    }

    #[test]
    fn a_job_resumes_with_the_images_not_finished() {
        let mut job = PrelabelJob {
            id: "j".into(),
            project_id: "p".into(),
            model_key: "k".into(),
            model_id: "m".into(),
            classes: vec!["nucleus".into(), "debris".into()],
            settings: PrelabelSettings::for_family(NUCLEI_FAMILY),
            mapping: [
                ("nucleus".to_string(), MappedTo::Class("neo".into())),
                ("debris".to_string(), MappedTo::Ignored),
            ]
            .into(),
            to_stage: Stage::ToLabel,
            asset_ids: vec!["a".into(), "b".into(), "c".into()],
            finished: ["b".to_string()].into(),
            failed: BTreeMap::new(),
            instances: 12,
            started: "t".into(),
        };
        // Out of order: the second image finished first.
        assert_eq!(job.remaining(), ["a", "c"]);
        let back: PrelabelJob =
            serde_json::from_str(&serde_json::to_string(&job).unwrap()).unwrap();
        assert_eq!(back, job);
        assert_eq!(job.targets(), [Some("neo".to_string()), None]);
        assert_eq!(job.yolo_sha256(), None);
        job.model_key = yolo_key("ab12");
        assert_eq!(job.yolo_sha256(), Some("ab12"));
        job.finished.extend(["c".to_string(), "a".to_string()]);
        assert!(job.is_finished() && job.remaining().is_empty() && job.done() == 3);
    }

    #[test]
    fn settings_out_of_range_are_refused_in_words() {
        let mut s = PrelabelSettings::for_family("sam");
        assert_eq!(s.validate(), Ok(()));
        s.min_score = 1.5;
        assert!(s.validate().unwrap_err().contains("between 0 and 1"));
        s.min_score = 0.5;
        s.nms_iou = 0.0;
        assert!(s.validate().unwrap_err().contains("NMS IoU"));
    }
}
