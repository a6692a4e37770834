//! The catalog page: filters on the left with the saved selections, the thumbnail grid in the middle
//! (virtualised: only the cells in view are in the page), the charts on the right.

use lamina_core::catalog::{
    fields, value_counts, Query, Row, FIELD_HEIGHT, FIELD_STATUS, FIELD_WIDTH,
};
use lamina_core::grid::{GridKey, GridLayout};
use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::KeyboardEvent;

use crate::browser::resize::SizeWatch;
use crate::features::catalog as actions;
use crate::state::catalog::{CatalogData, Thumb};
use crate::state::runs::Page;
use crate::state::AppState;
use crate::ui::catalog_charts::Charts;

/// A value picker lists this many of a field's values, most frequent first.
const MAX_PICKS: usize = 40;

/// A grid cell's side with its gap, in screen px.
const CELL_SCREEN: f64 = 132.0;

#[component]
pub fn CatalogPage(state: AppState) -> impl IntoView {
    let ui = state.catalog;
    let rows = Memo::new(move |_| actions::rows(state));
    let listed = Memo::new(move |_| {
        let query = ui.query.get();
        let similar = ui.similar.get();
        let sort = ui.sort.get();
        rows.with(|r| actions::listed(r, &query, &sort, similar.as_ref()))
    });
    // Every field of the rows, with whether it holds numbers (the pickers, the sort and the charts).
    let all_fields = Memo::new(move |_| rows.with(|r| fields(r)));
    let data = CatalogData {
        rows,
        listed,
        all_fields,
    };
    view! {
        <main class="catalog">
            <aside class="catalog-side">
                <Filters state data/>
                <Slices state data/>
            </aside>
            <section class="catalog-main">
                <Toolbar state data/>
                <Grid state data/>
            </section>
            <Charts state data/>
        </main>
    }
}

