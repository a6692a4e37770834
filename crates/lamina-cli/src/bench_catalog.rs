//! `lamina bench catalog`: how long the catalog takes to answer over many images (the bar:
//! under 100 ms for 10,000): building the rows, a layered filter, value counts for a chart, labels per
//! class, and a saved slice. Rows are generated (organ, slide, nuclei count, labels of five classes);
//! natively, so the wasm figure in the browser is higher by tract-unrelated wasm overhead (~1.5–2×).

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use lamina_core::catalog::{class_counts, row_of, value_counts, Filter, Query, Slice};
use lamina_core::labels::{Asset, Instance, InstanceStatus, LabelStatus, Provenance, Tool};
use lamina_core::rle::CompressedRle;

use crate::Report;

#[derive(Args)]
pub struct BenchCatalogArgs {
    #[arg(long, default_value_t = 10_000)]
    images: usize,
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

const ORGANS: [&str; 8] = [
    "breast", "colon", "liver", "kidney", "lung", "skin", "bladder", "brain",
];
const CLASSES: [&str; 5] = [
    "neoplastic",
    "inflammatory",
    "connective",
    "dead",
    "epithelial",
];

/// A small deterministic generator (the images are only shapes of data).
fn next(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

fn instance(class: &str) -> Instance {
    Instance {
        id: String::new(),
        asset_id: String::new(),
        class_id: class.into(),
        mask: CompressedRle {
            size: [1, 1],
            counts: "1".into(),
        },
        bbox: [0, 0, 1, 1],
        area: 1,
        provenance: Provenance {
            tool: Tool::Brush,
            prompts: vec![],
            model_id: None,
            author: None,
            created: String::new(),
            updated: String::new(),
            score: None,
        },
        status: InstanceStatus::Draft,
    }
}

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub fn run(args: &BenchCatalogArgs) -> Result<Report> {
    let mut seed = 7u64;
    let mut images = Vec::with_capacity(args.images);
    for k in 0..args.images {
        let organ = ORGANS[next(&mut seed) as usize % ORGANS.len()];
        let mut metadata = BTreeMap::new();
        metadata.insert("organ".into(), json!(organ));
        metadata.insert("slide".into(), json!(format!("S{}", next(&mut seed) % 400)));
        metadata.insert("n_nuclei".into(), json!(next(&mut seed) % 120));
        let labels: Vec<Instance> = (0..next(&mut seed) % 40)
            .map(|_| instance(CLASSES[next(&mut seed) as usize % CLASSES.len()]))
            .collect();
        let asset = Asset {
            id: format!("img{k}"),
            name: format!("tile_{k:05}.png"),
            sha256: String::new(),
            width: 256,
            height: 256,
            metadata,
            uri: None,
            status: LabelStatus::InProgress,
            stage: Default::default(),
        };
        images.push((asset, labels));
    }
    let started = Instant::now();
    let rows: Vec<_> = images.iter().map(|(a, l)| row_of(a, l)).collect();
    let build_ms = started.elapsed().as_secs_f64() * 1000.0;
    let query = Query {
        filters: vec![
            Filter::OneOf {
                field: "organ".into(),
                values: ["breast".to_string(), "colon".to_string()].into(),
            },
            Filter::Range {
                field: "n_nuclei".into(),
                min: Some(20.0),
                max: Some(100.0),
            },
            Filter::HasClass {
                class_id: "dead".into(),
            },
            Filter::NameContains {
                text: "tile_0".into(),
            },
        ],
    };
    let slice = Slice {
        id: "s".into(),
        project_id: "p".into(),
        name: "breast and colon".into(),
        query: query.clone(),
        pinned: Default::default(),
    };
    let (mut filter_ms, mut chart_ms, mut slice_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut matched = 0;
    for _ in 0..args.rounds {
        let t = Instant::now();
        let selected = query.select(&rows);
        filter_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        matched = selected.len();
        let t = Instant::now();
        let organs = value_counts(&rows, &selected, "organ");
        let classes = class_counts(&rows, &selected);
        chart_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box((organs, classes));
        let t = Instant::now();
        std::hint::black_box(slice.select(&rows));
        slice_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (filter, chart, slice) = (p50(filter_ms), p50(chart_ms), p50(slice_ms));
    Ok(Report {
        ok: true,
        json: json!({"ok": true, "images": args.images, "matched": matched, "build_rows_ms": build_ms,
            "filter_ms_p50": filter, "charts_ms_p50": chart, "slice_ms_p50": slice}),
        human: format!(
            "{} images: rows built in {build_ms:.1} ms; 4 layered filters {filter:.2} ms ({matched} match), organ and class counts {chart:.2} ms, a slice {slice:.2} ms (p50 of {})",
            args.images, args.rounds
        ),
    })
}
