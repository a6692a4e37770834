//! The catalog's charts, drawn as SVG: images per value of a metadata field, labels per class, images per
//! stage. Each follows the filters (it counts the images the grid lists).

use lamina_core::catalog::{
    class_counts, value_counts, FIELD_IMPORTED, FIELD_LABELER, FIELD_STAGE,
};
use lamina_core::review::Stage;
use leptos::prelude::*;

use crate::state::catalog::CatalogData;
use crate::state::AppState;

/// One bar: its label, its count, and its colour.
#[derive(Clone, Debug, PartialEq)]
struct Bar {
    label: String,
    count: u64,
    color: String,
}

const BAR_PX: f64 = 18.0;
const LABEL_PX: f64 = 110.0;
const CHART_PX: f64 = 300.0;
/// A chart shows this many bars; the rest are summed into one "other" bar.
const MAX_BARS: usize = 12;

#[component]
fn BarChart(title: String, bars: Vec<Bar>, testid: &'static str) -> impl IntoView {
    let mut bars = bars;
    if bars.len() > MAX_BARS {
        let rest: u64 = bars[MAX_BARS - 1..].iter().map(|b| b.count).sum();
        bars.truncate(MAX_BARS - 1);
        bars.push(Bar {
            label: "other".into(),
            count: rest,
            color: "#999".into(),
        });
    }
    let max = bars.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
    let width_px = CHART_PX - LABEL_PX - 40.0;
    let height = bars.len() as f64 * BAR_PX + 4.0;
    let rows = bars
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let y = i as f64 * BAR_PX;
            let w = (b.count as f64 / max * width_px).max(1.0);
            view! {
                <g data-testid="bar" data-label=b.label.clone() data-count=b.count.to_string()>
                    <text x=LABEL_PX - 4.0 y=y + 13.0 text-anchor="end">{b.label.clone()}</text>
                    <rect x=LABEL_PX y=y + 2.0 width=w height=BAR_PX - 4.0 fill=b.color/>
                    <text x=LABEL_PX + w + 4.0 y=y + 13.0>{b.count.to_string()}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <figure class="chart" data-testid=testid>
            <figcaption>{title}</figcaption>
            <svg width=CHART_PX height=height viewBox=format!("0 0 {CHART_PX} {height}")>{rows}</svg>
        </figure>
    }
}

/// Fields every image has; the first chart counts by a column of the manifest unless one is picked.
const BUILT_IN: [&str; 3] = [FIELD_STAGE, FIELD_IMPORTED, FIELD_LABELER];

/// The text fields a chart can count by (metadata columns and the stage), first column first.
fn chartable(fields: &[(String, bool)]) -> Vec<String> {
    fields
        .iter()
        .filter(|(name, numeric)| !numeric && name != "status")
        .map(|(name, _)| name.clone())
        .collect()
}

#[component]
pub fn Charts(state: AppState, data: CatalogData) -> impl IntoView {
    let CatalogData {
        rows,
        listed,
        all_fields,
    } = data;
    let ui = state.catalog;
    let choices = Memo::new(move |_| all_fields.with(|f| chartable(f)));
    let field = move || {
        let picked = ui.chart_field.get();
        let all = choices.get();
        picked.filter(|f| all.contains(f)).or_else(|| {
            all.iter()
                .find(|f| !BUILT_IN.contains(&f.as_str()))
                .or(all.first())
                .cloned()
        })
    };
    let by_field = move || {
        let field = field()?;
        let bars = rows.with(|r| listed.with(|l| value_counts(r, l, &field)));
        let bars = bars
            .into_iter()
            .map(|(v, n)| Bar {
                label: v.unwrap_or_else(|| "(none)".into()),
                count: n as u64,
                color: "#4a78b5".into(),
            })
            .collect();
        Some(view! { <BarChart title=format!("Images per {field}") bars testid="chart-field"/> })
    };
    let by_class = move || {
        let counts = rows.with(|r| listed.with(|l| class_counts(r, l)));
        let ontology = state.ontology();
        let bars = ontology
            .classes
            .iter()
            .map(|c| Bar {
                label: c.name.clone(),
                count: counts.get(&c.id).copied().unwrap_or(0),
                color: c.color.clone(),
            })
            .collect();
        view! { <BarChart title="Labels per class".to_string() bars testid="chart-classes"/> }
    };
    let by_stage = move || {
        let counts = rows.with(|r| listed.with(|l| value_counts(r, l, FIELD_STAGE)));
        let bars = Stage::ALL
            .iter()
            .map(|s| Bar {
                label: s.label().into(),
                count: counts
                    .iter()
                    .find(|(v, _)| v.as_deref() == Some(s.label()))
                    .map_or(0, |(_, n)| *n as u64),
                color: "#6a9a5b".into(),
            })
            .collect();
        view! { <BarChart title="Images per stage".to_string() bars testid="chart-stages"/> }
    };
    let options = move || {
        let current = field();
        choices
            .get()
            .into_iter()
            .map(|f| {
                let selected = current.as_deref() == Some(f.as_str());
                view! { <option value=f.clone() selected=selected>{f.clone()}</option> }
            })
            .collect_view()
    };
    view! {
        <aside class="catalog-charts">
            <label>"Chart images by "
                <select data-testid="chart-field-pick" on:change=move |ev| ui.chart_field.set(Some(event_target_value(&ev)))>
                    {options}
                </select>
            </label>
            {by_field}
            {by_class}
            {by_stage}
        </aside>
    }
}