fn parse_bound(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Changes the filters: the grid goes back to its top, and no saved selection is shown any more.
fn edit_query(state: AppState, f: &dyn Fn(&mut Query)) {
    let ui = state.catalog;
    ui.query.update(|q| f(q));
    ui.active_slice.set(None);
    ui.cursor.set(0);
    ui.scroll_top.set(0.0);
}

/// One end of a number column's range filter: the minimum, or the maximum (`upper`).
#[component]
fn RangeBound(state: AppState, field: String, upper: bool) -> impl IntoView {
    let ui = state.catalog;
    let bound = move |q: &Query, field: &str| {
        let (min, max) = q.range_of(field);
        if upper {
            max
        } else {
            min
        }
    };
    let shown = {
        let field = field.clone();
        move || {
            ui.query
                .with(|q| bound(q, &field).map(|v| v.to_string()).unwrap_or_default())
        }
    };
    let changed = {
        let field = field.clone();
        move |ev| {
            let value = parse_bound(&event_target_value(&ev));
            edit_query(state, &|q| {
                let (min, max) = q.range_of(&field);
                if upper {
                    q.set_range(&field, min, value)
                } else {
                    q.set_range(&field, value, max)
                }
            });
        }
    };
    view! {
        <input type="number" placeholder=if upper { "max" } else { "min" }
            data-testid=if upper { "filter-max" } else { "filter-min" } data-field=field
            prop:value=shown on:change=changed/>
    }
}

#[component]
fn Filters(state: AppState, data: CatalogData) -> impl IntoView {
    let CatalogData {
        rows, all_fields, ..
    } = data;
    let ui = state.catalog;
    let edit = move |f: &dyn Fn(&mut Query)| edit_query(state, f);
    let text_fields = move || {
        // The value counts change with the images even when the fields do not.
        rows.track();
        all_fields
            .get()
            .into_iter()
            .filter(|(name, numeric)| !numeric && name != FIELD_STATUS)
            .map(|(field, _)| {
                let counts = rows.with(|r| {
                    let every: Vec<usize> = (0..r.len()).collect();
                    value_counts(r, &every, &field)
                });
                let values = counts.iter().filter(|(v, _)| v.is_some()).count();
                let more = values.saturating_sub(MAX_PICKS);
                let boxes = counts
                    .into_iter()
                    .filter_map(|(v, n)| v.map(|v| (v, n)))
                    .take(MAX_PICKS)
                    .map(|(value, n)| {
                        let (f, v) = (field.clone(), value.clone());
                        let checked = {
                            let (f, v) = (field.clone(), value.clone());
                            move || ui.query.with(|q| q.values_of(&f).contains(&v))
                        };
                        view! {
                            <label class="pick">
                                <input type="checkbox" data-testid="filter-value" data-field=field.clone() data-value=value.clone()
                                    prop:checked=checked
                                    on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        edit(&|q| q.toggle_value(&f, &v, on));
                                    }/>
                                {value.clone()} <small>{format!(" {n}")}</small>
                            </label>
                        }
                    })
                    .collect_view();
                view! {
                    <details class="filter" open=true>
                        <summary>{field.clone()}</summary>
                        {boxes}
                        {(more > 0).then(|| view! { <small>{format!("and {more} more values (search by name, or sort by {field})")}</small> })}
                    </details>
                }
            })
            .collect_view()
    };
    let number_fields = move || {
        all_fields
            .get()
            .into_iter()
            .filter(|(name, numeric)| *numeric && name != FIELD_WIDTH && name != FIELD_HEIGHT)
            .map(|(field, _)| {
                view! {
                    <div class="filter range">
                        <span>{field.clone()}</span>
                        <RangeBound state field=field.clone() upper=false/>
                        <RangeBound state field upper=true/>
                    </div>
                }
            })
            .collect_view()
    };
    let class_options = move || {
        let picked = ui.query.with(|q| q.has_class());
        state
            .ontology()
            .classes
            .into_iter()
            .map(|c| {
                let selected = picked.as_deref() == Some(c.id.as_str());
                view! { <option value=c.id.clone() selected=selected>{c.name.clone()}</option> }
            })
            .collect_view()
    };
    view! {
        <section class="catalog-filters">
            <h2>"Filters"</h2>
            <input type="search" placeholder="name contains" data-testid="filter-name"
                prop:value=move || ui.query.with(|q| q.name_text())
                on:input=move |ev| { let t = event_target_value(&ev); edit(&|q| q.set_name_text(&t)) }/>
            <label class="filter">"Has class "
                <select data-testid="filter-class" on:change=move |ev| {
                    let c = event_target_value(&ev);
                    edit(&|q| q.set_has_class(Some(c.clone())))
                }>
                    <option value="" selected=move || ui.query.with(|q| q.has_class().is_none())>"any"</option>
                    {class_options}
                </select>
            </label>
            {text_fields}
            {number_fields}
            <button data-testid="filter-clear" on:click=move |_| edit(&|q| *q = Default::default())>"Clear filters"</button>
        </section>
    }
}

