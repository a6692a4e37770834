//! Labels from the tools teams already use (QuPath, Labelbox, CVAT, COCO, Label Studio), in three
//! steps: the picked files are read into a pending import; a plan under the user's choices is shown
//! (images matched, classes mapped, what is skipped and why, which images already have labels); only
//! "Import" writes, one transaction per image, so a failure leaves each image whole. And out: QuPath
//! GeoJSON (a zip of one file per image) and Label Studio JSON.

use std::collections::HashMap;
use std::io::Write;

use lamina_core::edit::Edit;
use lamina_core::labels::LabelStatus;
use lamina_core::view::file_stem;
use lamina_interop::detect::{self, Format};
use lamina_interop::labelbox::RgbImage;
use lamina_interop::plan::{plan, Origin, PlanOptions, Target};
use lamina_interop::{labelstudio, qupath};
use leptos::prelude::*;
use web_sys::File;

use crate::browser::download::{download, download_bytes};
use crate::browser::files::{decode_rgb, read_text};
use crate::browser::{new_id, now};
use crate::editing;
use crate::editing::push::change_queued;
use crate::editing::review;
use crate::error::AppError;
use crate::features::export::current_bundle;
use crate::features::navigate;
use crate::state::interop::PendingImport;
use crate::state::AppState;
use crate::store;

/// Reads the picked files (labels, plus the mask PNGs a Labelbox file refers to) and shows the plan.
pub async fn pick(state: AppState, files: Vec<File>) {
    match read_files(state, files).await {
        Ok(pending) => {
            state.interop.pending.set(Some(pending));
            replan(state).await;
        }
        Err(e) => state.fail("Labels not imported", &e),
    }
}

async fn read_files(state: AppState, files: Vec<File>) -> Result<PendingImport, AppError> {
    let (pictures, texts): (Vec<File>, Vec<File>) = files
        .into_iter()
        .partition(|f| f.name().to_lowercase().ends_with(".png"));
    let mut masks = HashMap::new();
    for (i, png) in pictures.iter().enumerate() {
        state.progress.set(Some(format!(
            "Reading mask {} of {}",
            i + 1,
            pictures.len()
        )));
        let decoded = decode_rgb(png).await;
        state.progress.set(None);
        let (width, height, rgb) = decoded?;
        masks.insert(png.name(), RgbImage { width, height, rgb });
    }
    let mut parts = Vec::new();
    let mut format_used = None;
    let mut names = Vec::new();
    for file in &texts {
        let name = file.name();
        let text = read_text(file).await?;
        let format = detect::detect(&name, &text).ok_or_else(|| {
            AppError::invalid(format!(
                "{name}: not a QuPath, Labelbox, CVAT, COCO or Label Studio file"
            ))
        })?;
        if format_used.is_some_and(|f| f != format) {
            return Err(AppError::invalid(format!(
                "{name} is {}, the other files are not: import one tool's files at a time",
                format.tool()
            )));
        }
        let labels = detect::read(format, &name, &text, &masks)
            .map_err(|e| AppError::invalid(format!("{name} ({}): {e}", format.tool())))?;
        format_used = Some(format);
        parts.push(labels);
        names.push(name);
    }
    let format =
        format_used.ok_or_else(|| AppError::invalid("pick a labels file (the PNGs go with it)"))?;
    Ok(PendingImport {
        format,
        files: names,
        labels: detect::merge(parts),
    })
}

/// The plan for the pending import under the current choices (changes nothing).
pub async fn replan(state: AppState) {
    let Some(pending) = state.interop.pending.get_untracked() else {
        return;
    };
    let Some(project) = state.project_now() else {
        return state.fail("Labels not imported", &AppError::NoProject);
    };
    let assets: Vec<_> = state
        .assets
        .with_untracked(|a| a.iter().map(|r| r.asset.clone()).collect());
    let options = PlanOptions {
        unclassified_to: state.interop.unclassified.get_untracked(),
        add_missing_classes: state.interop.add_classes.get_untracked(),
        class_map: Default::default(),
    };
    let target = Target {
        assets: &assets,
        ontology: &project.ontology,
        labels_now: HashMap::new(),
    };
    let mut planned = plan(&pending.labels, &target, &options);
    // Only the matched images are asked how many labels they have now.
    let counted = async {
        let store = store::shared()?;
        for image in &mut planned.images {
            image.labels_now = store.instances(&image.asset_id).await?.len();
        }
        Ok::<_, AppError>(())
    }
    .await;
    match counted {
        Ok(()) => state.interop.plan.set(Some(planned)),
        Err(e) => state.fail("Labels not imported", &e),
    }
}

pub fn cancel(state: AppState) {
    state.interop.pending.set(None);
    state.interop.plan.set(None);
}

