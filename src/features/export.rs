//! Labels leave the device only as files the user saves: the JSON label bundle and COCO.

use lamina_core::bundle::{Bundle, BundleProject};
use lamina_core::coco::{bundle_to_coco, CocoOptions};
use lamina_core::view::file_stem;
use leptos::prelude::*;

use crate::browser::download::download;
use crate::browser::now;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

/// The whole current project as a bundle, read from storage (not from the screen).
pub async fn current_bundle(state: AppState) -> Result<Bundle, AppError> {
    let project = state.project_now().ok_or(AppError::NoProject)?;
    let store = store::shared()?;
    let records = store.assets(&project.id).await?;
    let mut bundle = Bundle::new(
        BundleProject {
            id: project.id.clone(),
            name: project.name.clone(),
        },
        project.ontology,
    );
    bundle.exported = Some(now());
    for record in records {
        bundle
            .instances
            .extend(store.instances(&record.asset.id).await?);
        bundle.assets.push(record.asset);
    }
    let mut review: Vec<_> = store
        .project_review(&project.id)
        .await?
        .into_iter()
        .map(|r| r.event)
        .collect();
    review.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
    bundle.review = review;
    bundle.derive_stages();
    Ok(bundle)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Bundle,
    CocoRle,
    CocoPolygons,
}

pub async fn export(state: AppState, kind: ExportKind) {
    let bundle = match current_bundle(state).await {
        Ok(b) => b,
        Err(e) => return state.fail("Export failed", &e),
    };
    // "Done only" (or another stage) for training sets: the images at that stage, with their labels.
    let stage = state.review.export_stage.get_untracked();
    let bundle = match stage {
        Some(stage) => bundle.only_stage(stage),
        None => bundle,
    };
    let stem = file_stem(&bundle.project.name);
    let result = match kind {
        ExportKind::Bundle => download(&format!("{stem}.bundle.json"), &bundle.to_json_pretty()),
        ExportKind::CocoRle | ExportKind::CocoPolygons => {
            let options = CocoOptions {
                polygons: kind == ExportKind::CocoPolygons,
                ..CocoOptions::default()
            };
            match bundle_to_coco(&bundle, &options) {
                Ok(coco) => {
                    let suffix = if options.polygons {
                        "coco-polygons"
                    } else {
                        "coco"
                    };
                    download(&format!("{stem}.{suffix}.json"), &coco.to_json())
                }
                Err(e) => Err(AppError::invalid(e.to_string())),
            }
        }
    };
    match result {
        Ok(()) => state.info(format!(
            "Exported {} labels on {} images",
            bundle.instances.len(),
            bundle.assets.len()
        )),
        Err(e) => state.fail("Export failed", &e),
    }
}