#[component]
fn Slices(state: AppState, data: CatalogData) -> impl IntoView {
    let CatalogData { rows, listed, .. } = data;
    let ui = state.catalog;
    let name = RwSignal::new(String::new());
    let save = move |_| {
        let n = name.get_untracked();
        if n.trim().is_empty() {
            state.info("Give the selection a name first");
            return;
        }
        name.set(String::new());
        // While a ranking is shown: the anchors and the most similar images, as the grid lists them.
        let keep = ui
            .similar
            .with_untracked(|s| s.as_ref().map(|s| s.anchors.len()))
            .map_or(0, |anchors| anchors + ui.similar_keep.get_untracked());
        let ranked = rows.with_untracked(|r| {
            listed.with_untracked(|l| {
                l.iter()
                    .take(keep)
                    .map(|&i| r[i].asset_id.clone())
                    .collect()
            })
        });
        spawn_local(actions::save_slice(state, n, ranked));
    };
    let list = move || {
        // Counts change with the images (a selection is evaluated again).
        rows.track();
        ui.slices
            .get()
            .into_iter()
            .map(|slice| {
                let ids = rows.with(|r| actions::slice_ids(r, &slice));
                let count = ids.len();
                let active_id = slice.id.clone();
                let active = move || ui.active_slice.get().as_deref() == Some(active_id.as_str());
                let (s1, n2, ids2, ids3, ids4, id5) = (
                    slice.clone(),
                    slice.name.clone(),
                    ids.clone(),
                    ids.clone(),
                    ids,
                    slice.id.clone(),
                );
                view! {
                    <li data-testid="slice" class:active=active>
                        <button class="link" data-testid="slice-show" on:click=move |_| actions::show_slice(state, &s1)>
                            <span class="name">{slice.name.clone()}</span>
                        </button>
                        <small data-testid="slice-count">{count}</small>
                        <span class="slice-actions">
                            <button data-testid="slice-queue" title="Label these images: the image list keeps to them"
                                on:click=move |_| spawn_local(actions::open_as_queue(state, n2.clone(), ids2.clone()))>"Label"</button>
                            <button data-testid="slice-prelabel" title="Run the model over these images"
                                on:click=move |_| actions::to_prelabel(state, ids3.clone())>"Pre-label"</button>
                            <button data-testid="slice-review" title="Submit the labeled ones for review"
                                on:click=move |_| spawn_local(actions::to_review(state, ids4.clone()))>"Review"</button>
                            <button data-testid="slice-delete" title="Delete the selection (not its images)"
                                on:click=move |_| spawn_local(actions::delete_slice(state, id5.clone()))>"×"</button>
                        </span>
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <section class="catalog-slices">
            <h2>"Saved selections"</h2>
            <div class="save">
                <input placeholder="name" data-testid="slice-name" prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))/>
                <button data-testid="slice-save" on:click=save>"Save selection"</button>
            </div>
            <ul>{list}</ul>
        </section>
    }
}

/// The images Space checked, else the one under the cursor: what find-similar starts from.
fn anchors(state: AppState, rows: &[Row], listed: &[usize]) -> Vec<String> {
    let checked = state.prelabel.checked.get_untracked();
    if !checked.is_empty() {
        return rows
            .iter()
            .filter(|r| checked.contains(&r.asset_id))
            .map(|r| r.asset_id.clone())
            .collect();
    }
    listed
        .get(state.catalog.cursor.get_untracked())
        .map(|&i| vec![rows[i].asset_id.clone()])
        .unwrap_or_default()
}

#[component]
fn Toolbar(state: AppState, data: CatalogData) -> impl IntoView {
    let CatalogData {
        rows,
        listed,
        all_fields,
    } = data;
    let ui = state.catalog;
    let find = move |_| {
        let picked = rows.with_untracked(|r| listed.with_untracked(|l| anchors(state, r, l)));
        spawn_local(actions::find_similar(state, picked));
    };
    let sort_options = move || {
        let current = ui.sort.with(|s| s.0.clone());
        let mut names = vec![actions::SORT_BY_NAME.to_string()];
        names.extend(all_fields.get().into_iter().map(|(f, _)| f));
        names
            .into_iter()
            .map(|f| {
                let selected = current.as_deref() == Some(f.as_str());
                view! { <option value=f.clone() selected=selected>{f.clone()}</option> }
            })
            .collect_view()
    };
    let set_sort = move |field: String, descending: bool| {
        ui.sort
            .set(((!field.is_empty()).then_some(field), descending));
        ui.cursor.set(0);
    };
    view! {
        <div class="catalog-toolbar">
            <label>"Sort "
                <select data-testid="sort-field" on:change=move |ev| set_sort(event_target_value(&ev), ui.sort.get_untracked().1)>
                    <option value="" selected=move || ui.sort.with(|s| s.0.is_none())>"import order"</option>
                    {sort_options}
                </select>
            </label>
            <label><input type="checkbox" data-testid="sort-descending" prop:checked=move || ui.sort.with(|s| s.1)
                on:change=move |ev| { let d = event_target_checked(&ev); set_sort(ui.sort.get_untracked().0.unwrap_or_default(), d) }/>
                " high to low"</label>
            <span data-testid="catalog-count">{move || listed.with(Vec::len)}</span>
            " of "
            <span data-testid="catalog-total">{move || rows.with(Vec::len)}</span>
            " images · "
            <span data-testid="catalog-checked">{move || state.prelabel.checked.with(|c| c.len())}</span>
            " checked"
            <button data-testid="find-similar" title="Rank every image by how alike its colours are to the checked images (or the focused one)"
                on:click=find>"Find similar"</button>
            <Show when=move || ui.similar.with(Option::is_some)>
                <label>"keep top "
                    <input type="number" min="1" class="narrow" data-testid="similar-keep"
                        prop:value=move || ui.similar_keep.get().to_string()
                        on:change=move |ev| {
                            if let Ok(n) = event_target_value(&ev).parse::<usize>() { ui.similar_keep.set(n.max(1)) }
                        }/>
                    " when saved"
                </label>
                <button data-testid="similar-clear" on:click=move |_| ui.similar.set(None)>"Clear ranking"</button>
            </Show>
            <button data-testid="uncheck-all" on:click=move |_| state.prelabel.checked.set(Default::default())>"Uncheck all"</button>
            <span class="hint">"Arrows move · Enter opens · Space checks"</span>
        </div>
    }
}

/// Opens the image in the labeling view.
fn open_image(state: AppState, asset_id: &str) {
    let index = state
        .assets
        .with_untracked(|all| all.iter().position(|r| r.asset.id == asset_id));
    if let Some(i) = index {
        state.runs.page.set(Page::Label);
        spawn_local(crate::features::navigate::open_asset(state, i));
    }
}

fn toggle_checked(state: AppState, asset_id: &str) {
    state.prelabel.checked.update(|c| {
        if !c.remove(asset_id) {
            c.insert(asset_id.to_owned());
        }
    });
}

/// One cell of the grid as drawn: its place among the listed images and what it shows. A cell whose
/// place and content stay the same is kept as it is when the grid scrolls or a thumbnail arrives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CellKey {
    n: usize,
    id: String,
    name: String,
    stage: String,
    score: Option<String>,
}