/// Writes the plan: the new classes first, then each image in its own transaction.
pub async fn apply(state: AppState) {
    let (Some(pending), Some(planned)) = (
        state.interop.pending.get_untracked(),
        state.interop.plan.get_untracked(),
    ) else {
        return;
    };
    let timestamp = now();
    let author = state.author.get_untracked();
    let origin = Origin {
        author: if author.trim().is_empty() {
            pending.format.tool()
        } else {
            author.as_str()
        },
        timestamp: &timestamp,
        model_id: None,
    };
    let (images, left) = planned.instances(state.interop.existing.get_untracked(), &origin, new_id);
    let written = async {
        add_classes(state, &planned.new_classes).await?;
        let store = store::shared()?;
        let mut labels = 0;
        for (i, image) in images.iter().enumerate() {
            state.progress.set(Some(format!(
                "Importing labels: image {} of {}",
                i + 1,
                images.len()
            )));
            let Some(mut record) = state
                .assets
                .with_untracked(|a| a.iter().find(|r| r.asset.id == image.asset_id).cloned())
            else {
                continue;
            };
            let existing = store.instances(&record.asset.id).await?;
            let removed = if image.replace {
                existing.clone()
            } else {
                Vec::new()
            };
            let edit = Edit {
                removed,
                added: image.instances.clone(),
            };
            let mut after = existing;
            edit.apply(&mut after);
            if record.asset.status == LabelStatus::Unlabeled {
                record.asset.status = LabelStatus::InProgress;
            }
            let events = store.review_events(&record.asset.id).await?;
            review::restage(&mut record, &after, &events);
            let outbox = state.sync.outbox_entry(&record);
            store.apply_edit(&record, &edit, outbox.as_ref()).await?;
            labels += image.instances.len();
        }
        Ok::<_, AppError>(labels)
    }
    .await;
    state.progress.set(None);
    cancel(state);
    navigate::open_project(state, state.project_id.get_untracked().unwrap_or_default()).await;
    match written {
        Ok(labels) => {
            if labels > 0 {
                change_queued(state);
            }
            let mut text = format!(
                "Imported {labels} labels on {} images from {}",
                images.len(),
                pending.format.tool()
            );
            if !left.is_empty() {
                text += &format!("; left alone (they have labels): {}", left.join(", "));
            }
            state.info(text);
        }
        Err(e) => state.fail(
            "Labels not imported (images before the failure were imported whole)",
            &e,
        ),
    }
}

async fn add_classes(
    state: AppState,
    classes: &[lamina_core::labels::ClassDef],
) -> Result<(), AppError> {
    if classes.is_empty() {
        return Ok(());
    }
    let mut project = state.project_now().ok_or(AppError::NoProject)?;
    project.ontology.classes.extend(classes.iter().cloned());
    store::shared()?.put_project(&project).await?;
    editing::reload_projects(state).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum InteropExport {
    /// A zip of `<image>.geojson`, one per image with labels.
    QuPath,
    LabelStudio,
}

pub async fn export(state: AppState, kind: InteropExport) {
    let result = async {
        let mut bundle = current_bundle(state).await?;
        if let Some(stage) = state.review.export_stage.get_untracked() {
            bundle = bundle.only_stage(stage);
        }
        let stem = file_stem(&bundle.project.name);
        match kind {
            InteropExport::LabelStudio => {
                let text =
                    labelstudio::write(&bundle).map_err(|e| AppError::invalid(e.to_string()))?;
                download(&format!("{stem}.labelstudio.json"), &text)?;
            }
            InteropExport::QuPath => {
                let zip = geojson_zip(&bundle)?;
                download_bytes(
                    &format!("{stem}.qupath-geojson.zip"),
                    &zip,
                    "application/zip",
                )?;
            }
        }
        Ok::<_, AppError>(bundle.instances.len())
    }
    .await;
    match result {
        Ok(n) => state.info(format!("Exported {n} labels")),
        Err(e) => state.fail("Export failed", &e),
    }
}

fn geojson_zip(bundle: &lamina_core::bundle::Bundle) -> Result<Vec<u8>, AppError> {
    let zip_error =
        |e: &dyn std::fmt::Display| AppError::invalid(format!("the zip could not be written: {e}"));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for asset in &bundle.assets {
        if !bundle.instances.iter().any(|i| i.asset_id == asset.id) {
            continue;
        }
        let text = qupath::write_image(bundle, asset, qupath::ObjectType::Detection)
            .map_err(|e| AppError::invalid(e.to_string()))?;
        zip.start_file(qupath::file_name_for(asset), options)
            .map_err(|e| zip_error(&e))?;
        zip.write_all(text.as_bytes()).map_err(|e| zip_error(&e))?;
    }
    Ok(zip.finish().map_err(|e| zip_error(&e))?.into_inner())
}

/// The formats' names, for the file picker's title.
pub fn format_names() -> String {
    Format::ALL
        .iter()
        .map(|f| f.tool())
        .collect::<Vec<_>>()
        .join(", ")
}