#[component]
fn Grid(state: AppState, data: CatalogData) -> impl IntoView {
    let CatalogData { rows, listed, .. } = data;
    let ui = state.catalog;
    let boxed = NodeRef::<leptos::html::Div>::new();
    let layout = Memo::new(move |_| {
        let (width, _) = ui.viewport.get();
        GridLayout::new(width, CELL_SCREEN, listed.with(Vec::len))
    });
    // The box's size, from the browser after layout (never read while the page is being built).
    let watch = StoredValue::new_local(None::<SizeWatch>);
    Effect::new(move |_| {
        if let Some(el) = boxed.get() {
            let size = move |w: f64, h: f64| {
                if w > 0.0 && ui.viewport.get_untracked() != (w, h) {
                    ui.viewport.set((w, h));
                }
            };
            watch.set_value(SizeWatch::new(&el, size));
        }
    });
    on_cleanup(move || watch.set_value(None));
    let visible = Memo::new(move |_| {
        let (_, height) = ui.viewport.get();
        layout.get().visible(ui.scroll_top.get(), height)
    });
    // The cells in view ask for their thumbnails.
    Effect::new(move |_| {
        let range = visible.get();
        let ids: Vec<String> = rows.with(|r| {
            listed.with(|l| {
                l[range]
                    .iter()
                    .rev()
                    .map(|&i| r[i].asset_id.clone())
                    .collect()
            })
        });
        actions::want_thumbs(state, ids);
    });
    let move_cursor = move |to: usize| {
        ui.cursor.set(to);
        let (_, height) = ui.viewport.get_untracked();
        let top = ui.scroll_top.get_untracked();
        if let Some(y) = layout.get_untracked().scroll_to_show(to, top, height) {
            if let Some(el) = boxed.get_untracked() {
                el.set_scroll_top(y as i32);
            }
            ui.scroll_top.set(y);
        }
    };
    let on_key = move |ev: KeyboardEvent| {
        let at = ui.cursor.get_untracked();
        let id = rows.with_untracked(|r| {
            listed.with_untracked(|l| l.get(at).map(|&i| r[i].asset_id.clone()))
        });
        if let Some(key) = GridKey::of(&ev.key()) {
            ev.prevent_default();
            move_cursor(layout.get_untracked().step(at, key));
        } else if ev.key() == "Enter" {
            ev.prevent_default();
            if let Some(id) = id {
                open_image(state, &id);
            }
        } else if ev.key() == " " {
            ev.prevent_default();
            if let Some(id) = id {
                toggle_checked(state, &id);
            }
        }
    };
    let cells = Memo::new(move |_| {
        let range = visible.get();
        ui.similar.with(|similar| {
            rows.with(|r| {
                listed.with(|l| {
                    range
                        .map(|n| {
                            let row = &r[l[n]];
                            let id = &row.asset_id;
                            CellKey {
                                n,
                                id: id.clone(),
                                name: row.name.clone(),
                                stage: row
                                    .fields
                                    .get(lamina_core::catalog::FIELD_STAGE)
                                    .map(|v| v.label())
                                    .unwrap_or_default(),
                                score: similar.as_ref().map(|s| {
                                    if s.anchors.contains(id) {
                                        "anchor".to_string()
                                    } else {
                                        s.scores
                                            .get(id)
                                            .map_or(String::new(), |v| format!("{v:.3}"))
                                    }
                                }),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
        })
    });
    let cell = move |key: CellKey| {
        let CellKey {
            n,
            id,
            name,
            stage,
            score,
        } = key;
        let (id_thumb, id_checked, id_box, id_click, id_dbl) =
            (id.clone(), id.clone(), id.clone(), id.clone(), id.clone());
        let picture = move || {
            match ui.thumbs.with(|t| t.get(&id_thumb).cloned()) {
            Some(Thumb::Ready(url)) => view! { <img src=url alt="" draggable="false"/> }.into_any(),
            Some(Thumb::NotFetched) => view! { <span class="placeholder" title="Not on this device yet: fetched when opened">"not fetched"</span> }.into_any(),
            Some(Thumb::Failed(why)) => view! { <span class="placeholder error" title=why>"no preview"</span> }.into_any(),
            None => view! { <span class="placeholder">"…"</span> }.into_any(),
        }
        };
        let is_checked = move || state.prelabel.checked.with(|c| c.contains(&id_checked));
        view! {
            <div class="cell" data-testid="catalog-cell" data-id=id.clone() data-name=name.clone()
                class:cursor=move || ui.cursor.get() == n
                class:checked=is_checked
                style=move || { let (x, y) = layout.get().position_screen(n); format!("transform: translate({x}px, {y}px)") }
                on:click=move |_| ui.cursor.set(n)
                on:dblclick=move |_| open_image(state, &id_dbl)>
                {picture}
                <input type="checkbox" data-testid="cell-check"
                    prop:checked=move || state.prelabel.checked.with(|c| c.contains(&id_box))
                    on:click=|ev| ev.stop_propagation()
                    on:change=move |_| toggle_checked(state, &id_click)/>
                <span class="cell-name">{name.clone()}</span>
                <span class="cell-stage">{stage}</span>
                {score.map(|s| view! { <span class="cell-score" data-testid="cell-score">{s}</span> })}
            </div>
        }
    };
    view! {
        <div class="catalog-grid" tabindex="0" node_ref=boxed data-testid="catalog-grid"
            on:scroll=move |_| {
                if let Some(el) = boxed.get_untracked() { ui.scroll_top.set(f64::from(el.scroll_top())) }
            }
            on:keydown=on_key>
            <div class="catalog-grid-inner" style=move || format!("height: {}px", layout.get().height_screen())>
                <For each=move || cells.get() key=|k| k.clone() children=cell/>
            </div>
        </div>
    }
}
